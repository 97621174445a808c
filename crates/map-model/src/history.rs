//! TODO(model helper): history
