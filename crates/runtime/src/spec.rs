//! Loading and validating a bundle's `config.json`.
//!
//! oci-spec's deserializer accepts some things the runtime-spec forbids (relative mount
//! destinations, duplicate namespaces) and reports others with unclear messages (unknown
//! capability or namespace names deep inside a struct). We check the raw JSON for the latter
//! before deserializing and the typed spec for the former afterwards, so every bad bundle is
//! rejected *before* the runtime creates any state, mount, cgroup or process.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};
use serde_json::Value;

/// Why a bundle's configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `config.json` could not be read (missing bundle, permissions).
    #[error("reading {path}")]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or does not match the runtime-spec schema.
    #[error("{path}: invalid configuration at line {line} column {column}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde's description.
        message: String,
    },
    /// `root.path` does not name a directory.
    #[error("rootfs {path} does not exist or is not a directory")]
    MissingRootfs {
        /// The resolved rootfs path.
        path: PathBuf,
    },
    /// The spec has no `root` section.
    #[error("config.json has no root.path")]
    MissingRoot,
    /// The spec has no `process` section (required for create/run).
    #[error("config.json has no process section")]
    MissingProcess,
    /// `process.args` is empty.
    #[error("process.args must not be empty")]
    EmptyArgs,
    /// `linux.namespaces[].type` is not one the kernel knows.
    #[error("unknown namespace type {0:?}")]
    UnknownNamespace(String),
    /// The same namespace type is listed twice.
    #[error("namespace {0:?} is listed more than once")]
    DuplicateNamespace(String),
    /// A capability name is not a Linux capability.
    #[error("unknown capability {name:?} in process.capabilities.{set}")]
    UnknownCapability {
        /// The set (bounding, effective, ...).
        set: String,
        /// The offending name.
        name: String,
    },
    /// An rlimit type is unknown.
    #[error("process.rlimits: {0}")]
    Rlimit(String),
    /// A path the runtime-spec requires to be absolute is relative.
    #[error("{field} must be an absolute path, got {path:?}")]
    RelativePath {
        /// Where in the spec.
        field: String,
        /// The relative path.
        path: String,
    },
}

/// A validated spec plus the absolute rootfs path it names.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The typed configuration.
    pub spec: Spec,
    /// Absolute path of the root filesystem (`root.path` resolved against the bundle).
    pub rootfs: PathBuf,
}

/// Load `<bundle>/config.json`, validate it, and resolve the rootfs.
pub fn load(bundle: &Path) -> Result<LoadedSpec, SpecError> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    let spec = parse(&path, &bytes)?;
    let root = spec.root().as_ref().ok_or(SpecError::MissingRoot)?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(SpecError::MissingRootfs { path: rootfs });
    }
    Ok(LoadedSpec { spec, rootfs })
}

/// Parse and validate config bytes (`path` only names the file in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Spec, SpecError> {
    let json_err = |e: serde_json::Error| SpecError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let raw: Value = serde_json::from_slice(bytes).map_err(json_err)?;
    check_raw(&raw)?;
    crate::security::rlimits::validate_types(&raw).map_err(|e| SpecError::Rlimit(e.to_string()))?;
    let spec: Spec = serde_json::from_slice(bytes).map_err(json_err)?;
    validate(&spec)?;
    Ok(spec)
}

/// Checks on the raw JSON whose failures oci-spec would report unclearly.
fn check_raw(raw: &Value) -> Result<(), SpecError> {
    if let Some(nss) = raw.pointer("/linux/namespaces").and_then(Value::as_array) {
        let mut seen = HashSet::new();
        for ns in nss {
            let typ = ns.get("type").and_then(Value::as_str).unwrap_or_default();
            let parsed = LinuxNamespaceType::try_from(typ)
                .map_err(|_| SpecError::UnknownNamespace(typ.to_string()))?;
            if !seen.insert(parsed as i64) {
                return Err(SpecError::DuplicateNamespace(typ.to_string()));
            }
        }
    }
    if let Some(caps) = raw
        .pointer("/process/capabilities")
        .and_then(Value::as_object)
    {
        for (set, names) in caps {
            for name in names.as_array().into_iter().flatten() {
                let ok = serde_json::from_value::<Capability>(name.clone()).is_ok()
                    && name.as_str().is_some_and(|n| n.starts_with("CAP_"));
                if !ok {
                    return Err(SpecError::UnknownCapability {
                        set: set.clone(),
                        name: name.as_str().unwrap_or_default().to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn require_absolute(field: &str, path: &Path) -> Result<(), SpecError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(SpecError::RelativePath {
            field: field.to_string(),
            path: path.display().to_string(),
        })
    }
}

/// Semantic checks on the typed spec.
fn validate(spec: &Spec) -> Result<(), SpecError> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        require_absolute(&format!("mounts[{i}].destination"), m.destination())?;
    }
    if let Some(hooks) = spec.hooks() {
        let lists = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (name, list) in lists {
            for (i, h) in list.iter().flatten().enumerate() {
                require_absolute(&format!("hooks.{name}[{i}].path"), h.path())?;
            }
        }
    }
    if let Some(process) = spec.process() {
        require_absolute("process.cwd", process.cwd())?;
    }
    Ok(())
}

/// The process section, required to create a container.
pub fn process(spec: &Spec) -> Result<&oci_spec::runtime::Process, SpecError> {
    let p = spec.process().as_ref().ok_or(SpecError::MissingProcess)?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::EmptyArgs);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(v: Value) -> Result<Spec, SpecError> {
        parse(Path::new("config.json"), &serde_json::to_vec(&v).unwrap())
    }

    fn base() -> Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
                         "capabilities": {"bounding": ["CAP_KILL"]}},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    #[test]
    fn accepts_base() {
        parse_json(base()).unwrap();
    }

    #[test]
    fn invalid_json_has_position() {
        let e = parse(Path::new("c.json"), b"{\n  \"ociVersion\": ,\n}").unwrap_err();
        match e {
            SpecError::Json { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn unknown_namespace() {
        let mut v = base();
        v["linux"]["namespaces"][0]["type"] = "bogus".into();
        assert!(matches!(parse_json(v), Err(SpecError::UnknownNamespace(n)) if n == "bogus"));
    }

    #[test]
    fn duplicate_namespace() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "pid".into();
        assert!(matches!(
            parse_json(v),
            Err(SpecError::DuplicateNamespace(_))
        ));
    }

    #[test]
    fn unknown_capability() {
        let mut v = base();
        v["process"]["capabilities"]["bounding"][0] = "CAP_FLY".into();
        assert!(matches!(
            parse_json(v),
            Err(SpecError::UnknownCapability { name, .. }) if name == "CAP_FLY"
        ));
    }

    #[test]
    fn relative_paths() {
        let mut v = base();
        v["mounts"][0]["destination"] = "proc".into();
        assert!(matches!(parse_json(v), Err(SpecError::RelativePath { .. })));
        let mut v = base();
        v["process"]["cwd"] = "tmp".into();
        assert!(matches!(parse_json(v), Err(SpecError::RelativePath { .. })));
        let mut v = base();
        v["hooks"] = serde_json::json!({"poststop": [{"path": "x"}]});
        assert!(matches!(parse_json(v), Err(SpecError::RelativePath { .. })));
    }
}
