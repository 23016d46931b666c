//! The runc-compatible command line. Parsing and output only: every operation is a call into
//! [`crate::container`]. Errors go to stderr (and `--log`), exit status 1; `run` and `exec`
//! pass the container process's status through.

mod foreground;
mod log;
mod spec_cmd;
pub use spec_cmd::default_spec;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::RuntimeError;
use crate::container::{self, CreateOptions, ExecOptions};
use crate::state::DEFAULT_ROOT;

/// berth-runtime: a runc-compatible OCI runtime.
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", version, about)]
pub struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Also write errors and warnings to this file.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Debug output.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd cgroups (not supported: accepted for compatibility, errors if set).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by create and run.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bundle directory.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket receiving the pty master.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Do not use pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Pass this many extra fds (3..3+N) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (the process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Create and start a container; wait for it unless --detach.
    Run {
        /// Create/start options.
        #[command(flatten)]
        create: CreateArgs,
        /// Return after starting.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Keep the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print the container's state JSON.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal to the container.
    Kill {
        /// Signal every process in the container.
        #[arg(long, short = 'a')]
        all: bool,
        /// Container id.
        id: String,
        /// Signal name (TERM, SIGTERM) or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container.
    Delete {
        /// Kill it first if it is not stopped.
        #[arg(long, short = 'f')]
        force: bool,
        /// Container id.
        id: String,
    },
    /// List containers.
    List {
        /// Only ids.
        #[arg(long, short = 'q')]
        quiet: bool,
        /// table or json.
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Processes in the container.
    Ps {
        /// table or json.
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Container id.
        id: String,
    },
    /// Run a process in a running container.
    Exec(ExecArgs),
    /// Freeze the container.
    Pause {
        /// Container id.
        id: String,
    },
    /// Thaw the container.
    Resume {
        /// Container id.
        id: String,
    },
    /// Write a default config.json.
    Spec {
        /// Bundle directory.
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// A spec for rootless use (user namespace).
        #[arg(long)]
        rootless: bool,
    },
    /// Print the runtime's features JSON.
    Features,
}

/// `exec` options.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// process.json with the process to run.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Allocate a pty (needs --console-socket).
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Return after starting.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Unix socket receiving the pty master.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Write the process's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Working directory.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment (KEY=VALUE).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// uid[:gid].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Pass this many extra fds.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Run the CLI; returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let logger = log::Logger::new(cli.log.clone(), cli.log_format == "json");
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&crate::error_chain(&e));
            e.exit_code()
        }
    }
}

/// Whether a command needs the sealed-memfd re-exec (CVE-2019-5736): every command whose
/// process, or a clone of it, enters a container.
pub fn needs_sealed_binary(args: &[std::ffi::OsString]) -> bool {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if matches!(a.as_ref(), "--root" | "--log" | "--log-format") {
            it.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        return matches!(a.as_ref(), "create" | "run" | "exec");
    }
    false
}

fn dispatch(cli: Cli) -> Result<i32, RuntimeError> {
    if cli.systemd_cgroup {
        return Err(RuntimeError::Unsupported(
            "--systemd-cgroup is not supported".into(),
        ));
    }
    let root = cli.root;
    match cli.command {
        Command::Create(a) => {
            container::create(create_options(a, &root))?;
            Ok(0)
        }
        Command::Start { id } => {
            container::load(&root, &id)?.start()?;
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
        } => foreground::run(create_options(create, &root), detach, keep),
        Command::State { id } => {
            let s = container::load(&root, &id)?.state();
            print_json(&s)?;
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            container::kill(&root, &id, parse_signal(&signal)?, all)?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            container::delete(&root, &id, force)?;
            Ok(0)
        }
        Command::List { quiet, format } => {
            let all = container::list(&root)?;
            let mut out = std::io::stdout().lock();
            if quiet {
                for s in &all {
                    let _ = writeln!(out, "{}", s.id);
                }
            } else if format == "json" {
                print_json(&all)?;
            } else {
                let _ = writeln!(out, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
                for s in &all {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        s.id,
                        s.pid,
                        s.status,
                        s.bundle.display(),
                        s.created,
                        if s.owner.is_empty() { "root" } else { &s.owner }
                    );
                }
            }
            Ok(0)
        }
        Command::Ps { format, id } => {
            let pids = container::ps(&root, &id)?;
            if format == "json" {
                print_json(&pids)?;
            } else {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "PID\tCMD");
                for p in pids {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    let _ = writeln!(out, "{p}\t{}", cmd.trim_end());
                }
            }
            Ok(0)
        }
        Command::Exec(a) => exec(a, &root),
        Command::Pause { id } => {
            container::pause(&root, &id)?;
            Ok(0)
        }
        Command::Resume { id } => {
            container::resume(&root, &id)?;
            Ok(0)
        }
        Command::Spec { bundle, rootless } => {
            spec_cmd::write_spec(&bundle, rootless)?;
            Ok(0)
        }
        Command::Features => {
            print_json(&spec_cmd::features())?;
            Ok(0)
        }
    }
}

