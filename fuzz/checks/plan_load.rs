//! What the `plan_load` fuzz target runs, shared with the stable regression
//! test `crates/map-model/tests/fuzz_regressions.rs` (both include this file
//! with `#[path]`).
//!
//! Plans come from peers, so loading one and deriving what `map show`,
//! `map conflicts` and `map log` print must never panic, whatever the bytes.
//! Each input is used twice:
//!
//! 1. as raw bytes: `PlanDoc::load(bytes)`, then `view(today)`,
//!    `conflicts()`, `history()` and `raw()`;
//! 2. as a program that edits a real plan (the `simple` template) the way a
//!    hostile or buggy peer could: scalars of any type (dates that are not
//!    dates, NaN, huge integers) at any key of any entity, objects where
//!    scalars belong, deleted collections, dependency lists pointing
//!    anywhere, concurrent values (conflicts). The result is saved, loaded
//!    with `PlanDoc::load` and derived as in 1.
//!
//! Step 2 exists because automerge checksums every saved chunk: random
//! mutations of saved bytes rarely get past `load`, so step 1 alone would
//! hardly reach the view code.

use std::sync::OnceLock;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};
use chrono::NaiveDate;
use map_model::identity::{Identity, Side};
use map_model::{PlanDoc, templates};

const NOW: i64 = 1_780_000_000_000;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 4).expect("valid date")
}

/// Derive everything a peer's plan feeds into; none of it may panic.
fn derive(plan: &mut PlanDoc) {
    let _ = plan.view(today());
    let _ = plan.view(NaiveDate::from_ymd_opt(2030, 2, 28).expect("valid date"));
    let _ = plan.conflicts();
    let _ = plan.history();
    let _ = plan.raw();
    let _ = plan.title();
}

/// A saved template plan, built once.
fn template_bytes(name: &str) -> Vec<u8> {
    let by = Identity::new("Sam Seller", "sam@vendor.com", Side::Seller);
    let mut plan = PlanDoc::create("Acme rollout", &by, NOW).expect("create plan");
    let template = templates::build(name, today(), None).expect("known template");
    templates::apply(&mut plan, &by, NOW, today(), &template, false).expect("apply template");
    plan.save()
}

fn base() -> &'static AutoCommit {
    static BASE: OnceLock<AutoCommit> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut doc = AutoCommit::load(&template_bytes("simple")).expect("template loads");
        doc.set_actor(automerge::ActorId::from(&[2u8; 16][..]));
        doc
    })
}

/// Reads the input as a stream of small decisions.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn pick(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::from(self.byte()) % n
        }
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte();
        }
        u64::from_le_bytes(b)
    }

    fn string(&mut self, ids: &[String]) -> String {
        const WORDS: &[&str] = &[
            "",
            "2026-12-04",
            "2026-02-30",
            "2027-01-31",
            "9999-12-31",
            "0000-01-01",
            "+262142-12-31",
            "-262143-01-01",
            "2026-13-01",
            "tomorrow",
            "todo",
            "in_progress",
            "blocked",
            "done",
            "dropped",
            "seller",
            "buyer",
            "other",
            "low",
            "medium",
            "high",
            "task",
            "meeting",
            "approval",
            "open",
            "closed",
            "mitigated",
            "\u{0}",
            "\u{202e}é\u{1F600}",
            "schema",
            "tasks",
        ];
        match self.pick(4) {
            0 => WORDS[self.pick(WORDS.len())].to_string(),
            1 if !ids.is_empty() => ids[self.pick(ids.len())].clone(),
            _ => {
                let len = self.pick(24);
                let start = self.pos.min(self.data.len());
                let end = (start + len).min(self.data.len());
                self.pos = start + len;
                String::from_utf8_lossy(&self.data[start..end]).into_owned()
            }
        }
    }

    fn key(&mut self, ids: &[String]) -> String {
        const KEYS: &[&str] = &[
            "schema",
            "header",
            "people",
            "milestones",
            "tasks",
            "risks",
            "comments",
            "title",
            "objective",
            "success_criteria",
            "signature_date",
            "go_live",
            "created_at",
            "name",
            "email",
            "side",
            "role",
            "order",
            "due",
            "deleted",
            "description",
            "milestone",
            "owner",
            "start",
            "status",
            "completed",
            "deps",
            "kind",
            "priority",
            "impact",
            "likelihood",
            "mitigation",
            "target",
            "author",
            "at",
            "text",
        ];
        if self.pick(5) == 0 {
            self.string(ids)
        } else {
            KEYS[self.pick(KEYS.len())].to_string()
        }
    }

    fn scalar(&mut self, ids: &[String]) -> ScalarValue {
        match self.pick(10) {
            0..=2 => ScalarValue::Str(self.string(ids).into()),
            3 => ScalarValue::Int(self.u64() as i64),
            4 => ScalarValue::Uint(self.u64()),
            5 => ScalarValue::F64(f64::from_bits(self.u64())),
            6 => ScalarValue::Boolean(self.byte() & 1 == 1),
            7 => ScalarValue::Null,
            8 => ScalarValue::Timestamp(self.u64() as i64),
            _ => ScalarValue::Int(i64::from(self.byte()) - 128),
        }
    }
}

