//! The `map-relay` binary: admin commands and `serve` as a user runs them.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn map_relay(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_map-relay"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("MAP_RELAY_DATA")
        .env_remove("RUST_LOG")
        .output()
        .expect("run map-relay")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn admin_commands() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");

    // Commands other than `user add` do not create a database.
    let out = map_relay(&["user", "list"], &db);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no relay database"),
        "{}",
        stderr(&out)
    );
    assert!(!db.exists());

    let out = map_relay(&["user", "add", "alice"], &db);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out);
    assert_eq!(token.lines().count(), 1);
    assert!(token.trim().len() >= 40);

    let out = map_relay(&["user", "add", "alice"], &db);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("exists already"));

    let out = map_relay(&["user", "list"], &db);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("alice\tactive"));
    assert!(!stdout(&out).contains(token.trim()));

    let plan = map_relay::plan_id::random();
    let out = map_relay(&["grant", &plan, "alice", "--read-only"], &db);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown plan"), "{}", stderr(&out));
    let out = map_relay(&["grant", "nonsense", "alice", "--read-write"], &db);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a plan id"));
    let out = map_relay(&["grant", &plan, "nobody", "--read-write"], &db);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown user"));
    // --read-only or --read-write is required (usage error: exit 2).
    let out = map_relay(&["grant", &plan, "alice"], &db);
    assert_eq!(out.status.code(), Some(2));
    let out = map_relay(&["ungrant", &plan, "alice"], &db);
    assert_eq!(out.status.code(), Some(1));

    let out = map_relay(&["user", "revoke", "bob"], &db);
    assert_eq!(out.status.code(), Some(1));
    let out = map_relay(&["user", "revoke", "alice"], &db);
    assert!(out.status.success());
    let out = map_relay(&["user", "list"], &db);
    assert!(stdout(&out).starts_with("alice\trevoked"));

    // A file that is not a relay database.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let out = map_relay(&["user", "add", "x"], &junk);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a map-relay database"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_prints_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let token = stdout(&map_relay(&["user", "add", "alice"], &db))
        .trim()
        .to_owned();

    let mut child = Command::new(env!("CARGO_BIN_EXE_map-relay"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--max-auth-failures", "50", "--auth-cooldown", "30"])
        .args([
            "--max-connect-attempts",
            "100",
            "--header-read-timeout",
            "5",
        ])
        .arg("--data")
        .arg(&db)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("map-relay listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let addr = url.trim_start_matches("ws://").to_owned();

    let mut secrets = Vec::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let body = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "ok");
        // Connect with the token in the query string: it must not be logged.
        let (ws, _) = tokio_tungstenite::connect_async(format!("{url}/?token={token}"))
            .await
            .unwrap();
        drop(ws);
        let _ = tokio_tungstenite::connect_async(format!("{url}/?token=wrong{token}")).await;
        // Invite secrets and the tokens redeemed with them are not logged either.
        let db = map_relay::RelayDb::open_existing(&db).unwrap();
        let plan = map_relay::plan_id::random();
        let alice = db.authenticate(&token).unwrap().unwrap();
        let bytes = automerge::Automerge::new().save();
        let batch = map_relay::db::ChangeBatch {
            plan: &plan,
            user_id: alice.id,
            incremental: &bytes,
            hashes: &[],
            snapshot: None,
        };
        assert!(db.create_plan(&batch).unwrap());
        let http = reqwest::Client::new();
        let created = http
            .post(format!("http://{addr}/v1/invites"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"plan": plan}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        {
            let invite: serde_json::Value = created.json().await.unwrap();
            let invite = invite["invite"].as_str().unwrap().to_owned();
            let redeemed: serde_json::Value = http
                .post(format!("http://{addr}/v1/invites/redeem"))
                .json(&serde_json::json!({"invite": invite, "name": "Bea"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            secrets.push(invite.rsplit('/').next().unwrap().to_owned());
            secrets.push(redeemed["token"].as_str().unwrap().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    });

    // A second relay on the same address says so, and what to do.
    let taken = Command::new(env!("CARGO_BIN_EXE_map-relay"))
        .args(["serve", "--listen", &addr])
        .arg("--data")
        .arg(dir.path().join("other.db"))
        .output()
        .unwrap();
    assert!(!taken.status.success());
    let err = stderr(&taken);
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("--listen"),
        "{err}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "relay did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "exactly one line on stdout");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("connection opened"), "{logs}");
    assert!(!logs.contains(&token), "a token was logged:\n{logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret), "a secret was logged:\n{logs}");
    }
}

#[test]
fn link_commands_list_and_revoke_web_links() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay.db");
    let out = map_relay(&["user", "add", "alice"], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = map_relay::RelayDb::open(&data).unwrap();
    let alice = db.authenticate(stdout(&out).trim()).unwrap().unwrap();
    let plan = map_relay::plan_id::random();
    let mut doc = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "title", "Acme").unwrap();
    let snapshot = doc.save();
    assert!(
        db.create_plan(&map_relay::db::ChangeBatch {
            plan: &plan,
            user_id: alice.id,
            incremental: &[],
            hashes: &[],
            snapshot: Some(&snapshot),
        })
        .unwrap()
    );
    let secret = db
        .create_web_link(
            alice.id,
            &plan,
            map_relay::Access::ReadOnly,
            None,
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
    assert!(db.open_web_link(&secret).unwrap().is_ok());

    let out = map_relay(&["link", "list"], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(
        listed.starts_with(&format!("1\t{plan}\tro\tby alice\tuntil ")),
        "{listed}"
    );
    assert!(listed.contains("1 session(s)"), "{listed}");
    assert!(!listed.contains(&secret), "secrets are never shown");
    let out = map_relay(&["link", "list", "--plan", "nonsense"], &data);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a plan id"), "{}", stderr(&out));

    let out = map_relay(&["link", "revoke", "7"], &data);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no web link 7: see `map-relay link list`"),
        "{}",
        stderr(&out)
    );
    let out = map_relay(&["link", "revoke", "1"], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = map_relay(&["link", "list", "--json", "--plan", &plan], &data);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json[0]["revoked_at"].is_i64(), "{json}");
    assert_eq!(
        db.open_web_link(&secret).unwrap().err(),
        Some(map_relay::web::sessions::LinkError::Expired)
    );
}
