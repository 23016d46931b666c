#![allow(clippy::unwrap_used)]

use super::*;
use crate::security::seccomp::compile;
use crate::security::test_support::{in_child, is_root, status_field, syscall_errno};
use oci_spec::runtime::LinuxSeccompOperator;

const AMD64: Target = Target {
    arch_name: "amd64",
    arch: Some(Arch::ScmpArchX86_64),
};

fn with(extra: &[Capability]) -> Vec<Capability> {
    let mut caps = docker_default_capabilities();
    caps.extend_from_slice(extra);
    caps
}

/// Every rule naming `name`.
fn rules_for<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names().iter().any(|n| n == name))
        .collect()
}

fn allowed_unconditionally(profile: &LinuxSeccomp, name: &str) -> bool {
    rules_for(profile, name)
        .iter()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
}

#[test]
fn default_capabilities_are_dockers_fourteen() {
    let caps = docker_default_capabilities();
    assert_eq!(caps.len(), 14);
    let names: std::collections::BTreeSet<String> = caps
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let want: std::collections::BTreeSet<String> = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, want);
}

#[test]
fn default_profile_shape_for_default_caps() {
    let profile = docker_default_seccomp_for(&docker_default_capabilities(), AMD64, Some((6, 18)));
    assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(profile.default_errno_ret(), Some(1));
    assert_eq!(
        profile.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    for name in [
        "read",
        "write",
        "getpid",
        "execve",
        "arch_prctl",
        "modify_ldt",
        "chroot",
    ] {
        assert!(
            allowed_unconditionally(&profile, name),
            "{name} should be allowed"
        );
    }
    // ptrace family: kernel >= 4.8.
    assert!(allowed_unconditionally(&profile, "ptrace"));
    for name in [
        "unshare",
        "mount",
        "setns",
        "keyctl",
        "add_key",
        "bpf",
        "reboot",
        "kcmp",
        "sync_file_range2",
        "open_by_handle_at",
        "init_module",
        "iopl",
        "clock_settime",
    ] {
        assert!(
            !allowed_unconditionally(&profile, name),
            "{name} must not be allowed"
        );
    }
    // clone only without namespace flags; clone3 fails with ENOSYS.
    let clone = rules_for(&profile, "clone");
    assert_eq!(clone.len(), 1);
    let arg = clone[0].args().as_ref().unwrap()[0];
    assert_eq!(
        (arg.index(), arg.value(), arg.op()),
        (0, 0x7E02_0000, LinuxSeccompOperator::ScmpCmpMaskedEq)
    );
    let clone3 = rules_for(&profile, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(38));
    // socket: any family but AF_VSOCK.
    let socket = rules_for(&profile, "socket");
    assert_eq!(socket.len(), 1);
    let arg = socket[0].args().as_ref().unwrap()[0];
    assert_eq!(
        (arg.value(), arg.op()),
        (40, LinuxSeccompOperator::ScmpCmpNe)
    );
    // personality: exactly the five values.
    let mut personas: Vec<u64> = rules_for(&profile, "personality")
        .iter()
        .map(|s| s.args().as_ref().unwrap()[0].value())
        .collect();
    personas.sort();
    assert_eq!(personas, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
}

#[test]
fn capabilities_unlock_their_syscalls() {
    let admin = docker_default_seccomp_for(&with(&[Capability::SysAdmin]), AMD64, Some((6, 18)));
    for name in [
        "unshare",
        "mount",
        "umount2",
        "setns",
        "sethostname",
        "clone",
        "clone3",
    ] {
        assert!(
            allowed_unconditionally(&admin, name),
            "{name} with CAP_SYS_ADMIN"
        );
    }
    // No restricted clone nor ENOSYS clone3 once CAP_SYS_ADMIN is granted.
    assert_eq!(rules_for(&admin, "clone").len(), 1);
    assert_eq!(rules_for(&admin, "clone3").len(), 1);

    let pairs = [
        (Capability::SysPtrace, "kcmp"),
        (Capability::SysModule, "finit_module"),
        (Capability::SysBoot, "reboot"),
        (Capability::SysTime, "clock_settime"),
        (Capability::SysRawio, "iopl"),
        (Capability::SysPacct, "acct"),
        (Capability::SysNice, "mbind"),
        (Capability::SysTtyConfig, "vhangup"),
        (Capability::DacReadSearch, "open_by_handle_at"),
        (Capability::Syslog, "syslog"),
        (Capability::Bpf, "bpf"),
        (Capability::Perfmon, "perf_event_open"),
    ];
    let base = docker_default_seccomp_for(&docker_default_capabilities(), AMD64, Some((6, 18)));
    for (cap, name) in pairs {
        assert!(
            !allowed_unconditionally(&base, name),
            "{name} without {cap}"
        );
        let profile = docker_default_seccomp_for(&with(&[cap]), AMD64, Some((6, 18)));
        assert!(allowed_unconditionally(&profile, name), "{name} with {cap}");
    }
}

#[test]
fn min_kernel_and_arch_conditions() {
    let caps = docker_default_capabilities();
    let old = docker_default_seccomp_for(&caps, AMD64, Some((4, 7)));
    assert!(!allowed_unconditionally(&old, "ptrace"));
    let unknown = docker_default_seccomp_for(&caps, AMD64, None);
    assert!(!allowed_unconditionally(&unknown, "ptrace"));
    let new = docker_default_seccomp_for(&caps, AMD64, Some((4, 8)));
    assert!(allowed_unconditionally(&new, "ptrace"));

    let arm64 = Target {
        arch_name: "arm64",
        arch: Some(Arch::ScmpArchAarch64),
    };
    let profile = docker_default_seccomp_for(&caps, arm64, Some((6, 1)));
    assert_eq!(
        profile.architectures().as_deref(),
        Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
    );
    assert!(allowed_unconditionally(&profile, "set_tls"));
    assert!(!allowed_unconditionally(&profile, "arch_prctl"));

    let s390x = Target {
        arch_name: "s390x",
        arch: Some(Arch::ScmpArchS390x),
    };
    let profile = docker_default_seccomp_for(&caps, s390x, Some((6, 1)));
    let clone = rules_for(&profile, "clone");
    assert_eq!(clone.len(), 1);
    assert_eq!(clone[0].args().as_ref().unwrap()[0].index(), 1);
}

#[test]
fn kernel_release_parses() {
    assert_eq!(parse_release("6.18.0-1-amd64"), Some((6, 18)));
    assert_eq!(parse_release("4.8"), Some((4, 8)));
    assert_eq!(parse_release("5.15.0+"), Some((5, 15)));
    assert_eq!(parse_release("weird"), None);
    assert!(kernel_version().is_some());
}

#[test]
fn default_profile_compiles_for_this_machine() {
    let profile = docker_default_seccomp(&docker_default_capabilities());
    let filter = compile(&profile).unwrap();
    let program = filter.export_bpf().unwrap();
    assert!(!program.is_empty());
    // Names unknown to this libseccomp are skipped, never the everyday ones.
    println!(
        "skipped by this libseccomp: {:?}",
        filter.skipped_syscalls()
    );
    for name in ["read", "write", "openat", "clone", "socket", "personality"] {
        assert!(
            !filter.skipped_syscalls().iter().any(|s| s == name),
            "{name}"
        );
    }
}

fn expect_errno(what: &str, got: Option<i32>, want: Option<i32>) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: errno {got:?}, want {want:?}"))
    }
}

