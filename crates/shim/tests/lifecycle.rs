//! Lifecycle: create/start/wait/kill/pause/delete/shutdown, exit codes and exit files, failures at create and start, surviving berthd.
//!
//! Each scenario runs twice: with the in-process berth_runtime library (the shim's default) and
//! with runc behind the shim (`--runtime-binary`, dockerd's `--runtime` equivalent).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::io::Write;

use common::{Backend, Env, eventually, no_pid_ns, opts};
use serde_json::json;

both_backends!(
    both: [
        exit_code_through_wait,
        kill_sigterm_gives_143,
        pause_and_resume,
        oom_kill_is_reported,
        missing_binary_is_127,
        not_executable_is_126,
        bad_bundle_fails_the_ready_line,
        survives_the_death_of_its_spawner,
        abandons_a_container_its_dead_spawner_never_heard_of,
        every_waiter_and_late_attach_hear_the_end,
    ],
    library_ignored: [],
);

fn exit_code_through_wait(b: Backend) {
    let env = Env::spawn(opts(&["sh", "-c", "exit 3"], b));
    assert_eq!(env.ready["ok"], true, "{}", env.ready);
    assert!(env.init_pid() > 0 && env.shim_pid() > 0);
    // The state files exist before the ready line is sent.
    let pid: i32 = std::fs::read_to_string(env.state.join("pid"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pid, env.init_pid());
    let shim_pid: i32 = std::fs::read_to_string(env.state.join("shim.pid"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(shim_pid, env.shim_pid());
    assert_eq!(env.req(json!({"op": "state"}))["status"], "created");

    let mut waiter = env.client();
    let started = env.req(json!({"op": "start"}));
    assert_eq!(started["ok"], true, "{started}");
    assert_eq!(started["pid"], env.init_pid());
    let w = waiter.req(json!({"op": "wait"}));
    assert_eq!(w["ok"], true, "{w}");
    assert_eq!(w["exit_code"], 3);
    assert!(chrono::DateTime::parse_from_rfc3339(w["exited_at"].as_str().unwrap()).is_ok());
    // The exit file was written before the wait answer.
    let exit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.state.join("exit")).unwrap()).unwrap();
    assert_eq!(exit["exit_code"], 3);
    assert_eq!(exit["oom_killed"], false);
    assert_eq!(exit["exited_at"], w["exited_at"]);
    let st = env.req(json!({"op": "state"}));
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["exit_code"], 3);
    // A second wait after the exit answers at once.
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 3);
    // start again is refused, the shim keeps serving.
    assert_eq!(env.req(json!({"op": "start"}))["ok"], false);
    assert_eq!(env.req(json!({"op": "delete"}))["ok"], true);
    eventually("shim exit after delete", || {
        (!env.shim_alive()).then_some(())
    });
    assert!(!env.sock().exists());
    assert!(!env.state.join("shim.pid").exists());
    assert!(env.state.join("exit").exists());
}

fn kill_sigterm_gives_143(b: Backend) {
    // Without a pid namespace `sleep` is not a PID 1 (which ignores SIGTERM without a handler).
    let mut o = opts(&["sleep", "1000"], b);
    o.edit = Box::new(no_pid_ns);
    let env = Env::spawn(o);
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
    let mut waiter = env.client();
    let k = env.req(json!({"op": "kill", "signal": 15, "all": false}));
    assert_eq!(k["ok"], true, "{k}");
    let w = waiter.req(json!({"op": "wait"}));
    assert_eq!(w["exit_code"], 143, "{w}");
    // Killing a stopped container is an error answer, not a crash.
    assert_eq!(
        env.req(json!({"op": "kill", "signal": 9, "all": false}))["ok"],
        false
    );
    assert_eq!(env.req(json!({"op": "state"}))["status"], "stopped");
    // shutdown after the exit: the shim goes, the exit file stays.
    assert_eq!(env.req(json!({"op": "shutdown"}))["ok"], true);
    eventually("shim exit after shutdown", || {
        (!env.shim_alive()).then_some(())
    });
    assert!(!env.sock().exists());
    assert!(env.state.join("exit").exists());
}

fn pause_and_resume(b: Backend) {
    let env = Env::spawn(opts(
        &["sh", "-c", "while true; do echo tick; sleep 0.02; done"],
        b,
    ));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    let p = env.req(json!({"op": "pause"}));
    assert_eq!(p["ok"], true, "{p}");
    assert_eq!(env.req(json!({"op": "state"}))["status"], "paused");
    // The kernel's freezer really holds the container.
    assert_eq!(freezer_state(env.init_pid()), "FROZEN");
    assert_eq!(env.req(json!({"op": "pause"}))["ok"], false);
    let r = env.req(json!({"op": "resume"}));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
    assert_eq!(freezer_state(env.init_pid()), "THAWED");
    let before = env.log_entries().len();
    eventually("output after resume", || {
        (env.log_entries().len() > before + 2).then_some(())
    });
}

fn oom_kill_is_reported(b: Backend) {
    let mut o = opts(
        &[
            "sh",
            "-c",
            "a=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
        b,
    );
    o.edit = Box::new(|spec| {
        spec["linux"]["resources"]["memory"] = json!({"limit": 16 * 1024 * 1024});
    });
    let env = Env::spawn(o);
    assert_eq!(env.ready["ok"], true, "{}", env.ready);
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    let w = env.req(json!({"op": "wait"}));
    assert_eq!(w["exit_code"], 137, "{w}");
    let st = env.req(json!({"op": "state"}));
    assert_eq!(st["oom_killed"], true, "{st}");
    let exit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.state.join("exit")).unwrap()).unwrap();
    assert_eq!(exit["oom_killed"], true);
    assert!(!env.log_text("stdout").contains("survived"));
}

