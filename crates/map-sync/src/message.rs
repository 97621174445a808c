//! The automerge-repo wire messages (protocol version `"1"`).
//!
//! Every WebSocket binary frame carries exactly one message: a CBOR map with
//! text keys, a `type` field naming the message, and byte strings (`data`)
//! encoded as plain, untagged CBOR byte strings. This module turns frames
//! into [`Message`] values and back; it does no I/O and keeps no state, so
//! the relay (server side) and the CLI client share it.
//!
//! Decoding is by field *name* (peers send keys in any order), strict about
//! field types (a wrong type is a [`ProtocolError`], never a panic) and cheap
//! to reject for hostile input: the frame is measured and its structure
//! scanned (depth, item count) before anything is allocated for it. A
//! well-formed message of a type this version does not know decodes to
//! [`Message::Unknown`] so callers can ignore it, as automerge-repo peers do.
//!
//! Wire field names (camelCase on the wire, snake_case here):
//!
//! | type | fields |
//! |---|---|
//! | `join` | `senderId`, `supportedProtocolVersions`, `peerMetadata`? |
//! | `peer` | `senderId`, `targetId`, `selectedProtocolVersion`, `peerMetadata`? |
//! | `leave` | `senderId` |
//! | `error` | `message`, `senderId`?, `targetId`? |
//! | `request`, `sync` | `senderId`, `targetId`, `documentId`, `data` |
//! | `doc-unavailable` | `senderId`, `targetId`, `documentId` |
//! | `ephemeral` | `senderId`, `targetId`, `documentId`, `sessionId`, `count`, `data` |
//! | `remote-subscription-change` | `senderId`, `targetId`, `add`?, `remove`? |
//! | `remote-heads-changed` | `senderId`, `targetId`, `documentId`, `newHeads` |
//!
//! `peerMetadata` is `{storageId?, isEphemeral}`; `newHeads` maps a storage id
//! to `{heads: [hash...], timestamp}`. Document ids travel as strings (the
//! bs58check form, see `map_model::DocumentId`); [`Message::decode`] rejects a
//! `documentId` that is not the bs58check encoding of 16 bytes.

use std::collections::BTreeMap;

use ciborium::Value;

/// The only protocol version this crate speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// Largest frame [`Message::decode`] accepts (bytes). A sync message carrying
/// a whole plan is a few KB to a few MB; WebSocket endpoints should set their
/// own frame limit to this value too.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Deepest CBOR nesting [`Message::decode`] accepts (the deepest real message,
/// `remote-heads-changed`, nests 4 levels).
pub const MAX_DEPTH: usize = 8;

/// Most CBOR data items (every key, value and array element counts) that
/// [`Message::decode`] accepts in one frame.
pub const MAX_ITEMS: usize = 100_000;

/// Metadata a peer announces in `join` / `peer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// The peer's storage id (a UUID string); JS clients compare it to tell
    /// whether that storage holds their changes. `None` when absent/undefined.
    pub storage_id: Option<String>,
    /// Whether the peer will *not* come back with the same storage id.
    pub is_ephemeral: bool,
}

/// One entry of `remote-heads-changed`'s `newHeads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadsInfo {
    /// Heads of the document in that storage (change hashes as sent, which
    /// automerge-repo writes as base64/hex strings; passed through untouched).
    pub heads: Vec<String>,
    /// Sender's clock when the heads were observed, ms since the Unix epoch.
    pub timestamp: u64,
}

