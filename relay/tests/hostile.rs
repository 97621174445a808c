//! Hostile input against a real relay (127.0.0.1:0, real SQLite): each bad
//! peer is closed (with an `error` message where the protocol has one), the
//! relay keeps serving everyone else (a fresh, well-behaved client still
//! syncs afterwards) and memory stays bounded. Complements
//! `garbage_closes_only_that_connection`, `connection_limits_and_message_size`
//! and `idle_peers_are_closed` in `relay.rs`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use map_relay::Access;
use map_sync::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

// ---------------------------------------------------------------- helpers

/// Minimal CBOR encoding, enough to build wrongly typed messages by hand.
enum Cbor {
    Int(u64),
    Text(String),
    Bytes(Vec<u8>),
    Array(Vec<Cbor>),
    Map(Vec<(&'static str, Cbor)>),
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if n < 24 {
        out.push(major | n as u8);
    } else if n < 256 {
        out.extend([major | 24, n as u8]);
    } else if n < 65536 {
        out.push(major | 25);
        out.extend((n as u16).to_be_bytes());
    } else {
        out.push(major | 26);
        out.extend((n as u32).to_be_bytes());
    }
}

impl Cbor {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Int(n) => head(out, 0, *n),
            Cbor::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend(b);
            }
            Cbor::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend(t.as_bytes());
            }
            Cbor::Array(items) => {
                head(out, 4, items.len() as u64);
                for item in items {
                    item.write(out);
                }
            }
            Cbor::Map(pairs) => {
                head(out, 5, pairs.len() as u64);
                for (k, v) in pairs {
                    Cbor::Text((*k).into()).write(out);
                    v.write(out);
                }
            }
        }
    }
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.into())
}

