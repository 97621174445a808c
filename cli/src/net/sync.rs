//! `map sync`: exchange plans with a relay.
//!
//! # Which plans go where
//!
//! - A plan is synced with every remote it is known to be on (`map join`,
//!   or an earlier successful sync, marks it).
//! - A local plan that is on no remote yet is pushed to the *default
//!   remote*: the one named with `--remote`/`--relay`, else `origin`, else
//!   the only remote. With several remotes and no `origin`, such plans stay
//!   local and `map sync` says how to push them (`--remote NAME`).
//! - Plans the relay lists for this token (`GET /v1/plans`) that are not
//!   local yet are fetched (unless `--plan` narrows the sync to one plan).
//! - `--plan P` syncs only P; with an explicit `--remote`, P is pushed
//!   there even if it already lives on another remote.
//!
//! # What is written, and when
//!
//! Nothing is written until the relay has answered for every plan. Then each
//! plan is saved in its own store transaction: the merged document through
//! [`plans::save_plan`] (so the cached view and the history follow), its
//! sync state and the "on this remote" mark. A sync that fails (relay down,
//! token refused, connection lost) writes nothing and exits with code 3.
//! `--relay URL --token T` stores the relay as a remote (`origin`, or the
//! `--remote` name) once a sync with it succeeded.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use automerge::sync as am_sync;
use map_model::PlanDoc;
use map_store::Remote;
use map_sync::{ChangeSummary, ConnectOptions, Connection, DocOutcome, DocReport, SyncDoc};

use crate::cli::SyncArgs;
use crate::context::{Clock, Context, keys};
use crate::error::{CliError, Result};
use crate::net::{api, normalize_relay_url, runtime, sync_error, ws_endpoint};
use crate::plans::{self, save_plan};

/// The plans to sync with remote `remote`: those already on it, plus local
/// plans on no relay yet if `take_new` (the default remote, or the one
/// `--watch` follows), plus `only` if `push_only` (it was named together
/// with this remote). With `only`, just that plan.
pub fn picks_for(
    tx: &map_store::ReadTx<'_>,
    remote: &str,
    take_new: bool,
    only: Option<&str>,
    push_only: bool,
) -> Result<Vec<Pick>> {
    let marked = tx.plans_on_remote(remote)?;
    let mut picks: Vec<Pick> = marked
        .iter()
        .map(|id| Pick {
            id: id.clone(),
            on_remote: true,
        })
        .collect();
    for p in tx.list_plans()? {
        if marked.contains(&p.id) {
            continue;
        }
        let named = push_only && only == Some(p.id.as_str());
        if named || (take_new && tx.remotes_of_plan(&p.id)?.is_empty()) {
            picks.push(Pick {
                id: p.id,
                on_remote: false,
            });
        }
    }
    if let Some(only) = only {
        picks.retain(|p| p.id == only);
    }
    Ok(picks)
}

/// A plan counts as large (progress shown on a terminal) past this size...
const LARGE_BYTES: u64 = 1024 * 1024;
/// ... or this many changes moved in one sync.
const LARGE_CHANGES: u64 = 500;
/// At most this many change messages are listed per author and plan.
const MAX_LISTED: usize = 5;

/// One plan to sync with one remote.
#[derive(Debug, Clone)]
pub struct Pick {
    /// Document id.
    pub id: String,
    /// Whether it was already known to be on this remote.
    pub on_remote: bool,
}

/// What syncing with one remote produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Lines for stdout, one or more per plan.
    pub lines: Vec<String>,
    /// Plans that failed (message per plan); the sync exits 3 if any.
    pub failures: Vec<String>,
    /// Ids of the plans saved and in sync (or at least up to date with the
    /// relay's changes), with their titles.
    pub synced: Vec<(String, String)>,
}

