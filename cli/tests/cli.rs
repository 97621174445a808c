//! End-to-end tests of the offline `map` commands: each test runs the real
//! binary in its own temporary `MAP_HOME` with the clock pinned and colours
//! off, and snapshots what a user sees. Ids are random, so every id the plan
//! holds (and the plan id) is replaced by a stable label before comparing.

mod common;

use std::path::{Path, PathBuf};

use common::{Out, run_map};

const TODAY: &str = "2026-12-04";
const NOW: &str = "2026-12-04T09:30:00Z";

/// A temporary MAP_HOME.
struct Env {
    _dir: tempfile::TempDir,
    home: PathBuf,
    today: String,
    now: String,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        Env {
            _dir: dir,
            home,
            today: TODAY.to_string(),
            now: NOW.to_string(),
        }
    }

    fn db(&self) -> PathBuf {
        self.home.join("map.db")
    }

    fn run_in(&self, home: &Path, args: &[&str]) -> Out {
        run_map(home, &self.today, &self.now, args)
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_in(&self.home, args)
    }

    /// Run and require success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code, 0, "map {args:?} failed:\n{}", out.seen());
        out.stdout
    }

    /// The last line of stdout of a successful `add` (the new id).
    fn add(&self, args: &[&str]) -> String {
        let out = self.ok(args);
        out.lines().last().expect("an id").trim().to_string()
    }

    /// Set the identity and create a plan.
    fn with_plan(template: Option<&str>) -> Env {
        let env = Env::new();
        env.ok(&[
            "identity",
            "set",
            "--name",
            "Ana Lopez",
            "--email",
            "ana@seller.com",
            "--side",
            "seller",
        ]);
        let mut args = vec!["init", "Acme rollout", "--go-live", "2027-01-29"];
        if let Some(t) = template {
            args.extend(["--template", t]);
        }
        env.ok(&args);
        env
    }

    /// Every id in the current plan, paired with a stable label.
    fn id_labels(&self) -> Vec<(String, String)> {
        let json = self.run(&["show", "--json"]);
        let Ok(view) = serde_json::from_str::<serde_json::Value>(&json.stdout) else {
            return Vec::new();
        };
        common::id_labels(
            &view,
            &[
                ("tasks", "T"),
                ("milestones", "M"),
                ("people", "P"),
                ("risks", "R"),
                ("comments", "C"),
            ],
        )
    }

    /// Redact ids (full or as 4+ character prefixes), hashes and column
    /// padding that depends on id lengths.
    fn redact(&self, text: &str) -> String {
        let mut s = common::redact_ids(text, &self.id_labels());
        // Table rows start with the id column, whose width depends on the ids.
        let re = regex::Regex::new(r"(?m)^ (\[[A-Z]+\d+\]|ID) +").unwrap();
        s = re.replace_all(&s, " $1 ").into_owned();
        let re = regex::Regex::new(r"(?m)^[0-9a-f]{8}  ").unwrap();
        s = re.replace_all(&s, "[HASH]  ").into_owned();
        s
    }
}

macro_rules! snap {
    ($name:expr, $env:expr, $out:expr) => {{
        let text = $env.redact(&$out.seen());
        insta::assert_snapshot!($name, text);
    }};
}

