//! Command dispatch, plus the small argument helpers every command group
//! shares (dates, "none" to clear a field, enum conversions, confirmations).

pub mod analysis;
pub mod baseline;
pub mod dep;
pub mod doctor;
pub mod identity;
pub mod log;
pub mod milestone;
pub mod person;
pub mod plan;
pub mod risk;
pub mod task;
pub mod verify;

use std::io::Write;

use chrono::NaiveDate;
use map_model::identity::Side;
use map_model::schema::{Level, Priority, RiskStatus, TaskKind};

use crate::cli::{Cli, Command, KindArg, PriorityArg, RiskStatusArg, SideArg};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::plans::Saved;

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let mut ctx = Context::new(cli.plan.clone())?;
    match cli.command {
        Command::Whoami => identity::whoami(&mut ctx),
        Command::Identity(cmd) => identity::run(&mut ctx, cmd),
        Command::Init(args) => plan::init(&mut ctx, args),
        Command::Plans(a) => plan::list(&mut ctx, a.json),
        Command::Use { plan } => plan::use_plan(&mut ctx, &plan),
        Command::Show(a) => plan::show(&mut ctx, a.json),
        Command::Task(cmd) => task::run(&mut ctx, cmd),
        Command::Milestone(cmd) => milestone::run(&mut ctx, cmd),
        Command::Person(cmd) => person::run(&mut ctx, cmd),
        Command::Risk(cmd) => risk::run(&mut ctx, cmd),
        Command::Dep(cmd) => dep::run(&mut ctx, cmd),
        Command::Comment { id, text } => dep::comment(&mut ctx, &id, &text),
        Command::Log(args) => log::log(&mut ctx, args),
        Command::Conflicts(a) => log::conflicts(&mut ctx, a.json),
        Command::Path(a) => analysis::path(&mut ctx, a.json),
        Command::Whatif(args) => analysis::whatif(&mut ctx, args),
        Command::Next(args) => analysis::next(&mut ctx, args),
        Command::Overdue(a) => analysis::overdue(&mut ctx, a.json),
        Command::Blocked(a) => analysis::blocked(&mut ctx, a.json),
        Command::Waiting(args) => analysis::waiting(&mut ctx, args),
        Command::Stale(args) => analysis::stale(&mut ctx, args),
        Command::Check(args) => analysis::check(&mut ctx, args),
        Command::Baseline(cmd) => baseline::run(&mut ctx, cmd),
        Command::Diff { name, json } => baseline::diff(&mut ctx, &name, json),
        Command::Timeline(args) => analysis::timeline(&mut ctx, args),
        Command::Export(args) => crate::export::run(&mut ctx, args),
        Command::Import(args) => crate::import::run(&mut ctx, args),
        Command::Remote(cmd) => crate::net::remote(&mut ctx, cmd),
        Command::Sync(args) => crate::net::sync(&mut ctx, args),
        Command::Share(args) => crate::net::share(&mut ctx, args),
        Command::Join { invite, ca_file } => {
            crate::net::join(&mut ctx, &invite, ca_file.as_deref())
        }
        Command::Demo => crate::net::demo(&mut ctx),
        Command::Doctor(args) => doctor::run(&mut ctx, args),
    }
}

/// Parse a user date relative to today.
pub fn date(s: &str, today: NaiveDate) -> Result<NaiveDate> {
    Ok(map_model::dates::parse_date(s, today)?)
}

/// Parse an optional date argument.
pub fn opt_date(s: Option<&str>, today: NaiveDate) -> Result<Option<NaiveDate>> {
    s.map(|s| date(s, today)).transpose()
}

/// Whether an edit value means "clear this field".
pub fn is_clear(s: &str) -> bool {
    matches!(s.trim().to_ascii_lowercase().as_str(), "" | "none" | "-")
}

/// An edit of an optional date: `None` keep, `Some(None)` clear.
pub fn edit_date(s: Option<&str>, today: NaiveDate) -> Result<Option<Option<NaiveDate>>> {
    match s {
        None => Ok(None),
        Some(s) if is_clear(s) => Ok(Some(None)),
        Some(s) => Ok(Some(Some(date(s, today)?))),
    }
}

/// Reject an empty title or name before anything is opened.
pub fn non_empty(what: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(CliError::user(format!("the {what} must not be empty"))
            .hint(format!("give a {what}, e.g. \"Security review\"")));
    }
    Ok(())
}

impl From<SideArg> for Side {
    fn from(s: SideArg) -> Side {
        match s {
            SideArg::Seller => Side::Seller,
            SideArg::Buyer => Side::Buyer,
            SideArg::Other => Side::Other,
        }
    }
}

