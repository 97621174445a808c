//! Document ids compatible with automerge-repo.
//!
//! An id is 16 random bytes (a v4 UUID). Its text form is bs58check of those
//! bytes: base58(payload || sha256(sha256(payload))[..4]), which is what the
//! `bs58check` npm package used by automerge-repo produces. The URL form is
//! `automerge:<id>`, optionally followed by `#heads`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ModelError;

/// The id of a plan document, shared with automerge-repo peers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    /// A new random id (UUID v4 bytes).
    pub fn random() -> Self {
        DocumentId(*uuid::Uuid::new_v4().as_bytes())
    }

    /// Wrap raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        DocumentId(bytes)
    }

    /// The raw 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// `automerge:<id>`.
    pub fn url(&self) -> String {
        format!("automerge:{self}")
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(&self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModelError::InvalidDocumentId(s.to_string());
        let trimmed = s.trim();
        let rest = trimmed.strip_prefix("automerge:").unwrap_or(trimmed);
        let id = rest.split('#').next().unwrap_or(rest);
        if id.is_empty() {
            return Err(bad());
        }
        let bytes = bs58::decode(id)
            .with_check(None)
            .into_vec()
            .map_err(|_| bad())?;
        let arr: [u8; 16] = bytes.as_slice().try_into().map_err(|_| bad())?;
        Ok(DocumentId(arr))
    }
}

impl Serialize for DocumentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference implementation of bs58check, written out by hand.
    fn manual_bs58check(payload: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(Sha256::digest(payload));
        let mut v = payload.to_vec();
        v.extend_from_slice(&h[..4]);
        bs58::encode(v).into_string()
    }

    #[test]
    fn round_trips() {
        let id = DocumentId::random();
        let s = id.to_string();
        assert_eq!(s.parse::<DocumentId>().unwrap(), id);
        assert_eq!(id.url().parse::<DocumentId>().unwrap(), id);
        assert_eq!(
            format!("{}#abc|def", id.url())
                .parse::<DocumentId>()
                .unwrap(),
            id
        );
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<DocumentId>(&json).unwrap(), id);
    }

    #[test]
    fn matches_bs58check() {
        let bytes: [u8; 16] = core::array::from_fn(|i| (i * 17 + 3) as u8);
        let id = DocumentId::from_bytes(bytes);
        assert_eq!(id.to_string(), manual_bs58check(&bytes));
    }

    #[test]
    fn accepts_automerge_repo_ids() {
        // An id from automerge-repo's documentation.
        let id: DocumentId = "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu".parse().unwrap();
        assert_eq!(id.to_string(), "4NMNnkMhL8jXrdJ9jamS58PAVdXu");
    }

    #[test]
    fn rejects_bad_ids() {
        assert!("".parse::<DocumentId>().is_err());
        assert!("automerge:".parse::<DocumentId>().is_err());
        assert!(
            "4NMNnkMhL8jXrdJ9jamS58PAVdXv"
                .parse::<DocumentId>()
                .is_err()
        );
        assert!("0OIl".parse::<DocumentId>().is_err());
    }
}
