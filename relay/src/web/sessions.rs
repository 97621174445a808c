//! Web links and browser sessions, in the relay database.
//!
//! A web link (`map share --web`) is a capability for one plan, read-only or
//! read-write, valid until it expires or is revoked, usable by anyone who
//! has it (a buyer forwards it to their legal team). Opening it starts a
//! browser session: a fresh random secret kept in an HTTP-only cookie, so the
//! link's secret leaves the address bar at once. Only sha256 hashes of both
//! secrets are stored. A session gets a relay user once its participant
//! gives a name: their edits are authored and delivered under it, and
//! `map-relay user revoke NAME` ends the session.

use std::time::Duration;

use rand::RngCore;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::auth::{self, Access};
use crate::db::{RelayDb, check_name, free_name, now_ms};
use crate::error::Result;

/// Tables added by schema version 2.
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE web_links (
    id          INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,
    plan        TEXT NOT NULL REFERENCES plans(id),
    access      TEXT NOT NULL CHECK (access IN ('ro', 'rw')),
    side        TEXT,
    created_by  INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX web_links_plan ON web_links(plan);
CREATE TABLE web_sessions (
    hash        BLOB PRIMARY KEY,
    link_id     INTEGER NOT NULL REFERENCES web_links(id),
    user_id     INTEGER REFERENCES users(id),
    csrf        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX web_sessions_link ON web_sessions(link_id);
"#;

/// Why a web link does not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No such link (or a malformed one).
    #[error("this link is not known here: check that it was copied whole, or ask for a new one")]
    Unknown,
    /// Past its expiry, or revoked.
    #[error("this link has expired or was withdrawn: ask the plan's owner for a new one")]
    Expired,
    /// Opened [`MAX_SESSIONS_PER_LINK`] times already.
    #[error("this link has been opened too many times: ask the plan's owner for a new one")]
    Exhausted,
}

/// Browser sessions one link may open (each is a row; a link that leaked
/// to a script cannot fill the database).
pub const MAX_SESSIONS_PER_LINK: i64 = 500;

/// The participant behind a named session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUser {
    /// Relay user id.
    pub id: i64,
    /// Name (unique on the relay; may carry a `-2` suffix).
    pub name: String,
    /// Email, if given.
    pub email: Option<String>,
}

/// A live browser session.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// The plan the session may see.
    pub plan: String,
    /// Read-only or read-write.
    pub access: Access,
    /// The side the link was made for (seller/buyer/other), if any.
    pub side: Option<String>,
    /// Who is editing, once they gave a name.
    pub user: Option<WebUser>,
    /// Token every form must carry (CSRF protection).
    pub csrf: String,
    /// The automerge actor id (hex) of this session's changes.
    pub actor: String,
    /// When the session ends (ms since the epoch): the link's expiry.
    pub expires_at: i64,
}

/// A summary of a web link (`map-relay link list`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkInfo {
    /// Row id (for `map-relay link revoke ID`).
    pub id: i64,
    /// The plan.
    pub plan: String,
    /// `ro` or `rw`.
    pub access: Access,
    /// Who made it.
    pub created_by: String,
    /// Expiry (ms).
    pub expires_at: i64,
    /// Revocation time (ms), if revoked.
    pub revoked_at: Option<i64>,
    /// Sessions opened with it.
    pub sessions: i64,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

impl RelayDb {
    /// Create a web link for `plan`; returns its secret (shown once).
    pub fn create_web_link(
        &self,
        creator_id: i64,
        plan: &str,
        access: Access,
        side: Option<&str>,
        expires_in: Duration,
    ) -> Result<String> {
        self.insert_secret_grant("web_links", creator_id, plan, access, side, expires_in)
    }

