//! Two writers at once, and crashes (a child process that aborts) right
//! after a write returned and in the middle of one.

mod common;

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use map_store::{Store, StoreError};

#[test]
fn two_handles_on_two_threads_both_succeed() {
    let (_d, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|who| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                barrier.wait();
                for i in 0..25 {
                    store
                        .write(|tx| {
                            let mut doc = tx.load_doc(PLAN)?.unwrap_or_default();
                            edit(&mut doc, &format!("{who}{i}"), i);
                            tx.save_doc(PLAN, &mut doc)?;
                            // Hold the write lock a little so the other side must wait.
                            std::thread::sleep(Duration::from_millis(2));
                            Ok::<_, StoreError>(())
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let mut doc = load(&store, PLAN);
    assert_eq!(change_count(&mut doc), 50);
    for who in ["a", "b"] {
        for i in 0..25 {
            assert_eq!(get_i64(&doc, &format!("{who}{i}")), Some(i));
        }
    }
}

#[test]
fn concurrent_first_open_of_a_new_file() {
    let (_d, path) = temp_db();
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut store = Store::open(&path).unwrap();
                store
                    .write(|tx| tx.set_setting(&format!("k{i}"), "v"))
                    .unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.read(|tx| tx.settings()).unwrap().len(), 4);
}

const CHILD_ENV: &str = "MAP_STORE_TEST_CRASH_CHILD";

/// Runs in a child process (see `crash_*` tests): edit the plan and abort,
/// either right after `write` returned or in the middle of the transaction.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // not a child run
    };
    let (mode, path) = spec.split_once(':').unwrap();
    let mut store = Store::open(path).unwrap();
    match mode {
        "after" => {
            edit_in_store(&mut store, PLAN, "k", 2);
            std::process::abort();
        }
        "during" => {
            let _ = store.write(|tx| {
                let mut doc = tx.load_doc(PLAN)?.unwrap();
                edit(&mut doc, "k", 3);
                tx.save_doc(PLAN, &mut doc)?;
                tx.set_setting("crashed", "yes")?;
                std::process::abort();
                #[allow(unreachable_code)]
                Ok::<_, StoreError>(())
            });
        }
        _ => unreachable!(),
    }
}

fn run_crashing_child(mode: &str, path: &std::path::Path) {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{mode}:{}", path.display()))
        .status()
        .unwrap();
    // SIGABRT (6), not a panic (exit 101): the child really got to abort().
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(6),
        "child should have aborted: {status:?}"
    );
}

#[test]
fn crash_after_write_returned_loses_nothing() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
    drop(store);
    run_crashing_child("after", &path);
    let store = Store::open(&path).unwrap();
    assert_eq!(get_i64(&load(&store, PLAN), "k"), Some(2));
}

#[test]
fn crash_during_write_keeps_previous_state() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
    drop(store);
    run_crashing_child("during", &path);
    let store = Store::open(&path).unwrap();
    let mut doc = load(&store, PLAN);
    assert_eq!(get_i64(&doc, "k"), Some(1));
    assert_eq!(change_count(&mut doc), 1);
    assert_eq!(store.read(|tx| tx.get_setting("crashed")).unwrap(), None);
}
