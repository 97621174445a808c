//! `map remote add|list|remove`: the relays this participant syncs with,
//! kept in the store (name, URL, token). Tokens are credentials: they are
//! never printed in full, only their first characters.

use map_store::WriteTx;
use serde::Serialize;

use crate::cli::RemoteCmd;
use crate::commands::{print_json, say};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::net::{mask_token, normalize_relay_url};

/// A remote in `map remote list --json`.
#[derive(Debug, Serialize)]
struct RemoteSummary {
    name: String,
    url: String,
    /// The first characters of the token, or null.
    token: Option<String>,
    plans: Vec<String>,
}

/// Check a remote name: letters, digits, `.`, `_`, `-`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(
            CliError::user(format!("'{name}' is not a usable remote name"))
                .hint("use letters, digits, '.', '_' or '-', e.g. origin"),
        )
    }
}

/// `map remote ...`.
pub fn run(ctx: &mut Context, cmd: RemoteCmd) -> Result<()> {
    match cmd {
        RemoteCmd::Add {
            name,
            url,
            token,
            ca_file,
        } => {
            check_name(&name)?;
            let url = normalize_relay_url(&url)?;
            let ca_file = ca_file.as_deref().map(crate::net::tls::check).transpose()?;
            let token = token
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty());
            ctx.store()?.write(|tx| {
                if let Some(existing) = tx.remote(&name)? {
                    return Err(CliError::user(format!(
                        "there is already a remote called '{name}' ({})",
                        existing.url
                    ))
                    .hint(format!(
                        "remove it first with `map remote remove {name}`, or pick another name"
                    )));
                }
                tx.add_remote(&name, &url, token.as_deref())?;
                crate::net::tls::store(tx, &name, &url, ca_file.as_deref())?;
                Ok(())
            })?;
            let mut lines = vec![format!("saved: remote {name}: {url}")];
            if token.is_none() {
                lines.push("note: no token given; the relay will likely refuse the connection (add one with --token)".to_string());
            }
            say(&lines)
        }
        RemoteCmd::List(flags) => {
            let remotes = ctx.store()?.read(|tx| {
                let mut out = Vec::new();
                for r in tx.remotes()? {
                    let plans = tx.plans_on_remote(&r.name)?;
                    out.push(RemoteSummary {
                        token: r.token.as_deref().map(|t| mask_token(Some(t))),
                        name: r.name,
                        url: r.url,
                        plans,
                    });
                }
                Ok::<_, CliError>(out)
            })?;
            if flags.json {
                return print_json(&remotes);
            }
            if remotes.is_empty() {
                return say(&[
                    "no remotes; add one with `map remote add origin ws://HOST:PORT --token TOKEN` or join a plan with `map join INVITE`".to_string(),
                ]);
            }
            let lines = remotes
                .iter()
                .map(|r| {
                    format!(
                        "{}  {}  token {}  {} plan{}",
                        r.name,
                        r.url,
                        r.token.as_deref().unwrap_or("(none)"),
                        r.plans.len(),
                        if r.plans.len() == 1 { "" } else { "s" }
                    )
                })
                .collect::<Vec<_>>();
            say(&lines)
        }
        RemoteCmd::Remove { name } => {
            let existed = ctx.store()?.write(|tx| {
                crate::net::tls::forget(tx, &name)?;
                Ok::<_, CliError>(tx.remove_remote(&name)?)
            })?;
            if !existed {
                return Err(
                    CliError::user(format!("there is no remote called '{name}'"))
                        .hint("list remotes with `map remote list`"),
                );
            }
            say(&[format!("removed remote {name} (local plans are kept)")])
        }
    }
}

/// A free remote name for a relay reached at `url`: `origin` unless taken,
/// else one derived from the host (`relay-127-0-0-1-8787`, then `-2`, ...).
pub fn free_name(tx: &WriteTx<'_>, url: &str) -> Result<String> {
    if tx.remote("origin")?.is_none() {
        return Ok("origin".to_string());
    }
    let host = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default();
    let mut base: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    base = base.trim_matches('-').to_string();
    if base.is_empty() {
        base = "relay".to_string();
    }
    let base = format!("relay-{base}");
    let base: String = base.chars().take(56).collect();
    if tx.remote(&base)?.is_none() {
        return Ok(base);
    }
    for n in 2..1000 {
        let name = format!("{base}-{n}");
        if tx.remote(&name)?.is_none() {
            return Ok(name);
        }
    }
    Err(CliError::user("too many remotes for this relay")
        .hint("remove unused ones with `map remote remove NAME`"))
}
