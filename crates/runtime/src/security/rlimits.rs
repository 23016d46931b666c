//! `process.rlimits`, clamped to the hard limit when raising it is not permitted.
//!
//! STUB: interface agreed between work streams; the security stream implements it.

use oci_spec::runtime::PosixRlimit;

/// Errors setting rlimits.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// Placeholder until implemented.
    #[error("rlimits: not implemented yet")]
    NotImplemented,
}

/// Apply the rlimits to the calling process. A hard limit above the current one without
/// CAP_SYS_RESOURCE is clamped, never an error; each clamp is returned as a warning line.
pub fn apply(_rlimits: &[PosixRlimit]) -> Result<Vec<String>, RlimitError> {
    Err(RlimitError::NotImplemented)
}
