//! The `cgroup` mount: the container sees its own cgroups, never the host's tree.
//!
//! - cgroup v2 host (or a `cgroup2` entry): with a cgroup namespace, a fresh cgroup2 mount
//!   (the kernel roots it at the namespace); without, a bind of the init's own cgroup2 dir.
//! - v1 / hybrid host: a tmpfs at the destination, and under it one directory per hierarchy the
//!   host mounts (`cpu`, `memory`, `systemd`, `unified`, ...) holding either a fresh mount of that
//!   hierarchy (cgroup namespace) or a bind of the init's own cgroup dir in it, found from
//!   `/proc/self/cgroup` — which is why the init must already be in its cgroups. Co-mounted
//!   hierarchies (`cpu,cpuacct`) get one symlink per controller. With `ro` the binds and then
//!   the tmpfs are made read-only.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::RootfsError;
use super::mountinfo::{self, MountInfo};
use super::mounts::{Context, finish, mount_err};
use super::options::{Attrs, MountOptions, attr};
use super::path_safety::{Create, resolve_in_root};
use super::sys::{mount_at, mount_setattr};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// One line of `/proc/self/cgroup`: `id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupLine {
    pub(crate) id: u32,
    pub(crate) controllers: Vec<String>,
    pub(crate) path: PathBuf,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let id = f.next()?.parse().ok()?;
            let controllers = f
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            let path = PathBuf::from(f.next()?);
            Some(CgroupLine {
                id,
                controllers,
                path,
            })
        })
        .collect()
}

/// The host mount of the hierarchy a `/proc/self/cgroup` line names.
fn host_mount_of<'a>(mounts: &'a [MountInfo], line: &CgroupLine) -> Option<&'a MountInfo> {
    if line.id == 0 && line.controllers.is_empty() {
        return mounts.iter().find(|m| m.fstype == "cgroup2");
    }
    mounts.iter().find(|m| {
        m.fstype == "cgroup"
            && line
                .controllers
                .iter()
                .all(|c| m.super_options.split(',').any(|o| o == c))
    })
}

/// Where on the host the init's cgroup of this hierarchy is.
fn own_dir(mount: &MountInfo, line: &CgroupLine) -> Option<PathBuf> {
    let rel = line.path.strip_prefix(&mount.root).ok()?;
    Some(mount.mount_point.join(rel))
}

fn read_state() -> io::Result<(Vec<MountInfo>, Vec<CgroupLine>)> {
    Ok((
        mountinfo::read_self()?,
        parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup")?),
    ))
}

/// Mount the `cgroup`/`cgroup2` entry at `dest`.
pub(crate) fn mount_cgroup(
    ctx: &Context<'_>,
    dest: &Path,
    typ: &str,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let host_v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if typ == "cgroup2" || host_v2 {
        mount_v2(ctx, dest, opts)
    } else {
        mount_v1(ctx, dest, opts)
    }
}

