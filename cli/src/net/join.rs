//! `map join INVITE`: redeem an invite line (`ws://HOST:PORT/join/SECRET`)
//! with the relay, keep the token it returns as a remote (`origin` unless
//! taken, else a name derived from the host), fetch the plan and make it
//! the current plan.
//!
//! The invite works once: the remote is stored as soon as it is redeemed,
//! so if fetching the plan then fails, `map sync` finishes the job.

use crate::context::{self, Context, keys};
use crate::error::{CliError, Result};
use crate::net::sync::{Pick, sync_remote};
use crate::net::{api, normalize_relay_url, remote, runtime};

/// An invite line, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The relay's URL (`ws://HOST:PORT`).
    pub relay: String,
    /// The whole invite line.
    pub line: String,
}

/// Parse `ws[s]://HOST[:PORT][/PATH]/join/SECRET`.
pub fn parse_invite(s: &str) -> Result<Invite> {
    let line = s.trim();
    let bad = || {
        CliError::user(format!("'{line}' is not an invite"))
            .hint("an invite looks like ws://HOST:PORT/join/SECRET; ask the plan owner to run `map share`")
    };
    if line.contains("/web/open?") {
        return Err(CliError::user(format!(
            "'{line}' is a link to open in a browser, not an invite for `map join`"
        ))
        .hint("open it in a browser, or ask the plan owner for an invite from `map share` (without --web)"));
    }
    let (base, secret) = line.rsplit_once("/join/").ok_or_else(bad)?;
    if secret.is_empty()
        || !secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    {
        return Err(bad());
    }
    let relay = normalize_relay_url(base).map_err(|_| bad())?;
    Ok(Invite {
        relay,
        line: line.to_string(),
    })
}

/// `map join`.
pub fn run(ctx: &mut Context, invite: &str, ca_file: Option<&std::path::Path>) -> Result<()> {
    let invite = parse_invite(invite)?;
    let ca_file = ca_file.map(crate::net::tls::check).transpose()?;
    if let Some(path) = &ca_file {
        crate::net::tls::register(&invite.relay, path);
    }
    let (me, set) = ctx
        .store()?
        .read(|tx| Ok::<_, CliError>((context::identity(tx)?, context::identity_is_set(tx)?)))?;
    if !set {
        return Err(CliError::user("tell map who you are before joining a plan").hint(
            "run `map identity set --name \"Your Name\" --email you@example.com --side buyer`, then `map join` again",
        ));
    }
    let rt = runtime()?;
    let email = Some(me.email.trim()).filter(|e| !e.is_empty());
    let redeemed = rt.block_on(api::redeem_invite(
        &invite.relay,
        &invite.line,
        &me.name,
        email,
        Some(me.side.as_str()),
    ))?;
    if redeemed.plan.parse::<map_model::DocumentId>().is_err() {
        return Err(CliError::network(format!(
            "the relay at {} returned an invalid plan id",
            invite.relay
        )));
    }
    // Keep the token right away: the invite cannot be used again.
    let remote = ctx.store()?.write(|tx| {
        let name = remote::free_name(tx, &invite.relay)?;
        tx.add_remote(&name, &invite.relay, Some(&redeemed.token))?;
        crate::net::tls::store(tx, &name, &invite.relay, ca_file.as_deref())?;
        tx.mark_on_remote(&redeemed.plan, &name)?;
        Ok::<_, CliError>(map_store::Remote {
            name,
            url: invite.relay.clone(),
            token: Some(redeemed.token.clone()),
        })
    })?;
    let out = sync_remote(
        ctx,
        &rt,
        &remote,
        vec![Pick { id: redeemed.plan.clone(), on_remote: true }],
        false,
        false,
    )
    .map_err(|e| {
        e.hint(format!(
            "the invite was redeemed and the relay saved as remote '{}'; run `map sync --remote {}` to fetch the plan",
            remote.name, remote.name
        ))
    })?;
    let Some((id, title)) = out
        .synced
        .iter()
        .find(|(id, _)| id == &redeemed.plan)
        .cloned()
    else {
        let why = out.failures.join("; ");
        return Err(CliError::network(format!(
            "joined, but could not fetch the plan from {}",
            remote.url
        ))
        .hint(if why.is_empty() {
            "try `map sync` in a moment".to_string()
        } else {
            why
        }));
    };
    ctx.store()?.write(|tx| {
        tx.set_setting(keys::CURRENT_PLAN, &id)?;
        Ok::<_, CliError>(())
    })?;
    let access = match redeemed.access.as_str() {
        "ro" => "read-only",
        "rw" => "read-write",
        other => other,
    };
    crate::commands::say(&[
        format!("joined {title} (automerge:{id}) as {access}"),
        format!(
            "remote {}: {} (relay user {}); sync with `map sync`",
            remote.name, remote.url, redeemed.user
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::parse_invite;

    #[test]
    fn invites() {
        let i = parse_invite(" ws://127.0.0.1:8787/join/AbC123 ").unwrap();
        assert_eq!(i.relay, "ws://127.0.0.1:8787");
        assert_eq!(i.line, "ws://127.0.0.1:8787/join/AbC123");
        assert_eq!(
            parse_invite("wss://relay.example/map/join/x")
                .unwrap()
                .relay,
            "wss://relay.example/map"
        );
        assert!(parse_invite("ws://127.0.0.1:8787/").is_err());
        assert!(parse_invite("ws://127.0.0.1:8787/join/").is_err());
        assert!(parse_invite("hello").is_err());
        assert!(parse_invite("ws://h/join/a b").is_err());
        let web = parse_invite("http://h:1/web/open?t=abc").unwrap_err();
        assert!(web.to_string().contains("open in a browser"), "{web}");
    }
}
