//! Unix socket paths that fit `sun_path` (108 bytes) even in deep state dirs: temp data roots
//! in tests and long exec roots exceed it. A long `dir/name` is reached through an O_PATH fd on
//! the dir kept open for the shim's life: `/proc/<shim pid>/fd/<n>/name` (short, and usable by
//! the runtime's child processes too).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Longest path used as is (sun_path minus the terminating NUL, with margin).
const MAX_DIRECT: usize = 100;

/// The state dir, held open.
pub struct SockDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl SockDir {
    /// Open `path` (a directory) with O_PATH.
    pub fn open(path: &Path) -> io::Result<SockDir> {
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(SockDir {
            path: path.to_path_buf(),
            fd: OwnedFd::from(f),
        })
    }

    /// A bindable/connectable path for `name` in the dir.
    pub fn sock_path(&self, name: &str) -> PathBuf {
        let direct = self.path.join(name);
        if direct.as_os_str().len() <= MAX_DIRECT {
            return direct;
        }
        PathBuf::from(format!(
            "/proc/{}/fd/{}/{name}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}
