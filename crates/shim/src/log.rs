//! Docker's json-file log driver, written by the shim so logs keep flowing while berthd is down.
//!
//! One JSON object per line: `{"log":"text\n","stream":"stdout","time":"...Z"}`. Output is split
//! on `\n`; a line longer than 16 KiB is cut into 16 KiB pieces without the newline, as Docker
//! does. With `max_size`, the file is rotated to `.1`, `.2`, … keeping `max_files` files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Docker's line buffer size: longer lines are split into pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

/// Why the log could not be opened or rotated.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("open log {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("rotate log {path}")]
    Rotate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write log {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// The json-file writer of one container.
pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
    /// Unterminated tail of each stream, waiting for its newline.
    partial: [Vec<u8>; 2],
    line: Vec<u8>,
}

impl JsonLog {
    /// Open (append) the log at `path`.
    pub fn open(path: &Path, max_size: Option<u64>, max_files: u32) -> Result<JsonLog, LogError> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
            line: Vec::new(),
        })
    }

    /// Feed output of `stream`; complete lines (and 16 KiB pieces) are written at once.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> Result<(), LogError> {
        let idx = stream as usize - 1;
        while !data.is_empty() {
            let room = MAX_LINE - self.partial[idx].len();
            let take = data.len().min(room);
            let chunk = &data[..take];
            if let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
                let mut msg = std::mem::take(&mut self.partial[idx]);
                msg.extend_from_slice(&chunk[..=nl]);
                data = &data[nl + 1..];
                let r = self.emit(stream, &msg);
                msg.clear();
                self.partial[idx] = msg;
                r?;
            } else {
                self.partial[idx].extend_from_slice(chunk);
                data = &data[take..];
                if self.partial[idx].len() >= MAX_LINE {
                    let msg = std::mem::take(&mut self.partial[idx]);
                    let r = self.emit(stream, &msg);
                    self.partial[idx] = Vec::new();
                    r?;
                }
            }
        }
        // Keep idle memory small: a big partial buffer is given back once drained.
        if self.partial[idx].is_empty() && self.partial[idx].capacity() > 4096 {
            self.partial[idx] = Vec::new();
        }
        Ok(())
    }

    /// Write out what is left of `stream` without a newline (the stream ended).
    pub fn flush_stream(&mut self, stream: Stream) -> Result<(), LogError> {
        let idx = stream as usize - 1;
        if self.partial[idx].is_empty() {
            return Ok(());
        }
        let msg = std::mem::take(&mut self.partial[idx]);
        self.emit(stream, &msg)
    }

    fn emit(&mut self, stream: Stream, msg: &[u8]) -> Result<(), LogError> {
        let text = String::from_utf8_lossy(msg);
        let time = crate::files::now_rfc3339_nano();
        self.line.clear();
        let entry = Entry {
            log: &text,
            stream: stream.name(),
            time: &time,
        };
        // Serializing plain strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.line, &entry);
        self.line.push(b'\n');
        if let Some(max) = self.max_size
            && self.size > 0
            && self.size + self.line.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file
            .write_all(&self.line)
            .map_err(|source| LogError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.size += self.line.len() as u64;
        if self.line.capacity() > 64 * 1024 {
            self.line = Vec::new();
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let err = |source| LogError::Rotate {
            path: self.path.clone(),
            source,
        };
        if self.max_files > 1 {
            let name = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
            for n in (1..self.max_files - 1).rev() {
                match fs::rename(name(n), name(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(e)),
                    _ => {}
                }
            }
            fs::rename(&self.path, name(1)).map_err(err)?;
            self.file = open_append(&self.path)?;
        } else {
            self.file.set_len(0).map_err(err)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-shim-log-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_lines_and_streams() {
        let d = tmp("split");
        let p = d.join("c-json.log");
        let mut log = JsonLog::open(&p, None, 1).unwrap();
        log.write(Stream::Stdout, b"a\nb").unwrap();
        log.write(Stream::Stderr, b"err\n").unwrap();
        log.write(Stream::Stdout, b"c\n").unwrap();
        log.write(Stream::Stdout, b"tail").unwrap();
        log.flush_stream(Stream::Stdout).unwrap();
        let e = entries(&p);
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|v| (v["log"].as_str().unwrap(), v["stream"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a\n", "stdout"),
                ("err\n", "stderr"),
                ("bc\n", "stdout"),
                ("tail", "stdout")
            ]
        );
        let t = e[0]["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
        assert!(t.ends_with('Z'));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let d = tmp("long");
        let p = d.join("c-json.log");
        let mut log = JsonLog::open(&p, None, 1).unwrap();
        let mut data = vec![b'x'; MAX_LINE * 2 + 10];
        data.push(b'\n');
        log.write(Stream::Stdout, &data).unwrap();
        let e = entries(&p);
        let lens: Vec<usize> = e.iter().map(|v| v["log"].as_str().unwrap().len()).collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 11]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotates_keeping_max_files() {
        let d = tmp("rot");
        let p = d.join("c-json.log");
        let mut log = JsonLog::open(&p, Some(200), 3).unwrap();
        for i in 0..40 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["c-json.log", "c-json.log.1", "c-json.log.2"]);
        for n in &names {
            assert!(fs::metadata(d.join(n)).unwrap().len() <= 200);
        }
        // The newest line is in the live file, the one before it in .1 or the live file.
        let last = entries(&p);
        assert_eq!(last.last().unwrap()["log"], "line 39\n");
        fs::remove_dir_all(&d).unwrap();
    }
}
