//! `cli-speed`: whole-process wall time of `map show` and `map task add` on a
//! plan with a long history (default 10,000 changes).
//!
//! It builds the plan in a temporary `MAP_HOME` (the history is written
//! through the same libraries the CLI uses: `map-model` edits, `map-store`
//! saves and the history cache), then times each command as a user runs it:
//! a fresh `map` process per run, interleaved with a baseline (`map
//! --version`, the cost of starting the process at all) so that the ratios
//! hold on a noisy machine. Reports medians.
//!
//! With `--taskwarrior` it compares with taskwarrior 2.6 instead
//! (`bench/taskwarrior.sh`): the same content in both, a plan with
//! `--tasks` tasks (default 300) and `--changes` edits to them (default
//! 2,000; in taskwarrior real `task modify` commands, so its data holds that
//! history), then `task list` against `map show` and `task add` against
//! `map task add`, interleaved, medians and ratios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::Parser;
use map_model::{Identity, PlanDoc};
use map_store::{HistoryRow, Store};

#[derive(Parser, Debug)]
#[command(about = "Times `map show` and `map task add` on a plan with a long history")]
struct Args {
    /// The `map` binary (default: next to this one).
    #[arg(long)]
    map: Option<PathBuf>,
    /// Changes of history to build (default 10,000; 2,000 with --taskwarrior).
    #[arg(long)]
    changes: Option<usize>,
    /// Build the plan in this (new, empty) directory and keep it, for profiling.
    #[arg(long)]
    home: Option<PathBuf>,
    /// Timed runs of each command.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Compare with taskwarrior (`task` on PATH): `--tasks` tasks and
    /// `--changes` edits in both (`--changes` defaults to 2,000 here).
    #[arg(long)]
    taskwarrior: bool,
    /// Tasks in the plan with `--taskwarrior`.
    #[arg(long, default_value_t = 300)]
    tasks: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let map = match args.map.clone() {
        Some(m) => m,
        None => std::env::current_exe()?
            .parent()
            .context("no parent dir")?
            .join("map"),
    };
    if !map.exists() {
        bail!(
            "{} not found; build it with `cargo build --release -p map-cli`",
            map.display()
        );
    }
    if args.taskwarrior {
        return vs_taskwarrior(&map, &args);
    }
    let changes = args.changes.unwrap_or(10_000);
    let tmp = tempfile::tempdir()?;
    let home_dir = args
        .home
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let run = |args: &[&str]| -> Result<Duration> {
        let start = Instant::now();
        let out = Command::new(&map)
            .args(args)
            .env("MAP_HOME", &home_dir)
            .env("NO_COLOR", "1")
            .output()?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!(
                "map {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(took)
    };
    run(&[
        "identity",
        "set",
        "--name",
        "Bench Seller",
        "--email",
        "bench@vendor.example",
        "--side",
        "seller",
    ])?;
    run(&[
        "init",
        "Bench plan",
        "--template",
        "saas",
        "--go-live",
        "+120d",
    ])?;
    let built = Instant::now();
    map_bench::build_history(&home_dir.join("map.db"), changes, &bench_seller(), 0)?;
    eprintln!(
        "built {} changes of history in {:.1} s",
        changes,
        built.elapsed().as_secs_f64()
    );
    // The first write refreshes the cached view.
    run(&["task", "add", "warm-up"])?;
    run(&["show"])?;

    let (mut base, mut show, mut add) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.runs {
        base.push(run(&["--version"])?);
        show.push(run(&["show"])?);
        add.push(run(&["task", "add", &format!("bench task {i}")])?);
    }
    let mut load = automerge_load_times(&home_dir.join("map.db"), args.runs)?;
    let (b, s, a) = (median(&mut base), median(&mut show), median(&mut add));
    let l = median(&mut load);
    println!(
        "plan with {} changes, {} runs each, medians:",
        changes, args.runs
    );
    println!("{:<22} {:>9}  {:>8}", "command", "median", "ratio");
    println!(
        "{:<22} {:>6.2} ms  {:>7.2}x",
        "map --version (base)",
        ms(b),
        1.0
    );
    println!(
        "{:<22} {:>6.2} ms  {:>7.2}x",
        "map show",
        ms(s),
        ms(s) / ms(b)
    );
    println!(
        "{:<22} {:>6.2} ms  {:>7.2}x",
        "map task add",
        ms(a),
        ms(a) / ms(b)
    );
    println!(
        "{:<22} {:>6.2} ms  {:>7.2}x",
        "automerge load alone",
        ms(l),
        ms(l) / ms(b)
    );
    println!(
        "targets: show < 10 ms: {}; task add < 30 ms: {}",
        verdict(ms(s) < 10.0),
        verdict(ms(a) < 30.0)
    );
    Ok(())
}

/// `--taskwarrior`: the same plan in map and in taskwarrior, then both CLIs
/// timed interleaved.
fn vs_taskwarrior(map: &Path, args: &Args) -> Result<()> {
    let changes = args.changes.unwrap_or(2_000);
    let tmp = tempfile::tempdir()?;
    let home = args.home.clone().unwrap_or_else(|| tmp.path().join("map"));
    let tw = tmp.path().join("task");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&tw)?;
    let taskrc = tw.join("taskrc");
    std::fs::write(
        &taskrc,
        format!(
            "data.location={}\nconfirmation=off\nbulk=0\nverbose=nothing\nnews.version=2.6.2\n",
            tw.join("data").display()
        ),
    )?;
    let map_cmd = |a: &[&str]| -> Result<Duration> {
        timed(
            Command::new(map)
                .args(a)
                .env("MAP_HOME", &home)
                .env("NO_COLOR", "1"),
            &format!("map {}", a.join(" ")),
        )
    };
    let task_cmd = |a: &[&str]| -> Result<Duration> {
        timed(
            Command::new("task")
                .args(["rc.confirmation=off", "rc.verbose=nothing", "rc.bulk=0"])
                .args(a)
                .env("TASKRC", &taskrc)
                .env("TASKDATA", tw.join("data")),
            &format!("task {}", a.join(" ")),
        )
    };

