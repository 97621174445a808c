//! Fault injection across the real binaries (loopback only): the relay
//! killed with SIGKILL while two participants write and sync, the CLI
//! killed with SIGKILL mid-command, and connections cut mid-sync by a proxy.
//! The promise tested each time: a change the CLI reported as saved or
//! synced is never lost, and no database is left unopenable or corrupt.
//!
//! Randomness is seeded; a failure prints the seed, and `FAULT_SEED=N`
//! replays it. Every test stays well under 60 s.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use map_e2e::{Participant, Relay, tasks};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A seeded generator; the seed is printed so a failure can be replayed.
fn rng(test: &str) -> StdRng {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("{test}: FAULT_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// The task titles of `p`'s copy of `plan`.
#[track_caller]
fn titles(p: &Participant, plan: &str) -> BTreeSet<String> {
    let view = p.map(&["--plan", plan, "show", "--json"]).ok().json();
    tasks(&view)
        .iter()
        .filter_map(|t| t["title"].as_str().map(str::to_owned))
        .collect()
}

/// `PRAGMA integrity_check` of an SQLite file says `ok`.
#[track_caller]
fn assert_intact(path: &Path) {
    let conn = rusqlite::Connection::open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("integrity_check of {}: {e}", path.display()));
    assert_eq!(verdict, "ok", "{} is corrupt", path.display());
}

/// Asserts every title in `expected` is in `got`.
#[track_caller]
fn assert_has_all(who: &str, got: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<&String> = expected.difference(got).collect();
    assert!(missing.is_empty(), "{who} lost {missing:?}");
}

/// A relay user with a token and read-write (or read-only) access to `plan`,
/// as a participant whose `origin` is `url`, holding the plan after a sync.
fn member(relay: &Relay, name: &str, plan: &str, url: &str, rw: bool) -> Participant {
    let token = relay.add_user(&name.to_lowercase());
    relay.grant(plan, &name.to_lowercase(), rw);
    let p = Participant::new(name, "buyer");
    p.add_remote("origin", url, &token);
    p.sync().ok();
    p
}

/// A seller with a fresh plan pushed to `relay`; returns (seller, plan id).
fn seller_with_plan(relay: &Relay, title: &str) -> (Participant, String) {
    let seller = Participant::new("Dana", "seller");
    seller.map(&["init", title]).ok();
    let plan = seller
        .plans()
        .iter()
        .find(|p| p["title"] == title)
        .and_then(|p| p["id"].as_str().map(str::to_owned))
        .expect("plan listed");
    let token = relay.add_user("dana");
    seller.add_remote("origin", relay.url(), &token);
    seller.sync().ok();
    (seller, plan)
}

/// What one writer did while the relay was being killed.
#[derive(Default)]
struct Writes {
    added: BTreeSet<String>,
    synced: BTreeSet<String>,
    syncs_ok: usize,
    syncs_failed: usize,
}

/// Adds a task and syncs, again and again until `stop`. A task counts as
/// synced once a later `map sync` exited 0.
fn write_and_sync(p: &Participant, plan: &str, tag: &str, stop: &AtomicBool) -> Writes {
    let mut w = Writes::default();
    let mut pending = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let title = format!("{tag} {n}");
        n += 1;
        p.map(&["--plan", plan, "task", "add", &title]).ok();
        w.added.insert(title.clone());
        pending.push(title);
        let out = p.map(&["sync"]);
        assert!(!out.timed_out, "a sync hung: {}", out.stderr);
        if out.success() {
            w.syncs_ok += 1;
            w.synced.extend(pending.drain(..));
        } else {
            out.code_is(3);
            w.syncs_failed += 1;
        }
    }
    w
}

