//! Entity ids and their resolution from what a user types.
//!
//! Ids are 12 lowercase base32 characters (60 random bits). Users name an
//! entity by any unambiguous prefix of its id (like git), or for people by
//! their exact name or email, and for other entities by exact title
//! (case-insensitive).

use rand::Rng;

use crate::error::{Candidate, ModelError};
use crate::schema::EntityKind;

/// Length of an entity id.
pub const ID_LEN: usize = 12;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new random entity id.
pub fn new_id() -> String {
    let mut bits: u64 = rand::rng().random();
    let mut out = String::with_capacity(ID_LEN);
    for _ in 0..ID_LEN {
        out.push(ALPHABET[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    out
}

/// Whether `s` looks like an entity id made by [`new_id`].
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// One entity a query can match.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Entity id.
    pub id: &'a str,
    /// Title or name.
    pub label: &'a str,
    /// Other exact-match names (e.g. a person's email).
    pub aliases: &'a [&'a str],
}

/// The error for "nothing matches `query`" for a kind of entity.
pub fn not_found(kind: EntityKind, query: &str) -> ModelError {
    let q = query.to_string();
    match kind {
        EntityKind::Person => ModelError::UnknownPerson(q),
        EntityKind::Milestone => ModelError::UnknownMilestone(q),
        EntityKind::Task => ModelError::UnknownTask(q),
        EntityKind::Risk => ModelError::UnknownRisk(q),
        EntityKind::Header | EntityKind::Comment => ModelError::UnknownTarget(q),
    }
}

/// Resolve `query` against `entries`:
/// 1. an exact id wins;
/// 2. otherwise a unique id prefix;
/// 3. otherwise an exact, case-insensitive title/name/alias.
///
/// None matching gives the kind's `Unknown*` error, several give
/// [`ModelError::Ambiguous`] listing them.
pub fn resolve(kind: EntityKind, query: &str, entries: &[Entry<'_>]) -> Result<String, ModelError> {
    let q = query.trim();
    if q.is_empty() {
        return Err(not_found(kind, query));
    }
    if let Some(e) = entries.iter().find(|e| e.id == q) {
        return Ok(e.id.to_string());
    }
    let ql = q.to_lowercase();
    let by_prefix: Vec<&Entry<'_>> = entries.iter().filter(|e| e.id.starts_with(&ql)).collect();
    let matches: Vec<&Entry<'_>> = if by_prefix.is_empty() {
        entries
            .iter()
            .filter(|e| {
                e.label.trim().to_lowercase() == ql
                    || e.aliases
                        .iter()
                        .any(|a| !a.is_empty() && a.trim().to_lowercase() == ql)
            })
            .collect()
    } else {
        by_prefix
    };
    match matches.as_slice() {
        [] => Err(not_found(kind, query)),
        [one] => Ok(one.id.to_string()),
        many => {
            let mut candidates: Vec<Candidate> = many
                .iter()
                .map(|e| Candidate {
                    id: e.id.to_string(),
                    label: e.label.to_string(),
                })
                .collect();
            candidates.sort_by(|a, b| a.id.cmp(&b.id));
            Err(ModelError::Ambiguous {
                kind,
                query: query.to_string(),
                candidates,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_base32() {
        for _ in 0..100 {
            let id = new_id();
            assert!(is_id(&id), "{id}");
        }
        assert_ne!(new_id(), new_id());
    }

    fn entries() -> Vec<Entry<'static>> {
        vec![
            Entry {
                id: "abcdefghijkl",
                label: "Security review",
                aliases: &[],
            },
            Entry {
                id: "abzzzzzzzzzz",
                label: "Legal",
                aliases: &["ana@buyer.com"],
            },
            Entry {
                id: "qqqqqqqqqqqq",
                label: "Kickoff",
                aliases: &[],
            },
        ]
    }

    #[test]
    fn resolves_prefixes() {
        let e = entries();
        assert_eq!(
            resolve(EntityKind::Task, "abc", &e).unwrap(),
            "abcdefghijkl"
        );
        assert_eq!(resolve(EntityKind::Task, "q", &e).unwrap(), "qqqqqqqqqqqq");
        assert_eq!(
            resolve(EntityKind::Task, "kickoff", &e).unwrap(),
            "qqqqqqqqqqqq"
        );
        assert_eq!(
            resolve(EntityKind::Person, "ANA@buyer.com", &e).unwrap(),
            "abzzzzzzzzzz"
        );
        match resolve(EntityKind::Task, "ab", &e) {
            Err(ModelError::Ambiguous { candidates, .. }) => assert_eq!(candidates.len(), 2),
            other => panic!("{other:?}"),
        }
        let err = resolve(EntityKind::Person, "bob", &e).unwrap_err();
        assert!(matches!(err, ModelError::UnknownPerson(_)));
        assert!(err.to_string().contains("map person add"));
    }
}
