//! Who is asking and what they may do: bearer tokens (random 256-bit secrets,
//! stored only as sha256 hashes and compared in constant time), invite
//! secrets, the access levels of a grant, and pulling a token out of an HTTP
//! request. Tokens are never logged: nothing here implements `Display` for one.

use std::fmt;

use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a user may do with a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read only: receives changes, its own changes are neither stored nor passed on.
    #[serde(rename = "ro")]
    ReadOnly,
    /// Read and write.
    #[serde(rename = "rw")]
    ReadWrite,
    /// Read and write, created the plan on this relay.
    Owner,
}

impl Access {
    /// The text stored in the database and used in the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadOnly => "ro",
            Access::ReadWrite => "rw",
            Access::Owner => "owner",
        }
    }

    /// Parse `ro`, `rw` or `owner` (also `read-only`/`read-write`).
    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "ro" | "read-only" => Some(Access::ReadOnly),
            "rw" | "read-write" => Some(Access::ReadWrite),
            "owner" => Some(Access::Owner),
            _ => None,
        }
    }

    /// Whether changes from this user are accepted.
    pub fn can_write(self) -> bool {
        self != Access::ReadOnly
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fresh random secret (256 bits), base58 text: used for tokens and invites.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bs58::encode(bytes).into_string()
}

/// The sha256 of a secret: the only form in which secrets are stored.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time comparison of a stored hash with a computed one.
pub fn hashes_equal(stored: &[u8], computed: &[u8; 32]) -> bool {
    stored.len() == 32 && bool::from(stored.ct_eq(computed.as_slice()))
}

/// The token presented with a request: `Authorization: Bearer TOKEN`, else
/// the `token` query parameter. `None` if neither is present.
pub fn token_from_request(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            return Some(token.trim().to_owned());
        }
        return None;
    }
    let query = query?;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "token" && !value.is_empty() {
            return Some(percent_decode(value));
        }
    }
    None
}

/// Minimal percent-decoding for a query value (tokens are base58, but a client
/// may still escape them).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn secrets_are_random_and_hash_compare() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(a.len() >= 40);
        assert!(hashes_equal(&hash_secret(&a), &hash_secret(&a)));
        assert!(!hashes_equal(&hash_secret(&a), &hash_secret(&b)));
        assert!(!hashes_equal(&[1, 2, 3], &hash_secret(&a)));
    }

    #[test]
    fn token_from_header_or_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_from_request(&headers, None), None);
        assert_eq!(
            token_from_request(&headers, Some("x=1&token=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_from_request(&headers, Some("token=a%42c")).as_deref(),
            Some("aBc")
        );
        assert_eq!(
            token_from_request(&headers, Some("token=%4")).as_deref(),
            Some("%4")
        );
        headers.insert("authorization", HeaderValue::from_static("Bearer xyz"));
        assert_eq!(
            token_from_request(&headers, Some("token=abc")).as_deref(),
            Some("xyz")
        );
        headers.insert("authorization", HeaderValue::from_static("Basic xyz"));
        assert_eq!(token_from_request(&headers, None), None);
    }

    #[test]
    fn access_round_trips() {
        for a in [Access::ReadOnly, Access::ReadWrite, Access::Owner] {
            assert_eq!(Access::parse(a.as_str()), Some(a));
        }
        assert!(!Access::ReadOnly.can_write());
        assert!(Access::Owner.can_write());
    }
}
