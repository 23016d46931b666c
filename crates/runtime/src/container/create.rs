//! `create`: validate the bundle, make the state dir, clone the init into its namespaces, place
//! it in its cgroup, write id maps, run the runtime-namespace hooks, and leave the init
//! waiting for `start`. Any failure undoes everything done so far.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use super::{Container, cgroup_path, hook_state, manager, write_pid_file};
use crate::RuntimeError;
use crate::cgroups::CgroupManager;
use crate::hooks::{self, Kind};
use crate::process::channel::{Channel, Msg};
use crate::process::clone::{self, Child};
use crate::process::init::{self, InitConfig};
use crate::process::namespaces::{self, PidForChildren};
use crate::process::socket;
use crate::security::seccomp;
use crate::state::{self, Record, State, StateDir, Status};

/// What `create` needs.
#[derive(Debug)]
pub struct CreateOptions {
    /// Container id ([A-Za-z0-9_.-]+).
    pub id: String,
    /// Bundle directory (holding config.json).
    pub bundle: PathBuf,
    /// State root (`--root`).
    pub root: PathBuf,
    /// Unix socket to receive the pty master when `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// Write the init's host pid here (atomically).
    pub pid_file: Option<PathBuf>,
    /// Move+chroot instead of pivot_root (ramdisk roots).
    pub no_pivot: bool,
    /// stdin, stdout, stderr for the container; `None` inherits the caller's.
    pub stdio: Option<[OwnedFd; 3]>,
    /// Pass fds 3..3+n through to the process.
    pub preserve_fds: u32,
}

