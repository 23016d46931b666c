//! Process security settings applied just before `execve`: capabilities, seccomp, rlimits;
//! plus Docker's default capability set and seccomp profile for the daemon.
//!
//! Order the container init must follow (the same as runc):
//! 1. in the runtime parent: [`caps::validate_names`], [`rlimits::validate_types`] and
//!    [`seccomp::validate_names`] on the raw `config.json` (clear errors before oci-spec's
//!    serde ones), then [`seccomp::compile`] (so a bad profile fails `create`, not the init);
//! 2. init, still uid 0: [`rlimits::apply`] (raising is checked against the runtime's own
//!    limits), [`caps::drop_bounding`], [`caps::set_keep_caps`]`(true)`;
//! 3. if `noNewPrivileges` is false and seccomp is set: load the filter now, while the init
//!    still has `CAP_SYS_ADMIN` (loading without no_new_privs needs it; CAP_SYS_ADMIN in the
//!    container's own user namespace is enough). The filter must then
//!    allow what the init does afterwards (setgroups/setuid/capset/prctl/execve) — Docker's
//!    default profile does;
//! 4. setgroups/setgid/setuid, [`caps::apply_sets`];
//! 5. if `noNewPrivileges` is true: [`set_no_new_privs`], then load the filter as late as
//!    possible, right before `execve`, so the fewest init syscalls run under it.

pub mod caps;
mod default_profile;
pub mod defaults;
pub mod rlimits;
pub mod seccomp;

#[cfg(test)]
pub(crate) mod test_support;

/// Errors of the small helpers in this module.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)` failed.
    #[error("prctl(PR_SET_NO_NEW_PRIVS, 1)")]
    NoNewPrivs(#[source] nix::Error),
}

/// Set no_new_privs for the calling thread (inherited by children, kept across `execve`):
/// setuid binaries and file capabilities no longer raise privileges. Only when the spec asks
/// (`process.noNewPrivileges`); seccomp loading does not set it on its own.
pub fn set_no_new_privs() -> Result<(), SecurityError> {
    nix::sys::prctl::set_no_new_privs().map_err(SecurityError::NoNewPrivs)
}
