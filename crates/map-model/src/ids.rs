//! TODO(model helper): ids
