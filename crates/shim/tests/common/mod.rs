//! Test harness: spawn the real `berth-shim` binary on a fixture bundle, talk to its socket.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

/// One `#[test]` per scenario and backend: `runc::NAME` and `library::NAME`; scenarios listed
/// under `library_ignored` are ignored (with the reason) on the library backend only.
macro_rules! both_backends {
    (
        both: [$($name:ident),* $(,)?],
        library_ignored: [$($iname:ident => $reason:literal),* $(,)?] $(,)?
    ) => {
        mod runc {
            $(
                #[test]
                fn $name() {
                    if !$crate::common::skip_unless_ready() { return; }
                    super::$name($crate::common::Backend::Runc);
                }
            )*
            $(
                #[test]
                fn $iname() {
                    if !$crate::common::skip_unless_ready() { return; }
                    super::$iname($crate::common::Backend::Runc);
                }
            )*
        }
        mod library {
            $(
                #[test]
                fn $name() {
                    if !$crate::common::skip_unless_ready() { return; }
                    super::$name($crate::common::Backend::Library);
                }
            )*
            $(
                #[test]
                #[ignore = $reason]
                fn $iname() {
                    super::$iname($crate::common::Backend::Library);
                }
            )*
        }
    };
}

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");
pub const RUNC: &str = "/usr/sbin/runc";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Which runtime the shim uses in a test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// berth_runtime in-process (the default of the shim).
    Library,
    /// runc, through `--runtime-binary`.
    Runc,
}

/// Options of one spawned shim.
pub struct Opts {
    pub args: Vec<String>,
    pub terminal: bool,
    pub stdin: bool,
    pub backend: Backend,
    pub edit: Box<dyn FnOnce(&mut Value)>,
    pub extra: Vec<String>,
    /// Put the state dir so deep that its socket paths exceed sun_path (108 bytes).
    pub long_state_dir: bool,
}

impl Opts {
    pub fn new(args: &[&str]) -> Opts {
        Opts {
            args: args.iter().map(|s| s.to_string()).collect(),
            terminal: false,
            stdin: false,
            backend: Backend::Runc,
            edit: Box::new(|_| {}),
            extra: Vec::new(),
            long_state_dir: false,
        }
    }
}

/// A running shim and its container; cleaned up on drop.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub id: String,
    pub state: PathBuf,
    pub runtime_root: PathBuf,
    pub log: PathBuf,
    pub ready: Value,
    pub backend: Backend,
}

pub fn skip_unless_ready() -> bool {
    if !berth_fixtures::busybox_available() {
        println!("SKIP: /bin/busybox missing");
        return false;
    }
    true
}

impl Env {
    /// Build the bundle and the shim command line (without spawning).
    pub fn prepare(opts: &mut Opts) -> (Env, Command) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("shimt-{}-{n}", std::process::id());
        let tmp = tempfile::Builder::new().prefix("bshim").tempdir().unwrap();
        let bundle = tmp.path().join("bundle");
        let args: Vec<&str> = opts.args.iter().map(String::as_str).collect();
        let terminal = opts.terminal;
        let edit = std::mem::replace(&mut opts.edit, Box::new(|_| {}));
        berth_fixtures::bundle_with(&bundle, &args, |spec| {
            spec["process"]["terminal"] = json!(terminal);
            edit(spec);
        })
        .unwrap();
        let state = if opts.long_state_dir {
            tmp.path().join("d".repeat(100)).join("state")
        } else {
            tmp.path().join("state")
        };
        let runtime_root = tmp.path().join("rt");
        let log = tmp.path().join(format!("{id}-json.log"));
        let mut cmd = Command::new(SHIM);
        cmd.arg("--id")
            .arg(&id)
            .arg("--bundle")
            .arg(&bundle)
            .arg("--state-dir")
            .arg(&state)
            .arg("--runtime-root")
            .arg(&runtime_root)
            .arg("--log-path")
            .arg(&log);
        if opts.terminal {
            cmd.arg("--terminal");
        }
        if opts.stdin {
            cmd.arg("--stdin");
        }
        if opts.backend == Backend::Runc {
            cmd.arg("--runtime-binary").arg(RUNC);
        }
        cmd.args(&opts.extra);
        let env = Env {
            tmp,
            id,
            state,
            runtime_root,
            log,
            ready: Value::Null,
            backend: opts.backend,
        };
        (env, cmd)
    }

    /// Spawn the shim like berthd does (stdio /dev/null, fd 3 = ready pipe) and read the line.
    pub fn spawn(mut opts: Opts) -> Env {
        let (mut env, mut cmd) = Env::prepare(&mut opts);
        let (rd, wr) = nix::unistd::pipe().unwrap();
        env.ready = run_with_ready_pipe(&mut cmd, rd, wr);
        env
    }

    pub fn shim_pid(&self) -> i32 {
        self.ready["shim_pid"].as_i64().unwrap() as i32
    }

    pub fn init_pid(&self) -> i32 {
        self.ready["pid"].as_i64().unwrap() as i32
    }

    pub fn sock(&self) -> PathBuf {
        self.state.join("shim.sock")
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.sock())
    }

    /// One request on a fresh connection.
    pub fn req(&self, v: Value) -> Value {
        self.client().req(v)
    }

    /// The json-file log, one parsed entry per line.
    pub fn log_entries(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
            .collect()
    }

    /// Concatenated `log` fields of one stream.
    pub fn log_text(&self, stream: &str) -> String {
        self.log_entries()
            .iter()
            .filter(|e| e["stream"] == stream)
            .map(|e| e["log"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn shim_alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.shim_pid())).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.shim_pid()))
                .unwrap_or_default()
                .contains(") Z ")
    }
}

