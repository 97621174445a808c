//! TODO(model helper): error
