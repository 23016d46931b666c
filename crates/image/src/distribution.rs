//! Pull/push dedupe metadata, as Docker keeps it:
//! `distribution/diffid-by-digest/sha256/<blob hex>` holds the diff id of a compressed blob,
//! `distribution/v2metadata-by-diffid/sha256/<diff hex>` a JSON list of
//! `{"Digest", "SourceRepository", "HMAC"}` saying where that content was seen. A pull skips
//! blobs whose diff id is known locally; a push can mount blobs across repositories.

use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use crate::atomic::{self, AtomicError};
use crate::ids;
use crate::layout::Layout;

/// Errors reading or writing distribution metadata.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// A digest was not `sha256:<64 hex>`.
    #[error("distribution metadata: bad digest {0:?}")]
    BadDigest(String),
    /// Reading failed.
    #[error("distribution metadata: reading")]
    Read(#[source] io::Error),
    /// Writing failed.
    #[error("distribution metadata: writing")]
    Write(#[from] AtomicError),
}

/// One place a layer's blob was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Metadata {
    /// Compressed blob digest.
    #[serde(rename = "Digest")]
    pub digest: String,
    /// Repository it came from (`docker.io/library/busybox`).
    #[serde(rename = "SourceRepository")]
    pub source_repository: String,
    /// Docker's HMAC of the registry credentials (empty: not tied to a login).
    #[serde(rename = "HMAC", default)]
    pub hmac: String,
}

fn checked(d: &str) -> Result<&str, DistributionError> {
    if ids::is_sha256_digest(d) {
        Ok(ids::hex_of(d))
    } else {
        Err(DistributionError::BadDigest(d.to_string()))
    }
}

/// Record that blob `blob_digest` (from `repo`) uncompresses to `diff_id`.
pub fn record(
    layout: &Layout,
    blob_digest: &str,
    diff_id: &str,
    repo: &str,
) -> Result<(), DistributionError> {
    let blob_hex = checked(blob_digest)?;
    let diff_hex = checked(diff_id)?;
    let by_digest = layout.distribution().join("diffid-by-digest/sha256");
    let by_diff = layout.distribution().join("v2metadata-by-diffid/sha256");
    fs::create_dir_all(&by_digest).map_err(DistributionError::Read)?;
    fs::create_dir_all(&by_diff).map_err(DistributionError::Read)?;
    atomic::write_file(&by_digest.join(blob_hex), diff_id.as_bytes())?;
    let mut list = metadata_for(layout, diff_id)?;
    let entry = V2Metadata {
        digest: blob_digest.to_string(),
        source_repository: repo.to_string(),
        hmac: String::new(),
    };
    if !list.contains(&entry) {
        list.push(entry);
        let data =
            serde_json::to_vec(&list).map_err(|e| DistributionError::Read(io::Error::other(e)))?;
        atomic::write_file(&by_diff.join(diff_hex), &data)?;
    }
    Ok(())
}

/// The diff id a blob digest is known to uncompress to.
pub fn diff_id_for_blob(
    layout: &Layout,
    blob_digest: &str,
) -> Result<Option<String>, DistributionError> {
    let hex = checked(blob_digest)?;
    match fs::read_to_string(
        layout
            .distribution()
            .join("diffid-by-digest/sha256")
            .join(hex),
    ) {
        Ok(s) if ids::is_sha256_digest(s.trim()) => Ok(Some(s.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DistributionError::Read(e)),
    }
}

/// Where a layer's content was seen.
pub fn metadata_for(layout: &Layout, diff_id: &str) -> Result<Vec<V2Metadata>, DistributionError> {
    let hex = checked(diff_id)?;
    match fs::read(
        layout
            .distribution()
            .join("v2metadata-by-diffid/sha256")
            .join(hex),
    ) {
        Ok(d) => Ok(serde_json::from_slice(&d).unwrap_or_default()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(DistributionError::Read(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_look_up() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::new(d.path());
        let blob = ids::sha256_digest(b"blob");
        let diff = ids::sha256_digest(b"diff");
        assert_eq!(diff_id_for_blob(&layout, &blob).unwrap(), None);
        record(&layout, &blob, &diff, "docker.io/library/busybox").unwrap();
        record(&layout, &blob, &diff, "docker.io/library/busybox").unwrap();
        assert_eq!(
            diff_id_for_blob(&layout, &blob).unwrap(),
            Some(diff.clone())
        );
        let m = metadata_for(&layout, &diff).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].source_repository, "docker.io/library/busybox");
        let raw = fs::read_to_string(
            d.path()
                .join("image/overlay2/distribution/v2metadata-by-diffid/sha256")
                .join(ids::hex_of(&diff)),
        )
        .unwrap();
        assert!(raw.contains("\"SourceRepository\""), "{raw}");
        assert!(record(&layout, "md5:x", &diff, "r").is_err());
    }
}
