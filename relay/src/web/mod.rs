//! The plan in a browser, served by the relay: a buyer's stakeholders open
//! the link from `map share --web` and see (and, with a read-write link,
//! edit) the plan with nothing to install and no account.
//!
//! Routes, all under `/web`:
//! - `GET /web/open?t=SECRET`: trade the link's secret for a session cookie
//!   (HTTP-only, `SameSite=Lax`, scoped to the plan's path) and redirect to
//!   the plan, so the secret leaves the address bar at once;
//! - `GET /web/plans/{id}` (the page), `/print` (printable), `/live` (the
//!   page's main part, for live updates), `/events` (server-sent events: one
//!   `change` event whenever the plan's stored changes grow), and
//!   `/export/{md,csv,xlsx,ics}` (downloads);
//! - `POST /web/plans/{id}/name`, `/tasks`, `/tasks/{task}/status`,
//!   `/tasks/{task}/edit`, `/comments`: edits, each an Automerge change on
//!   the relay's copy authored by the participant's name, stored, then
//!   passed on to every connection that has the plan open. Every form carries
//!   the session's CSRF token; a read-only session gets 403.
//!
//! The page is rendered on the server ([`page`]); `app.js` (no build step)
//! only adds live updates. Every response carries a strict
//! Content-Security-Policy: nothing loads from outside the relay. A missing,
//! expired or revoked session and a session for another plan all get the
//! same 401, so the web side never reveals whether a plan exists.

pub(crate) mod edit;
pub(crate) mod page;
pub mod sessions;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use map_export::Export;
use map_model::PlanView;
use map_model::history::HistoryEntry;
use serde::Deserialize;

use crate::http::AppState;
use crate::limits::LimitExceeded;
use sessions::{LinkError, WebSession};

/// Name of the session cookie (one per plan: its path is the plan's).
const COOKIE: &str = "map_session";
/// Largest form accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");

/// The web routes (merged into the relay's router).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/web/open", get(open_link))
        .route("/web/static/app.css", get(css))
        .route("/web/static/app.js", get(js))
        .route("/web/plans/{plan}", get(plan_page))
        .route("/web/plans/{plan}/print", get(print_page))
        .route("/web/plans/{plan}/live", get(live))
        .route("/web/plans/{plan}/events", get(events))
        .route("/web/plans/{plan}/export/{format}", get(export))
        .route("/web/plans/{plan}/name", post(edit::set_name))
        .route("/web/plans/{plan}/tasks", post(edit::add_task))
        .route(
            "/web/plans/{plan}/tasks/{task}/status",
            post(edit::set_status),
        )
        .route("/web/plans/{plan}/tasks/{task}/edit", post(edit::edit_task))
        .route("/web/plans/{plan}/comments", post(edit::add_comment))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(security_headers))
}

/// Headers every web response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/web/static/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn css() -> Response {
    static_asset("text/css; charset=utf-8", APP_CSS)
}

async fn js() -> Response {
    static_asset("text/javascript; charset=utf-8", APP_JS)
}

fn static_asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// An HTML page with a status.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

/// The one answer for no session, an expired or revoked one, and a session
/// for another plan.
pub(crate) fn no_session() -> Response {
    html(
        StatusCode::UNAUTHORIZED,
        page::error_page(
            "Open your link to see this plan",
            "This page needs the link you were given (it looks like https://HOST/web/open?t=...). \
             If you opened it before, it may have expired or been withdrawn: ask the plan's owner for a new one.",
            None,
        ),
    )
}

/// A relay failure, as a page that says what to do.
pub(crate) fn internal_error(e: crate::RelayError) -> Response {
    tracing::error!(error = %e, "web request failed");
    let message = if crate::error::is_disk_full(&e) {
        "The relay's disk is full, so nothing was saved. Tell whoever runs the relay; try again once space is freed."
    } else {
        "The relay could not complete this request; nothing was changed. Try again in a moment."
    };
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        page::error_page("Something went wrong on the relay", message, None),
    )
}

/// The session secrets the request's cookies carry.
fn cookie_secrets(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty() && value.len() <= 100)
                .then(|| value.trim_matches('"').to_owned())
        })
        .collect()
}

/// The request's valid session for `plan`, or the 401 to send.
pub(crate) async fn session(
    state: &AppState,
    headers: &HeaderMap,
    plan: &str,
) -> Result<(String, WebSession), Response> {
    let secrets = cookie_secrets(headers);
    if secrets.is_empty() || crate::plan_id::parse(plan).is_none() {
        return Err(no_session());
    }
    let plan = plan.to_owned();
    let found = state
        .hub
        .db()
        .call(move |db| {
            for secret in secrets {
                if let Some(session) = db.web_session(&secret, &plan)? {
                    return Ok(Some((secret, session)));
                }
            }
            Ok(None)
        })
        .await;
    match found {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(no_session()),
        Err(e) => Err(internal_error(e)),
    }
}

