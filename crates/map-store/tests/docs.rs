//! Documents: snapshot + increments round trip, compaction, merging of
//! stored changes, duplicate increments and rollback.

mod common;

use common::*;
use map_store::automerge::AutoCommit;
use map_store::{CompactionPolicy, Store, StoreError};

#[test]
fn missing_doc_is_none() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    assert!(store.read(|tx| tx.load_doc(PLAN)).unwrap().is_none());
    assert!(store.read(|tx| tx.doc_heads(PLAN)).unwrap().is_none());
}

#[test]
fn snapshot_plus_increments_round_trip() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    for i in 0..10 {
        edit_in_store(&mut store, PLAN, &format!("k{i}"), i);
    }
    let stats = store.read(|tx| tx.doc_stats(PLAN)).unwrap().unwrap();
    assert!(stats.snapshot_bytes > 0);
    assert_eq!(
        stats.chunk_count, 9,
        "first save is a snapshot, then 9 increments"
    );
    // Each increment holds exactly one change, not the whole document again.
    assert!(stats.chunk_bytes < 9 * 200, "increments too big: {stats:?}");
    drop(store);

    let store = Store::open(&path).unwrap();
    let mut doc = load(&store, PLAN);
    for i in 0..10 {
        assert_eq!(get_i64(&doc, &format!("k{i}")), Some(i));
    }
    assert_eq!(change_count(&mut doc), 10);
    let stored = store.read(|tx| tx.doc_heads(PLAN)).unwrap().unwrap();
    assert_eq!(stored, doc.get_heads());
}

#[test]
fn save_outcome_reports_previous_heads_and_no_op_saves() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "a", 1);
    let before = store.read(|tx| tx.doc_heads(PLAN)).unwrap().unwrap();
    let outcome = store
        .write(|tx| {
            let mut doc = tx.load_doc(PLAN)?.unwrap();
            edit(&mut doc, "b", 2);
            tx.save_doc(PLAN, &mut doc)
        })
        .unwrap();
    assert_eq!(outcome.previous_heads, before);
    assert!(outcome.changed());
    assert!(outcome.appended_bytes > 0);
    assert_eq!(outcome.merged_from_store, 0);

    // Saving an unchanged document writes nothing.
    let outcome = store
        .write(|tx| {
            let mut doc = tx.load_doc(PLAN)?.unwrap();
            tx.save_doc(PLAN, &mut doc)
        })
        .unwrap();
    assert!(!outcome.changed());
    assert_eq!(outcome.appended_bytes, 0);
    let stats = store.read(|tx| tx.doc_stats(PLAN)).unwrap().unwrap();
    assert_eq!(stats.chunk_count, 1);
}

#[test]
fn compaction_keeps_every_change() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    store.set_compaction_policy(CompactionPolicy {
        max_chunks: 4,
        max_bytes: 1 << 20,
    });
    // Build some concurrency too: two forks editing in parallel, saved in turn.
    edit_in_store(&mut store, PLAN, "base", 0);
    let mut a = load(&store, PLAN);
    let mut b = a.fork();
    let mut compactions = 0;
    for i in 1..=12 {
        edit(&mut a, "a", i);
        edit(&mut b, "b", i);
        let (oa, ob) = store
            .write(|tx| {
                Ok::<_, StoreError>((tx.save_doc(PLAN, &mut a)?, tx.save_doc(PLAN, &mut b)?))
            })
            .unwrap();
        compactions += usize::from(oa.compacted) + usize::from(ob.compacted);
        // b lacked a's changes: save_doc merged them into b.
        assert!(ob.merged_from_store > 0);
        // keep a up to date as well, as a long-running sync loop would
        a.merge(&mut b).unwrap();
    }
    assert!(
        compactions >= 4,
        "expected several compactions, got {compactions}"
    );

    let mut expected = a.fork();
    expected.merge(&mut b).unwrap();
    let mut loaded = load(&store, PLAN);
    assert_eq!(loaded.get_heads(), expected.get_heads());
    assert_eq!(change_count(&mut loaded), change_count(&mut expected));
    assert_eq!(change_count(&mut loaded), 1 + 12 * 2);
    assert_eq!(get_i64(&loaded, "a"), Some(12));
    assert_eq!(get_i64(&loaded, "b"), Some(12));

    // Explicit compaction keeps the heads too.
    let heads_before = store.read(|tx| tx.doc_heads(PLAN)).unwrap().unwrap();
    assert!(store.write(|tx| tx.compact_doc(PLAN)).unwrap());
    let stats = store.read(|tx| tx.doc_stats(PLAN)).unwrap().unwrap();
    assert_eq!(stats.chunk_count, 0);
    let mut after = load(&store, PLAN);
    assert_eq!(after.get_heads(), heads_before);
    assert_eq!(change_count(&mut after), 25);
}

