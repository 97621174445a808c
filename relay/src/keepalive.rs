//! The relay's open WebSocket connections, and the one task that keeps them
//! honest: it pings every connection every `ping_interval`, closes one whose
//! peer sent nothing (not even a pong) for `idle_timeout`, and at shutdown
//! asks every connection to close.
//!
//! One sweep over all connections instead of a timer and a shutdown watch
//! in every connection's future: an idle connection then costs its socket,
//! its outbox and a small future (1,000 idle connections: see
//! docs/performance.md, "One keepalive for all connections").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::outbox::Outbox;

/// Every open connection, by id.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    open: HashMap<u64, Outbox>,
    next_id: u64,
    /// Set at shutdown: connections opened from then on are stopped at once.
    stopping: bool,
}

impl Connections {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a new connection and return its outbox (queue of
    /// `capacity` frames).
    pub(crate) fn open(&self, capacity: usize) -> Outbox {
        let mut inner = self.inner();
        inner.next_id += 1;
        let outbox = Outbox::new(inner.next_id, capacity);
        if inner.stopping {
            outbox.stop();
        }
        inner.open.insert(outbox.conn_id, outbox.clone());
        outbox
    }

    /// Forget a connection that has ended.
    pub(crate) fn close(&self, conn_id: u64) {
        self.inner().open.remove(&conn_id);
    }

    /// Number of open connections.
    pub(crate) fn count(&self) -> usize {
        self.inner().open.len()
    }

    /// Ask every connection, and every one opened from now on, to close.
    pub(crate) fn stop_all(&self) {
        let mut inner = self.inner();
        inner.stopping = true;
        for outbox in inner.open.values() {
            outbox.stop();
        }
    }

    /// Ping and expire connections until `shutdown` is set. Sweeps a few
    /// times per interval, so pings and timeouts are late by at most a
    /// quarter of the shorter one (and a second).
    pub(crate) async fn keepalive(
        &self,
        ping_every: Duration,
        idle_timeout: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let period = (ping_every.min(idle_timeout) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                now = ticks.tick() => {
                    let elapsed = now.saturating_duration_since(last);
                    last = now;
                    for outbox in self.inner().open.values() {
                        outbox.sweep(elapsed, ping_every, idle_timeout);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Connections;

    /// Connections get distinct ids and are counted until closed; shutdown
    /// stops those open and those opened after it.
    #[test]
    fn connections_are_counted_and_stopped() {
        let connections = Connections::default();
        let a = connections.open(8);
        let b = connections.open(8);
        assert_ne!(a.conn_id, b.conn_id);
        assert_eq!(connections.count(), 2);
        connections.close(a.conn_id);
        assert_eq!(connections.count(), 1);

        connections.stop_all();
        assert!(b.drain().stopping);
        assert!(!a.drain().stopping, "closed before shutdown");
        let late = connections.open(8);
        assert!(late.drain().stopping);
    }
}
