//! The relay end to end: a real relay on 127.0.0.1:0, real SQLite files,
//! WebSocket clients speaking automerge-repo messages.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use map_relay::Access;
use map_sync::Message;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test]
async fn healthz_says_ok() {
    let relay = TestRelay::start().await;
    let response = reqwest::get(relay.http("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

async fn expect_401(url: &str, token: Option<&str>) {
    let result = match token {
        Some(token) => connect(url, token).await,
        None => tokio_tungstenite::connect_async(url)
            .await
            .map(|(ws, _)| ws),
    };
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
            let body = response.body().clone().unwrap_or_default();
            assert!(body.is_empty(), "401 body must be empty: {body:?}");
        }
        Err(other) => panic!("expected HTTP 401, got {other:?}"),
        Ok(_) => panic!("expected HTTP 401, got a WebSocket"),
    }
}

#[tokio::test]
async fn websocket_refuses_missing_bad_and_revoked_tokens() {
    let relay = TestRelay::start().await;
    let token = relay.add_user("alice");
    expect_401(&relay.url(), None).await;
    expect_401(&relay.url(), Some("not-a-token")).await;
    expect_401(&format!("{}/?token=nope", relay.url()), None).await;
    // The good token works, in the header and in the query string.
    join(&relay.url(), &token, "alice-1").await;
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}/sync?token={token}", relay.url()))
        .await
        .expect("query token accepted");
    drop(ws);
    relay.handle.db().revoke_user("alice").unwrap();
    expect_401(&relay.url(), Some(&token)).await;
    // The HTTP API says the same.
    let response = reqwest::Client::new()
        .get(relay.http("/v1/plans"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.text().await.unwrap(), "");
}

#[tokio::test]
async fn handshake_announces_storage_id_and_version() {
    let relay = TestRelay::start().await;
    let token = relay.add_user("alice");
    let mut ws = connect(&relay.url(), &token).await.unwrap();
    send(&mut ws, &join_message("alice-laptop", &["1"])).await;
    let reply = next_message(&mut ws, WAIT).await.unwrap();
    let Message::Peer {
        sender_id,
        peer_metadata,
        selected_protocol_version,
        target_id,
    } = reply
    else {
        panic!("expected peer, got {reply:?}");
    };
    assert_eq!(selected_protocol_version, "1");
    assert_eq!(target_id, "alice-laptop");
    assert!(!sender_id.is_empty());
    let meta = peer_metadata.expect("peer metadata");
    assert_eq!(
        meta.storage_id.as_deref(),
        Some(relay.handle.db().storage_id())
    );
    assert!(!meta.is_ephemeral);
}

#[tokio::test]
async fn unsupported_protocol_version_gets_error_and_close() {
    let relay = TestRelay::start().await;
    let token = relay.add_user("alice");
    let mut ws = connect(&relay.url(), &token).await.unwrap();
    send(&mut ws, &join_message("p", &["2", "3"])).await;
    let (seen, closed) = drain_until_closed(&mut ws).await;
    assert!(closed);
    assert!(
        matches!(&seen[..], [Message::Error { message, .. }] if message.contains("version")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn message_before_join_gets_error_and_close() {
    let relay = TestRelay::start().await;
    let token = relay.add_user("alice");
    let mut ws = connect(&relay.url(), &token).await.unwrap();
    let replica = Replica::empty(&map_relay::plan_id::random());
    send(
        &mut ws,
        &Message::Request {
            sender_id: "p".into(),
            target_id: "relay".into(),
            document_id: replica.doc_id.clone(),
            data: vec![],
        },
    )
    .await;
    let (seen, closed) = drain_until_closed(&mut ws).await;
    assert!(closed);
    assert!(matches!(&seen[..], [Message::Error { .. }]), "{seen:?}");
}

/// Request a plan and return the raw frames the relay answers with.
async fn request_frames(client: &mut Client, doc_id: &str) -> Vec<Vec<u8>> {
    let mut replica = Replica::empty(doc_id);
    let request = replica.outgoing(client, true).unwrap();
    send(&mut client.ws, &request).await;
    let mut frames = Vec::new();
    while let Some(frame) = next_frame(&mut client.ws).await {
        let done = matches!(Message::decode(&frame), Ok(Message::DocUnavailable { .. }));
        frames.push(frame);
        if done {
            break;
        }
    }
    frames
}

#[tokio::test]
async fn unknown_and_ungranted_plans_get_identical_answers() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let mallory = relay.add_user("mallory");

    // Alice creates a plan.
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = Replica::new_plan("Acme rollout");
    let target = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == target
    })
    .await;
    assert_eq!(stored_heads(&relay.db_path(), &plan.doc_id), Some(target));

    // Mallory asks for it, and for a plan that does not exist.
    let mut client = join(&relay.url(), &mallory, "mallory-1").await;
    let existing = request_frames(&mut client, &plan.doc_id).await;
    let unknown_id = map_relay::plan_id::random();
    let unknown = request_frames(&mut client, &unknown_id).await;

    assert_eq!(existing.len(), 2, "an empty sync then doc-unavailable");
    let decoded: Vec<Message> = existing
        .iter()
        .map(|f| Message::decode(f).unwrap())
        .collect();
    assert!(matches!(&decoded[0], Message::Sync { .. }));
    assert!(matches!(&decoded[1], Message::DocUnavailable { .. }));
    // Byte for byte the same once the document id is swapped.
    let swap = |frame: &Vec<u8>| -> Vec<u8> {
        let msg = match Message::decode(frame).unwrap() {
            Message::Sync {
                sender_id,
                target_id,
                data,
                ..
            } => Message::Sync {
                sender_id,
                target_id,
                document_id: unknown_id.clone(),
                data,
            },
            Message::DocUnavailable {
                sender_id,
                target_id,
                ..
            } => Message::DocUnavailable {
                sender_id,
                target_id,
                document_id: unknown_id.clone(),
            },
            other => panic!("unexpected {other:?}"),
        };
        msg.encode()
    };
    let existing_swapped: Vec<Vec<u8>> = existing.iter().map(swap).collect();
    assert_eq!(existing_swapped, unknown);

    // Offering heads of a plan (without changes): the relay answers as an
    // empty document would, identically for both.
    let offer = |doc_id: &str| {
        let mut r = Replica::empty(doc_id);
        r.edit("title", "mine");
        r.outgoing(&client, false).unwrap()
    };
    let offer_existing = offer(&plan.doc_id);
    let offer_unknown = offer(&unknown_id);
    send(&mut client.ws, &offer_existing).await;
    let a = next_message(&mut client.ws, WAIT).await.unwrap();
    send(&mut client.ws, &offer_unknown).await;
    let b = next_message(&mut client.ws, WAIT).await.unwrap();
    match (a, b) {
        (Message::Sync { data: da, .. }, Message::Sync { data: db, .. }) => {
            let (ma, mb) = (
                automerge::sync::Message::decode(&da).unwrap(),
                automerge::sync::Message::decode(&db).unwrap(),
            );
            assert!(ma.heads.is_empty() && mb.heads.is_empty());
            assert_eq!(ma.need.len(), 1, "asks for the offered head");
            assert_eq!(mb.need.len(), 1);
        }
        other => panic!("expected two syncs, got {other:?}"),
    }

    // Pushing changes to someone else's plan does not work.
    let mut intruder = Replica::empty(&plan.doc_id);
    intruder.edit("title", "pwned");
    let push = forced_push(&client, &intruder, &[]);
    send(&mut client.ws, &push).await;
    let answer = next_message(&mut client.ws, WAIT).await.unwrap();
    assert!(
        matches!(answer, Message::DocUnavailable { .. }),
        "{answer:?}"
    );
    assert_eq!(
        stored_heads(&relay.db_path(), &plan.doc_id),
        Some(plan.heads())
    );

    // The plan listing shows only what a user may see.
    let list: serde_json::Value = reqwest::Client::new()
        .get(relay.http("/v1/plans"))
        .bearer_auth(&mallory)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, serde_json::json!([]));
    let list: serde_json::Value = reqwest::Client::new()
        .get(relay.http("/v1/plans"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], plan.doc_id.as_str());
    assert_eq!(list[0]["access"], "owner");
}

