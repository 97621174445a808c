//! Shared pieces of the benchmark binaries: a `map-relay` started with a
//! temporary database and one user, and a long plan history written through
//! the same libraries the CLI uses.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use chrono::NaiveDate;
use map_model::plan::TaskEdit;
use map_model::{Identity, PlanDoc};
use map_store::{HistoryRow, Store};

/// A `map-relay serve` on a free loopback port with a temporary database
/// and one user; killed on drop.
pub struct SpawnedRelay {
    child: Child,
    /// `ws://127.0.0.1:PORT` as the relay printed it.
    pub url: String,
    /// The token of the relay's one user.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl SpawnedRelay {
    /// Creates user `user`, then starts `bin serve` with `serve_args` added.
    pub fn start(bin: &Path, user: &str, serve_args: &[&str]) -> Result<SpawnedRelay> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("relay.db");
        let out = Command::new(bin)
            .args(["user", "add", user])
            .arg("--data")
            .arg(&db)
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "map-relay user add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let token = String::from_utf8(out.stdout)?.trim().to_string();
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(serve_args)
            .arg("--data")
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("map-relay listening on ")
            .ok_or_else(|| anyhow!("unexpected first line from map-relay: {line:?}"))?
            .to_string();
        Ok(SpawnedRelay {
            child,
            url,
            token,
            _dir: dir,
        })
    }

    /// The relay's process id (for `/proc` figures).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for SpawnedRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends `changes` edits (due dates across the plan's tasks) by `by` to
/// the only plan in the database at `db`, with history rows, each its own
/// Automerge change, then compacts as the store does periodically and drops
/// the cached view (the next `map` write rebuilds it). `offset` shifts the
/// dates so two participants' edits differ.
pub fn build_history(db: &Path, changes: usize, by: &Identity, offset: u64) -> Result<()> {
    let mut store = Store::open(db)?;
    store.write(|tx| -> Result<()> {
        let plan_row = tx.list_plans()?.into_iter().next().context("no plan")?;
        let doc = tx.load_doc(&plan_row.id)?.context("no document")?;
        let mut plan = PlanDoc::from_doc(doc)?;
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).context("date")?;
        let tasks: Vec<String> = plan
            .view(today)?
            .tasks
            .iter()
            .map(|t| t.id.clone())
            .collect();
        if tasks.is_empty() {
            bail!("the plan has no tasks to edit");
        }
        let now = 1_780_000_000_000_i64;
        for i in 0..changes {
            let task = &tasks[i % tasks.len()];
            let due = today + chrono::Days::new(10 + offset + (i % 90) as u64);
            plan.edit_task(
                by,
                now + i as i64,
                task,
                TaskEdit {
                    due: Some(Some(due)),
                    ..TaskEdit::default()
                },
            )?;
        }
        let outcome = tx.save_doc(&plan_row.id, plan.doc_mut())?;
        let rows = HistoryRow::since(plan.doc_mut(), &outcome.previous_heads);
        tx.append_history(&plan_row.id, &rows)?;
        tx.delete_view(&plan_row.id)?;
        tx.compact_doc(&plan_row.id)?;
        Ok(())
    })
}
