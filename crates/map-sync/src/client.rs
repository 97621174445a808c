//! The CLI's sync client: one WebSocket connection to a relay, speaking the
//! automerge-repo protocol over `automerge::sync`.
//!
//! * [`connect`] / [`Connection::connect`] opens the connection, presenting
//!   `Authorization: Bearer TOKEN` at the HTTP upgrade, and does the
//!   `join` / `peer` handshake.
//! * [`Connection::sync`] brings a set of documents in step with the relay
//!   over that one connection and returns one [`DocReport`] per document.
//! * [`watch`] stays connected (reconnecting with exponential backoff),
//!   applies remote changes as they arrive and pushes local ones when told.
//!
//! The caller owns the documents and their sync states ([`SyncDoc`]) and is
//! called back with each document right after remote changes were applied,
//! so it can persist document and sync state before anything else happens.
//! Nothing received from the network is trusted: malformed frames and sync
//! messages end the session with a [`SyncError::Protocol`], never a panic.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use automerge::sync::{self, SyncDoc as _};
use automerge::{AutoCommit, ChangeHash};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{PersistError, SyncError};
use crate::message::{self, MAX_MESSAGE_BYTES, Message, PROTOCOL_VERSION, PeerMetadata};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Default time to wait for the relay to answer (connect, handshake, each
/// sync step).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a sync waits, once every remaining document looks settled
/// (the relay has answered and has nothing more for us, but lacks our
/// changes or has no data), before concluding so rather than waiting longer.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(3);

/// A fresh peer id for this process: `map-` and 16 random hex digits.
pub fn random_peer_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("map-{}", &id[..16])
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `ws://HOST:PORT/` or `wss://HOST:PORT/`.
    pub url: String,
    /// For `wss://`: a PEM file of extra CA certificates to trust besides
    /// the platform's roots (a relay with a private or self-signed CA).
    pub ca_file: Option<PathBuf>,
    /// Sent as `Authorization: Bearer TOKEN` at the upgrade.
    pub token: Option<String>,
    /// Our peer id in the handshake (see [`random_peer_id`]).
    pub peer_id: String,
    /// Our storage id, if the caller has a stable one (announced in
    /// `peerMetadata`; `isEphemeral` is true when this is `None`).
    pub storage_id: Option<String>,
    /// Limit for connecting, the handshake and each wait during a sync.
    pub timeout: Duration,
    /// See [`DEFAULT_SETTLE`].
    pub settle: Duration,
}

impl ConnectOptions {
    /// Options with a random peer id and the default timeouts.
    pub fn new(url: impl Into<String>, token: Option<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            ca_file: None,
            token,
            peer_id: random_peer_id(),
            storage_id: None,
            timeout: DEFAULT_TIMEOUT,
            settle: DEFAULT_SETTLE,
        }
    }
}

/// One document to sync: its automerge-repo id (bs58check string, as in
/// `map_model::DocumentId`'s `Display`), the document, and the sync state
/// with this relay (load with `sync::State::decode` of what you stored with
/// `State::encode`; use `State::new()` the first time). A document with no
/// changes at all (`AutoCommit::new()`) is *requested* from the relay.
#[derive(Debug)]
pub struct SyncDoc {
    pub id: String,
    pub doc: AutoCommit,
    pub state: sync::State,
}

impl SyncDoc {
    /// A document to sync with a fresh sync state.
    pub fn new(id: impl Into<String>, doc: AutoCommit) -> Self {
        SyncDoc {
            id: id.into(),
            doc,
            state: sync::State::new(),
        }
    }

    /// A document we do not have yet, to fetch from the relay.
    pub fn wanted(id: impl Into<String>) -> Self {
        SyncDoc::new(id, AutoCommit::new())
    }
}

/// Metadata of one change received from the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSummary {
    /// Change hash, hex.
    pub hash: String,
    /// Actor id, hex.
    pub actor: String,
    /// The author bytes as text (`Name <email>` for changes made by `map`),
    /// if the change's actor has one.
    pub author: Option<String>,
    /// The change message (`"task done: Security review"`).
    pub message: Option<String>,
    /// Milliseconds since the Unix epoch, as claimed by the writer.
    pub timestamp: i64,
}

