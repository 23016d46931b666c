//! Resolving paths inside the container's rootfs so that they can never leave it.
//!
//! A rootfs comes from an image, and an image is untrusted: any component of a mount
//! destination may be a symlink (`/proc -> /../../../tmp/x`, `/dev -> /etc`). Every path inside
//! the rootfs is therefore resolved *as if the rootfs were `/`*: absolute symlink targets
//! restart at the rootfs, `..` stops at it. The kernel does exactly this for
//! `openat2(RESOLVE_IN_ROOT)`; where that is missing (or a missing path must be created) we
//! walk component by component, each step an `O_NOFOLLOW` open relative to a held directory fd,
//! with `..` popping our own stack of fds rather than asking the filesystem.
//!
//! Callers then act on the returned `O_PATH` fd (mount onto `/proc/self/fd/N`, `*at` calls),
//! never on the path string again.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;
/// Upper bound on walk steps, so a racing writer cannot keep us looping forever.
const MAX_STEPS: usize = 4096;

/// What to do when the path (or part of it) does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Fail with `ENOENT`.
    No,
    /// Create every missing component as a directory (mode 0755).
    Dir,
    /// Create missing parents as directories and the last component as an empty file (0644).
    File,
}

/// `/proc/self/fd/<fd>`: the magic link that names exactly the object `fd` refers to, used as
/// the target of `mount(2)` so the kernel does not resolve the path string again.
pub(crate) fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Open the directory `path` of the host (following symlinks, the host is trusted) as `O_PATH`.
pub(crate) fn open_host_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Resolve `path` inside `root` (which acts as `/`) and return an `O_PATH` fd of the result,
/// creating missing components as `create` says. The final component is followed if it is a
/// symlink (the symlink's target is, again, resolved inside `root`).
pub(crate) fn resolve_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    create: Create,
) -> io::Result<OwnedFd> {
    match openat2_in_root(root, path) {
        Ok(fd) => Ok(fd),
        Err(e) if e == Errno::NOENT && create != Create::No => {
            Ok(walk_in_root(root, path, create)?)
        }
        // No openat2 (kernel < 5.6, or filtered by seccomp): do the same walk by hand.
        Err(e) if e == Errno::NOSYS || e == Errno::PERM => Ok(walk_in_root(root, path, create)?),
        Err(e) => Err(e.into()),
    }
}

fn openat2_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    let rel = relative(path);
    let rel: &OsStr = if rel.is_empty() {
        OsStr::new(".")
    } else {
        &rel
    };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            // EAGAIN: a concurrent rename or mount inside the tree; the kernel asks to retry.
            Err(e) if e == Errno::AGAIN && tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// `path` without its root, as bytes joined by `/` (for openat2).
fn relative(path: &Path) -> OsString {
    let mut out = OsString::new();
    for c in path.components() {
        let part: &OsStr = match c {
            Component::RootDir | Component::Prefix(_) => continue,
            Component::CurDir => OsStr::new("."),
            Component::ParentDir => OsStr::new(".."),
            Component::Normal(n) => n,
        };
        if !out.is_empty() {
            out.push("/");
        }
        out.push(part);
    }
    out
}

fn split_components(path: &[u8]) -> impl DoubleEndedIterator<Item = OsString> + '_ {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsStr::from_bytes(c).to_os_string())
}

/// The by-hand equivalent of `openat2(RESOLVE_IN_ROOT)`, able to create what is missing.
///
/// Exposed to the crate so tests can exercise it directly (the kernel here has openat2).
pub(crate) fn walk_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    create: Create,
) -> Result<OwnedFd, Errno> {
    // Directories opened below `root`; `..` pops, so it can never climb above `root`.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut todo: VecDeque<OsString> = split_components(path.as_os_str().as_bytes()).collect();
    let mut links = 0usize;
    let mut steps = 0usize;
    while let Some(name) = todo.pop_front() {
        steps += 1;
        if steps > MAX_STEPS {
            return Err(Errno::LOOP);
        }
        if name == ".." {
            stack.pop();
            continue;
        }
        let last = todo.is_empty();
        let cur = stack.last().map_or(root, |f| f.as_fd());
        let st = match rustix::fs::statat(cur, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if e == Errno::NOENT => {
                match create {
                    Create::No => return Err(e),
                    Create::File if last => match rustix::fs::openat(
                        cur,
                        &name,
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    ) {
                        Ok(_) => {}
                        Err(e) if e == Errno::EXIST => {}
                        Err(e) => return Err(e),
                    },
                    _ => match rustix::fs::mkdirat(cur, &name, Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        Err(e) if e == Errno::EXIST => {}
                        Err(e) => return Err(e),
                    },
                }
                // Look at what is there now (ours, or whatever won a race) like any other entry.
                todo.push_front(name);
                continue;
            }
            Err(e) => return Err(e),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::LOOP);
            }
            let target = rustix::fs::readlinkat(cur, &name, Vec::new())?;
            let target = target.as_bytes();
            if target.first() == Some(&b'/') {
                stack.clear();
            }
            for part in split_components(target).rev() {
                todo.push_front(part);
            }
            continue;
        }
        let fd = rustix::fs::openat(
            cur,
            &name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let ft = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
        if ft == FileType::Symlink {
            // Replaced by a symlink between stat and open: look again.
            todo.push_front(name);
            continue;
        }
        if !last && ft != FileType::Directory {
            return Err(Errno::NOTDIR);
        }
        stack.push(fd);
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => rustix::fs::openat(root, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()),
    }
}

