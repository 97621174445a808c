//! The Mutual Action Plan model: the Automerge document that holds a plan,
//! the rules that keep it consistent, and the views derived from it.
//!
//! This crate does no I/O: it never reads the clock, the disk or the network.
//! Callers pass the current time and today's date.
#![forbid(unsafe_code)]

pub mod activity;
pub mod baseline;
pub mod conflicts;
pub mod dates;
pub mod deps;
pub mod doc_id;
pub mod error;
pub mod filter;
pub mod history;
pub mod identity;
pub mod ids;
pub mod insights;
pub mod lint;
pub mod plan;
pub mod raw;
pub mod schedule;
pub mod schema;
pub mod templates;
pub mod urgency;
pub mod view;

pub use doc_id::DocumentId;
pub use error::ModelError;
pub use identity::Identity;
pub use plan::PlanDoc;
pub use view::PlanView;
