//! Everything a command needs from its environment: where the data lives
//! (`$MAP_HOME` or the platform data directory), what time it is (`MAP_NOW`,
//! `MAP_TODAY` pin the clock for tests and reproducible output), the store at
//! `$MAP_HOME/map.db`, who the user is and which plan is current.
//!
//! The store is opened lazily, so commands that need no data (and clap's
//! `--help`) never touch the disk.

use std::path::PathBuf;

use automerge::ActorId;
use chrono::{DateTime, NaiveDate, Utc};
use map_model::Identity;
use map_model::identity::Side;
use map_store::{ReadTx, Store, WriteTx};

use crate::error::{CliError, Result};

/// Settings keys in the store.
pub mod keys {
    /// The user's display name.
    pub const NAME: &str = "identity.name";
    /// The user's email.
    pub const EMAIL: &str = "identity.email";
    /// The user's side.
    pub const SIDE: &str = "identity.side";
    /// This participant's Automerge actor id (hex), stable across commands.
    pub const ACTOR: &str = "identity.actor";
    /// Id of the current plan.
    pub const CURRENT_PLAN: &str = "current_plan";
}

/// The clock: pinned by `MAP_NOW` / `MAP_TODAY`, otherwise the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Now, in ms since the Unix epoch (Automerge change time).
    pub now_ms: i64,
    /// Today's date (for relative dates and overdue).
    pub today: NaiveDate,
}

impl Clock {
    /// Read `MAP_NOW` (RFC 3339) and `MAP_TODAY` (YYYY-MM-DD). If only one is
    /// set, the other follows from it.
    pub fn from_env() -> Result<Clock> {
        Clock::from_vars(
            std::env::var("MAP_NOW").ok(),
            std::env::var("MAP_TODAY").ok(),
        )
    }

    /// [`Clock::from_env`] with the variables' values given.
    pub fn from_vars(now: Option<String>, today: Option<String>) -> Result<Clock> {
        let now_env = now.filter(|s| !s.trim().is_empty());
        let today_env = today.filter(|s| !s.trim().is_empty());
        let now: DateTime<Utc> = match &now_env {
            Some(s) => DateTime::parse_from_rfc3339(s.trim())
                .map_err(|e| {
                    CliError::user(format!("MAP_NOW='{s}' is not an RFC 3339 time ({e})"))
                        .hint("use e.g. MAP_NOW=2026-12-04T09:00:00Z, or unset it")
                })?
                .with_timezone(&Utc),
            None => Utc::now(),
        };
        let today = match &today_env {
            Some(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
                CliError::user(format!("MAP_TODAY='{s}' is not a date"))
                    .hint("use e.g. MAP_TODAY=2026-12-04, or unset it")
            })?,
            None if now_env.is_some() => now.date_naive(),
            None => chrono::Local::now().date_naive(),
        };
        let now_ms = if now_env.is_none() && today_env.is_some() {
            // A pinned day without a pinned time: noon UTC that day, so
            // change times and "today" agree.
            today
                .and_hms_opt(12, 0, 0)
                .map(|t| t.and_utc().timestamp_millis())
                .unwrap_or_else(|| now.timestamp_millis())
        } else {
            now.timestamp_millis()
        };
        Ok(Clock { now_ms, today })
    }
}

/// The data directory: `$MAP_HOME`, else the platform data directory.
pub fn map_home() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("MAP_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    directories::ProjectDirs::from("", "", "map")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| {
            CliError::user("cannot find a home directory for map's data")
                .hint("set MAP_HOME to the directory where map should keep its database")
        })
}

/// Per-invocation context.
#[derive(Debug)]
pub struct Context {
    /// The data directory.
    pub home: PathBuf,
    /// The clock.
    pub clock: Clock,
    /// The global `--plan` argument.
    pub plan_arg: Option<String>,
    store: Option<Store>,
}

impl Context {
    /// Resolve home and clock; does not touch the disk.
    pub fn new(plan_arg: Option<String>) -> Result<Context> {
        Ok(Context {
            home: map_home()?,
            clock: Clock::from_env()?,
            plan_arg,
            store: None,
        })
    }

    /// Path of the database.
    pub fn db_path(&self) -> PathBuf {
        self.home.join("map.db")
    }

    /// The store, opened (and created or migrated) on first use.
    pub fn store(&mut self) -> Result<&mut Store> {
        if self.store.is_none() {
            let store = Store::open(self.db_path())?;
            store.read(crate::net::tls::load)?;
            self.store = Some(store);
        }
        match self.store.as_mut() {
            Some(s) => Ok(s),
            None => Err(CliError::user("the database could not be opened")),
        }
    }

    /// Today.
    pub fn today(&self) -> NaiveDate {
        self.clock.today
    }

    /// Now in ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms
    }
}

/// Whether the user has set their identity.
pub fn identity_is_set(tx: &ReadTx<'_>) -> Result<bool> {
    Ok(tx.get_setting(keys::NAME)?.is_some())
}

/// The user's identity: from the settings, else from `$USER` (side other).
pub fn identity(tx: &ReadTx<'_>) -> Result<Identity> {
    let name = match tx.get_setting(keys::NAME)? {
        Some(n) => n,
        None => std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "anonymous".to_string()),
    };
    let email = tx.get_setting(keys::EMAIL)?.unwrap_or_default();
    let side = tx
        .get_setting(keys::SIDE)?
        .map(|s| Side::from_stored(&s))
        .unwrap_or_default();
    Ok(Identity::new(name, email, side))
}

/// This participant's actor id, created and stored on first use, so every
/// change the participant makes carries the same actor.
pub fn actor(tx: &WriteTx<'_>) -> Result<ActorId> {
    if let Some(hex) = tx.get_setting(keys::ACTOR)?
        && let Ok(bytes) = hex::decode(hex.trim())
        && !bytes.is_empty()
    {
        return Ok(ActorId::from(bytes));
    }
    let actor = ActorId::random();
    tx.set_setting(keys::ACTOR, &actor.to_hex_string())?;
    Ok(actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_parses_pins() {
        let c = Clock::from_vars(Some("2026-12-04T09:30:00Z".into()), None).unwrap();
        assert_eq!(c.today, NaiveDate::from_ymd_opt(2026, 12, 4).unwrap());
        assert_eq!(c.now_ms, 1_796_376_600_000);
        let c = Clock::from_vars(None, Some("2026-12-05".into())).unwrap();
        assert_eq!(c.today, NaiveDate::from_ymd_opt(2026, 12, 5).unwrap());
        assert_eq!(c.now_ms, 1_796_472_000_000);
        assert!(Clock::from_vars(None, Some("tomorrow".into())).is_err());
        assert!(Clock::from_vars(Some("noon".into()), None).is_err());
    }
}
