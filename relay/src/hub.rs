//! The hub: the relay's shared in-memory state. It knows which peer ids are
//! connected (and for which user), and holds the plans that connections have
//! open, each with one automerge sync state per connection.
//!
//! Rules it enforces for every `request`/`sync`:
//! - a plan the user is not granted and a plan that does not exist get the
//!   very same answer, so the relay never reveals whether a plan exists: an
//!   empty `sync` then `doc-unavailable` when the peer has nothing of the
//!   plan; the `sync` an empty document would answer (asking for the
//!   changes) when the peer offers heads without changes; `doc-unavailable`
//!   alone when it pushes changes it may not push;
//! - changes for an unknown plan from a user allowed to create plans create
//!   it, with that user as owner;
//! - a read-only grant uses automerge's read-only sync state: the reader's
//!   changes are neither applied, stored nor passed on;
//! - new changes are committed to SQLite before they are acknowledged or
//!   passed on to the other connections that have the plan open. They are
//!   written through [`GroupCommit`], which commits the writes of every plan
//!   queued at the same moment in one transaction (one fsync).
//!
//! Plans are loaded from SQLite on first use and dropped from memory once no
//! connection has had them open for `unload_after`; a plan connections keep
//! open but nobody has used for `unload_after` drops its document too (the
//! connections keep their sync states, and the next message loads it
//! again). When more than `max_loaded_plans` are loaded, the least recently
//! used of those quiet for a second leave memory at once, open or not, so a
//! burst of plans (a peer pushing thousands) does not hold them all until
//! `unload_after`. See [`Hub::janitor`].

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use automerge::Automerge;
use automerge::sync::{self, SyncDoc};
use map_sync::Message;
use tokio::sync::{Notify, broadcast, watch};

use crate::auth::Access;
use crate::config::RelayConfig;
use crate::db::{AuthUser, RelayDb};
use crate::error::{RelayError, Result};
use crate::group_commit::{GroupCommit, OwnedBatch};
use crate::keepalive::Connections;
use crate::outbox::Outbox;

/// Who is on the other end of a connection, once it has joined.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) user: AuthUser,
    pub(crate) peer_id: String,
    pub(crate) outbox: Outbox,
}

/// Why a peer id could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JoinRefused {
    /// Another user's connection uses this peer id.
    InUseByAnotherUser,
}

struct PeerEntry {
    user_id: i64,
    outbox: Outbox,
}

/// One connection's view of one plan.
struct Subscriber {
    peer_id: String,
    user_id: i64,
    access: Access,
    /// Boxed: one subscriber per open plan and connection, and a plan
    /// held open by a single connection still gets a hash table of four.
    state: Box<sync::State>,
    outbox: Outbox,
}

impl Subscriber {
    fn new(peer: &Peer, access: Access) -> Self {
        Subscriber {
            peer_id: peer.peer_id.clone(),
            user_id: peer.user.id,
            access,
            state: Box::new(state_for(access)),
            outbox: peer.outbox.clone(),
        }
    }
}

fn state_for(access: Access) -> sync::State {
    if access.can_write() {
        sync::State::new()
    } else {
        sync::State::new_read_only()
    }
}

/// A plan in memory (or about to be).
#[derive(Default)]
struct DocSlot {
    /// `None` until loaded from the database. Boxed: an `Automerge` is
    /// 3.5 KiB by itself, and a slot stays while a connection holds the
    /// plan open, loaded or not (10,000 open plans: 35 MiB unboxed).
    doc: Option<Box<Automerge>>,
    /// Chunks the plan is stored in (compaction trigger).
    chunks: usize,
    /// Connections that have the plan open, by connection id.
    subs: HashMap<u64, Subscriber>,
    /// Set by the janitor when it drops the slot: whoever holds a stale
    /// reference must look the plan up again.
    unloaded: bool,
    /// When a message, an edit, a reader or the last subscriber leaving
    /// last touched the plan (the janitor unloads it `unload_after` later).
    last_used: Option<Instant>,
}

type SlotRef = Arc<tokio::sync::Mutex<DocSlot>>;

/// The relay's shared state. See the module documentation.
pub(crate) struct Hub {
    db: RelayDb,
    /// Plan writes (appends, compactions, creations): group commit.
    writer: GroupCommit,
    config: Arc<RelayConfig>,
    relay_peer_id: String,
    empty_sync: Vec<u8>,
    docs: Mutex<HashMap<String, SlotRef>>,
    peers: Mutex<HashMap<String, PeerEntry>>,
    connections: Connections,
    /// The id of every plan whose stored changes grew (web pages listen).
    changed: broadcast::Sender<Arc<str>>,
    /// Plans loaded, as of the janitor's last count plus loads since.
    loaded: AtomicUsize,
    /// Wakes the janitor when more than `max_loaded_plans` are loaded.
    over_limit: Notify,
}