/// `map sync`.
pub fn run(ctx: &mut Context, args: SyncArgs) -> Result<()> {
    let plan_arg = ctx.plan_arg.clone();
    // The remote named on the command line, if any, and whether it still has
    // to be stored (`--relay` with a new name).
    let (explicit, new_remote) = explicit_remote(ctx, &args)?;
    if args.watch {
        let remote = match explicit {
            Some(r) => r,
            None => ctx
                .store()?
                .read(|tx| default_remote(&tx.remotes()?))?
                .ok_or_else(no_default)?,
        };
        return crate::net::watch::run(ctx, remote, new_remote, plan_arg.as_deref());
    }
    let (targets, notes) = ctx.store()?.read(|tx| {
        let remotes = match &explicit {
            Some(r) => vec![r.clone()],
            None => tx.remotes()?,
        };
        if remotes.is_empty() {
            return Err(no_remote());
        }
        let default = match &explicit {
            Some(r) => Some(r.name.clone()),
            None => default_remote(&remotes)?.map(|r| r.name),
        };
        let only = plan_arg
            .as_deref()
            .map(|p| plans::resolve_plan(tx, p).map(|r| r.id))
            .transpose()?;
        let mut notes = Vec::new();
        let mut targets = Vec::new();
        let local = tx.list_plans()?;
        for r in &remotes {
            let picks = picks_for(
                tx,
                &r.name,
                default.as_deref() == Some(r.name.as_str()),
                only.as_deref(),
                explicit.is_some(),
            )?;
            targets.push((r.clone(), picks));
        }
        if default.is_none() {
            for p in &local {
                if tx.remotes_of_plan(&p.id)?.is_empty() && only.as_ref().is_none_or(|o| o == &p.id)
                {
                    notes.push(format!(
                        "{}: on no relay yet; push it with `map sync --plan {} --remote NAME`",
                        p.title, &p.id
                    ));
                }
            }
        }
        if let Some(o) = &only
            && targets.iter().all(|(_, picks)| picks.is_empty())
        {
            return Err(CliError::user(format!("plan {o} is not on any relay"))
                .hint("push it with `map sync --plan PLAN --remote NAME`"));
        }
        Ok::<_, CliError>((targets, notes))
    })?;

    let rt = runtime()?;
    let discover = plan_arg.is_none();
    let mut failures = Vec::new();
    let mut any_line = false;
    let mut first_error = None;
    for (remote, picks) in targets {
        let store_it = new_remote.as_ref().is_some_and(|n| n.name == remote.name);
        match sync_remote(ctx, &rt, &remote, picks, discover, store_it) {
            Ok(out) => {
                any_line |= !out.lines.is_empty();
                crate::commands::say(&out.lines)?;
                failures.extend(out.failures);
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                } else {
                    failures.push(e.message.clone());
                }
            }
        }
    }
    let mut err = anstream::stderr().lock();
    for n in &notes {
        let _ = writeln!(err, "note: {n}");
    }
    if let Some(e) = first_error {
        let mut e = e;
        for f in failures {
            e = e.hint(f);
        }
        return Err(e);
    }
    if !failures.is_empty() {
        let mut e = CliError::network(format!(
            "{} plan{} did not sync",
            failures.len(),
            if failures.len() == 1 { "" } else { "s" }
        ));
        for f in failures {
            e = e.hint(f);
        }
        return Err(e.hint("run `map sync` again; other plans were saved"));
    }
    if !any_line {
        crate::commands::say(&["up to date".to_string()])?;
    }
    Ok(())
}

fn no_remote() -> CliError {
    CliError::user("there is no relay to sync with").hint(
        "add one with `map remote add origin ws://HOST:PORT --token TOKEN`, or join a plan with `map join INVITE`",
    )
}

fn no_default() -> CliError {
    CliError::user("several remotes and none is called origin")
        .hint("say which one with `--remote NAME` (see `map remote list`)")
}

/// The remote plans go to when they are on none: `origin`, else the only
/// remote. `Ok(None)` when there are several and no `origin`; an error when
/// there is none at all.
pub fn default_remote(remotes: &[Remote]) -> Result<Option<Remote>> {
    if remotes.is_empty() {
        return Err(no_remote());
    }
    if let Some(o) = remotes.iter().find(|r| r.name == "origin") {
        return Ok(Some(o.clone()));
    }
    Ok(if remotes.len() == 1 {
        remotes.first().cloned()
    } else {
        None
    })
}

