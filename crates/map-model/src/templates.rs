//! Built-in plan templates: `basic`, `simple`, `advanced` and `saas`.
//!
//! A template is plain data ([`Template`]): placeholder people for the
//! standard roles on each side, milestones, tasks with owners, dates and
//! dependencies, and (for `advanced`) risks. The caller applies it to a new
//! plan with the ordinary edit methods, so a templated plan is made of the
//! same changes a user could have typed.
//!
//! Dates are computed from `today` and the go-live date:
//! - `basic` follows the classic short plan by relative days (D0 demo
//!   environment ... D+15 contract signed), then kickoff and go-live;
//! - `simple` lists only the key deliverables, for fast deals;
//! - `advanced` is `basic` plus stakeholder communication (weekly syncs,
//!   executive alignment) and a risk register;
//! - `saas` runs the enterprise SaaS stages (discovery -> technical
//!   validation -> business case -> security review -> legal -> procurement
//!   -> signature -> kickoff -> go-live), planned backwards from go-live.
//!
//! Dates that would fall before today are moved to today (a go-live that
//! close leaves no slack, and the plan shows it).

use std::collections::HashMap;

use chrono::{Days, NaiveDate};

use crate::error::ModelError;
use crate::identity::{Identity, Side};
use crate::plan::{NewPerson, NewRisk, NewTask, PlanDoc};
use crate::schema::{Level, Priority, RiskStatus, TaskKind};

/// Names of the built-in templates, in the order `map init --help` lists them.
pub const NAMES: &[&str] = &["basic", "simple", "advanced", "saas"];

/// A template name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown template '{0}'; available templates: basic, simple, advanced, saas")]
pub struct UnknownTemplate(pub String);

/// A placeholder person for a standard role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePerson {
    /// Key other template items use to refer to this person.
    pub key: &'static str,
    /// Placeholder name, e.g. `Champion (buyer)`.
    pub name: String,
    /// Side of the deal.
    pub side: Side,
    /// Standard role (one of [`crate::schema::KNOWN_ROLES`]).
    pub role: String,
}

/// A milestone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMilestone {
    /// Key tasks use to refer to this milestone.
    pub key: &'static str,
    /// Title.
    pub title: String,
    /// Target date.
    pub due: NaiveDate,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateTask {
    /// Key other tasks use to depend on this one.
    pub key: &'static str,
    /// Title.
    pub title: String,
    /// Description (may be empty).
    pub description: String,
    /// Key of its milestone.
    pub milestone: Option<&'static str>,
    /// Key of its owner.
    pub owner: Option<&'static str>,
    /// Start date.
    pub start: Option<NaiveDate>,
    /// Due date.
    pub due: Option<NaiveDate>,
    /// Kind of task.
    pub kind: TaskKind,
    /// Priority.
    pub priority: Priority,
    /// Keys of tasks this one depends on (always earlier in the list).
    pub after: Vec<&'static str>,
}

/// A risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRisk {
    /// What could go wrong.
    pub title: String,
    /// Impact if it happens.
    pub impact: Level,
    /// How likely it is.
    pub likelihood: Level,
    /// What the plan does about it.
    pub mitigation: String,
    /// Key of its owner.
    pub owner: Option<&'static str>,
}

/// A complete template, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Template name.
    pub name: &'static str,
    /// Suggested objective (used when the user gives none).
    pub objective: String,
    /// Suggested success criteria.
    pub success_criteria: String,
    /// Target signature date.
    pub signature_date: Option<NaiveDate>,
    /// Target go-live date.
    pub go_live: NaiveDate,
    /// Placeholder people, in order.
    pub people: Vec<TemplatePerson>,
    /// Milestones, in order.
    pub milestones: Vec<TemplateMilestone>,
    /// Tasks, in order; dependencies only point backwards.
    pub tasks: Vec<TemplateTask>,
    /// Risks, in order.
    pub risks: Vec<TemplateRisk>,
}

impl Template {
    /// The placeholder person with this key.
    pub fn person(&self, key: &str) -> Option<&TemplatePerson> {
        self.people.iter().find(|p| p.key == key)
    }
}

