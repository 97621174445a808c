//! The iCalendar export (RFC 5545, written with the `icalendar` crate): the
//! due date of every live task (dropped ones left out) and milestone as an
//! all-day event. UIDs are stable per item and plan
//! (`task-ID.PLAN@map`), so re-importing an updated export into a calendar
//! moves the events instead of duplicating them. Given an owner, only that
//! person's tasks are included: a personal calendar.

use chrono::Duration;
use icalendar::{Calendar, Component, EventLike};
use map_model::schema::TaskStatus;

use crate::Export;

/// The calendar; `owner` (a person id) keeps only their tasks.
pub fn calendar(e: &Export, owner: Option<&str>) -> String {
    let view = &e.view;
    let title = view.header.title.trim();
    let stamp = chrono::DateTime::from_timestamp_millis(e.now_ms).unwrap_or_default();
    let mut cal = Calendar::empty();
    cal.append_property(icalendar::Property::new("VERSION", "2.0"));
    cal.append_property(icalendar::Property::new(
        "PRODID",
        "-//map//Mutual Action Plan//EN",
    ));
    cal.append_property(icalendar::Property::new("CALSCALE", "GREGORIAN"));
    let name = match owner.and_then(|o| view.person(o)) {
        Some(p) => format!("{title} — {}", p.name),
        None => title.to_string(),
    };
    cal.name(&name);
    if owner.is_none() {
        for m in &view.milestones {
            let Some(due) = m.due else { continue };
            let desc = format!(
                "Milestone of {title}\nProgress: {}% ({}/{} tasks done)",
                m.progress.percent, m.progress.done, m.progress.total
            );
            let ev = icalendar::Event::new()
                .uid(&format!("milestone-{}.{}@map", m.id, e.id))
                .timestamp(stamp)
                .summary(&format!("Milestone: {}", m.title))
                .description(&desc)
                .starts(due)
                .ends(due + Duration::days(1))
                .done();
            cal.push(ev);
        }
    }
    for t in &view.tasks {
        let Some(due) = t.due else { continue };
        if t.status == TaskStatus::Dropped {
            continue;
        }
        if let Some(o) = owner
            && t.owner.as_deref() != Some(o)
        {
            continue;
        }
        let mut desc = Vec::new();
        if let Some(n) = &t.owner_name {
            match t.owner_side {
                Some(s) => desc.push(format!("Owner: {n} ({s})")),
                None => desc.push(format!("Owner: {n}")),
            }
        }
        let mut status = format!("Status: {}", t.status.as_str().replace('_', " "));
        if t.overdue {
            status += " (overdue)";
        }
        desc.push(status);
        if let Some(m) = &t.milestone_title {
            desc.push(format!("Milestone: {m}"));
        }
        desc.push(format!("Plan: {title}"));
        if !t.description.trim().is_empty() {
            desc.push(String::new());
            desc.push(t.description.trim().to_string());
        }
        let summary = if t.status == TaskStatus::Done {
            format!("{} (done)", t.title)
        } else {
            t.title.clone()
        };
        let ev = icalendar::Event::new()
            .uid(&format!("task-{}.{}@map", t.id, e.id))
            .timestamp(stamp)
            .summary(&summary)
            .description(&desc.join("\n"))
            .starts(due)
            .ends(due + Duration::days(1))
            .done();
        cal.push(ev);
    }
    cal.done().to_string()
}
