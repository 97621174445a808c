//! The relay's HTTP API, as `map share`, `map join` and `map sync` use it:
//! `POST /v1/invites`, `POST /v1/invites/redeem`, `GET /v1/plans` and
//! `GET /v1/plans/{id}/deliveries` (see `docs/contracts.md`). Tokens go in `Authorization: Bearer` and are
//! never echoed in an error.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::error::{CliError, Result};
use crate::net::http_base;

/// How long one API call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A plan the caller can see on a relay.
#[derive(Debug, Clone, Deserialize)]
pub struct RelayPlan {
    /// Document id.
    pub id: String,
}

/// What redeeming an invite returns.
#[derive(Debug, Clone, Deserialize)]
pub struct Redeemed {
    /// The user name the relay gave us.
    pub user: String,
    /// Our new token.
    pub token: String,
    /// The plan's document id.
    pub plan: String,
    /// `ro` or `rw`.
    #[serde(default)]
    pub access: String,
}

/// Who first delivered one change to the relay (`map log --verified`).
#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    /// Change hash (hex).
    pub hash: String,
    /// The relay user whose authenticated connection delivered it.
    pub user: String,
    /// That user's email, if they gave one when joining.
    #[serde(default)]
    pub email: Option<String>,
    /// When the relay stored it (ms since the epoch).
    pub at: i64,
}

#[derive(Deserialize)]
struct InviteReply {
    invite: String,
}

#[derive(Deserialize)]
struct ErrorReply {
    error: String,
}

/// An HTTP client for the relay at `relay`; for `wss://` relays it trusts
/// the system roots plus the relay's CA file (see [`crate::net::tls`]).
fn client(relay: &str) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(10));
    if map_sync::tls::is_tls_url(relay) {
        let ca_file = crate::net::tls::ca_file_for(relay);
        let config =
            map_sync::tls::client_config(ca_file.as_deref()).map_err(crate::net::sync_error)?;
        builder = builder.use_preconfigured_tls((*config).clone());
    }
    builder
        .build()
        .map_err(|e| CliError::user(format!("cannot set up HTTP: {e}")))
}

/// A transport failure (refused, DNS, timeout): exit 3, naming the relay.
fn unreachable(relay: &str, e: &reqwest::Error) -> CliError {
    if let Some(why) = crate::net::tls::certificate_problem(e) {
        return CliError::network(format!(
            "the relay at {relay} presented a TLS certificate that is not trusted ({why})"
        ))
        .hint("if the relay uses its own CA, pass --ca-file FILE or set MAP_CA_FILE");
    }
    let why = if e.is_timeout() {
        "no answer in time".to_string()
    } else if e.is_connect() {
        "connection refused or host unknown".to_string()
    } else {
        e.to_string()
    };
    CliError::network(format!("cannot reach relay at {relay}: {why}"))
        .hint("check the URL and that the relay is running (`map-relay serve`)")
}

/// The error message of a failed API reply.
async fn reply_error(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let msg = serde_json::from_str::<ErrorReply>(&text)
        .map(|e| e.error)
        .unwrap_or_else(|_| text.trim().chars().take(200).collect());
    (status, msg)
}

fn refused(relay: &str) -> CliError {
    CliError::network(format!("the relay at {relay} refused the token"))
        .hint("check the token with `map remote list`, or ask the plan owner for a new invite")
}

