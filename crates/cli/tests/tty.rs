//! `berth run -it` under a real terminal (tmux): prompt, echo, window size, exit status, and
//! the terminal left sane.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::Daemon;

/// A detached tmux session running bash; killed on drop.
struct Tmux {
    name: String,
}

impl Tmux {
    fn new(env: &[(&str, String)]) -> Tmux {
        let name = format!("berth-tty-{}-{}", std::process::id(), rand_suffix());
        let mut c = Command::new("tmux");
        c.args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "80",
            "-y",
            "24",
            "bash --norc --noprofile",
        ]);
        for (k, v) in env {
            c.env(k, v);
        }
        assert!(c.status().unwrap().success(), "tmux new-session");
        let t = Tmux { name };
        // Variables set before new-session reach bash only on a fresh server; export them too.
        for (k, v) in env {
            t.line(&format!("export {k}='{v}'"));
        }
        t.line("PS1='PROMPT'$'\\x24 '; clear");
        t.wait_prompts(1);
        t
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    fn line(&self, s: &str) {
        self.keys(&["-l", s]);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Polls until bash's prompt shows at least `n` times (capture-pane trims trailing spaces,
    /// and earlier prompts stay on the screen).
    fn wait_prompts(&self, n: usize) -> String {
        for _ in 0..1200 {
            let s = self.screen();
            if s.matches("PROMPT$").count() >= n {
                return s;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "prompt #{n} never appeared on the screen:\n{}",
            self.screen()
        );
    }

    /// Polls the screen until `what` appears (bounded; the failure shows the screen).
    fn wait_for(&self, what: &str) -> String {
        for _ in 0..1200 {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{what:?} never appeared on the screen:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn rand_suffix() -> u32 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn run_it_shell_under_tmux() {
    let d = Daemon::start();
    d.load_busybox();
    let berth = env!("CARGO_BIN_EXE_berth");
    let t = Tmux::new(&[("DOCKER_HOST", d.host())]);
    t.line(&format!("'{berth}' run -it --rm busybox sh"));
    t.wait_for("/ #");
    t.line("echo hi$((1+1))");
    t.wait_for("\nhi2");
    t.line("stty size");
    t.wait_for("24 80");
    // A window change reaches the container.
    assert!(
        Command::new("tmux")
            .args(["resize-window", "-t", &t.name, "-x", "100", "-y", "30"])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(200));
    t.line("stty size");
    t.wait_for("30 100");
    t.line("exit 4");
    t.wait_prompts(2);
    t.line("echo EXIT=$?");
    t.wait_for("EXIT=4");
    // The local terminal is back in cooked mode with echo.
    t.line("stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo|isig)' | tr '\\n' ,; echo");
    let s = t.wait_for("icanon,");
    assert!(
        s.contains("icanon,isig,echo,")
            || s.contains("isig,icanon,echo,")
            || s.contains("icanon,echo,isig,")
            || !s.contains("-icanon"),
        "terminal left raw:\n{s}"
    );
    assert!(
        !s.contains("-icanon") && !s.contains("-echo,") && !s.contains("-isig"),
        "terminal left raw:\n{s}"
    );
}

#[test]
fn detach_keys_leave_container_running() {
    let d = Daemon::start();
    d.load_busybox();
    let berth = env!("CARGO_BIN_EXE_berth");
    let t = Tmux::new(&[("DOCKER_HOST", d.host())]);
    t.line(&format!("'{berth}' run -it --name det busybox sh"));
    t.wait_for("/ #");
    t.keys(&["C-p", "C-q"]);
    t.wait_prompts(2);
    t.line("echo EXIT=$?");
    t.wait_for("EXIT=0");
    d.berth()
        .args(["inspect", "-f", "{{.State.Running}}", "det"])
        .assert()
        .success()
        .stdout("true\n");
    d.berth().args(["rm", "-f", "det"]).assert().success();
}

/// The real docker CLI against berthd: `docker run -it busybox sh` is interactive, Ctrl-P Ctrl-Q
/// detaches and leaves the container running, and `exit` status comes back (issue 6).
#[test]
fn docker_cli_run_it_shell_under_tmux() {
    let docker = "/usr/local/bin/docker";
    if !std::path::Path::new(docker).is_file() {
        eprintln!("SKIP: {docker} (the docker CLI) is not installed");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let t = Tmux::new(&[("DOCKER_HOST", d.host())]);
    t.line(&format!("{docker} run -it --name dit busybox sh"));
    t.wait_for("/ #");
    t.line("echo via$((20+1))docker");
    t.wait_for("\nvia21docker");
    t.keys(&["C-p", "C-q"]);
    t.wait_prompts(2);
    t.line("echo EXIT=$?");
    t.wait_for("EXIT=0");
    d.docker()
        .args(["inspect", "-f", "{{.State.Running}}", "dit"])
        .assert()
        .success()
        .stdout("true\n");
    t.line(&format!(
        "{docker} run -it --rm busybox sh -c 'exit 5'; echo CODE=$?"
    ));
    t.wait_for("CODE=5");
    d.docker().args(["rm", "-f", "dit"]).assert().success();
}

/// `exec -it` into a running container, with `berth` and with the docker CLI: a shell prompt,
/// commands echo, the exec's exit status comes back, the container keeps running.
#[test]
fn exec_it_shell_under_tmux() {
    let d = Daemon::start();
    d.load_busybox();
    d.berth()
        .args(["run", "-d", "--name", "ex", "busybox", "sleep", "300"])
        .assert()
        .success();
    let berth = env!("CARGO_BIN_EXE_berth");
    let t = Tmux::new(&[("DOCKER_HOST", d.host())]);
    t.line(&format!("'{berth}' exec -it ex sh"));
    t.wait_for("/ #");
    t.line("echo in$((3*3))exec; stty size");
    t.wait_for("\nin9exec");
    t.wait_for("24 80");
    t.line("exit 6");
    t.wait_prompts(2);
    t.line("echo EXIT=$?");
    t.wait_for("EXIT=6");
    let docker = "/usr/local/bin/docker";
    if std::path::Path::new(docker).is_file() {
        t.line(&format!(
            "{docker} exec -it ex sh -c 'tty; exit 7'; echo CODE=$?"
        ));
        t.wait_for("/dev/pts/");
        t.wait_for("CODE=7");
    } else {
        eprintln!("SKIP (docker half): {docker} (the docker CLI) is not installed");
    }
    d.berth()
        .args(["inspect", "-f", "{{.State.Running}}", "ex"])
        .assert()
        .success()
        .stdout("true\n");
    d.berth().args(["rm", "-f", "ex"]).assert().success();
}
