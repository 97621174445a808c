//! Tests for the wire messages: round trips, frames encoded by JS `cbor-x`
//! exactly as automerge-repo 2.5 does, and hostile input.

use super::*;

const DOC: &str = "148vjpuxYXixb8DcbaWyeGv2q3u"; // bs58check(00112233..eeff)

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn all_kinds() -> Vec<Message> {
    let mut heads = BTreeMap::new();
    heads.insert(
        "storage-1".to_owned(),
        HeadsInfo {
            heads: vec!["aa".into(), "bb".into()],
            timestamp: 1_764_000_000_123,
        },
    );
    vec![
        Message::Join {
            sender_id: "map-abc".into(),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
            }),
            supported_protocol_versions: vec!["1".into()],
        },
        Message::Join {
            sender_id: "map-abc".into(),
            peer_metadata: None,
            supported_protocol_versions: vec![],
        },
        Message::Peer {
            sender_id: "relay".into(),
            peer_metadata: Some(PeerMetadata {
                storage_id: Some("0b7a2a4c-6d1c-4d4a-9f0e-2b9d6d0f1a11".into()),
                is_ephemeral: false,
            }),
            selected_protocol_version: "1".into(),
            target_id: "map-abc".into(),
        },
        Message::Leave {
            sender_id: "x".into(),
        },
        Message::Error {
            message: "unsupported protocol version".into(),
            sender_id: Some("relay".into()),
            target_id: None,
        },
        Message::Request {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DOC.into(),
            data: vec![0x42, 0, 0],
        },
        Message::Sync {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DOC.into(),
            data: vec![7; 70_000],
        },
        Message::DocUnavailable {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DOC.into(),
        },
        Message::Ephemeral {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DOC.into(),
            session_id: "s".into(),
            count: u64::MAX,
            data: vec![],
        },
        Message::RemoteSubscriptionChange {
            sender_id: "a".into(),
            target_id: "b".into(),
            add: Some(vec!["s1".into()]),
            remove: vec!["s2".into()],
        },
        Message::RemoteHeadsChanged {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DOC.into(),
            new_heads: heads,
        },
        Message::Unknown {
            type_name: "future-thing".into(),
        },
    ]
}

#[test]
fn round_trips_every_kind() {
    for m in all_kinds() {
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes), Ok(m.clone()), "{m:?}");
    }
}

#[test]
fn encodes_data_as_untagged_byte_string() {
    let m = Message::Sync {
        sender_id: "a".into(),
        target_id: "b".into(),
        document_id: DOC.into(),
        data: vec![1, 2, 3],
    };
    let bytes = m.encode();
    // "data" key followed by major type 2, length 3, no tag 64 (0xd8 0x40).
    let needle = [0x64, b'd', b'a', b't', b'a', 0x43, 1, 2, 3];
    assert!(bytes.windows(needle.len()).any(|w| w == needle));
    assert!(!bytes.windows(2).any(|w| w == [0xd8, 0x40]));
}

#[test]
fn accessors() {
    let m = Message::DocUnavailable {
        sender_id: "a".into(),
        target_id: "b".into(),
        document_id: DOC.into(),
    };
    assert_eq!(m.type_name(), "doc-unavailable");
    assert_eq!(m.sender_id(), Some("a"));
    assert_eq!(m.target_id(), Some("b"));
    assert_eq!(m.document_id(), Some(DOC));
}

// Frames below were produced by node 20 with cbor-x 1.x:
// `new Encoder({tagUint8Array: false, useRecords: false}).encode(obj)` (what
// automerge-repo uses), except where noted.

#[test]
fn decodes_js_sync() {
    let frame = unhex(
        "b9000564747970656473796e636a646f63756d656e744964781b313438766a707578595869786238446362615779654776327133756464617461454200000102\
         6873656e646572496469706565722d6a732d3168746172676574496466736572766572",
    );
    assert_eq!(
        Message::decode(&frame),
        Ok(Message::Sync {
            sender_id: "peer-js-1".into(),
            target_id: "server".into(),
            document_id: DOC.into(),
            data: vec![0x42, 0, 0, 1, 2],
        })
    );
}

