//! `map person ...`: the stakeholders on each side and their roles.

use map_model::plan::{NewPerson, PersonEdit};
use map_model::schema::EntityKind;

use crate::cli::PersonCmd;
use crate::commands::plan::current_view;
use crate::commands::{confirm, non_empty, print_json, resolve, say};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::plans::edit_plan;
use crate::render;

/// `map person ...`.
pub fn run(ctx: &mut Context, cmd: PersonCmd) -> Result<()> {
    match cmd {
        PersonCmd::Add {
            name,
            email,
            side,
            role,
        } => {
            non_empty("name", &name)?;
            let (id, saved) = edit_plan(ctx, |plan, e| {
                Ok(plan.add_person(
                    &e.by,
                    e.now,
                    NewPerson {
                        name: name.clone(),
                        email: email.clone().unwrap_or_default(),
                        side: side.map(Into::into).unwrap_or_default(),
                        role: role.clone().unwrap_or_default(),
                    },
                )?)
            })?;
            confirm(&saved)?;
            say(&[id])
        }
        PersonCmd::Edit {
            id,
            name,
            email,
            side,
            role,
        } => {
            if let Some(n) = &name {
                non_empty("name", n)?;
            }
            if name.is_none() && email.is_none() && side.is_none() && role.is_none() {
                return Err(CliError::user("nothing to change")
                    .hint("give at least one of --name --email --side --role"));
            }
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Person, &id)?;
                plan.edit_person(
                    &e.by,
                    e.now,
                    &id,
                    PersonEdit {
                        name,
                        email,
                        side: side.map(Into::into),
                        role,
                    },
                )?;
                Ok(())
            })?;
            confirm(&saved)
        }
        PersonCmd::Rm(a) => {
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Person, &a.id)?;
                plan.remove_person(&e.by, e.now, &id)?;
                Ok(())
            })?;
            confirm(&saved)
        }
        PersonCmd::List(a) => {
            let (_, view) = current_view(ctx)?;
            if a.json {
                return print_json(&view.people);
            }
            if view.people.is_empty() {
                return say(&["no people yet; add one with `map person add NAME`".into()]);
            }
            say(&[render::show::people(&view)])
        }
    }
}
