//! Capabilities: the five sets of `process.capabilities`.
//!
//! STUB: interface agreed between work streams; the security stream implements it.

use oci_spec::runtime::LinuxCapabilities;

/// Errors applying capability sets.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// Placeholder until implemented.
    #[error("capabilities: not implemented yet")]
    NotImplemented,
}

/// Drop from the bounding set every capability the spec's bounding set lacks.
/// Call in the container init before changing uid/gid.
pub fn drop_bounding(_caps: &LinuxCapabilities) -> Result<(), CapsError> {
    Err(CapsError::NotImplemented)
}

/// Set effective, permitted, inheritable and ambient sets. Call after setuid/setgid
/// (with `PR_SET_KEEPCAPS` set before the uid change), just before `execve`.
pub fn apply_sets(_caps: &LinuxCapabilities) -> Result<(), CapsError> {
    Err(CapsError::NotImplemented)
}