/// The remote named by `--remote` / `--relay`, and (second) the remote to
/// store after a successful sync when `--relay` names a new one or a new token.
fn explicit_remote(ctx: &mut Context, args: &SyncArgs) -> Result<(Option<Remote>, Option<Remote>)> {
    let token = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match (&args.relay, &args.remote) {
        (None, None) => Ok((None, None)),
        (None, Some(name)) => {
            let r = ctx
                .store()?
                .read(|tx| Ok::<_, CliError>(tx.remote(name)?))?;
            let r = r.ok_or_else(|| {
                CliError::user(format!("there is no remote called '{name}'"))
                    .hint("list remotes with `map remote list`, or add one with `map remote add`")
            })?;
            Ok((Some(r), None))
        }
        (Some(url), name) => {
            let url = normalize_relay_url(url)?;
            if let Some(path) = args.ca_file.as_deref() {
                crate::net::tls::register(&url, &crate::net::tls::check(path)?);
            }
            let name = name.clone().unwrap_or_else(|| "origin".to_string());
            crate::net::remote::check_name(&name)?;
            let stored = ctx
                .store()?
                .read(|tx| Ok::<_, CliError>(tx.remote(&name)?))?;
            match stored {
                Some(r) if r.url != url => Err(CliError::user(format!(
                    "remote '{name}' already points at {}",
                    r.url
                ))
                .hint("store this relay under another name with `--remote NAME`")),
                Some(r) => {
                    if token.is_some_and(|t| Some(t) != r.token.as_deref()) {
                        let updated = Remote {
                            token: token.map(str::to_string),
                            ..r
                        };
                        Ok((Some(updated.clone()), Some(updated)))
                    } else {
                        Ok((Some(r), None))
                    }
                }
                None => {
                    let r = Remote {
                        name,
                        url,
                        token: token.map(str::to_string),
                    };
                    Ok((Some(r.clone()), Some(r)))
                }
            }
        }
    }
}

/// Connection options for `remote`.
pub fn connect_options(remote: &Remote) -> ConnectOptions {
    let mut opts = ConnectOptions::new(ws_endpoint(&remote.url), remote.token.clone());
    opts.ca_file = crate::net::tls::ca_file_for(&remote.url);
    opts
}

/// What the store holds about a plan before syncing.
struct Before {
    on_remote: bool,
    was_local: bool,
    /// Local changes the relay was not known to have.
    unshared: usize,
    title: String,
}

/// Sync `picks` with `remote` over one connection and save the results
/// (one transaction per plan). With `discover`, plans the relay lists for
/// this token are synced too (fetched when not local). With `store_remote`,
/// the remote itself is saved once the relay answered.
pub fn sync_remote(
    ctx: &mut Context,
    rt: &tokio::runtime::Runtime,
    remote: &Remote,
    mut picks: Vec<Pick>,
    discover: bool,
    store_remote: bool,
) -> Result<Outcome> {
    let opts = connect_options(remote);
    let (mut conn, listed) = rt.block_on(async {
        let conn = Connection::connect(opts).await.map_err(sync_error)?;
        let mut listed = Vec::new();
        if let (true, Some(token)) = (discover, &remote.token) {
            match api::list_plans(&remote.url, token).await {
                Ok(plans) => listed = plans,
                Err(e) => tracing::debug!(error = %e, "could not list the relay's plans"),
            }
        }
        Ok::<_, CliError>((conn, listed))
    })?;
    for p in listed {
        if !picks.iter().any(|x| x.id == p.id) {
            picks.push(Pick {
                id: p.id,
                on_remote: true,
            });
        }
    }

    let (mut docs, before, large) = ctx.store()?.read(|tx| {
        let mut docs = Vec::new();
        let mut before = Vec::new();
        let mut large = false;
        for p in &picks {
            let mut state = tx.sync_state(&p.id, &remote.name)?;
            // A sync state is about a document we hold; without one, start fresh.
            let (mut doc, was_local) = match tx.load_doc(&p.id)? {
                Some(doc) => (doc, true),
                None => {
                    state = am_sync::State::new();
                    (automerge::AutoCommit::new(), false)
                }
            };
            if let Some(s) = tx.doc_stats(&p.id)? {
                large |= s.snapshot_bytes + s.chunk_bytes > LARGE_BYTES;
            }
            let fresh = state.shared_heads.is_empty();
            let unshared = doc.get_changes_meta(&state.shared_heads).len();
            large |= unshared as u64 > LARGE_CHANGES;
            let title = tx.plan(&p.id)?.map(|r| r.title).unwrap_or_default();
            docs.push(SyncDoc {
                id: p.id.clone(),
                doc,
                state,
            });
            before.push(Before {
                on_remote: p.on_remote,
                was_local,
                // With a fresh state we cannot tell what the relay had.
                unshared: if fresh && p.on_remote { 0 } else { unshared },
                title,
            });
        }
        Ok::<_, CliError>((docs, before, large))
    })?;

    let progress = Progress::new(large);
    let reports = rt.block_on(async {
        if docs.is_empty() {
            conn.close().await;
            return Ok(Vec::new());
        }
        let mut received: u64 = 0;
        let reports = conn
            .sync(&mut docs, |_, changes| {
                received += changes.len() as u64;
                progress.received(received);
                Ok(())
            })
            .await
            .map_err(sync_error)?;
        conn.close().await;
        Ok::<_, CliError>(reports)
    });
    progress.finish();
    let reports = reports?;

    if store_remote {
        ctx.store()?.write(|tx| {
            tx.set_remote(&remote.name, &remote.url, remote.token.as_deref())?;
            let ca_file = crate::net::tls::registered(&remote.url);
            crate::net::tls::store(tx, &remote.name, &remote.url, ca_file.as_deref())?;
            Ok::<_, CliError>(())
        })?;
    }

    let clock = ctx.clock;
    let mut out = Outcome::default();
    if store_remote {
        out.lines
            .push(format!("saved: remote {}: {}", remote.name, remote.url));
    }
    for ((sd, report), b) in docs.into_iter().zip(reports).zip(before) {
        save_report(ctx, clock, remote, sd, report, b, &mut out)?;
    }
    Ok(out)
}