/// A small plan built by hand: people, milestones, tasks with deps,
/// statuses, a risk and a comment.
fn sample() -> Env {
    let env = Env::with_plan(None);
    env.ok(&[
        "person",
        "add",
        "Bob Smith",
        "--email",
        "bob@acme.com",
        "--side",
        "buyer",
        "--role",
        "champion",
    ]);
    env.ok(&[
        "person",
        "add",
        "Carla Diaz",
        "--email",
        "carla@acme.com",
        "--side",
        "buyer",
        "--role",
        "security",
    ]);
    env.ok(&["milestone", "add", "Evaluation", "--due", "2026-12-11"]);
    env.ok(&["milestone", "add", "Security review", "--due", "2026-12-18"]);
    env.ok(&[
        "person",
        "add",
        "Ana Lopez",
        "--email",
        "ana@seller.com",
        "--side",
        "seller",
        "--role",
        "account executive",
    ]);
    env.add(&[
        "task",
        "add",
        "Demo environment",
        "--owner",
        "ana@seller.com",
        "--due",
        "2026-12-02",
        "--milestone",
        "eval",
    ]);
    let q = env.add(&[
        "task",
        "add",
        "Security questionnaire",
        "--owner",
        "carla",
        "--due",
        "+3d",
        "--milestone",
        "sec",
        "--kind",
        "approval",
        "--priority",
        "high",
    ]);
    env.add(&[
        "task",
        "add",
        "Pen test report",
        "--owner",
        "ana",
        "--due",
        "fri",
        "--milestone",
        "sec",
        "--after",
        &q,
    ]);
    env.add(&[
        "task",
        "add",
        "Champion presents internally",
        "--owner",
        "bob",
        "--due",
        "eow",
        "--milestone",
        "eval",
        "--kind",
        "meeting",
    ]);
    env.add(&[
        "task",
        "add",
        "Send security package",
        "--owner",
        "ana",
        "--due",
        "+1w",
    ]);
    env.ok(&["task", "done", "Security questionnaire"]);
    env.ok(&["task", "start", "champion"]);
    env.ok(&[
        "risk",
        "add",
        "Budget freeze in Q1",
        "--impact",
        "high",
        "--likelihood",
        "medium",
        "--owner",
        "bob",
        "--mitigation",
        "Sign before year end",
    ]);
    env.ok(&["comment", "pen", "Report due from the vendor"]);
    env
}

#[test]
fn show_a_hand_made_plan() {
    let env = sample();
    let out = env.run(&["show"]);
    snap!("show_sample", env, out);
}

#[test]
fn show_reads_the_cache_and_refreshes_overdue_for_today() {
    let mut env = sample();
    env.today = "2026-12-20".to_string();
    let out = env.run(&["task", "list"]);
    snap!("task_list_later", env, out);
}

#[test]
fn task_list_filters() {
    let env = sample();
    for (name, filter) in [
        ("filter_owner", vec!["owner:bob"]),
        ("filter_open_buyer", vec!["status:open", "side:buyer"]),
        ("filter_due_before", vec!["due.before:2026-12-05"]),
        ("filter_overdue", vec!["overdue"]),
        ("filter_words", vec!["milestone:sec", "report"]),
    ] {
        let mut args = vec!["task", "list"];
        args.extend(filter);
        let out = env.run(&args);
        snap!(name, env, out);
    }
    let out = env.run(&["task", "list", "colour:red"]);
    snap!("filter_error", env, out);
}

