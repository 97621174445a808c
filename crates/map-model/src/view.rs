//! TODO(model helper): view
