//! TODO(model helper): doc_id
