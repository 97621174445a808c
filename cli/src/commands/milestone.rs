//! `map milestone ...`: add, edit, delete/restore, reorder and list
//! milestones.

use map_model::plan::{MilestoneEdit, Position};
use map_model::schema::EntityKind;

use crate::cli::{MilestoneCmd, MoveArgs};
use crate::commands::plan::current_view;
use crate::commands::{confirm, edit_date, non_empty, opt_date, print_json, resolve, say};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::plans::edit_plan;
use crate::render;

/// `map milestone ...`.
pub fn run(ctx: &mut Context, cmd: MilestoneCmd) -> Result<()> {
    let today = ctx.today();
    match cmd {
        MilestoneCmd::Add { title, due } => {
            non_empty("milestone title", &title)?;
            let due = opt_date(due.as_deref(), today)?;
            let (id, saved) = edit_plan(ctx, |plan, e| {
                Ok(plan.add_milestone(&e.by, e.now, &title, due)?)
            })?;
            confirm(&saved)?;
            say(&[id])
        }
        MilestoneCmd::Edit { id, title, due } => {
            if let Some(t) = &title {
                non_empty("milestone title", t)?;
            }
            let due = edit_date(due.as_deref(), today)?;
            if title.is_none() && due.is_none() {
                return Err(CliError::user("nothing to change").hint("give --title and/or --due"));
            }
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Milestone, &id)?;
                plan.edit_milestone(&e.by, e.now, &id, MilestoneEdit { title, due })?;
                Ok(())
            })?;
            confirm(&saved)
        }
        MilestoneCmd::Rm(a) => {
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Milestone, &a.id)?;
                plan.delete_milestone(&e.by, e.now, &id)?;
                Ok(())
            })?;
            confirm(&saved)
        }
        MilestoneCmd::Restore(a) => {
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Milestone, &a.id)?;
                plan.restore_milestone(&e.by, e.now, &id)?;
                Ok(())
            })?;
            confirm(&saved)
        }
        MilestoneCmd::List(a) => {
            let (_, view) = current_view(ctx)?;
            if a.json {
                return print_json(&view.milestones);
            }
            if view.milestones.is_empty() {
                return say(&["no milestones yet; add one with `map milestone add TITLE`".into()]);
            }
            say(&[render::show::milestones(&view)])
        }
        MilestoneCmd::Move(a) => move_milestone(ctx, a),
    }
}

fn move_milestone(ctx: &mut Context, a: MoveArgs) -> Result<()> {
    let (_, saved) = edit_plan(ctx, |plan, e| {
        let id = resolve(plan, EntityKind::Milestone, &a.id)?;
        let pos = if let Some(b) = &a.to.before {
            Position::Before(resolve(plan, EntityKind::Milestone, b)?)
        } else if let Some(b) = &a.to.after {
            Position::After(resolve(plan, EntityKind::Milestone, b)?)
        } else if a.to.first {
            Position::First
        } else {
            Position::Last
        };
        plan.move_milestone(&e.by, e.now, &id, pos)?;
        Ok(())
    })?;
    confirm(&saved)
}
