//! `map-load`: a load tool for any relay that speaks the automerge-repo
//! WebSocket protocol (`map-relay`, or the JS automerge-repo sync server).
//!
//! It plays many peers from one process, with no client-side throttle, and
//! measures four scenarios:
//!
//! - `converge`: one writer makes N changes (default 1,000) to one plan while
//!   a second peer follows; reports the time from the writer's last change
//!   until the follower holds the writer's heads.
//! - `fanout`: P peers (default 50) follow one plan while a writer makes N
//!   changes (default 100), one at a time; reports the per-change latency
//!   (writer commit -> each follower applied it), p50 and p99.
//! - `many-docs`: a writer pushes D plans (default 200); a fresh peer fetches
//!   them all; reports plans per second.
//! - `idle`: C connections (default 1,000) join and stay idle; reports the
//!   relay's resident memory with them open.
//! - `at-rest`: W writers (default 8, in parallel) push 10,000 small
//!   plan-like documents (about 20 keys each), so the relay opens each plan
//!   once; then every connection closes and the relay is left idle for a few
//!   seconds (`--at-rest-wait`, longer than the relay's unload delay);
//!   reports the relay's resident memory at rest. `--spawn-relay` starts
//!   `map-relay` with `--unload-after` from `--unload-after` (default 2 s).
//! - `throughput`: W writers (default 50), each on its own plan and its own
//!   connection, make N changes each (default 200), each change sent as soon
//!   as the relay acknowledged the previous one (the relay commits every
//!   change to SQLite with `synchronous=FULL` before it answers); reports
//!   durable changes per second through the relay.
//!
//! `fanout` with `--peers 1000` needs more than 1,024 descriptors: map-load
//! raises its own limit, and a relay started with `--spawn-relay` accepts
//! 5,000 connections (per address too).
//!
//! For each scenario it records the relay's CPU time and peak RSS from
//! `/proc` when it knows the relay's pid (`--relay-pid`, or `--spawn-relay`
//! to start a fresh `map-relay` with a temporary database and a user).
//! Peak RSS is reset before each scenario through `/proc/PID/clear_refs`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ROOT, ReadDoc};
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use map_bench::SpawnedRelay;
use map_model::DocumentId;
use map_sync::message::{Message, PROTOCOL_VERSION};
use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser, Debug)]
#[command(about = "Load tool for relays speaking the automerge-repo protocol")]
struct Args {
    /// Relay WebSocket URL (ignored with --spawn-relay).
    #[arg(long)]
    url: Option<String>,
    /// Bearer token (sent as `Authorization` and `?token=`); none for servers without auth.
    #[arg(long, env = "MAP_LOAD_TOKEN")]
    token: Option<String>,
    /// Pid of the relay process, to read its CPU time and peak RSS.
    #[arg(long)]
    relay_pid: Option<i32>,
    /// Start this `map-relay` binary on a free port with a temporary database.
    #[arg(long)]
    spawn_relay: Option<PathBuf>,
    /// Scenarios to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Changes the writer makes in `converge`.
    #[arg(long, default_value_t = 1000)]
    converge_changes: usize,
    /// Followers in `fanout`.
    #[arg(long, default_value_t = 50)]
    peers: usize,
    /// Changes the writer makes in `fanout`.
    #[arg(long, default_value_t = 100)]
    fanout_changes: usize,
    /// Plans in `many-docs`.
    #[arg(long, default_value_t = 200)]
    docs: usize,
    /// Connections in `idle`.
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// Plans stored in `at-rest`.
    #[arg(long, default_value_t = 10_000)]
    at_rest_plans: usize,
    /// Writer connections pushing them in parallel.
    #[arg(long, default_value_t = 8)]
    at_rest_writers: usize,
    /// Seconds to stay idle after every connection closed, before reading RSS.
    #[arg(long, default_value_t = 5)]
    at_rest_wait: u64,
    /// `--unload-after` (seconds) for a relay started with --spawn-relay.
    #[arg(long, default_value_t = 2)]
    unload_after: u64,
    /// Writers (one plan and one connection each) in `throughput`.
    #[arg(long, default_value_t = 50)]
    writers: usize,
    /// Changes each writer makes in `throughput`.
    #[arg(long, default_value_t = 200)]
    writer_changes: usize,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Label for the server in the output.
    #[arg(long, default_value = "relay")]
    label: String,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    Converge,
    Fanout,
    ManyDocs,
    Idle,
    AtRest,
    Throughput,
}

