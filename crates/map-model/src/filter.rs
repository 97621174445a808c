//! TODO(cli helper): filter
