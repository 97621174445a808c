//! TODO(model helper): insights
