//! End-to-end tests of `map export` and `map import`: the real binary in a
//! temporary `MAP_HOME` with the clock pinned. Every export is read back with
//! a real parser (csv, calamine for xlsx, ical for iCalendar); imports are
//! checked through `map show --json` and the plan's heads, which must not
//! move when an import changes nothing or is refused.

mod common;

use std::path::{Path, PathBuf};

use common::{Out, run_map};
use std::process::Command;

use calamine::{Data, Reader, Xlsx, open_workbook};
use chrono::NaiveDate;
use serde_json::Value;

const TODAY: &str = "2026-12-04";
const NOW: &str = "2026-12-04T09:30:00Z";
const HOSTILE: &str = "Acme <script>alert(\"x\")</script> & co";

struct Env {
    dir: tempfile::TempDir,
    home: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        Env { dir, home }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Out {
        run_map(&self.home, TODAY, NOW, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.code, 0,
            "map {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    fn add(&self, args: &[&str]) -> String {
        self.ok(args)
            .lines()
            .last()
            .expect("an id")
            .trim()
            .to_string()
    }

    fn show(&self) -> Value {
        serde_json::from_str(&self.ok(&["show", "--json"])).expect("show json")
    }

    fn heads(&self) -> Vec<String> {
        let v = self.show();
        v["heads"]
            .as_array()
            .expect("heads")
            .iter()
            .map(|h| h.as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn task<'a>(v: &'a Value, title: &str) -> &'a Value {
        v["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["title"] == title)
            .unwrap_or_else(|| panic!("no task {title}"))
    }

    fn export_to(&self, format: &str, name: &str) -> PathBuf {
        let p = self.path(name);
        self.ok(&[
            "export",
            "--format",
            format,
            "-o",
            p.to_str().expect("path"),
        ]);
        p
    }
}

/// A plan with people on both sides, milestones, dated tasks with a chain
/// of dependencies, statuses, a risk and a comment.
fn sample() -> Env {
    let env = Env::new();
    env.ok(&[
        "identity",
        "set",
        "--name",
        "Ana Lopez",
        "--email",
        "ana@seller.com",
        "--side",
        "seller",
    ]);
    env.ok(&["init", HOSTILE, "--go-live", "2027-01-29"]);
    env.ok(&[
        "person",
        "add",
        "Bob Smith",
        "--email",
        "bob@acme.com",
        "--side",
        "buyer",
        "--role",
        "champion",
    ]);
    env.ok(&[
        "person",
        "add",
        "Ana Lopez",
        "--email",
        "ana@seller.com",
        "--side",
        "seller",
    ]);
    env.ok(&["milestone", "add", "Evaluation", "--due", "2026-12-11"]);
    env.ok(&["milestone", "add", "Security review", "--due", "2026-12-18"]);
    env.add(&[
        "task",
        "add",
        "Demo environment",
        "--owner",
        "ana",
        "--due",
        "2026-12-02",
        "--milestone",
        "eval",
    ]);
    let q = env.add(&[
        "task",
        "add",
        "Security questionnaire",
        "--owner",
        "bob",
        "--start",
        "2026-12-01",
        "--due",
        "2026-12-07",
        "--milestone",
        "sec",
    ]);
    let p = env.add(&[
        "task",
        "add",
        "Pen test report",
        "--owner",
        "ana",
        "--due",
        "2026-12-11",
        "--milestone",
        "sec",
        "--after",
        &q,
        "--description",
        "From the vendor,\nsigned",
    ]);
    env.add(&[
        "task",
        "add",
        "Security sign-off",
        "--owner",
        "bob",
        "--due",
        "2026-12-16",
        "--milestone",
        "sec",
        "--after",
        &p,
    ]);
    env.add(&["task", "add", "Undated follow-up"]);
    env.ok(&["task", "done", "Demo environment"]);
    env.ok(&["task", "start", "Security questionnaire"]);
    env.ok(&[
        "risk",
        "add",
        "Budget freeze",
        "--impact",
        "high",
        "--likelihood",
        "medium",
        "--owner",
        "bob",
        "--mitigation",
        "Sign before year end",
    ]);
    env.ok(&["comment", "Pen test report", "Report due from the vendor"]);
    env
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::Reader::from_path(path).expect("open csv");
    let header = rdr
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = rdr
        .records()
        .map(|r| r.expect("row").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).expect("create csv");
    w.write_record(header).expect("header");
    for r in rows {
        w.write_record(r).expect("row");
    }
    w.flush().expect("flush");
}

fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn csv_has_the_standard_columns_and_reads_back() {
    let env = sample();
    let file = env.export_to("csv", "plan.csv");
    let (header, rows) = read_csv(&file);
    assert_eq!(
        header,
        [
            "id",
            "step",
            "description",
            "milestone",
            "owner",
            "side",
            "start",
            "due",
            "status",
            "completed",
            "depends on",
            "notes"
        ]
    );
    assert_eq!(rows.len(), 5);
    let pen = rows
        .iter()
        .find(|r| r[1] == "Pen test report")
        .expect("pen row");
    assert_eq!(pen[col(&header, "description")], "From the vendor,\nsigned");
    assert_eq!(pen[col(&header, "milestone")], "Security review");
    assert_eq!(pen[col(&header, "owner")], "Ana Lopez");
    assert_eq!(pen[col(&header, "side")], "seller");
    assert_eq!(pen[col(&header, "due")], "2026-12-11");
    assert_eq!(pen[col(&header, "depends on")], "Security questionnaire");
    assert_eq!(
        pen[col(&header, "notes")],
        "Ana Lopez <ana@seller.com>: Report due from the vendor"
    );
    let demo = rows
        .iter()
        .find(|r| r[1] == "Demo environment")
        .expect("demo");
    assert_eq!(demo[col(&header, "status")], "done");
    assert_eq!(demo[col(&header, "completed")], TODAY);
}

#[test]
fn csv_round_trip_changes_nothing() {
    let env = sample();
    let file = env.export_to("csv", "plan.csv");
    let before = env.heads();
    let out = env.ok(&["import", file.to_str().unwrap()]);
    assert!(out.contains("nothing changed"), "{out}");
    assert!(
        out.contains("0 tasks added, 0 updated, 5 unchanged"),
        "{out}"
    );
    assert_eq!(env.heads(), before);
    // Without the id column rows match by title, still without a change.
    let (header, rows) = read_csv(&file);
    let header2: Vec<String> = header[1..].to_vec();
    let rows2: Vec<Vec<String>> = rows.iter().map(|r| r[1..].to_vec()).collect();
    let file2 = env.path("noid.csv");
    write_csv(&file2, &header2, &rows2);
    env.ok(&["import", file2.to_str().unwrap()]);
    assert_eq!(env.heads(), before);
    // The built-in templates (people named alike on both sides, long
    // dependency chains) survive the round trip too.
    for template in ["basic", "simple", "advanced", "saas"] {
        env.ok(&[
            "init",
            template,
            "--template",
            template,
            "--go-live",
            "2027-03-31",
        ]);
        let file = env.export_to("csv", &format!("{template}.csv"));
        let before = env.heads();
        let out = env.ok(&["import", file.to_str().unwrap()]);
        assert!(out.contains("nothing changed"), "{template}: {out}");
        assert_eq!(env.heads(), before, "{template}");
    }
}

#[test]
fn csv_edits_are_imported() {
    let env = sample();
    let file = env.export_to("csv", "plan.csv");
    let (header, mut rows) = read_csv(&file);
    for r in rows.iter_mut() {
        match r[1].as_str() {
            "Security sign-off" => {
                r[1] = "Security sign-off by CISO".into(); // renamed, matched by id
                r[col(&header, "due")] = "2026-12-17".into();
                r[col(&header, "owner")] = "ana@seller.com".into();
                r[col(&header, "side")] = String::new();
            }
            "Pen test report" => {
                r[col(&header, "status")] = "done".into();
                r[col(&header, "completed")] = "2026-12-03".into();
                r[col(&header, "depends on")] = String::new();
                r[col(&header, "notes")] += " | Vendor confirmed";
            }
            "Undated follow-up" => {
                r[col(&header, "milestone")] = "Procurement".into();
                r[col(&header, "start")] = "2026-12-20".into();
                r[col(&header, "due")] = "2026-12-22".into();
            }
            _ => {}
        }
    }
    let mut new_row = vec![String::new(); header.len()];
    new_row[col(&header, "step")] = "Purchase order".into();
    new_row[col(&header, "milestone")] = "Procurement".into();
    new_row[col(&header, "owner")] = "Bob Smith".into();
    new_row[col(&header, "due")] = "2026-12-23".into();
    new_row[col(&header, "status")] = "in progress".into();
    new_row[col(&header, "depends on")] = "Security sign-off by CISO; Undated follow-up".into();
    rows.push(new_row);
    let edited = env.path("edited.csv");
    write_csv(&edited, &header, &rows);
    let before = env.heads();
    let out = env.ok(&["import", edited.to_str().unwrap()]);
    assert!(
        out.contains("1 tasks added, 3 updated, 2 unchanged"),
        "{out}"
    );
    assert!(out.contains("1 milestones added"), "{out}");
    assert_ne!(env.heads(), before);

    let v = env.show();
    let signoff = Env::task(&v, "Security sign-off by CISO");
    assert_eq!(signoff["due"], "2026-12-17");
    assert_eq!(signoff["owner_name"], "Ana Lopez");
    let pen = Env::task(&v, "Pen test report");
    assert_eq!(pen["status"], "done");
    assert_eq!(pen["completed"], "2026-12-03");
    assert_eq!(pen["deps"].as_array().map(Vec::len), Some(0));
    let mut comments: Vec<&str> = v["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["target"] == pen["id"])
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    comments.sort();
    assert_eq!(comments, ["Report due from the vendor", "Vendor confirmed"]);
    let po = Env::task(&v, "Purchase order");
    assert_eq!(po["status"], "in_progress");
    assert_eq!(po["milestone_title"], "Procurement");
    assert_eq!(po["owner_name"], "Bob Smith");
    let mut deps: Vec<&str> = po["deps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    deps.sort();
    let mut want = vec![
        signoff["id"].as_str().unwrap(),
        Env::task(&v, "Undated follow-up")["id"].as_str().unwrap(),
    ];
    want.sort();
    assert_eq!(deps, want);
    assert_eq!(Env::task(&v, "Undated follow-up")["start"], "2026-12-20");

    // Importing the same file again, or a fresh export, changes nothing.
    let after = env.heads();
    env.ok(&["import", edited.to_str().unwrap()]);
    assert_eq!(env.heads(), after);
    let again = env.export_to("csv", "again.csv");
    env.ok(&["import", again.to_str().unwrap()]);
    assert_eq!(env.heads(), after);
}

#[test]
fn bad_csv_imports_nothing() {
    let env = sample();
    let file = env.export_to("csv", "plan.csv");
    let (header, rows) = read_csv(&file);
    let before = env.heads();
    // Each case: a transformation of the exported sheet and the error.
    type Case = (
        &'static str,
        Box<dyn Fn(&mut Vec<String>, &mut Vec<Vec<String>>)>,
        &'static str,
    );
    let due = col(&header, "due");
    let owner = col(&header, "owner");
    let status = col(&header, "status");
    let deps = col(&header, "depends on");
    let cases: Vec<Case> = vec![
        (
            "missing step column",
            Box::new(|h, rows| {
                h.remove(1);
                for r in rows.iter_mut() {
                    r.remove(1);
                }
            }),
            "row 1: the file has no 'step' column",
        ),
        (
            "bad date",
            Box::new(move |_, rows| rows[3][due] = "31/12/2026".into()),
            "row 5, column due: '31/12/2026' is not a date",
        ),
        (
            "unknown owner after a valid edit",
            Box::new(move |_, rows| {
                rows[0][due] = "2026-12-30".into();
                rows[2][owner] = "Zed Unknown".into();
            }),
            "row 4, column owner: no person 'Zed Unknown' in the plan",
        ),
        (
            "bad status",
            Box::new(move |_, rows| rows[1][status] = "finished".into()),
            "row 3, column status: 'finished' is not a status",
        ),
        (
            "unknown dependency",
            Box::new(move |_, rows| rows[1][deps] = "Nothing like this".into()),
            "row 3, column depends on: no task 'Nothing like this' in the file or the plan",
        ),
        (
            "dependency cycle",
            Box::new(move |_, rows| rows[1][deps] = "Security sign-off".into()),
            "the dependencies form a cycle",
        ),
        (
            "side disagrees with the owner",
            Box::new(move |_, rows| rows[0][owner + 1] = "buyer".into()),
            "row 2, column side: Ana Lopez is on the seller side, not buyer",
        ),
    ];
    for (name, change, expected) in cases {
        let mut h = header.clone();
        let mut r = rows.clone();
        change(&mut h, &mut r);
        let bad = env.path("bad.csv");
        write_csv(&bad, &h, &r);
        let out = env.run(&["import", bad.to_str().unwrap()]);
        assert_eq!(out.code, 1, "{name}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(expected),
            "{name}: expected '{expected}' in:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("nothing was imported"),
            "{name}: {}",
            out.stderr
        );
        assert_eq!(env.heads(), before, "{name}: the plan changed");
    }
    // The same task twice.
    let mut dup = rows.clone();
    dup.push(rows[0].clone());
    let bad = env.path("dup.csv");
    write_csv(&bad, &header, &dup);
    let out = env.run(&["import", bad.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("row 7, column id: this is the same task as row 2"),
        "{}",
        out.stderr
    );
    assert_eq!(env.heads(), before);
    // An empty file and a file that is not UTF-8.
    let empty = env.path("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let out = env.run(&["import", empty.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("the file is empty"), "{}", out.stderr);
    std::fs::write(&empty, b"step\n\xff\xfe\n").unwrap();
    let out = env.run(&["import", empty.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is not UTF-8"), "{}", out.stderr);
    assert_eq!(env.heads(), before);
    // A row whose task was deleted since the export.
    env.ok(&["task", "rm", "Undated follow-up"]);
    let before = env.heads();
    let out = env.run(&["import", file.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("row 6, column id: task "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("was deleted"), "{}", out.stderr);
    assert!(out.stderr.contains("map task restore"), "{}", out.stderr);
    assert_eq!(env.heads(), before);
}

#[test]
fn import_creates_people_when_asked_and_new_plans() {
    let env = sample();
    let csv = env.path("new.csv");
    std::fs::write(
        &csv,
        "Step,Owner,Side,Due,Depends on\nKickoff,Dana Wu,buyer,2027-01-05,\nGo live,Dana Wu,,2027-01-29,Kickoff\n",
    )
    .unwrap();
    let out = env.run(&["import", csv.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("row 2, column owner: no person 'Dana Wu' in the plan"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--create-people"), "{}", out.stderr);
    let out = env.ok(&["import", csv.to_str().unwrap(), "--create-people"]);
    assert!(out.contains("2 tasks added"), "{out}");
    assert!(out.contains("1 people added"), "{out}");
    let v = env.show();
    let dana: Vec<&Value> = v["people"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "Dana Wu")
        .collect();
    assert_eq!(dana.len(), 1);
    assert_eq!(dana[0]["side"], "buyer");
    let go = Env::task(&v, "Go live");
    assert_eq!(go["deps"][0], Env::task(&v, "Kickoff")["id"]);

    // A whole plan copied into a new one through its CSV export.
    let file = env.export_to("csv", "plan.csv");
    let out = env.ok(&[
        "import",
        file.to_str().unwrap(),
        "--new",
        "Copy",
        "--create-people",
    ]);
    assert!(out.contains("7 tasks added"), "{out}");
    let copy = env.show();
    assert_eq!(copy["header"]["title"], "Copy");
    assert_eq!(copy["tasks"].as_array().map(Vec::len), Some(7));
    let pen = Env::task(&copy, "Pen test report");
    assert_eq!(
        pen["deps"][0],
        Env::task(&copy, "Security questionnaire")["id"]
    );
    assert_eq!(Env::task(&copy, "Demo environment")["completed"], TODAY);
}

#[test]
fn xlsx_workbook_reads_back() {
    let env = sample();
    let file = env.export_to("xlsx", "plan.xlsx");
    let mut wb: Xlsx<_> = open_workbook(&file).expect("open xlsx");
    assert_eq!(wb.sheet_names(), ["Tasks", "Milestones", "People", "Risks"]);
    let tasks = wb.worksheet_range("Tasks").expect("Tasks");
    let rows: Vec<&[Data]> = tasks.rows().collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0][1], Data::String("step".into()));
    assert_eq!(rows[0][12], Data::String("overdue".into()));
    let pen = rows
        .iter()
        .find(|r| r[1] == Data::String("Pen test report".into()))
        .expect("pen");
    match &pen[7] {
        Data::DateTime(d) => assert_eq!(
            d.as_datetime().map(|t| t.date()),
            NaiveDate::from_ymd_opt(2026, 12, 11)
        ),
        other => panic!("due is not a date: {other:?}"),
    }
    assert_eq!(pen[8], Data::String("todo".into()));
    let ms = wb.worksheet_range("Milestones").expect("Milestones");
    let sec = ms
        .rows()
        .find(|r| r[0] == Data::String("Security review".into()))
        .expect("sec");
    assert_eq!(sec[4], Data::Float(0.0));
    let eval = ms
        .rows()
        .find(|r| r[0] == Data::String("Evaluation".into()))
        .expect("eval");
    assert_eq!(eval[4], Data::Float(1.0));
    let people = wb.worksheet_range("People").expect("People");
    assert_eq!(people.rows().count(), 3);
    let risks = wb.worksheet_range("Risks").expect("Risks");
    assert_eq!(
        risks.rows().nth(1).map(|r| r[0].clone()),
        Some(Data::String("Budget freeze".into()))
    );
}

fn ics_events(text: &str) -> Vec<Vec<(String, String)>> {
    let mut cals = ical::IcalParser::new(std::io::BufReader::new(text.as_bytes()));
    let cal = cals.next().expect("a calendar").expect("parses");
    assert!(cals.next().is_none());
    let props: Vec<(&str, &str)> = cal
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_deref().unwrap_or("")))
        .collect();
    assert!(props.contains(&("VERSION", "2.0")), "{props:?}");
    assert!(props.contains(&("PRODID", "-//map//Mutual Action Plan//EN")));
    assert!(text.contains("\r\n"), "RFC 5545 lines end with CRLF");
    cal.events
        .iter()
        .map(|e| {
            e.properties
                .iter()
                .map(|p| {
                    let params = p
                        .params
                        .as_ref()
                        .map(|ps| {
                            ps.iter()
                                .map(|(k, v)| format!(";{k}={}", v.join(",")))
                                .collect::<String>()
                        })
                        .unwrap_or_default();
                    (
                        format!("{}{params}", p.name),
                        p.value.clone().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .collect()
}

fn prop<'a>(ev: &'a [(String, String)], name: &str) -> &'a str {
    ev.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {ev:?}"))
}

#[test]
fn ics_calendar_reads_back() {
    let env = sample();
    let text = env.ok(&["export", "--format", "ics"]);
    let events = ics_events(&text);
    // 4 dated tasks + 2 milestones.
    assert_eq!(events.len(), 6);
    let pen = events
        .iter()
        .find(|e| prop(e, "SUMMARY") == "Pen test report")
        .expect("pen");
    assert_eq!(prop(pen, "DTSTART;VALUE=DATE"), "20261211");
    assert_eq!(prop(pen, "DTEND;VALUE=DATE"), "20261212");
    assert!(prop(pen, "DESCRIPTION").contains("Owner: Ana Lopez (seller)"));
    assert!(prop(pen, "DESCRIPTION").contains("Status: todo"));
    let mut uids: Vec<&str> = events.iter().map(|e| prop(e, "UID")).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 6, "UIDs are unique");
    // Stable across exports, even after an edit.
    env.ok(&["task", "edit", "Pen test report", "--due", "2026-12-14"]);
    let again = ics_events(&env.ok(&["export", "--format", "ics"]));
    let pen2 = again
        .iter()
        .find(|e| prop(e, "SUMMARY") == "Pen test report")
        .expect("pen");
    assert_eq!(prop(pen2, "UID"), prop(pen, "UID"));
    assert_eq!(prop(pen2, "DTSTART;VALUE=DATE"), "20261214");
    // A personal calendar.
    let bob = ics_events(&env.ok(&["export", "--format", "ics", "--owner", "bob"]));
    let mut titles: Vec<&str> = bob.iter().map(|e| prop(e, "SUMMARY")).collect();
    titles.sort();
    assert_eq!(titles, ["Security questionnaire", "Security sign-off"]);
    let out = env.run(&["export", "--format", "csv", "--owner", "bob"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--owner only applies to --format ics"));
}

#[test]
fn html_is_self_contained_escaped_and_has_a_gantt_chart() {
    let env = sample();
    let html = env.ok(&["export", "--format", "html"]);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "hostile title not escaped");
    assert!(html.contains("Acme &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"));
    assert!(
        !html.contains("http:") && !html.contains("https:"),
        "external URL"
    );
    assert!(
        !html.contains(" src=") && !html.contains("href="),
        "external reference"
    );
    assert!(!html.contains("@import") && !html.contains("url(http"));
    assert!(html.contains("<svg class=\"gantt\""));
    assert_eq!(html.matches("class=\"milestone\"").count(), 2);
    assert_eq!(
        html.matches("<rect class=\"bar").count(),
        4,
        "one bar per dated task"
    );
    assert_eq!(
        html.matches("class=\"dep\"").count(),
        2,
        "one arrow per dependency"
    );
    assert!(html.contains("class=\"today\""));
    assert!(html.contains("class=\"bar critical\""));
    for section in [
        "People",
        "Timeline",
        "Milestones",
        "Action items",
        "Risks",
        "Recent changes",
    ] {
        assert!(html.contains(&format!("<h2>{section}</h2>")), "{section}");
    }
    assert!(html.contains("overdue") || html.contains("Overdue"));
}

#[test]
fn markdown_summary() {
    let env = sample();
    let md = env.ok(&["export", "--format", "md"]);
    assert!(md.starts_with("# Acme \\<script\\>"), "{md}");
    for section in [
        "## People",
        "## Milestones",
        "## Action items",
        "### Security review",
        "### No milestone",
        "## Risks",
        "## Recent changes",
    ] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    assert!(
        md.contains("- **Buyer:** Bob Smith (champion) bob@acme.com"),
        "{md}"
    );
    assert!(md.contains("Go-live: 2027-01-29"));
    let changes = md.split("## Recent changes").nth(1).unwrap_or_default();
    assert_eq!(changes.lines().filter(|l| l.starts_with("- ")).count(), 10);
}

#[test]
fn xlsx_goes_to_a_file_or_a_pipe() {
    let env = sample();
    // stdout here is a pipe: the bytes are written.
    let out = Command::new(env!("CARGO_BIN_EXE_map"))
        .args(["export", "--format", "xlsx"])
        .env("MAP_HOME", &env.home)
        .env("MAP_TODAY", TODAY)
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(out.stdout.starts_with(b"PK"));
    // On a terminal it refuses (`script` gives the command a terminal).
    let Ok(tty) = Command::new("script")
        .args([
            "-qec",
            &format!("{} export --format xlsx", env!("CARGO_BIN_EXE_map")),
            "/dev/null",
        ])
        .env("MAP_HOME", &env.home)
        .env("MAP_TODAY", TODAY)
        .env("NO_COLOR", "1")
        .output()
    else {
        eprintln!("skipped the terminal check: no `script` command");
        return;
    };
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(text.contains("will not be written to a terminal"), "{text}");
    assert!(!text.contains("PK"), "{text}");
}
