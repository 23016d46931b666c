//! Layer tar apply and export.
//!
//! STUB: interface agreed between work streams; the apply stream implements it.

use std::io::{Read, Write};
use std::path::Path;

/// Errors applying or exporting a layer.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Placeholder until implemented.
    #[error("layer apply: not implemented yet")]
    NotImplemented,
}

/// Options for [`apply_layer`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Keep uid/gid from the tar (true when running as root).
    pub preserve_owner: bool,
}

/// What an apply produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// `sha256:<hex>` of the uncompressed tar stream (the layer's diff id).
    pub diff_id: String,
    /// `sha256:<hex>` of the bytes as read (compressed digest; equals diff_id for plain tars).
    pub compressed_digest: String,
    /// Bytes of file content written (Docker's layer `size`).
    pub size: u64,
}

/// Extract the layer tar read from `reader` (compression detected by magic bytes) into the
/// existing empty directory `dest`, converting `.wh.` whiteouts to overlayfs' native form.
/// Nothing is ever created, changed or removed outside `dest`.
pub fn apply_layer<R: Read>(
    _reader: R,
    _dest: &Path,
    _opts: &ApplyOptions,
) -> Result<ApplyOutcome, ApplyError> {
    Err(ApplyError::NotImplemented)
}

/// Write the overlay diff dir `diff` as a layer tar (uncompressed) to `out`, converting
/// overlayfs whiteouts (char 0:0, opaque xattr) back to `.wh.` entries. Deterministic order.
pub fn export_layer<W: Write>(_diff: &Path, _out: W) -> Result<(), ApplyError> {
    Err(ApplyError::NotImplemented)
}
