//! TODO(model helper): conflicts
