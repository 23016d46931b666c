//! Seccomp filters from `linux.seccomp`, built with libseccomp.
//!
//! The filter is compiled in the runtime parent (so a bad profile fails `create` with a clear
//! error) and loaded in the container init. libseccomp would set no_new_privs itself on load;
//! berth turns that off (`SCMP_FLTATR_CTL_NNP` = 0) so no_new_privs is set only when the spec
//! asks for it. Loading a filter without no_new_privs needs `CAP_SYS_ADMIN` in the effective
//! set, hence the init's ordering (see [`CompiledFilter::load`] and the `security` module).
//!
//! Containers get their filter as a [`Program`]: the raw BPF exported from libseccomp
//! ([`CompiledFilter::export_bpf`]), cached per profile under the runtime root and loaded with
//! one `seccomp(2)` call, skipping libseccomp in the init.

use std::io::{Read, Seek, SeekFrom};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use libseccomp::{ScmpSyscall, error::SeccompError as LibError};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

/// `EPERM`, the errno of `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` without an explicit return value
/// (runc's choice).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;
/// seccomp(2) operation and flags, from linux/seccomp.h.
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
/// Synchronize all threads of the process to the new filter.
pub const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1 << 0;
/// Log every action except `SECCOMP_RET_ALLOW`.
pub const SECCOMP_FILTER_FLAG_LOG: u32 = 1 << 1;
/// Disable the Speculative Store Bypass mitigation.
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// Largest program the kernel accepts (BPF_MAXINSNS).
const BPF_MAX_INSNS: usize = 4096;
/// Size of one `struct sock_filter` in an exported program.
const BPF_INSN_SIZE: usize = 8;
/// Syscall arguments a rule can test (`args[].index` is 0..=5).
const MAX_ARGS: usize = 6;

