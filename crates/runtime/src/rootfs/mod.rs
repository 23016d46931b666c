//! The container's filesystem view: mounts, /dev, `pivot_root`, masked and read-only paths.
//!
//! Called by the container init, in this order (hooks in between are the caller's business):
//!
//! 1. [`prepare`] — in the init's new mount namespace, with the host's `/proc` still visible and
//!    the init already placed in its cgroup (the cgroup mount binds the init's own cgroup dirs):
//!    propagation, the rootfs bind, every `mounts` entry, /dev.
//! 2. (createContainer hooks run here, before the root changes.)
//! 3. [`pivot`] — the rootfs becomes `/`.
//! 4. [`finalize`] — sysctls, read-only and masked paths, `root.readonly`; needs the container's
//!    own `/proc` (the spec mounts one).
//!
//! Every path inside the rootfs is resolved with `path_safety` (never leaving the rootfs,
//! whatever symlinks the image holds), and every mount targets the resulting fd.

mod cgroup;
mod devices;
mod masks;
pub mod mountinfo;
mod mounts;
mod options;
mod path_safety;
mod pivot;
mod sys;
mod sysctl;

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Errors setting up the container's filesystem; each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// `linux.rootfsPropagation` is not one of the propagation words.
    #[error("invalid rootfsPropagation {0:?}")]
    InvalidPropagation(String),
    /// Setting the propagation of `/` failed.
    #[error("set the propagation of / ({0})")]
    RootPropagation(String, #[source] io::Error),
    /// A step on the rootfs directory itself failed.
    #[error("rootfs {path}: {step}")]
    Rootfs {
        /// The rootfs path.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Resolving (or creating) a path inside the rootfs failed.
    #[error("resolve {path} inside the container root")]
    Resolve {
        /// The path, relative to the container root.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A mount entry is not usable as given.
    #[error("mount on {dest}: {reason}")]
    InvalidMount {
        /// The mount destination.
        dest: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A step of a `mounts` entry failed.
    #[error("mount {fstype} on {dest}: {step}")]
    Mount {
        /// The mount destination.
        dest: PathBuf,
        /// The filesystem type (or "bind").
        fstype: String,
        /// What was being done.
        step: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Creating a device node or a /dev symlink failed.
    #[error("device {path}: {step}")]
    Device {
        /// The device path in the container.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A step of changing the root failed.
    #[error("pivot root: {step}")]
    Pivot {
        /// What was being done.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A `linux.sysctl` key is refused before anything is written.
    #[error("sysctl {key}: {reason}")]
    SysctlRejected {
        /// The sysctl key.
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Writing a sysctl failed.
    #[error("sysctl {key}: write /proc/sys")]
    Sysctl {
        /// The sysctl key.
        key: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Masking a path failed.
    #[error("mask {path}: {step}")]
    Mask {
        /// The masked path.
        path: String,
        /// What was being done.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Making a path read-only failed.
    #[error("read-only path {path}: {step}")]
    ReadonlyPath {
        /// The path.
        path: String,
        /// What was being done.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `root.readonly`: remounting `/` read-only failed.
    #[error("make / read-only")]
    RootReadonly(#[source] io::Error),
}

/// Options the runtime passes down.
#[derive(Debug, Clone, Copy, Default)]
pub struct RootfsOptions {
    /// The init is in a new user namespace (device nodes must be bind-mounted, not mknod'ed).
    pub in_user_ns: bool,
    /// `--no-pivot`: move the rootfs onto / and chroot instead of `pivot_root`.
    pub no_pivot: bool,
}

/// Whether the spec gives the container its own namespace of `typ` (new, or joined by path).
pub(crate) fn has_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == typ))
}

/// The `rootfsPropagation` flags, default `rprivate`.
fn root_propagation(spec: &Spec) -> Result<MsFlags, RootfsError> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
        Some(word) => options::propagation_flags(word)
            .ok_or_else(|| RootfsError::InvalidPropagation(word.to_string())),
    }
}

/// In the container init, inside its new mount namespace, before the root changes: set
/// propagation (`rootfsPropagation`, default rprivate), bind `rootfs` onto itself, do every
/// `mounts` entry (paths resolved inside `rootfs` only), create default devices and /dev
/// symlinks, /dev/pts + /dev/ptmx.
///
/// Expects: a new mount namespace (this changes propagation of `/`, which in the host namespace
/// would be wrong), the host's `/proc` at `/proc`, the process already in its cgroup, and the
/// working directory at the bundle (relative bind sources are resolved from it).
pub fn prepare(spec: &Spec, rootfs: &Path, opts: RootfsOptions) -> Result<(), RootfsError> {
    let prop = root_propagation(spec)?;
    nix::mount::mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .map_err(|e| RootfsError::RootPropagation(format!("{prop:?}"), e.into()))?;
    let rootfs_err = |step: &'static str| {
        move |source: io::Error| RootfsError::Rootfs {
            path: rootfs.to_path_buf(),
            step,
            source,
        }
    };
    let rootfs = std::fs::canonicalize(rootfs).map_err(rootfs_err("canonicalize"))?;
    let rootfs = rootfs.as_path();
    // After an rprivate `/` (the default) every mount is private already: skip the mountinfo
    // scan (~0.2 ms) that finds the rootfs's parent mount.
    if !prop.contains(MsFlags::MS_PRIVATE | MsFlags::MS_REC) {
        pivot::make_parent_private(rootfs).map_err(rootfs_err("make its parent mount private"))?;
    }
    nix::mount::mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| rootfs_err("bind onto itself")(e.into()))?;
    let root = path_safety::open_host_dir(rootfs).map_err(rootfs_err("open"))?;
    let ctx = mounts::Context {
        root: root.as_fd(),
        opts,
        new_net_ns: has_namespace(spec, LinuxNamespaceType::Network),
        new_cgroup_ns: has_namespace(spec, LinuxNamespaceType::Cgroup),
    };
    for m in spec.mounts().iter().flatten() {
        mounts::mount_entry(&ctx, m)?;
    }
    if !mounts::dev_is_bind_mounted(spec) {
        devices::setup_dev(root.as_fd(), spec, opts)?;
    }
    if mounts::dev_wants_readonly(spec) {
        let dev = ctx.resolve(Path::new("/dev"), path_safety::Create::No)?;
        let ro = options::Attrs {
            set: options::attr::RDONLY,
            clr: 0,
        };
        sys::mount_setattr(dev.as_fd(), false, ro).map_err(mounts::mount_err(
            Path::new("/dev"),
            "tmpfs",
            "make read-only",
        ))?;
    }
    Ok(())
}

/// Make `rootfs` the root (`pivot_root`, or move+chroot with `no_pivot`), detach the old root.
/// Afterwards the working directory is `/`. Call after [`prepare`] on the same `rootfs`.
pub fn pivot(rootfs: &Path, opts: RootfsOptions) -> Result<(), RootfsError> {
    if opts.no_pivot {
        pivot::move_root(rootfs)
    } else {
        pivot::pivot_root(rootfs)
    }
}

/// After the root changed: `rootfsPropagation` on the new `/` (shared/slave only), sysctls,
/// read-only paths, masked paths, `root.readonly`.
///
/// Needs the container's `/proc` (sysctls, and mounts target `/proc/self/fd/N`) and a real
/// `/dev/null` (masking binds it).
pub fn finalize(spec: &Spec, _opts: RootfsOptions) -> Result<(), RootfsError> {
    let prop = root_propagation(spec)?;
    // Applied again here because before the pivot it would have hit the old root; private is
    // already in effect from `prepare`.
    if !prop.contains(MsFlags::MS_PRIVATE) {
        nix::mount::mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
            .map_err(|e| RootfsError::RootPropagation(format!("{prop:?}"), e.into()))?;
    }
    sysctl::apply(spec)?;
    let linux = spec.linux().as_ref();
    masks::readonly_paths(
        linux
            .and_then(|l| l.readonly_paths().as_deref())
            .unwrap_or(&[]),
    )?;
    masks::masked_paths(
        linux
            .and_then(|l| l.masked_paths().as_deref())
            .unwrap_or(&[]),
    )?;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        masks::root_readonly()?;
    }
    Ok(())
}