#[test]
fn task_list_json_is_the_view() {
    let env = sample();
    let out = env.ok(&["task", "list", "--json", "status:done"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tasks = v.as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["title"], "Security questionnaire");
    assert_eq!(tasks[0]["completed"], TODAY);
}

#[test]
fn show_json_has_id_url_and_heads() {
    let env = sample();
    let out = env.ok(&["show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = v["id"].as_str().unwrap();
    assert_eq!(v["url"], format!("automerge:{id}"));
    let heads = v["heads"].as_array().unwrap();
    assert!(!heads.is_empty());
    let mut sorted: Vec<_> = heads
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    sorted.sort();
    assert_eq!(
        heads
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect::<Vec<_>>(),
        sorted
    );
    let plans: serde_json::Value = serde_json::from_str(&env.ok(&["plans", "--json"])).unwrap();
    assert_eq!(plans[0]["id"], id);
    assert_eq!(plans[0]["title"], "Acme rollout");
    assert_eq!(plans[0]["url"], format!("automerge:{id}"));
}

#[test]
fn log_is_newest_first() {
    let env = sample();
    let out = env.run(&["log", "-n", "6"]);
    snap!("log", env, out);
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["log", "--json", "-n", "2"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["message"], "comment on task: Pen test report");
    assert_eq!(json[0]["author"], "Ana Lopez <ana@seller.com>");
}

#[test]
fn conflicts_none() {
    let env = sample();
    let out = env.run(&["conflicts"]);
    snap!("conflicts_none", env, out);
    let json = env.ok(&["conflicts", "--json"]);
    assert_eq!(json.trim(), "[]");
}

#[test]
fn templates_make_real_plans() {
    for t in ["basic", "simple", "advanced", "saas"] {
        let env = Env::with_plan(Some(t));
        let out = env.run(&["show"]);
        snap!(format!("template_{t}"), env, out);
    }
}

#[test]
fn init_prints_id_and_url_and_becomes_current() {
    let env = Env::new();
    let out = env.run(&["init", "Globex pilot", "--objective", "Pilot live by March"]);
    assert_eq!(out.code, 0, "{}", out.seen());
    let id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(out.stdout.contains(&format!("url: automerge:{id}")));
    let mut env = env;
    env.now = "2026-12-04T10:00:00Z".to_string();
    env.ok(&["init", "Second plan"]);
    // The newest plan is current; `use` switches back by title prefix.
    assert!(env.ok(&["show"]).starts_with("Second plan"));
    env.ok(&["use", "glob"]);
    assert!(env.ok(&["show"]).starts_with("Globex pilot"));
    assert!(
        env.ok(&["--plan", &id[..6], "show"])
            .starts_with("Globex pilot")
    );
    assert!(
        env.ok(&["--plan", &format!("automerge:{id}"), "show"])
            .starts_with("Globex pilot")
    );
    let out = env.run(&["plans"]);
    // Plan ids vary in length: redact them and the padding they cause.
    let ids = regex::Regex::new(r"[1-9A-HJ-NP-Za-km-z]{24,30}").unwrap();
    let text = ids.replace_all(&out.seen(), "[PLAN]").into_owned();
    let text = regex::Regex::new(r"  +")
        .unwrap()
        .replace_all(&text, "  ")
        .into_owned();
    insta::assert_snapshot!("plans", text);
}

#[test]
fn edits_and_soft_delete() {
    let env = sample();
    env.ok(&[
        "task",
        "edit",
        "pen",
        "--title",
        "Pen test summary",
        "--due",
        "none",
        "--priority",
        "low",
    ]);
    env.ok(&["task", "rm", "Demo environment"]);
    env.ok(&["milestone", "edit", "eval", "--title", "Evaluation phase"]);
    env.ok(&["person", "edit", "carla", "--role", "legal"]);
    env.ok(&["risk", "edit", "budget", "--status", "mitigated"]);
    env.ok(&["dep", "add", "champion", "pen"]);
    env.ok(&["dep", "rm", "champion", "pen"]);
    env.ok(&["milestone", "move", "sec", "--first"]);
    let out = env.run(&["show"]);
    snap!("show_after_edits", env, out);
    let out = env.run(&["task", "restore", "demo"]);
    snap!("task_restore", env, out);
}

#[test]
fn exports() {
    let env = sample();
    for (name, fmt) in [("export_csv", "csv"), ("export_md", "md")] {
        let out = env.run(&["export", "--format", fmt]);
        snap!(name, env, out);
    }
    let file = env.home.join("plan.json");
    env.ok(&["export", "--format", "json", "-o", file.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["header"]["title"], "Acme rollout");
}

#[test]
fn whoami_and_identity() {
    let env = Env::new();
    let out = env.run(&["whoami"]);
    snap!("whoami_unset", env, out);
    env.ok(&[
        "identity",
        "set",
        "--name",
        "Bo",
        "--email",
        "bo@buyer.com",
        "--side",
        "buyer",
    ]);
    let out = env.run(&["whoami"]);
    snap!("whoami_set", env, out);
}

/// Errors: what a user sees, and that nothing changed.
#[test]
fn user_errors() {
    let env = sample();
    let before = env.ok(&["show", "--json"]);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("err_unknown_task", vec!["task", "done", "nosuchtask"]),
        ("err_ambiguous_task", vec!["task", "done", "security"]),
        (
            "err_bad_date",
            vec!["task", "add", "Call", "--due", "someday"],
        ),
        ("err_empty_title", vec!["task", "add", "  "]),
        (
            "err_unknown_person",
            vec!["task", "add", "Call", "--owner", "zed"],
        ),
        (
            "err_cycle",
            vec!["dep", "add", "Security questionnaire", "Pen test report"],
        ),
        ("err_self_dep", vec!["dep", "add", "pen", "pen"]),
        ("err_unknown_plan", vec!["--plan", "Nope", "show"]),
    ];
    for (name, args) in cases {
        let out = env.run(&args);
        assert_eq!(out.code, 1, "{name}: {}", out.seen());
        assert!(out.stderr.starts_with("error: "), "{name}: {}", out.seen());
        assert!(!out.stderr.contains("panicked"), "{name}");
        snap!(name, env, out);
    }
    assert_eq!(env.ok(&["show", "--json"]), before, "errors change nothing");
}

#[test]
fn usage_error_exits_2() {
    let env = Env::new();
    let out = env.run(&["task", "add"]);
    assert_eq!(out.code, 2, "{}", out.seen());
    let out = env.run(&["frobnicate"]);
    assert_eq!(out.code, 2);
}

#[test]
fn no_plan_yet() {
    let env = Env::new();
    let out = env.run(&["show"]);
    snap!("err_no_plan", env, out);
}

#[test]
fn corrupt_database() {
    let env = Env::new();
    std::fs::create_dir_all(&env.home).unwrap();
    std::fs::write(
        env.db(),
        b"this is not a database at all, just garbage bytes......",
    )
    .unwrap();
    let out = env.run(&["show"]);
    assert_eq!(out.code, 1);
    let text = out.seen().replace(env.home.to_str().unwrap(), "[HOME]");
    insta::assert_snapshot!("err_corrupt_db", text);
    let bytes = std::fs::read(env.db()).unwrap();
    assert!(
        bytes.starts_with(b"this is not a database"),
        "file untouched"
    );
}

#[test]
fn foreign_database() {
    let env = Env::new();
    std::fs::create_dir_all(&env.home).unwrap();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);")
        .unwrap();
    drop(conn);
    let out = env.run(&["init", "X"]);
    assert_eq!(out.code, 1);
    let text = out.seen().replace(env.home.to_str().unwrap(), "[HOME]");
    insta::assert_snapshot!("err_foreign_db", text);
}

#[test]
fn newer_schema() {
    let env = Env::with_plan(None);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute_batch("PRAGMA user_version = 999;").unwrap();
    drop(conn);
    let out = env.run(&["show"]);
    assert_eq!(out.code, 1);
    let text = out.seen().replace(env.home.to_str().unwrap(), "[HOME]");
    insta::assert_snapshot!("err_newer_schema", text);
}

#[test]
fn unwritable_data_dir() {
    let env = Env::new();
    // A data directory "inside" a regular file cannot be created by anyone
    // (root included).
    let file = env.home.with_file_name("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let home = file.join("map");
    let out = env.run_in(&home, &["init", "X"]);
    assert_eq!(out.code, 1, "{}", out.seen());
    assert!(
        out.stderr.starts_with("error: cannot write to "),
        "{}",
        out.seen()
    );
    assert!(out.stderr.contains("hint: "), "{}", out.seen());
}

#[cfg(unix)]
#[test]
fn read_only_data_dir() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    std::fs::create_dir_all(&env.home).unwrap();
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(env.home.join("probe"), b"x").is_ok() {
        // Running as root: permissions do not apply; covered by
        // `unwritable_data_dir`.
        std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o755)).unwrap();
        return;
    }
    let out = env.run(&["init", "X"]);
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.code, 1, "{}", out.seen());
    assert!(out.stderr.starts_with("error: "), "{}", out.seen());
    assert!(out.stderr.contains("hint: "), "{}", out.seen());
}

