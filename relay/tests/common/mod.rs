//! Test helpers: a real relay on 127.0.0.1:0 with its SQLite file in a temp
//! dir, a raw protocol client (tokio-tungstenite + map_sync::message) and an
//! automerge peer that syncs through it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT};
use futures_util::{SinkExt, StreamExt};
use map_relay::{Access, Relay, RelayConfig, RelayHandle};
use map_sync::{Message, PeerMetadata};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any expected frame.
pub const WAIT: Duration = Duration::from_secs(5);

/// A relay running in this process.
pub struct TestRelay {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub handle: RelayHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<map_relay::Result<()>>>,
    config: RelayConfig,
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut RelayConfig)) -> TestRelay {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = RelayConfig::new(dir.path().join("relay.db"));
        adjust(&mut config);
        Self::run(dir, config).await
    }

    async fn run(dir: tempfile::TempDir, config: RelayConfig) -> TestRelay {
        let relay = Relay::open(config.clone()).expect("open relay");
        let bound = relay.bind("127.0.0.1:0").await.expect("bind");
        let addr = bound.local_addr();
        let handle = bound.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        TestRelay {
            dir,
            addr,
            handle,
            stop: Some(stop),
            task: Some(task),
            config,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.config.data.clone()
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn add_user(&self, name: &str) -> String {
        self.handle.db().add_user(name).expect("add user")
    }

    pub fn grant(&self, plan: &str, user: &str, access: Access) {
        self.handle.db().grant(plan, user, access).expect("grant");
    }

    /// Stop the relay and wait until it has shut down.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("relay stops in time")
                .expect("relay task")
                .expect("relay serve result");
        }
    }

    /// Stop and start again on the same database (new port).
    pub async fn restart(mut self) -> TestRelay {
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        Self::run(dir, self.config.clone()).await
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw protocol client.
pub struct Client {
    pub ws: Ws,
    pub peer_id: String,
    pub relay_peer: String,
}

/// Connect with `Authorization: Bearer`.
pub async fn connect(url: &str, token: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

pub fn join_message(peer_id: &str, versions: &[&str]) -> Message {
    Message::Join {
        sender_id: peer_id.into(),
        peer_metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true,
        }),
        supported_protocol_versions: versions.iter().map(|v| v.to_string()).collect(),
    }
}

pub async fn send(ws: &mut Ws, message: &Message) {
    ws.send(WsMessage::Binary(message.encode().into()))
        .await
        .expect("send");
}

/// The next protocol message, skipping pings/pongs. `None` on close/end.
pub async fn next_message(ws: &mut Ws, wait: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match frame {
            Ok(WsMessage::Binary(bytes)) => {
                return Some(Message::decode(&bytes).expect("relay sends valid messages"));
            }
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
            Ok(WsMessage::Close(_)) | Err(_) => return None,
            Ok(other) => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The raw bytes of the next binary frame.
pub async fn next_frame(ws: &mut Ws) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match frame {
            Ok(WsMessage::Binary(bytes)) => return Some(bytes.to_vec()),
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
            _ => return None,
        }
    }
}

/// Whether the relay closes the connection within `WAIT` (frames before
/// the close are returned).
pub async fn drain_until_closed(ws: &mut Ws) -> (Vec<Message>, bool) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return (seen, false),
            Ok(None) => return (seen, true),
            Ok(Some(Err(_))) => return (seen, true),
            Ok(Some(Ok(WsMessage::Close(_)))) => return (seen, true),
            Ok(Some(Ok(WsMessage::Binary(bytes)))) => {
                if let Ok(m) = Message::decode(&bytes) {
                    seen.push(m);
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Connect and complete the handshake.
pub async fn join(url: &str, token: &str, peer_id: &str) -> Client {
    let mut ws = connect(url, token).await.expect("connect");
    send(&mut ws, &join_message(peer_id, &["1"])).await;
    let reply = next_message(&mut ws, WAIT).await.expect("peer reply");
    let Message::Peer { sender_id, .. } = reply else {
        panic!("expected peer, got {reply:?}");
    };
    Client {
        ws,
        peer_id: peer_id.into(),
        relay_peer: sender_id,
    }
}

/// A participant's copy of a plan, synced through a [`Client`].
pub struct Replica {
    pub doc: Automerge,
    pub state: sync::State,
    pub doc_id: String,
}

impl Replica {
    pub fn empty(doc_id: &str) -> Replica {
        Replica {
            doc: Automerge::new(),
            state: sync::State::new(),
            doc_id: doc_id.into(),
        }
    }

    /// A new plan with one change.
    pub fn new_plan(title: &str) -> Replica {
        let mut replica = Replica::empty(&map_relay::plan_id::random());
        replica.edit("title", title);
        replica
    }

    pub fn edit(&mut self, key: &str, value: &str) {
        self.doc
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(ROOT, key, value)?;
                Ok(())
            })
            .expect("edit");
    }

    pub fn get(&self, key: &str) -> Option<String> {
        use automerge::ReadDoc;
        self.doc
            .get(ROOT, key)
            .ok()
            .flatten()
            .and_then(|(v, _)| v.into_string().ok())
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Build our next sync message as a protocol message, if any.
    pub fn outgoing(&mut self, client: &Client, request: bool) -> Option<Message> {
        let msg = self.doc.generate_sync_message(&mut self.state)?;
        let (sender_id, target_id, document_id, data) = (
            client.peer_id.clone(),
            client.relay_peer.clone(),
            self.doc_id.clone(),
            msg.encode(),
        );
        Some(if request {
            Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
        } else {
            Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            }
        })
    }

    pub fn receive(&mut self, data: &[u8]) {
        let msg = sync::Message::decode(data).expect("sync message");
        self.doc
            .receive_sync_message(&mut self.state, msg)
            .expect("receive");
    }
}

