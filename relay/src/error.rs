//! The relay's error type: what went wrong, phrased so that an operator knows
//! what to do next. The binary maps every variant to exit code 1.

use std::path::PathBuf;

/// Anything the relay library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The database file exists but is not a map-relay database (or is newer).
    #[error("{path}: {reason}")]
    NotARelayDb {
        /// The file that was opened.
        path: PathBuf,
        /// Why it was refused, with what to do about it.
        reason: String,
    },
    /// No database at the given path (admin commands never create one, except `user add`).
    #[error(
        "no relay database at {0}: create one with `map-relay user add NAME --data {0}` or `map-relay serve --data {0}`"
    )]
    MissingDb(PathBuf),
    /// An SQLite error.
    #[error("relay database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// No such user.
    #[error("unknown user {0:?}: see `map-relay user list`")]
    UnknownUser(String),
    /// A user of that name exists already.
    #[error("a user named {0:?} exists already: pick another name")]
    UserExists(String),
    /// A user name that cannot be used.
    #[error("invalid user name {0:?}: use 1 to 100 characters, no control characters")]
    InvalidName(String),
    /// A string that is not an automerge document id.
    #[error("{0:?} is not a plan id: expected a document id or an automerge: URL")]
    InvalidPlanId(String),
    /// The plan is not stored on this relay.
    #[error("unknown plan {0}: a plan exists on the relay once its owner has synced it")]
    UnknownPlan(String),
    /// The user has no grant on the plan.
    #[error("{user:?} has no access to plan {plan}")]
    NoGrant {
        /// The plan.
        plan: String,
        /// The user name.
        user: String,
    },
    /// Owners keep their access; changing it would leave the plan without owner.
    #[error("{user:?} owns plan {plan}: an owner's access cannot be changed")]
    IsOwner {
        /// The plan.
        plan: String,
        /// The user name.
        user: String,
    },
    /// A stored plan could not be loaded by automerge.
    #[error("plan {plan} is damaged in the relay database: {source}")]
    Document {
        /// The plan.
        plan: String,
        /// What automerge said.
        source: Box<automerge::AutomergeError>,
    },
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listening address cannot be bound.
    #[error(
        "cannot listen on {addr}: {source}: pick another address with --listen (127.0.0.1:0 takes any free port)"
    )]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No web link with this id.
    #[error("no web link {0}: see `map-relay link list`")]
    UnknownLink(i64),
    /// A background task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Whether `e` comes from a full disk (SQLite's `SQLITE_FULL`, or ENOSPC).
pub fn is_disk_full(e: &RelayError) -> bool {
    match e {
        RelayError::Db(rusqlite::Error::SqliteFailure(f, _)) => {
            f.code == rusqlite::ErrorCode::DiskFull
        }
        RelayError::Io(io) => io.raw_os_error() == Some(libc::ENOSPC),
        _ => false,
    }
}

/// Result alias for the relay.
pub type Result<T, E = RelayError> = std::result::Result<T, E>;