fn create_options(a: CreateArgs, root: &std::path::Path) -> CreateOptions {
    CreateOptions {
        id: a.id,
        bundle: a.bundle,
        root: root.to_path_buf(),
        console_socket: a.console_socket,
        pid_file: a.pid_file,
        no_pivot: a.no_pivot,
        stdio: None,
        preserve_fds: a.preserve_fds + listen_fds(),
    }
}

/// Socket activation (`LISTEN_FDS=n` in our environment, as systemd sets it): those fds
/// (3..3+n) pass through to the container like `--preserve-fds`, as runc does.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn exec(a: ExecArgs, root: &std::path::Path) -> Result<i32, RuntimeError> {
    let c = container::load(root, &a.id)?;
    let mut process = match &a.process {
        Some(p) => {
            let bytes = std::fs::read(p)
                .map_err(|e| RuntimeError::io(format!("reading {}", p.display()), e))?;
            serde_json::from_slice::<oci_spec::runtime::Process>(&bytes).map_err(|e| {
                RuntimeError::io(format!("parsing {}", p.display()), std::io::Error::other(e))
            })?
        }
        None => {
            if a.args.is_empty() {
                return Err(RuntimeError::Unsupported(
                    "exec needs a command (or -p process.json)".into(),
                ));
            }
            let mut p = c.spec()?.process().clone().unwrap_or_default();
            p.set_args(Some(a.args.clone()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    if let Some(cwd) = &a.cwd {
        process.set_cwd(cwd.clone());
    }
    if !a.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(a.env.iter().cloned());
        process.set_env(Some(env));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = parse_user(u)?;
        process.user_mut().set_uid(uid);
        process.user_mut().set_gid(gid);
    }
    if a.tty {
        process.set_terminal(Some(true));
    }
    let p = container::exec(
        root,
        &a.id,
        &process,
        ExecOptions {
            stdio: None,
            console_socket: a.console_socket,
            pid_file: a.pid_file,
            preserve_fds: a.preserve_fds,
            detach: a.detach,
        },
    )?;
    if a.detach {
        return Ok(0);
    }
    foreground::wait_forwarding(p.pid(), p.pidfd())
}

fn parse_user(u: &str) -> Result<(u32, u32), RuntimeError> {
    let bad = || RuntimeError::Unsupported(format!("--user {u:?}: expected uid[:gid]"));
    let (a, b) = u.split_once(':').unwrap_or((u, "0"));
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// Parse "TERM", "SIGTERM", "15".
pub fn parse_signal(s: &str) -> Result<i32, RuntimeError> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| RuntimeError::Unsupported(format!("unknown signal {s:?}")))
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), RuntimeError> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| RuntimeError::io("encoding JSON", std::io::Error::other(e)))?;
    let mut out = std::io::stdout().lock();
    // A closed stdout (`| head`) is not an error worth reporting.
    let _ = writeln!(out, "{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("usr1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn sealed_for_entering_commands() {
        let v = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(needs_sealed_binary(&v(&["x", "--root", "/r", "run", "a"])));
        assert!(!needs_sealed_binary(&v(&[
            "x", "--root", "/r", "kill", "a"
        ])));
        assert!(needs_sealed_binary(&v(&["x", "run", "a"])));
        assert!(needs_sealed_binary(&v(&["x", "exec", "a", "sh"])));
        assert!(!needs_sealed_binary(&v(&["x", "state", "a"])));
    }
}
