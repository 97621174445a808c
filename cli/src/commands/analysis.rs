//! Where the deal stands: `map path`, `map whatif`, `map next`, the reports
//! (`overdue`, `blocked`, `waiting`, `stale`), `map check` and
//! `map timeline`.
//!
//! All of them read the cached view (never the Automerge document), except
//! `stale`, which needs the document's history. The analysis itself lives in
//! `map_model::{schedule, urgency, lint, activity}`; this module only picks
//! the plan, resolves names and prints.

use map_model::PlanView;
use map_model::identity::Side;
use map_model::lint::{self, Finding, Severity};
use map_model::schedule::{self, Schedule, WhatIf};
use map_model::urgency::{self, Urgency};
use map_model::view::TaskView;
use serde::Serialize;

use crate::cli::{CheckArgs, NextArgs, StaleArgs, TimelineArgs, WaitingArgs, WhatIfArgs};
use crate::commands::plan::current_view;
use crate::commands::{print_json, say};
use crate::context::{self, Context};
use crate::error::{CliError, Result};
use crate::plans;
use crate::render;

/// Find a live task in a view: exact id, unique id prefix, exact title,
/// then a unique title prefix or whole word (case-insensitive).
pub fn resolve_task<'a>(view: &'a PlanView, query: &str) -> Result<&'a TaskView> {
    let q = query.trim().to_lowercase();
    let not_found = || {
        CliError::user(format!(
            "no task matches '{}'; list tasks with `map task list`",
            query.trim()
        ))
    };
    if q.is_empty() {
        return Err(not_found());
    }
    if let Some(t) = view.tasks.iter().find(|t| t.id == q) {
        return Ok(t);
    }
    let tries: [&dyn Fn(&TaskView) -> bool; 3] = [
        &|t| t.id.starts_with(&q),
        &|t| t.title.trim().to_lowercase() == q,
        &|t| {
            let l = t.title.to_lowercase();
            l.starts_with(&q) || l.split(|c: char| !c.is_alphanumeric()).any(|w| w == q)
        },
    ];
    for f in tries {
        let hits: Vec<&TaskView> = view.tasks.iter().filter(|t| f(t)).collect();
        match hits.len() {
            0 => continue,
            1 => return Ok(hits[0]),
            _ => {
                let list = hits
                    .iter()
                    .map(|t| format!("  {}  {}", t.id, t.title))
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(
                    CliError::user(format!("'{}' matches several tasks", query.trim()))
                        .hint(format!("give more characters of the id:\n{list}")),
                );
            }
        }
    }
    Err(not_found())
}

/// Find a person in a view: id prefix, name, email, or a unique name word.
fn resolve_person<'a>(view: &'a PlanView, query: &str) -> Result<&'a map_model::view::PersonView> {
    let q = query.trim().to_lowercase();
    let tries: [&dyn Fn(&map_model::view::PersonView) -> bool; 3] = [
        &|p| p.id == q || p.email.to_lowercase() == q || p.name.to_lowercase() == q,
        &|p| p.id.starts_with(&q),
        &|p| {
            let l = p.name.to_lowercase();
            l.starts_with(&q) || l.split(' ').any(|w| w == q) || p.role.to_lowercase() == q
        },
    ];
    if !q.is_empty() {
        for f in tries {
            let hits: Vec<_> = view.people.iter().filter(|p| f(p)).collect();
            match hits.len() {
                0 => continue,
                1 => return Ok(hits[0]),
                _ => {
                    return Err(CliError::user(format!(
                        "'{}' matches several people; give their email",
                        query.trim()
                    )));
                }
            }
        }
    }
    Err(CliError::user(format!(
        "no person matches '{}'; list people with `map person list`",
        query.trim()
    )))
}

/// The schedule and critical path, as `map path --json` prints them.
#[derive(Debug, Serialize)]
struct PathJson<'a> {
    #[serde(flatten)]
    schedule: &'a Schedule,
}