/// How a document's sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocOutcome {
    /// Both sides hold each other's heads: the relay has all our changes
    /// and we have all of its.
    InSync,
    /// The relay does not have the document or will not share it with us.
    Unavailable,
    /// We received the relay's changes, but it did not take `local_changes`
    /// of ours (read-only access, typically).
    NotAccepted { local_changes: usize },
    /// The relay stopped answering about this document before it was in
    /// sync; changes received so far were applied and reported.
    TimedOut,
}

impl std::fmt::Display for DocOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocOutcome::InSync => write!(f, "in sync"),
            DocOutcome::Unavailable => write!(
                f,
                "the relay does not have this plan or you have no access to it"
            ),
            DocOutcome::NotAccepted { local_changes } => write!(
                f,
                "relay did not accept your {local_changes} local change{} (read-only access?)",
                if *local_changes == 1 { "" } else { "s" }
            ),
            DocOutcome::TimedOut => write!(f, "the relay stopped answering; try again"),
        }
    }
}

/// What happened to one document in [`Connection::sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocReport {
    pub id: String,
    /// Changes received from the relay, in application order.
    pub received: Vec<ChangeSummary>,
    pub outcome: DocOutcome,
}

/// An open, handshaken connection to a relay.
pub struct Connection {
    ws: Ws,
    opts: ConnectOptions,
    relay_peer_id: String,
    relay_metadata: Option<PeerMetadata>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.opts.url)
            .field("peer_id", &self.opts.peer_id)
            .field("relay_peer_id", &self.relay_peer_id)
            .finish_non_exhaustive()
    }
}

/// Connects with a default timeout; see [`Connection::connect`].
pub async fn connect(
    url: &str,
    token: Option<&str>,
    peer_id: &str,
) -> Result<Connection, SyncError> {
    let mut opts = ConnectOptions::new(url, token.map(str::to_owned));
    opts.peer_id = peer_id.to_owned();
    Connection::connect(opts).await
}