#[test]
fn relay_killed_at_random_moments_loses_no_synced_change() {
    let mut rng = rng("relay_killed");
    let mut relay = Relay::start();
    let (seller, plan) = seller_with_plan(&relay, "Relay kills");
    let buyer = member(&relay, "Ana", &plan, relay.url(), true);

    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let mut kills = 0;
    let (a, b) = thread::scope(|s| {
        let wa = s.spawn(|| write_and_sync(&seller, &plan, "Seller", &stop));
        let wb = s.spawn(|| write_and_sync(&buyer, &plan, "Buyer", &stop));
        // SIGKILL and restart (same port, same database) at random moments;
        // `restart` panics unless the relay opens its database and listens.
        while kills < 25 && started.elapsed() < Duration::from_secs(25) {
            thread::sleep(Duration::from_millis(rng.random_range(20..250)));
            relay.restart();
            kills += 1;
        }
        stop.store(true, Ordering::SeqCst);
        (wa.join().expect("seller"), wb.join().expect("buyer"))
    });
    assert!(kills >= 20, "only {kills} kills in the time budget");

    // Before anyone syncs again, the relay holds every change a sync
    // confirmed: a fresh reader fetches it from the relay's database.
    let confirmed: BTreeSet<String> = a.synced.union(&b.synced).cloned().collect();
    let reader = member(&relay, "Auditor", &plan, relay.url(), false);
    assert_has_all("the relay", &titles(&reader, &plan), &confirmed);

    // After a final sync everyone holds everything anyone added.
    seller.sync().ok();
    buyer.sync().ok();
    seller.sync().ok();
    reader.sync().ok();
    let added: BTreeSet<String> = a.added.union(&b.added).cloned().collect();
    for p in [&seller, &buyer, &reader] {
        assert_has_all(&p.name, &titles(p, &plan), &added);
    }
    relay.stop();
    assert_intact(&relay.db_path());
    for p in [&seller, &buyer, &reader] {
        assert_intact(&p.db_path());
    }
    eprintln!(
        "relay kills survived: {kills}; syncs ok/failed: {}/{}; changes added: {}, confirmed synced and checked: {} ({:.1} s)",
        a.syncs_ok + b.syncs_ok,
        a.syncs_failed + b.syncs_failed,
        added.len(),
        confirmed.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn cli_killed_at_random_points_keeps_every_saved_change() {
    let mut rng = rng("cli_killed");
    let relay = Relay::start();
    let (p, plan) = seller_with_plan(&relay, "CLI kills");
    // Kills land at a random moment within a window that adapts to how long
    // commands take here (shrinks after a command finished, grows after a
    // kill), so about half are killed on a fast or a slow machine.
    let mut window = [20_000_u64, 20_000]; // µs: task add, sync
    let started = Instant::now();
    let mut saved = BTreeSet::new();
    let mut killed = 0;
    for i in 0..50 {
        let title = format!("Task {i}");
        let (args, kind): (Vec<&str>, usize) = if rng.random_bool(0.6) {
            (vec!["--plan", &plan, "task", "add", &title], 0)
        } else {
            (vec!["sync"], 1)
        };
        let mut cmd = p.command(&args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn map");
        thread::sleep(Duration::from_micros(rng.random_range(0..window[kind])));
        // SIGKILL; an error only means it had already exited.
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let mut stdout = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        if status.code().is_none() {
            killed += 1;
            window[kind] = (window[kind] * 5 / 4).min(2_000_000);
        } else {
            window[kind] = (window[kind] * 4 / 5).max(1_000);
        }
        if args.contains(&"add") && status.success() && stdout.contains("saved:") {
            saved.insert(title);
        }
        // The store opens cleanly after every kill and keeps what was saved.
        assert_has_all("the store", &titles(&p, &plan), &saved);
    }
    assert!(
        killed >= 10,
        "only {killed} of 50 commands were killed mid-run"
    );
    // Still syncs, and the relay gets everything.
    p.sync().ok();
    let reader = member(&relay, "Auditor", &plan, relay.url(), false);
    assert_has_all("the relay", &titles(&reader, &plan), &saved);
    assert_intact(&p.db_path());
    eprintln!(
        "CLI kills: {killed} of 50 commands killed mid-run; saved changes checked: {} ({:.1} s)",
        saved.len(),
        started.elapsed().as_secs_f64()
    );
}

/// A loopback TCP proxy that cuts connections after a random number of
/// bytes (both directions counted); after the first six, about a third pass
/// untouched.
struct CuttingProxy {
    runtime: Option<tokio::runtime::Runtime>,
    port: u16,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    fn start(upstream: u16, seed: u64) -> CuttingProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let cuts = Arc::new(AtomicUsize::new(0));
        let counted = cuts.clone();
        runtime.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut accepted = 0;
            while let Ok((client, _)) = listener.accept().await {
                accepted += 1;
                // The first six connections get at most 4 KiB (less than a
                // first sync moves); later ones pass untouched a third of
                // the time, else get 16 bytes to 64 KiB, log-uniformly, so
                // cuts land in the handshake, mid-changes and near the end.
                let budget = if accepted > 6 && rng.random_bool(0.35) {
                    isize::MAX
                } else {
                    let most = if accepted > 6 { 15 } else { 11 };
                    let bits = rng.random_range(4..most);
                    (1_isize << bits) + rng.random_range(0..1_i64 << bits) as isize
                };
                tokio::spawn(pass(client, upstream, budget, counted.clone()));
            }
        });
        CuttingProxy {
            runtime: Some(runtime),
            port,
            cuts,
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Copies bytes both ways until either side closes or `budget` bytes have
/// passed; then both connections are dropped.
async fn pass(client: tokio::net::TcpStream, upstream: u16, budget: isize, cuts: Arc<AtomicUsize>) {
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let left = Arc::new(AtomicIsize::new(budget));
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let cut = tokio::select! {
        c = pump(cr, sw, left.clone()) => c,
        c = pump(sr, cw, left) => c,
    };
    if cut {
        cuts.fetch_add(1, Ordering::SeqCst);
    }
}

/// One direction; `true` if it stopped because the budget ran out.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    left: Arc<AtomicIsize>,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let before = left.fetch_sub(n as isize, Ordering::SeqCst);
        if before < n as isize {
            let part = usize::try_from(before.max(0)).unwrap_or(0);
            let _ = to.write_all(&buf[..part]).await;
            return true;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return false;
        }
    }
}

#[test]
fn connections_cut_mid_sync_converge_without_corruption() {
    let mut rng = rng("connection_cut");
    let mut relay = Relay::start();
    let (seller, plan) = seller_with_plan(&relay, "Cut connections");
    let buyer = member(&relay, "Ana", &plan, relay.url(), true);
    let proxy = CuttingProxy::start(relay.port(), rng.random());
    let started = Instant::now();

    // Both write offline, then sync only through the proxy.
    let seller_token = relay.add_user("dana-cut");
    relay.grant(&plan, "dana-cut", true);
    let buyer_token = relay.add_user("ana-cut");
    relay.grant(&plan, "ana-cut", true);
    seller.add_remote("cut", &proxy.url(), &seller_token);
    buyer.add_remote("cut", &proxy.url(), &buyer_token);
    let mut expected = BTreeSet::new();
    for i in 0..15 {
        for (p, tag) in [(&seller, "Seller"), (&buyer, "Buyer")] {
            let title = format!("{tag} offline {i}");
            p.map(&["--plan", &plan, "task", "add", &title]).ok();
            expected.insert(title);
        }
    }
    let sync = |p: &Participant| -> bool {
        let out = p.map(&["--plan", &plan, "sync", "--remote", "cut"]);
        assert!(!out.timed_out, "a sync hung: {}", out.stderr);
        if !out.success() {
            out.code_is(3);
        }
        out.success()
    };
    let (mut ok, mut failed, mut rounds) = (0, 0, 0);
    let converged = loop {
        rounds += 1;
        for p in [&seller, &buyer] {
            if sync(p) {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        let (a, b) = (titles(&seller, &plan), titles(&buyer, &plan));
        if a == b && expected.is_subset(&a) {
            break true;
        }
        if rounds == 40 {
            break false;
        }
    };
    assert!(
        converged,
        "no convergence after {rounds} rounds ({ok} syncs ok, {failed} cut)"
    );
    let cuts = proxy.cuts.load(Ordering::SeqCst);
    assert!(cuts >= 3, "the proxy cut only {cuts} connections");
    drop(proxy);

    // The relay's copy is complete and every database is intact.
    let reader = member(&relay, "Auditor", &plan, relay.url(), false);
    assert_has_all("the relay", &titles(&reader, &plan), &expected);
    relay.stop();
    assert_intact(&relay.db_path());
    assert_intact(&seller.db_path());
    assert_intact(&buyer.db_path());
    relay.restart();
    eprintln!(
        "connection cuts: {cuts}; syncs ok/failed: {ok}/{failed} in {rounds} rounds; changes checked: {} ({:.1} s)",
        expected.len(),
        started.elapsed().as_secs_f64()
    );
}
