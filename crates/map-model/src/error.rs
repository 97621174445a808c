//! Errors of the plan model.
//!
//! Every message says what went wrong and, where the user can do something
//! about it, what to do next (the CLI prints them as they are).

use crate::schema::EntityKind;

/// A candidate listed by an ambiguous prefix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    /// Full entity id.
    pub id: String,
    /// Title or name, to help the user pick.
    pub label: String,
}

fn list_candidates(c: &[Candidate]) -> String {
    c.iter()
        .map(|c| format!("  {}  {}", c.id, c.label))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Errors returned by the plan model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The document was written by a newer version of `map`.
    #[error(
        "this plan was made by a newer map (schema {found}, this map reads up to {supported}); upgrade map to open it"
    )]
    NewerSchema {
        /// Schema version found in the document.
        found: u64,
        /// Highest schema version this build reads.
        supported: u64,
    },
    /// The document is not a plan (or is malformed beyond use).
    #[error("this document is not a map plan: {0}")]
    NotAPlan(String),
    /// Automerge refused an operation or could not load bytes.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// A title or name was empty.
    #[error("the {0} must not be empty; give a non-empty value")]
    Empty(&'static str),
    /// No person matched.
    #[error(
        "no person matches '{0}'; add them with `map person add`, or list people with `map person list`"
    )]
    UnknownPerson(String),
    /// No milestone matched.
    #[error(
        "no milestone matches '{0}'; add it with `map milestone add`, or list milestones with `map milestone list`"
    )]
    UnknownMilestone(String),
    /// No task matched.
    #[error("no task matches '{0}'; list tasks with `map task list`")]
    UnknownTask(String),
    /// No risk matched.
    #[error("no risk matches '{0}'; list risks with `map risk list`")]
    UnknownRisk(String),
    /// No task, milestone or risk matched a comment target.
    #[error("nothing to comment on matches '{0}'; give a task, milestone or risk id")]
    UnknownTarget(String),
    /// A prefix matched several entities.
    #[error("'{query}' matches several {kind}s; give more characters of the id:\n{}", list_candidates(.candidates))]
    Ambiguous {
        /// Kind of entity searched.
        kind: EntityKind,
        /// What the user typed.
        query: String,
        /// The matching entities.
        candidates: Vec<Candidate>,
    },
    /// The entity is soft-deleted.
    #[error("{kind} '{title}' ({id}) is deleted; restore it with `map {kind} restore {id}` first")]
    Deleted {
        /// Kind of entity.
        kind: EntityKind,
        /// Its id.
        id: String,
        /// Its title.
        title: String,
    },
    /// A dependency would create a cycle.
    #[error("that dependency would create a cycle: {}; remove one of these dependencies first", .path.join(" -> "))]
    Cycle {
        /// The cycle, as `title (id)` strings, starting and ending at the same task.
        path: Vec<String>,
    },
    /// A task cannot depend on itself.
    #[error("task '{0}' cannot depend on itself")]
    SelfDependency(String),
    /// A value is not acceptable for a field.
    #[error("invalid {field} '{value}'; expected {expected}")]
    InvalidValue {
        /// Field name.
        field: &'static str,
        /// Value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A document id could not be parsed.
    #[error("invalid document id '{0}': expected a base58check id or an `automerge:` URL")]
    InvalidDocumentId(String),
}

/// Result alias for the model.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
