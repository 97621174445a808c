//! A full disk and a read-only data directory, for the CLI and the relay.
//! The promise: a clear error, nothing corrupted, nothing half-written, and
//! the same command succeeds once space (or write access) returns.
//!
//! Each test puts the data directory on its own small tmpfs (`mount -t
//! tmpfs`, which needs root) and fills it with a ballast file. Where mounting
//! is not permitted the tests say so loudly and skip — except under `CI`,
//! where the CI runners are root and a skip would hide a regression, so
//! they fail.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use map_e2e::{Output, Participant, bin, http, run_with_timeout, tasks};

/// A tmpfs of a few MiB mounted on a fresh temporary directory; unmounted on
/// drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or returns `None` (after saying why) when this machine
    /// does not allow it and we are not under CI.
    fn mount(test: &str, size_kib: u64) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("map-e2e-disk")
            .tempdir()
            .expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                let msg = format!(
                    "{test}: cannot mount a tmpfs ({why}); this test needs root (CAP_SYS_ADMIN)"
                );
                if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                    panic!("{msg} — CI runs as root, so this is an error there");
                }
                eprintln!("SKIPPED {msg}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, mode: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .status()
            .expect("mount -o remount");
        assert!(st.success(), "remount {mode} failed");
    }

    /// Fills the file system with `ballast` until it is full.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("ballast");
        let mut f = std::fs::File::create(&path).expect("ballast");
        let chunk = vec![0x42u8; 16 * 1024];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("writing the ballast: {e}"),
            }
        }
        // Whatever a partial chunk left.
        for _ in 0..64 {
            if f.write_all(&[0x42u8; 512]).is_err() {
                break;
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `PRAGMA integrity_check` says `ok`.
#[track_caller]
fn assert_intact(path: &Path) {
    let conn = rusqlite::Connection::open(path).expect("open");
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(verdict, "ok", "{} is corrupt", path.display());
}

fn titles(p: &Participant) -> Vec<String> {
    tasks(&p.map(&["show", "--json"]).ok().json())
        .iter()
        .filter_map(|t| t["title"].as_str().map(str::to_owned))
        .collect()
}

#[track_caller]
fn stdout_has(out: &Output, needle: &str) {
    assert!(
        out.stdout.to_lowercase().contains(&needle.to_lowercase()),
        "expected stdout to contain {needle:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
}

/// A participant whose `MAP_HOME` is on `fs`.
fn participant_on(fs: &Tmpfs) -> Participant {
    let mut p = Participant::bare("Dana", "seller");
    p.set_env("MAP_HOME", &fs.path().join("map").display().to_string());
    p.map(&[
        "identity",
        "set",
        "--name",
        "Dana",
        "--email",
        "dana@example.com",
        "--side",
        "seller",
    ])
    .ok();
    p
}

#[test]
fn cli_on_a_full_disk_changes_nothing_and_recovers() {
    let Some(fs) = Tmpfs::mount("cli_on_a_full_disk", 2048) else {
        return;
    };
    let p = participant_on(&fs);
    p.map(&["init", "Acme rollout", "--template", "saas"]).ok();
    p.map(&["task", "add", "Before"]).ok();
    let db = fs.path().join("map").join("map.db");

    let ballast = fs.fill();
    p.map(&["task", "add", "During"])
        .code_is(1)
        .stderr_has("disk full")
        .stderr_has("nothing was changed");
    // Reading still works on the full disk.
    let t = titles(&p);
    assert!(t.contains(&"Before".to_string()), "{t:?}");
    assert!(!t.contains(&"During".to_string()), "{t:?}");
    p.map(&["log"]).ok();
    let out = p.map(&["doctor"]);
    out.code_is(1);
    stdout_has(&out, "no space left");

    std::fs::remove_file(ballast).unwrap();
    p.map(&["task", "add", "During"]).ok();
    let t = titles(&p);
    assert!(t.contains(&"Before".to_string()) && t.contains(&"During".to_string()));
    p.map(&["doctor"]).ok();
    assert_intact(&db);
}

#[test]
fn cli_on_a_read_only_directory_says_so_and_recovers() {
    let Some(fs) = Tmpfs::mount("cli_on_a_read_only_directory", 2048) else {
        return;
    };
    let p = participant_on(&fs);
    p.map(&["init", "Acme rollout", "--template", "saas"]).ok();
    p.map(&["task", "add", "Before"]).ok();
    fs.remount("ro");
    p.map(&["task", "add", "During"])
        .code_is(1)
        .stderr_has("cannot write to")
        .stderr_has("MAP_HOME");
    let out = p.map(&["doctor"]);
    out.code_is(1);
    stdout_has(&out, "read-only file system");
    fs.remount("rw");
    p.map(&["task", "add", "During"]).ok();
    let t = titles(&p);
    assert!(t.contains(&"Before".to_string()) && t.contains(&"During".to_string()));
    assert_intact(&fs.path().join("map").join("map.db"));
}

/// `map-relay serve` with its database on `data` (killed on drop).
struct DiskRelay {
    child: Child,
    url: String,
    http: String,
}

impl DiskRelay {
    fn start(data: &Path) -> DiskRelay {
        let mut child = Command::new(bin("map-relay"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn map-relay");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("relay listening line");
        let url = line
            .strip_prefix("map-relay listening on ")
            .expect("listening line")
            .trim()
            .trim_end_matches('/')
            .to_string();
        let http = url.replacen("ws://", "http://", 1);
        DiskRelay { child, url, http }
    }

    fn healthy(&self) -> bool {
        matches!(
            http("GET", &format!("{}/healthz", self.http), None, None),
            Ok((200, _))
        )
    }
}

impl Drop for DiskRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay_admin(data: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("map-relay"));
    cmd.args(args).arg("--data").arg(data).env("NO_COLOR", "1");
    run_with_timeout(cmd, Duration::from_secs(20))
}

#[test]
fn relay_on_a_full_disk_acknowledges_nothing_and_recovers() {
    let Some(fs) = Tmpfs::mount("relay_on_a_full_disk", 4096) else {
        return;
    };
    let data = fs.path().join("relay.db");
    let token = relay_admin(&data, &["user", "add", "dana"]).ok().line();
    let relay = DiskRelay::start(&data);

    let p = Participant::new("Dana", "seller");
    p.map(&["init", "Acme rollout", "--template", "saas"]).ok();
    p.add_remote("origin", &relay.url, &token);
    p.map(&["task", "add", "Before"]).ok();
    p.sync().ok();

    let ballast = fs.fill();
    p.map(&["task", "add", "During"]).ok();
    // A relay that cannot store the change must not acknowledge it: the
    // sync fails (exit 3) and says the relay is out of space.
    p.sync().code_is(3).stderr_has("storage is full");
    assert!(relay.healthy(), "the relay keeps serving on a full disk");
    // Local work is untouched by the failed sync.
    assert!(titles(&p).contains(&"During".to_string()));

    std::fs::remove_file(ballast).unwrap();
    p.sync().ok();
    let q = Participant::new("Dana2", "seller");
    q.add_remote("origin", &relay.url, &token);
    q.sync().ok();
    let t = titles(&q);
    assert!(
        t.contains(&"Before".to_string()) && t.contains(&"During".to_string()),
        "{t:?}"
    );
    drop(relay);
    assert_intact(&data);
}

/// A running relay holds its database open for writing, so Linux will not
/// remount its directory read-only under it; what can happen is a relay
/// started on a read-only directory (a full disk covers the running case).
#[test]
fn relay_on_a_read_only_directory_refuses_clearly_and_recovers() {
    let Some(fs) = Tmpfs::mount("relay_on_a_read_only_directory", 4096) else {
        return;
    };
    let data = fs.path().join("relay.db");
    let token = relay_admin(&data, &["user", "add", "dana"]).ok().line();
    let p = Participant::new("Dana", "seller");
    p.map(&["init", "Acme rollout", "--template", "saas"]).ok();
    p.map(&["task", "add", "Before"]).ok();
    {
        let relay = DiskRelay::start(&data);
        p.add_remote("origin", &relay.url, &token);
        p.sync().ok();
    }

    fs.remount("ro");
    let mut serve = Command::new(bin("map-relay"));
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("NO_COLOR", "1");
    let out = run_with_timeout(serve, Duration::from_secs(20));
    assert_eq!(
        out.code(),
        Some(1),
        "serve on a read-only directory must exit 1"
    );
    assert!(
        out.stderr.contains("cannot write to") && out.stderr.contains("--data"),
        "serve says what is wrong and what to do: {}",
        out.stderr
    );
    let added = relay_admin(&data, &["user", "add", "eve"]);
    assert_eq!(
        added.code(),
        Some(1),
        "user add on a read-only directory must fail"
    );
    assert!(added.stderr.contains("cannot write to"), "{}", added.stderr);

    fs.remount("rw");
    let relay = DiskRelay::start(&data);
    let q = Participant::new("Dana2", "seller");
    q.add_remote("origin", &relay.url, &token);
    q.sync().ok();
    assert!(titles(&q).contains(&"Before".to_string()));
    drop(relay);
    assert_intact(&data);
}
