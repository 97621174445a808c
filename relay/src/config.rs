//! Relay configuration: where the database lives and the limits that keep one
//! peer from hurting the others. Every field has a sane default; the
//! `map-relay serve` flags map one to one onto these fields.

use std::path::PathBuf;
use std::time::Duration;

/// How a relay is run. Build with [`RelayConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The SQLite database file (created if missing).
    pub data: PathBuf,
    /// Largest WebSocket message (and frame) accepted, in bytes.
    pub max_message_size: usize,
    /// Most WebSocket connections open at once; more are refused with 503.
    pub max_connections: usize,
    /// Most WebSocket connections open at once from one IP address (429 past it).
    pub max_connections_per_ip: usize,
    /// How often the relay pings an idle peer.
    pub ping_interval: Duration,
    /// A peer that has sent nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// A plan nobody uses is dropped from memory after this long: no
    /// connection has it open, or none has sent anything for it (their sync
    /// states stay; the next message loads it again).
    pub unload_after: Duration,
    /// More plans than this in memory and the least recently used of those
    /// quiet for a second leave it at once (0: no limit). A soft limit:
    /// plans in use stay loaded.
    pub max_loaded_plans: usize,
    /// Incremental change chunks kept per plan before they are compacted into one snapshot.
    pub compact_after_chunks: usize,
    /// Outgoing messages queued per connection; a peer that falls this far behind is closed
    /// (it reconnects and resyncs).
    pub outgoing_queue: usize,
    /// How long shutdown waits for connections to close.
    pub shutdown_grace: Duration,
    /// How often the grants of open connections are checked again, so that
    /// `ungrant`/`user revoke` (possibly run by another process) take effect.
    pub revalidate_every: Duration,
    /// Failed authentications (401, failed invite redemption) from one IP
    /// address within a minute after which it gets 429 for `auth_cooldown`
    /// (0: no limit).
    pub max_auth_failures: u32,
    /// How long an address that failed authentication too often is refused.
    pub auth_cooldown: Duration,
    /// WebSocket connection attempts per minute from one IP address; more get
    /// 429 (0: no limit).
    pub max_connect_attempts: u32,
    /// A client must send a complete HTTP request head (including the
    /// WebSocket upgrade request) within this long, or it is disconnected.
    pub header_read_timeout: Duration,
    /// Serve TLS (`wss://`) with this certificate chain and private key
    /// (PEM files); `None`: plain `ws://`.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of a TLS server certificate.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl RelayConfig {
    /// Defaults, with the database at `data`.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        RelayConfig {
            data: data.into(),
            max_message_size: 16 * 1024 * 1024,
            max_connections: 1024,
            max_connections_per_ip: 64,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            unload_after: Duration::from_secs(30),
            max_loaded_plans: 1000,
            compact_after_chunks: 64,
            outgoing_queue: 1024,
            shutdown_grace: Duration::from_secs(5),
            revalidate_every: Duration::from_secs(10),
            max_auth_failures: 20,
            auth_cooldown: Duration::from_secs(60),
            max_connect_attempts: 600,
            header_read_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}
