//! End-to-end tests of the analysis commands (`path`, `whatif`, `next`,
//! `overdue`, `blocked`, `waiting`, `stale`, `check`, `baseline`, `diff`,
//! `timeline`): the real binary in a temporary `MAP_HOME`, the clock pinned,
//! colours off, ids replaced by stable labels in snapshots.

mod common;

use std::path::PathBuf;

use common::{Out, run_map};

const NOW: &str = "2026-12-04T09:30:00Z";

struct Env {
    _dir: tempfile::TempDir,
    home: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        Env { _dir: dir, home }
    }

    fn run_at(&self, now: &str, args: &[&str]) -> Out {
        run_map(&self.home, &now[..10], now, args)
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_at(NOW, args)
    }

    fn ok_at(&self, now: &str, args: &[&str]) -> String {
        let out = self.run_at(now, args);
        assert_eq!(out.code, 0, "map {args:?} failed:\n{}", out.seen());
        out.stdout
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_at(NOW, args)
    }

    fn add_at(&self, now: &str, args: &[&str]) -> String {
        let out = self.ok_at(now, args);
        out.lines().last().expect("an id").trim().to_string()
    }

    fn add(&self, args: &[&str]) -> String {
        self.add_at(NOW, args)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).expect("JSON output")
    }

    fn id_labels(&self) -> Vec<(String, String)> {
        let view = self.json(&["show", "--json"]);
        common::id_labels(
            &view,
            &[("tasks", "T"), ("milestones", "M"), ("people", "P")],
        )
    }

    fn redact(&self, text: &str) -> String {
        let mut s = common::redact_ids(text, &self.id_labels());
        // Columns whose width depends on id lengths.
        let re = regex::Regex::new(r"(\[[A-Z]+\d+\]|ID) +").unwrap();
        s = re.replace_all(&s, "$1 ").into_owned();
        let re = regex::Regex::new(r"\b[0-9a-f]{8}\b").unwrap();
        s = re.replace_all(&s, "[HASH]").into_owned();
        s
    }
}

macro_rules! snap {
    ($name:expr, $env:expr, $out:expr) => {{
        let text = $env.redact(&$out.seen());
        insta::assert_snapshot!($name, text);
    }};
}

/// A plan with known answers (today is 2026-12-04, go-live 2027-01-29):
///
/// - T1 Demo environment (Ana, seller) due 12-02: overdue.
/// - T2 Security questionnaire (Carla, buyer, high) 12-07..12-09.
/// - T3 Pen test report (Ana) 12-10..12-14, after T2.
/// - T4 Champion presents internally (Bob, buyer) due 12-04, after T1.
/// - T5 Contract signed (no owner, approval) due 2027-01-20, after T3.
/// - T6 Legal redlines (Ana, seller) due 12-21, no milestone.
///
/// Critical path: T2 -> T3 -> T5 (finishes 2027-01-20, 9 days before go-live).
fn sample() -> Env {
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
    env.ok(&["init", "Acme rollout", "--go-live", "2027-01-29"]);
    for (name, email, side, role) in [
        ("Bob Smith", "bob@acme.com", "buyer", "champion"),
        ("Carla Diaz", "carla@acme.com", "buyer", "security"),
        ("Ana Lopez", "ana@seller.com", "seller", "account executive"),
    ] {
        env.ok(&[
            "person", "add", name, "--email", email, "--side", side, "--role", role,
        ]);
    }
    env.ok(&["milestone", "add", "Evaluation", "--due", "2026-12-11"]);
    env.ok(&["milestone", "add", "Security review", "--due", "2026-12-18"]);
    let t1 = env.add(&[
        "task",
        "add",
        "Demo environment",
        "--owner",
        "ana",
        "--due",
        "2026-12-02",
        "--milestone",
        "eval",
    ]);
    let t2 = env.add(&[
        "task",
        "add",
        "Security questionnaire",
        "--owner",
        "carla",
        "--start",
        "2026-12-07",
        "--due",
        "2026-12-09",
        "--milestone",
        "sec",
        "--priority",
        "high",
    ]);
    let t3 = env.add(&[
        "task",
        "add",
        "Pen test report",
        "--owner",
        "ana",
        "--start",
        "2026-12-10",
        "--due",
        "2026-12-14",
        "--milestone",
        "sec",
        "--after",
        &t2,
    ]);
    env.add(&[
        "task",
        "add",
        "Champion presents internally",
        "--owner",
        "bob",
        "--due",
        "2026-12-04",
        "--milestone",
        "eval",
        "--after",
        &t1,
    ]);
    env.add(&[
        "task",
        "add",
        "Contract signed",
        "--due",
        "2027-01-20",
        "--kind",
        "approval",
        "--after",
        &t3,
    ]);
    env.add(&[
        "task",
        "add",
        "Legal redlines",
        "--owner",
        "ana",
        "--due",
        "2026-12-21",
    ]);
    env
}

