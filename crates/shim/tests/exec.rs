//! Exec: processes in a running container, their stdio, TTY, exit codes and cleanup.
//!
//! Each scenario runs twice: with the in-process berth_runtime library (the shim's default) and
//! with runc behind the shim (`--runtime-binary`, dockerd's `--runtime` equivalent).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::io::{Read, Write};

use common::{Backend, Env, eventually, opts, process};
use serde_json::json;

both_backends!(
    both: [
        exec_echo_and_exec_wait,
        tty_exec_with_resize,
        many_execs_leave_nothing_behind,
    ],
    library_ignored: [],
);

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
