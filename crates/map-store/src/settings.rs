//! Settings: string key/value pairs (identity, actor id, current plan, ...).
//! The keys are the caller's business; this module only stores them.

use rusqlite::{OptionalExtension, params};

use crate::error::Result;
use crate::tx::{ReadTx, WriteTx};

impl ReadTx<'_> {
    /// The value of setting `key`, if set.
    pub fn get_setting(&self, key: &str) -> Result<Option<String>> {
        self.db(self
            .conn()
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional()))
    }

    /// Every setting, sorted by key.
    pub fn settings(&self) -> Result<Vec<(String, String)>> {
        self.db(self
            .conn()
            .prepare_cached("SELECT key, value FROM settings ORDER BY key")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }))
    }
}

impl WriteTx<'_> {
    /// Set `key` to `value` (replacing any previous value).
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.db(self
            .conn()
            .prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![key, value])))?;
        Ok(())
    }

    /// Remove setting `key`. Returns whether it was set.
    pub fn remove_setting(&self, key: &str) -> Result<bool> {
        self.db(self
            .conn()
            .prepare_cached("DELETE FROM settings WHERE key = ?1")
            .and_then(|mut s| s.execute([key])))
            .map(|n| n > 0)
    }
}
