//! Automerge documents: a compacted snapshot plus incremental changes.
//!
//! Each document is stored as one snapshot (`doc.save()`, in
//! `doc_snapshots`) followed by any number of increments (concatenated change
//! chunks, in `doc_chunks`), plus its current heads in `docs.heads`. Loading
//! concatenates snapshot and increments and hands them to automerge in one
//! `load` (duplicates are ignored by automerge). Saving appends only the
//! changes the stored heads do not already cover, and when increments pile
//! up (see [`CompactionPolicy`](crate::CompactionPolicy)) replaces everything
//! with a fresh snapshot in the same transaction.
//!
//! Why not `AutoCommit::save_incremental`: in automerge 0.12, `load` leaves
//! the save cursor empty, so the first `save_incremental` after a load returns
//! the *whole* document again. This module instead computes the increment
//! from the heads it stored itself (`doc.save_after(&stored_heads)`), which is
//! right whatever the caller did with the document before.

use automerge::{AutoCommit, ChangeHash};
use rusqlite::{OptionalExtension, params};

use crate::error::{Result, StoreError};
use crate::heads;
use crate::tx::{ReadTx, WriteTx};

/// What [`WriteTx::save_doc`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveOutcome {
    /// Heads stored before this save (empty for a new document). Pass them to
    /// `doc.get_changes_meta(&previous_heads)` to list the changes this save
    /// added, e.g. for [`WriteTx::append_history`].
    pub previous_heads: Vec<ChangeHash>,
    /// Heads stored now (sorted); equal to `doc.get_heads()`.
    pub heads: Vec<ChangeHash>,
    /// Changes that were in the store but not in the caller's document and
    /// were merged into it (0 in the usual load-edit-save flow).
    pub merged_from_store: usize,
    /// Bytes appended as an increment (0 when nothing changed or when the
    /// save compacted instead).
    pub appended_bytes: usize,
    /// Whether the document was rewritten as a single snapshot.
    pub compacted: bool,
}

impl SaveOutcome {
    /// Whether the stored document changed.
    pub fn changed(&self) -> bool {
        self.heads != self.previous_heads
    }
}

/// Storage statistics of one document (see [`ReadTx::doc_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocStats {
    /// Size of the snapshot in bytes (0 if there is none).
    pub snapshot_bytes: u64,
    /// Number of increments stored after the snapshot.
    pub chunk_count: u64,
    /// Total size of those increments.
    pub chunk_bytes: u64,
}

/// The `docs` row fields that saving needs.
struct DocRow {
    heads: Vec<ChangeHash>,
    chunk_count: u64,
    chunk_bytes: u64,
    has_snapshot: bool,
}

impl ReadTx<'_> {
    /// Load document `id`, or `None` if the store has no such document.
    ///
    /// The document gets a fresh random actor id: set the participant's own
    /// with `doc.set_actor` before editing. Heads are not re-verified
    /// (`load_unverified_heads`): the data was verified when it was saved and
    /// SQLite protects it since.
    pub fn load_doc(&self, id: &str) -> Result<Option<AutoCommit>> {
        let conn = self.conn();
        let exists = self
            .db(conn
                .prepare_cached("SELECT 1 FROM docs WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], |_| Ok(())).optional()))?
            .is_some();
        let mut bytes: Vec<u8> = self
            .db(conn
                .prepare_cached("SELECT data FROM doc_snapshots WHERE doc_id = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional()))?
            .unwrap_or_default();
        let has_snapshot = !bytes.is_empty();
        self.db(conn
            .prepare_cached("SELECT data FROM doc_chunks WHERE doc_id = ?1 ORDER BY id")
            .and_then(|mut s| {
                let mut rows = s.query([id])?;
                while let Some(row) = rows.next()? {
                    let chunk = row.get_ref(0)?.as_blob()?;
                    bytes.extend_from_slice(chunk);
                }
                Ok(())
            }))?;
        if !exists && bytes.is_empty() {
            return Ok(None);
        }
        if bytes.is_empty() {
            return Ok(Some(AutoCommit::new()));
        }
        let loaded = if has_snapshot {
            AutoCommit::load_unverified_heads(&bytes)
        } else {
            AutoCommit::load(&bytes)
        };
        loaded
            .map(Some)
            .map_err(|e| self.bad_doc(id, e.to_string()))
    }

    /// The heads stored for document `id` (sorted), without loading it.
    pub fn doc_heads(&self, id: &str) -> Result<Option<Vec<ChangeHash>>> {
        Ok(self.doc_row(id)?.map(|r| r.heads))
    }

    /// Storage statistics for document `id`, or `None` if it does not exist.
    pub fn doc_stats(&self, id: &str) -> Result<Option<DocStats>> {
        let conn = self.conn();
        self.db(conn
            .prepare_cached(
                "SELECT d.chunk_count, d.chunk_bytes, \
                        coalesce((SELECT length(data) FROM doc_snapshots WHERE doc_id = d.id), 0) \
                 FROM docs d WHERE d.id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(DocStats {
                        chunk_count: r.get::<_, i64>(0)?.max(0) as u64,
                        chunk_bytes: r.get::<_, i64>(1)?.max(0) as u64,
                        snapshot_bytes: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                })
                .optional()
            }))
    }

    fn doc_row(&self, id: &str) -> Result<Option<DocRow>> {
        let conn = self.conn();
        let row = self.db(conn
            .prepare_cached(
                "SELECT heads, chunk_count, chunk_bytes, \
                        EXISTS (SELECT 1 FROM doc_snapshots WHERE doc_id = docs.id) \
                 FROM docs WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .optional()
            }))?;
        let Some((blob, count, bytes, has_snapshot)) = row else {
            return Ok(None);
        };
        let heads = heads::decode(&blob)
            .ok_or_else(|| self.bad_doc(id, "stored heads have a bad length".into()))?;
        Ok(Some(DocRow {
            heads,
            chunk_count: count.max(0) as u64,
            chunk_bytes: bytes.max(0) as u64,
            has_snapshot,
        }))
    }

    pub(crate) fn bad_doc(&self, id: &str, detail: String) -> StoreError {
        StoreError::BadDocument {
            path: self.path().to_path_buf(),
            id: id.to_owned(),
            detail,
        }
    }
}