impl Connection {
    /// Opens the WebSocket (with `Authorization: Bearer TOKEN` when a token
    /// is given) and does the handshake: sends `join` with protocol version
    /// "1", expects `peer` selecting "1". Errors: [`SyncError::InvalidUrl`],
    /// [`SyncError::Unreachable`], [`SyncError::Unauthorized`] (HTTP 401/403),
    /// [`SyncError::HttpStatus`], [`SyncError::Relay`] (relay sent `error`),
    /// [`SyncError::Protocol`], [`SyncError::Timeout`].
    pub async fn connect(opts: ConnectOptions) -> Result<Connection, SyncError> {
        let url = opts.url.clone();
        let mut request =
            url.as_str()
                .into_client_request()
                .map_err(|e| SyncError::InvalidUrl {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
        if let Some(token) = &opts.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                SyncError::InvalidUrl {
                    url: url.clone(),
                    reason: "the token contains characters not allowed in an HTTP header".into(),
                }
            })?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connector = if crate::tls::is_tls_url(&url) {
            Some(tokio_tungstenite::Connector::Rustls(
                crate::tls::client_config(opts.ca_file.as_deref())?,
            ))
        } else {
            None
        };
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            connector,
        );
        let (ws, _response) = match tokio::time::timeout(opts.timeout, connecting).await {
            Err(_) => {
                return Err(SyncError::Unreachable {
                    url,
                    reason: format!("no answer within {} s", opts.timeout.as_secs()),
                });
            }
            Ok(Err(e)) => return Err(upgrade_error(&url, e)),
            Ok(Ok(pair)) => pair,
        };
        let mut conn = Connection {
            ws,
            opts,
            relay_peer_id: String::new(),
            relay_metadata: None,
        };
        conn.handshake().await?;
        Ok(conn)
    }

    async fn handshake(&mut self) -> Result<(), SyncError> {
        let join = Message::Join {
            sender_id: self.opts.peer_id.clone(),
            peer_metadata: Some(PeerMetadata {
                storage_id: self.opts.storage_id.clone(),
                is_ephemeral: self.opts.storage_id.is_none(),
            }),
            supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
        };
        self.send(&join).await?;
        let deadline = Instant::now() + self.opts.timeout;
        let reply = self.recv(deadline, "waiting for the handshake").await?;
        match reply {
            Some(Message::Peer {
                sender_id,
                peer_metadata,
                selected_protocol_version,
                ..
            }) => {
                if selected_protocol_version != PROTOCOL_VERSION {
                    return Err(SyncError::protocol(
                        &self.opts.url,
                        format!(
                            "relay selected protocol version {selected_protocol_version:?}, \
                             this map speaks {PROTOCOL_VERSION:?}"
                        ),
                    ));
                }
                self.relay_peer_id = sender_id;
                self.relay_metadata = peer_metadata;
                Ok(())
            }
            Some(Message::Error { message, .. }) => Err(SyncError::Relay {
                url: self.opts.url.clone(),
                message,
            }),
            Some(other) => Err(SyncError::protocol(
                &self.opts.url,
                format!("expected a `peer` message, got `{}`", other.type_name()),
            )),
            None => Err(SyncError::Timeout {
                url: self.opts.url.clone(),
                during: "waiting for the handshake",
                after: self.opts.timeout,
            }),
        }
    }

    /// The relay's peer id from the handshake.
    pub fn relay_peer_id(&self) -> &str {
        &self.relay_peer_id
    }

    /// The relay's storage id from the handshake, if it sent one.
    pub fn relay_storage_id(&self) -> Option<&str> {
        self.relay_metadata.as_ref()?.storage_id.as_deref()
    }

    /// Our peer id.
    pub fn peer_id(&self) -> &str {
        &self.opts.peer_id
    }

    /// The URL connected to.
    pub fn url(&self) -> &str {
        &self.opts.url
    }

    /// Syncs `docs` with the relay until, for every document, both sides
    /// hold each other's heads, the relay says it is unavailable, the relay
    /// evidently will not take our changes, or it stops answering.
    ///
    /// For a document with no changes (we do not have it) a `request` is
    /// sent, otherwise a `sync`. After remote changes are applied to a
    /// document, `on_changes(doc, new_changes)` is called so the caller can
    /// persist the document and its sync state; an error from it aborts the
    /// sync with [`SyncError::Persist`]. Store every `state` again after
    /// this returns (the sync state changes even when no changes arrive).
    ///
    /// Each sync state's per-session parts are reset first (as
    /// `State::decode(&state.encode())` does), so the same `SyncDoc` values
    /// can be synced again over a new connection.
    pub async fn sync<F>(
        &mut self,
        docs: &mut [SyncDoc],
        mut on_changes: F,
    ) -> Result<Vec<DocReport>, SyncError>
    where
        F: FnMut(&mut SyncDoc, &[ChangeSummary]) -> Result<(), PersistError>,
    {
        let mut session = Session::new(docs)?;
        for (sd, progress) in docs.iter_mut().zip(session.progress.iter_mut()) {
            self.start_doc(sd).await?;
            progress.status = classify(sd);
        }
        // Bound the whole sync as well as each wait, so a relay that keeps
        // talking without converging cannot hold us forever.
        let overall = Instant::now() + self.opts.timeout * 20;
        while session.progress.iter().any(|p| p.outcome.is_none()) {
            // Settled: the relay answered our last message and has nothing
            // more for us, yet the document is not in sync (the relay lacks
            // it, or lacks our changes). Then wait only briefly.
            let all_settled = session
                .progress
                .iter()
                .zip(docs.iter())
                .filter(|(p, _)| p.outcome.is_none())
                .all(|(p, d)| p.status != Status::Waiting && !d.state.in_flight);
            let wait = if all_settled {
                self.opts.settle
            } else {
                self.opts.timeout
            };
            let deadline = (Instant::now() + wait).min(overall);
            let msg = self.recv(deadline, "syncing").await?;
            let Some(msg) = msg else {
                // Nothing arrived in time: conclude every open document.
                for p in session.progress.iter_mut().filter(|p| p.outcome.is_none()) {
                    p.outcome = Some(match p.status {
                        Status::Empty => DocOutcome::Unavailable,
                        Status::Rejected(n) => DocOutcome::NotAccepted { local_changes: n },
                        Status::Waiting => DocOutcome::TimedOut,
                        Status::InSync => DocOutcome::InSync,
                    });
                }
                break;
            };
            let Some(i) = msg
                .document_id()
                .and_then(|id| session.index.get(id).copied())
            else {
                self.check_other(msg)?;
                continue;
            };
            if !matches!(
                msg,
                Message::Sync { .. } | Message::Request { .. } | Message::DocUnavailable { .. }
            ) {
                // Ephemeral / remote-heads messages: not used by the CLI.
                continue;
            }
            let (changes, unavailable) = self.handle_doc_message(&mut docs[i], msg).await?;
            let got_changes = !changes.is_empty();
            if got_changes {
                on_changes(&mut docs[i], &changes).map_err(SyncError::Persist)?;
                session.progress[i].received.extend(changes);
            }
            if session.progress[i].outcome.is_some() {
                // A late message about a finished document was applied above
                // so nothing is lost, but the document is not reopened.
                continue;
            }
            if unavailable {
                session.progress[i].outcome = Some(DocOutcome::Unavailable);
                continue;
            }
            let status = classify(&mut docs[i]);
            let p = &mut session.progress[i];
            let their_heads = docs[i].state.their_heads.clone();
            p.stale_rounds = if matches!(status, Status::Rejected(_))
                && !got_changes
                && their_heads == p.last_their_heads
            {
                p.stale_rounds + 1
            } else {
                0
            };
            p.last_their_heads = their_heads;
            p.status = status;
            if status == Status::InSync {
                p.outcome = Some(DocOutcome::InSync);
            } else if let Status::Rejected(n) = status
                && (docs[i].state.is_peer_read_only() || p.stale_rounds >= MAX_STALE_ROUNDS)
            {
                // The relay told us it is read-only for us, or keeps
                // answering without taking our changes: no need to wait.
                p.outcome = Some(DocOutcome::NotAccepted { local_changes: n });
            }
        }
        Ok(session.into_reports(docs))
    }

    /// Politely closes the connection (sends `leave`, then a close frame).
    pub async fn close(mut self) {
        let leave = Message::Leave {
            sender_id: self.opts.peer_id.clone(),
        };
        let _ = self.send(&leave).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }

    /// Sends the first message about a document (after resetting the
    /// session part of its sync state).
    async fn start_doc(&mut self, sd: &mut SyncDoc) -> Result<(), SyncError> {
        sd.state = reset_session(&sd.state);
        let request = sd.doc.get_heads().is_empty();
        if let Some(data) = generate(sd) {
            let msg = if request {
                Message::Request {
                    sender_id: self.opts.peer_id.clone(),
                    target_id: self.relay_peer_id.clone(),
                    document_id: sd.id.clone(),
                    data,
                }
            } else {
                self.sync_message(&sd.id, data)
            };
            self.send(&msg).await?;
        }
        Ok(())
    }

    /// Applies a `sync`/`request` about `sd` and sends our answer, if any.
    /// Returns the changes that arrived and whether the relay said the
    /// document is unavailable.
    async fn handle_doc_message(
        &mut self,
        sd: &mut SyncDoc,
        msg: Message,
    ) -> Result<(Vec<ChangeSummary>, bool), SyncError> {
        let data = match msg {
            Message::Sync { data, .. } | Message::Request { data, .. } => data,
            Message::DocUnavailable { .. } => return Ok((Vec::new(), true)),
            // Ephemeral and remote-heads messages: not used by the CLI.
            _ => return Ok((Vec::new(), false)),
        };
        let changes = apply_sync_data(&self.opts.url, sd, &data)?;
        if let Some(data) = generate(sd) {
            let msg = self.sync_message(&sd.id, data);
            self.send(&msg).await?;
        }
        Ok((changes, false))
    }

    /// Handles a message not about one of our documents.
    fn check_other(&self, msg: Message) -> Result<(), SyncError> {
        match msg {
            Message::Error { message, .. } => Err(SyncError::Relay {
                url: self.opts.url.clone(),
                message,
            }),
            Message::Join { .. } | Message::Peer { .. } => Err(SyncError::protocol(
                &self.opts.url,
                format!("unexpected `{}` after the handshake", msg.type_name()),
            )),
            Message::Leave { .. } => Err(SyncError::Disconnected {
                url: self.opts.url.clone(),
                reason: "the relay is leaving".into(),
            }),
            other => {
                tracing::debug!(r#type = other.type_name(), "ignoring message");
                Ok(())
            }
        }
    }

    fn sync_message(&self, document_id: &str, data: Vec<u8>) -> Message {
        Message::Sync {
            sender_id: self.opts.peer_id.clone(),
            target_id: self.relay_peer_id.clone(),
            document_id: document_id.to_owned(),
            data,
        }
    }

    async fn send(&mut self, msg: &Message) -> Result<(), SyncError> {
        let frame = WsMessage::Binary(msg.encode().into());
        match tokio::time::timeout(self.opts.timeout, self.ws.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SyncError::Disconnected {
                url: self.opts.url.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(SyncError::Timeout {
                url: self.opts.url.clone(),
                during: "sending",
                after: self.opts.timeout,
            }),
        }
    }

    /// Receives the next protocol message, or `None` at `deadline`.
    async fn recv(
        &mut self,
        deadline: Instant,
        during: &'static str,
    ) -> Result<Option<Message>, SyncError> {
        loop {
            let next = tokio::time::timeout_at(deadline.into(), self.ws.next()).await;
            let frame = match next {
                Err(_) => return Ok(None),
                Ok(None) => {
                    return Err(SyncError::Disconnected {
                        url: self.opts.url.clone(),
                        reason: format!("the relay closed the connection while {during}"),
                    });
                }
                Ok(Some(Err(e))) => {
                    return Err(SyncError::Disconnected {
                        url: self.opts.url.clone(),
                        reason: e.to_string(),
                    });
                }
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                WsMessage::Binary(bytes) => {
                    return Message::decode(&bytes)
                        .map(Some)
                        .map_err(|e| SyncError::from((self.opts.url.as_str(), e)));
                }
                WsMessage::Close(frame) => {
                    let reason = match frame {
                        Some(f) if !f.reason.is_empty() => {
                            format!("the relay closed the connection: {}", f.reason)
                        }
                        _ => format!("the relay closed the connection while {during}"),
                    };
                    return Err(SyncError::Disconnected {
                        url: self.opts.url.clone(),
                        reason,
                    });
                }
                WsMessage::Text(_) => {
                    return Err(SyncError::protocol(
                        &self.opts.url,
                        "received a text frame; the protocol uses binary frames only",
                    ));
                }
                // Pings are answered by tungstenite itself.
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
            }
        }
    }
}

/// Where a document stands during a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Not settled: we wait for the relay.
    Waiting,
    /// Both sides hold each other's heads.
    InSync,
    /// We have no data and the relay sent none (it answered with empty heads).
    Empty,
    /// We hold everything the relay has, but it lacks this many of our
    /// changes.
    Rejected(usize),
}

