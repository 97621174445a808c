//! The web page served by the relay, over real HTTP against a real relay on
//! a loopback port: web links and sessions, the access rules (no session,
//! expired or withdrawn link, another plan's session, read-only edits, CSRF),
//! escaping of hostile text, edits reaching sync peers, live events and
//! downloads.

mod common;

use std::time::Duration;

use automerge::Automerge;
use common::*;
use map_model::identity::Side;
use map_model::plan::NewTask;
use map_model::schema::TaskStatus;
use map_model::{Identity, PlanDoc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

const HOSTILE_TITLE: &str = "Acme <script>alert('t')</script> rollout";
const HOSTILE_TASK: &str = "Review <img src=x onerror=alert(1)> & sign";

/// A relay with one real plan (pushed by alice over the sync protocol) and
/// alice's connection, still open, with her copy.
struct Setup {
    relay: TestRelay,
    alice: String,
    conn: Client,
    replica: Replica,
    task_id: String,
}

async fn setup() -> Setup {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let seller = Identity::new("Alice", "alice@acme.test", Side::Seller);
    let mut plan = PlanDoc::create(HOSTILE_TITLE, &seller, 1_000).expect("plan");
    let today = chrono::Local::now().date_naive();
    let task_id = plan
        .add_task(
            &seller,
            2_000,
            today,
            NewTask {
                title: "Security review".into(),
                due: Some(today - chrono::Duration::days(3)),
                ..NewTask::default()
            },
        )
        .expect("task");
    plan.add_task(
        &seller,
        3_000,
        today,
        NewTask {
            title: HOSTILE_TASK.into(),
            ..NewTask::default()
        },
    )
    .expect("task");
    let mut replica = Replica::empty(&map_relay::plan_id::random());
    replica.doc = plan.doc_mut().document().clone();
    let heads = replica.heads();
    let mut conn = join(&relay.url(), &alice, "alice-1").await;
    sync_until(&mut conn, &mut replica, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    Setup {
        relay,
        alice,
        conn,
        replica,
        task_id,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `POST /v1/invites` with `web: true`; returns the link.
async fn web_link(relay: &TestRelay, token: &str, plan: &str, access: &str) -> String {
    let response = http()
        .post(relay.http("/v1/invites"))
        .bearer_auth(token)
        .json(&serde_json::json!({"plan": plan, "access": access, "web": true, "side": "buyer"}))
        .send()
        .await
        .expect("invite");
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.expect("json");
    body["invite"].as_str().expect("invite").to_owned()
}

/// A browser session: the cookie from opening a link.
struct Browser {
    relay_base: String,
    cookie: String,
    plan_path: String,
}

impl Browser {
    async fn open(link: &str) -> Browser {
        let response = http().get(link).send().await.expect("open");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        let set_cookie = response.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .to_owned();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
        assert!(
            set_cookie.contains(&format!("Path={location}")),
            "{set_cookie}"
        );
        assert!(
            !location.contains("t="),
            "the secret leaves the URL: {location}"
        );
        let cookie = set_cookie
            .split(';')
            .next()
            .expect("cookie pair")
            .to_owned();
        let relay_base = link.split("/web/").next().expect("base").to_owned();
        Browser {
            relay_base,
            cookie,
            plan_path: location,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.relay_base, self.plan_path, path)
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&self.cookie).expect("cookie"),
        );
        h
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        http()
            .get(self.url(path))
            .headers(self.headers())
            .send()
            .await
            .expect("get")
    }

    async fn page(&self) -> String {
        let response = self.get("").await;
        assert_eq!(response.status(), 200);
        response.text().await.expect("page")
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        http()
            .post(self.url(path))
            .headers(self.headers())
            .form(form)
            .send()
            .await
            .expect("post")
    }
}

/// The CSRF token of the first form on a page.
fn csrf(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form with a csrf token") + marker.len();
    page[start..].split('"').next().expect("token").to_owned()
}

fn task_status(doc: &Automerge, title: &str) -> Option<TaskStatus> {
    let view = map_model::view::build(doc, chrono::Local::now().date_naive()).ok()?;
    view.tasks
        .iter()
        .find(|t| t.title == title)
        .map(|t| t.status)
}

#[tokio::test]
async fn a_web_participant_edits_and_sync_peers_get_the_change() {
    let mut s = setup().await;
    let link = web_link(&s.relay, &s.alice, &s.replica.doc_id, "rw").await;
    assert!(
        link.starts_with(&format!("http://{}/web/open?t=", s.relay.addr)),
        "{link}"
    );
    let bea = Browser::open(&link).await;
    assert_eq!(
        bea.plan_path,
        format!("/web/plans/{}", s.replica.doc_id),
        "the link leads to its plan"
    );

    // First visit with a read-write link: who are you?
    let page = bea.page().await;
    assert!(page.contains("id=\"name-form\""), "{page}");
    let token = csrf(&page);
    // Edits wait for a name.
    let response = bea
        .post(
            &format!("/tasks/{}/status", s.task_id),
            &[("csrf", &token), ("status", "done")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        task_status(&s.replica.doc, "Security review"),
        Some(TaskStatus::Todo)
    );
    let response = bea
        .post(
            "/name",
            &[
                ("csrf", &token),
                ("name", "Bea Buyer"),
                ("email", "bea@globex.test"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let page = bea.page().await;
    assert!(
        page.contains("class=\"status-form\""),
        "edit controls shown"
    );
    assert!(page.contains("signed in as Bea Buyer"));
    assert!(
        page.contains("class=\"task overdue\""),
        "overdue highlighted"
    );
    let response = bea
        .post(
            &format!("/tasks/{}/status", s.task_id),
            &[("csrf", &token), ("status", "done")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Alice's open connection receives the change from the relay.
    sync_until(&mut s.conn, &mut s.replica, false, |r| {
        task_status(&r.doc, "Security review") == Some(TaskStatus::Done)
    })
    .await;
    let history = map_model::history::history(&s.replica.doc);
    assert_eq!(history[0].author, "Bea Buyer <bea@globex.test>");
    assert_eq!(history[0].message, "task done: Security review");
    // The relay records who delivered it.
    let deliveries: serde_json::Value = http()
        .get(
            s.relay
                .http(&format!("/v1/plans/{}/deliveries", s.replica.doc_id)),
        )
        .bearer_auth(&s.alice)
        .send()
        .await
        .expect("deliveries")
        .json()
        .await
        .expect("json");
    let last = deliveries.as_array().and_then(|d| d.last()).expect("one");
    assert_eq!(last["user"], "Bea Buyer");
    assert_eq!(last["hash"], history[0].hash);

    // Add a task, change a due date and owner, comment.
    let response = bea
        .post(
            "/tasks",
            &[
                ("csrf", &token),
                ("title", "Legal redlines"),
                ("due", "2027-01-15"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = bea
        .post(
            &format!("/tasks/{}/edit", s.task_id),
            &[("csrf", &token), ("due", "2027-02-01"), ("owner", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = bea
        .post(
            "/comments",
            &[
                ("csrf", &token),
                ("target", &s.task_id),
                ("text", "Sent to our CISO"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    sync_until(&mut s.conn, &mut s.replica, false, |r| {
        let Ok(view) = map_model::view::build(&r.doc, chrono::Local::now().date_naive()) else {
            return false;
        };
        view.tasks.iter().any(|t| t.title == "Legal redlines")
            && view.comments.iter().any(|c| c.text == "Sent to our CISO")
            && view.tasks.iter().any(|t| {
                t.title == "Security review" && t.due == chrono::NaiveDate::from_ymd_opt(2027, 2, 1)
            })
    })
    .await;

    // A refused edit says why and stores nothing.
    let before = s.replica.heads();
    let response = bea
        .post("/tasks", &[("csrf", &token), ("title", "  ")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.expect("text");
    assert!(text.contains("must not be empty"), "{text}");
    let response = bea
        .post(
            "/tasks",
            &[("csrf", &token), ("title", "x"), ("due", "someday")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = bea.page().await;
    assert!(!page.contains(">x<"));
    assert_eq!(s.replica.heads(), before);
}

#[tokio::test]
async fn access_rules() {
    let s = setup().await;
    let plan = s.replica.doc_id.clone();
    let rw = web_link(&s.relay, &s.alice, &plan, "rw").await;
    let ro = web_link(&s.relay, &s.alice, &plan, "ro").await;
    let client = http();

    // No session: every route says the same thing.
    let mut first_body = None;
    for path in ["", "/live", "/events", "/print", "/export/csv"] {
        let response = client
            .get(s.relay.http(&format!("/web/plans/{plan}{path}")))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body = response.text().await.expect("body");
        assert!(body.contains("Open your link"), "{body}");
        first_body.get_or_insert(body);
    }
    let response = client
        .post(s.relay.http(&format!("/web/plans/{plan}/tasks")))
        .form(&[("csrf", "x"), ("title", "sneaky")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Unknown and malformed links.
    for link in ["/web/open?t=nope", "/web/open", "/web/open?t="] {
        let response = client.get(s.relay.http(link)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{link}");
    }

    // Read-only: no edit controls, edits refused, plan unchanged.
    let reader = Browser::open(&ro).await;
    let page = reader.page().await;
    assert!(!page.contains("<form"), "read-only page has no forms");
    assert!(page.contains("read-only"));
    assert!(page.contains("Security review"));
    let response = reader
        .post(
            &format!("/tasks/{}/status", s.task_id),
            &[("csrf", "anything"), ("status", "done")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Read-write, but a wrong CSRF token or a cross-site request.
    let writer = Browser::open(&rw).await;
    let token = csrf(&writer.page().await);
    let response = writer
        .post("/name", &[("csrf", &token), ("name", "Bea")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = writer
        .post(
            &format!("/tasks/{}/status", s.task_id),
            &[("csrf", "not-the-token"), ("status", "done")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = http()
        .post(writer.url(&format!("/tasks/{}/status", s.task_id)))
        .headers(writer.headers())
        .header("origin", "https://evil.example")
        .form(&[("csrf", token.as_str()), ("status", "done")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = reader.page().await;
    assert!(page.contains("data-status=\"todo\""), "no edit got through");

    // A session for one plan does not open another (same answer as none).
    let mut other = Replica::new_plan("Other deal");
    let heads = other.heads();
    let mut conn = join(&s.relay.url(), &s.alice, "alice-2").await;
    sync_until(&mut conn, &mut other, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    let response = http()
        .get(s.relay.http(&format!("/web/plans/{}", other.doc_id)))
        .headers(writer.headers())
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        Some(response.text().await.expect("body")),
        first_body,
        "another plan's session gets the same answer as no session"
    );
    let response = http()
        .get(
            s.relay
                .http(&format!("/web/plans/{}", map_relay::plan_id::random())),
        )
        .headers(writer.headers())
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Withdrawn link: it opens nothing and its sessions end.
    let links = s
        .relay
        .handle
        .db()
        .list_web_links(Some(&plan))
        .expect("list");
    let rw_id = links
        .iter()
        .find(|l| l.access == map_relay::Access::ReadWrite)
        .expect("rw link")
        .id;
    assert!(s.relay.handle.db().revoke_web_link(rw_id).expect("revoke"));
    let response = client.get(&rw).send().await.expect("open");
    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(writer.get("").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reader.get("").await.status(), StatusCode::OK);

    // Revoking the web participant's user ends their session too.
    let rw2 = web_link(&s.relay, &s.alice, &plan, "rw").await;
    let carl = Browser::open(&rw2).await;
    let token = csrf(&carl.page().await);
    carl.post("/name", &[("csrf", &token), ("name", "Carl")])
        .await;
    assert_eq!(carl.get("").await.status(), StatusCode::OK);
    s.relay
        .handle
        .db()
        .revoke_user("Carl")
        .expect("revoke user");
    assert_eq!(carl.get("").await.status(), StatusCode::UNAUTHORIZED);

    // Expired link.
    let response = http()
        .post(s.relay.http("/v1/invites"))
        .bearer_auth(&s.alice)
        .json(&serde_json::json!({"plan": plan, "web": true, "expires_secs": 1}))
        .send()
        .await
        .expect("invite");
    let body: serde_json::Value = response.json().await.expect("json");
    let short = body["invite"].as_str().expect("invite").to_owned();
    let early = Browser::open(&short).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        client.get(&short).send().await.expect("open").status(),
        StatusCode::GONE
    );
    assert_eq!(early.get("").await.status(), StatusCode::UNAUTHORIZED);

    // A read-only relay user cannot make web links.
    let response = http()
        .post(s.relay.http("/v1/invites"))
        .bearer_auth(s.relay.add_user("reader"))
        .json(&serde_json::json!({"plan": plan, "web": true}))
        .send()
        .await
        .expect("invite");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_text_is_escaped_and_pages_are_locked_down() {
    let s = setup().await;
    let link = web_link(&s.relay, &s.alice, &s.replica.doc_id, "ro").await;
    let reader = Browser::open(&link).await;
    let response = reader.get("").await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let page = response.text().await.expect("page");
    assert!(page.contains("Acme &lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; rollout"));
    assert!(page.contains("Review &lt;img src=x onerror=alert(1)&gt; &amp; sign"));
    assert!(!page.contains("<script>"), "no inline script at all");
    assert!(!page.contains("<img"));
    assert!(!page.contains(" style=\""), "no inline style (CSP)");
    // Only our own script and stylesheet are referenced.
    assert!(page.contains("<script src=\"/web/static/app.js\" defer></script>"));
    for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "url("] {
        assert!(
            !page.contains(outside),
            "the page loads nothing from outside: {outside}"
        );
    }
    for asset in ["/web/static/app.js", "/web/static/app.css"] {
        let response = http().get(s.relay.http(asset)).send().await.expect("asset");
        assert_eq!(response.status(), 200, "{asset}");
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset} loads nothing from outside"
        );
    }
    // Printable view: the plan without controls or script.
    let print = reader.get("/print").await.text().await.expect("print");
    assert!(print.contains("Security review"));
    assert!(!print.contains("app.js"));
}

#[tokio::test]
async fn downloads_of_the_exports() {
    let s = setup().await;
    let link = web_link(&s.relay, &s.alice, &s.replica.doc_id, "ro").await;
    let reader = Browser::open(&link).await;
    for (format, kind, check) in [
        ("md", "text/markdown", "# Acme"),
        ("csv", "text/csv", "Security review"),
        ("ics", "text/calendar", "BEGIN:VCALENDAR"),
        ("xlsx", "application/vnd.openxmlformats", "PK"),
    ] {
        let response = reader.get(&format!("/export/{format}")).await;
        assert_eq!(response.status(), 200, "{format}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .expect("type")
                .starts_with(kind),
            "{format}"
        );
        let disposition = headers["content-disposition"].to_str().expect("disp");
        assert_eq!(
            disposition,
            format!("attachment; filename=\"acme-script-alert-t-script-rollout.{format}\"")
        );
        let bytes = response.bytes().await.expect("bytes");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(check), "{format}: {text:.200}");
    }
    assert_eq!(
        reader.get("/export/pdf").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_page_hears_about_changes_live() {
    let mut s = setup().await;
    let link = web_link(&s.relay, &s.alice, &s.replica.doc_id, "ro").await;
    let reader = Browser::open(&link).await;
    let mut events = reader.get("/events").await;
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/event-stream")
    );
    // Alice changes the plan over the sync protocol.
    let alice = Identity::new("Alice", "alice@acme.test", Side::Seller);
    let mut plan = PlanDoc::load(&s.replica.doc.save()).expect("load");
    let today = chrono::Local::now().date_naive();
    plan.add_task(
        &alice,
        9_000,
        today,
        NewTask {
            title: "Kickoff".into(),
            ..NewTask::default()
        },
    )
    .expect("task");
    let changes = plan.doc_mut().get_changes(&s.replica.heads());
    s.replica.doc.apply_changes(changes).expect("apply");
    let heads = s.replica.heads();
    sync_until(&mut s.conn, &mut s.replica, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.contains("event: change") {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no change event: {other:?}; saw {seen:?}"),
        }
    }
    // What the page then fetches has the new task.
    let live = reader.get("/live").await.text().await.expect("live");
    assert!(live.contains("Kickoff"));
    assert!(!live.contains("<html"), "a fragment, not a page");
    // An open event stream does not hold up a shutdown, and it ends.
    s.relay.stop().await;
    let ended = tokio::time::timeout(WAIT, async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream ends when the relay stops");
}
