//! End-to-end tests of the `berth-shim` binary (as root, on the real kernel): spawn it like
//! berthd does, drive the control socket, check the log, attach streams and exit files.
//!
//! Each scenario runs twice: with the in-process berth_runtime library (the shim's default) and
//! with runc behind the shim (`--runtime-binary`, dockerd's `--runtime` equivalent).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Backend, Env, Opts, eventually, no_pid_ns, process, vm_rss_kib};
use serde_json::json;

macro_rules! both_backends {
    (
        both: [$($name:ident),* $(,)?],
        library_ignored: [$($iname:ident => $reason:literal),* $(,)?] $(,)?
    ) => {
        mod runc {
            $(
                #[test]
                fn $name() {
                    if !super::common::skip_unless_ready() { return; }
                    super::$name(super::Backend::Runc);
                }
            )*
            $(
                #[test]
                fn $iname() {
                    if !super::common::skip_unless_ready() { return; }
                    super::$iname(super::Backend::Runc);
                }
            )*
        }
        mod library {
            $(
                #[test]
                fn $name() {
                    if !super::common::skip_unless_ready() { return; }
                    super::$name(super::Backend::Library);
                }
            )*
            $(
                #[test]
                #[ignore = $reason]
                fn $iname() {
                    super::$iname(super::Backend::Library);
                }
            )*
        }
    };
}

both_backends!(
    both: [
        exit_code_through_wait,
        output_lands_in_json_log,
        attach_demuxes_stdout_and_stderr,
        stdin_via_attach_reaches_cat,
        kill_sigterm_gives_143,
        tty_echo_and_resize,
        exec_echo_and_exec_wait,
        survives_the_death_of_its_spawner,
        malformed_requests_keep_serving,
        client_leaving_mid_attach_is_harmless,
        idle_rss_is_reported,
        missing_binary_is_127,
        not_executable_is_126,
        container_signal_state_is_clean,
        log_rotation,
        bad_bundle_fails_the_ready_line,
        tty_exec_with_resize,
        no_shim_fds_leak_into_the_container,
        long_state_dir_paths,
        many_execs_leave_nothing_behind,
        stdin_nobody_reads_keeps_the_shim_responsive,
        pause_and_resume,
        oom_kill_is_reported,
    ],
    library_ignored: [
    ],
);

fn opts(args: &[&str], backend: Backend) -> Opts {
    let mut o = Opts::new(args);
    o.backend = backend;
    o
}

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

fn output_lands_in_json_log(b: Backend) {
    let env = Env::spawn(opts(
        &[
            "sh",
            "-c",
            "echo out1; echo err1 >&2; printf 'no newline'; echo; echo out2",
        ],
        b,
    ));
    assert_eq!(env.ready["ok"], true, "{}", env.ready);
    let mut waiter = env.client();
    env.req(json!({"op": "start"}));
    assert_eq!(waiter.req(json!({"op": "wait"}))["exit_code"], 0);
    // Output written before the exit is in the log once wait has answered.
    let entries = env.log_entries();
    for e in &entries {
        let t = e["time"].as_str().unwrap();
        assert!(t.ends_with('Z'), "{t}");
        let frac = t.rsplit('.').next().unwrap();
        assert_eq!(frac.len(), 10, "nine fractional digits + Z: {t}");
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok());
    }
    assert_eq!(env.log_text("stdout"), "out1\nno newline\nout2\n");
    assert_eq!(env.log_text("stderr"), "err1\n");
    let lines: Vec<&str> = entries
        .iter()
        .filter(|e| e["stream"] == "stdout")
        .map(|e| e["log"].as_str().unwrap())
        .collect();
    assert_eq!(lines, vec!["out1\n", "no newline\n", "out2\n"]);
}