struct Progress {
    status: Status,
    outcome: Option<DocOutcome>,
    received: Vec<ChangeSummary>,
    /// The relay's heads as of its previous message about the document.
    last_their_heads: Option<Vec<ChangeHash>>,
    /// Consecutive messages that changed nothing while our changes were
    /// still missing at the relay.
    stale_rounds: u32,
}

/// After this many consecutive messages about a document that bring no
/// change on either side while the relay lacks our changes, the relay is
/// taken not to accept them (a relay that answers but drops our changes).
const MAX_STALE_ROUNDS: u32 = 3;

/// Book-keeping for one [`Connection::sync`] call.
struct Session {
    index: HashMap<String, usize>,
    progress: Vec<Progress>,
}

impl Session {
    fn new(docs: &[SyncDoc]) -> Result<Self, SyncError> {
        let mut index = HashMap::new();
        for (i, d) in docs.iter().enumerate() {
            if !message::is_valid_document_id(&d.id) || index.insert(d.id.clone(), i).is_some() {
                return Err(SyncError::InvalidDocumentId(d.id.clone()));
            }
        }
        let progress = docs
            .iter()
            .map(|_| Progress {
                status: Status::Waiting,
                outcome: None,
                received: Vec::new(),
                last_their_heads: None,
                stale_rounds: 0,
            })
            .collect();
        Ok(Session { index, progress })
    }