/// `show`, `task list`, `log` and `export` read only the caches: they work
/// even when the Automerge document itself is unreadable, and print the same.
#[test]
fn reads_never_load_the_document() {
    let env = sample();
    let reads: [&[&str]; 5] = [
        &["show"],
        &["show", "--json"],
        &["task", "list", "status:open"],
        &["log"],
        &["export", "--format", "csv"],
    ];
    let before: Vec<String> = reads.iter().map(|a| env.ok(a)).collect();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute_batch(
        "UPDATE doc_snapshots SET data = x'deadbeef'; UPDATE doc_chunks SET data = x'deadbeef';",
    )
    .unwrap();
    drop(conn);
    let after: Vec<String> = reads.iter().map(|a| env.ok(a)).collect();
    assert_eq!(before, after);
    // Commands that need the document report the damage instead.
    let out = env.run(&["conflicts"]);
    assert_eq!(out.code, 1, "{}", out.seen());
    assert!(out.stderr.starts_with("error: "), "{}", out.seen());
    let out = env.run(&["task", "done", "pen"]);
    assert_eq!(out.code, 1, "{}", out.seen());
}

#[test]
fn list_commands() {
    let env = sample();
    for (name, args) in [
        ("milestone_list", ["milestone", "list"]),
        ("person_list", ["person", "list"]),
        ("risk_list", ["risk", "list"]),
    ] {
        let out = env.run(&args);
        snap!(name, env, out);
    }
    let people: serde_json::Value =
        serde_json::from_str(&env.ok(&["person", "list", "--json"])).unwrap();
    assert_eq!(people.as_array().unwrap().len(), 3);
}