/// `POST /v1/invites`: an invite line for `plan` (a `map join` invite, or
/// with `web` a link to open in a browser).
pub async fn create_invite(
    relay: &str,
    token: &str,
    plan: &str,
    access: &str,
    side: Option<&str>,
    expires_secs: u64,
    web: bool,
) -> Result<String> {
    let url = format!("{}/v1/invites", http_base(relay));
    let body = json!({
        "plan": plan,
        "access": access,
        "side": side,
        "expires_secs": expires_secs,
        "web": web,
    });
    let resp = client(relay)?
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(relay, &e))?;
    if resp.status().is_success() {
        let reply: InviteReply = resp.json().await.map_err(|e| {
            CliError::network(format!(
                "the relay at {relay} sent an unreadable invite: {e}"
            ))
        })?;
        return Ok(reply.invite);
    }
    match reply_error(resp).await {
        (401 | 403, _) => Err(refused(relay)),
        (404, msg) => Err(
            CliError::user(format!("the relay would not create an invite: {msg}"))
                .hint("only someone with read-write access to the plan on this relay can invite"),
        ),
        (400, msg) => Err(
            CliError::user(format!("the relay rejected the invite request: {msg}"))
                .hint("check the values given to `map share` (see `map share --help`)"),
        ),
        (status, msg) => Err(CliError::network(format!(
            "the relay at {relay} answered HTTP {status}: {msg}"
        ))
        .hint("try again later")),
    }
}

/// `POST /v1/invites/redeem` (no token: the invite is the credential).
pub async fn redeem_invite(
    relay: &str,
    invite: &str,
    name: &str,
    email: Option<&str>,
    side: Option<&str>,
) -> Result<Redeemed> {
    let url = format!("{}/v1/invites/redeem", http_base(relay));
    let body = json!({ "invite": invite, "name": name, "email": email, "side": side });
    let resp = client(relay)?
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(relay, &e))?;
    if resp.status().is_success() {
        return resp.json().await.map_err(|e| {
            CliError::network(format!(
                "the relay at {relay} sent an unreadable answer: {e}"
            ))
        });
    }
    match reply_error(resp).await {
        (404, _) => Err(CliError::user("the relay does not know this invite")
            .hint("check that you copied the whole line, or ask for a new invite")),
        (410, msg) => Err(CliError::user(format!("this invite cannot be used: {msg}"))
            .hint("invites work once and expire; ask for a new one")),
        (400, msg) => Err(
            CliError::user(format!("the relay rejected the request: {msg}"))
                .hint("check your name with `map whoami`"),
        ),
        (status, msg) => Err(CliError::network(format!(
            "the relay at {relay} answered HTTP {status}: {msg}"
        ))
        .hint("try again later")),
    }
}

/// `GET /v1/plans`: the plans this token can see.
pub async fn list_plans(relay: &str, token: &str) -> Result<Vec<RelayPlan>> {
    let url = format!("{}/v1/plans", http_base(relay));
    let resp = client(relay)?
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| unreachable(relay, &e))?;
    if !resp.status().is_success() {
        let (status, msg) = reply_error(resp).await;
        if status == 401 || status == 403 {
            return Err(refused(relay));
        }
        return Err(CliError::network(format!(
            "the relay at {relay} answered HTTP {status}: {msg}"
        )));
    }
    resp.json().await.map_err(|e| {
        CliError::network(format!(
            "the relay at {relay} sent an unreadable plan list: {e}"
        ))
    })
}

/// `GET /v1/plans/{plan}/deliveries`: who delivered each change of `plan`,
/// in the order the relay stored them.
pub async fn deliveries(relay: &str, token: &str, plan: &str) -> Result<Vec<Delivery>> {
    let url = format!("{}/v1/plans/{plan}/deliveries", http_base(relay));
    let resp = client(relay)?
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| unreachable(relay, &e))?;
    if !resp.status().is_success() {
        return Err(match reply_error(resp).await {
            (401 | 403, _) => refused(relay),
            (404, _) => CliError::network(format!(
                "the relay at {relay} has no delivery records of plan {plan} for this token"
            ))
            .hint("sync the plan first with `map sync`; a relay older than this map has no such records"),
            (status, msg) => CliError::network(format!(
                "the relay at {relay} answered HTTP {status}: {msg}"
            )),
        });
    }
    resp.json().await.map_err(|e| {
        CliError::network(format!(
            "the relay at {relay} sent unreadable delivery records: {e}"
        ))
    })
}
