//! TODO(cli helper): templates
