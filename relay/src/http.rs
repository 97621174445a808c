//! The relay's HTTP surface: `GET /healthz`, the WebSocket endpoint (`/` and
//! `/sync`, authenticated at upgrade), and the JSON API for invites, plan
//! listings and delivery records (`GET /v1/plans/{id}/deliveries`: who
//! delivered each change, for `map log --verified`). Request logs carry the method and path only, never the query
//! string (which may hold a token).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::auth::{self, Access};
use crate::connection;
use crate::db::{AuthUser, InviteError};
use crate::hub::Hub;
use crate::limits::{ConnectionLimits, LimitExceeded};
use crate::plan_id;
use crate::upgrade;

/// Longest invite lifetime accepted (one year).
const MAX_INVITE_SECS: u64 = 365 * 24 * 3600;
/// Invite lifetime when none is given (seven days).
const DEFAULT_INVITE_SECS: u64 = 7 * 24 * 3600;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) hub: Arc<Hub>,
    pub(crate) limits: Arc<ConnectionLimits>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Held by every WebSocket task; shutdown waits until all are dropped.
    pub(crate) alive: mpsc::Sender<()>,
    /// Where the relay listens (for URLs when a request has no Host header).
    pub(crate) local_addr: SocketAddr,
    /// Whether the relay itself serves TLS (invites then use `wss://`).
    pub(crate) tls: bool,
}

/// The router with every route and the request log.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(websocket))
        .route("/sync", get(websocket))
        .route("/join/{secret}", get(join_page))
        .route("/v1/invites", post(create_invite))
        .route("/v1/invites/redeem", post(redeem_invite))
        .route("/v1/plans", get(list_plans))
        .route("/v1/plans/{plan}/deliveries", get(list_deliveries))
        .merge(crate::web::router())
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_millis() as u64;
    // A WebSocket upgrade gets its own line ("connection opened", with the
    // user) from the connection.
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        tracing::debug!(%method, path = %path, status, ms, "http request");
    } else {
        tracing::info!(%method, path = %path, status, ms, "http request");
    }
    response
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn join_page() -> &'static str {
    "This is a map invite. Run: map join <this URL>\n"
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// 401 with no body: says nothing about why.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
    )
        .into_response()
}

fn internal_error(e: crate::RelayError) -> Response {
    tracing::error!(error = %e, "request failed");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal relay error")
}

/// The user behind the request's token, or the 401 response to send.
async fn authenticate(
    hub: &Hub,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<AuthUser, Response> {
    let Some(token) = auth::token_from_request(headers, query) else {
        return Err(unauthorized());
    };
    match hub.db().authenticate_now(token).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(internal_error(e)),
    }
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    mut request: Request,
) -> Response {
    // Authentication comes first: without a valid token nothing else is said.
    let user = match authenticate(&state.hub, request.headers(), query.as_deref()).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let upgrade = match upgrade::check(&mut request) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return refusal.into_response(),
    };
    if *state.shutdown.borrow() {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "relay is shutting down");
    }
    let permit = match state.limits.acquire(remote.ip()) {
        Ok(permit) => permit,
        Err(LimitExceeded::Total) => {
            tracing::warn!(%remote, "connection refused: too many connections");
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "too many connections");
        }
        Err(LimitExceeded::PerIp) => {
            tracing::warn!(%remote, "connection refused: too many connections from this address");
            return json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from this address",
            );
        }
    };
    let hub = &state.hub;
    let outbox = hub.connections().open(hub.config().outgoing_queue);
    tracing::info!(conn = outbox.conn_id, user = %user.name, %remote, "connection opened");
    let response = upgrade.switching_protocols();
    // The permit and the shutdown's liveness token go with the connection
    // and are dropped when it ends.
    connection::spawn(
        upgrade.on_upgrade,
        hub.clone(),
        user,
        outbox,
        (permit, state.alive.clone()),
    );
    response
}

#[derive(Deserialize)]
struct InviteRequest {
    plan: String,
    #[serde(default)]
    access: Option<String>,
    #[serde(default)]
    side: Option<String>,
    #[serde(default)]
    expires_secs: Option<u64>,
    /// A web link (opened in a browser, reusable until it expires) instead
    /// of a one-time invite for `map join`.
    #[serde(default)]
    web: bool,
}