/// Split `path` into (parent, file name) for `*at` calls that create the last component
/// (mknod, symlink). `None` for `/` or a path ending in `..`.
pub(crate) fn parent_and_name(path: &Path) -> Option<(PathBuf, OsString)> {
    let name = path.file_name()?.to_os_string();
    let parent = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    Some((parent, name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/file"), b"x").unwrap();
        // Hostile links: absolute and ../ chains pointing "outside".
        symlink("/../../../outside", root.join("abs")).unwrap();
        symlink("../../../../outside", root.join("a/rel")).unwrap();
        symlink("/a/b", root.join("to_b")).unwrap();
        symlink("to_b", root.join("chain")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let fd = open_host_dir(&root).unwrap();
        (dir, fd)
    }

    fn path_of(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(proc_fd_path(fd.as_fd())).unwrap()
    }

    fn both(root: &OwnedFd, p: &str, create: Create) -> Vec<Result<PathBuf, Errno>> {
        let walked = walk_in_root(root.as_fd(), Path::new(p), create).map(|f| path_of(&f));
        let kernel = resolve_in_root(root.as_fd(), Path::new(p), create)
            .map(|f| path_of(&f))
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO));
        vec![walked, kernel]
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let (dir, root) = setup();
        let r = dir.path().join("root");
        for res in both(&root, "/abs", Create::Dir) {
            assert_eq!(res.unwrap(), r.join("outside"));
        }
        assert!(!dir.path().join("outside/x").exists());
        for res in both(&root, "/a/rel/x", Create::Dir) {
            assert_eq!(res.unwrap(), r.join("outside/x"));
        }
        assert!(
            !dir.path().join("outside/x").exists(),
            "created outside the root"
        );
        for res in both(&root, "chain/..", Create::No) {
            assert_eq!(res.unwrap(), r.join("a"), "chain resolves to /a/b, then ..");
        }
        for res in both(&root, "/../../..", Create::No) {
            assert_eq!(res.unwrap(), r);
        }
    }

    #[test]
    fn creates_files_and_dirs() {
        let (dir, root) = setup();
        let r = dir.path().join("root");
        let f = walk_in_root(root.as_fd(), Path::new("/new/dir/file"), Create::File).unwrap();
        assert_eq!(path_of(&f), r.join("new/dir/file"));
        assert!(r.join("new/dir/file").is_file());
        let f = resolve_in_root(root.as_fd(), Path::new("/n2/d"), Create::Dir).unwrap();
        assert_eq!(path_of(&f), r.join("n2/d"));
        assert!(r.join("n2/d").is_dir());
        // A dangling symlink as last component creates its target inside the root.
        symlink("/../made", r.join("dangling")).unwrap();
        resolve_in_root(root.as_fd(), Path::new("/dangling"), Create::File).unwrap();
        assert!(r.join("made").is_file());
        assert!(!dir.path().join("made").exists());
    }

    #[test]
    fn errors() {
        let (_dir, root) = setup();
        assert_eq!(
            walk_in_root(root.as_fd(), Path::new("/loop"), Create::No).unwrap_err(),
            Errno::LOOP
        );
        assert_eq!(
            walk_in_root(root.as_fd(), Path::new("/a/file/x"), Create::Dir).unwrap_err(),
            Errno::NOTDIR
        );
        assert_eq!(
            walk_in_root(root.as_fd(), Path::new("/nope"), Create::No).unwrap_err(),
            Errno::NOENT
        );
    }
}
