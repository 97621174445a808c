//! Interoperability of the sync client with samod 0.16 (an independent
//! Rust implementation of automerge-repo) serving WebSockets through axum:
//! if our protocol implementation were wrong, these would not converge.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, Automerge, ChangeHash, ROOT, ReadDoc};
use axum::Router;
use axum::extract::ws::{Message as AxMessage, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::StreamExt;
use map_sync::client::{ConnectOptions, Connection, DocOutcome, SyncDoc};
use map_sync::{Message, SyncError, WatchCommand, WatchEvent, WatchOptions};
use samod::{Repo, ShareConfig, SharePolicy};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(20);

struct Server {
    repo: Repo,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start<P: SharePolicy>(policy: P, token: Option<&'static str>) -> Server {
        let repo = Repo::build_tokio()
            .with_peer_id("samod-relay".into())
            .with_share_policy(policy)
            .load()
            .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let acceptor = repo
            .make_acceptor(samod::Url::parse(&url).unwrap())
            .unwrap();
        let app = Router::new().route(
            "/",
            get(move |headers: HeaderMap, upgrade: WebSocketUpgrade| {
                let acceptor = acceptor.clone();
                async move {
                    if let Some(t) = token {
                        let presented = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
                        if presented != Some(format!("Bearer {t}").as_str()) {
                            return StatusCode::UNAUTHORIZED.into_response();
                        }
                    }
                    upgrade
                        .on_upgrade(move |socket| async move {
                            let _ = acceptor.accept_axum(socket, None);
                        })
                        .into_response()
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { repo, url, task }
    }

    async fn stop(self) {
        self.repo.stop().await;
        self.task.abort();
    }

    fn opts(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new(&self.url, None);
        o.timeout = Duration::from_secs(10);
        o.settle = Duration::from_secs(1);
        o
    }

    async fn heads(&self, id: &str) -> Option<BTreeSet<ChangeHash>> {
        let handle = self
            .repo
            .find(samod::DocumentId::from_str(id).unwrap())
            .await
            .unwrap()?;
        Some(handle.with_document(|d| d.get_heads().into_iter().collect()))
    }

    async fn edit(&self, id: &str, key: &str, value: &str) {
        let handle = self
            .repo
            .find(samod::DocumentId::from_str(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        let (key, value) = (key.to_owned(), value.to_owned());
        handle.with_document(move |d: &mut Automerge| {
            d.transact_with(
                |_| CommitOptions::default().with_message(format!("set {key}")),
                |tx| tx.put(ROOT, key.as_str(), value.as_str()),
            )
            .unwrap();
        });
    }
}

fn new_doc_id() -> String {
    bs58::encode(uuid::Uuid::new_v4().as_bytes())
        .with_check()
        .into_string()
}

fn local_doc(key: &str, value: &str) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.set_author(Some(automerge::Author::from(b"Ann <ann@x.io>".to_vec())));
    doc.put(ROOT, key, value).unwrap();
    doc.commit_with(
        CommitOptions::default()
            .with_message("create plan")
            .with_time(1_764_000_000_000),
    );
    doc
}

fn edit_local(doc: &mut AutoCommit, key: &str, value: &str) {
    doc.put(ROOT, key, value).unwrap();
    doc.commit_with(CommitOptions::default().with_message(format!("set {key}")));
}

fn heads(doc: &mut AutoCommit) -> BTreeSet<ChangeHash> {
    doc.get_heads().into_iter().collect()
}

fn get_str(doc: &AutoCommit, key: &str) -> Option<String> {
    doc.get(ROOT, key)
        .unwrap()
        .map(|(v, _)| v.as_str().unwrap_or_default().to_owned())
}

async fn next(events: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("no event in time")
        .expect("watcher ended")
}

async fn sync_once(opts: ConnectOptions, docs: &mut [SyncDoc]) -> Vec<map_sync::DocReport> {
    tokio::time::timeout(LIMIT, async {
        let mut conn = Connection::connect(opts).await.unwrap();
        let reports = conn.sync(docs, |_, _| Ok(())).await.unwrap();
        conn.close().await;
        reports
    })
    .await
    .expect("sync took too long")
}

#[tokio::test]
async fn pushes_a_new_document_to_samod() {
    let server = Server::start(ShareConfig::read_write(), None).await;
    let id = new_doc_id();
    let mut docs = vec![SyncDoc::new(&id, local_doc("title", "Acme rollout"))];
    let reports = sync_once(server.opts(), &mut docs).await;
    assert_eq!(reports[0].outcome, DocOutcome::InSync);
    assert!(reports[0].received.is_empty());
    assert_eq!(server.heads(&id).await, Some(heads(&mut docs[0].doc)));
    server.stop().await;
}

#[tokio::test]
async fn fetches_from_samod_then_receives_its_changes() {
    let server = Server::start(ShareConfig::read_write(), None).await;
    let mut seed = Automerge::new();
    seed.transact_with(
        |_| CommitOptions::default().with_message("seed"),
        |tx| tx.put(ROOT, "title", "From samod"),
    )
    .unwrap();
    let handle = server.repo.create(seed).await.unwrap();
    let id = handle.document_id().to_string();

    let mut docs = vec![SyncDoc::wanted(&id)];
    let mut persisted = 0;
    let reports = tokio::time::timeout(LIMIT, async {
        let mut conn = Connection::connect(server.opts()).await.unwrap();
        let r = conn
            .sync(&mut docs, |sd, changes| {
                assert!(!changes.is_empty());
                assert_eq!(sd.doc.get_heads().len(), 1);
                persisted += 1;
                Ok(())
            })
            .await
            .unwrap();
        conn.close().await;
        r
    })
    .await
    .unwrap();
    assert_eq!(reports[0].outcome, DocOutcome::InSync);
    assert!(persisted >= 1);
    assert_eq!(
        get_str(&docs[0].doc, "title").as_deref(),
        Some("From samod")
    );
    assert_eq!(
        reports[0].received.last().unwrap().message.as_deref(),
        Some("seed")
    );

    // samod edits; a second session (same doc, persisted sync state) gets it.
    server.edit(&id, "status", "green").await;
    let stored = docs[0].state.encode();
    docs[0].state = automerge::sync::State::decode(&stored).unwrap();
    let reports = sync_once(server.opts(), &mut docs).await;
    assert_eq!(reports[0].outcome, DocOutcome::InSync);
    assert_eq!(reports[0].received.len(), 1);
    assert_eq!(
        reports[0].received[0].message.as_deref(),
        Some("set status")
    );
    assert_eq!(get_str(&docs[0].doc, "status").as_deref(), Some("green"));
    assert_eq!(server.heads(&id).await, Some(heads(&mut docs[0].doc)));
    server.stop().await;
}

#[tokio::test]
async fn unknown_document_is_unavailable() {
    let server = Server::start(ShareConfig::read_write(), None).await;
    let mut docs = vec![SyncDoc::wanted(new_doc_id())];
    let reports = sync_once(server.opts(), &mut docs).await;
    assert_eq!(reports[0].outcome, DocOutcome::Unavailable);
    server.stop().await;
}

#[tokio::test]
async fn two_clients_converge_through_samod() {
    let server = Server::start(ShareConfig::read_write(), None).await;
    let id = new_doc_id();
    let mut a = vec![SyncDoc::new(&id, local_doc("title", "Plan"))];
    sync_once(server.opts(), &mut a).await;
    let mut b = vec![SyncDoc::wanted(&id)];
    let r = sync_once(server.opts(), &mut b).await;
    assert_eq!(r[0].outcome, DocOutcome::InSync);
    // The change author travels with the change.
    assert_eq!(r[0].received[0].author.as_deref(), Some("Ann <ann@x.io>"));
    assert_eq!(r[0].received[0].timestamp, 1_764_000_000_000);

    // Concurrent edits on both sides, plus several documents in one session.
    edit_local(&mut a[0].doc, "owner", "ann");
    edit_local(&mut b[0].doc, "due", "2027-01-31");
    let other = new_doc_id();
    a.push(SyncDoc::new(&other, local_doc("title", "Second plan")));
    let ra = sync_once(server.opts(), &mut a).await;
    assert!(ra.iter().all(|r| r.outcome == DocOutcome::InSync), "{ra:?}");
    let rb = sync_once(server.opts(), &mut b).await;
    assert_eq!(rb[0].received.len(), 1);
    let ra = sync_once(server.opts(), &mut a).await;
    assert_eq!(ra[0].received.len(), 1);
    assert_eq!(heads(&mut a[0].doc), heads(&mut b[0].doc));
    assert_eq!(get_str(&b[0].doc, "owner").as_deref(), Some("ann"));
    assert_eq!(get_str(&a[0].doc, "due").as_deref(), Some("2027-01-31"));
    assert_eq!(server.heads(&id).await, Some(heads(&mut a[0].doc)));
    server.stop().await;
}

#[tokio::test]
async fn read_only_access_is_reported_not_waited_for() {
    let server = Server::start(ShareConfig::read_only(), None).await;
    let mut seed = Automerge::new();
    seed.transact(|tx| tx.put(ROOT, "title", "Read me"))
        .unwrap();
    let id = server
        .repo
        .create(seed)
        .await
        .unwrap()
        .document_id()
        .to_string();
    let mut docs = vec![SyncDoc::wanted(&id)];
    let r = sync_once(server.opts(), &mut docs).await;
    assert_eq!(r[0].outcome, DocOutcome::InSync);

    edit_local(&mut docs[0].doc, "title", "changed");
    edit_local(&mut docs[0].doc, "x", "y");
    let started = std::time::Instant::now();
    let r = sync_once(server.opts(), &mut docs).await;
    assert_eq!(r[0].outcome, DocOutcome::NotAccepted { local_changes: 2 });
    assert_eq!(
        r[0].outcome.to_string(),
        "relay did not accept your 2 local changes (read-only access?)"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    server.stop().await;
}

#[tokio::test]
async fn token_is_sent_and_refusal_is_reported() {
    let server = Server::start(ShareConfig::read_write(), Some("s3cret")).await;
    let mut opts = server.opts();
    let err = Connection::connect(opts.clone()).await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("refused the token"));
    opts.token = Some("wrong".into());
    let err = Connection::connect(opts.clone()).await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthorized { .. }));
    opts.token = Some("s3cret".into());
    let conn = Connection::connect(opts).await.unwrap();
    assert_eq!(conn.relay_peer_id(), "samod-relay");
    conn.close().await;
    server.stop().await;
}

#[tokio::test]
async fn unreachable_relay_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    drop(listener);
    let err = map_sync::connect(&url, None, "map-test").await.unwrap_err();
    assert!(matches!(err, SyncError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("cannot reach relay at ws://127.0.0.1:"));
    assert!(text.contains("map-relay serve"));
    let err = map_sync::connect("http://x/", None, "p").await.unwrap_err();
    assert!(matches!(err, SyncError::InvalidUrl { .. }), "{err:?}");
}

/// A fake relay that answers the handshake, then sends `frame`.
async fn hostile_server(frame: AxMessage) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/",
        get(move |upgrade: WebSocketUpgrade| {
            let frame = frame.clone();
            async move {
                upgrade.on_upgrade(move |mut socket| async move {
                    let Some(Ok(AxMessage::Binary(join))) = socket.next().await else {
                        return;
                    };
                    let Ok(Message::Join { sender_id, .. }) = Message::decode(&join) else {
                        return;
                    };
                    let peer = Message::Peer {
                        sender_id: "fake".into(),
                        peer_metadata: None,
                        selected_protocol_version: "1".into(),
                        target_id: sender_id,
                    };
                    let _ = socket.send(AxMessage::Binary(peer.encode().into())).await;
                    let _ = socket.send(frame).await;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                })
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test]
async fn hostile_relay_gives_protocol_errors() {
    let id = new_doc_id();
    let bad_sync = Message::Sync {
        sender_id: "fake".into(),
        target_id: "x".into(),
        document_id: id.clone(),
        data: vec![0x42, 0xff, 0xff, 0xff],
    };
    for frame in [
        AxMessage::Binary(vec![0xa1, 0x61].into()),
        AxMessage::Binary(bad_sync.encode().into()),
        AxMessage::Text("hello".into()),
    ] {
        let url = hostile_server(frame).await;
        let mut opts = ConnectOptions::new(&url, None);
        opts.timeout = Duration::from_secs(5);
        let mut conn = Connection::connect(opts).await.unwrap();
        let mut docs = vec![SyncDoc::new(&id, local_doc("a", "b"))];
        let err = conn.sync(&mut docs, |_, _| Ok(())).await.unwrap_err();
        assert!(matches!(err, SyncError::Protocol { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn watch_receives_and_pushes() {
    let server = Server::start(ShareConfig::read_write(), None).await;
    let id = new_doc_id();
    let mut docs = vec![SyncDoc::new(&id, local_doc("title", "Watched"))];
    let mut opts = WatchOptions::new(server.opts());
    opts.backoff_initial = Duration::from_millis(50);
    let (tx, mut rx) = mpsc::channel(8);
    let (events_tx, mut events) = mpsc::unbounded_channel::<String>();

    let watcher = tokio::spawn(async move {
        let r = map_sync::watch(&opts, &mut docs, &mut rx, |ev| {
            let line = match ev {
                WatchEvent::Connected { .. } => "connected".to_owned(),
                WatchEvent::Changes { changes, doc } => {
                    format!(
                        "changes {} {}",
                        changes[0].message.clone().unwrap_or_default(),
                        get_str(&doc.doc, "status").unwrap_or_default()
                    )
                }
                WatchEvent::InSync { .. } => "in-sync".to_owned(),
                other => format!("{other:?}"),
            };
            let _ = events_tx.send(line);
            Ok(())
        })
        .await;
        (r, docs)
    });

    assert_eq!(next(&mut events).await, "connected");
    assert_eq!(next(&mut events).await, "in-sync");

    // A remote change arrives by itself.
    server.edit(&id, "status", "amber").await;
    assert_eq!(next(&mut events).await, "changes set status amber");

    // A local change is pushed when signalled.
    let mut local = local_doc("title", "Watched");
    edit_local(&mut local, "owner", "bob");
    tx.send(WatchCommand::Merge {
        id: id.clone(),
        bytes: local.save(),
    })
    .await
    .unwrap();
    assert_eq!(next(&mut events).await, "in-sync");
    let server_heads = server.heads(&id).await.unwrap();

    tx.send(WatchCommand::Stop).await.unwrap();
    let (r, mut docs) = tokio::time::timeout(LIMIT, watcher).await.unwrap().unwrap();
    r.unwrap();
    assert_eq!(server_heads, heads(&mut docs[0].doc));
    assert_eq!(get_str(&docs[0].doc, "owner").as_deref(), Some("bob"));
    server.stop().await;
}

#[tokio::test]
async fn watch_reconnects_after_the_relay_comes_back() {
    // Reserve a port, start nothing: the watcher must report and retry.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("ws://{addr}/");
    let mut copts = ConnectOptions::new(&url, None);
    copts.timeout = Duration::from_secs(5);
    let mut opts = WatchOptions::new(copts);
    opts.backoff_initial = Duration::from_millis(50);
    opts.backoff_max = Duration::from_millis(200);
    let id = new_doc_id();
    let mut docs = vec![SyncDoc::new(&id, local_doc("title", "Offline first"))];
    let (tx, mut rx) = mpsc::channel(8);
    let (events_tx, mut events) = mpsc::unbounded_channel::<String>();
    let watcher = tokio::spawn(async move {
        map_sync::watch(&opts, &mut docs, &mut rx, |ev| {
            let line = match ev {
                WatchEvent::Connected { .. } => "connected".to_owned(),
                WatchEvent::Disconnected { .. } => "disconnected".to_owned(),
                WatchEvent::InSync { .. } => "in-sync".to_owned(),
                other => format!("{other:?}"),
            };
            let _ = events_tx.send(line);
            Ok(())
        })
        .await
    });
    assert_eq!(next(&mut events).await, "disconnected");

    // Bring up samod on that port.
    let repo = Repo::build_tokio().with_peer_id("late".into()).load().await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let acceptor = repo
        .make_acceptor(samod::Url::parse(&url).unwrap())
        .unwrap();
    let app = Router::new().route(
        "/",
        get(move |upgrade: WebSocketUpgrade| {
            let acceptor = acceptor.clone();
            async move {
                upgrade.on_upgrade(move |socket| async move {
                    let _ = acceptor.accept_axum(socket, None);
                })
            }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    loop {
        match next(&mut events).await.as_str() {
            "disconnected" => continue,
            "connected" => break,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(next(&mut events).await, "in-sync");
    let handle = repo
        .find(samod::DocumentId::from_str(&id).unwrap())
        .await
        .unwrap();
    assert!(handle.is_some());
    drop(tx);
    tokio::time::timeout(LIMIT, watcher)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    repo.stop().await;
    task.abort();
}

/// How the scripted relay below treats a client's changes.
#[derive(Clone, Copy)]
enum Dropping {
    /// Answers the first sync message per document, then goes quiet.
    GoesQuiet,
    /// Answers every message, but never keeps the client's changes and sets
    /// no read-only flag (a relay unlike samod).
    AnswersUnchanged,
}

/// A relay written directly on `automerge::sync` that never accepts changes.
async fn dropping_relay(mode: Dropping) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/",
        get(move |upgrade: WebSocketUpgrade| async move {
            upgrade.on_upgrade(move |mut socket| async move {
                use automerge::sync::SyncDoc as _;
                let mut doc = AutoCommit::new();
                doc.put(ROOT, "title", "relay copy").unwrap();
                doc.commit();
                let mut state = automerge::sync::State::new();
                let mut answered = 0;
                while let Some(Ok(AxMessage::Binary(frame))) = socket.next().await {
                    let reply = match Message::decode(&frame) {
                        Ok(Message::Join { sender_id, .. }) => Message::Peer {
                            sender_id: "dropper".into(),
                            peer_metadata: None,
                            selected_protocol_version: "1".into(),
                            target_id: sender_id,
                        },
                        Ok(Message::Sync {
                            sender_id,
                            document_id,
                            data,
                            ..
                        }) => {
                            answered += 1;
                            if matches!(mode, Dropping::GoesQuiet) && answered > 1 {
                                continue;
                            }
                            let msg = automerge::sync::Message::decode(&data).unwrap();
                            // Apply to a scratch copy: the state moves on,
                            // the relay's document does not.
                            let mut scratch = doc.fork();
                            scratch
                                .sync()
                                .receive_sync_message(&mut state, msg)
                                .unwrap();
                            let Some(out) = doc.sync().generate_sync_message(&mut state) else {
                                continue;
                            };
                            Message::Sync {
                                sender_id: "dropper".into(),
                                target_id: sender_id,
                                document_id,
                                data: out.encode(),
                            }
                        }
                        _ => continue,
                    };
                    if socket
                        .send(AxMessage::Binary(reply.encode().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test]
async fn relay_that_drops_changes_without_flag_is_reported() {
    for mode in [Dropping::AnswersUnchanged, Dropping::GoesQuiet] {
        let url = dropping_relay(mode).await;
        let mut opts = ConnectOptions::new(&url, None);
        opts.timeout = Duration::from_secs(3);
        opts.settle = Duration::from_millis(500);
        let mut docs = vec![SyncDoc::new(new_doc_id(), local_doc("title", "mine"))];
        let started = std::time::Instant::now();
        let r = sync_once(opts, &mut docs).await;
        assert_eq!(
            r[0].outcome,
            DocOutcome::NotAccepted { local_changes: 1 },
            "{r:?}"
        );
        // The relay's change did arrive.
        assert_eq!(r[0].received.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(6));
    }
}