async fn create_invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Json<InviteRequest>, JsonRejection>,
) -> Response {
    let user = match authenticate(&state.hub, &headers, query.as_deref()).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let Some(plan) = plan_id::parse(&body.plan) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "`plan` is not a document id or automerge: URL",
        );
    };
    let access = match body.access.as_deref().unwrap_or("rw") {
        "rw" => Access::ReadWrite,
        "ro" => Access::ReadOnly,
        _ => return json_error(StatusCode::BAD_REQUEST, "`access` must be \"rw\" or \"ro\""),
    };
    let side = body
        .side
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if side.as_ref().is_some_and(|s| s.chars().count() > 40) {
        return json_error(StatusCode::BAD_REQUEST, "`side` is too long");
    }
    let secs = body.expires_secs.unwrap_or(DEFAULT_INVITE_SECS);
    if secs == 0 || secs > MAX_INVITE_SECS {
        return json_error(
            StatusCode::BAD_REQUEST,
            "`expires_secs` must be between 1 and 31536000",
        );
    }
    let user_id = user.id;
    let web = body.web;
    let result = state
        .hub
        .db()
        .call(move |db| {
            let granted = db.plan_access(user_id, &plan)?.access;
            let ttl = Duration::from_secs(secs);
            match granted {
                Some(a) if a.can_write() && web => db
                    .create_web_link(user_id, &plan, access, side.as_deref(), ttl)
                    .map(|secret| Some((plan, secret))),
                Some(a) if a.can_write() => db
                    .create_invite(user_id, &plan, access, side.as_deref(), ttl)
                    .map(|secret| Some((plan, secret))),
                // Read-only, no grant and no such plan all look the same.
                _ => Ok(None),
            }
        })
        .await;
    match result {
        Ok(Some((_, secret))) if web => {
            let url = format!(
                "{}/web/open?t={secret}",
                crate::web::web_base(&state, &headers)
            );
            tracing::info!(user = %user.name, "web link created");
            (StatusCode::CREATED, Json(json!({ "invite": url }))).into_response()
        }
        Ok(Some((_, secret))) => {
            let url = format!("{}/join/{secret}", base_url(&headers, &state));
            tracing::info!(user = %user.name, "invite created");
            (StatusCode::CREATED, Json(json!({ "invite": url }))).into_response()
        }
        Ok(None) => json_error(
            StatusCode::NOT_FOUND,
            "no such plan, or you may not invite to it (read-write access needed)",
        ),
        Err(e) => internal_error(e),
    }
}

/// `ws://HOST` or `wss://HOST` as the client reached us.
fn base_url(headers: &HeaderMap, state: &AppState) -> String {
    let secure = state.tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https") || v.eq_ignore_ascii_case("wss"));
    let scheme = if secure { "wss" } else { "ws" };
    format!("{scheme}://{}", host(headers, state))
}

/// The host (and port) the client reached us at: its `Host` header if
/// sane, else the address we listen on.
pub(crate) fn host(headers: &HeaderMap, state: &AppState) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| state.local_addr.to_string())
}

#[derive(Deserialize)]
struct RedeemRequest {
    invite: String,
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    side: Option<String>,
}

/// The secret of an invite given as the secret itself or as the whole URL.
fn invite_secret(invite: &str) -> &str {
    let invite = invite.trim();
    let invite = invite.split(['?', '#']).next().unwrap_or(invite);
    invite.rsplit('/').next().unwrap_or(invite)
}

async fn redeem_invite(
    State(state): State<AppState>,
    body: Result<Json<RedeemRequest>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let secret = invite_secret(&body.invite).to_owned();
    if secret.is_empty() {
        return json_error(StatusCode::NOT_FOUND, &InviteError::Unknown.to_string());
    }
    let email = body.email.filter(|e| !e.trim().is_empty());
    let side = body.side.filter(|s| !s.trim().is_empty());
    let name = body.name;
    let result = state
        .hub
        .db()
        .call(move |db| db.redeem_invite(&secret, &name, email.as_deref(), side.as_deref()))
        .await;
    match result {
        Ok(Ok(redeemed)) => {
            tracing::info!(user = %redeemed.user, plan = %redeemed.plan, "invite redeemed");
            Json(json!({
                "user": redeemed.user,
                "token": redeemed.token,
                "plan": redeemed.plan,
                "url": plan_id::url(&redeemed.plan),
                "access": redeemed.access,
            }))
            .into_response()
        }
        Ok(Err(e)) => {
            let status = match e {
                InviteError::Unknown => StatusCode::NOT_FOUND,
                InviteError::Used | InviteError::Expired => StatusCode::GONE,
            };
            json_error(status, &e.to_string())
        }
        Err(crate::RelayError::InvalidName(_)) => json_error(
            StatusCode::BAD_REQUEST,
            "`name` must be 1 to 100 characters, no control characters",
        ),
        Err(e) => internal_error(e),
    }
}

async fn list_plans(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match authenticate(&state.hub, &headers, query.as_deref()).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let user_id = user.id;
    match state.hub.db().call(move |db| db.plans_for(user_id)).await {
        Ok(plans) => Json(plans).into_response(),
        Err(e) => internal_error(e),
    }
}

/// `GET /v1/plans/{plan}/deliveries`: `[{hash, user, email, at}]` in the
/// order the relay stored the changes. Any grant (read-only included) may
/// read them; an unknown plan, a malformed id and a plan the caller has no
/// grant on all get the same 404.
async fn list_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(plan): Path<String>,
) -> Response {
    let user = match authenticate(&state.hub, &headers, query.as_deref()).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let no_plan = || json_error(StatusCode::NOT_FOUND, "no such plan");
    let Some(plan) = plan_id::parse(&plan) else {
        return no_plan();
    };
    let user_id = user.id;
    let result = state
        .hub
        .db()
        .call(move |db| match db.plan_access(user_id, &plan)?.access {
            Some(_) => db.deliveries(&plan).map(Some),
            None => Ok(None),
        })
        .await;
    match result {
        Ok(Some(deliveries)) => Json(deliveries).into_response(),
        Ok(None) => no_plan(),
        Err(e) => internal_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::invite_secret;

    #[test]
    fn invite_secret_from_url_or_bare() {
        assert_eq!(invite_secret("abc"), "abc");
        assert_eq!(invite_secret(" ws://h:1/join/abc "), "abc");
        assert_eq!(invite_secret("wss://h/join/abc?x=1"), "abc");
    }
}