/// One automerge-repo protocol message. Peer ids are opaque strings;
/// document ids are bs58check strings (validated by [`Message::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Handshake, initiating peer (client) -> receiving peer (server).
    Join {
        sender_id: String,
        peer_metadata: Option<PeerMetadata>,
        supported_protocol_versions: Vec<String>,
    },
    /// Handshake answer, server -> client.
    Peer {
        sender_id: String,
        peer_metadata: Option<PeerMetadata>,
        selected_protocol_version: String,
        target_id: String,
    },
    /// Advisory: the sender is about to disconnect.
    Leave { sender_id: String },
    /// Fatal protocol error; the sender closes the connection after it.
    Error {
        message: String,
        sender_id: Option<String>,
        target_id: Option<String>,
    },
    /// First message about a document the sender does not have; `data` is an
    /// automerge sync message (with empty heads).
    Request {
        sender_id: String,
        target_id: String,
        document_id: String,
        data: Vec<u8>,
    },
    /// An automerge sync message (`automerge::sync::Message::encode`).
    Sync {
        sender_id: String,
        target_id: String,
        document_id: String,
        data: Vec<u8>,
    },
    /// The sender does not have the document (or will not share it).
    DocUnavailable {
        sender_id: String,
        target_id: String,
        document_id: String,
    },
    /// Application data not stored in the document (presence, cursors).
    /// `(sender_id, session_id, count)` identifies it for deduplication.
    Ephemeral {
        sender_id: String,
        target_id: String,
        document_id: String,
        session_id: String,
        count: u64,
        data: Vec<u8>,
    },
    /// The sender wants to be told about heads in these storage ids.
    RemoteSubscriptionChange {
        sender_id: String,
        target_id: String,
        add: Option<Vec<String>>,
        remove: Vec<String>,
    },
    /// Heads of a document in other storages (keyed by storage id).
    RemoteHeadsChanged {
        sender_id: String,
        target_id: String,
        document_id: String,
        new_heads: BTreeMap<String, HeadsInfo>,
    },
    /// A well-formed message whose `type` this version does not know. Never
    /// produced by `encode` meaningfully (it encodes as `{type}` only).
    Unknown { type_name: String },
}

/// Why a frame is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("message is nested too deeply or has too many items")]
    TooComplex,
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    #[error("message is not a CBOR map")]
    NotAMap,
    #[error("message has no `type` field")]
    MissingType,
    #[error("message has the key `{0}` twice")]
    DuplicateKey(String),
    #[error("`{message_type}` message lacks the field `{field}`")]
    MissingField {
        message_type: String,
        field: &'static str,
    },
    #[error("field `{field}` of the `{message_type}` message should be {expected}")]
    WrongType {
        message_type: String,
        field: &'static str,
        expected: &'static str,
    },
    #[error("invalid document id {0:?}")]
    InvalidDocumentId(String),
}