fn attach_demuxes_stdout_and_stderr(b: Backend) {
    let env = Env::spawn(opts(
        &["sh", "-c", "echo to-out; echo to-err >&2; echo more-out"],
        b,
    ));
    let mut att = env.client().attach(
        json!({"op": "attach", "stdin": false, "stdout": true, "stderr": true, "exec_id": null}),
    );
    let mut only_err = env.client().attach(
        json!({"op": "attach", "stdin": false, "stdout": false, "stderr": true, "exec_id": null}),
    );
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    // The shim closes the stream once the process exited and its output is drained.
    let (out, err) = att.read_frames_to_end();
    assert_eq!(String::from_utf8_lossy(&out), "to-out\nmore-out\n");
    assert_eq!(String::from_utf8_lossy(&err), "to-err\n");
    let (out2, err2) = only_err.read_frames_to_end();
    assert!(out2.is_empty());
    assert_eq!(String::from_utf8_lossy(&err2), "to-err\n");
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 0);
}

fn stdin_via_attach_reaches_cat(b: Backend) {
    let mut o = opts(&["cat"], b);
    o.stdin = true;
    let env = Env::spawn(o);
    let mut att = env.client().attach(
        json!({"op": "attach", "stdin": true, "stdout": true, "stderr": true, "exec_id": null}),
    );
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    att.w.write_all(b"hello from stdin\nsecond line\n").unwrap();
    // Half-close: the container's stdin is closed, cat exits.
    att.w.shutdown(std::net::Shutdown::Write).unwrap();
    let (out, err) = att.read_frames_to_end();
    assert_eq!(
        String::from_utf8_lossy(&out),
        "hello from stdin\nsecond line\n"
    );
    assert!(err.is_empty());
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 0);
    assert_eq!(env.log_text("stdout"), "hello from stdin\nsecond line\n");
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

fn tty_echo_and_resize(b: Backend) {
    let mut o = opts(&["sh"], b);
    o.terminal = true;
    o.stdin = true;
    let env = Env::spawn(o);
    assert_eq!(env.ready["ok"], true, "{}", env.ready);
    let mut att = env.client().attach(
        json!({"op": "attach", "stdin": true, "stdout": true, "stderr": true, "exec_id": null}),
    );
    let r = env.req(json!({"op": "resize", "height": 33, "width": 111, "exec_id": null}));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    let mut acc = Vec::new();
    // The tty echoes what we type; the shell's output proves it ran (raw bytes, no frames).
    att.w.write_all(b"echo mark-$((40+2))\n").unwrap();
    att.read_until(&mut acc, "mark-42");
    att.w.write_all(b"stty size\n").unwrap();
    att.read_until(&mut acc, "33 111");
    acc.clear();
    let r = env.req(json!({"op": "resize", "height": 20, "width": 70, "exec_id": null}));
    assert_eq!(r["ok"], true);
    att.w.write_all(b"stty size\n").unwrap();
    att.read_until(&mut acc, "20 70");
    att.w.write_all(b"exit 5\n").unwrap();
    let mut rest = Vec::new();
    let _ = att.r.read_to_end(&mut rest);
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 5);
    // With a TTY everything is logged as stdout.
    assert!(env.log_text("stdout").contains("20 70"));
    assert_eq!(env.log_text("stderr"), "");
}

