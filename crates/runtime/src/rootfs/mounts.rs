//! One `mounts` entry of the spec: bind mounts, fresh filesystems, and the special cases
//! (sysfs without a network namespace, devpts and mqueue in a user namespace, cgroups).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{Mount, Spec};

use super::options::{self, MountOptions};
use super::path_safety::{Create, resolve_in_root};
use super::sys::{mount_at, mount_setattr, set_propagation};
use super::{RootfsError, RootfsOptions, cgroup};

/// What every mount entry needs to know about the container being set up.
pub(crate) struct Context<'a> {
    /// The rootfs (already bind-mounted onto itself): every destination is resolved in it.
    pub(crate) root: BorrowedFd<'a>,
    /// The runtime's options.
    pub(crate) opts: RootfsOptions,
    /// The container has its own network namespace (sysfs may be mounted fresh).
    pub(crate) new_net_ns: bool,
    /// The container has its own cgroup namespace (cgroupfs may be mounted fresh).
    pub(crate) new_cgroup_ns: bool,
}

impl Context<'_> {
    /// Resolve `dest` inside the rootfs, creating it as `create` says.
    pub(crate) fn resolve(&self, dest: &Path, create: Create) -> Result<OwnedFd, RootfsError> {
        resolve_in_root(self.root, dest, create).map_err(|source| RootfsError::Resolve {
            path: dest.to_path_buf(),
            source,
        })
    }
}

/// Build the error for a failed step of the mount of `fstype` on `dest`.
pub(crate) fn mount_err(
    dest: &Path,
    fstype: &str,
    step: impl Into<String>,
) -> impl FnOnce(io::Error) -> RootfsError {
    let (dest, fstype, step) = (dest.to_path_buf(), fstype.to_string(), step.into());
    move |source| RootfsError::Mount {
        dest,
        fstype,
        step,
        source,
    }
}

fn is_bind(m: &Mount) -> bool {
    let typ = m.typ().as_deref().unwrap_or("");
    typ == "bind" || options::parse(m.options().as_deref().unwrap_or(&[])).is_bind()
}

/// Whether the spec bind-mounts the host's /dev (then devices are the host's, not ours).
pub(crate) fn dev_is_bind_mounted(spec: &Spec) -> bool {
    spec.mounts()
        .iter()
        .flatten()
        .any(|m| normalize(m.destination()) == Path::new("/dev") && is_bind(m))
}

/// `/a/./b/` → `/a/b` (lexically; for comparisons only, never for resolution).
fn normalize(p: &Path) -> PathBuf {
    Path::new("/").join(
        p.components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect::<PathBuf>(),
    )
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Files in procfs that may be covered by a bind (what lxcfs provides), as runc allows.
const PROC_OVERRIDES: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Refuse to mount over anything in a procfs (say `/proc/self/attr/exec`, or a symlink that
/// leads into /proc): such a mount can defeat LSM and masking set-up that later steps rely
/// on. The check is on the resolved target's filesystem, so symlinks cannot get around it.
fn check_not_over_proc(dest: &Path, fstype: &str, target: &OwnedFd) -> Result<(), RootfsError> {
    let st = rustix::fs::fstatfs(target)
        .map_err(|e| mount_err(dest, fstype, "statfs target")(e.into()))?;
    #[allow(clippy::unnecessary_cast)] // f_type is i64 on x86_64, not everywhere
    let magic = st.f_type as i64;
    if magic == PROC_SUPER_MAGIC
        && !PROC_OVERRIDES
            .iter()
            .any(|p| normalize(dest) == Path::new(p))
    {
        return Err(RootfsError::InvalidMount {
            dest: dest.to_path_buf(),
            reason: "refusing to mount over a procfs path".into(),
        });
    }
    Ok(())
}

/// Whether the spec mounts a fresh, read-only filesystem at /dev: that is mounted writable so
/// devices and mount points can be created in it, and made read-only at the end of `prepare`.
pub(crate) fn dev_wants_readonly(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        normalize(m.destination()) == Path::new("/dev")
            && !is_bind(m)
            && options::parse(m.options().as_deref().unwrap_or(&[]))
                .flags
                .contains(MsFlags::MS_RDONLY)
    })
}

/// Perform one `mounts` entry inside the rootfs.
pub(crate) fn mount_entry(ctx: &Context<'_>, m: &Mount) -> Result<(), RootfsError> {
    let dest = m.destination().as_path();
    let invalid = |reason: &str| RootfsError::InvalidMount {
        dest: dest.to_path_buf(),
        reason: reason.to_string(),
    };
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(invalid("id-mapped mounts are not supported"));
    }
    let mut opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    if opts.data.iter().any(|d| d == "idmap" || d == "ridmap") {
        return Err(invalid("id-mapped mounts are not supported"));
    }
    let typ = m.typ().as_deref().unwrap_or("");
    if opts.is_bind() || typ == "bind" {
        opts.flags |= MsFlags::MS_BIND;
        let source = m
            .source()
            .as_deref()
            .ok_or_else(|| invalid("bind mount without a source"))?;
        return bind(ctx, dest, source, &opts, false);
    }
    match typ {
        "" | "none" => Err(invalid("no filesystem type and no bind option")),
        "cgroup" | "cgroup2" => cgroup::mount_cgroup(ctx, dest, typ, &opts),
        "sysfs" => sysfs(ctx, dest, m.source().as_deref(), &opts),
        _ => fresh(ctx, dest, typ, m.source().as_deref(), &opts),
    }
}

