//! `--console-socket`: the test acts as the socket's owner, receives the pty master and reads
//! the container's terminal output.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod rt_support;
use rt_support::*;

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;

fn read_all(master: std::os::fd::OwnedFd) -> String {
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Reading a pty master ends with EIO once the slave side is closed.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tty_bundle(rt: &Rt, args: &[&str]) -> std::path::PathBuf {
    rt.bundle("b", args, |s| s["process"]["terminal"] = json!(true))
}

#[test]
fn run_hands_over_the_pty_master() {
    let rt = Rt::new();
    let sock = rt.tmp.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let b = tty_bundle(&rt, &["sh", "-c", "tty; echo from-tty"]);
    let id = rt.id("tty");
    let (ok, err, _) = rt.detached(&[
        "run",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        b.to_str().unwrap(),
        &id,
    ]);
    assert!(ok, "{err}");
    let (conn, _) = listener.accept().unwrap();
    let (master, name) = berth_runtime::console::recv_fd(conn.as_fd()).unwrap();
    assert_eq!(String::from_utf8_lossy(&name), "/dev/pts/0");
    let text = read_all(master);
    assert_eq!(text, "/dev/pts/0\r\nfrom-tty\r\n");
}

#[test]
fn terminal_without_console_socket_is_an_error() {
    let rt = Rt::new();
    let b = tty_bundle(&rt, &["true"]);
    let id = rt.id("nosock");
    let out = rt.run(&["run", "-b", b.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--console-socket"),
        "{}",
        stderr(&out)
    );
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn exec_with_tty() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sleep", "1000"], |_| {});
    let id = rt.id("exectty");
    let (ok, err, _) = rt.detached(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(ok, "{err}");
    let sock = rt.tmp.path().join("exec.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let (ok, err, _) = rt.detached(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty",
    ]);
    assert!(ok, "{err}");
    let (conn, _) = listener.accept().unwrap();
    let (master, _) = berth_runtime::console::recv_fd(conn.as_fd()).unwrap();
    assert!(read_all(master).starts_with("/dev/pts/"));
}
