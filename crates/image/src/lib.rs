//! Image and layer store with Docker's overlay2 on-disk layout, layer tar apply with
//! whiteouts, and (later) registry pull/push.
//!
//! Module map:
//! - [`apply`]: extract a layer tar (plain/gzip/zstd) safely into a diff dir, hashing the
//!   uncompressed stream (diff id) in the same pass; export a diff dir back to a layer tar.

pub mod apply;
