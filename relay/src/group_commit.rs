//! Group commit: the running relay's plan writes (new changes, compactions,
//! new plans) go to one writer thread that owns its own SQLite connection
//! ([`RelayDb::open_writer`]). The thread takes every request queued at that
//! moment (up to [`MAX_GROUP`] requests or [`MAX_GROUP_BYTES`]) and commits
//! them in ONE transaction, so one `synchronous=FULL` fsync covers them all,
//! then answers each request. While it commits, new requests queue up and
//! form the next group: there is no added delay, a lone writer commits at
//! once.
//!
//! Durability is unchanged: a request is answered `Ok` only after the
//! transaction holding it has committed, and the hub acknowledges or passes
//! changes on only after that answer.
//!
//! Failures stay per request:
//! - each request runs inside its own savepoint, so a request whose
//!   statements fail is rolled back alone and gets its own error, while the
//!   others of the group commit;
//! - if the group transaction itself fails (BEGIN, COMMIT, or SQLite rolled
//!   the whole transaction back, e.g. on a full disk or an I/O error),
//!   nothing of it was committed, and every request of the group is retried
//!   in its own transaction: each gets its own result, so one request that
//!   cannot be stored (say a compaction snapshot too large for the disk
//!   that is left) does not fail the others. A full disk thus still reaches
//!   each caller as `SQLITE_FULL` ([`crate::error::is_disk_full`]).
//!
//! Shutdown ([`GroupCommit::shutdown`]) closes the queue; the thread commits
//! what is queued, answers it, closes its connection and is joined, before
//! the relay checkpoints the database.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::db::{self, ChangeBatch, RelayDb};
use crate::error::{RelayError, Result};

/// At most this many requests share one transaction.
pub(crate) const MAX_GROUP: usize = 512;
/// A group stops growing once its requests hold this many bytes.
pub(crate) const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// Changes to make durable, owned (they cross to the writer thread).
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedBatch {
    /// The plan.
    pub(crate) plan: String,
    /// The user whose connection delivered the changes.
    pub(crate) user_id: i64,
    /// The changes, as `Automerge::save_after(previous heads)`.
    pub(crate) incremental: Vec<u8>,
    /// Hex hashes of the changes (delivery records).
    pub(crate) hashes: Vec<String>,
    /// If set: the whole document, replacing every stored chunk.
    pub(crate) snapshot: Option<Vec<u8>>,
}

impl OwnedBatch {
    fn borrowed(&self) -> ChangeBatch<'_> {
        ChangeBatch {
            plan: &self.plan,
            user_id: self.user_id,
            incremental: &self.incremental,
            hashes: &self.hashes,
            snapshot: self.snapshot.as_deref(),
        }
    }

    fn size(&self) -> usize {
        self.incremental.len()
            + self.snapshot.as_ref().map_or(0, Vec::len)
            + self.hashes.iter().map(String::len).sum::<usize>()
    }
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// New changes of an existing plan ([`db::write_changes`]); answers `true`.
    Append,
    /// A new plan ([`db::insert_plan`]); answers `false` if it existed.
    Create,
}

struct Request {
    op: Op,
    batch: OwnedBatch,
    reply: oneshot::Sender<Result<bool>>,
}

/// The handle the hub writes through. See the module documentation.
pub(crate) struct GroupCommit {
    queue: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<Stats>,
}

/// Counters kept by the writer thread.
#[derive(Debug, Default)]
struct Stats {
    /// Requests answered.
    requests: AtomicU64,
    /// Groups taken from the queue (one transaction each, unless it had to
    /// fall back to one transaction per request).
    groups: AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn stopped() -> RelayError {
    RelayError::Internal("the database writer has stopped".into())
}

impl GroupCommit {
    /// Open the writer's connection to `db`'s file and start its thread.
    pub(crate) fn start(db: &RelayDb) -> Result<GroupCommit> {
        let conn = db.open_writer()?;
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let counters = stats.clone();
        let thread = std::thread::Builder::new()
            .name("map-relay-db-writer".into())
            .spawn(move || run(conn, rx, &counters))?;
        Ok(GroupCommit {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    /// Make new changes of an existing plan durable (compacting if the batch
    /// has a snapshot). Returns once committed.
    pub(crate) async fn append(&self, batch: OwnedBatch) -> Result<()> {
        self.submit(Op::Append, batch).await.map(|_| ())
    }

    /// Store a new plan owned by `batch.user_id`. `Ok(false)`: it exists
    /// already (nothing stored). Returns once committed.
    pub(crate) async fn create(&self, batch: OwnedBatch) -> Result<bool> {
        self.submit(Op::Create, batch).await
    }

    async fn submit(&self, op: Op, batch: OwnedBatch) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        {
            let queue = lock(&self.queue);
            let queue = queue.as_ref().ok_or_else(stopped)?;
            queue
                .send(Request { op, batch, reply })
                .map_err(|_| stopped())?;
        }
        answer.await.map_err(|_| stopped())?
    }

    /// (requests answered, groups committed) so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.stats.requests.load(Ordering::Relaxed),
            self.stats.groups.load(Ordering::Relaxed),
        )
    }

