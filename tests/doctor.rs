//! `map doctor`: what it says about healthy, missing, foreign, damaged and
//! stale databases, `--fix` for stale caches, and `--restore` from a relay
//! (the damaged file kept, identity/remotes/unsynced changes recovered when
//! the old file is readable, a plain "lost" when it is not).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use map_e2e::{Output, Participant, Relay, tasks};

/// `stdout_has_str`: like `stderr_has`, for stdout (case-insensitive).
trait StdoutHas {
    fn stdout_has_str(&self, needle: &str) -> &Self;
}

impl StdoutHas for Output {
    #[track_caller]
    fn stdout_has_str(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.to_lowercase().contains(&needle.to_lowercase()),
            "expected stdout to contain {needle:?}\ncommand: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.stdout,
            self.stderr
        );
        self
    }
}

fn titles(p: &Participant) -> Vec<String> {
    let mut t: Vec<String> = tasks(&p.show())
        .iter()
        .filter_map(|t| t["title"].as_str().map(str::to_owned))
        .collect();
    t.sort();
    t
}

/// Files in `dir` whose name starts with `prefix`.
fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Damage one index of the database (the history index) so that
/// `integrity_check` fails while documents, settings and remotes stay
/// readable.
fn damage_history_index(db: &Path) {
    let root: i64 = {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        conn.query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'history_by_time'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(db)
        .unwrap();
    let mut header = [0u8; 18];
    f.read_exact(&mut header).unwrap();
    let mut page_size = u16::from_be_bytes([header[16], header[17]]) as u64;
    if page_size == 1 {
        page_size = 65536;
    }
    f.seek(SeekFrom::Start((root as u64 - 1) * page_size))
        .unwrap();
    f.write_all(&vec![0xA5u8; page_size as usize]).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn doctor_reports_missing_foreign_stale_and_fixes() {
    let p = Participant::new("Dana", "seller");
    // No database yet (identity set created one; remove it).
    let home = p.db_path().parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(&home).unwrap();
    p.map(&["doctor"])
        .code_is(1)
        .stdout_has_str("there is no database");

    let p = Participant::new("Dana", "seller");
    let plan = p.init_plan("Acme rollout", "saas");
    let out = p.map(&["doctor"]);
    out.ok();
    assert!(out.stdout().contains(&plan), "{}", out.stdout());
    assert!(out.stdout().contains("ok: no problems found"));
    let json = p.map(&["doctor", "--json"]).ok().json();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["plans"][0]["status"], "ok");

    // A stale cache: the view and part of the history no longer match.
    {
        let conn = rusqlite::Connection::open(p.db_path()).unwrap();
        conn.execute_batch(
            "UPDATE views SET heads = x''; \
             DELETE FROM history WHERE id IN (SELECT id FROM history LIMIT 2);",
        )
        .unwrap();
    }
    let out = p.map(&["doctor", "--json"]);
    out.code_is(1);
    let json = out.json();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["plans"][0]["status"], "stale");
    p.map(&["doctor"])
        .code_is(1)
        .stdout_has_str("map doctor --fix");
    p.map(&["doctor", "--fix"]).ok();
    p.map(&["doctor"]).ok();
    let log = p.map(&["log", "--json"]).ok().json();
    assert!(log.as_array().is_some_and(|a| a.len() > 2), "{log}");

    // Not SQLite at all.
    let q = Participant::new("Ana", "buyer");
    std::fs::write(
        q.db_path(),
        b"this is not a database, just some text\n".repeat(200),
    )
    .unwrap();
    let _ = std::fs::remove_file(format!("{}-wal", q.db_path().display()));
    let _ = std::fs::remove_file(format!("{}-shm", q.db_path().display()));
    q.map(&["doctor"])
        .code_is(1)
        .stdout_has_str("not an SQLite database")
        .stdout_has_str("map doctor --restore");

    // Another program's SQLite database.
    let r = Participant::bare("Foreign", "other");
    std::fs::create_dir_all(r.db_path().parent().unwrap()).unwrap();
    rusqlite::Connection::open(r.db_path())
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    r.map(&["doctor"])
        .code_is(1)
        .stdout_has_str("belongs to another program");
}

#[test]
fn restore_from_relay_keeps_identity_remotes_and_unsynced_changes() {
    let relay = Relay::start();
    let token = relay.add_user("dana");
    let p = Participant::new("Dana", "seller");
    let plan = p.init_plan("Acme rollout", "saas");
    p.add_remote("origin", relay.url(), &token);
    p.add_task("Synced task");
    p.sync().ok();
    // The relay holds the plan: doctor says so.
    p.map(&["doctor"]).ok().stdout_has_str(&plan);
    // A change that never reaches the relay.
    p.add_task("Unsynced task");

    damage_history_index(&p.db_path());
    p.map(&["doctor"])
        .code_is(1)
        .stdout_has_str("damaged")
        .stdout_has_str("map doctor --restore");

    let out = p.map(&["doctor", "--restore"]);
    out.ok()
        .stdout_has_str("moved the damaged database to")
        .stdout_has_str("recovered from the old database");
    let home = p.db_path().parent().unwrap().to_path_buf();
    assert_eq!(
        files_with_prefix(&home, "map.db.damaged-")
            .iter()
            .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
            .count(),
        1,
        "the damaged file is kept"
    );
    let t = titles(&p);
    assert!(t.contains(&"Synced task".to_string()), "{t:?}");
    assert!(t.contains(&"Unsynced task".to_string()), "{t:?}");
    p.map(&["whoami"]).ok().stdout_has_str("Dana");
    p.map(&["remote", "list"]).ok().stdout_has_str("origin");
    p.map(&["doctor"]).ok();

    // The recovered change now reaches the relay.
    p.sync().ok();
    let q = Participant::new("Dana2", "seller");
    q.add_remote("origin", relay.url(), &token);
    q.sync().ok();
    let t = titles(&q);
    assert!(t.contains(&"Unsynced task".to_string()), "{t:?}");
}

#[test]
fn restore_of_an_unreadable_file_says_what_is_lost() {
    let relay = Relay::start();
    let token = relay.add_user("dana");
    let p = Participant::new("Dana", "seller");
    p.init_plan("Acme rollout", "saas");
    p.add_remote("origin", relay.url(), &token);
    p.add_task("Synced task");
    p.sync().ok();

    std::fs::write(p.db_path(), vec![0x5Au8; 64 * 1024]).unwrap();
    let _ = std::fs::remove_file(format!("{}-wal", p.db_path().display()));
    let _ = std::fs::remove_file(format!("{}-shm", p.db_path().display()));
    p.map(&["show"]).code_is(1);
    let out = p.map(&["doctor", "--restore"]);
    out.code_is(1)
        .stdout_has_str("changes that never reached a relay are lost")
        .stderr_has("map remote add");
    let home = p.db_path().parent().unwrap().to_path_buf();
    assert!(!files_with_prefix(&home, "map.db.damaged-").is_empty());
    p.add_remote("origin", relay.url(), &token);
    p.map(&["doctor", "--restore"]).ok();
    assert!(titles(&p).contains(&"Synced task".to_string()));
    p.map(&["doctor"]).ok();
}
