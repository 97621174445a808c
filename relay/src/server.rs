//! The embeddable relay: [`Relay`] (open the database), [`BoundRelay`]
//! (socket bound, address known) and [`BoundRelay::serve`], which runs until
//! the given shutdown future resolves, then stops accepting, closes every
//! WebSocket with "going away", waits for them (bounded by
//! `shutdown_grace`), stops the database writer (group commit) once it has
//! committed what was queued, and checkpoints the database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use futures_util::FutureExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::auth::Access;
use crate::config::RelayConfig;
use crate::db::RelayDb;
use crate::error::Result;
use crate::group_commit::GroupCommit;
use crate::http::{self, AppState};
use crate::hub::Hub;
use crate::limits::ConnectionLimits;
use crate::throttle::{self, Throttle};

/// A relay with its database open, not yet listening.
#[derive(Debug, Clone)]
pub struct Relay {
    config: Arc<RelayConfig>,
    db: RelayDb,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Relay {
    /// Open (or create) the database named in `config`; with
    /// `config.tls`, load the certificate and key first.
    pub fn open(config: RelayConfig) -> Result<Relay> {
        let tls = config
            .tls
            .as_ref()
            .map(crate::tls::server_config)
            .transpose()?;
        let db = RelayDb::open(&config.data)?;
        Ok(Relay {
            config: Arc::new(config),
            db,
            tls,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// The database (for admin operations).
    pub fn db(&self) -> &RelayDb {
        &self.db
    }

    /// Create a user; returns their token (shown once).
    pub fn add_user(&self, name: &str) -> Result<String> {
        self.db.add_user(name)
    }

    /// Grant `user` access to `plan` (a document id or `automerge:` URL).
    pub fn grant(&self, plan: &str, user: &str, access: Access) -> Result<()> {
        self.db.grant(plan, user, access)
    }

    /// Bind the listening socket (`127.0.0.1:0` picks a free port).
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<BoundRelay> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let writer = GroupCommit::start(&self.db)?;
        let hub = Arc::new(Hub::new(self.db.clone(), writer, self.config.clone()));
        Ok(BoundRelay {
            relay: self,
            listener,
            local_addr,
            hub,
        })
    }
}

/// A relay whose socket is bound; [`serve`](BoundRelay::serve) runs it.
pub struct BoundRelay {
    relay: Relay,
    listener: TcpListener,
    local_addr: SocketAddr,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for BoundRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundRelay")
            .field("local_addr", &self.local_addr)
            .field("db", &self.relay.db)
            .finish()
    }
}

/// A view of a running relay (for tests and `map demo`).
#[derive(Clone)]
pub struct RelayHandle {
    hub: Arc<Hub>,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle").finish_non_exhaustive()
    }
}

impl RelayHandle {
    /// Plans currently held in memory.
    pub fn loaded_plans(&self) -> usize {
        self.hub.loaded_plans()
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        self.hub.connection_count()
    }

    /// The database.
    pub fn db(&self) -> &RelayDb {
        self.hub.db()
    }
}

impl BoundRelay {
    /// The address the relay listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://IP:PORT` (`wss://` with TLS): the URL clients connect to.
    pub fn url(&self) -> String {
        let scheme = if self.relay.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The database.
    pub fn db(&self) -> &RelayDb {
        &self.relay.db
    }

    /// A handle that stays valid while the relay serves.
    pub fn handle(&self) -> RelayHandle {
        RelayHandle {
            hub: self.hub.clone(),
        }
    }

    /// Serve until `shutdown` resolves, then shut down cleanly.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let BoundRelay {
            relay,
            listener,
            local_addr,
            hub,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let state = AppState {
            hub: hub.clone(),
            limits: ConnectionLimits::new(
                relay.config.max_connections,
                relay.config.max_connections_per_ip,
            ),
            shutdown: stop_rx.clone(),
            alive: alive_tx,
            local_addr,
            tls: relay.tls.is_some(),
        };
        let janitor = tokio::spawn(hub.clone().janitor(stop_rx.clone()));
        let keepalive = {
            let (hub, stop) = (hub.clone(), stop_rx.clone());
            let (ping, idle) = (relay.config.ping_interval, relay.config.idle_timeout);
            tokio::spawn(async move { hub.connections().keepalive(ping, idle, stop).await })
        };
        let throttle = Throttle::new(
            relay.config.max_auth_failures,
            relay.config.auth_cooldown,
            relay.config.max_connect_attempts,
        );
        let app = http::router(state).layer(axum::middleware::from_fn_with_state(
            throttle,
            throttle::guard,
        ));
        tracing::info!(addr = %local_addr, db = %relay.db.path().display(), "relay serving");
        let served = accept_loop(
            listener,
            relay.tls.clone().map(tokio_rustls::TlsAcceptor::from),
            app,
            relay.config.header_read_timeout,
            relay.config.shutdown_grace,
            stop_rx.clone(),
            shutdown,
        )
        .await;
        tracing::info!("shutting down: closing connections");
        // Stop every connection (also when serve failed), then wait for them.
        stop_tx.send_replace(true);
        hub.connections().stop_all();
        if tokio::time::timeout(relay.config.shutdown_grace, alive_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        janitor.abort();
        keepalive.abort();
        // Commit and answer what is queued, close the writer's connection,
        // then checkpoint.
        hub.writer().shutdown().await;
        if let Err(e) = relay.db.checkpoint() {
            tracing::warn!(error = %e, "checkpoint on shutdown failed");
        }
        tracing::info!("relay stopped");
        served?;
        Ok(())
    }
}

/// Accept connections until `shutdown` resolves; serve each with hyper's
/// HTTP/1 server (upgrades allowed), with a header read timeout so that a
/// client that sends half a request and stalls is dropped. On shutdown every
/// HTTP connection is asked to finish (bounded by `grace`); WebSockets are
/// closed through `stop` by their own tasks. With `tls`, each connection
/// first completes a TLS handshake, bounded by the header read timeout too.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    header_read_timeout: Duration,
    grace: Duration,
    stop: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually out of file descriptors: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let mut stop = stop.clone();
        let Some(acceptor) = tls.clone() else {
            tokio::spawn(serve_connection(
                TokioIo::new(stream),
                remote,
                app,
                builder,
                grace,
                stop,
            ));
            continue;
        };
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(header_read_timeout, acceptor.accept(stream));
            let stream = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake timed out");
                        return;
                    }
                },
                _ = stop.wait_for(|s| *s) => return,
            };
            serve_connection(TokioIo::new(stream), remote, app, builder, grace, stop).await;
        });
    }
}

/// Serve one (plain or TLS) connection until it ends or the relay stops.
async fn serve_connection<I>(
    io: I,
    remote: SocketAddr,
    app: Router,
    builder: hyper::server::conn::http1::Builder,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        app.clone().oneshot(request)
    });
    let connection = builder.serve_connection(io, service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "http connection ended with an error");
            }
        }
        _ = stop.wait_for(|s| *s).map(|_| ()) => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(grace, connection).await;
        }
    }
}
