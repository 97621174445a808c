//! What a connection's task is asked to do: the frames the hub queued for
//! its peer, and the signals from the rest of the relay (the queue
//! overflowed, the relay is shutting down, a ping is due, the peer has been
//! silent too long). The task waits on its outbox alone, so an idle
//! connection holds one waiter and no timer (see `keepalive.rs`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use map_sync::Message;
use tokio::sync::Notify;

/// Something for a connection's writer to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send this binary frame.
    Frame(Vec<u8>),
    /// Send `error` (an encoded `error` message) if set, then a close frame
    /// with `code`, then stop.
    Close {
        /// The encoded `error` message, if any.
        error: Option<Vec<u8>>,
        /// WebSocket close code.
        code: u16,
    },
}

/// The sending side of one connection: a bounded queue that the
/// connection's task drains, plus a kill switch used when the queue is full
/// (a peer that falls that far behind is closed; it reconnects and resyncs).
///
/// One allocation per connection, and nothing in it until something is
/// queued: an idle connection pays for a mutex, an empty queue and a
/// [`Notify`] (a channel and a watch cost 1.8 KiB each, measured with
/// heaptrack on 1,000 idle connections).
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub(crate) conn_id: u64,
    shared: Arc<OutboxShared>,
}

#[derive(Debug)]
struct OutboxShared {
    capacity: usize,
    state: Mutex<OutboxState>,
    /// Woken (one permit) whenever something is queued or a signal is
    /// raised; only the connection's own task waits on it.
    ready: Notify,
}

#[derive(Debug, Default)]
struct OutboxState {
    queue: VecDeque<Outgoing>,
    killed: bool,
    stopping: bool,
    ping_due: bool,
    expired: bool,
    /// A frame arrived since the keepalive's last sweep.
    heard: bool,
    /// Kept by the keepalive: how long the peer has been silent, and since
    /// the last ping (milliseconds, saturating).
    silent_ms: u32,
    since_ping_ms: u32,
}

/// What the connection's task takes from its outbox in one go.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// Queued frames and close requests, in order.
    pub(crate) items: VecDeque<Outgoing>,
    /// The queue overflowed: close at once.
    pub(crate) killed: bool,
    /// The relay is shutting down: send what is queued, then close.
    pub(crate) stopping: bool,
    /// The peer sent nothing, not even a pong, for the idle timeout.
    pub(crate) expired: bool,
    /// Time to ping the peer.
    pub(crate) ping_due: bool,
}

