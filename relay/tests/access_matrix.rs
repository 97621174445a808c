//! The access matrix: every caller (no token, bad token, revoked, valid
//! without a grant, read-only, read-write, owner) against every operation
//! (open a plan, write a plan, create an invite, list plans), on a real relay.
//! A denied plan must look exactly like a missing one.

mod common;

use std::time::Duration;

use common::*;
use map_relay::Access;
use map_sync::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoToken,
    BadToken,
    Revoked,
    NoGrant,
    ReadOnly,
    ReadWrite,
    Owner,
}

const CALLERS: [Caller; 7] = [
    Caller::NoToken,
    Caller::BadToken,
    Caller::Revoked,
    Caller::NoGrant,
    Caller::ReadOnly,
    Caller::ReadWrite,
    Caller::Owner,
];

impl Caller {
    fn authenticated(self) -> bool {
        !matches!(self, Caller::NoToken | Caller::BadToken | Caller::Revoked)
    }
    fn can_read(self) -> bool {
        matches!(self, Caller::ReadOnly | Caller::ReadWrite | Caller::Owner)
    }
    fn can_write(self) -> bool {
        matches!(self, Caller::ReadWrite | Caller::Owner)
    }
}

struct World {
    relay: TestRelay,
    plan: Replica,
    tokens: Vec<(Caller, Option<String>)>,
}

async fn world() -> World {
    let relay = TestRelay::start().await;
    let owner = relay.add_user("olivia");
    let mut client = join(&relay.url(), &owner, "olivia-1").await;
    let mut plan = Replica::new_plan("Acme");
    let heads = plan.heads();
    sync_until(&mut client, &mut plan, false, |r| {
        r.state.shared_heads == heads
    })
    .await;
    drop(client);
    let revoked = relay.add_user("rex");
    relay.grant(&plan.doc_id, "rex", Access::ReadWrite);
    relay.handle.db().revoke_user("rex").unwrap();
    let nogrant = relay.add_user("nora");
    let reader = relay.add_user("rita");
    relay.grant(&plan.doc_id, "rita", Access::ReadOnly);
    let writer = relay.add_user("walt");
    relay.grant(&plan.doc_id, "walt", Access::ReadWrite);
    let tokens = vec![
        (Caller::NoToken, None),
        (Caller::BadToken, Some(map_relay::auth::new_secret())),
        (Caller::Revoked, Some(revoked)),
        (Caller::NoGrant, Some(nogrant)),
        (Caller::ReadOnly, Some(reader)),
        (Caller::ReadWrite, Some(writer)),
        (Caller::Owner, Some(owner)),
    ];
    World {
        relay,
        plan,
        tokens,
    }
}

async fn ws_status(url: &str, token: Option<&str>) -> u16 {
    let result = match token {
        Some(token) => connect(url, token).await,
        None => tokio_tungstenite::connect_async(url)
            .await
            .map(|(ws, _)| ws),
    };
    match result {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            assert!(body.is_empty(), "refusals say nothing: {body:?}");
            response.status().as_u16()
        }
        Err(e) => panic!("{e:?}"),
    }
}

/// Every message the relay sends after a `request` for `doc_id`, until it
/// says doc-unavailable or the caller has `want` heads.
async fn open(client: &mut Client, doc_id: &str) -> (Replica, Vec<Message>) {
    let mut replica = Replica::empty(doc_id);
    let request = replica.outgoing(client, true).expect("request");
    send(&mut client.ws, &request).await;
    let mut seen = Vec::new();
    while let Some(message) = next_message(&mut client.ws, Duration::from_millis(500)).await {
        if let Message::Sync { data, .. } = &message {
            replica.receive(data);
            if let Some(reply) = replica.outgoing(client, false) {
                send(&mut client.ws, &reply).await;
            }
        }
        let done = matches!(message, Message::DocUnavailable { .. });
        seen.push(message);
        if done {
            break;
        }
    }
    (replica, seen)
}

/// The messages with the document id replaced, encoded (for byte comparisons).
fn normalized(messages: &[Message]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|m| {
            match m.clone() {
                Message::Sync {
                    sender_id,
                    target_id,
                    data,
                    ..
                } => Message::Sync {
                    sender_id,
                    target_id,
                    document_id: "X".into(),
                    data,
                },
                Message::DocUnavailable {
                    sender_id,
                    target_id,
                    ..
                } => Message::DocUnavailable {
                    sender_id,
                    target_id,
                    document_id: "X".into(),
                },
                other => panic!("unexpected {other:?}"),
            }
            .encode()
        })
        .collect()
}

