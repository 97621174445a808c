//! Access control seen from the CLI and the relay's HTTP API: tokens,
//! grants, read-only participants and invites.

use std::time::Duration;

use map_e2e::{Participant, Relay, heads, http, invite_line, task, task_id};
use serde_json::json;

/// Words one of which an authentication failure message should contain.
const AUTH_WORDS: &[&str] = &["token", "401", "unauthori", "auth", "denied", "rejected"];

/// A relay with a seller who pushed a plan.
fn seller_with_plan(relay: &Relay) -> (Participant, String, String) {
    let token = relay.add_user("dana");
    let seller = Participant::new("Dana", "seller");
    let plan = seller.init_plan("Acme rollout", "saas");
    seller.add_remote("relay", relay.url(), &token);
    seller.sync().ok();
    (seller, plan, token)
}

#[test]
fn sync_without_a_valid_token_is_refused() {
    let relay = Relay::start();
    let _ = relay.add_user("dana");

    // A bad token.
    let p = Participant::new("Eve", "other");
    p.init_plan("Mine", "simple");
    p.add_remote("relay", relay.url(), "not-a-real-token");
    p.sync().fail().stderr_has_any(AUTH_WORDS);

    // No token at all: either `remote add` refuses it, or sync fails.
    let q = Participant::new("Nobody", "other");
    q.init_plan("Mine", "simple");
    let added = q.map(&["remote", "add", "relay", relay.url()]);
    if added.success() {
        q.sync().fail().stderr_has_any(AUTH_WORDS);
    } else {
        added.fail();
    }

    // The relay answers 401 to both at the HTTP level too.
    for token in [None, Some("not-a-real-token")] {
        let (status, _) = http(
            "GET",
            &format!("{}/v1/plans", relay.http_url()),
            token,
            None,
        )
        .expect("GET /v1/plans");
        assert_eq!(status, 401, "GET /v1/plans with token {token:?}");
    }
}

#[test]
fn revoked_token_is_refused() {
    let relay = Relay::start();
    let (seller, _plan, token) = seller_with_plan(&relay);
    relay.revoke_user("dana");
    let before = seller.show();
    seller.sync().fail().stderr_has_any(AUTH_WORDS);
    assert_eq!(
        seller.show(),
        before,
        "a refused sync must not touch local data"
    );
    let (status, _) = http(
        "GET",
        &format!("{}/v1/plans", relay.http_url()),
        Some(&token),
        None,
    )
    .unwrap();
    assert_eq!(status, 401, "a revoked token must get 401");
}

#[test]
fn valid_token_without_grant_sees_the_plan_as_unknown() {
    let relay = Relay::start();
    let (_seller, plan, seller_token) = seller_with_plan(&relay);
    let mallory_token = relay.add_user("mallory");

    // The API lists the plan for its owner only.
    let list = |token: &str| {
        let (status, body) = http(
            "GET",
            &format!("{}/v1/plans", relay.http_url()),
            Some(token),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "GET /v1/plans: {body}");
        body
    };
    assert!(list(&seller_token).contains(&plan), "owner sees her plan");
    assert!(!list(&mallory_token).contains(&plan), "others do not");

    // Mallory cannot make an invite for it; same answer as for an unknown plan.
    let unknown = bs58::encode(uuid::Uuid::new_v4().as_bytes())
        .with_check()
        .into_string();
    let invite = |plan: &str| {
        http(
            "POST",
            &format!("{}/v1/invites", relay.http_url()),
            Some(&mallory_token),
            Some(&json!({"plan": plan, "access": "rw", "side": "buyer", "expires_secs": 3600})),
        )
        .unwrap()
    };
    let (denied_status, denied_body) = invite(&plan);
    let (unknown_status, unknown_body) = invite(&unknown);
    assert!(
        denied_status >= 400,
        "invite for a plan without grant must fail: {denied_body}"
    );
    assert_eq!(
        (denied_status, denied_body.replace(&plan, "ID")),
        (unknown_status, unknown_body.replace(&unknown, "ID")),
        "a plan without grant must be refused exactly like an unknown plan"
    );

    // Through the CLI: fetching it fails the same way as an unknown plan.
    let m = Participant::new("Mallory", "other");
    let fetch = |id: &str| {
        m.map(&[
            "sync",
            "--plan",
            &format!("automerge:{id}"),
            "--relay",
            relay.url(),
            "--token",
            &mallory_token,
        ])
    };
    let denied = fetch(&plan);
    let unknown_out = fetch(&unknown);
    denied.fail();
    unknown_out.fail();
    assert_eq!(
        (denied.code(), denied.stderr.replace(&plan, "ID")),
        (
            unknown_out.code(),
            unknown_out.stderr.replace(&unknown, "ID")
        ),
        "the CLI must report a denied plan exactly like an unknown one"
    );
    // A plain sync fetches every plan the token can see: not this one.
    m.map(&["sync", "--relay", relay.url(), "--token", &mallory_token]);
    assert!(
        m.plans().iter().all(|p| p["id"] != plan.as_str()),
        "mallory must not end up with the plan"
    );
}

