//! The relay's wire protocol seen from a raw WebSocket client: CBOR frames
//! of the automerge-repo protocol (version "1"), encoded and decoded here by
//! field name with ciborium, independent of the project's own codec.

use std::collections::BTreeMap;
use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable};
use ciborium::Value as Cbor;
use futures_util::{SinkExt, StreamExt};
use map_e2e::Relay;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

const STEP: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One decoded protocol message (a CBOR map with string keys).
#[derive(Debug, Clone)]
struct Msg(BTreeMap<String, Cbor>);

impl Msg {
    fn ty(&self) -> &str {
        self.str("type").unwrap_or("<no type>")
    }
    fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.as_text())
    }
    fn bytes(&self, k: &str) -> Option<&[u8]> {
        self.0
            .get(k)
            .and_then(|v| v.as_bytes())
            .map(|b| b.as_slice())
    }
}

fn encode(fields: Vec<(&str, Cbor)>) -> Vec<u8> {
    let map = Cbor::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Cbor::Text(k.into()), v))
            .collect(),
    );
    let mut out = Vec::new();
    ciborium::into_writer(&map, &mut out).expect("encode CBOR");
    out
}

fn decode(bytes: &[u8]) -> Msg {
    let v: Cbor = ciborium::from_reader(bytes).expect("relay sent invalid CBOR");
    let Cbor::Map(entries) = v else {
        panic!("relay frame is not a CBOR map: {v:?}")
    };
    Msg(entries
        .into_iter()
        .filter_map(|(k, v)| k.into_text().ok().map(|k| (k, v)))
        .collect())
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_string())
}

fn random_doc_id() -> String {
    bs58::encode(uuid::Uuid::new_v4().as_bytes())
        .with_check()
        .into_string()
}

/// Opens the WebSocket with `Authorization: Bearer TOKEN` (if given).
async fn connect(url: &str, token: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut req = format!("{url}/").into_client_request()?;
    if let Some(t) = token {
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
    }
    let (ws, _) = timeout(STEP, connect_async(req))
        .await
        .expect("WebSocket connect timed out")?;
    Ok(ws)
}

/// A protocol peer that has completed the handshake.
struct Peer {
    ws: Ws,
    id: String,
    server: String,
}

impl Peer {
    async fn join(relay: &Relay, token: &str, name: &str) -> Peer {
        let ws = connect(relay.url(), Some(token))
            .await
            .expect("upgrade with a valid token must succeed");
        let id = format!("{name}-{}", uuid::Uuid::new_v4());
        let mut peer = Peer {
            ws,
            id,
            server: String::new(),
        };
        peer.send(vec![
            ("type", text("join")),
            ("senderId", text(&peer.id.clone())),
            ("peerMetadata", Cbor::Map(vec![])),
            ("supportedProtocolVersions", Cbor::Array(vec![text("1")])),
        ])
        .await;
        let reply = peer.recv().await.expect("no reply to join");
        assert_eq!(
            reply.ty(),
            "peer",
            "join must be answered by `peer`: {reply:?}"
        );
        assert_eq!(reply.str("selectedProtocolVersion"), Some("1"), "{reply:?}");
        assert_eq!(reply.str("targetId"), Some(peer.id.as_str()), "{reply:?}");
        peer.server = reply
            .str("senderId")
            .expect("peer message has senderId")
            .to_string();
        peer
    }

    async fn send(&mut self, fields: Vec<(&str, Cbor)>) {
        self.ws
            .send(Message::Binary(encode(fields).into()))
            .await
            .expect("send frame");
    }

    /// Next protocol message, or None on close / timeout (`STEP`).
    async fn recv(&mut self) -> Option<Msg> {
        self.recv_within(STEP).await
    }

