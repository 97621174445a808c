//! The relay's SQLite database: plans (a snapshot plus incremental change
//! chunks, compacted now and then), users, token hashes, grants, invites and
//! delivery records (which user delivered which change: verified authorship).
//!
//! One file, WAL mode, `synchronous=FULL`: a change is acknowledged or passed
//! on only after the transaction holding it has committed. The admin commands
//! and a running relay may use the same file at once (busy timeout).
//!
//! A running relay stores plan changes through its group commit writer
//! (`group_commit`): a thread with its own connection (`open_writer`)
//! commits every plan write queued at that moment in one transaction, with
//! the same functions as [`RelayDb::append_changes`] and
//! [`RelayDb::create_plan`]. Everything else, and every method here, uses the
//! one shared connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::auth::{self, Access};
use crate::error::{RelayError, Result};
use crate::plan_id;

/// How long a connection waits for another one's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// "MAPR": marks the file as a map-relay database.
const APPLICATION_ID: i32 = 0x4D41_5052;
/// Schema version written by this build (2 added the web links and sessions
/// of [`crate::web`]; 3 rewrote the `grants.access` check, see
/// [`GRANTS`]). Older files are upgraded when opened.
const SCHEMA_VERSION: i32 = 3;

/// The `grants` table since schema 3: the access check is written as
/// comparisons. SQLite evaluates `x IN (three or more constants)` through a
/// temporary b-tree with its own page cache (an 87 KiB allocation) on every
/// insert: one per plan created, which fragmented glibc's heap
/// (docs/performance.md).
const GRANTS: &str = r#"
CREATE TABLE grants (
    plan        TEXT NOT NULL REFERENCES plans(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    access      TEXT NOT NULL CHECK (access = 'ro' OR access = 'rw' OR access = 'owner'),
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (plan, user_id)
);
CREATE INDEX grants_user ON grants(user_id);
"#;

/// Schema 2 to 3: the grants move to a table made by [`GRANTS`].
const GRANTS_V3_BEFORE: &str = "ALTER TABLE grants RENAME TO grants_v2; DROP INDEX grants_user;";
const GRANTS_V3_AFTER: &str = "INSERT INTO grants (plan, user_id, access, granted_at)
    SELECT plan, user_id, access, granted_at FROM grants_v2;
DROP TABLE grants_v2;";

const SCHEMA: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    email       TEXT,
    side        TEXT,
    can_create  INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE TABLE tokens (
    hash        BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL
);
CREATE INDEX tokens_user ON tokens(user_id);
CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER REFERENCES users(id)
);
CREATE TABLE plan_chunks (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    plan        TEXT NOT NULL REFERENCES plans(id),
    kind        TEXT NOT NULL CHECK (kind IN ('snapshot', 'incremental')),
    data        BLOB NOT NULL
);
CREATE INDEX plan_chunks_plan ON plan_chunks(plan, seq);
CREATE TABLE invites (
    hash        BLOB PRIMARY KEY,
    plan        TEXT NOT NULL REFERENCES plans(id),
    access      TEXT NOT NULL CHECK (access IN ('ro', 'rw')),
    side        TEXT,
    created_by  INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    used_by     INTEGER REFERENCES users(id)
);
CREATE TABLE deliveries (
    plan         TEXT NOT NULL,
    change_hash  TEXT NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    delivered_at INTEGER NOT NULL,
    PRIMARY KEY (plan, change_hash)
);
"#;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Whether pushing a new plan makes this user its owner.
    pub can_create: bool,
}

/// A user as listed by `map-relay user list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserInfo {
    /// Unique name.
    pub name: String,
    /// Email, if given when the user joined through an invite.
    pub email: Option<String>,
    /// Side (seller/buyer/other), if known.
    pub side: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Revocation time (ms), if revoked.
    pub revoked_at: Option<i64>,
    /// Number of plans granted.
    pub plans: i64,
}

/// A plan visible to a user (`GET /v1/plans`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanListing {
    /// Document id.
    pub id: String,
    /// `automerge:` URL.
    pub url: String,
    /// The caller's access.
    pub access: Access,
    /// When the plan reached the relay (ms).
    pub created_at: i64,
}

/// What one user may do with one plan id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanAccess {
    /// Whether the plan exists on the relay.
    pub exists: bool,
    /// The user's grant, if any (never set for a plan that does not exist).
    pub access: Option<Access>,
}

/// A stored plan: all chunks concatenated (loadable with `load_incremental`).
#[derive(Debug, Clone)]
pub struct StoredPlan {
    /// Snapshot followed by incremental chunks.
    pub bytes: Vec<u8>,
    /// How many chunks the plan is stored in.
    pub chunks: usize,
}

