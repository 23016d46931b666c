//! The container's filesystem view: mounts, /dev, `pivot_root`, masked and read-only paths.
//!
//! STUB: interface agreed between work streams; the rootfs stream implements it.

use std::path::Path;

use oci_spec::runtime::Spec;

/// Errors setting up the container's filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// Placeholder until implemented.
    #[error("rootfs: not implemented yet")]
    NotImplemented,
}

/// Options the runtime passes down.
#[derive(Debug, Clone, Copy, Default)]
pub struct RootfsOptions {
    /// The init is in a new user namespace (device nodes must be bind-mounted, not mknod'ed).
    pub in_user_ns: bool,
    /// `--no-pivot`: move the rootfs onto / and chroot instead of `pivot_root`.
    pub no_pivot: bool,
}

/// In the container init, inside its new mount namespace, before the root changes: set
/// propagation (`rootfsPropagation`, default rprivate), bind `rootfs` onto itself, do every
/// `mounts` entry (paths resolved inside `rootfs` only), create default devices and /dev
/// symlinks, /dev/pts + /dev/ptmx.
pub fn prepare(_spec: &Spec, _rootfs: &Path, _opts: RootfsOptions) -> Result<(), RootfsError> {
    Err(RootfsError::NotImplemented)
}

/// Make `rootfs` the root (`pivot_root`, or move+chroot with `no_pivot`), detach the old root.
pub fn pivot(_rootfs: &Path, _opts: RootfsOptions) -> Result<(), RootfsError> {
    Err(RootfsError::NotImplemented)
}

/// After the root changed: masked paths, read-only paths, `root.readonly`.
pub fn finalize(_spec: &Spec, _opts: RootfsOptions) -> Result<(), RootfsError> {
    Err(RootfsError::NotImplemented)
}