/// Errors compiling or loading a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile uses `SCMP_ACT_NOTIFY` (a seccomp agent); berth does not implement the
    /// listener hand-off yet.
    #[error("seccomp: SCMP_ACT_NOTIFY (user notification, {where_}) is not supported yet")]
    NotifyUnsupported {
        /// `defaultAction` or the syscall names of the rule.
        where_: String,
    },
    /// A filter flag this libseccomp or berth cannot apply.
    #[error("seccomp: flag {0} is not supported")]
    UnsupportedFlag(String),
    /// `seccomp_init` failed.
    #[error("seccomp: creating the filter (default action {action:?})")]
    Init {
        /// The default action.
        action: LinuxSeccompAction,
        /// libseccomp's error.
        #[source]
        source: LibError,
    },
    /// Setting a filter attribute failed (an old libseccomp or kernel lacks it).
    #[error("seccomp: setting filter attribute {attr}")]
    Attr {
        /// Which attribute / spec flag.
        attr: &'static str,
        /// libseccomp's error.
        #[source]
        source: LibError,
    },
    /// An architecture libseccomp does not know or cannot add.
    #[error("seccomp: adding architecture {arch:?}")]
    Arch {
        /// The spec's architecture.
        arch: Arch,
        /// libseccomp's error.
        #[source]
        source: LibError,
    },
    /// `args[].index` is beyond the six syscall arguments.
    #[error("seccomp: rule for {syscall:?}: argument index {index} is out of range 0..=5")]
    ArgIndex {
        /// The syscall name.
        syscall: String,
        /// The bad index.
        index: usize,
    },
    /// libseccomp refused a rule.
    #[error("seccomp: adding rule for syscall {syscall:?} ({action:?})")]
    AddRule {
        /// The syscall name.
        syscall: String,
        /// The rule's action.
        action: LinuxSeccompAction,
        /// libseccomp's error.
        #[source]
        source: LibError,
    },
    /// `seccomp_load` failed; without no_new_privs this needs `CAP_SYS_ADMIN`.
    #[error("seccomp: loading the filter (needs no_new_privs or CAP_SYS_ADMIN)")]
    Load(#[source] LibError),
    /// Creating or reading back the memfd for [`CompiledFilter::export_bpf`] failed.
    #[error("seccomp: exporting BPF: {step}")]
    ExportIo {
        /// What failed.
        step: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `seccomp_export_bpf` failed.
    #[error("seccomp: exporting BPF")]
    Export(#[source] LibError),
    /// A precompiled program is empty, too long or not a whole number of instructions.
    #[error("seccomp: invalid BPF program: {0}")]
    BadProgram(String),
    /// A value in the raw `linux.seccomp` that oci-spec would refuse, with its place.
    #[error("seccomp: unknown {kind} {value} at {path}")]
    UnknownValue {
        /// `action`, `architecture`, `flag` or `operator`.
        kind: &'static str,
        /// The value as written (JSON).
        value: String,
        /// Where, e.g. `linux.seccomp.syscalls[3].action`.
        path: String,
    },
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` with a precompiled program failed.
    #[error("seccomp: loading precompiled BPF (needs no_new_privs or CAP_SYS_ADMIN)")]
    LoadBpf(#[source] std::io::Error),
}

/// A filter compiled (and so validated) in the runtime parent, loaded later in the init.
#[derive(Debug)]
pub struct CompiledFilter {
    ctx: ScmpFilterContext,
    flags: u32,
    skipped: Vec<String>,
}

/// Check the enumerated values of `linux.seccomp` in the raw `config.json` (actions,
/// architectures, flags, operators) before oci-spec deserializes it, so an unknown one is
/// reported with its value and place rather than as a bare serde error.
pub fn validate_names(raw_spec_json: &serde_json::Value) -> Result<(), SeccompError> {
    let Some(seccomp) = raw_spec_json.get("linux").and_then(|l| l.get("seccomp")) else {
        return Ok(());
    };
    let base = "linux.seccomp";
    check::<LinuxSeccompAction>("action", seccomp.get("defaultAction"), || {
        format!("{base}.defaultAction")
    })?;
    for (i, arch) in items(seccomp.get("architectures")) {
        check::<Arch>("architecture", Some(arch), || {
            format!("{base}.architectures[{i}]")
        })?;
    }
    for (i, flag) in items(seccomp.get("flags")) {
        check::<LinuxSeccompFilterFlag>("flag", Some(flag), || format!("{base}.flags[{i}]"))?;
    }
    for (i, rule) in items(seccomp.get("syscalls")) {
        check::<LinuxSeccompAction>("action", rule.get("action"), || {
            format!("{base}.syscalls[{i}].action")
        })?;
        for (j, arg) in items(rule.get("args")) {
            check::<LinuxSeccompOperator>("operator", arg.get("op"), || {
                format!("{base}.syscalls[{i}].args[{j}].op")
            })?;
        }
    }
    Ok(())
}

/// The elements of an optional JSON array (anything else: none; oci-spec reports the shape).
fn items(value: Option<&serde_json::Value>) -> impl Iterator<Item = (usize, &serde_json::Value)> {
    value
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// `value` (if present) must deserialize as `T`.
fn check<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    value: Option<&serde_json::Value>,
    path: impl FnOnce() -> String,
) -> Result<(), SeccompError> {
    match value {
        Some(v) if serde_json::from_value::<T>(v.clone()).is_err() => {
            Err(SeccompError::UnknownValue {
                kind,
                value: v.to_string(),
                path: path(),
            })
        }
        _ => Ok(()),
    }
}

/// Validate and compile the spec's filter. Unknown syscall names on this arch are skipped
/// (as runc does, see [`CompiledFilter::skipped_syscalls`]); unknown actions, operators and
/// architectures are rejected by oci-spec's deserialization already.
///
/// Rules whose action equals the default action are dropped (libseccomp refuses them; they
/// change nothing). Several conditions on the same argument are added as separate rules
/// (they match if any matches) as runc does; conditions on different arguments all must match.
pub fn compile(spec: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    reject_notify(spec)?;
    let default_action = spec.default_action();
    let default = to_action(default_action, spec.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(|source| SeccompError::Init {
        action: default_action,
        source,
    })?;
    // Never let libseccomp set no_new_privs behind the spec's back.
    ctx.set_ctl_nnp(false)
        .map_err(|source| SeccompError::Attr {
            attr: "SCMP_FLTATR_CTL_NNP",
            source,
        })?;
    // A binary tree of syscall numbers instead of one long if-chain (libseccomp ≥ 2.5): the
    // kernel evaluates the filter for every syscall number and arch once at load (to build its
    // allow-cache bitmap) and at each uncached syscall, so the chain's length is paid there.
    // Best effort: an older libseccomp builds the plain chain, with the same semantics.
    let _ = ctx.set_ctl_optimize(2);
    for arch in spec.architectures().iter().flatten() {
        ctx.add_arch(to_arch(*arch))
            .map_err(|source| SeccompError::Arch {
                arch: *arch,
                source,
            })?;
    }
    let flags = apply_flags(&mut ctx, spec.flags().as_deref().unwrap_or_default())?;
    let mut skipped = Vec::new();
    for rule in spec.syscalls().iter().flatten() {
        add_rule(&mut ctx, rule, default, &mut skipped)?;
    }
    Ok(CompiledFilter {
        ctx,
        flags,
        skipped,
    })
}

impl CompiledFilter {
    /// Load the filter into the calling thread (all threads with the TSYNC flag).
    ///
    /// Needs no_new_privs (set by the init only if `process.noNewPrivileges`) or
    /// `CAP_SYS_ADMIN` in the effective set. So: with noNewPrivileges, set it and load last,
    /// right before `execve`; without it, load while the init still has CAP_SYS_ADMIN —
    /// before dropping capabilities and changing uid — and the filter must allow the
    /// syscalls the init makes after that.
    pub fn load(&self) -> Result<(), SeccompError> {
        self.ctx.load().map_err(SeccompError::Load)
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits the spec asked for, to pass to [`load_bpf`] with an
    /// exported program.
    pub fn filter_flags(&self) -> u32 {
        self.flags
    }

    /// Syscall names of the spec that this architecture does not know, skipped like runc.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }

    /// The raw BPF program (an array of `struct sock_filter`, native endian), for caching a
    /// compiled profile and loading it later with [`load_bpf`].
    pub fn export_bpf(&self) -> Result<Vec<u8>, SeccompError> {
        // libseccomp 2.5 (Debian 12) only exports to a file descriptor.
        let fd = rustix::fs::memfd_create("berth-seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| SeccompError::ExportIo {
                step: "memfd_create",
                source: e.into(),
            })?;
        self.ctx.export_bpf(&fd).map_err(SeccompError::Export)?;
        let mut file = std::fs::File::from(fd);
        let mut program = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut program))
            .map_err(|source| SeccompError::ExportIo {
                step: "reading the memfd back",
                source,
            })?;
        Ok(program)
    }
}

/// Load a raw BPF program (as from [`CompiledFilter::export_bpf`]) with `seccomp(2)`,
/// without flags. The same privilege rule as [`CompiledFilter::load`] applies.
pub fn load_bpf(program: &[u8]) -> Result<(), SeccompError> {
    load_bpf_with_flags(program, 0)
}

/// Load a raw BPF program with `SECCOMP_FILTER_FLAG_*` bits (see
/// [`CompiledFilter::filter_flags`]).
pub fn load_bpf_with_flags(program: &[u8], flags: u32) -> Result<(), SeccompError> {
    let mut insns = parse_program(program)?;
    let len = u16::try_from(insns.len())
        .map_err(|_| SeccompError::BadProgram(format!("{} instructions", insns.len())))?;
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `insns`, which outlives the call; the kernel copies the
    // program and validates it, it does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(SeccompError::LoadBpf(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Split the bytes into `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }` records.
fn parse_program(program: &[u8]) -> Result<Vec<libc::sock_filter>, SeccompError> {
    if program.is_empty() || !program.len().is_multiple_of(BPF_INSN_SIZE) {
        return Err(SeccompError::BadProgram(format!(
            "{} bytes is not a non-zero multiple of {BPF_INSN_SIZE}",
            program.len()
        )));
    }
    if program.len() / BPF_INSN_SIZE > BPF_MAX_INSNS {
        return Err(SeccompError::BadProgram(format!(
            "{} instructions, the kernel takes at most {BPF_MAX_INSNS}",
            program.len() / BPF_INSN_SIZE
        )));
    }
    Ok(program
        .chunks_exact(BPF_INSN_SIZE)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

fn reject_notify(spec: &LinuxSeccomp) -> Result<(), SeccompError> {
    if spec.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyUnsupported {
            where_: "defaultAction".to_string(),
        });
    }
    for rule in spec.syscalls().iter().flatten() {
        if rule.action() == LinuxSeccompAction::ScmpActNotify {
            return Err(SeccompError::NotifyUnsupported {
                where_: format!("syscalls {}", rule.names().join(",")),
            });
        }
    }
    Ok(())
}

/// Set the attributes for the spec's flags; returns the matching seccomp(2) flag bits.
fn apply_flags(
    ctx: &mut ScmpFilterContext,
    flags: &[LinuxSeccompFilterFlag],
) -> Result<u32, SeccompError> {
    let mut bits = 0;
    for flag in flags {
        let (attr, bit, result) = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => (
                "SECCOMP_FILTER_FLAG_LOG",
                SECCOMP_FILTER_FLAG_LOG,
                ctx.set_ctl_log(true).map(|_| ()),
            ),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => (
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                ctx.set_ctl_ssb(true).map(|_| ()),
            ),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => (
                "SECCOMP_FILTER_FLAG_TSYNC",
                SECCOMP_FILTER_FLAG_TSYNC,
                ctx.set_ctl_tsync(true).map(|_| ()),
            ),
            // Only meaningful with user notification, which berth does not do yet.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::UnsupportedFlag(
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".to_string(),
                ));
            }
        };
        result.map_err(|source| SeccompError::Attr { attr, source })?;
        bits |= bit;
    }
    Ok(bits)
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default: ScmpAction,
    skipped: &mut Vec<String>,
) -> Result<(), SeccompError> {
    let action = to_action(rule.action(), rule.errno_ret());
    if action == default {
        return Ok(());
    }
    let args: &[LinuxSeccompArg] = rule.args().as_deref().unwrap_or_default();
    let mut conditions = Vec::with_capacity(args.len());
    let mut per_index = [0usize; MAX_ARGS];
    for arg in args {
        let index = arg.index();
        let Some(count) = per_index.get_mut(index) else {
            return Err(SeccompError::ArgIndex {
                syscall: rule.names().join(","),
                index,
            });
        };
        *count += 1;
        conditions.push(to_condition(arg, index));
    }
    let split = per_index.iter().any(|&n| n > 1);
    for name in rule.names() {
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            skipped.push(name.clone());
            continue;
        };
        let failed = |source| SeccompError::AddRule {
            syscall: name.clone(),
            action: rule.action(),
            source,
        };
        if split {
            for condition in &conditions {
                ctx.add_rule_conditional(action, syscall, std::slice::from_ref(condition))
                    .map_err(failed)?;
            }
        } else {
            ctx.add_rule_conditional(action, syscall, &conditions)
                .map_err(failed)?;
        }
    }
    Ok(())
}

/// One argument condition. For `SCMP_CMP_MASKED_EQ` the spec's `value` is the mask and
/// `valueTwo` the value the masked argument must equal (libseccomp's order).
fn to_condition(arg: &LinuxSeccompArg, index: usize) -> ScmpArgCompare {
    let value = arg.value();
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(value),
            arg.value_two().unwrap_or(0),
        ),
    };
    // `index` was checked against MAX_ARGS, so it fits in u32.
    ScmpArgCompare::new(index as u32, op, datum)
}

/// The libseccomp action; `errno_ret` (default EPERM) for ERRNO and TRACE. NOTIFY is rejected
/// earlier by `reject_notify`.
fn to_action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> ScmpAction {
    let errno = errno_ret.unwrap_or(DEFAULT_ERRNO);
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        // The kernel keeps only SECCOMP_RET_DATA (16 bits) of the return value.
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno((errno & 0xffff) as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace((errno & 0xffff) as u16),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn to_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

mod program;
pub use program::{Program, program};

#[cfg(test)]
mod tests;