/// Whether the client reached us over HTTPS (directly or through a proxy).
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// `http://HOST` or `https://HOST` as the client reached us.
pub(crate) fn web_base(state: &AppState, headers: &HeaderMap) -> String {
    let scheme = if secure(state, headers) {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", crate::http::host(headers, state))
}

#[derive(Deserialize)]
struct OpenQuery {
    #[serde(default)]
    t: String,
}

async fn open_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<OpenQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let secret = query.map(|q| q.0.t).unwrap_or_default();
    let secret = secret.trim().to_owned();
    if secret.is_empty() || secret.len() > 100 {
        return link_error(LinkError::Unknown);
    }
    let opened = state
        .hub
        .db()
        .call(move |db| db.open_web_link(&secret))
        .await;
    let (cookie, session) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => return link_error(e),
        Err(e) => return internal_error(e),
    };
    tracing::info!(plan = %session.plan, access = %session.access, "web link opened");
    let max_age = (session.expires_at - crate::db::now_ms()).max(0) / 1000;
    let path = format!("/web/plans/{}", session.plan);
    let cookie = format!(
        "{COOKIE}={cookie}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure(&state, &headers) {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = see_other(&path);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn link_error(e: LinkError) -> Response {
    let status = match e {
        LinkError::Unknown => StatusCode::NOT_FOUND,
        LinkError::Expired => StatusCode::GONE,
        LinkError::Exhausted => StatusCode::TOO_MANY_REQUESTS,
    };
    html(
        status,
        page::error_page("This link does not open a plan", &e.to_string(), None),
    )
}

/// 303 to `location` (after a form, or after opening a link).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The plan as the relay holds it now: its view and history.
pub(crate) async fn load(
    state: &AppState,
    plan: &str,
) -> Result<Option<(PlanView, Vec<HistoryEntry>)>, crate::RelayError> {
    let today = chrono::Local::now().date_naive();
    let loaded = state
        .hub
        .read_plan(plan, |doc| {
            let view = map_model::view::build(doc, today);
            (view, map_model::history::history(doc))
        })
        .await?;
    match loaded {
        None => Ok(None),
        Some((Ok(view), history)) => Ok(Some((view, history))),
        Some((Err(e), _)) => Err(crate::RelayError::Internal(format!(
            "plan {plan} cannot be shown: {e}"
        ))),
    }
}

fn export_of(plan: &str, view: PlanView, history: &[HistoryEntry]) -> Export {
    Export {
        id: plan.to_owned(),
        view,
        history: history
            .iter()
            .take(map_export::HISTORY_HIGHLIGHTS)
            .map(|h| map_export::Change {
                hash: h.hash.clone(),
                author: Some(h.author.clone()),
                time_ms: h.time,
                message: (!h.message.is_empty()).then(|| h.message.clone()),
            })
            .collect(),
        now_ms: crate::db::now_ms(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Render {
    Page,
    Print,
    Fragment,
}

async fn render(state: AppState, headers: HeaderMap, plan: String, how: Render) -> Response {
    let (_, session) = match session(&state, &headers, &plan).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (view, history) = match load(&state, &plan).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return no_session(),
        Err(e) => return internal_error(e),
    };
    let can_write = session.access.can_write();
    if can_write && session.user.is_none() && how == Render::Page {
        return html(StatusCode::OK, page::name_page(&view, &plan, &session.csrf));
    }
    let export = export_of(&plan, view, &history);
    let timeline = map_export::gantt::svg(&export);
    let cx = page::PageContext {
        plan: &plan,
        can_write: can_write && session.user.is_some(),
        user: session.user.as_ref().map(|u| u.name.as_str()),
        csrf: &session.csrf,
        timeline: timeline.as_deref(),
        print: how == Render::Print,
    };
    let body = match how {
        Render::Fragment => page::fragment(&export.view, &history, &cx),
        Render::Page | Render::Print => page::page(&export.view, &history, &cx),
    };
    html(StatusCode::OK, body)
}

async fn plan_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Response {
    render(state, headers, plan, Render::Page).await
}

async fn print_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Response {
    render(state, headers, plan, Render::Print).await
}

async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Response {
    render(state, headers, plan, Render::Fragment).await
}

async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((plan, format)): Path<(String, String)>,
) -> Response {
    if let Err(response) = session(&state, &headers, &plan).await {
        return response;
    }
    let (view, history) = match load(&state, &plan).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return no_session(),
        Err(e) => return internal_error(e),
    };
    let export = export_of(&plan, view, &history);
    let (kind, ext, bytes) = match format.as_str() {
        "md" => (
            "text/markdown; charset=utf-8",
            "md",
            Ok(map_export::md::markdown(&export).into_bytes()),
        ),
        "csv" => (
            "text/csv; charset=utf-8",
            "csv",
            map_export::csv::write(&export.view),
        ),
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
            map_export::xlsx::workbook(&export),
        ),
        "ics" => (
            "text/calendar; charset=utf-8",
            "ics",
            Ok(map_export::ics::calendar(&export, None).into_bytes()),
        ),
        _ => {
            return html(
                StatusCode::NOT_FOUND,
                page::error_page(
                    "No such download",
                    "Downloads are md, csv, xlsx and ics.",
                    Some(&format!("/web/plans/{plan}")),
                ),
            );
        }
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(e) => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                page::error_page(
                    "This download could not be made",
                    &e.to_string(),
                    Some(&format!("/web/plans/{plan}")),
                ),
            );
        }
    };
    let disposition = format!(
        "attachment; filename=\"{}.{ext}\"",
        file_stem(&export.view.header.title)
    );
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A safe file name from a plan title: ASCII letters, digits and dashes.
fn file_stem(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 60 {
            break;
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "plan".to_owned()
    } else {
        out.to_owned()
    }
}

