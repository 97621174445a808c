//! The participant's local map database: one SQLite file (the CLI uses
//! `$MAP_HOME/map.db`) holding any number of plans, each an Automerge
//! document, together with everything the CLI keeps about them: cached
//! views, cached history, settings, remotes and sync bookkeeping.
//!
//! # Guarantees
//!
//! - Each command is one transaction ([`Store::write`], `BEGIN IMMEDIATE`),
//!   in WAL mode with `synchronous=FULL`: once `write` returns `Ok` the data
//!   is on disk; a crash during it leaves the previous state intact. Nothing
//!   is ever written outside SQLite.
//! - Two processes at once queue for the write lock (busy timeout 30 s)
//!   instead of failing.
//! - Opening is cheap (two header reads, no scans, no migrations unless the
//!   schema is out of date): it is on the path of every command.
//! - Foreign, garbage, damaged, newer-schema and unwritable databases are
//!   refused with a [`StoreError`] whose message says what to do.
//!
//! Documents are keyed by the string form of their id (the bs58check
//! `map_model::DocumentId` display form); this crate does not interpret it.
//!
//! # API
//!
//! ```text
//! Store::open(path) -> Result<Store>            // creates parent dir + file, migrates
//! Store::open_read_only(path) -> Result<Store>
//! store.write(|tx: &WriteTx| -> Result<T, E>) -> Result<T, E>   // E: From<StoreError>
//! store.read(|tx: &ReadTx| -> Result<T, E>) -> Result<T, E>
//! store.set_compaction_policy(CompactionPolicy { max_chunks: 64, max_bytes: 1 MiB })
//!
//! // documents (docs.rs); ReadTx methods are available on WriteTx too
//! tx.load_doc(id) -> Result<Option<AutoCommit>>
//! tx.doc_heads(id) -> Result<Option<Vec<ChangeHash>>>
//! tx.doc_stats(id) -> Result<Option<DocStats>>
//! tx.save_doc(id, &mut AutoCommit) -> Result<SaveOutcome>           [write]
//! tx.compact_doc(id) -> Result<bool>                                [write]
//! // plans (plans.rs)
//! tx.list_plans() -> Result<Vec<PlanRow>>;  tx.plan(id);  tx.has_plan(id)
//! tx.set_plan_meta(id, title, updated_at_ms);  tx.delete_plan(id) -> bool   [write]
//! // cached views (views.rs)
//! tx.get_view(id) -> Result<Option<CachedView>>
//! tx.put_view(id, &heads, &bytes);  tx.delete_view(id)               [write]
//! // cached history (history.rs)
//! tx.history(id, limit) -> Result<Vec<HistoryRow>>;  tx.history_len(id)
//! tx.append_history(id, &rows) -> usize;  tx.clear_history(id)      [write]
//! HistoryRow::since(&mut doc, &outcome.previous_heads) -> Vec<HistoryRow>
//! // settings (settings.rs)
//! tx.get_setting(key);  tx.settings();  tx.set_setting(key, value);  tx.remove_setting(key)
//! // remotes (remotes.rs)
//! tx.remotes();  tx.remote(name);  tx.add_remote(name, url, token);
//! tx.set_remote(name, url, token);  tx.remove_remote(name)
//! // sync bookkeeping (sync_state.rs)
//! tx.get_sync_state(id, remote) -> Option<Vec<u8>>;  tx.sync_state(id, remote) -> sync::State
//! tx.put_sync_state(id, remote, &bytes);  tx.set_sync_state(id, remote, &State)
//! tx.delete_sync_state(id, remote)
//! tx.mark_on_remote(id, remote);  tx.unmark_on_remote(id, remote)
//! tx.plans_on_remote(remote) -> Vec<String>;  tx.remotes_of_plan(id) -> Vec<String>
//! ```
//!
//! # Typical command
//!
//! ```no_run
//! # fn main() -> Result<(), map_store::StoreError> {
//! use map_store::{HistoryRow, Store};
//! let mut store = Store::open("/tmp/example-map-home/map.db")?;
//! store.write(|tx| {
//!     let id = "2j9NvoC8TV6vjwXJLdFXJ7HbTFXR";
//!     let mut doc = tx.load_doc(id)?.unwrap_or_default();
//!     // ... edit doc (one automerge change per edit) ...
//!     let outcome = tx.save_doc(id, &mut doc)?;
//!     tx.append_history(id, &HistoryRow::since(&mut doc, &outcome.previous_heads))?;
//!     tx.put_view(id, &outcome.heads, b"rendered view bytes")?;
//!     tx.set_plan_meta(id, "Acme rollout", 1_700_000_000_000)?;
//!     Ok::<_, map_store::StoreError>(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! Load and save a document in the same transaction: [`WriteTx::save_doc`]
//! appends exactly the changes the store does not have, computed from the
//! heads it stored (not from `AutoCommit::save_incremental`, whose cursor
//! automerge 0.12 does not set on load). If the store holds changes the
//! document lacks, `save_doc` merges them into the document first, so the
//! store always keeps the union.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod docs;
mod error;
mod heads;
mod history;
mod plans;
mod remotes;
mod schema;
mod settings;
mod store;
mod sync_state;
mod tx;
mod views;

pub use docs::{DocStats, SaveOutcome};
pub use error::{Result, StoreError};
pub use history::HistoryRow;
pub use plans::PlanRow;
pub use remotes::Remote;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use store::{CompactionPolicy, Store};
pub use tx::{ReadTx, WriteTx};
pub use views::CachedView;

/// Re-exported so callers name the same automerge types this crate uses.
pub use automerge;
