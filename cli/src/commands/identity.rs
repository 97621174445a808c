//! `map whoami` and `map identity set`: the name, email and side recorded as
//! the author of every change.

use map_model::identity::Side;

use crate::cli::IdentityCmd;
use crate::commands::say;
use crate::context::{self, Context, keys};
use crate::error::{CliError, Result};

/// `map whoami`.
pub fn whoami(ctx: &mut Context) -> Result<()> {
    let (id, set) = ctx
        .store()?
        .read(|tx| Ok::<_, CliError>((context::identity(tx)?, context::identity_is_set(tx)?)))?;
    let mut lines = vec![
        format!("name:  {}", id.name),
        format!(
            "email: {}",
            if id.email.is_empty() {
                "(none)"
            } else {
                &id.email
            }
        ),
        format!("side:  {}", id.side),
    ];
    if !set {
        lines.push(
            "hint: not set yet; run `map identity set --name NAME --email EMAIL --side seller|buyer`"
                .to_string(),
        );
    }
    say(&lines)
}

/// `map identity ...`.
pub fn run(ctx: &mut Context, cmd: IdentityCmd) -> Result<()> {
    match cmd {
        IdentityCmd::Set { name, email, side } => {
            if name.is_none() && email.is_none() && side.is_none() {
                return Err(
                    CliError::user("nothing to set").hint("give --name, --email and/or --side")
                );
            }
            if let Some(n) = &name
                && n.trim().is_empty()
            {
                return Err(CliError::user("the name must not be empty")
                    .hint("give your name, e.g. --name \"Ana Lopez\""));
            }
            if let Some(e) = &email {
                let e = e.trim();
                if !e.is_empty() && (!e.contains('@') || e.contains(char::is_whitespace)) {
                    return Err(CliError::user(format!("'{e}' is not an email address"))
                        .hint("give an address like ana@example.com"));
                }
            }
            let id = ctx.store()?.write(|tx| {
                if let Some(n) = &name {
                    tx.set_setting(keys::NAME, n.trim())?;
                }
                if let Some(e) = &email {
                    tx.set_setting(keys::EMAIL, e.trim())?;
                }
                if let Some(s) = side {
                    tx.set_setting(keys::SIDE, Side::from(s).as_str())?;
                }
                context::identity(tx)
            })?;
            say(&[format!(
                "saved: identity: {} ({})",
                id.author_string(),
                id.side
            )])
        }
    }
}
