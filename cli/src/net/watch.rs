//! `map sync --watch`: stay connected to one relay, print remote changes as
//! they arrive and push local ones as they are made, until Ctrl-C.
//!
//! It starts with an ordinary `map sync` round with that remote (so an
//! unreachable relay or a refused token fails at once, exit 3), then hands
//! the plans to `map_sync::watch`, which reconnects with backoff. Local
//! commits made by other `map` commands are noticed by polling the store's
//! heads every [`POLL`] (one indexed read per plan) and handed to the watch
//! as `WatchCommand::Merge`; plans created locally meanwhile are added. Each
//! batch of remote changes is saved in one transaction (document, view,
//! history, sync state), like `map sync`. Status lines go to stderr, change
//! lines to stdout.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::ChangeHash;
use map_model::PlanDoc;
use map_store::{Remote, Store};
use map_sync::{SyncDoc, WatchCommand, WatchEvent, WatchOptions};
use tokio::sync::mpsc;

use crate::context::Context;
use crate::error::{CliError, Result};
use crate::net::sync::{connect_options, describe_received, picks_for, sync_remote};
use crate::net::{runtime, sync_error};
use crate::plans::save_plan;

/// How often the store is checked for local commits.
pub const POLL: Duration = Duration::from_millis(300);

type Heads = Arc<Mutex<HashMap<String, Vec<ChangeHash>>>>;

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

fn status(line: &str) {
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "[{}] {line}", now());
}

/// `map sync --watch` with `remote`.
pub fn run(
    ctx: &mut Context,
    remote: Remote,
    new_remote: Option<Remote>,
    plan_arg: Option<&str>,
) -> Result<()> {
    let only = match plan_arg {
        Some(q) => Some(
            ctx.store()?
                .read(|tx| crate::plans::resolve_plan(tx, q))?
                .id,
        ),
        None => None,
    };
    let picks = ctx
        .store()?
        .read(|tx| picks_for(tx, &remote.name, true, only.as_deref(), true))?;
    let rt = runtime()?;
    let store_it = new_remote.as_ref().is_some_and(|n| n.name == remote.name);
    let first = sync_remote(ctx, &rt, &remote, picks, only.is_none(), store_it)?;
    crate::commands::say(&first.lines)?;
    for f in &first.failures {
        status(&format!("warning: {f}"));
    }

    // The plans to watch: those that synced, as stored now.
    let heads: Heads = Arc::new(Mutex::new(HashMap::new()));
    let mut titles: HashMap<String, String> = HashMap::new();
    let mut docs = ctx.store()?.read(|tx| {
        let mut docs = Vec::new();
        for (id, title) in &first.synced {
            let Some(doc) = tx.load_doc(id)? else {
                continue;
            };
            let state = tx.sync_state(id, &remote.name)?;
            if let Ok(mut map) = heads.lock() {
                map.insert(id.clone(), tx.doc_heads(id)?.unwrap_or_default());
            }
            titles.insert(id.clone(), title.clone());
            docs.push(SyncDoc {
                id: id.clone(),
                doc,
                state,
            });
        }
        Ok::<_, CliError>(docs)
    })?;

    let (cmd_tx, mut cmd_rx) = mpsc::channel::<WatchCommand>(64);
    let poll_store = Store::open(ctx.db_path())?;
    let watched: HashSet<String> = docs.iter().map(|d| d.id.clone()).collect();
    let clock = ctx.clock;
    let remote_name = remote.name.clone();
    let mut opts = WatchOptions::new(connect_options(&remote));
    opts.backoff_initial = Duration::from_millis(500);
    opts.backoff_max = Duration::from_secs(30);

    status(&format!(
        "watching {} plan{} on {} ({}); press Ctrl-C to stop",
        docs.len(),
        if docs.len() == 1 { "" } else { "s" },
        remote.name,
        remote.url
    ));
    let mut connected_once = false;
    let mut marked: HashSet<String> = watched.clone();
    let result = rt.block_on(async {
        let poller = tokio::spawn(poll_local(
            poll_store,
            heads.clone(),
            watched,
            only.is_none(),
            cmd_tx.clone(),
        ));
        let stopper = {
            let tx = cmd_tx.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    let _ = tx.send(WatchCommand::Stop).await;
                }
            })
        };
        let r = map_sync::watch(&opts, &mut docs, &mut cmd_rx, |event| {
            on_event(
                ctx,
                &remote_name,
                clock,
                &heads,
                &mut titles,
                &mut marked,
                &mut connected_once,
                event,
            )
            .map_err(|e| Box::new(e) as map_sync::PersistError)
        })
        .await;
        poller.abort();
        stopper.abort();
        r
    });
    // Keep what the relay is known to have for the next sync.
    let saved = ctx.store()?.write(|tx| {
        for d in &docs {
            if tx.has_plan(&d.id)? {
                tx.set_sync_state(&d.id, &remote.name, &d.state)?;
            }
        }
        Ok::<_, CliError>(())
    });
    result.map_err(sync_error)?;
    saved?;
    status("stopped watching");
    Ok(())
}

