//! `PlanDoc`: a plan held in an Automerge document, and every edit a
//! participant can make to it.
//!
//! Each edit method validates its input first, then writes, and produces
//! exactly one Automerge change carrying the editor as author, the time
//! `now` (ms since the epoch) and a human message such as
//! `"task done: Security review"`. A failed edit leaves the document
//! untouched. Methods take full entity ids; use [`PlanDoc::resolve`] to turn
//! what a user typed into an id.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    Author, AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};
use chrono::NaiveDate;

use crate::conflicts::Conflict;
use crate::deps::{self, Edges};
use crate::error::{ModelError, Result};
use crate::history::HistoryEntry;
use crate::identity::{Identity, Side};
use crate::ids::{self, Entry};
use crate::raw::{self, RawPlan, Texts};
use crate::schema::{
    EntityKind, Level, Priority, RiskStatus, SCHEMA_VERSION, TaskKind, TaskStatus, date_to_stored,
    get_map, get_str, keys, normalize_role,
};
use crate::view::PlanView;

/// Where to put an item in its list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Before every other item.
    First,
    /// After every other item.
    Last,
    /// Just before the item with this id.
    Before(String),
    /// Just after the item with this id.
    After(String),
}

/// A new person.
#[derive(Debug, Clone, Default)]
pub struct NewPerson {
    /// Name (required).
    pub name: String,
    /// Email (may be empty).
    pub email: String,
    /// Side.
    pub side: Side,
    /// Role (known roles are normalised; free text allowed).
    pub role: String,
}

/// Changes to a person; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PersonEdit {
    /// New name.
    pub name: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New side.
    pub side: Option<Side>,
    /// New role.
    pub role: Option<String>,
}

/// Changes to a milestone.
#[derive(Debug, Clone, Default)]
pub struct MilestoneEdit {
    /// New title.
    pub title: Option<String>,
    /// New due date (`Some(None)` clears it).
    pub due: Option<Option<NaiveDate>>,
}

/// A new task.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    /// Title (required).
    pub title: String,
    /// Description.
    pub description: String,
    /// Milestone id.
    pub milestone: Option<String>,
    /// Owner person id.
    pub owner: Option<String>,
    /// Start date.
    pub start: Option<NaiveDate>,
    /// Due date.
    pub due: Option<NaiveDate>,
    /// Status (default todo).
    pub status: TaskStatus,
    /// Kind (default task).
    pub kind: TaskKind,
    /// Priority (default medium).
    pub priority: Priority,
    /// Ids of tasks this one depends on.
    pub deps: Vec<String>,
}

/// Changes to a task; `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct TaskEdit {
    /// New title.
    pub title: Option<String>,
    /// New description (merged into the existing text).
    pub description: Option<String>,
    /// New milestone.
    pub milestone: Option<Option<String>>,
    /// New owner.
    pub owner: Option<Option<String>>,
    /// New start date.
    pub start: Option<Option<NaiveDate>>,
    /// New due date.
    pub due: Option<Option<NaiveDate>>,
    /// New kind.
    pub kind: Option<TaskKind>,
    /// New priority.
    pub priority: Option<Priority>,
}

/// A new risk.
#[derive(Debug, Clone, Default)]
pub struct NewRisk {
    /// Title (required).
    pub title: String,
    /// Impact.
    pub impact: Level,
    /// Likelihood.
    pub likelihood: Level,
    /// Mitigation.
    pub mitigation: String,
    /// Owner person id.
    pub owner: Option<String>,
    /// Status.
    pub status: RiskStatus,
}

/// Changes to a risk.
#[derive(Debug, Clone, Default)]
pub struct RiskEdit {
    /// New title.
    pub title: Option<String>,
    /// New impact.
    pub impact: Option<Level>,
    /// New likelihood.
    pub likelihood: Option<Level>,
    /// New mitigation (merged into the existing text).
    pub mitigation: Option<String>,
    /// New owner.
    pub owner: Option<Option<String>>,
    /// New status.
    pub status: Option<RiskStatus>,
}

/// A plan document.
#[derive(Debug, Clone)]
pub struct PlanDoc {
    doc: AutoCommit,
}

fn non_empty(what: &'static str, s: &str) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        Err(ModelError::Empty(what))
    } else {
        Ok(t.to_string())
    }
}

impl PlanDoc {
    // ----- construction -------------------------------------------------

    /// A new plan titled `title`, created by `by` at `now` (ms).
    pub fn create(title: &str, by: &Identity, now: i64) -> Result<PlanDoc> {
        let title = non_empty("plan title", title)?;
        let mut plan = PlanDoc {
            doc: AutoCommit::new(),
        };
        plan.edit(by, now, |p| {
            let d = &mut p.doc;
            d.put(ROOT, keys::SCHEMA, SCHEMA_VERSION)?;
            let h = d.put_object(ROOT, keys::HEADER, ObjType::Map)?;
            d.put(&h, keys::TITLE, title.as_str())?;
            d.put_object(&h, keys::OBJECTIVE, ObjType::Text)?;
            d.put_object(&h, keys::SUCCESS_CRITERIA, ObjType::Text)?;
            d.put(&h, keys::CREATED_AT, now)?;
            for k in [
                keys::PEOPLE,
                keys::MILESTONES,
                keys::TASKS,
                keys::RISKS,
                keys::COMMENTS,
            ] {
                d.put_object(ROOT, k, ObjType::Map)?;
            }
            Ok(((), format!("plan create: {title}")))
        })?;
        Ok(plan)
    }

