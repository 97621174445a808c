//! Who is editing: the participant's name, email and side.
//!
//! The identity is recorded as the Automerge author of every change
//! (`Name <email>`), so history can say who did what.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// The side of the deal a person is on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The selling company.
    Seller,
    /// The buying company.
    Buyer,
    /// Anyone else (partner, consultant...).
    #[default]
    Other,
}

impl Side {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Seller => "seller",
            Side::Buyer => "buyer",
            Side::Other => "other",
        }
    }

    /// Lenient parse used when reading documents: unknown values are `Other`.
    pub fn from_stored(s: &str) -> Side {
        s.parse().unwrap_or(Side::Other)
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Side {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "seller" | "vendor" | "s" => Ok(Side::Seller),
            "buyer" | "customer" | "b" => Ok(Side::Buyer),
            "other" | "partner" | "o" => Ok(Side::Other),
            _ => Err(ModelError::InvalidValue {
                field: "side",
                value: s.to_string(),
                expected: "seller, buyer or other",
            }),
        }
    }
}

/// The participant making changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Display name.
    pub name: String,
    /// Email address (may be empty).
    pub email: String,
    /// Side of the deal.
    pub side: Side,
}

impl Identity {
    /// Build an identity.
    pub fn new(name: impl Into<String>, email: impl Into<String>, side: Side) -> Self {
        Identity {
            name: name.into(),
            email: email.into(),
            side,
        }
    }

    /// `Name <email>` (or just `Name` without an email): the Automerge author.
    pub fn author_string(&self) -> String {
        if self.email.trim().is_empty() {
            self.name.clone()
        } else {
            format!("{} <{}>", self.name, self.email)
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.author_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn author_string_has_email() {
        let id = Identity::new("Ana", "ana@buyer.com", Side::Buyer);
        assert_eq!(id.author_string(), "Ana <ana@buyer.com>");
        assert_eq!(Identity::new("Bo", "", Side::Seller).author_string(), "Bo");
    }

    #[test]
    fn side_parses() {
        assert_eq!("Buyer".parse::<Side>().unwrap(), Side::Buyer);
        assert!("nope".parse::<Side>().is_err());
        assert_eq!(Side::from_stored("weird"), Side::Other);
    }
}