#[tokio::test]
async fn owner_pushes_a_new_plan_and_a_reader_receives_it_live() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let bob = relay.add_user("bob");

    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = Replica::new_plan("Acme rollout");
    let first = plan.heads();
    // The first message offers heads only: the relay asks for the changes
    // (no doc-unavailable), then stores them and acknowledges the new heads.
    let other = sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == first
    })
    .await;
    assert!(other.is_empty(), "{other:?}");
    relay.grant(&plan.doc_id, "bob", Access::ReadOnly);

    let mut reader = join(&relay.url(), &bob, "bob-1").await;
    let mut copy = Replica::empty(&plan.doc_id);
    let other = sync_until(&mut reader, &mut copy, true, |r| r.heads() == first).await;
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(copy.get("title").as_deref(), Some("Acme rollout"));

    // A later change reaches the reader without asking.
    plan.edit("title", "Acme rollout v2");
    let second = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == second
    })
    .await;
    let mut waiting = Replica {
        doc: copy.doc.clone(),
        state: std::mem::take(&mut copy.state),
        doc_id: copy.doc_id.clone(),
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while waiting.heads() != second {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_message(&mut reader.ws, left).await {
            Some(Message::Sync { data, .. }) => {
                waiting.receive(&data);
                if let Some(m) = waiting.outgoing(&reader, false) {
                    send(&mut reader.ws, &m).await;
                }
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("reader did not receive the change"),
        }
    }
    assert_eq!(waiting.get("title").as_deref(), Some("Acme rollout v2"));
    let author = relay
        .handle
        .db()
        .delivered_by(&plan.doc_id, &hex_of(second[0]))
        .unwrap();
    assert_eq!(author.as_deref(), Some("alice"));
}

fn hex_of(hash: automerge::ChangeHash) -> String {
    hash.0.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn read_only_changes_are_neither_stored_nor_forwarded() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let bob = relay.add_user("bob");

    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = push_new_plan(&mut owner, "Acme rollout").await;
    let first = plan.heads();
    relay.grant(&plan.doc_id, "bob", Access::ReadOnly);

    let mut reader = join(&relay.url(), &bob, "bob-1").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut reader, &mut copy, true, |r| r.heads() == first).await;

    copy.edit("title", "bob was here");
    settle(&mut reader, &mut copy, Duration::from_millis(300)).await;
    if let Some(m) = copy.outgoing(&reader, false) {
        send(&mut reader.ws, &m).await;
    }
    settle(&mut reader, &mut copy, Duration::from_millis(300)).await;

    // A client that ignores the read-only flag and pushes its changes anyway.
    let push = forced_push(&reader, &copy, &first);
    send(&mut reader.ws, &push).await;
    // The connection stays usable.
    let other = request_frames(&mut reader, &map_relay::plan_id::random()).await;
    assert_eq!(other.len(), 2, "still served");

    // The owner hears nothing; the database still has only the owner's change.
    let heard = settle(&mut owner, &mut plan, Duration::from_millis(500)).await;
    assert!(heard.is_empty(), "{heard:?}");
    assert_eq!(plan.heads(), first);
    assert_eq!(
        stored_heads(&relay.db_path(), &plan.doc_id),
        Some(first.clone())
    );
    assert!(
        relay
            .handle
            .db()
            .delivered_by(&plan.doc_id, &hex_of(copy.heads()[0]))
            .unwrap()
            .is_none()
    );

    // The same push from a read-write grant is accepted (the message was valid).
    relay.grant(&plan.doc_id, "bob", Access::ReadWrite);
    let mut writer = join(&relay.url(), &bob, "bob-2").await;
    let push = forced_push(&writer, &copy, &first);
    send(&mut writer.ws, &push).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while stored_heads(&relay.db_path(), &plan.doc_id) != Some(copy.heads()) {
        assert!(tokio::time::Instant::now() < deadline, "rw push not stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = relay
        .handle
        .db()
        .delivered_by(&plan.doc_id, &hex_of(copy.heads()[0]))
        .unwrap();
    assert_eq!(delivered.as_deref(), Some("bob"));
}

#[tokio::test]
async fn ephemeral_reaches_other_peers_once_and_is_not_echoed() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let bob = relay.add_user("bob");
    let carol = relay.add_user("carol");

    let mut a = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = Replica::new_plan("Acme");
    let heads = plan.heads();
    sync_until(&mut a, &mut plan, false, |r| r.state.shared_heads == heads).await;
    relay.grant(&plan.doc_id, "bob", Access::ReadWrite);
    let mut b = join(&relay.url(), &bob, "bob-1").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut b, &mut copy, true, |r| r.heads() == heads).await;
    settle(&mut a, &mut plan, Duration::from_millis(200)).await;
    settle(&mut b, &mut copy, Duration::from_millis(200)).await;
    // Carol is not granted: she must not hear anything.
    let mut c = join(&relay.url(), &carol, "carol-1").await;

    let presence = Message::Ephemeral {
        sender_id: "alice-1".into(),
        target_id: a.relay_peer.clone(),
        document_id: plan.doc_id.clone(),
        session_id: "s1".into(),
        count: 1,
        data: b"\xa1dnamecAli".to_vec(),
    };
    send(&mut a.ws, &presence).await;
    let got = next_message(&mut b.ws, WAIT).await.unwrap();
    let Message::Ephemeral {
        sender_id,
        target_id,
        document_id,
        session_id,
        count,
        data,
    } = got.clone()
    else {
        panic!("expected ephemeral, got {got:?}");
    };
    assert_eq!(
        (
            sender_id.as_str(),
            target_id.as_str(),
            session_id.as_str(),
            count
        ),
        ("alice-1", "bob-1", "s1", 1)
    );
    assert_eq!(document_id, plan.doc_id);
    assert_eq!(data, b"\xa1dnamecAli");
    // Bob's client sends it straight back with alice's sender id, as JS does:
    // dropped, so alice gets no echo.
    send(&mut b.ws, &got).await;
    assert!(
        next_message(&mut a.ws, Duration::from_millis(400))
            .await
            .is_none()
    );
    assert!(
        next_message(&mut b.ws, Duration::from_millis(200))
            .await
            .is_none()
    );
    // Carol, not granted, sending for the plan reaches nobody either.
    send(
        &mut c.ws,
        &Message::Ephemeral {
            sender_id: "carol-1".into(),
            target_id: c.relay_peer.clone(),
            document_id: plan.doc_id.clone(),
            session_id: "s2".into(),
            count: 1,
            data: vec![1],
        },
    )
    .await;
    assert!(
        next_message(&mut a.ws, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert!(
        next_message(&mut b.ws, Duration::from_millis(100))
            .await
            .is_none()
    );
    assert!(
        next_message(&mut c.ws, Duration::from_millis(100))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn changes_survive_a_restart() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let storage_id = relay.handle.db().storage_id().to_owned();
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = Replica::new_plan("Acme");
    for i in 0..5 {
        plan.edit(&format!("k{i}"), "v");
    }
    let heads = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    drop(owner);

    let relay = relay.restart().await;
    assert_eq!(relay.handle.db().storage_id(), storage_id);
    let mut again = join(&relay.url(), &alice, "alice-2").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut again, &mut copy, true, |r| r.heads() == heads).await;
    assert_eq!(copy.get("k4").as_deref(), Some("v"));
}

#[tokio::test]
async fn many_changes_are_compacted_and_still_load() {
    let relay = TestRelay::start_with(|c| c.compact_after_chunks = 3).await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = Replica::new_plan("Acme");
    for i in 0..8 {
        plan.edit("n", &i.to_string());
        let heads = plan.heads();
        sync_until(&mut owner, &mut plan, false, |r| {
            r.state.shared_heads == heads
        })
        .await;
    }
    let stored = relay.handle.db().load_plan(&plan.doc_id).unwrap().unwrap();
    assert!(stored.chunks <= 3, "compacted: {} chunks", stored.chunks);
    assert_eq!(
        stored_heads(&relay.db_path(), &plan.doc_id),
        Some(plan.heads())
    );
}

/// Group commit: many writers on many plans at once, each change
/// acknowledged only once committed. Every acknowledged change is in the
/// database at the moment of its acknowledgement, compactions (snapshots)
/// included, and everything is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_many_plans_are_all_acknowledged_and_durable() {
    let relay = TestRelay::start_with(|c| c.compact_after_chunks = 4).await;
    let alice = relay.add_user("alice");
    let db_path = relay.db_path();
    let mut writers = Vec::new();
    for w in 0..16 {
        let url = relay.url();
        let alice = alice.clone();
        let db_path = db_path.clone();
        writers.push(tokio::spawn(async move {
            let mut client = join(&url, &alice, &format!("alice-{w}")).await;
            let mut plan = Replica::new_plan(&format!("plan {w}"));
            for i in 0..10 {
                plan.edit("n", &i.to_string());
                let heads = plan.heads();
                sync_until(&mut client, &mut plan, false, |r| {
                    r.state.shared_heads == heads
                })
                .await;
                if i % 3 == 0 {
                    // Acknowledged means committed.
                    assert_eq!(stored_heads(&db_path, &plan.doc_id), Some(heads));
                }
            }
            (plan.doc_id.clone(), plan.heads())
        }));
    }
    let mut plans = Vec::new();
    for writer in writers {
        plans.push(writer.await.expect("writer task"));
    }
    for (doc_id, heads) in &plans {
        assert_eq!(stored_heads(&db_path, doc_id).as_ref(), Some(heads));
        let stored = relay.handle.db().load_plan(doc_id).unwrap().unwrap();
        assert!(stored.chunks <= 4, "compacted: {} chunks", stored.chunks);
    }
    let relay = relay.restart().await;
    let mut reader = join(&relay.url(), &alice, "alice-reader").await;
    for (doc_id, heads) in &plans {
        let mut copy = Replica::empty(doc_id);
        sync_until(&mut reader, &mut copy, true, |r| &r.heads() == heads).await;
    }
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let mut bystander = join(&relay.url(), &alice, "alice-0").await;

    // Malformed CBOR.
    let mut bad = join(&relay.url(), &alice, "alice-1").await;
    bad.ws
        .send(WsMessage::Binary(vec![0xff, 0x00, 0x13, 0x37].into()))
        .await
        .unwrap();
    let (seen, closed) = drain_until_closed(&mut bad.ws).await;
    assert!(closed);
    assert!(matches!(&seen[..], [Message::Error { .. }]), "{seen:?}");

    // A text frame.
    let mut text = join(&relay.url(), &alice, "alice-2").await;
    text.ws
        .send(WsMessage::text("{\"type\":\"join\"}"))
        .await
        .unwrap();
    let (_, closed) = drain_until_closed(&mut text.ws).await;
    assert!(closed);

    // A sync message whose payload is not an automerge sync message.
    let mut junk = join(&relay.url(), &alice, "alice-3").await;
    send(
        &mut junk.ws,
        &Message::Sync {
            sender_id: "alice-3".into(),
            target_id: junk.relay_peer.clone(),
            document_id: map_relay::plan_id::random(),
            data: vec![0x42, 0xff, 0xff, 0xff],
        },
    )
    .await;
    let (_, closed) = drain_until_closed(&mut junk.ws).await;
    assert!(closed);

    // A CBOR map that is not a message.
    let mut odd = join(&relay.url(), &alice, "alice-4").await;
    odd.ws
        .send(WsMessage::Binary(vec![0xa1, 0x61, 0x78, 0x01].into()))
        .await
        .unwrap();
    let (_, closed) = drain_until_closed(&mut odd.ws).await;
    assert!(closed);

    // Everyone else is still served.
    let mut plan = Replica::new_plan("still here");
    let heads = plan.heads();
    sync_until(&mut bystander, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    let response = reqwest::get(relay.http("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn peer_ids_belong_to_one_user_at_a_time() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let bob = relay.add_user("bob");
    let mut first = join(&relay.url(), &alice, "shared-peer").await;

    // Bob may not take alice's peer id.
    let mut ws = connect(&relay.url(), &bob).await.unwrap();
    send(&mut ws, &join_message("shared-peer", &["1"])).await;
    let (seen, closed) = drain_until_closed(&mut ws).await;
    assert!(closed);
    assert!(matches!(&seen[..], [Message::Error { .. }]), "{seen:?}");

    // Alice's second client with the same peer id replaces the first.
    let _second = join(&relay.url(), &alice, "shared-peer").await;
    let (_, closed) = drain_until_closed(&mut first.ws).await;
    assert!(closed, "the older socket is closed");

    // Two clients of one user with different peer ids coexist.
    let mut third = join(&relay.url(), &alice, "alice-other").await;
    assert!(
        next_message(&mut third.ws, Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn unused_plans_are_unloaded() {
    let relay = TestRelay::start_with(|c| c.unload_after = Duration::from_millis(200)).await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = Replica::new_plan("Acme");
    let heads = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    assert_eq!(relay.handle.loaded_plans(), 1);
    // Open but quiet: the document leaves memory, the connection stays.
    let deadline = tokio::time::Instant::now() + WAIT;
    while relay.handle.loaded_plans() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "quiet plan was not unloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A reader joins and a new change from the open connection still flows
    // both ways: the plan is loaded again on demand.
    let mut reader = join(&relay.url(), &alice, "alice-3").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut reader, &mut copy, true, |r| r.heads() == heads).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    plan.edit("title", "Acme v2");
    let second = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == second
    })
    .await;
    sync_until(&mut reader, &mut copy, false, |r| r.heads() == second).await;
    assert_eq!(copy.get("title").as_deref(), Some("Acme v2"));
    let heads = second;
    drop(reader);
    drop(owner);
    let deadline = tokio::time::Instant::now() + WAIT;
    while relay.handle.loaded_plans() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "plan was not unloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It loads again on demand.
    let mut again = join(&relay.url(), &alice, "alice-2").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut again, &mut copy, true, |r| r.heads() == heads).await;
}

#[tokio::test]
async fn beyond_the_limit_the_least_recently_used_plans_leave_memory() {
    // unload_after alone would keep every plan for a minute.
    let relay = TestRelay::start_with(|c| {
        c.unload_after = Duration::from_secs(60);
        c.max_loaded_plans = 2;
    })
    .await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plans = Vec::new();
    for title in ["Acme", "Globex", "Initech", "Umbrella"] {
        let mut plan = Replica::new_plan(title);
        let heads = plan.heads();
        sync_until(&mut owner, &mut plan, false, |r| {
            r.state.shared_heads == heads
        })
        .await;
        plans.push(plan);
    }
    assert_eq!(relay.handle.loaded_plans(), 4, "no plan is quiet yet");
    // Quiet for a second, the two used longest ago leave memory; the
    // connection keeps all four open.
    let deadline = tokio::time::Instant::now() + WAIT;
    while relay.handle.loaded_plans() > 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} plans still loaded, 2 allowed",
            relay.handle.loaded_plans()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(relay.handle.loaded_plans(), 2, "the limit is not undershot");
    // The first plan (unloaded) still syncs both ways: loaded on demand.
    let first = &mut plans[0];
    first.edit("title", "Acme v2");
    let heads = first.heads();
    sync_until(&mut owner, first, false, |r| r.state.shared_heads == heads).await;
    let mut reader = join(&relay.url(), &alice, "alice-2").await;
    let mut copy = Replica::empty(&first.doc_id);
    sync_until(&mut reader, &mut copy, true, |r| r.heads() == heads).await;
    assert_eq!(copy.get("title").as_deref(), Some("Acme v2"));
}

#[tokio::test]
async fn invites_are_single_use_and_expire() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = Replica::new_plan("Acme");
    let heads = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;

    let http = reqwest::Client::new();
    let invite = |token: &str, body: serde_json::Value| {
        http.post(relay.http("/v1/invites"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let response = invite(
        &alice,
        serde_json::json!({"plan": plan.doc_id, "access": "ro", "side": "buyer", "expires_secs": 600}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    let url = body["invite"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("ws://{}/join/", relay.addr)),
        "{url}"
    );

    let redeem = |invite: &str, name: &str| {
        http.post(relay.http("/v1/invites/redeem"))
            .json(&serde_json::json!({"invite": invite, "name": name, "email": "b@x.com"}))
            .send()
    };
    let response = redeem(&url, "Bea").await.unwrap();
    assert_eq!(response.status(), 200);
    let joined: serde_json::Value = response.json().await.unwrap();
    assert_eq!(joined["plan"], plan.doc_id.as_str());
    assert_eq!(joined["user"], "Bea");
    let token = joined["token"].as_str().unwrap().to_owned();

    // The new user reads the plan, read-only.
    let mut bea = join(&relay.url(), &token, "bea-1").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut bea, &mut copy, true, |r| r.heads() == heads).await;
    // A read-only user cannot invite.
    let response = invite(
        &token,
        serde_json::json!({"plan": plan.doc_id, "access": "ro"}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 404);

    // Used, unknown, expired.
    let response = redeem(&url, "Eve").await.unwrap();
    assert_eq!(response.status(), 410);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("already used"));
    let response = redeem("ws://x/join/doesnotexist", "Eve").await.unwrap();
    assert_eq!(response.status(), 404);
    let response = invite(
        &alice,
        serde_json::json!({"plan": plan.doc_id, "access": "rw", "expires_secs": 1}),
    )
    .await
    .unwrap();
    let short: serde_json::Value = response.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = redeem(short["invite"].as_str().unwrap(), "Late")
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("expired"));

    // No invites for plans one cannot see; no invites without a token.
    let response = invite(
        &alice,
        serde_json::json!({"plan": map_relay::plan_id::random(), "access": "rw"}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 404);
    let response = http
        .post(relay.http("/v1/invites"))
        .json(&serde_json::json!({"plan": plan.doc_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn shutdown_closes_connections() {
    let mut relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let mut client = join(&relay.url(), &alice, "alice-1").await;
    relay.stop().await;
    let (_, closed) = drain_until_closed(&mut client.ws).await;
    assert!(closed);
    assert_eq!(relay.handle.connections(), 0);
}

#[tokio::test]
async fn ungrant_reaches_a_live_connection() {
    let relay = TestRelay::start_with(|c| c.revalidate_every = Duration::from_millis(100)).await;
    let alice = relay.add_user("alice");
    let bob = relay.add_user("bob");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = push_new_plan(&mut owner, "Acme").await;
    let first = plan.heads();
    relay.grant(&plan.doc_id, "bob", Access::ReadWrite);
    let mut reader = join(&relay.url(), &bob, "bob-1").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut reader, &mut copy, true, |r| r.heads() == first).await;
    settle(&mut reader, &mut copy, Duration::from_millis(200)).await;

    relay.handle.db().ungrant(&plan.doc_id, "bob").unwrap();
    let heard = settle(&mut reader, &mut copy, Duration::from_millis(800)).await;
    assert!(
        heard
            .iter()
            .any(|m| matches!(m, Message::DocUnavailable { .. })),
        "{heard:?}"
    );
    // Later changes no longer reach bob.
    plan.edit("title", "secret");
    let second = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == second
    })
    .await;
    let heard = settle(&mut reader, &mut copy, Duration::from_millis(400)).await;
    assert!(heard.is_empty(), "{heard:?}");
    assert_eq!(copy.heads(), first);
}

#[tokio::test]
async fn connection_limits_and_message_size() {
    let relay = TestRelay::start_with(|c| {
        c.max_connections_per_ip = 2;
        c.max_message_size = 64 * 1024;
    })
    .await;
    let alice = relay.add_user("alice");
    let mut first = join(&relay.url(), &alice, "alice-1").await;
    let _second = join(&relay.url(), &alice, "alice-2").await;
    match connect(&relay.url(), &alice).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429)
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    // Too large a message closes that connection and frees its slot.
    first
        .ws
        .send(WsMessage::Binary(vec![0u8; 128 * 1024].into()))
        .await
        .unwrap();
    let (_, closed) = drain_until_closed(&mut first.ws).await;
    assert!(closed);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match connect(&relay.url(), &alice).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("slot not freed: {e:?}"),
        }
    }
}

/// The relay reads at most 1 KiB at a time (a small buffer per idle
/// connection): a push hundreds of times larger still arrives whole, is
/// stored, and reaches another participant intact.
#[tokio::test]
async fn a_push_far_larger_than_the_read_buffer_arrives_whole() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let plan = push_big_plan(&mut owner, 400 * 1024).await;
    let heads = plan.heads();
    assert_eq!(
        stored_heads(&relay.db_path(), &plan.doc_id),
        Some(heads.clone())
    );

    let mut other = join(&relay.url(), &alice, "alice-2").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut other, &mut copy, true, |r| r.heads() == heads).await;
    let notes = plan.get("notes").unwrap();
    assert!(notes.len() >= 400 * 1024);
    assert_eq!(copy.get("notes"), Some(notes));
}