impl Outbox {
    pub(crate) fn new(conn_id: u64, capacity: usize) -> Self {
        Outbox {
            conn_id,
            shared: Arc::new(OutboxShared {
                capacity: capacity.max(8),
                state: Mutex::new(OutboxState::default()),
                ready: Notify::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, OutboxState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queue a frame; a full queue closes the connection.
    pub(crate) fn send(&self, message: &Message) {
        let frame = message.encode();
        {
            let mut state = self.state();
            if state.killed {
                return;
            }
            if state.queue.len() >= self.shared.capacity {
                tracing::warn!(
                    conn = self.conn_id,
                    "outgoing queue full: closing connection"
                );
                state.killed = true;
                state.queue.clear();
            } else {
                state.queue.push_back(Outgoing::Frame(frame));
            }
        }
        self.shared.ready.notify_one();
    }

    /// Ask the connection to close, after what is queued and then `error`
    /// (an `error` message) if set.
    pub(crate) fn close(&self, error: Option<&Message>, code: u16) {
        let error = error.map(Message::encode);
        {
            let mut state = self.state();
            if state.killed {
                return;
            }
            // A close request is queued even on a full queue: it is the
            // last thing the connection sends.
            state.queue.push_back(Outgoing::Close { error, code });
        }
        self.shared.ready.notify_one();
    }

    /// The relay is shutting down: the connection sends what is queued,
    /// then closes ("going away").
    pub(crate) fn stop(&self) {
        self.state().stopping = true;
        self.shared.ready.notify_one();
    }

    /// A frame (any frame, a pong too) arrived from the peer.
    pub(crate) fn heard(&self) {
        self.state().heard = true;
    }

    /// The keepalive's look at this connection, `elapsed` after its last:
    /// raise `ping_due` every `ping_every`, and `expired` once nothing was
    /// heard for `idle_timeout`.
    pub(crate) fn sweep(&self, elapsed: Duration, ping_every: Duration, idle_timeout: Duration) {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let elapsed = ms(elapsed);
        let wake = {
            let mut state = self.state();
            if std::mem::take(&mut state.heard) {
                state.silent_ms = 0;
            } else {
                state.silent_ms = state.silent_ms.saturating_add(elapsed);
            }
            state.since_ping_ms = state.since_ping_ms.saturating_add(elapsed);
            let mut wake = false;
            if state.silent_ms >= ms(idle_timeout) && !state.expired {
                state.expired = true;
                wake = true;
            }
            if state.since_ping_ms >= ms(ping_every) {
                state.since_ping_ms = 0;
                state.ping_due = true;
                wake = true;
            }
            wake
        };
        if wake {
            self.shared.ready.notify_one();
        }
    }

    /// Everything queued so far, and the signals raised (each signal is
    /// taken once, except the kill switch and shutdown, which stay).
    pub(crate) fn drain(&self) -> Drained {
        let mut state = self.state();
        Drained {
            items: std::mem::take(&mut state.queue),
            killed: state.killed,
            stopping: state.stopping,
            expired: std::mem::take(&mut state.expired),
            ping_due: std::mem::take(&mut state.ping_due),
        }
    }

    /// Resolves once something is queued or a signal is raised. Only the
    /// connection's own task may wait (one permit is kept).
    pub(crate) async fn ready(&self) {
        loop {
            {
                let state = self.state();
                if state.killed
                    || state.stopping
                    || state.expired
                    || state.ping_due
                    || !state.queue.is_empty()
                {
                    return;
                }
            }
            self.shared.ready.notified().await;
        }
    }

    /// Resolves once the connection was killed or the relay shuts down:
    /// what a send blocked on a peer that does not read waits for.
    pub(crate) async fn halted(&self) -> Halt {
        loop {
            {
                let state = self.state();
                if state.killed {
                    return Halt::Killed;
                }
                if state.stopping {
                    return Halt::Stopping;
                }
            }
            self.shared.ready.notified().await;
        }
    }
}

/// Why [`Outbox::halted`] resolved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Halt {
    Killed,
    Stopping,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Halt, Outbox, Outgoing};

    fn leave(peer: &str) -> map_sync::Message {
        map_sync::Message::Leave {
            sender_id: peer.into(),
        }
    }

    fn frames(drained: &super::Drained) -> Vec<&[u8]> {
        drained
            .items
            .iter()
            .filter_map(|item| match item {
                Outgoing::Frame(bytes) => Some(bytes.as_slice()),
                Outgoing::Close { .. } => None,
            })
            .collect()
    }

    /// Frames come out in order, a close request after them; past the
    /// queue's capacity the connection is killed and nothing more is kept.
    #[test]
    fn an_outbox_keeps_order_and_kills_a_peer_that_falls_behind() {
        let outbox = Outbox::new(7, 8);
        outbox.send(&leave("a"));
        outbox.send(&leave("b"));
        outbox.close(None, 1000);
        let drained = outbox.drain();
        assert!(!drained.killed);
        assert_eq!(
            frames(&drained),
            [
                leave("a").encode().as_slice(),
                leave("b").encode().as_slice()
            ]
        );
        assert!(matches!(
            drained.items.back(),
            Some(Outgoing::Close { code: 1000, .. })
        ));
        assert!(outbox.drain().items.is_empty());

        for _ in 0..8 {
            outbox.send(&leave("c"));
        }
        assert!(!outbox.drain().killed);
        for _ in 0..9 {
            outbox.send(&leave("d"));
        }
        let drained = outbox.drain();
        assert!(drained.killed);
        assert!(drained.items.is_empty());
        // Once killed, nothing is queued any more.
        outbox.send(&leave("e"));
        outbox.close(None, 1000);
        assert!(outbox.drain().items.is_empty());
    }

    /// The connection's task wakes for a frame queued before or while it
    /// waits, for the kill switch and for shutdown.
    #[tokio::test]
    async fn an_outbox_wakes_its_connection() {
        let outbox = Outbox::new(1, 8);
        outbox.send(&leave("a"));
        outbox.ready().await;
        assert_eq!(outbox.drain().items.len(), 1);

        let sender = outbox.clone();
        let waiter = tokio::spawn(async move {
            outbox.ready().await;
            outbox.drain().items.len()
        });
        tokio::task::yield_now().await;
        sender.send(&leave("b"));
        let woken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(woken.ok().and_then(Result::ok), Some(1));

        let stopper = sender.clone();
        let waiter = tokio::spawn(async move { stopper.halted().await });
        tokio::task::yield_now().await;
        sender.stop();
        let halted = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(halted.ok().and_then(Result::ok), Some(Halt::Stopping));

        let killer = Outbox::new(2, 8);
        let waiting = killer.clone();
        let waiter = tokio::spawn(async move { waiting.halted().await });
        for _ in 0..9 {
            killer.send(&leave("c"));
        }
        let killed = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(killed.ok().and_then(Result::ok), Some(Halt::Killed));
    }

    /// Pings fall due every `ping_every`; a peer heard from is never
    /// expired, a silent one is once the idle timeout has passed, and each
    /// signal wakes the connection once.
    #[tokio::test]
    async fn the_keepalive_sweep_raises_pings_and_expiry() {
        let ping = Duration::from_millis(100);
        let idle = Duration::from_millis(250);
        let tick = Duration::from_millis(50);
        let outbox = Outbox::new(3, 8);

        outbox.sweep(tick, ping, idle);
        let drained = outbox.drain();
        assert!(!drained.ping_due && !drained.expired);
        outbox.sweep(tick, ping, idle);
        assert!(outbox.drain().ping_due, "due after 100 ms");
        assert!(!outbox.drain().ping_due, "taken once");

        // Heard from before every sweep: pinged, never expired.
        for _ in 0..10 {
            outbox.heard();
            outbox.sweep(tick, ping, idle);
            assert!(!outbox.drain().expired);
        }
        // Then silent: expired once 250 ms have passed without a frame.
        for _ in 0..4 {
            outbox.sweep(tick, ping, idle);
            assert!(!outbox.drain().expired);
        }
        outbox.sweep(tick, ping, idle);
        tokio::time::timeout(Duration::from_secs(5), outbox.ready())
            .await
            .expect("the expiry wakes the connection");
        assert!(outbox.drain().expired);
    }
}