    async fn recv_within(&mut self, d: Duration) -> Option<Msg> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match timeout(left, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Binary(b)))) => return Some(decode(&b)),
                Ok(Some(Ok(Message::Close(_)))) => return None,
                Ok(Some(Ok(Message::Text(t)))) => panic!("relay sent a text frame: {t}"),
                Ok(Some(Ok(_))) => continue, // ping/pong
            }
        }
    }

    async fn send_sync(&mut self, ty: &str, doc: &str, data: Vec<u8>) {
        let (me, server) = (self.id.clone(), self.server.clone());
        self.send(vec![
            ("type", text(ty)),
            ("senderId", text(&me)),
            ("targetId", text(&server)),
            ("documentId", text(doc)),
            ("data", Cbor::Bytes(data)),
        ])
        .await;
    }

    /// Runs the automerge sync protocol for `doc_id` until both sides have
    /// each other's heads. `first` is "request" (we do not have the doc) or
    /// "sync".
    async fn sync_doc(&mut self, doc_id: &str, doc: &mut AutoCommit, first: &str) {
        let mut state = sync::State::new();
        let msg = doc
            .sync()
            .generate_sync_message(&mut state)
            .expect("first sync message");
        self.send_sync(first, doc_id, msg.encode()).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(msg) = doc.sync().generate_sync_message(&mut state) {
                self.send_sync("sync", doc_id, msg.encode()).await;
            }
            if state.their_heads.as_ref() == Some(&doc.get_heads()) {
                return;
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("sync of {doc_id} did not converge in 20 s"));
            let Some(m) = self.recv_within(left).await else {
                panic!("connection closed / timed out while syncing {doc_id}");
            };
            match m.ty() {
                "sync" | "request" if m.str("documentId") == Some(doc_id) => {
                    let data = m.bytes("data").expect("sync has data");
                    let sm = sync::Message::decode(data).expect("valid sync message");
                    doc.sync()
                        .receive_sync_message(&mut state, sm)
                        .expect("apply sync message");
                }
                // Pushing a plan the relay does not have yet: it first answers
                // like for an unknown plan (empty sync, doc-unavailable), then
                // takes our changes in the next round.
                "doc-unavailable" if first == "request" => {
                    panic!("relay says {doc_id} is unavailable while fetching it")
                }
                _ => {}
            }
        }
    }
}

/// A small plan-shaped document.
fn new_doc(title: &str) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "schema", 1_u64).unwrap();
    let header = doc
        .put_object(ROOT, "header", automerge::ObjType::Map)
        .unwrap();
    doc.put(&header, "title", title).unwrap();
    doc.put_object(ROOT, "tasks", automerge::ObjType::Map)
        .unwrap();
    doc.commit();
    doc
}

/// What a peer receives after asking for `doc_id`, up to `doc-unavailable`
/// (or a quiet period): the message types, and whether any sync payload
/// carried changes.
async fn request_outcome(peer: &mut Peer, doc_id: &str) -> (Vec<String>, bool) {
    let mut doc = AutoCommit::new();
    let mut state = sync::State::new();
    let msg = doc.sync().generate_sync_message(&mut state).unwrap();
    peer.send_sync("request", doc_id, msg.encode()).await;
    let mut types = Vec::new();
    let mut leaked = false;
    while let Some(m) = peer.recv_within(Duration::from_secs(5)).await {
        if m.str("documentId") != Some(doc_id) {
            continue;
        }
        types.push(m.ty().to_string());
        if m.ty() == "sync"
            && let Some(sm) = m.bytes("data").and_then(|d| sync::Message::decode(d).ok())
        {
            leaked |= !sm.changes.is_empty() || !sm.heads.is_empty();
            let _ = doc.sync().receive_sync_message(&mut state, sm);
        }
        if m.ty() == "doc-unavailable" {
            break;
        }
    }
    leaked |= !doc.get_heads().is_empty();
    (types, leaked)
}