/// What one scenario measured.
#[derive(Debug, Serialize)]
struct Outcome {
    server: String,
    scenario: Scenario,
    /// The scenario's main client-side figure, described by `metric`.
    value: f64,
    metric: &'static str,
    /// Extra client-side figures (p99, counts).
    detail: String,
    /// Relay CPU time (user + system) during the scenario, seconds.
    cpu_s: Option<f64>,
    /// Relay peak RSS during the scenario, MiB.
    peak_rss_mib: Option<f64>,
    /// Relay RSS at the end of the scenario, MiB.
    rss_mib: Option<f64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // 1,000 idle connections need more than the usual 1,024 descriptors.
    let _ = rlimit::increase_nofile_limit(65_536);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let mut spawned = None;
    let (url, token, pid) = match &args.spawn_relay {
        Some(bin) => {
            let relay = SpawnedRelay::start(
                bin,
                "load",
                &[
                    "--max-connections",
                    "5000",
                    "--max-connections-per-ip",
                    "5000",
                    "--max-connect-attempts",
                    "0",
                    "--unload-after",
                    &args.unload_after.to_string(),
                ],
            )?;
            let out = (
                relay.url.clone(),
                Some(relay.token.clone()),
                Some(relay.pid()),
            );
            spawned = Some(relay);
            out
        }
        None => (
            args.url
                .clone()
                .ok_or_else(|| anyhow!("give --url ws://HOST:PORT/ or --spawn-relay PATH"))?,
            args.token.clone(),
            args.relay_pid,
        ),
    };
    // `ws://host:port` has no path; the handshake needs one.
    let url = if url.matches('/').count() == 2 {
        format!("{url}/")
    } else {
        url
    };
    let target = Target { url, token };
    let proc = pid.map(ProcStats::new);
    let scenarios = if args.scenario.is_empty() {
        vec![
            Scenario::Converge,
            Scenario::Fanout,
            Scenario::ManyDocs,
            Scenario::Idle,
            Scenario::AtRest,
            Scenario::Throughput,
        ]
    } else {
        args.scenario.clone()
    };
    let mut outcomes = Vec::new();
    for scenario in scenarios {
        let before = proc.as_ref().map(|p| p.begin()).transpose()?;
        let client0 = self_cpu_s();
        let (value, metric, mut detail) = match scenario {
            Scenario::Converge => converge(&target, args.converge_changes).await?,
            Scenario::Fanout => fanout(&target, args.peers, args.fanout_changes).await?,
            Scenario::Throughput => throughput(&target, args.writers, args.writer_changes).await?,
            Scenario::ManyDocs => many_docs(&target, args.docs).await?,
            Scenario::Idle => idle(&target, args.idle, proc.as_ref()).await?,
            Scenario::AtRest => {
                at_rest(
                    &target,
                    args.at_rest_plans,
                    args.at_rest_writers,
                    Duration::from_secs(args.at_rest_wait),
                    proc.as_ref(),
                )
                .await?
            }
        };
        // map-load plays every peer on the same cores as the relay: its own
        // CPU time says how much of a latency is the client's.
        if let (Ok(c1), Ok(c0)) = (self_cpu_s(), client0) {
            detail.push_str(&format!("; map-load CPU {:.2} s", c1 - c0));
        }
        let (cpu_s, peak_rss_mib, rss_mib) = match (&proc, before) {
            (Some(p), Some(cpu0)) => {
                let (cpu, peak, rss) = p.end(cpu0)?;
                (Some(cpu), Some(peak), Some(rss))
            }
            _ => (None, None, None),
        };
        outcomes.push(Outcome {
            server: args.label.clone(),
            scenario,
            value,
            metric,
            detail,
            cpu_s,
            peak_rss_mib,
            rss_mib,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        print_table(&outcomes);
    }
    drop(spawned);
    Ok(())
}

fn print_table(outcomes: &[Outcome]) {
    println!(
        "{:<8} {:<10} {:>12} {:<24} {:>9} {:>11} {:>9}  detail",
        "server", "scenario", "value", "metric", "cpu s", "peak MiB", "rss MiB"
    );
    let opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
    for o in outcomes {
        println!(
            "{:<8} {:<10} {:>12.2} {:<24} {:>9} {:>11} {:>9}  {}",
            o.server,
            serde_json::to_value(o.scenario)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            o.value,
            o.metric,
            opt(o.cpu_s, 3),
            opt(o.peak_rss_mib, 1),
            opt(o.rss_mib, 1),
            o.detail
        );
    }
}

/// Where the peers connect.
#[derive(Clone)]
struct Target {
    url: String,
    token: Option<String>,
}

// ---------------------------------------------------------------- scenarios

async fn converge(t: &Target, changes: usize) -> Result<(f64, &'static str, String)> {
    let id = DocumentId::random().to_string();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "seq", 0_i64)?;
    doc.commit();
    let writer = PeerHandle::connect(t, None).await?;
    writer.add(&id, doc).await?;
    writer.wait_pushed(&id, Duration::from_secs(30)).await?;
    let follower = PeerHandle::connect(t, None).await?;
    follower.request(&id).await?;
    follower
        .wait_heads(&id, writer.heads(&id).await?, Duration::from_secs(30))
        .await?;
    let start = Instant::now();
    for i in 1..=changes {
        writer
            .edit(&id, move |d| {
                let _ = d.put(ROOT, "seq", i as i64);
                d.commit();
            })
            .await?;
    }
    let last = Instant::now();
    let heads = writer.heads(&id).await?;
    follower
        .wait_heads(&id, heads, Duration::from_secs(120))
        .await?;
    let after_last = last.elapsed();
    Ok((
        after_last.as_secs_f64() * 1e3,
        "ms after last change",
        format!(
            "{changes} changes, total {:.0} ms",
            start.elapsed().as_secs_f64() * 1e3
        ),
    ))
}

async fn fanout(t: &Target, peers: usize, changes: usize) -> Result<(f64, &'static str, String)> {
    let id = DocumentId::random().to_string();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "seq", 0_i64)?;
    doc.commit();
    let writer = PeerHandle::connect(t, None).await?;
    writer.add(&id, doc).await?;
    writer.wait_pushed(&id, Duration::from_secs(30)).await?;

