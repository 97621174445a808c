//! `map share`: an invite line for a plan. The plan must be on a relay: if
//! it is on none yet, it is pushed to the default remote first. The invite
//! (`ws://HOST:PORT/join/SECRET`, or with `--web` a browser link
//! `http://HOST:PORT/web/open?t=SECRET`) is printed alone on stdout, so
//! scripts can capture it; everything else goes to stderr.

use std::io::Write;

use map_model::identity::Side;

use crate::cli::{AccessArg, ShareArgs};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::net::sync::{Pick, default_remote, sync_remote};
use crate::net::{api, runtime};
use crate::plans;

/// `map share`.
pub fn run(ctx: &mut Context, args: ShareArgs) -> Result<()> {
    let expires_secs = parse_expiry(&args.expires)?;
    let query = args.plan_arg.clone().or_else(|| ctx.plan_arg.clone());
    let (row, on, remotes) = ctx.store()?.read(|tx| {
        let row = plans::target_plan(tx, query.as_deref())?;
        let on = tx.remotes_of_plan(&row.id)?;
        Ok::<_, CliError>((row, on, tx.remotes()?))
    })?;
    let rt = runtime()?;
    let mut err = anstream::stderr().lock();
    let remote = match on.iter().find(|n| *n == "origin").or(on.first()) {
        Some(name) => remotes
            .iter()
            .find(|r| &r.name == name)
            .cloned()
            .ok_or_else(|| {
                CliError::user(format!("remote '{name}' is gone")).hint("see `map remote list`")
            })?,
        None => {
            let remote = default_remote(&remotes)
                .map_err(|_| {
                    CliError::user(format!("plan '{}' is not on any relay yet", row.title)).hint(
                        "add a relay with `map remote add origin ws://HOST:PORT --token TOKEN`, then run `map share` again",
                    )
                })?
                .ok_or_else(|| {
                    CliError::user("several remotes and none is called origin")
                        .hint("push the plan first with `map sync --plan PLAN --remote NAME`")
                })?;
            let _ = writeln!(err, "pushing '{}' to {} first...", row.title, remote.name);
            let out = sync_remote(
                ctx,
                &rt,
                &remote,
                vec![Pick {
                    id: row.id.clone(),
                    on_remote: false,
                }],
                false,
                false,
            )?;
            for l in &out.lines {
                let _ = writeln!(err, "{l}");
            }
            if !out.synced.iter().any(|(id, _)| id == &row.id) {
                let why = out.failures.join("; ");
                return Err(CliError::network(format!(
                    "could not put '{}' on the relay {}",
                    row.title, remote.name
                ))
                .hint(if why.is_empty() {
                    "run `map sync` and try again".to_string()
                } else {
                    why
                }));
            }
            remote
        }
    };
    let Some(token) = remote.token.clone() else {
        return Err(CliError::user(format!("remote '{}' has no token", remote.name)).hint(format!(
            "add it again with a token: `map remote remove {0}` then `map remote add {0} {1} --token TOKEN`",
            remote.name, remote.url
        )));
    };
    let access = match args.access {
        AccessArg::Rw => "rw",
        AccessArg::Ro => "ro",
    };
    let side = args.side.map(|s| Side::from(s).as_str());
    let invite = rt.block_on(api::create_invite(
        &remote.url,
        &token,
        &row.id,
        access,
        side,
        expires_secs,
        args.web,
    ))?;
    crate::commands::say(&[invite])?;
    let who = side.unwrap_or("other participant");
    if args.web {
        let _ = writeln!(
            err,
            "hint: send this link to the {who}; it opens the plan in any browser ({}, valid for {}). Anyone with the link can use it: share it only with the deal team",
            if access == "rw" {
                "they can edit"
            } else {
                "read-only"
            },
            args.expires.trim()
        );
        return Ok(());
    }
    let _ = writeln!(
        err,
        "hint: send this line to the {who}; they run `map join <line>` ({} access, valid for {}, works once)",
        if access == "rw" {
            "read-write"
        } else {
            "read-only"
        },
        args.expires.trim()
    );
    Ok(())
}

/// `7d`, `12h`, `30m`, `2w`, `90s` as seconds (1 s to 365 days).
pub fn parse_expiry(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        CliError::user(format!("'{s}' is not an invite lifetime"))
            .hint("use a number and a unit: 90m, 12h, 7d, 2w (at most 365d)")
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" | "" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    if secs == 0 || secs > 365 * 86_400 {
        return Err(bad());
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::parse_expiry;

    #[test]
    fn expiry() {
        assert_eq!(parse_expiry("7d").unwrap(), 604_800);
        assert_eq!(parse_expiry("12h").unwrap(), 43_200);
        assert_eq!(parse_expiry("2w").unwrap(), 1_209_600);
        assert_eq!(parse_expiry("3").unwrap(), 259_200);
        assert!(parse_expiry("0d").is_err());
        assert!(parse_expiry("400d").is_err());
        assert!(parse_expiry("soon").is_err());
    }
}
