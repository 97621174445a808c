//! Timing of the hot paths on a plan with 10,000 changes. Ignored by default
//! (timings are meaningless in a loaded debug build); run with
//! `cargo test -p map-store --release --test perf -- --ignored --nocapture`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use map_store::automerge::AutoCommit;
use map_store::{Store, StoreError};

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
#[ignore]
fn ten_thousand_changes() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    let mut doc = AutoCommit::new();
    for i in 0..9_940 {
        edit(&mut doc, &format!("task{}", i % 500), i);
    }
    store.write(|tx| tx.save_doc(PLAN, &mut doc)).unwrap();
    // Then 60 commands of one change each: snapshot + 60 increments.
    for i in 0..60 {
        edit_in_store(&mut store, PLAN, "late", i);
    }
    let heads = store.read(|tx| tx.doc_heads(PLAN)).unwrap().unwrap();
    store
        .write(|tx| tx.put_view(PLAN, &heads, &vec![b'x'; 30_000]))
        .unwrap();
    let stats = store.read(|tx| tx.doc_stats(PLAN)).unwrap().unwrap();
    eprintln!("stats: {stats:?}");
    drop(store);

    let open = best_of(20, || drop(Store::open(&path).unwrap()));
    let store = Store::open(&path).unwrap();
    let view = best_of(50, || {
        store.read(|tx| tx.get_view(PLAN)).unwrap().unwrap();
    });
    let load = best_of(5, || {
        store.read(|tx| tx.load_doc(PLAN)).unwrap().unwrap();
    });
    let mut doc = store.read(|tx| tx.load_doc(PLAN)).unwrap().unwrap();
    assert_eq!(doc.get_changes(&[]).len(), 10_000);
    drop(store);
    let mut store = Store::open(&path).unwrap();
    let edit_cmd = best_of(5, || {
        store
            .write(|tx| {
                let mut doc = tx.load_doc(PLAN)?.unwrap();
                edit(&mut doc, "x", 1);
                tx.save_doc(PLAN, &mut doc)?;
                Ok::<_, StoreError>(())
            })
            .unwrap()
    });
    let compact = best_of(3, || {
        store.write(|tx| tx.compact_doc(PLAN)).unwrap();
    });
    eprintln!(
        "open {open:?}; get_view {view:?}; load_doc {load:?}; \
         load+edit+save command {edit_cmd:?}; compact {compact:?}"
    );
    let _ = doc.get_heads();
}

#[test]
#[ignore]
fn breakdown() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    let mut doc = AutoCommit::new();
    for i in 0..10_000 {
        edit(&mut doc, &format!("task{}", i % 500), i);
    }
    store.write(|tx| tx.save_doc(PLAN, &mut doc)).unwrap();
    let heads = doc.get_heads();
    edit(&mut doc, "x", 1);
    let t = Instant::now();
    let m = doc.get_missing_deps(&heads);
    eprintln!("get_missing_deps {:?} ({})", t.elapsed(), m.len());
    let t = Instant::now();
    let inc = doc.save_after(&heads);
    eprintln!("save_after {:?} ({} bytes)", t.elapsed(), inc.len());
    let t = Instant::now();
    store.write(|tx| tx.set_setting("a", "b")).unwrap();
    eprintln!("empty-ish write tx (fsync) {:?}", t.elapsed());
    let t = Instant::now();
    store.write(|tx| tx.save_doc(PLAN, &mut doc)).unwrap();
    eprintln!("save_doc tx {:?}", t.elapsed());
    drop(store);
    let t = Instant::now();
    let store = Store::open(&path).unwrap();
    eprintln!("open {:?}", t.elapsed());
    let t = Instant::now();
    store.read(|tx| tx.get_view(PLAN)).unwrap();
    eprintln!("first get_view {:?}", t.elapsed());
    let t = Instant::now();
    drop(store);
    eprintln!("close {:?}", t.elapsed());
}
