//! The change history of a plan: who changed what, when, newest first.
//!
//! Author, time and message are claimed by the writer (Automerge does not
//! verify them); the actor id is what Automerge guarantees.

use automerge::Automerge;
use serde::{Deserialize, Serialize};

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Change hash (hex).
    pub hash: String,
    /// Actor id (hex).
    pub actor: String,
    /// `Name <email>` if recorded, else the actor id.
    pub author: String,
    /// Time claimed by the writer (ms since the epoch; 0 if unknown).
    pub time: i64,
    /// Message (empty if none).
    pub message: String,
    /// Sequence number of this change for its actor.
    pub seq: u64,
}

/// All changes, newest first (reverse causal order).
/// Who made a change: its recorded author (`Name <email>`), else the
/// author recorded for its actor, else the actor id (hex).
pub fn author_of(doc: &Automerge, meta: &automerge::ChangeMetadata<'_>) -> String {
    let text = |a: &automerge::Author<'_>| String::from_utf8_lossy(a.as_bytes()).into_owned();
    meta.author
        .as_ref()
        .map(text)
        .or_else(|| doc.get_author_for_actor(&meta.actor).as_ref().map(text))
        .unwrap_or_else(|| meta.actor.to_hex_string())
}

pub fn history(doc: &Automerge) -> Vec<HistoryEntry> {
    let metas = doc.get_changes_meta(&[]);
    let mut out: Vec<HistoryEntry> = metas
        .iter()
        .map(|m| HistoryEntry {
            hash: m.hash.to_string(),
            actor: m.actor.to_hex_string(),
            author: author_of(doc, m),
            time: m.timestamp,
            message: m.message.as_deref().unwrap_or_default().to_string(),
            seq: m.seq,
        })
        .collect();
    out.reverse();
    out
}
