//! Helpers for the crash tests: HTTP that tolerates a dead daemon, stdcopy demuxing, process
//! identities that survive pid reuse, and the leak checks (mounts, shims, container inits,
//! cgroups, layer dirs) a berthd crash must not leave behind.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Berthd, Resp};

/// splitmix64: a seeded, reproducible generator (the seed is printed so a failure can be
/// replayed with `BERTH_CRASH_SEED`).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed from `BERTH_CRASH_SEED`, else from the clock and pid.
pub fn seed() -> u64 {
    if let Ok(s) = std::env::var("BERTH_CRASH_SEED") {
        return s.trim().parse().expect("BERTH_CRASH_SEED must be a u64");
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
}

/// One HTTP request that reports a dead or dying daemon as an error instead of panicking.
pub fn try_request(
    sock: &Path,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<Resp> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(&body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    match crate::common::parse_response(&raw) {
        Some((resp, true)) => Ok(resp),
        _ => Err(std::io::Error::other("truncated HTTP response")),
    }
}

/// A request that must succeed at the HTTP level (the daemon is up).
pub fn api(d: &Berthd, method: &str, path: &str, body: Option<&serde_json::Value>) -> Resp {
    try_request(&d.sock, method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", tail(&d.log(), 60)))
}

/// The last `n` lines of a text.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Splits a stdcopy stream into (stdout, stderr).
pub fn demux(mut b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let payload = &b[8..(8 + n).min(b.len())];
        match b[0] {
            2 => err.extend_from_slice(payload),
            _ => out.extend_from_slice(payload),
        }
        b = &b[(8 + n).min(b.len())..];
    }
    (out, err)
}

/// Polls `f` until it returns Some, for at most `limit` (a liveness bound, not a timing
/// assertion: the limits are far above what the operations take).
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process identity that survives pid reuse: (pid, start time in clock ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

impl ProcId {
    /// The live process `pid`, if any.
    pub fn of(pid: i32) -> Option<ProcId> {
        if pid <= 0 {
            return None;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; starttime is field 22.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // A zombie is dead for our purposes (its parent just has not reaped it yet).
        if f.first() == Some(&"Z") {
            return None;
        }
        Some(ProcId {
            pid,
            start: f.get(19)?.parse().ok()?,
        })
    }
    /// The same process is still alive (not a zombie).
    pub fn alive(&self) -> bool {
        ProcId::of(self.pid).is_some_and(|p| p.start == self.start)
    }
    /// SIGKILL, only if it is still the same process.
    pub fn kill(&self) {
        if self.alive() {
            // SAFETY: kill(2) on a process this test started (checked by its start time).
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
    }
}

/// Every live berth-shim serving a state dir under `exec_root` (found by its command line).
pub fn shims_under(exec_root: &Path) -> Vec<(ProcId, String)> {
    let prefix = exec_root.to_string_lossy().into_owned();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.first().is_some_and(|a| a.ends_with("berth-shim")) {
            continue;
        }
        let state_dir = args
            .iter()
            .position(|a| a == "--state-dir")
            .and_then(|i| args.get(i + 1));
        if let Some(sd) = state_dir
            && sd.starts_with(&prefix)
            && let Some(p) = ProcId::of(pid)
        {
            out.push((p, sd.clone()));
        }
    }
    out
}

/// Mount points under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .filter(|p| p.starts_with(&prefix))
        .collect()
}

/// cgroup dirs named after the container in any v1 hierarchy or the unified tree.
pub fn cgroups_of(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    for h in rd.flatten() {
        let p = h.path().join("berth").join(id);
        if p.exists() {
            out.push(p);
        }
    }
    out
}

/// A 64-hex container id.
pub fn is_id(n: &str) -> bool {
    n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Names in a directory (empty when it does not exist).
pub fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What an empty berthd (images only) has on disk, to compare against after every container
/// is removed.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub layer_dirs: BTreeSet<String>,
}

impl Baseline {
    pub fn take(d: &Berthd) -> Baseline {
        Baseline {
            layer_dirs: names_in(&d.data_root().join("overlay2")),
        }
    }
}

/// With no containers left: nothing of any container may remain, in memory, on disk, in the
/// mount table or as a process.
pub fn assert_nothing_left(
    d: &Berthd,
    base: &Baseline,
    seen_ids: &BTreeSet<String>,
    inits: &BTreeSet<ProcId>,
) {
    // Removal renames dirs away and deletes their content in the background (layers and
    // `containers/<id>.removing`): give that a bounded moment to finish.
    let mut problems = leftovers(d, base, seen_ids, inits);
    for _ in 0..100 {
        if problems.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        problems = leftovers(d, base, seen_ids, inits);
    }
    assert!(
        problems.is_empty(),
        "{}\n--- berthd log tail:\n{}",
        problems.join("\n"),
        tail(&d.log(), 80)
    );
}

/// What [`assert_nothing_left`] complains about.
pub fn leftovers(
    d: &Berthd,
    base: &Baseline,
    seen_ids: &BTreeSet<String>,
    inits: &BTreeSet<ProcId>,
) -> Vec<String> {
    let data = d.data_root();
    let mut problems = Vec::new();
    let ps = api(d, "GET", "/containers/json?all=1", None);
    if ps.status != 200 || ps.json().as_array().is_none_or(|a| !a.is_empty()) {
        problems.push(format!("containers left: {}", ps.text()));
    }
    let m = mounts_under(&data);
    if !m.is_empty() {
        problems.push(format!("mounts left under the data root: {m:?}"));
    }
    let m = mounts_under(&d.exec_root);
    if !m.is_empty() {
        problems.push(format!("mounts left under the exec root: {m:?}"));
    }
    let shims = shims_under(&d.exec_root);
    if !shims.is_empty() {
        problems.push(format!("shims left running: {shims:?}"));
    }
    let live: Vec<_> = inits.iter().filter(|p| p.alive()).collect();
    if !live.is_empty() {
        problems.push(format!("container processes left running: {live:?}"));
    }
    let c = names_in(&data.join("containers"));
    if !c.is_empty() {
        problems.push(format!("container dirs left: {c:?}"));
    }
    let mdb = names_in(&data.join("image/overlay2/layerdb/mounts"));
    if !mdb.is_empty() {
        problems.push(format!("layer mount records left: {mdb:?}"));
    }
    let extra: Vec<_> = names_in(&data.join("overlay2"))
        .difference(&base.layer_dirs)
        .cloned()
        .collect();
    if !extra.is_empty() {
        problems.push(format!("layer dirs left: {extra:?}"));
    }
    // Container state dirs are named by id (the exec root also holds berthd.pid, runtime/).
    let state: Vec<_> = names_in(&d.exec_root)
        .into_iter()
        .filter(|n| is_id(n))
        .collect();
    if !state.is_empty() {
        problems.push(format!("state dirs left in the exec root: {state:?}"));
    }
    // The runtime root also keeps the seccomp program cache (`.seccomp-cache`), no container's.
    let rt: Vec<_> = names_in(&d.exec_root.join("runtime"))
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    if !rt.is_empty() {
        problems.push(format!("runtime state left: {rt:?}"));
    }
    for id in seen_ids {
        let cg = cgroups_of(id);
        if !cg.is_empty() {
            problems.push(format!("cgroups left: {cg:?}"));
        }
    }
    problems
}

/// Kills, on drop, every shim still serving this exec root and the container processes the
/// test saw, so a failing test leaves nothing running (berthd's own guard then unmounts).
pub struct Reaper {
    pub exec_root: PathBuf,
    pub inits: std::sync::Arc<std::sync::Mutex<BTreeSet<ProcId>>>,
}

impl Reaper {
    pub fn new(exec_root: &Path) -> Reaper {
        Reaper {
            exec_root: exec_root.to_owned(),
            inits: Default::default(),
        }
    }
    pub fn note(&self, p: ProcId) {
        self.inits.lock().unwrap().insert(p);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for (p, _) in shims_under(&self.exec_root) {
            p.kill();
        }
        if let Ok(set) = self.inits.lock() {
            for p in set.iter() {
                p.kill();
            }
        }
    }
}

/// A private berthd plus the reaper for what its containers leave; berthd is stopped first
/// (fields drop in order), then leftover shims and container processes are killed.
pub struct Harness {
    pub d: Berthd,
    pub reaper: Reaper,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let path = format!("/tmp/berth-crash-{}.log", std::process::id());
            if std::fs::write(&path, self.d.log()).is_ok() {
                eprintln!("berthd's log: {path}");
            }
        }
    }
}

impl Harness {
    pub fn start() -> Harness {
        let d = Berthd::start();
        d.load_busybox();
        let reaper = Reaper::new(&d.exec_root);
        Harness { d, reaper }
    }
}
