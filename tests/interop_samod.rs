//! Interop with samod 0.16 (the Rust automerge-repo implementation) as an
//! independent peer of the relay, both ways. samod connects through a
//! tokio-tungstenite WebSocket we open ourselves with an
//! `Authorization: Bearer` header, wrapped in `samod::Transport`.

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ObjType, ROOT, ReadDoc, Value as AmValue};
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use map_e2e::{Participant, Relay, heads, http, task, task_id};
use samod::{BackoffConfig, DialError, Dialer, DocHandle, DocumentId, Repo, Transport};
use serde_json::json;
use tokio::time::timeout;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

const WAIT: Duration = Duration::from_secs(30);

/// Dials the relay with a bearer token in the upgrade request.
struct AuthDialer {
    url: samod::Url,
    token: String,
}

impl Dialer for AuthDialer {
    type Error = Infallible;

    fn url(&self) -> samod::Url {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<'static, Result<Transport, DialError<Infallible>>> {
        let url = self.url.to_string();
        let token = self.token.clone();
        Box::pin(async move {
            let mut req = url.into_client_request().map_err(DialError::transient)?;
            req.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).expect("header value"),
            );
            let (ws, _) = connect_async(req).await.map_err(DialError::transient)?;
            let (sink, stream) = ws.split();
            let stream = Box::pin(stream.filter_map(|m| async move {
                match m {
                    Ok(Message::Binary(b)) => Some(Ok(b.to_vec())),
                    Ok(_) => None, // ping/pong/close: not protocol messages
                    Err(e) => Some(Err(e)),
                }
            }));
            let sink = Box::pin(sink.with(|b: Vec<u8>| async move {
                Ok::<_, tungstenite::Error>(Message::Binary(b.into()))
            }));
            Ok(Transport::new(stream, sink))
        })
    }
}

/// A samod repo connected to the relay; returns the repo and its connection.
async fn samod_peer(relay: &Relay, token: &str) -> (Repo, samod::ConnectionId) {
    let repo = Repo::build_tokio()
        .with_peer_id(samod::PeerId::from(format!(
            "samod-{}",
            uuid::Uuid::new_v4()
        )))
        .load()
        .await;
    let dialer = repo
        .dial(
            BackoffConfig {
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(1),
                max_retries: Some(20),
            },
            Arc::new(AuthDialer {
                url: samod::Url::parse(&format!("{}/", relay.url())).unwrap(),
                token: token.to_string(),
            }),
        )
        .expect("dial");
    timeout(WAIT, dialer.established())
        .await
        .expect("samod did not connect to the relay within 30 s")
        .expect("samod handshake with the relay failed");
    let conn = dialer.connection_id().expect("connected");
    (repo, conn)
}

/// Reads a string field that may be a plain string or Text.
fn read_str(doc: &Automerge, obj: &automerge::ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key).ok()?? {
        (AmValue::Scalar(s), _) => s.as_str().map(str::to_string),
        (AmValue::Object(ObjType::Text), id) => doc.text(&id).ok(),
        _ => None,
    }
}

fn task_obj(doc: &Automerge, task: &str) -> Option<automerge::ObjId> {
    let (_, tasks) = doc.get(ROOT, "tasks").ok()??;
    let (_, t) = doc.get(&tasks, task).ok()??;
    Some(t)
}

fn task_status(handle: &DocHandle, task: &str) -> Option<String> {
    handle.with_document(|doc| {
        let t = task_obj(doc, task)?;
        read_str(doc, &t, "status")
    })
}

fn set_status(handle: &DocHandle, task: &str, status: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ok = handle.with_document(|doc| {
        let Some(t) = task_obj(doc, task) else {
            return false;
        };
        doc.transact_with::<_, _, automerge::AutomergeError, _>(
            |_| {
                CommitOptions::default()
                    .with_message(format!("task {status} (from samod)"))
                    .with_time(now)
            },
            |tx| tx.put(&t, "status", status),
        )
        .is_ok()
    });
    assert!(ok, "samod could not edit task {task}");
}

fn samod_heads(handle: &DocHandle) -> Vec<String> {
    let mut h: Vec<String> =
        handle.with_document(|d| d.get_heads().iter().map(|h| h.to_string()).collect());
    h.sort();
    h
}

async fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a blocking CLI call off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A schema-1 plan with one task, written with plain automerge.
fn samod_plan(title: &str, tid: &str) -> Automerge {
    let mut doc = Automerge::new();
    doc.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| {
            CommitOptions::default()
                .with_message("plan created (samod)".to_string())
                .with_time(1_765_000_000_000)
        },
        |tx| {
            tx.put(ROOT, "schema", 1_u64)?;
            let header = tx.put_object(ROOT, "header", ObjType::Map)?;
            tx.put(&header, "title", title)?;
            tx.put(&header, "go_live", "2027-03-31")?;
            tx.put(&header, "created_at", 1_765_000_000_000_i64)?;
            for key in ["people", "milestones", "risks", "comments"] {
                tx.put_object(ROOT, key, ObjType::Map)?;
            }
            let tasks = tx.put_object(ROOT, "tasks", ObjType::Map)?;
            let t = tx.put_object(&tasks, tid, ObjType::Map)?;
            tx.put(&t, "title", "Task from samod")?;
            tx.put(&t, "status", "todo")?;
            tx.put(&t, "kind", "task")?;
            tx.put(&t, "priority", "medium")?;
            tx.put(&t, "order", 1.0_f64)?;
            tx.put(&t, "created_at", 1_765_000_000_000_i64)?;
            tx.put_object(&t, "deps", ObjType::Map)?;
            Ok(())
        },
    )
    .expect("build plan");
    doc
}

