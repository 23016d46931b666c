//! CVE regressions. CVE-2019-5736: whatever enters the container runs from a copy of the
//! runtime it cannot write (a private read-only overlayfs view, or a sealed memfd), so
//! overwriting `/proc/<pid>/exe` from inside cannot reach the host binary. CVE-2024-21626: a cwd through a leaked fd (`/proc/self/fd/N`) is refused.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod rt_support;
use rt_support::*;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

fn runtime_bytes() -> Vec<u8> {
    std::fs::read(assert_cmd::cargo::cargo_bin("berth-runtime")).unwrap()
}

#[test]
fn init_runs_from_a_sealed_copy_and_cannot_overwrite_the_host_binary() {
    let rt = Rt::new();
    let before = runtime_bytes();
    // A strong attacker: root in the container with ptrace and DAC override, so /proc/1/exe
    // of the runtime-owned pid 1 is reachable at all.
    let caps = [
        "CAP_SYS_PTRACE",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_SYS_ADMIN",
        "CAP_KILL",
        "CAP_CHOWN",
    ];
    let b = rt.bundle("b", &["sleep", "1000"], |s| {
        s["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
        s["process"]["noNewPrivileges"] = json!(false);
    });
    let id = rt.id("sealed");
    let (ok, err, _) = rt.detached(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let host = std::fs::canonicalize(assert_cmd::cargo::cargo_bin("berth-runtime")).unwrap();
    assert_ne!(exe, host, "the init runs from the host binary");
    assert_sealed(&format!("/proc/{pid}/exe"));
    assert_mappings_unwritable(pid);
    // From inside the created container, pid 1 is still the runtime: try to overwrite it, and
    // every other runtime process visible, while a second exec is being set up.
    let attack = "ls -l /proc/1/exe; \
        for i in 1 2 3 4 5 6 7 8 9 10; do for p in /proc/[0-9]*; do \
          echo x > $p/exe 2>/dev/null && echo WROTE $p; done; done; echo done";
    let mut second = rt
        .cmd()
        .args(["exec", &id, "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = rt.run(&["exec", &id, "sh", "-c", attack]);
    let _ = second.wait();
    let text = stdout(&out);
    assert!(text.contains("/proc/1/exe"), "pid 1 exe inside: {text}");
    assert!(
        !text.contains(host.to_str().unwrap()),
        "pid 1 exe inside: {text}"
    );
    assert!(text.contains("done"), "{text} {}", stderr(&out));
    assert!(!text.contains("WROTE /proc/1"), "{text}");
    assert_eq!(runtime_bytes(), before, "host runtime binary changed");
    // Start it and attack pid 1 and the exec'd processes again.
    assert!(rt.run(&["start", &id]).status.success());
    let out = rt.run(&["exec", &id, "sh", "-c", attack]);
    assert!(stdout(&out).contains("done"));
    assert_eq!(runtime_bytes(), before, "host runtime binary changed");
}

/// `exe` (a `/proc/<pid>/exe` link) is a sealed memfd or a file on a read-only overlayfs, and
/// even root cannot open it for writing.
fn assert_sealed(exe: &str) {
    let target = std::fs::read_link(exe).unwrap();
    let f = std::fs::File::open(exe).unwrap();
    if target.to_string_lossy().starts_with("/memfd:") {
        // SAFETY: fcntl on an fd we own.
        let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
        let want = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        assert_eq!(seals & want, want, "memfd seals {seals:#x}");
    } else {
        let fs = nix::sys::statfs::fstatfs(&f).unwrap();
        assert_eq!(
            fs.filesystem_type(),
            nix::sys::statfs::OVERLAYFS_SUPER_MAGIC,
            "{target:?}"
        );
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(exe)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    }
}

/// The init's file mappings of the runtime (`/proc/<pid>/map_files`, which root reaches even
/// where `exe` is guarded) cannot be written either: rewriting the first byte with itself fails,
/// so even a broken seal leaves the bytes unchanged.
fn assert_mappings_unwritable(pid: i64) {
    use std::os::unix::fs::FileExt;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/map_files")).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::read_link(&path).ok().as_ref() != Some(&exe) {
            continue;
        }
        checked += 1;
        let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        let mut first = [0u8; 1];
        f.read_exact_at(&mut first, 0).unwrap();
        assert!(
            f.write_at(&first, 0).is_err(),
            "{} is writable",
            path.display()
        );
    }
    assert!(
        checked > 0,
        "no mapping of {exe:?} in /proc/{pid}/map_files"
    );
}

#[test]
fn cwd_through_a_missing_fd_is_refused() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| {
        s["process"]["cwd"] = json!("/proc/self/fd/7")
    });
    let id = rt.id("cwd7");
    let out = rt.run(&["run", "-b", b.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cwd (/proc/self/fd/7)"),
        "{}",
        stderr(&out)
    );
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn cwd_through_a_leaked_host_directory_fd_is_refused() {
    let rt = Rt::new();
    // A host directory passed in as fd 3 (--preserve-fds 1), as a leaked fd would be.
    let host_dir = rt.tmp.path().join("host-secret");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("secret"), "s3cret").unwrap();
    let b = rt.bundle("b", &["cat", "secret"], |s| {
        s["process"]["cwd"] = json!("/proc/self/fd/3")
    });
    let id = rt.id("cwd3");
    let dir = std::fs::File::open(&host_dir).unwrap();
    let raw = dir.as_raw_fd();
    let mut cmd = rt.cmd();
    cmd.args(["run", "--preserve-fds", "1", "-b", b.to_str().unwrap(), &id]);
    // SAFETY: pre_exec only calls dup2, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let r = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(!stdout(&out).contains("s3cret"));
    assert!(
        stderr(&out).contains("resolves outside the container root"),
        "{}",
        stderr(&out)
    );
}
