//! Whole-plan commands: `map init`, `map plans`, `map use`, `map show`.
//!
//! `show` reads only the cached view (one indexed row) and never loads the
//! Automerge document, so it stays fast on plans with long histories.

use map_model::{DocumentId, PlanDoc, PlanView, templates};
use serde::Serialize;

use crate::cli::InitArgs;
use crate::commands::{non_empty, opt_date, print_json, say};
use crate::context::{self, Context, keys};
use crate::error::{CliError, Result};
use crate::plans::{self, PlanSummary, save_plan};
use crate::render;

/// `map init`.
pub fn init(ctx: &mut Context, args: InitArgs) -> Result<()> {
    non_empty("plan title", &args.title)?;
    let today = ctx.today();
    let now = ctx.now_ms();
    let go_live = opt_date(args.go_live.as_deref(), today)?;
    let template = args
        .template
        .map(|t| templates::build(t.name(), today, go_live))
        .transpose()?;
    let id = DocumentId::random();
    let saved = ctx.store()?.write(|tx| {
        let by = context::identity(tx)?;
        let mut plan = PlanDoc::create(&args.title, &by, now)?;
        plan.doc_mut().set_actor(context::actor(tx)?);
        let objective = args
            .objective
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty());
        if let Some(o) = objective {
            plan.set_objective(&by, now, o)?;
        }
        match &template {
            Some(t) => templates::apply(&mut plan, &by, now, today, t, objective.is_some())?,
            None => {
                if go_live.is_some() {
                    plan.set_go_live(&by, now, go_live)?;
                }
            }
        }
        let saved = save_plan(tx, &id.to_string(), &mut plan, today, now)?;
        tx.set_setting(keys::CURRENT_PLAN, &id.to_string())?;
        Ok::<_, CliError>(saved)
    })?;
    let mut lines = vec![format!("saved: plan create: {}", args.title.trim())];
    if let Some(t) = &template {
        lines.push(format!(
            "template {}: {} milestones, {} tasks, {} people, {} risks",
            t.name,
            saved.view.milestones.len(),
            saved.view.tasks.len(),
            saved.view.people.len(),
            saved.view.risks.len()
        ));
    }
    lines.push(format!("id:  {id}"));
    lines.push(format!("url: {}", id.url()));
    say(&lines)
}

/// `map plans`.
pub fn list(ctx: &mut Context, json: bool) -> Result<()> {
    let (rows, current) = ctx
        .store()?
        .read(|tx| Ok::<_, CliError>((tx.list_plans()?, tx.get_setting(keys::CURRENT_PLAN)?)))?;
    let summaries: Vec<PlanSummary> = rows
        .iter()
        .map(|r| PlanSummary::new(r, current.as_deref() == Some(r.id.as_str())))
        .collect();
    if json {
        return print_json(&summaries);
    }
    if summaries.is_empty() {
        return say(&["no plans yet; create one with `map init TITLE`".to_string()]);
    }
    say(&[render::plans_table(&summaries)])
}

/// `map use`.
pub fn use_plan(ctx: &mut Context, query: &str) -> Result<()> {
    let row = ctx.store()?.write(|tx| {
        let row = plans::resolve_plan(tx, query)?;
        tx.set_setting(keys::CURRENT_PLAN, &row.id)?;
        Ok::<_, CliError>(row)
    })?;
    say(&[format!("current plan: {} ({})", row.title, row.id)])
}

/// The JSON of `map show --json`: the view plus the plan's id and URL.
#[derive(Debug, Serialize)]
pub struct ShowJson<'a> {
    /// Document id.
    pub id: String,
    /// `automerge:` URL.
    pub url: String,
    /// The view (includes `heads`).
    #[serde(flatten)]
    pub view: &'a PlanView,
}

/// Read the target plan's (cached) view.
pub fn current_view(ctx: &mut Context) -> Result<(String, PlanView)> {
    let plan_arg = ctx.plan_arg.clone();
    let today = ctx.today();
    ctx.store()?.read(|tx| {
        let row = plans::target_plan(tx, plan_arg.as_deref())?;
        let view = plans::read_view(tx, &row.id, today)?;
        Ok::<_, CliError>((row.id, view))
    })
}

/// `map show`.
pub fn show(ctx: &mut Context, json: bool) -> Result<()> {
    let (id, view) = current_view(ctx)?;
    if json {
        return print_json(&ShowJson {
            url: format!("automerge:{id}"),
            id,
            view: &view,
        });
    }
    say(&[render::show::plan(&id, &view)])
}
