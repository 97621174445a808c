//! A seller and a buyer share a plan through a real relay, edit it offline
//! concurrently and converge.

use map_e2e::{Participant, Relay, heads, task, task_id, tasks};
use serde_json::Value;

/// A relay, a seller who created a plan from a template and pushed it, and a
/// buyer who joined it with an invite. Both hold the same plan.
struct Shared {
    relay: Relay,
    seller: Participant,
    buyer: Participant,
}

fn shared_plan() -> Shared {
    let relay = Relay::start();
    let token = relay.add_user("dana");

    let seller = Participant::new("Dana", "seller");
    let plan = seller.init_plan("Acme rollout", "saas");
    let listed = seller.plans();
    let entry = listed
        .iter()
        .find(|p| p["id"] == plan.as_str())
        .expect("plan listed");
    assert_eq!(
        entry["url"],
        format!("automerge:{plan}").as_str(),
        "`map plans --json` entries carry the automerge: URL"
    );
    seller.add_remote("relay", relay.url(), &token);
    seller.sync().ok();

    let invite = seller.share("rw", "buyer");
    assert!(
        invite.starts_with(&format!("{}/join/", relay.url())),
        "invite {invite:?} must be {}/join/SECRET",
        relay.url()
    );

    // The buyer never ran a map-relay command: the invite is all they need.
    let buyer = Participant::new("Ana", "buyer");
    buyer.map(&["join", &invite]).ok();
    let plans = buyer.plans();
    assert!(
        plans.iter().any(|p| p["id"] == plan.as_str()),
        "after `map join` the buyer must have plan {plan} locally: {plans:?}"
    );
    assert_same_plan(&seller, &buyer);
    Shared {
        relay,
        seller,
        buyer,
    }
}

/// Asserts both participants hold the same plan: identical heads and an
/// identical `map show --json`. Nothing in the view is per-participant: the
/// date is pinned with MAP_TODAY for both, and everything else is derived
/// from the document.
#[track_caller]
fn assert_same_plan(a: &Participant, b: &Participant) -> Value {
    let va = a.show();
    let vb = b.show();
    for v in [&va, &vb] {
        let id = v["id"].as_str().expect("`map show --json` has `id`");
        assert_eq!(
            v["url"],
            format!("automerge:{id}").as_str(),
            "`url` in show --json"
        );
    }
    assert_eq!(
        heads(&va),
        heads(&vb),
        "{} and {} must have identical heads after syncing",
        a.name,
        b.name
    );
    assert!(!heads(&va).is_empty(), "a plan has heads");
    if va != vb {
        panic!(
            "`map show --json` differs between {} and {}:\n--- {} ---\n{va:#}\n--- {} ---\n{vb:#}",
            a.name, b.name, a.name, b.name
        );
    }
    va
}

/// Syncs everyone in order, then everyone but the last again, so that each
/// one has seen every other's changes.
fn converge(ps: &[&Participant]) {
    for p in ps {
        p.sync().ok();
    }
    for p in &ps[..ps.len() - 1] {
        p.sync().ok();
    }
}

