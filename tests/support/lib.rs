//! Harness for the end-to-end tests: runs the real `map` and `map-relay`
//! binaries (built by `cargo build --workspace`, which `cargo test
//! --workspace` does) in temporary directories, with a bounded timeout on
//! every child process so a test can fail but never hang.
//!
//! Everything here talks to the binaries only through the interfaces in
//! `docs/contracts.md`: command lines, stdout/stderr, exit codes, the relay's
//! "listening" line and its HTTP API.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Longest any single child process may run before it is killed.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The date every participant sees as "today" (`MAP_TODAY`).
pub const TODAY: &str = "2026-12-04";

// ---------------------------------------------------------------------------
// Locating the binaries
// ---------------------------------------------------------------------------

/// The target profile directory of the running test executable
/// (`target/<profile>`): the test binary lives in `target/<profile>/deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("test exe has a parent").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a workspace binary built in the same profile as this test.
pub fn bin(name: &str) -> PathBuf {
    let path = profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary `{name}` not found at {}: run `cargo build --workspace` first",
        path.display()
    );
    path
}

// ---------------------------------------------------------------------------
// Running a child with a timeout
// ---------------------------------------------------------------------------

/// The result of one finished (or killed) command.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit code, or `None` if killed by a signal / timed out.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn success(&self) -> bool {
        !self.timed_out && self.code() == Some(0)
    }

    fn describe(&self) -> String {
        format!(
            "command: {}\nexit: {}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "none (killed)".into()),
            if self.timed_out {
                format!(" (TIMED OUT after {CHILD_TIMEOUT:?})")
            } else {
                String::new()
            },
            self.stdout,
            self.stderr
        )
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "expected success\n{}", self.describe());
        self
    }

    /// Asserts a non-zero exit (and no timeout).
    #[track_caller]
    pub fn fail(&self) -> &Self {
        assert!(
            !self.timed_out && self.code().is_some() && self.code() != Some(0),
            "expected a failure exit code\n{}",
            self.describe()
        );
        self
    }

    /// Asserts a specific exit code.
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}\n{}",
            self.describe()
        );
        self
    }

    /// Asserts that stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "expected stderr to contain {needle:?}\n{}",
            self.describe()
        );
        self
    }

    /// Asserts that stderr contains at least one of `needles` (case-insensitive).
    #[track_caller]
    pub fn stderr_has_any(&self, needles: &[&str]) -> &Self {
        let err = self.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| err.contains(&n.to_lowercase())),
            "expected stderr to contain one of {needles:?}\n{}",
            self.describe()
        );
        self
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.stderr
    }

    /// Stdout, trimmed.
    pub fn line(&self) -> String {
        self.stdout.trim().to_string()
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_str(&self.stdout) {
            Ok(v) => v,
            Err(e) => panic!("stdout is not JSON ({e})\n{}", self.describe()),
        }
    }
}

