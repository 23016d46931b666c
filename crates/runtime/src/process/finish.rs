//! The last steps before `execve`, shared by the container init and `exec`'d processes:
//! rlimits, capabilities, user/groups, no_new_privs, seccomp, fd hygiene, cwd, execve.
//!
//! Order matters. The bounding set is dropped while we still hold CAP_SETPCAP; the uid change
//! happens with PR_SET_KEEPCAPS so the permitted set survives for `apply_sets`. A seccomp
//! filter needs no_new_privs or CAP_SYS_ADMIN to load: with no_new_privs it is loaded last
//! (so it never has to allow the runtime's own setup syscalls), without it before the
//! capability drop. CVE-2024-21626: every fd above the preserved ones becomes close-on-exec
//! and the cwd must resolve inside the container root.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCapabilities, Process};

use crate::security::seccomp::Program;
use crate::security::{caps, rlimits};

/// Default PATH when the process env has none (runc's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why the process could not be exec'd, with the exit code the child uses (runc/Docker:
/// 127 not found, 126 not executable, 1 for setup failures).
#[derive(Debug, Clone)]
pub struct ExecFailure {
    /// Exit code for the child.
    pub code: i32,
    /// The cause, as the user should see it.
    pub message: String,
}

impl ExecFailure {
    fn setup(step: &str, e: impl std::fmt::Display) -> Self {
        ExecFailure {
            code: 1,
            message: format!("{step}: {e}"),
        }
    }
}

/// Options for the final steps.
pub struct FinishOptions<'a> {
    /// The process to become.
    pub process: &'a Process,
    /// A compiled seccomp filter to load.
    pub seccomp: Option<&'a Program>,
    /// fds 3..3+n stay open across exec.
    pub preserve_fds: u32,
    /// Write `process.oomScoreAdj` (the init; exec'd processes inherit the container's).
    pub set_oom_score: bool,
}

/// Become the container process. Returns only on failure.
pub fn finish_and_exec(opts: &FinishOptions<'_>) -> ExecFailure {
    match prepare(opts) {
        Ok((path, argv, envp)) => exec(&path, &argv, &envp, opts),
        Err(f) => f,
    }
}

type Prepared = (PathBuf, Vec<CString>, Vec<CString>);

fn prepare(opts: &FinishOptions<'_>) -> Result<Prepared, ExecFailure> {
    let p = opts.process;
    super::clone::set_name("berth:finish");
    if opts.set_oom_score
        && let Some(adj) = p.oom_score_adj()
    {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| ExecFailure::setup("setting oom_score_adj", e))?;
    }
    if let Some(limits) = p.rlimits() {
        let warnings =
            rlimits::apply(limits).map_err(|e| ExecFailure::setup("setting rlimits", e))?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
    if let Some(mask) = p.user().umask() {
        // SAFETY: umask has no preconditions.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    let no_caps = LinuxCapabilities::default();
    let capabilities = p.capabilities().as_ref().unwrap_or(&no_caps);
    caps::drop_bounding(capabilities)
        .map_err(|e| ExecFailure::setup("dropping bounding capabilities", e))?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    if !nnp && let Some(f) = opts.seccomp {
        f.load()
            .map_err(|e| ExecFailure::setup("loading seccomp filter", e))?;
    }
    set_user(p)?;
    let capabilities = raisable_ambient(capabilities);
    caps::apply_sets(&capabilities).map_err(|e| ExecFailure::setup("applying capabilities", e))?;
    if nnp {
        crate::security::set_no_new_privs()
            .map_err(|e| ExecFailure::setup("setting no_new_privs", e))?;
    }
    enter_cwd(p.cwd())?;
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    let args = p.args().clone().unwrap_or_default();
    let arg0 = args.first().cloned().unwrap_or_default();
    let path = resolve(&arg0, &env)?;
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| ExecFailure::setup("argument or env", "contains NUL"))
    };
    let argv = args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env.iter().map(|a| cstr(a)).collect::<Result<Vec<_>, _>>()?;
    mark_fds_cloexec(opts.preserve_fds)?;
    reset_signals();
    Ok((path, argv, envp))
}

/// The kernel only raises an ambient capability that is both permitted and inheritable; runc
/// skips the others quietly (its default spec lists ambient caps without an inheritable set),
/// so do the same instead of failing.
fn raisable_ambient(c: &LinuxCapabilities) -> LinuxCapabilities {
    let mut out = c.clone();
    let Some(ambient) = c.ambient() else {
        return out;
    };
    let empty = Default::default();
    let permitted = c.permitted().as_ref().unwrap_or(&empty);
    let inheritable = c.inheritable().as_ref().unwrap_or(&empty);
    let keep = ambient
        .iter()
        .filter(|cap| permitted.contains(cap) && inheritable.contains(cap))
        .copied()
        .collect();
    out.set_ambient(Some(keep));
    out
}

