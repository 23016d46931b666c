//! Container stdio: the json-file log, attach (stdcopy and TTY), stdin, resize, misbehaving clients.
//!
//! Each scenario runs twice: with the in-process berth_runtime library (the shim's default) and
//! with runc behind the shim (`--runtime-binary`, dockerd's `--runtime` equivalent).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::io::{Read, Write};

use common::{Backend, Env, eventually, opts, vm_rss_kib};
use serde_json::json;

both_backends!(
    both: [
        output_lands_in_json_log,
        log_rotation,
        attach_demuxes_stdout_and_stderr,
        stdin_via_attach_reaches_cat,
        tty_echo_and_resize,
        malformed_requests_keep_serving,
        client_leaving_mid_attach_is_harmless,
        stdin_nobody_reads_keeps_the_shim_responsive,
        long_state_dir_paths,
    ],
    library_ignored: [],
);

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
