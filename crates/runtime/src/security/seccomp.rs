//! Seccomp filters from `linux.seccomp`, built with libseccomp.
//!
//! STUB: interface agreed between work streams; the security stream implements it.

use oci_spec::runtime::LinuxSeccomp;

/// Errors compiling or loading a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// Placeholder until implemented.
    #[error("seccomp: not implemented yet")]
    NotImplemented,
}

/// A filter compiled (and so validated) in the runtime parent, loaded later in the init.
pub struct CompiledFilter {
    _private: (),
}

/// Validate and compile the spec's filter. Unknown syscall names on this arch are skipped
/// (as runc does); unknown actions/operators are errors.
pub fn compile(_spec: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    Err(SeccompError::NotImplemented)
}

impl CompiledFilter {
    /// Load the filter into the calling thread (needs no_new_privs or CAP_SYS_ADMIN).
    pub fn load(&self) -> Result<(), SeccompError> {
        Err(SeccompError::NotImplemented)
    }
}
