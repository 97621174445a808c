//! `cli-sync`: whole-process wall time of `map sync` against a spawned
//! release `map-relay`, in two scenarios:
//!
//! - `offline-merge`: two participants (two `MAP_HOME`s) hold the same plan,
//!   then each makes N changes offline (default 5,000, written through the
//!   libraries the CLI uses, as `cli-speed` does); both run `map sync` at the
//!   same time, and again while their plans differ; reports the wall time
//!   from starting the first pair until both hold the same heads.
//! - `join-10k`: a fresh participant (new `MAP_HOME`, `map remote add` with
//!   the same token) runs `map sync`, which fetches the plan the relay lists
//!   for that token: the plan from `offline-merge`, with 2 x N changes of
//!   history; reports the wall time of that `map sync`.
//!
//! Every round starts a fresh relay (`map-relay user add`, then `serve` on a
//! free port with a temporary database). Reports medians over the rounds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use automerge::ChangeHash;
use clap::Parser;
use map_bench::SpawnedRelay;
use map_model::Identity;
use map_model::identity::Side;
use map_store::Store;

#[derive(Parser, Debug)]
#[command(about = "Times `map sync`: two participants merging offline work, a fresh join")]
struct Args {
    /// The `map` binary (default: next to this one).
    #[arg(long)]
    map: Option<PathBuf>,
    /// The `map-relay` binary (default: next to this one).
    #[arg(long)]
    relay: Option<PathBuf>,
    /// Offline changes each participant makes before the merge.
    #[arg(long, default_value_t = 5_000)]
    changes: usize,
    /// Rounds (a fresh relay and fresh homes each).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Fresh joins timed per round.
    #[arg(long, default_value_t = 3)]
    joins: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::current_exe()?
        .parent()
        .context("no parent dir")?
        .to_path_buf();
    let map = args.map.clone().unwrap_or_else(|| dir.join("map"));
    let relay = args.relay.clone().unwrap_or_else(|| dir.join("map-relay"));
    for b in [&map, &relay] {
        if !b.exists() {
            bail!(
                "{} not found; build it with `cargo build --release -p map-cli -p map-relay`",
                b.display()
            );
        }
    }
    let (mut merges, mut joins, mut history) = (Vec::new(), Vec::new(), 0);
    for round in 0..args.rounds {
        let r = round_once(&map, &relay, &args)?;
        eprintln!(
            "round {}: merge {:.0} ms ({} sync pairs), joins {:?} ms, {} changes",
            round + 1,
            ms(r.merge),
            r.pairs,
            r.joins.iter().map(|d| ms(*d).round()).collect::<Vec<_>>(),
            r.history
        );
        merges.push(r.merge);
        joins.extend(r.joins);
        history = r.history;
    }
    let (m, j) = (median(&mut merges), median(&mut joins));
    println!(
        "{} rounds; offline changes per participant: {}; plan history at join: {} changes",
        args.rounds, args.changes, history
    );
    println!("{:<16} {:>10} {:>6}  target", "scenario", "median", "runs");
    println!(
        "{:<16} {:>7.0} ms {:>6}  < 2000 ms: {}",
        "offline-merge",
        ms(m),
        merges.len(),
        verdict(ms(m) < 2000.0)
    );
    println!(
        "{:<16} {:>7.0} ms {:>6}  < 1000 ms: {}",
        "join-10k",
        ms(j),
        joins.len(),
        verdict(ms(j) < 1000.0)
    );
    Ok(())
}

struct Round {
    merge: Duration,
    pairs: usize,
    joins: Vec<Duration>,
    history: usize,
}

