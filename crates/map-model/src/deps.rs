//! TODO(model helper): deps