/// Resident set size of this process (the relay runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A fresh, well-behaved client creates a plan and syncs it: the relay still serves.
async fn still_serves(relay: &TestRelay, token: &str, peer: &str) {
    let mut client = join(&relay.url(), token, peer).await;
    let mut plan = Replica::new_plan("still served");
    let heads = plan.heads();
    sync_until(&mut client, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    assert_eq!(stored_heads(&relay.db_path(), &plan.doc_id), Some(heads));
}

/// Send one raw binary frame on a joined connection; expect an `error`, then close.
async fn expect_error_close(relay: &TestRelay, token: &str, peer: &str, frame: Vec<u8>) {
    let mut client = join(&relay.url(), token, peer).await;
    client
        .ws
        .send(WsMessage::Binary(frame.into()))
        .await
        .unwrap();
    let (seen, closed) = drain_until_closed(&mut client.ws).await;
    assert!(closed, "{peer}: not closed");
    assert!(
        matches!(&seen[..], [Message::Error { .. }]),
        "{peer}: {seen:?}"
    );
}

/// Poll until `cond` holds (bounded by `WAIT`).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw TCP connection that has completed a WebSocket upgrade by hand.
async fn raw_upgrade(addr: SocketAddr, token: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .expect("upgrade answer in time")
            .unwrap();
        assert_eq!(n, 1, "closed during upgrade");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// A client-to-server (masked) WebSocket frame header.
fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len < 65536 {
        out.push(0x80 | 126);
        out.extend((len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend(len.to_be_bytes());
    }
    out.extend([0, 0, 0, 0]); // mask key 0: payload goes as is
    out
}

/// Read until EOF or reset; panics if the peer keeps the socket open past `WAIT`.
async fn expect_eof(tcp: &mut TcpStream, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => panic!("{what}: relay kept the connection open"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Connect a WebSocket from a given local address (127.0.0.x all reach 127.0.0.1).
async fn connect_from(
    local: &str,
    url: &str,
    token: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let host = request.uri().authority().unwrap().as_str().to_owned();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(host.parse().unwrap()).await.unwrap();
    let (ws, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await?;
    Ok(ws)
}

fn http_status(result: Result<Ws, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match result {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn wrong_types_bad_ids_and_unknown_types() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let good_id = map_relay::plan_id::random();
    let sync = |doc: Cbor, data: Cbor| {
        Cbor::Map(vec![
            ("type", text("sync")),
            ("senderId", text("p")),
            ("targetId", text("relay")),
            ("documentId", doc),
            ("data", data),
        ])
        .encode()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty-frame", vec![]),
        ("truncated", vec![0xa5, 0x64, 0x74, 0x79]),
        ("cbor-int", Cbor::Int(7).encode()),
        ("cbor-array", Cbor::Array(vec![text("sync")]).encode()),
        (
            "type-is-int",
            Cbor::Map(vec![("type", Cbor::Int(1))]).encode(),
        ),
        ("data-is-text", sync(text(&good_id), text("not bytes"))),
        ("doc-is-int", sync(Cbor::Int(42), Cbor::Bytes(vec![0x42]))),
        (
            "doc-is-garbage",
            sync(text("../../etc/passwd"), Cbor::Bytes(vec![])),
        ),
        ("doc-is-empty", sync(text(""), Cbor::Bytes(vec![]))),
        (
            "doc-is-long",
            sync(text(&"x".repeat(10_000)), Cbor::Bytes(vec![])),
        ),
        (
            "doc-is-url",
            sync(text(&format!("automerge:{good_id}")), Cbor::Bytes(vec![])),
        ),
        (
            "doc-bad-checksum",
            sync(
                text(&format!("{}1", &good_id[..good_id.len() - 1])),
                Cbor::Bytes(vec![]),
            ),
        ),
        (
            "count-is-text",
            Cbor::Map(vec![
                ("type", text("ephemeral")),
                ("senderId", text("p")),
                ("targetId", text("relay")),
                ("documentId", text(&good_id)),
                ("sessionId", text("s")),
                ("count", text("one")),
                ("data", Cbor::Bytes(vec![])),
            ])
            .encode(),
        ),
        (
            "versions-not-array",
            Cbor::Map(vec![
                ("type", text("join")),
                ("senderId", text("p")),
                ("supportedProtocolVersions", text("1")),
            ])
            .encode(),
        ),
    ];
    for (i, (name, frame)) in cases.into_iter().enumerate() {
        let peer = format!("alice-{i}-{name}");
        expect_error_close(&relay, &alice, &peer, frame).await;
    }

    // A join with a wrongly typed field, as the very first message.
    let mut ws = connect(&relay.url(), &alice).await.unwrap();
    let bad_join = Cbor::Map(vec![
        ("type", text("join")),
        ("senderId", Cbor::Int(5)),
        ("supportedProtocolVersions", Cbor::Array(vec![text("1")])),
    ]);
    ws.send(WsMessage::Binary(bad_join.encode().into()))
        .await
        .unwrap();
    let (seen, closed) = drain_until_closed(&mut ws).await;
    assert!(
        closed && matches!(&seen[..], [Message::Error { .. }]),
        "{seen:?}"
    );

    // An unknown type before join: error and close (a join must come first).
    let unknown = Cbor::Map(vec![("type", text("x-future")), ("senderId", text("p"))]).encode();
    let mut ws = connect(&relay.url(), &alice).await.unwrap();
    ws.send(WsMessage::Binary(unknown.clone().into()))
        .await
        .unwrap();
    let (seen, closed) = drain_until_closed(&mut ws).await;
    assert!(
        closed && matches!(&seen[..], [Message::Error { .. }]),
        "{seen:?}"
    );

    // After join, unknown types are ignored: the same connection keeps working.
    let mut client = join(&relay.url(), &alice, "alice-unknown").await;
    for _ in 0..100 {
        client
            .ws
            .send(WsMessage::Binary(unknown.clone().into()))
            .await
            .unwrap();
    }
    let mut plan = Replica::new_plan("after unknown types");
    let heads = plan.heads();
    let other = sync_until(&mut client, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    assert!(
        other.is_empty(),
        "unknown types are not answered: {other:?}"
    );

    still_serves(&relay, &alice, "alice-fresh").await;
    assert_eq!(relay.handle.db().list_plans().unwrap().len(), 2);
}

#[tokio::test]
async fn oversized_and_fragmented_frames_close_without_allocating() {
    let relay = TestRelay::start_with(|c| c.max_message_size = 64 * 1024).await;
    let alice = relay.add_user("alice");
    let before = rss_kib();

    // A frame header announcing 2^62 bytes: refused from the header alone.
    let mut tcp = raw_upgrade(relay.addr, &alice).await;
    tcp.write_all(&frame_header(true, 0x2, 1 << 62))
        .await
        .unwrap();
    tcp.write_all(&[0u8; 1024]).await.unwrap();
    expect_eof(&mut tcp, "huge frame header").await;

    // A frame just over the limit.
    let mut tcp = raw_upgrade(relay.addr, &alice).await;
    tcp.write_all(&frame_header(true, 0x2, 64 * 1024 + 1))
        .await
        .unwrap();
    let _ = tcp.write_all(&vec![0u8; 64 * 1024 + 1]).await;
    expect_eof(&mut tcp, "frame over the limit").await;

    // Many small fragments that add up to more than the limit.
    let mut tcp = raw_upgrade(relay.addr, &alice).await;
    let chunk = vec![0u8; 8 * 1024];
    let mut refused = false;
    for i in 0..64 {
        let opcode = if i == 0 { 0x2 } else { 0x0 };
        let mut frame = frame_header(false, opcode, chunk.len() as u64);
        frame.extend(&chunk);
        if tcp.write_all(&frame).await.is_err() {
            refused = true;
            break;
        }
    }
    if !refused {
        expect_eof(&mut tcp, "fragments over the limit").await;
    }

    // An unmasked client frame violates RFC 6455.
    let mut tcp = raw_upgrade(relay.addr, &alice).await;
    tcp.write_all(&[0x82, 0x03, 1, 2, 3]).await.unwrap();
    expect_eof(&mut tcp, "unmasked frame").await;

    still_serves(&relay, &alice, "alice-fresh").await;
    eventually("bad connections released", || {
        relay.handle.connections() == 0
    })
    .await;
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

#[tokio::test]
async fn join_floods_are_contained() {
    let relay = TestRelay::start_with(|c| c.max_connections_per_ip = 16).await;
    let alice = relay.add_user("alice");
    let before = rss_kib();

    // Many joins on one connection: the first is answered, the second closes it.
    let mut ws = connect(&relay.url(), &alice).await.unwrap();
    for i in 0..500 {
        let join = join_message(&format!("alice-{i}"), &["1"]);
        if ws
            .send(WsMessage::Binary(join.encode().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (seen, closed) = drain_until_closed(&mut ws).await;
    assert!(closed, "{seen:?}");
    assert!(
        matches!(&seen[..], [Message::Peer { .. }, Message::Error { message, .. }] if message.contains("already joined")),
        "{seen:?}"
    );

    // Many connections at once: the per-address limit refuses the excess
    // with 429 and the others each complete their handshake.
    let attempts = (0..64).map(|i| {
        let url = relay.url();
        let token = alice.clone();
        tokio::spawn(async move {
            match connect(&url, &token).await {
                Ok(mut ws) => {
                    send(&mut ws, &join_message(&format!("flood-{i}"), &["1"])).await;
                    let reply = next_message(&mut ws, WAIT).await;
                    assert!(matches!(reply, Some(Message::Peer { .. })), "{reply:?}");
                    Ok(ws)
                }
                Err(e) => Err(http_status(Err(e))),
            }
        })
    });
    let mut open = Vec::new();
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(ws) => open.push(ws),
            Err(429) => refused += 1,
            Err(other) => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(open.len(), 16);
    assert_eq!(refused, 48);
    assert_eq!(relay.handle.connections(), 16);
    drop(open);
    eventually("flood connections closed", || {
        relay.handle.connections() == 0
    })
    .await;

    still_serves(&relay, &alice, "alice-fresh").await;
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

#[tokio::test]
async fn connection_attempts_are_rate_limited_per_address() {
    let relay = TestRelay::start_with(|c| c.max_connect_attempts = 5).await;
    let alice = relay.add_user("alice");
    for _ in 0..5 {
        assert_eq!(
            http_status(connect_from("127.0.0.1", &relay.url(), &alice).await),
            101
        );
    }
    // The sixth attempt within the minute: 429 with Retry-After.
    match connect_from("127.0.0.1", &relay.url(), &alice).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    // The HTTP API and health checks are not connection attempts.
    let response = reqwest::Client::new()
        .get(relay.http("/v1/plans"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        reqwest::get(relay.http("/healthz")).await.unwrap().status(),
        200
    );
    // Another address is not affected.
    assert_eq!(
        http_status(connect_from("127.0.0.2", &relay.url(), &alice).await),
        101
    );
}

#[tokio::test]
async fn failed_authentication_is_rate_limited_per_address() {
    let relay = TestRelay::start_with(|c| {
        c.max_auth_failures = 5;
        c.auth_cooldown = Duration::from_millis(700);
    })
    .await;
    let alice = relay.add_user("alice");
    let http = reqwest::Client::new();
    for i in 0..5 {
        let status = if i % 2 == 0 {
            http_status(connect(&relay.url(), &format!("guess-{i}")).await)
        } else {
            http.get(relay.http("/v1/plans"))
                .bearer_auth(format!("guess-{i}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(status, 401);
    }
    // Locked out, even with the right token, on every endpoint but /healthz.
    assert_eq!(http_status(connect(&relay.url(), &alice).await), 429);
    let response = http
        .get(relay.http("/v1/plans"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        reqwest::get(relay.http("/healthz")).await.unwrap().status(),
        200
    );
    // Other addresses are served.
    assert_eq!(
        http_status(connect_from("127.0.0.2", &relay.url(), &alice).await),
        101
    );
    // After the cooldown the address is served again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match http_status(connect(&relay.url(), &alice).await) {
            101 => break,
            429 if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("still refused after the cooldown: {other}"),
        }
    }

    // Guessing invite secrets counts as failed authentication too.
    for i in 0..5 {
        let response = http
            .post(relay.http("/v1/invites/redeem"))
            .json(&serde_json::json!({"invite": format!("guess-{i}"), "name": "Eve"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    let response = http
        .post(relay.http("/v1/invites/redeem"))
        .json(&serde_json::json!({"invite": "guess-6", "name": "Eve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn stalled_http_requests_are_timed_out() {
    let relay = TestRelay::start_with(|c| c.header_read_timeout = Duration::from_millis(300)).await;
    let alice = relay.add_user("alice");
    // Half an upgrade request, then nothing; and a connection that sends nothing.
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut tcp = TcpStream::connect(relay.addr).await.unwrap();
        if i % 2 == 0 {
            let half = format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nAuthorization: Bearer {alice}\r\n",
                relay.addr
            );
            tcp.write_all(half.as_bytes()).await.unwrap();
        }
        stalled.push(tcp);
    }
    // A slowloris dribbling one header byte at a time is cut off too.
    let mut dribble = TcpStream::connect(relay.addr).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut cut_off = false;
    for byte in b"GET / HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain([b'a'; 200].iter())
    {
        if dribble.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(20), dribble.read(&mut probe)).await
        {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "slowloris not cut off");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Meanwhile, well-behaved clients are served.
    still_serves(&relay, &alice, "alice-fresh").await;
    for (i, tcp) in stalled.iter_mut().enumerate() {
        expect_eof(tcp, &format!("stalled connection {i}")).await;
    }
    eventually("no connection left", || relay.handle.connections() == 0).await;
}

#[tokio::test]
async fn a_peer_that_never_reads_is_closed_and_memory_stays_bounded() {
    let relay = TestRelay::start_with(|c| c.outgoing_queue = 16).await;
    let alice = relay.add_user("alice");
    let bob = relay.add_user("bob");
    let mut writer = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = Replica::new_plan("Acme");
    let heads = plan.heads();
    sync_until(&mut writer, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    relay.grant(&plan.doc_id, "bob", Access::ReadWrite);
    let mut sloth = join(&relay.url(), &bob, "bob-1").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut sloth, &mut copy, true, |r| r.heads() == heads).await;
    settle(&mut writer, &mut plan, Duration::from_millis(200)).await;
    settle(&mut sloth, &mut copy, Duration::from_millis(200)).await;
    assert_eq!(relay.handle.connections(), 2);
    let before = rss_kib();

    // Bob stops reading. Alice broadcasts 256 KiB presence messages: the
    // fan-out to Bob backs up until his queue of 16 is full and he is closed.
    let payload = vec![0x5a; 256 * 1024];
    let mut sent = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while relay.handle.connections() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow peer was never closed ({sent} sent)"
        );
        let message = Message::Ephemeral {
            sender_id: "alice-1".into(),
            target_id: writer.relay_peer.clone(),
            document_id: plan.doc_id.clone(),
            session_id: "s".into(),
            count: sent as u64,
            data: payload.clone(),
        };
        send(&mut writer.ws, &message).await;
        sent += 1;
        if sent.is_multiple_of(8) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let grown = rss_kib().saturating_sub(before);
    eprintln!("slow peer closed after {sent} messages of 256 KiB; RSS grew {grown} KiB");
    // Queue (16 x 256 KiB) plus socket buffers; nowhere near `sent` x 256 KiB.
    assert!(
        grown < 96 * 1024,
        "RSS grew by {grown} KiB after {sent} messages"
    );

    // Bob's stream ends (after whatever was already on the wire).
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut ended = false;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut sloth.ws)).await
        {
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => {
                ended = true;
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Err(_) => break,
        }
    }
    assert!(ended, "slow peer's stream did not end");

    // The writer, and a fresh client, are still served.
    plan.edit("title", "after the slow peer");
    let heads = plan.heads();
    sync_until(&mut writer, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    still_serves(&relay, &bob, "bob-2").await;
}

/// A peer that asks for more than the sockets between it and the relay can
/// hold, then neither reads nor sends, is closed after the idle timeout even
/// though nothing more is queued for it.
#[tokio::test]
async fn a_peer_that_stops_reading_midway_is_closed() {
    let relay = TestRelay::start_with(|c| {
        c.idle_timeout = Duration::from_millis(500);
        c.ping_interval = Duration::from_secs(60);
    })
    .await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let plan = push_big_plan(&mut owner, 2 * 1024 * 1024).await;
    drop(owner);

    // 16 answers of about 2 MiB each (one per request, as each comes with
    // a fresh sync state and on its own): more than loopback's socket
    // buffers hold, so the relay's send waits on a peer that never reads.
    let mut sloth = join(&relay.url(), &alice, "alice-2").await;
    for _ in 0..16 {
        let mut copy = Replica::empty(&plan.doc_id);
        let request = copy.outgoing(&sloth, true).unwrap();
        sloth
            .ws
            .send(WsMessage::Binary(request.encode().into()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually("the sloth closed", || relay.handle.connections() == 0).await;
    drop(sloth);
    still_serves(&relay, &alice, "alice-fresh").await;
}

#[tokio::test]
async fn a_peer_that_requests_a_big_plan_without_reading_is_bounded() {
    let relay = TestRelay::start_with(|c| c.outgoing_queue = 16).await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let plan = push_big_plan(&mut owner, 2 * 1024 * 1024).await;
    let before = rss_kib();

    // Ask for the whole plan again and again (a fresh sync state each time)
    // and never read the answers.
    let mut sloth = join(&relay.url(), &alice, "alice-2").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut asked = 0;
    let mut closed = false;
    while tokio::time::Instant::now() < deadline && asked < 400 {
        let mut copy = Replica::empty(&plan.doc_id);
        let request = copy.outgoing(&sloth, true).unwrap();
        if sloth
            .ws
            .send(WsMessage::Binary(request.encode().into()))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        asked += 1;
        if asked % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let grown = rss_kib().saturating_sub(before);
    eprintln!(
        "asked {asked} times for a 2 MiB plan; closed by relay: {closed}; RSS grew {grown} KiB"
    );
    assert!(
        grown < 160 * 1024,
        "RSS grew by {grown} KiB after {asked} requests"
    );
    drop(sloth);
    eventually("only the owner left", || relay.handle.connections() == 1).await;
    still_serves(&relay, &alice, "alice-fresh").await;
}