/// New changes to make durable.
#[derive(Debug, Clone)]
pub struct ChangeBatch<'a> {
    /// The plan.
    pub plan: &'a str,
    /// The user whose connection delivered the changes.
    pub user_id: i64,
    /// The changes, as `Automerge::save_after(previous heads)`.
    pub incremental: &'a [u8],
    /// Hex hashes of the changes (for the delivery records).
    pub hashes: &'a [String],
    /// If set: the whole document, replacing every stored chunk (compaction).
    pub snapshot: Option<&'a [u8]>,
}

/// One delivery record (`GET /v1/plans/{id}/deliveries`): which
/// authenticated user first delivered a change to this relay, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// Hex hash of the change.
    pub hash: String,
    /// The relay user who delivered it first.
    pub user: String,
    /// That user's email, if they gave one when joining.
    pub email: Option<String>,
    /// When the relay stored it (ms since the epoch).
    pub at: i64,
}

/// What redeeming an invite produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Redeemed {
    /// The new user's name (may carry a suffix if the asked name was taken).
    pub user: String,
    /// The new user's token (shown once).
    pub token: String,
    /// The plan the invite grants.
    pub plan: String,
    /// The access granted.
    pub access: Access,
}

/// Why an invite could not be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// No such invite.
    #[error("unknown invite: check the link, or ask for a new one")]
    Unknown,
    /// Already redeemed.
    #[error("this invite was already used: ask for a new one")]
    Used,
    /// Past its expiry.
    #[error("this invite has expired: ask for a new one")]
    Expired,
}

/// Handle to the relay database. Cheap to clone; calls are serialized.
#[derive(Clone)]
pub struct RelayDb {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    storage_id: String,
}

impl std::fmt::Debug for RelayDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayDb")
            .field("path", &self.path)
            .field("storage_id", &self.storage_id)
            .finish()
    }
}

