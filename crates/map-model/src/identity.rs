//! TODO(model helper): identity
