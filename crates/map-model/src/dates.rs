//! Human date expressions, resolved against a given `today`.
//!
//! The CLI accepts the same named dates and durations people know from
//! taskwarrior, so `map task add "Send MSA" --due fri` does what it says.
//! Nothing here reads the clock: the caller passes `today`.
//!
//! Accepted forms (case-insensitive):
//!
//! | form | meaning |
//! |---|---|
//! | `2026-12-24` | that date (ISO 8601) |
//! | `today`, `tomorrow`, `yesterday` | relative days |
//! | `mon` .. `sun`, `monday` .. `sunday` | the next such day, never today |
//! | `next friday` | same as `friday` |
//! | `+3d`, `3d`, `-1d`, `+2w`, `+1m`, `+1y` | days, weeks, months, years from today |
//! | `eow` | end of the business week: the next Friday, today if today is Friday |
//! | `eom`, `eoq`, `eoy` | last day of this month, quarter, year |
//!
//! `eow` is deliberately Friday, not taskwarrior's Sunday: a Mutual Action
//! Plan is about business days, and "due by end of week" means Friday to both
//! sides of a deal.

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

/// The accepted forms, shown in every error message.
pub const ACCEPTED_FORMS: &str = "YYYY-MM-DD, today, tomorrow, yesterday, mon..sun, \
next <weekday>, +3d, 3d, -1d, +2w, +1m, +1y, eow, eom, eoq, eoy";

/// A date expression that could not be understood (or leaves the calendar).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date '{input}': expected one of {ACCEPTED_FORMS}")]
pub struct DateError {
    /// What the user typed.
    pub input: String,
}

/// Parse `input` relative to `today`.
pub fn parse_date(input: &str, today: NaiveDate) -> Result<NaiveDate, DateError> {
    let err = || DateError {
        input: input.to_string(),
    };
    let s = input.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Err(err());
    }
    if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        // Reject forms like "2026-1-5" that chrono tolerates: keep ISO strict.
        if s.len() == 10 {
            return Ok(d);
        }
        return Err(err());
    }
    match s.as_str() {
        "today" | "now" => return Ok(today),
        "tomorrow" => return today.checked_add_days(Days::new(1)).ok_or_else(err),
        "yesterday" => return today.checked_sub_days(Days::new(1)).ok_or_else(err),
        "eow" => return Ok(next_or_same(today, Weekday::Fri)),
        "eom" => return end_of_month(today.year(), today.month()).ok_or_else(err),
        "eoq" => {
            let last_month = (today.month0() / 3) * 3 + 3;
            return end_of_month(today.year(), last_month).ok_or_else(err);
        }
        "eoy" => return NaiveDate::from_ymd_opt(today.year(), 12, 31).ok_or_else(err),
        _ => {}
    }
    let weekday_part = s
        .strip_prefix("next")
        .map(str::trim_start)
        .filter(|rest| !rest.is_empty())
        .unwrap_or(&s);
    if let Some(wd) = weekday(weekday_part) {
        return Ok(next_after(today, wd));
    }
    parse_offset(&s, today).ok_or_else(err)
}

/// Format a date the way the plan stores it (`YYYY-MM-DD`).
pub fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tues" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// The first `wd` strictly after `today`.
fn next_after(today: NaiveDate, wd: Weekday) -> NaiveDate {
    let from = today.weekday().num_days_from_monday() as i64;
    let to = wd.num_days_from_monday() as i64;
    let mut delta = (to - from).rem_euclid(7);
    if delta == 0 {
        delta = 7;
    }
    today + chrono::Duration::days(delta)
}

/// The first `wd` on or after `today`.
fn next_or_same(today: NaiveDate, wd: Weekday) -> NaiveDate {
    if today.weekday() == wd {
        today
    } else {
        next_after(today, wd)
    }
}

fn end_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    first.checked_add_months(Months::new(1))?.pred_opt()
}

/// `+3d`, `3d`, `-1d`, `+2w`, `+1m`, `+1y`.
fn parse_offset(s: &str, today: NaiveDate) -> Option<NaiveDate> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let unit_at = rest.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = rest.split_at(unit_at);
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    match unit {
        "d" | "day" | "days" => shift_days(today, u64::from(n), negative),
        "w" | "wk" | "week" | "weeks" => shift_days(today, u64::from(n) * 7, negative),
        "m" | "mo" | "month" | "months" => shift_months(today, n, negative),
        "y" | "year" | "years" => shift_months(today, n.checked_mul(12)?, negative),
        _ => None,
    }
}

