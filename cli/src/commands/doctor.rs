//! `map doctor`: check the local database and say what is wrong in words a
//! user can act on; `--fix` rebuilds stale cached views and history from the
//! documents; `--restore` moves a damaged database aside (never deleting
//! it), starts a fresh one with whatever could still be read from the old
//! one (identity, remotes, plans) and fetches every plan the relays list.
//!
//! Exit code: 0 healthy (or fixed/restored), 1 problems found.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use map_model::PlanDoc;
use map_store::{HistoryRow, Remote, Store, StoreError};
use serde::Serialize;

use crate::cli::{DoctorArgs, SyncArgs};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::plans::{encode_view, save_plan};

/// How long `map doctor` waits for a relay's plan list.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);

/// One thing found wrong.
#[derive(Debug, Serialize)]
struct Problem {
    /// What is wrong.
    what: String,
    /// What to do about it.
    fix: String,
}

/// One plan's state.
#[derive(Debug, Serialize)]
struct PlanCheck {
    id: String,
    title: String,
    /// `ok`, `stale` (cached view or history behind the document), `damaged`.
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// One remote and the plans it holds for its token.
#[derive(Debug, Serialize)]
struct RemoteCheck {
    name: String,
    url: String,
    /// Plan ids the relay lists for this token (`None`: could not ask).
    plans: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    database: String,
    healthy: bool,
    problems: Vec<Problem>,
    plans: Vec<PlanCheck>,
    remotes: Vec<RemoteCheck>,
}

/// `map doctor [--json] [--fix] [--restore [--remote NAME]]`.
pub fn run(ctx: &mut Context, args: DoctorArgs) -> Result<()> {
    if args.restore {
        return restore(ctx, args.remote.as_deref());
    }
    if args.fix {
        fix(ctx)?;
    }
    let report = diagnose(ctx)?;
    if args.json {
        super::print_json(&report)?;
    } else {
        print_report(&report)?;
    }
    if report.healthy {
        Ok(())
    } else {
        let n = report.problems.len();
        Err(CliError::user(format!(
            "map doctor found {n} problem{}",
            if n == 1 { "" } else { "s" }
        )))
    }
}

fn problem(what: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        what: what.into(),
        fix: fix.into(),
    }
}

const RESTORE_HINT: &str = "run `map doctor --restore` to move it aside and fetch your plans again from your relay (the damaged file is kept)";

/// Check everything; never writes to the database.
fn diagnose(ctx: &mut Context) -> Result<Report> {
    let path = ctx.db_path();
    let mut report = Report {
        database: path.display().to_string(),
        healthy: true,
        problems: Vec::new(),
        plans: Vec::new(),
        remotes: Vec::new(),
    };
    if let Err(detail) = probe_writable(&ctx.home) {
        report.problems.push(problem(
            format!("cannot write to {}: {detail}", ctx.home.display()),
            "free some space, fix the directory's permissions or remount it read-write, or point MAP_HOME at a writable directory",
        ));
    }
    if !path.exists() {
        report.problems.push(problem(
            format!("there is no database at {}", path.display()),
            "create a plan with `map init TITLE`, or add your relay with `map remote add NAME URL --token T` and run `map sync` to fetch your plans",
        ));
        report.healthy = false;
        return Ok(report);
    }
    let store = match Store::open_read_only(&path) {
        Ok(s) => s,
        Err(e) => {
            report.problems.push(open_problem(&e));
            report.healthy = false;
            return Ok(report);
        }
    };
    if let Err(e) = store.integrity_check() {
        report.problems.push(problem(e.to_string(), RESTORE_HINT));
    }
    let today = ctx.today();
    let (plans, remotes) = store
        .read(|tx| {
            let mut checks = Vec::new();
            for row in tx.list_plans()? {
                checks.push(check_plan(tx, &row.id, &row.title, today));
            }
            Ok::<_, StoreError>((checks, tx.remotes()?))
        })
        .unwrap_or_else(|e| {
            report.problems.push(problem(e.to_string(), RESTORE_HINT));
            (Vec::new(), Vec::new())
        });
    for p in &plans {
        match p.status.as_str() {
            "stale" => report.problems.push(problem(
                format!(
                    "the cached view or history of plan {} ({}) is out of date with its document",
                    p.id, p.title
                ),
                "run `map doctor --fix` to rebuild views and history from the documents",
            )),
            "damaged" => report.problems.push(problem(
                format!(
                    "plan {} ({}) cannot be loaded: {}",
                    p.id,
                    p.title,
                    p.detail.as_deref().unwrap_or("unknown error")
                ),
                RESTORE_HINT,
            )),
            _ => {}
        }
    }
    report.plans = plans;
    report.remotes = check_remotes(&remotes);
    report.healthy = report.problems.is_empty();
    Ok(report)
}

