//! TODO(cli helper): dates
