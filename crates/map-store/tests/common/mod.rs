//! Helpers shared by the integration tests: temp databases and small
//! Automerge edits.
#![allow(dead_code)]

use std::path::PathBuf;

use map_store::automerge::transaction::{CommitOptions, Transactable};
use map_store::automerge::{Author, AutoCommit, ROOT, ReadDoc};
use map_store::{Store, StoreError};

pub const PLAN: &str = "2j9NvoC8TV6vjwXJLdFXJ7HbTFXR";
pub const PLAN2: &str = "3Ab1cdefGhijkLmnopqRstUvwxyz";

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("home").join("map.db");
    (dir, path)
}

/// One change that sets `key` to `value`, with message, time and author.
pub fn edit(doc: &mut AutoCommit, key: &str, value: i64) {
    doc.set_author(Some(Author::from(b"Ada <ada@example.com>".to_vec())));
    doc.put(ROOT, key, value).expect("put");
    doc.commit_with(
        CommitOptions::default()
            .with_message(format!("set {key}={value}"))
            .with_time(1_700_000_000_000 + value),
    );
}

pub fn get_i64(doc: &AutoCommit, key: &str) -> Option<i64> {
    match doc.get(ROOT, key).expect("get")? {
        (map_store::automerge::Value::Scalar(s), _) => s.as_i64(),
        _ => None,
    }
}

/// Load, edit (`key = value`) and save plan `id` in one write transaction.
pub fn edit_in_store(store: &mut Store, id: &str, key: &str, value: i64) {
    store
        .write(|tx| {
            let mut doc = tx.load_doc(id)?.unwrap_or_default();
            edit(&mut doc, key, value);
            tx.save_doc(id, &mut doc)?;
            Ok::<_, StoreError>(())
        })
        .expect("write");
}

pub fn load(store: &Store, id: &str) -> AutoCommit {
    store
        .read(|tx| tx.load_doc(id))
        .expect("read")
        .expect("doc exists")
}

pub fn change_count(doc: &mut AutoCommit) -> usize {
    doc.get_changes(&[]).len()
}