#[test]
fn decodes_js_request_with_other_key_order() {
    let frame = unhex(
        "b9000564747970656772657175657374687461726765744964667365727665726873656e646572496469706565722d6a732d316a646f63756d656e744964781b313438766a70757859586978623844636261577965477632713375646461746143420000",
    );
    assert_eq!(
        Message::decode(&frame),
        Ok(Message::Request {
            sender_id: "peer-js-1".into(),
            target_id: "server".into(),
            document_id: DOC.into(),
            data: vec![0x42, 0, 0],
        })
    );
}

#[test]
fn decodes_js_join_with_undefined_storage_id() {
    let frame = unhex(
        "b900046474797065646a6f696e6873656e646572496469706565722d6a732d316c706565724d65746164617461b900026973746f726167654964f76b6973457068656d6572616cf57819737570706f7274656450726f746f636f6c56657273696f6e73816131",
    );
    assert_eq!(
        Message::decode(&frame),
        Ok(Message::Join {
            sender_id: "peer-js-1".into(),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true
            }),
            supported_protocol_versions: vec!["1".into()],
        })
    );
}

#[test]
fn decodes_js_peer() {
    let frame = unhex(
        "b90005647479706564706565726873656e6465724964667365727665726c706565724d65746164617461b900026973746f726167654964782430623761326134632d366431632d346434612d396630652d3262396436643066316131316b6973457068656d6572616cf47773656c656374656450726f746f636f6c56657273696f6e613168746172676574496469706565722d6a732d31",
    );
    let Ok(Message::Peer {
        peer_metadata: Some(meta),
        selected_protocol_version,
        ..
    }) = Message::decode(&frame)
    else {
        panic!("not a peer message");
    };
    assert_eq!(
        meta.storage_id.as_deref(),
        Some("0b7a2a4c-6d1c-4d4a-9f0e-2b9d6d0f1a11")
    );
    assert_eq!(selected_protocol_version, "1");
}

#[test]
fn decodes_js_ephemeral_and_float_timestamp() {
    let frame = unhex(
        "b90007647479706569657068656d6572616c65636f756e74036973657373696f6e49646273316a646f63756d656e744964781b313438766a707578595869786238446362615779654776327133756464617461430102036873656e646572496461616874617267657449646162",
    );
    assert!(matches!(
        Message::decode(&frame),
        Ok(Message::Ephemeral { count: 3, ref data, .. }) if data == &[1, 2, 3]
    ));
    // timestamp sent as a CBOR float64 (JS Date.now())
    let frame = unhex(
        "b9000564747970657472656d6f74652d68656164732d6368616e6765646873656e6465724964616168746172676574496461626a646f63756d656e744964781b313438766a70757859586978623844636261577965477632713375686e65774865616473b9000163736964b9000265686561647381636162636974696d657374616d70fb4279ab697e87b000",
    );
    let Ok(Message::RemoteHeadsChanged { new_heads, .. }) = Message::decode(&frame) else {
        panic!("not remote-heads-changed");
    };
    assert_eq!(new_heads["sid"].timestamp, 1_764_000_000_123);
    assert_eq!(new_heads["sid"].heads, vec!["abc".to_owned()]);
}

#[test]
fn decodes_js_subscription_change_with_undefined_remove() {
    let frame = unhex(
        "b900056474797065781a72656d6f74652d737562736372697074696f6e2d6368616e67656873656e6465724964616168746172676574496461626361646481637369646672656d6f7665f7",
    );
    assert_eq!(
        Message::decode(&frame),
        Ok(Message::RemoteSubscriptionChange {
            sender_id: "a".into(),
            target_id: "b".into(),
            add: Some(vec!["sid".into()]),
            remove: vec![],
        })
    );
}

