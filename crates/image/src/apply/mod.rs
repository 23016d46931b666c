//! Layer tar apply and export.
//!
//! [`apply_layer`] reads a layer blob (plain, gzip or zstd tar, detected by magic bytes) in one
//! streaming pass: the bytes as read are hashed (compressed digest), decompressed, the
//! decompressed stream is hashed (diff id) while the tar is parsed and extracted. There is no
//! temporary copy of the blob.
//!
//! Safety model: the destination directory is the layer root. Every entry path is first cleaned
//! lexically (`..` and absolute names are clamped at the root, like Docker's `filepath.Clean`
//! of `/`+name) and then its parent directory is resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on a dirfd of the root, so symlinks —
//! including ones created by earlier entries of the same layer — are followed as if the root
//! were `/` and can never lead outside. The final component is then created with `*at`
//! syscalls on that parent fd, never by joining path strings. Hardlink targets are resolved the
//! same way.
//!
//! Whiteouts are converted to overlayfs' native form: `.wh.<name>` becomes a char device 0:0
//! named `<name>`, `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory.
//! [`export_layer`] converts them back; [`changes`] lists `docker diff` style changes of an
//! upper dir.
//!
//! On error, `dest` is left partially extracted: the caller (the layer store) extracts into a
//! temporary directory and deletes it on error, renaming it into place only after success.
//!
//! Threads and memory: the calling thread reads, hashes, decompresses and parses; one scoped
//! writer thread does all filesystem work, fed batches of ops through a bounded channel (a
//! few MiB in flight), so `reader` need not be `Send`. PAX and GNU long-name data are capped at 1 MiB
//! (like Go's archive/tar); file contents are streamed, never buffered whole.
//!
//! Privileges: as root, owners, device nodes, whiteouts and `trusted.*`/`security.*` xattrs
//! are applied. Not as root, device nodes are skipped with a warning, xattrs the kernel
//! refuses are skipped with a warning (like Docker), and whiteouts fail (they are char
//! devices).
//!
//! Known limit: a GNU sparse entry's holes are produced by the tar reader as zeros and
//! turned back into holes block by block, so a hostile entry claiming a huge sparse size
//! costs CPU time proportional to that size (no disk, no memory).

mod changes;
mod export;
mod extract;
mod guard;
mod meta;
mod root;
mod stream;
mod whiteout;
mod write;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub use changes::{Change, ChangeKind};

/// Errors applying or exporting a layer.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The caller's reader failed (network, disk): the blob could not be read.
    #[error("layer apply: reading the layer blob")]
    ReadBlob(#[source] std::io::Error),
    /// The compressed stream is corrupt or truncated.
    #[error("layer apply: decompressing the {format} stream")]
    Decompress {
        /// `gzip` or `zstd`.
        format: &'static str,
        /// What the decoder reported.
        #[source]
        source: std::io::Error,
    },
    /// The tar stream is malformed or truncated.
    #[error("layer apply: reading the tar stream{}", entry_suffix(.entry))]
    Tar {
        /// The entry being read, when known.
        entry: Option<String>,
        /// What the tar reader reported.
        #[source]
        source: std::io::Error,
    },
    /// An entry would have to touch something outside the layer root, or is otherwise refused.
    #[error("layer apply: unsafe entry {path:?}: {reason}")]
    UnsafePath {
        /// The entry's name as found in the tar.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A filesystem operation on an entry failed.
    #[error("layer apply: {op} {path:?}")]
    Io {
        /// The step that failed (`create file`, `mkdir`, `link`, ...).
        op: &'static str,
        /// The entry's path inside the layer.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the exported tar failed.
    #[error("layer export: writing the tar stream at {path:?}")]
    Write {
        /// The path being written.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn entry_suffix(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" at entry {e:?}"),
        None => String::new(),
    }
}

impl ApplyError {
    pub(crate) fn io(op: &'static str, path: impl Into<String>, source: std::io::Error) -> Self {
        ApplyError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn os(op: &'static str, path: impl Into<String>, errno: rustix::io::Errno) -> Self {
        Self::io(op, path, errno.into())
    }

    pub(crate) fn unsafe_path(path: impl Into<String>, reason: &'static str) -> Self {
        ApplyError::UnsafePath {
            path: path.into(),
            reason,
        }
    }
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
/// existing directory `dest` (normally empty), converting `.wh.` whiteouts to overlayfs' native
/// form. Nothing is ever created, changed or removed outside `dest`.
///
/// The whole stream is consumed, including the tar's trailing zero blocks and padding, so
/// the digests cover every byte like Docker's. On error `dest` is left partial; callers
/// extract into a temporary directory and remove it on error.
pub fn apply_layer<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyOutcome, ApplyError> {
    extract::apply(reader, dest, opts)
}

/// Write the overlay diff dir `diff` as a layer tar (uncompressed) to `out`, converting
/// overlayfs whiteouts (char 0:0, opaque xattr) back to `.wh.` entries. Deterministic order
/// (sorted by name bytes, depth first), so exporting the same tree twice gives the same bytes
/// and therefore the same diff id.
pub fn export_layer<W: Write>(diff: &Path, out: W) -> Result<(), ApplyError> {
    export::export(diff, out)
}

/// `docker diff` of an overlay upper dir: one [`Change`] per changed path, sorted by path.
/// A whiteout (char 0:0) is a deletion, an opaque dir a modification, anything else a
/// modification when the path exists in one of `lowers` (topmost first) and an addition
/// otherwise.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, ApplyError> {
    changes::changes(upper, lowers)
}
