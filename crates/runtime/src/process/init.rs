//! The container init: the child of `clone3`, already in its new namespaces. It finishes the
//! namespace setup, builds the filesystem, reports `Ready`, waits for `start` on the start
//! socket, then becomes the user process. Every failure is sent to whoever waits (the create
//! parent before `Ready`, the `start` caller after) before the init exits.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::Spec;

use super::channel::{Channel, Msg};
use super::clone::set_name;
use super::finish::{FinishOptions, finish_and_exec};
use super::namespaces::{self, Plan};
use crate::hooks;
use crate::rootfs::{self, RootfsOptions};
use crate::security::seccomp::Program;

/// What the init needs; built by the parent before clone (the child owns its copy).
pub struct InitConfig<'a> {
    /// v1 `tasks` files to write `0` to before anything else (the init places itself, see
    /// `cgroups::SelfJoin`); empty when the parent places it.
    pub join_tasks: &'a [std::path::PathBuf],
    /// Wait for the parent's `Continue` before the setup: it places us in the cgroup (classic
    /// way) or writes our user-namespace id maps. Otherwise nothing to wait for.
    pub wait_continue: bool,
    /// The validated spec.
    pub spec: &'a Spec,
    /// Absolute rootfs path (host view).
    pub rootfs: &'a Path,
    /// Namespaces to join/unshare.
    pub plan: &'a Plan,
    /// Compiled seccomp filter.
    pub seccomp: Option<&'a Program>,
    /// Listening start socket.
    pub listener: OwnedFd,
    /// Connected console socket when `process.terminal`.
    pub console: Option<OwnedFd>,
    /// stdio to install (None: inherited).
    pub stdio: Option<[OwnedFd; 3]>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// fds 3..3+n survive exec.
    pub preserve_fds: u32,
}

/// The init's whole life after clone; returns the exit code on failure.
pub fn run(cfg: InitConfig<'_>, ch: Channel) -> i32 {
    set_name("berth:init");
    crate::timing::mark("init: cloned");
    let InitConfig {
        join_tasks,
        wait_continue,
        spec,
        rootfs,
        plan,
        seccomp,
        listener,
        console,
        stdio,
        no_pivot,
        preserve_fds,
    } = cfg;
    if let Err(text) = join_cgroup(join_tasks) {
        let _ = ch.send(&Msg::Error(text));
        return 1;
    }
    if let Some(fds) = stdio
        && let Err(e) = super::socket::install_stdio(fds)
    {
        let _ = ch.send(&Msg::Error(format!("installing stdio: {e}")));
        return 1;
    }
    let setup = setup(
        spec,
        rootfs,
        plan,
        console.as_ref(),
        no_pivot,
        wait_continue,
        &ch,
    );
    drop(console);
    if let Err(text) = setup {
        let _ = ch.send(&Msg::Error(text));
        return 1;
    }
    if ch.send(&Msg::Ready).is_err() {
        return 1;
    }
    drop(ch);

    set_name("berth:wait-start");
    let conn = match super::socket::accept_one(&listener) {
        Ok(c) => Channel::from_fd(c),
        Err(_) => return 1,
    };
    drop(listener);
    let state_json = match conn.expect("start", |m| matches!(m, Msg::Start { .. })) {
        Ok(Msg::Start { state_json }) => state_json,
        _ => return 1,
    };
    set_name("berth:start");
    crate::timing::mark("init: start received");
    let Some(process) = spec.process().as_ref() else {
        let _ = conn.send(&Msg::Error("config.json has no process".into()));
        return 1;
    };
    if let Err(e) = hooks::run_all(
        hooks::Kind::StartContainer,
        &hooks::of(spec, hooks::Kind::StartContainer),
        &state_json,
    ) {
        let _ = conn.send(&Msg::Error(crate::error_chain(&e)));
        return 1;
    }
    let fail = finish_and_exec(&FinishOptions {
        process,
        seccomp,
        preserve_fds,
        set_oom_score: true,
    });
    let _ = conn.send(&Msg::Error(fail.message));
    fail.code
}

