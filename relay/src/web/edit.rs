//! Edits from the web page: each form becomes one Automerge change, made
//! with the plan model's own rules (the same as `map` on the command line),
//! authored by the participant's name and the session's actor, stored by
//! the relay and passed on to everyone who has the plan open.
//!
//! Every edit checks, in order: a valid session for this plan (else 401),
//! write access (else 403), the CSRF token and that the request did not come
//! from another site (else 403), a name (else back to the name form). A
//! change the model refuses (an unknown owner, an empty title, a bad date)
//! gets a 400 page that says what to fix; nothing is stored.

use automerge::{ActorId, AutoCommit, Automerge, Change};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::NaiveDate;
use map_model::identity::Side;
use map_model::plan::{NewTask, TaskEdit};
use map_model::schema::TaskStatus;
use map_model::{Identity, ModelError, PlanDoc};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::sessions::WebSession;
use super::{html, internal_error, no_session, page, see_other, session};
use crate::http::AppState;

/// What an edit needs to know about the moment it is made.
pub(crate) struct Moment {
    now: i64,
    today: NaiveDate,
}

/// A 400 page for a refused edit.
fn refused(plan: &str, message: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        page::error_page(
            "That change was not made",
            message,
            Some(&format!("/web/plans/{plan}")),
        ),
    )
}

fn forbidden(plan: &str, message: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        page::error_page(
            "That change was not made",
            message,
            Some(&format!("/web/plans/{plan}")),
        ),
    )
}

/// Whether the request came from a page of this relay: `Sec-Fetch-Site`
/// (sent by current browsers) must not say cross-site, and an `Origin`
/// header, if present, must name the host the request was sent to.
fn same_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return false;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        // Our pages say `Referrer-Policy: no-referrer`, so browsers send
        // `Origin: null` even on our own forms; they also say where the
        // request came from in `Sec-Fetch-Site`, which must then vouch.
        Some("null") => fetch_site == Some("same-origin"),
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
        }
    }
}

/// The session, if it may edit: the checks every form goes through.
async fn writer(
    state: &AppState,
    headers: &HeaderMap,
    plan: &str,
    csrf: &str,
) -> Result<(String, WebSession), Response> {
    let (secret, session) = session(state, headers, plan).await?;
    if !session.access.can_write() {
        return Err(forbidden(
            plan,
            "This link is read-only: you can see the plan but not change it. Ask the plan's owner for an edit link.",
        ));
    }
    let token_ok = bool::from(csrf.as_bytes().ct_eq(session.csrf.as_bytes()));
    if !token_ok || !same_site(headers) {
        return Err(forbidden(
            plan,
            "This form was out of date or came from another site. Reload the plan and try again.",
        ));
    }
    Ok((secret, session))
}

/// A form that could not be read.
fn bad_form(plan: &str, e: FormRejection) -> Response {
    refused(
        plan,
        &format!("The form could not be read ({e}). Reload the page and try again."),
    )
}

/// A form that carries the session's CSRF token.
pub(crate) trait WebForm {
    /// The token the form was rendered with.
    fn csrf(&self) -> &str;
}

/// Read a form and run the writer checks: the form and the session, or the
/// response to send.
async fn accept<T: WebForm>(
    state: &AppState,
    headers: &HeaderMap,
    plan: &str,
    form: Result<Form<T>, FormRejection>,
) -> Result<(T, String, WebSession), Response> {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return Err(bad_form(plan, e)),
    };
    let (secret, session) = writer(state, headers, plan, form.csrf()).await?;
    Ok((form, secret, session))
}

/// Make one change to the plan as the session's participant.
async fn change(
    state: &AppState,
    plan: &str,
    session: &WebSession,
    apply: impl FnOnce(&mut PlanDoc, &Identity, &Moment) -> Result<(), ModelError> + Send,
) -> Response {
    let Some(user) = session.user.clone() else {
        // Not named yet: the page asks first.
        return see_other(&format!("/web/plans/{plan}"));
    };
    let identity = Identity::new(
        user.name.clone(),
        user.email.clone().unwrap_or_default(),
        Side::from_stored(session.side.as_deref().unwrap_or("other")),
    );
    let actor = match hex::decode(&session.actor) {
        Ok(bytes) if !bytes.is_empty() => ActorId::from(bytes),
        _ => return internal_error(crate::RelayError::Internal("bad session actor".into())),
    };
    let moment = Moment {
        now: crate::db::now_ms(),
        today: chrono::Local::now().date_naive(),
    };
    let made = state
        .hub
        .apply_local(plan, user.id, "web", |doc: &Automerge| {
            changes_for(doc, actor, |p| apply(p, &identity, &moment))
        })
        .await;
    match made {
        Ok(Some(Ok(()))) => {
            tracing::info!(plan, user = %user.name, "web edit stored");
            see_other(&format!("/web/plans/{plan}"))
        }
        Ok(Some(Err(e))) => refused(plan, &edit_error(&e)),
        Ok(None) => no_session(),
        Err(e) => internal_error(e),
    }
}

/// The new changes `edit` makes on a copy of `doc` by `actor`.
fn changes_for(
    doc: &Automerge,
    actor: ActorId,
    edit: impl FnOnce(&mut PlanDoc) -> Result<(), ModelError>,
) -> Result<Vec<Change>, ModelError> {
    let mut copy = AutoCommit::load(&doc.save())?;
    copy.set_actor(actor);
    let mut plan = PlanDoc::from_doc(copy)?;
    let before = plan.heads();
    edit(&mut plan)?;
    Ok(plan.doc_mut().get_changes(&before))
}