    fn into_reports(self, docs: &[SyncDoc]) -> Vec<DocReport> {
        docs.iter()
            .zip(self.progress)
            .map(|(d, p)| DocReport {
                id: d.id.clone(),
                received: p.received,
                outcome: p.outcome.unwrap_or(DocOutcome::TimedOut),
            })
            .collect()
    }
}

/// Compares our heads with the heads the relay last reported.
fn classify(sd: &mut SyncDoc) -> Status {
    let ours: BTreeSet<ChangeHash> = sd.doc.get_heads().into_iter().collect();
    let Some(theirs) = sd.state.their_heads.clone() else {
        return Status::Waiting;
    };
    let theirs_set: BTreeSet<ChangeHash> = theirs.iter().copied().collect();
    if theirs_set == ours {
        return if ours.is_empty() {
            Status::Empty
        } else {
            Status::InSync
        };
    }
    // Do we hold everything the relay has? Then the difference is ours
    // alone: changes the relay has not (yet) taken.
    let all_known = theirs
        .iter()
        .all(|h| sd.doc.get_change_meta_by_hash(h).is_some());
    if !all_known {
        return Status::Waiting;
    }
    let missing = sd.doc.get_changes_meta(&theirs).len();
    if missing == 0 {
        Status::InSync
    } else {
        Status::Rejected(missing)
    }
}

