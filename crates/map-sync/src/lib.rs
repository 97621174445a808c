//! The automerge-repo sync protocol for `map`: the wire messages shared by
//! the relay and the CLI ([`message`]) and the CLI's WebSocket sync client
//! ([`client`]).
//!
//! A one-shot sync as `map sync` does it (the caller loads and stores the
//! documents and sync states, e.g. in its SQLite database):
//!
//! ```no_run
//! use automerge::{AutoCommit, sync};
//! use map_sync::{ConnectOptions, Connection, DocOutcome, SyncDoc};
//!
//! # async fn run(saved_doc: Vec<u8>, saved_state: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! let mut opts = ConnectOptions::new("ws://127.0.0.1:8787/", Some("TOKEN".into()));
//! opts.storage_id = None; // or a stable id for this participant's store
//! let mut conn = Connection::connect(opts).await?;
//! let mut docs = vec![
//!     SyncDoc {
//!         id: "148vjpuxYXixb8DcbaWyeGv2q3u".into(),
//!         doc: AutoCommit::load(&saved_doc)?,
//!         state: sync::State::decode(&saved_state)?,
//!     },
//!     // A plan we were invited to but do not have yet:
//!     SyncDoc::wanted("4Zoc2ZxZ3ndMzrrdtkoPYpfWFVJJ"),
//! ];
//! let reports = conn
//!     .sync(&mut docs, |sd, changes| {
//!         // persist sd.doc (save_incremental) and sd.state.encode() here
//!         for c in changes {
//!             println!("{}: {}", c.author.as_deref().unwrap_or("?"), c.message.as_deref().unwrap_or(""));
//!         }
//!         Ok(())
//!     })
//!     .await?;
//! conn.close().await;
//! for (sd, report) in docs.iter().zip(&reports) {
//!     // store sd.state.encode() again, then tell the user:
//!     match &report.outcome {
//!         DocOutcome::InSync => println!("{}: up to date", sd.id),
//!         other => println!("{}: {other}", sd.id),
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod error;
pub mod message;
pub mod tls;

pub use client::{
    ChangeSummary, ConnectOptions, Connection, DocOutcome, DocReport, SyncDoc, WatchCommand,
    WatchEvent, WatchOptions, changes_since, connect, random_peer_id, watch,
};
pub use error::{PersistError, SyncError};
pub use message::{Message, PROTOCOL_VERSION, PeerMetadata, ProtocolError};
