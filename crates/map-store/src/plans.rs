//! Plan rows: the per-document metadata that `map plans` lists without
//! loading any Automerge document (title, last update, heads).

use automerge::ChangeHash;
use rusqlite::{OptionalExtension, Row, params};

use crate::error::Result;
use crate::heads;
use crate::tx::{ReadTx, WriteTx};

/// One plan (document) in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// The document id (bs58check string form).
    pub id: String,
    /// Title as last set with [`WriteTx::set_plan_meta`] (empty if never set).
    pub title: String,
    /// Last update time in ms since the Unix epoch, as set by the caller.
    pub updated_at_ms: i64,
    /// Stored heads of the document (sorted; empty if nothing was saved yet).
    pub heads: Vec<ChangeHash>,
}

const PLAN_COLUMNS: &str = "id, title, updated_at_ms, heads";

impl ReadTx<'_> {
    /// Every plan, most recently updated first (ties by id).
    pub fn list_plans(&self) -> Result<Vec<PlanRow>> {
        let sql = format!("SELECT {PLAN_COLUMNS} FROM docs ORDER BY updated_at_ms DESC, id");
        let rows = self.db(self.conn().prepare_cached(&sql).and_then(|mut s| {
            s.query_map([], raw_plan)?
                .collect::<rusqlite::Result<Vec<_>>>()
        }))?;
        rows.into_iter().map(|r| self.plan_from_raw(r)).collect()
    }

    /// The plan with exactly this id.
    pub fn plan(&self, id: &str) -> Result<Option<PlanRow>> {
        let sql = format!("SELECT {PLAN_COLUMNS} FROM docs WHERE id = ?1");
        let row = self.db(self
            .conn()
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([id], raw_plan).optional()))?;
        row.map(|r| self.plan_from_raw(r)).transpose()
    }

    /// Whether the store has a plan with this id.
    pub fn has_plan(&self, id: &str) -> Result<bool> {
        self.db(self
            .conn()
            .prepare_cached("SELECT 1 FROM docs WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |_| Ok(())).optional()))
            .map(|r| r.is_some())
    }

    fn plan_from_raw(&self, raw: RawPlan) -> Result<PlanRow> {
        let (id, title, updated_at_ms, blob) = raw;
        let heads = heads::decode(&blob)
            .ok_or_else(|| self.bad_doc(&id, "stored heads have a bad length".into()))?;
        Ok(PlanRow {
            id,
            title,
            updated_at_ms,
            heads,
        })
    }
}

type RawPlan = (String, String, i64, Vec<u8>);

fn raw_plan(r: &Row<'_>) -> rusqlite::Result<RawPlan> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

impl WriteTx<'_> {
    /// Set the title and update time of plan `id`, creating its row if the
    /// document has not been saved yet.
    pub fn set_plan_meta(&self, id: &str, title: &str, updated_at_ms: i64) -> Result<()> {
        self.db(self
            .conn()
            .prepare_cached(
                "INSERT INTO docs (id, title, updated_at_ms) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (id) DO UPDATE SET title = excluded.title, \
                     updated_at_ms = excluded.updated_at_ms",
            )
            .and_then(|mut s| s.execute(params![id, title, updated_at_ms])))?;
        Ok(())
    }

    /// Delete plan `id` and everything stored about it (document, view,
    /// history, sync states, remote marks). Returns whether it existed.
    pub fn delete_plan(&self, id: &str) -> Result<bool> {
        let conn = self.conn();
        let existed = self.db(conn
            .prepare_cached("DELETE FROM docs WHERE id = ?1")
            .and_then(|mut s| s.execute([id])))?
            > 0;
        for sql in [
            "DELETE FROM doc_snapshots WHERE doc_id = ?1",
            "DELETE FROM doc_chunks WHERE doc_id = ?1",
            "DELETE FROM views WHERE doc_id = ?1",
            "DELETE FROM history WHERE doc_id = ?1",
            "DELETE FROM sync_states WHERE doc_id = ?1",
            "DELETE FROM on_remote WHERE doc_id = ?1",
        ] {
            self.db(conn.prepare_cached(sql).and_then(|mut s| s.execute([id])))?;
        }
        Ok(existed)
    }
}