/// `map path`.
pub fn path(ctx: &mut Context, json: bool) -> Result<()> {
    let (_, view) = current_view(ctx)?;
    let s = schedule::schedule(&view);
    if json {
        return print_json(&PathJson { schedule: &s });
    }
    say(&[render::analysis::path(&view, &s)])
}

/// `map whatif`.
pub fn whatif(ctx: &mut Context, args: WhatIfArgs) -> Result<()> {
    let today = ctx.today();
    let shift =
        schedule::parse_shift(&args.shift, today).map_err(|e| CliError::user(e.to_string()))?;
    let (_, view) = current_view(ctx)?;
    let task = resolve_task(&view, &args.task)?;
    let w: WhatIf =
        schedule::what_if(&view, &task.id, shift).map_err(|e| CliError::user(e.to_string()))?;
    if args.json {
        return print_json(&w);
    }
    say(&[render::analysis::whatif(&view, task, &w)])
}

/// One entry of `map next --json`.
#[derive(Debug, Serialize)]
struct NextJson<'a> {
    #[serde(flatten)]
    urgency: &'a Urgency,
    title: &'a str,
    owner: Option<&'a str>,
    owner_name: Option<&'a str>,
    owner_side: Option<Side>,
    due: Option<chrono::NaiveDate>,
}

/// `map next`.
pub fn next(ctx: &mut Context, args: NextArgs) -> Result<()> {
    let (_, view) = current_view(ctx)?;
    let me = if args.me {
        let who = ctx.store()?.read(context::identity)?;
        let email = who.email.trim().to_lowercase();
        let person = view
            .people
            .iter()
            .find(|p| !email.is_empty() && p.email.trim().to_lowercase() == email)
            .or_else(|| {
                view.people
                    .iter()
                    .find(|p| p.name.trim().eq_ignore_ascii_case(who.name.trim()))
            })
            .ok_or_else(|| {
                CliError::user(format!(
                    "you ({}) are not a person in this plan",
                    who.author_string()
                ))
                .hint("add yourself with `map person add NAME --email EMAIL --side SIDE`")
            })?;
        Some(person.id.clone())
    } else {
        None
    };
    let owner = match &args.owner {
        Some(q) => Some(resolve_person(&view, q)?.id.clone()),
        None => me,
    };
    let side: Option<Side> = args.side.map(Side::from);
    let s = schedule::schedule(&view);
    let ranked: Vec<(Urgency, &TaskView)> = urgency::ranked(&view, &s)
        .into_iter()
        .filter(|(_, t)| owner.as_ref().is_none_or(|o| t.owner.as_ref() == Some(o)))
        .filter(|(_, t)| side.is_none_or(|sd| t.owner_side == Some(sd)))
        .collect();
    if args.json {
        let out: Vec<NextJson<'_>> = ranked
            .iter()
            .map(|(u, t)| NextJson {
                urgency: u,
                title: &t.title,
                owner: t.owner.as_deref(),
                owner_name: t.owner_name.as_deref(),
                owner_side: t.owner_side,
                due: t.due,
            })
            .collect();
        return print_json(&out);
    }
    if ranked.is_empty() {
        return say(&["nothing to do next: no open task that is ready".to_string()]);
    }
    say(&[render::analysis::next(&view, &ranked)])
}

/// `map overdue`.
pub fn overdue(ctx: &mut Context, json: bool) -> Result<()> {
    let (_, view) = current_view(ctx)?;
    let list = map_model::insights::overdue(&view);
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        return say(&["nothing is overdue".to_string()]);
    }
    say(&[render::tasks::table(&list, &view)])
}

/// `map blocked`.
pub fn blocked(ctx: &mut Context, json: bool) -> Result<()> {
    let (_, view) = current_view(ctx)?;
    let list: Vec<&TaskView> = map_model::insights::blocked(&view)
        .into_iter()
        .filter(|t| !t.status.is_closed())
        .collect();
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        return say(&["nothing is blocked".to_string()]);
    }
    say(&[render::analysis::blocked(&view, &list)])
}

/// One entry of `map waiting --json`.
#[derive(Debug, Serialize)]
struct WaitingJson<'a> {
    #[serde(flatten)]
    task: &'a TaskView,
    /// Open tasks of the other side that wait on it.
    blocks: &'a [String],
}