    /// Stop taking requests, let the thread commit and answer the queued
    /// ones, and wait for it to close its connection. Idempotent.
    pub(crate) async fn shutdown(&self) {
        drop(lock(&self.queue).take());
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {
                    let (requests, groups) = self.counts();
                    tracing::info!(requests, groups, "database writer stopped");
                }
                Ok(Err(_)) => tracing::error!("the database writer thread panicked"),
                Err(e) => tracing::error!(error = %e, "waiting for the database writer failed"),
            }
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Without `shutdown`: close the queue; the thread finishes what is
        // queued and exits on its own.
        drop(lock(&self.queue).take());
    }
}

/// The writer thread: one group per loop, until the queue is closed and empty.
fn run(mut conn: Connection, queue: mpsc::Receiver<Request>, stats: &Stats) {
    while let Ok(first) = queue.recv() {
        let mut bytes = first.batch.size();
        let mut group = vec![first];
        while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
            match queue.try_recv() {
                Ok(next) => {
                    bytes += next.batch.size();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let ops: Vec<(Op, &OwnedBatch)> = group.iter().map(|r| (r.op, &r.batch)).collect();
        let results = std::panic::catch_unwind(AssertUnwindSafe(|| commit_group(&mut conn, &ops)));
        drop(ops);
        stats.groups.fetch_add(1, Ordering::Relaxed);
        stats
            .requests
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        match results {
            Ok(results) => {
                for (request, result) in group.into_iter().zip(results) {
                    // The caller may have gone away (connection closed).
                    let _ = request.reply.send(result);
                }
            }
            Err(_) => {
                // Every reply is dropped: each caller gets "writer stopped"
                // for this group only; the transaction rolled back on unwind.
                tracing::error!(
                    requests = group.len(),
                    "the database writer panicked on a group"
                );
            }
        }
    }
}

/// Commit `ops` (in one transaction if it can); one result per op, in order.
fn commit_group(conn: &mut Connection, ops: &[(Op, &OwnedBatch)]) -> Vec<Result<bool>> {
    if let [(op, batch)] = ops {
        return vec![commit_one(conn, *op, batch)];
    }
    match try_group(conn, ops) {
        Ok(results) => {
            tracing::trace!(requests = ops.len(), "group committed");
            results
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                requests = ops.len(),
                "group commit failed: committing its requests one by one"
            );
            ops.iter()
                .map(|(op, batch)| commit_one(conn, *op, batch))
                .collect()
        }
    }
}

fn apply(conn: &Connection, op: Op, batch: &OwnedBatch, now: i64) -> Result<bool> {
    let batch = batch.borrowed();
    match op {
        Op::Append => db::write_changes(conn, &batch, now).map(|()| true),
        Op::Create => db::insert_plan(conn, &batch, now),
    }
}

/// One transaction for the whole group, a savepoint per request. `Err`:
/// nothing was committed (the caller retries request by request).
fn try_group(conn: &mut Connection, ops: &[(Op, &OwnedBatch)]) -> Result<Vec<Result<bool>>> {
    let now = db::now_ms();
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(ops.len());
    for (op, batch) in ops {
        let mut savepoint = tx.savepoint()?;
        let result = apply(&savepoint, *op, batch, now);
        match result {
            Ok(_) => savepoint.commit()?,
            Err(_) => {
                savepoint.rollback()?;
                savepoint.commit()?;
            }
        }
        if tx.is_autocommit() {
            // SQLite rolled the whole transaction back (full disk, I/O error).
            return Err(RelayError::Internal(
                "the group transaction was rolled back".into(),
            ));
        }
        results.push(result);
    }
    tx.commit()?;
    Ok(results)
}

fn commit_one(conn: &mut Connection, op: Op, batch: &OwnedBatch) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let result = apply(&tx, op, batch, db::now_ms())?;
    tx.commit()?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(users: &[&str]) -> (tempfile::TempDir, RelayDb, Vec<i64>) {
        let dir = tempfile::tempdir().unwrap();
        let db = RelayDb::open(dir.path().join("relay.db")).unwrap();
        let mut ids = Vec::new();
        for name in users {
            db.add_user(name).unwrap();
            let id = db
                .lock()
                .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
                .unwrap();
            ids.push(id);
        }
        (dir, db, ids)
    }

    fn batch(plan: &str, user_id: i64, data: &[u8], hash: &str) -> OwnedBatch {
        OwnedBatch {
            plan: plan.to_owned(),
            user_id,
            incremental: data.to_vec(),
            hashes: vec![hash.to_owned()],
            snapshot: None,
        }
    }

    /// The stored chunks of `plan`, in order.
    fn chunks(db: &RelayDb, plan: &str) -> Vec<Vec<u8>> {
        let conn = db.lock();
        let mut stmt = conn
            .prepare("SELECT data FROM plan_chunks WHERE plan = ?1 ORDER BY seq")
            .unwrap();
        stmt.query_map([plan], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_to_many_plans_are_all_durable_and_acknowledged() {
        let (dir, db, ids) = setup(&["alice"]);
        let alice = ids[0];
        let writer = Arc::new(GroupCommit::start(&db).unwrap());
        let plans: Vec<String> = (0..40).map(|_| crate::plan_id::random()).collect();
        // Creations in parallel, then 25 rounds of appends on every plan in
        // parallel (one at a time per plan, as the hub does).
        let mut tasks = Vec::new();
        for plan in &plans {
            let writer = writer.clone();
            let plan = plan.clone();
            tasks.push(tokio::spawn(async move {
                assert!(
                    writer
                        .create(batch(&plan, alice, b"c0", &format!("{plan}-0")))
                        .await
                        .unwrap()
                );
                for i in 1..=25 {
                    let data = format!("c{i}");
                    writer
                        .append(batch(&plan, alice, data.as_bytes(), &format!("{plan}-{i}")))
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // A second create of an existing plan stores nothing.
        assert!(
            !writer
                .create(batch(&plans[0], alice, b"again", "again"))
                .await
                .unwrap()
        );
        let (requests, groups) = writer.counts();
        assert_eq!(requests, 40 * 26 + 1);
        // 40 plans writing at once: requests did share transactions.
        assert!(groups < requests, "{groups} groups for {requests} requests");
        writer.shutdown().await;
        // Every acknowledged append is there, in order, after a reopen.
        drop(db);
        let db = RelayDb::open_existing(dir.path().join("relay.db")).unwrap();
        for plan in &plans {
            let expected: Vec<Vec<u8>> = (0..=25).map(|i| format!("c{i}").into_bytes()).collect();
            assert_eq!(chunks(&db, plan), expected);
            assert_eq!(db.deliveries(plan).unwrap().len(), 26);
        }
        assert_eq!(db.plans_for(alice).unwrap().len(), plans.len());
    }

    #[test]
    fn a_failing_request_does_not_lose_the_others() {
        let (_dir, db, ids) = setup(&["alice"]);
        let alice = ids[0];
        let mut conn = db.open_writer().unwrap();
        let good: Vec<String> = (0..3).map(|_| crate::plan_id::random()).collect();
        for plan in &good {
            db.create_plan(&batch(plan, alice, b"first", &format!("{plan}-0")).borrowed())
                .unwrap();
        }
        let unknown = crate::plan_id::random();
        let new_plan = crate::plan_id::random();
        let compact = OwnedBatch {
            snapshot: Some(b"snapshot".to_vec()),
            ..batch(&good[2], alice, b"", "compacted")
        };
        let appends = [
            batch(&good[0], alice, b"second", "g0-1"),
            // No such plan: the chunk's foreign key fails.
            batch(&unknown, alice, b"orphan", "orphan"),
            batch(&good[1], alice, b"second", "g1-1"),
            batch(&new_plan, alice, b"created", "n-0"),
            compact,
            // A user that does not exist: the delivery's foreign key fails,
            // after its chunk was written (the savepoint takes both back).
            batch(&good[1], 999_999, b"by nobody", "nobody"),
        ];
        let ops: Vec<(Op, &OwnedBatch)> = appends
            .iter()
            .enumerate()
            .map(|(i, b)| (if i == 3 { Op::Create } else { Op::Append }, b))
            .collect();
        let results = commit_group(&mut conn, &ops);
        assert_eq!(results.len(), ops.len());
        assert!(matches!(results[0], Ok(true)));
        assert!(
            matches!(results[1], Err(RelayError::Db(_))),
            "{:?}",
            results[1]
        );
        assert!(matches!(results[2], Ok(true)));
        assert!(matches!(results[3], Ok(true)));
        assert!(matches!(results[4], Ok(true)));
        assert!(
            matches!(results[5], Err(RelayError::Db(_))),
            "{:?}",
            results[5]
        );
        drop(conn);
        assert_eq!(
            chunks(&db, &good[0]),
            [b"first".to_vec(), b"second".to_vec()]
        );
        assert_eq!(
            chunks(&db, &good[1]),
            [b"first".to_vec(), b"second".to_vec()]
        );
        // The snapshot replaced every chunk of its plan, in the same group.
        assert_eq!(chunks(&db, &good[2]), [b"snapshot".to_vec()]);
        assert_eq!(chunks(&db, &new_plan), [b"created".to_vec()]);
        assert!(chunks(&db, &unknown).is_empty());
        assert!(db.load_plan(&unknown).unwrap().is_none());
        assert_eq!(db.delivered_by(&good[1], "nobody").unwrap(), None);
        assert_eq!(
            db.delivered_by(&good[0], "g0-1").unwrap().as_deref(),
            Some("alice")
        );
    }

    #[test]
    fn a_failed_group_commit_is_retried_request_by_request() {
        let (_dir, db, ids) = setup(&["alice"]);
        let alice = ids[0];
        let mut conn = db.open_writer().unwrap();
        let plan = crate::plan_id::random();
        db.create_plan(&batch(&plan, alice, b"first", "p-0").borrowed())
            .unwrap();
        // Deferred foreign keys: the orphan chunk passes its statement and
        // makes the COMMIT fail, as a full disk would: nothing of the group
        // is committed, so each request is retried on its own (where the
        // check is immediate again: SQLite resets the pragma at the end of
        // every transaction).
        conn.pragma_update(None, "defer_foreign_keys", "ON")
            .unwrap();
        let unknown = crate::plan_id::random();
        let group = [
            batch(&plan, alice, b"second", "p-1"),
            batch(&unknown, alice, b"orphan", "orphan"),
            batch(&plan, alice, b"third", "p-2"),
        ];
        let ops: Vec<(Op, &OwnedBatch)> = group.iter().map(|b| (Op::Append, b)).collect();
        assert!(
            try_group(&mut conn, &ops).is_err(),
            "the shared COMMIT fails"
        );
        assert!(chunks(&db, &plan).len() == 1, "and commits nothing");
        conn.pragma_update(None, "defer_foreign_keys", "ON")
            .unwrap();
        let results = commit_group(&mut conn, &ops);
        assert!(matches!(results[0], Ok(true)), "{:?}", results[0]);
        assert!(
            matches!(results[1], Err(RelayError::Db(_))),
            "{:?}",
            results[1]
        );
        assert!(matches!(results[2], Ok(true)), "{:?}", results[2]);
        assert!(conn.is_autocommit(), "no transaction left open");
        drop(conn);
        assert_eq!(
            chunks(&db, &plan),
            [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
        );
        assert!(chunks(&db, &unknown).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_answers_queued_requests_then_refuses_new_ones() {
        let (_dir, db, ids) = setup(&["alice"]);
        let alice = ids[0];
        let writer = Arc::new(GroupCommit::start(&db).unwrap());
        let plan = crate::plan_id::random();
        assert!(writer.create(batch(&plan, alice, b"a", "a")).await.unwrap());
        writer.shutdown().await;
        assert!(matches!(
            writer.append(batch(&plan, alice, b"b", "b")).await,
            Err(RelayError::Internal(_))
        ));
        writer.shutdown().await;
        assert_eq!(chunks(&db, &plan), [b"a".to_vec()]);
    }
}
