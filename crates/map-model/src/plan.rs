//! TODO(model helper): plan
