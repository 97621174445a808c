//! Verified authorship for `map log --verified`: each change's *claimed*
//! author (the `Name <email>` its writer put into the change, which anyone
//! can write) beside the relay user whose authenticated connection first
//! delivered it (the relay's delivery records, `GET /v1/plans/{id}/deliveries`),
//! and a verdict.
//!
//! # The rule
//!
//! A change claiming identity X (name, email) and first delivered by relay
//! user U is:
//!
//! - `verified` when U *is* X: U's relay user name equals X's name, or U's
//!   email equals X's email (trimmed, case-insensitive). The relay user's
//!   name and email are the ones given at `map join` (or the name of
//!   `map-relay user add`).
//! - `relayed` when U is *linked* to X: U delivered the first change
//!   claiming X that reached the relay (in the relay's storage order). This
//!   is a participant relaying on X's behalf, e.g. X's changes reached U by
//!   another path before X ever synced with this relay.
//! - `flagged` otherwise: U claimed to be someone U is neither nor relays
//!   for (a forged author, or a stolen token).
//! - `unconfirmed` when the relay has no record of the change (not synced
//!   yet, or delivered before the relay kept records), `unclaimed` when the
//!   change names no author.
//!
//! The relay records the FIRST delivery of each change only: a change that
//! another participant synced later is still attributed to whoever
//! delivered it first.
//!
//! Limits: names and emails are chosen by the invitee when redeeming an
//! invite, so a name match is only as good as the invitations; and the
//! first delivery of a not-yet-seen identity links it to its deliverer
//! (trust on first use). What the rule guarantees: once X's changes have
//! reached the relay through X (or X's relaying participant), changes
//! claiming X from anyone else are flagged.

use std::collections::HashMap;

use serde::Serialize;

use crate::net::api::Delivery;

/// The verdict on one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Delivered by the claimed author.
    Verified,
    /// Delivered by the participant linked to the claimed author.
    Relayed,
    /// Delivered by someone who is neither the claimed author nor linked.
    Flagged,
    /// The relay has no record of this change.
    Unconfirmed,
    /// The change names no author.
    Unclaimed,
}

impl Status {
    /// The word shown in the text log.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Verified => "verified",
            Status::Relayed => "relayed",
            Status::Flagged => "FLAGGED",
            Status::Unconfirmed => "unconfirmed",
            Status::Unclaimed => "unclaimed",
        }
    }
}

/// What the relay says about one change, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The relay user who first delivered the change, if recorded.
    pub deliverer: Option<String>,
    /// When the relay stored it (ms), if recorded.
    pub delivered_at: Option<i64>,
    /// The verdict.
    pub status: Status,
}

/// `Name <email>` split into its lower-cased, trimmed parts. Text without
/// the `<...>` part is all name.
fn identity_of(author: &str) -> (String, Option<String>) {
    let author = author.trim();
    if let Some(stripped) = author.strip_suffix('>')
        && let Some((name, email)) = stripped.rsplit_once('<')
    {
        let email = email.trim().to_lowercase();
        return (
            name.trim().to_lowercase(),
            Some(email).filter(|e| !e.is_empty()),
        );
    }
    (author.to_lowercase(), None)
}

/// Whether relay user `d` is the person `author` claims to be.
fn is_author(d: &Delivery, author: &(String, Option<String>)) -> bool {
    let (name, email) = author;
    let user = d.user.trim().to_lowercase();
    let user_email = d
        .email
        .as_deref()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty());
    (!name.is_empty() && user == *name) || (email.is_some() && user_email == *email)
}

/// Verdicts for `changes` (hex hash, claimed author) given the relay's
/// `deliveries` (in relay order). Every change gets a verdict.
pub fn classify(changes: &[(String, Option<String>)], deliveries: &[Delivery]) -> Vec<Verdict> {
    let claimed: HashMap<&str, (String, Option<String>)> = changes
        .iter()
        .filter_map(|(hash, author)| Some((hash.as_str(), identity_of(author.as_deref()?))))
        .collect();
    // The first deliverer of each claimed identity (trust on first use).
    let mut linked: HashMap<&(String, Option<String>), &str> = HashMap::new();
    let mut delivered: HashMap<&str, &Delivery> = HashMap::new();
    for d in deliveries {
        delivered.entry(d.hash.as_str()).or_insert(d);
        if let Some(identity) = claimed.get(d.hash.as_str()) {
            linked.entry(identity).or_insert(d.user.as_str());
        }
    }
    changes
        .iter()
        .map(|(hash, _)| {
            let d = delivered.get(hash.as_str());
            let status = match (claimed.get(hash.as_str()), d) {
                (None, _) => Status::Unclaimed,
                (Some(_), None) => Status::Unconfirmed,
                (Some(identity), Some(d)) => {
                    if is_author(d, identity) {
                        Status::Verified
                    } else if linked.get(identity) == Some(&d.user.as_str()) {
                        Status::Relayed
                    } else {
                        Status::Flagged
                    }
                }
            };
            Verdict {
                deliverer: d.map(|d| d.user.clone()),
                delivered_at: d.map(|d| d.at),
                status,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(hash: &str, user: &str, email: Option<&str>) -> Delivery {
        Delivery {
            hash: hash.into(),
            user: user.into(),
            email: email.map(Into::into),
            at: 1,
        }
    }

    fn change(hash: &str, author: Option<&str>) -> (String, Option<String>) {
        (hash.into(), author.map(Into::into))
    }

    #[test]
    fn identities_parse() {
        assert_eq!(
            identity_of(" Dana Smith <Dana@Example.com> "),
            ("dana smith".into(), Some("dana@example.com".into()))
        );
        assert_eq!(identity_of("Dana <>"), ("dana".into(), None));
        assert_eq!(identity_of("abc123"), ("abc123".into(), None));
    }

    #[test]
    fn verdicts() {
        let changes = [
            change("a", Some("Dana <dana@example.com>")),
            change("b", Some("Ana <ana@example.com>")),
            change("c", Some("Dana <dana@example.com>")),
            change("d", Some("Eve <eve@example.com>")),
            change("e", Some("Eve <eve@example.com>")),
            change("f", None),
            change("g", Some("Ana <ana@example.com>")),
            change("h", Some("Bo <bo@example.com>")),
        ];
        let deliveries = [
            // Matched by name (case-insensitive).
            delivery("a", "dana", None),
            // Matched by email (the relay suffixed the name).
            delivery("b", "Ana-2", Some("ANA@example.com")),
            // Ana claims to be Dana: flagged.
            delivery("c", "Ana-2", Some("ana@example.com")),
            // Dana relays Eve's changes (Eve never synced): linked.
            delivery("d", "dana", None),
            delivery("e", "dana", None),
            delivery("f", "dana", None),
            // A later claim of Eve by someone else would be flagged; and a
            // duplicate record never overrides the first.
            delivery("a", "Ana-2", None),
        ];
        let got: Vec<Status> = classify(&changes, &deliveries)
            .iter()
            .map(|v| v.status)
            .collect();
        assert_eq!(
            got,
            [
                Status::Verified,
                Status::Verified,
                Status::Flagged,
                Status::Relayed,
                Status::Relayed,
                Status::Unclaimed,
                Status::Unconfirmed,
                Status::Unconfirmed,
            ]
        );
        let v = classify(&changes, &deliveries);
        assert_eq!(v[0].deliverer.as_deref(), Some("dana"));
        assert_eq!(v[6].deliverer, None);
    }
}
