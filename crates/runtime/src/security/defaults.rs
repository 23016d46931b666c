//! Docker's defaults for containers it creates: 14 capabilities and the default seccomp
//! profile (moby profiles/seccomp/default.json), for the daemon to put in OCI specs.
//!
//! STUB: interface agreed between work streams; the security stream implements it.

use oci_spec::runtime::{Capability, LinuxSeccomp};

/// Docker's default capability set.
pub fn docker_default_capabilities() -> Vec<Capability> {
    Vec::new()
}

/// Docker's default seccomp profile for x86_64, given the capabilities the container keeps
/// (some rules only apply when a capability is granted).
pub fn docker_default_seccomp(_caps: &[Capability]) -> LinuxSeccomp {
    LinuxSeccomp::default()
}