impl Message {
    /// The wire `type` string of this message (`"sync"`, `"doc-unavailable"`, ...).
    pub fn type_name(&self) -> &str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Leave { .. } => "leave",
            Message::Error { .. } => "error",
            Message::Request { .. } => "request",
            Message::Sync { .. } => "sync",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
            Message::Unknown { type_name } => type_name,
        }
    }

    /// The `senderId`, if this message carries one.
    pub fn sender_id(&self) -> Option<&str> {
        match self {
            Message::Join { sender_id, .. }
            | Message::Peer { sender_id, .. }
            | Message::Leave { sender_id }
            | Message::Request { sender_id, .. }
            | Message::Sync { sender_id, .. }
            | Message::DocUnavailable { sender_id, .. }
            | Message::Ephemeral { sender_id, .. }
            | Message::RemoteSubscriptionChange { sender_id, .. }
            | Message::RemoteHeadsChanged { sender_id, .. } => Some(sender_id),
            Message::Error { sender_id, .. } => sender_id.as_deref(),
            Message::Unknown { .. } => None,
        }
    }

    /// The `targetId`, if this message carries one.
    pub fn target_id(&self) -> Option<&str> {
        match self {
            Message::Peer { target_id, .. }
            | Message::Request { target_id, .. }
            | Message::Sync { target_id, .. }
            | Message::DocUnavailable { target_id, .. }
            | Message::Ephemeral { target_id, .. }
            | Message::RemoteSubscriptionChange { target_id, .. }
            | Message::RemoteHeadsChanged { target_id, .. } => Some(target_id),
            Message::Error { target_id, .. } => target_id.as_deref(),
            Message::Join { .. } | Message::Leave { .. } | Message::Unknown { .. } => None,
        }
    }

    /// The `documentId`, if this message is about one document.
    pub fn document_id(&self) -> Option<&str> {
        match self {
            Message::Request { document_id, .. }
            | Message::Sync { document_id, .. }
            | Message::DocUnavailable { document_id, .. }
            | Message::Ephemeral { document_id, .. }
            | Message::RemoteHeadsChanged { document_id, .. } => Some(document_id),
            _ => None,
        }
    }

    /// Decodes one frame. Errors (never panics) on oversize or too deeply
    /// nested input, malformed CBOR, a non-map, a missing/non-text `type`,
    /// missing required fields, fields of the wrong CBOR type and invalid
    /// document ids. Unknown keys are ignored; an unknown `type` gives
    /// [`Message::Unknown`]. CBOR `null`/`undefined` count as absent for
    /// optional fields. Integers sent as integral floats (as JS `cbor-x`
    /// sometimes does) are accepted for `count` and `timestamp`.
    pub fn decode(frame: &[u8]) -> Result<Message, ProtocolError> {
        if frame.len() > MAX_MESSAGE_BYTES {
            return Err(ProtocolError::TooLarge {
                size: frame.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let end = scan::check(frame)?;
        if end != frame.len() {
            return Err(ProtocolError::Malformed(
                "trailing bytes after the message".into(),
            ));
        }
        let value: Value = ciborium::de::from_reader_with_recursion_limit(frame, MAX_DEPTH + 2)
            .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        let Value::Map(entries) = value else {
            return Err(ProtocolError::NotAMap);
        };
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in entries {
            // Non-text keys never occur in this protocol; ignore them like
            // unknown keys.
            if let Value::Text(k) = k {
                if fields.contains_key(&k) {
                    return Err(ProtocolError::DuplicateKey(k));
                }
                fields.insert(k, v);
            }
        }
        let type_name = match fields.remove("type") {
            Some(Value::Text(t)) => t,
            _ => return Err(ProtocolError::MissingType),
        };
        let f = Fields {
            message_type: &type_name,
            fields: &mut fields,
        };
        f.into_message()
    }

    /// Encodes as one CBOR map (definite lengths, text keys, untagged byte
    /// strings), ready to send as a binary WebSocket frame. Optional fields
    /// that are `None` are omitted.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = enc::Encoder::default();
        match self {
            Message::Join {
                sender_id,
                peer_metadata,
                supported_protocol_versions,
            } => {
                e.map(3 + usize::from(peer_metadata.is_some()));
                e.kv_text("type", "join");
                e.kv_text("senderId", sender_id);
                e.text("supportedProtocolVersions");
                e.text_array(supported_protocol_versions);
                if let Some(m) = peer_metadata {
                    e.text("peerMetadata");
                    e.metadata(m);
                }
            }
            Message::Peer {
                sender_id,
                peer_metadata,
                selected_protocol_version,
                target_id,
            } => {
                e.map(4 + usize::from(peer_metadata.is_some()));
                e.kv_text("type", "peer");
                e.kv_text("senderId", sender_id);
                e.kv_text("selectedProtocolVersion", selected_protocol_version);
                e.kv_text("targetId", target_id);
                if let Some(m) = peer_metadata {
                    e.text("peerMetadata");
                    e.metadata(m);
                }
            }
            Message::Leave { sender_id } => {
                e.map(2);
                e.kv_text("type", "leave");
                e.kv_text("senderId", sender_id);
            }
            Message::Error {
                message,
                sender_id,
                target_id,
            } => {
                e.map(2 + usize::from(sender_id.is_some()) + usize::from(target_id.is_some()));
                e.kv_text("type", "error");
                e.kv_text("message", message);
                if let Some(s) = sender_id {
                    e.kv_text("senderId", s);
                }
                if let Some(t) = target_id {
                    e.kv_text("targetId", t);
                }
            }
            Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
            | Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            } => {
                e.map(5);
                e.kv_text("type", self.type_name());
                e.kv_text("senderId", sender_id);
                e.kv_text("targetId", target_id);
                e.kv_text("documentId", document_id);
                e.text("data");
                e.bytes(data);
            }
            Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            } => {
                e.map(4);
                e.kv_text("type", "doc-unavailable");
                e.kv_text("senderId", sender_id);
                e.kv_text("targetId", target_id);
                e.kv_text("documentId", document_id);
            }
            Message::Ephemeral {
                sender_id,
                target_id,
                document_id,
                session_id,
                count,
                data,
            } => {
                e.map(7);
                e.kv_text("type", "ephemeral");
                e.kv_text("senderId", sender_id);
                e.kv_text("targetId", target_id);
                e.kv_text("documentId", document_id);
                e.kv_text("sessionId", session_id);
                e.text("count");
                e.uint(*count);
                e.text("data");
                e.bytes(data);
            }
            Message::RemoteSubscriptionChange {
                sender_id,
                target_id,
                add,
                remove,
            } => {
                e.map(4 + usize::from(add.is_some()));
                e.kv_text("type", "remote-subscription-change");
                e.kv_text("senderId", sender_id);
                e.kv_text("targetId", target_id);
                if let Some(add) = add {
                    e.text("add");
                    e.text_array(add);
                }
                e.text("remove");
                e.text_array(remove);
            }
            Message::RemoteHeadsChanged {
                sender_id,
                target_id,
                document_id,
                new_heads,
            } => {
                e.map(5);
                e.kv_text("type", "remote-heads-changed");
                e.kv_text("senderId", sender_id);
                e.kv_text("targetId", target_id);
                e.kv_text("documentId", document_id);
                e.text("newHeads");
                e.map(new_heads.len());
                for (storage, info) in new_heads {
                    e.text(storage);
                    e.map(2);
                    e.text("heads");
                    e.text_array(&info.heads);
                    e.text("timestamp");
                    e.uint(info.timestamp);
                }
            }
            Message::Unknown { type_name } => {
                e.map(1);
                e.kv_text("type", type_name);
            }
        }
        e.finish()
    }
}

