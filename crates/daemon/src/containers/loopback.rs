//! `lo` up in a created container's network namespace (Docker's `none` network has a working
//! loopback), without running a program: a short-lived thread joins the namespace (`setns`
//! changes only the calling thread's netns) and sets `IFF_UP` with one ioctl. The thread ends
//! right after, so no berthd thread that serves requests ever runs inside a container's netns.
//! (It replaced `nsenter ip link set lo up`: two execs and a PATH search per `run`.)

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

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
    /// `setns` into the namespace failed.
    #[error("entering the netns of {pid}")]
    Enter {
        /// The container's init.
        pid: i64,
        /// OS error.
        #[source]
        source: nix::Error,
    },
    /// The socket or the flag ioctls failed.
    #[error("setting lo up")]
    Up(#[source] io::Error),
    /// The helper thread could not be spawned or panicked.
    #[error("netns helper thread: {0}")]
    Thread(String),
}

/// Sets `lo` up in the network namespace of `pid`. Blocks for the thread's life (~0.1 ms).
pub fn up(pid: i64) -> Result<(), LoopbackError> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|source| LoopbackError::Open { pid, source })?;
    std::thread::Builder::new()
        .name("berth-lo-up".into())
        .spawn(move || -> Result<(), LoopbackError> {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|source| LoopbackError::Enter { pid, source })?;
            set_lo_up().map_err(LoopbackError::Up)
        })
        .map_err(|e| LoopbackError::Thread(e.to_string()))?
        .join()
        .map_err(|_| LoopbackError::Thread("panicked".into()))?
}

/// `IFF_UP` on `lo` of the calling thread's netns.
fn set_lo_up() -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly created descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the ifreq we own, named "lo".
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifru_flags is the union member SIOCGIFFLAGS filled in.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
