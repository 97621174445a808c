//! The database schema and its migrations.
//!
//! A map database is recognised by `PRAGMA application_id` =
//! [`APPLICATION_ID`]; `PRAGMA user_version` holds the schema version.
//! [`MIGRATIONS`]`[n]` takes a database from version `n` to `n + 1`; they run
//! in one `BEGIN IMMEDIATE` transaction, only when the version read at open is
//! lower than [`SCHEMA_VERSION`], so an up-to-date database costs two header
//! reads on open and nothing else.
//!
//! Version 1 tables (all keyed by the document id's string form, bs58check):
//!
//! | table | contents |
//! |---|---|
//! | `docs` | one row per document (plan): `title`, `updated_at_ms`, `heads` (sorted 32-byte change hashes, concatenated), `chunk_count`/`chunk_bytes` of increments since the snapshot |
//! | `doc_snapshots` | the compacted `doc.save()` of each document |
//! | `doc_chunks` | incremental saves (change chunks) appended after the snapshot |
//! | `views` | the cached rendered plan view and the heads it was rendered from |
//! | `history` | cached change log: hash, author, time, message |
//! | `settings` | key/value |
//! | `remotes` | name, url, token |
//! | `sync_states` | encoded `automerge::sync::State` per (document, remote) |
//! | `on_remote` | which documents are known to exist on which remote |

use rusqlite::Connection;

/// `PRAGMA application_id` of a map database: the bytes `"map\x01"`.
pub const APPLICATION_ID: i32 = 0x6d61_7001;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `MIGRATIONS[n]` upgrades schema version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: initial schema.
    r#"
    CREATE TABLE docs (
        id            TEXT PRIMARY KEY NOT NULL,
        title         TEXT NOT NULL DEFAULT '',
        updated_at_ms INTEGER NOT NULL DEFAULT 0,
        heads         BLOB NOT NULL DEFAULT x'',
        chunk_count   INTEGER NOT NULL DEFAULT 0,
        chunk_bytes   INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE doc_snapshots (
        doc_id TEXT PRIMARY KEY NOT NULL,
        data   BLOB NOT NULL
    );
    CREATE TABLE doc_chunks (
        id     INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL,
        data   BLOB NOT NULL
    );
    CREATE INDEX doc_chunks_by_doc ON doc_chunks (doc_id, id);
    CREATE TABLE views (
        doc_id TEXT PRIMARY KEY NOT NULL,
        heads  BLOB NOT NULL,
        view   BLOB NOT NULL
    );
    CREATE TABLE history (
        id      INTEGER PRIMARY KEY,
        doc_id  TEXT NOT NULL,
        hash    BLOB NOT NULL,
        author  TEXT,
        time_ms INTEGER NOT NULL,
        message TEXT,
        UNIQUE (doc_id, hash)
    );
    CREATE INDEX history_by_time ON history (doc_id, time_ms DESC, id DESC);
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    );
    CREATE TABLE remotes (
        name  TEXT PRIMARY KEY NOT NULL,
        url   TEXT NOT NULL,
        token TEXT
    );
    CREATE TABLE sync_states (
        doc_id TEXT NOT NULL,
        remote TEXT NOT NULL,
        state  BLOB NOT NULL,
        PRIMARY KEY (doc_id, remote)
    );
    CREATE TABLE on_remote (
        remote TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        PRIMARY KEY (remote, doc_id)
    );
    "#,
];

/// What the header of an opened database says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderState {
    /// A map database at the current schema version.
    Current,
    /// A map database (or an empty file) that needs migrations from `from`.
    Outdated { from: i64 },
    /// A map database from a newer map.
    Newer { found: i64 },
    /// An SQLite database of some other program.
    Foreign,
}

/// Read `application_id` and `user_version` (two header reads; no scans).
pub(crate) fn inspect(conn: &Connection) -> rusqlite::Result<HeaderState> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if app_id == APPLICATION_ID {
        return Ok(match version {
            v if v == SCHEMA_VERSION => HeaderState::Current,
            v if v > SCHEMA_VERSION => HeaderState::Newer { found: v },
            v => HeaderState::Outdated { from: v.max(0) },
        });
    }
    if app_id == 0 && version == 0 {
        // Either a brand-new (empty) file or someone else's database.
        let objects: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if objects == 0 {
            return Ok(HeaderState::Outdated { from: 0 });
        }
    }
    Ok(HeaderState::Foreign)
}

/// Run the migrations from `from` to [`SCHEMA_VERSION`] and stamp the header.
/// The caller holds a write transaction and has re-checked the header inside it.
pub(crate) fn migrate(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    let start = usize::try_from(from).unwrap_or(0);
    for sql in MIGRATIONS.iter().skip(start) {
        conn.execute_batch(sql)?;
    }
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}