/// Checks that `s` is a document id as automerge-repo writes it: the
/// bs58check encoding of 16 bytes (no `automerge:` prefix, no heads).
pub fn is_valid_document_id(s: &str) -> bool {
    // bs58 of 16 + 4 bytes is at most 28 characters; refuse long input
    // before decoding it.
    s.len() <= 40
        && bs58::decode(s)
            .with_check(None)
            .into_vec()
            .is_ok_and(|bytes| bytes.len() == 16)
}

/// The fields of one message being decoded, with its type for errors.
struct Fields<'a> {
    message_type: &'a str,
    fields: &'a mut BTreeMap<String, Value>,
}

impl Fields<'_> {
    fn into_message(mut self) -> Result<Message, ProtocolError> {
        let msg = match self.message_type {
            "join" => Message::Join {
                sender_id: self.text("senderId")?,
                peer_metadata: self.metadata()?,
                supported_protocol_versions: self.text_array("supportedProtocolVersions")?,
            },
            "peer" => Message::Peer {
                sender_id: self.text("senderId")?,
                peer_metadata: self.metadata()?,
                selected_protocol_version: self.text("selectedProtocolVersion")?,
                target_id: self.text("targetId")?,
            },
            "leave" => Message::Leave {
                sender_id: self.text("senderId")?,
            },
            "error" => Message::Error {
                message: self.text("message")?,
                sender_id: self.opt_text("senderId")?,
                target_id: self.opt_text("targetId")?,
            },
            "request" => Message::Request {
                sender_id: self.text("senderId")?,
                target_id: self.text("targetId")?,
                document_id: self.document_id()?,
                data: self.bytes("data")?,
            },
            "sync" => Message::Sync {
                sender_id: self.text("senderId")?,
                target_id: self.text("targetId")?,
                document_id: self.document_id()?,
                data: self.bytes("data")?,
            },
            "doc-unavailable" => Message::DocUnavailable {
                sender_id: self.text("senderId")?,
                target_id: self.text("targetId")?,
                document_id: self.document_id()?,
            },
            "ephemeral" => Message::Ephemeral {
                sender_id: self.text("senderId")?,
                target_id: self.text("targetId")?,
                document_id: self.document_id()?,
                session_id: self.text("sessionId")?,
                count: self.uint("count")?,
                data: self.bytes("data")?,
            },
            "remote-subscription-change" => Message::RemoteSubscriptionChange {
                sender_id: self.text("senderId")?,
                target_id: self.text("targetId")?,
                add: self.opt_text_array("add")?,
                remove: self.opt_text_array("remove")?.unwrap_or_default(),
            },
            "remote-heads-changed" => Message::RemoteHeadsChanged {
                sender_id: self.text("senderId")?,
                target_id: self.text("targetId")?,
                document_id: self.document_id()?,
                new_heads: self.new_heads()?,
            },
            other => Message::Unknown {
                type_name: other.to_owned(),
            },
        };
        Ok(msg)
    }

    fn wrong(&self, field: &'static str, expected: &'static str) -> ProtocolError {
        ProtocolError::WrongType {
            message_type: self.message_type.to_owned(),
            field,
            expected,
        }
    }

    fn missing(&self, field: &'static str) -> ProtocolError {
        ProtocolError::MissingField {
            message_type: self.message_type.to_owned(),
            field,
        }
    }

    /// Removes a field; CBOR null/undefined count as absent.
    fn take(&mut self, field: &'static str) -> Option<Value> {
        match self.fields.remove(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn opt_text(&mut self, field: &'static str) -> Result<Option<String>, ProtocolError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(field, "a text string")),
        }
    }

    fn text(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        self.opt_text(field)?.ok_or_else(|| self.missing(field))
    }

    fn document_id(&mut self) -> Result<String, ProtocolError> {
        let id = self.text("documentId")?;
        if is_valid_document_id(&id) {
            Ok(id)
        } else {
            Err(ProtocolError::InvalidDocumentId(id))
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, ProtocolError> {
        match self.take(field) {
            None => Err(self.missing(field)),
            Some(Value::Bytes(b)) => Ok(b),
            // Tag 64 is "uint8 typed array"; some JS encoders use it.
            Some(Value::Tag(64, inner)) => match *inner {
                Value::Bytes(b) => Ok(b),
                _ => Err(self.wrong(field, "a byte string")),
            },
            Some(_) => Err(self.wrong(field, "a byte string")),
        }
    }

    fn uint(&mut self, field: &'static str) -> Result<u64, ProtocolError> {
        match self.take(field) {
            None => Err(self.missing(field)),
            Some(v) => value_to_u64(&v).ok_or_else(|| self.wrong(field, "an unsigned integer")),
        }
    }

    fn opt_text_array(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<String>>, ProtocolError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Text(s) => Ok(s),
                    _ => Err(self.wrong(field, "an array of text strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.wrong(field, "an array of text strings")),
        }
    }

    fn text_array(&mut self, field: &'static str) -> Result<Vec<String>, ProtocolError> {
        self.opt_text_array(field)?
            .ok_or_else(|| self.missing(field))
    }

    fn metadata(&mut self) -> Result<Option<PeerMetadata>, ProtocolError> {
        const FIELD: &str = "peerMetadata";
        const EXPECTED: &str = "a map {storageId?: text, isEphemeral?: bool}";
        let Some(v) = self.take(FIELD) else {
            return Ok(None);
        };
        let Value::Map(entries) = v else {
            return Err(self.wrong(FIELD, EXPECTED));
        };
        let mut meta = PeerMetadata::default();
        for (k, v) in entries {
            match (k.as_text(), v) {
                (Some("storageId"), Value::Text(s)) => meta.storage_id = Some(s),
                (Some("storageId"), Value::Null) => meta.storage_id = None,
                (Some("isEphemeral"), Value::Bool(b)) => meta.is_ephemeral = b,
                (Some("isEphemeral"), Value::Null) => {}
                (Some("storageId" | "isEphemeral"), _) => {
                    return Err(self.wrong(FIELD, EXPECTED));
                }
                _ => {}
            }
        }
        Ok(Some(meta))
    }

    fn new_heads(&mut self) -> Result<BTreeMap<String, HeadsInfo>, ProtocolError> {
        const FIELD: &str = "newHeads";
        const EXPECTED: &str = "a map storageId -> {heads: [text], timestamp: uint}";
        let Some(v) = self.take(FIELD) else {
            return Err(self.missing(FIELD));
        };
        let Value::Map(entries) = v else {
            return Err(self.wrong(FIELD, EXPECTED));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let (Value::Text(storage), Value::Map(info)) = (k, v) else {
                return Err(self.wrong(FIELD, EXPECTED));
            };
            let mut heads = None;
            let mut timestamp = 0;
            for (ik, iv) in info {
                match (ik.as_text(), iv) {
                    (Some("heads"), Value::Array(items)) => {
                        let hs = items
                            .into_iter()
                            .map(|h| match h {
                                Value::Text(s) => Ok(s),
                                _ => Err(self.wrong(FIELD, EXPECTED)),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        heads = Some(hs);
                    }
                    (Some("timestamp"), v) => {
                        timestamp = value_to_u64(&v).ok_or_else(|| self.wrong(FIELD, EXPECTED))?;
                    }
                    (Some("heads"), _) => return Err(self.wrong(FIELD, EXPECTED)),
                    _ => {}
                }
            }
            let heads = heads.ok_or_else(|| self.wrong(FIELD, EXPECTED))?;
            out.insert(storage, HeadsInfo { heads, timestamp });
        }
        Ok(out)
    }
}

/// Most bloom filter probes [`check_sync_payload`] accepts (automerge writes 7).
pub const MAX_BLOOM_PROBES: u64 = 64;

/// Rejects an automerge sync message whose `have` bloom filters would make
/// automerge panic or allocate without bound when the message is answered
/// (`generate_sync_message`): zero bits per entry (a division by zero in
/// automerge 0.12's `BloomFilter::get_probes`), zero probes, or a huge
/// probe count (a `Vec` of up to 2^32 probes per hash). Call it on every
/// decoded sync message from a peer before `receive_sync_message`; honest
/// peers never fail it. Found by the `frames` fuzz target (see `fuzz/`).
pub fn check_sync_payload(message: &automerge::sync::Message) -> Result<(), String> {
    fn leb128(input: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = input.split_first()?;
            *input = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    for have in &message.have {
        let bytes = have.bloom.to_bytes();
        if bytes.is_empty() {
            continue;
        }
        let mut input = &bytes[..];
        let (Some(_entries), Some(bits_per_entry), Some(probes)) =
            (leb128(&mut input), leb128(&mut input), leb128(&mut input))
        else {
            return Err("malformed bloom filter".into());
        };
        if bits_per_entry == 0 || input.is_empty() {
            return Err("bloom filter without bits".into());
        }
        if probes == 0 || probes > MAX_BLOOM_PROBES {
            return Err(format!("bloom filter with {probes} probes"));
        }
    }
    Ok(())
}

/// An unsigned integer, or an integral non-negative float below 2^53 (JS).
fn value_to_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).ok(),
        Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f <= 9_007_199_254_740_992.0 => {
            // Checked above: integral and in range, so the cast is exact.
            Some(*f as u64)
        }
        _ => None,
    }
}

/// A structural pre-scan of a CBOR item over a byte slice: checks lengths
/// against the input, nesting depth and item count, allocating nothing.
mod scan {
    use super::{MAX_DEPTH, MAX_ITEMS, ProtocolError};

    struct Scanner<'a> {
        buf: &'a [u8],
        pos: usize,
        items: usize,
    }

    fn truncated() -> ProtocolError {
        ProtocolError::Malformed("unexpected end of input".into())
    }

    /// Returns the offset just past the first complete CBOR item.
    pub(super) fn check(buf: &[u8]) -> Result<usize, ProtocolError> {
        let mut s = Scanner {
            buf,
            pos: 0,
            items: 0,
        };
        s.item(0)?;
        Ok(s.pos)
    }

    impl Scanner<'_> {
        fn byte(&mut self) -> Result<u8, ProtocolError> {
            let b = *self.buf.get(self.pos).ok_or_else(truncated)?;
            self.pos += 1;
            Ok(b)
        }

        fn skip(&mut self, n: u64) -> Result<(), ProtocolError> {
            let remaining = (self.buf.len() - self.pos) as u64;
            if n > remaining {
                return Err(truncated());
            }
            // n <= remaining <= usize::MAX, so the cast is exact.
            self.pos += n as usize;
            Ok(())
        }

        /// The argument of a head byte; `None` for indefinite length (31).
        fn argument(&mut self, info: u8) -> Result<Option<u64>, ProtocolError> {
            let n = match info {
                0..=23 => u64::from(info),
                24 => u64::from(self.byte()?),
                25 => u64::from(u16::from_be_bytes(self.array::<2>()?)),
                26 => u64::from(u32::from_be_bytes(self.array::<4>()?)),
                27 => u64::from_be_bytes(self.array::<8>()?),
                31 => return Ok(None),
                _ => {
                    return Err(ProtocolError::Malformed(format!(
                        "reserved additional information {info}"
                    )));
                }
            };
            Ok(Some(n))
        }

        fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
            let end = self.pos.checked_add(N).ok_or_else(truncated)?;
            let slice = self.buf.get(self.pos..end).ok_or_else(truncated)?;
            let mut out = [0u8; N];
            out.copy_from_slice(slice);
            self.pos = end;
            Ok(out)
        }

        fn count(&mut self) -> Result<(), ProtocolError> {
            self.items += 1;
            if self.items > MAX_ITEMS {
                Err(ProtocolError::TooComplex)
            } else {
                Ok(())
            }
        }

        fn is_break(&mut self) -> Result<bool, ProtocolError> {
            let b = *self.buf.get(self.pos).ok_or_else(truncated)?;
            if b == 0xff {
                self.pos += 1;
                Ok(true)
            } else {
                Ok(false)
            }
        }

        fn item(&mut self, depth: usize) -> Result<(), ProtocolError> {
            if depth > MAX_DEPTH {
                return Err(ProtocolError::TooComplex);
            }
            self.count()?;
            let head = self.byte()?;
            let major = head >> 5;
            let info = head & 0x1f;
            let arg = self.argument(info)?;
            match (major, arg) {
                (0 | 1, Some(_)) => Ok(()),
                (2 | 3, Some(len)) => self.skip(len),
                (2 | 3, None) => {
                    // Indefinite string: definite chunks of the same major
                    // type until a break.
                    while !self.is_break()? {
                        let chunk = self.byte()?;
                        if chunk >> 5 != major {
                            return Err(ProtocolError::Malformed("bad string chunk".into()));
                        }
                        match self.argument(chunk & 0x1f)? {
                            Some(len) => self.skip(len)?,
                            None => {
                                return Err(ProtocolError::Malformed(
                                    "nested indefinite string".into(),
                                ));
                            }
                        }
                    }
                    Ok(())
                }
                (4, Some(n)) => {
                    for _ in 0..n {
                        self.item(depth + 1)?;
                    }
                    Ok(())
                }
                (5, Some(n)) => {
                    for _ in 0..n {
                        self.item(depth + 1)?;
                        self.item(depth + 1)?;
                    }
                    Ok(())
                }
                (4, None) => {
                    while !self.is_break()? {
                        self.item(depth + 1)?;
                    }
                    Ok(())
                }
                (5, None) => {
                    while !self.is_break()? {
                        self.item(depth + 1)?;
                        self.item(depth + 1)?;
                    }
                    Ok(())
                }
                (6, Some(_)) => self.item(depth + 1),
                (7, _) => match info {
                    // Simple values and floats; 31 (a lone break) is invalid.
                    0..=27 => Ok(()),
                    _ => Err(ProtocolError::Malformed("unexpected break".into())),
                },
                _ => Err(ProtocolError::Malformed(
                    "indefinite length on an integer or tag".into(),
                )),
            }
        }
    }
}

