//! `map dep add|rm` (task dependencies) and `map comment`.

use map_model::ModelError;
use map_model::schema::EntityKind;

use crate::cli::DepCmd;
use crate::commands::{confirm, non_empty, resolve};
use crate::context::Context;
use crate::error::Result;
use crate::plans::edit_plan;

/// `map dep ...`: A depends on B means A waits until B is done.
pub fn run(ctx: &mut Context, cmd: DepCmd) -> Result<()> {
    let (_, saved) = match cmd {
        DepCmd::Add { task, on } => edit_plan(ctx, |plan, e| {
            let a = resolve(plan, EntityKind::Task, &task)?;
            let b = resolve(plan, EntityKind::Task, &on)?;
            plan.add_dep(&e.by, e.now, &a, &b)?;
            Ok(())
        })?,
        DepCmd::Rm { task, on } => edit_plan(ctx, |plan, e| {
            let a = resolve(plan, EntityKind::Task, &task)?;
            let b = resolve(plan, EntityKind::Task, &on)?;
            plan.remove_dep(&e.by, e.now, &a, &b)?;
            Ok(())
        })?,
    };
    confirm(&saved)
}

/// `map comment ID TEXT`: the target may be a task, milestone or risk.
pub fn comment(ctx: &mut Context, target: &str, text: &str) -> Result<()> {
    non_empty("comment", text)?;
    let (_, saved) = edit_plan(ctx, |plan, e| {
        let mut found = None;
        for kind in [EntityKind::Task, EntityKind::Milestone, EntityKind::Risk] {
            match resolve(plan, kind, target) {
                Ok(id) => {
                    found = Some(id);
                    break;
                }
                Err(e @ ModelError::Ambiguous { .. }) => return Err(e.into()),
                Err(_) => {}
            }
        }
        let id = found.ok_or_else(|| ModelError::UnknownTarget(target.to_string()))?;
        plan.add_comment(&e.by, e.now, &id, text)?;
        Ok(())
    })?;
    confirm(&saved)
}
