//! Writing to stdout/stderr. A closed stdout (`berth ps | head`) ends the process cleanly
//! with status 0 instead of a panic, as Docker's Go CLI and ripgrep do.

use std::io::Write;

/// Writes `s` to stdout.
pub fn out(s: &str) {
    out_bytes(s.as_bytes());
}

/// Writes bytes to stdout and flushes.
pub fn out_bytes(b: &[u8]) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(b).and_then(|()| o.flush()) {
        exit_on_write_error(&e);
    }
}

/// Writes `s` followed by a newline to stdout.
pub fn outln(s: &str) {
    let mut v = String::with_capacity(s.len() + 1);
    v.push_str(s);
    v.push('\n');
    out(&v);
}

/// Writes bytes to stderr.
pub fn err_bytes(b: &[u8]) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(b).and_then(|()| e.flush());
}

/// Writes `s` and a newline to stderr.
pub fn errln(s: &str) {
    err_bytes(format!("{s}\n").as_bytes());
}

/// Broken pipe on stdout is a clean exit; other write errors are reported once.
pub fn exit_on_write_error(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        crate::tty::restore_all();
        std::process::exit(0);
    }
    errln(&format!("error writing output: {e}"));
    crate::tty::restore_all();
    std::process::exit(1);
}
