//! Opening the database and running transactions on it.
//!
//! [`Store`] owns one SQLite connection. Opening is kept cheap because it is
//! on the path of every CLI command: it sets the busy timeout and
//! `synchronous=FULL` (connection-local, no I/O), reads the two header fields
//! `application_id` and `user_version`, and only when those say the file is new
//! or outdated switches it to WAL and runs the migrations.
//!
//! Writes go through [`Store::write`], one `BEGIN IMMEDIATE` transaction per
//! call: the write lock is taken up front, so two processes queue behind each
//! other (up to the 30 s busy timeout) instead of failing on a lock upgrade.
//! The closure's error rolls everything back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{BUSY_TIMEOUT_SECS, Result, StoreError, classify, dir_of};
use crate::schema::{self, HeaderState, SCHEMA_VERSION};
use crate::tx::{ReadTx, WriteTx};

/// When [`WriteTx::save_doc`] replaces a document's increments by one
/// snapshot. Compaction happens in the same transaction as the save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Compact when a save would leave more than this many increments.
    pub max_chunks: u64,
    /// Compact when a save would leave more than this many bytes of increments.
    pub max_bytes: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            max_chunks: 64,
            max_bytes: 1024 * 1024,
        }
    }
}

/// The participant's map database: one SQLite file holding any number of plans.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    policy: CompactionPolicy,
    read_only: bool,
}

impl Store {
    /// Open (creating if needed, along with its parent directory) the database
    /// at `path`, upgrading its schema if it is older than this build's.
    ///
    /// Refuses, with an actionable [`StoreError`], a file that is not SQLite,
    /// an SQLite database of another program, a damaged one, one with a newer
    /// schema, and a location that cannot be written.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        // SQLite answers some lock conflicts with SQLITE_BUSY at once instead
        // of waiting (a reader that must become a writer, switching a new
        // file to WAL while others read it): several processes opening a new
        // database together met them. Opening again is safe (nothing is
        // half-done: the upgrade is one transaction), until the usual busy
        // timeout has passed.
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_secs(crate::error::BUSY_TIMEOUT_SECS);
        loop {
            match Store::open_once(path) {
                Err(StoreError::Busy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                done => return done,
            }
        }
    }

    fn open_once(path: &Path) -> Result<Store> {
        let path = path.to_path_buf();
        let dir = dir_of(&path);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return Err(StoreError::CannotWrite {
                dir,
                detail: e.to_string(),
            });
        }
        if path.is_dir() {
            return Err(StoreError::CannotWrite {
                dir: path.clone(),
                detail: "this is a directory, not a database file".into(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| classify(&path, e))?;
        let mut store = Store {
            conn,
            path,
            policy: CompactionPolicy::default(),
            read_only: false,
        };
        let state = match store.configure().and_then(|()| store.inspect()) {
            Ok(state) => state,
            Err(StoreError::DiskFull { .. }) => {
                let path = store.path.clone();
                // Close the failed connection first: SQLite shares the
                // shared-memory state of a file between the connections of
                // one process.
                drop(store);
                store = Store::open_without_shm(path, flags, false)?;
                store.inspect()?
            }
            Err(e) => return Err(e),
        };
        match state {
            HeaderState::Current => {}
            HeaderState::Outdated { .. } => store.upgrade()?,
            other => return Err(header_error(&store.path, other)),
        }
        Ok(store)
    }

    /// Open an existing database for reading only. Never creates or upgrades
    /// anything: a missing file is [`StoreError::NotFound`], an outdated one
    /// [`StoreError::NeedsUpgrade`]. Writes through [`Store::write`] fail with
    /// [`StoreError::CannotWrite`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(StoreError::NotFound { path });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| classify(&path, e))?;
        let mut store = Store {
            conn,
            path,
            policy: CompactionPolicy::default(),
            read_only: true,
        };
        let state = match store.configure().and_then(|()| store.inspect()) {
            Ok(state) => state,
            Err(StoreError::DiskFull { .. }) => {
                let path = store.path.clone();
                drop(store);
                store = Store::open_without_shm(path, flags, true)?;
                store.inspect()?
            }
            Err(e) => return Err(e),
        };
        match state {
            HeaderState::Current => Ok(store),
            HeaderState::Outdated { from } => Err(StoreError::NeedsUpgrade {
                path: store.path.clone(),
                found: from,
                known: SCHEMA_VERSION,
            }),
            other => Err(header_error(&store.path, other)),
        }
    }

    /// Open a connection that needs no shared-memory WAL index: used when
    /// the disk is too full to create one, so reads keep working. Exclusive
    /// locking mode keeps the index in memory (it must be set before anything
    /// reads the schema); writes still fail with [`StoreError::DiskFull`],
    /// changing nothing, until space returns.
    fn open_without_shm(path: PathBuf, flags: OpenFlags, read_only: bool) -> Result<Store> {
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| classify(&path, e))?;
        let store = Store {
            conn,
            path,
            policy: CompactionPolicy::default(),
            read_only,
        };
        store
            .conn
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
            .map_err(|e| classify(&store.path, e))?;
        store.configure()?;
        Ok(store)
    }

    /// The path this store was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The compaction thresholds used by [`WriteTx::save_doc`].
    pub fn compaction_policy(&self) -> CompactionPolicy {
        self.policy
    }

