//! Device rules on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program, hand-assembled from the
//! rule list and attached to the container's cgroup with the raw `bpf(2)` syscall (no libbpf).
//!
//! Semantics match the v1 devices controller as berth drives it (a new cgroup starts from
//! "allow everything", rules apply in order, the last matching rule wins): the program checks
//! the rules last to first and returns the first match; an `a` rule answers unconditionally
//! and ends the list; with no match the access is allowed. An allow rule matches when it grants
//! every requested access bit; a deny rule when it names any of them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::CgroupError;
use super::devices::{DeviceRule, is_allow_all};

/// One eBPF instruction, in the kernel's `struct bpf_insn` layout.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcode pieces (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

// struct bpf_cgroup_dev_ctx values.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

// Registers: r1 = ctx, then type, access, major, minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0x0f) | (src << 4),
        off,
        imm,
    }
}

fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
}

fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
    insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
}

fn mov32_reg(dst: u8, src: u8) -> Insn {
    insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
}

fn mov64_imm(dst: u8, imm: i32) -> Insn {
    insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}

fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    insn(BPF_JMP | op | BPF_K, dst, 0, off, imm)
}

fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
    insn(BPF_JMP | op | BPF_X, dst, src, off, 0)
}

fn exit() -> Insn {
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

fn imm_of(v: u32) -> Result<i32, CgroupError> {
    i32::try_from(v).map_err(|_| CgroupError::Invalid {
        what: "device rule".into(),
        why: format!("device number {v} does not fit an eBPF immediate"),
    })
}

/// The instructions for `rules` (see the module doc for the semantics).
pub fn device_program(rules: &[DeviceRule]) -> Result<Vec<Insn>, CgroupError> {
    let mut prog = vec![
        ldx_w(R_TYPE, R1, 0),
        alu32_imm(BPF_AND, R_TYPE, 0xffff),
        ldx_w(R_ACCESS, R1, 0),
        alu32_imm(BPF_RSH, R_ACCESS, 16),
        ldx_w(R_MAJOR, R1, 4),
        ldx_w(R_MINOR, R1, 8),
    ];
    for rule in rules.iter().rev() {
        let verdict = i32::from(rule.allow);
        if rule.kind == 'a' {
            prog.extend([mov64_imm(R0, verdict), exit()]);
            return Ok(prog);
        }
        // Conditions; each jump skips to the end of this rule's block (patched below).
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps: Vec<usize> = Vec::new();
        let ty = if rule.kind == 'b' {
            DEV_BLOCK
        } else {
            DEV_CHAR
        };
        jumps.push(block.len());
        block.push(jmp_imm(BPF_JNE, R_TYPE, ty, 0));
        let acc = access_bits(&rule.access);
        if acc != ACC_ALL {
            block.push(mov32_reg(R1, R_ACCESS));
            block.push(alu32_imm(BPF_AND, R1, acc));
            jumps.push(block.len());
            if rule.allow {
                // Allow only if every requested bit is granted: (req & acc) == req.
                block.push(jmp_reg(BPF_JNE, R1, R_ACCESS, 0));
            } else {
                // Deny if any requested bit is named: (req & acc) != 0.
                block.push(jmp_imm(BPF_JEQ, R1, 0, 0));
            }
        }
        if let Some(major) = rule.major {
            jumps.push(block.len());
            block.push(jmp_imm(BPF_JNE, R_MAJOR, imm_of(major)?, 0));
        }
        if let Some(minor) = rule.minor {
            jumps.push(block.len());
            block.push(jmp_imm(BPF_JNE, R_MINOR, imm_of(minor)?, 0));
        }
        block.push(mov64_imm(R0, verdict));
        block.push(exit());
        let len = block.len();
        for j in jumps {
            // Offsets count from the next instruction; blocks are a handful of insns long.
            block[j].off = i16::try_from(len - j - 1).unwrap_or(i16::MAX);
        }
        prog.extend(block);
    }
    prog.extend([mov64_imm(R0, 1), exit()]);
    Ok(prog)
}

// bpf(2) commands and constants.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The leading fields of `union bpf_attr` for BPF_PROG_LOAD.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf_err(step: &'static str, log: String) -> CgroupError {
    CgroupError::Bpf {
        step,
        log,
        source: std::io::Error::last_os_error(),
    }
}

/// Call bpf(2) with `attr`.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> libc::c_long {
    let size = std::mem::size_of::<T>();
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] struct mirroring the leading
    // fields of `union bpf_attr` for `cmd`, and `size` is its exact size; the kernel reads (and
    // for QUERY writes) at most `size` bytes. Pointers inside it point to buffers the caller
    // keeps alive across this call.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size) }
}

fn fd_from(ret: libc::c_long, step: &'static str) -> Result<OwnedFd, CgroupError> {
    if ret < 0 {
        return Err(bpf_err(step, String::new()));
    }
    let raw = i32::try_from(ret).map_err(|_| CgroupError::Invalid {
        what: "bpf result".into(),
        why: format!("{step} returned {ret}"),
    })?;
    // SAFETY: the kernel just returned `raw` as a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn fd_u32(fd: &impl AsRawFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

fn load(prog: &[Insn]) -> Result<OwnedFd, CgroupError> {
    let license = c"GPL";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(prog.len()).unwrap_or(u32::MAX),
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let ret = bpf(BPF_PROG_LOAD, &mut attr);
    if ret >= 0 {
        return fd_from(ret, "loading the device program");
    }
    // Retry with the verifier log so the error says why.
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = u32::try_from(log.len()).unwrap_or(0);
    attr.log_buf = log.as_mut_ptr() as u64;
    let ret = bpf(BPF_PROG_LOAD, &mut attr);
    if ret < 0 {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        return Err(bpf_err(
            "loading the device program",
            String::from_utf8_lossy(&log[..end]).into_owned(),
        ));
    }
    fd_from(ret, "loading the device program")
}

/// Ids of the device programs attached directly to the cgroup.
fn query(cgroup: &OwnedFd) -> Result<Vec<u32>, CgroupError> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: fd_u32(cgroup),
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: u32::try_from(ids.len()).unwrap_or(0),
            ..Default::default()
        };
        let ret = bpf(BPF_PROG_QUERY, &mut attr);
        if ret < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSPC)
                && ids.len() < 4096
            {
                ids.resize(ids.len() * 2, 0);
                continue;
            }
            return Err(bpf_err("querying attached device programs", String::new()));
        }
        ids.truncate(usize::try_from(attr.prog_cnt).unwrap_or(0));
        return Ok(ids);
    }
}