#[test]
fn accepts_tag_64_byte_arrays() {
    // `data` as cbor-x's default typed-array tag: d8 40 45 <5 bytes>
    let mut e = enc::Encoder::default();
    e.map(5);
    e.kv_text("type", "sync");
    e.kv_text("senderId", "a");
    e.kv_text("targetId", "b");
    e.kv_text("documentId", DOC);
    e.text("data");
    let mut frame = e.finish();
    frame.extend([0xd8, 0x40, 0x42, 9, 9]);
    assert!(matches!(
        Message::decode(&frame),
        Ok(Message::Sync { ref data, .. }) if data == &[9, 9]
    ));
}

fn frame_with(fields: &[(&str, Value)]) -> Vec<u8> {
    let map = Value::Map(
        fields
            .iter()
            .map(|(k, v)| (Value::Text((*k).to_owned()), v.clone()))
            .collect(),
    );
    let mut out = Vec::new();
    ciborium::into_writer(&map, &mut out).unwrap();
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

#[test]
fn wrong_field_types_are_errors() {
    let base = |data: Value, doc: Value, sender: Value| {
        frame_with(&[
            ("type", text("sync")),
            ("senderId", sender),
            ("targetId", text("b")),
            ("documentId", doc),
            ("data", data),
        ])
    };
    let ok = base(Value::Bytes(vec![1]), text(DOC), text("a"));
    assert!(Message::decode(&ok).is_ok());
    for bad in [
        base(text("not bytes"), text(DOC), text("a")),
        base(Value::Array(vec![]), text(DOC), text("a")),
        base(Value::Bytes(vec![]), Value::Bytes(vec![0; 16]), text("a")),
        base(Value::Bytes(vec![]), text("nope"), text("a")),
        base(Value::Bytes(vec![]), text(DOC), Value::Integer(1.into())),
        base(Value::Bytes(vec![]), text(DOC), Value::Bool(true)),
    ] {
        let r = Message::decode(&bad);
        assert!(r.is_err(), "{r:?}");
    }
    let missing = frame_with(&[("type", text("sync")), ("senderId", text("a"))]);
    assert!(matches!(
        Message::decode(&missing),
        Err(ProtocolError::MissingField { .. })
    ));
    let bad_count = frame_with(&[
        ("type", text("ephemeral")),
        ("senderId", text("a")),
        ("targetId", text("b")),
        ("documentId", text(DOC)),
        ("sessionId", text("s")),
        ("count", Value::Integer((-1).into())),
        ("data", Value::Bytes(vec![])),
    ]);
    assert!(matches!(
        Message::decode(&bad_count),
        Err(ProtocolError::WrongType { field: "count", .. })
    ));
    let bad_meta = frame_with(&[
        ("type", text("join")),
        ("senderId", text("a")),
        ("supportedProtocolVersions", Value::Array(vec![text("1")])),
        (
            "peerMetadata",
            Value::Map(vec![(text("isEphemeral"), text("yes"))]),
        ),
    ]);
    assert!(Message::decode(&bad_meta).is_err());
    let bad_versions = frame_with(&[
        ("type", text("join")),
        ("senderId", text("a")),
        (
            "supportedProtocolVersions",
            Value::Array(vec![Value::Integer(1.into())]),
        ),
    ]);
    assert!(Message::decode(&bad_versions).is_err());
}

#[test]
fn type_problems() {
    assert_eq!(
        Message::decode(&frame_with(&[("senderId", text("a"))])),
        Err(ProtocolError::MissingType)
    );
    assert_eq!(
        Message::decode(&frame_with(&[("type", Value::Integer(3.into()))])),
        Err(ProtocolError::MissingType)
    );
    assert_eq!(
        Message::decode(&frame_with(&[("type", text("hello")), ("x", Value::Null)])),
        Ok(Message::Unknown {
            type_name: "hello".into()
        })
    );
    let mut arr = Vec::new();
    ciborium::into_writer(&Value::Array(vec![text("sync")]), &mut arr).unwrap();
    assert_eq!(Message::decode(&arr), Err(ProtocolError::NotAMap));
    let dup = frame_with(&[("type", text("leave")), ("type", text("leave"))]);
    assert!(matches!(
        Message::decode(&dup),
        Err(ProtocolError::DuplicateKey(_))
    ));
}

#[test]
fn malformed_cbor_is_an_error() {
    let good = all_kinds()[6].encode();
    // every truncation of a valid frame
    for n in 0..200.min(good.len()) {
        assert!(Message::decode(&good[..n]).is_err(), "prefix {n}");
    }
    for bad in [
        &[][..],
        &[0xff],
        &[0xa1, 0x61],
        &[0xbf, 0x64, b't', b'y', b'p', b'e'],
        &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x1c],
        &[0xa1, 0x64, 0xff, 0xfe, 0xfd, 0xfc, 0x01], // invalid UTF-8 key
    ] {
        assert!(Message::decode(bad).is_err(), "{bad:x?}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(Message::decode(&trailing).is_err());
}

#[test]
fn rejects_deep_and_huge_structures_cheaply() {
    // 100k nested arrays: must not overflow the stack.
    let mut deep = vec![0xa1, 0x64, b't', b'y', b'p', b'e'];
    deep.extend(std::iter::repeat_n(0x81, 100_000));
    deep.push(0x00);
    assert_eq!(Message::decode(&deep), Err(ProtocolError::TooComplex));
    // 1M tiny items.
    let mut wide = vec![0xa2, 0x64, b't', b'y', b'p', b'e', 0x61, b'x', 0x61, b'x'];
    wide.extend([0x9a, 0x00, 0x0f, 0x42, 0x40]);
    wide.extend(std::iter::repeat_n(0x00, 1_000_000));
    assert_eq!(Message::decode(&wide), Err(ProtocolError::TooComplex));
    let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        Message::decode(&big),
        Err(ProtocolError::TooLarge { .. })
    ));
}

