//! The transaction handles passed to [`Store::read`](crate::Store::read) and
//! [`Store::write`](crate::Store::write).
//!
//! [`ReadTx`] carries every read method; [`WriteTx`] dereferences to a
//! [`ReadTx`] and adds the writes. The methods themselves live in the module
//! of their concept (`docs`, `plans`, `views`, `history`, `settings`,
//! `remotes`, `sync_state`).

use std::ops::Deref;
use std::path::Path;

use rusqlite::Connection;

use crate::error::{Result, classify};
use crate::store::CompactionPolicy;

/// Read access inside one transaction.
pub struct ReadTx<'a> {
    conn: &'a Connection,
    path: &'a Path,
    policy: CompactionPolicy,
}

/// Read and write access inside one `BEGIN IMMEDIATE` transaction.
pub struct WriteTx<'a> {
    read: ReadTx<'a>,
}

impl<'a> ReadTx<'a> {
    pub(crate) fn new(conn: &'a Connection, path: &'a Path, policy: CompactionPolicy) -> Self {
        ReadTx { conn, path, policy }
    }

    pub(crate) fn conn(&self) -> &'a Connection {
        self.conn
    }

    pub(crate) fn path(&self) -> &'a Path {
        self.path
    }

    pub(crate) fn policy(&self) -> CompactionPolicy {
        self.policy
    }

    /// Attach the database path to an SQLite error.
    pub(crate) fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.map_err(|e| classify(self.path, e))
    }
}

impl<'a> WriteTx<'a> {
    pub(crate) fn new(conn: &'a Connection, path: &'a Path, policy: CompactionPolicy) -> Self {
        WriteTx {
            read: ReadTx::new(conn, path, policy),
        }
    }
}

impl<'a> Deref for WriteTx<'a> {
    type Target = ReadTx<'a>;

    fn deref(&self) -> &ReadTx<'a> {
        &self.read
    }
}

impl std::fmt::Debug for ReadTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTx").field("path", &self.path).finish()
    }
}

impl std::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx")
            .field("path", &self.read.path)
            .finish()
    }
}
