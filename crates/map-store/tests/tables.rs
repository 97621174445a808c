//! Plan rows, cached views, history, settings, remotes and sync bookkeeping.

mod common;

use common::*;
use map_store::automerge::sync;
use map_store::{HistoryRow, Store, StoreError};

#[test]
fn plan_rows() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    assert!(store.read(|tx| tx.list_plans()).unwrap().is_empty());
    edit_in_store(&mut store, PLAN, "k", 1);
    store
        .write(|tx| {
            tx.set_plan_meta(PLAN, "Acme rollout", 200)?;
            tx.set_plan_meta(PLAN2, "Globex pilot", 300)
        })
        .unwrap();
    let plans = store.read(|tx| tx.list_plans()).unwrap();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0].id, PLAN2, "most recently updated first");
    assert_eq!(plans[0].title, "Globex pilot");
    assert!(plans[0].heads.is_empty());
    assert_eq!(plans[1].title, "Acme rollout");
    assert_eq!(plans[1].updated_at_ms, 200);
    assert_eq!(plans[1].heads, load(&store, PLAN).get_heads());
    // A plan row without a saved document loads as an empty document.
    let mut empty = store.read(|tx| tx.load_doc(PLAN2)).unwrap().unwrap();
    assert!(empty.get_heads().is_empty());
    assert_eq!(
        store.read(|tx| tx.plan(PLAN)).unwrap().unwrap().title,
        "Acme rollout"
    );
    assert!(store.read(|tx| tx.plan("nope")).unwrap().is_none());
}

#[test]
fn delete_plan_removes_everything_about_it() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
    edit_in_store(&mut store, PLAN2, "k", 2);
    store
        .write(|tx| {
            for id in [PLAN, PLAN2] {
                tx.set_plan_meta(id, "t", 1)?;
                tx.put_view(id, &[], b"v")?;
                let mut doc = tx.load_doc(id)?.unwrap();
                tx.append_history(id, &HistoryRow::since(&mut doc, &[]))?;
                tx.put_sync_state(id, "origin", b"s")?;
                tx.mark_on_remote(id, "origin")?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert!(store.write(|tx| tx.delete_plan(PLAN)).unwrap());
    assert!(!store.write(|tx| tx.delete_plan(PLAN)).unwrap());
    store
        .read(|tx| {
            assert!(tx.load_doc(PLAN)?.is_none());
            assert!(tx.get_view(PLAN)?.is_none());
            assert_eq!(tx.history_len(PLAN)?, 0);
            assert!(tx.get_sync_state(PLAN, "origin")?.is_none());
            assert_eq!(tx.plans_on_remote("origin")?, vec![PLAN2.to_string()]);
            // The other plan is untouched.
            assert!(tx.load_doc(PLAN2)?.is_some());
            assert!(tx.get_view(PLAN2)?.is_some());
            assert_eq!(tx.history_len(PLAN2)?, 1);
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn views_know_whether_they_are_current() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    assert!(store.read(|tx| tx.get_view(PLAN)).unwrap().is_none());
    store
        .write(|tx| {
            let mut doc = tx.load_doc(PLAN)?.unwrap_or_default();
            edit(&mut doc, "k", 1);
            let outcome = tx.save_doc(PLAN, &mut doc)?;
            tx.put_view(PLAN, &outcome.heads, b"{\"title\":\"x\"}")
        })
        .unwrap();
    let v = store.read(|tx| tx.get_view(PLAN)).unwrap().unwrap();
    assert!(v.is_current());
    assert_eq!(v.view, b"{\"title\":\"x\"}");
    // Another change without re-rendering: the view is now stale.
    edit_in_store(&mut store, PLAN, "k", 2);
    let v = store.read(|tx| tx.get_view(PLAN)).unwrap().unwrap();
    assert!(!v.is_current());
    assert_ne!(v.doc_heads.as_deref(), Some(v.heads.as_slice()));
    // A view for a document that is not stored is never current.
    store.write(|tx| tx.put_view(PLAN2, &[], b"v")).unwrap();
    let v = store.read(|tx| tx.get_view(PLAN2)).unwrap().unwrap();
    assert!(v.doc_heads.is_none());
    assert!(!v.is_current());
    assert!(store.write(|tx| tx.delete_view(PLAN2)).unwrap());
}

#[test]
fn history_is_newest_first_and_deduplicated() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    let mut all = Vec::new();
    for i in 0..5 {
        let rows = store
            .write(|tx| {
                let mut doc = tx.load_doc(PLAN)?.unwrap_or_default();
                edit(&mut doc, "k", i);
                let outcome = tx.save_doc(PLAN, &mut doc)?;
                let rows = HistoryRow::since(&mut doc, &outcome.previous_heads);
                assert_eq!(tx.append_history(PLAN, &rows)?, 1);
                Ok::<_, StoreError>(rows)
            })
            .unwrap();
        all.extend(rows);
    }
    // Appending everything again adds nothing.
    assert_eq!(store.write(|tx| tx.append_history(PLAN, &all)).unwrap(), 0);
    let h = store.read(|tx| tx.history(PLAN, 3)).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].message.as_deref(), Some("set k=4"));
    assert_eq!(h[0].author.as_deref(), Some("Ada <ada@example.com>"));
    assert_eq!(h[0].time_ms, 1_700_000_000_004);
    assert_eq!(h[2].message.as_deref(), Some("set k=2"));
    assert_eq!(h[0].hash, all[4].hash);
    assert_eq!(store.read(|tx| tx.history_len(PLAN)).unwrap(), 5);
    assert!(store.read(|tx| tx.history(PLAN2, 10)).unwrap().is_empty());
    store.write(|tx| tx.clear_history(PLAN)).unwrap();
    assert_eq!(store.read(|tx| tx.history_len(PLAN)).unwrap(), 0);
}

#[test]
fn settings() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.read(|tx| tx.get_setting("identity")).unwrap(), None);
    store
        .write(|tx| {
            tx.set_setting("identity", "Ada <ada@example.com>")?;
            tx.set_setting("actor", "00ff")?;
            tx.set_setting("actor", "0aff")
        })
        .unwrap();
    assert_eq!(
        store.read(|tx| tx.get_setting("actor")).unwrap().as_deref(),
        Some("0aff")
    );
    assert_eq!(
        store.read(|tx| tx.settings()).unwrap(),
        vec![
            ("actor".to_string(), "0aff".to_string()),
            ("identity".to_string(), "Ada <ada@example.com>".to_string())
        ]
    );
    assert!(store.write(|tx| tx.remove_setting("actor")).unwrap());
    assert!(!store.write(|tx| tx.remove_setting("actor")).unwrap());
}