/// Whether a file can be created in `dir` (read-only mounts, permissions,
/// a full disk).
fn probe_writable(dir: &Path) -> std::result::Result<(), String> {
    if !dir.exists() {
        // Nothing there yet; the parent decides.
        return match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() && p.exists() => probe_writable(p),
            _ => Ok(()),
        };
    }
    let probe = dir.join(format!(".map-doctor-probe-{}", std::process::id()));
    let res = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    res.map_err(|e| e.to_string())
}

fn open_problem(e: &StoreError) -> Problem {
    let fix = match e {
        StoreError::NotSqlite { .. } | StoreError::Foreign { .. } => {
            "point MAP_HOME at another directory, or run `map doctor --restore` to move the file aside and start a fresh database fetched from your relay"
        }
        StoreError::Corrupt { .. } => RESTORE_HINT,
        StoreError::NewerSchema { .. } => "upgrade map to the version that wrote it",
        StoreError::NeedsUpgrade { .. } => {
            "run any map command that changes something (e.g. `map plans` after `map identity set`) to upgrade it"
        }
        StoreError::CannotWrite { .. } => {
            "fix the permissions of the directory, or point MAP_HOME at a writable directory"
        }
        StoreError::DiskFull { .. } => "free some space, then run the command again",
        StoreError::Busy { .. } => {
            "wait for the other map process to finish, then run `map doctor` again"
        }
        _ => "run `map doctor` again; if the problem stays, run `map doctor --restore`",
    };
    problem(e.to_string(), fix)
}

/// Load plan `id`'s document and compare the caches with it.
fn check_plan(
    tx: &map_store::ReadTx<'_>,
    id: &str,
    title: &str,
    today: chrono::NaiveDate,
) -> PlanCheck {
    let mut check = PlanCheck {
        id: id.to_string(),
        title: title.to_string(),
        status: "ok".into(),
        detail: None,
    };
    let damaged = |mut c: PlanCheck, d: String| {
        c.status = "damaged".into();
        c.detail = Some(d);
        c
    };
    let mut doc = match tx.load_doc(id) {
        Ok(Some(d)) => d,
        Ok(None) => return damaged(check, "it has no document".into()),
        Err(e) => return damaged(check, e.to_string()),
    };
    let changes = HistoryRow::since(&mut doc, &[]).len() as u64;
    let mut plan = match PlanDoc::from_doc(doc) {
        Ok(p) => p,
        Err(e) => return damaged(check, e.to_string()),
    };
    if let Err(e) = plan.view(today) {
        return damaged(check, e.to_string());
    }
    let view_ok = matches!(tx.get_view(id), Ok(Some(v)) if v.is_current());
    let history_ok = matches!(tx.history_len(id), Ok(n) if n == changes);
    if !view_ok || !history_ok {
        check.status = "stale".into();
        check.detail = Some(
            match (view_ok, history_ok) {
                (false, false) => "cached view and history are out of date",
                (false, true) => "cached view is out of date",
                _ => "cached history is out of date",
            }
            .into(),
        );
    }
    check
}

/// Ask each remote which plans it holds for its token.
fn check_remotes(remotes: &[Remote]) -> Vec<RemoteCheck> {
    if remotes.is_empty() {
        return Vec::new();
    }
    let rt = crate::net::runtime().ok();
    remotes
        .iter()
        .map(|r| {
            let mut c = RemoteCheck {
                name: r.name.clone(),
                url: r.url.clone(),
                plans: None,
                error: None,
            };
            match (&rt, &r.token) {
                (_, None) => c.error = Some("no token stored".into()),
                (None, _) => c.error = Some("cannot start the network runtime".into()),
                (Some(rt), Some(token)) => {
                    let res = rt.block_on(async {
                        tokio::time::timeout(
                            RELAY_TIMEOUT,
                            crate::net::api::list_plans(&r.url, token),
                        )
                        .await
                    });
                    match res {
                        Ok(Ok(list)) => {
                            let mut ids: Vec<String> = list.into_iter().map(|p| p.id).collect();
                            ids.sort();
                            c.plans = Some(ids);
                        }
                        Ok(Err(e)) => c.error = Some(e.message),
                        Err(_) => c.error = Some("the relay did not answer in time".into()),
                    }
                }
            }
            c
        })
        .collect()
}

