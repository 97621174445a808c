//! Plan (automerge document) ids as the relay sees them: the bs58check text
//! of 16 bytes, as used on the wire. Admin input may also be an `automerge:`
//! URL, optionally with `#heads`; it is reduced to the canonical id.

/// Parse a document id or `automerge:` URL into the canonical bs58check id.
/// Returns `None` if the text is not a valid document id.
pub fn parse(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text.strip_prefix("automerge:").unwrap_or(text);
    let text = text.split('#').next().unwrap_or(text);
    let bytes = bs58::decode(text).with_check(None).into_vec().ok()?;
    if bytes.len() != 16 {
        return None;
    }
    Some(bs58::encode(bytes).with_check().into_string())
}

/// Whether `id` is exactly a canonical document id (what wire messages carry).
pub fn is_canonical(id: &str) -> bool {
    parse(id).as_deref() == Some(id)
}

/// A fresh random document id (used by tests and tools).
pub fn random() -> String {
    bs58::encode(uuid::Uuid::new_v4().as_bytes())
        .with_check()
        .into_string()
}

/// The `automerge:` URL of a document id.
pub fn url(id: &str) -> String {
    format!("automerge:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_and_url_forms() {
        let id = random();
        assert!(is_canonical(&id));
        assert_eq!(parse(&format!("automerge:{id}")).as_deref(), Some(&*id));
        assert_eq!(
            parse(&format!("automerge:{id}#abc|def")).as_deref(),
            Some(&*id)
        );
        assert_eq!(parse("not an id"), None);
        assert_eq!(parse(""), None);
        // valid bs58check but wrong length
        let short = bs58::encode([1u8, 2, 3]).with_check().into_string();
        assert_eq!(parse(&short), None);
    }
}
