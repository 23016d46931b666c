//! Flag value parsers shared by `run`, `create` and `update`: byte sizes (`64m`), Go durations
//! (`1m30s`), restart policies, ulimits.

use serde_json::{Value, json};

use super::OptsError;

/// Docker's `RAMInBytes`: binary units b/k/m/g/t/p, optional trailing `b`, case-insensitive.
pub fn ram_in_bytes(s: &str) -> Result<i64, OptsError> {
    let bad = || OptsError::Invalid(format!("invalid size: '{s}'"));
    let t = s.trim().to_ascii_lowercase();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    Ok((n * mult) as i64)
}

/// `--memory-swap`: `-1` (unlimited) or a size.
pub fn swap_bytes(s: &str) -> Result<i64, OptsError> {
    if s.trim() == "-1" {
        Ok(-1)
    } else {
        ram_in_bytes(s)
    }
}

/// Docker's `timetypes.GetTimestamp` for `--since`/`--until`: a Go duration (`10m`) means that
/// long before `now`; a unix time (`1700000000`, `1700000000.5`) passes through; an RFC 3339
/// date or date-time (`2026-01-02`, `2026-01-02T15:04:05`, with `Z` or an offset; local time
/// without one) becomes unix seconds. The daemon gets `secs.nanos`.
pub fn timestamp(value: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, OptsError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(String::new());
    }
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
    };
    if let Ok(ns) = go_duration_ns(v)
        && v != "0"
    {
        return Ok(fmt(now - chrono::Duration::nanoseconds(ns)));
    }
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Ok(v.to_owned());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(fmt(t.with_timezone(&chrono::Utc)));
    }
    use chrono::TimeZone;
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(v, f)
            && let Some(t) = chrono::Local.from_local_datetime(&n).single()
        {
            return Ok(fmt(t.with_timezone(&chrono::Utc)));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        && let Some(n) = d.and_hms_opt(0, 0, 0)
        && let Some(t) = chrono::Local.from_local_datetime(&n).single()
    {
        return Ok(fmt(t.with_timezone(&chrono::Utc)));
    }
    Err(OptsError::Invalid(format!(
        "failed to parse value as time or duration: {value:?}"
    )))
}

/// Go's `time.ParseDuration` in nanoseconds (`300ms`, `1m30s`, `2h`).
pub fn go_duration_ns(s: &str) -> Result<i64, OptsError> {
    let bad = || OptsError::Invalid(format!("time: invalid duration \"{s}\""));
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if n_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[u_end..];
    }
    Ok(total as i64)
}

/// `--restart`: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<Value, OptsError> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("no" | "always" | "unless-stopped", None) | ("", None) => {
            Ok(json!({"Name": name, "MaximumRetryCount": 0}))
        }
        ("always" | "unless-stopped" | "no", Some(_)) => Err(OptsError::Invalid(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
                .into(),
        )),
        ("on-failure", c) => {
            let n = match c {
                Some(c) => c.parse::<i64>().map_err(|_| {
                    OptsError::Invalid(format!(
                        "invalid restart policy format: maximum retry count must be an integer: {c}"
                    ))
                })?,
                None => 0,
            };
            Ok(json!({"Name": "on-failure", "MaximumRetryCount": n}))
        }
        _ => Err(OptsError::Invalid(format!(
            "invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ))),
    }
}

/// `--ulimit name=soft[:hard]`.
pub fn ulimit(s: &str) -> Result<Value, OptsError> {
    let bad = || OptsError::Invalid(format!("invalid ulimit argument: {s}"));
    let (name, vals) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    if soft > hard {
        return Err(OptsError::Invalid(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(
            ram_in_bytes("64x").unwrap_err().to_string(),
            "invalid size: '64x'"
        );
        assert_eq!(swap_bytes("-1").unwrap(), -1);
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration_ns("30s").unwrap(), 30_000_000_000);
        assert_eq!(go_duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration_ns("500ms").unwrap(), 500_000_000);
        assert!(go_duration_ns("5").is_err());
    }

    #[test]
    fn restart_and_ulimit() {
        assert_eq!(
            restart_policy("on-failure:3").unwrap(),
            json!({"Name":"on-failure","MaximumRetryCount":3})
        );
        assert_eq!(
            restart_policy("always").unwrap(),
            json!({"Name":"always","MaximumRetryCount":0})
        );
        assert!(restart_policy("sometimes").is_err());
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            json!({"Name":"nofile","Soft":1024,"Hard":2048})
        );
        assert_eq!(
            ulimit("nproc=10").unwrap(),
            json!({"Name":"nproc","Soft":10,"Hard":10})
        );
    }
}
