//! Shared harness for the runtime's end-to-end tests: the built `berth-runtime` binary with a
//! private `--root` per test, bundles from the fixtures, unique ids, and a guard that
//! force-deletes every container the test made (even when the test fails).
#![allow(dead_code)] // each test crate uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

#[allow(unused_imports)] // not every test crate uses both
pub use serde_json::{Value, json};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One test's runtime environment.
pub struct Rt {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Rt {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir()
            .unwrap();
        let root = tmp.path().join("state");
        Rt {
            tmp,
            root,
            ids: Default::default(),
        }
    }

    /// A unique container id (pid + counter), registered for cleanup.
    pub fn id(&self, stem: &str) -> String {
        let id = format!(
            "{stem}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// A bundle running `args`, with `edit` applied to the default spec.
    pub fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let dir = self.tmp.path().join(name);
        berth_fixtures::bundle_with(&dir, args, edit).unwrap()
    }

    /// `berth-runtime --root <root> <args>`.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("berth-runtime"));
        c.arg("--root").arg(&self.root);
        c
    }

    /// Run to completion with stdin closed, capturing output. Only for commands that do not
    /// leave a process holding stdout (so not `create`/`run -d`: use [`Rt::detached`]).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Run a command whose container outlives it (`create`, `run -d`): the container's stdio
    /// goes to files so nothing waits for EOF on a pipe the container holds. Returns
    /// (status success, stderr of the runtime+container, stdout file path).
    pub fn detached(&self, args: &[&str]) -> (bool, String, PathBuf) {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let out = self.tmp.path().join(format!("out-{n}"));
        let err = self.tmp.path().join(format!("err-{n}"));
        let status = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        (status.success(), stderr, out)
    }

    /// `state <id>` parsed.
    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait (bounded by a generous limit, not a timing assertion) until `id` is stopped.
    pub fn wait_stopped(&self, id: &str) {
        for _ in 0..2000 {
            if self.status(id) == "stopped" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{id} never stopped");
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self
                .cmd()
                .args(["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run a bundle in the foreground and return its output (asserting success).
pub fn run_ok(rt: &Rt, bundle: &Path, stem: &str) -> String {
    let id = rt.id(stem);
    let out = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "run failed ({:?}): stdout={} stderr={}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A field of /proc/<pid>/status text.
pub fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
}

/// Capability bit mask of names like "CAP_KILL".
pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| {
            let c: caps::Capability = n.parse().unwrap();
            1u64 << c.index()
        })
        .fold(0, |a, b| a | b)
}

/// Every cgroup v1 hierarchy dir for `path` that exists.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let p = e.path().join(path.trim_start_matches('/'));
            if p.is_dir() {
                out.push(p);
            }
        }
    }
    out
}

/// Our own mount table (to check nothing leaked onto the host).
pub fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// Processes whose cmdline or environment mention `needle` (leaked inits).
pub fn processes_with_cmdline(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && String::from_utf8_lossy(&c).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}
