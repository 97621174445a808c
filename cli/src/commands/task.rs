//! `map task ...`: add, edit, change status, delete/restore and list tasks.

use map_model::filter::{Filter, TaskFacts};
use map_model::plan::{NewTask, TaskEdit};
use map_model::schema::{EntityKind, TaskStatus};
use map_model::view::TaskView;

use crate::cli::{TaskAddArgs, TaskCmd, TaskEditArgs, TaskListArgs};
use crate::commands::plan::current_view;
use crate::commands::{
    confirm, edit_date, is_clear, non_empty, opt_date, print_json, resolve, say,
};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::plans::edit_plan;
use crate::render;

/// `map task ...`.
pub fn run(ctx: &mut Context, cmd: TaskCmd) -> Result<()> {
    match cmd {
        TaskCmd::Add(a) => add(ctx, a),
        TaskCmd::Edit(a) => edit(ctx, a),
        TaskCmd::Done(a) => status(ctx, &a.id, TaskStatus::Done),
        TaskCmd::Start(a) => status(ctx, &a.id, TaskStatus::InProgress),
        TaskCmd::Block(a) => status(ctx, &a.id, TaskStatus::Blocked),
        TaskCmd::Drop(a) => status(ctx, &a.id, TaskStatus::Dropped),
        TaskCmd::Reopen(a) => status(ctx, &a.id, TaskStatus::Todo),
        TaskCmd::Rm(a) => {
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Task, &a.id)?;
                plan.delete_task(&e.by, e.now, &id)?;
                Ok(())
            })?;
            confirm(&saved)
        }
        TaskCmd::Restore(a) => {
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Task, &a.id)?;
                plan.restore_task(&e.by, e.now, &id)?;
                Ok(())
            })?;
            confirm(&saved)
        }
        TaskCmd::List(a) => list(ctx, a),
    }
}

fn add(ctx: &mut Context, a: TaskAddArgs) -> Result<()> {
    non_empty("task title", &a.title)?;
    let today = ctx.today();
    let due = opt_date(a.due.as_deref(), today)?;
    let start = opt_date(a.start.as_deref(), today)?;
    let (id, saved) = edit_plan(ctx, |plan, e| {
        let owner = a
            .owner
            .as_deref()
            .map(|o| resolve(plan, EntityKind::Person, o))
            .transpose()?;
        let milestone = a
            .milestone
            .as_deref()
            .map(|m| resolve(plan, EntityKind::Milestone, m))
            .transpose()?;
        let deps = a
            .after
            .iter()
            .map(|t| resolve(plan, EntityKind::Task, t))
            .collect::<Result<Vec<_>, _>>()?;
        let id = plan.add_task(
            &e.by,
            e.now,
            e.today,
            NewTask {
                title: a.title.clone(),
                description: a.description.clone().unwrap_or_default(),
                milestone,
                owner,
                start,
                due,
                kind: a.kind.map(Into::into).unwrap_or_default(),
                priority: a.priority.map(Into::into).unwrap_or_default(),
                deps,
                ..NewTask::default()
            },
        )?;
        Ok(id)
    })?;
    confirm(&saved)?;
    say(&[id])
}

fn edit(ctx: &mut Context, a: TaskEditArgs) -> Result<()> {
    if let Some(t) = &a.title {
        non_empty("task title", t)?;
    }
    let today = ctx.today();
    let due = edit_date(a.due.as_deref(), today)?;
    let start = edit_date(a.start.as_deref(), today)?;
    let nothing = a.title.is_none()
        && a.owner.is_none()
        && due.is_none()
        && start.is_none()
        && a.milestone.is_none()
        && a.kind.is_none()
        && a.priority.is_none()
        && a.description.is_none();
    if nothing {
        return Err(CliError::user("nothing to change")
            .hint("give at least one of --title --owner --due --start --milestone --kind --priority --description"));
    }
    let (_, saved) = edit_plan(ctx, |plan, e| {
        let id = resolve(plan, EntityKind::Task, &a.id)?;
        let owner = match a.owner.as_deref() {
            None => None,
            Some(o) if is_clear(o) => Some(None),
            Some(o) => Some(Some(resolve(plan, EntityKind::Person, o)?)),
        };
        let milestone = match a.milestone.as_deref() {
            None => None,
            Some(m) if is_clear(m) => Some(None),
            Some(m) => Some(Some(resolve(plan, EntityKind::Milestone, m)?)),
        };
        plan.edit_task(
            &e.by,
            e.now,
            &id,
            TaskEdit {
                title: a.title.clone(),
                description: a.description.clone(),
                milestone,
                owner,
                start,
                due,
                kind: a.kind.map(Into::into),
                priority: a.priority.map(Into::into),
            },
        )?;
        Ok(())
    })?;
    confirm(&saved)
}

fn status(ctx: &mut Context, query: &str, status: TaskStatus) -> Result<()> {
    let (_, saved) = edit_plan(ctx, |plan, e| {
        let id = resolve(plan, EntityKind::Task, query)?;
        plan.set_status(&e.by, e.now, e.today, &id, status)?;
        Ok(())
    })?;
    confirm(&saved)
}

/// The filter facts of a task view.
pub fn facts(t: &TaskView) -> TaskFacts<'_> {
    TaskFacts {
        id: &t.id,
        title: &t.title,
        status: t.status.as_str(),
        owner_id: t.owner.as_deref(),
        owner_name: t.owner_name.as_deref(),
        owner_side: t.owner_side.map(|s| s.as_str()),
        milestone_id: t.milestone.as_deref(),
        milestone_title: t.milestone_title.as_deref(),
        due: t.due,
        kind: t.kind.as_str(),
        priority: t.priority.as_str(),
        overdue: t.overdue,
        blocked: t.blocked,
    }
}

fn list(ctx: &mut Context, a: TaskListArgs) -> Result<()> {
    let filter = Filter::parse(&a.filter, ctx.today())?;
    let (_, view) = current_view(ctx)?;
    let tasks: Vec<&TaskView> = view
        .tasks
        .iter()
        .filter(|t| filter.matches(&facts(t)))
        .collect();
    if a.json {
        return print_json(&tasks);
    }
    if tasks.is_empty() {
        let what = if filter.is_empty() {
            "no tasks yet; add one with `map task add TITLE`"
        } else {
            "no tasks match"
        };
        return say(&[what.to_string()]);
    }
    say(&[render::tasks::table(&tasks, &view)])
}
