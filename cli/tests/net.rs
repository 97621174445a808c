//! The network commands end to end: the real `map` binary, each participant
//! in its own temporary `MAP_HOME`, against a `map_relay` relay running in
//! this test process on a free loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A relay served on 127.0.0.1:0 by a runtime owned by the test.
struct TestRelay {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    relay: map_relay::Relay,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestRelay {
    fn start() -> TestRelay {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let relay =
            map_relay::Relay::open(map_relay::RelayConfig::new(dir.path().join("relay.db")))
                .expect("open relay");
        let bound = rt
            .block_on(relay.clone().bind("127.0.0.1:0"))
            .expect("bind");
        let url = bound.url();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(bound.serve(async {
            let _ = rx.await;
        }));
        TestRelay {
            _dir: dir,
            rt,
            relay,
            url,
            stop: Some(tx),
        }
    }

    fn user(&self, name: &str) -> String {
        self.relay.add_user(name).expect("add user")
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.rt
            .block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    }
}

/// What one run of `map` printed.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "expected success:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A participant: a temporary MAP_HOME.
struct P {
    _dir: tempfile::TempDir,
    home: PathBuf,
}

impl P {
    fn new() -> P {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("map");
        P { _dir: dir, home }
    }

    fn with_identity(name: &str, email: &str, side: &str) -> P {
        let p = P::new();
        p.map(&[
            "identity", "set", "--name", name, "--email", email, "--side", side,
        ])
        .ok();
        p
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_map"));
        c.args(args)
            .env("MAP_HOME", &self.home)
            .env("NO_COLOR", "1")
            .env_remove("MAP_NOW")
            .env_remove("MAP_TODAY");
        c
    }