/// Our next sync message for `sd`, encoded, if there is one to send.
fn generate(sd: &mut SyncDoc) -> Option<Vec<u8>> {
    let SyncDoc { doc, state, .. } = sd;
    doc.sync()
        .generate_sync_message(state)
        .map(sync::Message::encode)
}

/// The persistent part of a sync state, with the per-session parts fresh.
fn reset_session(state: &sync::State) -> sync::State {
    let mut fresh = sync::State::decode(&state.encode()).unwrap_or_default();
    fresh.read_only = state.read_only;
    fresh
}

/// Decodes and applies one automerge sync message; returns the changes it
/// brought.
fn apply_sync_data(
    url: &str,
    sd: &mut SyncDoc,
    data: &[u8],
) -> Result<Vec<ChangeSummary>, SyncError> {
    let msg = sync::Message::decode(data).map_err(|e| {
        SyncError::protocol(url, format!("bad sync message for document {}: {e}", sd.id))
    })?;
    // A hostile bloom filter would make the next `generate` panic.
    crate::message::check_sync_payload(&msg).map_err(|e| {
        SyncError::protocol(url, format!("bad sync message for document {}: {e}", sd.id))
    })?;
    let before = sd.doc.get_heads();
    sd.doc
        .sync()
        .receive_sync_message(&mut sd.state, msg)
        .map_err(|e| {
            SyncError::protocol(
                url,
                format!("could not apply sync message for document {}: {e}", sd.id),
            )
        })?;
    if sd.doc.get_heads() == before {
        return Ok(Vec::new());
    }
    Ok(changes_since(&mut sd.doc, &before))
}

/// Metadata of the changes in `doc` that are not ancestors of `heads`.
pub fn changes_since(doc: &mut AutoCommit, heads: &[ChangeHash]) -> Vec<ChangeSummary> {
    doc.get_changes_meta(heads)
        .into_iter()
        .map(|m| ChangeSummary {
            hash: m.hash.to_string(),
            actor: m.actor.to_hex_string(),
            author: m
                .author
                .as_ref()
                .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned()),
            message: m.message.as_deref().map(str::to_owned),
            timestamp: m.timestamp,
        })
        .collect()
}

