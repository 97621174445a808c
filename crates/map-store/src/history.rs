//! The cached change log of each plan, so `map log` does not load the
//! Automerge document: one row per change (hash, author, time, message),
//! newest first by time.
//!
//! Rows are appended by the caller, typically for the changes a
//! [`WriteTx::save_doc`] added: `doc.get_changes_meta(&outcome.previous_heads)`.
//! Appending a change that is already there does nothing.

use automerge::{AutoCommit, ChangeHash, ChangeMetadata};
use rusqlite::params;

use crate::error::Result;
use crate::tx::{ReadTx, WriteTx};

/// One change in a plan's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The change hash.
    pub hash: ChangeHash,
    /// Who made it (`Name <email>`), if the change says.
    pub author: Option<String>,
    /// Change time in ms since the Unix epoch, as claimed by its writer.
    pub time_ms: i64,
    /// The change message, if any.
    pub message: Option<String>,
}

impl HistoryRow {
    /// The row for one change's metadata (author bytes read as UTF-8, lossily).
    pub fn from_meta(meta: &ChangeMetadata<'_>) -> HistoryRow {
        HistoryRow {
            hash: meta.hash,
            author: meta
                .author
                .as_ref()
                .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned()),
            time_ms: meta.timestamp,
            message: meta.message.as_deref().map(str::to_owned),
        }
    }

    /// Rows for every change of `doc` that `since` does not cover, e.g.
    /// `HistoryRow::since(&mut doc, &outcome.previous_heads)` after a save.
    pub fn since(doc: &mut AutoCommit, since: &[ChangeHash]) -> Vec<HistoryRow> {
        doc.get_changes_meta(since)
            .iter()
            .map(HistoryRow::from_meta)
            .collect()
    }
}

impl ReadTx<'_> {
    /// Up to `limit` history rows of plan `id`, newest first (by time, then
    /// by order of appending).
    pub fn history(&self, id: &str, limit: usize) -> Result<Vec<HistoryRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.db(self
            .conn()
            .prepare_cached(
                "SELECT hash, author, time_ms, message FROM history \
                     WHERE doc_id = ?1 ORDER BY time_ms DESC, id DESC LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![id, limit], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            }))?;
        rows.into_iter()
            .map(|(hash, author, time_ms, message)| {
                let hash = ChangeHash::try_from(hash.as_slice())
                    .map_err(|_| self.bad_doc(id, "a history row has a bad hash".into()))?;
                Ok(HistoryRow {
                    hash,
                    author,
                    time_ms,
                    message,
                })
            })
            .collect()
    }

    /// Number of history rows stored for plan `id`.
    pub fn history_len(&self, id: &str) -> Result<u64> {
        self.db(self
            .conn()
            .prepare_cached("SELECT count(*) FROM history WHERE doc_id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get::<_, i64>(0))))
            .map(|n| n.max(0) as u64)
    }
}

impl WriteTx<'_> {
    /// Append `rows` to plan `id`'s history; rows whose hash is already there
    /// are skipped. Returns how many were added.
    pub fn append_history(&self, id: &str, rows: &[HistoryRow]) -> Result<usize> {
        let mut added = 0;
        let mut stmt = self.db(self.conn().prepare_cached(
            "INSERT OR IGNORE INTO history (doc_id, hash, author, time_ms, message) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        ))?;
        for row in rows {
            added += self.db(stmt.execute(params![
                id,
                row.hash.as_ref(),
                row.author,
                row.time_ms,
                row.message
            ]))?;
        }
        Ok(added)
    }

    /// Remove plan `id`'s whole history (to rebuild it).
    pub fn clear_history(&self, id: &str) -> Result<()> {
        self.db(self
            .conn()
            .prepare_cached("DELETE FROM history WHERE doc_id = ?1")
            .and_then(|mut s| s.execute([id])))?;
        Ok(())
    }
}
