//! Errors of the sync client, each worded so a user knows what to do next.

use std::path::PathBuf;
use std::time::Duration;

use crate::message::ProtocolError;

/// An error raised by a caller's persistence callback; it aborts the sync.
pub type PersistError = Box<dyn std::error::Error + Send + Sync>;

/// Why connecting to a relay or syncing with it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The URL cannot be used (bad syntax, unsupported scheme).
    #[error("invalid relay URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// No TCP/WebSocket connection could be made (refused, DNS, timeout).
    #[error(
        "cannot reach relay at {url}: {reason}; check the URL or start it with `map-relay serve`"
    )]
    Unreachable { url: String, reason: String },

    /// The relay's TLS certificate could not be verified (unknown CA,
    /// wrong host name, expired).
    #[error(
        "the relay at {url} presented a TLS certificate that is not trusted ({reason}); if the relay uses its own CA, pass --ca-file FILE or set MAP_CA_FILE"
    )]
    Certificate { url: String, reason: String },

    /// The CA file given for a `wss://` relay cannot be used.
    #[error("cannot use CA file {}: {reason}", .path.display())]
    CaFile { path: PathBuf, reason: String },

    /// The relay answered the upgrade with HTTP 401/403.
    #[error(
        "the relay at {url} refused the token; ask the plan owner for a new invite or check `map remote`"
    )]
    Unauthorized { url: String },

    /// The relay answered the upgrade with another HTTP status.
    #[error(
        "the relay at {url} answered HTTP {status} instead of a WebSocket; is this a map relay URL (ws://HOST:PORT/)?"
    )]
    HttpStatus { url: String, status: u16 },

    /// The relay sent something that breaks the automerge-repo protocol.
    #[error("protocol error talking to relay at {url}: {reason}")]
    Protocol { url: String, reason: String },

    /// The relay sent an `error` message (and closes the connection).
    #[error("the relay at {url} reported an error: {message}")]
    Relay { url: String, message: String },

    /// The connection closed or broke in the middle of a sync.
    #[error("lost the connection to relay at {url}: {reason}; run the sync again")]
    Disconnected { url: String, reason: String },

    /// The relay did not answer in time.
    #[error("the relay at {url} did not answer within {} s while {during}; try again later", .after.as_secs())]
    Timeout {
        url: String,
        during: &'static str,
        after: Duration,
    },

    /// A document id given to the client is not an automerge-repo id.
    #[error("invalid document id {0:?}")]
    InvalidDocumentId(String),

    /// Local changes handed to watch mode could not be merged.
    #[error("could not merge local changes into plan {id}: {reason}")]
    LocalDocument { id: String, reason: String },

    /// The caller's callback (e.g. saving to the database) failed.
    #[error("could not save synced changes: {0}")]
    Persist(#[source] PersistError),
}

impl SyncError {
    /// True when retrying with the same settings cannot help (bad URL, token
    /// refused, protocol mismatch); watch mode stops instead of retrying.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            SyncError::InvalidUrl { .. }
                | SyncError::Certificate { .. }
                | SyncError::CaFile { .. }
                | SyncError::Unauthorized { .. }
                | SyncError::HttpStatus { .. }
                | SyncError::InvalidDocumentId(_)
                | SyncError::LocalDocument { .. }
                | SyncError::Persist(_)
        )
    }

    pub(crate) fn protocol(url: &str, reason: impl std::fmt::Display) -> Self {
        SyncError::Protocol {
            url: url.to_owned(),
            reason: reason.to_string(),
        }
    }
}

impl From<(&str, ProtocolError)> for SyncError {
    fn from((url, e): (&str, ProtocolError)) -> Self {
        SyncError::protocol(url, e)
    }
}
