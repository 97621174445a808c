//! What the `dates_filters` fuzz target runs, shared with the stable
//! regression test `crates/map-model/tests/fuzz_regressions.rs` (both
//! include this file with `#[path]`).
//!
//! The CLI parses dates (`--due fri`) and filters (`owner:bob due.before:eow`)
//! that users type. The input is split on NUL into command-line words (clap
//! only hands over valid UTF-8, so other input is skipped). Checked:
//! - `dates::parse_date` and `filter::Filter::parse` never panic, for a few
//!   realistic `today`s (month and year ends, a leap day);
//! - a parsed date formats (`format_date`) to text that parses back to it
//!   (for years 1..=9999, where the ISO form has four digits);
//! - a parsed filter can be matched against a task without panicking.

use chrono::NaiveDate;
use map_model::dates::{format_date, parse_date};
use map_model::filter::{Filter, TaskFacts};

fn todays() -> [NaiveDate; 4] {
    [(2026, 12, 4), (2026, 12, 31), (2028, 2, 29), (2027, 1, 31)]
        .map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("valid date"))
}

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let words: Vec<&str> = text.split('\0').collect();
    for today in todays() {
        for word in &words {
            if let Ok(date) = parse_date(word, today) {
                use chrono::Datelike;
                if (1..=9999).contains(&date.year()) {
                    let iso = format_date(date);
                    assert_eq!(
                        parse_date(&iso, today),
                        Ok(date),
                        "{iso} does not parse back"
                    );
                }
            }
        }
        if let Ok(filter) = Filter::parse(&words, today) {
            let _ = filter.is_empty();
            for due in [None, Some(today), today.succ_opt()] {
                let facts = TaskFacts {
                    id: "t1",
                    title: words.first().copied().unwrap_or(""),
                    status: "todo",
                    owner_id: Some("p1"),
                    owner_name: Some("Bob"),
                    owner_side: Some("buyer"),
                    milestone_id: Some("m1"),
                    milestone_title: Some("Security review"),
                    due,
                    kind: "task",
                    priority: "high",
                    overdue: due.is_some(),
                    blocked: false,
                };
                let _ = filter.matches(&facts);
            }
        }
    }
}

/// Seed inputs: the date forms and filter terms the CLI documents.
#[allow(dead_code)]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let inputs: &[&str] = &[
        "2026-12-24",
        "today",
        "tomorrow",
        "yesterday",
        "now",
        "fri",
        "monday",
        "next friday",
        "next",
        "+3d",
        "3d",
        "-1d",
        "+2w",
        "+1m",
        "-12m",
        "+1y",
        "99999y",
        "eow",
        "eom",
        "eoq",
        "eoy",
        "2026-1-5",
        "  TUE  ",
        "owner:bob status:open due.before:eow side:buyer milestone:sec overdue security",
        "status:todo|blocked\0due:2026-12-24\0due.after:+2w",
        "kind:meeting priority:high|low +ready +blocked +overdue",
        "owner:\0status:nope\0foo:bar\0+tag",
        "due.before:next monday",
    ];
    inputs
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("seed-{i:02}"), s.as_bytes().to_vec()))
        .collect()
}