#[tokio::test]
async fn every_caller_against_every_operation() {
    let World {
        relay,
        plan,
        tokens,
    } = world().await;
    let http = reqwest::Client::new();
    for (i, (caller, token)) in tokens.iter().enumerate() {
        let caller = *caller;
        let token = token.as_deref();
        let peer = format!("peer-{i}");

        // --- open a plan (WebSocket) and write to it.
        let status = ws_status(&relay.url(), token).await;
        if !caller.authenticated() {
            assert_eq!(status, 401, "{caller:?} open");
        } else {
            assert_eq!(status, 101, "{caller:?} open");
            let token = token.unwrap();
            let mut client = join(&relay.url(), token, &peer).await;
            let (mut copy, seen) = open(&mut client, &plan.doc_id).await;
            let stored = stored_heads(&relay.db_path(), &plan.doc_id).unwrap();
            if caller.can_read() {
                assert_eq!(copy.heads(), stored, "{caller:?} reads");
            } else {
                // Indistinguishable from a plan that does not exist.
                let unknown = map_relay::plan_id::random();
                let (_, missing) = open(&mut client, &unknown).await;
                assert!(matches!(seen.last(), Some(Message::DocUnavailable { .. })));
                assert_eq!(normalized(&seen), normalized(&missing), "{caller:?}");
                assert!(copy.heads().is_empty());
            }

            // Write: a change on top of the plan, pushed even if not allowed.
            let before = stored_heads(&relay.db_path(), &plan.doc_id).unwrap();
            // (Built on what the caller read, or on the owner's copy.)
            let base = if caller.can_read() { &copy } else { &plan };
            let mut fork = Replica::empty(&plan.doc_id);
            fork.doc = base.doc.fork();
            fork.edit("note", &format!("by {caller:?}"));
            let push = forced_push(&client, &fork, &base.heads());
            send(&mut client.ws, &push).await;
            if caller.can_write() {
                let want = fork.heads();
                let deadline = tokio::time::Instant::now() + WAIT;
                while stored_heads(&relay.db_path(), &plan.doc_id).unwrap() != want {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{caller:?} write not stored"
                    );
                    let _ = next_message(&mut client.ws, Duration::from_millis(20)).await;
                }
            } else {
                // Let the relay handle it, then check nothing was stored.
                let _ = settle(&mut client, &mut copy, Duration::from_millis(300)).await;
                assert_eq!(
                    stored_heads(&relay.db_path(), &plan.doc_id).unwrap(),
                    before,
                    "{caller:?} write must not be stored"
                );
            }
        }

        // --- create an invite.
        let invite = |plan_id: String| {
            let mut request = http
                .post(relay.http("/v1/invites"))
                .json(&serde_json::json!({"plan": plan_id, "access": "ro"}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let response = invite(plan.doc_id.clone()).await.unwrap();
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap();
        match caller {
            _ if !caller.authenticated() => {
                assert_eq!(status, 401, "{caller:?} invite");
                assert!(body.is_empty());
            }
            _ if caller.can_write() => assert_eq!(status, 201, "{caller:?} invite"),
            _ => {
                assert_eq!(status, 404, "{caller:?} invite");
                let missing = invite(map_relay::plan_id::random()).await.unwrap();
                assert_eq!(missing.status().as_u16(), 404);
                assert_eq!(missing.bytes().await.unwrap(), body, "{caller:?}");
            }
        }

        // --- list plans.
        let mut request = http.get(relay.http("/v1/plans"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        if !caller.authenticated() {
            assert_eq!(response.status(), 401, "{caller:?} list");
            assert!(response.bytes().await.unwrap().is_empty());
        } else {
            assert_eq!(response.status(), 200, "{caller:?} list");
            let plans: serde_json::Value = response.json().await.unwrap();
            let entry = plans
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["id"] == plan.doc_id.as_str());
            let expected = match caller {
                Caller::ReadOnly => Some("ro"),
                Caller::ReadWrite => Some("rw"),
                Caller::Owner => Some("owner"),
                _ => None,
            };
            assert_eq!(
                entry.map(|e| e["access"].as_str().unwrap()),
                expected,
                "{caller:?} list: {plans}"
            );
        }
    }
    assert_eq!(tokens.len(), CALLERS.len());
    assert!(tokens.iter().map(|t| t.0).eq(CALLERS));
}

#[tokio::test]
async fn tokens_are_random_hashed_and_never_logged() {
    let relay = TestRelay::start().await;
    let tokens: Vec<String> = (0..64)
        .map(|i| relay.add_user(&format!("user-{i}")))
        .collect();
    for token in &tokens {
        // base58 of 32 random bytes: >= 43 characters, >= 256 bits.
        let bytes = bs58_len(token);
        assert_eq!(bytes, 32, "{token}");
    }
    let unique: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(unique.len(), tokens.len());
    // The database file holds no token (only sha256 hashes).
    let _ = relay.handle.db().checkpoint();
    let mut raw = std::fs::read(relay.db_path()).unwrap();
    let wal = relay.db_path().with_extension("db-wal");
    raw.extend(std::fs::read(wal).unwrap_or_default());
    for token in &tokens {
        assert!(
            !raw.windows(token.len()).any(|w| w == token.as_bytes()),
            "a token is stored in clear"
        );
    }
}

/// How many bytes a base58 string decodes to.
fn bs58_len(text: &str) -> usize {
    // Decode base58 by hand (no extra dev-dependency): big-endian base 256.
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out: Vec<u8> = Vec::new();
    for c in text.bytes() {
        let mut carry = ALPHABET.iter().position(|&a| a == c).expect("base58") as u32;
        for byte in out.iter_mut().rev() {
            carry += (*byte as u32) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|&c| c == b'1').count();
    zeros + out.len()
}

#[tokio::test]
async fn an_invite_is_redeemed_once_even_under_a_race() {
    let World {
        relay,
        plan,
        tokens,
    } = world().await;
    let owner = tokens
        .iter()
        .find(|t| t.0 == Caller::Owner)
        .and_then(|t| t.1.clone())
        .unwrap();
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(relay.http("/v1/invites"))
        .bearer_auth(&owner)
        .json(&serde_json::json!({"plan": plan.doc_id, "access": "rw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let invite = created["invite"].as_str().unwrap().to_owned();
    let secret = invite.rsplit('/').next().unwrap();
    // >= 128 bits of randomness: base58 of 32 bytes.
    assert!(secret.len() >= 43, "{secret}");
    let racers = (0..16).map(|i| {
        let http = http.clone();
        let url = relay.http("/v1/invites/redeem");
        let invite = invite.clone();
        tokio::spawn(async move {
            http.post(url)
                .json(&serde_json::json!({"invite": invite, "name": format!("racer-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses[1..].iter().all(|&s| s == 410), "{statuses:?}");
}