/// A plan used within this long is not unloaded to keep to
/// `max_loaded_plans` (reloading it for every message would cost more than
/// it saves); `unload_after` still applies if shorter.
const EVICTION_QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// Least time between two janitor rounds that loads set off.
const EVICTION_SPACING: std::time::Duration = std::time::Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Hex form of a change hash (as stored in `deliveries`).
fn hex_hash(hash: &automerge::ChangeHash) -> String {
    hex::encode(hash.0)
}

impl Hub {
    pub(crate) fn new(db: RelayDb, writer: GroupCommit, config: Arc<RelayConfig>) -> Self {
        let relay_peer_id = format!("map-relay-{}", db.storage_id());
        // What an empty document says on a fresh sync state: the same bytes
        // for every unknown or refused plan.
        let empty_sync = Automerge::new()
            .generate_sync_message(&mut sync::State::new())
            .map(sync::Message::encode)
            .unwrap_or_default();
        Hub {
            db,
            writer,
            config,
            relay_peer_id,
            empty_sync,
            docs: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            connections: Connections::default(),
            changed: broadcast::channel(256).0,
            loaded: AtomicUsize::new(0),
            over_limit: Notify::new(),
        }
    }

    pub(crate) fn db(&self) -> &RelayDb {
        &self.db
    }

    /// The plan writer (the relay stops it on shutdown).
    pub(crate) fn writer(&self) -> &GroupCommit {
        &self.writer
    }

    pub(crate) fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// The relay's own peer id (stable per database).
    pub(crate) fn relay_peer_id(&self) -> &str {
        &self.relay_peer_id
    }