/// Maps a failed WebSocket upgrade to an error a user can act on.
fn upgrade_error(url: &str, e: tungstenite::Error) -> SyncError {
    use tungstenite::error::UrlError;
    match e {
        tungstenite::Error::Http(resp) => match resp.status().as_u16() {
            401 | 403 => SyncError::Unauthorized {
                url: url.to_owned(),
            },
            status => SyncError::HttpStatus {
                url: url.to_owned(),
                status,
            },
        },
        tungstenite::Error::Url(UrlError::TlsFeatureNotEnabled) => SyncError::InvalidUrl {
            url: url.to_owned(),
            reason: "wss:// is not supported by this build; use ws://".into(),
        },
        tungstenite::Error::Tls(tungstenite::error::TlsError::Rustls(e)) => tls_error(url, &e),
        tungstenite::Error::Io(io) if crate::tls::rustls_error(&io).is_some() => {
            tls_error(url, crate::tls::rustls_error(&io).expect("checked"))
        }
        tungstenite::Error::Url(UrlError::UnableToConnect(reason)) => SyncError::Unreachable {
            url: url.to_owned(),
            reason,
        },
        tungstenite::Error::Url(other) => SyncError::InvalidUrl {
            url: url.to_owned(),
            reason: other.to_string(),
        },
        tungstenite::Error::Io(io) => SyncError::Unreachable {
            url: url.to_owned(),
            reason: io.to_string(),
        },
        other => SyncError::Unreachable {
            url: url.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// A TLS failure: certificate problems get their own error (with what to
/// do), anything else is a failed connection.
fn tls_error(url: &str, e: &rustls::Error) -> SyncError {
    match e {
        rustls::Error::InvalidCertificate(why) => SyncError::Certificate {
            url: url.to_owned(),
            reason: why.to_string(),
        },
        other => SyncError::Unreachable {
            url: url.to_owned(),
            reason: format!("TLS failed: {other}"),
        },
    }
}

// ---------------------------------------------------------------------------
// Watch mode
// ---------------------------------------------------------------------------

/// Settings for [`watch`].
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub connect: ConnectOptions,
    /// First reconnect delay; doubled after each failure up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A ping is sent after this much silence; the connection is considered
    /// dead after three times as much.
    pub keepalive: Duration,
}

impl WatchOptions {
    pub fn new(connect: ConnectOptions) -> Self {
        WatchOptions {
            connect,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            keepalive: Duration::from_secs(20),
        }
    }
}

/// What the caller tells a running [`watch`].
#[derive(Debug)]
pub enum WatchCommand {
    /// Local changes were made to document `id`: merge these bytes (a saved
    /// document or incremental save; changes already present are ignored)
    /// into the watched copy and push them.
    Merge { id: String, bytes: Vec<u8> },
    /// Start watching another document.
    Add(Box<SyncDoc>),
    /// Disconnect and return.
    Stop,
}

/// What [`watch`] reports to its callback.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// Connected and handshaken.
    Connected { relay_peer_id: &'a str },
    /// Remote changes were applied to `doc`: persist it (and its state).
    Changes {
        doc: &'a mut SyncDoc,
        changes: Vec<ChangeSummary>,
    },
    /// The relay now holds exactly our heads for this document (reported
    /// each time that becomes true after a change on either side).
    InSync { id: &'a str },
    /// The relay does not have this document or will not share it.
    Unavailable { id: &'a str },
    /// The relay evidently does not take our local changes to this document.
    NotAccepted { id: &'a str, local_changes: usize },
    /// The connection failed or broke; retrying after `retry_in`.
    Disconnected {
        error: &'a SyncError,
        retry_in: Duration,
    },
}

/// Stays connected to the relay and keeps `docs` in sync both ways until
/// [`WatchCommand::Stop`] arrives or `commands` closes (then `Ok`), or a
/// permanent error happens (token refused, bad URL, callback failure).
/// Transient failures are reported as [`WatchEvent::Disconnected`] and
/// retried with exponential backoff. Commands that arrive while
/// disconnected are applied locally and pushed after reconnecting.
pub async fn watch<F>(
    opts: &WatchOptions,
    docs: &mut Vec<SyncDoc>,
    commands: &mut mpsc::Receiver<WatchCommand>,
    mut on_event: F,
) -> Result<(), SyncError>
where
    F: FnMut(WatchEvent<'_>) -> Result<(), PersistError>,
{
    for d in docs.iter() {
        if !message::is_valid_document_id(&d.id) {
            return Err(SyncError::InvalidDocumentId(d.id.clone()));
        }
    }
    let mut backoff = opts.backoff_initial;
    loop {
        let error = match Connection::connect(opts.connect.clone()).await {
            Ok(mut conn) => {
                backoff = opts.backoff_initial;
                on_event(WatchEvent::Connected {
                    relay_peer_id: conn.relay_peer_id(),
                })
                .map_err(SyncError::Persist)?;
                match conn
                    .watch_session(opts, docs, commands, &mut on_event)
                    .await
                {
                    Ok(()) => {
                        conn.close().await;
                        return Ok(());
                    }
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        if error.is_permanent() {
            return Err(error);
        }
        on_event(WatchEvent::Disconnected {
            error: &error,
            retry_in: backoff,
        })
        .map_err(SyncError::Persist)?;
        // Wait out the backoff, still taking commands.
        let until = tokio::time::Instant::now() + backoff;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                cmd = commands.recv() => match cmd {
                    None | Some(WatchCommand::Stop) => return Ok(()),
                    Some(cmd) => {
                        apply_local_command(docs, cmd)?;
                    }
                },
            }
        }
        backoff = (backoff * 2).min(opts.backoff_max);
    }
}

/// Applies a command to the local documents; returns the index of the
/// document it touched.
fn apply_local_command(docs: &mut Vec<SyncDoc>, cmd: WatchCommand) -> Result<usize, SyncError> {
    match cmd {
        WatchCommand::Merge { id, bytes } => {
            let i = docs
                .iter()
                .position(|d| d.id == id)
                .ok_or_else(|| SyncError::InvalidDocumentId(id.clone()))?;
            docs[i]
                .doc
                .load_incremental(&bytes)
                .map_err(|e| SyncError::LocalDocument {
                    id,
                    reason: e.to_string(),
                })?;
            Ok(i)
        }
        WatchCommand::Add(sd) => {
            if !message::is_valid_document_id(&sd.id) {
                return Err(SyncError::InvalidDocumentId(sd.id));
            }
            if let Some(i) = docs.iter().position(|d| d.id == sd.id) {
                return Ok(i);
            }
            docs.push(*sd);
            Ok(docs.len() - 1)
        }
        WatchCommand::Stop => Ok(usize::MAX),
    }
}

impl Connection {
    /// One connected period of [`watch`]; `Ok` means stop was requested.
    async fn watch_session<F>(
        &mut self,
        opts: &WatchOptions,
        docs: &mut Vec<SyncDoc>,
        commands: &mut mpsc::Receiver<WatchCommand>,
        on_event: &mut F,
    ) -> Result<(), SyncError>
    where
        F: FnMut(WatchEvent<'_>) -> Result<(), PersistError>,
    {
        let mut last_status: Vec<Status> = Vec::new();
        for sd in docs.iter_mut() {
            self.start_doc(sd).await?;
            last_status.push(Status::Waiting);
        }
        let mut last_heard = Instant::now();
        let mut pinged = false;
        loop {
            let wake = last_heard + opts.keepalive * if pinged { 3 } else { 1 };
            tokio::select! {
                incoming = self.recv(wake, "watching") => {
                    let Some(msg) = incoming? else {
                        if pinged {
                            return Err(SyncError::Disconnected {
                                url: self.opts.url.clone(),
                                reason: "the relay stopped answering".into(),
                            });
                        }
                        self.ws.send(WsMessage::Ping(Vec::new().into())).await.map_err(|e| {
                            SyncError::Disconnected { url: self.opts.url.clone(), reason: e.to_string() }
                        })?;
                        pinged = true;
                        continue;
                    };
                    last_heard = Instant::now();
                    pinged = false;
                    let Some(i) = msg.document_id().and_then(|id| docs.iter().position(|d| d.id == id)) else {
                        self.check_other(msg)?;
                        continue;
                    };
                    let (changes, unavailable) = self.handle_doc_message(&mut docs[i], msg).await?;
                    if !changes.is_empty() {
                        on_event(WatchEvent::Changes { doc: &mut docs[i], changes })
                            .map_err(SyncError::Persist)?;
                    }
                    if unavailable {
                        on_event(WatchEvent::Unavailable { id: &docs[i].id }).map_err(SyncError::Persist)?;
                        continue;
                    }
                    self.report_status(docs, i, &mut last_status, on_event)?;
                }
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    if matches!(cmd, WatchCommand::Stop) {
                        return Ok(());
                    }
                    let added = matches!(cmd, WatchCommand::Add(_));
                    let i = apply_local_command(docs, cmd)?;
                    if added && i == last_status.len() {
                        last_status.push(Status::Waiting);
                        self.start_doc(&mut docs[i]).await?;
                    } else {
                        // Remember where we stand so the relay's ack is
                        // reported as a new `InSync`.
                        last_status[i] = classify(&mut docs[i]);
                        if let Some(data) = generate(&mut docs[i]) {
                            let msg = self.sync_message(&docs[i].id, data);
                            self.send(&msg).await?;
                        }
                    }
                }
            }
        }
    }

    fn report_status<F>(
        &self,
        docs: &mut [SyncDoc],
        i: usize,
        last: &mut [Status],
        on_event: &mut F,
    ) -> Result<(), SyncError>
    where
        F: FnMut(WatchEvent<'_>) -> Result<(), PersistError>,
    {
        let status = classify(&mut docs[i]);
        if status == last[i] {
            return Ok(());
        }
        last[i] = status;
        let id = docs[i].id.as_str();
        let event = match status {
            Status::InSync => WatchEvent::InSync { id },
            Status::Rejected(n) if docs[i].state.is_peer_read_only() => WatchEvent::NotAccepted {
                id,
                local_changes: n,
            },
            _ => return Ok(()),
        };
        on_event(event).map_err(SyncError::Persist)
    }
}
