#![allow(clippy::unwrap_used)]

use super::*;
use crate::security::test_support::{in_child, is_root};
use serde_json::json;

fn profile(errno: u32) -> LinuxSeccomp {
    serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["getcwd", "no_such_syscall_berth"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": errno},
        ]
    }))
    .unwrap()
}

fn only_entry(dir: &Path) -> PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].path()
}

#[test]
fn compiles_once_then_reads_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let first = program(&profile(77), Some(&cache)).unwrap();
    assert_eq!(first.filter_flags(), super::super::SECCOMP_FILTER_FLAG_LOG);
    assert_eq!(first.skipped_syscalls(), ["no_such_syscall_berth"]);
    let entry = only_entry(&cache);
    // The entry is what is loaded: plant another profile's program under this key.
    let other = program(&profile(78), None).unwrap();
    assert_ne!(other, first);
    std::fs::write(&entry, other.encode()).unwrap();
    assert_eq!(program(&profile(77), Some(&cache)).unwrap(), other);
}

#[test]
fn a_damaged_entry_is_compiled_again_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let want = program(&profile(77), Some(tmp.path())).unwrap();
    let entry = only_entry(tmp.path());
    let good = std::fs::read(&entry).unwrap();
    for bad in [
        Vec::new(),
        b"garbage".to_vec(),
        good[..good.len() - 3].to_vec(),
        good[..MAGIC.len() + 6].to_vec(),
    ] {
        std::fs::write(&entry, &bad).unwrap();
        assert_eq!(program(&profile(77), Some(tmp.path())).unwrap(), want);
        assert_eq!(std::fs::read(&entry).unwrap(), good);
    }
}

#[test]
fn profiles_get_their_own_entries() {
    let tmp = tempfile::tempdir().unwrap();
    program(&profile(77), Some(tmp.path())).unwrap();
    program(&profile(78), Some(tmp.path())).unwrap();
    program(&profile(77), Some(tmp.path())).unwrap();
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
}

#[test]
fn an_unwritable_cache_still_gives_the_program() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let p = program(&profile(77), Some(&file)).unwrap();
    assert_eq!(p, program(&profile(77), None).unwrap());
}

#[test]
fn a_cached_program_filters() {
    if !is_root() {
        println!("SKIP: needs root (loading without no_new_privs needs CAP_SYS_ADMIN)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    program(&profile(77), Some(tmp.path())).unwrap();
    let cached = program(&profile(77), Some(tmp.path())).unwrap();
    in_child(|| {
        cached.load().map_err(|e| format!("load: {e:?}"))?;
        let mut buf = [0u8; 64];
        // SAFETY: the buffer is valid for its length.
        let rc = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        if rc < 0 && errno == Some(77) {
            Ok(())
        } else {
            Err(format!("getcwd: rc {rc}, errno {errno:?}"))
        }
    });
}