/// Sends `offer` as a `sync` for `doc_id`; returns the data of the first
/// `sync` answered for that document.
async fn first_sync_reply(peer: &mut Peer, doc_id: &str, offer: Vec<u8>) -> Option<Vec<u8>> {
    peer.send_sync("sync", doc_id, offer).await;
    while let Some(m) = peer.recv_within(Duration::from_secs(2)).await {
        if m.str("documentId") == Some(doc_id) && m.ty() == "sync" {
            return m.bytes("data").map(<[u8]>::to_vec);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_without_or_with_bad_token_is_401() {
    let relay = Relay::start();
    let _token = relay.add_user("alice");
    for token in [None, Some("not-a-token")] {
        match connect(relay.url(), token).await {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(
                resp.status().as_u16(),
                401,
                "upgrade with token {token:?} must be refused with 401"
            ),
            Err(e) => panic!("expected HTTP 401 for token {token:?}, got error {e}"),
            Ok(_) => panic!("upgrade with token {token:?} must be refused with 401, it succeeded"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_token_is_accepted() {
    let relay = Relay::start();
    let token = relay.add_user("alice");
    let url = format!("{}/?token={token}", relay.url());
    let (mut ws, _) = timeout(STEP, connect_async(url.as_str()))
        .await
        .expect("connect timed out")
        .expect("?token= must be accepted at the upgrade");
    ws.send(Message::Binary(
        encode(vec![
            ("type", text("join")),
            ("senderId", text("q-peer")),
            ("peerMetadata", Cbor::Map(vec![])),
            ("supportedProtocolVersions", Cbor::Array(vec![text("1")])),
        ])
        .into(),
    ))
    .await
    .unwrap();
    let reply = loop {
        match timeout(STEP, ws.next()).await.expect("no reply") {
            Some(Ok(Message::Binary(b))) => break decode(&b),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    };
    assert_eq!(reply.ty(), "peer", "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_protocol_version_gets_error_then_close() {
    let relay = Relay::start();
    let token = relay.add_user("alice");
    let mut ws = connect(relay.url(), Some(&token)).await.unwrap();
    ws.send(Message::Binary(
        encode(vec![
            ("type", text("join")),
            ("senderId", text("old-peer")),
            ("peerMetadata", Cbor::Map(vec![])),
            ("supportedProtocolVersions", Cbor::Array(vec![text("99")])),
        ])
        .into(),
    ))
    .await
    .unwrap();
    let mut got_error = false;
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("relay neither sent `error` nor closed within 10 s");
        match timeout(left, ws.next()).await {
            Err(_) => panic!("relay did not close the connection after `error`"),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(Message::Binary(b)))) => {
                let m = decode(&b);
                assert_eq!(
                    m.ty(),
                    "error",
                    "expected `error` for version 99, got {m:?}"
                );
                assert!(m.str("message").is_some(), "`error` needs a message: {m:?}");
                got_error = true;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    assert!(got_error, "connection closed without an `error` message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_denied_documents_are_unavailable_alike() {
    let relay = Relay::start();
    let alice_token = relay.add_user("alice");
    let bob_token = relay.add_user("bob");

    // Alice pushes a new plan: the relay stores it for her.
    let mut alice = Peer::join(&relay, &alice_token, "alice").await;
    let doc_id = random_doc_id();
    let mut doc = new_doc("Secret deal");
    alice.sync_doc(&doc_id, &mut doc, "sync").await;

    // Alice can fetch it back on a fresh connection.
    let mut alice2 = Peer::join(&relay, &alice_token, "alice2").await;
    let mut copy = AutoCommit::new();
    alice2.sync_doc(&doc_id, &mut copy, "request").await;
    assert_eq!(
        copy.get_heads(),
        doc.get_heads(),
        "owner must get her plan back"
    );

    // Bob has no grant: the plan must look exactly like an unknown one.
    let mut bob = Peer::join(&relay, &bob_token, "bob").await;
    let (denied, denied_leak) = request_outcome(&mut bob, &doc_id).await;
    let unknown_id = random_doc_id();
    let (unknown, unknown_leak) = request_outcome(&mut bob, &unknown_id).await;
    assert_eq!(
        unknown.last().map(String::as_str),
        Some("doc-unavailable"),
        "request for an unknown doc must end in doc-unavailable, got {unknown:?}"
    );
    assert_eq!(
        denied, unknown,
        "a denied plan must be answered exactly like an unknown one"
    );
    assert!(
        !denied_leak,
        "a denied request must not receive any change or head"
    );
    assert!(!unknown_leak);

    // A `sync` (not `request`) offering changes for a plan Bob may not
    // access: the first answer must be the same bytes as for an unknown
    // plan, and when the changes follow they are refused, not applied.
    let mut forged = AutoCommit::new();
    forged.put(ROOT, "title", "hijacked").unwrap();
    forged.commit();
    let offer = forged
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap()
        .encode();
    let denied_reply = first_sync_reply(&mut bob, &doc_id, offer.clone()).await;
    let unknown_reply = first_sync_reply(&mut bob, &random_doc_id(), offer).await;
    assert!(
        denied_reply.is_some(),
        "an offer for a denied plan gets a sync reply"
    );
    assert_eq!(
        denied_reply, unknown_reply,
        "the reply to an offer must not reveal whether the plan exists"
    );

    let mut state = sync::State::new();
    let mut types = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    'push: while Instant::now() < end {
        if let Some(msg) = forged.sync().generate_sync_message(&mut state) {
            bob.send_sync("sync", &doc_id, msg.encode()).await;
        }
        while let Some(m) = bob.recv_within(Duration::from_millis(500)).await {
            if m.str("documentId") != Some(doc_id.as_str()) {
                continue;
            }
            types.push(m.ty().to_string());
            match m.ty() {
                "doc-unavailable" => break 'push,
                "sync" => {
                    let sm = sync::Message::decode(m.bytes("data").unwrap()).unwrap();
                    assert!(sm.changes.is_empty(), "a denied peer received changes");
                    forged.sync().receive_sync_message(&mut state, sm).unwrap();
                    break;
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        types.last().map(String::as_str),
        Some("doc-unavailable"),
        "changes pushed into a denied plan must be answered with doc-unavailable, got {types:?}"
    );
    let mut check = AutoCommit::new();
    let mut alice3 = Peer::join(&relay, &alice_token, "alice3").await;
    alice3.sync_doc(&doc_id, &mut check, "request").await;
    assert_eq!(
        check.get_heads(),
        doc.get_heads(),
        "bob's forged sync must not reach the plan"
    );
    assert!(check.get(ROOT, "title").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_reaches_other_peers_once_and_is_not_echoed() {
    let relay = Relay::start();
    let token = relay.add_user("alice");
    let bob_token = relay.add_user("bob");

    let mut a = Peer::join(&relay, &token, "a").await;
    let doc_id = random_doc_id();
    let mut doc = new_doc("Ephemeral");
    a.sync_doc(&doc_id, &mut doc, "sync").await;

    // B and C (same user, other devices) open the plan.
    let mut b = Peer::join(&relay, &token, "b").await;
    b.sync_doc(&doc_id, &mut AutoCommit::new(), "request").await;
    let mut c = Peer::join(&relay, &token, "c").await;
    c.sync_doc(&doc_id, &mut AutoCommit::new(), "request").await;
    // D is connected but never opened the plan; E was denied it.
    let mut d = Peer::join(&relay, &token, "d").await;
    let mut e = Peer::join(&relay, &bob_token, "e").await;
    let (types, _) = request_outcome(&mut e, &doc_id).await;
    assert_eq!(types.last().map(String::as_str), Some("doc-unavailable"));

    let payload = {
        let mut p = Vec::new();
        ciborium::into_writer(
            &Cbor::Map(vec![(text("cursor"), Cbor::Integer(7.into()))]),
            &mut p,
        )
        .unwrap();
        p
    };
    let session = uuid::Uuid::new_v4().to_string();
    let (a_id, server) = (a.id.clone(), a.server.clone());
    let ephemeral = |sender: &str, target: &str| {
        vec![
            ("type", text("ephemeral")),
            ("senderId", text(sender)),
            ("targetId", text(target)),
            ("documentId", text(&doc_id)),
            ("sessionId", text(&session)),
            ("count", Cbor::Integer(1.into())),
            ("data", Cbor::Bytes(payload.clone())),
        ]
    };
    a.send(ephemeral(&a_id, &server)).await;

    for (name, peer) in [("b", &mut b), ("c", &mut c)] {
        let m = loop {
            let m = peer
                .recv()
                .await
                .unwrap_or_else(|| panic!("peer {name} did not receive the ephemeral message"));
            if m.ty() == "ephemeral" {
                break m;
            }
        };
        assert_eq!(m.str("senderId"), Some(a_id.as_str()), "{m:?}");
        assert_eq!(m.str("targetId"), Some(peer.id.as_str()), "{m:?}");
        assert_eq!(m.str("documentId"), Some(doc_id.as_str()), "{m:?}");
        assert_eq!(m.bytes("data"), Some(payload.as_slice()), "{m:?}");
    }

    // B behaves like a JS client: it sends the message straight back with
    // the original senderId. The relay must drop it.
    let b_server = b.server.clone();
    b.send(ephemeral(&a_id, &b_server)).await;

    let quiet = Duration::from_millis(1500);
    for (name, peer) in [
        ("a (sender)", &mut a),
        ("b", &mut b),
        ("c", &mut c),
        ("d (plan not open)", &mut d),
        ("e (denied)", &mut e),
    ] {
        while let Some(m) = peer.recv_within(quiet).await {
            assert_ne!(
                m.ty(),
                "ephemeral",
                "peer {name} got an ephemeral message it must not get (duplicate, echo or leak): {m:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_is_refused_at_upgrade() {
    let relay = Relay::start();
    let token = relay.add_user("alice");
    Peer::join(&relay, &token, "before").await;
    relay.revoke_user("alice");
    match connect(relay.url(), Some(&token)).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        Err(e) => panic!("expected HTTP 401 for a revoked token, got {e}"),
        Ok(_) => panic!("a revoked token must be refused with 401"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_peer_can_read_but_its_changes_are_not_accepted() {
    let relay = Relay::start();
    let alice_token = relay.add_user("alice");
    let bob_token = relay.add_user("bob");

    let mut alice = Peer::join(&relay, &alice_token, "alice").await;
    let doc_id = random_doc_id();
    let mut doc = new_doc("Read-only");
    alice.sync_doc(&doc_id, &mut doc, "sync").await;
    relay.grant(&doc_id, "bob", false);

    // Bob can read it...
    let mut bob = Peer::join(&relay, &bob_token, "bob").await;
    let mut copy = AutoCommit::new();
    bob.sync_doc(&doc_id, &mut copy, "request").await;
    assert_eq!(copy.get_heads(), doc.get_heads(), "a reader gets the plan");

    // ...but what he writes goes nowhere.
    copy.put(ROOT, "title", "written by a reader").unwrap();
    copy.commit();
    let mut state = sync::State::new();
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if let Some(msg) = copy.sync().generate_sync_message(&mut state) {
            bob.send_sync("sync", &doc_id, msg.encode()).await;
        }
        match bob.recv_within(Duration::from_millis(500)).await {
            Some(m) if m.ty() == "sync" && m.str("documentId") == Some(doc_id.as_str()) => {
                let sm = sync::Message::decode(m.bytes("data").unwrap()).unwrap();
                copy.sync().receive_sync_message(&mut state, sm).unwrap();
            }
            _ => {}
        }
    }
    let mut check = AutoCommit::new();
    let mut carol = Peer::join(&relay, &alice_token, "alice-2").await;
    carol.sync_doc(&doc_id, &mut check, "request").await;
    assert_eq!(
        check.get_heads(),
        doc.get_heads(),
        "a read-only peer's change must not be stored or passed on"
    );
    assert!(check.get(ROOT, "title").unwrap().is_none());
    // Alice, who has the plan open, never received it either.
    while let Some(m) = alice.recv_within(Duration::from_millis(300)).await {
        if m.ty() == "sync"
            && let Some(sm) = m.bytes("data").and_then(|d| sync::Message::decode(d).ok())
        {
            assert!(
                sm.changes.is_empty(),
                "the reader's change reached alice: {m:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_the_sync_path() {
    let relay = Relay::start();
    let token = relay.add_user("alice");
    let url = format!("{}/healthz", relay.http_url());
    let (status, body) =
        tokio::task::spawn_blocking(move || map_e2e::http("GET", &url, None, None))
            .await
            .unwrap()
            .expect("GET /healthz");
    assert_eq!((status, body.trim()), (200, "ok"), "GET /healthz");

    // The WebSocket endpoint is also served at /sync.
    let mut req = format!("{}/sync", relay.url())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (mut ws, _) = timeout(STEP, connect_async(req))
        .await
        .expect("connect timed out")
        .expect("/sync must accept the WebSocket upgrade");
    ws.send(Message::Binary(
        encode(vec![
            ("type", text("join")),
            ("senderId", text("sync-path-peer")),
            ("peerMetadata", Cbor::Map(vec![])),
            ("supportedProtocolVersions", Cbor::Array(vec![text("1")])),
        ])
        .into(),
    ))
    .await
    .unwrap();
    let reply = loop {
        match timeout(STEP, ws.next()).await.expect("no reply") {
            Some(Ok(Message::Binary(b))) => break decode(&b),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    };
    assert_eq!(reply.ty(), "peer", "{reply:?}");
}