/// Build template `name` for a plan starting `today`, aiming at `go_live`
/// (a default is chosen per template when `None`).
pub fn build(
    name: &str,
    today: NaiveDate,
    go_live: Option<NaiveDate>,
) -> Result<Template, UnknownTemplate> {
    match name.trim().to_ascii_lowercase().as_str() {
        "basic" => Ok(basic(today, go_live, false)),
        "simple" => Ok(simple(today, go_live)),
        "advanced" => Ok(basic(today, go_live, true)),
        "saas" => Ok(saas(today, go_live)),
        _ => Err(UnknownTemplate(name.to_string())),
    }
}

/// Add everything in `template` to `plan`, one change per item, as `by` at
/// `now`. The objective and success criteria are set only when the plan has
/// none yet; the go-live and signature dates always.
pub fn apply(
    plan: &mut PlanDoc,
    by: &Identity,
    now: i64,
    today: NaiveDate,
    template: &Template,
    objective_is_set: bool,
) -> Result<(), ModelError> {
    if !objective_is_set {
        plan.set_objective(by, now, &template.objective)?;
    }
    plan.set_success_criteria(by, now, &template.success_criteria)?;
    plan.set_signature_date(by, now, template.signature_date)?;
    plan.set_go_live(by, now, Some(template.go_live))?;
    let mut people = HashMap::new();
    for p in &template.people {
        let id = plan.add_person(
            by,
            now,
            NewPerson {
                name: p.name.clone(),
                email: String::new(),
                side: p.side,
                role: p.role.clone(),
            },
        )?;
        people.insert(p.key, id);
    }
    let mut milestones = HashMap::new();
    for m in &template.milestones {
        let id = plan.add_milestone(by, now, &m.title, Some(m.due))?;
        milestones.insert(m.key, id);
    }
    let mut tasks: HashMap<&str, String> = HashMap::new();
    for t in &template.tasks {
        let id = plan.add_task(
            by,
            now,
            today,
            NewTask {
                title: t.title.clone(),
                description: t.description.clone(),
                milestone: t.milestone.and_then(|k| milestones.get(k).cloned()),
                owner: t.owner.and_then(|k| people.get(k).cloned()),
                start: t.start,
                due: t.due,
                kind: t.kind,
                priority: t.priority,
                deps: t
                    .after
                    .iter()
                    .filter_map(|k| tasks.get(k).cloned())
                    .collect(),
                ..NewTask::default()
            },
        )?;
        tasks.insert(t.key, id);
    }
    for r in &template.risks {
        plan.add_risk(
            by,
            now,
            NewRisk {
                title: r.title.clone(),
                impact: r.impact,
                likelihood: r.likelihood,
                mitigation: r.mitigation.clone(),
                owner: r.owner.and_then(|k| people.get(k).cloned()),
                status: RiskStatus::Open,
            },
        )?;
    }
    Ok(())
}

/// One-line description of each template, for help texts.
pub fn describe(name: &str) -> Option<&'static str> {
    Some(match name {
        "basic" => {
            "action items with owners, deadlines and dependencies (15-day plan to signature)"
        }
        "simple" => "key deliverables only, for fast deals",
        "advanced" => "basic plus risk management and stakeholder communication",
        "saas" => "enterprise SaaS stages planned backwards from go-live",
        _ => return None,
    })
}

/// Date arithmetic that never goes before `today` and never overflows.
struct Clock {
    today: NaiveDate,
}

impl Clock {
    fn plus(&self, days: u64) -> NaiveDate {
        self.today
            .checked_add_days(Days::new(days))
            .unwrap_or(self.today)
    }

    fn before(&self, anchor: NaiveDate, days: u64) -> NaiveDate {
        anchor
            .checked_sub_days(Days::new(days))
            .unwrap_or(self.today)
            .max(self.today)
    }
}

fn person(key: &'static str, role: &str, side: Side) -> TemplatePerson {
    let mut label = role.to_string();
    if let Some(first) = label.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    TemplatePerson {
        key,
        name: format!("{label} ({})", side.as_str()),
        side,
        role: role.to_string(),
    }
}