/// How often an idle event stream re-checks that its session is still valid.
const EVENTS_RECHECK: Duration = Duration::from_secs(30);

async fn events(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Response {
    let (secret, session) = match session(&state, &headers, &plan).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    // An open event stream holds a connection like a WebSocket does.
    let permit = match state.limits.acquire(remote.ip()) {
        Ok(permit) => permit,
        Err(LimitExceeded::Total) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                page::error_page("Too many connections", "Try again later.", None),
            );
        }
        Err(LimitExceeded::PerIp) => {
            return html(
                StatusCode::TOO_MANY_REQUESTS,
                page::error_page(
                    "Too many connections from this address",
                    "Close other tabs of this plan and try again.",
                    None,
                ),
            );
        }
    };
    let watch = Watch {
        state: state.clone(),
        plan,
        secret,
        changes: state.hub.watch_changes(),
        shutdown: state.shutdown.clone(),
        expires_at: session.expires_at,
        _permit: permit,
        _alive: state.alive.clone(),
    };
    Sse::new(change_events(watch))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// What an open event stream holds.
struct Watch {
    state: AppState,
    plan: String,
    secret: String,
    changes: tokio::sync::broadcast::Receiver<std::sync::Arc<str>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    expires_at: i64,
    _permit: crate::limits::ConnectionPermit,
    _alive: tokio::sync::mpsc::Sender<()>,
}

impl Watch {
    /// Whether the session may still see the plan.
    async fn still_valid(&self) -> bool {
        let (secret, plan) = (self.secret.clone(), self.plan.clone());
        matches!(
            self.state
                .hub
                .db()
                .call(move |db| db.web_session(&secret, &plan))
                .await,
            Ok(Some(_))
        )
    }
}

/// One `change` event each time the plan's stored changes grow; ends when
/// the session ends or the relay shuts down.
fn change_events(watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    use tokio::sync::broadcast::error::RecvError;
    stream::unfold(watch, |mut w| async move {
        loop {
            if *w.shutdown.borrow() {
                return None;
            }
            let left = w.expires_at - crate::db::now_ms();
            if left <= 0 {
                return None;
            }
            let wait = EVENTS_RECHECK.min(Duration::from_millis(left.unsigned_abs()));
            let changed = tokio::select! {
                r = w.changes.recv() => match r {
                    Ok(id) => *id == *w.plan,
                    // Missed some: the plan may have changed.
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return None,
                },
                _ = w.shutdown.changed() => return None,
                _ = tokio::time::sleep(wait) => false,
            };
            if !w.still_valid().await {
                return None;
            }
            if changed {
                return Some((Ok(Event::default().event("change").data("plan changed")), w));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(
            file_stem("Acme × Globex: Q4 rollout"),
            "acme-globex-q4-rollout"
        );
        assert_eq!(file_stem("\"; rm -rf /"), "rm-rf");
        assert_eq!(file_stem("   "), "plan");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; map_session=abc; b=2"),
        );
        assert_eq!(cookie_secrets(&headers), vec!["abc".to_owned()]);
        headers.insert(header::COOKIE, HeaderValue::from_static("map_session="));
        assert!(cookie_secrets(&headers).is_empty());
    }
}