/// `map waiting --on SIDE`.
pub fn waiting(ctx: &mut Context, args: WaitingArgs) -> Result<()> {
    let (_, view) = current_view(ctx)?;
    let side = Side::from(args.on);
    let list = urgency::waiting_on(&view, side);
    if args.json {
        let out: Vec<WaitingJson<'_>> = list
            .iter()
            .filter_map(|w| {
                view.task(&w.id).map(|t| WaitingJson {
                    task: t,
                    blocks: &w.blocks,
                })
            })
            .collect();
        return print_json(&out);
    }
    if list.is_empty() {
        return say(&[format!("no one is waiting on the {side}")]);
    }
    say(&[render::analysis::waiting(&view, side, &list)])
}

/// One entry of `map stale`.
#[derive(Debug, Serialize)]
pub struct StaleItem {
    /// Task id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Owner name.
    pub owner_name: Option<String>,
    /// Time of the last change that touched it (ms).
    pub last_touched: i64,
    /// Who made that change.
    pub by: String,
    /// Whole days since.
    pub days: i64,
}

/// `map stale`.
pub fn stale(ctx: &mut Context, args: StaleArgs) -> Result<()> {
    let plan_arg = ctx.plan_arg.clone();
    let today = ctx.today();
    let now = ctx.now_ms();
    let (view, touched) = ctx.store()?.read(|tx| {
        let row = plans::target_plan(tx, plan_arg.as_deref())?;
        let view = plans::read_view(tx, &row.id, today)?;
        let Some(mut doc) = tx.load_doc(&row.id)? else {
            return Err(
                CliError::user(format!("plan {} has no document in the database", row.id))
                    .hint("sync it again with `map sync`"),
            );
        };
        let touched = map_model::activity::last_touched(doc.document());
        Ok::<_, CliError>((view, touched))
    })?;
    let day_ms = 86_400_000_i64;
    let limit = i64::from(args.days);
    let mut items: Vec<StaleItem> = view
        .tasks
        .iter()
        .filter(|t| !t.status.is_closed())
        .filter_map(|t| {
            let touch = touched.get(&t.id)?;
            let days = (now - touch.time).div_euclid(day_ms);
            (days >= limit).then(|| StaleItem {
                id: t.id.clone(),
                title: t.title.clone(),
                owner_name: t.owner_name.clone(),
                last_touched: touch.time,
                by: touch.author.clone(),
                days,
            })
        })
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.days));
    if args.json {
        return print_json(&items);
    }
    if items.is_empty() {
        return say(&[format!(
            "nothing is stale: every open task was touched in the last {limit} days"
        )]);
    }
    say(&[render::analysis::stale(&view, &items)])
}

/// `map check --json`.
#[derive(Debug, Serialize)]
struct CheckJson<'a> {
    findings: &'a [Finding],
    errors: usize,
    warnings: usize,
}

/// `map check`.
pub fn check(ctx: &mut Context, args: CheckArgs) -> Result<()> {
    let (_, view) = current_view(ctx)?;
    let s = schedule::schedule(&view);
    let findings = lint::check(&view, &s);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    if args.json {
        print_json(&CheckJson {
            findings: &findings,
            errors,
            warnings,
        })?;
    } else {
        say(&[render::analysis::check(&findings, errors, warnings)])?;
    }
    if args.strict && !findings.is_empty() {
        return Err(CliError::user(format!(
            "the plan has {} finding(s) (--strict)",
            findings.len()
        )));
    }
    Ok(())
}

/// `map timeline`.
pub fn timeline(ctx: &mut Context, args: TimelineArgs) -> Result<()> {
    let (_, view) = current_view(ctx)?;
    let s = schedule::schedule(&view);
    let width = match args.width {
        Some(w) if !(10..=500).contains(&w) => {
            return Err(CliError::user(format!(
                "--width {w} is out of range; use 10 to 500 columns"
            )));
        }
        Some(w) => w,
        None => 60,
    };
    say(&[render::timeline::render(&view, &s, width)])
}