/// Move this (single-threaded) process into each v1 hierarchy's cgroup by writing `0` to its
/// `tasks` file: a thread moving itself skips the kernel's global attach lock.
fn join_cgroup(tasks: &[std::path::PathBuf]) -> Result<(), String> {
    use std::io::Write;
    for path in tasks {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(b"0"))
            .map_err(|e| format!("joining cgroup {}: {e}", path.display()))?;
    }
    if !tasks.is_empty() {
        crate::timing::mark("init: joined cgroup");
    }
    Ok(())
}

fn err_text(step: &str, e: &(dyn std::error::Error + 'static)) -> String {
    format!("{step}: {}", crate::error_chain(e))
}

fn setup(
    spec: &Spec,
    rootfs: &Path,
    plan: &Plan,
    console: Option<&OwnedFd>,
    no_pivot: bool,
    wait_continue: bool,
    ch: &Channel,
) -> Result<(), String> {
    if wait_continue {
        ch.expect("continue", |m| *m == Msg::Continue)
            .map_err(|e| err_text("waiting for the runtime", &e))?;
    }
    if plan.new_user_ns {
        // The parent wrote our maps: become the namespace's root.
        // SAFETY: setresgid/setresuid with integer arguments.
        let r = unsafe { libc::setresgid(0, 0, 0) } | unsafe { libc::setresuid(0, 0, 0) };
        if r != 0 {
            return Err(format!(
                "becoming root in the user namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    namespaces::join_paths(plan).map_err(|e| err_text("joining namespaces", &e))?;
    namespaces::unshare_cgroup(plan).map_err(|e| err_text("cgroup namespace", &e))?;
    crate::timing::mark("init: placed");
    set_name("berth:mounts");
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| format!("sethostname {h:?}: {e}"))?;
    }
    if let Some(d) = spec.domainname() {
        set_domainname(d)?;
    }
    let opts = RootfsOptions {
        in_user_ns: plan.new_user_ns
            || plan
                .join
                .iter()
                .any(|(t, _)| *t == oci_spec::runtime::LinuxNamespaceType::User),
        no_pivot,
    };
    rootfs::prepare(spec, rootfs, opts).map_err(|e| err_text("preparing rootfs", &e))?;
    crate::timing::mark("init: rootfs prepared");
    if hooks::create_sync_needed(spec) {
        ch.send(&Msg::RunRuntimeHooks)
            .map_err(|e| err_text("sync", &e))?;
        let state_json = match ch.expect("hooks-done", |m| matches!(m, Msg::HooksDone { .. })) {
            Ok(Msg::HooksDone { state_json }) => state_json,
            Ok(_) => String::new(),
            Err(e) => return Err(err_text("waiting for runtime hooks", &e)),
        };
        set_name("berth:hooks");
        hooks::run_all(
            hooks::Kind::CreateContainer,
            &hooks::of(spec, hooks::Kind::CreateContainer),
            &state_json,
        )
        .map_err(|e| crate::error_chain(&e))?;
    }
    set_name("berth:pivot");
    rootfs::pivot(rootfs, opts).map_err(|e| err_text("pivot_root", &e))?;
    rootfs::finalize(spec, opts).map_err(|e| err_text("finalizing rootfs", &e))?;
    crate::timing::mark("init: pivoted+finalized");
    if let Some(process) = spec.process()
        && process.terminal().unwrap_or(false)
    {
        let sock = console.ok_or_else(|| crate::console::ConsoleError::NoSocket.to_string())?;
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        crate::console::setup_pty(sock.as_raw_fd(), size).map_err(|e| err_text("terminal", &e))?;
    }
    Ok(())
}

fn set_domainname(name: &str) -> Result<(), String> {
    // SAFETY: setdomainname reads `len` bytes from a live str.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if r != 0 {
        return Err(format!(
            "setdomainname {name:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