/// Handle one watch event (persisting remote changes).
#[allow(clippy::too_many_arguments)]
fn on_event(
    ctx: &mut Context,
    remote: &str,
    clock: crate::context::Clock,
    heads: &Heads,
    titles: &mut HashMap<String, String>,
    marked: &mut HashSet<String>,
    connected_once: &mut bool,
    event: WatchEvent<'_>,
) -> Result<()> {
    match event {
        WatchEvent::Connected { .. } => {
            if *connected_once {
                status("reconnected");
            }
            *connected_once = true;
        }
        WatchEvent::Changes { doc, changes } => {
            let watched_heads = doc.doc.get_heads();
            let mut plan = PlanDoc::from_doc(doc.doc.clone())?;
            let id = doc.id.clone();
            let state = &doc.state;
            let saved = ctx.store()?.write(|tx| {
                let saved = save_plan(tx, &id, &mut plan, clock.today, clock.now_ms)?;
                tx.set_sync_state(&id, remote, state)?;
                tx.mark_on_remote(&id, remote)?;
                Ok::<_, CliError>(saved)
            })?;
            marked.insert(id.clone());
            if let Ok(mut map) = heads.lock() {
                // What the watched copy holds; if the save merged local
                // commits, the poller sees the difference and pushes them.
                map.insert(id.clone(), watched_heads);
            }
            let title = saved.view.header.title.clone();
            titles.insert(id.clone(), title.clone());
            let lines = describe_received(&title, &changes, &saved.view.people)
                .into_iter()
                .map(|l| format!("[{}] {l}", now()))
                .collect::<Vec<_>>();
            crate::commands::say(&lines)?;
        }
        WatchEvent::InSync { id } => {
            if !marked.contains(id) {
                ctx.store()?.write(|tx| {
                    tx.mark_on_remote(id, remote)?;
                    Ok::<_, CliError>(())
                })?;
                marked.insert(id.to_string());
                let title = titles.get(id).cloned().unwrap_or_else(|| id.to_string());
                status(&format!("{title}: pushed to {remote}"));
            }
        }
        WatchEvent::Unavailable { id } => {
            let title = titles.get(id).cloned().unwrap_or_else(|| id.to_string());
            status(&format!(
                "{title}: the relay does not have this plan or you have no access to it"
            ));
        }
        WatchEvent::NotAccepted { id, local_changes } => {
            let title = titles.get(id).cloned().unwrap_or_else(|| id.to_string());
            status(&format!(
                "{title}: the relay did not accept your {local_changes} local change{} (read-only access); they stay on this machine only",
                if local_changes == 1 { "" } else { "s" }
            ));
        }
        WatchEvent::Disconnected { error, retry_in } => {
            status(&format!(
                "{}; retrying in {:.1} s",
                error.to_string().split("; ").next().unwrap_or_default(),
                retry_in.as_secs_f64()
            ));
        }
    }
    Ok(())
}

/// Every [`POLL`], hand local commits (and, with `add_new`, plans created
/// locally that are on no relay) to the watch.
async fn poll_local(
    store: Store,
    heads: Heads,
    mut watched: HashSet<String>,
    add_new: bool,
    commands: mpsc::Sender<WatchCommand>,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let found = store.read(|tx| {
            let mut out = Vec::new();
            for id in &watched {
                let stored = tx.doc_heads(id)?.unwrap_or_default();
                let known = heads
                    .lock()
                    .ok()
                    .and_then(|m| m.get(id).cloned())
                    .unwrap_or_default();
                if stored != known
                    && let Some(mut doc) = tx.load_doc(id)?
                {
                    out.push((id.clone(), stored, Some(doc.save()), None));
                }
            }
            if add_new {
                for p in tx.list_plans()? {
                    if !watched.contains(&p.id)
                        && tx.remotes_of_plan(&p.id)?.is_empty()
                        && let Some(doc) = tx.load_doc(&p.id)?
                    {
                        let stored = tx.doc_heads(&p.id)?.unwrap_or_default();
                        out.push((p.id.clone(), stored, None, Some(doc)));
                    }
                }
            }
            Ok::<_, map_store::StoreError>(out)
        });
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "polling the store failed");
                continue;
            }
        };
        for (id, stored, bytes, new_doc) in found {
            if let Ok(mut map) = heads.lock() {
                map.insert(id.clone(), stored);
            }
            let cmd = match (bytes, new_doc) {
                (Some(bytes), _) => WatchCommand::Merge { id, bytes },
                (None, Some(doc)) => {
                    watched.insert(id.clone());
                    status(&format!("new local plan {id}: pushing it"));
                    WatchCommand::Add(Box::new(SyncDoc::new(id, doc)))
                }
                (None, None) => continue,
            };
            if commands.send(cmd).await.is_err() {
                return;
            }
        }
    }
}