/// Every object of the base plan a peer would touch: the root, the header,
/// the collections and each entity map, plus their lists.
fn objects(doc: &AutoCommit) -> (Vec<ObjId>, Vec<String>) {
    let mut objs = vec![ROOT];
    let mut ids = Vec::new();
    let mut stack = vec![ROOT];
    while let Some(obj) = stack.pop() {
        if objs.len() > 400 {
            break;
        }
        for key in doc.keys(&obj).collect::<Vec<_>>() {
            if let Ok(Some((automerge::Value::Object(_), child))) = doc.get(&obj, key.as_str()) {
                if obj != ROOT {
                    ids.push(key.clone());
                }
                objs.push(child.clone());
                stack.push(child);
            }
        }
    }
    (objs, ids)
}

#[allow(clippy::result_large_err)]
fn put_scalar(
    doc: &mut AutoCommit,
    obj: &ObjId,
    key: &str,
    at: usize,
    value: ScalarValue,
) -> Result<(), automerge::AutomergeError> {
    match doc.object_type(obj)? {
        ObjType::Map | ObjType::Table => doc.put(obj, key, value),
        ObjType::List => {
            let len = doc.length(obj);
            if at < len {
                doc.put(obj, at, value)
            } else {
                doc.insert(obj, len, value)
            }
        }
        ObjType::Text => {
            let len = doc.length(obj);
            let text = match value {
                ScalarValue::Str(s) => s.to_string(),
                _ => "x".to_string(),
            };
            doc.splice_text(obj, at.min(len), 0, &text).map(|_| ())
        }
    }
}

/// Edit the base plan as the input says; `None` if an edit fails.
#[allow(clippy::result_large_err)]
fn edit(input: &mut Input<'_>) -> Result<AutoCommit, automerge::AutomergeError> {
    let mut doc = base().clone();
    let (mut objs, mut ids) = objects(&doc);
    let mut ops = 0;
    while !input.done() && ops < 48 {
        ops += 1;
        let obj = objs[input.pick(objs.len())].clone();
        let key = input.key(&ids);
        let at = input.pick(8);
        match input.pick(8) {
            0..=2 => {
                let v = input.scalar(&ids);
                put_scalar(&mut doc, &obj, &key, at, v)?;
            }
            3 => {
                let ty = [ObjType::Map, ObjType::List, ObjType::Text][input.pick(3)];
                let child = match doc.object_type(&obj)? {
                    ObjType::Map | ObjType::Table => doc.put_object(&obj, key.as_str(), ty)?,
                    ObjType::List => doc.insert_object(&obj, at.min(doc.length(&obj)), ty)?,
                    ObjType::Text => continue,
                };
                objs.push(child);
            }
            4 => match doc.object_type(&obj)? {
                ObjType::Map | ObjType::Table => doc.delete(&obj, key.as_str())?,
                ObjType::List | ObjType::Text => {
                    if at < doc.length(&obj) {
                        doc.delete(&obj, at)?;
                    }
                }
            },
            5 => {
                // A new entity in a collection, with an id from the input.
                let id = input.string(&ids);
                if let ObjType::Map = doc.object_type(&obj)? {
                    let child = doc.put_object(&obj, id.as_str(), ObjType::Map)?;
                    ids.push(id);
                    objs.push(child);
                }
            }
            6 => {
                // Concurrent edits from two peers: a conflict.
                let mut other = doc.fork();
                let a = input.scalar(&ids);
                let b = input.scalar(&ids);
                put_scalar(&mut doc, &obj, &key, at, a)?;
                put_scalar(&mut other, &obj, &key, at, b)?;
                doc.merge(&mut other)?;
            }
            _ => {
                let delta = i64::from(input.byte()) - 128;
                if let ObjType::Map = doc.object_type(&obj)? {
                    if !matches!(doc.get(&obj, key.as_str())?, Some((automerge::Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Counter(_)))
                    {
                        doc.put(&obj, key.as_str(), ScalarValue::counter(0))?;
                    }
                    doc.increment(&obj, key.as_str(), delta)?;
                }
            }
        }
        if input.pick(4) == 0 {
            doc.commit();
        }
    }
    doc.commit();
    Ok(doc)
}

/// The fuzz target body.
pub fn run(data: &[u8]) {
    if let Ok(mut plan) = PlanDoc::load(data) {
        derive(&mut plan);
    }
    let mut input = Input { data, pos: 0 };
    if let Ok(mut doc) = edit(&mut input) {
        let saved = doc.save();
        if let Ok(mut plan) = PlanDoc::load(&saved) {
            derive(&mut plan);
        }
    }
}

/// Seed inputs: every template saved as a plan, a new empty plan, and a few
/// edit programs.
#[allow(dead_code)]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in templates::NAMES {
        out.push((format!("seed-template-{name}"), template_bytes(name)));
    }
    let by = Identity::new("Ana Buyer", "ana@buyer.com", Side::Buyer);
    let mut plan = PlanDoc::create("Empty", &by, NOW).expect("create plan");
    out.push(("seed-empty-plan".to_string(), plan.save()));
    out.push(("seed-edits-a".to_string(), (0u8..=255).collect()));
    out.push((
        "seed-edits-b".to_string(),
        b"\x05\x11\x00\x03\x06\x12\x01\x02\x40\x00\x00\x00\x00\x00\x00\x00\x80\x06\x06".to_vec(),
    ));
    out
}
