//! The cached rendered view of each plan, so `map show` never loads the
//! Automerge document: [`ReadTx::get_view`] is one indexed `SELECT`.
//!
//! The view bytes are opaque here (the CLI stores a serialized
//! `map_model::PlanView`); they are saved together with the heads they were
//! rendered from, and `get_view` also returns the document's current heads so
//! the caller can tell a stale view from a fresh one.

use automerge::ChangeHash;
use rusqlite::{OptionalExtension, params};

use crate::error::Result;
use crate::heads;
use crate::tx::{ReadTx, WriteTx};

/// A cached view as returned by [`ReadTx::get_view`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedView {
    /// Heads of the document the view was rendered from (sorted).
    pub heads: Vec<ChangeHash>,
    /// The view bytes as given to [`WriteTx::put_view`].
    pub view: Vec<u8>,
    /// The document's stored heads now (`None` if the document itself is not
    /// stored).
    pub doc_heads: Option<Vec<ChangeHash>>,
}

impl CachedView {
    /// Whether the view was rendered from the document as it is stored now.
    pub fn is_current(&self) -> bool {
        self.doc_heads.as_deref() == Some(self.heads.as_slice())
    }
}

impl ReadTx<'_> {
    /// The cached view of plan `id`, if any.
    pub fn get_view(&self, id: &str) -> Result<Option<CachedView>> {
        let row = self.db(self
            .conn()
            .prepare_cached(
                "SELECT v.heads, v.view, d.heads FROM views v \
                     LEFT JOIN docs d ON d.id = v.doc_id WHERE v.doc_id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                    ))
                })
                .optional()
            }))?;
        let Some((view_heads, view, doc_heads)) = row else {
            return Ok(None);
        };
        let bad = || self.bad_doc(id, "stored heads have a bad length".into());
        let heads = heads::decode(&view_heads).ok_or_else(bad)?;
        let doc_heads = match doc_heads {
            Some(blob) => Some(heads::decode(&blob).ok_or_else(bad)?),
            None => None,
        };
        Ok(Some(CachedView {
            heads,
            view,
            doc_heads,
        }))
    }
}

impl WriteTx<'_> {
    /// Store `view`, rendered from a document at `heads`, as plan `id`'s view
    /// (replacing the previous one).
    pub fn put_view(&self, id: &str, heads: &[ChangeHash], view: &[u8]) -> Result<()> {
        self.db(self
            .conn()
            .prepare_cached(
                "INSERT INTO views (doc_id, heads, view) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (doc_id) DO UPDATE SET heads = excluded.heads, \
                     view = excluded.view",
            )
            .and_then(|mut s| s.execute(params![id, heads::encode(heads), view])))?;
        Ok(())
    }

    /// Drop plan `id`'s cached view. Returns whether there was one.
    pub fn delete_view(&self, id: &str) -> Result<bool> {
        self.db(self
            .conn()
            .prepare_cached("DELETE FROM views WHERE doc_id = ?1")
            .and_then(|mut s| s.execute([id])))
            .map(|n| n > 0)
    }
}
