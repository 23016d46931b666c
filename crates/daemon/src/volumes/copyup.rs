//! Copy-up: a new, empty volume mounted over a path the image has content at starts with a
//! copy of that content (Docker's default; `nocopy` and binds skip it). Modes, owners,
//! symlinks, device nodes, fifos and timestamps are kept; the volume's root takes the
//! mode and owner of the image's directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};

/// What can fail while copying.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A file system step failed.
    #[error("copying image content into volume: {step} {}: {source}", path.display())]
    Io {
        /// What was being done.
        step: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CopyError + use<> {
    let path = path.to_owned();
    move |source| CopyError::Io { step, path, source }
}

/// Whether a directory has no entries (a missing dir counts as not empty: nothing to fill).
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut rd| rd.next().is_none())
}

/// Copies what the rootfs has at `dest` (resolved inside `rootfs`, symlinks never leaving
/// it) into `volume_data`, if `volume_data` is empty and the image has a directory there.
/// Returns whether anything was copied.
pub fn copy_up(rootfs: &Path, dest: &str, volume_data: &Path) -> Result<bool, CopyError> {
    if !is_empty_dir(volume_data) {
        return Ok(false);
    }
    let root = std::fs::File::open(rootfs).map_err(io("opening", rootfs))?;
    let rel = dest.trim_start_matches('/');
    let fd = match openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Not in the image, or not a directory: nothing to copy.
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(false),
        Err(e) => return Err(io("resolving", &rootfs.join(rel))(e.into())),
    };
    // The resolved directory, by fd: a symlink in the image cannot point the walk elsewhere.
    let src = PathBuf::from(format!(
        "/proc/self/fd/{}",
        rustix::fd::AsRawFd::as_raw_fd(&fd)
    ));
    let top = std::fs::metadata(&src).map_err(io("reading", &src))?;
    copy_tree(&src, volume_data)?;
    std::fs::set_permissions(
        volume_data,
        std::fs::Permissions::from_mode(top.mode() & 0o7777),
    )
    .map_err(io("chmod", volume_data))?;
    rustix::fs::chown(
        volume_data,
        Some(rustix::fs::Uid::from_raw(top.uid())),
        Some(rustix::fs::Gid::from_raw(top.gid())),
    )
    .map_err(|e| io("chown", volume_data)(e.into()))?;
    drop(fd);
    Ok(true)
}

/// Copies the entries of `src` into the existing directory `dst`, recursively.
fn copy_tree(src: &Path, dst: &Path) -> Result<(), CopyError> {
    for ent in std::fs::read_dir(src).map_err(io("listing", src))? {
        let ent = ent.map_err(io("listing", src))?;
        let from = ent.path();
        let to = dst.join(ent.file_name());
        let meta = from.symlink_metadata().map_err(io("stat", &from))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to).map_err(io("mkdir", &to))?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from).map_err(io("readlink", &from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(io("symlink", &to))?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(io("copying", &to))?;
        } else {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_socket() {
                continue;
            }
            let kind = if ft.is_fifo() {
                rustix::fs::FileType::Fifo
            } else if ft.is_char_device() {
                rustix::fs::FileType::CharacterDevice
            } else {
                rustix::fs::FileType::BlockDevice
            };
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &to,
                kind,
                Mode::from_raw_mode(meta.mode() & 0o7777),
                meta.rdev(),
            )
            .map_err(|e| io("mknod", &to)(e.into()))?;
        }
        keep_attrs(&to, &meta)?;
    }
    Ok(())
}

/// Owner, mode (not for symlinks) and times of `meta` onto `path`.
fn keep_attrs(path: &Path, meta: &std::fs::Metadata) -> Result<(), CopyError> {
    use rustix::fs::{AtFlags, Timespec, Timestamps};
    rustix::fs::chownat(
        rustix::fs::CWD,
        path,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io("chown", path)(e.into()))?;
    if !meta.file_type().is_symlink() {
        // After chown: chown clears set-id bits.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io("chmod", path))?;
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(rustix::fs::CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io("utimes", path)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn copies_tree_once_and_stays_in_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("rootfs");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(root.join("data/a.txt"), "hello").unwrap();
        std::fs::write(root.join("data/sub/b"), "b").unwrap();
        std::fs::set_permissions(
            root.join("data/a.txt"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::set_permissions(root.join("data"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        symlink("a.txt", root.join("data/link")).unwrap();
        // An absolute symlink in the image resolves inside the rootfs, not on the host.
        symlink("/data", root.join("alias")).unwrap();
        let vol = d.path().join("_data");
        std::fs::create_dir(&vol).unwrap();
        assert!(copy_up(&root, "/alias", &vol).unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("a.txt")).unwrap(), "hello");
        assert_eq!(std::fs::read_to_string(vol.join("sub/b")).unwrap(), "b");
        assert_eq!(
            std::fs::read_link(vol.join("link")).unwrap(),
            Path::new("a.txt")
        );
        assert_eq!(vol.join("a.txt").metadata().unwrap().mode() & 0o777, 0o640);
        assert_eq!(vol.metadata().unwrap().mode() & 0o777, 0o750);
        // Not empty any more: a second copy does nothing.
        std::fs::remove_file(vol.join("a.txt")).unwrap();
        assert!(!copy_up(&root, "/data", &vol).unwrap());
        assert!(!vol.join("a.txt").exists());
        // Missing or non-directory destinations copy nothing.
        let vol2 = d.path().join("_data2");
        std::fs::create_dir(&vol2).unwrap();
        assert!(!copy_up(&root, "/nope", &vol2).unwrap());
        assert!(!copy_up(&root, "/data/a.txt", &vol2).unwrap());
        assert!(is_empty_dir(&vol2));
    }
}
