//! TODO(model helper): schema
