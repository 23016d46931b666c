//! Live restore: a SIGKILLed berthd loses no container, log line or exit code.

#![allow(clippy::unwrap_used)]

mod common;

use common::Berthd;

fn run(d: &Berthd, args: &[&str]) -> String {
    let o = d.docker(args);
    assert!(
        o.status.success(),
        "docker {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn containers_survive_berthd_sigkill() {
    let mut d = Berthd::start();
    d.load_busybox();
    run(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do echo tick; sleep 0.1; done",
        ],
    );
    // Exits only after berthd is gone: a file it waits for is created while berthd is down.
    run(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "late",
            "busybox",
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 9",
        ],
    );
    run(
        &d,
        &[
            "run",
            "-d",
            "--rm",
            "--name",
            "gone",
            "busybox",
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done",
        ],
    );
    let ticker_pid = run(&d, &["inspect", "-f", "{{.State.Pid}}", "ticker"]);
    let late_dir = run(
        &d,
        &["inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", "late"],
    );
    let gone_dir = run(
        &d,
        &["inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", "gone"],
    );

    if let Some(mut c) = d_child_kill(&mut d) {
        let _ = c.wait();
    }
    // While berthd is down: the containers run on, and two of them exit.
    assert!(std::path::Path::new(&format!("/proc/{ticker_pid}")).exists());
    std::fs::write(format!("{late_dir}/tmp/go"), "").unwrap();
    std::fs::write(format!("{gone_dir}/tmp/go"), "").unwrap();
    // The shims record both exits on disk.
    wait_for_exit_files(&d, 2);

    d.kill9_and_restart();
    let ps = run(&d, &["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps, "ticker running");
    let st = run(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "late",
        ],
    );
    assert_eq!(st, "exited 9");
    // The --rm container is removed once berthd learns of its exit.
    let mut gone = true;
    for _ in 0..200 {
        gone = !run(&d, &["ps", "-a", "--format", "{{.Names}}"]).contains("gone");
        if gone {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(gone, "--rm container left behind");
    // Logs kept flowing while berthd was down, and stop still works.
    let logs = run(&d, &["logs", "ticker"]);
    assert!(logs.lines().count() >= 3, "{logs}");
    run(&d, &["stop", "ticker"]);
    let st = run(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "ticker",
        ],
    );
    assert_eq!(st, "exited 0");
    run(&d, &["rm", "ticker", "late"]);
}

/// Kills berthd without restarting it.
fn d_child_kill(d: &mut Berthd) -> Option<std::process::Child> {
    d.take_child().map(|mut c| {
        let _ = c.kill();
        c
    })
}

fn wait_for_exit_files(d: &Berthd, n: usize) {
    for _ in 0..400 {
        let count = std::fs::read_dir(&d.exec_root)
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("exit").exists())
            .count();
        if count >= n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("containers did not exit while berthd was down");
}

#[test]
fn a_dead_shim_does_not_hang_stop_or_rm() {
    let d = Berthd::start();
    d.load_busybox();
    let id = run(
        &d,
        &["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"],
    );
    let pid = run(&d, &["inspect", "-f", "{{.State.Pid}}", "orphan"]);
    let shim_pid = std::fs::read_to_string(d.exec_root.join(&id).join("shim.pid")).unwrap();
    for p in [shim_pid.trim(), pid.trim()] {
        // SAFETY: kill(2) on processes of this test's private container.
        unsafe {
            libc::kill(p.parse::<i32>().unwrap(), libc::SIGKILL);
        }
    }
    // Whatever berthd concludes about the exit, stop and rm -f must come back.
    let o = d.docker(&["stop", "-t", "1", "orphan"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        run(&d, &["inspect", "-f", "{{.State.Running}}", "orphan"]),
        "false"
    );
    run(&d, &["rm", "-f", "orphan"]);
    assert_eq!(run(&d, &["ps", "-aq"]), "");
}
