//! The plan in the formats people already use: a one-page Markdown or HTML
//! summary (the HTML page is self-contained and draws the timeline as an
//! SVG Gantt chart), CSV and XLSX for spreadsheets (the CSV is the one
//! `map import` reads back), and an iCalendar file of due dates.
//!
//! Shared by the `map` CLI (`map export`) and the relay (which serves a plan
//! as a web page with downloads). Every exporter is a pure function of an
//! [`Export`] (the plan view, the plan id, the latest changes and the
//! current time) or of a [`PlanView`]. This crate does no I/O: it never
//! reads the clock, the disk or the network; callers pass `now_ms`, and
//! today's date travels in the view (`PlanView::today`).
#![forbid(unsafe_code)]

pub mod csv;
pub mod error;
pub mod gantt;
pub mod html;
pub mod ics;
pub mod md;
pub mod text;
pub mod xlsx;

use chrono::NaiveDate;
use map_model::PlanView;

pub use error::ExportError;
pub use text::{author_name, date, when};

/// How many recent changes the summaries list.
pub const HISTORY_HIGHLIGHTS: usize = 10;

/// One change of the plan's history, as the summaries list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The change hash (hex).
    pub hash: String,
    /// Who made it (`Name <email>`), if the change says.
    pub author: Option<String>,
    /// Change time in ms since the Unix epoch, as claimed by its writer.
    pub time_ms: i64,
    /// The change message, if any.
    pub message: Option<String>,
}

/// Everything an exporter needs.
#[derive(Debug, Clone)]
pub struct Export {
    /// The plan's document id.
    pub id: String,
    /// The plan view (refreshed for today).
    pub view: PlanView,
    /// The latest changes, newest first (the summaries list them all; pass
    /// at most [`HISTORY_HIGHLIGHTS`]).
    pub history: Vec<Change>,
    /// Now (ms since the epoch), for timestamps in the output.
    pub now_ms: i64,
}

impl Export {
    /// Today, as the view sees it.
    pub fn today(&self) -> NaiveDate {
        self.view.today
    }
}

#[cfg(test)]
mod tests {
    use map_model::identity::Side;
    use map_model::plan::{NewPerson, NewTask};
    use map_model::{Identity, PlanDoc};

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A plan with a person, a milestone and two dependent tasks (one with
    /// markup in its title).
    fn export() -> Export {
        let by = Identity {
            name: "Dana Seller".into(),
            email: "dana@vendor.example".into(),
            side: Side::Seller,
        };
        let today = day("2027-03-01");
        let mut plan = PlanDoc::create("Acme <rollout>", &by, NOW).unwrap();
        let ana = plan
            .add_person(
                &by,
                NOW,
                NewPerson {
                    name: "Ana Buyer".into(),
                    email: "ana@acme.example".into(),
                    side: Side::Buyer,
                    role: "champion".into(),
                },
            )
            .unwrap();
        let m = plan
            .add_milestone(&by, NOW, "Security", Some(day("2027-03-10")))
            .unwrap();
        let first = plan
            .add_task(
                &by,
                NOW,
                today,
                NewTask {
                    title: "Questionnaire & <review>".into(),
                    milestone: Some(m),
                    owner: Some(ana),
                    due: Some(day("2027-03-05")),
                    ..NewTask::default()
                },
            )
            .unwrap();
        plan.add_task(
            &by,
            NOW,
            today,
            NewTask {
                title: "Sign-off".into(),
                due: Some(day("2027-03-08")),
                deps: vec![first],
                ..NewTask::default()
            },
        )
        .unwrap();
        Export {
            id: "plan1".into(),
            view: plan.view(today).unwrap(),
            history: vec![Change {
                hash: "ab".repeat(32),
                author: Some("Dana Seller <dana@vendor.example>".into()),
                time_ms: NOW,
                message: Some("task add: Sign-off".into()),
            }],
            now_ms: NOW,
        }
    }

    #[test]
    fn every_format_shows_the_plan() {
        let e = export();
        let md = md::markdown(&e);
        assert!(md.starts_with("# Acme \\<rollout\\>\n"), "{md}");
        assert!(md.contains("| Sign-off |"));
        assert!(md.contains("Ana Buyer (buyer)"));
        assert!(md.contains("(waiting)"), "the second task waits: {md}");
        assert!(md.contains("Dana Seller: task add: Sign-off"));

        let page = html::page(&e);
        assert!(page.contains("<h1>Acme &lt;rollout&gt;</h1>"));
        assert!(page.contains("Questionnaire &amp; &lt;review&gt;"));
        assert!(!page.contains("<review>"));
        let svg = gantt::svg(&e).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("class=\"dep\""), "dependency arrow: {svg}");

        let csv = String::from_utf8(csv::write(&e.view).unwrap()).unwrap();
        assert_eq!(csv.lines().next(), Some(csv::COLUMNS.join(",").as_str()));
        assert!(csv.contains("Questionnaire & <review>"));
        assert_eq!(csv.lines().count(), 3);

        let xlsx = xlsx::workbook(&e).unwrap();
        assert!(xlsx.starts_with(b"PK"), "a zip file");

        let ics = ics::calendar(&e, None);
        assert!(ics.contains("BEGIN:VCALENDAR"));
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 3);
    }

    #[test]
    fn a_personal_calendar_keeps_only_their_tasks() {
        let e = export();
        let ana = e.view.people[0].id.clone();
        let ics = ics::calendar(&e, Some(&ana));
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
        assert!(ics.contains("Ana Buyer"));
    }

    #[test]
    fn an_undated_plan_has_no_chart() {
        let mut e = export();
        for t in &mut e.view.tasks {
            t.due = None;
        }
        for m in &mut e.view.milestones {
            m.due = None;
        }
        assert_eq!(gantt::svg(&e), None);
        assert!(html::page(&e).contains("Nothing in the plan has a date yet."));
    }

    #[test]
    fn errors_say_what_went_wrong() {
        let mut e = export();
        e.view.tasks[0].due = Some(day("1850-01-01"));
        let err = xlsx::workbook(&e).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot write the workbook: "),
            "{err}"
        );
        e.view.tasks[0].due = NaiveDate::from_ymd_opt(-5, 1, 1);
        let err = xlsx::workbook(&e).unwrap_err();
        assert_eq!(
            err.to_string(),
            "date -0005-01-01 cannot be written to a workbook"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html::esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