/// A model error as a sentence for the page.
fn edit_error(e: &ModelError) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!(
            "{}{}.",
            first.to_uppercase(),
            chars.as_str().trim_end_matches('.')
        ),
        None => "The change was refused.".to_owned(),
    }
}

/// A date from a form: `YYYY-MM-DD` (what a date input sends) or anything
/// `map` accepts (`fri`, `+3d`, ...); empty means none.
fn form_date(input: &str) -> Result<Option<NaiveDate>, String> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(None);
    }
    let today = chrono::Local::now().date_naive();
    map_model::dates::parse_date(input, today)
        .map(Some)
        .map_err(|e| format!("The due date is not right: {e}."))
}

fn optional_id(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

#[derive(Deserialize)]
pub(crate) struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

impl WebForm for NameForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /web/plans/{plan}/name`: who the participant is (once).
pub(crate) async fn set_name(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    form: Result<Form<NameForm>, FormRejection>,
) -> Response {
    let (form, secret, _) = match accept(&state, &headers, &plan, form).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let name = form.name.trim().to_owned();
    if name.is_empty()
        || name.chars().count() > 100
        || name.chars().any(|c| c.is_control() || c == '<' || c == '>')
    {
        return refused(
            &plan,
            "Give your name: 1 to 100 characters, without < or >.",
        );
    }
    let email = optional_id(&form.email);
    if email
        .as_ref()
        .is_some_and(|e| e.len() > 200 || !e.contains('@'))
    {
        return refused(
            &plan,
            "That email address does not look right; leave it empty or fix it.",
        );
    }
    let plan_id = plan.clone();
    let named = state
        .hub
        .db()
        .call(move |db| db.name_web_session(&secret, &plan_id, &name, email.as_deref()))
        .await;
    match named {
        Ok(Some(user)) => {
            tracing::info!(plan = %plan, user = %user.name, "web participant named");
            see_other(&format!("/web/plans/{plan}"))
        }
        Ok(None) => no_session(),
        Err(e) => internal_error(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

impl WebForm for StatusForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /web/plans/{plan}/tasks/{task}/status`.
pub(crate) async fn set_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((plan, task)): Path<(String, String)>,
    form: Result<Form<StatusForm>, FormRejection>,
) -> Response {
    let (form, _, session) = match accept(&state, &headers, &plan, form).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let status: TaskStatus = match form.status.parse() {
        Ok(status) => status,
        Err(e) => return refused(&plan, &edit_error(&e)),
    };
    change(&state, &plan, &session, move |p, by, at| {
        p.set_status(by, at.now, at.today, &task, status)
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct EditForm {
    #[serde(default)]
    csrf: String,
    due: Option<String>,
    owner: Option<String>,
}

impl WebForm for EditForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /web/plans/{plan}/tasks/{task}/edit`: due date and owner.
pub(crate) async fn edit_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((plan, task)): Path<(String, String)>,
    form: Result<Form<EditForm>, FormRejection>,
) -> Response {
    let (form, _, session) = match accept(&state, &headers, &plan, form).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let due = match form.due.as_deref().map(form_date).transpose() {
        Ok(due) => due,
        Err(message) => return refused(&plan, &message),
    };
    change(&state, &plan, &session, move |p, by, at| {
        let edit = TaskEdit {
            due,
            owner: form.owner.as_deref().map(optional_id),
            ..TaskEdit::default()
        };
        p.edit_task(by, at.now, &task, edit)
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct AddTaskForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    milestone: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    due: String,
}

impl WebForm for AddTaskForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /web/plans/{plan}/tasks`.
pub(crate) async fn add_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    form: Result<Form<AddTaskForm>, FormRejection>,
) -> Response {
    let (form, _, session) = match accept(&state, &headers, &plan, form).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let due = match form_date(&form.due) {
        Ok(due) => due,
        Err(message) => return refused(&plan, &message),
    };
    change(&state, &plan, &session, move |p, by, at| {
        let task = NewTask {
            title: form.title.trim().to_owned(),
            milestone: optional_id(&form.milestone),
            owner: optional_id(&form.owner),
            due,
            ..NewTask::default()
        };
        p.add_task(by, at.now, at.today, task).map(|_| ())
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct CommentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    text: String,
}

impl WebForm for CommentForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /web/plans/{plan}/comments`.
pub(crate) async fn add_comment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    form: Result<Form<CommentForm>, FormRejection>,
) -> Response {
    let (form, _, session) = match accept(&state, &headers, &plan, form).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    change(&state, &plan, &session, move |p, by, at| {
        p.add_comment(by, at.now, form.target.trim(), &form.text)
            .map(|_| ())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn same_site_rules() {
        let mut h = HeaderMap::new();
        assert!(same_site(&h), "old browsers send neither header");
        h.insert(header::HOST, HeaderValue::from_static("relay.example:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://relay.example:8080"),
        );
        assert!(same_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_site(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_site(&h));
        // What Chromium sends on our own forms under `no-referrer`.
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_site(&h));
        h.remove("sec-fetch-site");
        assert!(!same_site(&h), "a null origin alone proves nothing");
    }

    #[test]
    fn form_dates() {
        assert_eq!(form_date("").unwrap(), None);
        assert_eq!(
            form_date("2026-12-24").unwrap(),
            NaiveDate::from_ymd_opt(2026, 12, 24)
        );
        assert!(form_date("someday").is_err());
    }
}