impl From<KindArg> for TaskKind {
    fn from(k: KindArg) -> TaskKind {
        match k {
            KindArg::Task => TaskKind::Task,
            KindArg::Meeting => TaskKind::Meeting,
            KindArg::Approval => TaskKind::Approval,
        }
    }
}

impl From<PriorityArg> for Priority {
    fn from(p: PriorityArg) -> Priority {
        match p {
            PriorityArg::Low => Priority::Low,
            PriorityArg::Medium => Priority::Medium,
            PriorityArg::High => Priority::High,
        }
    }
}

impl From<PriorityArg> for Level {
    fn from(p: PriorityArg) -> Level {
        match p {
            PriorityArg::Low => Level::Low,
            PriorityArg::Medium => Level::Medium,
            PriorityArg::High => Level::High,
        }
    }
}

impl From<RiskStatusArg> for RiskStatus {
    fn from(s: RiskStatusArg) -> RiskStatus {
        match s {
            RiskStatusArg::Open => RiskStatus::Open,
            RiskStatusArg::Mitigated => RiskStatus::Mitigated,
            RiskStatusArg::Closed => RiskStatus::Closed,
        }
    }
}

/// Print the confirmation of a committed save: `saved: MESSAGE` (the last
/// change's message), or `nothing changed`.
pub fn confirm(saved: &Saved) -> Result<()> {
    let mut out = anstream::stdout().lock();
    let line = match saved.messages.last() {
        Some(m) => format!("saved: {m}"),
        None => "nothing changed".to_string(),
    };
    writeln!(out, "{line}").map_err(|e| crate::error::io_error("cannot write output", e))
}

/// Print lines to stdout (after a commit).
pub fn say(lines: &[String]) -> Result<()> {
    let mut out = anstream::stdout().lock();
    for l in lines {
        writeln!(out, "{l}").map_err(|e| crate::error::io_error("cannot write output", e))?;
    }
    Ok(())
}

/// Print a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::user(format!("cannot encode JSON: {e}")))?;
    say(&[s])
}

/// Resolve what the user typed to an entity id: the model's rules (exact
/// id, id prefix, exact title/name/email), then, when nothing matched, a
/// unique case-insensitive title or name prefix, a whole word of it, or
/// (for people) their role — so `--owner bob` finds "Bob Smith" and
/// `--milestone sec` finds "Security review".
pub fn resolve(
    plan: &map_model::PlanDoc,
    kind: map_model::schema::EntityKind,
    query: &str,
) -> Result<String, map_model::ModelError> {
    use map_model::ModelError;
    use map_model::error::Candidate;
    use map_model::schema::EntityKind;
    let err = match plan.resolve(kind, query) {
        Ok(id) => return Ok(id),
        Err(e) => e,
    };
    let not_found = matches!(
        err,
        ModelError::UnknownPerson(_)
            | ModelError::UnknownMilestone(_)
            | ModelError::UnknownTask(_)
            | ModelError::UnknownRisk(_)
    );
    let q = query.trim().to_lowercase();
    if !not_found || q.is_empty() {
        return Err(err);
    }
    let raw = plan.raw()?;
    // (id, label, extra exact words, deleted)
    let entries: Vec<(&str, &str, Option<&str>, bool)> = match kind {
        EntityKind::Person => raw
            .people
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str(), Some(p.role.as_str()), false))
            .collect(),
        EntityKind::Milestone => raw
            .milestones
            .iter()
            .map(|m| (m.id.as_str(), m.title.as_str(), None, m.deleted))
            .collect(),
        EntityKind::Task => raw
            .tasks
            .iter()
            .map(|t| (t.id.as_str(), t.title.as_str(), None, t.deleted))
            .collect(),
        EntityKind::Risk => raw
            .risks
            .iter()
            .map(|r| (r.id.as_str(), r.title.as_str(), None, false))
            .collect(),
        _ => return Err(err),
    };
    let hits = |live_only: bool| -> Vec<&(&str, &str, Option<&str>, bool)> {
        entries
            .iter()
            .filter(|(_, label, extra, deleted)| {
                if live_only && *deleted {
                    return false;
                }
                let l = label.to_lowercase();
                l.starts_with(&q)
                    || l.split(|c: char| !c.is_alphanumeric()).any(|w| w == q)
                    || extra.is_some_and(|x| x.to_lowercase() == q)
            })
            .collect()
    };
    let mut found = hits(true);
    if found.is_empty() {
        found = hits(false);
    }
    found.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)));
    match found.len() {
        0 => Err(err),
        1 => Ok(found[0].0.to_string()),
        _ => Err(ModelError::Ambiguous {
            kind,
            query: query.to_string(),
            candidates: found
                .iter()
                .map(|(id, label, _, _)| Candidate {
                    id: id.to_string(),
                    label: label.to_string(),
                })
                .collect(),
        }),
    }
}
