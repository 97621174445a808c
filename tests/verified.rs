//! Verified authorship end to end: `map log --verified` sets each change's
//! claimed author beside the relay user who delivered it, and flags a
//! change whose author was forged.

use map_e2e::{Participant, Relay};
use serde_json::Value;

/// `map log --verified --json` (all changes) as an array.
#[track_caller]
fn verified_log(p: &Participant) -> Vec<Value> {
    match p
        .map(&["log", "--verified", "--json", "--limit", "100000"])
        .ok()
        .json()
    {
        Value::Array(a) => a,
        other => panic!("`map log --verified --json` must print an array, got {other}"),
    }
}

/// The one entry whose message is `message`.
#[track_caller]
fn entry<'a>(log: &'a [Value], message: &str) -> &'a Value {
    let found: Vec<&Value> = log.iter().filter(|e| e["message"] == message).collect();
    assert_eq!(
        found.len(),
        1,
        "one change {message:?} expected in {log:#?}"
    );
    found[0]
}

#[test]
fn verified_log_names_deliverers_and_flags_a_forged_author() {
    let relay = Relay::start();
    let token = relay.add_user("dana");
    let seller = Participant::new("Dana", "seller");
    seller.init_plan("Acme rollout", "saas");
    seller.add_remote("relay", relay.url(), &token);
    seller.sync().ok();
    let invite = seller.share("rw", "buyer");
    let buyer = Participant::new("Ana", "buyer");
    buyer.map(&["join", &invite]).ok();

    seller.map(&["task", "add", "Seller task"]).ok();
    buyer.map(&["task", "add", "Buyer task"]).ok();
    seller.sync().ok();
    buyer.sync().ok();
    seller.sync().ok();

    // The buyer, on the buyer's own relay token, writes a change that
    // claims to be the seller (a fresh Automerge actor and author).
    buyer
        .map(&[
            "identity",
            "set",
            "--name",
            &seller.name,
            "--email",
            &seller.email,
            "--side",
            "seller",
        ])
        .ok();
    buyer.map(&["task", "add", "Forged task"]).ok();
    buyer.sync().ok();
    seller.sync().ok();

    for viewer in [&seller, &buyer] {
        let log = verified_log(viewer);
        let dana = format!("{} <{}>", seller.name, seller.email);
        let ana = format!("{} <{}>", "Ana", "ana@example.com");

        let own = entry(&log, "task add: Seller task");
        assert_eq!(own["author"], dana.as_str());
        assert_eq!(own["deliverer"], "dana");
        assert_eq!(own["status"], "verified");
        assert_eq!(own["flagged"], false);

        let theirs = entry(&log, "task add: Buyer task");
        assert_eq!(theirs["author"], ana.as_str());
        let buyer_user = theirs["deliverer"].as_str().expect("buyer task delivered");
        assert!(
            buyer_user.eq_ignore_ascii_case("ana"),
            "the buyer's relay user is named at join: {buyer_user}"
        );
        assert_eq!(theirs["status"], "verified");
        assert_eq!(theirs["flagged"], false);

        let forged = entry(&log, "task add: Forged task");
        assert_eq!(forged["author"], dana.as_str(), "the forged claim");
        assert_eq!(forged["deliverer"], buyer_user, "delivered by the buyer");
        assert_eq!(forged["status"], "flagged");
        assert_eq!(forged["flagged"], true);

        // Everything else is on the relay and unremarkable.
        for e in &log {
            assert!(e["deliverer"].is_string(), "every change was synced: {e}");
            assert!(e["delivered_at"].is_string(), "{e}");
            if e["message"] != "task add: Forged task" {
                assert_eq!(e["flagged"], false, "{e}");
            }
        }
    }

    // The text form says it too.
    let out = seller.map(&["log", "--verified", "--limit", "100000"]);
    let text = &out.ok().stdout;
    let forged_line = text
        .lines()
        .find(|l| l.contains("Forged task"))
        .expect("forged change listed");
    assert!(forged_line.contains("FLAGGED"), "{forged_line}");
    assert!(text.contains("1 change delivered by someone"), "{text}");

    // A plan on no relay cannot be verified (exit 1); a relay that is down
    // is a network failure (exit 3).
    seller.map(&["init", "Local only"]).ok();
    seller
        .map(&["log", "--verified", "--plan", "Local only"])
        .code_is(1)
        .stderr_has("no relay");
    let mut relay = relay;
    relay.stop();
    seller
        .map(&["log", "--verified", "--plan", "Acme rollout"])
        .code_is(3)
        .stderr_has("cannot reach relay");
}
