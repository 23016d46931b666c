//! The runc lifecycle through the CLI: run, create/start/state/kill/delete, delete refusal,
//! exec, pause/resume, kill --all, list, ps.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod rt_support;
use rt_support::*;

#[test]
fn run_prints_output() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["echo", "hi"], |_| {});
    assert_eq!(run_ok(&rt, &b, "run"), "hi\n");
    assert!(
        std::fs::read_dir(&rt.root).unwrap().next().is_none(),
        "run deletes the container afterwards"
    );
}

#[test]
fn run_passes_exit_status_through() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sh", "-c", "exit 42"], |_| {});
    let id = rt.id("exit");
    let out = rt.run(&["run", "-b", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    // Killed by a signal: 128+signal. (Without a pid ns, so the shell is not a pid 1 that
    // the kernel protects from its own signals.)
    let b = rt.bundle("k", &["sh", "-c", "kill -9 $$"], |s| {
        s["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
    });
    let id = rt.id("sig");
    let out = rt.run(&["run", "-b", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
}

#[test]
fn run_not_found_is_127() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["no-such-binary"], |_| {});
    let id = rt.id("nf");
    let out = rt.run(&["run", "-b", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("executable file not found in $PATH"),
        "{}",
        stderr(&out)
    );
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn create_start_kill_delete() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |s| {
        s["annotations"] = json!({"org.example/key": "v"});
    });
    let id = rt.id("life");
    let pid_file = rt.tmp.path().join("pid");
    let (ok, err, _) = rt.detached(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert!(ok, "{err}");
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["ociVersion"], "1.0.2-dev");
    assert_eq!(st["bundle"], b.to_str().unwrap());
    assert_eq!(st["rootfs"], b.join("rootfs").to_str().unwrap());
    assert_eq!(st["annotations"]["org.example/key"], "v");
    assert!(st["created"].as_str().unwrap().contains('T'));
    assert!(st.get("owner").is_some());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // The init waits, named after its stage.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "berth:wait-star");

    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rt.status(&id), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    // A second start is refused.
    assert!(!rt.run(&["start", &id]).status.success());

    let out = rt.run(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    rt.wait_stopped(&id);
    assert_eq!(rt.state(&id)["pid"], 0);
    let out = rt.run(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!rt.state_dir(&id).exists());
    assert!(!rt.run(&["state", &id]).status.success());
}

#[test]
fn delete_running_without_force_changes_nothing() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |_| {});
    let id = rt.id("nodel");
    let (ok, err, _) = rt.detached(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let before = rt.state(&id);
    let out = rt.run(&["delete", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));
    assert_eq!(rt.state(&id), before);
    let cg = format!("berth/{id}");
    assert!(!cgroup_dirs(&cg).is_empty(), "cgroup kept");
    let out = rt.run(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!rt.state_dir(&id).exists());
    assert!(cgroup_dirs(&cg).is_empty(), "cgroup removed");
    let pid = before["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z"), "init gone: {stat}");
}

#[test]
fn duplicate_id_is_refused_and_keeps_the_first() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |_| {});
    let id = rt.id("dup");
    let (ok, err, _) = rt.detached(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let before = rt.state(&id);
    let (ok, err, _) = rt.detached(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(rt.state(&id), before);
}

#[test]
fn exec_into_running_container() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |_| {});
    let id = rt.id("exec");
    let (ok, err, _) = rt.detached(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let out = rt.run(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $FOO; pwd; hostname; cat /proc/1/comm",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "bar\n/tmp\nberth\nsleep\n");
    let out = rt.run(&["exec", "-u", "1000:1000", &id, "id"]);
    assert_eq!(stdout(&out), "uid=1000(berthtest) gid=1000(berthtest)\n");
    let out = rt.run(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    // The exec'd process joined the container's cgroup.
    let out = rt.run(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert!(
        stdout(&out).contains(&format!("/berth/{id}")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn pause_resume_and_ps() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |_| {});
    let id = rt.id("pause");
    let (ok, err, _) = rt.detached(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let out = rt.run(&["ps", "--format", "json", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids, vec![pid]);
    assert!(rt.run(&["pause", &id]).status.success());
    assert_eq!(rt.status(&id), "paused");
    let freezer = cgroup_dirs(&format!("berth/{id}"))
        .into_iter()
        .find(|p| p.join("freezer.state").exists())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(freezer.join("freezer.state"))
            .unwrap()
            .trim(),
        "FROZEN"
    );
    assert!(!rt.run(&["pause", &id]).status.success(), "double pause");
    assert!(rt.run(&["resume", &id]).status.success());
    assert_eq!(rt.status(&id), "running");
    assert_eq!(
        std::fs::read_to_string(freezer.join("freezer.state"))
            .unwrap()
            .trim(),
        "THAWED"
    );
}

#[test]
fn kill_all_reaches_every_process() {
    let rt = Rt::new();
    // A shell that is not in a new pid ns would survive a kill of only the init's children;
    // use a host-pid-ns container so killing the init alone leaves the others running.
    let b = rt.bundle("b", &["sh", "-c", "sleep 1000 & sleep 1000 & wait"], |s| {
        s["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]);
    });
    let id = rt.id("killall");
    let (ok, err, _) = rt.detached(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let mut pids: Vec<i64> = Vec::new();
    for _ in 0..500 {
        let out = rt.run(&["ps", "--format", "json", &id]);
        pids = serde_json::from_slice(&out.stdout).unwrap();
        if pids.len() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    let out = rt.run(&["kill", "--all", &id, "9"]);
    assert!(out.status.success(), "{}", stderr(&out));
    rt.wait_stopped(&id);
    for p in &pids {
        for _ in 0..500 {
            let s = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            if s.is_empty() || s.contains(") Z") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let s = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        assert!(s.is_empty() || s.contains(") Z"), "pid {p} survived: {s}");
    }
}

#[test]
fn list_shows_containers() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |_| {});
    let id = rt.id("list");
    let (ok, err, _) = rt.detached(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let out = rt.run(&["list", "-q"]);
    assert_eq!(stdout(&out), format!("{id}\n"));
    let out = rt.run(&["list", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], id.as_str());
    assert_eq!(v[0]["status"], "created");
    let out = rt.run(&["list"]);
    assert!(stdout(&out).starts_with("ID"));
    assert!(stdout(&out).contains("created"));
}

#[test]
fn spec_and_features() {
    let rt = Rt::new();
    let dir = rt.tmp.path().join("spec");
    std::fs::create_dir_all(&dir).unwrap();
    let out = rt.run(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["process"]["args"], json!(["sh"]));
    let parsed =
        berth_runtime::spec::parse(&dir.join("config.json"), &serde_json::to_vec(&v).unwrap());
    assert!(parsed.is_ok(), "{parsed:?}");
    let out = rt.run(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(!out.status.success(), "refuses to overwrite");
    let out = rt.run(&["features"]);
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["linux"]["namespaces"].as_array().unwrap().len() >= 7);
    assert!(
        f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("CAP_SYS_ADMIN"))
    );
}

#[test]
fn exec_with_process_json() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |_| {});
    let id = rt.id("execp");
    let (ok, err, _) = rt.detached(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let p = rt.tmp.path().join("process.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "echo $X; id -u; pwd"],
            "env": ["PATH=/bin", "X=from-json"],
            "cwd": "/etc",
            "user": {"uid": 2, "gid": 2}
        }))
        .unwrap(),
    )
    .unwrap();
    let out = rt.run(&["exec", "-p", p.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-json\n2\n/etc\n");
}

#[test]
fn errors_go_to_the_json_log() {
    let rt = Rt::new();
    let log = rt.tmp.path().join("log.json");
    let out = rt.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "no-such-container",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let line = std::fs::read_to_string(&log).unwrap();
    let v: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"));
    let out = rt.run(&["--systemd-cgroup", "list"]);
    assert!(!out.status.success());
}

#[test]
fn join_namespaces_by_path() {
    let rt = Rt::new();
    let a = rt.bundle("a", &["sleep", "1000"], |s| s["hostname"] = json!("host-a"));
    let ida = rt.id("nsa");
    let (ok, err, _) = rt.detached(&["run", "-d", "-b", a.to_str().unwrap(), &ida]);
    assert!(ok, "{err}");
    let pid = rt.state(&ida)["pid"].as_i64().unwrap();
    let b = rt.bundle("b", &["sh", "-c", "hostname; cat /proc/1/comm"], |s| {
        s["hostname"] = Value::Null;
        s["linux"]["namespaces"] = json!([
            {"type": "mount"}, {"type": "ipc"}, {"type": "network"},
            {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
            {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}
        ]);
    });
    let out = run_ok(&rt, &b, "nsb");
    // B sees A's hostname and A's pid 1.
    assert_eq!(out, "host-a\nsleep\n");
}

#[test]
fn run_forwards_signals() {
    let rt = Rt::new();
    let b = rt.bundle(
        "b",
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done",
        ],
        |_| {},
    );
    let id = rt.id("sig");
    let out_path = rt.tmp.path().join("sig-out");
    let mut child = rt
        .cmd()
        .args(["run", "-b", b.to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    for _ in 0..1000 {
        if std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .contains("ready")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "ready\ngot-term\n"
    );
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn rootless_spec_runs() {
    let rt = Rt::new();
    let dir = rt.tmp.path().join("rootless");
    berth_fixtures::copy_rootfs(
        &berth_fixtures::busybox_rootfs().unwrap(),
        &dir.join("rootfs"),
    )
    .unwrap();
    let out = rt.run(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.join("config.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["cat", "/proc/self/uid_map"]);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = run_ok(&rt, &dir, "rootless");
    let uid = nix::unistd::getuid().to_string();
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields, ["0", uid.as_str(), "1"]);
}

#[test]
fn delete_cleans_a_half_created_state_dir() {
    let rt = Rt::new();
    let id = rt.id("half");
    std::fs::create_dir_all(rt.state_dir(&id)).unwrap();
    let out = rt.run(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!rt.state_dir(&id).exists());
    let out = rt.run(&["delete", &id]);
    assert!(!out.status.success(), "second delete: no such container");
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn delete_cleans_a_state_dir_with_an_empty_record() {
    // What a power cut can leave on a disk-backed --root (state.json is not fsynced).
    let rt = Rt::new();
    let id = rt.id("torn");
    std::fs::create_dir_all(rt.state_dir(&id)).unwrap();
    std::fs::write(rt.state_dir(&id).join("state.json"), b"").unwrap();
    let out = rt.run(&["state", &id]);
    assert!(
        !out.status.success(),
        "state of an empty record is an error"
    );
    let out = rt.run(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn run_with_no_pivot() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sh", "-c", "echo $$; ls /bin/busybox"], |_| {});
    let id = rt.id("nopivot");
    let out = rt.run(&["run", "--no-pivot", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\n/bin/busybox\n");
}