#[test]
fn concurrent_offline_edits_converge() {
    let s = shared_plan();
    let (seller, buyer) = (&s.seller, &s.buyer);
    let view = seller.show();
    let infosec = task_id(&view, "InfoSec approval");
    let msa = task_id(&view, "Send MSA and order form");
    let kickoff = task_id(&view, "Kickoff meeting");
    let po = task_id(&view, "Purchase order issued");

    // Offline, concurrently:
    // the same field of the same task,
    seller.task_edit(&infosec, "due", "2027-01-10");
    buyer.task_edit(&infosec, "due", "2027-01-12");
    // different fields of one task,
    seller.task_edit(&msa, "title", "Send MSA, DPA and order form");
    buyer.task_edit(&msa, "due", "2027-01-05");
    // different tasks, and a new task.
    seller.task_done(&kickoff);
    buyer.task_done(&po);
    let added = buyer.add_task("Buyer internal budget review");

    converge(&[seller, buyer]);
    let merged = assert_same_plan(seller, buyer);

    // Nothing was lost.
    let t = tasks(&merged);
    let by_id = |id: &str| -> Value {
        t.iter()
            .find(|x| x["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("task {id} missing after merge: {merged:#}"))
    };
    assert_eq!(by_id(&msa)["title"], "Send MSA, DPA and order form");
    assert_eq!(by_id(&msa)["due"], "2027-01-05");
    assert_eq!(by_id(&kickoff)["status"], "done");
    assert_eq!(by_id(&po)["status"], "done");
    assert_eq!(by_id(&added)["title"], "Buyer internal budget review");
    assert_eq!(
        task(&merged, "Buyer internal budget review")["id"],
        added.as_str()
    );
    let due = by_id(&infosec)["due"].clone();
    assert!(
        due == "2027-01-10" || due == "2027-01-12",
        "the conflicting due date must be one of the two written, got {due}"
    );

    // The conflict is visible, with both values, on both sides.
    assert!(
        merged["conflicts"].as_u64().unwrap_or(0) >= 1,
        "`map show --json` must count the concurrent due dates in `conflicts`: {}",
        merged["conflicts"]
    );
    for p in [seller, buyer] {
        let out = p.map(&["conflicts"]);
        out.ok();
        for value in ["2027-01-10", "2027-01-12"] {
            assert!(
                out.stdout.contains(value),
                "`map conflicts` of {} must show the concurrent value {value}:\n{}",
                p.name,
                out.stdout
            );
        }
    }
    assert_eq!(
        seller.map(&["conflicts"]).stdout,
        buyer.map(&["conflicts"]).stdout,
        "`map conflicts` must read the same on both sides"
    );

    // One more round changes nothing.
    let before = heads(&merged);
    converge(&[buyer, seller]);
    assert_eq!(heads(&assert_same_plan(seller, buyer)), before);
}

#[test]
fn sync_with_relay_down_fails_cleanly_then_merges_later() {
    let mut s = shared_plan();
    let (seller, buyer) = (&s.seller, &s.buyer);
    let view = seller.show();
    let sign = task_id(&view, "Contract signed");
    let training = task_id(&view, "End-user training");

    s.relay.stop();

    // Work offline.
    seller.task_done(&sign);
    buyer.task_edit(&training, "title", "End-user training (two sessions)");
    let seller_before = seller.show();
    let buyer_before = buyer.show();

    for p in [seller, buyer] {
        let out = p.sync();
        out.code_is(3)
            .stderr_has_any(&["relay", "connect", "unreachable", "refused", "network"]);
        assert!(
            out.stderr
                .contains(&format!("127.0.0.1:{}", s.relay.port())),
            "the sync error should name the relay it could not reach:\n{}",
            out.stderr
        );
    }
    assert_eq!(
        seller.show(),
        seller_before,
        "a failed sync must not touch local data"
    );
    assert_eq!(
        buyer.show(),
        buyer_before,
        "a failed sync must not touch local data"
    );
    assert_eq!(
        task(&seller.show(), "Contract signed")["status"],
        "done",
        "the offline edit is still there"
    );

    // The relay comes back (same port, same database): everything merges.
    s.relay.restart();
    converge(&[seller, buyer]);
    let merged = assert_same_plan(seller, buyer);
    assert_eq!(task(&merged, "Contract signed")["status"], "done");
    assert_eq!(
        task(&merged, "End-user training (two sessions)")["id"],
        training.as_str()
    );
}

#[test]
fn plan_made_offline_syncs_when_a_remote_is_added() {
    let relay = Relay::start();
    let token = relay.add_user("dana");
    let seller = Participant::new("Dana", "seller");
    seller.init_plan("Offline first", "simple");
    let t = seller.add_task("Written before any remote");
    seller.task_done(&t);
    // Syncing with no remote is a user error, not a crash.
    seller.sync().fail();

    seller.add_remote("relay", relay.url(), &token);
    seller.sync().ok();
    let invite = seller.share("rw", "buyer");
    let buyer = Participant::new("Ana", "buyer");
    buyer.map(&["join", &invite]).ok();
    let v = assert_same_plan(&seller, &buyer);
    assert_eq!(task(&v, "Written before any remote")["status"], "done");
}

#[test]
fn demo_runs_on_its_own() {
    // `map demo` needs no configuration and exits by itself (bounded by the
    // harness timeout), leaving nothing running.
    let p = Participant::bare("Demo", "seller");
    let out = p.map(&["demo"]);
    out.ok();
    assert!(
        !out.stdout.trim().is_empty(),
        "`map demo` prints what it does"
    );
}
