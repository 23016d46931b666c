//! Lifecycle hooks: each gets the state JSON on stdin with the status the runtime-spec
//! prescribes; poststart/poststop failures only warn; a hook that ignores stdin is harmless.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod rt_support;
use rt_support::*;

fn recorder(out: &std::path::Path) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]})
}

#[test]
fn every_hook_gets_state_with_its_status() {
    let rt = Rt::new();
    let rec = rt.tmp.path().join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let b = rt.bundle("b", &["true"], |s| {
        s["hooks"] = json!({
            "prestart": [recorder(&rec.join("prestart"))],
            "createRuntime": [recorder(&rec.join("createRuntime"))],
            "createContainer": [recorder(&rec.join("createContainer"))],
            // Runs inside the container: write into the rootfs.
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hookout/startContainer"]}],
            "poststart": [recorder(&rec.join("poststart"))],
            "poststop": [recorder(&rec.join("poststop"))]
        });
    });
    std::fs::create_dir_all(b.join("rootfs/hookout")).unwrap();
    let id = rt.id("hooks");
    let out = rt.run(&["run", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ];
    for (hook, status) in want {
        let path = if hook == "startContainer" {
            b.join("rootfs/hookout").join(hook)
        } else {
            rec.join(hook)
        };
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{hook}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"], status, "{hook}: {text}");
        assert_eq!(v["id"], id.as_str(), "{hook}");
        assert_eq!(v["bundle"], b.to_str().unwrap(), "{hook}");
        assert_eq!(v["ociVersion"], "1.0.2-dev", "{hook}");
        if hook != "poststop" {
            assert!(v["pid"].as_i64().unwrap() > 0, "{hook}: {text}");
        }
    }
}

#[test]
fn failing_poststart_and_poststop_only_warn() {
    let rt = Rt::new();
    let fail = json!({"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]});
    let b = rt.bundle("b", &["echo", "ran"], |s| {
        s["hooks"] = json!({"poststart": [fail.clone()], "poststop": [fail.clone()]});
    });
    let id = rt.id("warn");
    let out = rt.run(&["run", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ran\n");
    let err = stderr(&out);
    assert!(
        err.contains("warning: poststart hook /bin/sh failed: exit status 3: nope"),
        "{err}"
    );
    assert!(
        err.contains("warning: poststop hook /bin/sh failed"),
        "{err}"
    );
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn failing_prestart_fails_create_cleanly() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| {
        s["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    });
    let id = rt.id("pre");
    let (ok, err, _) = rt.detached(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(!ok);
    assert!(
        err.contains("createRuntime hook /bin/false failed: exit status 1"),
        "{err}"
    );
    assert!(!rt.state_dir(&id).exists());
    assert!(processes_with_cmdline(&id).is_empty());
}

#[test]
fn hook_that_ignores_stdin_does_not_kill_the_runtime() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["echo", "alive"], |s| {
        // A state JSON far larger than a pipe buffer: the write must hit EPIPE.
        s["annotations"] = json!({"big": "x".repeat(256 * 1024)});
        let t = json!({"path": "/bin/true"});
        s["hooks"] = json!({"prestart": [t.clone()], "createRuntime": [t.clone()], "poststart": [t.clone()], "poststop": [t]});
    });
    let id = rt.id("epipe");
    let out = rt.run(&["run", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "alive\n");
}

#[test]
fn hook_timeout_and_env() {
    let rt = Rt::new();
    let envout = rt.tmp.path().join("env");
    let b = rt.bundle("b", &["true"], |s| {
        s["hooks"] = json!({
            "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo $HOOKVAR > {}", envout.display())], "env": ["HOOKVAR=v1"]}],
            "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "100"], "timeout": 1}]
        });
    });
    let id = rt.id("timeout");
    let (ok, err, _) = rt.detached(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(!ok);
    assert!(err.contains("timed out after 1s"), "{err}");
    assert_eq!(std::fs::read_to_string(&envout).unwrap(), "v1\n");
}