fn print_report(r: &Report) -> Result<()> {
    let mut lines = vec![format!("database: {}", r.database)];
    for p in &r.plans {
        let detail = p
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        lines.push(format!("plan {}  {}: {}{detail}", p.id, p.title, p.status));
    }
    for rc in &r.remotes {
        match (&rc.plans, &rc.error) {
            (Some(ids), _) => lines.push(format!(
                "remote {} ({}): holds {} plan{}{}",
                rc.name,
                rc.url,
                ids.len(),
                if ids.len() == 1 { "" } else { "s" },
                if ids.is_empty() {
                    String::new()
                } else {
                    format!(": {}", ids.join(", "))
                }
            )),
            (None, e) => lines.push(format!(
                "remote {} ({}): not checked: {}",
                rc.name,
                rc.url,
                e.as_deref().unwrap_or("unknown")
            )),
        }
    }
    if r.remotes.is_empty() && !r.plans.is_empty() {
        lines.push(
            "no remote configured: your plans exist only here (add one with `map remote add`)"
                .into(),
        );
    }
    for p in &r.problems {
        lines.push(format!("problem: {}", p.what));
        lines.push(format!("  fix: {}", p.fix));
    }
    if r.healthy {
        lines.push("ok: no problems found".into());
    }
    super::say(&lines)
}

/// `map doctor --fix`: rebuild every plan's cached view and history from
/// its document, one transaction per plan.
fn fix(ctx: &mut Context) -> Result<()> {
    let today = ctx.today();
    let store = ctx.store()?;
    let ids: Vec<String> =
        store.read(|tx| Ok::<_, CliError>(tx.list_plans()?.into_iter().map(|r| r.id).collect()))?;
    let mut lines = Vec::new();
    for id in ids {
        let res = store.write(|tx| {
            let Some(mut doc) = tx.load_doc(&id)? else {
                return Ok::<_, CliError>(false);
            };
            let rows = HistoryRow::since(&mut doc, &[]);
            let heads = tx.doc_heads(&id)?.unwrap_or_default();
            let mut plan = PlanDoc::from_doc(doc)?;
            let view = plan.view(today)?;
            tx.put_view(&id, &heads, &encode_view(&view)?)?;
            tx.clear_history(&id)?;
            tx.append_history(&id, &rows)?;
            tx.set_plan_meta(
                &id,
                &plan.title(),
                tx.plan(&id)?.map(|r| r.updated_at_ms).unwrap_or_default(),
            )?;
            Ok(true)
        });
        match res {
            Ok(true) => lines.push(format!("rebuilt view and history of plan {id}")),
            Ok(false) => {}
            Err(e) => lines.push(format!("could not rebuild plan {id}: {}", e.message)),
        }
    }
    super::say(&lines)
}

/// What could be read from the old database.
#[derive(Default)]
struct Salvage {
    settings: Vec<(String, String)>,
    remotes: Vec<Remote>,
    /// (id, document, remotes it was on)
    docs: Vec<(String, automerge::AutoCommit, Vec<String>)>,
    /// Plans whose document could not be read.
    lost: Vec<String>,
    /// Why nothing could be read at all.
    unreadable: Option<String>,
}

fn salvage(path: &Path) -> Salvage {
    let mut out = Salvage::default();
    let store = match Store::open_read_only(path) {
        Ok(s) => s,
        Err(e) => {
            out.unreadable = Some(e.to_string());
            return out;
        }
    };
    let _ = store.read(|tx| {
        match tx.settings() {
            Ok(s) => out.settings = s,
            Err(e) => tracing::debug!(error = %e, "settings unreadable"),
        }
        match tx.remotes() {
            Ok(r) => out.remotes = r,
            Err(e) => tracing::debug!(error = %e, "remotes unreadable"),
        }
        match tx.list_plans() {
            Ok(rows) => {
                for row in rows {
                    match tx.load_doc(&row.id) {
                        Ok(Some(doc)) => {
                            let on = tx.remotes_of_plan(&row.id).unwrap_or_default();
                            out.docs.push((row.id, doc, on));
                        }
                        _ => out.lost.push(row.id),
                    }
                }
            }
            Err(e) => {
                if out.unreadable.is_none() {
                    out.unreadable = Some(format!("its plan list cannot be read ({e})"));
                }
            }
        }
        Ok::<_, StoreError>(())
    });
    out
}

