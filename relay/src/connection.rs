//! One WebSocket connection, served by one task: the handshake (`join` ->
//! `peer`), reading frames and handing them to the [`Hub`], sending what
//! the hub queued in the connection's [`Outbox`], and the pings and closes
//! that the keepalive (`keepalive.rs`) and shutdown ask for there.
//!
//! Error policy, per connection only (the relay keeps serving everyone else):
//! - malformed CBOR, a message before `join`, a second `join`, an invalid
//!   automerge sync payload, a text frame: an `error` message, then close;
//! - an unsupported protocol version or a peer id in use by another user:
//!   an `error` message, then close;
//! - messages whose `senderId` is not the connection's peer id are dropped;
//! - `doc-unavailable`, `remote-subscription-change`, `remote-heads-changed`
//!   and message types this relay does not know are ignored (automerge-repo
//!   peers tolerate unknown types too, which keeps newer clients working);
//! - no frame (not even a pong) for `idle_timeout`: close;
//! - more queued for the peer than `outgoing_queue` frames (a peer that does
//!   not read): close at once ("too slow").
//!
//! The connection body runs under `catch_unwind` so that even a panic in it
//! is contained; the cleanup (unsubscribing plans, freeing the peer id) runs
//! regardless.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use futures_util::{FutureExt, SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use map_sync::{Message, PROTOCOL_VERSION, PeerMetadata};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::db::AuthUser;
use crate::hub::{Hub, JoinRefused, Peer};
use crate::outbox::{Halt, Outbox, Outgoing};
use crate::upgrade::Socket;

/// Close codes (RFC 6455).
mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const POLICY: u16 = 1008;
}

/// Most frames handled as one burst.
const MAX_BURST: usize = 32;

/// Longest peer id accepted in `join`.
const MAX_PEER_ID_LEN: usize = 256;

/// Serve a connection the relay accepted, in a task of its own: once hyper
/// has switched protocols, serve the WebSocket until it closes, then forget
/// the connection; `guard` (the connection's permit) is dropped last.
pub(crate) fn spawn<G: Send + 'static>(
    on_upgrade: OnUpgrade,
    hub: Arc<Hub>,
    user: AuthUser,
    outbox: Outbox,
    guard: G,
) {
    let reader = Reader {
        hub,
        user,
        outbox,
        peer: None,
        docs: None,
    };
    tokio::spawn(serve(on_upgrade, reader, guard));
}

/// Not an `async fn`, and `run` borrows the socket and the reader: an
/// `async fn` future keeps its parameters apart from its locals, so every
/// `mut` parameter and every value handed down to an inner `async fn` is
/// stored twice, and the socket alone is 328 bytes. This future is most of
/// what an idle connection costs (see docs/performance.md, "Smaller
/// connection futures" and "One keepalive for all connections").
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn serve<G: Send + 'static>(
    on_upgrade: OnUpgrade,
    mut reader: Reader,
    guard: G,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    async move {
        let conn_id = reader.outbox.conn_id;
        let max_message_size = reader.hub.config().max_message_size;
        // The handshake's future boxed (it is over in a moment), and the
        // socket used in place: `if let Some(socket) = ...await` would keep
        // the 328-byte socket twice in this future.
        let mut socket = Box::pin(crate::upgrade::socket(on_upgrade, max_message_size)).await;
        if let Some(socket) = socket.as_mut() {
            // Run the connection in this task (one task fewer per
            // connection than spawning it), with a panic in it contained
            // all the same.
            let body = std::panic::AssertUnwindSafe(run(socket, &mut reader)).catch_unwind();
            if body.await.is_err() {
                tracing::error!(
                    conn = conn_id,
                    "connection task panicked; connection dropped"
                );
            }
        }
        drop(socket);
        // The reader is whole even after a panic in `run`: what it holds
        // is only ever replaced whole.
        let peer_id = reader.peer.take().map(|peer| peer.peer_id);
        let docs: Vec<String> = reader
            .docs
            .take()
            .map_or_else(Vec::new, |d| d.into_iter().collect());
        Box::pin(reader.hub.disconnect(conn_id, peer_id.as_deref(), &docs)).await;
        tracing::info!(conn = conn_id, "connection closed");
        drop(guard);
    }
}

/// How to go on after a frame.
enum Flow {
    Continue,
    /// Close, with an `error` message if the text is set.
    Close(Option<String>, u16),
}

struct Reader {
    hub: Arc<Hub>,
    user: AuthUser,
    outbox: Outbox,
    peer: Option<Peer>,
    /// The plans this connection has open (to unsubscribe when it ends);
    /// boxed and made on first use, so an idle connection carries 8 bytes
    /// (an empty set inline is 48, in every connection's future).
    #[allow(clippy::box_collection)] // on purpose: see above
    docs: Option<Box<HashSet<String>>>,
}

