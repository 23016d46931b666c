//! Overlay mounts of a layer stack.
//!
//! Preferred: the new mount API (`fsopen("overlay")`, one `fsconfig lowerdir+` per layer with
//! absolute paths, `fsmount`, `move_mount`), which takes up to 500 layers on this kernel and has
//! no option-string length limit. Fallback: classic mount(2) with `lowerdir=l/A:l/B,...`
//! relative to the driver home, as Docker does; the option data is cut at 4096 bytes, so the
//! short links keep ~139 layers in reach. The relative paths need a working directory: the
//! fallback runs in a dedicated thread that unshares its fs attributes (`CLONE_FS`) before
//! `chdir`, so the daemon's other threads never see the cwd change.

use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

/// Linux's limit on mount(2) option data (one page).
const MOUNT_DATA_MAX: usize = 4095;

/// Errors mounting or unmounting an overlay.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// A step of the new mount API failed.
    #[error("overlay mount on {target}: {step} failed")]
    NewApi {
        /// fsopen, fsconfig lowerdir+, fsconfig create, fsmount, move_mount.
        step: &'static str,
        /// Mount point.
        target: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// The classic mount(2) fallback failed.
    #[error("overlay mount on {target}: mount(2) failed")]
    Legacy {
        /// Mount point.
        target: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Too many layers for the classic mount(2) option string.
    #[error("overlay mount on {target}: {layers} layers exceed the mount(2) option size limit")]
    TooManyLayers {
        /// Mount point.
        target: PathBuf,
        /// Number of lower layers.
        layers: usize,
    },
    /// umount2 failed.
    #[error("overlay unmount of {target} failed")]
    Unmount {
        /// Mount point.
        target: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
}

/// How to mount: the new API with a fallback, or only the classic path (tests, old kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountMethod {
    /// fsopen/fsconfig, falling back to mount(2) when the kernel refuses the new API.
    #[default]
    Auto,
    /// Only mount(2) with short links relative to the driver home.
    Legacy,
}

/// One overlay to mount. `lowers` are `l/<short link>` names relative to `home`, topmost
/// first; `upper` and `work` are relative to `home` too (`<cache id>/diff`).
#[derive(Debug, Clone)]
pub struct OverlaySpec<'a> {
    /// The driver home (`<root>/overlay2`).
    pub home: &'a Path,
    /// Lower layers as `l/<id>`, topmost first.
    pub lowers: &'a [String],
    /// Upper dir relative to home.
    pub upper: &'a str,
    /// Work dir relative to home.
    pub work: &'a str,
    /// Absolute mount point.
    pub target: &'a Path,
    /// overlay's `volatile` option: no fsync at copy-up and no sync of the upper filesystem
    /// at unmount; the work dir is then marked so the kernel refuses to mount it again until
    /// the marker is removed ([`clear_volatile_marker`]).
    pub volatile: bool,
}

/// Removes the marker a `volatile` mount leaves in `work` (`work/incompat/volatile`), which
/// makes the kernel refuse every later mount of that work dir. Only for an upper that must
/// not outlive a host crash anyway (the marker exists to catch reuse after one).
pub fn clear_volatile_marker(work: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(work.join("work").join("incompat")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Mount `spec` with `method`.
pub fn mount(spec: &OverlaySpec<'_>, method: MountMethod) -> Result<(), OverlayError> {
    if method == MountMethod::Auto {
        match mount_new_api(spec) {
            Ok(()) => return Ok(()),
            Err(OverlayError::NewApi { step, source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP)
                ) && step != "move_mount" =>
            {
                tracing::debug!(step, error = %source, "new mount API refused; using mount(2)");
            }
            Err(e) => return Err(e),
        }
    }
    mount_legacy(spec)
}

fn mount_new_api(spec: &OverlaySpec<'_>) -> Result<(), OverlayError> {
    let err = |step: &'static str| {
        move |e: rustix::io::Errno| OverlayError::NewApi {
            step,
            target: spec.target.to_path_buf(),
            source: e.into(),
        }
    };
    let fs =
        rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(err("fsopen"))?;
    for l in spec.lowers {
        rustix::mount::fsconfig_set_string(&fs, "lowerdir+", spec.home.join(l))
            .map_err(err("fsconfig lowerdir+"))?;
    }
    rustix::mount::fsconfig_set_string(&fs, "upperdir", spec.home.join(spec.upper))
        .map_err(err("fsconfig upperdir"))?;
    rustix::mount::fsconfig_set_string(&fs, "workdir", spec.home.join(spec.work))
        .map_err(err("fsconfig workdir"))?;
    if spec.volatile {
        rustix::mount::fsconfig_set_flag(&fs, "volatile").map_err(err("fsconfig volatile"))?;
    }
    rustix::mount::fsconfig_create(&fs).map_err(err("fsconfig create"))?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(err("fsmount"))?;
    rustix::mount::move_mount(
        &mnt,
        "",
        CWD,
        spec.target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(err("move_mount"))
}

/// The classic option string (`lowerdir=l/A:l/B,upperdir=..,workdir=..`).
pub fn legacy_options(spec: &OverlaySpec<'_>) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={}{}",
        spec.lowers.join(":"),
        spec.upper,
        spec.work,
        if spec.volatile { ",volatile" } else { "" }
    )
}

fn mount_legacy(spec: &OverlaySpec<'_>) -> Result<(), OverlayError> {
    let data = legacy_options(spec);
    if data.len() > MOUNT_DATA_MAX {
        return Err(OverlayError::TooManyLayers {
            target: spec.target.to_path_buf(),
            layers: spec.lowers.len(),
        });
    }
    let home = spec.home.to_path_buf();
    let target = spec.target.to_path_buf();
    let res = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // This thread gets its own cwd so chdir does not leak to the others.
            // SAFETY: CLONE_FS only detaches this thread's cwd/root/umask from the process;
            // no Rust-level invariant depends on them being shared (unlike CLONE_FILES).
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS)? };
            rustix::process::chdir(&home)?;
            let data = std::ffi::CString::new(data.as_str())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            rustix::mount::mount(
                "overlay",
                &target,
                "overlay",
                MountFlags::empty(),
                Some(data.as_c_str()),
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("mount thread panicked")))
    });
    res.map_err(|source| OverlayError::Legacy { target, source })
}

/// Lazily unmount `target` (`MNT_DETACH`, as Docker does); not mounted is not an error.
pub fn unmount(target: &Path) -> Result<(), OverlayError> {
    match rustix::mount::unmount(target, UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) if !is_mountpoint(target) => Ok(()),
        Err(e) => Err(OverlayError::Unmount {
            target: target.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// Whether `path` is the root of a mount (statx `STATX_ATTR_MOUNT_ROOT`, falling back to a
/// device comparison with the parent).
pub fn is_mountpoint(path: &Path) -> bool {
    if let Ok(st) = rustix::fs::statx(
        CWD,
        path,
        AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) && st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
    {
        return st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (rustix::fs::lstat(path), rustix::fs::stat(parent)) {
        (Ok(a), Ok(b)) => a.st_dev != b.st_dev,
        _ => false,
    }
}
