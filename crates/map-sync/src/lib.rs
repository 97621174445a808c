//! The automerge-repo sync protocol for `map`: the wire messages shared by
//! the relay and the CLI ([`message`]) and the CLI's WebSocket sync client
//! ([`client`]).
#![forbid(unsafe_code)]

pub mod message;

pub use message::{Message, PROTOCOL_VERSION, PeerMetadata, ProtocolError};