fn detach(cgroup: &OwnedFd, ids: &[u32]) -> Result<(), CgroupError> {
    for &id in ids {
        let mut get = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let ret = bpf(BPF_PROG_GET_FD_BY_ID, &mut get);
        if ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
            continue;
        }
        let prog = fd_from(ret, "opening an attached device program")?;
        let mut attr = AttachAttr {
            target_fd: fd_u32(cgroup),
            attach_bpf_fd: fd_u32(&prog),
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        if bpf(BPF_PROG_DETACH, &mut attr) < 0
            && std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
        {
            return Err(bpf_err("detaching an old device program", String::new()));
        }
    }
    Ok(())
}

/// Make `rules` the device policy of the cgroup at `dir`: load the program, attach it next to
/// any old ones, then detach the old ones (so there is no window without a policy). Rules that
/// allow everything only remove old programs, so hosts without BPF still run such containers.
pub fn apply_device_rules(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let cgroup: OwnedFd = std::fs::File::open(dir)
        .map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .into();
    if is_allow_all(rules) {
        if let Ok(old) = query(&cgroup) {
            detach(&cgroup, &old)?;
        }
        return Ok(());
    }
    let prog = load(&device_program(rules)?)?;
    let old = query(&cgroup)?;
    let mut attr = AttachAttr {
        target_fd: fd_u32(&cgroup),
        attach_bpf_fd: fd_u32(&prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    if bpf(BPF_PROG_ATTACH, &mut attr) < 0 {
        return Err(bpf_err("attaching the device program", String::new()));
    }
    detach(&cgroup, &old)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<u32>,
        minor: Option<u32>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    /// A tiny interpreter for exactly the instructions `device_program` emits, so the program's
    /// logic is checked here and the kernel's verdict in the root suite.
    fn run(prog: &[Insn], ty: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | ty, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
            pc += 1;
            let imm = u64::from(i.imm as u32);
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as isize + isize::from(i.off)) as usize;
                }
            };
            match i.code {
                c if c == BPF_LDX | BPF_W | BPF_MEM => {
                    r[dst] = u64::from(ctx[usize::try_from(i.off).unwrap() / 4]);
                }
                c if c == BPF_ALU | BPF_AND | BPF_K => r[dst] = (r[dst] & imm) & 0xffff_ffff,
                c if c == BPF_ALU | BPF_RSH | BPF_K => r[dst] = (r[dst] & 0xffff_ffff) >> imm,
                c if c == BPF_ALU | BPF_MOV | BPF_X => r[dst] = r[src] & 0xffff_ffff,
                c if c == BPF_ALU64 | BPF_MOV | BPF_K => r[dst] = imm,
                c if c == BPF_JMP | BPF_JNE | BPF_K => jump(r[dst] != imm, &mut pc),
                c if c == BPF_JMP | BPF_JEQ | BPF_K => jump(r[dst] == imm, &mut pc),
                c if c == BPF_JMP | BPF_JNE | BPF_X => jump(r[dst] != r[src], &mut pc),
                c if c == BPF_JMP | BPF_EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    const R: u32 = ACC_READ as u32;
    const W: u32 = ACC_WRITE as u32;
    const C: u32 = DEV_CHAR as u32;
    const B: u32 = DEV_BLOCK as u32;

    #[test]
    fn docker_like_allowlist() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rwm"),
            rule(true, 'c', Some(1), Some(5), "r"),
        ];
        let p = device_program(&rules).unwrap();
        assert_eq!(run(&p, C, R | W, 1, 3), 1);
        assert_eq!(run(&p, C, R, 136, 7), 1);
        assert_eq!(run(&p, C, R, 1, 5), 1);
        assert_eq!(run(&p, C, R | W, 1, 5), 0);
        assert_eq!(run(&p, C, R, 1, 7), 0);
        assert_eq!(run(&p, B, R, 1, 3), 0);
    }

    #[test]
    fn default_allow_and_last_rule_wins() {
        let rules = [
            rule(true, 'c', Some(1), Some(7), "rwm"),
            rule(false, 'c', Some(1), Some(7), "w"),
            rule(false, 'b', Some(8), None, "rwm"),
        ];
        let p = device_program(&rules).unwrap();
        assert_eq!(run(&p, C, R, 1, 7), 1);
        assert_eq!(run(&p, C, R | W, 1, 7), 0);
        assert_eq!(run(&p, B, R, 8, 1), 0);
        assert_eq!(run(&p, B, R, 9, 1), 1);
        assert_eq!(run(&p, C, W, 4, 1), 1);
        // Everything before the last "a" rule is moot.
        let p = device_program(&[
            rule(false, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'a', None, None, "rwm"),
        ])
        .unwrap();
        assert_eq!(run(&p, C, R, 1, 3), 1);
        assert_eq!(p.len(), 8);
    }
}