#[tokio::test]
async fn idle_peers_are_closed() {
    let relay = TestRelay::start_with(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let alice = relay.add_user("alice");
    // A client that answers pings (tungstenite does while it reads) stays.
    let mut live = join(&relay.url(), &alice, "alice-1").await;
    assert!(
        next_message(&mut live.ws, Duration::from_millis(800))
            .await
            .is_none()
    );
    send(&mut live.ws, &join_message("alice-1", &["1"])).await; // still open: a second join is an error
    let (seen, closed) = drain_until_closed(&mut live.ws).await;
    assert!(closed);
    assert!(matches!(&seen[..], [Message::Error { .. }]), "{seen:?}");
    // A client that never reads (so never pongs) is closed.
    let mut silent = join(&relay.url(), &alice, "alice-2").await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (_, closed) = drain_until_closed(&mut silent.ws).await;
    assert!(closed);
}

/// `GET /v1/plans/{id}/deliveries`: the delivering user of every stored
/// change, for granted users only; everyone else gets the same 404 as for
/// an unknown plan.
#[tokio::test]
async fn deliveries_are_listed_for_granted_users_only() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let bob = relay.add_user("bob");
    let carol = relay.add_user("carol");

    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = push_new_plan(&mut owner, "Acme rollout").await;
    let first = plan.heads();
    plan.edit("title", "Acme rollout v2");
    let second = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == second
    })
    .await;
    relay.grant(&plan.doc_id, "bob", Access::ReadOnly);

    let client = reqwest::Client::new();
    let get = |path: String, token: Option<String>| {
        let client = client.clone();
        let url = relay.http(&path);
        async move {
            let mut req = client.get(url);
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let response = req.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let path = format!("/v1/plans/{}/deliveries", plan.doc_id);
    for token in [&alice, &bob] {
        let (status, body) = get(path.clone(), Some(token.clone())).await;
        assert_eq!(status, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let list = list.as_array().unwrap();
        let hashes: Vec<&str> = list.iter().map(|d| d["hash"].as_str().unwrap()).collect();
        assert_eq!(hashes, [hex_of(first[0]), hex_of(second[0])]);
        assert!(
            list.iter()
                .all(|d| d["user"] == "alice" && d["at"].is_i64())
        );
    }
    // The automerge: URL form names the same plan.
    let (status, _) = get(
        format!("/v1/plans/automerge:{}/deliveries", plan.doc_id),
        Some(bob.clone()),
    )
    .await;
    assert_eq!(status, 200);

    // No grant, unknown plan, malformed id: identical answers.
    let unknown = map_relay::plan_id::random();
    let answers = [
        get(path.clone(), Some(carol.clone())).await,
        get(
            format!("/v1/plans/{unknown}/deliveries"),
            Some(carol.clone()),
        )
        .await,
        get(
            format!("/v1/plans/{unknown}/deliveries"),
            Some(alice.clone()),
        )
        .await,
        get(
            "/v1/plans/not-a-plan/deliveries".into(),
            Some(alice.clone()),
        )
        .await,
    ];
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(answers[0].0, 404);

    // No token or a bad one: 401; a revoked user loses access at once.
    assert_eq!(get(path.clone(), None).await.0, 401);
    assert_eq!(get(path.clone(), Some("nope".into())).await.0, 401);
    relay.handle.db().revoke_user("bob").unwrap();
    assert_eq!(get(path.clone(), Some(bob.clone())).await.0, 401);
}

/// Fan-out shares one generated sync message among followers in the same
/// sync state; a follower in another state still gets what it lacks.
#[tokio::test]
async fn followers_in_step_share_a_message_and_a_laggard_still_catches_up() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = push_new_plan(&mut owner, "Acme rollout").await;
    let first = plan.heads();

    // Two followers in step, and a laggard that took only the first round.
    let mut followers = Vec::new();
    for peer in ["bob-1", "bob-2"] {
        let mut client = join(&relay.url(), &alice, peer).await;
        let mut copy = Replica::empty(&plan.doc_id);
        sync_until(&mut client, &mut copy, true, |r| r.heads() == first).await;
        settle(&mut client, &mut copy, Duration::from_millis(200)).await;
        followers.push((client, copy));
    }
    let mut laggard = join(&relay.url(), &alice, "carol-1").await;
    let mut behind = Replica::empty(&plan.doc_id);
    let request = behind.outgoing(&laggard, true).expect("request");
    send(&mut laggard.ws, &request).await;

    plan.edit("title", "Acme rollout v2");
    let second = plan.heads();
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == second
    })
    .await;

    // The followers in step receive the very same sync payload.
    let mut payloads = Vec::new();
    for (client, copy) in &mut followers {
        let Some(Message::Sync { data, .. }) = next_message(&mut client.ws, WAIT).await else {
            panic!("follower got no sync message");
        };
        copy.receive(&data);
        assert_eq!(copy.heads(), second);
        payloads.push(data);
    }
    assert_eq!(
        payloads[0], payloads[1],
        "followers in one state get one message"
    );
    // The laggard never answered; driving it now still converges.
    sync_until(&mut laggard, &mut behind, false, |r| r.heads() == second).await;
    assert_eq!(behind.get("title").as_deref(), Some("Acme rollout v2"));
}