/// A minimal CBOR writer for the shapes this protocol needs. Writing to a
/// `Vec` cannot fail, so encoding is infallible.
mod enc {
    use super::PeerMetadata;

    #[derive(Default)]
    pub(super) struct Encoder {
        out: Vec<u8>,
    }

    impl Encoder {
        pub(super) fn finish(self) -> Vec<u8> {
            self.out
        }

        fn head(&mut self, major: u8, n: u64) {
            let m = major << 5;
            if n < 24 {
                self.out.push(m | n as u8);
            } else if let Ok(n) = u8::try_from(n) {
                self.out.push(m | 24);
                self.out.push(n);
            } else if let Ok(n) = u16::try_from(n) {
                self.out.push(m | 25);
                self.out.extend_from_slice(&n.to_be_bytes());
            } else if let Ok(n) = u32::try_from(n) {
                self.out.push(m | 26);
                self.out.extend_from_slice(&n.to_be_bytes());
            } else {
                self.out.push(m | 27);
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }

        pub(super) fn uint(&mut self, n: u64) {
            self.head(0, n);
        }

        pub(super) fn bytes(&mut self, b: &[u8]) {
            self.head(2, b.len() as u64);
            self.out.extend_from_slice(b);
        }

        pub(super) fn text(&mut self, s: &str) {
            self.head(3, s.len() as u64);
            self.out.extend_from_slice(s.as_bytes());
        }

        pub(super) fn map(&mut self, n: usize) {
            self.head(5, n as u64);
        }

        pub(super) fn bool(&mut self, b: bool) {
            self.out.push(if b { 0xf5 } else { 0xf4 });
        }

        pub(super) fn kv_text(&mut self, k: &str, v: &str) {
            self.text(k);
            self.text(v);
        }

        pub(super) fn text_array(&mut self, items: &[String]) {
            self.head(4, items.len() as u64);
            for s in items {
                self.text(s);
            }
        }

        pub(super) fn metadata(&mut self, m: &PeerMetadata) {
            self.map(1 + usize::from(m.storage_id.is_some()));
            if let Some(id) = &m.storage_id {
                self.kv_text("storageId", id);
            }
            self.text("isEphemeral");
            self.bool(m.is_ephemeral);
        }
    }
}

#[cfg(test)]
mod tests;
