//! Docker's defaults for containers it creates: 14 capabilities and the default seccomp
//! profile (moby profiles/seccomp/default.json), for the daemon to put in OCI specs.
//!
//! The profile's rules live as data in `default_profile.rs`; this file picks the rules that
//! apply to one container (its capabilities, the native architecture, the running kernel)
//! the way moby does, and builds the OCI `linux.seccomp` from them.

use oci_spec::runtime::LinuxSyscall;
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
};

use super::default_profile::{ARCH_MAP, Cond, DEFAULT_ERRNO_RET, RULES, Rule};

/// Docker's default capability set.
pub fn docker_default_capabilities() -> Vec<Capability> {
    vec![
        Capability::Chown,
        Capability::DacOverride,
        Capability::Fsetid,
        Capability::Fowner,
        Capability::Mknod,
        Capability::NetRaw,
        Capability::Setgid,
        Capability::Setuid,
        Capability::Setfcap,
        Capability::Setpcap,
        Capability::NetBindService,
        Capability::SysChroot,
        Capability::Kill,
        Capability::AuditWrite,
    ]
}

/// Docker's default seccomp profile for this machine's architecture and kernel, given the
/// capabilities the container keeps (its bounding set; some rules only apply when a
/// capability is granted, e.g. CAP_SYS_ADMIN allows mount/unshare/setns and any clone).
pub fn docker_default_seccomp(caps: &[Capability]) -> LinuxSeccomp {
    docker_default_seccomp_for(caps, NATIVE, kernel_version())
}

/// The target the profile is generated for.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The architecture name the profile's conditions use (Go's: `amd64`, `arm64`, ...).
    pub arch_name: &'static str,
    /// The native seccomp architecture, whose `archMap` entry gives `architectures`.
    pub arch: Option<Arch>,
}

/// The target berth was built for.
pub const NATIVE: Target = native_target();

const fn native_target() -> Target {
    let (arch_name, arch) = if cfg!(target_arch = "x86_64") {
        ("amd64", Some(Arch::ScmpArchX86_64))
    } else if cfg!(target_arch = "x86") {
        ("x86", Some(Arch::ScmpArchX86))
    } else if cfg!(target_arch = "aarch64") {
        ("arm64", Some(Arch::ScmpArchAarch64))
    } else if cfg!(target_arch = "arm") {
        ("arm", Some(Arch::ScmpArchArm))
    } else if cfg!(target_arch = "s390x") {
        ("s390x", Some(Arch::ScmpArchS390x))
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        ("ppc64le", Some(Arch::ScmpArchPpc64le))
    } else if cfg!(target_arch = "riscv64") {
        ("riscv64", Some(Arch::ScmpArchRiscv64))
    } else {
        // No arch map entry: libseccomp uses the native architecture only.
        ("", None)
    };
    Target { arch_name, arch }
}

/// [`docker_default_seccomp`] for an explicit target and kernel `(major, minor)`; an unknown
/// kernel version fails every `minKernel` condition.
pub fn docker_default_seccomp_for(
    caps: &[Capability],
    target: Target,
    kernel: Option<(u32, u32)>,
) -> LinuxSeccomp {
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(DEFAULT_ERRNO_RET));
    let architectures: Vec<Arch> = ARCH_MAP
        .iter()
        .filter(|(arch, _)| Some(*arch) == target.arch)
        .flat_map(|(arch, subs)| std::iter::once(*arch).chain(subs.iter().copied()))
        .collect();
    if !architectures.is_empty() {
        profile.set_architectures(Some(architectures));
    }
    let syscalls = RULES
        .iter()
        .filter(|rule| applies(rule, caps, target.arch_name, kernel))
        .map(to_syscall)
        .collect();
    profile.set_syscalls(Some(syscalls));
    profile
}

/// moby's rule selection: every `includes` condition holds and no `excludes` one does.
fn applies(rule: &Rule, caps: &[Capability], arch: &str, kernel: Option<(u32, u32)>) -> bool {
    let Cond {
        arches,
        caps: needed,
        min_kernel,
    } = &rule.includes;
    let included = (arches.is_empty() || arches.contains(&arch))
        && needed.iter().all(|c| caps.contains(c))
        && min_kernel.is_none_or(|min| kernel.is_some_and(|k| k >= min));
    let Cond {
        arches,
        caps: excluding,
        min_kernel,
    } = &rule.excludes;
    let excluded = arches.contains(&arch)
        || excluding.iter().any(|c| caps.contains(c))
        || min_kernel.is_some_and(|min| kernel.is_some_and(|k| k >= min));
    included && !excluded
}

fn to_syscall(rule: &Rule) -> LinuxSyscall {
    let mut syscall = LinuxSyscall::default();
    syscall.set_names(rule.names.iter().map(|n| n.to_string()).collect());
    syscall.set_action(rule.action);
    syscall.set_errno_ret(rule.errno_ret);
    if !rule.args.is_empty() {
        let args = rule
            .args
            .iter()
            .map(|a| {
                LinuxSeccompArgBuilder::default()
                    .index(a.index)
                    .value(a.value)
                    .op(a.op)
                    .build()
                    // Every field of the builder has a default, so build() cannot fail; the
                    // data is the constant table, not input.
                    .expect("LinuxSeccompArgBuilder with all fields set")
            })
            .collect();
        syscall.set_args(Some(args));
    }
    syscall
}

/// The running kernel's `(major, minor)` from uname, if it parses.
pub fn kernel_version() -> Option<(u32, u32)> {
    let uname = rustix::system::uname();
    parse_release(&uname.release().to_string_lossy())
}

/// `"6.18.0-1-amd64"` → `(6, 18)`.
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests;
