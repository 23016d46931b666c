//! Shedding memory a long-lived process needed for a burst of work but not while idle.
//!
//! The shim runs the runtime library once (create, exec): its heap and the code pages it
//! touched would otherwise stay resident for the container's whole life, and there is one shim
//! per container. berthd touches most of its 20 MB binary at start-up and in bursts of
//! requests, then idles. Both call [`shed`] once they have been idle for a moment.

/// Return freed heap to the kernel and drop read-only file pages (our code, libc's) from the
/// page tables: they stay in the page cache, shared with every other process, and fault back
/// in when used. What the idle loop needs comes back; what only create needed does not.
pub fn shed() {
    // SAFETY: malloc_trim only releases free memory of the allocator; no pointers change.
    unsafe {
        libc::malloc_trim(0);
    }
    drop_clean_file_pages();
}

/// One mapping of /proc/self/smaps, as far as we care.
struct Mapping {
    start: usize,
    end: usize,
    /// Not writable, backed by a file.
    read_only_file: bool,
    /// kB of privately modified (COW) pages.
    anonymous_kb: u64,
}

fn drop_clean_file_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut cur: Option<Mapping> = None;
    let mut all = Vec::new();
    for line in smaps.lines() {
        if let Some(m) = parse_header(line) {
            all.extend(cur.take());
            cur = Some(m);
        } else if let Some(v) = line.strip_prefix("Anonymous:")
            && let Some(m) = &mut cur
        {
            m.anonymous_kb = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(1);
        }
    }
    all.extend(cur);
    for m in all {
        // A read-only file mapping without private pages holds nothing but page-cache pages:
        // dropping them loses nothing. RELRO and data (relocated, hence anonymous) are skipped.
        if m.read_only_file && m.anonymous_kb == 0 {
            // SAFETY: per the check above, the range is a read-only file mapping with no
            // private pages; MADV_DONTNEED only unmaps page-cache pages that fault back in.
            unsafe {
                libc::madvise(
                    m.start as *mut libc::c_void,
                    m.end - m.start,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }
}

/// `start-end perms offset dev inode [path]`; None for the field lines below a header.
fn parse_header(line: &str) -> Option<Mapping> {
    let mut f = line.split_whitespace();
    let (range, perms, _off, _dev, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = perms.as_bytes();
    if perms.len() != 4 {
        return None;
    }
    let inode: u64 = inode.parse().ok()?;
    Some(Mapping {
        start,
        end,
        read_only_file: inode != 0 && perms[1] == b'-' && perms[3] == b'p',
        // Unknown until the Anonymous: line; assume dirty.
        anonymous_kb: 1,
    })
}
