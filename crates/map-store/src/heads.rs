//! How lists of change hashes ("heads") are stored: the sorted 32-byte
//! hashes concatenated into one blob. An empty blob is the empty list.

use automerge::ChangeHash;

const HASH_LEN: usize = 32;

/// Encode `heads` (sorted and deduplicated first, so equal sets give equal blobs).
pub(crate) fn encode(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::with_capacity(sorted.len() * HASH_LEN);
    for h in &sorted {
        out.extend_from_slice(h.as_ref());
    }
    out
}

/// Decode a blob written by [`encode`]; `None` if its length is not a
/// multiple of 32 bytes.
pub(crate) fn decode(blob: &[u8]) -> Option<Vec<ChangeHash>> {
    if blob.len() % HASH_LEN != 0 {
        return None;
    }
    blob.chunks_exact(HASH_LEN)
        .map(|c| ChangeHash::try_from(c).ok())
        .collect()
}

/// `heads` sorted and deduplicated (the canonical form returned by this crate).
pub(crate) fn canonical(heads: &[ChangeHash]) -> Vec<ChangeHash> {
    let mut v = heads.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorts_and_dedups() {
        let a = ChangeHash([1; 32]);
        let b = ChangeHash([2; 32]);
        let blob = encode(&[b, a, b]);
        assert_eq!(blob.len(), 64);
        assert_eq!(decode(&blob), Some(vec![a, b]));
        assert_eq!(decode(&[]), Some(vec![]));
        assert_eq!(decode(&[0; 31]), None);
    }
}