fn set_user(p: &Process) -> Result<(), ExecFailure> {
    let user = p.user();
    caps::set_keep_caps(true).map_err(|e| ExecFailure::setup("keepcaps", e))?;
    let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    // SAFETY: setgroups reads `groups.len()` gids from a live Vec.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        // In a user namespace with setgroups denied, an empty list is all we can do.
        if !(groups.is_empty() && e.raw_os_error() == Some(libc::EPERM)) {
            return Err(ExecFailure::setup("setgroups", e));
        }
    }
    let (uid, gid) = (user.uid(), user.gid());
    // SAFETY: setresgid/setresuid with integer arguments.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(ExecFailure::setup(
            &format!("setresgid({gid})"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(ExecFailure::setup(
            &format!("setresuid({uid})"),
            std::io::Error::last_os_error(),
        ));
    }
    caps::set_keep_caps(false).map_err(|e| ExecFailure::setup("keepcaps", e))?;
    Ok(())
}

/// chdir to `cwd` and check the result is inside our root (CVE-2024-21626: a leaked host fd
/// as `/proc/self/fd/N` would put the process outside the container).
fn enter_cwd(cwd: &Path) -> Result<(), ExecFailure> {
    std::env::set_current_dir(cwd).map_err(|e| ExecFailure {
        code: 1,
        message: format!(
            "chdir to cwd ({}) set in config.json failed: {e}",
            cwd.display()
        ),
    })?;
    let outside = || ExecFailure {
        code: 1,
        message: format!(
            "cwd {} resolves outside the container root: refusing (possible leaked fd, CVE-2024-21626)",
            cwd.display()
        ),
    };
    match std::env::current_dir() {
        Ok(real) if real.is_absolute() && !real.starts_with("(unreachable)") => Ok(()),
        _ => Err(outside()),
    }
}

/// Resolve args[0] via PATH from the container env, like Go's exec.LookPath as runc uses it.
fn resolve(arg0: &str, env: &[String]) -> Result<PathBuf, ExecFailure> {
    if arg0.is_empty() {
        return Err(ExecFailure {
            code: 127,
            message: "exec: no command given".into(),
        });
    }
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path_var = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&cand)
            && m.is_file()
            && m.permissions().mode() & 0o111 != 0
        {
            return Ok(cand);
        }
    }
    Err(ExecFailure {
        code: 127,
        message: format!("exec: \"{arg0}\": executable file not found in $PATH"),
    })
}

/// Ignored signals and the blocked mask survive `execve`: the runtime ignores SIGPIPE (as every
/// Rust binary) and a caller may block or ignore others, none of which the container process
/// should inherit.
fn reset_signals() {
    /// The kernel's `struct sigaction` on arches with `sa_restorer` (x86_64, arm64).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // The raw syscall, since glibc refuses its internal real-time signals (32, 33), which a
    // parent may have left ignored too.
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a valid struct; the old action is not requested.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

fn mark_fds_cloexec(preserve: u32) -> Result<(), ExecFailure> {
    let first = 3u32.saturating_add(preserve);
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own fds.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        return Err(ExecFailure::setup(
            "close_range",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn exec(path: &Path, argv: &[CString], envp: &[CString], opts: &FinishOptions<'_>) -> ExecFailure {
    let Ok(cpath) = CString::new(path.as_os_str().as_bytes()) else {
        return ExecFailure::setup("exec path", "contains NUL");
    };
    let nnp = opts.process.no_new_privileges().unwrap_or(false);
    if nnp
        && let Some(f) = opts.seccomp
        && let Err(e) = f.load()
    {
        return ExecFailure::setup("loading seccomp filter", e);
    }
    super::clone::set_name("berth:execve");
    crate::timing::mark("init: execve");
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: all pointers point into live CStrings, both arrays are NULL-terminated.
    unsafe { libc::execve(cpath.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    let e = std::io::Error::last_os_error();
    let shown = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    match e.raw_os_error() {
        Some(libc::ENOENT) => ExecFailure {
            code: 127,
            message: format!("exec: \"{shown}\": no such file or directory"),
        },
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::ENOEXEC) => ExecFailure {
            code: 126,
            message: format!("exec: \"{shown}\": permission denied"),
        },
        _ => ExecFailure {
            code: 126,
            message: format!("exec: \"{shown}\": {e}"),
        },
    }
}