/// Sync `replica` with the relay until `done(replica)` holds. Returns the
/// non-sync messages seen meanwhile.
pub async fn sync_until(
    client: &mut Client,
    replica: &mut Replica,
    request: bool,
    done: impl Fn(&Replica) -> bool,
) -> Vec<Message> {
    let mut other = Vec::new();
    if let Some(m) = replica.outgoing(client, request) {
        send(&mut client.ws, &m).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(replica) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(message) = next_message(&mut client.ws, left).await else {
            panic!("no convergence; saw {other:?}");
        };
        match message {
            Message::Sync {
                document_id, data, ..
            } if document_id == replica.doc_id => {
                replica.receive(&data);
                if let Some(m) = replica.outgoing(client, false) {
                    send(&mut client.ws, &m).await;
                }
            }
            other_message => other.push(other_message),
        }
    }
    other
}

/// A new plan with one change, pushed through `client` until the relay
/// acknowledged it.
pub async fn push_new_plan(client: &mut Client, title: &str) -> Replica {
    let mut plan = Replica::new_plan(title);
    let heads = plan.heads();
    sync_until(client, &mut plan, false, |r| r.state.shared_heads == heads).await;
    plan
}

/// A new plan whose `notes` hold about `bytes` of hex that compresses
/// poorly, pushed through `client` until the relay acknowledged it.
pub async fn push_big_plan(client: &mut Client, bytes: usize) -> Replica {
    let mut plan = Replica::new_plan("big");
    let notes: String = (0..bytes as u64 / 16)
        .map(|i| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    plan.edit("notes", &notes);
    let heads = plan.heads();
    sync_until(client, &mut plan, false, |r| r.state.shared_heads == heads).await;
    plan
}

/// Answer sync messages for a while (lets the relay finish its round).
pub async fn settle(client: &mut Client, replica: &mut Replica, wait: Duration) -> Vec<Message> {
    let mut other = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Some(message) = next_message(&mut client.ws, wait).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages never stop: {other:?}"
        );
        match message {
            Message::Sync {
                document_id, data, ..
            } if document_id == replica.doc_id => {
                replica.receive(&data);
                if let Some(m) = replica.outgoing(client, false) {
                    send(&mut client.ws, &m).await;
                }
            }
            other_message => other.push(other_message),
        }
    }
    other
}

/// Heads of a plan as stored in the relay database (opened separately).
pub fn stored_heads(db_path: &std::path::Path, doc_id: &str) -> Option<Vec<ChangeHash>> {
    let db = map_relay::RelayDb::open_existing(db_path).expect("open db");
    let stored = db.load_plan(doc_id).expect("load")?;
    let mut doc = Automerge::new();
    doc.load_incremental(&stored.bytes).expect("load doc");
    Some(doc.get_heads())
}

/// A sync message that carries every change made since `base`, built by hand
/// so that it is sent even to a peer that said it is read-only (as a
/// malicious client would).
pub fn forced_push(client: &Client, replica: &Replica, base: &[ChangeHash]) -> Message {
    let msg = sync::Message {
        heads: replica.heads(),
        need: vec![],
        have: vec![],
        changes: replica.doc.save_after(base).into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    Message::Sync {
        sender_id: client.peer_id.clone(),
        target_id: client.relay_peer.clone(),
        document_id: replica.doc_id.clone(),
        data: msg.encode(),
    }
}