/// How the connection's loop ended.
enum End {
    /// Close after `first` and what is queued, with an `error` message if
    /// `reason` is set.
    Close {
        reason: Option<String>,
        code: u16,
        first: VecDeque<Outgoing>,
    },
    /// The outgoing queue overflowed, or the peer read nothing while a send
    /// waited: close at once.
    Killed,
    /// Nothing more to send: the socket failed, the peer went away, or a
    /// queued close request was sent.
    Done,
}

/// Why a guarded send stopped early.
enum Stop {
    /// The outgoing queue overflowed, or the peer read nothing for
    /// `idle_timeout` while a send waited.
    Killed,
    Shutdown,
    Failed,
}

impl From<Stop> for End {
    fn from(stop: Stop) -> End {
        match stop {
            Stop::Killed => End::Killed,
            Stop::Shutdown => End::Close {
                reason: None,
                code: code::GOING_AWAY,
                first: VecDeque::new(),
            },
            Stop::Failed => End::Done,
        }
    }
}

/// The connection in one task: it reads frames, and sends what the hub
/// queued in its [`Outbox`] and the pings the keepalive asks for. One task
/// and no split socket: an idle connection holds only its socket, its
/// outbox and this future (a second task for writing, the lock of a split
/// socket and a channel cost 3 KiB per connection, measured with heaptrack).
async fn run(socket: &mut Socket, reader: &mut Reader) {
    let conn_id = reader.outbox.conn_id;
    let stall = reader.hub.config().idle_timeout;
    let end = loop {
        tokio::select! {
            () = reader.outbox.ready() => {
                let drained = reader.outbox.drain();
                if drained.killed {
                    break End::Killed;
                }
                if drained.stopping || drained.expired {
                    if !drained.stopping {
                        tracing::info!(conn = conn_id, "idle timeout: no frame or pong");
                    }
                    // What was queued still goes out first, in the goodbye.
                    break End::Close { reason: None, code: code::GOING_AWAY, first: drained.items };
                }
                if !drained.items.is_empty() {
                    // Boxed, as are the ping and the goodbye below: an
                    // idle connection should not carry the space of its
                    // sends.
                    let sent = Box::pin(guarded(
                        send_queued(socket, drained.items),
                        &reader.outbox,
                        stall,
                    ))
                    .await;
                    match sent {
                        Ok(Sent::More) => {}
                        Ok(Sent::Closed) => break End::Done,
                        Err(stop) => break stop.into(),
                    }
                }
                if drained.ping_due {
                    let ping = socket.send(WsMessage::Ping(Default::default()));
                    if let Err(stop) = Box::pin(guarded(ping, &reader.outbox, stall)).await {
                        break stop.into();
                    }
                }
            }
            frame = socket.next() => {
                let Some(first) = frame else { break End::Done };
                reader.outbox.heard();
                // Frames that arrived together are handled together: a
                // burst of sync messages for one plan is stored in one
                // write and answered once.
                let mut frames = vec![first];
                let mut ended = false;
                while frames.len() < MAX_BURST {
                    match socket.next().now_or_never() {
                        Some(Some(frame)) => frames.push(frame),
                        Some(None) => {
                            ended = true;
                            break;
                        }
                        None => break,
                    }
                }
                // Boxed: handling frames reaches deep into the hub, and an
                // idle connection should not carry that future's space
                // (measured: several KiB per connection).
                match Box::pin(reader.frames(frames)).await {
                    Flow::Close(reason, code) => {
                        break End::Close { reason, code, first: VecDeque::new() }
                    }
                    Flow::Continue if ended => break End::Done,
                    Flow::Continue => {}
                }
            }
        }
    };
    // Say goodbye, but not forever: a peer that never reads would leave the
    // task blocked in a send, holding the socket.
    let goodbye = async {
        match end {
            End::Close {
                reason,
                code,
                first,
            } => {
                if let Some(reason) = &reason {
                    tracing::info!(conn = conn_id, code, reason = %reason, "closing connection");
                }
                let error = reason.map(|message| Message::Error {
                    message,
                    sender_id: Some(reader.hub.relay_peer_id().to_owned()),
                    target_id: reader.peer.as_ref().map(|p| p.peer_id.clone()),
                });
                // What the hub queued goes first, then the error and close.
                reader.outbox.close(error.as_ref(), code);
                let drained = reader.outbox.drain();
                if drained.killed {
                    let _ = socket.send(close_frame(code::POLICY, "too slow")).await;
                } else {
                    let mut items = first;
                    items.extend(drained.items);
                    let _ = send_queued(socket, items).await;
                }
            }
            End::Killed => {
                let _ = socket.send(close_frame(code::POLICY, "too slow")).await;
            }
            End::Done => {}
        }
        let _ = socket.close(None).await;
    };
    if Box::pin(tokio::time::timeout(
        std::time::Duration::from_secs(2),
        goodbye,
    ))
    .await
    .is_err()
    {
        tracing::info!(conn = conn_id, "peer does not read: dropping the socket");
    }
}

