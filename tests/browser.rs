//! The relay's web page in a real browser: headless Chromium, driven by
//! `tests/js/browser.mjs` (playwright-core, no browser download).
//!
//! A seller shares a plan with `map share --web`; the buyer opens the link in
//! Chromium, gives a name and marks a task done with its status form; the
//! seller's CLI sees the change, authored by the buyer; the seller adds a
//! task and the open page shows it live, without reloading. A full-page
//! screenshot is kept as `target/test-artifacts/web-plan.png`.
//!
//! Needs Chromium (`$MAP_CHROMIUM`, else `chromium` or `chromium-browser` on
//! PATH; Debian's `chromium` package) and `npm ci --prefix tests/js`. Without
//! them the test passes but says on stderr that it was skipped, unless
//! `MAP_REQUIRE_BROWSER` is set (CI sets it): then it fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use map_e2e::{Participant, Relay, js_dir, task};
use serde_json::Value;

/// How long the driver may take to launch Chromium, open the link, give the
/// name and click (a cold Chromium start on a busy 2-core machine is slow).
const CLICK_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the driver may take to see the seller's new task (it waits 20 s
/// itself, then takes the screenshot).
const SEEN_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes to the real stderr: libtest captures `eprintln!`, but a skip must
/// be seen.
fn say(msg: &str) {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{msg}");
    let _ = err.flush();
}

fn browser_required() -> bool {
    std::env::var_os("MAP_REQUIRE_BROWSER").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skips the test (returns `None`) with a plain message, or fails it when
/// `MAP_REQUIRE_BROWSER` is set.
fn skip(why: &str) -> Option<PathBuf> {
    let msg = format!("browser test SKIPPED: {why}; the web page was not tested in a browser");
    if browser_required() {
        panic!("{msg} (MAP_REQUIRE_BROWSER is set, so this is a failure)");
    }
    say(&format!("\n!!! {msg}\n"));
    None
}

/// `program` as an executable file on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Chromium and the JS driver's packages, or `None` when the test is skipped.
fn chromium() -> Option<PathBuf> {
    let chromium = match std::env::var_os("MAP_CHROMIUM").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            if !p.is_file() {
                return skip(&format!(
                    "MAP_CHROMIUM={} is not a file (install Debian's chromium or set MAP_CHROMIUM)",
                    p.display()
                ));
            }
            p
        }
        None => match on_path("chromium").or_else(|| on_path("chromium-browser")) {
            Some(p) => p,
            None => {
                return skip("chromium not found (install Debian's chromium or set MAP_CHROMIUM)");
            }
        },
    };
    if !js_dir()
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return skip(
            "tests/js/node_modules/playwright-core is missing (run `npm ci --prefix tests/js`)",
        );
    }
    if on_path("node").is_none() {
        return skip("node not found on PATH (install Node 20)");
    }
    Some(chromium)
}

/// The cargo target directory: the nearest ancestor of the test binary that
/// holds cargo's `CACHEDIR.TAG`, else `CARGO_TARGET_DIR`, else two levels up
/// from `target/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    if let Some(dir) = exe
        .ancestors()
        .skip(1)
        .find(|d| d.join("CACHEDIR.TAG").is_file())
    {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    exe.ancestors()
        .nth(3)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf()
}