    /// Change the compaction thresholds (tests use tiny ones).
    pub fn set_compaction_policy(&mut self, policy: CompactionPolicy) {
        self.policy = policy;
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction and commit it if `f`
    /// returns `Ok`. On `Err` (or a panic) nothing `f` did is kept.
    ///
    /// When this returns `Ok`, the changes are on disk (`synchronous=FULL`).
    /// The closure's error type only needs `From<StoreError>`, so callers can
    /// use their own error type (or `anyhow::Error`).
    pub fn write<T, E>(&mut self, f: impl FnOnce(&WriteTx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| classify(path, e))?;
        let out = {
            let wtx = WriteTx::new(&tx, path, self.policy);
            f(&wtx)?
        };
        tx.commit().map_err(|e| classify(path, e))?;
        Ok(out)
    }

    /// Run `f` in a read transaction: everything it reads comes from one
    /// consistent snapshot of the database, and it cannot write.
    pub fn read<T, E>(&self, f: impl FnOnce(&ReadTx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let path = &self.path;
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| classify(path, e))?;
        let out = {
            let rtx = ReadTx::new(&tx, path, self.policy);
            f(&rtx)?
        };
        // Ending a read transaction writes nothing; an error here changes nothing.
        let _ = tx.commit();
        Ok(out)
    }

    /// Run SQLite's `PRAGMA quick_check` (reads the whole file: for a
    /// `doctor`-style command, not for every open). Returns
    /// [`StoreError::Corrupt`] with SQLite's findings if it is damaged.
    pub fn quick_check(&self) -> Result<()> {
        self.check_pragma("quick_check")
    }

    /// Run SQLite's `PRAGMA integrity_check`: like [`Store::quick_check`]
    /// but also verifies that every index matches its table (slower; for
    /// `map doctor`). Returns [`StoreError::Corrupt`] with the findings.
    pub fn integrity_check(&self) -> Result<()> {
        self.check_pragma("integrity_check")
    }

    fn check_pragma(&self, pragma: &str) -> Result<()> {
        let path = &self.path;
        let findings: Vec<String> = self
            .conn
            .prepare(&format!("PRAGMA {pragma}"))
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| classify(path, e))?;
        if findings.len() == 1 && findings[0] == "ok" {
            return Ok(());
        }
        Err(StoreError::Corrupt {
            path: path.clone(),
            detail: findings.join("; "),
        })
    }

    /// Connection settings applied on every open. None of them touches the file.
    fn configure(&self) -> Result<()> {
        let path = &self.path;
        self.conn
            .busy_timeout(Duration::from_secs(BUSY_TIMEOUT_SECS))
            .map_err(|e| classify(path, e))?;
        self.conn
            .execute_batch("PRAGMA synchronous = FULL;")
            .map_err(|e| classify(path, e))?;
        Ok(())
    }

    fn inspect(&self) -> Result<HeaderState> {
        // One read transaction, so the header fields and the schema count
        // come from one snapshot: read one by one, another process or
        // thread that creates the schema in between made a new database
        // look like some other program's (seen in CI).
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| classify(&self.path, e))?;
        let state = schema::inspect(&tx).map_err(|e| classify(&self.path, e))?;
        tx.commit().map_err(|e| classify(&self.path, e))?;
        Ok(state)
    }

    /// Switch to WAL and migrate; safe against another process doing the same
    /// at the same time (the header is re-read under the write lock).
    fn upgrade(&mut self) -> Result<()> {
        let path = self.path.clone();
        // WAL is a persistent property of the file; it cannot change inside a
        // transaction, so set it first (a no-op if it already is WAL).
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| classify(&path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::CannotWrite {
                dir: dir_of(&path),
                detail: format!("cannot switch the database to WAL mode (got {mode})"),
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| classify(&path, e))?;
        match schema::inspect(&tx).map_err(|e| classify(&path, e))? {
            HeaderState::Current => {}
            HeaderState::Outdated { from } => {
                schema::migrate(&tx, from).map_err(|e| classify(&path, e))?
            }
            other => return Err(header_error(&path, other)),
        }
        tx.commit().map_err(|e| classify(&path, e))
    }

    /// The raw connection, for this crate's own unit tests.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// The error for a header that does not allow opening the database.
fn header_error(path: &Path, state: HeaderState) -> StoreError {
    let path = path.to_path_buf();
    match state {
        HeaderState::Newer { found } => StoreError::NewerSchema {
            path,
            found,
            known: SCHEMA_VERSION,
        },
        HeaderState::Outdated { from } => StoreError::NeedsUpgrade {
            path,
            found: from,
            known: SCHEMA_VERSION,
        },
        HeaderState::Foreign | HeaderState::Current => StoreError::Foreign { path },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> (std::path::PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!(
            "map-store-unit-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let store = Store::open(dir.join("map.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn connection_settings() {
        let (dir, store) = temp();
        let conn = store.conn();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let timeout: i64 = conn
            .pragma_query_value(None, "busy_timeout", |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, 30_000);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        store.quick_check().unwrap();
        store.integrity_check().unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn disk_full_is_reported_and_changes_nothing() {
        let (dir, mut store) = temp();
        store.write(|tx| tx.set_setting("k", "before")).unwrap();
        // Simulate a full disk: forbid the database from growing.
        let pages: i64 = store
            .conn()
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        store
            .conn()
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let big = "x".repeat(1 << 20);
        let err = store
            .write(|tx| {
                tx.set_setting("k", "after")?;
                tx.set_setting("big", &big)
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("disk full"), "{msg}");
        assert!(msg.contains("nothing was changed"), "{msg}");
        assert_eq!(
            store.read(|tx| tx.get_setting("k")).unwrap().as_deref(),
            Some("before")
        );
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