fn shift_days(today: NaiveDate, n: u64, negative: bool) -> Option<NaiveDate> {
    if negative {
        today.checked_sub_days(Days::new(n))
    } else {
        today.checked_add_days(Days::new(n))
    }
}

fn shift_months(today: NaiveDate, n: u32, negative: bool) -> Option<NaiveDate> {
    if negative {
        today.checked_sub_months(Months::new(n))
    } else {
        today.checked_add_months(Months::new(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    // 2026-12-04 is a Friday.
    const TODAY: &str = "2026-12-04";

    fn p(s: &str) -> Result<NaiveDate, DateError> {
        parse_date(s, d(TODAY))
    }

    #[test]
    fn iso_dates() {
        assert_eq!(p("2026-12-24"), Ok(d("2026-12-24")));
        assert_eq!(p(" 2027-01-01 "), Ok(d("2027-01-01")));
        assert!(p("2026-13-01").is_err());
        assert!(p("2026-2-30").is_err());
        assert!(p("2026-1-5").is_err());
    }

    #[test]
    fn named_days() {
        assert_eq!(p("today"), Ok(d("2026-12-04")));
        assert_eq!(p("Tomorrow"), Ok(d("2026-12-05")));
        assert_eq!(p("yesterday"), Ok(d("2026-12-03")));
    }

    #[test]
    fn weekdays_are_never_today() {
        assert_eq!(p("fri"), Ok(d("2026-12-11")));
        assert_eq!(p("friday"), Ok(d("2026-12-11")));
        assert_eq!(p("next friday"), Ok(d("2026-12-11")));
        assert_eq!(p("mon"), Ok(d("2026-12-07")));
        assert_eq!(p("thursday"), Ok(d("2026-12-10")));
        assert_eq!(p("sat"), Ok(d("2026-12-05")));
        assert_eq!(p("next  sun"), Ok(d("2026-12-06")));
    }

    #[test]
    fn offsets() {
        assert_eq!(p("+3d"), Ok(d("2026-12-07")));
        assert_eq!(p("3d"), Ok(d("2026-12-07")));
        assert_eq!(p("-1d"), Ok(d("2026-12-03")));
        assert_eq!(p("+2w"), Ok(d("2026-12-18")));
        assert_eq!(p("+1m"), Ok(d("2027-01-04")));
        assert_eq!(p("+1y"), Ok(d("2027-12-04")));
        assert_eq!(p("+0d"), Ok(d(TODAY)));
        assert!(p("+d").is_err());
        assert!(p("+3x").is_err());
        assert!(p("+99999999d").is_err());
    }

    #[test]
    fn ends_of_periods() {
        assert_eq!(
            p("eow"),
            Ok(d("2026-12-04")),
            "Friday is its own end of week"
        );
        assert_eq!(
            parse_date("eow", d("2026-12-05")),
            Ok(d("2026-12-11")),
            "Saturday rolls to next Friday"
        );
        assert_eq!(parse_date("eow", d("2026-11-30")), Ok(d("2026-12-04")));
        assert_eq!(p("eom"), Ok(d("2026-12-31")));
        assert_eq!(parse_date("eom", d("2028-02-10")), Ok(d("2028-02-29")));
        assert_eq!(p("eoq"), Ok(d("2026-12-31")));
        assert_eq!(parse_date("eoq", d("2026-05-10")), Ok(d("2026-06-30")));
        assert_eq!(parse_date("eoq", d("2026-01-01")), Ok(d("2026-03-31")));
        assert_eq!(p("eoy"), Ok(d("2026-12-31")));
    }

    #[test]
    fn errors_list_accepted_forms() {
        let e = p("someday").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("'someday'"), "{msg}");
        assert!(msg.contains("eow"), "{msg}");
        assert!(msg.contains("YYYY-MM-DD"), "{msg}");
        assert!(p("").is_err());
        assert!(p("next").is_err());
    }

    #[test]
    fn format_round_trip() {
        assert_eq!(format_date(d("2026-01-05")), "2026-01-05");
    }
}