/// Whether the connection goes on after sending what was queued.
enum Sent {
    More,
    /// A close request was sent: the connection is over.
    Closed,
}

/// Send queued frames (one flush for all of them); stop after a close
/// request.
async fn send_queued(socket: &mut Socket, items: VecDeque<Outgoing>) -> Result<Sent, WsError> {
    for item in items {
        match item {
            Outgoing::Frame(bytes) => socket.feed(WsMessage::Binary(bytes.into())).await?,
            Outgoing::Close { error, code } => {
                if let Some(error) = error {
                    socket.feed(WsMessage::Binary(error.into())).await?;
                }
                socket.send(close_frame(code, "")).await?;
                return Ok(Sent::Closed);
            }
        }
    }
    socket.flush().await?;
    Ok(Sent::More)
}

/// Run a send unless the connection is killed or the relay shuts down
/// first, or the peer reads nothing for `stall`. The connection does not
/// read while it sends, so a peer that neither reads nor lets the queue
/// overflow would otherwise hold its connection forever. A send that can go
/// at once goes, even then.
async fn guarded<T>(
    send: impl std::future::Future<Output = Result<T, WsError>>,
    outbox: &Outbox,
    stall: std::time::Duration,
) -> Result<T, Stop> {
    tokio::select! {
        biased;
        sent = send => sent.map_err(|_| Stop::Failed),
        halt = outbox.halted() => Err(match halt {
            Halt::Killed => Stop::Killed,
            Halt::Stopping => Stop::Shutdown,
        }),
        () = tokio::time::sleep(stall) => {
            tracing::info!(conn = outbox.conn_id, "peer reads nothing: closing connection");
            Err(Stop::Killed)
        }
    }
}

/// What one frame asks of the reader.
enum Step {
    /// A sync message (`request` or `sync`) from the joined peer.
    Sync { document_id: String, data: Vec<u8> },
    /// Any other message.
    Other(Message),
    /// Nothing to hand on: go on or close.
    Flow(Flow),
}

/// Consecutive sync payloads for one plan.
type Burst = Option<(String, Vec<Vec<u8>>)>;

impl Reader {
    /// Handle frames that arrived together, in order. Consecutive sync
    /// messages for the same plan go to the hub as one burst.
    async fn frames(&mut self, frames: Vec<Result<WsMessage, WsError>>) -> Flow {
        let mut burst: Burst = None;
        for frame in frames {
            let flow = match self.step(frame) {
                Step::Sync { document_id, data } => {
                    match &mut burst {
                        Some((doc, payloads)) if *doc == document_id => payloads.push(data),
                        _ => {
                            let flow = self.sync(burst.take()).await;
                            if let Flow::Close(..) = flow {
                                return flow;
                            }
                            burst = Some((document_id, vec![data]));
                        }
                    }
                    continue;
                }
                Step::Other(message) => match self.sync(burst.take()).await {
                    Flow::Continue => self.message(message).await,
                    close => close,
                },
                Step::Flow(flow) => match self.sync(burst.take()).await {
                    Flow::Continue => flow,
                    close => close,
                },
            };
            if let Flow::Close(..) = flow {
                return flow;
            }
        }
        self.sync(burst).await
    }

