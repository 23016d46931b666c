//! What the process sees inside the container: pid 1, hostname, capabilities, seccomp,
//! no_new_privs, masked and read-only paths, cgroup limits, user and groups, user namespaces.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod rt_support;
use rt_support::*;

#[test]
fn pid1_and_hostname() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sh", "-c", "echo $$; hostname"], |s| {
        s["hostname"] = json!("box-1");
    });
    assert_eq!(run_ok(&rt, &b, "pid1"), "1\nbox-1\n");
}

#[test]
fn capabilities_match_the_spec() {
    let rt = Rt::new();
    let caps = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
    ];
    let b = rt.bundle("b", &["cat", "/proc/1/status"], |s| {
        s["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps
        });
    });
    let out = run_ok(&rt, &b, "caps");
    let want = format!("{:016x}", cap_mask(&caps));
    assert_eq!(status_field(&out, "CapEff"), Some(want.as_str()), "{out}");
    assert_eq!(status_field(&out, "CapBnd"), Some(want.as_str()), "{out}");
    assert_eq!(status_field(&out, "CapPrm"), Some(want.as_str()), "{out}");
    assert_eq!(status_field(&out, "CapAmb"), Some(want.as_str()), "{out}");
}

fn seccomp_spec(s: &mut Value, nnp: bool) {
    s["process"]["noNewPrivileges"] = json!(nnp);
    s["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
}

#[test]
fn seccomp_with_no_new_privs() {
    let rt = Rt::new();
    let b = rt.bundle(
        "b",
        &["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/1/status; mkdir /tmp/x 2>&1 && echo made || echo blocked"],
        |s| seccomp_spec(s, true),
    );
    let out = run_ok(&rt, &b, "sc1");
    assert_eq!(status_field(&out, "Seccomp"), Some("2"), "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("1"), "{out}");
    assert!(
        out.contains("Operation not permitted\nblocked"),
        "mkdir blocked: {out}"
    );
}

#[test]
fn seccomp_without_no_new_privs() {
    let rt = Rt::new();
    let b = rt.bundle(
        "b",
        &["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/1/status; mkdir /tmp/x 2>&1 && echo made || echo blocked"],
        |s| seccomp_spec(s, false),
    );
    let out = run_ok(&rt, &b, "sc0");
    assert_eq!(status_field(&out, "Seccomp"), Some("2"), "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("0"), "{out}");
    assert!(
        out.contains("Operation not permitted\nblocked"),
        "mkdir blocked: {out}"
    );
}

#[test]
fn no_seccomp_means_mode_0() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["grep", "^Seccomp:", "/proc/1/status"], |_| {});
    assert_eq!(status_field(&run_ok(&rt, &b, "sc"), "Seccomp"), Some("0"));
}

#[test]
fn masked_and_readonly_paths() {
    let rt = Rt::new();
    let b = rt.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /proc/keys | wc -c; ls /sys/firmware | wc -l; \
             echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo wrote || echo ro",
        ],
        |_| {},
    );
    let out = run_ok(&rt, &b, "mask");
    assert_eq!(out, "0\n0\nro\n");
}

#[test]
fn memory_limit_visible_in_cgroup() {
    let rt = Rt::new();
    let limit = 64 * 1024 * 1024;
    let b = rt.bundle(
        "b",
        &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
        |s| {
            s["linux"]["resources"]["memory"] = json!({"limit": limit});
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
        },
    );
    assert_eq!(run_ok(&rt, &b, "mem"), format!("{limit}\n"));
}

#[test]
fn user_and_additional_groups() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["id"], |s| {
        s["process"]["user"] = json!({"uid": 1000, "gid": 100, "additionalGids": [29, 10]});
    });
    assert_eq!(
        run_ok(&rt, &b, "id"),
        "uid=1000(berthtest) gid=100(users) groups=10(wheel),29(audio)\n"
    );
}

#[test]
fn no_new_privs_off() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["grep", "^NoNewPrivs:", "/proc/self/status"], |s| {
        s["process"]["noNewPrivileges"] = json!(false);
    });
    assert_eq!(
        status_field(&run_ok(&rt, &b, "nnp0"), "NoNewPrivs"),
        Some("0")
    );
}

#[test]
fn user_namespace_maps() {
    let rt = Rt::new();
    let b = rt.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        ],
        |s| {
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            s["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            s["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // cgroup v1 cannot be mounted from a user namespace.
            let mounts = s["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["type"] != "cgroup");
        },
    );
    let out = run_ok(&rt, &b, "userns");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[2], ["0"], "{out}");
}

#[test]
fn exec_joins_a_user_namespace() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |s| {
        let nss = s["linux"]["namespaces"].as_array_mut().unwrap();
        nss.push(json!({"type": "user"}));
        nss.push(json!({"type": "cgroup"}));
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        s["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "cgroup");
    });
    let id = rt.id("execuser");
    let (ok, err, _) = rt.detached(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let out = rt.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; hostname",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [vec!["0"], vec!["0", "200000", "65536"], vec!["berth"]]
    );
}

#[test]
fn no_ignored_or_blocked_signals_leak_in() {
    let rt = Rt::new();
    let b = rt.bundle(
        "b",
        &["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"],
        |_| {},
    );
    let out = run_ok(&rt, &b, "sig");
    assert_eq!(
        status_field(&out, "SigIgn"),
        Some("0000000000000000"),
        "{out}"
    );
    assert_eq!(
        status_field(&out, "SigBlk"),
        Some("0000000000000000"),
        "{out}"
    );
}