/// Asks the relay for an invite to `plan` (`POST /v1/invites`).
async fn api_invite(relay: &Relay, token: &str, plan: &str) -> String {
    let (url, token, plan) = (relay.http_url(), token.to_string(), plan.to_string());
    let (status, body) = blocking(move || {
        http(
            "POST",
            &format!("{url}/v1/invites"),
            Some(&token),
            Some(&json!({"plan": plan, "access": "rw", "side": "buyer", "expires_secs": 3600})),
        )
        .expect("POST /v1/invites")
    })
    .await;
    assert!(
        status == 200 || status == 201,
        "POST /v1/invites: {status} {body}"
    );
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["invite"]
        .as_str()
        .expect("invite")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samod_edits_a_plan_made_by_the_cli_and_back() {
    let relay = Relay::start();
    let token = relay.add_user("dana");
    let seller = Arc::new(Participant::new("Dana", "seller"));
    let (plan, kickoff, sign) = {
        let (seller, url, token) = (seller.clone(), relay.url().to_string(), token.clone());
        blocking(move || {
            let plan = seller.init_plan("Acme rollout", "saas");
            seller.add_remote("relay", &url, &token);
            seller.sync().ok();
            let v = seller.show();
            (
                plan,
                task_id(&v, "Kickoff meeting"),
                task_id(&v, "Contract signed"),
            )
        })
        .await
    };

    let (repo, conn) = samod_peer(&relay, &token).await;
    let doc_id = DocumentId::from_str(&plan).expect("plan id is a document id");
    let handle = timeout(WAIT, repo.find(doc_id))
        .await
        .expect("find timed out")
        .expect("repo stopped")
        .expect("samod must find the CLI's plan on the relay");
    poll_until("the plan's tasks in samod", || {
        task_status(&handle, &kickoff).is_some()
    })
    .await;

    // samod -> CLI.
    set_status(&handle, &kickoff, "done");
    timeout(WAIT, handle.they_have_our_changes(conn))
        .await
        .expect("the relay did not acknowledge samod's change within 30 s");
    let want = samod_heads(&handle);
    let view = {
        let seller = seller.clone();
        blocking(move || {
            seller.sync().ok();
            seller.show()
        })
        .await
    };
    assert_eq!(task(&view, "Kickoff meeting")["status"], "done");
    assert_eq!(heads(&view), want, "the CLI has exactly samod's heads");

    // CLI -> samod.
    {
        let seller = seller.clone();
        let sign = sign.clone();
        blocking(move || {
            seller.task_done(&sign);
            seller.sync().ok();
        })
        .await;
    }
    poll_until("the CLI's edit in samod", || {
        task_status(&handle, &sign).as_deref() == Some("done")
    })
    .await;
    let cli_heads = {
        let seller = seller.clone();
        blocking(move || heads(&seller.show())).await
    };
    poll_until("samod to converge on the CLI's heads", || {
        samod_heads(&handle) == cli_heads
    })
    .await;
    repo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_joins_and_edits_a_plan_made_by_samod() {
    let relay = Relay::start();
    let token = relay.add_user("sam");
    let (repo, conn) = samod_peer(&relay, &token).await;

    let tid = "samodtask001";
    let doc = samod_plan("Plan from samod", tid);
    let handle = repo.create(doc).await.expect("create");
    let id = handle.document_id().to_string();
    timeout(WAIT, handle.they_have_our_changes(conn))
        .await
        .expect("the relay did not take samod's new plan within 30 s");

    // An invite from the relay's API, redeemed by the CLI.
    let invite = api_invite(&relay, &token, &id).await;

    let buyer = Arc::new(Participant::new("Ana", "buyer"));
    let view = {
        let buyer = buyer.clone();
        blocking(move || {
            buyer.map(&["join", &invite]).ok();
            buyer.show()
        })
        .await
    };
    assert_eq!(view["header"]["title"], "Plan from samod");
    assert_eq!(task(&view, "Task from samod")["id"], tid);
    assert_eq!(heads(&view), samod_heads(&handle));

    // CLI -> samod.
    {
        let buyer = buyer.clone();
        blocking(move || {
            buyer.task_done(tid);
            buyer.sync().ok();
        })
        .await;
    }
    poll_until("the CLI's edit in samod", || {
        task_status(&handle, tid).as_deref() == Some("done")
    })
    .await;

    // samod -> CLI.
    set_status(&handle, tid, "blocked");
    timeout(WAIT, handle.they_have_our_changes(conn))
        .await
        .expect("the relay did not acknowledge samod's change");
    let after = {
        let buyer = buyer.clone();
        blocking(move || {
            buyer.sync().ok();
            buyer.show()
        })
        .await
    };
    assert_eq!(task(&after, "Task from samod")["status"], "blocked");
    repo.stop().await;
}

/// samod and the JS client share a plan through the relay alone (no CLI):
/// samod creates it, a second user redeems an invite through the API, the
/// JS client edits, samod sees it, and back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samod_and_js_client_share_a_plan_through_the_relay() {
    if !map_e2e::js_available() {
        return;
    }
    let relay = Relay::start();
    let token = relay.add_user("sam");
    let (repo, conn) = samod_peer(&relay, &token).await;
    let tid = "samodtask002";
    let handle = repo
        .create(samod_plan("Cross-client plan", tid))
        .await
        .expect("create");
    let id = handle.document_id().to_string();
    timeout(WAIT, handle.they_have_our_changes(conn))
        .await
        .expect("the relay did not take samod's new plan within 30 s");

    let invite = api_invite(&relay, &token, &id).await;
    let (status, body) = {
        let url = relay.http_url();
        blocking(move || {
            http(
                "POST",
                &format!("{url}/v1/invites/redeem"),
                None,
                Some(&json!({"invite": invite, "name": "Jay", "side": "buyer"})),
            )
            .expect("POST /v1/invites/redeem")
        })
        .await
    };
    assert!(status == 200 || status == 201, "redeem: {status} {body}");
    let redeemed: serde_json::Value = serde_json::from_str(&body).expect("redeem JSON");
    let js_token = redeemed["token"].as_str().expect("{token}").to_string();
    assert_eq!(
        redeemed["plan"]
            .as_str()
            .map(|p| p.trim_start_matches("automerge:")),
        Some(id.as_str()),
        "redeem returns the plan: {redeemed}"
    );

    // JS -> samod.
    let url = format!("automerge:{id}");
    let (ws, t, u) = (relay.url().to_string(), js_token.clone(), url.clone());
    let out =
        blocking(move || map_e2e::node("peer.mjs", &["edit", &ws, &t, &u, tid, "done"])).await;
    out.ok();
    let js_heads: Vec<String> = serde_json::from_value(out.json()["heads"].clone()).unwrap();
    poll_until("the JS edit in samod", || {
        task_status(&handle, tid).as_deref() == Some("done")
    })
    .await;
    poll_until("samod to have the JS heads", || {
        samod_heads(&handle) == js_heads
    })
    .await;

    // samod -> JS.
    set_status(&handle, tid, "blocked");
    timeout(WAIT, handle.they_have_our_changes(conn))
        .await
        .expect("the relay did not acknowledge samod's change");
    let (ws, t, u) = (relay.url().to_string(), js_token, url);
    blocking(move || map_e2e::node("peer.mjs", &["wait", &ws, &t, &u, tid, "blocked"]))
        .await
        .ok();
    repo.stop().await;
}