/// fork+wait must keep working under the profile (clone without namespace flags).
fn fork_works() -> Result<(), String> {
    // SAFETY: the grandchild only calls `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: ends the grandchild at once.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    if rc != pid || !libc::WIFEXITED(status) {
        return Err(format!("waitpid: rc {rc}, status {status:#x}"));
    }
    Ok(())
}

#[test]
fn default_profile_blocks_and_allows_in_a_child() {
    if !is_root() {
        println!("SKIP: needs root (loading without no_new_privs needs CAP_SYS_ADMIN)");
        return;
    }
    let filter = compile(&docker_default_seccomp(&docker_default_capabilities())).unwrap();
    in_child(|| {
        filter.load().map_err(|e| format!("load: {e:?}"))?;
        let unshare = syscall_errno(libc::SYS_unshare, [libc::CLONE_NEWUSER.into(), 0, 0]);
        expect_errno("unshare(CLONE_NEWUSER)", unshare, Some(libc::EPERM))?;
        // KEYCTL_GET_KEYRING_ID of the session keyring (-3).
        let keyctl = syscall_errno(libc::SYS_keyctl, [0, -3, 0]);
        expect_errno("keyctl", keyctl, Some(libc::EPERM))?;
        let clone3 = syscall_errno(libc::SYS_clone3, [0, 0, 0]);
        expect_errno("clone3", clone3, Some(libc::ENOSYS))?;
        let vsock = syscall_errno(libc::SYS_socket, [libc::AF_VSOCK.into(), 1, 0]);
        expect_errno("socket(AF_VSOCK)", vsock, Some(libc::EPERM))?;
        // ADDR_NO_RANDOMIZE is not one of the allowed personalities.
        let persona = syscall_errno(libc::SYS_personality, [0x0040000, 0, 0]);
        expect_errno("personality(ADDR_NO_RANDOMIZE)", persona, Some(libc::EPERM))?;
        let query = syscall_errno(libc::SYS_personality, [0xffff_ffff, 0, 0]);
        expect_errno("personality(query)", query, None)?;
        expect_errno("getpid", syscall_errno(libc::SYS_getpid, [0; 3]), None)?;
        let unix = syscall_errno(
            libc::SYS_socket,
            [libc::AF_UNIX.into(), libc::SOCK_STREAM.into(), 0],
        );
        expect_errno("socket(AF_UNIX)", unix, None)?;
        fork_works()?;
        let mode = status_field("Seccomp")?;
        let nnp = status_field("NoNewPrivs")?;
        if mode != "2" || nnp != "0" {
            return Err(format!("Seccomp {mode}, NoNewPrivs {nnp}"));
        }
        // The report itself goes through write(2), which the profile allows.
        Ok(())
    });
}

#[test]
fn cap_sys_admin_profile_allows_unshare_in_a_child() {
    if !is_root() {
        println!("SKIP: needs root (unshare and loading without no_new_privs)");
        return;
    }
    let filter = compile(&docker_default_seccomp(&with(&[Capability::SysAdmin]))).unwrap();
    in_child(|| {
        filter.load().map_err(|e| format!("load: {e:?}"))?;
        // The new namespace dies with this child.
        let unshare = syscall_errno(libc::SYS_unshare, [libc::CLONE_NEWUTS.into(), 0, 0]);
        expect_errno("unshare(CLONE_NEWUTS)", unshare, None)?;
        let keyctl = syscall_errno(libc::SYS_keyctl, [0, -3, 0]);
        expect_errno("keyctl", keyctl, Some(libc::EPERM))
    });
}