#[test]
fn compaction_by_size() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    store.set_compaction_policy(CompactionPolicy {
        max_chunks: 1000,
        max_bytes: 300,
    });
    let mut compacted = false;
    for i in 0..20 {
        let o = store
            .write(|tx| {
                let mut doc = tx.load_doc(PLAN)?.unwrap_or_default();
                edit(&mut doc, &format!("key{i}"), i);
                tx.save_doc(PLAN, &mut doc)
            })
            .unwrap();
        compacted |= i > 0 && o.compacted;
        let stats = store.read(|tx| tx.doc_stats(PLAN)).unwrap().unwrap();
        assert!(stats.chunk_bytes <= 300);
    }
    assert!(compacted);
    assert_eq!(change_count(&mut load(&store, PLAN)), 20);
}

#[test]
fn stale_document_is_merged_not_lost() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "x", 1);
    // A long-lived copy (e.g. a sync loop) loads the plan ...
    let mut stale = load(&store, PLAN);
    // ... another command changes it meanwhile ...
    edit_in_store(&mut store, PLAN, "y", 2);
    // ... and the stale copy saves its own change.
    edit(&mut stale, "z", 3);
    let outcome = store.write(|tx| tx.save_doc(PLAN, &mut stale)).unwrap();
    assert_eq!(outcome.merged_from_store, 1);
    assert_eq!(outcome.heads, stale.get_heads());
    assert_eq!(
        get_i64(&stale, "y"),
        Some(2),
        "stored change merged into the doc"
    );
    let doc = load(&store, PLAN);
    assert_eq!(get_i64(&doc, "x"), Some(1));
    assert_eq!(get_i64(&doc, "y"), Some(2));
    assert_eq!(get_i64(&doc, "z"), Some(3));
}

#[test]
fn saving_a_doc_never_loaded_from_the_store_keeps_both() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "x", 1);
    let mut other = AutoCommit::new();
    edit(&mut other, "w", 9);
    store.write(|tx| tx.save_doc(PLAN, &mut other)).unwrap();
    let doc = load(&store, PLAN);
    assert_eq!(get_i64(&doc, "x"), Some(1));
    assert_eq!(get_i64(&doc, "w"), Some(9));
}

#[test]
fn duplicate_increments_are_harmless() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    for i in 0..3 {
        edit_in_store(&mut store, PLAN, "k", i);
    }
    let heads = load(&store, PLAN).get_heads();
    drop(store);
    // Duplicate every increment and the snapshot's content behind the scenes.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO doc_chunks (doc_id, data) SELECT doc_id, data FROM doc_chunks;
         INSERT INTO doc_chunks (doc_id, data) SELECT doc_id, data FROM doc_snapshots;",
    )
    .unwrap();
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    let mut doc = load(&store, PLAN);
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(change_count(&mut doc), 3);
    edit_in_store(&mut store, PLAN, "k", 10);
    assert_eq!(get_i64(&load(&store, PLAN), "k"), Some(10));
}

#[test]
fn error_in_closure_rolls_everything_back() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
    store
        .write(|tx| tx.set_setting("current_plan", PLAN))
        .unwrap();
    let heads = store.read(|tx| tx.doc_heads(PLAN)).unwrap();

    #[derive(Debug)]
    enum CmdError {
        Store(#[allow(dead_code)] StoreError),
        Refused,
    }
    impl From<StoreError> for CmdError {
        fn from(e: StoreError) -> Self {
            CmdError::Store(e)
        }
    }
    let r = store.write(|tx| {
        let mut doc = tx.load_doc(PLAN)?.unwrap();
        edit(&mut doc, "k", 2);
        tx.save_doc(PLAN, &mut doc)?;
        tx.save_doc(PLAN2, &mut doc)?;
        tx.set_setting("current_plan", PLAN2)?;
        tx.put_view(PLAN, &[], b"view")?;
        Err::<(), _>(CmdError::Refused)
    });
    assert!(matches!(r, Err(CmdError::Refused)));
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.read(|tx| tx.doc_heads(PLAN)).unwrap(), heads);
    assert_eq!(get_i64(&load(&store, PLAN), "k"), Some(1));
    assert!(!store.read(|tx| tx.has_plan(PLAN2)).unwrap());
    assert_eq!(
        store
            .read(|tx| tx.get_setting("current_plan"))
            .unwrap()
            .as_deref(),
        Some(PLAN)
    );
    assert!(store.read(|tx| tx.get_view(PLAN)).unwrap().is_none());
}

#[test]
fn panic_in_closure_rolls_back() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.write(|tx| {
            let mut doc = tx.load_doc(PLAN)?.unwrap();
            edit(&mut doc, "k", 2);
            tx.save_doc(PLAN, &mut doc)?;
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<_, StoreError>(())
        });
    }));
    assert!(r.is_err());
    assert_eq!(get_i64(&load(&store, PLAN), "k"), Some(1));
    // The store is still usable afterwards.
    edit_in_store(&mut store, PLAN, "k", 3);
    assert_eq!(get_i64(&load(&store, PLAN), "k"), Some(3));
}
