#![allow(clippy::unwrap_used)]

use super::*;
use crate::security::test_support::{in_child, is_root, status_field};
use serde_json::json;

fn spec(value: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(value).unwrap()
}

/// Run a raw syscall and return its errno, or `None` if it succeeded.
fn errno_of(rc: libc::c_long) -> Option<i32> {
    if rc < 0 {
        std::io::Error::last_os_error().raw_os_error()
    } else {
        None
    }
}

fn expect_errno(what: &str, got: Option<i32>, want: Option<i32>) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: errno {got:?}, want {want:?}"))
    }
}

fn getcwd_errno() -> Option<i32> {
    let mut buf = [0u8; 4096];
    // SAFETY: the buffer is valid for its length.
    errno_of(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })
}

fn mkdirat_errno() -> Option<i32> {
    let path = c"/nonexistent-berth-dir/child";
    // SAFETY: a valid NUL-terminated path; the parent does not exist, so nothing is created.
    errno_of(unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o755) })
}

fn getpgid_errno(pid: libc::c_long) -> Option<i32> {
    // SAFETY: getpgid takes a plain integer.
    errno_of(unsafe { libc::syscall(libc::SYS_getpgid, pid) })
}

fn errno_rules() -> LinuxSeccomp {
    spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EOPNOTSUPP},
            {"names": ["getcwd", "no_such_syscall_berth"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": libc::EBADFD},
        ]
    }))
}

#[test]
fn errno_rules_apply_and_nnp_stays_off() {
    if !is_root() {
        println!("SKIP: needs root (loading without no_new_privs needs CAP_SYS_ADMIN)");
        return;
    }
    let filter = compile(&errno_rules()).unwrap();
    assert_eq!(filter.skipped_syscalls(), ["no_such_syscall_berth"]);
    in_child(|| {
        // Unfiltered, these fail differently (or not at all).
        expect_errno("mkdirat before", mkdirat_errno(), Some(libc::ENOENT))?;
        expect_errno("getcwd before", getcwd_errno(), None)?;
        filter.load().map_err(|e| format!("load: {e:?}"))?;
        expect_errno("mkdirat", mkdirat_errno(), Some(libc::EOPNOTSUPP))?;
        expect_errno("getcwd", getcwd_errno(), Some(libc::EBADFD))?;
        let mode = status_field("Seccomp")?;
        let nnp = status_field("NoNewPrivs")?;
        if mode != "2" || nnp != "0" {
            return Err(format!("Seccomp {mode}, NoNewPrivs {nnp}; want 2 and 0"));
        }
        Ok(())
    });
}

#[test]
fn loads_unprivileged_with_no_new_privs() {
    let filter = compile(&errno_rules()).unwrap();
    in_child(|| {
        crate::security::set_no_new_privs().map_err(|e| format!("{e:?}"))?;
        if is_root() {
            // Prove the load does not rely on root: drop every capability first.
            caps::clear(None, caps::CapSet::Effective).map_err(|e| e.to_string())?;
        }
        filter.load().map_err(|e| format!("load: {e:?}"))?;
        expect_errno("getcwd", getcwd_errno(), Some(libc::EBADFD))?;
        let nnp = status_field("NoNewPrivs")?;
        (nnp == "1")
            .then_some(())
            .ok_or(format!("NoNewPrivs {nnp}"))
    });
}

#[test]
fn load_without_nnp_or_cap_sys_admin_fails() {
    let filter = compile(&errno_rules()).unwrap();
    in_child(|| {
        if is_root() {
            caps::clear(None, caps::CapSet::Effective).map_err(|e| e.to_string())?;
        }
        match filter.load() {
            Err(SeccompError::Load(_)) => Ok(()),
            other => Err(format!("expected a Load error, got {other:?}")),
        }
    });
}