#[test]
fn read_only_participant_cannot_write() {
    let relay = Relay::start();
    let (seller, _plan, _) = seller_with_plan(&relay);
    let invite = seller.share("ro", "buyer");
    let viewer = Participant::new("Vic", "buyer");
    viewer.map(&["join", &invite]).ok();
    assert_eq!(heads(&viewer.show()), heads(&seller.show()));

    // The viewer edits locally and syncs: the relay must not accept it, and
    // the viewer's sync must say so.
    let kickoff = task_id(&viewer.show(), "Kickoff meeting");
    viewer.task_done(&kickoff);
    let out = viewer.sync();
    let said = format!("{}\n{}", out.stdout, out.stderr).to_lowercase();
    assert!(
        said.contains("read-only") || said.contains("read only"),
        "a read-only participant's sync must report that its changes were not accepted:\n{}\n{}",
        out.stdout,
        out.stderr
    );

    // The seller never sees it; a fresh reader neither.
    seller.sync().ok();
    assert_eq!(task(&seller.show(), "Kickoff meeting")["status"], "todo");
    let reader = Participant::new("Rex", "buyer");
    reader.map(&["join", &seller.share("ro", "buyer")]).ok();
    assert_eq!(task(&reader.show(), "Kickoff meeting")["status"], "todo");
    assert_eq!(heads(&reader.show()), heads(&seller.show()));

    // The seller's later changes still reach the viewer.
    let sign = task_id(&seller.show(), "Contract signed");
    seller.task_done(&sign);
    seller.sync().ok();
    viewer.sync();
    assert_eq!(task(&viewer.show(), "Contract signed")["status"], "done");
}

#[test]
fn expired_invite_is_refused() {
    let relay = Relay::start();
    let (seller, plan, token) = seller_with_plan(&relay);
    // One from `map share --expires 1s`, one from the API with expires_secs 1.
    let from_cli = invite_line(
        seller
            .map(&[
                "share",
                "--access",
                "rw",
                "--side",
                "buyer",
                "--expires",
                "1s",
            ])
            .ok(),
    );
    let (status, body) = http(
        "POST",
        &format!("{}/v1/invites", relay.http_url()),
        Some(&token),
        Some(&json!({"plan": plan, "access": "rw", "side": "buyer", "expires_secs": 1})),
    )
    .unwrap();
    assert!(
        status == 200 || status == 201,
        "POST /v1/invites: {status} {body}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).expect("invite JSON");
    let from_api = v["invite"].as_str().expect("{invite}").to_string();
    assert!(from_api.contains("/join/"), "invite {from_api:?}");

    // Expiry is wall-clock time on the relay: it has to pass.
    std::thread::sleep(Duration::from_millis(2100));
    for invite in [from_cli, from_api] {
        let buyer = Participant::new("Ana", "buyer");
        buyer.map(&["join", &invite]).fail().stderr_has("expired");
        assert!(buyer.plans().is_empty(), "nothing joined with {invite}");
    }
}

#[test]
fn invite_cannot_be_used_twice() {
    let relay = Relay::start();
    let (seller, plan, _) = seller_with_plan(&relay);
    let out = seller.map(&[
        "share",
        "--access",
        "rw",
        "--side",
        "buyer",
        "--expires",
        "7d",
    ]);
    let invite = invite_line(out.ok());

    let buyer = Participant::new("Ana", "buyer");
    buyer.map(&["join", &invite]).ok();
    assert!(buyer.plans().iter().any(|p| p["id"] == plan.as_str()));

    let other = Participant::new("Oscar", "buyer");
    other
        .map(&["join", &invite])
        .fail()
        .stderr_has_any(&["used", "invalid", "expired"]);
    assert!(other.plans().is_empty(), "a reused invite gives nothing");

    // Redeeming it through the API is refused as well.
    let secret = invite.rsplit('/').next().unwrap();
    for candidate in [invite.as_str(), secret] {
        let (status, body) = http(
            "POST",
            &format!("{}/v1/invites/redeem", relay.http_url()),
            None,
            Some(&json!({"invite": candidate, "name": "Oscar"})),
        )
        .unwrap();
        assert!(
            status >= 400,
            "redeeming a used invite must fail, got {status} {body}"
        );
    }
}