/// Save one plan after a sync and describe what happened.
fn save_report(
    ctx: &mut Context,
    clock: Clock,
    remote: &Remote,
    sd: SyncDoc,
    report: DocReport,
    b: Before,
    out: &mut Outcome,
) -> Result<()> {
    let SyncDoc { id, doc, state } = sd;
    let label = if b.title.is_empty() {
        id.clone()
    } else {
        b.title.clone()
    };
    match &report.outcome {
        DocOutcome::TimedOut => {
            out.failures.push(format!("{label}: {}", report.outcome));
            return Ok(());
        }
        DocOutcome::Unavailable => {
            if b.on_remote || !b.was_local {
                out.failures.push(format!(
                    "{label}: the relay {} does not have this plan or you have no access to it",
                    remote.name
                ));
            } else {
                out.lines.push(format!(
                    "{label}: the relay {} did not take this plan (your token may not create plans there)",
                    remote.name
                ));
            }
            return Ok(());
        }
        DocOutcome::InSync | DocOutcome::NotAccepted { .. } => {}
    }
    let must_save = !report.received.is_empty() || !b.was_local;
    let (title, people) = ctx
        .store()?
        .write(|tx| {
            let (title, people) = if must_save {
                let mut plan = PlanDoc::from_doc(doc)?;
                let saved = save_plan(tx, &id, &mut plan, clock.today, clock.now_ms)?;
                (saved.view.header.title.clone(), saved.view.people)
            } else {
                (b.title.clone(), Vec::new())
            };
            tx.set_sync_state(&id, &remote.name, &state)?;
            tx.mark_on_remote(&id, &remote.name)?;
            if !b.was_local && tx.get_setting(keys::CURRENT_PLAN)?.is_none() {
                tx.set_setting(keys::CURRENT_PLAN, &id)?;
            }
            Ok::<_, CliError>((title, people))
        })
        .map_err(|e| {
            if !b.was_local {
                CliError::user(format!(
                    "could not save plan {id} fetched from {}: {}",
                    remote.name, e.message
                ))
            } else {
                e
            }
        })?;
    let title = if title.is_empty() { label } else { title };
    out.synced.push((id.clone(), title.clone()));
    if !b.was_local {
        out.lines.push(format!(
            "{title}: fetched from {} ({} change{})",
            remote.name,
            report.received.len(),
            plural(report.received.len())
        ));
    } else {
        out.lines
            .extend(describe_received(&title, &report.received, &people));
        let sent = b.unshared;
        match report.outcome {
            DocOutcome::NotAccepted { local_changes } => out.lines.push(format!(
                "{title}: the relay did not accept your {local_changes} local change{} (read-only access); {} stay{} on this machine only",
                plural(local_changes),
                if local_changes == 1 { "it" } else { "they" },
                if local_changes == 1 { "s" } else { "" }
            )),
            _ if !b.on_remote => out.lines.push(format!("{title}: pushed to {}", remote.name)),
            _ if sent > 0 => out.lines.push(format!(
                "{title}: sent {sent} local change{}",
                plural(sent)
            )),
            _ => {}
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `TITLE: N changes from AUTHOR (side): msg; msg; ...`, one line per
/// author, in the order the changes arrived.
pub fn describe_received(
    title: &str,
    received: &[ChangeSummary],
    people: &[map_model::view::PersonView],
) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut by_author: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in received {
        let author = c.author.clone().unwrap_or_else(|| "someone".to_string());
        if !by_author.contains_key(&author) {
            order.push(author.clone());
        }
        by_author.entry(author).or_default().push(
            c.message
                .clone()
                .unwrap_or_else(|| "(no message)".to_string()),
        );
    }
    order
        .into_iter()
        .map(|author| {
            let msgs = by_author.remove(&author).unwrap_or_default();
            let (name, side) = author_label(&author, people);
            let who = match side {
                Some(s) => format!("{name} ({s})"),
                None => name,
            };
            let mut listed: Vec<String> = msgs.iter().take(MAX_LISTED).cloned().collect();
            if msgs.len() > MAX_LISTED {
                listed.push(format!("and {} more", msgs.len() - MAX_LISTED));
            }
            format!(
                "{title}: {} change{} from {who}: {}",
                msgs.len(),
                plural(msgs.len()),
                listed.join("; ")
            )
        })
        .collect()
}

/// The display name in `Name <email>` and the side of the matching person
/// in the plan (by email, else by name), if any.
fn author_label(author: &str, people: &[map_model::view::PersonView]) -> (String, Option<String>) {
    let (name, email) = match author.rsplit_once(" <") {
        Some((n, rest)) if rest.ends_with('>') => (
            n.trim().to_string(),
            Some(rest.trim_end_matches('>').to_string()),
        ),
        _ => (author.trim().to_string(), None),
    };
    let person = people
        .iter()
        .find(|p| {
            email
                .as_deref()
                .is_some_and(|e| !e.is_empty() && p.email.eq_ignore_ascii_case(e))
        })
        .or_else(|| people.iter().find(|p| p.name.eq_ignore_ascii_case(&name)));
    (name, person.map(|p| p.side.to_string()))
}

/// A progress indicator for large syncs, drawn on stderr only when it is a
/// terminal (indicatif hides itself otherwise).
struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    fn new(large: bool) -> Progress {
        let bar = indicatif::ProgressBar::hidden();
        let p = Progress { bar };
        if large {
            p.show();
        }
        p
    }

    fn show(&self) {
        if !self.bar.is_hidden() {
            return;
        }
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} syncing: {msg} ({elapsed})")
        {
            self.bar.set_style(style);
        }
        self.bar.set_message("exchanging changes with the relay");
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    fn received(&self, n: u64) {
        if n > LARGE_CHANGES {
            self.show();
        }
        if !self.bar.is_hidden() {
            self.bar.set_message(format!("{n} changes received"));
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(author: &str, msg: &str) -> ChangeSummary {
        ChangeSummary {
            hash: String::new(),
            actor: String::new(),
            author: Some(author.to_string()),
            message: Some(msg.to_string()),
            timestamp: 0,
        }
    }

    #[test]
    fn received_changes_are_grouped_per_author() {
        let lines = describe_received(
            "Acme rollout",
            &[
                change("Ana Buyer <ana@acme.example>", "task done: Security review"),
                change("Bob <bob@x>", "task add: X"),
                change("Ana Buyer <ana@acme.example>", "task edit: Y"),
            ],
            &[],
        );
        assert_eq!(
            lines,
            [
                "Acme rollout: 2 changes from Ana Buyer: task done: Security review; task edit: Y",
                "Acme rollout: 1 change from Bob: task add: X",
            ]
        );
    }

    #[test]
    fn default_remote_prefers_origin_then_the_only_one() {
        let r = |n: &str| Remote {
            name: n.into(),
            url: "ws://h:1".into(),
            token: None,
        };
        assert!(default_remote(&[]).is_err());
        assert_eq!(
            default_remote(&[r("relay")]).unwrap().unwrap().name,
            "relay"
        );
        assert_eq!(
            default_remote(&[r("a"), r("origin")])
                .unwrap()
                .unwrap()
                .name,
            "origin"
        );
        assert!(default_remote(&[r("a"), r("b")]).unwrap().is_none());
    }
}