/// One push per change, sent back to back as a peer that does not wait for
/// answers sends them (`base` is what the relay already has).
fn pushes(
    client: &Client,
    plan: &mut Replica,
    base: &[automerge::ChangeHash],
    n: usize,
) -> Vec<Message> {
    let mut previous = base.to_vec();
    let mut out = Vec::new();
    for i in 0..n {
        plan.edit("n", &i.to_string());
        out.push(forced_push(client, plan, &previous));
        previous = plan.heads();
    }
    out
}

/// Send messages in one write, so they reach the relay together.
async fn send_together(ws: &mut Ws, messages: &[Message]) {
    for message in messages {
        ws.feed(WsMessage::Binary(message.encode().into()))
            .await
            .expect("feed");
    }
    ws.flush().await.expect("flush");
}

/// Messages that arrive together are one burst: the relay stores them in
/// one write (one chunk, every change's delivery recorded) and a follower
/// gets them as one sync message.
#[tokio::test]
async fn a_burst_of_pushes_is_stored_once_and_passed_on_as_one_message() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = push_new_plan(&mut owner, "Acme rollout").await;
    let first = plan.heads();
    let mut follower = join(&relay.url(), &alice, "alice-2").await;
    let mut copy = Replica::empty(&plan.doc_id);
    sync_until(&mut follower, &mut copy, true, |r| r.heads() == first).await;
    settle(&mut follower, &mut copy, Duration::from_millis(200)).await;
    let chunks_before = relay
        .handle
        .db()
        .load_plan(&plan.doc_id)
        .unwrap()
        .unwrap()
        .chunks;

    let burst = pushes(&owner, &mut plan, &first, 20);
    send_together(&mut owner.ws, &burst).await;
    let last = plan.heads();

    let Some(Message::Sync { data, .. }) = next_message(&mut follower.ws, WAIT).await else {
        panic!("follower got no sync message");
    };
    copy.receive(&data);
    assert_eq!(copy.heads(), last, "the whole burst in one message");
    assert_eq!(copy.get("n").as_deref(), Some("19"));

    let stored = relay.handle.db().load_plan(&plan.doc_id).unwrap().unwrap();
    assert_eq!(stored.chunks, chunks_before + 1, "one write for the burst");
    assert_eq!(
        stored_heads(&relay.db_path(), &plan.doc_id),
        Some(last.clone())
    );
    for change in plan.doc.get_changes(&first) {
        let by = relay
            .handle
            .db()
            .delivered_by(&plan.doc_id, &hex_of(change.hash()))
            .unwrap();
        assert_eq!(by.as_deref(), Some("alice"));
    }
    // The owner is answered with the new heads.
    sync_until(&mut owner, &mut plan, false, |r| {
        r.state.shared_heads == last
    })
    .await;
}