impl WriteTx<'_> {
    /// Save `doc` as document `id` (creating it if new).
    ///
    /// Appends the changes the store does not have yet as one increment, or
    /// rewrites the document as one snapshot when the increments would exceed
    /// the [`CompactionPolicy`](crate::CompactionPolicy) (or when the document
    /// has no snapshot yet).
    ///
    /// The store keeps the union of what it had and what `doc` has. If the
    /// store holds changes `doc` lacks (another process saved in between, or
    /// `doc` was never loaded from here), they are first merged *into `doc`*,
    /// so that afterwards `doc` and the store agree and a view rendered from
    /// `doc` matches the stored heads. Nothing is ever lost either way.
    pub fn save_doc(&self, id: &str, doc: &mut AutoCommit) -> Result<SaveOutcome> {
        let row = self.doc_row(id)?;
        let previous_heads = row.as_ref().map(|r| r.heads.clone()).unwrap_or_default();

        // Bring in stored changes the caller's document does not have.
        let mut merged_from_store = 0;
        let missing = doc
            .get_missing_deps(&previous_heads)
            .into_iter()
            .any(|h| previous_heads.contains(&h));
        if missing {
            if let Some(mut stored) = self.load_doc(id)? {
                let added = doc.get_changes_added(&mut stored);
                merged_from_store = added.len();
                doc.apply_changes(added)
                    .map_err(|e| self.bad_doc(id, format!("cannot merge stored changes: {e}")))?;
            }
        }

        let new_heads = heads::canonical(&doc.get_heads());
        let conn = self.conn();
        let Some(row) = row else {
            // New document: store it as a snapshot straight away.
            self.db(conn
                .prepare_cached("INSERT INTO docs (id, heads) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![id, heads::encode(&new_heads)])))?;
            self.write_snapshot(id, doc)?;
            return Ok(SaveOutcome {
                previous_heads,
                heads: new_heads,
                merged_from_store,
                appended_bytes: 0,
                compacted: true,
            });
        };
        if new_heads == previous_heads {
            return Ok(SaveOutcome {
                previous_heads,
                heads: new_heads,
                merged_from_store,
                appended_bytes: 0,
                compacted: false,
            });
        }

        let increment = doc.save_after(&previous_heads);
        let policy = self.policy();
        let compact = !row.has_snapshot
            || row.chunk_count + 1 > policy.max_chunks
            || row.chunk_bytes + increment.len() as u64 > policy.max_bytes;
        let appended_bytes = if compact {
            self.write_snapshot(id, doc)?;
            0
        } else {
            self.db(conn
                .prepare_cached("INSERT INTO doc_chunks (doc_id, data) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![id, increment])))?;
            self.db(conn
                .prepare_cached(
                    "UPDATE docs SET chunk_count = chunk_count + 1, \
                     chunk_bytes = chunk_bytes + ?2 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, increment.len() as i64])))?;
            increment.len()
        };
        self.db(conn
            .prepare_cached("UPDATE docs SET heads = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, heads::encode(&new_heads)])))?;
        Ok(SaveOutcome {
            previous_heads,
            heads: new_heads,
            merged_from_store,
            appended_bytes,
            compacted: compact,
        })
    }

    /// Rewrite document `id` as a single snapshot. Returns `false` if there is
    /// no such document.
    pub fn compact_doc(&self, id: &str) -> Result<bool> {
        let Some(mut doc) = self.load_doc(id)? else {
            return Ok(false);
        };
        let heads = heads::canonical(&doc.get_heads());
        self.write_snapshot(id, &mut doc)?;
        self.db(self
            .conn()
            .prepare_cached("UPDATE docs SET heads = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, heads::encode(&heads)])))?;
        Ok(true)
    }

    /// Replace snapshot and increments of `id` by `doc.save()`. `doc` must
    /// contain every stored change (the callers guarantee it).
    fn write_snapshot(&self, id: &str, doc: &mut AutoCommit) -> Result<()> {
        let snapshot = doc.save();
        let conn = self.conn();
        self.db(conn
            .prepare_cached(
                "INSERT INTO doc_snapshots (doc_id, data) VALUES (?1, ?2) \
                 ON CONFLICT (doc_id) DO UPDATE SET data = excluded.data",
            )
            .and_then(|mut s| s.execute(params![id, snapshot])))?;
        self.db(conn
            .prepare_cached("DELETE FROM doc_chunks WHERE doc_id = ?1")
            .and_then(|mut s| s.execute([id])))?;
        self.db(conn
            .prepare_cached("UPDATE docs SET chunk_count = 0, chunk_bytes = 0 WHERE id = ?1")
            .and_then(|mut s| s.execute([id])))?;
        Ok(())
    }
}
