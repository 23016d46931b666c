//! Pull/push progress as Docker's JSON-lines messages (`jsonmessage.JSONMessage`): the daemon
//! serialises each [`ProgressEvent`] with [`ProgressEvent::to_json`] and the docker CLI renders
//! them as it does Docker's.

use serde::Serialize;

/// `progressDetail` of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// Bytes in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// One progress message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgressEvent {
    /// `Pulling fs layer`, `Downloading`, `Digest: sha256:...`.
    pub status: String,
    /// Present (possibly `{}`) on per-layer messages, like Docker.
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// The rendered bar (`[==>    ]  1.2MB/2.5MB`) for byte progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Layer id (first 12 hex of the blob digest) or tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl ProgressEvent {
    /// A message without id (`Digest: ...`, `Status: ...`).
    pub fn message(status: impl Into<String>) -> Self {
        ProgressEvent {
            status: status.into(),
            progress_detail: None,
            progress: None,
            id: None,
        }
    }

    /// A message with an id but no detail (`{"status":"Pulling from x","id":"latest"}`).
    pub fn with_id(id: impl Into<String>, status: impl Into<String>) -> Self {
        ProgressEvent {
            id: Some(id.into()),
            ..ProgressEvent::message(status)
        }
    }

    /// A per-layer message (`progressDetail` is `{}`).
    pub fn layer(id: &str, status: impl Into<String>) -> Self {
        ProgressEvent {
            progress_detail: Some(ProgressDetail::default()),
            ..ProgressEvent::with_id(id, status)
        }
    }

    /// A per-layer byte progress message (`Downloading`, `Extracting`, `Pushing`).
    pub fn bytes(id: &str, status: impl Into<String>, current: u64, total: u64) -> Self {
        ProgressEvent {
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total: (total > 0).then_some(total),
            }),
            progress: Some(progress_bar(current, total)),
            ..ProgressEvent::with_id(id, status)
        }
    }

    /// The JSON line (without newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The short layer id Docker shows: 12 hex chars of the digest.
pub fn short_id(digest: &str) -> String {
    crate::ids::hex_of(digest).chars().take(12).collect()
}

/// Docker's `units.HumanSize`: decimal units, 4 significant digits (`%.4g`).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", g4(v), UNITS[i])
}

/// Go's `%.4g` for 0 <= v < 1000.
fn g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits_before = if v >= 1.0 {
        (v.log10().floor() as i32) + 1
    } else {
        0
    };
    let decimals = (4 - digits_before).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Docker's `JSONProgress.String()` as the daemon renders it (width 200, no time left).
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(772_300), "772.3kB");
        assert_eq!(human_size(2_110_000), "2.11MB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(52_428_800), "52.43MB");
    }

    #[test]
    fn json_shapes() {
        assert_eq!(
            ProgressEvent::with_id("latest", "Pulling from library/busybox").to_json(),
            r#"{"status":"Pulling from library/busybox","id":"latest"}"#
        );
        assert_eq!(
            ProgressEvent::layer("abc", "Pulling fs layer").to_json(),
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"abc"}"#
        );
        let d = ProgressEvent::bytes("abc", "Downloading", 500, 1000).to_json();
        assert_eq!(
            d,
            format!(
                r#"{{"status":"Downloading","progressDetail":{{"current":500,"total":1000}},"progress":"[{}>{}]     500B/1kB","id":"abc"}}"#,
                "=".repeat(25),
                " ".repeat(25)
            )
        );
    }
}