    fn map(&self, args: &[&str]) -> Out {
        let out = self.cmd(args).output().expect("run map");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn show(&self) -> Value {
        serde_json::from_str(&self.map(&["show", "--json"]).ok().stdout).expect("show json")
    }

    fn db(&self) -> PathBuf {
        self.home.join("map.db")
    }
}

fn heads(v: &Value) -> Vec<String> {
    v["heads"]
        .as_array()
        .expect("heads")
        .iter()
        .map(|h| h.as_str().unwrap_or_default().to_string())
        .collect()
}

fn task_titles(v: &Value) -> Vec<String> {
    v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

#[test]
fn remote_add_and_sync_round_trip_between_two_homes() {
    let relay = TestRelay::start();
    let token = relay.user("dana");
    let a = P::with_identity("Dana Seller", "dana@vendor.example", "seller");
    let b = P::with_identity("Dan Laptop", "dana@vendor.example", "seller");

    a.map(&["init", "Acme rollout", "--template", "simple"])
        .ok();
    a.map(&["remote", "add", "origin", &relay.url, "--token", &token])
        .ok();
    let list = a.map(&["remote", "list"]).ok();
    assert!(list.stdout.contains(&relay.url), "{}", list.stdout);
    assert!(
        !list.stdout.contains(&token),
        "the token must never be printed: {}",
        list.stdout
    );
    let json = a.map(&["remote", "list", "--json"]).ok();
    assert!(!json.stdout.contains(&token), "{}", json.stdout);

    let pushed = a.map(&["sync"]).ok();
    assert!(
        pushed.stdout.contains("Acme rollout: pushed to origin"),
        "{}",
        pushed.stdout
    );
    assert!(a.map(&["sync"]).ok().stdout.contains("up to date"));

    // The second home has the same relay user: the plan is discovered and fetched.
    b.map(&["remote", "add", "origin", &relay.url, "--token", &token])
        .ok();
    let fetched = b.map(&["sync"]).ok();
    assert!(
        fetched.stdout.contains("Acme rollout: fetched from origin"),
        "{}",
        fetched.stdout
    );
    assert_eq!(heads(&a.show()), heads(&b.show()));

    b.map(&["task", "add", "Written on the laptop"]).ok();
    let sent = b.map(&["sync"]).ok();
    assert!(
        sent.stdout.contains("sent 1 local change"),
        "{}",
        sent.stdout
    );
    let got = a.map(&["sync"]).ok();
    assert!(
        got.stdout
            .contains("Acme rollout: 1 change from Dan Laptop: task add: Written on the laptop"),
        "{}",
        got.stdout
    );
    let (va, vb) = (a.show(), b.show());
    assert_eq!(heads(&va), heads(&vb));
    assert_eq!(va, vb, "both homes show the same plan");
    assert!(task_titles(&va).contains(&"Written on the laptop".to_string()));
    // The history cache followed the merge.
    let log = a.map(&["log", "-n", "1"]).ok();
    assert!(
        log.stdout.contains("task add: Written on the laptop"),
        "{}",
        log.stdout
    );

    let rm = a.map(&["remote", "rm", "origin"]).ok();
    assert!(rm.stdout.contains("removed remote origin"), "{}", rm.stdout);
    assert_eq!(a.map(&["sync"]).code, 1, "no remote left is a user error");
}

#[test]
fn join_with_an_invite_read_only_and_relay_flag() {
    let relay = TestRelay::start();
    let token = relay.user("dana");
    let seller = P::with_identity("Dana Seller", "dana@vendor.example", "seller");
    seller
        .map(&["init", "Acme rollout", "--template", "simple"])
        .ok();
    seller
        .map(&[
            "person",
            "add",
            "Ana Buyer",
            "--email",
            "ana@acme.example",
            "--side",
            "buyer",
        ])
        .ok();
    // `--relay URL --token T` syncs and stores the relay as origin.
    let first = seller
        .map(&["sync", "--relay", &relay.url, "--token", &token])
        .ok();
    assert!(
        first.stdout.contains("saved: remote origin"),
        "{}",
        first.stdout
    );
    assert!(
        seller
            .map(&["remote", "list"])
            .ok()
            .stdout
            .contains("origin")
    );

    let share = seller
        .map(&[
            "share",
            "--access",
            "ro",
            "--side",
            "buyer",
            "--expires",
            "2d",
        ])
        .ok();
    let invite = share.stdout.trim().to_string();
    assert_eq!(
        share.stdout.lines().count(),
        1,
        "the invite alone on stdout: {:?}",
        share.stdout
    );
    assert!(
        invite.starts_with(&format!("{}/join/", relay.url)),
        "{invite}"
    );
    assert!(share.stderr.contains("map join"), "{}", share.stderr);

    // Joining needs an identity first; nothing is redeemed before.
    let buyer = P::new();
    let refused = buyer.map(&["join", &invite]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("map identity set"),
        "{}",
        refused.stderr
    );
    buyer
        .map(&[
            "identity",
            "set",
            "--name",
            "Ana Buyer",
            "--email",
            "ana@acme.example",
            "--side",
            "buyer",
        ])
        .ok();
    let joined = buyer.map(&["join", &invite]).ok();
    assert!(
        joined.stdout.contains("joined Acme rollout (automerge:"),
        "{}",
        joined.stdout
    );
    assert!(joined.stdout.contains("as read-only"), "{}", joined.stdout);
    assert_eq!(heads(&seller.show()), heads(&buyer.show()));
    // The joined plan is current: `show` needs no --plan.
    assert_eq!(buyer.show()["header"]["title"], "Acme rollout");
    // An invite works once.
    let again = P::with_identity("Eve", "eve@x.example", "other").map(&["join", &invite]);
    assert_eq!(again.code, 1, "{}", again.stderr);

    // A read-only participant's changes are not taken by the relay.
    buyer.map(&["task", "add", "Buyer wish"]).ok();
    let ro = buyer.map(&["sync"]).ok();
    assert!(
        ro.stdout.contains("did not accept your 1 local change"),
        "{}",
        ro.stdout
    );
    let s = seller.map(&["sync"]).ok();
    assert!(s.stdout.contains("up to date"), "{}", s.stdout);
    assert!(!task_titles(&seller.show()).contains(&"Buyer wish".to_string()));

    // The seller's changes still reach the read-only buyer.
    seller.map(&["task", "add", "Seller update"]).ok();
    seller.map(&["sync"]).ok();
    let got = buyer.map(&["sync"]).ok();
    assert!(
        got.stdout.contains("1 change from Dana Seller"),
        "{}",
        got.stdout
    );
    let titles = task_titles(&buyer.show());
    assert!(
        titles.contains(&"Seller update".to_string()) && titles.contains(&"Buyer wish".to_string())
    );
}

#[test]
fn sync_against_a_dead_port_or_bad_token_fails_with_3_and_changes_nothing() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dead = format!("ws://127.0.0.1:{port}");
    let p = P::with_identity("Dana", "dana@vendor.example", "seller");
    p.map(&["init", "Offline plan"]).ok();
    p.map(&["remote", "add", "origin", &dead, "--token", "tok"])
        .ok();
    let before_view = p.show();
    let before_db = file_bytes(&p.db());

    let out = p.map(&["sync"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "names the relay: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(p.show(), before_view);
    assert_eq!(
        file_bytes(&p.db()),
        before_db,
        "a failed sync writes nothing"
    );

    // `--relay` to a dead relay stores no remote.
    let out = p.map(&[
        "sync", "--relay", &dead, "--token", "t", "--remote", "other",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!p.map(&["remote", "list"]).ok().stdout.contains("other"));

    // A live relay that refuses the token: exit 3, says so.
    let relay = TestRelay::start();
    let out = p.map(&[
        "sync",
        "--relay",
        &relay.url,
        "--token",
        "not-a-token",
        "--remote",
        "live",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("refused the token"), "{}", out.stderr);
    assert_eq!(p.show(), before_view);

    // Bad input is a user error.
    let out = p.map(&["remote", "add", "x", "not a url", "--token", "t"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = p.map(&["join", "ws://127.0.0.1:1/nothing"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
}

#[test]
fn watch_prints_remote_changes_and_pushes_local_ones() {
    let relay = TestRelay::start();
    let token = relay.user("dana");
    let a = P::with_identity("Dana Seller", "dana@vendor.example", "seller");
    let b = P::with_identity("Dan Laptop", "dana@vendor.example", "seller");
    a.map(&["init", "Watched plan"]).ok();
    for p in [&a, &b] {
        p.map(&["remote", "add", "origin", &relay.url, "--token", &token])
            .ok();
        p.map(&["sync"]).ok();
    }

    let mut child = b
        .cmd(&["sync", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(800));

    // A remote change shows up in the watching home...
    a.map(&["task", "add", "From the desk"]).ok();
    a.map(&["sync"]).ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while !seen.contains("task add: From the desk") && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&l);
            seen.push('\n');
        }
    }
    assert!(
        seen.contains("1 change from Dana Seller: task add: From the desk"),
        "watch printed: {seen}"
    );
    assert!(
        task_titles(&b.show()).contains(&"From the desk".to_string()),
        "and saved it"
    );

    // ...and a local commit there is pushed without running `map sync`.
    b.map(&["task", "add", "From the laptop"]).ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = false;
    while !got && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        let out = a.map(&["sync"]).ok();
        got = out.stdout.contains("task add: From the laptop");
    }
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(got, "the watching home pushed its local change");
    assert!(
        status.success() || status.code().is_none(),
        "Ctrl-C exits cleanly: {status:?}"
    );
}

#[test]
fn demo_runs_both_sides_and_converges() {
    let p = P::new();
    let out = p.map(&["demo"]);
    assert_eq!(out.code, 0, "demo failed:\n{}\n{}", out.stdout, out.stderr);
    for needle in [
        "== seller and buyer edit offline",
        "changes from Ana Buyer (buyer)",
        "changes from Dana Seller (seller)",
        "Internal budget approval",
        "Send pricing proposal",
        "conflict:",
        "seller and buyer hold the same plan",
    ] {
        assert!(
            out.stdout.contains(needle),
            "demo output lacks {needle:?}:\n{}",
            out.stdout
        );
    }
    assert!(!p.home.exists(), "the demo does not touch MAP_HOME");
}
