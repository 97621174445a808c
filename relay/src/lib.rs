//! `map-relay`: a self-hosted relay speaking the automerge-repo wire protocol
//! (version "1") over WebSocket. It stores plans in SQLite, lets only granted
//! users read them, accepts writes only from read-write users, and passes
//! every accepted change on to the other connections that have the plan open.
//!
//! Modules: [`config`] (limits), [`db`] (SQLite: plans, users, token
//! hashes, grants, invites, deliveries), `group_commit` (the writer thread
//! that commits the plan writes queued at once in one transaction),
//! [`auth`] (tokens, access levels),
//! `hub` (plans in memory, sync states, access rules), `connection` (one
//! WebSocket: handshake, error policy, pings), `http` (routes and JSON API),
//! `throttle` (per-address limits on failed authentication and connection
//! attempts), `server` ([`Relay`], [`BoundRelay`]; the accept loop with a
//! header read timeout), [`web`] (the plan as a web page, for participants
//! who open a link from `map share --web`), [`cli`] (the binary's commands).
//!
//! Protocol decisions: unknown message types, `remote-subscription-change`
//! and `remote-heads-changed` are ignored (forward compatible, as
//! automerge-repo peers do); malformed frames, text frames and invalid sync
//! payloads get an `error` message and close that connection only.
//!
//! Embed it (as `map demo` and the tests do):
//!
//! ```no_run
//! # async fn demo() -> map_relay::Result<()> {
//! let relay = map_relay::Relay::open(map_relay::RelayConfig::new("relay.db"))?;
//! let token = relay.add_user("alice")?;
//! let bound = relay.bind("127.0.0.1:0").await?;
//! println!("{}", bound.url());
//! bound.serve(std::future::pending()).await?;
//! # Ok(()) }
//! ```
// Unsafe code is denied everywhere but `memory` (one libc call).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod cli;
pub mod config;
mod connection;
pub mod db;
pub mod error;
mod group_commit;
mod http;
mod hub;
mod keepalive;
mod limits;
mod memory;
mod outbox;
pub mod plan_id;
mod server;
pub mod shutdown;
mod throttle;
mod tls;
mod upgrade;
pub mod web;

pub use auth::Access;
pub use config::{RelayConfig, TlsFiles};
pub use db::RelayDb;
pub use error::{RelayError, Result};
pub use server::{BoundRelay, Relay, RelayHandle};
