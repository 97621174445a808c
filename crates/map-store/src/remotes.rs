//! Remotes: named relays (URL and access token) this participant syncs with.

use rusqlite::{OptionalExtension, Row, params};

use crate::error::{Result, StoreError};
use crate::tx::{ReadTx, WriteTx};

/// A named relay.
#[derive(Clone, PartialEq, Eq)]
pub struct Remote {
    /// The name the user gave it (`origin`, ...).
    pub name: String,
    /// Its WebSocket URL (`ws://host:port`).
    pub url: String,
    /// Bearer token, if one was given.
    pub token: Option<String>,
}

impl std::fmt::Debug for Remote {
    // Never print the token (it is a credential) in debug output or logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn remote_row(r: &Row<'_>) -> rusqlite::Result<Remote> {
    Ok(Remote {
        name: r.get(0)?,
        url: r.get(1)?,
        token: r.get(2)?,
    })
}

impl ReadTx<'_> {
    /// Every remote, sorted by name.
    pub fn remotes(&self) -> Result<Vec<Remote>> {
        self.db(self
            .conn()
            .prepare_cached("SELECT name, url, token FROM remotes ORDER BY name")
            .and_then(|mut s| {
                s.query_map([], remote_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }))
    }

    /// The remote called `name`.
    pub fn remote(&self, name: &str) -> Result<Option<Remote>> {
        self.db(self
            .conn()
            .prepare_cached("SELECT name, url, token FROM remotes WHERE name = ?1")
            .and_then(|mut s| s.query_row([name], remote_row).optional()))
    }
}

impl WriteTx<'_> {
    /// Add a remote; [`StoreError::RemoteExists`] if the name is taken.
    pub fn add_remote(&self, name: &str, url: &str, token: Option<&str>) -> Result<()> {
        let added = self.db(self
            .conn()
            .prepare_cached(
                "INSERT INTO remotes (name, url, token) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![name, url, token])))?;
        if added == 0 {
            return Err(StoreError::RemoteExists {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Add or replace the remote called `name`.
    pub fn set_remote(&self, name: &str, url: &str, token: Option<&str>) -> Result<()> {
        self.db(self
            .conn()
            .prepare_cached(
                "INSERT INTO remotes (name, url, token) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET url = excluded.url, token = excluded.token",
            )
            .and_then(|mut s| s.execute(params![name, url, token])))?;
        Ok(())
    }

    /// Remove remote `name` with its sync states and plan marks. Returns
    /// whether it existed.
    pub fn remove_remote(&self, name: &str) -> Result<bool> {
        let conn = self.conn();
        let existed = self.db(conn
            .prepare_cached("DELETE FROM remotes WHERE name = ?1")
            .and_then(|mut s| s.execute([name])))?
            > 0;
        for sql in [
            "DELETE FROM sync_states WHERE remote = ?1",
            "DELETE FROM on_remote WHERE remote = ?1",
        ] {
            self.db(conn.prepare_cached(sql).and_then(|mut s| s.execute([name])))?;
        }
        Ok(existed)
    }
}