/// Rename `path` (and its `-wal`/`-shm` companions) to
/// `path.damaged-TIMESTAMP...`. Returns the new path of the main file.
fn move_aside(path: &Path, now_ms: i64) -> Result<PathBuf> {
    let stamp = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| now_ms.to_string());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "map.db".into());
    let mut base = path.with_file_name(format!("{name}.damaged-{stamp}"));
    let mut n = 1;
    while base.exists() {
        n += 1;
        base = path.with_file_name(format!("{name}.damaged-{stamp}-{n}"));
    }
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", base.display()));
            std::fs::rename(&from, &to).map_err(|e| {
                crate::error::io_error(format!("cannot move {} aside", from.display()), e)
            })?;
        }
    }
    std::fs::rename(path, &base)
        .map_err(|e| crate::error::io_error(format!("cannot move {} aside", path.display()), e))?;
    Ok(base)
}

/// `map doctor --restore [--remote NAME]`.
fn restore(ctx: &mut Context, remote: Option<&str>) -> Result<()> {
    let path = ctx.db_path();
    let mut lines = Vec::new();
    let mut salvaged = Salvage::default();
    let healthy = match Store::open_read_only(&path) {
        Ok(s) => s.integrity_check().is_ok(),
        Err(StoreError::NotFound { .. }) | Err(StoreError::NeedsUpgrade { .. }) => true,
        Err(e @ StoreError::NewerSchema { .. }) => return Err(e.into()),
        Err(_) => false,
    };
    if path.exists() && !healthy {
        let aside = move_aside(&path, ctx.now_ms())?;
        lines.push(format!(
            "moved the damaged database to {} (it is kept; delete it yourself once you are satisfied)",
            aside.display()
        ));
        salvaged = salvage(&aside);
    } else if path.exists() {
        lines.push(format!(
            "{} is readable; keeping it and fetching what the relay holds",
            path.display()
        ));
    }
    let today = ctx.today();
    let now = ctx.now_ms();
    let store = ctx.store()?;
    if !salvaged.settings.is_empty() || !salvaged.remotes.is_empty() || !salvaged.docs.is_empty() {
        let s = &mut salvaged;
        store.write(|tx| {
            for (k, v) in &s.settings {
                tx.set_setting(k, v)?;
            }
            for r in &s.remotes {
                tx.set_remote(&r.name, &r.url, r.token.as_deref())?;
            }
            for (id, doc, on) in &mut s.docs {
                match PlanDoc::from_doc(doc.clone()) {
                    Ok(mut plan) => {
                        save_plan(tx, id, &mut plan, today, now)?;
                        for r in on.iter() {
                            tx.mark_on_remote(id, r)?;
                        }
                    }
                    Err(_) => {
                        // Not a plan any more: keep the bytes for a later sync.
                        tx.save_doc(id, doc)?;
                    }
                }
            }
            Ok::<_, CliError>(())
        })?;
        lines.push(format!(
            "recovered from the old database: {} setting{}, {} remote{}, {} plan{} (with any changes that never reached a relay)",
            s.settings.len(),
            if s.settings.len() == 1 { "" } else { "s" },
            s.remotes.len(),
            if s.remotes.len() == 1 { "" } else { "s" },
            s.docs.len(),
            if s.docs.len() == 1 { "" } else { "s" },
        ));
    }
    if let Some(why) = &salvaged.unreadable {
        lines.push(format!(
            "the old database could not be read ({why}): changes that never reached a relay are lost"
        ));
    }
    for id in &salvaged.lost {
        lines.push(format!(
            "plan {id} could not be read from the old database: its changes that never reached a relay are lost"
        ));
    }
    super::say(&lines)?;
    let remotes = ctx.store()?.read(|tx| Ok::<_, CliError>(tx.remotes()?))?;
    if remotes.is_empty() {
        return Err(CliError::user(
            "no remote is configured, so nothing can be fetched from a relay",
        )
        .hint("add your relay again with `map remote add NAME URL --token T`, then run `map sync` (or `map doctor --restore`)"));
    }
    let targets: Vec<String> = match remote {
        Some(r) => vec![r.to_string()],
        None => remotes.iter().map(|r| r.name.clone()).collect(),
    };
    for name in targets {
        crate::net::sync::run(ctx, sync_args(&name)?)?;
    }
    Ok(())
}

/// `map sync --remote NAME`'s arguments, built by clap so new sync options
/// keep their defaults.
fn sync_args(remote: &str) -> Result<SyncArgs> {
    use clap::{Args, FromArgMatches};
    let cmd = SyncArgs::augment_args(clap::Command::new("sync").no_binary_name(true));
    let matches = cmd
        .try_get_matches_from(["--remote", remote])
        .map_err(|e| CliError::user(format!("internal: cannot build sync arguments: {e}")))?;
    SyncArgs::from_arg_matches(&matches)
        .map_err(|e| CliError::user(format!("internal: cannot build sync arguments: {e}")))
}