/// Runs `cmd` to completion with stdin closed, killing it after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let program = Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| format!("{:?}", a.to_string_lossy()))
        .collect();
    let home = cmd
        .get_envs()
        .find(|(k, _)| *k == "MAP_HOME")
        .and_then(|(_, v)| v)
        .map(|v| format!("MAP_HOME={} ", v.to_string_lossy()))
        .unwrap_or_default();
    let cmdline = format!("{home}{program} {}", args.join(" "));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmdline}: {e}"));
    let out_reader = spawn_reader(child.stdout.take().expect("stdout"));
    let err_reader = spawn_reader(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    };
    Output {
        cmdline,
        status,
        timed_out,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

fn spawn_reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Polls `f` until it returns `Some`, at most `timeout`; panics with `what`.
#[track_caller]
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------
// The relay
// ---------------------------------------------------------------------------

/// A running `map-relay serve` on a free port with its own database; killed on
/// drop.
pub struct Relay {
    dir: TempDir,
    child: Option<Child>,
    port: u16,
    url: String,
}

impl Relay {
    /// Starts a relay on `127.0.0.1:0` with a fresh database.
    pub fn start() -> Relay {
        let dir = tempfile::Builder::new()
            .prefix("map-e2e-relay")
            .tempdir()
            .expect("tempdir");
        let mut relay = Relay {
            dir,
            child: None,
            port: 0,
            url: String::new(),
        };
        if let Err(e) = relay.spawn("127.0.0.1:0") {
            panic!("{e}");
        }
        relay
    }

    /// Spawns `map-relay serve` and waits for its listening line.
    fn spawn(&mut self, listen: &str) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("relay log");
        let mut child = Command::new(bin("map-relay"))
            .arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--data")
            .arg(self.db_path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn map-relay serve");
        let stdout = child.stdout.take().expect("relay stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the relay never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "map-relay exited or did not print its listening line within 30 s\n--- relay log ---\n{}",
                    self.log()
                ));
            }
        };
        let prefix = "map-relay listening on ";
        let parsed = line.strip_prefix(prefix).and_then(|url| {
            url.trim()
                .strip_prefix("ws://127.0.0.1:")
                .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        });
        let Some(port) = parsed else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "unexpected first stdout line from map-relay: {line:?} (contract: `{prefix}ws://127.0.0.1:PORT`)"
            ));
        };
        self.child = Some(child);
        self.port = port;
        self.url = format!("ws://127.0.0.1:{port}");
        Ok(())
    }

    /// `ws://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("relay.db")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("relay.log")
    }

    /// Everything the relay wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the relay (the database stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the relay again on the same port and database.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        let listen = format!("127.0.0.1:{port}");
        // The port was just released; retry briefly in case it is not yet free.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.spawn(&listen) {
                Ok(()) => {
                    assert_eq!(self.port, port, "relay restarted on another port");
                    return;
                }
                Err(e) if Instant::now() >= deadline => panic!("relay restart failed: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Runs `map-relay ARGS --data <db>` (admin commands).
    pub fn admin<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        let mut cmd = Command::new(bin("map-relay"));
        cmd.args(args)
            .arg("--data")
            .arg(self.db_path())
            .env("NO_COLOR", "1");
        run_with_timeout(cmd, CHILD_TIMEOUT)
    }

    /// `map-relay user add NAME`: returns the token (stdout, alone on its line).
    #[track_caller]
    pub fn add_user(&self, name: &str) -> String {
        let out = self.admin(&["user", "add", name]);
        out.ok();
        let token = out.line();
        assert!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "`map-relay user add` must print the token alone on stdout, got {:?}",
            out.stdout
        );
        token
    }

    /// `map-relay user revoke NAME`.
    #[track_caller]
    pub fn revoke_user(&self, name: &str) {
        self.admin(&["user", "revoke", name]).ok();
    }

    /// `map-relay grant PLAN USER --read-write|--read-only`.
    #[track_caller]
    pub fn grant(&self, plan: &str, user: &str, read_write: bool) {
        let access = if read_write {
            "--read-write"
        } else {
            "--read-only"
        };
        self.admin(&["grant", plan, user, access]).ok();
    }

    /// Waits until `GET /healthz` answers 200.
    pub fn wait_healthy(&self) {
        let url = self.http_url();
        poll("relay /healthz", Duration::from_secs(20), || {
            match http("GET", &format!("{url}/healthz"), None, None) {
                Ok((200, _)) => Some(()),
                _ => None,
            }
        });
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            eprintln!(
                "--- map-relay log ({}) ---\n{}",
                self.db_path().display(),
                self.log()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 client (for the relay's small JSON API)
// ---------------------------------------------------------------------------

/// Sends one HTTP request (`Connection: close`) and returns (status, body).
pub fn http(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    json_body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// URLs"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let body = json_body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if json_body.is_some() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    req.push_str(&body);
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {head:?}")))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------
// Participants
// ---------------------------------------------------------------------------

/// One person using `map` with their own data directory (`MAP_HOME`).
pub struct Participant {
    pub name: String,
    pub email: String,
    pub side: String,
    home: TempDir,
    env: Vec<(String, String)>,
}

impl Participant {
    /// A participant with a fresh `MAP_HOME`, pinned `MAP_TODAY`, and an
    /// identity set with `map identity set`.
    pub fn new(name: &str, side: &str) -> Participant {
        let p = Participant::bare(name, side);
        p.map(&[
            "identity", "set", "--name", name, "--email", &p.email, "--side", side,
        ])
        .ok();
        p
    }

    /// Like `new` but without running `map identity set`.
    pub fn bare(name: &str, side: &str) -> Participant {
        let home = tempfile::Builder::new()
            .prefix(&format!("map-e2e-{}-", name.to_lowercase()))
            .tempdir()
            .expect("tempdir");
        Participant {
            name: name.to_string(),
            email: format!("{}@example.com", name.to_lowercase()),
            side: side.to_string(),
            home,
            env: Vec::new(),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Sets an extra environment variable for every later command.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Runs `map ARGS` as this participant (bounded by `CHILD_TIMEOUT`).
    pub fn map<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        run_with_timeout(self.command(args), CHILD_TIMEOUT)
    }

    /// `map ARGS` as this participant, not started (for tests that spawn
    /// and kill it themselves).
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(bin("map"));
        cmd.args(args)
            .current_dir(self.home.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_DATA_HOME", self.home.path().join(".local/share"))
            .env("MAP_HOME", self.home.path().join("map"))
            .env("MAP_TODAY", TODAY)
            .env("NO_COLOR", "1")
            .env("TERM", "dumb");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The participant's store (`MAP_HOME/map.db`).
    pub fn db_path(&self) -> PathBuf {
        self.home.path().join("map").join("map.db")
    }

    /// `map show --json` (the participant's plan).
    #[track_caller]
    pub fn show(&self) -> Value {
        self.map(&["show", "--json"]).ok().json()
    }

    /// `map plans --json`.
    #[track_caller]
    pub fn plans(&self) -> Vec<Value> {
        match self.map(&["plans", "--json"]).ok().json() {
            Value::Array(a) => a,
            other => panic!("`map plans --json` must print an array, got {other}"),
        }
    }

    /// `map init TITLE --template T`; returns the plan id (from `map plans --json`).
    #[track_caller]
    pub fn init_plan(&self, title: &str, template: &str) -> String {
        self.map(&["init", title, "--template", template]).ok();
        let plans = self.plans();
        let plan = plans
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("plan {title:?} not in `map plans --json`: {plans:?}"));
        plan["id"]
            .as_str()
            .expect("plan id is a string")
            .to_string()
    }

    /// `map remote add NAME URL --token T`.
    #[track_caller]
    pub fn add_remote(&self, name: &str, url: &str, token: &str) {
        self.map(&["remote", "add", name, url, "--token", token])
            .ok();
    }

    /// `map sync`.
    pub fn sync(&self) -> Output {
        self.map(&["sync"])
    }

    /// `map task add TITLE`; returns the new task's id.
    #[track_caller]
    pub fn add_task(&self, title: &str) -> String {
        self.map(&["task", "add", title]).ok();
        task_id(&self.show(), title)
    }

    /// `map task done ID`.
    #[track_caller]
    pub fn task_done(&self, task: &str) {
        self.map(&["task", "done", task]).ok();
    }

    /// `map task edit ID --FIELD VALUE` (field: title, due, ...).
    #[track_caller]
    pub fn task_edit(&self, task: &str, field: &str, value: &str) {
        self.map(&["task", "edit", task, &format!("--{field}"), value])
            .ok();
    }

    /// `map share --access A --side S`: returns the invite line.
    #[track_caller]
    pub fn share(&self, access: &str, side: &str) -> String {
        invite_line(
            self.map(&["share", "--access", access, "--side", side])
                .ok(),
        )
    }
}

// ---------------------------------------------------------------------------
// Reading `map show --json`
// ---------------------------------------------------------------------------

/// The tasks of a plan view: `tasks` as an array, or as a map id -> task.
pub fn tasks(view: &Value) -> Vec<Value> {
    match &view["tasks"] {
        Value::Array(a) => a.clone(),
        Value::Object(m) => m
            .iter()
            .map(|(id, t)| {
                let mut t = t.clone();
                if t.get("id").is_none() {
                    t["id"] = Value::String(id.clone());
                }
                t
            })
            .collect(),
        other => panic!("plan view has no `tasks` array or map: {other}\nview: {view:#}"),
    }
}

/// The task titled `title` in a plan view.
#[track_caller]
pub fn task(view: &Value, title: &str) -> Value {
    let all = tasks(view);
    let found: Vec<_> = all.iter().filter(|t| t["title"] == title).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one task titled {title:?}; tasks: {:#}",
        Value::Array(all.clone())
    );
    found[0].clone()
}

/// The id of the task titled `title` in a plan view.
#[track_caller]
pub fn task_id(view: &Value, title: &str) -> String {
    task(view, title)["id"]
        .as_str()
        .expect("task id is a string")
        .to_string()
}

/// `heads` of a plan view, as a sorted list of strings.
#[track_caller]
pub fn heads(view: &Value) -> Vec<String> {
    let mut h: Vec<String> = view["heads"]
        .as_array()
        .unwrap_or_else(|| panic!("plan view has no `heads` array: {view:#}"))
        .iter()
        .map(|x| x.as_str().expect("head is a string").to_string())
        .collect();
    h.sort();
    h
}

/// Pulls the invite line (`ws://HOST:PORT/join/SECRET`) out of `map share`
/// stdout.
#[track_caller]
pub fn invite_line(out: &Output) -> String {
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("/join/"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "`map share` must print one invite line `ws://HOST:PORT/join/SECRET` on stdout, got {:?}",
        out.stdout
    );
    let line = lines[0].to_string();
    assert!(
        line.starts_with("ws://") || line.starts_with("wss://"),
        "invite line must be a ws:// URL: {line:?}"
    );
    assert_eq!(
        out.stdout.trim(),
        line,
        "the invite must be alone on stdout (contract), got {:?}",
        out.stdout
    );
    line
}

/// Returns `path` to the JS interop package (tests/js).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Whether the JS interop tests must run: true if `tests/js/node_modules`
/// exists; under CI (env `CI` set) a missing install is a failure, otherwise
/// the test is skipped with a loud message.
pub fn js_available() -> bool {
    let nm = js_dir().join("node_modules");
    if nm.is_dir() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "tests/js/node_modules is missing and CI is set: run `npm ci --prefix tests/js` (.ci/run does)"
        );
    }
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! SKIPPING JS interop test: tests/js/node_modules is missing.\n\
         !!! Run `npm ci --prefix tests/js` to enable it (CI always does).\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    false
}

/// Runs `node tests/js/<script> ARGS` with a timeout.
pub fn node<S: AsRef<OsStr>>(script: &str, args: &[S]) -> Output {
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join(script))
        .args(args)
        .current_dir(js_dir());
    run_with_timeout(cmd, CHILD_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hanging_child_is_killed() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let started = Instant::now();
        let out = run_with_timeout(cmd, Duration::from_millis(200));
        assert!(out.timed_out);
        assert!(!out.success());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_is_captured() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo '{\"a\": 1}'; echo oops >&2; exit 3"]);
        let out = run_with_timeout(cmd, CHILD_TIMEOUT);
        out.code_is(3).fail().stderr_has("OOPS");
        assert_eq!(out.json()["a"], 1);
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[test]
    fn tasks_are_read_from_a_list_or_a_map() {
        let list = serde_json::json!({"tasks": [{"id": "a", "title": "T"}]});
        let map = serde_json::json!({"tasks": {"a": {"title": "T"}}});
        assert_eq!(task_id(&list, "T"), "a");
        assert_eq!(task_id(&map, "T"), "a");
    }
}