    /// The open WebSocket connections (a new one registers here and gets
    /// its outbox; the keepalive and shutdown reach them all through it).
    pub(crate) fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Number of open WebSocket connections.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.count()
    }

    /// Number of plans whose document is in memory (a plan being worked
    /// on right now counts as loaded).
    pub(crate) fn loaded_plans(&self) -> usize {
        lock(&self.docs)
            .values()
            .filter(|slot| slot.try_lock().map_or(true, |s| s.doc.is_some()))
            .count()
    }

    // ---- peers ------------------------------------------------------------

    /// Tie `peer_id` to this connection. A connection of the same user that
    /// used the id before is returned so the caller can close it.
    pub(crate) fn register_peer(
        &self,
        peer_id: &str,
        user_id: i64,
        outbox: &Outbox,
    ) -> std::result::Result<Option<Outbox>, JoinRefused> {
        let mut peers = lock(&self.peers);
        if peers.get(peer_id).is_some_and(|p| p.user_id != user_id) {
            return Err(JoinRefused::InUseByAnotherUser);
        }
        let previous = peers.insert(
            peer_id.to_owned(),
            PeerEntry {
                user_id,
                outbox: outbox.clone(),
            },
        );
        Ok(previous
            .map(|p| p.outbox)
            .filter(|o| o.conn_id != outbox.conn_id))
    }

    /// Forget a connection: its peer id (if still its own) and its open plans.
    pub(crate) async fn disconnect(&self, conn_id: u64, peer_id: Option<&str>, docs: &[String]) {
        if let Some(peer_id) = peer_id {
            let mut peers = lock(&self.peers);
            if peers.get(peer_id).map(|p| p.outbox.conn_id) == Some(conn_id) {
                peers.remove(peer_id);
            }
        }
        for doc_id in docs {
            self.unsubscribe(conn_id, doc_id).await;
        }
        self.connections.close(conn_id);
    }

    async fn unsubscribe(&self, conn_id: u64, doc_id: &str) {
        let slot = lock(&self.docs).get(doc_id).cloned();
        if let Some(slot) = slot {
            let mut slot = slot.lock().await;
            if slot.subs.remove(&conn_id).is_some() && slot.subs.is_empty() {
                slot.last_used = Some(Instant::now());
            }
        }
    }

    // ---- documents --------------------------------------------------------

    fn unavailable(&self, peer: &Peer, doc_id: &str, message: &sync::Message) {
        let offered = !message.heads.is_empty() || !message.changes.is_empty();
        self.send_unavailable(&peer.outbox, &peer.peer_id, doc_id, !offered);
    }

    /// The answer for a plan that is unknown or not granted: `doc-unavailable`,
    /// preceded by an empty `sync` if `with_sync` (for a peer that has nothing
    /// of the plan, as the JS server does). A peer that has the plan gets no
    /// empty `sync`: it would answer it with all its changes, again and again.
    fn send_unavailable(&self, outbox: &Outbox, peer_id: &str, doc_id: &str, with_sync: bool) {
        if with_sync {
            outbox.send(&Message::Sync {
                sender_id: self.relay_peer_id.clone(),
                target_id: peer_id.to_owned(),
                document_id: doc_id.to_owned(),
                data: self.empty_sync.clone(),
            });
        }
        outbox.send(&Message::DocUnavailable {
            sender_id: self.relay_peer_id.clone(),
            target_id: peer_id.to_owned(),
            document_id: doc_id.to_owned(),
        });
    }

    fn sync_message(&self, sub_peer: &str, doc_id: &str, msg: sync::Message) -> Message {
        Message::Sync {
            sender_id: self.relay_peer_id.clone(),
            target_id: sub_peer.to_owned(),
            document_id: doc_id.to_owned(),
            data: msg.encode(),
        }
    }

    /// Handle a burst of `request`/`sync` messages from `peer` for one plan
    /// (consecutive messages that arrived together, oldest first). Returns
    /// whether the connection now has the plan open (so it is unsubscribed
    /// when it closes). An `Err` closes the connection with that message.
    ///
    /// A burst is applied as one unit: its changes are stored in one
    /// transaction and answered with one sync message per connection,
    /// instead of a store and a round of replies per message.
    pub(crate) async fn on_sync(
        &self,
        peer: &Peer,
        doc_id: &str,
        burst: &[Vec<u8>],
    ) -> std::result::Result<bool, String> {
        let mut messages = std::collections::VecDeque::with_capacity(burst.len());
        for data in burst {
            let message = sync::Message::decode(data)
                .map_err(|e| format!("invalid sync message for {doc_id}: {e}"))?;
            // A hostile bloom filter would panic (or exhaust memory) later, in
            // `generate_sync_message`, outside any `catch_unwind`.
            map_sync::message::check_sync_payload(&message)
                .map_err(|e| format!("invalid sync message for {doc_id}: {e}"))?;
            messages.push_back(message);
        }
        let mut open = false;
        while let Some(message) = messages.pop_front() {
            // A connection that already has the plan open keeps the access
            // it was given (the janitor re-checks grants every
            // `revalidate_every`), so the hot path does not query the
            // database per message, and takes the rest of the burst at once.
            if let Some(access) = self.subscribed_access(doc_id, peer.outbox.conn_id).await {
                messages.push_front(message);
                return self
                    .sync_existing(peer, doc_id, access, messages.into())
                    .await;
            }
            open = self.first_sync(peer, doc_id, message).await?;
        }
        Ok(open)
    }

    /// A `request` or `sync` for a plan this connection does not have open:
    /// check access, and create the plan if the user may and it is new.
    async fn first_sync(
        &self,
        peer: &Peer,
        doc_id: &str,
        message: sync::Message,
    ) -> std::result::Result<bool, String> {
        // Two rounds at most: if a concurrent push created the plan between
        // our access check and our create, check again.
        for _ in 0..2 {
            let user_id = peer.user.id;
            let plan = doc_id.to_owned();
            let access = self
                .db
                .call(move |db| db.plan_access(user_id, &plan))
                .await
                .map_err(internal)?;
            match access.access {
                Some(access) => {
                    return self
                        .sync_existing(peer, doc_id, access, vec![message])
                        .await;
                }
                None if message.changes.is_empty() && !message.heads.is_empty() => {
                    // The peer has the plan and offers it: ask for its changes,
                    // whether or not the plan exists here (same bytes either way).
                    self.unsubscribe(peer.outbox.conn_id, doc_id).await;
                    self.ask_for_changes(peer, doc_id, message)?;
                    return Ok(false);
                }
                None if !access.exists && peer.user.can_create && !message.changes.is_empty() => {
                    match self.create(peer, doc_id, message.clone()).await? {
                        true => return Ok(true),
                        false => continue,
                    }
                }
                None => break,
            }
        }
        self.unsubscribe(peer.outbox.conn_id, doc_id).await;
        self.unavailable(peer, doc_id, &message);
        Ok(false)
    }

    /// Answer an offer of a plan the relay does not share with this user as
    /// an empty document would: "I have nothing, send me your heads".
    fn ask_for_changes(
        &self,
        peer: &Peer,
        doc_id: &str,
        message: sync::Message,
    ) -> std::result::Result<(), String> {
        let mut doc = Automerge::new();
        let mut state = sync::State::new();
        guarded(|| doc.receive_sync_message(&mut state, message))
            .map_err(|e| e.say(doc_id, &format!("invalid sync message for {doc_id}")))?;
        if let Some(reply) = doc.generate_sync_message(&mut state) {
            peer.outbox
                .send(&self.sync_message(&peer.peer_id, doc_id, reply));
        }
        Ok(())
    }

    /// The access of connection `conn_id` to plan `doc_id` if it has the
    /// plan open (and the plan is loaded), without touching the database.
    async fn subscribed_access(&self, doc_id: &str, conn_id: u64) -> Option<Access> {
        let slot = lock(&self.docs).get(doc_id).cloned()?;
        let guard = slot.lock().await;
        if guard.unloaded || guard.doc.is_none() {
            return None;
        }
        guard.subs.get(&conn_id).map(|sub| sub.access)
    }

    /// The slot of a plan, loaded, locked and current. `None` if the plan is
    /// not in the database.
    async fn open_slot(
        &self,
        doc_id: &str,
    ) -> Result<Option<tokio::sync::OwnedMutexGuard<DocSlot>>> {
        loop {
            let slot = lock(&self.docs)
                .entry(doc_id.to_owned())
                .or_default()
                .clone();
            let mut guard = slot.clone().lock_owned().await;
            if guard.unloaded {
                continue;
            }
            if guard.doc.is_none() {
                let plan = doc_id.to_owned();
                let stored = self.db.call(move |db| db.load_plan(&plan)).await?;
                let Some(stored) = stored else {
                    guard.unloaded = true;
                    let mut docs = lock(&self.docs);
                    if docs.get(doc_id).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                        docs.remove(doc_id);
                    }
                    return Ok(None);
                };
                let mut doc = Automerge::new();
                load_into(&mut doc, &stored.bytes).map_err(|e| match e {
                    Refusal::Automerge(source) => RelayError::Document {
                        plan: doc_id.to_owned(),
                        source: Box::new(source),
                    },
                    Refusal::Panic => {
                        RelayError::Internal(format!("automerge panicked loading plan {doc_id}"))
                    }
                })?;
                tracing::debug!(plan = doc_id, chunks = stored.chunks, "plan loaded");
                guard.doc = Some(Box::new(doc));
                guard.chunks = stored.chunks;
                self.note_loaded();
            }
            guard.last_used = Some(Instant::now());
            return Ok(Some(guard));
        }
    }

    /// Apply `messages` (one burst, oldest first) to a plan the peer may
    /// open, store what they changed in one write, then answer.
    async fn sync_existing(
        &self,
        peer: &Peer,
        doc_id: &str,
        access: Access,
        messages: Vec<sync::Message>,
    ) -> std::result::Result<bool, String> {
        let Some(mut slot) = self.open_slot(doc_id).await.map_err(internal)? else {
            if let Some(first) = messages.first() {
                self.unavailable(peer, doc_id, first);
            }
            return Ok(false);
        };
        let conn_id = peer.outbox.conn_id;
        let slot = &mut *slot;
        let sub = slot
            .subs
            .entry(conn_id)
            .or_insert_with(|| Subscriber::new(peer, access));
        if sub.access != access {
            sub.access = access;
            sub.state.set_read_only(!access.can_write());
        }
        let Some(doc) = slot.doc.as_mut() else {
            return Err(internal(RelayError::Internal(
                "plan slot without document".into(),
            )));
        };
        let before = doc.get_heads();
        for message in messages {
            let received = guarded(|| doc.receive_sync_message(&mut sub.state, message));
            if let Err(refusal) = received {
                let failure = refusal.say(doc_id, &format!("changes for {doc_id} rejected"));
                // Throw the in-memory copy away: the database has every
                // accepted change. The earlier messages of the burst were not
                // stored or answered either; the peer still has them.
                slot.subs.remove(&conn_id);
                self.reload(doc_id, slot).await.map_err(internal)?;
                tracing::warn!(plan = doc_id, peer = %peer.peer_id, "{failure}");
                return Err(failure);
            }
        }
        let changed = doc.get_heads() != before;
        if changed
            && let Err(e) = self
                .store_since(doc_id, slot, &before, peer.user.id, &peer.peer_id)
                .await
        {
            slot.subs.remove(&conn_id);
            self.reload(doc_id, slot).await.map_err(internal)?;
            return Err(internal(e));
        }
        self.send_pending(slot, doc_id, conn_id, changed);
        Ok(true)
    }

    /// Make the changes made to the slot's plan since `before` durable,
    /// recording `user_id` as the user who delivered them, and tell the
    /// plan's watchers. On error the caller must reload the slot.
    async fn store_since(
        &self,
        doc_id: &str,
        slot: &mut DocSlot,
        before: &[automerge::ChangeHash],
        user_id: i64,
        via: &str,
    ) -> Result<()> {
        let Some(doc) = slot.doc.as_mut() else {
            return Err(RelayError::Internal("plan slot without document".into()));
        };
        let hashes: Vec<String> = doc
            .get_changes_meta(before)
            .iter()
            .map(|c| hex_hash(&c.hash))
            .collect();
        let incremental = doc.save_after(before);
        let compact = slot.chunks + 1 > self.config.compact_after_chunks;
        let snapshot = compact.then(|| doc.save());
        let count = hashes.len();
        self.writer
            .append(OwnedBatch {
                plan: doc_id.to_owned(),
                user_id,
                incremental,
                hashes,
                snapshot,
            })
            .await?;
        slot.chunks = if compact { 1 } else { slot.chunks + 1 };
        tracing::debug!(
            plan = doc_id,
            user = user_id,
            via,
            changes = count,
            compacted = compact,
            "changes stored"
        );
        let _ = self.changed.send(Arc::from(doc_id));
        Ok(())
    }

    /// Run `f` on a plan as the relay holds it (loading it if needed).
    /// `None` if the plan is not on this relay.
    pub(crate) async fn read_plan<T>(
        &self,
        doc_id: &str,
        f: impl FnOnce(&Automerge) -> T,
    ) -> Result<Option<T>> {
        let Some(slot) = self.open_slot(doc_id).await? else {
            return Ok(None);
        };
        let Some(doc) = slot.doc.as_ref() else {
            return Err(RelayError::Internal("plan slot without document".into()));
        };
        Ok(Some(f(doc)))
    }

    /// Apply changes made on the relay itself (by a web participant):
    /// `make` gets the plan and returns the new changes (or why it refused).
    /// They are stored with `user_id` as their deliverer, then passed on to
    /// every connection that has the plan open. `Ok(None)`: no such plan.
    pub(crate) async fn apply_local<E>(
        &self,
        doc_id: &str,
        user_id: i64,
        via: &str,
        make: impl FnOnce(&Automerge) -> std::result::Result<Vec<automerge::Change>, E>,
    ) -> Result<Option<std::result::Result<(), E>>> {
        let Some(mut slot) = self.open_slot(doc_id).await? else {
            return Ok(None);
        };
        let slot = &mut *slot;
        let Some(doc) = slot.doc.as_mut() else {
            return Err(RelayError::Internal("plan slot without document".into()));
        };
        let changes = match make(doc) {
            Ok(changes) => changes,
            Err(e) => return Ok(Some(Err(e))),
        };
        let before = doc.get_heads();
        doc.apply_changes(changes)
            .map_err(|e| RelayError::Internal(format!("a web edit could not be applied: {e}")))?;
        if doc.get_heads() == before {
            return Ok(Some(Ok(())));
        }
        if let Err(e) = self.store_since(doc_id, slot, &before, user_id, via).await {
            self.reload(doc_id, slot).await?;
            return Err(e);
        }
        self.send_pending(slot, doc_id, 0, true);
        Ok(Some(Ok(())))
    }

    /// A receiver told the id of every plan whose stored changes grew.
    pub(crate) fn watch_changes(&self) -> broadcast::Receiver<Arc<str>> {
        self.changed.subscribe()
    }

    /// Answer `conn_id` and, if the plan changed, everyone else who has it open.
    fn send_pending(&self, slot: &mut DocSlot, doc_id: &str, conn_id: u64, changed: bool) {
        let Some(doc) = slot.doc.as_ref() else {
            return;
        };
        if let Some(sub) = slot.subs.get_mut(&conn_id)
            && let Some(msg) = doc.generate_sync_message(&mut sub.state)
        {
            sub.outbox
                .send(&self.sync_message(&sub.peer_id, doc_id, msg));
        }
        if changed {
            // `generate_sync_message` is a function of the document and the
            // sync state alone, and followers that keep up are in the same
            // state: generate once per distinct state and hand the same
            // bytes (and resulting state) to every follower in it.
            let mut generated: HashMap<sync::State, (Option<Vec<u8>>, sync::State)> =
                HashMap::new();
            for (id, sub) in slot.subs.iter_mut() {
                if *id == conn_id {
                    continue;
                }
                let (data, after) = match generated.get(&*sub.state) {
                    Some((data, after)) => (data.clone(), after.clone()),
                    None => {
                        let before = (*sub.state).clone();
                        let data = doc
                            .generate_sync_message(&mut sub.state)
                            .map(sync::Message::encode);
                        generated.insert(before, (data.clone(), (*sub.state).clone()));
                        (data, (*sub.state).clone())
                    }
                };
                *sub.state = after;
                if let Some(data) = data {
                    sub.outbox.send(&Message::Sync {
                        sender_id: self.relay_peer_id.clone(),
                        target_id: sub.peer_id.clone(),
                        document_id: doc_id.to_owned(),
                        data,
                    });
                }
            }
        }
    }

    /// Replace the in-memory plan with what the database holds; every
    /// remaining subscriber starts a fresh sync round.
    async fn reload(&self, doc_id: &str, slot: &mut DocSlot) -> Result<()> {
        let plan = doc_id.to_owned();
        let stored = self.db.call(move |db| db.load_plan(&plan)).await?;
        let mut doc = Automerge::new();
        if let Some(stored) = stored {
            // A failure here leaves the slot empty; it is reloaded on next use.
            if load_into(&mut doc, &stored.bytes).is_err() {
                slot.doc = None;
                return Ok(());
            }
            slot.chunks = stored.chunks;
        }
        slot.doc = Some(Box::new(doc));
        for sub in slot.subs.values_mut() {
            *sub.state = state_for(sub.access);
        }
        Ok(())
    }

    /// Create a plan pushed by `peer`. `Ok(false)`: someone else created it
    /// first (the caller checks access again).
    async fn create(
        &self,
        peer: &Peer,
        doc_id: &str,
        message: sync::Message,
    ) -> std::result::Result<bool, String> {
        let mut doc = Automerge::new();
        let mut state = sync::State::new();
        guarded(|| doc.receive_sync_message(&mut state, message))
            .map_err(|e| e.say(doc_id, &format!("changes for {doc_id} rejected")))?;
        if doc.get_heads().is_empty() {
            // Nothing applicable (e.g. changes whose dependencies are missing).
            return Ok(false);
        }
        let hashes: Vec<String> = doc
            .get_changes_meta(&[])
            .iter()
            .map(|c| hex_hash(&c.hash))
            .collect();
        let snapshot = doc.save();
        let user_id = peer.user.id;
        let count = hashes.len();
        // Hold the slot while creating so nobody loads a half-made plan.
        let slot = lock(&self.docs)
            .entry(doc_id.to_owned())
            .or_default()
            .clone();
        let mut guard = slot.lock().await;
        let created = self
            .writer
            .create(OwnedBatch {
                plan: doc_id.to_owned(),
                user_id,
                incremental: Vec::new(),
                hashes,
                snapshot: Some(snapshot),
            })
            .await
            .map_err(internal)?;
        if !created {
            return Ok(false);
        }
        let _ = self.changed.send(Arc::from(doc_id));
        tracing::info!(
            plan = doc_id,
            user = %peer.user.name,
            peer = %peer.peer_id,
            changes = count,
            "plan created"
        );
        if guard.unloaded {
            // The janitor dropped this slot meanwhile: the plan is in the
            // database, the next message loads it. Answer from our copy.
            let msg = doc.generate_sync_message(&mut state);
            if let Some(msg) = msg {
                peer.outbox
                    .send(&self.sync_message(&peer.peer_id, doc_id, msg));
            }
            return Ok(true);
        }
        if guard.doc.is_none() {
            guard.doc = Some(Box::new(doc));
            guard.chunks = 1;
            self.note_loaded();
        }
        guard.last_used = Some(Instant::now());
        let mut sub = Subscriber::new(peer, Access::Owner);
        *sub.state = state;
        guard.subs.insert(peer.outbox.conn_id, sub);
        self.send_pending(&mut guard, doc_id, peer.outbox.conn_id, true);
        Ok(true)
    }

    /// Pass an `ephemeral` message on to the other connections that have the
    /// plan open. The sender must have the plan open itself.
    pub(crate) async fn on_ephemeral(&self, peer: &Peer, message: Message) {
        let Message::Ephemeral {
            document_id,
            session_id,
            count,
            data,
            ..
        } = message
        else {
            return;
        };
        let slot = lock(&self.docs).get(&document_id).cloned();
        let Some(slot) = slot else {
            return;
        };
        let slot = slot.lock().await;
        if slot.unloaded || !slot.subs.contains_key(&peer.outbox.conn_id) {
            return;
        }
        for (id, sub) in &slot.subs {
            if *id == peer.outbox.conn_id {
                continue;
            }
            sub.outbox.send(&Message::Ephemeral {
                sender_id: peer.peer_id.clone(),
                target_id: sub.peer_id.clone(),
                document_id: document_id.clone(),
                session_id: session_id.clone(),
                count,
                data: data.clone(),
            });
        }
    }

    /// Until shutdown: drop plans nobody has had open for `unload_after`,
    /// and every `revalidate_every` re-check the grants of open connections
    /// (so `ungrant`, a changed grant and `user revoke` reach live connections).
    pub(crate) async fn janitor(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let period = (self.config.unload_after / 4).clamp(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(5),
        );
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let revalidate_every = self
            .config
            .revalidate_every
            .max(std::time::Duration::from_millis(50));
        let mut revalidate = tokio::time::interval(revalidate_every);
        revalidate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_round = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    last_round = Instant::now();
                    self.unload_round();
                }
                () = self.over_limit.notified() => {
                    // Loads set this off; one round per spacing at most,
                    // however many plans arrive meanwhile.
                    tokio::time::sleep_until((last_round + EVICTION_SPACING).into()).await;
                    last_round = Instant::now();
                    self.unload_round();
                }
                _ = revalidate.tick() => {
                    if let Err(e) = self.revalidate().await {
                        tracing::warn!(error = %e, "re-checking grants failed");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Apply grant changes made since connections opened their plans.
    async fn revalidate(&self) -> Result<()> {
        // (plan, connection, user, access) of every subscriber not busy now.
        let slots: Vec<(String, SlotRef)> = lock(&self.docs)
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        let mut current = Vec::new();
        for (doc_id, slot) in &slots {
            if let Ok(slot) = slot.try_lock() {
                for (conn_id, sub) in &slot.subs {
                    current.push((doc_id.clone(), *conn_id, sub.user_id, sub.access));
                }
            }
        }
        if current.is_empty() {
            return Ok(());
        }
        let changed = self
            .db
            .call(move |db| {
                let mut changed = Vec::new();
                let mut seen = HashMap::new();
                for (doc_id, conn_id, user_id, access) in current {
                    let now = match seen.get(&(doc_id.clone(), user_id)) {
                        Some(now) => *now,
                        None => {
                            let now = db.plan_access(user_id, &doc_id)?.access;
                            seen.insert((doc_id.clone(), user_id), now);
                            now
                        }
                    };
                    if now != Some(access) {
                        changed.push((doc_id, conn_id, access, now));
                    }
                }
                Ok(changed)
            })
            .await?;
        for (doc_id, conn_id, was, now) in changed {
            let Some((_, slot)) = slots.iter().find(|(id, _)| *id == doc_id) else {
                continue;
            };
            let mut slot = slot.lock().await;
            let slot = &mut *slot;
            let Some(sub) = slot.subs.get_mut(&conn_id) else {
                continue;
            };
            if sub.access != was {
                continue; // changed meanwhile; the next round looks again
            }
            match now {
                None => {
                    if let Some(sub) = slot.subs.remove(&conn_id) {
                        tracing::info!(plan = %doc_id, peer = %sub.peer_id, "access withdrawn");
                        self.send_unavailable(&sub.outbox, &sub.peer_id, &doc_id, false);
                    }
                    if slot.subs.is_empty() {
                        slot.last_used = Some(Instant::now());
                    }
                }
                Some(access) => {
                    tracing::info!(plan = %doc_id, peer = %sub.peer_id, %access, "access changed");
                    sub.access = access;
                    sub.state.set_read_only(!access.can_write());
                    if let Some(doc) = slot.doc.as_ref()
                        && let Some(msg) = doc.generate_sync_message(&mut sub.state)
                    {
                        sub.outbox
                            .send(&self.sync_message(&sub.peer_id, &doc_id, msg));
                    }
                }
            }
        }
        Ok(())
    }

    /// A plan was loaded: wake the janitor if that makes too many.
    fn note_loaded(&self) {
        let limit = self.config.max_loaded_plans;
        if self.loaded.fetch_add(1, Ordering::Relaxed) + 1 > limit && limit > 0 {
            self.over_limit.notify_one();
        }
    }

    /// One janitor round: unload, then hand the memory back.
    fn unload_round(&self) {
        if self.unload_idle() > 0 {
            // Unloaded plans leave their memory in the allocator.
            tokio::task::spawn_blocking(crate::memory::release_free_memory);
        }
    }

    /// Drops the documents of plans nobody has used for `unload_after`
    /// (and the whole slot if no connection has the plan open), then, while
    /// more than `max_loaded_plans` are loaded, those of the least recently
    /// used plans quiet for [`EVICTION_QUIET`]; returns how many were
    /// unloaded.
    fn unload_idle(&self) -> usize {
        let now = Instant::now();
        let mut docs = lock(&self.docs);
        let mut unloaded = 0;
        // Loaded plans that could go to keep to the limit: (last use, id).
        let mut evictable = Vec::new();
        let mut loaded = 0;
        let evict_after = EVICTION_QUIET.min(self.config.unload_after);
        docs.retain(|doc_id, slot| {
            let Ok(mut slot) = slot.try_lock() else {
                loaded += 1; // busy: loaded, or being loaded
                return true;
            };
            let last_used = *slot.last_used.get_or_insert(now);
            let quiet_for = now.duration_since(last_used);
            if quiet_for < self.config.unload_after {
                if slot.doc.is_some() {
                    loaded += 1;
                    if quiet_for >= evict_after {
                        evictable.push((last_used, doc_id.clone()));
                    }
                }
                return true;
            }
            if !unload(doc_id, &mut slot) {
                return true;
            }
            unloaded += 1;
            !slot.unloaded
        });
        let limit = self.config.max_loaded_plans;
        if limit > 0 && loaded > limit && !evictable.is_empty() {
            evictable.sort_unstable();
            for (_, doc_id) in evictable.into_iter().take(loaded - limit) {
                let Some(slot_ref) = docs.get(&doc_id) else {
                    continue;
                };
                let Ok(mut slot) = slot_ref.try_lock() else {
                    continue;
                };
                if unload(&doc_id, &mut slot) {
                    unloaded += 1;
                    loaded -= 1;
                    if slot.unloaded {
                        drop(slot);
                        docs.remove(&doc_id);
                    }
                }
            }
        }
        self.loaded.store(loaded, Ordering::Relaxed);
        unloaded
    }
}

/// Drops a plan's document; a plan no connection has open is marked
/// unloaded too (its slot is then removed from the map). Returns whether a
/// document or slot went.
fn unload(doc_id: &str, slot: &mut DocSlot) -> bool {
    if !slot.subs.is_empty() {
        // Open but quiet: the document leaves memory, the connections keep
        // their sync states, and the next message loads it again
        // (everything in memory was stored).
        let had = slot.doc.take().is_some();
        if had {
            tracing::debug!(plan = %doc_id, "quiet plan unloaded, connections keep it open");
        }
        return had;
    }
    slot.unloaded = true;
    slot.doc = None;
    tracing::debug!(plan = %doc_id, "plan unloaded");
    true
}

/// What a peer is told when the relay fails: a full disk is said plainly
/// (the peer keeps its changes and can retry later); anything else is
/// logged here and reported without detail.
fn internal(e: RelayError) -> String {
    tracing::error!(error = %e, "relay error");
    if crate::error::is_disk_full(&e) {
        "the relay's storage is full: your changes were not stored (you still have them); try again once the relay has space".to_owned()
    } else {
        "internal relay error".to_owned()
    }
}

/// Why automerge did not take some bytes from a peer or the database.
enum Refusal {
    /// It said why.
    Automerge(automerge::AutomergeError),
    /// It panicked (caught).
    Panic,
}

impl Refusal {
    /// The text for the peer: `refused` says what was refused.
    fn say(&self, doc_id: &str, refused: &str) -> String {
        match self {
            Refusal::Automerge(e) => format!("{refused}: {e}"),
            Refusal::Panic => format!("automerge panicked on a sync message for {doc_id}"),
        }
    }
}

/// Run an automerge call on bytes from outside with its panics caught, so
/// hostile input costs one connection, never the relay.
fn guarded<T>(
    f: impl FnOnce() -> std::result::Result<T, automerge::AutomergeError>,
) -> std::result::Result<T, Refusal> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Refusal::Automerge(e)),
        Err(_) => Err(Refusal::Panic),
    }
}

fn load_into(doc: &mut Automerge, bytes: &[u8]) -> std::result::Result<(), Refusal> {
    guarded(|| doc.load_incremental(bytes)).map(|_| ())
}
#[cfg(test)]
mod tests {
    /// Every plan a connection holds open keeps a slot and a subscriber,
    /// loaded or not: they must stay small (docs/performance.md, at-rest).
    #[test]
    fn an_open_plan_costs_little_while_unloaded() {
        assert!(std::mem::size_of::<super::DocSlot>() <= 128);
        assert!(std::mem::size_of::<super::Subscriber>() <= 96);
    }
}