    let epoch = Instant::now();
    // Commit time of change i, in ns since epoch (0 = not yet), and how many
    // followers have seen it. Followers record their latencies in a shared
    // list and only the last one for a change wakes this task: waking it once
    // per sample cost map-load a context switch per follower and change, on
    // the cores the server under test runs on.
    let committed: Arc<Vec<AtomicU64>> =
        Arc::new((0..=changes).map(|_| AtomicU64::new(0)).collect());
    let reached: Arc<Vec<AtomicUsize>> =
        Arc::new((0..=changes).map(|_| AtomicUsize::new(0)).collect());
    let samples = Arc::new(Mutex::new(Vec::with_capacity(peers * changes)));
    let all_seen = Arc::new(Notify::new());
    let mut followers = Vec::new();
    for _ in 0..peers {
        let (committed, reached) = (committed.clone(), reached.clone());
        let (samples, all_seen) = (samples.clone(), all_seen.clone());
        let seen = Arc::new(AtomicU64::new(0));
        let observer: Observer = Box::new(move |doc: &AutoCommit| {
            let Ok(Some((automerge::Value::Scalar(s), _))) = doc.get(ROOT, "seq") else {
                return;
            };
            let automerge::ScalarValue::Int(now_seq) = s.as_ref() else {
                return;
            };
            let now_seq = *now_seq as u64;
            let prev = seen.swap(now_seq, Ordering::SeqCst);
            let now = epoch.elapsed();
            for s in (prev + 1)..=now_seq {
                let (Some(at), Some(count)) = (committed.get(s as usize), reached.get(s as usize))
                else {
                    continue;
                };
                let at = Duration::from_nanos(at.load(Ordering::SeqCst));
                if let Ok(mut v) = samples.lock() {
                    v.push(now.saturating_sub(at));
                }
                if count.fetch_add(1, Ordering::SeqCst) + 1 == peers {
                    all_seen.notify_one();
                }
            }
        });
        let f = PeerHandle::connect(t, Some(observer)).await?;
        f.request(&id).await?;
        followers.push(f);
    }
    let heads = writer.heads(&id).await?;
    for f in &followers {
        f.wait_heads(&id, heads.clone(), Duration::from_secs(60))
            .await?;
    }
    for i in 1..=changes {
        let committed = committed.clone();
        writer
            .edit(&id, move |d| {
                let _ = d.put(ROOT, "seq", i as i64);
                d.commit();
                committed[i].store(epoch.elapsed().as_nanos() as u64, Ordering::SeqCst);
            })
            .await?;
        // Wait until every follower has seen change i (bounded).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = reached[i].load(Ordering::SeqCst);
            if got >= peers {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, all_seen.notified())
                .await
                .is_err()
            {
                bail!("fanout: change {i} reached only {got} of {peers} followers in 30 s");
            }
        }
    }
    let mut latencies = std::mem::take(
        &mut *samples
            .lock()
            .map_err(|_| anyhow!("a follower panicked while recording"))?,
    );
    latencies.sort();
    let p = |q: f64| {
        let idx = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Ok((
        p(0.5),
        "p50 ms per change",
        format!(
            "p99 {:.2} ms, max {:.2} ms, {} samples, {peers} peers",
            p(0.99),
            p(1.0),
            latencies.len()
        ),
    ))
}