#[test]
fn status_changes_and_confirmations() {
    let env = sample();
    let mut seen = String::new();
    for args in [
        ["task", "block", "pen"],
        ["task", "reopen", "pen"],
        ["task", "drop", "send"],
        ["task", "rm", "demo"],
        ["task", "restore", "demo"],
        ["milestone", "rm", "eval"],
        ["milestone", "restore", "eval"],
    ] {
        seen += &format!("$ map {}\n", args.join(" "));
        seen += &env.run(&args).seen();
    }
    let text = env.redact(&seen);
    insta::assert_snapshot!("status_changes", text);
}

/// Two participants edit the same field offline; once their changes meet
/// (here by copying the second database's stored changes into the first,
/// which is what a sync does), `map conflicts` lists both values and `map
/// show` warns.
#[test]
fn conflicts_after_concurrent_edits() {
    let a = Env::with_plan(None);
    a.add(&["task", "add", "Security review"]);
    let b = Env::new();
    std::fs::create_dir_all(&b.home).unwrap();
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    conn.execute("VACUUM INTO ?1", [b.db().to_str().unwrap()])
        .unwrap();
    drop(conn);
    // B is another participant: own actor, own identity. Fixed actor ids
    // make the winner of the conflict (highest actor) deterministic.
    for (env, actor) in [
        (&a, "01010101010101010101010101010101"),
        (&b, "fefefefefefefefefefefefefefefefe"),
    ] {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute(
            "UPDATE settings SET value = ?1 WHERE key = 'identity.actor'",
            [actor],
        )
        .unwrap();
    }
    b.ok(&[
        "identity",
        "set",
        "--name",
        "Bo Chen",
        "--email",
        "bo@acme.com",
        "--side",
        "buyer",
    ]);
    b.ok(&["task", "edit", "security", "--title", "InfoSec review"]);
    a.ok(&[
        "task",
        "edit",
        "security",
        "--title",
        "Security review (SOC 2)",
    ]);
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    conn.execute("ATTACH DATABASE ?1 AS b", [b.db().to_str().unwrap()])
        .unwrap();
    conn.execute_batch(
        "INSERT INTO doc_chunks (doc_id, data) SELECT doc_id, data FROM b.doc_chunks;
         INSERT INTO doc_chunks (doc_id, data) SELECT doc_id, data FROM b.doc_snapshots;",
    )
    .unwrap();
    drop(conn);
    let out = a.run(&["conflicts"]);
    snap!("conflicts_title", a, out);
    let json: serde_json::Value = serde_json::from_str(&a.ok(&["conflicts", "--json"])).unwrap();
    assert_eq!(json[0]["type"], "field");
    assert_eq!(json[0]["field"], "title");
    assert_eq!(json[0]["values"].as_array().unwrap().len(), 2);
    // The next write refreshes the cached view, which then carries the warning.
    a.ok(&["milestone", "add", "Security"]);
    let show = a.ok(&["show"]);
    assert!(show.contains("edited concurrently"), "{show}");
}
