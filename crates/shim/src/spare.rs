//! A spare shim: started by berthd ahead of need (`berth-shim --spare PADDING`), sealed,
//! detached and idle until berthd hands it a container's arguments, so starting a container
//! does not wait for a process to be spawned, exec'd, linked and detached (~2.5 ms here).
//!
//! The arguments arrive on fd 4 as one JSON array of strings, then EOF; EOF without them (berthd
//! stopped or had no use for this spare) ends the spare. Once it has them, the spare writes
//! them over its own command line, so `ps` and tools that find shims by `--id`/`--state-dir`
//! see what any shim shows: the kernel's `/proc/<pid>/cmdline` is the process's original
//! argument area, which the padding argument made large enough (without CAP_SYS_RESOURCE a
//! process cannot point it elsewhere).

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

/// The fd the arguments arrive on.
const ARGS_FD: std::os::fd::RawFd = 4;

/// First argument that makes a shim a spare.
pub const FLAG: &str = "--spare";

/// Block until berthd sends the arguments; None when it closed the pipe without any (or sent
/// something that is not a JSON array of strings).
pub fn wait_for_args() -> Option<Vec<OsString>> {
    let fd = crate::sys::inherited_fd(ARGS_FD)?;
    let mut text = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut text).ok()?;
    let args: Vec<String> = serde_json::from_slice(&text).ok()?;
    Some(args.into_iter().map(OsString::from).collect())
}

/// Write `program` and `args` over the original argument area (NUL-separated, truncated to
/// fit, the rest zeroed). Best effort: without /proc the command line stays `--spare`.
pub fn retitle(program: &OsString, args: &[OsString]) {
    let Some((start, end)) = arg_area() else {
        return;
    };
    let mut line: Vec<u8> = Vec::new();
    for a in std::iter::once(program).chain(args) {
        line.extend_from_slice(a.as_bytes());
        line.push(0);
    }
    let len = end.saturating_sub(start);
    if len == 0 {
        return;
    }
    line.resize(len, 0);
    // The last byte stays NUL whatever was cut, as the kernel expects of the area.
    if let Some(last) = line.last_mut() {
        *last = 0;
    }
    // SAFETY: [start, end) is this process's argument area (from /proc/self/stat): mapped,
    // writable stack memory that only the kernel's cmdline reader and our own (already
    // consumed) argv pointers refer to; we write exactly `len` bytes into it.
    unsafe { std::ptr::copy_nonoverlapping(line.as_ptr(), start as *mut u8, len) };
}

/// `arg_start` and `arg_end` from /proc/self/stat (fields 48 and 49).
fn arg_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name, which may itself hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argument_area_is_found() {
        let (start, end) = arg_area().unwrap();
        assert!(end > start);
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(cmdline.len(), end - start);
    }
}
