//! Plans in the store: finding one from what the user typed, loading it for
//! an edit, and saving it back with everything derived from it.
//!
//! [`save_plan`] is the one way a changed document goes into the store: it
//! saves the increment, recomputes the cached [`PlanView`] (so `map show`
//! never loads Automerge), appends the new changes to the history cache and
//! updates the plan row, all inside the caller's transaction. The sync code
//! uses it too, after merging changes from a relay.

use map_model::{DocumentId, PlanDoc, PlanView};
use map_store::{HistoryRow, PlanRow, ReadTx, SaveOutcome, WriteTx};
use serde::Serialize;

use crate::context::{self, Context};
use crate::error::{CliError, Result};

/// How a cached view is stored: JSON of [`PlanView`] (fast to decode, and
/// readable with `sqlite3` when debugging).
pub fn encode_view(view: &PlanView) -> Result<Vec<u8>> {
    serde_json::to_vec(view)
        .map_err(|e| CliError::user(format!("cannot encode the plan view: {e}")))
}

/// Decode a cached view; `None` if it was written in another format (the
/// caller then rebuilds it from the document).
pub fn decode_view(bytes: &[u8]) -> Option<PlanView> {
    serde_json::from_slice(bytes).ok()
}

/// Find a plan: exact id, `automerge:` URL, unique id prefix, or exact
/// (case-insensitive) title, then unique title prefix.
pub fn resolve_plan(tx: &ReadTx<'_>, query: &str) -> Result<PlanRow> {
    let q = query.trim();
    if q.is_empty() {
        return Err(CliError::user("no plan given").hint("list plans with `map plans`"));
    }
    if let Ok(id) = q.parse::<DocumentId>() {
        if let Some(row) = tx.plan(&id.to_string())? {
            return Ok(row);
        }
        if q.starts_with("automerge:") {
            return Err(
                CliError::user(format!("no plan {} in this database", id.url()))
                    .hint("join it with `map join INVITE` or sync it with `map sync`"),
            );
        }
    }
    let plans = tx.list_plans()?;
    let by_id: Vec<&PlanRow> = plans.iter().filter(|p| p.id.starts_with(q)).collect();
    if by_id.len() == 1 {
        return Ok(by_id[0].clone());
    }
    if by_id.len() > 1 {
        return Err(ambiguous(q, &by_id));
    }
    let ql = q.to_lowercase();
    let exact: Vec<&PlanRow> = plans
        .iter()
        .filter(|p| p.title.trim().to_lowercase() == ql)
        .collect();
    match exact.len() {
        1 => return Ok(exact[0].clone()),
        0 => {}
        _ => return Err(ambiguous(q, &exact)),
    }
    let prefix: Vec<&PlanRow> = plans
        .iter()
        .filter(|p| p.title.trim().to_lowercase().starts_with(&ql))
        .collect();
    match prefix.len() {
        1 => Ok(prefix[0].clone()),
        0 => Err(CliError::user(format!("no plan matches '{q}'"))
            .hint("list plans with `map plans`, or create one with `map init TITLE`")),
        _ => Err(ambiguous(q, &prefix)),
    }
}

fn ambiguous(q: &str, rows: &[&PlanRow]) -> CliError {
    let list = rows
        .iter()
        .map(|p| format!("  {}  {}", p.id, p.title))
        .collect::<Vec<_>>()
        .join("\n");
    CliError::user(format!("'{q}' matches several plans"))
        .hint(format!("give more of the id or the full title:\n{list}"))
}

/// The plan a command works on: `--plan` if given, else the current plan,
/// else the only plan.
pub fn target_plan(tx: &ReadTx<'_>, plan_arg: Option<&str>) -> Result<PlanRow> {
    if let Some(q) = plan_arg {
        return resolve_plan(tx, q);
    }
    if let Some(id) = tx.get_setting(context::keys::CURRENT_PLAN)?
        && let Some(row) = tx.plan(&id)?
    {
        return Ok(row);
    }
    let plans = tx.list_plans()?;
    match plans.len() {
        0 => Err(CliError::user("there is no plan yet")
            .hint("create one with `map init TITLE`, or join one with `map join INVITE`")),
        1 => plans
            .into_iter()
            .next()
            .ok_or_else(|| CliError::user("there is no plan yet")),
        _ => Err(CliError::user("no current plan").hint(
            "choose one with `map use PLAN` or pass `--plan PLAN`; list them with `map plans`",
        )),
    }
}

/// Load plan `id` for editing, with this participant's actor id.
pub fn load_plan(tx: &WriteTx<'_>, id: &str) -> Result<PlanDoc> {
    let Some(doc) = tx.load_doc(id)? else {
        return Err(
            CliError::user(format!("plan {id} has no document in the database"))
                .hint("sync it again with `map sync`"),
        );
    };
    let mut plan = PlanDoc::from_doc(doc)?;
    plan.doc_mut().set_actor(context::actor(tx)?);
    Ok(plan)
}

