//! `lo` up in a created container's network namespace (Docker's `none` network has a working
//! loopback), without running a program: `berth_network::netns` joins the namespace from a
//! short-lived thread (`setns` changes only that thread) and sets `IFF_UP` with one ioctl, so no
//! berthd thread that serves requests ever runs inside a container's netns.
//! (It replaced `nsenter ip link set lo up`: two execs and a PATH search per `run`.)

use std::io;
use std::path::PathBuf;

use berth_network::netns::{NetnsError, loopback_up, run_in_netns};

/// Why `lo` could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    /// `/proc/PID/ns/net` could not be opened (the process is gone).
    #[error("opening /proc/{pid}/ns/net")]
    Open {
        /// The container's init.
        pid: i64,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Entering the namespace from the helper thread failed.
    #[error("entering the netns of {pid}")]
    Enter {
        /// The container's init.
        pid: i64,
        /// Cause.
        #[source]
        source: NetnsError,
    },
    /// The socket or the flag ioctls failed.
    #[error("setting lo up")]
    Up(#[source] io::Error),
}

/// Sets `lo` up in the network namespace of `pid`. Blocks for the thread's life (~0.1 ms).
pub fn up(pid: i64) -> Result<(), LoopbackError> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    match run_in_netns(&path, loopback_up) {
        Ok(r) => r.map_err(LoopbackError::Up),
        Err(NetnsError::Open { source, .. }) => Err(LoopbackError::Open { pid, source }),
        Err(source) => Err(LoopbackError::Enter { pid, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child in a fresh netns (lo down) waits on a pipe; `up` must raise its lo, which the
    /// child's own view of /sys/class/net/lo/flags then shows.
    #[test]
    fn brings_lo_up_in_another_netns() {
        use std::io::{Read, Write};
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args([
            "-c",
            "read x; cat /sys/class/net/lo/flags; cat /sys/class/net/lo/operstate",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
        // SAFETY: unshare is async-signal-safe; it runs in the forked child only.
        unsafe {
            cmd.pre_exec(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                println!("SKIP: needs CAP_SYS_ADMIN for a new netns");
                return;
            }
            Err(e) => panic!("spawning: {e}"),
        };
        let pid = i64::from(child.id());
        let res = up(pid);
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child.wait().unwrap();
        res.unwrap();
        let flags =
            u32::from_str_radix(out.lines().next().unwrap().trim_start_matches("0x"), 16).unwrap();
        assert_eq!(flags & libc::IFF_UP as u32, libc::IFF_UP as u32, "{out}");
    }

    #[test]
    fn gone_process_is_an_open_error() {
        assert!(matches!(up(i64::MAX), Err(LoopbackError::Open { .. })));
    }
}