/// `node tests/js/browser.mjs URL SCREENSHOT CHROMIUM`, spoken to by lines.
struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Driver {
    fn start(url: &str, screenshot: &Path, chromium: &Path) -> Driver {
        let mut child = Command::new("node")
            .arg(js_dir().join("browser.mjs"))
            .arg(url)
            .arg(screenshot)
            .arg(chromium)
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node tests/js/browser.mjs");
        let stdout = child.stdout.take().expect("driver stdout");
        let mut stderr = child.stderr.take().expect("driver stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut buf = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut buf);
            buf
        });
        Driver {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Waits for the driver's next line; fails the test on `error: ...`, an
    /// exit or a timeout, with everything the driver wrote on stderr.
    fn expect_line(&mut self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == want => return,
                Ok(line) if line.starts_with("error:") => {
                    self.fail(&format!("the browser driver failed: {line}"))
                }
                // Stray output (a library warning): keep waiting.
                Ok(line) => say(&format!("browser.mjs: {line}")),
                Err(mpsc::RecvTimeoutError::Timeout) => self.fail(&format!(
                    "the browser driver did not print `{want}` within {timeout:?}"
                )),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.fail(&format!(
                    "the browser driver exited before printing `{want}`"
                )),
            }
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("driver stdin is open");
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            self.fail(&format!("cannot write {line:?} to the browser driver: {e}"));
        }
    }

    /// Waits up to `timeout` for the driver to exit.
    fn exited_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the driver and returns what it wrote on stderr.
    fn stop(&mut self) -> String {
        // The driver exits by itself after `seen`, on an error or when its
        // stdin closes; SIGTERM makes it close the browser too. SIGKILL last.
        self.stdin.take();
        if !self.exited_within(Duration::from_secs(5)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            self.exited_within(Duration::from_secs(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    fn fail(&mut self, msg: &str) -> ! {
        let stderr = self.stop();
        panic!("{msg}\n--- browser.mjs stderr ---\n{stderr}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let stderr = self.stop();
        if thread::panicking() && !stderr.is_empty() {
            say(&format!("--- browser.mjs stderr ---\n{stderr}"));
        }
    }
}

/// `map share --web`: the page link, alone on stdout.
fn share_web(seller: &Participant, relay: &Relay) -> String {
    let out = seller.map(&["share", "--web", "--access", "rw", "--expires", "7d"]);
    out.ok();
    let url = out.line();
    let marker = format!(":{}/web/open?t=", relay.port());
    let secret = url.split_once(&marker).map(|(_, s)| s).unwrap_or_default();
    assert!(
        url.starts_with("http://")
            && !secret.is_empty()
            && !url.contains(char::is_whitespace)
            && out.stdout().trim() == url,
        "`map share --web` must print `http://HOST{marker}SECRET` alone on stdout, got {:?}",
        out.stdout()
    );
    url
}

#[test]
fn a_buyer_edits_the_plan_in_a_browser_and_sees_the_seller_live() {
    let Some(chromium) = chromium() else {
        return;
    };
    let relay = Relay::start();
    let token = relay.add_user("dana");
    let seller = Participant::new("Dana", "seller");
    seller.init_plan("Acme rollout", "simple");
    let review = seller.add_task("Security review");
    seller.add_remote("relay", relay.url(), &token);
    seller.sync().ok();
    let url = share_web(&seller, &relay);

    let artifacts = target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("create target/test-artifacts");
    let screenshot = artifacts.join("web-plan.png");
    for stale in [screenshot.clone(), artifacts.join("web-plan-error.png")] {
        let _ = std::fs::remove_file(stale);
    }

    // The buyer opens the link, gives a name and marks the task done.
    let mut driver = Driver::start(&url, &screenshot, &chromium);
    driver.expect_line("clicked", CLICK_TIMEOUT);

    // The seller's CLI gets the change, authored by the buyer.
    seller.sync().ok();
    let view = seller.show();
    let t = task(&view, "Security review");
    assert_eq!(t["id"], review.as_str());
    assert_eq!(
        t["status"], "done",
        "the status set in the browser must reach the CLI: {t:#}"
    );
    let log = seller.map(&["log", "--json"]).ok().json();
    let entries = log.as_array().expect("`map log --json` is an array");
    let by_bea: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["author"]
                .as_str()
                .is_some_and(|a| a.starts_with("Bea Buyer"))
        })
        .collect();
    assert!(
        !by_bea.is_empty(),
        "`map log` must show the browser's change authored by \"Bea Buyer\": {log:#}"
    );
    let text = seller.map(&["log"]).ok().stdout().to_string();
    assert!(
        text.contains("Bea Buyer"),
        "`map log` must name \"Bea Buyer\":\n{text}"
    );

    // The seller adds a task; the open page shows it without reloading.
    seller.add_task("Legal redlines");
    seller.sync().ok();
    driver.send("expect Legal redlines");
    driver.expect_line("seen", SEEN_TIMEOUT);
    // The driver also ran axe-core's WCAG 2.1 A/AA rules on the page (any
    // violation fails it before `seen`); it reports how many rules passed.
    let driver_log = driver.stop();
    let axe = driver_log
        .lines()
        .find(|l| l.contains("axe-core:"))
        .unwrap_or_else(|| panic!("the driver did not run axe-core:\n{driver_log}"))
        .to_owned();
    say(&format!("browser test: {axe}"));
    drop(driver);

    let png = std::fs::read(&screenshot).expect("the driver saved the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "{} is not a PNG screenshot",
        screenshot.display()
    );
    say(&format!(
        "browser test: screenshot {}",
        screenshot.display()
    ));
}