fn round_once(map: &Path, relay_bin: &Path, args: &Args) -> Result<Round> {
    let relay = SpawnedRelay::start(relay_bin, "bench", &[])?;
    let tmp = tempfile::tempdir()?;
    let a = Home::new(map, tmp.path().join("a"));
    let b = Home::new(map, tmp.path().join("b"));
    a.setup("Bench Seller", "seller@vendor.example", "seller", &relay)?;
    a.run(&[
        "init",
        "Bench plan",
        "--template",
        "saas",
        "--go-live",
        "+120d",
    ])?;
    a.run(&["sync"])?;
    b.setup("Bench Buyer", "buyer@customer.example", "buyer", &relay)?;
    b.run(&["sync"])?;
    if a.heads()? != b.heads()? {
        bail!("b did not fetch the plan");
    }
    map_bench::build_history(&a.db(), args.changes, &bench_identity(Side::Seller), 0)?;
    map_bench::build_history(&b.db(), args.changes, &bench_identity(Side::Buyer), 1)?;

    // Both sync at once; again while they differ (whoever synced first did
    // not see the other's changes).
    let start = Instant::now();
    let mut pairs = 0;
    loop {
        pairs += 1;
        let (ca, cb) = (a.spawn(&["sync"])?, b.spawn(&["sync"])?);
        wait_ok(ca, "a: map sync")?;
        wait_ok(cb, "b: map sync")?;
        if a.heads()? == b.heads()? {
            break;
        }
        if pairs == 5 {
            bail!("no convergence after 5 pairs of `map sync`");
        }
    }
    let merge = start.elapsed();
    let want = a.heads()?;
    let history = {
        let store = Store::open(a.db())?;
        store.read(|tx| -> Result<usize> {
            let id = tx.list_plans()?.into_iter().next().context("no plan")?.id;
            let mut doc = tx.load_doc(&id)?.context("no document")?;
            Ok(doc.get_changes(&[]).len())
        })?
    };

    let mut joins = Vec::new();
    for n in 0..args.joins {
        let c = Home::new(map, tmp.path().join(format!("c{n}")));
        c.setup("Bench Joiner", "joiner@customer.example", "buyer", &relay)?;
        let start = Instant::now();
        c.run(&["sync"])?;
        joins.push(start.elapsed());
        if c.heads()? != want {
            bail!("the fresh participant did not get the whole plan");
        }
    }
    Ok(Round {
        merge,
        pairs,
        joins,
        history,
    })
}

/// One participant: a `MAP_HOME` and the `map` binary.
struct Home {
    map: PathBuf,
    dir: PathBuf,
}

impl Home {
    fn new(map: &Path, dir: PathBuf) -> Home {
        Home {
            map: map.to_path_buf(),
            dir,
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.join("map.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.map);
        c.args(args)
            .env("MAP_HOME", &self.dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        let out = self.command(args).output()?;
        if !out.status.success() {
            bail!(
                "map {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn spawn(&self, args: &[&str]) -> Result<Child> {
        Ok(self.command(args).spawn()?)
    }

    fn setup(&self, name: &str, email: &str, side: &str, relay: &SpawnedRelay) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        self.run(&[
            "identity", "set", "--name", name, "--email", email, "--side", side,
        ])?;
        self.run(&[
            "remote",
            "add",
            "origin",
            &relay.url,
            "--token",
            &relay.token,
        ])
    }

    /// Heads of the (only) plan, sorted.
    fn heads(&self) -> Result<Vec<ChangeHash>> {
        let store = Store::open(self.db())?;
        let mut heads = store.read(|tx| -> Result<Vec<ChangeHash>> {
            let id = tx.list_plans()?.into_iter().next().context("no plan")?.id;
            tx.doc_heads(&id)?.context("no document")
        })?;
        heads.sort();
        Ok(heads)
    }
}

fn wait_ok(child: Child, what: &str) -> Result<()> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// The identity one participant's history is written as.
fn bench_identity(side: Side) -> Identity {
    let name = if side == Side::Seller {
        "seller"
    } else {
        "buyer"
    };
    Identity {
        name: format!("Bench {name}"),
        email: format!("{name}@bench.example"),
        side,
    }
}
