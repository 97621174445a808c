//! Interop with the JS automerge-repo client (tests/js/peer.mjs, Node 20 with
//! the `ws` package) through the real relay, both ways.
//!
//! Needs `npm ci --prefix tests/js`. Without it the tests are skipped with a
//! loud message, unless `CI` is set: then they fail.

use map_e2e::{Participant, Relay, heads, js_available, node, task, task_id};
use serde_json::Value;

fn js(args: &[&str]) -> Value {
    let out = node("peer.mjs", args);
    out.ok();
    out.json()
}

#[test]
fn js_client_edits_a_plan_made_by_the_cli_and_back() {
    if !js_available() {
        return;
    }
    let relay = Relay::start();
    let token = relay.add_user("dana");
    let seller = Participant::new("Dana", "seller");
    let plan = seller.init_plan("Acme rollout", "saas");
    seller.add_remote("relay", relay.url(), &token);
    seller.sync().ok();

    let view = seller.show();
    let url = view["url"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("automerge:{plan}"));
    assert_eq!(url, format!("automerge:{plan}"), "view url");
    let kickoff = task_id(&view, "Kickoff meeting");

    // JS -> CLI: the JS client marks a task done; the CLI syncs and sees it.
    let edited = js(&["edit", relay.url(), &token, &url, &kickoff, "done"]);
    assert_eq!(
        edited["title"], "Kickoff meeting",
        "JS read the CLI's title"
    );
    seller.sync().ok();
    let after = seller.show();
    assert_eq!(
        task(&after, "Kickoff meeting")["status"],
        "done",
        "the JS edit must reach the CLI"
    );
    let js_heads: Vec<String> = serde_json::from_value(edited["heads"].clone()).unwrap();
    assert_eq!(heads(&after), js_heads, "the CLI has exactly the JS heads");

    // CLI -> JS: the CLI marks another task done; the JS client sees it.
    let sign = task_id(&after, "Contract signed");
    seller.task_done(&sign);
    seller.sync().ok();
    let seen = js(&["wait", relay.url(), &token, &url, &sign, "done"]);
    let want = heads(&seller.show());
    let got: Vec<String> = serde_json::from_value(seen["heads"].clone()).unwrap();
    assert_eq!(got, want, "the JS client converged on the CLI's heads");
}

#[test]
fn cli_joins_and_edits_a_plan_made_by_the_js_client() {
    if !js_available() {
        return;
    }
    let relay = Relay::start();
    let token = relay.add_user("jay");

    // The JS client creates a plan (strings written as JS automerge 3 does),
    // waits until the relay has it and asks the relay for an invite.
    let created = js(&[
        "create",
        relay.url(),
        &token,
        "Plan from JS",
        "Task from JS",
    ]);
    let invite = created["invite"].as_str().expect("invite").to_string();
    let id = created["id"].as_str().expect("id").to_string();
    let js_task = created["taskId"].as_str().expect("taskId").to_string();

    let buyer = Participant::new("Ana", "buyer");
    buyer.map(&["join", &invite]).ok();
    assert!(
        buyer.plans().iter().any(|p| p["id"] == id.as_str()),
        "the joined JS plan must be local: {:?}",
        buyer.plans()
    );
    let view = buyer.show();
    assert_eq!(view["header"]["title"], "Plan from JS");
    let t = task(&view, "Task from JS");
    assert_eq!(t["id"], js_task.as_str());
    assert_eq!(t["status"], "todo");
    let js_heads: Vec<String> = serde_json::from_value(created["heads"].clone()).unwrap();
    assert_eq!(heads(&view), js_heads);

    // The CLI edits it; the JS client sees the edit.
    buyer.task_done(&js_task);
    buyer.sync().ok();
    let url = format!("automerge:{id}");
    js(&["wait", relay.url(), &token, &url, &js_task, "done"]);

    // And the JS client's next edit reaches the CLI.
    js(&["edit", relay.url(), &token, &url, &js_task, "blocked"]);
    buyer.sync().ok();
    assert_eq!(task(&buyer.show(), "Task from JS")["status"], "blocked");
}