#[test]
fn argument_condition_blocks_only_the_matching_call() {
    if !is_root() {
        println!("SKIP: needs root (loading without no_new_privs needs CAP_SYS_ADMIN)");
        return;
    }
    const PER_LINUX32: u64 = 0x0008;
    let filter = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOMSG,
            "args": [{"index": 0, "value": PER_LINUX32, "op": "SCMP_CMP_EQ"}]
        }]
    })))
    .unwrap();
    in_child(|| {
        filter.load().map_err(|e| format!("load: {e:?}"))?;
        // 0xffffffff only queries the persona.
        // SAFETY: personality takes a plain integer.
        let query = errno_of(unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) });
        expect_errno("personality(query)", query, None)?;
        // SAFETY: as above; blocked by the filter, so the persona does not change.
        let set = errno_of(unsafe { libc::syscall(libc::SYS_personality, PER_LINUX32) });
        expect_errno("personality(PER_LINUX32)", set, Some(libc::ENOMSG))
    });
}

#[test]
fn every_operator_compares_as_specified() {
    if !is_root() {
        println!("SKIP: needs root (loading without no_new_privs needs CAP_SYS_ADMIN)");
        return;
    }
    // Pids beyond pid_max: unfiltered, getpgid fails with ESRCH; a matching rule gives ENOSTR.
    const V: i64 = 1_000_000; // 0xF4240
    let probes = [V - 1, V, V + 1];
    let cases: [(&str, serde_json::Value, [bool; 3]); 7] = [
        ("SCMP_CMP_NE", json!(V), [true, false, true]),
        ("SCMP_CMP_LT", json!(V), [true, false, false]),
        ("SCMP_CMP_LE", json!(V), [true, true, false]),
        ("SCMP_CMP_EQ", json!(V), [false, true, false]),
        ("SCMP_CMP_GE", json!(V), [false, true, true]),
        ("SCMP_CMP_GT", json!(V), [false, false, true]),
        // value = mask, valueTwo = what the masked argument must equal.
        ("SCMP_CMP_MASKED_EQ", json!(0xff), [false, true, false]),
    ];
    for (op, value, blocked) in cases {
        let filter = compile(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSTR,
                "args": [{"index": 0, "value": value, "valueTwo": 0x40, "op": op}]
            }]
        })))
        .unwrap();
        in_child(|| {
            filter.load().map_err(|e| format!("{op}: load: {e:?}"))?;
            for (pid, blocked) in probes.iter().zip(blocked) {
                let want = if blocked { libc::ENOSTR } else { libc::ESRCH };
                expect_errno(
                    &format!("{op} getpgid({pid})"),
                    getpgid_errno(*pid),
                    Some(want),
                )?;
            }
            Ok(())
        });
    }
}

#[test]
fn two_conditions_on_one_argument_match_either() {
    if !is_root() {
        println!("SKIP: needs root (loading without no_new_privs needs CAP_SYS_ADMIN)");
        return;
    }
    let filter = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSTR,
            "args": [
                {"index": 0, "value": 1_000_000, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 1_000_002, "op": "SCMP_CMP_EQ"}
            ]
        }]
    })))
    .unwrap();
    in_child(|| {
        filter.load().map_err(|e| format!("load: {e:?}"))?;
        expect_errno("1000000", getpgid_errno(1_000_000), Some(libc::ENOSTR))?;
        expect_errno("1000001", getpgid_errno(1_000_001), Some(libc::ESRCH))?;
        expect_errno("1000002", getpgid_errno(1_000_002), Some(libc::ENOSTR))
    });
}

#[test]
fn default_action_errno_applies_to_unlisted_syscalls() {
    if !is_root() {
        println!("SKIP: needs root (loading without no_new_privs needs CAP_SYS_ADMIN)");
        return;
    }
    // What the child needs after loading: the probes, reporting, allocation, exiting.
    let allowed = [
        "getpid",
        "write",
        "read",
        "close",
        "exit",
        "exit_group",
        "brk",
        "mmap",
        "munmap",
        "mremap",
        "madvise",
        "futex",
        "rt_sigprocmask",
        "rt_sigaction",
        "sigaltstack",
    ];
    let filter = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::ENODATA,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    in_child(|| {
        filter.load().map_err(|e| format!("load: {e:?}"))?;
        // SAFETY: no arguments.
        let ppid = errno_of(unsafe { libc::syscall(libc::SYS_getppid) });
        // SAFETY: no arguments.
        let pid = errno_of(unsafe { libc::syscall(libc::SYS_getpid) });
        expect_errno("getppid", ppid, Some(libc::ENODATA))?;
        expect_errno("getpid", pid, None)
    });
}