async fn throughput(
    t: &Target,
    writers: usize,
    changes: usize,
) -> Result<(f64, &'static str, String)> {
    // Connect every writer and push its plan first, so the timed part is
    // changes only.
    let mut peers = Vec::with_capacity(writers);
    for _ in 0..writers {
        let id = DocumentId::random().to_string();
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "seq", 0_i64)?;
        doc.commit();
        let p = PeerHandle::connect(t, None).await?;
        p.add(&id, doc).await?;
        peers.push((p, id));
    }
    for (p, id) in &peers {
        p.wait_pushed(id, Duration::from_secs(60)).await?;
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for (p, id) in peers {
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::with_capacity(changes);
            for i in 1..=changes {
                let sent = Instant::now();
                p.edit(&id, move |d| {
                    let _ = d.put(ROOT, "seq", i as i64);
                    d.commit();
                })
                .await?;
                p.wait_pushed(&id, Duration::from_secs(60)).await?;
                acks.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(acks)
        }));
    }
    let mut acks = Vec::with_capacity(writers * changes);
    for task in tasks {
        acks.extend(task.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    acks.sort();
    let p = |q: f64| {
        let idx = ((acks.len() as f64 - 1.0) * q).round() as usize;
        acks.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let total = writers * changes;
    Ok((
        total as f64 / secs,
        "durable changes/s",
        format!(
            "{total} changes by {writers} writers in {secs:.2} s; ack p50 {:.2} ms, p99 {:.2} ms",
            p(0.5),
            p(0.99)
        ),
    ))
}

async fn many_docs(t: &Target, docs: usize) -> Result<(f64, &'static str, String)> {
    let writer = PeerHandle::connect(t, None).await?;
    let mut ids = Vec::with_capacity(docs);
    for n in 0..docs {
        let id = DocumentId::random().to_string();
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "title", format!("plan {n}"))?;
        for i in 0..20 {
            doc.put(ROOT, format!("task{i}"), format!("task {i} of plan {n}"))?;
        }
        doc.commit();
        writer.add(&id, doc).await?;
        ids.push(id);
    }
    let mut expected = HashMap::new();
    for id in &ids {
        writer.wait_pushed(id, Duration::from_secs(60)).await?;
        expected.insert(id.clone(), writer.heads(id).await?);
    }
    let reader = PeerHandle::connect(t, None).await?;
    let start = Instant::now();
    for id in &ids {
        reader.request(id).await?;
    }
    for id in &ids {
        reader
            .wait_heads(id, expected[id].clone(), Duration::from_secs(60))
            .await?;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((
        docs as f64 / secs,
        "plans/s fetched",
        format!("{docs} plans in {:.0} ms", secs * 1e3),
    ))
}

async fn idle(
    t: &Target,
    conns: usize,
    proc: Option<&ProcStats>,
) -> Result<(f64, &'static str, String)> {
    let base = proc.map(|p| p.rss_mib()).transpose()?;
    let mut open = Vec::with_capacity(conns);
    for _ in 0..conns {
        open.push(PeerHandle::connect(t, None).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with = proc.map(|p| p.rss_mib()).transpose()?;
    let value = with.unwrap_or(0.0);
    let detail = match (base, with) {
        (Some(b), Some(w)) => format!(
            "{conns} connections; RSS {b:.1} -> {w:.1} MiB ({:.1} KiB each)",
            (w - b) * 1024.0 / conns as f64
        ),
        _ => format!("{conns} connections (no relay pid: RSS unknown)"),
    };
    drop(open);
    Ok((value, "relay RSS MiB", detail))
}

/// A small plan-like document: about 20 keys in the plan's shape.
fn plan_like(n: usize) -> Result<AutoCommit> {
    use automerge::ObjType;
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "schema", 1_u64)?;
    let header = doc.put_object(ROOT, "header", ObjType::Map)?;
    doc.put(&header, "title", format!("Plan {n}"))?;
    doc.put(
        &header,
        "objective",
        "Go live before the end of the quarter",
    )?;
    doc.put(&header, "go_live", "2027-03-31")?;
    doc.put(&header, "created_at", 1_764_000_000_000_i64 + n as i64)?;
    let people = doc.put_object(ROOT, "people", ObjType::Map)?;
    let p = doc.put_object(&people, "p0000000000a", ObjType::Map)?;
    doc.put(&p, "name", "Ana Buyer")?;
    doc.put(&p, "email", "ana@example.com")?;
    doc.put(&p, "side", "buyer")?;
    let milestones = doc.put_object(ROOT, "milestones", ObjType::Map)?;
    let m = doc.put_object(&milestones, "m0000000000a", ObjType::Map)?;
    doc.put(&m, "title", "Signature")?;
    doc.put(&m, "due", "2027-02-15")?;
    let tasks = doc.put_object(ROOT, "tasks", ObjType::Map)?;
    for i in 0..2 {
        let t = doc.put_object(&tasks, format!("t000000000{i:02}"), ObjType::Map)?;
        doc.put(&t, "title", format!("Task {i} of plan {n}"))?;
        doc.put(&t, "status", "todo")?;
        doc.put(&t, "owner", "p0000000000a")?;
        doc.put(&t, "due", "2027-01-15")?;
    }
    doc.commit();
    Ok(doc)
}

async fn at_rest(
    t: &Target,
    plans: usize,
    writers: usize,
    wait: Duration,
    proc: Option<&ProcStats>,
) -> Result<(f64, &'static str, String)> {
    const BATCH: usize = 50;
    let writers = writers.clamp(1, plans.max(1));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(600);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let t = t.clone();
        let mine: Vec<usize> = (w..plans).step_by(writers).collect();
        tasks.push(tokio::spawn(async move {
            let writer = PeerHandle::connect(&t, None).await?;
            for chunk in mine.chunks(BATCH) {
                let mut ids = Vec::with_capacity(chunk.len());
                for &n in chunk {
                    let id = DocumentId::random().to_string();
                    writer.add(&id, plan_like(n)?).await?;
                    ids.push(id);
                }
                for id in &ids {
                    let left = deadline.saturating_duration_since(Instant::now());
                    writer.wait_pushed(id, left).await?;
                    // The relay has it: keep the load tool's own memory flat.
                    writer.send(Cmd::Forget(id.clone()))?;
                }
            }
            Ok::<_, anyhow::Error>(writer)
        }));
    }
    let mut open = Vec::new();
    for task in tasks {
        open.push(task.await??);
    }
    let pushed = start.elapsed();
    let loaded = proc.map(|p| p.rss_mib()).transpose()?;
    // Close every connection, then leave the relay idle.
    drop(open);
    tokio::time::sleep(wait).await;
    let rest = proc.map(|p| p.rss_mib()).transpose()?;
    let detail = format!(
        "{plans} plans pushed by {writers} writers in {:.1} s ({:.0} plans/s); RSS {} MiB with connections open, {} MiB {}s after closing",
        pushed.as_secs_f64(),
        plans as f64 / pushed.as_secs_f64(),
        loaded.map_or("?".into(), |v| format!("{v:.1}")),
        rest.map_or("?".into(), |v| format!("{v:.1}")),
        wait.as_secs()
    );
    Ok((rest.unwrap_or(0.0), "relay RSS MiB at rest", detail))
}

// ---------------------------------------------------------------- peer

type Observer = Box<dyn Fn(&AutoCommit) + Send + Sync>;

enum Cmd {
    Add(String, Box<AutoCommit>),
    Request(String),
    Edit(String, Box<dyn FnOnce(&mut AutoCommit) + Send>),
    Status(String, oneshot::Sender<Option<DocStatus>>),
    Forget(String),
}

struct DocStatus {
    heads: Vec<ChangeHash>,
    their_heads: Option<Vec<ChangeHash>>,
    unavailable: bool,
}

struct DocState {
    doc: AutoCommit,
    state: sync::State,
    unavailable: bool,
}

/// One simulated peer: a WebSocket connection and a task that keeps every
/// document it holds in sync, with no throttle.
struct PeerHandle {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl PeerHandle {
    /// Connects and joins, retrying twice: the JS server sometimes resets a
    /// socket during the handshake while it is busy.
    async fn connect(t: &Target, observer: Option<Observer>) -> Result<PeerHandle> {
        let observer = observer.map(Arc::new);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match PeerHandle::connect_once(t, observer.clone()).await {
                Ok(p) => return Ok(p),
                Err(e) if attempt < 3 => {
                    eprintln!("map-load: connect failed ({e:#}); retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn connect_once(t: &Target, observer: Option<Arc<Observer>>) -> Result<PeerHandle> {
        let url = match &t.token {
            Some(tok) if !t.url.contains("token=") => {
                let sep = if t.url.contains('?') { '&' } else { '?' };
                format!("{}{sep}token={tok}", t.url)
            }
            _ => t.url.clone(),
        };
        let mut req = url.as_str().into_client_request()?;
        if let Some(tok) = &t.token {
            req.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {tok}"))?,
            );
        }
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(64 << 20);
        // tungstenite zeroes `read_buffer_size` bytes before every read, even
        // one that finds nothing: at its default 128 KiB, that memset was 7%
        // of map-load's CPU in fanout, time the followers take from the
        // server on the same 2 cores. Messages here are small; 8 KiB reads
        // still take a large one in a few calls.
        config.read_buffer_size = 8 << 10;
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
            .await
            .with_context(|| format!("connecting to {}", t.url))?;
        let (mut sink, mut stream) = ws.split();
        let peer_id = format!("load-{}", DocumentId::random());
        let join = Message::Join {
            sender_id: peer_id.clone(),
            peer_metadata: None,
            supported_protocol_versions: vec![PROTOCOL_VERSION.to_string()],
        };
        sink.send(WsMessage::Binary(join.encode().into())).await?;
        let server_id = loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .context("no answer to join in 10 s")?
                .ok_or_else(|| anyhow!("relay closed the connection during the handshake"))??;
            if let WsMessage::Binary(b) = frame {
                match Message::decode(&b)? {
                    Message::Peer { sender_id, .. } => break sender_id,
                    Message::Error { message, .. } => bail!("relay refused join: {message}"),
                    _ => {}
                }
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
        tokio::spawn(async move {
            let mut docs: HashMap<String, DocState> = HashMap::new();
            loop {
                let mut out: Vec<Message> = Vec::new();
                tokio::select! {
                    cmd = rx.recv() => {
                        let Some(cmd) = cmd else { break };
                        match cmd {
                            Cmd::Add(id, doc) => {
                                let mut ds = DocState { doc: *doc, state: sync::State::new(), unavailable: false };
                                push_sync(&peer_id, &server_id, &id, &mut ds, false, &mut out);
                                docs.insert(id, ds);
                            }
                            Cmd::Request(id) => {
                                let mut ds = DocState { doc: AutoCommit::new(), state: sync::State::new(), unavailable: false };
                                push_sync(&peer_id, &server_id, &id, &mut ds, true, &mut out);
                                docs.insert(id, ds);
                            }
                            Cmd::Edit(id, f) => {
                                if let Some(ds) = docs.get_mut(&id) {
                                    f(&mut ds.doc);
                                    push_sync(&peer_id, &server_id, &id, ds, false, &mut out);
                                }
                            }
                            Cmd::Status(id, reply) => {
                                let st = docs.get_mut(&id).map(|ds| DocStatus {
                                    heads: ds.doc.get_heads(),
                                    their_heads: ds.state.their_heads.clone(),
                                    unavailable: ds.unavailable,
                                });
                                let _ = reply.send(st);
                            }
                            Cmd::Forget(id) => {
                                docs.remove(&id);
                            }
                        }
                    }
                    frame = stream.next() => {
                        let Some(Ok(frame)) = frame else { break };
                        let WsMessage::Binary(b) = frame else { continue };
                        let Ok(msg) = Message::decode(&b) else { break };
                        match msg {
                            Message::Sync { document_id, data, .. } | Message::Request { document_id, data, .. } => {
                                let Some(ds) = docs.get_mut(&document_id) else { continue };
                                let Ok(m) = sync::Message::decode(&data) else { continue };
                                let before = ds.doc.get_heads();
                                if ds.doc.sync().receive_sync_message(&mut ds.state, m).is_err() {
                                    continue;
                                }
                                if ds.doc.get_heads() != before
                                    && let Some(obs) = &observer
                                {
                                    obs(&ds.doc);
                                }
                                push_sync(&peer_id, &server_id, &document_id, ds, false, &mut out);
                            }
                            Message::DocUnavailable { document_id, .. } => {
                                if let Some(ds) = docs.get_mut(&document_id) {
                                    ds.unavailable = true;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                for m in out {
                    if sink
                        .send(WsMessage::Binary(m.encode().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            let _ = sink.send(WsMessage::Close(None)).await;
        });
        Ok(PeerHandle { tx })
    }

    fn send(&self, cmd: Cmd) -> Result<()> {
        self.tx
            .send(cmd)
            .map_err(|_| anyhow!("peer connection closed"))
    }

    async fn add(&self, id: &str, doc: AutoCommit) -> Result<()> {
        self.send(Cmd::Add(id.to_string(), Box::new(doc)))
    }

    async fn request(&self, id: &str) -> Result<()> {
        self.send(Cmd::Request(id.to_string()))
    }

    async fn edit(&self, id: &str, f: impl FnOnce(&mut AutoCommit) + Send + 'static) -> Result<()> {
        self.send(Cmd::Edit(id.to_string(), Box::new(f)))
    }

    async fn status(&self, id: &str) -> Result<DocStatus> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Status(id.to_string(), tx))?;
        rx.await
            .map_err(|_| anyhow!("peer connection closed"))?
            .ok_or_else(|| anyhow!("peer does not hold {id}"))
    }

    async fn heads(&self, id: &str) -> Result<Vec<ChangeHash>> {
        Ok(self.status(id).await?.heads)
    }

    /// Waits until the relay reports holding our heads for `id`.
    async fn wait_pushed(&self, id: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let st = self.status(id).await?;
            let mut ours = st.heads.clone();
            ours.sort();
            let mut theirs = st.their_heads.clone().unwrap_or_default();
            theirs.sort();
            if ours == theirs {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("relay did not acknowledge {id} within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until our copy of `id` has exactly `heads`.
    async fn wait_heads(
        &self,
        id: &str,
        mut heads: Vec<ChangeHash>,
        limit: Duration,
    ) -> Result<()> {
        heads.sort();
        let deadline = Instant::now() + limit;
        loop {
            let st = self.status(id).await?;
            if st.unavailable {
                bail!("relay answered doc-unavailable for {id}");
            }
            let mut ours = st.heads;
            ours.sort();
            if ours == heads {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("peer did not converge on {id} within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn push_sync(
    me: &str,
    server: &str,
    id: &str,
    ds: &mut DocState,
    request: bool,
    out: &mut Vec<Message>,
) {
    if let Some(m) = ds.doc.sync().generate_sync_message(&mut ds.state) {
        let data = m.encode();
        let (sender_id, target_id, document_id) =
            (me.to_string(), server.to_string(), id.to_string());
        out.push(if request {
            Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
        } else {
            Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            }
        });
    }
}

// ---------------------------------------------------------------- relay process

/// This process's CPU time (user + system), seconds.
fn self_cpu_s() -> Result<f64> {
    let stat = procfs::process::Process::myself()?.stat()?;
    Ok((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

/// CPU time and memory of the relay process, from `/proc`.
struct ProcStats {
    pid: i32,
}

impl ProcStats {
    fn new(pid: i32) -> ProcStats {
        ProcStats { pid }
    }

    fn process(&self) -> Result<procfs::process::Process> {
        procfs::process::Process::new(self.pid).with_context(|| format!("relay pid {}", self.pid))
    }

    fn cpu_s(&self) -> Result<f64> {
        let stat = self.process()?.stat()?;
        let tps = procfs::ticks_per_second() as f64;
        Ok((stat.utime + stat.stime) as f64 / tps)
    }

    fn rss_mib(&self) -> Result<f64> {
        let status = self.process()?.status()?;
        Ok(status.vmrss.unwrap_or(0) as f64 / 1024.0)
    }

    /// Resets the peak RSS counter and returns the CPU time so far.
    fn begin(&self) -> Result<f64> {
        // "5" resets VmHWM to the current RSS (Linux >= 4.0).
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
        self.cpu_s()
    }

    /// CPU seconds since `begin`, peak RSS MiB, current RSS MiB.
    fn end(&self, cpu0: f64) -> Result<(f64, f64, f64)> {
        let status = self.process()?.status()?;
        let peak = status.vmhwm.unwrap_or(0) as f64 / 1024.0;
        let rss = status.vmrss.unwrap_or(0) as f64 / 1024.0;
        Ok((self.cpu_s()? - cpu0, peak, rss))
    }
}