impl RelayDb {
    /// Open the database at `path`, creating it if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_inner(path.as_ref(), true)
    }

    /// Open an existing database; a missing file is an error (admin commands).
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_inner(path.as_ref(), false)
    }

    fn open_inner(path: &Path, create: bool) -> Result<Self> {
        // SQLite answers some lock conflicts with SQLITE_BUSY at once instead
        // of waiting (switching a new file to WAL while another connection
        // reads it): the relay and an admin command opening a new database
        // together met them. Opening again is safe (the schema is created
        // in one transaction), until the busy timeout has passed.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Self::open_once(path, create) {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                done => return done,
            }
        }
    }

    fn open_once(path: &Path, create: bool) -> Result<Self> {
        if !create && !path.exists() {
            return Err(RelayError::MissingDb(path.to_owned()));
        }
        let refuse = |reason: String| RelayError::NotARelayDb {
            path: path.to_owned(),
            reason,
        };
        // SQLite silently falls back to read-only on a read-only directory;
        // the relay must be able to store what it acknowledges, so say so.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let probe = dir.join(format!(".map-relay-write-check-{}", std::process::id()));
        if let Err(e) = std::fs::write(&probe, b"") {
            return Err(refuse(format!(
                "cannot write to {} ({e}); the relay needs a writable --data directory",
                dir.display()
            )));
        }
        let _ = std::fs::remove_file(&probe);
        let mut conn = Connection::open(path).map_err(|e| refuse(format!("cannot open: {e}")))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The header and the table count from one snapshot: read one by
        // one, a concurrent first open that creates the schema in between
        // would make a new database look like another program's.
        let (application_id, version, tables) = {
            let snapshot = conn.unchecked_transaction().map_err(|e| {
                refuse(format!(
                    "not a map-relay database ({e}); pass another --data file"
                ))
            })?;
            let application_id: i32 = snapshot
                .query_row("PRAGMA application_id", [], |r| r.get(0))
                .map_err(|e| {
                    refuse(format!(
                        "not a map-relay database ({e}); pass another --data file"
                    ))
                })?;
            let version: i32 = snapshot.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let tables: i64 =
                snapshot.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            snapshot.commit()?;
            (application_id, version, tables)
        };
        if application_id == 0 && tables == 0 {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
            // Another process may have initialised it meanwhile.
            let tables: i64 =
                tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            if tables == 0 {
                tx.execute_batch(SCHEMA)?;
                tx.execute_batch(GRANTS)?;
                tx.execute_batch(crate::web::sessions::SCHEMA)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('storage_id', ?1)",
                    [uuid::Uuid::new_v4().to_string()],
                )?;
                tx.pragma_update(None, "application_id", APPLICATION_ID)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
            tx.commit()?;
        } else if application_id != APPLICATION_ID {
            return Err(refuse(
                "not a map-relay database (another program's file); pass another --data file"
                    .into(),
            ));
        } else if version > SCHEMA_VERSION {
            return Err(refuse(format!(
                "made by a newer map-relay (schema {version}, this one knows {SCHEMA_VERSION}): upgrade map-relay"
            )));
        } else if version < SCHEMA_VERSION {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
            let version: i32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version < 2 {
                tx.execute_batch(crate::web::sessions::SCHEMA)?;
            }
            if version < 3 {
                tx.execute_batch(GRANTS_V3_BEFORE)?;
                tx.execute_batch(GRANTS)?;
                tx.execute_batch(GRANTS_V3_AFTER)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        tune(&conn)?;
        let storage_id: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'storage_id'", [], |r| {
                r.get(0)
            })
            .map_err(|e| refuse(format!("damaged map-relay database ({e})")))?;
        Ok(RelayDb {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
            storage_id,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stable uuid of this database, announced to peers as `storageId`.
    pub fn storage_id(&self) -> &str {
        &self.storage_id
    }

    /// A second connection to the same file, set up as the shared one
    /// (WAL, `synchronous=FULL`, foreign keys, busy timeout), for the group
    /// commit writer thread: WAL lets the shared connection read while the
    /// writer commits.
    pub(crate) fn open_writer(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        tune(&conn)?;
        Ok(conn)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back on drop), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Look up the user behind a token. When the connection is free this
    /// runs on the calling (async) thread: it is one indexed read of a few
    /// microseconds, and handing it to a blocking thread and back cost more
    /// than the read (two thread wake-ups per WebSocket handshake: 20% of the
    /// relay's CPU time for 1,000 connections, `map-load --scenario idle`).
    /// It never waits there: a busy connection or database falls back to
    /// [`call`](Self::call).
    pub(crate) async fn authenticate_now(&self, token: String) -> Result<Option<AuthUser>> {
        match self.authenticate_if_free(&token) {
            Some(found) => found,
            None => self.call(move |db| db.authenticate(&token)).await,
        }
    }

    /// [`authenticate`](Self::authenticate), or `None` without waiting if
    /// the connection or the database is busy.
    fn authenticate_if_free(&self, token: &str) -> Option<Result<Option<AuthUser>>> {
        let conn = match self.conn.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let found = conn
            .busy_timeout(Duration::ZERO)
            .map_err(RelayError::from)
            .and_then(|()| authenticate(&conn, token));
        if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
            return Some(Err(e.into()));
        }
        match found {
            Err(e) if is_busy(&e) => None,
            found => Some(found),
        }
    }

    /// Run `f` on a blocking thread (for async callers).
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&RelayDb) -> Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| RelayError::Internal(format!("database task failed: {e}")))?
    }

    // ---- users and tokens -------------------------------------------------

    /// Create a user and return their token (the only time it is available).
    pub fn add_user(&self, name: &str) -> Result<String> {
        let name = check_name(name)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM users WHERE name = ?1", [&name], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if exists {
            return Err(RelayError::UserExists(name));
        }
        tx.execute(
            "INSERT INTO users (name, can_create, created_at) VALUES (?1, 1, ?2)",
            params![name, now_ms()],
        )?;
        let user_id = tx.last_insert_rowid();
        let token = insert_token(&tx, user_id)?;
        tx.commit()?;
        Ok(token)
    }

    /// All users, revoked ones included.
    pub fn list_users(&self) -> Result<Vec<UserInfo>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT u.name, u.email, u.side, u.created_at, u.revoked_at,
                    (SELECT count(*) FROM grants g WHERE g.user_id = u.id)
             FROM users u ORDER BY u.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(UserInfo {
                name: r.get(0)?,
                email: r.get(1)?,
                side: r.get(2)?,
                created_at: r.get(3)?,
                revoked_at: r.get(4)?,
                plans: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revoke a user: their tokens stop working at once.
    pub fn revoke_user(&self, name: &str) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = user_id(&tx, name)?;
        tx.execute(
            "UPDATE users SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
            params![id, now_ms()],
        )?;
        tx.execute("DELETE FROM tokens WHERE user_id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// The user a token belongs to, if it is valid and not revoked.
    pub fn authenticate(&self, token: &str) -> Result<Option<AuthUser>> {
        authenticate(&self.lock(), token)
    }

    // ---- plans and grants -------------------------------------------------

    /// Give `user` access to `plan` (`ro` or `rw`). The plan must exist.
    pub fn grant(&self, plan: &str, user: &str, access: Access) -> Result<()> {
        let plan = plan_id::parse(plan).ok_or_else(|| RelayError::InvalidPlanId(plan.into()))?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let uid = user_id(&tx, user)?;
        require_plan(&tx, &plan)?;
        if current_access(&tx, uid, &plan)? == Some(Access::Owner) && access != Access::Owner {
            return Err(RelayError::IsOwner {
                plan,
                user: user.into(),
            });
        }
        tx.execute(
            "INSERT INTO grants (plan, user_id, access, granted_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plan, user_id) DO UPDATE SET access = excluded.access",
            params![plan, uid, access.as_str(), now_ms()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Take `user`'s access to `plan` away.
    pub fn ungrant(&self, plan: &str, user: &str) -> Result<()> {
        let plan = plan_id::parse(plan).ok_or_else(|| RelayError::InvalidPlanId(plan.into()))?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let uid = user_id(&tx, user)?;
        require_plan(&tx, &plan)?;
        match current_access(&tx, uid, &plan)? {
            None => {
                return Err(RelayError::NoGrant {
                    plan,
                    user: user.into(),
                });
            }
            Some(Access::Owner) => {
                return Err(RelayError::IsOwner {
                    plan,
                    user: user.into(),
                });
            }
            Some(_) => {}
        }
        tx.execute(
            "DELETE FROM grants WHERE plan = ?1 AND user_id = ?2",
            params![plan, uid],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Whether `plan` exists and what `user_id` may do with it.
    pub fn plan_access(&self, user_id: i64, plan: &str) -> Result<PlanAccess> {
        let conn = self.lock();
        let exists = plan_exists(&conn, plan)?;
        let access = if exists {
            // A revoked user has no access, even on a connection opened before.
            let revoked: bool = conn
                .prepare_cached("SELECT revoked_at IS NOT NULL FROM users WHERE id = ?1")?
                .query_row([user_id], |r| r.get(0))
                .optional()?
                .unwrap_or(true);
            if revoked {
                None
            } else {
                current_access(&conn, user_id, plan)?
            }
        } else {
            None
        };
        Ok(PlanAccess { exists, access })
    }

    /// The plans `user_id` can see, with their access.
    pub fn plans_for(&self, user_id: i64) -> Result<Vec<PlanListing>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT p.id, g.access, p.created_at FROM grants g JOIN plans p ON p.id = g.plan
             WHERE g.user_id = ?1 ORDER BY p.created_at, p.id",
        )?;
        let rows = stmt.query_map([user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, access, created_at) = row?;
            out.push(PlanListing {
                url: plan_id::url(&id),
                access: Access::parse(&access).unwrap_or(Access::ReadOnly),
                id,
                created_at,
            });
        }
        Ok(out)
    }

    /// Every plan id on the relay.
    pub fn list_plans(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT id FROM plans ORDER BY created_at, id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The stored bytes of a plan, or `None` if the relay does not have it.
    pub fn load_plan(&self, plan: &str) -> Result<Option<StoredPlan>> {
        let conn = self.lock();
        if !plan_exists(&conn, plan)? {
            return Ok(None);
        }
        let mut stmt =
            conn.prepare_cached("SELECT data FROM plan_chunks WHERE plan = ?1 ORDER BY seq")?;
        let mut rows = stmt.query([plan])?;
        let mut bytes = Vec::new();
        let mut chunks = 0;
        while let Some(row) = rows.next()? {
            let data = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            bytes.extend_from_slice(data);
            chunks += 1;
        }
        Ok(Some(StoredPlan { bytes, chunks }))
    }

    /// Store a new plan, owned by `batch.user_id`, with its first changes.
    /// Returns `false` (and stores nothing) if the plan exists already.
    pub fn create_plan(&self, batch: &ChangeBatch<'_>) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !insert_plan(&tx, batch, now_ms())? {
            return Ok(false);
        }
        tx.commit()?;
        Ok(true)
    }

    /// Make new changes of an existing plan durable (and compact if asked).
    pub fn append_changes(&self, batch: &ChangeBatch<'_>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_changes(&tx, batch, now_ms())?;
        tx.commit()?;
        Ok(())
    }

    /// Which user delivered a change first (verified authorship), if recorded.
    pub fn delivered_by(&self, plan: &str, change_hash: &str) -> Result<Option<String>> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT u.name FROM deliveries d JOIN users u ON u.id = d.user_id
                 WHERE d.plan = ?1 AND d.change_hash = ?2",
                params![plan, change_hash],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every delivery record of `plan`, in the order the relay stored them
    /// (the first delivery of each change only).
    pub fn deliveries(&self, plan: &str) -> Result<Vec<Delivery>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT d.change_hash, u.name, u.email, d.delivered_at
             FROM deliveries d JOIN users u ON u.id = d.user_id
             WHERE d.plan = ?1 ORDER BY d.rowid",
        )?;
        let rows = stmt.query_map([plan], |r| {
            Ok(Delivery {
                hash: r.get(0)?,
                user: r.get(1)?,
                email: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- invites ----------------------------------------------------------

    /// Create an invite for `plan`; returns the secret (shown once).
    pub fn create_invite(
        &self,
        creator_id: i64,
        plan: &str,
        access: Access,
        side: Option<&str>,
        expires_in: Duration,
    ) -> Result<String> {
        self.insert_secret_grant("invites", creator_id, plan, access, side, expires_in)
    }

    /// A new secret that grants `access` (read-only or read-write; owner is
    /// read-write) to `plan` until `expires_in` from now, stored as a row of
    /// `table` (`invites` or `web_links`, which share these columns).
    pub(crate) fn insert_secret_grant(
        &self,
        table: &'static str,
        creator_id: i64,
        plan: &str,
        access: Access,
        side: Option<&str>,
        expires_in: Duration,
    ) -> Result<String> {
        let secret = auth::new_secret();
        let now = now_ms();
        let expires_at =
            now.saturating_add(i64::try_from(expires_in.as_millis()).unwrap_or(i64::MAX));
        let access = if access.can_write() {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        self.lock().execute(
            &format!(
                "INSERT INTO {table} (hash, plan, access, side, created_by, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ),
            params![
                auth::hash_secret(&secret).as_slice(),
                plan,
                access.as_str(),
                side,
                creator_id,
                now,
                expires_at
            ],
        )?;
        Ok(secret)
    }

    /// Redeem an invite: a new user with a fresh token and a grant on the plan.
    pub fn redeem_invite(
        &self,
        secret: &str,
        name: &str,
        email: Option<&str>,
        side: Option<&str>,
    ) -> Result<std::result::Result<Redeemed, InviteError>> {
        let name = check_name(name)?;
        let computed = auth::hash_secret(secret);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = tx
            .query_row(
                "SELECT hash, plan, access, side, expires_at, used_at FROM invites WHERE hash = ?1",
                [computed.as_slice()],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((stored, plan, access, invite_side, expires_at, used_at)) = row else {
            return Ok(Err(InviteError::Unknown));
        };
        if !auth::hashes_equal(&stored, &computed) {
            return Ok(Err(InviteError::Unknown));
        }
        if used_at.is_some() {
            return Ok(Err(InviteError::Used));
        }
        let now = now_ms();
        if now >= expires_at {
            return Ok(Err(InviteError::Expired));
        }
        let access = Access::parse(&access).unwrap_or(Access::ReadOnly);
        let name = free_name(&tx, &name)?;
        let side = side.or(invite_side.as_deref());
        tx.execute(
            "INSERT INTO users (name, email, side, can_create, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, email, side, access.can_write(), now],
        )?;
        let uid = tx.last_insert_rowid();
        let token = insert_token(&tx, uid)?;
        tx.execute(
            "INSERT INTO grants (plan, user_id, access, granted_at) VALUES (?1, ?2, ?3, ?4)",
            params![plan, uid, access.as_str(), now],
        )?;
        tx.execute(
            "UPDATE invites SET used_at = ?2, used_by = ?3 WHERE hash = ?1",
            params![computed.as_slice(), now, uid],
        )?;
        tx.commit()?;
        Ok(Ok(Redeemed {
            user: name,
            token,
            plan,
            access,
        }))
    }

    /// Checkpoint the WAL into the main file (on shutdown).
    pub fn checkpoint(&self) -> Result<()> {
        let conn = self.lock();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

pub(crate) fn check_name(name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(RelayError::InvalidName(name.into()));
    }
    Ok(trimmed.to_owned())
}

/// `name`, or `name-2`, `name-3`, ... whichever is free.
pub(crate) fn free_name(conn: &Connection, name: &str) -> Result<String> {
    let taken = |candidate: &str| -> rusqlite::Result<bool> {
        Ok(conn
            .query_row("SELECT 1 FROM users WHERE name = ?1", [candidate], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    };
    if !taken(name)? {
        return Ok(name.to_owned());
    }
    for n in 2.. {
        let candidate = format!("{name}-{n}");
        if !taken(&candidate)? {
            return Ok(candidate);
        }
    }
    unreachable!("an unbounded range always yields a free name")
}

fn insert_token(conn: &Connection, user_id: i64) -> Result<String> {
    let token = auth::new_secret();
    conn.execute(
        "INSERT INTO tokens (hash, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![auth::hash_secret(&token).as_slice(), user_id, now_ms()],
    )?;
    Ok(token)
}

/// Whether SQLite refused for a lock held elsewhere (trying again later may
/// succeed).
fn is_busy(e: &RelayError) -> bool {
    matches!(
        e,
        RelayError::Db(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
    )
}

fn authenticate(conn: &Connection, token: &str) -> Result<Option<AuthUser>> {
    let computed = auth::hash_secret(token);
    // A cached statement (every connection authenticates), kept prepared
    // by the planner guarantee set in `tune`.
    let row = conn
        .prepare_cached(
            "SELECT t.hash, u.id, u.name, u.can_create FROM tokens t
             JOIN users u ON u.id = t.user_id
             WHERE t.hash = ?1 AND u.revoked_at IS NULL",
        )?
        .query_row([computed.as_slice()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                AuthUser {
                    id: r.get(1)?,
                    name: r.get(2)?,
                    can_create: r.get(3)?,
                },
            ))
        })
        .optional()?;
    Ok(row.and_then(|(stored, user)| auth::hashes_equal(&stored, &computed).then_some(user)))
}

/// What every relay connection to the database runs with: WAL,
/// `synchronous=FULL` (a commit is on disk before it is acknowledged),
/// foreign keys, and the query planner stability guarantee. Without the
/// latter SQLite re-prepares a cached statement whenever a new value is
/// bound to a parameter it might plan around: the token lookup was parsed
/// again for every connection (8% of the relay's CPU in `idle`).
fn tune(conn: &Connection) -> Result<()> {
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn user_id(conn: &Connection, name: &str) -> Result<i64> {
    conn.query_row("SELECT id FROM users WHERE name = ?1", [name.trim()], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| RelayError::UnknownUser(name.into()))
}

fn plan_exists(conn: &Connection, plan: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM plans WHERE id = ?1")?
        .query_row([plan], |_| Ok(()))
        .optional()?
        .is_some())
}

fn require_plan(conn: &Connection, plan: &str) -> Result<()> {
    if plan_exists(conn, plan)? {
        Ok(())
    } else {
        Err(RelayError::UnknownPlan(plan.into()))
    }
}

fn current_access(conn: &Connection, user_id: i64, plan: &str) -> Result<Option<Access>> {
    let access: Option<String> = conn
        .prepare_cached("SELECT access FROM grants WHERE plan = ?1 AND user_id = ?2")?
        .query_row(params![plan, user_id], |r| r.get(0))
        .optional()?;
    Ok(access.as_deref().and_then(Access::parse))
}

/// Within the caller's transaction: store a new plan, owned by
/// `batch.user_id`, with its first changes. `false` (nothing written) if the
/// plan exists already.
pub(crate) fn insert_plan(conn: &Connection, batch: &ChangeBatch<'_>, now: i64) -> Result<bool> {
    if plan_exists(conn, batch.plan)? {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO plans (id, created_at, created_by) VALUES (?1, ?2, ?3)",
        params![batch.plan, now, batch.user_id],
    )?;
    conn.execute(
        "INSERT INTO grants (plan, user_id, access, granted_at) VALUES (?1, ?2, 'owner', ?3)",
        params![batch.plan, batch.user_id, now],
    )?;
    write_changes(conn, batch, now)?;
    Ok(true)
}

/// Within the caller's transaction: store new changes of an existing plan
/// (a snapshot replaces every stored chunk) and their delivery records.
pub(crate) fn write_changes(conn: &Connection, batch: &ChangeBatch<'_>, now: i64) -> Result<()> {
    match batch.snapshot {
        Some(snapshot) => {
            conn.prepare_cached("DELETE FROM plan_chunks WHERE plan = ?1")?
                .execute([batch.plan])?;
            conn.prepare_cached(
                "INSERT INTO plan_chunks (plan, kind, data) VALUES (?1, 'snapshot', ?2)",
            )?
            .execute(params![batch.plan, snapshot])?;
        }
        None => {
            if !batch.incremental.is_empty() {
                conn.prepare_cached(
                    "INSERT INTO plan_chunks (plan, kind, data) VALUES (?1, 'incremental', ?2)",
                )?
                .execute(params![batch.plan, batch.incremental])?;
            }
        }
    }
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (plan, change_hash, user_id, delivered_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for hash in batch.hashes {
        stmt.execute(params![batch.plan, hash, batch.user_id, now])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, RelayDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = RelayDb::open(dir.path().join("relay.db")).unwrap();
        (dir, db)
    }

    /// Authentication runs in place when the connection is free, and hands
    /// over (never waits) when it is not; both give the same answer.
    #[tokio::test]
    async fn authentication_in_place_or_handed_over_agrees() {
        let (_dir, db) = temp_db();
        let token = db.add_user("alice").unwrap();
        let here = db.authenticate_if_free(&token).unwrap().unwrap().unwrap();
        assert_eq!(here.name, "alice");
        assert!(matches!(db.authenticate_if_free("nope"), Some(Ok(None))));
        {
            let _busy = db.lock();
            assert!(db.authenticate_if_free(&token).is_none());
        }
        // Another thread holds the connection for a while: the lookup is
        // handed over and answered once it is free.
        let holder = std::thread::spawn({
            let db = db.clone();
            move || {
                let _held = db.lock();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        while db.authenticate_if_free(&token).is_some() {
            std::thread::yield_now();
        }
        let handed_over = db.authenticate_now(token.clone()).await.unwrap().unwrap();
        assert_eq!(handed_over.id, here.id);
        holder.join().unwrap();
        // The busy timeout is restored for everyone else.
        let timeout: i64 = db
            .lock()
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, BUSY_TIMEOUT.as_millis() as i64);
    }

    #[test]
    fn storage_id_is_stable_across_opens() {
        let (dir, db) = temp_db();
        let id = db.storage_id().to_owned();
        drop(db);
        let again = RelayDb::open_existing(dir.path().join("relay.db")).unwrap();
        assert_eq!(again.storage_id(), id);
    }

    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let token = RelayDb::open(&path).unwrap().add_user("alice").unwrap();
        {
            // What a version 1 relay left: no web tables.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "DROP TABLE web_sessions; DROP TABLE web_links; PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let db = RelayDb::open_existing(&path).unwrap();
        assert!(db.authenticate(&token).unwrap().is_some(), "users kept");
        let version: i32 = db
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(db.list_web_links(None).unwrap().is_empty());
    }

    #[test]
    fn a_version_2_database_is_upgraded_and_keeps_its_grants() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let db = RelayDb::open(&path).unwrap();
        db.add_user("alice").unwrap();
        db.add_user("bob").unwrap();
        let plan = plan_id::random();
        let alice = user_id(&db.lock(), "alice").unwrap();
        let batch = ChangeBatch {
            plan: &plan,
            user_id: alice,
            incremental: b"",
            hashes: &[],
            snapshot: None,
        };
        assert!(db.create_plan(&batch).unwrap());
        db.grant(&plan, "bob", Access::ReadOnly).unwrap();
        drop(db);
        {
            // What a version 2 relay left: the access check as an IN list.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE grants_v2 (
                    plan TEXT NOT NULL REFERENCES plans(id),
                    user_id INTEGER NOT NULL REFERENCES users(id),
                    access TEXT NOT NULL CHECK (access IN ('ro', 'rw', 'owner')),
                    granted_at INTEGER NOT NULL,
                    PRIMARY KEY (plan, user_id));
                 INSERT INTO grants_v2 SELECT * FROM grants;
                 DROP TABLE grants;
                 ALTER TABLE grants_v2 RENAME TO grants;
                 CREATE INDEX grants_user ON grants(user_id);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
            assert!(insert_uses_a_temporary_btree(&conn));
        }
        let db = RelayDb::open_existing(&path).unwrap();
        let version: i32 = db
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let bob = user_id(&db.lock(), "bob").unwrap();
        assert_eq!(
            db.plan_access(bob, &plan).unwrap().access,
            Some(Access::ReadOnly),
            "grants kept"
        );
        assert_eq!(
            db.plan_access(alice, &plan).unwrap().access,
            Some(Access::Owner)
        );
        assert!(!insert_uses_a_temporary_btree(&db.lock()));
        let bad = db.lock().execute(
            "INSERT INTO grants (plan, user_id, access, granted_at) VALUES (?1, ?2, 'admin', 0)",
            params![plan, bob],
        );
        assert!(bad.is_err(), "the access check still holds");
    }

    /// Whether inserting a grant makes SQLite open an ephemeral table.
    fn insert_uses_a_temporary_btree(conn: &Connection) -> bool {
        let mut stmt = conn
            .prepare("EXPLAIN INSERT INTO grants (plan, user_id, access, granted_at) VALUES ('p', 1, 'owner', 0)")
            .unwrap();
        let ops: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .map(|op| op.unwrap())
            .collect();
        ops.iter().any(|op| op == "OpenEphemeral")
    }

    /// Processes that open a new database at the same time (the relay
    /// starting while `map-relay user add` runs) all get it, with one schema
    /// and one storage id.
    #[test]
    fn concurrent_first_opens_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let opened: Vec<_> = (0..4)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    RelayDb::open(&path).map(|db| db.storage_id().to_owned())
                })
            })
            .collect();
        let ids: Vec<String> = opened
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }

    #[test]
    fn refuses_foreign_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"this is not sqlite at all, not even close........").unwrap();
        assert!(matches!(
            RelayDb::open(&junk),
            Err(RelayError::NotARelayDb { .. })
        ));
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            RelayDb::open(&other),
            Err(RelayError::NotARelayDb { .. })
        ));
        assert!(matches!(
            RelayDb::open_existing(dir.path().join("missing.db")),
            Err(RelayError::MissingDb(_))
        ));
    }

    #[test]
    fn users_tokens_and_revocation() {
        let (_dir, db) = temp_db();
        let token = db.add_user("alice").unwrap();
        assert!(matches!(
            db.add_user("alice"),
            Err(RelayError::UserExists(_))
        ));
        assert!(matches!(db.add_user("  "), Err(RelayError::InvalidName(_))));
        let user = db.authenticate(&token).unwrap().unwrap();
        assert_eq!(user.name, "alice");
        assert!(db.authenticate("nope").unwrap().is_none());
        db.revoke_user("alice").unwrap();
        assert!(db.authenticate(&token).unwrap().is_none());
        assert!(matches!(
            db.revoke_user("bob"),
            Err(RelayError::UnknownUser(_))
        ));
        assert_eq!(db.list_users().unwrap().len(), 1);
    }

    #[test]
    fn plans_grants_and_invites() {
        let (_dir, db) = temp_db();
        db.add_user("alice").unwrap();
        db.add_user("bob").unwrap();
        let alice = db.list_users().unwrap();
        assert_eq!(alice.len(), 2);
        let plan = plan_id::random();
        assert!(matches!(
            db.grant(&plan, "bob", Access::ReadOnly),
            Err(RelayError::UnknownPlan(_))
        ));
        let conn_id = |name: &str| user_id(&db.lock(), name).unwrap();
        let batch = ChangeBatch {
            plan: &plan,
            user_id: conn_id("alice"),
            incremental: b"",
            hashes: &["aa".into()],
            snapshot: None,
        };
        assert!(db.create_plan(&batch).unwrap());
        assert!(!db.create_plan(&batch).unwrap());
        assert_eq!(
            db.delivered_by(&plan, "aa").unwrap().as_deref(),
            Some("alice")
        );
        // A later delivery of the same change by someone else is not recorded.
        db.append_changes(&ChangeBatch {
            plan: &plan,
            user_id: conn_id("bob"),
            incremental: b"x",
            hashes: &["bb".into(), "aa".into()],
            snapshot: None,
        })
        .unwrap();
        let recorded: Vec<(String, String)> = db
            .deliveries(&plan)
            .unwrap()
            .into_iter()
            .map(|d| (d.hash, d.user))
            .collect();
        assert_eq!(
            recorded,
            [("aa".into(), "alice".into()), ("bb".into(), "bob".into())]
        );
        assert!(db.deliveries(&plan_id::random()).unwrap().is_empty());
        let alice_id = conn_id("alice");
        let bob_id = conn_id("bob");
        assert_eq!(
            db.plan_access(alice_id, &plan).unwrap().access,
            Some(Access::Owner)
        );
        assert_eq!(
            db.plan_access(bob_id, &plan).unwrap(),
            PlanAccess {
                exists: true,
                access: None
            }
        );
        db.grant(&format!("automerge:{plan}"), "bob", Access::ReadOnly)
            .unwrap();
        assert_eq!(
            db.plan_access(bob_id, &plan).unwrap().access,
            Some(Access::ReadOnly)
        );
        assert!(matches!(
            db.grant(&plan, "alice", Access::ReadOnly),
            Err(RelayError::IsOwner { .. })
        ));
        db.ungrant(&plan, "bob").unwrap();
        assert!(matches!(
            db.ungrant(&plan, "bob"),
            Err(RelayError::NoGrant { .. })
        ));

        let secret = db
            .create_invite(
                alice_id,
                &plan,
                Access::ReadWrite,
                Some("buyer"),
                Duration::from_secs(60),
            )
            .unwrap();
        let redeemed = db
            .redeem_invite(&secret, "bob", None, None)
            .unwrap()
            .unwrap();
        assert_eq!(redeemed.user, "bob-2");
        assert_eq!(redeemed.access, Access::ReadWrite);
        assert!(db.authenticate(&redeemed.token).unwrap().is_some());
        assert_eq!(
            db.redeem_invite(&secret, "carol", None, None)
                .unwrap()
                .unwrap_err(),
            InviteError::Used
        );
        assert_eq!(
            db.redeem_invite("nope", "carol", None, None)
                .unwrap()
                .unwrap_err(),
            InviteError::Unknown
        );
        let expired = db
            .create_invite(alice_id, &plan, Access::ReadOnly, None, Duration::ZERO)
            .unwrap();
        assert_eq!(
            db.redeem_invite(&expired, "carol", None, None)
                .unwrap()
                .unwrap_err(),
            InviteError::Expired
        );
        let listing = db.plans_for(alice_id).unwrap();
        assert_eq!(listing.len(), 1);
        assert_eq!(listing[0].id, plan);
    }
}