#[test]
fn exported_bpf_loads_and_filters() {
    if !is_root() {
        println!("SKIP: needs root (loading without no_new_privs needs CAP_SYS_ADMIN)");
        return;
    }
    let program = compile(&errno_rules()).unwrap().export_bpf().unwrap();
    assert_eq!(program.len() % 8, 0);
    assert!(!program.is_empty());
    in_child(|| {
        load_bpf(&program).map_err(|e| format!("load_bpf: {e:?}"))?;
        expect_errno("getcwd", getcwd_errno(), Some(libc::EBADFD))?;
        expect_errno("mkdirat", mkdirat_errno(), Some(libc::EOPNOTSUPP))?;
        let mode = status_field("Seccomp")?;
        (mode == "2").then_some(()).ok_or(format!("Seccomp {mode}"))
    });
}

#[test]
fn bad_programs_are_rejected_before_the_kernel() {
    for bytes in [vec![], vec![0u8; 7], vec![0u8; 8 * 4097]] {
        assert!(matches!(load_bpf(&bytes), Err(SeccompError::BadProgram(_))));
    }
}

#[test]
fn flags_are_applied() {
    let filter = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]
    })))
    .unwrap();
    assert_eq!(
        filter.filter_flags(),
        SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW | SECCOMP_FILTER_FLAG_TSYNC
    );
    in_child(|| {
        crate::security::set_no_new_privs().map_err(|e| format!("{e:?}"))?;
        filter.load().map_err(|e| format!("load: {e:?}"))?;
        expect_errno("getcwd", getcwd_errno(), Some(77))
    });
    // The same filter, exported and loaded raw with the flag bits.
    let program = filter.export_bpf().unwrap();
    in_child(|| {
        crate::security::set_no_new_privs().map_err(|e| format!("{e:?}"))?;
        load_bpf_with_flags(&program, filter.filter_flags())
            .map_err(|e| format!("load_bpf_with_flags: {e:?}"))?;
        expect_errno("getcwd", getcwd_errno(), Some(77))
    });
}

#[test]
fn notify_is_rejected_clearly() {
    let err = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap_err();
    assert!(matches!(err, SeccompError::NotifyUnsupported { .. }));
    assert!(err.to_string().contains("not supported"), "{err}");
    assert!(err.to_string().contains("mkdir,mkdirat"), "{err}");
}

#[test]
fn argument_index_out_of_range_is_an_error() {
    let err = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    })))
    .unwrap_err();
    assert!(
        matches!(err, SeccompError::ArgIndex { index: 6, .. }),
        "{err:?}"
    );
}

#[test]
fn rules_equal_to_the_default_are_dropped() {
    // libseccomp would refuse these; runc drops them.
    compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
        ]
    })))
    .unwrap();
}

#[test]
fn validate_names_points_at_the_unknown_value() {
    let mut raw = json!({"linux": {"seccomp": {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    }}});
    validate_names(&raw).unwrap();
    serde_json::from_value::<LinuxSeccomp>(raw["linux"]["seccomp"].clone()).unwrap();

    raw["linux"]["seccomp"]["syscalls"][1]["args"][0]["op"] = json!("SCMP_CMP_FOO");
    let err = validate_names(&raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"seccomp: unknown operator "SCMP_CMP_FOO" at linux.seccomp.syscalls[1].args[0].op"#
    );
    assert!(serde_json::from_value::<LinuxSeccomp>(raw["linux"]["seccomp"].clone()).is_err());

    raw["linux"]["seccomp"]["syscalls"][0]["action"] = json!("SCMP_ACT_BOOM");
    let err = validate_names(&raw).unwrap_err();
    assert!(err.to_string().contains("syscalls[0].action"), "{err}");
    raw["linux"]["seccomp"]["architectures"][0] = json!("SCMP_ARCH_Z80");
    let err = validate_names(&raw).unwrap_err();
    assert!(err.to_string().contains("architectures[0]"), "{err}");
    validate_names(&json!({"linux": {}})).unwrap();
}
