//! Task filters in the style of taskwarrior: `owner:bob status:open
//! due.before:eow side:buyer milestone:sec overdue security`.
//!
//! A filter is a list of terms that must all match (AND). A `field:value`
//! term tests one field; `|` inside a value means "any of"
//! (`status:todo|blocked`). Bare words must all appear in the title
//! (case-insensitive). `overdue`, `+overdue`, `+blocked` and `+ready` test
//! derived flags.
//!
//! Filters match a [`TaskFacts`], a borrowed summary of one task that the
//! caller builds from whatever view it holds, so this module depends on no
//! storage or document type.

use chrono::NaiveDate;

use crate::dates::{DateError, parse_date};

/// Fields a filter can test, for error messages.
pub const FIELDS: &str =
    "owner, status, due, due.before, due.after, side, milestone, kind, priority";

/// The statuses `status:` accepts, besides the group `open`.
pub const STATUSES: &str = "open, todo, in_progress (or started), blocked, done, dropped, closed";

/// What a filter needs to know about a task.
#[derive(Debug, Clone, Default)]
pub struct TaskFacts<'a> {
    /// Entity id of the task.
    pub id: &'a str,
    /// Title.
    pub title: &'a str,
    /// `todo`, `in_progress`, `blocked`, `done` or `dropped`.
    pub status: &'a str,
    /// Owner's person id, if any.
    pub owner_id: Option<&'a str>,
    /// Owner's display name, if any.
    pub owner_name: Option<&'a str>,
    /// Owner's side (`seller`, `buyer`, `other`), if any.
    pub owner_side: Option<&'a str>,
    /// Milestone id, if any.
    pub milestone_id: Option<&'a str>,
    /// Milestone title, if any.
    pub milestone_title: Option<&'a str>,
    /// Due date, if any.
    pub due: Option<NaiveDate>,
    /// `task`, `meeting` or `approval`.
    pub kind: &'a str,
    /// `low`, `medium` or `high`.
    pub priority: &'a str,
    /// Past due and not finished.
    pub overdue: bool,
    /// Waiting on an unfinished dependency, or explicitly blocked.
    pub blocked: bool,
}