#[test]
fn never_panics_on_mutations() {
    // Flip and splice bytes of every valid frame; decode must return.
    for m in all_kinds() {
        let frame = m.encode();
        let frame = &frame[..frame.len().min(300)];
        for i in 0..frame.len() {
            for b in [0x00, 0x1f, 0x40, 0x5f, 0x7f, 0x9f, 0xbf, 0xd8, 0xf7, 0xff] {
                let mut f = frame.to_vec();
                f[i] = b;
                let _ = Message::decode(&f);
            }
        }
    }
}

#[test]
fn document_id_validation() {
    assert!(is_valid_document_id(DOC));
    assert!(!is_valid_document_id(
        "automerge:148vjpuxYXixb8DcbaWyeGv2q3u"
    ));
    assert!(!is_valid_document_id("148vjpuxYXixb8DcbaWyeGv2q3v"));
    assert!(!is_valid_document_id(""));
}

/// Bloom filters that would make automerge 0.12 panic (zero bits: a
/// division by zero) or allocate 2^32 probes per hash in
/// `generate_sync_message` are rejected; honest ones pass.
#[test]
fn check_sync_payload_rejects_hostile_bloom_filters() {
    use automerge::sync::{BloomFilter, Have};
    let doc = automerge::Automerge::new();
    let mut state = automerge::sync::State::new();
    let honest =
        automerge::sync::SyncDoc::generate_sync_message(&doc, &mut state).expect("a first message");
    assert_eq!(check_sync_payload(&honest), Ok(()));
    // entries, bits per entry, probes, then ceil(entries * bits / 8) bytes.
    let cases: [(&[u8], bool); 5] = [
        (&[1, 10, 7, 0, 0], true),
        (&[1, 0, 7], false),
        (&[1, 10, 0, 0, 0], false),
        (&[1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0], false),
        (&[], true),
    ];
    for (bytes, ok) in cases {
        let bloom = BloomFilter::try_from(bytes).expect("a parsable bloom filter");
        let mut msg = honest.clone();
        msg.have.push(Have {
            last_sync: Vec::new(),
            bloom,
        });
        assert_eq!(check_sync_payload(&msg).is_ok(), ok, "{bytes:?}");
    }
}
