//! Plain-text labels shared by the exporters and the CLI's terminal output:
//! dates, change times and authors, progress bars and task owners.

use chrono::NaiveDate;
use map_model::view::TaskView;

/// `YYYY-MM-DD`, or empty.
pub fn date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A change time (ms) as `YYYY-MM-DD HH:MM` UTC.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".to_string())
}

/// The author's name without the `<email>` part.
pub fn author_name(author: Option<&str>) -> String {
    let a = author.unwrap_or("unknown");
    match a.split_once(" <") {
        Some((name, _)) => name.trim().to_string(),
        None => a.trim().to_string(),
    }
}

/// A text progress bar: `[██████░░░░]`.
pub fn bar(percent: u8) -> String {
    let filled = usize::from(percent.min(100)).div_ceil(10);
    let filled = if percent < 100 { filled.min(9) } else { 10 };
    let filled = if percent == 0 { 0 } else { filled.max(1) };
    format!("[{}{}]", "█".repeat(filled), "░".repeat(10 - filled))
}

/// The owner's name, with their side unless the name already says it.
pub fn owner_label(task: &TaskView) -> String {
    match (&task.owner_name, task.owner_side) {
        (Some(n), Some(s)) if !n.contains(&format!("({s})")) => format!("{n} ({s})"),
        (Some(n), _) => n.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars() {
        assert_eq!(bar(0), "[░░░░░░░░░░]");
        assert_eq!(bar(60), "[██████░░░░]");
        assert_eq!(bar(5), "[█░░░░░░░░░]");
        assert_eq!(bar(99), "[█████████░]");
        assert_eq!(bar(100), "[██████████]");
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date(None), "");
        assert_eq!(date(NaiveDate::from_ymd_opt(2027, 3, 1)), "2027-03-01");
        assert_eq!(when(0), "1970-01-01 00:00");
        assert_eq!(when(i64::MAX), "?");
    }

    #[test]
    fn authors() {
        assert_eq!(
            author_name(Some("Dana Seller <dana@vendor.example>")),
            "Dana Seller"
        );
        assert_eq!(author_name(Some(" Ana ")), "Ana");
        assert_eq!(author_name(None), "unknown");
    }
}
