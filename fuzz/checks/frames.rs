//! What the `frames` fuzz target runs, shared with the stable regression
//! test `crates/map-sync/tests/fuzz_regressions.rs` (both include this file
//! with `#[path]`).
//!
//! It follows the relay's handling of one incoming binary frame
//! (`relay/src/connection.rs` `Reader::frame` -> `hub.rs` `Hub::on_sync`):
//! `map_sync::Message::decode`, then for `sync`/`request` the automerge
//! sync payload: `automerge::sync::Message::decode` and
//! `receive_sync_message` on an empty document (what `create` and
//! `ask_for_changes` do) and on a small plan-shaped document with a
//! read-write and a read-only sync state (what `sync_existing` does), each
//! inside `catch_unwind` as the relay does. Followed by the reply the relay
//! would generate.
//!
//! Invariants checked (a failure aborts the fuzzer):
//! - `Message::decode` never panics;
//! - a decoded message re-encodes to bytes that decode to the same message;
//! - the accessors (`type_name`, `sender_id`, ...) never panic;
//! - nothing outside the relay's `catch_unwind` panics.
//!
//! A panic inside automerge's `receive_sync_message` is contained by the
//! relay (the connection gets an `error` and the plan is reloaded), so it is
//! contained here too; set `MAP_FUZZ_STRICT=1` to make it fatal and find
//! such automerge panics.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::{Once, OnceLock};

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge, ObjType, ROOT, sync};
use map_sync::Message;

thread_local! {
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Install (once) a panic hook that stays silent for panics the relay
/// contains, and defers to the previous hook (libFuzzer's: report and abort)
/// for every other panic.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let strict = std::env::var_os("MAP_FUZZ_STRICT").is_some();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !strict && CONTAINED.with(Cell::get) {
                return;
            }
            previous(info);
        }));
    });
}

/// Run `f` as the relay does: inside `catch_unwind`. `None` if it panicked.
fn contained<T>(f: impl FnOnce() -> T) -> Option<T> {
    install_hook();
    CONTAINED.with(|c| c.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(false));
    result.ok()
}

/// A small plan-shaped document (header, a person, a milestone, two tasks
/// with a dependency, a risk), saved once.
fn plan_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut doc = AutoCommit::new();
        doc.set_actor(automerge::ActorId::from(&[1u8; 16][..]));
        plan_shape(&mut doc).expect("building the seed plan");
        doc.save()
    })
}

#[allow(clippy::result_large_err)]
fn plan_shape(doc: &mut AutoCommit) -> Result<(), automerge::AutomergeError> {
    doc.put(ROOT, "schema", 1u64)?;
    let h = doc.put_object(ROOT, "header", ObjType::Map)?;
    doc.put(&h, "title", "Acme rollout")?;
    let objective = doc.put_object(&h, "objective", ObjType::Text)?;
    doc.splice_text(&objective, 0, 0, "Go live by Q1")?;
    doc.put(&h, "go_live", "2027-03-01")?;
    doc.put(&h, "created_at", 1_780_000_000_000i64)?;
    let people = doc.put_object(ROOT, "people", ObjType::Map)?;
    let p = doc.put_object(&people, "p1", ObjType::Map)?;
    doc.put(&p, "name", "Ana Buyer")?;
    doc.put(&p, "email", "ana@buyer.com")?;
    doc.put(&p, "side", "buyer")?;
    let milestones = doc.put_object(ROOT, "milestones", ObjType::Map)?;
    let m = doc.put_object(&milestones, "m1", ObjType::Map)?;
    doc.put(&m, "title", "Security review")?;
    doc.put(&m, "due", "2027-01-15")?;
    let tasks = doc.put_object(ROOT, "tasks", ObjType::Map)?;
    for (id, title, deps) in [("t1", "Send MSA", &[][..]), ("t2", "Sign", &["t1"][..])] {
        let t = doc.put_object(&tasks, id, ObjType::Map)?;
        doc.put(&t, "title", title)?;
        doc.put(&t, "status", "todo")?;
        doc.put(&t, "milestone", "m1")?;
        doc.put(&t, "owner", "p1")?;
        doc.put(&t, "due", "2026-12-18")?;
        let d = doc.put_object(&t, "deps", ObjType::List)?;
        for (i, dep) in deps.iter().enumerate() {
            doc.insert(&d, i, *dep)?;
        }
    }
    let risks = doc.put_object(ROOT, "risks", ObjType::Map)?;
    let r = doc.put_object(&risks, "r1", ObjType::Map)?;
    doc.put(&r, "title", "Legal delay")?;
    doc.put_object(ROOT, "comments", ObjType::Map)?;
    doc.commit();
    Ok(())
}

/// Apply an automerge sync payload the ways the relay does.
fn apply_sync(data: &[u8]) {
    let Ok(message) = sync::Message::decode(data) else {
        return;
    };
    // The relay rejects hostile bloom filters right after decoding.
    if map_sync::message::check_sync_payload(&message).is_err() {
        return;
    }
    // `create` / `ask_for_changes`: a fresh, empty document.
    let mut empty = Automerge::new();
    let mut state = sync::State::new();
    if let Some(Ok(())) = contained(|| empty.receive_sync_message(&mut state, message.clone())) {
        let _ = empty.get_heads();
        let _ = empty
            .generate_sync_message(&mut state)
            .map(sync::Message::encode);
        let _ = empty.save();
    }
    // `sync_existing`: the loaded plan, for a writer and for a reader.
    for read_only in [false, true] {
        let Some(Ok(mut doc)) = contained(|| Automerge::load(plan_bytes())) else {
            panic!("the seed plan does not load");
        };
        let mut state = if read_only {
            sync::State::new_read_only()
        } else {
            sync::State::new()
        };
        let before = doc.get_heads();
        if let Some(Ok(())) = contained(|| doc.receive_sync_message(&mut state, message.clone())) {
            let _ = doc.get_changes_meta(&before).len();
            let _ = doc.save_after(&before);
            let _ = doc
                .generate_sync_message(&mut state)
                .map(sync::Message::encode);
        }
    }
}

