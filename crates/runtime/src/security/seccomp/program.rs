//! A seccomp filter as the BPF program the kernel takes, cached by profile.
//!
//! Building Docker's default profile with libseccomp costs milliseconds twice per container:
//! adding ~350 rules in the parent, then generating the BPF inside `seccomp_load` in the init —
//! on the path between `start` and the container's `execve`. Every container of a daemon gets
//! the same profile, so the program is generated once, exported, and kept under the runtime
//! root (`.seccomp-cache/<sha256>`, keyed by the profile, the libseccomp version and the arch); the
//! init then loads the ready program with one `seccomp(2)` call. A missing, unreadable or
//! malformed cache entry only means compiling again (and rewriting it atomically).

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use super::{SeccompError, compile, load_bpf_with_flags, parse_program};

/// First bytes of a cache entry, also hashed into its key: bump it when the layout or the way
/// `compile` builds programs changes, so older entries are neither read nor kept in use.
const MAGIC: &[u8; 8] = b"BSCMP02\n";

/// A ready BPF program with the flags to load it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// `struct sock_filter` records, native endian, checked by [`parse_program`].
    bpf: Vec<u8>,
    flags: u32,
    skipped: Vec<String>,
}

impl Program {
    /// Load into the calling thread (same privilege rule as [`super::CompiledFilter::load`]).
    pub fn load(&self) -> Result<(), SeccompError> {
        load_bpf_with_flags(&self.bpf, self.flags)
    }

    /// Syscall names of the profile this architecture does not know (skipped, like runc).
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits it is loaded with.
    pub fn filter_flags(&self) -> u32 {
        self.flags
    }

    fn new(bpf: Vec<u8>, flags: u32, skipped: Vec<String>) -> Result<Program, SeccompError> {
        parse_program(&bpf)?;
        Ok(Program {
            bpf,
            flags,
            skipped,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let names = self.skipped.join("\n");
        let mut out = Vec::with_capacity(16 + names.len() + self.bpf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&(names.len() as u32).to_le_bytes());
        out.extend_from_slice(names.as_bytes());
        out.extend_from_slice(&self.bpf);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Program> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let flags = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let names_len = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?) as usize;
        let names = std::str::from_utf8(rest.get(8..8usize.checked_add(names_len)?)?).ok()?;
        let skipped = names
            .split('\n')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        Program::new(rest.get(8 + names_len..)?.to_vec(), flags, skipped).ok()
    }
}

/// Compile `spec` to a program, through the cache under `cache_dir` when given.
pub fn program(spec: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Program, SeccompError> {
    let entry = cache_dir.and_then(|dir| entry_path(dir, spec));
    if let Some(path) = &entry
        && let Ok(bytes) = std::fs::read(path)
        && let Some(p) = Program::decode(&bytes)
    {
        return Ok(p);
    }
    let filter = compile(spec)?;
    let p = Program::new(
        filter.export_bpf()?,
        filter.filter_flags(),
        filter.skipped_syscalls().to_vec(),
    )?;
    if let Some(path) = &entry {
        // A cache: failing to write it costs the next container a compile, nothing else.
        let _ = store(path, &p.encode());
    }
    Ok(p)
}

/// `dir/<sha256 of libseccomp version, arch and the profile's JSON>`; None if the profile
/// cannot be serialized (then nothing is cached).
fn entry_path(dir: &Path, spec: &LinuxSeccomp) -> Option<PathBuf> {
    let json = serde_json::to_vec(spec).ok()?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(version.as_bytes());
    h.update(b"\0");
    h.update(std::env::consts::ARCH.as_bytes());
    h.update(b"\0");
    h.update(&json);
    let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(dir.join(key))
}

/// Write atomically (temp + rename, no fsync: a cache under the runtime root, tmpfs by design).
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::state::write_file(path, bytes, false)
}

#[cfg(test)]
#[path = "program_tests.rs"]
mod tests;
