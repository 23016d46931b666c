//! The start socket in the state dir and small fd helpers.
//!
//! `sun_path` holds 108 bytes; temp state roots in tests exceed that, so long paths are
//! reached through `/proc/self/fd/<dirfd>/<name>` of an fd on the directory.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, connect, listen, socket,
};

/// Longest path we bind or connect directly.
const MAX_DIRECT: usize = 100;

fn with_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= MAX_DIRECT {
        return f(path);
    }
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket path has no dir"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket path has no name"))?;
    let d = std::fs::File::open(dir)?;
    let short = Path::new("/proc/self/fd")
        .join(d.as_raw_fd().to_string())
        .join(name);
    f(&short)
}

fn stream_socket() -> io::Result<OwnedFd> {
    Ok(socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// Bind and listen on a stream socket at `path`.
pub fn listen_at(path: &Path) -> io::Result<OwnedFd> {
    let fd = stream_socket()?;
    with_short_path(path, |p| {
        bind(fd.as_raw_fd(), &UnixAddr::new(p)?)?;
        Ok(())
    })?;
    listen(&fd, Backlog::new(1)?)?;
    Ok(fd)
}

/// Connect to the stream socket at `path`.
pub fn connect_to(path: &Path) -> io::Result<OwnedFd> {
    let fd = stream_socket()?;
    with_short_path(path, |p| {
        connect(fd.as_raw_fd(), &UnixAddr::new(p)?)?;
        Ok(())
    })?;
    Ok(fd)
}

/// Accept one connection (retrying on EINTR).
pub fn accept_one(listener: &OwnedFd) -> io::Result<OwnedFd> {
    loop {
        match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // SAFETY: accept4 returned a new fd we own.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Move `fd` to a number >= `min` (close-on-exec), so it cannot collide with preserved fds.
pub fn fd_above(fd: OwnedFd, min: i32) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd we own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// In a child: put `fds` on 0, 1, 2 (moved out of the way first so sources in 0..2 are safe).
pub fn install_stdio(fds: [OwnedFd; 3]) -> io::Result<()> {
    let moved = fds
        .into_iter()
        .map(|fd| fd_above(fd, 3))
        .collect::<io::Result<Vec<_>>>()?;
    for (i, fd) in moved.iter().enumerate() {
        // SAFETY: dup2 between valid fds; the target is a stdio number.
        if unsafe { libc::dup2(fd.as_raw_fd(), i as i32) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_socket_path() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let p = deep.join("start.sock");
        assert!(p.as_os_str().len() > 108);
        let l = listen_at(&p).unwrap();
        let c = connect_to(&p).unwrap();
        let a = accept_one(&l).unwrap();
        let (ca, cb) = (
            super::super::channel::Channel::from_fd(c),
            super::super::channel::Channel::from_fd(a),
        );
        ca.send(&super::super::channel::Msg::Ready).unwrap();
        assert_eq!(cb.recv().unwrap(), Some(super::super::channel::Msg::Ready));
    }
}
