//! Baselines: `map baseline create NAME`, `map baseline list` and
//! `map diff NAME` (what slipped, was added or dropped since, and by whom).
//!
//! Baselines live in the plan document (`map_model::baseline`), so they
//! sync to everyone on the plan. Listing and diffing load the document.

use automerge::AutoCommit;
use map_model::baseline::{self, Baseline};

use crate::cli::BaselineCmd;
use crate::commands::{confirm, print_json, say};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::plans::{self, edit_plan};
use crate::render;

/// `map baseline ...`.
pub fn run(ctx: &mut Context, cmd: BaselineCmd) -> Result<()> {
    match cmd {
        BaselineCmd::Create { name } => {
            crate::commands::non_empty("baseline name", &name)?;
            let (_, saved) =
                edit_plan(
                    ctx,
                    |plan, e| Ok(plan.create_baseline(&e.by, e.now, &name)?),
                )?;
            confirm(&saved)
        }
        BaselineCmd::List(a) => {
            let (_, mut doc) = load(ctx)?;
            let list = baseline::list(doc.document());
            if a.json {
                return print_json(&list);
            }
            if list.is_empty() {
                return say(&[
                    "no baselines yet; record one with `map baseline create NAME`".to_string(),
                ]);
            }
            say(&[render::analysis::baselines(&list)])
        }
    }
}

/// Load the target plan's document (read only).
fn load(ctx: &mut Context) -> Result<(String, AutoCommit)> {
    let plan_arg = ctx.plan_arg.clone();
    ctx.store()?.read(|tx| {
        let row = plans::target_plan(tx, plan_arg.as_deref())?;
        let Some(doc) = tx.load_doc(&row.id)? else {
            return Err(
                CliError::user(format!("plan {} has no document in the database", row.id))
                    .hint("sync it again with `map sync`"),
            );
        };
        Ok::<_, CliError>((row.id, doc))
    })
}

/// `map diff NAME`.
pub fn diff(ctx: &mut Context, name: &str, json: bool) -> Result<()> {
    let today = ctx.today();
    let (_, mut doc) = load(ctx)?;
    let doc = doc.document();
    let Some(b): Option<Baseline> = baseline::find(doc, name) else {
        let names: Vec<String> = baseline::list(doc).into_iter().map(|b| b.name).collect();
        let hint = if names.is_empty() {
            "record one with `map baseline create NAME`".to_string()
        } else {
            format!("baselines: {}", names.join(", "))
        };
        return Err(CliError::user(format!("no baseline named '{}'", name.trim())).hint(hint));
    };
    let d = baseline::diff(doc, &b, today)?;
    if json {
        return print_json(&d);
    }
    say(&[render::analysis::diff(&d)])
}