fn mount_v2(ctx: &Context<'_>, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    let target = ctx.resolve(dest, Create::Dir)?;
    if ctx.new_cgroup_ns {
        match mount_at(
            Some(Path::new("cgroup2")),
            target.as_fd(),
            Some("cgroup2"),
            opts.flags,
            None,
        ) {
            Ok(()) => {
                let target = ctx.resolve(dest, Create::No)?;
                return finish(dest, "cgroup2", target.as_fd(), opts);
            }
            // A user namespace that does not own the cgroup namespace: bind instead.
            Err(e)
                if ctx.opts.in_user_ns
                    && matches!(e.raw_os_error(), Some(libc::EPERM | libc::EBUSY)) => {}
            Err(e) => return Err(mount_err(dest, "cgroup2", "mount")(e)),
        }
    }
    let (mounts, lines) = read_state().map_err(mount_err(dest, "cgroup2", "read /proc/self"))?;
    let src = lines
        .iter()
        .find(|l| l.id == 0 && l.controllers.is_empty())
        .and_then(|l| own_dir(host_mount_of(&mounts, l)?, l))
        .ok_or_else(|| RootfsError::InvalidMount {
            dest: dest.to_path_buf(),
            reason: "no cgroup2 hierarchy holds this process".into(),
        })?;
    mount_at(
        Some(&src),
        target.as_fd(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(mount_err(
        dest,
        "cgroup2",
        format!("bind {}", src.display()),
    ))?;
    let target = ctx.resolve(dest, Create::No)?;
    mount_setattr(
        target.as_fd(),
        false,
        super::mounts::flags_as_attrs(opts.flags),
    )
    .map_err(mount_err(dest, "cgroup2", "set mount attributes"))?;
    finish(dest, "cgroup2", target.as_fd(), opts)
}

fn mount_v1(ctx: &Context<'_>, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    let err = |step: String| mount_err(dest, "cgroup", step);
    let target = ctx.resolve(dest, Create::Dir)?;
    // The tmpfs is writable until every hierarchy dir and symlink exists in it.
    let tmpfs_flags = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    mount_at(
        Some(Path::new("tmpfs")),
        target.as_fd(),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .map_err(err("mount tmpfs".into()))?;
    let dir = ctx.resolve(dest, Create::No)?;
    let (mounts, lines) = read_state().map_err(err("read /proc/self".into()))?;
    let hier_attrs = super::mounts::flags_as_attrs(opts.flags);
    let mut seen: Vec<&OsStr> = Vec::new();
    for line in &lines {
        let Some(mount) = host_mount_of(&mounts, line) else {
            continue; // a hierarchy the host does not mount (net_cls here)
        };
        let Some(name) = mount.mount_point.file_name() else {
            continue;
        };
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let sub_path = Path::new(name);
        let sub = resolve_in_root(dir.as_fd(), sub_path, Create::Dir)
            .map_err(err(format!("mkdir {}", sub_path.display())))?;
        if ctx.new_cgroup_ns {
            let (fstype, data) = if mount.fstype == "cgroup2" {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(line.controllers.join(",")))
            };
            mount_at(
                Some(Path::new(fstype)),
                sub.as_fd(),
                Some(fstype),
                opts.flags,
                data.as_deref(),
            )
            .map_err(err(format!("mount {}", sub_path.display())))?;
        } else {
            let src = own_dir(mount, line).ok_or_else(|| RootfsError::InvalidMount {
                dest: dest.to_path_buf(),
                reason: format!(
                    "own cgroup {} is outside {}",
                    line.path.display(),
                    mount.mount_point.display()
                ),
            })?;
            mount_at(
                Some(&src),
                sub.as_fd(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(err(format!("bind {}", src.display())))?;
            let sub = resolve_in_root(dir.as_fd(), sub_path, Create::No)
                .map_err(err(format!("reopen {}", sub_path.display())))?;
            mount_setattr(sub.as_fd(), false, hier_attrs)
                .map_err(err(format!("set attributes of {}", sub_path.display())))?;
        }
        let name_str = name.to_string_lossy();
        if name_str.contains(',') {
            for part in name_str.split(',') {
                match rustix::fs::symlinkat(name, dir.as_fd(), part) {
                    Ok(()) => {}
                    Err(e) if e == rustix::io::Errno::EXIST => {}
                    Err(e) => return Err(err(format!("symlink {part}"))(e.into())),
                }
            }
        }
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        mount_setattr(
            dir.as_fd(),
            false,
            Attrs {
                set: attr::RDONLY,
                clr: 0,
            },
        )
        .map_err(err("make the tmpfs read-only".into()))?;
    }
    finish(dest, "cgroup", dir.as_fd(), opts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_to_host_mounts() {
        let mounts = mountinfo::parse(
            "30 22 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             31 22 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             32 22 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n",
        );
        let lines =
            parse_proc_cgroup("4:cpu,cpuacct:/c1\n1:name=systemd:/c1\n0::/c1\n9:net_cls:/\n");
        assert_eq!(lines.len(), 4);
        let dirs: Vec<_> = lines
            .iter()
            .map(|l| host_mount_of(&mounts, l).and_then(|m| own_dir(m, l)))
            .collect();
        assert_eq!(
            dirs,
            vec![
                Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1")),
                Some(PathBuf::from("/sys/fs/cgroup/systemd/c1")),
                Some(PathBuf::from("/sys/fs/cgroup/unified/c1")),
                None
            ]
        );
    }
}
