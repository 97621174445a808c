//! `map risk ...`: the risk register (impact, likelihood, mitigation,
//! owner, status).

use map_model::plan::{NewRisk, RiskEdit};
use map_model::schema::{EntityKind, RiskStatus};

use crate::cli::RiskCmd;
use crate::commands::plan::current_view;
use crate::commands::{confirm, is_clear, non_empty, print_json, resolve, say};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::plans::edit_plan;
use crate::render;

/// `map risk ...`.
pub fn run(ctx: &mut Context, cmd: RiskCmd) -> Result<()> {
    match cmd {
        RiskCmd::Add {
            title,
            impact,
            likelihood,
            mitigation,
            owner,
        } => {
            non_empty("risk title", &title)?;
            let (id, saved) = edit_plan(ctx, |plan, e| {
                let owner = owner
                    .as_deref()
                    .map(|o| resolve(plan, EntityKind::Person, o))
                    .transpose()?;
                Ok(plan.add_risk(
                    &e.by,
                    e.now,
                    NewRisk {
                        title: title.clone(),
                        impact: impact.map(Into::into).unwrap_or_default(),
                        likelihood: likelihood.map(Into::into).unwrap_or_default(),
                        mitigation: mitigation.clone().unwrap_or_default(),
                        owner,
                        status: RiskStatus::Open,
                    },
                )?)
            })?;
            confirm(&saved)?;
            say(&[id])
        }
        RiskCmd::Edit {
            id,
            title,
            impact,
            likelihood,
            mitigation,
            owner,
            status,
        } => {
            if let Some(t) = &title {
                non_empty("risk title", t)?;
            }
            if title.is_none()
                && impact.is_none()
                && likelihood.is_none()
                && mitigation.is_none()
                && owner.is_none()
                && status.is_none()
            {
                return Err(CliError::user("nothing to change").hint(
                    "give at least one of --title --impact --likelihood --mitigation --owner --status",
                ));
            }
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Risk, &id)?;
                let owner = match owner.as_deref() {
                    None => None,
                    Some(o) if is_clear(o) => Some(None),
                    Some(o) => Some(Some(resolve(plan, EntityKind::Person, o)?)),
                };
                plan.edit_risk(
                    &e.by,
                    e.now,
                    &id,
                    RiskEdit {
                        title,
                        impact: impact.map(Into::into),
                        likelihood: likelihood.map(Into::into),
                        mitigation,
                        owner,
                        status: status.map(Into::into),
                    },
                )?;
                Ok(())
            })?;
            confirm(&saved)
        }
        RiskCmd::Rm(a) => {
            let (_, saved) = edit_plan(ctx, |plan, e| {
                let id = resolve(plan, EntityKind::Risk, &a.id)?;
                plan.remove_risk(&e.by, e.now, &id)?;
                Ok(())
            })?;
            confirm(&saved)
        }
        RiskCmd::List(a) => {
            let (_, view) = current_view(ctx)?;
            if a.json {
                return print_json(&view.risks);
            }
            if view.risks.is_empty() {
                return say(&["no risks yet; add one with `map risk add TITLE`".into()]);
            }
            say(&[render::show::risks(&view)])
        }
    }
}
