//! The local terminal: raw mode for `-it` with a guard that restores the saved settings on
//! every exit path (drop, panic hook, broken pipe exit, signals we exit on), and window size.

use std::os::fd::BorrowedFd;
use std::sync::Mutex;

use rustix::termios::{self, OptionalActions, Termios};

/// The settings to restore, saved when raw mode is entered.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

fn stdin_fd() -> BorrowedFd<'static> {
    rustix::stdio::stdin()
}

/// Whether fd 0 is a terminal.
pub fn stdin_is_tty() -> bool {
    termios::isatty(stdin_fd())
}

/// Whether fd 1 is a terminal.
pub fn stdout_is_tty() -> bool {
    termios::isatty(rustix::stdio::stdout())
}

/// Whether fd 2 is a terminal.
pub fn stderr_is_tty() -> bool {
    termios::isatty(rustix::stdio::stderr())
}

/// The terminal size (rows, columns) of stdout, if it is a terminal.
pub fn size() -> Option<(u16, u16)> {
    let ws = termios::tcgetwinsize(rustix::stdio::stdout()).ok()?;
    if ws.ws_row == 0 && ws.ws_col == 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Restores the terminal if raw mode is on; safe to call any number of times.
pub fn restore_all() {
    let saved = match SAVED.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    };
    if let Some(t) = saved {
        let _ = termios::tcsetattr(stdin_fd(), OptionalActions::Now, &t);
    }
}

/// Raw mode on stdin while alive.
#[derive(Debug)]
pub struct RawGuard(());

impl RawGuard {
    /// Puts stdin in raw mode (cfmakeraw, as Docker's `term.MakeRaw`); `None` if stdin is not
    /// a terminal.
    pub fn enable() -> std::io::Result<Option<RawGuard>> {
        if !stdin_is_tty() {
            return Ok(None);
        }
        let orig = termios::tcgetattr(stdin_fd())?;
        let mut raw = orig.clone();
        raw.make_raw();
        {
            let mut g = SAVED.lock().unwrap_or_else(|p| p.into_inner());
            if g.is_none() {
                *g = Some(orig);
            }
        }
        install_panic_hook();
        termios::tcsetattr(stdin_fd(), OptionalActions::Now, &raw)?;
        Ok(Some(RawGuard(())))
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore_all();
    }
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_all();
            prev(info);
        }));
    });
}

/// Parses Docker's detach-keys syntax (`ctrl-p,ctrl-q`, `a`, `ctrl-@`, `ctrl-[`).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

/// Watches input for the detach sequence, holding back a partial match (Docker's escape proxy).
#[derive(Debug)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

/// What to do with a chunk of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Escape {
    /// Forward these bytes.
    Forward(Vec<u8>),
    /// The detach sequence was typed; forward these bytes first.
    Detach(Vec<u8>),
}

impl EscapeProxy {
    /// A proxy for `keys` (empty: never detaches).
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeProxy { keys, matched: 0 }
    }

    /// Feeds input.
    pub fn feed(&mut self, input: &[u8]) -> Escape {
        if self.keys.is_empty() {
            return Escape::Forward(input.to_vec());
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Escape::Detach(out);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        Escape::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-").is_err());
    }

    #[test]
    fn escape_proxy_holds_partial_matches() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ab\x10"), Escape::Forward(b"ab".to_vec()));
        assert_eq!(p.feed(b"x"), Escape::Forward(b"\x10x".to_vec()));
        assert_eq!(p.feed(b"\x10\x10"), Escape::Forward(b"\x10".to_vec()));
        assert_eq!(p.feed(b"\x11rest"), Escape::Detach(Vec::new()));
    }
}