/// Bind `source` (a host path) onto `dest`, then apply the per-mount attributes the options
/// ask for (a bind ignores most `mount(2)` flags, so `ro` etc. need this second step) —
/// recursively too when `rec` (used for host trees like /sys that must be read-only all down).
pub(crate) fn bind(
    ctx: &Context<'_>,
    dest: &Path,
    source: &Path,
    opts: &MountOptions,
    rec: bool,
) -> Result<(), RootfsError> {
    let meta = std::fs::metadata(source).map_err(mount_err(
        dest,
        "bind",
        format!("stat source {}", source.display()),
    ))?;
    let create = if meta.is_dir() {
        Create::Dir
    } else {
        Create::File
    };
    let target = ctx.resolve(dest, create)?;
    check_not_over_proc(dest, "bind", &target)?;
    let flags = opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
    mount_at(Some(source), target.as_fd(), None, flags, None).map_err(mount_err(
        dest,
        "bind",
        format!("bind {}", source.display()),
    ))?;
    // The old fd is the covered directory; the mount is what the path resolves to now.
    let target = ctx.resolve(dest, Create::No)?;
    mount_setattr(target.as_fd(), rec, opts.attrs).map_err(mount_err(
        dest,
        "bind",
        "set mount attributes",
    ))?;
    finish(dest, "bind", target.as_fd(), opts)
}

/// The steps common to every mount: recursive attributes (`rro`, ...), then propagation.
pub(crate) fn finish(
    dest: &Path,
    fstype: &str,
    target: BorrowedFd<'_>,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    mount_setattr(target, true, opts.rec_attrs).map_err(mount_err(
        dest,
        fstype,
        "set recursive mount attributes",
    ))?;
    for &p in &opts.propagation {
        set_propagation(target, p).map_err(mount_err(
            dest,
            fstype,
            format!("set propagation {p:?}"),
        ))?;
    }
    Ok(())
}

/// A new instance of `typ` (tmpfs, proc, devpts, mqueue, ...), flags and data as given.
fn fresh(
    ctx: &Context<'_>,
    dest: &Path,
    typ: &str,
    source: Option<&Path>,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let target = ctx.resolve(dest, Create::Dir)?;
    if typ != "proc" {
        check_not_over_proc(dest, typ, &target)?;
    }
    let mut opts = opts.clone();
    if normalize(dest) == Path::new("/dev") {
        // Read-only only once the devices exist (see `dev_wants_readonly`).
        opts.flags.remove(MsFlags::MS_RDONLY);
    }
    let opts = &opts;
    let source = source.unwrap_or(Path::new(typ));
    let data = opts.data_string();
    let mut res = mount_at(
        Some(source),
        target.as_fd(),
        Some(typ),
        opts.flags,
        data.as_deref(),
    );
    if let Err(e) = &res
        && ctx.opts.in_user_ns
    {
        match (typ, e.raw_os_error()) {
            // gid= names a group that may not be mapped in the user namespace: drop it.
            ("devpts", Some(libc::EINVAL)) if opts.data.iter().any(|d| d.starts_with("gid=")) => {
                let data: Vec<_> = opts
                    .data
                    .iter()
                    .filter(|d| !d.starts_with("gid="))
                    .cloned()
                    .collect();
                let data = (!data.is_empty()).then(|| data.join(","));
                res = mount_at(
                    Some(source),
                    target.as_fd(),
                    Some(typ),
                    opts.flags,
                    data.as_deref(),
                );
            }
            // The IPC namespace is not owned by our user namespace: share the host's mqueue.
            ("mqueue", Some(libc::EPERM)) => {
                let mut b = opts.clone();
                b.flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                b.attrs = flags_as_attrs(opts.flags);
                return bind(ctx, dest, Path::new("/dev/mqueue"), &b, false);
            }
            _ => {}
        }
    }
    res.map_err(mount_err(dest, typ, "mount"))?;
    let target = ctx.resolve(dest, Create::No)?;
    finish(dest, typ, target.as_fd(), opts)
}

/// The per-mount attributes matching `mount(2)` flags (for binds that stand in for a fresh mount).
pub(crate) fn flags_as_attrs(flags: MsFlags) -> options::Attrs {
    use options::attr;
    let mut set = 0;
    for (f, a) in [
        (MsFlags::MS_RDONLY, attr::RDONLY),
        (MsFlags::MS_NOSUID, attr::NOSUID),
        (MsFlags::MS_NODEV, attr::NODEV),
        (MsFlags::MS_NOEXEC, attr::NOEXEC),
    ] {
        if flags.contains(f) {
            set |= a;
        }
    }
    options::Attrs { set, clr: 0 }
}

/// sysfs shows the network devices of the mounter's network namespace, so the kernel refuses a
/// fresh sysfs in a user namespace that does not own its net namespace. Then, like runc and
/// crun, bind the host's /sys recursively, read-only etc. all the way down.
fn sysfs(
    ctx: &Context<'_>,
    dest: &Path,
    source: Option<&Path>,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let host_sys = |ctx: &Context<'_>| {
        let mut b = opts.clone();
        b.flags = MsFlags::MS_BIND | MsFlags::MS_REC;
        b.attrs = flags_as_attrs(opts.flags);
        bind(ctx, dest, Path::new("/sys"), &b, true)
    };
    if ctx.opts.in_user_ns && !ctx.new_net_ns {
        return host_sys(ctx);
    }
    match fresh(ctx, dest, "sysfs", source, opts) {
        Err(RootfsError::Mount { source: e, .. })
            if ctx.opts.in_user_ns
                && matches!(e.raw_os_error(), Some(libc::EPERM | libc::EBUSY)) =>
        {
            host_sys(ctx)
        }
        other => other,
    }
}
