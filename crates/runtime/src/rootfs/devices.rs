//! /dev: the default device nodes every container gets, `linux.devices`, and the usual
//! symlinks (/dev/fd, /dev/std*, /dev/ptmx → pts/ptmx, /dev/core).
//!
//! In a user namespace `mknod` is not allowed, so each device is the host's node bind-mounted
//! onto an empty file instead (as runc and crun do).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDeviceType, Spec};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

use super::path_safety::{Create, parent_and_name, proc_fd_path, resolve_in_root};
use super::sys::mount_at;
use super::{RootfsError, RootfsOptions};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Device {
    pub(crate) path: String,
    pub(crate) kind: FileType,
    pub(crate) major: u32,
    pub(crate) minor: u32,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The devices the OCI spec says every Linux container has.
const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const SYMLINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Default devices plus `linux.devices` (the spec's entry wins on the same path).
pub(crate) fn devices_of(spec: &Spec) -> Result<Vec<Device>, RootfsError> {
    let mut out: Vec<Device> = DEFAULT_DEVICES
        .iter()
        .map(|&(path, major, minor)| Device {
            path: path.to_string(),
            kind: FileType::CharacterDevice,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        let path = d.path().to_string_lossy().into_owned();
        let invalid = |step| RootfsError::Device {
            path: d.path().clone(),
            step,
            source: Errno::INVAL.into(),
        };
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
            LinuxDeviceType::B => FileType::BlockDevice,
            LinuxDeviceType::P => FileType::Fifo,
            LinuxDeviceType::A => return Err(invalid("type \"a\" is not a device node")),
        };
        let major = u32::try_from(d.major()).map_err(|_| invalid("major out of range"))?;
        let minor = u32::try_from(d.minor()).map_err(|_| invalid("minor out of range"))?;
        out.retain(|x| x.path != path);
        out.push(Device {
            path,
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

/// Create the devices and symlinks under the rootfs's /dev.
pub(crate) fn setup_dev(
    root: BorrowedFd<'_>,
    spec: &Spec,
    opts: RootfsOptions,
) -> Result<(), RootfsError> {
    for dev in devices_of(spec)? {
        if opts.in_user_ns {
            bind_host_device(root, &dev)?;
        } else {
            create_device(root, &dev)?;
        }
    }
    let dev_path = Path::new("/dev");
    let dev_err = |path: &str, step| {
        let path = Path::new("/dev").join(path);
        move |e: Errno| RootfsError::Device {
            path,
            step,
            source: e.into(),
        }
    };
    let dev =
        resolve_in_root(root, dev_path, Create::Dir).map_err(|source| RootfsError::Resolve {
            path: dev_path.to_path_buf(),
            source,
        })?;
    let mut links: Vec<(&str, &str)> = SYMLINKS.to_vec();
    // Only where the host has it (this kernel has no /proc/kcore).
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore"));
    }
    for (name, target) in links {
        match rustix::fs::symlinkat(target, dev.as_fd(), name) {
            Ok(()) => {}
            Err(e) if e == Errno::EXIST => {}
            Err(e) => return Err(dev_err(name, "symlink")(e)),
        }
    }
    // /dev/ptmx must be the devpts instance's ptmx, not the host's.
    match rustix::fs::unlinkat(dev.as_fd(), "ptmx", AtFlags::empty()) {
        Ok(()) => {}
        Err(e) if e == Errno::NOENT => {}
        Err(e) => return Err(dev_err("ptmx", "remove")(e)),
    }
    rustix::fs::symlinkat("pts/ptmx", dev.as_fd(), "ptmx").map_err(dev_err("ptmx", "symlink"))?;
    Ok(())
}

fn create_device(root: BorrowedFd<'_>, dev: &Device) -> Result<(), RootfsError> {
    let path = Path::new(&dev.path);
    let err = |step| {
        move |e: Errno| RootfsError::Device {
            path: path.to_path_buf(),
            step,
            source: e.into(),
        }
    };
    let (parent, name) = parent_and_name(path).ok_or_else(|| err("no file name")(Errno::INVAL))?;
    let dir =
        resolve_in_root(root, &parent, Create::Dir).map_err(|source| RootfsError::Resolve {
            path: parent.clone(),
            source,
        })?;
    let rdev = rustix::fs::makedev(dev.major, dev.minor);
    let mode = Mode::from_raw_mode(dev.mode);
    let mut replaced = false;
    loop {
        match rustix::fs::mknodat(dir.as_fd(), &name, dev.kind, mode, rdev) {
            Ok(()) => break,
            Err(e) if e == Errno::EXIST && !replaced => {
                // Keep a node that is already right; replace anything else (a file, a symlink).
                let st = rustix::fs::statat(dir.as_fd(), &name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(err("stat existing"))?;
                if FileType::from_raw_mode(st.st_mode) == dev.kind
                    && (dev.kind == FileType::Fifo || st.st_rdev == rdev)
                {
                    break;
                }
                rustix::fs::unlinkat(dir.as_fd(), &name, AtFlags::empty())
                    .map_err(err("remove existing"))?;
                replaced = true;
            }
            Err(e) => return Err(err("mknod")(e)),
        }
    }
    // mknod's mode went through the umask; fix it (and the owner) on the node itself, held
    // as an O_PATH fd so nothing can swap the name in between.
    let node = rustix::fs::openat(
        dir.as_fd(),
        &name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("open the node"))?;
    rustix::fs::chmodat(
        rustix::fs::CWD,
        proc_fd_path(node.as_fd()),
        mode,
        AtFlags::empty(),
    )
    .map_err(err("chmod"))?;
    rustix::fs::chownat(
        node.as_fd(),
        "",
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        AtFlags::EMPTY_PATH,
    )
    .map_err(err("chown"))?;
    Ok(())
}

fn bind_host_device(root: BorrowedFd<'_>, dev: &Device) -> Result<(), RootfsError> {
    let path = Path::new(&dev.path);
    let target =
        resolve_in_root(root, path, Create::File).map_err(|source| RootfsError::Resolve {
            path: path.to_path_buf(),
            source,
        })?;
    mount_at(Some(path), target.as_fd(), None, MsFlags::MS_BIND, None).map_err(|source| {
        RootfsError::Device {
            path: path.to_path_buf(),
            step: "bind the host's node",
            source,
        }
    })
}
