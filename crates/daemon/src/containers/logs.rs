//! `GET /containers/{id}/logs`: the json-file log the shim writes, filtered and framed.

use std::io::{BufRead, Seek, SeekFrom};
use std::path::PathBuf;

use berth_api::ApiError;
use berth_api::query::ContainerLogsQuery;
use bytes::Bytes;
use tokio::sync::mpsc;

/// One parsed log line.
#[derive(Debug)]
struct Line {
    stream: u8,
    text: String,
    time: String,
}

fn parse_line(raw: &str) -> Option<Line> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    Some(Line {
        stream: if v.get("stream")?.as_str()? == "stderr" {
            2
        } else {
            1
        },
        text: v.get("log")?.as_str()?.to_owned(),
        time: v
            .get("time")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_owned(),
    })
}

/// Parses Docker's `since`/`until`: unix seconds with optional fraction.
fn parse_ts(s: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let (secs, nanos) = match s.split_once('.') {
        Some((a, b)) => (a, format!("{b:0<9}")),
        None => (s, "0".to_owned()),
    };
    let secs: i64 = secs
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid time {s:?}")))?;
    let nanos: u32 = nanos.get(..9).unwrap_or("0").parse().unwrap_or(0);
    Ok(chrono::DateTime::from_timestamp(secs, nanos))
}

/// Docker's stdcopy frame.
pub fn frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// Options resolved from the query.
#[derive(Debug, Clone)]
pub struct LogOptions {
    stdout: bool,
    stderr: bool,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    timestamps: bool,
    tail: Option<usize>,
    /// Raw bytes (TTY) instead of stdcopy frames.
    pub raw: bool,
    /// Keep following.
    pub follow: bool,
}

impl LogOptions {
    /// From the query and the container's TTY setting.
    pub fn from_query(q: &ContainerLogsQuery, tty: bool) -> Result<LogOptions, ApiError> {
        if !q.stdout && !q.stderr {
            return Err(ApiError::invalid(
                "Bad parameters: you must choose at least one stream",
            ));
        }
        let tail = match q.tail.as_deref().map(str::trim) {
            None | Some("") | Some("all") => None,
            Some(n) => Some(
                n.parse::<i64>()
                    .map(|n| n.max(0) as usize)
                    .unwrap_or(usize::MAX),
            ),
        };
        Ok(LogOptions {
            stdout: q.stdout,
            stderr: q.stderr,
            since: parse_ts(q.since.as_deref().unwrap_or(""))?,
            until: parse_ts(q.until.as_deref().unwrap_or(""))?,
            timestamps: q.timestamps,
            tail,
            raw: tty,
            follow: q.follow,
        })
    }

    /// The same options for attach's `logs=1` replay.
    pub fn replay(stdout: bool, stderr: bool, tty: bool) -> LogOptions {
        LogOptions {
            stdout,
            stderr,
            since: None,
            until: None,
            timestamps: false,
            tail: None,
            raw: tty,
            follow: false,
        }
    }

    fn render(&self, line: &Line) -> Option<Bytes> {
        if (line.stream == 1 && !self.stdout) || (line.stream == 2 && !self.stderr) {
            return None;
        }
        if self.since.is_some() || self.until.is_some() {
            let t = chrono::DateTime::parse_from_rfc3339(&line.time)
                .ok()?
                .with_timezone(&chrono::Utc);
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
                return None;
            }
        }
        let text = if self.timestamps {
            format!("{} {}", line.time, line.text)
        } else {
            line.text.clone()
        };
        Some(if self.raw {
            Bytes::from(text.into_bytes())
        } else {
            frame(line.stream, text.as_bytes())
        })
    }
}

/// Streams the log into `tx`: existing lines (with tail), then — with `follow` — new lines
/// until `stopped` says the container is not running and the file is drained.
pub fn stream(
    path: PathBuf,
    opts: LogOptions,
    tx: mpsc::Sender<Bytes>,
    running: impl Fn() -> bool + Send + 'static,
) {
    tokio::task::spawn_blocking(move || {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(_) if !opts.follow => return,
            Err(_) => {
                // Not created yet: wait for it while the container runs.
                loop {
                    if let Ok(f) = std::fs::File::open(&path) {
                        break f;
                    }
                    if !running() || tx.is_closed() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        };
        let mut lines: Vec<Line> = Vec::new();
        let mut buf = String::new();
        // Rotated files first, oldest (highest number) to newest.
        let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let prefix = format!("{}.", name.to_string_lossy());
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(num) = n.strip_prefix(&prefix).and_then(|x| x.parse::<u32>().ok()) {
                    rotated.push((num, e.path()));
                }
            }
        }
        rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (_, p) in rotated {
            if let Ok(f) = std::fs::File::open(&p) {
                let mut r = std::io::BufReader::new(f);
                while r.read_line(&mut buf).unwrap_or(0) > 0 {
                    if buf.ends_with('\n')
                        && let Some(l) = parse_line(buf.trim_end())
                    {
                        lines.push(l);
                    }
                    buf.clear();
                }
            }
        }
        let mut reader = std::io::BufReader::new(file);
        while reader.read_line(&mut buf).unwrap_or(0) > 0 {
            if buf.ends_with('\n')
                && let Some(l) = parse_line(buf.trim_end())
            {
                lines.push(l);
            }
            buf.clear();
        }
        let start = opts.tail.map_or(0, |t| lines.len().saturating_sub(t));
        for l in &lines[start..] {
            if let Some(b) = opts.render(l)
                && tx.blocking_send(b).is_err()
            {
                return;
            }
        }
        if !opts.follow {
            return;
        }
        let mut pos = reader.stream_position().unwrap_or(0);
        loop {
            let was_running = running();
            let mut progressed = false;
            if let Ok(f) = std::fs::File::open(&path) {
                // Rotated under us: the live file restarted from zero.
                if f.metadata().map(|m| m.len() < pos).unwrap_or(false) {
                    pos = 0;
                }
                let mut r = std::io::BufReader::new(f);
                if r.seek(SeekFrom::Start(pos)).is_ok() {
                    let mut line = String::new();
                    while let Ok(n) = r.read_line(&mut line) {
                        if n == 0 || !line.ends_with('\n') {
                            break;
                        }
                        pos += n as u64;
                        progressed = true;
                        if let Some(l) = parse_line(line.trim_end())
                            && let Some(b) = opts.render(&l)
                            && tx.blocking_send(b).is_err()
                        {
                            return;
                        }
                        line.clear();
                    }
                }
            }
            if tx.is_closed() || (!was_running && !progressed) {
                return;
            }
            if !progressed {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(
            &frame(1, b"hi\n")[..],
            &[1, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
    }

    #[test]
    fn tail_and_streams() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x-json.log");
        std::fs::write(
            &p,
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00.1Z\"}\n{\"log\":\"b\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:01Z\"}\n{\"log\":\"c\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:02Z\"}\n",
        )
        .unwrap();
        let q = ContainerLogsQuery {
            stdout: true,
            stderr: false,
            tail: Some("1".into()),
            ..Default::default()
        };
        let opts = LogOptions::from_query(&q, true).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let (tx, mut rx) = mpsc::channel(8);
            stream(p.clone(), opts, tx, || false);
            let mut v = Vec::new();
            while let Some(b) = rx.recv().await {
                v.extend_from_slice(&b);
            }
            v
        });
        assert_eq!(out, b"c\n");
    }
}