/// Undoes a half-made container on drop unless disarmed.
struct Cleanup {
    dir: Option<StateDir>,
    child: Option<i32>,
    cgroup: Option<Box<dyn CgroupManager>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            // SAFETY: kill/waitpid on our own child's pid.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

/// Where compiled seccomp programs are kept for every container under `root` (see
/// [`seccomp::Program`]); a dot name, so no container listing mistakes it for one.
pub(crate) fn seccomp_cache(root: &std::path::Path) -> std::path::PathBuf {
    root.join(".seccomp-cache")
}

/// Create a container: on success the init is a direct child of the caller, blocked until
/// [`Container::start`].
pub fn create(opts: CreateOptions) -> Result<Container, RuntimeError> {
    state::validate_id(&opts.id)?;
    crate::timing::mark("create: start");
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(|e| RuntimeError::io(format!("bundle {}", opts.bundle.display()), e))?;
    let loaded = crate::spec::load(&bundle)?;
    let spec = &loaded.spec;
    let process = crate::spec::process(spec)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() {
        return Err(crate::console::ConsoleError::NoSocket.into());
    }
    if spec.hostname().is_some() && !has_new_ns(spec, oci_spec::runtime::LinuxNamespaceType::Uts) {
        return Err(RuntimeError::Unsupported(
            "hostname is set but the spec has no new uts namespace".into(),
        ));
    }
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::program(s, Some(&seccomp_cache(&opts.root)))?),
        None => None,
    };
    let plan = namespaces::plan(spec)?;
    crate::timing::mark("create: spec loaded");

    let dir = StateDir::create(&opts.root, &opts.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        child: None,
        cgroup: None,
    };
    let spec_json = serde_json::to_vec(spec)
        .map_err(|e| RuntimeError::io("serializing spec", std::io::Error::other(e)))?;
    // Not fsynced, like every runtime state file (see crate::state's docs on durability).
    state::write_file(&dir.path().join(state::CONFIG_FILE), &spec_json, false)
        .map_err(|e| RuntimeError::io("saving config.json", e))?;

    let min_fd = 3 + opts.preserve_fds as i32;
    let io_err = |step: &'static str| move |e| RuntimeError::io(step, e);
    let listener = socket::fd_above(
        socket::listen_at(&dir.start_socket()).map_err(io_err("binding start socket"))?,
        min_fd,
    )
    .map_err(io_err("moving fd"))?;
    let console = match (&opts.console_socket, terminal) {
        (Some(p), true) => Some(
            socket::fd_above(crate::console::connect(p)?, min_fd).map_err(io_err("moving fd"))?,
        ),
        _ => None,
    };
    let (parent_ch, child_ch) = Channel::pair()?;
    let child_ch = Channel::from_fd(
        socket::fd_above(child_ch.into_fd(), min_fd).map_err(io_err("moving fd"))?,
    );

    let cg_path = cgroup_path(spec, &opts.id);
    // The cgroup exists, with its limits, before the init: the init then enters it at clone
    // (cgroup2) and by moving itself (v1 `tasks`), never through the global attach lock (see
    // cgroups::SelfJoin). A user-namespaced init cannot write the host's cgroupfs as itself,
    // so the parent places it the classic way, after the clone.
    let mut join = None;
    if let Some(cg) = manager(&cg_path)?
        && !plan.new_user_ns
        && rustix::process::geteuid().is_root()
    {
        cleanup.cgroup = Some(cg);
        if let Some(cg) = &cleanup.cgroup {
            cg.create_dirs()?;
            if let Some(res) = super::resources::effective(spec) {
                cg.set(&res)?;
            }
            join = Some(cg.self_join());
        }
    }
    // The classic way pays the lock's RCU grace period: start it now so it overlaps the clone.
    let mut primer = join.is_none().then(crate::process::prime::start);
    let into_fd = join
        .as_ref()
        .and_then(|j| j.clone_into.as_ref())
        .and_then(|d| {
            rustix::fs::open(
                d,
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok()
        });
    let pid_ns_guard = match &plan.join_pid {
        Some(fd) => Some(PidForChildren::enter(fd)?),
        None => None,
    };
    let forked = match (&join, &into_fd) {
        (Some(j), Some(fd)) if j.clone_into.is_some() => {
            match clone::fork_into(plan.clone_flags, Some(fd.as_fd())) {
                Ok(f) => Ok(f),
                // Not placeable at clone (an old kernel, a cgroup2 dir that cannot take
                // processes): place the classic way instead.
                Err(_) => {
                    join = None;
                    primer = Some(crate::process::prime::start());
                    clone::fork_with_namespaces(plan.clone_flags)
                }
            }
        }
        (Some(j), None) if j.clone_into.is_some() => {
            join = None;
            primer = Some(crate::process::prime::start());
            clone::fork_with_namespaces(plan.clone_flags)
        }
        _ => clone::fork_with_namespaces(plan.clone_flags),
    }
    .map_err(|e| RuntimeError::io("clone3", e))?;
    let Some(Child { pid, pidfd }) = forked else {
        drop(parent_ch);
        let cfg = InitConfig {
            join_tasks: join.as_ref().map(|j| j.tasks.as_slice()).unwrap_or(&[]),
            wait_continue: join.is_none() || plan.new_user_ns,
            spec,
            rootfs: &loaded.rootfs,
            plan: &plan,
            seccomp: filter.as_ref(),
            listener,
            console,
            stdio: opts.stdio,
            no_pivot: opts.no_pivot,
            preserve_fds: opts.preserve_fds,
        };
        clone::run_child(|| init::run(cfg, child_ch));
    };
    drop((pid_ns_guard, into_fd));
    cleanup.child = Some(pid);
    crate::timing::mark("create: cloned");
    drop((child_ch, listener, console, opts.stdio));

    let start_time = state::proc_stat(pid).map(|s| s.start_time).unwrap_or(0);
    let mut record = Record {
        state: State {
            oci_version: spec.version().clone(),
            id: opts.id.clone(),
            pid,
            status: Status::Creating,
            bundle: bundle.clone(),
            rootfs: loaded.rootfs.clone(),
            created: state::now_rfc3339(),
            owner: String::new(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        },
        init_start_time: start_time,
        cgroup_path: cg_path.clone(),
        new_pid_ns: plan.new_pid_ns,
        paused: false,
    };
    dir.write_record_quick(&record)?;

    // Parent side of the handshake; the child's own error wins over our follow-up errors.
    let result = (|| -> Result<(), RuntimeError> {
        if join.is_none()
            && let Some(cg) = match cleanup.cgroup.take() {
                Some(cg) => Some(cg),
                None => manager(&cg_path)?,
            }
        {
            if let Some(p) = primer.as_mut() {
                p.reap();
            }
            crate::timing::mark("create: primer reaped");
            cleanup.cgroup = Some(cg);
            if let Some(cg) = &cleanup.cgroup {
                cg.apply(pid)?;
                if let Some(res) = super::resources::effective(spec) {
                    cg.set(&res)?;
                }
            }
        }
        if plan.new_user_ns {
            namespaces::write_id_maps(pid, spec)?;
        }
        if join.is_none() || plan.new_user_ns {
            parent_ch.send(&Msg::Continue)?;
        }
        crate::timing::mark("create: cgroup placed");
        if hooks::create_sync_needed(spec) {
            parent_ch.expect("run-runtime-hooks", |m| *m == Msg::RunRuntimeHooks)?;
            let creating = hook_state(&record, Status::Creating);
            hooks::run_all(Kind::Prestart, &hooks::of(spec, Kind::Prestart), &creating)?;
            hooks::run_all(
                Kind::CreateRuntime,
                &hooks::of(spec, Kind::CreateRuntime),
                &creating,
            )?;
            parent_ch.send(&Msg::HooksDone {
                state_json: creating,
            })?;
        }
        parent_ch.expect("ready", |m| *m == Msg::Ready)?;
        crate::timing::mark("create: init ready");
        Ok(())
    })();
    if let Err(e) = result {
        // Stop the child (it may be blocked waiting for us), then look for a message it sent
        // before: if it failed first, that is the real cause.
        // SAFETY: kill on our own, unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        if let Ok(Some(Msg::Error(text))) = parent_ch.recv() {
            return Err(RuntimeError::Channel(
                crate::process::channel::ChannelError::Peer(text),
            ));
        }
        return Err(e);
    }
    record.state.status = Status::Created;
    dir.write_record_quick(&record)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    cleanup.child = None;
    cleanup.cgroup = None;
    cleanup.dir = None;
    crate::timing::mark("create: done");
    Ok(Container { dir, record, pidfd })
}

fn has_new_ns(spec: &oci_spec::runtime::Spec, t: oci_spec::runtime::LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|n| n.typ() == t && n.path().is_none()))
}
