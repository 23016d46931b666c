//! Signal names and numbers as Docker accepts them (`SIGKILL`, `KILL`, `9`).

use berth_api::ApiError;
use nix::sys::signal::Signal;
use std::str::FromStr;

/// Parses a signal; Docker's 400 on unknown names.
pub fn parse(raw: &str) -> Result<i32, ApiError> {
    let s = raw.trim();
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(ApiError::invalid(format!("Invalid signal: {raw}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off = if rt.is_empty() {
            Some(0)
        } else {
            rt.strip_prefix('+').and_then(|n| n.parse::<i32>().ok())
        };
        if let Some(o) = off {
            return Ok(base + o);
        }
    }
    Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| ApiError::invalid(format!("Invalid signal: {raw}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("kill").unwrap(), 9);
        assert_eq!(parse("15").unwrap(), 15);
        assert_eq!(parse("HUP").unwrap(), 1);
        assert_eq!(parse("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert_eq!(parse("NOPE").unwrap_err().http_status(), 400);
        assert!(parse("0").is_err());
    }
}