fn exec_echo_and_exec_wait(b: Backend) {
    let env = Env::spawn(opts(&["sleep", "1000"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    let e = env.req(json!({"op": "exec", "exec_id": "e1", "process": process(&["sh", "-c", "echo hi; echo oops >&2; exit 7"]), "terminal": false, "stdin": false}));
    assert_eq!(e["ok"], true, "{e}");
    assert!(e["pid"].as_i64().unwrap() > 0);
    // Output produced before the attach arrived is kept for the first attach client.
    let mut att = env.client().attach(
        json!({"op": "attach", "stdin": false, "stdout": true, "stderr": true, "exec_id": "e1"}),
    );
    let (out, err) = att.read_frames_to_end();
    assert_eq!(String::from_utf8_lossy(&out), "hi\n");
    assert_eq!(String::from_utf8_lossy(&err), "oops\n");
    let w = env.req(json!({"op": "exec_wait", "exec_id": "e1"}));
    assert_eq!(w["exit_code"], 7, "{w}");
    // Exec output is not in the container log.
    assert!(!env.log_text("stdout").contains("hi"));
    // Exec with stdin, attached before it produces output.
    let e2 = env.req(json!({"op": "exec", "exec_id": "e2", "process": process(&["cat"]), "terminal": false, "stdin": true}));
    assert_eq!(e2["ok"], true, "{e2}");
    let mut att2 = env.client().attach(
        json!({"op": "attach", "stdin": true, "stdout": true, "stderr": false, "exec_id": "e2"}),
    );
    att2.w.write_all(b"exec stdin\n").unwrap();
    att2.w.shutdown(std::net::Shutdown::Write).unwrap();
    let (out, _) = att2.read_frames_to_end();
    assert_eq!(String::from_utf8_lossy(&out), "exec stdin\n");
    assert_eq!(
        env.req(json!({"op": "exec_wait", "exec_id": "e2"}))["exit_code"],
        0
    );
    // Unknown exec ids and duplicate ids are errors.
    assert_eq!(
        env.req(json!({"op": "exec_wait", "exec_id": "nope"}))["ok"],
        false
    );
    assert_eq!(
        env.req(json!({"op": "exec", "exec_id": "e1", "process": process(&["true"])}))["ok"],
        false
    );
    // A program that does not exist: 127, like Docker.
    let bad = env.req(json!({"op": "exec", "exec_id": "e3", "process": process(&["/no/such"]), "terminal": false, "stdin": false}));
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["exit_code"], 127, "{bad}");
    // A file that is not executable: 126.
    let bad = env.req(json!({"op": "exec", "exec_id": "e4", "process": process(&["/etc/passwd"]), "terminal": false, "stdin": false}));
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["exit_code"], 126, "{bad}");
    // The container itself is still running.
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
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

fn malformed_requests_keep_serving(b: Backend) {
    let env = Env::spawn(opts(&["sleep", "1000"], b));
    let mut c = env.client();
    for bad in [
        "this is not json",
        "{\"op\":\"fly\"}",
        "{\"op\":\"kill\"}",
        "[1,2,3]",
        "{\"op\":\"resize\",\"height\":-1,\"width\":2}",
        "{\"op\":\"attach\",\"exec_id\":\"missing\"}",
        "{\"op\":\"resize\",\"height\":1,\"width\":2}",
        "{\"op\":\"shutdown\"}",
        "{\"op\":\"delete\"}",
        "{\"op\":\"kill\",\"signal\":12345}",
    ] {
        let r = c.send_line(bad);
        assert_eq!(r["ok"], false, "{bad} → {r}");
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
    }
    // Invalid UTF-8 and a half line followed by a disconnect.
    c.w.write_all(b"\xff\xfe\n").unwrap();
    let mut resp = String::new();
    std::io::BufRead::read_line(&mut c.r, &mut resp).unwrap();
    assert!(resp.contains("\"ok\":false"), "{resp}");
    let st = c.req(json!({"op": "state"}));
    assert_eq!(st["ok"], true);
    assert_eq!(st["status"], "created");
    {
        let mut half = env.client();
        half.w.write_all(b"{\"op\":\"sta").unwrap();
    }
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
    // A line beyond the 1 MiB limit: an error answer and the connection closes.
    let mut big = env.client();
    let mut w = big.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..40 {
            if w.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut resp = String::new();
    std::io::BufRead::read_line(&mut big.r, &mut resp).unwrap();
    assert!(resp.contains("\"ok\":false"), "{resp}");
    writer.join().unwrap();
    assert_eq!(env.req(json!({"op": "state"}))["ok"], true);
}

fn client_leaving_mid_attach_is_harmless(b: Backend) {
    let env = Env::spawn(opts(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; echo done; sleep 1000",
        ],
        b,
    ));
    // One client that never reads, one that reads a bit and disconnects.
    let _stuck = env.client().attach(
        json!({"op": "attach", "stdin": true, "stdout": true, "stderr": true, "exec_id": null}),
    );
    let mut leaver = env.client().attach(
        json!({"op": "attach", "stdin": false, "stdout": true, "stderr": true, "exec_id": null}),
    );
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    let (stream, data) = leaver.read_frame().unwrap();
    assert_eq!(stream, 1);
    assert!(String::from_utf8_lossy(&data).starts_with("line 0"));
    drop(leaver);
    // The log keeps flowing to the end although one client never reads.
    eventually("all lines logged", || {
        env.log_text("stdout").contains("done\n").then_some(())
    });
    let text = env.log_text("stdout");
    assert!(text.contains("line 2999\n"));
    assert!(env.shim_alive());
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
    // A new attach still works.
    let _again = env.client().attach(
        json!({"op": "attach", "stdin": false, "stdout": true, "stderr": true, "exec_id": null}),
    );
    assert_eq!(
        env.req(json!({"op": "kill", "signal": 9, "all": false}))["ok"],
        true
    );
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 137);
}

fn idle_rss_is_reported(b: Backend) {
    let env = Env::spawn(opts(&["sleep", "1000"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    std::thread::sleep(Duration::from_millis(100));
    let rss = vm_rss_kib(env.shim_pid());
    println!("berth-shim idle VmRSS with a running sleep container: {rss} KiB");
    // Sanity only; the 1 MB target is a bench figure.
    assert!(rss > 0 && rss < 64 * 1024, "{rss} KiB");
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
}

fn missing_binary_is_127(b: Backend) {
    unrunnable(b, "/no/such/binary", 127);
}

fn not_executable_is_126(b: Backend) {
    unrunnable(b, "/etc/passwd", 126);
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

fn container_signal_state_is_clean(b: Backend) {
    // The shim ignores SIGPIPE and catches SIGCHLD; none of that may leak into the container.
    let env = Env::spawn(opts(&["cat", "/proc/self/status"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 0);
    let status = env.log_text("stdout");
    for key in ["SigIgn:", "SigBlk:"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing in {status}"));
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
}

fn log_rotation(b: Backend) {
    let mut o = opts(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 60 ]; do echo line $i; i=$((i+1)); done",
        ],
        b,
    );
    o.extra = vec![
        "--log-max-size".into(),
        "400".into(),
        "--log-max-files".into(),
        "3".into(),
    ];
    let env = Env::spawn(o);
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 0);
    let name = env.log.file_name().unwrap().to_string_lossy().into_owned();
    let mut files: Vec<String> = std::fs::read_dir(env.log.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&name))
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![name.clone(), format!("{name}.1"), format!("{name}.2")]
    );
    for f in &files {
        let len = std::fs::metadata(env.log.with_file_name(f)).unwrap().len();
        assert!(len <= 400, "{f}: {len}");
    }
    let live = env.log_text("stdout");
    assert!(live.ends_with("line 59\n"), "{live}");
    let older = std::fs::read_to_string(env.log.with_file_name(format!("{name}.1"))).unwrap();
    let first: serde_json::Value = serde_json::from_str(older.lines().next().unwrap()).unwrap();
    let first_live = &env.log_entries()[0];
    // .1 holds lines right before the live file's first line.
    let n_old: u32 = first["log"].as_str().unwrap()[5..].trim().parse().unwrap();
    let n_live: u32 = first_live["log"].as_str().unwrap()[5..]
        .trim()
        .parse()
        .unwrap();
    assert!(n_old < n_live);
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

fn tty_exec_with_resize(b: Backend) {
    let env = Env::spawn(opts(&["sleep", "1000"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    let e = env.req(json!({"op": "exec", "exec_id": "t1", "process": process(&["sh"]), "terminal": true, "stdin": true}));
    assert_eq!(e["ok"], true, "{e}");
    let r = env.req(json!({"op": "resize", "height": 41, "width": 132, "exec_id": "t1"}));
    assert_eq!(r["ok"], true, "{r}");
    // The init has no tty: resizing it is an error answer.
    assert_eq!(
        env.req(json!({"op": "resize", "height": 1, "width": 1, "exec_id": null}))["ok"],
        false
    );
    let mut att = env.client().attach(
        json!({"op": "attach", "stdin": true, "stdout": true, "stderr": true, "exec_id": "t1"}),
    );
    let mut acc = Vec::new();
    att.w.write_all(b"stty size; tty\n").unwrap();
    att.read_until(&mut acc, "41 132");
    att.read_until(&mut acc, "/dev/pts/");
    att.w.write_all(b"exit 3\n").unwrap();
    let mut rest = Vec::new();
    let _ = att.r.read_to_end(&mut rest);
    assert_eq!(
        env.req(json!({"op": "exec_wait", "exec_id": "t1"}))["exit_code"],
        3
    );
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
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

fn no_shim_fds_leak_into_the_container(b: Backend) {
    let env = Env::spawn(opts(&["ls", "/proc/self/fd"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 0);
    // 0-2 and the directory ls itself opened: no socket, log or pipe of the shim.
    assert_eq!(env.log_text("stdout"), "0\n1\n2\n3\n");
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

fn long_state_dir_paths(b: Backend) {
    // shim.sock and console.sock paths beyond sun_path's 108 bytes.
    let mut o = opts(&["sh", "-c", "read x; echo got-$x"], b);
    o.terminal = true;
    o.stdin = true;
    o.long_state_dir = true;
    let env = Env::spawn(o);
    assert!(env.sock().as_os_str().len() > 108);
    assert_eq!(env.ready["ok"], true, "{}", env.ready);
    let mut att = env.client().attach(
        json!({"op": "attach", "stdin": true, "stdout": true, "stderr": true, "exec_id": null}),
    );
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    att.w.write_all(b"deep\n").unwrap();
    let mut acc = Vec::new();
    att.read_until(&mut acc, "got-deep");
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 0);
}

fn many_execs_leave_nothing_behind(b: Backend) {
    let env = Env::spawn(opts(&["sleep", "1000"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", env.shim_pid()))
            .unwrap()
            .count()
    };
    let run = |id: &str, code: i32| {
        let cmd = format!("exit {code}");
        // With stdin and a TTY every other time: the most fds per exec.
        let tty = code % 2 == 0;
        let e = env.req(json!({"op": "exec", "exec_id": id, "process": process(&["sh", "-c", &cmd]), "terminal": tty, "stdin": true}));
        assert_eq!(e["ok"], true, "{e}");
        let w = env.req(json!({"op": "exec_wait", "exec_id": id}));
        assert_eq!(w["exit_code"], code, "{w}");
    };
    run("warm-up", 0);
    let before = fds();
    for i in 0..25 {
        run(&format!("x{i}"), i % 7);
    }
    // Like health checks: many execs, each waited for; the shim's fds do not grow with them.
    eventually("exec fds released", || (fds() <= before).then_some(()));
    // A late exec_wait of a finished, forgotten exec still answers.
    let w = env.req(json!({"op": "exec_wait", "exec_id": "x3"}));
    assert_eq!(w["exit_code"], 3, "{w}");
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
}

fn stdin_nobody_reads_keeps_the_shim_responsive(b: Backend) {
    let mut o = opts(&["sleep", "1000"], b);
    o.stdin = true;
    let env = Env::spawn(o);
    let att = env.client().attach(
        json!({"op": "attach", "stdin": true, "stdout": true, "stderr": true, "exec_id": null}),
    );
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    // 8 MiB into a stdin nobody reads: pipe, shim buffer and socket fill up, the writer blocks.
    let mut w = att.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'y'; 64 * 1024];
        let mut sent = 0usize;
        for _ in 0..128 {
            match w.write_all(&chunk) {
                Ok(()) => sent += chunk.len(),
                Err(_) => break,
            }
        }
        sent
    });
    // Meanwhile the shim answers as usual.
    for _ in 0..20 {
        assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
    }
    let rss = vm_rss_kib(env.shim_pid());
    assert!(rss < 64 * 1024, "stdin buffering is capped: {rss} KiB");
    assert_eq!(
        env.req(json!({"op": "kill", "signal": 9, "all": false}))["ok"],
        true
    );
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 137);
    // The attach is closed after the exit, which unblocks the writer.
    let sent = writer.join().unwrap();
    assert!(
        sent < 8 * 1024 * 1024,
        "the writer was held back ({sent} bytes)"
    );
    drop(att);
}