fn ms(key: &'static str, title: &str, due: NaiveDate) -> TemplateMilestone {
    TemplateMilestone {
        key,
        title: title.to_string(),
        due,
    }
}

struct TaskBuilder(TemplateTask);

fn task(
    key: &'static str,
    title: &str,
    milestone: &'static str,
    owner: &'static str,
) -> TaskBuilder {
    TaskBuilder(TemplateTask {
        key,
        title: title.to_string(),
        description: String::new(),
        milestone: Some(milestone),
        owner: Some(owner),
        start: None,
        due: None,
        kind: TaskKind::Task,
        priority: Priority::Medium,
        after: Vec::new(),
    })
}

impl TaskBuilder {
    fn due(mut self, d: NaiveDate) -> Self {
        self.0.due = Some(d);
        self
    }
    fn start(mut self, d: NaiveDate) -> Self {
        self.0.start = Some(d);
        self
    }
    fn kind(mut self, k: TaskKind) -> Self {
        self.0.kind = k;
        self
    }
    fn high(mut self) -> Self {
        self.0.priority = Priority::High;
        self
    }
    fn after(mut self, keys: &[&'static str]) -> Self {
        self.0.after.extend_from_slice(keys);
        self
    }
    fn desc(mut self, d: &str) -> Self {
        self.0.description = d.to_string();
        self
    }
    fn done(self) -> TemplateTask {
        self.0
    }
}

fn risk(
    title: &str,
    impact: Level,
    likelihood: Level,
    mitigation: &str,
    owner: &'static str,
) -> TemplateRisk {
    TemplateRisk {
        title: title.to_string(),
        impact,
        likelihood,
        mitigation: mitigation.to_string(),
        owner: Some(owner),
    }
}

/// The classic short plan by relative days, optionally with communication
/// and risks (`advanced`).
fn basic(today: NaiveDate, go_live: Option<NaiveDate>, advanced: bool) -> Template {
    let c = Clock { today };
    let go_live = go_live.unwrap_or_else(|| c.plus(45));
    let signature = c.plus(15);
    let mut people = vec![
        person("champion", "champion", Side::Buyer),
        person("eb", "economic buyer", Side::Buyer),
        person("legal_b", "legal", Side::Buyer),
        person("security_b", "security", Side::Buyer),
        person("ae", "account executive", Side::Seller),
        person("se", "solutions engineer", Side::Seller),
    ];
    if advanced {
        people.push(person("procurement", "procurement", Side::Buyer));
        people.push(person("cs", "customer success", Side::Seller));
        people.push(person("leadership", "leadership", Side::Seller));
    }
    let milestones = vec![
        ms("evaluation", "Evaluation", c.plus(7)),
        ms("decision", "Decision", c.plus(14)),
        ms("contract", "Contract signed", signature),
        ms("golive", "Go-live", go_live),
    ];
    let mut tasks = vec![
        task("demo", "Demo environment ready", "evaluation", "se")
            .due(c.plus(0))
            .done(),
        task(
            "secq",
            "Security questionnaire returned",
            "evaluation",
            "security_b",
        )
        .due(c.plus(3))
        .after(&["demo"])
        .done(),
        task("proposal", "Proposal sent", "evaluation", "ae")
            .due(c.plus(5))
            .done(),
        task(
            "present",
            "Champion presents internally",
            "evaluation",
            "champion",
        )
        .due(c.plus(7))
        .kind(TaskKind::Meeting)
        .after(&["proposal"])
        .done(),
        task("redlines", "Legal redlines returned", "decision", "legal_b")
            .due(c.plus(10))
            .after(&["proposal"])
            .done(),
        task(
            "feedback",
            "Address feedback and redlines",
            "decision",
            "ae",
        )
        .due(c.plus(12))
        .after(&["redlines", "secq"])
        .done(),
        task("signoff", "Economic buyer sign-off", "decision", "eb")
            .due(c.plus(14))
            .kind(TaskKind::Approval)
            .high()
            .after(&["feedback", "present"])
            .done(),
        task("sign", "Contract signed", "contract", "eb")
            .due(signature)
            .kind(TaskKind::Approval)
            .high()
            .after(&["signoff"])
            .done(),
        task("kickoff", "Kickoff meeting", "golive", "ae")
            .due(c.before(go_live, 21).max(c.plus(16)))
            .kind(TaskKind::Meeting)
            .after(&["sign"])
            .done(),
        task("golive", "Go-live", "golive", "champion")
            .due(go_live)
            .high()
            .after(&["kickoff"])
            .done(),
    ];
    let mut risks = Vec::new();
    if advanced {
        let weekly = [
            ("sync1", "Weekly sync: plan review", "evaluation", 4),
            ("sync2", "Weekly sync: plan review", "decision", 11),
        ];
        for (key, title, milestone, day) in weekly {
            tasks.push(
                task(key, title, milestone, "ae")
                    .due(c.plus(day))
                    .kind(TaskKind::Meeting)
                    .desc("Walk the plan together: overdue items, blockers, next steps.")
                    .done(),
            );
        }
        tasks.push(
            task("exec", "Executive alignment call", "decision", "leadership")
                .due(c.plus(9))
                .kind(TaskKind::Meeting)
                .desc("Seller leadership meets the economic buyer to confirm goals and timeline.")
                .after(&["present"])
                .done(),
        );
        tasks.push(
            task("po", "Purchase order issued", "contract", "procurement")
                .due(signature)
                .kind(TaskKind::Approval)
                .after(&["signoff"])
                .done(),
        );
        tasks.push(
            task("handoff", "Hand-off to customer success", "golive", "cs")
                .due(c.before(go_live, 14).max(c.plus(17)))
                .after(&["sign"])
                .done(),
        );
        risks = vec![
            risk(
                "Economic buyer not engaged before sign-off",
                Level::High,
                Level::Medium,
                "Executive alignment call in week 2; champion briefs the economic buyer weekly.",
                "champion",
            ),
            risk(
                "Security review takes longer than planned",
                Level::High,
                Level::Medium,
                "Send the security package with the demo; book a review call early.",
                "se",
            ),
            risk(
                "Legal redlines stall on liability terms",
                Level::Medium,
                Level::Medium,
                "Share standard fallback positions up front.",
                "ae",
            ),
            risk(
                "Procurement requires a new vendor onboarding",
                Level::Medium,
                Level::Low,
                "Ask procurement for their vendor checklist in week 1.",
                "procurement",
            ),
        ];
    }
    if advanced {
        // Keep the list in plan order: grouped by milestone (a stable sort,
        // so dependencies still point backwards).
        tasks.sort_by_key(|t| milestones.iter().position(|m| Some(m.key) == t.milestone));
    }
    Template {
        name: if advanced { "advanced" } else { "basic" },
        objective: "Sign the agreement and go live on the agreed date".to_string(),
        success_criteria: "Contract signed, kickoff held, first team live".to_string(),
        signature_date: Some(signature),
        go_live,
        people,
        milestones,
        tasks,
        risks,
    }
}

/// Key deliverables only.
fn simple(today: NaiveDate, go_live: Option<NaiveDate>) -> Template {
    let c = Clock { today };
    let go_live = go_live.unwrap_or_else(|| c.plus(30));
    let signature = c.before(go_live, 14).max(c.plus(7));
    let people = vec![
        person("champion", "champion", Side::Buyer),
        person("eb", "economic buyer", Side::Buyer),
        person("ae", "account executive", Side::Seller),
    ];
    let milestones = vec![
        ms("agree", "Agreement", signature),
        ms("live", "Go-live", go_live),
    ];
    let tasks = vec![
        task("proposal", "Proposal sent", "agree", "ae")
            .due(c.plus(2))
            .done(),
        task("approve", "Proposal approved", "agree", "eb")
            .due(c.before(signature, 2).max(c.plus(3)))
            .kind(TaskKind::Approval)
            .after(&["proposal"])
            .done(),
        task("sign", "Contract signed", "agree", "eb")
            .due(signature)
            .kind(TaskKind::Approval)
            .high()
            .after(&["approve"])
            .done(),
        task("kickoff", "Kickoff meeting", "live", "ae")
            .due(c.before(go_live, 7).max(signature))
            .kind(TaskKind::Meeting)
            .after(&["sign"])
            .done(),
        task("golive", "Go-live", "live", "champion")
            .due(go_live)
            .high()
            .after(&["kickoff"])
            .done(),
    ];
    Template {
        name: "simple",
        objective: "Close the deal and go live quickly".to_string(),
        success_criteria: "Contract signed and users live".to_string(),
        signature_date: Some(signature),
        go_live,
        people,
        milestones,
        tasks,
        risks: Vec::new(),
    }
}

/// Enterprise SaaS stages, planned backwards from go-live.
fn saas(today: NaiveDate, go_live: Option<NaiveDate>) -> Template {
    let c = Clock { today };
    let go_live = go_live.unwrap_or_else(|| c.plus(16 * 7));
    let signature = c.before(go_live, 42);
    let people = vec![
        person("champion", "champion", Side::Buyer),
        person("eb", "economic buyer", Side::Buyer),
        person("tech", "technical evaluator", Side::Buyer),
        person("security_b", "security", Side::Buyer),
        person("legal_b", "legal", Side::Buyer),
        person("procurement", "procurement", Side::Buyer),
        person("ae", "account executive", Side::Seller),
        person("se", "solutions engineer", Side::Seller),
        person("legal_s", "legal", Side::Seller),
        person("cs", "customer success", Side::Seller),
    ];
    let d_discovery = c.before(signature, 56);
    let d_validation = c.before(signature, 35);
    let d_business = c.before(signature, 28);
    let d_security = c.before(signature, 14);
    let d_legal = c.before(signature, 7);
    let d_procurement = c.before(signature, 2);
    let d_kickoff = c.before(go_live, 35);
    let milestones = vec![
        ms("discovery", "Discovery", d_discovery),
        ms("validation", "Technical validation", d_validation),
        ms("business", "Business case approved", d_business),
        ms("security", "Security review", d_security),
        ms("legal", "Legal / MSA", d_legal),
        ms("procurement", "Procurement / PO", d_procurement),
        ms("signature", "Signature", signature),
        ms("kickoff", "Kickoff", d_kickoff),
        ms("golive", "Go-live", go_live),
    ];
    let tasks = vec![
        task(
            "disc_call",
            "Discovery call: goals, pains, success criteria",
            "discovery",
            "ae",
        )
        .due(c.before(d_discovery, 7))
        .kind(TaskKind::Meeting)
        .done(),
        task(
            "disc_stake",
            "Map stakeholders and decision process",
            "discovery",
            "champion",
        )
        .due(d_discovery)
        .after(&["disc_call"])
        .done(),
        task(
            "poc_scope",
            "Agree proof-of-concept scope and success criteria",
            "validation",
            "tech",
        )
        .start(c.before(d_discovery, 0))
        .due(c.before(d_validation, 14))
        .after(&["disc_stake"])
        .done(),
        task(
            "poc_env",
            "Proof-of-concept environment ready",
            "validation",
            "se",
        )
        .due(c.before(d_validation, 10))
        .after(&["poc_scope"])
        .done(),
        task(
            "poc_result",
            "Technical validation sign-off",
            "validation",
            "tech",
        )
        .due(d_validation)
        .kind(TaskKind::Approval)
        .high()
        .after(&["poc_env"])
        .done(),
        task(
            "bc_draft",
            "Business case and ROI drafted",
            "business",
            "ae",
        )
        .due(c.before(d_business, 4))
        .after(&["poc_result"])
        .done(),
        task(
            "bc_approve",
            "Economic buyer approves business case",
            "business",
            "eb",
        )
        .due(d_business)
        .kind(TaskKind::Approval)
        .high()
        .after(&["bc_draft"])
        .done(),
        task(
            "sec_package",
            "Send security package (SOC 2, pen test, DPA)",
            "security",
            "se",
        )
        .due(c.before(d_security, 14))
        .after(&["poc_scope"])
        .done(),
        task(
            "sec_questionnaire",
            "Security questionnaire completed",
            "security",
            "security_b",
        )
        .due(c.before(d_security, 5))
        .after(&["sec_package"])
        .done(),
        task("sec_approve", "InfoSec approval", "security", "security_b")
            .due(d_security)
            .kind(TaskKind::Approval)
            .high()
            .after(&["sec_questionnaire"])
            .done(),
        task("msa_send", "Send MSA and order form", "legal", "legal_s")
            .due(c.before(d_legal, 14))
            .after(&["bc_approve"])
            .done(),
        task("redlines", "Legal redlines returned", "legal", "legal_b")
            .due(c.before(d_legal, 7))
            .after(&["msa_send"])
            .done(),
        task(
            "legal_agree",
            "Final contract language agreed",
            "legal",
            "legal_s",
        )
        .due(d_legal)
        .kind(TaskKind::Approval)
        .after(&["redlines"])
        .done(),
        task(
            "vendor",
            "Vendor onboarding in procurement system",
            "procurement",
            "procurement",
        )
        .due(c.before(d_procurement, 5))
        .after(&["bc_approve"])
        .done(),
        task("po", "Purchase order issued", "procurement", "procurement")
            .due(d_procurement)
            .kind(TaskKind::Approval)
            .after(&["vendor", "legal_agree", "sec_approve"])
            .done(),
        task("sign", "Contract signed", "signature", "eb")
            .due(signature)
            .kind(TaskKind::Approval)
            .high()
            .after(&["po"])
            .done(),
        task(
            "kickoff_plan",
            "Implementation plan agreed",
            "kickoff",
            "cs",
        )
        .due(c.before(d_kickoff, 3).max(signature))
        .after(&["sign"])
        .done(),
        task("kickoff_meeting", "Kickoff meeting", "kickoff", "cs")
            .due(d_kickoff)
            .kind(TaskKind::Meeting)
            .after(&["kickoff_plan"])
            .done(),
        task(
            "config",
            "Configuration and integrations done",
            "golive",
            "se",
        )
        .due(c.before(go_live, 7))
        .after(&["kickoff_meeting"])
        .done(),
        task("training", "End-user training", "golive", "cs")
            .due(c.before(go_live, 3))
            .kind(TaskKind::Meeting)
            .after(&["config"])
            .done(),
        task("golive", "Go-live", "golive", "champion")
            .due(go_live)
            .high()
            .after(&["training"])
            .done(),
    ];
    Template {
        name: "saas",
        objective: "Roll out the platform by the go-live date".to_string(),
        success_criteria: "Signed agreement, secure deployment, teams live and using it"
            .to_string(),
        signature_date: Some(signature),
        go_live,
        people,
        milestones,
        tasks,
        risks: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()
    }

    fn check(t: &Template, roomy: bool) {
        let today = today();
        for (i, task) in t.tasks.iter().enumerate() {
            assert!(!task.title.is_empty());
            if let Some(m) = task.milestone {
                assert!(
                    t.milestones.iter().any(|x| x.key == m),
                    "{}: milestone {m}",
                    t.name
                );
            }
            if let Some(o) = task.owner {
                assert!(t.person(o).is_some(), "{}: owner {o}", t.name);
            }
            for dep in &task.after {
                let j = t.tasks.iter().position(|x| x.key == *dep);
                assert!(
                    matches!(j, Some(j) if j < i),
                    "{}: dep {dep} of {}",
                    t.name,
                    task.key
                );
            }
            let due = task.due.expect("every template task has a due date");
            assert!(
                due >= today,
                "{}: {} due {due} before today",
                t.name,
                task.key
            );
            if roomy {
                assert!(
                    due <= t.go_live,
                    "{}: {} due after go-live",
                    t.name,
                    task.key
                );
            }
        }
        let mut keys: Vec<_> = t.tasks.iter().map(|x| x.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), t.tasks.len(), "{}: duplicate task keys", t.name);
        for r in &t.risks {
            if let Some(o) = r.owner {
                assert!(t.person(o).is_some(), "{}: risk owner {o}", t.name);
            }
        }
        for p in &t.people {
            assert!(
                p.name.ends_with(&format!("({})", p.side.as_str())),
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn all_templates_are_consistent() {
        for name in NAMES {
            let t = build(name, today(), None).unwrap();
            check(&t, true);
            assert!(describe(name).is_some());
            let near = today() + chrono::Duration::days(5);
            let tight = build(name, today(), Some(near)).unwrap();
            assert_eq!(tight.go_live, near, "the user's go-live is kept");
            check(&tight, false);
        }
    }

    #[test]
    fn apply_builds_a_real_plan() {
        let by = Identity::new("Ana", "ana@seller.com", Side::Seller);
        for name in NAMES {
            let t = build(name, today(), None).unwrap();
            let mut plan = PlanDoc::create("Acme", &by, 1).unwrap();
            apply(&mut plan, &by, 2, today(), &t, false).unwrap();
            let view = plan.view(today()).unwrap();
            assert_eq!(view.tasks.len(), t.tasks.len(), "{name}");
            assert_eq!(view.milestones.len(), t.milestones.len(), "{name}");
            assert_eq!(view.people.len(), t.people.len(), "{name}");
            assert_eq!(view.risks.len(), t.risks.len(), "{name}");
            assert_eq!(view.header.go_live, Some(t.go_live));
            let deps: usize = view.tasks.iter().map(|x| x.deps.len()).sum();
            let want: usize = t.tasks.iter().map(|x| x.after.len()).sum();
            assert_eq!(deps, want, "{name}");
            assert!(view.warnings.is_empty(), "{name}: {:?}", view.warnings);
        }
    }

    #[test]
    fn unknown_template_lists_names() {
        let e = build("huge", today(), None).unwrap_err().to_string();
        assert!(e.contains("'huge'") && e.contains("saas"), "{e}");
    }

    #[test]
    fn basic_follows_relative_days() {
        let t = build("basic", today(), None).unwrap();
        let due = |k: &str| t.tasks.iter().find(|x| x.key == k).unwrap().due.unwrap();
        assert_eq!(due("demo"), today());
        assert_eq!(due("secq"), today() + chrono::Duration::days(3));
        assert_eq!(due("sign"), today() + chrono::Duration::days(15));
        assert_eq!(t.people[0].name, "Champion (buyer)");
        assert!(t.risks.is_empty());
    }

    #[test]
    fn advanced_adds_risks_and_communication() {
        let t = build("advanced", today(), None).unwrap();
        assert!(t.risks.len() >= 3);
        assert!(
            t.tasks
                .iter()
                .filter(|x| x.kind == TaskKind::Meeting)
                .count()
                >= 4
        );
        let basic = build("basic", today(), None).unwrap();
        assert!(t.tasks.len() > basic.tasks.len());
    }

    #[test]
    fn simple_is_short() {
        let t = build("simple", today(), None).unwrap();
        assert!(t.tasks.len() <= 6);
        assert!(t.milestones.len() <= 3);
    }

    #[test]
    fn saas_is_planned_backwards_from_go_live() {
        let go = NaiveDate::from_ymd_opt(2027, 6, 1).unwrap();
        let t = build("saas", today(), Some(go)).unwrap();
        assert_eq!(t.go_live, go);
        let titles: Vec<_> = t.milestones.iter().map(|m| m.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Discovery",
                "Technical validation",
                "Business case approved",
                "Security review",
                "Legal / MSA",
                "Procurement / PO",
                "Signature",
                "Kickoff",
                "Go-live"
            ]
        );
        let dues: Vec<_> = t.milestones.iter().map(|m| m.due).collect();
        let mut sorted = dues.clone();
        sorted.sort();
        assert_eq!(dues, sorted, "stages are in date order");
        assert_eq!(t.milestones.last().unwrap().due, go);
        assert_eq!(t.signature_date, Some(go - chrono::Duration::days(42)));
        assert!(t.people.iter().any(|p| p.name == "Champion (buyer)"));
        assert!(
            t.people
                .iter()
                .any(|p| p.name == "Account executive (seller)")
        );
    }
}