    /// Load a saved plan. Refuses documents that are not plans or that a
    /// newer `map` wrote.
    pub fn load(bytes: &[u8]) -> Result<PlanDoc> {
        let doc = AutoCommit::load_unverified_heads(bytes)?;
        PlanDoc::from_doc(doc)
    }

    /// Wrap a document, checking it is a plan this build can read.
    pub fn from_doc(doc: AutoCommit) -> Result<PlanDoc> {
        raw::check_schema(&doc)?;
        Ok(PlanDoc { doc })
    }

    /// The underlying document.
    pub fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    /// The underlying document, mutably (sync, merge, set the actor).
    pub fn doc_mut(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    /// Give back the document.
    pub fn into_doc(self) -> AutoCommit {
        self.doc
    }

    /// Save the whole document.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Current heads, sorted.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        let mut h = self.doc.get_heads();
        h.sort();
        h
    }

    /// A copy with a new random actor (for tests and previews).
    pub fn fork(&mut self) -> PlanDoc {
        PlanDoc {
            doc: self.doc.fork(),
        }
    }

    /// Merge another copy of this plan into this one.
    pub fn merge(&mut self, other: &mut PlanDoc) -> Result<()> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }

    /// The plan title.
    pub fn title(&self) -> String {
        get_map(&self.doc, &ROOT, keys::HEADER)
            .and_then(|h| get_str(&self.doc, &h, keys::TITLE))
            .unwrap_or_default()
    }

    // ----- derived ------------------------------------------------------

    /// Everything `map show` needs, derived for `today`.
    pub fn view(&mut self, today: NaiveDate) -> Result<PlanView> {
        crate::view::build(self.doc.document(), today)
    }

    /// Fields holding concurrent values, and dependency cycles broken.
    pub fn conflicts(&mut self) -> Result<Vec<Conflict>> {
        crate::conflicts::find(self.doc.document())
    }

    /// The change history, newest first.
    pub fn history(&mut self) -> Vec<HistoryEntry> {
        crate::history::history(self.doc.document())
    }

    /// Read the stored plan (no derivation).
    pub fn raw(&self) -> Result<RawPlan> {
        raw::read_plan(&self.doc, Texts::Read)
    }

    /// Resolve what a user typed (id prefix, or exact title; for people
    /// also exact name or email) to an entity id. Deleted milestones and
    /// tasks are included so they can be restored.
    pub fn resolve(&self, kind: EntityKind, query: &str) -> Result<String> {
        let plan = raw::read_plan(&self.doc, Texts::Skip)?;
        match kind {
            EntityKind::Person => {
                let aliases: Vec<[&str; 1]> =
                    plan.people.iter().map(|p| [p.email.as_str()]).collect();
                let entries: Vec<Entry<'_>> = plan
                    .people
                    .iter()
                    .zip(aliases.iter())
                    .map(|(p, a)| Entry {
                        id: &p.id,
                        label: &p.name,
                        aliases: a,
                    })
                    .collect();
                ids::resolve(kind, query, &entries)
            }
            EntityKind::Milestone => {
                let items: Vec<(&str, &str, bool)> = plan
                    .milestones
                    .iter()
                    .map(|m| (m.id.as_str(), m.title.as_str(), m.deleted))
                    .collect();
                resolve_live_first(kind, query, &items)
            }
            EntityKind::Task => {
                let items: Vec<(&str, &str, bool)> = plan
                    .tasks
                    .iter()
                    .map(|t| (t.id.as_str(), t.title.as_str(), t.deleted))
                    .collect();
                resolve_live_first(kind, query, &items)
            }
            EntityKind::Risk => {
                let entries: Vec<Entry<'_>> = plan
                    .risks
                    .iter()
                    .map(|r| Entry {
                        id: &r.id,
                        label: &r.title,
                        aliases: &[],
                    })
                    .collect();
                ids::resolve(kind, query, &entries)
            }
            EntityKind::Comment | EntityKind::Header => {
                // A comment target: any task, milestone or risk.
                let entries: Vec<Entry<'_>> = plan
                    .tasks
                    .iter()
                    .map(|t| (t.id.as_str(), t.title.as_str()))
                    .chain(
                        plan.milestones
                            .iter()
                            .map(|m| (m.id.as_str(), m.title.as_str())),
                    )
                    .chain(plan.risks.iter().map(|r| (r.id.as_str(), r.title.as_str())))
                    .map(|(id, label)| Entry {
                        id,
                        label,
                        aliases: &[],
                    })
                    .collect();
                ids::resolve(EntityKind::Comment, query, &entries)
            }
        }
    }

    // ----- plumbing -----------------------------------------------------

    /// Make `by` the author of the next change. The actor id is kept (the
    /// store keeps one actor per participant) unless that actor's changes
    /// are already recorded under another author; then a fresh actor is
    /// used so history never attributes this change to someone else.
    fn use_identity(&mut self, by: &Identity) {
        let author = Author::from(by.author_string().into_bytes());
        let actor = self.doc.get_actor().clone();
        let other_author = self
            .doc
            .get_author_for_actor(&actor)
            .is_some_and(|a| a.as_bytes() != author.as_bytes());
        if self.doc.get_author() != Some(&author) || other_author {
            if other_author {
                self.doc.set_author(None);
            }
            self.doc.set_author(Some(author));
            if !other_author {
                self.doc.set_actor(actor);
            }
        }
    }

    /// Run `f` as one change: commit it with its message, or roll it back.
    pub(crate) fn edit<T>(
        &mut self,
        by: &Identity,
        now: i64,
        f: impl FnOnce(&mut Self) -> Result<(T, String)>,
    ) -> Result<T> {
        if self.doc.pending_ops() > 0 {
            // Changes made directly through doc_mut(): keep them apart.
            self.doc
                .commit_with(CommitOptions::default().with_time(now));
        }
        self.use_identity(by);
        match f(self) {
            Ok((v, msg)) => {
                self.doc
                    .commit_with(CommitOptions::default().with_message(msg).with_time(now));
                Ok(v)
            }
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    /// The collection map for `kind`, created if a peer's document lacks it.
    fn collection(&mut self, kind: EntityKind) -> Result<ObjId> {
        let key = kind.collection();
        match get_map(&self.doc, &ROOT, key) {
            Some(id) => Ok(id),
            None => Ok(self.doc.put_object(ROOT, key, ObjType::Map)?),
        }
    }

    fn entity(&self, kind: EntityKind, id: &str) -> Result<ObjId> {
        get_map(&self.doc, &ROOT, kind.collection())
            .and_then(|c| get_map(&self.doc, &c, id))
            .ok_or_else(|| ids::not_found(kind, id))
    }

    fn is_deleted(&self, obj: &ObjId) -> bool {
        matches!(
            self.doc.get(obj, keys::DELETED),
            Ok(Some((Value::Scalar(s), _))) if matches!(s.as_ref(), ScalarValue::Boolean(true))
        )
    }

    fn label(&self, obj: &ObjId, key: &str) -> String {
        get_str(&self.doc, obj, key).unwrap_or_default()
    }

    /// A live (not deleted) task or milestone, with its title.
    fn live(&self, kind: EntityKind, id: &str) -> Result<(ObjId, String)> {
        let obj = self.entity(kind, id)?;
        let title = self.label(&obj, keys::TITLE);
        if self.is_deleted(&obj) {
            return Err(ModelError::Deleted {
                kind,
                id: id.to_string(),
                title,
            });
        }
        Ok((obj, title))
    }

    fn check_person(&self, id: &str) -> Result<String> {
        let obj = self.entity(EntityKind::Person, id)?;
        Ok(self.label(&obj, keys::NAME))
    }

    fn put_opt_str(&mut self, obj: &ObjId, key: &str, v: Option<&str>) -> Result<()> {
        match v {
            Some(s) => self.doc.put(obj, key, s)?,
            None => {
                if self.doc.get(obj, key)?.is_some() {
                    self.doc.delete(obj, key)?
                }
            }
        }
        Ok(())
    }

    fn put_opt_date(&mut self, obj: &ObjId, key: &str, v: Option<NaiveDate>) -> Result<()> {
        let s = v.map(date_to_stored);
        self.put_opt_str(obj, key, s.as_deref())
    }

    /// Write a long text so concurrent edits merge: update the existing Text
    /// object in place, or replace a plain string by a Text.
    /// When the key holds concurrent values (two peers both turned a plain
    /// string into a Text), a new Text replaces them all, resolving it.
    fn put_text(&mut self, obj: &ObjId, key: &str, value: &str) -> Result<()> {
        let concurrent = self.doc.get_all(obj, key)?.len() > 1;
        match self.doc.get(obj, key)? {
            Some((Value::Object(ObjType::Text), text)) if !concurrent => {
                if self.doc.text(&text)? != value {
                    self.doc.update_text(&text, value)?;
                }
            }
            _ => {
                let text = self.doc.put_object(obj, key, ObjType::Text)?;
                self.doc.splice_text(&text, 0, 0, value)?;
            }
        }
        Ok(())
    }

    /// `order` for a new item at the end of `kind`'s list.
    fn next_order(&self, kind: EntityKind) -> f64 {
        let Some(coll) = get_map(&self.doc, &ROOT, kind.collection()) else {
            return 1.0;
        };
        let mut max = 0.0f64;
        for item in self.doc.map_range(&coll, ..) {
            if let automerge::ValueRef::Object(ObjType::Map) = item.value {
                let obj = item.id();
                if let Ok(Some((Value::Scalar(s), _))) = self.doc.get(&obj, keys::ORDER) {
                    let o = match s.as_ref() {
                        ScalarValue::F64(f) if f.is_finite() => *f,
                        ScalarValue::Int(i) => *i as f64,
                        ScalarValue::Uint(u) => *u as f64,
                        _ => 0.0,
                    };
                    max = max.max(o);
                }
            }
        }
        (max + 1.0).floor()
    }

    /// Move `id` within `items` (live items, any order) to `pos`, writing
    /// its new `order` (and renumbering the list when there is no room).
    fn place(
        &mut self,
        kind: EntityKind,
        id: &str,
        mut items: Vec<(String, f64)>,
        pos: &Position,
    ) -> Result<()> {
        items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        items.retain(|(i, _)| i != id);
        let idx = match pos {
            Position::First => 0,
            Position::Last => items.len(),
            Position::Before(o) | Position::After(o) => {
                let at = items
                    .iter()
                    .position(|(i, _)| i == o)
                    .ok_or_else(|| ids::not_found(kind, o))?;
                if matches!(pos, Position::After(_)) {
                    at + 1
                } else {
                    at
                }
            }
        };
        let prev = idx.checked_sub(1).and_then(|i| items.get(i)).map(|x| x.1);
        let next = items.get(idx).map(|x| x.1);
        let order = match (prev, next) {
            (None, None) => Some(1.0),
            (Some(p), None) => Some((p + 1.0).floor()),
            (None, Some(n)) => Some((n - 1.0).ceil()),
            (Some(p), Some(n)) => {
                let m = p + (n - p) / 2.0;
                (m > p && m < n).then_some(m)
            }
        };
        let coll = self.collection(kind)?;
        match order {
            Some(o) => {
                let obj = self.entity(kind, id)?;
                self.doc.put(&obj, keys::ORDER, o)?;
            }
            None => {
                // No room between equal neighbours: renumber everything.
                items.insert(idx, (id.to_string(), 0.0));
                for (i, (eid, _)) in items.iter().enumerate() {
                    if let Some(obj) = get_map(&self.doc, &coll, eid) {
                        self.doc.put(&obj, keys::ORDER, (i + 1) as f64)?;
                    }
                }
            }
        }
        Ok(())
    }

    // ----- header ---------------------------------------------------------

    fn header(&mut self) -> Result<ObjId> {
        match get_map(&self.doc, &ROOT, keys::HEADER) {
            Some(h) => Ok(h),
            None => Ok(self.doc.put_object(ROOT, keys::HEADER, ObjType::Map)?),
        }
    }

    /// Rename the plan.
    pub fn set_title(&mut self, by: &Identity, now: i64, title: &str) -> Result<()> {
        let title = non_empty("plan title", title)?;
        self.edit(by, now, |p| {
            let h = p.header()?;
            p.doc.put(&h, keys::TITLE, title.as_str())?;
            Ok(((), format!("plan title: {title}")))
        })
    }

    /// Set the objective (merged as text).
    pub fn set_objective(&mut self, by: &Identity, now: i64, text: &str) -> Result<()> {
        self.edit(by, now, |p| {
            let h = p.header()?;
            p.put_text(&h, keys::OBJECTIVE, text)?;
            Ok(((), "plan objective".to_string()))
        })
    }

    /// Set the success criteria (merged as text).
    pub fn set_success_criteria(&mut self, by: &Identity, now: i64, text: &str) -> Result<()> {
        self.edit(by, now, |p| {
            let h = p.header()?;
            p.put_text(&h, keys::SUCCESS_CRITERIA, text)?;
            Ok(((), "plan success criteria".to_string()))
        })
    }

    /// Set or clear the target signature date.
    pub fn set_signature_date(
        &mut self,
        by: &Identity,
        now: i64,
        date: Option<NaiveDate>,
    ) -> Result<()> {
        self.edit(by, now, |p| {
            let h = p.header()?;
            p.put_opt_date(&h, keys::SIGNATURE_DATE, date)?;
            let d = date.map(date_to_stored).unwrap_or_else(|| "none".into());
            Ok(((), format!("plan signature date: {d}")))
        })
    }

    /// Set or clear the target go-live date.
    pub fn set_go_live(&mut self, by: &Identity, now: i64, date: Option<NaiveDate>) -> Result<()> {
        self.edit(by, now, |p| {
            let h = p.header()?;
            p.put_opt_date(&h, keys::GO_LIVE, date)?;
            let d = date.map(date_to_stored).unwrap_or_else(|| "none".into());
            Ok(((), format!("plan go-live: {d}")))
        })
    }

    // ----- people ---------------------------------------------------------

    /// Add a person; returns their id.
    pub fn add_person(&mut self, by: &Identity, now: i64, person: NewPerson) -> Result<String> {
        let name = non_empty("person's name", &person.name)?;
        let email = person.email.trim().to_string();
        let role = normalize_role(&person.role);
        self.edit(by, now, |p| {
            let coll = p.collection(EntityKind::Person)?;
            let id = fresh_id(&p.doc, &coll);
            let order = p.next_order(EntityKind::Person);
            let obj = p.doc.put_object(&coll, id.as_str(), ObjType::Map)?;
            p.doc.put(&obj, keys::NAME, name.as_str())?;
            p.doc.put(&obj, keys::EMAIL, email.as_str())?;
            p.doc.put(&obj, keys::SIDE, person.side.as_str())?;
            p.doc.put(&obj, keys::ROLE, role.as_str())?;
            p.doc.put(&obj, keys::ORDER, order)?;
            let detail = if role.is_empty() {
                person.side.to_string()
            } else {
                format!("{}, {role}", person.side)
            };
            Ok((id, format!("person add: {name} ({detail})")))
        })
    }

    /// Edit a person.
    pub fn edit_person(
        &mut self,
        by: &Identity,
        now: i64,
        id: &str,
        edit: PersonEdit,
    ) -> Result<()> {
        let name = edit
            .name
            .as_deref()
            .map(|n| non_empty("person's name", n))
            .transpose()?;
        self.edit(by, now, |p| {
            let obj = p.entity(EntityKind::Person, id)?;
            let mut changed = Vec::new();
            if let Some(n) = &name {
                p.doc.put(&obj, keys::NAME, n.as_str())?;
                changed.push("name");
            }
            if let Some(e) = &edit.email {
                p.doc.put(&obj, keys::EMAIL, e.trim())?;
                changed.push("email");
            }
            if let Some(s) = edit.side {
                p.doc.put(&obj, keys::SIDE, s.as_str())?;
                changed.push("side");
            }
            if let Some(r) = &edit.role {
                p.doc.put(&obj, keys::ROLE, normalize_role(r).as_str())?;
                changed.push("role");
            }
            let label = p.label(&obj, keys::NAME);
            Ok(((), format!("person edit: {label}{}", fields_note(&changed))))
        })
    }

    /// Remove a person; tasks and risks they owned become unassigned in the
    /// same change.
    pub fn remove_person(&mut self, by: &Identity, now: i64, id: &str) -> Result<()> {
        let name = self.check_person(id)?;
        let plan = raw::read_plan(&self.doc, Texts::Skip)?;
        self.edit(by, now, |p| {
            let mut unassigned = 0;
            for t in plan.tasks.iter().filter(|t| t.owner.as_deref() == Some(id)) {
                let obj = p.entity(EntityKind::Task, &t.id)?;
                p.doc.delete(&obj, keys::OWNER)?;
                unassigned += 1;
            }
            for r in plan.risks.iter().filter(|r| r.owner.as_deref() == Some(id)) {
                let obj = p.entity(EntityKind::Risk, &r.id)?;
                p.doc.delete(&obj, keys::OWNER)?;
                unassigned += 1;
            }
            let coll = p.collection(EntityKind::Person)?;
            p.doc.delete(&coll, id)?;
            let extra = if unassigned > 0 {
                format!(" ({unassigned} items unassigned)")
            } else {
                String::new()
            };
            Ok(((), format!("person remove: {name}{extra}")))
        })
    }

    // ----- milestones -----------------------------------------------------

    /// Add a milestone at the end; returns its id.
    pub fn add_milestone(
        &mut self,
        by: &Identity,
        now: i64,
        title: &str,
        due: Option<NaiveDate>,
    ) -> Result<String> {
        let title = non_empty("milestone title", title)?;
        self.edit(by, now, |p| {
            let coll = p.collection(EntityKind::Milestone)?;
            let id = fresh_id(&p.doc, &coll);
            let order = p.next_order(EntityKind::Milestone);
            let obj = p.doc.put_object(&coll, id.as_str(), ObjType::Map)?;
            p.doc.put(&obj, keys::TITLE, title.as_str())?;
            p.put_opt_date(&obj, keys::DUE, due)?;
            p.doc.put(&obj, keys::ORDER, order)?;
            Ok((id, format!("milestone add: {title}")))
        })
    }

    /// Edit a milestone.
    pub fn edit_milestone(
        &mut self,
        by: &Identity,
        now: i64,
        id: &str,
        edit: MilestoneEdit,
    ) -> Result<()> {
        let title = edit
            .title
            .as_deref()
            .map(|t| non_empty("milestone title", t))
            .transpose()?;
        self.edit(by, now, |p| {
            let (obj, old) = p.live(EntityKind::Milestone, id)?;
            let mut changed = Vec::new();
            if let Some(t) = &title {
                p.doc.put(&obj, keys::TITLE, t.as_str())?;
                changed.push("title");
            }
            if let Some(d) = edit.due {
                p.put_opt_date(&obj, keys::DUE, d)?;
                changed.push("due");
            }
            let label = title.clone().unwrap_or(old);
            Ok((
                (),
                format!("milestone edit: {label}{}", fields_note(&changed)),
            ))
        })
    }

    /// Move a milestone in the list.
    pub fn move_milestone(
        &mut self,
        by: &Identity,
        now: i64,
        id: &str,
        pos: Position,
    ) -> Result<()> {
        let plan = raw::read_plan(&self.doc, Texts::Skip)?;
        let items: Vec<(String, f64)> = plan
            .milestones
            .iter()
            .filter(|m| !m.deleted)
            .map(|m| (m.id.clone(), m.order))
            .collect();
        self.edit(by, now, |p| {
            let (_, title) = p.live(EntityKind::Milestone, id)?;
            p.place(EntityKind::Milestone, id, items, &pos)?;
            Ok(((), format!("milestone move: {title}")))
        })
    }

    /// Soft-delete a milestone. Its live tasks are moved out of it (to no
    /// milestone) in the same change.
    pub fn delete_milestone(&mut self, by: &Identity, now: i64, id: &str) -> Result<()> {
        let plan = raw::read_plan(&self.doc, Texts::Skip)?;
        self.edit(by, now, |p| {
            let (obj, title) = p.live(EntityKind::Milestone, id)?;
            p.doc.put(&obj, keys::DELETED, true)?;
            let mut moved = 0;
            for t in plan
                .tasks
                .iter()
                .filter(|t| !t.deleted && t.milestone.as_deref() == Some(id))
            {
                let tobj = p.entity(EntityKind::Task, &t.id)?;
                p.doc.delete(&tobj, keys::MILESTONE)?;
                moved += 1;
            }
            let extra = if moved > 0 {
                format!(" ({moved} tasks moved out)")
            } else {
                String::new()
            };
            Ok(((), format!("milestone delete: {title}{extra}")))
        })
    }

    /// Restore a soft-deleted milestone.
    pub fn restore_milestone(&mut self, by: &Identity, now: i64, id: &str) -> Result<()> {
        self.edit(by, now, |p| {
            let obj = p.entity(EntityKind::Milestone, id)?;
            p.doc.put(&obj, keys::DELETED, false)?;
            let title = p.label(&obj, keys::TITLE);
            Ok(((), format!("milestone restore: {title}")))
        })
    }

    // ----- tasks ----------------------------------------------------------

    /// Add a task at the end; returns its id. A task created `done` gets
    /// `today` as its completed date.
    pub fn add_task(
        &mut self,
        by: &Identity,
        now: i64,
        today: NaiveDate,
        task: NewTask,
    ) -> Result<String> {
        let title = non_empty("task title", &task.title)?;
        if let Some(m) = &task.milestone {
            self.live(EntityKind::Milestone, m)?;
        }
        if let Some(o) = &task.owner {
            self.check_person(o)?;
        }
        for d in &task.deps {
            self.live(EntityKind::Task, d)?;
        }
        self.edit(by, now, |p| {
            let coll = p.collection(EntityKind::Task)?;
            let id = fresh_id(&p.doc, &coll);
            let order = p.next_order(EntityKind::Task);
            let obj = p.doc.put_object(&coll, id.as_str(), ObjType::Map)?;
            p.doc.put(&obj, keys::TITLE, title.as_str())?;
            let text = p.doc.put_object(&obj, keys::DESCRIPTION, ObjType::Text)?;
            if !task.description.is_empty() {
                p.doc.splice_text(&text, 0, 0, &task.description)?;
            }
            p.put_opt_str(&obj, keys::MILESTONE, task.milestone.as_deref())?;
            p.put_opt_str(&obj, keys::OWNER, task.owner.as_deref())?;
            p.put_opt_date(&obj, keys::START, task.start)?;
            p.put_opt_date(&obj, keys::DUE, task.due)?;
            p.doc.put(&obj, keys::STATUS, task.status.as_str())?;
            if task.status == TaskStatus::Done {
                p.doc.put(&obj, keys::COMPLETED, date_to_stored(today))?;
            }
            let deps = p.doc.put_object(&obj, keys::DEPS, ObjType::Map)?;
            for d in &task.deps {
                p.doc.put(&deps, d.as_str(), true)?;
            }
            p.doc.put(&obj, keys::KIND, task.kind.as_str())?;
            p.doc.put(&obj, keys::PRIORITY, task.priority.as_str())?;
            p.doc.put(&obj, keys::ORDER, order)?;
            p.doc.put(&obj, keys::CREATED_AT, now)?;
            Ok((id, format!("task add: {title}")))
        })
    }

    /// Edit a task's fields.
    pub fn edit_task(&mut self, by: &Identity, now: i64, id: &str, edit: TaskEdit) -> Result<()> {
        let title = edit
            .title
            .as_deref()
            .map(|t| non_empty("task title", t))
            .transpose()?;
        if let Some(Some(m)) = &edit.milestone {
            self.live(EntityKind::Milestone, m)?;
        }
        if let Some(Some(o)) = &edit.owner {
            self.check_person(o)?;
        }
        self.edit(by, now, |p| {
            let (obj, old) = p.live(EntityKind::Task, id)?;
            let mut changed = Vec::new();
            if let Some(t) = &title {
                p.doc.put(&obj, keys::TITLE, t.as_str())?;
                changed.push("title");
            }
            if let Some(d) = &edit.description {
                p.put_text(&obj, keys::DESCRIPTION, d)?;
                changed.push("description");
            }
            if let Some(m) = &edit.milestone {
                p.put_opt_str(&obj, keys::MILESTONE, m.as_deref())?;
                changed.push("milestone");
            }
            if let Some(o) = &edit.owner {
                p.put_opt_str(&obj, keys::OWNER, o.as_deref())?;
                changed.push("owner");
            }
            if let Some(s) = edit.start {
                p.put_opt_date(&obj, keys::START, s)?;
                changed.push("start");
            }
            if let Some(d) = edit.due {
                p.put_opt_date(&obj, keys::DUE, d)?;
                changed.push("due");
            }
            if let Some(k) = edit.kind {
                p.doc.put(&obj, keys::KIND, k.as_str())?;
                changed.push("kind");
            }
            if let Some(pr) = edit.priority {
                p.doc.put(&obj, keys::PRIORITY, pr.as_str())?;
                changed.push("priority");
            }
            let label = title.clone().unwrap_or(old);
            Ok(((), format!("task edit: {label}{}", fields_note(&changed))))
        })
    }

    /// Set a task's status. `done` records `today` as the completed date;
    /// any other status clears it.
    pub fn set_status(
        &mut self,
        by: &Identity,
        now: i64,
        today: NaiveDate,
        id: &str,
        status: TaskStatus,
    ) -> Result<()> {
        self.edit(by, now, |p| {
            let (obj, title) = p.live(EntityKind::Task, id)?;
            p.doc.put(&obj, keys::STATUS, status.as_str())?;
            if status == TaskStatus::Done {
                p.doc.put(&obj, keys::COMPLETED, date_to_stored(today))?;
            } else {
                p.put_opt_str(&obj, keys::COMPLETED, None)?;
            }
            Ok(((), format!("task {status}: {title}")))
        })
    }

    /// Move a task to a milestone (or none).
    pub fn set_milestone(
        &mut self,
        by: &Identity,
        now: i64,
        id: &str,
        milestone: Option<&str>,
    ) -> Result<()> {
        let ms_title = match milestone {
            Some(m) => Some(self.live(EntityKind::Milestone, m)?.1),
            None => None,
        };
        self.edit(by, now, |p| {
            let (obj, title) = p.live(EntityKind::Task, id)?;
            p.put_opt_str(&obj, keys::MILESTONE, milestone)?;
            let to = ms_title.unwrap_or_else(|| "no milestone".into());
            Ok(((), format!("task move: {title} -> {to}")))
        })
    }

    /// Reorder a task in the list of live tasks.
    pub fn move_task(&mut self, by: &Identity, now: i64, id: &str, pos: Position) -> Result<()> {
        let plan = raw::read_plan(&self.doc, Texts::Skip)?;
        let items: Vec<(String, f64)> = plan
            .tasks
            .iter()
            .filter(|t| !t.deleted)
            .map(|t| (t.id.clone(), t.order))
            .collect();
        self.edit(by, now, |p| {
            let (_, title) = p.live(EntityKind::Task, id)?;
            p.place(EntityKind::Task, id, items, &pos)?;
            Ok(((), format!("task reorder: {title}")))
        })
    }

    /// Soft-delete a task; other tasks stop depending on it in the same
    /// change.
    pub fn delete_task(&mut self, by: &Identity, now: i64, id: &str) -> Result<()> {
        let plan = raw::read_plan(&self.doc, Texts::Skip)?;
        self.edit(by, now, |p| {
            let (obj, title) = p.live(EntityKind::Task, id)?;
            p.doc.put(&obj, keys::DELETED, true)?;
            for t in plan.tasks.iter().filter(|t| t.deps.contains(id)) {
                let tobj = p.entity(EntityKind::Task, &t.id)?;
                if let Some(deps) = get_map(&p.doc, &tobj, keys::DEPS) {
                    p.doc.delete(&deps, id)?;
                }
            }
            Ok(((), format!("task delete: {title}")))
        })
    }

    /// Restore a soft-deleted task (with every edit made meanwhile).
    pub fn restore_task(&mut self, by: &Identity, now: i64, id: &str) -> Result<()> {
        self.edit(by, now, |p| {
            let obj = p.entity(EntityKind::Task, id)?;
            p.doc.put(&obj, keys::DELETED, false)?;
            let title = p.label(&obj, keys::TITLE);
            Ok(((), format!("task restore: {title}")))
        })
    }

    /// Make `task` depend on `on`. Refuses self-dependencies, unknown or
    /// deleted tasks, and edges that would close a cycle.
    pub fn add_dep(&mut self, by: &Identity, now: i64, task: &str, on: &str) -> Result<()> {
        let (_, t_title) = self.live(EntityKind::Task, task)?;
        let (_, o_title) = self.live(EntityKind::Task, on)?;
        if task == on {
            return Err(ModelError::SelfDependency(t_title));
        }
        let plan = raw::read_plan(&self.doc, Texts::Skip)?;
        let edges = live_edges(&plan);
        if let Some(path) = deps::cycle_if_added(&edges, task, on) {
            let titles: std::collections::BTreeMap<&str, &str> = plan
                .tasks
                .iter()
                .map(|t| (t.id.as_str(), t.title.as_str()))
                .collect();
            return Err(ModelError::Cycle {
                path: path
                    .iter()
                    .map(|id| format!("{} ({id})", titles.get(id.as_str()).copied().unwrap_or("?")))
                    .collect(),
            });
        }
        self.edit(by, now, |p| {
            let obj = p.entity(EntityKind::Task, task)?;
            let deps = match get_map(&p.doc, &obj, keys::DEPS) {
                Some(d) => d,
                None => p.doc.put_object(&obj, keys::DEPS, ObjType::Map)?,
            };
            p.doc.put(&deps, on, true)?;
            Ok(((), format!("dep add: {t_title} needs {o_title}")))
        })
    }

    /// Remove the dependency of `task` on `on`.
    pub fn remove_dep(&mut self, by: &Identity, now: i64, task: &str, on: &str) -> Result<()> {
        self.edit(by, now, |p| {
            let obj = p.entity(EntityKind::Task, task)?;
            let t_title = p.label(&obj, keys::TITLE);
            let deps = get_map(&p.doc, &obj, keys::DEPS);
            match deps {
                Some(d) if p.doc.get(&d, on)?.is_some() => p.doc.delete(&d, on)?,
                _ => return Err(ids::not_found(EntityKind::Task, on)),
            }
            let o_title = p
                .entity(EntityKind::Task, on)
                .map(|o| p.label(&o, keys::TITLE))
                .unwrap_or_else(|_| on.to_string());
            Ok((
                (),
                format!("dep remove: {t_title} no longer needs {o_title}"),
            ))
        })
    }

    // ----- risks ----------------------------------------------------------

    /// Add a risk; returns its id.
    pub fn add_risk(&mut self, by: &Identity, now: i64, risk: NewRisk) -> Result<String> {
        let title = non_empty("risk title", &risk.title)?;
        if let Some(o) = &risk.owner {
            self.check_person(o)?;
        }
        self.edit(by, now, |p| {
            let coll = p.collection(EntityKind::Risk)?;
            let id = fresh_id(&p.doc, &coll);
            let order = p.next_order(EntityKind::Risk);
            let obj = p.doc.put_object(&coll, id.as_str(), ObjType::Map)?;
            p.doc.put(&obj, keys::TITLE, title.as_str())?;
            p.doc.put(&obj, keys::IMPACT, risk.impact.as_str())?;
            p.doc
                .put(&obj, keys::LIKELIHOOD, risk.likelihood.as_str())?;
            let text = p.doc.put_object(&obj, keys::MITIGATION, ObjType::Text)?;
            if !risk.mitigation.is_empty() {
                p.doc.splice_text(&text, 0, 0, &risk.mitigation)?;
            }
            p.put_opt_str(&obj, keys::OWNER, risk.owner.as_deref())?;
            p.doc.put(&obj, keys::STATUS, risk.status.as_str())?;
            p.doc.put(&obj, keys::ORDER, order)?;
            Ok((id, format!("risk add: {title}")))
        })
    }

    /// Edit a risk.
    pub fn edit_risk(&mut self, by: &Identity, now: i64, id: &str, edit: RiskEdit) -> Result<()> {
        let title = edit
            .title
            .as_deref()
            .map(|t| non_empty("risk title", t))
            .transpose()?;
        if let Some(Some(o)) = &edit.owner {
            self.check_person(o)?;
        }
        self.edit(by, now, |p| {
            let obj = p.entity(EntityKind::Risk, id)?;
            let mut changed = Vec::new();
            if let Some(t) = &title {
                p.doc.put(&obj, keys::TITLE, t.as_str())?;
                changed.push("title");
            }
            if let Some(v) = edit.impact {
                p.doc.put(&obj, keys::IMPACT, v.as_str())?;
                changed.push("impact");
            }
            if let Some(v) = edit.likelihood {
                p.doc.put(&obj, keys::LIKELIHOOD, v.as_str())?;
                changed.push("likelihood");
            }
            if let Some(m) = &edit.mitigation {
                p.put_text(&obj, keys::MITIGATION, m)?;
                changed.push("mitigation");
            }
            if let Some(o) = &edit.owner {
                p.put_opt_str(&obj, keys::OWNER, o.as_deref())?;
                changed.push("owner");
            }
            if let Some(s) = edit.status {
                p.doc.put(&obj, keys::STATUS, s.as_str())?;
                changed.push("status");
            }
            let label = p.label(&obj, keys::TITLE);
            Ok(((), format!("risk edit: {label}{}", fields_note(&changed))))
        })
    }

    /// Remove a risk.
    pub fn remove_risk(&mut self, by: &Identity, now: i64, id: &str) -> Result<()> {
        self.edit(by, now, |p| {
            let obj = p.entity(EntityKind::Risk, id)?;
            let title = p.label(&obj, keys::TITLE);
            let coll = p.collection(EntityKind::Risk)?;
            p.doc.delete(&coll, id)?;
            Ok(((), format!("risk remove: {title}")))
        })
    }

    // ----- comments -------------------------------------------------------

    /// Comment on a task, milestone or risk; returns the comment's id.
    pub fn add_comment(
        &mut self,
        by: &Identity,
        now: i64,
        target: &str,
        text: &str,
    ) -> Result<String> {
        let text = non_empty("comment", text)?;
        let (kind, title) = [EntityKind::Task, EntityKind::Milestone, EntityKind::Risk]
            .into_iter()
            .find_map(|k| {
                self.entity(k, target)
                    .ok()
                    .map(|o| (k, self.label(&o, keys::TITLE)))
            })
            .ok_or_else(|| ModelError::UnknownTarget(target.to_string()))?;
        self.edit(by, now, |p| {
            let coll = p.collection(EntityKind::Comment)?;
            let id = fresh_id(&p.doc, &coll);
            let obj = p.doc.put_object(&coll, id.as_str(), ObjType::Map)?;
            p.doc.put(&obj, keys::TARGET, target)?;
            p.doc.put(&obj, keys::AUTHOR, by.author_string().as_str())?;
            p.doc.put(&obj, keys::AT, now)?;
            let t = p.doc.put_object(&obj, keys::TEXT, ObjType::Text)?;
            p.doc.splice_text(&t, 0, 0, &text)?;
            Ok((id, format!("comment on {kind}: {title}")))
        })
    }
}

/// Resolve among live items first; only if none matches, among deleted
/// ones too (so `restore` can name them).
fn resolve_live_first(
    kind: EntityKind,
    query: &str,
    items: &[(&str, &str, bool)],
) -> Result<String> {
    let entries = |with_deleted: bool| -> Vec<Entry<'_>> {
        items
            .iter()
            .filter(|(_, _, deleted)| with_deleted || !deleted)
            .map(|(id, label, _)| Entry {
                id,
                label,
                aliases: &[],
            })
            .collect()
    };
    match ids::resolve(kind, query, &entries(false)) {
        Err(ModelError::UnknownTask(_) | ModelError::UnknownMilestone(_)) => {
            ids::resolve(kind, query, &entries(true))
        }
        other => other,
    }
}

/// ` (title, due)` for a message, or nothing.
fn fields_note(changed: &[&str]) -> String {
    if changed.is_empty() {
        String::new()
    } else {
        format!(" ({})", changed.join(", "))
    }
}

/// A new id not already used in `coll`.
fn fresh_id<R: ReadDoc>(doc: &R, coll: &ObjId) -> String {
    loop {
        let id = ids::new_id();
        if !matches!(doc.get(coll, id.as_str()), Ok(Some(_))) {
            return id;
        }
    }
}

/// Dependency edges between live tasks (dangling and deleted ends dropped).
pub(crate) fn live_edges(plan: &RawPlan) -> Edges {
    let live: std::collections::BTreeSet<&str> = plan
        .tasks
        .iter()
        .filter(|t| !t.deleted)
        .map(|t| t.id.as_str())
        .collect();
    let mut edges = Edges::new();
    for t in plan.tasks.iter().filter(|t| !t.deleted) {
        let set: std::collections::BTreeSet<String> = t
            .deps
            .iter()
            .filter(|d| live.contains(d.as_str()) && d.as_str() != t.id)
            .cloned()
            .collect();
        if !set.is_empty() {
            edges.insert(t.id.clone(), set);
        }
    }
    edges
}