/// A burst that ends in garbage: the pushes before it are stored and passed
/// on, then only that connection is closed.
#[tokio::test]
async fn pushes_before_garbage_in_a_burst_are_kept() {
    let relay = TestRelay::start().await;
    let alice = relay.add_user("alice");
    let mut owner = join(&relay.url(), &alice, "alice-1").await;
    let mut plan = push_new_plan(&mut owner, "Acme rollout").await;
    let first = plan.heads();
    let burst = pushes(&owner, &mut plan, &first, 5);
    let last = plan.heads();
    for message in &burst {
        owner
            .ws
            .feed(WsMessage::Binary(message.encode().into()))
            .await
            .unwrap();
    }
    owner
        .ws
        .send(WsMessage::Binary(vec![0xff, 0x00, 0x13, 0x37].into()))
        .await
        .unwrap();
    let (seen, closed) = drain_until_closed(&mut owner.ws).await;
    assert!(closed);
    assert!(
        seen.iter().any(|m| matches!(m, Message::Error { .. })),
        "{seen:?}"
    );
    assert_eq!(stored_heads(&relay.db_path(), &plan.doc_id), Some(last));

    // A refused sync payload inside a burst closes the connection; nothing
    // of that burst is stored (the peer still has it and can push again).
    let mut again = join(&relay.url(), &alice, "alice-2").await;
    let base = plan.heads();
    let mut burst = pushes(&again, &mut plan, &base, 3);
    burst.push(Message::Sync {
        sender_id: again.peer_id.clone(),
        target_id: again.relay_peer.clone(),
        document_id: plan.doc_id.clone(),
        data: vec![0x42, 0xff, 0xff, 0xff],
    });
    send_together(&mut again.ws, &burst).await;
    let (_, closed) = drain_until_closed(&mut again.ws).await;
    assert!(closed);
    let stored = stored_heads(&relay.db_path(), &plan.doc_id).unwrap();
    assert!(
        stored == base || stored == plan.heads(),
        "a burst is stored whole or not at all"
    );

    // The relay still serves the plan, and the pushes go through on retry.
    let mut retry = join(&relay.url(), &alice, "alice-3").await;
    let now = plan.heads();
    plan.state = automerge::sync::State::new();
    sync_until(&mut retry, &mut plan, false, |r| {
        r.state.shared_heads == now
    })
    .await;
    assert_eq!(stored_heads(&relay.db_path(), &plan.doc_id), Some(now));
}
