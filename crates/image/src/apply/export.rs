//! Export a diff dir as a layer tar.

use std::io::Write;
use std::path::Path;

use super::ApplyError;

pub(crate) fn export<W: Write>(_diff: &Path, _out: W) -> Result<(), ApplyError> {
    Err(ApplyError::unsafe_path("/", "export not implemented yet"))
}