/// A term of the filter that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// `foo:bar` with an unknown field.
    #[error("unknown filter field '{field}' in '{term}'; known fields: {FIELDS}")]
    UnknownField {
        /// The whole term.
        term: String,
        /// The field name.
        field: String,
    },
    /// A field with an empty value, like `owner:`.
    #[error("filter term '{term}' has no value")]
    EmptyValue {
        /// The whole term.
        term: String,
    },
    /// A value the field does not accept.
    #[error("invalid value '{value}' in filter term '{term}'; expected one of: {expected}")]
    BadValue {
        /// The whole term.
        term: String,
        /// The offending value.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A date that does not parse.
    #[error("invalid date in filter term '{term}': {source}")]
    BadDate {
        /// The whole term.
        term: String,
        /// Why the date failed.
        source: DateError,
    },
    /// `+tag` with an unknown tag.
    #[error("unknown tag '{term}'; known tags: +overdue, +blocked, +ready")]
    UnknownTag {
        /// The whole term.
        term: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Owner(Vec<String>),
    Status(Vec<StatusSet>),
    DueOn(NaiveDate),
    DueBefore(NaiveDate),
    DueAfter(NaiveDate),
    Side(Vec<String>),
    Milestone(Vec<String>),
    Kind(Vec<String>),
    Priority(Vec<String>),
    Overdue,
    Blocked,
    Ready,
    Word(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusSet {
    Open,
    Closed,
    Exact(&'static str),
}

/// A parsed filter: every term must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
}

impl Filter {
    /// Parse filter words (as given on the command line) relative to `today`.
    pub fn parse<S: AsRef<str>>(words: &[S], today: NaiveDate) -> Result<Filter, FilterError> {
        let mut terms = Vec::new();
        for word in words {
            for raw in word.as_ref().split_whitespace() {
                terms.push(parse_term(raw, today)?);
            }
        }
        Ok(Filter { terms })
    }

    /// True when the filter has no terms and so matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `task` passes every term.
    pub fn matches(&self, task: &TaskFacts<'_>) -> bool {
        self.terms.iter().all(|t| term_matches(t, task))
    }
}

fn values(term: &str, value: &str) -> Result<Vec<String>, FilterError> {
    let vals: Vec<String> = value
        .split('|')
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    if vals.is_empty() {
        return Err(FilterError::EmptyValue {
            term: term.to_string(),
        });
    }
    Ok(vals)
}

fn check_allowed(
    term: &str,
    vals: &[String],
    allowed: &[&str],
    expected: &'static str,
) -> Result<(), FilterError> {
    for v in vals {
        if !allowed.contains(&v.as_str()) {
            return Err(FilterError::BadValue {
                term: term.to_string(),
                value: v.clone(),
                expected,
            });
        }
    }
    Ok(())
}

fn parse_term(raw: &str, today: NaiveDate) -> Result<Term, FilterError> {
    let lower = raw.to_lowercase();
    if lower == "overdue" || lower == "+overdue" {
        return Ok(Term::Overdue);
    }
    if let Some(tag) = lower.strip_prefix('+') {
        return match tag {
            "blocked" => Ok(Term::Blocked),
            "ready" => Ok(Term::Ready),
            _ => Err(FilterError::UnknownTag {
                term: raw.to_string(),
            }),
        };
    }
    let Some((field, value)) = raw.split_once(':') else {
        return Ok(Term::Word(lower));
    };
    let field_l = field.to_lowercase();
    let date = |v: &str| {
        if v.trim().is_empty() {
            return Err(FilterError::EmptyValue {
                term: raw.to_string(),
            });
        }
        parse_date(v, today).map_err(|source| FilterError::BadDate {
            term: raw.to_string(),
            source,
        })
    };
    Ok(match field_l.as_str() {
        "owner" | "o" => Term::Owner(values(raw, value)?),
        "status" | "s" => {
            let mut sets = Vec::new();
            for v in values(raw, value)? {
                sets.push(match v.as_str() {
                    "open" | "pending" => StatusSet::Open,
                    "closed" | "finished" => StatusSet::Closed,
                    "todo" => StatusSet::Exact("todo"),
                    "in_progress" | "in-progress" | "started" | "doing" | "progress" => {
                        StatusSet::Exact("in_progress")
                    }
                    "blocked" => StatusSet::Exact("blocked"),
                    "done" | "completed" => StatusSet::Exact("done"),
                    "dropped" => StatusSet::Exact("dropped"),
                    _ => {
                        return Err(FilterError::BadValue {
                            term: raw.to_string(),
                            value: v,
                            expected: STATUSES,
                        });
                    }
                });
            }
            Term::Status(sets)
        }
        "due" => Term::DueOn(date(value)?),
        "due.before" | "due.by" | "due.until" => Term::DueBefore(date(value)?),
        "due.after" => Term::DueAfter(date(value)?),
        "side" => {
            let vals = values(raw, value)?;
            check_allowed(
                raw,
                &vals,
                &["seller", "buyer", "other"],
                "seller, buyer, other",
            )?;
            Term::Side(vals)
        }
        "milestone" | "ms" | "m" => Term::Milestone(values(raw, value)?),
        "kind" => {
            let vals = values(raw, value)?;
            check_allowed(
                raw,
                &vals,
                &["task", "meeting", "approval"],
                "task, meeting, approval",
            )?;
            Term::Kind(vals)
        }
        "priority" | "pri" => {
            let vals = values(raw, value)?;
            let vals = vals
                .into_iter()
                .map(|v| match v.as_str() {
                    "l" => "low".to_string(),
                    "m" | "med" => "medium".to_string(),
                    "h" => "high".to_string(),
                    _ => v,
                })
                .collect::<Vec<_>>();
            check_allowed(raw, &vals, &["low", "medium", "high"], "low, medium, high")?;
            Term::Priority(vals)
        }
        _ => {
            return Err(FilterError::UnknownField {
                term: raw.to_string(),
                field: field.to_string(),
            });
        }
    })
}

fn is_closed(status: &str) -> bool {
    status == "done" || status == "dropped"
}

fn term_matches(term: &Term, t: &TaskFacts<'_>) -> bool {
    match term {
        Term::Owner(vals) => vals.iter().any(|v| {
            t.owner_id.is_some_and(|id| id.starts_with(v.as_str()))
                || t.owner_name.is_some_and(|name| {
                    let name = name.to_lowercase();
                    name == *v
                        || name.starts_with(v.as_str())
                        || name.split_whitespace().any(|part| part == v)
                })
        }),
        Term::Status(sets) => sets.iter().any(|s| match s {
            StatusSet::Open => !is_closed(t.status),
            StatusSet::Closed => is_closed(t.status),
            StatusSet::Exact(x) => t.status == *x,
        }),
        Term::DueOn(d) => t.due == Some(*d),
        Term::DueBefore(d) => t.due.is_some_and(|due| due < *d),
        Term::DueAfter(d) => t.due.is_some_and(|due| due > *d),
        Term::Side(vals) => t
            .owner_side
            .is_some_and(|s| vals.iter().any(|v| v == &s.to_lowercase())),
        Term::Milestone(vals) => vals.iter().any(|v| {
            t.milestone_id.is_some_and(|id| id.starts_with(v.as_str()))
                || t.milestone_title
                    .is_some_and(|title| title.to_lowercase().starts_with(v.as_str()))
        }),
        Term::Kind(vals) => vals.iter().any(|v| v == t.kind),
        Term::Priority(vals) => vals.iter().any(|v| v == t.priority),
        Term::Overdue => t.overdue,
        Term::Blocked => t.blocked,
        Term::Ready => !t.blocked && !is_closed(t.status),
        Term::Word(w) => t.title.to_lowercase().contains(w.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()
    }

    fn f(s: &str) -> Filter {
        let words: Vec<&str> = s.split(' ').collect();
        Filter::parse(&words, today()).unwrap()
    }

    fn err(s: &str) -> FilterError {
        let words: Vec<&str> = s.split(' ').collect();
        Filter::parse(&words, today()).unwrap_err()
    }

    fn task() -> TaskFacts<'static> {
        TaskFacts {
            id: "abcdefghijkl",
            title: "Security review of the platform",
            status: "todo",
            owner_id: Some("p1p1p1p1p1p1"),
            owner_name: Some("Bob Smith"),
            owner_side: Some("buyer"),
            milestone_id: Some("m1m1m1m1m1m1"),
            milestone_title: Some("Security"),
            due: NaiveDate::from_ymd_opt(2026, 12, 10),
            kind: "approval",
            priority: "high",
            overdue: false,
            blocked: false,
        }
    }

    #[test]
    fn empty_filter_matches_all() {
        let filter = Filter::parse::<&str>(&[], today()).unwrap();
        assert!(filter.is_empty());
        assert!(filter.matches(&task()));
    }

    #[test]
    fn fields() {
        let t = task();
        assert!(f("owner:bob").matches(&t));
        assert!(f("owner:smith").matches(&t));
        assert!(f("owner:p1p1").matches(&t));
        assert!(!f("owner:alice").matches(&t));
        assert!(f("owner:alice|bob").matches(&t));
        assert!(f("status:open").matches(&t));
        assert!(f("status:todo|blocked").matches(&t));
        assert!(!f("status:done").matches(&t));
        assert!(!f("status:closed").matches(&t));
        assert!(f("side:buyer").matches(&t));
        assert!(!f("side:seller").matches(&t));
        assert!(f("milestone:sec").matches(&t));
        assert!(f("milestone:m1m1").matches(&t));
        assert!(!f("milestone:legal").matches(&t));
        assert!(f("kind:approval").matches(&t));
        assert!(f("priority:h").matches(&t));
        assert!(!f("priority:low").matches(&t));
    }

    #[test]
    fn dates() {
        let t = task();
        assert!(f("due.before:eom").matches(&t));
        assert!(!f("due.before:eow").matches(&t));
        assert!(f("due.after:eow").matches(&t));
        assert!(f("due:2026-12-10").matches(&t));
        let mut no_due = task();
        no_due.due = None;
        assert!(!f("due.before:eoy").matches(&no_due));
    }

    #[test]
    fn words_and_tags() {
        let mut t = task();
        assert!(f("security PLATFORM").matches(&t));
        assert!(!f("security legal").matches(&t));
        assert!(!f("overdue").matches(&t));
        assert!(f("+ready").matches(&t));
        t.overdue = true;
        t.blocked = true;
        assert!(f("overdue").matches(&t));
        assert!(f("+blocked").matches(&t));
        assert!(!f("+ready").matches(&t));
        assert!(f("owner:bob status:open overdue security").matches(&t));
    }

    #[test]
    fn errors_name_the_term() {
        let e = err("owner:bob colour:red").to_string();
        assert!(e.contains("'colour:red'"), "{e}");
        assert!(e.contains("known fields"), "{e}");
        let e = err("status:later").to_string();
        assert!(e.contains("'later'") && e.contains("status:later"), "{e}");
        let e = err("due.before:someday").to_string();
        assert!(e.contains("due.before:someday") && e.contains("eow"), "{e}");
        assert!(matches!(err("owner:"), FilterError::EmptyValue { .. }));
        assert!(matches!(err("+urgent"), FilterError::UnknownTag { .. }));
        assert!(matches!(err("side:vendor"), FilterError::BadValue { .. }));
    }
}