/// Spawn `cmd` with fd 3 = `wr`, stdio /dev/null; read the one ready line from `rd`.
pub fn run_with_ready_pipe(cmd: &mut Command, rd: OwnedFd, wr: OwnedFd) -> Value {
    let wr_raw = wr.as_raw_fd();
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(wr_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(wr);
    // berthd reaps the first process at once (the shim double-forks).
    let status = child.wait().unwrap();
    assert!(status.success(), "first shim process exited with {status}");
    let mut line = String::new();
    BufReader::new(std::fs::File::from(rd))
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"))
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(pid) = self.ready["pid"].as_i64() {
            // SAFETY: plain kill(2); a stale pid only gets ESRCH.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if let Some(pid) = self.ready["shim_pid"].as_i64() {
            let pid = pid as i32;
            // Let the shim reap and record the exit, then stop it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.state.join("shim.sock").exists() {
                if let Ok(mut s) = try_connect_long(&self.state.join("shim.sock")) {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = s.write_all(b"{\"op\":\"delete\"}\n");
                    let mut r = String::new();
                    let _ = BufReader::new(s).read_line(&mut r);
                    if r.contains("\"ok\":true") {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Whatever the shim left (a shutdown leaves the runtime state): state dir and cgroups.
        match self.backend {
            Backend::Runc => {
                let _ = Command::new(RUNC)
                    .arg("--root")
                    .arg(&self.runtime_root)
                    .args(["delete", "--force", &self.id])
                    .output();
            }
            Backend::Library => {
                let _ = berth_runtime::container::delete(&self.runtime_root, &self.id, true);
            }
        }
    }
}

/// A blocking client of the control socket.
pub struct Client {
    pub r: BufReader<UnixStream>,
    pub w: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Client {
        let s = connect_long(path);
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    pub fn send_line(&mut self, line: &str) -> Value {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
        let mut resp = String::new();
        self.r.read_line(&mut resp).unwrap();
        serde_json::from_str(&resp).unwrap_or_else(|e| panic!("bad response {resp:?}: {e}"))
    }

    pub fn req(&mut self, v: Value) -> Value {
        self.send_line(&v.to_string())
    }

    /// Send an attach request; on success the connection is a raw stream.
    pub fn attach(mut self, v: Value) -> Attached {
        let resp = self.req(v);
        assert_eq!(resp["ok"], true, "attach failed: {resp}");
        Attached {
            r: self.r,
            w: self.w,
        }
    }
}

/// Connect to a unix socket whose path may exceed sun_path, through /proc/self/fd of its dir.
pub fn connect_long(path: &Path) -> UnixStream {
    try_connect_long(path).unwrap()
}

fn try_connect_long(path: &Path) -> std::io::Result<UnixStream> {
    if path.as_os_str().len() < 100 {
        return UnixStream::connect(path);
    }
    let dir = std::fs::File::open(path.parent().unwrap_or(Path::new("/")))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    UnixStream::connect(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

/// An attach stream.
pub struct Attached {
    pub r: BufReader<UnixStream>,
    pub w: UnixStream,
}

impl Attached {
    /// Read stdcopy frames until EOF: (stdout, stderr).
    pub fn read_frames_to_end(&mut self) -> (Vec<u8>, Vec<u8>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((stream, data)) = self.read_frame() {
            match stream {
                1 => out.extend(data),
                2 => err.extend(data),
                s => panic!("bad stream byte {s}"),
            }
        }
        (out, err)
    }

    pub fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 8];
        match self.r.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => panic!("read frame: {e}"),
        }
        assert_eq!(&h[1..4], &[0, 0, 0], "bad frame header {h:?}");
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut data = vec![0u8; len];
        self.r.read_exact(&mut data).unwrap();
        Some((h[0], data))
    }

    /// Raw (TTY) bytes until `needle` shows up in everything read so far.
    pub fn read_until(&mut self, acc: &mut Vec<u8>, needle: &str) {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(acc).contains(needle) {
            let n = self.r.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "EOF before {needle:?}; got {:?}",
                String::from_utf8_lossy(acc)
            );
            acc.extend_from_slice(&buf[..n]);
        }
    }
}

/// Poll `f` until it returns Some, up to a generous limit (a hang guard, not a timing check).
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// VmRSS of a process in KiB.
pub fn vm_rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A minimal OCI process for exec.
pub fn process(args: &[&str]) -> Value {
    json!({
        "args": args,
        "cwd": "/",
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "user": {"uid": 0, "gid": 0},
    })
}

/// Drop the pid namespace, so the container process is not a PID 1 that ignores SIGTERM.
pub fn no_pid_ns(spec: &mut Value) {
    if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "pid");
    }
}

/// Options for `args` on `backend`.
pub fn opts(args: &[&str], backend: Backend) -> Opts {
    let mut o = Opts::new(args);
    o.backend = backend;
    o
}
