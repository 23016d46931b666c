//! Whiteout names (the tar form, from the OCI image spec / AUFS) and their overlayfs form.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::FileType;

/// Prefix of a whiteout entry name in a layer tar.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of whiteout metadata names (`.wh..wh.plnk`, `.wh..wh..opq`).
pub(crate) const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// Opaque-directory marker entry name.
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Prefix of every xattr overlayfs interprets; never taken from a layer tar.
pub(crate) const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// What a tar entry's base name means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WhiteoutKind<'a> {
    /// Not a whiteout.
    None,
    /// `.wh..wh..opq`: the parent directory is opaque.
    Opaque,
    /// `.wh.<name>`: `<name>` is deleted.
    Remove(&'a OsStr),
    /// Another `.wh..wh.` metadata name (AUFS hardlink dirs); ignored.
    Meta,
}

pub(crate) fn classify(name: &OsStr) -> WhiteoutKind<'_> {
    let b = name.as_bytes();
    if b == OPAQUE_MARKER.as_bytes() {
        WhiteoutKind::Opaque
    } else if b.starts_with(WHITEOUT_META_PREFIX) {
        WhiteoutKind::Meta
    } else if let Some(rest) = b.strip_prefix(WHITEOUT_PREFIX) {
        WhiteoutKind::Remove(OsStr::from_bytes(rest))
    } else {
        WhiteoutKind::None
    }
}

/// Is this stat an overlayfs whiteout (char device 0:0)?
pub(crate) fn is_whiteout(st: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// Does this directory carry overlayfs' opaque marker?
pub(crate) fn is_opaque(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4];
    matches!(rustix::fs::fgetxattr(fd, OPAQUE_XATTR, &mut buf[..]), Ok(1) if buf[0] == b'y')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classifies_names() {
        assert_eq!(classify(OsStr::new(".wh..wh..opq")), WhiteoutKind::Opaque);
        assert_eq!(classify(OsStr::new(".wh..wh.plnk")), WhiteoutKind::Meta);
        assert_eq!(
            classify(OsStr::new(".wh.foo")),
            WhiteoutKind::Remove(OsStr::new("foo"))
        );
        assert_eq!(
            classify(OsStr::new(".wh.")),
            WhiteoutKind::Remove(OsStr::new(""))
        );
        assert_eq!(classify(OsStr::new("wh.foo")), WhiteoutKind::None);
    }
}
