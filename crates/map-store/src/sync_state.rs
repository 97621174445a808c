//! Sync bookkeeping, kept in the same database (and the same transaction)
//! as the documents it describes: the automerge sync state per (document,
//! remote), and which documents are known to exist on which remote.
//!
//! A sync state is the output of `automerge::sync::State::encode` (only the
//! shared heads survive encoding, which is what automerge intends). Keeping
//! it lets the next `map sync` start from what the remote already has.
//! Encoding drops `read_only`: a caller syncing read-only must set
//! `state.read_only = true` again after [`ReadTx::sync_state`].

use automerge::sync;
use rusqlite::{OptionalExtension, params};

use crate::error::Result;
use crate::tx::{ReadTx, WriteTx};

impl ReadTx<'_> {
    /// The encoded sync state of document `id` with `remote`.
    pub fn get_sync_state(&self, id: &str, remote: &str) -> Result<Option<Vec<u8>>> {
        self.db(self
            .conn()
            .prepare_cached("SELECT state FROM sync_states WHERE doc_id = ?1 AND remote = ?2")
            .and_then(|mut s| s.query_row(params![id, remote], |r| r.get(0)).optional()))
    }

    /// The decoded sync state of document `id` with `remote`, or a fresh
    /// `State::new()` when none is stored or the stored one cannot be decoded
    /// (a fresh state is always correct, it only costs an extra round trip).
    pub fn sync_state(&self, id: &str, remote: &str) -> Result<sync::State> {
        Ok(self
            .get_sync_state(id, remote)?
            .and_then(|b| sync::State::decode(&b).ok())
            .unwrap_or_default())
    }

    /// Ids of the documents known to exist on `remote`, sorted.
    pub fn plans_on_remote(&self, remote: &str) -> Result<Vec<String>> {
        self.db(self
            .conn()
            .prepare_cached("SELECT doc_id FROM on_remote WHERE remote = ?1 ORDER BY doc_id")
            .and_then(|mut s| {
                s.query_map([remote], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }))
    }

    /// Names of the remotes document `id` is known to exist on, sorted.
    pub fn remotes_of_plan(&self, id: &str) -> Result<Vec<String>> {
        self.db(self
            .conn()
            .prepare_cached("SELECT remote FROM on_remote WHERE doc_id = ?1 ORDER BY remote")
            .and_then(|mut s| {
                s.query_map([id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }))
    }
}

impl WriteTx<'_> {
    /// Store the encoded sync state of document `id` with `remote`.
    pub fn put_sync_state(&self, id: &str, remote: &str, state: &[u8]) -> Result<()> {
        self.db(self
            .conn()
            .prepare_cached(
                "INSERT INTO sync_states (doc_id, remote, state) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (doc_id, remote) DO UPDATE SET state = excluded.state",
            )
            .and_then(|mut s| s.execute(params![id, remote, state])))?;
        Ok(())
    }

    /// Encode and store `state` (see [`WriteTx::put_sync_state`]).
    pub fn set_sync_state(&self, id: &str, remote: &str, state: &sync::State) -> Result<()> {
        self.put_sync_state(id, remote, &state.encode())
    }

    /// Forget the sync state of document `id` with `remote`.
    pub fn delete_sync_state(&self, id: &str, remote: &str) -> Result<bool> {
        self.db(self
            .conn()
            .prepare_cached("DELETE FROM sync_states WHERE doc_id = ?1 AND remote = ?2")
            .and_then(|mut s| s.execute(params![id, remote])))
            .map(|n| n > 0)
    }

    /// Record that document `id` exists on `remote` (idempotent).
    pub fn mark_on_remote(&self, id: &str, remote: &str) -> Result<()> {
        self.db(self
            .conn()
            .prepare_cached("INSERT OR IGNORE INTO on_remote (remote, doc_id) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![remote, id])))?;
        Ok(())
    }

    /// Forget that document `id` exists on `remote`. Returns whether it was marked.
    pub fn unmark_on_remote(&self, id: &str, remote: &str) -> Result<bool> {
        self.db(self
            .conn()
            .prepare_cached("DELETE FROM on_remote WHERE remote = ?1 AND doc_id = ?2")
            .and_then(|mut s| s.execute(params![remote, id])))
            .map(|n| n > 0)
    }
}