#[test]
fn remotes() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    store
        .write(|tx| {
            tx.add_remote("origin", "ws://127.0.0.1:8787", Some("secret-token"))?;
            tx.add_remote("backup", "ws://10.0.0.2:8787", None)
        })
        .unwrap();
    let err = store
        .write(|tx| tx.add_remote("origin", "ws://other", None))
        .unwrap_err();
    assert!(matches!(err, StoreError::RemoteExists { .. }), "{err:?}");
    assert!(
        err.to_string().contains("\"origin\" already exists"),
        "{err}"
    );

    let remotes = store.read(|tx| tx.remotes()).unwrap();
    assert_eq!(remotes.len(), 2);
    assert_eq!(remotes[0].name, "backup");
    assert_eq!(remotes[0].token, None);
    let origin = store.read(|tx| tx.remote("origin")).unwrap().unwrap();
    assert_eq!(origin.url, "ws://127.0.0.1:8787");
    assert_eq!(origin.token.as_deref(), Some("secret-token"));
    assert!(!format!("{origin:?}").contains("secret-token"));

    store
        .write(|tx| tx.set_remote("origin", "ws://new:1", Some("t2")))
        .unwrap();
    assert_eq!(
        store.read(|tx| tx.remote("origin")).unwrap().unwrap().url,
        "ws://new:1"
    );

    store
        .write(|tx| {
            tx.put_sync_state(PLAN, "origin", b"state")?;
            tx.mark_on_remote(PLAN, "origin")
        })
        .unwrap();
    assert!(store.write(|tx| tx.remove_remote("origin")).unwrap());
    assert!(!store.write(|tx| tx.remove_remote("origin")).unwrap());
    assert!(store.read(|tx| tx.remote("origin")).unwrap().is_none());
    assert!(
        store
            .read(|tx| tx.get_sync_state(PLAN, "origin"))
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .read(|tx| tx.plans_on_remote("origin"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sync_bookkeeping() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    // A real sync state: the shared heads survive encode/decode.
    edit_in_store(&mut store, PLAN, "k", 1);
    let heads = load(&store, PLAN).get_heads();
    let mut state = sync::State::new();
    state.shared_heads = heads.clone();
    store
        .write(|tx| {
            tx.set_sync_state(PLAN, "origin", &state)?;
            tx.put_sync_state(PLAN2, "origin", b"garbage")?;
            tx.mark_on_remote(PLAN, "origin")?;
            tx.mark_on_remote(PLAN, "origin")?;
            tx.mark_on_remote(PLAN2, "origin")?;
            tx.mark_on_remote(PLAN, "backup")
        })
        .unwrap();
    store
        .read(|tx| {
            assert_eq!(tx.sync_state(PLAN, "origin")?.shared_heads, heads);
            assert_eq!(
                tx.get_sync_state(PLAN, "origin")?,
                Some(state.encode()),
                "raw bytes as stored"
            );
            // Undecodable or missing state: a fresh one.
            assert!(tx.sync_state(PLAN2, "origin")?.shared_heads.is_empty());
            assert!(tx.sync_state(PLAN, "nowhere")?.shared_heads.is_empty());
            let mut on = tx.plans_on_remote("origin")?;
            on.sort();
            let mut want = vec![PLAN.to_string(), PLAN2.to_string()];
            want.sort();
            assert_eq!(on, want);
            assert_eq!(tx.remotes_of_plan(PLAN)?, vec!["backup", "origin"]);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert!(
        store
            .write(|tx| tx.unmark_on_remote(PLAN, "backup"))
            .unwrap()
    );
    assert!(
        store
            .write(|tx| tx.delete_sync_state(PLAN, "origin"))
            .unwrap()
    );
    assert!(
        store
            .read(|tx| tx.get_sync_state(PLAN, "origin"))
            .unwrap()
            .is_none()
    );
}
