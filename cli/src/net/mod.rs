//! Network commands: `map remote`, `map sync`, `map share`, `map join` and
//! `map demo`, one module each, plus what they share: the tokio runtime,
//! relay URLs (WebSocket and HTTP forms), the relay's small HTTP API
//! ([`api`]) and how sync errors become exit codes.
//!
//! Exit codes follow `docs/contracts.md`: 1 for what the user can fix
//! (no remote, bad URL, unknown plan), 3 when the relay is unreachable,
//! refuses the token or the sync fails. A failed sync never writes to the
//! store: documents and sync states are saved only after the relay answered.

pub mod api;
pub mod demo;
pub mod join;
pub mod remote;
pub mod share;
pub mod sync;
pub mod tls;
pub mod watch;

use map_sync::SyncError;

use crate::cli::{RemoteCmd, ShareArgs, SyncArgs};
use crate::context::Context;
use crate::error::{CliError, Result};

/// `map remote add|list|remove`.
pub fn remote(ctx: &mut Context, cmd: RemoteCmd) -> Result<()> {
    remote::run(ctx, cmd)
}

/// `map sync`.
pub fn sync(ctx: &mut Context, args: SyncArgs) -> Result<()> {
    sync::run(ctx, args)
}

/// `map share`.
pub fn share(ctx: &mut Context, args: ShareArgs) -> Result<()> {
    share::run(ctx, args)
}

/// `map join`.
pub fn join(ctx: &mut Context, invite: &str, ca_file: Option<&std::path::Path>) -> Result<()> {
    join::run(ctx, invite, ca_file)
}

/// `map demo`.
pub fn demo(ctx: &mut Context) -> Result<()> {
    demo::run(ctx)
}

/// A single-threaded tokio runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::user(format!("cannot start the network runtime: {e}")))
}

/// A sync-client error as a CLI error: a bad URL or id is the user's to fix
/// (exit 1); everything else is a network or sync failure (exit 3).
pub fn sync_error(e: SyncError) -> CliError {
    match e {
        SyncError::InvalidUrl { .. } | SyncError::InvalidDocumentId(_) => {
            CliError::user(e.to_string())
                .hint("relay URLs look like ws://HOST:PORT; see `map remote list`")
        }
        SyncError::CaFile { .. } => CliError::user(e.to_string())
            .hint("give a PEM file with the relay's CA certificate (--ca-file or MAP_CA_FILE)"),
        SyncError::Persist(inner) => match inner.downcast::<CliError>() {
            Ok(cli) => *cli,
            Err(other) => CliError::user(format!("could not save synced changes: {other}")),
        },
        other => CliError::network(other.to_string()),
    }
}

/// A relay URL as stored in a remote: `ws://HOST[:PORT][/PATH]` or `wss://`,
/// without a trailing slash. `http(s)://` is accepted and rewritten.
pub fn normalize_relay_url(url: &str) -> Result<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad_url(url))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(bad_url(url)),
    };
    let rest = rest.trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || host.contains(['?', '#', '@'])
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad_url(url));
    }
    Ok(format!("{scheme}://{rest}"))
}

fn bad_url(url: &str) -> CliError {
    CliError::user(format!("'{url}' is not a relay URL"))
        .hint("give it as ws://HOST:PORT, e.g. ws://127.0.0.1:8787")
}

/// The HTTP base of a relay URL: `ws://h:p/x` -> `http://h:p/x` (a trailing
/// `/sync` endpoint is dropped).
pub fn http_base(ws_url: &str) -> String {
    let url = ws_url.trim().trim_end_matches('/');
    let url = url.strip_suffix("/sync").unwrap_or(url);
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_string()
    }
}

/// The WebSocket endpoint of a relay URL (`ws://h:p` -> `ws://h:p/`).
pub fn ws_endpoint(url: &str) -> String {
    let url = url.trim();
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    if after_scheme.contains('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// A token shown without giving it away: its first 4 characters.
pub fn mask_token(token: Option<&str>) -> String {
    match token {
        None => "(no token)".to_string(),
        Some(t) if t.chars().count() <= 8 => "****".to_string(),
        Some(t) => format!("{}…", t.chars().take(4).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls() {
        assert_eq!(
            normalize_relay_url("ws://127.0.0.1:8787/").unwrap(),
            "ws://127.0.0.1:8787"
        );
        assert_eq!(normalize_relay_url("http://h:1").unwrap(), "ws://h:1");
        assert_eq!(normalize_relay_url("https://h/x/").unwrap(), "wss://h/x");
        assert!(normalize_relay_url("127.0.0.1:8787").is_err());
        assert!(normalize_relay_url("ftp://h").is_err());
        assert!(normalize_relay_url("ws://").is_err());
        assert_eq!(http_base("ws://h:1"), "http://h:1");
        assert_eq!(http_base("wss://h/x/sync"), "https://h/x");
        assert_eq!(ws_endpoint("ws://h:1"), "ws://h:1/");
        assert_eq!(ws_endpoint("ws://h:1/sync"), "ws://h:1/sync");
    }

    #[test]
    fn tokens_are_masked() {
        assert_eq!(mask_token(None), "(no token)");
        assert_eq!(mask_token(Some("short")), "****");
        assert_eq!(mask_token(Some("abcdefghijkl")), "abcd…");
    }
}