    // map: an empty plan, the tasks, then the edits (libraries, as above).
    map_cmd(&[
        "identity",
        "set",
        "--name",
        "Bench Seller",
        "--email",
        "bench@vendor.example",
        "--side",
        "seller",
    ])?;
    map_cmd(&["init", "Bench plan"])?;
    let built = Instant::now();
    build_tasks(&home.join("map.db"), args.tasks)?;
    map_bench::build_history(&home.join("map.db"), changes, &bench_seller(), 0)?;
    eprintln!(
        "map: {} tasks, {changes} edits in {:.1} s",
        args.tasks,
        built.elapsed().as_secs_f64()
    );

    // taskwarrior: `task import` for the tasks, then real modifications in
    // batches of up to `tasks` (one `task ID,ID,... modify due:DATE` each:
    // one undo/backlog entry per task modified).
    let built = Instant::now();
    let json: Vec<serde_json::Value> = (0..args.tasks)
        .map(|i| {
            serde_json::json!({
                "description": format!("Task {i} of the bench plan"),
                "status": "pending",
                "entry": "20261204T000000Z",
                "project": "bench",
            })
        })
        .collect();
    let import = tw.join("import.json");
    std::fs::write(&import, serde_json::to_string(&json)?)?;
    task_cmd(&["import", &import.display().to_string()])?;
    let today = NaiveDate::from_ymd_opt(2026, 12, 4).context("date")?;
    let mut done = 0;
    let mut batch = 0;
    while done < changes {
        let n = (changes - done).min(args.tasks);
        let ids = (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let due = today + chrono::Days::new(10 + (batch % 90) as u64);
        task_cmd(&[&ids, "modify", &format!("due:{}", due.format("%Y-%m-%d"))])?;
        done += n;
        batch += 1;
    }
    eprintln!(
        "taskwarrior: {} tasks, {changes} modifications in {:.1} s",
        args.tasks,
        built.elapsed().as_secs_f64()
    );
    // Warm both (map's first write refreshes its cached view).
    map_cmd(&["task", "add", "warm-up"])?;
    task_cmd(&["add", "warm-up"])?;
    map_cmd(&["show"])?;
    task_cmd(&["list"])?;

    let (mut tl, mut ms_, mut ta, mut ma) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.runs {
        let title = format!("bench task {i}");
        tl.push(task_cmd(&["list"])?);
        ms_.push(map_cmd(&["show"])?);
        ta.push(task_cmd(&["add", &title])?);
        ma.push(map_cmd(&["task", "add", &title])?);
    }
    let (tl, ms_, ta, ma) = (
        median(&mut tl),
        median(&mut ms_),
        median(&mut ta),
        median(&mut ma),
    );
    println!(
        "{} tasks, {changes} edits, {} runs each, medians (interleaved):",
        args.tasks, args.runs
    );
    println!(
        "{:<16} {:>9}   {:<16} {:>9}  {:>8}",
        "map", "median", "taskwarrior", "median", "map/task"
    );
    println!(
        "{:<16} {:>6.2} ms   {:<16} {:>6.2} ms  {:>7.2}x",
        "map show",
        ms(ms_),
        "task list",
        ms(tl),
        ms(ms_) / ms(tl)
    );
    println!(
        "{:<16} {:>6.2} ms   {:<16} {:>6.2} ms  {:>7.2}x",
        "map task add",
        ms(ma),
        "task add",
        ms(ta),
        ms(ma) / ms(ta)
    );
    println!(
        "targets: map show no slower than task list: {}; map task add <= 3x task add: {}",
        verdict(ms(ms_) <= ms(tl)),
        verdict(ms(ma) <= 3.0 * ms(ta))
    );
    Ok(())
}

fn timed(cmd: &mut Command, what: &str) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.stdin(std::process::Stdio::null()).output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

/// Adds `n` tasks to the current plan, one Automerge change each.
fn build_tasks(db: &Path, n: usize) -> Result<()> {
    let mut store = Store::open(db)?;
    store.write(|tx| -> Result<()> {
        let plan_row = tx.list_plans()?.into_iter().next().context("no plan")?;
        let doc = tx.load_doc(&plan_row.id)?.context("no document")?;
        let mut plan = PlanDoc::from_doc(doc)?;
        let by = Identity {
            name: "Bench Seller".into(),
            email: "bench@vendor.example".into(),
            side: map_model::identity::Side::Seller,
        };
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).context("date")?;
        let now = 1_779_000_000_000_i64;
        for i in 0..n {
            plan.add_task(
                &by,
                now + i as i64,
                today,
                map_model::plan::NewTask {
                    title: format!("Task {i} of the bench plan"),
                    ..Default::default()
                },
            )?;
        }
        let outcome = tx.save_doc(&plan_row.id, plan.doc_mut())?;
        let rows = HistoryRow::since(plan.doc_mut(), &outcome.previous_heads);
        tx.append_history(&plan_row.id, &rows)?;
        tx.delete_view(&plan_row.id)?;
        Ok(())
    })
}

/// In-process time to load the plan's document with automerge alone (what
/// any write must pay at least once), for comparison.
fn automerge_load_times(db: &Path, runs: usize) -> Result<Vec<Duration>> {
    let store = Store::open(db)?;
    let bytes = store.read(|tx| -> Result<Vec<u8>> {
        let plan_row = tx.list_plans()?.into_iter().next().context("no plan")?;
        let mut doc = tx.load_doc(&plan_row.id)?.context("no document")?;
        Ok(doc.save())
    })?;
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let doc = automerge::AutoCommit::load_unverified_heads(&bytes)?;
        out.push(start.elapsed());
        drop(doc);
    }
    Ok(out)
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

/// The identity the bench's history is written as.
fn bench_seller() -> Identity {
    Identity {
        name: "Bench Seller".into(),
        email: "bench@vendor.example".into(),
        side: map_model::identity::Side::Seller,
    }
}