fn ids(env: &Env) -> Vec<String> {
    let v = env.json(&["show", "--json"]);
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn critical_path_in_path_and_show() {
    let env = sample();
    let out = env.run(&["path"]);
    snap!("path", env, out);
    let v = env.json(&["path", "--json"]);
    let ids = ids(&env);
    let path: Vec<&str> = v["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(path, [ids[1].as_str(), ids[2].as_str(), ids[4].as_str()]);
    assert_eq!(v["finish"], "2027-01-20");
    assert_eq!(v["go_live_late_by"], 0);
    let show = env.ok(&["show"]);
    let line = show
        .lines()
        .find(|l| l.starts_with("Critical path:"))
        .expect("a critical path line");
    insta::assert_snapshot!("show_critical_line", env.redact(line));
}

#[test]
fn whatif_previews_without_changing_the_plan() {
    let env = sample();
    env.add(&["task", "add", "Someday"]);
    let ids = ids(&env);
    let heads = env.json(&["show", "--json"])["heads"].clone();
    // A task without a due date can only be given one.
    let out = env.run(&["whatif", "Someday", "+1d"]);
    snap!("whatif_no_due", env, out);
    let v = env.json(&["whatif", "Someday", "2026-12-20", "--json"]);
    assert_eq!(v["tasks"][0]["after"], "2026-12-20");
    let out = env.run(&["whatif", "Security questionnaire", "+5d"]);
    snap!("whatif_plus5", env, out);
    // Big enough to move the go-live.
    let out = env.run(&["whatif", &ids[2], "+50d"]);
    snap!("whatif_go_live", env, out);
    let v = env.json(&["whatif", &ids[2], "+50d", "--json"]);
    assert_eq!(v["go_live"]["days"], 4);
    assert_eq!(v["go_live"]["after"], "2027-02-02");
    let out = env.run(&["whatif", &ids[1], "-2d"]);
    snap!("whatif_minus2", env, out);
    let v = env.json(&["whatif", &ids[1], "2026-12-10", "--json"]);
    assert_eq!(v["tasks"][0]["days"], 1);
    // Errors: unknown task, malformed shift.
    let out = env.run(&["whatif", "nothing like this", "+1d"]);
    snap!("whatif_unknown_task", env, out);
    let out = env.run(&["whatif", &ids[1], "+5x"]);
    snap!("whatif_bad_shift", env, out);
    // Nothing was saved.
    assert_eq!(env.json(&["show", "--json"])["heads"], heads);
}

#[test]
fn next_orders_by_urgency() {
    let env = sample();
    let out = env.run(&["next"]);
    snap!("next_all", env, out);
    let out = env.run(&["next", "--side", "buyer"]);
    snap!("next_buyer", env, out);
    let me = env.json(&["next", "--me", "--json"]);
    let me = me.as_array().unwrap();
    assert!(!me.is_empty());
    assert!(me.iter().all(|t| t["owner_name"] == "Ana Lopez"));
    let scores: Vec<f64> = me.iter().map(|t| t["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let bob = env.json(&["next", "--owner", "bob", "--json"]);
    assert_eq!(
        bob.as_array().map(Vec::len),
        Some(0),
        "Bob's task waits on T1"
    );
    let out = env.run(&["next", "--owner", "nobody"]);
    snap!("next_unknown_owner", env, out);
    assert_eq!(env.run(&["next", "--me", "--side", "buyer"]).code, 2);
}

#[test]
fn reports() {
    let env = sample();
    for (name, args) in [
        ("overdue", vec!["overdue"]),
        ("blocked", vec!["blocked"]),
        ("waiting_on_seller", vec!["waiting", "--on", "seller"]),
        ("waiting_on_buyer", vec!["waiting", "--on", "buyer"]),
    ] {
        let out = env.run(&args);
        snap!(name, env, out);
    }
    let v = env.json(&["overdue", "--json"]);
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let v = env.json(&["blocked", "--json"]);
    assert_eq!(v.as_array().map(Vec::len), Some(3));
    let v = env.json(&["waiting", "--on", "buyer", "--json"]);
    assert_eq!(v[0]["title"], "Security questionnaire");
    assert_eq!(v[0]["blocks"].as_array().map(Vec::len), Some(1));
}

#[test]
fn stale_uses_the_history() {
    let env = Env::new();
    let early = "2026-11-01T10:00:00Z";
    env.ok_at(early, &["init", "Acme"]);
    env.add_at(early, &["task", "add", "Old and forgotten"]);
    let touched = env.add_at(early, &["task", "add", "Old but touched"]);
    env.add_at(early, &["task", "add", "Old but done"]);
    env.ok_at(early, &["task", "done", "Old but done"]);
    env.ok_at("2026-11-30T10:00:00Z", &["task", "start", &touched]);
    env.add(&["task", "add", "New"]);
    let out = env.run(&["stale"]);
    snap!("stale_default", env, out);
    let v = env.json(&["stale", "--days", "2", "--json"]);
    let titles: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Old and forgotten", "Old but touched"]);
    assert_eq!(v[0]["days"], 32);
    assert_eq!(v[1]["days"], 3);
    let out = env.run(&["stale", "--days", "100"]);
    snap!("stale_none", env, out);
}

#[test]
fn check_finds_gaps_with_fixes() {
    let env = sample();
    let out = env.run(&["check"]);
    snap!("check", env, out);
    assert_eq!(env.run(&["check", "--strict"]).code, 1);
    let v = env.json(&["check", "--json"]);
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"no-economic-buyer"), "{codes:?}");
    assert!(codes.contains(&"legal-without-buyer"), "{codes:?}");
    assert!(codes.contains(&"no-owner"), "{codes:?}");
    // Impossible dates: push the pen test past the contract and go-live.
    let ids = ids(&env);
    env.ok(&["task", "edit", &ids[2], "--due", "2027-02-03"]);
    let out = env.run(&["check"]);
    snap!("check_impossible", env, out);
}

#[test]
fn baselines_and_diff() {
    let env = sample();
    let ids = ids(&env);
    env.ok(&["baseline", "create", "agreed"]);
    let out = env.run(&["baseline", "create", "agreed"]);
    snap!("baseline_duplicate", env, out);
    let out = env.run(&["baseline", "list"]);
    snap!("baseline_list", env, out);
    let out = env.run(&["diff", "agreed"]);
    snap!("diff_nothing", env, out);
    // Carla (buyer) slips the questionnaire; Ana adds and deletes tasks.
    env.ok(&[
        "identity",
        "set",
        "--name",
        "Carla Diaz",
        "--email",
        "carla@acme.com",
        "--side",
        "buyer",
    ]);
    env.ok(&["task", "edit", &ids[1], "--due", "2026-12-16"]);
    env.ok(&[
        "milestone",
        "edit",
        "Security review",
        "--due",
        "2026-12-23",
    ]);
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
    env.ok(&["task", "add", "Reference call"]);
    env.ok(&["task", "rm", "Legal redlines"]);
    env.ok(&["task", "drop", &ids[3]]);
    let out = env.run(&["diff", "agreed"]);
    snap!("diff", env, out);
    let v = env.json(&["diff", "agreed", "--json"]);
    assert_eq!(v["tasks"][0]["days"], 7);
    assert_eq!(v["tasks"][0]["by"], "Carla Diaz <carla@acme.com>");
    assert_eq!(v["dropped"].as_array().map(Vec::len), Some(2));
    let out = env.run(&["diff", "nope"]);
    snap!("diff_unknown", env, out);
    // The baseline is in the document: it survives and lists as JSON.
    let v = env.json(&["baseline", "list", "--json"]);
    assert_eq!(v[0]["name"], "agreed");
    assert_eq!(v[0]["by"], "Ana Lopez <ana@seller.com>");
}

#[test]
fn timeline() {
    let env = sample();
    let out = env.run(&["timeline", "--width", "40"]);
    snap!("timeline", env, out);
    let out = env.run(&["timeline", "--width", "5"]);
    snap!("timeline_bad_width", env, out);
}