    fn step(&self, frame: Result<WsMessage, WsError>) -> Step {
        match frame {
            Ok(WsMessage::Binary(bytes)) => match Message::decode(&bytes) {
                Ok(
                    Message::Request {
                        document_id,
                        data,
                        sender_id,
                        ..
                    }
                    | Message::Sync {
                        document_id,
                        data,
                        sender_id,
                        ..
                    },
                ) if self.peer.as_ref().is_some_and(|p| p.peer_id == sender_id) => {
                    Step::Sync { document_id, data }
                }
                Ok(message) => Step::Other(message),
                Err(e) => Step::Flow(Flow::Close(
                    Some(format!("malformed message: {e}")),
                    code::PROTOCOL,
                )),
            },
            Ok(WsMessage::Text(_)) => Step::Flow(Flow::Close(
                Some("text frames are not part of the automerge-repo protocol".into()),
                code::UNSUPPORTED_DATA,
            )),
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)) => {
                Step::Flow(Flow::Continue)
            }
            Ok(WsMessage::Close(_)) => Step::Flow(Flow::Close(None, code::NORMAL)),
            Err(e) => {
                tracing::info!(conn = self.outbox.conn_id, error = %e, "websocket error");
                Step::Flow(Flow::Close(
                    Some(format!("websocket error: {e}")),
                    code::PROTOCOL,
                ))
            }
        }
    }

    /// Hand a burst of sync messages for one plan to the hub.
    async fn sync(&mut self, burst: Burst) -> Flow {
        let (Some((document_id, payloads)), Some(peer)) = (burst, self.peer.as_ref()) else {
            return Flow::Continue;
        };
        match self.hub.on_sync(peer, &document_id, &payloads).await {
            Ok(open) => {
                if open {
                    self.docs.get_or_insert_default().insert(document_id);
                } else if let Some(docs) = &mut self.docs {
                    docs.remove(&document_id);
                }
                Flow::Continue
            }
            Err(reason) => Flow::Close(Some(reason), code::PROTOCOL),
        }
    }

    async fn message(&mut self, message: Message) -> Flow {
        let Some(peer) = self.peer.clone() else {
            return self.join(message);
        };
        // A second join is an error whatever peer id it claims.
        if let Message::Join { .. } = message {
            return Flow::Close(Some("already joined".into()), code::PROTOCOL);
        }
        if message.sender_id().is_some_and(|s| s != peer.peer_id) {
            tracing::debug!(
                conn = peer.outbox.conn_id,
                r#type = message.type_name(),
                "dropped a message with a foreign senderId"
            );
            return Flow::Continue;
        }
        match message {
            Message::Request {
                document_id, data, ..
            }
            | Message::Sync {
                document_id, data, ..
            } => self.sync(Some((document_id, vec![data]))).await,
            message @ Message::Ephemeral { .. } => {
                self.hub.on_ephemeral(&peer, message).await;
                Flow::Continue
            }
            Message::Join { .. } => Flow::Close(Some("already joined".into()), code::PROTOCOL),
            Message::Peer { .. } => Flow::Close(
                Some("unexpected peer message: the relay is the server".into()),
                code::PROTOCOL,
            ),
            Message::Leave { .. } => Flow::Close(None, code::NORMAL),
            Message::Error { message, .. } => {
                tracing::info!(conn = peer.outbox.conn_id, error = %message, "peer reported an error");
                Flow::Close(None, code::NORMAL)
            }
            Message::DocUnavailable { .. }
            | Message::RemoteSubscriptionChange { .. }
            | Message::RemoteHeadsChanged { .. } => Flow::Continue,
            Message::Unknown { type_name } => {
                tracing::debug!(conn = peer.outbox.conn_id, r#type = %type_name, "ignored unknown message type");
                Flow::Continue
            }
        }
    }

    fn join(&mut self, message: Message) -> Flow {
        let Message::Join {
            sender_id,
            supported_protocol_versions,
            ..
        } = message
        else {
            return Flow::Close(
                Some(format!(
                    "expected a join message first, got {}",
                    message.type_name()
                )),
                code::PROTOCOL,
            );
        };
        if !supported_protocol_versions
            .iter()
            .any(|v| v == PROTOCOL_VERSION)
        {
            return Flow::Close(
                Some(format!(
                    "unsupported protocol version(s) {supported_protocol_versions:?}: this relay speaks \"{PROTOCOL_VERSION}\""
                )),
                code::PROTOCOL,
            );
        }
        if sender_id.is_empty() || sender_id.len() > MAX_PEER_ID_LEN {
            return Flow::Close(Some("invalid peer id".into()), code::PROTOCOL);
        }
        match self
            .hub
            .register_peer(&sender_id, self.user.id, &self.outbox)
        {
            Err(JoinRefused::InUseByAnotherUser) => {
                tracing::warn!(user = %self.user.name, peer = %sender_id, "peer id in use by another user");
                return Flow::Close(
                    Some(format!("peer id {sender_id:?} is in use by another user")),
                    code::POLICY,
                );
            }
            Ok(Some(previous)) => {
                let error = Message::Error {
                    message: "replaced by a newer connection with the same peer id".into(),
                    sender_id: Some(self.hub.relay_peer_id().to_owned()),
                    target_id: Some(sender_id.clone()),
                };
                previous.close(Some(&error), code::NORMAL);
            }
            Ok(None) => {}
        }
        // Recorded first: the peer id is registered, and cleanup frees it.
        self.peer = Some(Peer {
            user: self.user.clone(),
            peer_id: sender_id.clone(),
            outbox: self.outbox.clone(),
        });
        tracing::info!(conn = self.outbox.conn_id, user = %self.user.name, peer = %sender_id, "peer joined");
        self.outbox.send(&Message::Peer {
            sender_id: self.hub.relay_peer_id().to_owned(),
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(self.hub.db().storage_id().to_owned()),
                is_ephemeral: false,
            }),
            selected_protocol_version: PROTOCOL_VERSION.to_owned(),
            target_id: sender_id,
        });
        Flow::Continue
    }
}

fn close_frame(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }))
}