/// The fuzz target body.
pub fn run(frame: &[u8]) {
    let Ok(message) = Message::decode(frame) else {
        return;
    };
    let _ = (
        message.type_name(),
        message.sender_id(),
        message.target_id(),
        message.document_id(),
    );
    let encoded = message.encode();
    let again = Message::decode(&encoded).expect("a re-encoded message must decode");
    assert_eq!(again, message, "decode(encode(m)) != m");
    if let Message::Sync { data, .. } | Message::Request { data, .. } = &message {
        apply_sync(data);
    }
}

/// Seed inputs: one encoded message of every type, with real sync payloads.
#[allow(dead_code)]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let doc_id = bs58::encode([7u8; 16]).with_check().into_string();
    let peer = "peer-client-1".to_string();
    let relay = "map-relay-storage".to_string();
    let plan = Automerge::load(plan_bytes()).expect("seed plan loads");
    let mut out = Vec::new();
    let sync_msgs = {
        // A plan holder's first message (heads + have), the relay's empty
        // answer, and the message carrying all changes.
        let mut st = sync::State::new();
        let first = plan.generate_sync_message(&mut st).expect("first message");
        let mut empty = Automerge::new();
        let mut est = sync::State::new();
        let empty_first = empty.generate_sync_message(&mut est).expect("empty first");
        empty.receive_sync_message(&mut est, first.clone()).unwrap();
        let reply = empty.generate_sync_message(&mut est).expect("reply");
        let mut st2 = sync::State::new();
        let mut plan2 = plan.clone();
        let _ = plan2.generate_sync_message(&mut st2);
        plan2.receive_sync_message(&mut st2, reply.clone()).unwrap();
        let changes = plan2.generate_sync_message(&mut st2).expect("changes");
        vec![
            first.encode(),
            empty_first.encode(),
            reply.encode(),
            changes.encode(),
        ]
    };
    let meta = Some(map_sync::PeerMetadata {
        storage_id: Some("3b0d1c6e-8a44-4bb8-9b1e-2f1f3c1d2e4f".into()),
        is_ephemeral: false,
    });
    let mut msgs = vec![
        (
            "join".to_string(),
            Message::Join {
                sender_id: peer.clone(),
                peer_metadata: meta.clone(),
                supported_protocol_versions: vec!["1".into()],
            },
        ),
        (
            "peer".to_string(),
            Message::Peer {
                sender_id: relay.clone(),
                peer_metadata: meta,
                selected_protocol_version: "1".into(),
                target_id: peer.clone(),
            },
        ),
        (
            "leave".to_string(),
            Message::Leave {
                sender_id: peer.clone(),
            },
        ),
        (
            "error".to_string(),
            Message::Error {
                message: "bad".into(),
                sender_id: Some(relay.clone()),
                target_id: Some(peer.clone()),
            },
        ),
        (
            "doc-unavailable".to_string(),
            Message::DocUnavailable {
                sender_id: relay.clone(),
                target_id: peer.clone(),
                document_id: doc_id.clone(),
            },
        ),
        (
            "ephemeral".to_string(),
            Message::Ephemeral {
                sender_id: peer.clone(),
                target_id: relay.clone(),
                document_id: doc_id.clone(),
                session_id: "s1".into(),
                count: 3,
                data: vec![0xa1, 0x61, 0x78, 0x01],
            },
        ),
        (
            "remote-subscription-change".to_string(),
            Message::RemoteSubscriptionChange {
                sender_id: peer.clone(),
                target_id: relay.clone(),
                add: Some(vec!["storage-a".into()]),
                remove: vec!["storage-b".into()],
            },
        ),
        (
            "remote-heads-changed".to_string(),
            Message::RemoteHeadsChanged {
                sender_id: peer.clone(),
                target_id: relay.clone(),
                document_id: doc_id.clone(),
                new_heads: [(
                    "storage-a".to_string(),
                    map_sync::message::HeadsInfo {
                        heads: vec!["abc123".into()],
                        timestamp: 1_780_000_000_000,
                    },
                )]
                .into_iter()
                .collect(),
            },
        ),
        (
            "unknown".to_string(),
            Message::Unknown {
                type_name: "future-type".into(),
            },
        ),
    ];
    for (i, data) in sync_msgs.into_iter().enumerate() {
        msgs.push((
            format!("sync-{i}"),
            Message::Sync {
                sender_id: peer.clone(),
                target_id: relay.clone(),
                document_id: doc_id.clone(),
                data: data.clone(),
            },
        ));
        msgs.push((
            format!("request-{i}"),
            Message::Request {
                sender_id: peer.clone(),
                target_id: relay.clone(),
                document_id: doc_id.clone(),
                data,
            },
        ));
    }
    for (name, m) in msgs {
        out.push((format!("seed-{name}"), m.encode()));
    }
    out
}
