//! Command line of `berth-shim`, parsed with plain std (no clap: every KiB of RSS counts here).

use std::ffi::OsString;
use std::path::PathBuf;

/// Why the command line was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("missing required option {0}")]
    Missing(&'static str),
    #[error("option {0} needs a value")]
    NoValue(String),
    #[error("option {option}: invalid number {value:?}")]
    BadNumber { option: String, value: String },
    #[error("unknown argument {0:?}")]
    Unknown(String),
}

/// What berthd told the shim to run (see PROTOCOL.md, "Spawn").
#[derive(Debug, Clone)]
pub struct Args {
    /// Container id, also the runtime's id.
    pub id: String,
    /// OCI bundle directory (config.json + rootfs).
    pub bundle: PathBuf,
    /// Where shim.sock, shim.pid, pid and exit live.
    pub state_dir: PathBuf,
    /// The runtime's state root (runc's `--root`).
    pub runtime_root: PathBuf,
    /// The json-file log of the container.
    pub log_path: PathBuf,
    /// The container has a pty (process.terminal in config.json).
    pub terminal: bool,
    /// Keep a stdin for the container that attach clients can write to.
    pub stdin: bool,
    /// Rotate the log when it would grow beyond this many bytes.
    pub log_max_size: Option<u64>,
    /// How many log files to keep, the live one included (Docker's max-file).
    pub log_max_files: u32,
    /// Use an external runc-compatible binary instead of the in-process library (like dockerd's
    /// `--runtime`); an extension of the contract, off by default.
    pub runtime_binary: Option<PathBuf>,
    /// Stay in the foreground (no fork/setsid): for debugging only.
    pub foreground: bool,
}

impl Args {
    /// Parse `std::env::args_os()` minus the program name.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, ArgsError> {
        let mut it = args.into_iter();
        let (mut id, mut bundle, mut state_dir, mut runtime_root, mut log_path) =
            (None, None, None, None, None);
        let mut out = Args {
            id: String::new(),
            bundle: PathBuf::new(),
            state_dir: PathBuf::new(),
            runtime_root: PathBuf::new(),
            log_path: PathBuf::new(),
            terminal: false,
            stdin: false,
            log_max_size: None,
            log_max_files: 1,
            runtime_binary: None,
            foreground: false,
        };
        while let Some(arg) = it.next() {
            let arg_s = arg.to_string_lossy().into_owned();
            // Accept both `--opt value` and `--opt=value`.
            let (name, inline) = match arg_s.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(OsString::from(v))),
                _ => (arg_s.clone(), None),
            };
            let mut value = |name: &str| -> Result<OsString, ArgsError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => it
                        .next()
                        .ok_or_else(|| ArgsError::NoValue(name.to_string())),
                }
            };
            match name.as_str() {
                "--id" => id = Some(value(&name)?.to_string_lossy().into_owned()),
                "--bundle" => bundle = Some(PathBuf::from(value(&name)?)),
                "--state-dir" => state_dir = Some(PathBuf::from(value(&name)?)),
                "--runtime-root" => runtime_root = Some(PathBuf::from(value(&name)?)),
                "--log-path" => log_path = Some(PathBuf::from(value(&name)?)),
                "--runtime-binary" => out.runtime_binary = Some(PathBuf::from(value(&name)?)),
                "--log-max-size" => {
                    let v = value(&name)?.to_string_lossy().into_owned();
                    out.log_max_size = Some(parse_num(&name, &v)?);
                }
                "--log-max-files" => {
                    let v = value(&name)?.to_string_lossy().into_owned();
                    let n: u64 = parse_num(&name, &v)?;
                    out.log_max_files = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
                }
                "--terminal" => out.terminal = true,
                "--stdin" => out.stdin = true,
                "--foreground" => out.foreground = true,
                _ => return Err(ArgsError::Unknown(arg_s)),
            }
        }
        out.id = id.ok_or(ArgsError::Missing("--id"))?;
        out.bundle = bundle.ok_or(ArgsError::Missing("--bundle"))?;
        out.state_dir = state_dir.ok_or(ArgsError::Missing("--state-dir"))?;
        out.runtime_root = runtime_root.ok_or(ArgsError::Missing("--runtime-root"))?;
        out.log_path = log_path.ok_or(ArgsError::Missing("--log-path"))?;
        // The daemon chdirs to `/`: relative paths are resolved against the caller's cwd now.
        for p in [
            &mut out.bundle,
            &mut out.state_dir,
            &mut out.runtime_root,
            &mut out.log_path,
        ] {
            absolutize(p);
        }
        if let Some(b) = &mut out.runtime_binary
            && b.components().count() > 1
        {
            absolutize(b);
        }
        Ok(out)
    }
}

fn absolutize(p: &mut PathBuf) {
    if let Ok(abs) = std::path::absolute(&*p) {
        *p = abs;
    }
}

fn parse_num(option: &str, value: &str) -> Result<u64, ArgsError> {
    value.parse().map_err(|_| ArgsError::BadNumber {
        option: option.to_string(),
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_full_command_line() {
        let a = Args::parse(os(&[
            "--id",
            "c1",
            "--bundle=/b",
            "--state-dir",
            "/s",
            "--runtime-root",
            "/r",
            "--log-path",
            "/l",
            "--terminal",
            "--stdin",
            "--log-max-size",
            "100",
            "--log-max-files",
            "3",
        ]))
        .unwrap();
        assert_eq!(a.id, "c1");
        assert_eq!(a.bundle, PathBuf::from("/b"));
        assert!(a.terminal && a.stdin);
        assert_eq!(a.log_max_size, Some(100));
        assert_eq!(a.log_max_files, 3);
    }

    #[test]
    fn relative_paths_become_absolute() {
        let a = Args::parse(os(&[
            "--id",
            "c",
            "--bundle",
            "b",
            "--state-dir",
            "s",
            "--runtime-root",
            "/r",
            "--log-path",
            "l",
            "--runtime-binary",
            "runc",
        ]))
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(a.bundle, cwd.join("b"));
        assert_eq!(a.state_dir, cwd.join("s"));
        assert_eq!(a.log_path, cwd.join("l"));
        assert_eq!(a.runtime_root, PathBuf::from("/r"));
        // A bare name is looked up in $PATH, not made relative.
        assert_eq!(a.runtime_binary, Some(PathBuf::from("runc")));
    }

    #[test]
    fn rejects_missing_and_unknown() {
        assert!(matches!(
            Args::parse(os(&["--id", "x"])),
            Err(ArgsError::Missing("--bundle"))
        ));
        assert!(matches!(
            Args::parse(os(&["--bogus"])),
            Err(ArgsError::Unknown(_))
        ));
        assert!(matches!(
            Args::parse(os(&["--log-max-size", "x"])),
            Err(ArgsError::BadNumber { .. })
        ));
    }
}