    /// Start a browser session with a web link. Returns the session secret
    /// (for the cookie) and the session.
    pub fn open_web_link(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<(String, WebSession), LinkError>> {
        let computed = auth::hash_secret(secret);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = tx
            .query_row(
                "SELECT id, hash, plan, access, side, expires_at, revoked_at
                 FROM web_links WHERE hash = ?1",
                [computed.as_slice()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((link_id, stored, plan, access, side, expires_at, revoked_at)) = row else {
            return Ok(Err(LinkError::Unknown));
        };
        if !auth::hashes_equal(&stored, &computed) {
            return Ok(Err(LinkError::Unknown));
        }
        let now = now_ms();
        if revoked_at.is_some() || now >= expires_at {
            return Ok(Err(LinkError::Expired));
        }
        // Sessions of links that ended are of no use any more.
        tx.execute(
            "DELETE FROM web_sessions WHERE link_id IN
                 (SELECT id FROM web_links WHERE expires_at <= ?1 OR revoked_at IS NOT NULL)",
            [now],
        )?;
        let opened: i64 = tx.query_row(
            "SELECT count(*) FROM web_sessions WHERE link_id = ?1",
            [link_id],
            |r| r.get(0),
        )?;
        if opened >= MAX_SESSIONS_PER_LINK {
            return Ok(Err(LinkError::Exhausted));
        }
        let session_secret = auth::new_secret();
        let csrf = random_hex(32);
        let actor = random_hex(16);
        tx.execute(
            "INSERT INTO web_sessions (hash, link_id, csrf, actor, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                auth::hash_secret(&session_secret).as_slice(),
                link_id,
                csrf,
                actor,
                now
            ],
        )?;
        tx.commit()?;
        Ok(Ok((
            session_secret,
            WebSession {
                plan,
                access: Access::parse(&access).unwrap_or(Access::ReadOnly),
                side,
                user: None,
                csrf,
                actor,
                expires_at,
            },
        )))
    }

    /// The session behind a cookie, if it is valid for `plan`: its link has
    /// not expired or been revoked, and its user (if any) is not revoked.
    pub fn web_session(&self, secret: &str, plan: &str) -> Result<Option<WebSession>> {
        let computed = auth::hash_secret(secret);
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT s.hash, l.plan, l.access, l.side, s.csrf, s.actor, l.expires_at,
                        l.revoked_at, u.id, u.name, u.email, u.revoked_at
                 FROM web_sessions s
                 JOIN web_links l ON l.id = s.link_id
                 LEFT JOIN users u ON u.id = s.user_id
                 WHERE s.hash = ?1",
                [computed.as_slice()],
                |r| {
                    let user = match r.get::<_, Option<i64>>(8)? {
                        Some(id) => Some((
                            WebUser {
                                id,
                                name: r.get(9)?,
                                email: r.get(10)?,
                            },
                            r.get::<_, Option<i64>>(11)?,
                        )),
                        None => None,
                    };
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        WebSession {
                            plan: r.get(1)?,
                            access: Access::parse(&r.get::<_, String>(2)?)
                                .unwrap_or(Access::ReadOnly),
                            side: r.get(3)?,
                            user: None,
                            csrf: r.get(4)?,
                            actor: r.get(5)?,
                            expires_at: r.get(6)?,
                        },
                        r.get::<_, Option<i64>>(7)?,
                        user,
                    ))
                },
            )
            .optional()?;
        let Some((stored, mut session, link_revoked, user)) = row else {
            return Ok(None);
        };
        if !auth::hashes_equal(&stored, &computed)
            || session.plan != plan
            || link_revoked.is_some()
            || now_ms() >= session.expires_at
        {
            return Ok(None);
        }
        match user {
            Some((_, Some(_revoked))) => return Ok(None),
            Some((user, None)) => session.user = Some(user),
            None => {}
        }
        Ok(Some(session))
    }

    /// Give a session's participant a name (and email): creates their relay
    /// user (a free variant of the name). A session named before keeps its
    /// user. `None` if the session is not valid for `plan`.
    pub fn name_web_session(
        &self,
        secret: &str,
        plan: &str,
        name: &str,
        email: Option<&str>,
    ) -> Result<Option<WebUser>> {
        let name = check_name(name)?;
        let Some(session) = self.web_session(secret, plan)? else {
            return Ok(None);
        };
        if let Some(user) = session.user {
            return Ok(Some(user));
        }
        let computed = auth::hash_secret(secret);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let name = free_name(&tx, &name)?;
        tx.execute(
            "INSERT INTO users (name, email, side, can_create, created_at) VALUES (?1, ?2, ?3, 0, ?4)",
            params![name, email, session.side, now_ms()],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE web_sessions SET user_id = ?2 WHERE hash = ?1",
            params![computed.as_slice(), id],
        )?;
        tx.commit()?;
        Ok(Some(WebUser {
            id,
            name,
            email: email.map(str::to_owned),
        }))
    }

    /// Web links, newest first (all plans, or one).
    pub fn list_web_links(&self, plan: Option<&str>) -> Result<Vec<LinkInfo>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT l.id, l.plan, l.access, u.name, l.expires_at, l.revoked_at,
                    (SELECT count(*) FROM web_sessions s WHERE s.link_id = l.id)
             FROM web_links l JOIN users u ON u.id = l.created_by
             WHERE ?1 IS NULL OR l.plan = ?1
             ORDER BY l.id DESC",
        )?;
        let rows = stmt.query_map([plan], |r| {
            Ok(LinkInfo {
                id: r.get(0)?,
                plan: r.get(1)?,
                access: Access::parse(&r.get::<_, String>(2)?).unwrap_or(Access::ReadOnly),
                created_by: r.get(3)?,
                expires_at: r.get(4)?,
                revoked_at: r.get(5)?,
                sessions: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Withdraw a web link: it opens nothing more and its sessions end.
    /// `false` if there is no such link.
    pub fn revoke_web_link(&self, id: i64) -> Result<bool> {
        let changed = self.lock().execute(
            "UPDATE web_links SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
            params![id, now_ms()],
        )?;
        Ok(changed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ChangeBatch;

    fn db_with_plan() -> (tempfile::TempDir, RelayDb, i64, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = RelayDb::open(dir.path().join("relay.db")).expect("db");
        let token = db.add_user("alice").expect("user");
        let alice = db.authenticate(&token).expect("auth").expect("alice");
        let plan = crate::plan_id::random();
        let mut doc = automerge::AutoCommit::new();
        automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "title", "Acme")
            .expect("put");
        let snapshot = doc.save();
        db.create_plan(&ChangeBatch {
            plan: &plan,
            user_id: alice.id,
            incremental: &[],
            hashes: &[],
            snapshot: Some(&snapshot),
        })
        .expect("plan");
        (dir, db, alice.id, plan)
    }

    fn new_link(db: &RelayDb, creator: i64, plan: &str, access: Access) -> String {
        db.create_web_link(creator, plan, access, None, Duration::from_secs(60))
            .expect("link")
    }

    #[test]
    fn a_link_opens_a_bounded_number_of_sessions() {
        let (_dir, db, alice, plan) = db_with_plan();
        let link = new_link(&db, alice, &plan, Access::ReadOnly);
        for _ in 0..MAX_SESSIONS_PER_LINK {
            assert!(db.open_web_link(&link).expect("open").is_ok());
        }
        assert_eq!(
            db.open_web_link(&link).expect("open").err(),
            Some(LinkError::Exhausted)
        );
        // Another link of the same plan is not affected.
        let other = new_link(&db, alice, &plan, Access::ReadOnly);
        assert!(db.open_web_link(&other).expect("open").is_ok());
    }

    #[test]
    fn sessions_of_ended_links_are_dropped() {
        let (_dir, db, alice, plan) = db_with_plan();
        let link = new_link(&db, alice, &plan, Access::ReadWrite);
        let (secret, _) = db.open_web_link(&link).expect("open").expect("session");
        assert!(db.web_session(&secret, &plan).expect("session").is_some());
        let id = db.list_web_links(Some(&plan)).expect("list")[0].id;
        assert!(db.revoke_web_link(id).expect("revoke"));
        assert!(db.web_session(&secret, &plan).expect("session").is_none());
        let other = new_link(&db, alice, &plan, Access::ReadOnly);
        assert!(db.open_web_link(&other).expect("open").is_ok());
        let rows: i64 = db
            .lock()
            .query_row("SELECT count(*) FROM web_sessions", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 1, "only the live link's session is left");
    }
}