fn missing_binary_is_127(b: Backend) {
    unrunnable(b, "/no/such/binary", 127);
}

fn not_executable_is_126(b: Backend) {
    unrunnable(b, "/etc/passwd", 126);
}

fn bad_bundle_fails_the_ready_line(b: Backend) {
    let mut o = opts(&["true"], b);
    let (mut env, mut cmd) = Env::prepare(&mut o);
    std::fs::write(env.tmp.path().join("bundle/config.json"), "{ not json").unwrap();
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let ready = common::run_with_ready_pipe(&mut cmd, rd, wr);
    assert_eq!(ready["ok"], false, "{ready}");
    assert_eq!(ready["exit_code"], 125, "{ready}");
    assert!(!ready["error"].as_str().unwrap().is_empty());
    // Nothing is left listening.
    assert!(!env.sock().exists());
    env.ready = ready;
}

/// berthd SIGKILLed while spawning: nobody reads the ready line, so nobody will ever start or
/// delete this container. The shim must not leave it (or itself) behind.
fn abandons_a_container_its_dead_spawner_never_heard_of(b: Backend) {
    let mut o = opts(&["sleep", "1000"], b);
    let (env, mut cmd) = Env::prepare(&mut o);
    let (rd, wr) = nix::unistd::pipe().unwrap();
    drop(rd);
    let wr_raw = std::os::fd::AsRawFd::as_raw_fd(&wr);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(wr_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.spawn().unwrap().wait().unwrap();
    drop(wr);
    assert!(status.success(), "{status}");
    // The pid files are written before the ready line: the processes it names must go.
    let pid: i32 = eventually("pid file", || {
        std::fs::read_to_string(env.state.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    });
    eventually("the shim gone", || (!env.sock().exists()).then_some(()));
    eventually("the container's init gone", || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
    let left: Vec<_> = std::fs::read_dir(&env.runtime_root)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
}

fn survives_the_death_of_its_spawner(b: Backend) {
    let mut o = opts(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 30 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done; exit 4",
        ],
        b,
    );
    let (mut env, cmd) = Env::prepare(&mut o);
    // A stand-in for berthd: a process that spawns the shim, then gets SIGKILLed.
    let mut spawner = std::process::Command::new("/bin/sh");
    spawner
        .arg("-c")
        .arg("\"$@\" 3>&1 </dev/null 2>/dev/null; exec sleep 1000")
        .arg("spawner")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(std::process::Stdio::piped());
    let mut child = spawner.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    env.ready = serde_json::from_str(&line).unwrap();
    assert_eq!(env.ready["ok"], true, "{}", env.ready);
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    child.kill().unwrap();
    child.wait().unwrap();
    // With nobody listening, the shim keeps logging and records the exit on disk.
    let exit = eventually("exit file", || std::fs::read(env.state.join("exit")).ok());
    let exit: serde_json::Value = serde_json::from_slice(&exit).unwrap();
    assert_eq!(exit["exit_code"], 4);
    assert!(env.shim_alive());
    let text = env.log_text("stdout");
    assert!(
        text.contains("tick 0\n") && text.contains("tick 29\n"),
        "{text}"
    );
    // A "restarted berthd" can still ask.
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 4);
}

/// The runtime may find out at create (ready line) or only at start (start answer).
fn unrunnable(b: Backend, program: &str, code: i32) {
    let mut o = opts(&[program], b);
    let (mut env, mut cmd) = Env::prepare(&mut o);
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let ready = common::run_with_ready_pipe(&mut cmd, rd, wr);
    env.ready = ready.clone();
    let failure = if ready["ok"] == true {
        let s = env.req(json!({"op": "start"}));
        assert_eq!(s["ok"], false, "{s}");
        // The container is stopped with that status, on disk too.
        let w = env.req(json!({"op": "wait"}));
        assert_eq!(w["exit_code"], code, "{w}");
        let exit: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.state.join("exit")).unwrap()).unwrap();
        assert_eq!(exit["exit_code"], code);
        assert_eq!(env.req(json!({"op": "state"}))["status"], "stopped");
        s
    } else {
        ready
    };
    assert_eq!(failure["exit_code"], code, "{failure}");
    assert!(
        failure["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failure}"
    );
}

/// freezer.state of the v1 freezer cgroup of `pid`.
fn freezer_state(pid: i32) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cg
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrl, path) = (p.next()?, p.next()?, p.next()?);
            (ctrl == "freezer").then(|| path.to_string())
        })
        .expect("freezer cgroup");
    std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state"))
        .unwrap()
        .trim()
        .to_string()
}

fn every_waiter_and_late_attach_hear_the_end(b: Backend) {
    let env = Env::spawn(opts(&["sleep", "1000"], b));
    let mut waiters: Vec<_> = (0..3).map(|_| env.client()).collect();
    for w in &mut waiters {
        w.w.write_all(b"{\"op\":\"wait\"}\n").unwrap();
    }
    // Requests pipelined behind a wait are answered after it.
    waiters[0].w.write_all(b"{\"op\":\"state\"}\n").unwrap();
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    assert_eq!(
        env.req(json!({"op": "kill", "signal": 9, "all": false}))["ok"],
        true
    );
    for w in &mut waiters {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut w.r, &mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["exit_code"], 137, "{v}");
    }
    let mut line = String::new();
    std::io::BufRead::read_line(&mut waiters[0].r, &mut line).unwrap();
    assert!(line.contains("\"status\":\"stopped\""), "{line}");
    // An attach after the exit: ok, then the stream ends.
    let mut att = env.client().attach(
        json!({"op": "attach", "stdin": false, "stdout": true, "stderr": true, "exec_id": null}),
    );
    let (out, err) = att.read_frames_to_end();
    assert!(out.is_empty() && err.is_empty());
}
