//! Manifest kinds a pull understands (Docker v2 schema 2, OCI image manifest, Docker manifest
//! list, OCI index) and the platform choice in a list.

use serde::{Deserialize, Serialize};

use super::error::RegistryError;

/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// What a pull accepts.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Foreign layer URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Platform (in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// A platform in a manifest list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// OS.
    #[serde(default)]
    pub os: String,
    /// Variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `os[/arch[/variant]]`; default `linux/<host arch>`.
    pub fn parse(s: Option<&str>) -> Result<Platform, RegistryError> {
        let host = crate::archive::load::host_arch().to_string();
        let Some(s) = s.filter(|s| !s.is_empty()) else {
            return Ok(Platform {
                architecture: host,
                os: "linux".into(),
                variant: None,
            });
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(RegistryError::Invalid(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            )));
        }
        let arch = match parts.get(1).copied().unwrap_or(host.as_str()) {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        }
        .to_string();
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: arch,
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// `linux/amd64` or `linux/arm64/v8`.
    pub fn display(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// An image manifest (Docker v2 schema 2 or OCI).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageManifest {
    /// 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Media type.
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    /// Config blob.
    pub config: Descriptor,
    /// Layer blobs, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// What a fetched manifest is.
#[derive(Debug)]
pub enum Fetched {
    /// An image manifest.
    Image(ImageManifest),
    /// A list: the entry chosen for the platform.
    List(Descriptor),
}

/// Classify a manifest by its Content-Type (falling back to its `mediaType` field and shape)
/// and, for a list, choose the platform's entry.
pub fn classify(
    data: &[u8],
    content_type: &str,
    platform: &Platform,
) -> Result<Fetched, RegistryError> {
    let probe: Probe = serde_json::from_slice(data)
        .map_err(|e| RegistryError::Manifest(format!("invalid manifest: {e}")))?;
    let mt = if !probe.media_type.is_empty() {
        probe.media_type.as_str()
    } else if content_type.starts_with("application/vnd.") {
        content_type
    } else if probe.manifests.is_some() {
        OCI_INDEX
    } else if probe.config.is_some() {
        OCI_MANIFEST
    } else {
        content_type
    };
    if probe.schema_version == 1 || mt.contains("manifest.v1+prettyjws") {
        return Err(RegistryError::Manifest(
            "unsupported manifest format: Docker Image manifest v2, schema 1 is no longer supported"
                .into(),
        ));
    }
    match mt {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let m: ImageManifest = serde_json::from_slice(data)
                .map_err(|e| RegistryError::Manifest(format!("invalid manifest: {e}")))?;
            Ok(Fetched::Image(m))
        }
        DOCKER_LIST | OCI_INDEX => {
            let idx: Index = serde_json::from_slice(data)
                .map_err(|e| RegistryError::Manifest(format!("invalid manifest list: {e}")))?;
            choose(&idx.manifests, platform)
                .cloned()
                .map(Fetched::List)
                .ok_or_else(|| RegistryError::NoPlatform(platform.display()))
        }
        other => Err(RegistryError::Manifest(format!(
            "unsupported manifest media type {other:?}"
        ))),
    }
}

/// The list entry for `want`: same os and architecture, and variant when both name one;
/// an exact variant match wins.
fn choose<'a>(entries: &'a [Descriptor], want: &Platform) -> Option<&'a Descriptor> {
    let candidates = entries.iter().filter(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && (want.variant.is_none() || p.variant.is_none() || p.variant == want.variant)
        })
    });
    let all: Vec<&Descriptor> = candidates.collect();
    all.iter()
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.clone()) == want.variant)
        .or(all.first())
        .copied()
}

/// Whether a layer media type is foreign (non-distributable).
pub fn is_foreign(media_type: &str) -> bool {
    media_type.contains("foreign") || media_type.contains("nondistributable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_choice() {
        let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
          {"mediaType":"x","size":1,"digest":"sha256:a","platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
          {"mediaType":"x","size":1,"digest":"sha256:b","platform":{"architecture":"amd64","os":"linux"}}]}"#;
        let amd = Platform::parse(Some("linux/amd64")).unwrap();
        match classify(list, "", &amd).unwrap() {
            Fetched::List(d) => assert_eq!(d.digest, "sha256:b"),
            _ => panic!(),
        }
        let arm = Platform::parse(Some("linux/arm64")).unwrap();
        match classify(list, "", &arm).unwrap() {
            Fetched::List(d) => assert_eq!(d.digest, "sha256:a"),
            _ => panic!(),
        }
        let s390 = Platform::parse(Some("linux/s390x")).unwrap();
        let e = classify(list, "", &s390).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert!(Platform::parse(Some("linux//")).is_err());
    }

    #[test]
    fn schema1_refused() {
        let e = classify(br#"{"schemaVersion":1}"#, "", &Platform::default()).unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
    }
}
