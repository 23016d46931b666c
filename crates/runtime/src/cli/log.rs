//! Error output: stderr, plus the `--log` file as text or runc-style JSON lines.

use std::io::Write;
use std::path::PathBuf;

/// Where errors go.
pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
}

impl Logger {
    /// A logger writing to stderr and, if given, `file`.
    pub fn new(file: Option<PathBuf>, json: bool) -> Self {
        Self { file, json }
    }

    /// Report an error.
    pub fn error(&self, msg: &str) {
        eprintln!("berth-runtime: {msg}");
        let Some(path) = &self.file else { return };
        let line = if self.json {
            serde_json::json!({
                "level": "error",
                "msg": msg,
                "time": crate::state::now_rfc3339(),
            })
            .to_string()
        } else {
            format!("{} error: {msg}", crate::state::now_rfc3339())
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