/// What [`save_plan`] did.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The store's report.
    #[allow(dead_code)] // for sync (net.rs): heads before and after
    pub outcome: SaveOutcome,
    /// Messages of the changes this save added, oldest first.
    pub messages: Vec<String>,
    /// The view now cached.
    pub view: PlanView,
}

/// Save `plan` as plan `id` inside `tx`: the document increment, the
/// recomputed view for `today`, the new history rows and the plan row
/// (title, `updated_at_ms`). Everything commits or nothing does.
///
/// The view is recomputed even when nothing changed, so a save also
/// refreshes a stale or missing cache.
pub fn save_plan(
    tx: &WriteTx<'_>,
    id: &str,
    plan: &mut PlanDoc,
    today: chrono::NaiveDate,
    updated_at_ms: i64,
) -> Result<Saved> {
    let outcome = tx.save_doc(id, plan.doc_mut())?;
    let view = plan.view(today)?;
    tx.put_view(id, &outcome.heads, &encode_view(&view)?)?;
    let rows = HistoryRow::since(plan.doc_mut(), &outcome.previous_heads);
    tx.append_history(id, &rows)?;
    let messages = rows.iter().filter_map(|r| r.message.clone()).collect();
    // Keep the last update time when nothing changed (a cache refresh).
    let updated = match tx.plan(id)? {
        Some(row) if !outcome.changed() && !row.title.is_empty() => row.updated_at_ms,
        _ => updated_at_ms,
    };
    tx.set_plan_meta(id, &plan.title(), updated)?;
    Ok(Saved {
        outcome,
        messages,
        view,
    })
}

/// The cached view of plan `id`, refreshed for `today`. Falls back to
/// loading the document only when the cache is missing, stale or unreadable.
pub fn read_view(tx: &ReadTx<'_>, id: &str, today: chrono::NaiveDate) -> Result<PlanView> {
    if let Some(cached) = tx.get_view(id)?
        && cached.is_current()
        && let Some(mut view) = decode_view(&cached.view)
    {
        refresh_for_today(&mut view, today);
        return Ok(view);
    }
    let Some(doc) = tx.load_doc(id)? else {
        return Err(
            CliError::user(format!("plan {id} has no document in the database"))
                .hint("sync it again with `map sync`"),
        );
    };
    let mut plan = PlanDoc::from_doc(doc)?;
    Ok(plan.view(today)?)
}

/// Recompute the date-dependent flags of a cached view for `today` (the
/// view was derived on the day of the last change).
pub fn refresh_for_today(view: &mut PlanView, today: chrono::NaiveDate) {
    if view.today == today {
        return;
    }
    view.today = today;
    for t in &mut view.tasks {
        t.overdue = map_model::insights::is_overdue(t.status, t.due, today);
    }
    for m in &mut view.milestones {
        // Same rule as the model's view.
        m.overdue = m.due.is_some_and(|d| d < today) && m.progress.done < m.progress.total;
    }
}

/// A plan in `map plans --json`.
#[derive(Debug, Serialize)]
pub struct PlanSummary {
    /// Document id.
    pub id: String,
    /// `automerge:` URL.
    pub url: String,
    /// Title.
    pub title: String,
    /// Last local update (ms since the epoch).
    pub updated_at_ms: i64,
    /// Heads, sorted hex.
    pub heads: Vec<String>,
    /// Whether this is the current plan.
    pub current: bool,
}

impl PlanSummary {
    /// Build from a store row.
    pub fn new(row: &PlanRow, current: bool) -> PlanSummary {
        PlanSummary {
            id: row.id.clone(),
            url: format!("automerge:{}", row.id),
            title: row.title.clone(),
            updated_at_ms: row.updated_at_ms,
            heads: row.heads.iter().map(|h| h.to_string()).collect(),
            current,
        }
    }
}

/// Run `f` on the target plan inside one write transaction and save the
/// result with [`save_plan`]. `f` gets the plan and the author. Returns
/// `f`'s value and what was saved; the caller prints after this returns,
/// that is after the commit.
pub fn edit_plan<T>(
    ctx: &mut Context,
    f: impl FnOnce(&mut PlanDoc, &Edit) -> Result<T>,
) -> Result<(T, Saved)> {
    let plan_arg = ctx.plan_arg.clone();
    let clock = ctx.clock;
    ctx.store()?.write(|tx| {
        let row = target_plan(tx, plan_arg.as_deref())?;
        let mut plan = load_plan(tx, &row.id)?;
        let edit = Edit {
            by: context::identity(tx)?,
            now: clock.now_ms,
            today: clock.today,
        };
        let out = f(&mut plan, &edit)?;
        let saved = save_plan(tx, &row.id, &mut plan, clock.today, clock.now_ms)?;
        Ok((out, saved))
    })
}

/// Who edits, and when.
#[derive(Debug, Clone)]
pub struct Edit {
    /// The author.
    pub by: map_model::Identity,
    /// Now (ms).
    pub now: i64,
    /// Today.
    pub today: chrono::NaiveDate,
}
