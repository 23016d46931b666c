//! `process.rlimits`, clamped to the hard limit when raising it is not permitted.
//!
//! Raising a hard limit needs CAP_SYS_RESOURCE, which the development machines (and some
//! hosts running nested containers) do not have at all; there the NOFILE hard limit is 20000.
//! Docker then fails `--ulimit nofile=1048576`; berth instead clamps to the current hard
//! limit and reports a warning, so specs written for other hosts still run.
//! Call in the init before dropping capabilities (a root init may still raise limits).

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

/// Errors setting rlimits.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// `process.rlimits[].type` names no rlimit.
    #[error("unknown rlimit type {0:?}")]
    UnknownType(String),
    /// `process.rlimits` is not an array of objects with a string `type`.
    #[error("process.rlimits must be an array of {{\"type\", \"soft\", \"hard\"}} objects")]
    Malformed,
    /// The soft limit exceeds the hard limit (setrlimit would say EINVAL).
    #[error("rlimit {name}: soft limit {soft} exceeds the hard limit {hard}")]
    SoftAboveHard {
        /// `RLIMIT_*` name.
        name: String,
        /// Requested soft limit.
        soft: u64,
        /// Requested hard limit.
        hard: u64,
    },
    /// Reading the current limit failed.
    #[error("getrlimit({name})")]
    Get {
        /// `RLIMIT_*` name.
        name: String,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
    /// Setting the limit failed for another reason than a refused raise.
    #[error("setrlimit({name}, soft {soft}, hard {hard})")]
    Set {
        /// `RLIMIT_*` name.
        name: String,
        /// Soft limit tried.
        soft: u64,
        /// Hard limit tried.
        hard: u64,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
}

/// Check the `type` of every entry of `process.rlimits` in the raw `config.json`, before
/// oci-spec deserializes it (its error for an unknown type does not say which one).
pub fn validate_types(raw_spec_json: &serde_json::Value) -> Result<(), RlimitError> {
    let Some(rlimits) = raw_spec_json.get("process").and_then(|p| p.get("rlimits")) else {
        return Ok(());
    };
    let entries = match rlimits {
        serde_json::Value::Null => return Ok(()),
        serde_json::Value::Array(entries) => entries,
        _ => return Err(RlimitError::Malformed),
    };
    for entry in entries {
        let Some(serde_json::Value::String(name)) = entry.get("type") else {
            return Err(RlimitError::Malformed);
        };
        if serde_json::from_value::<PosixRlimitType>(serde_json::Value::String(name.clone()))
            .is_err()
        {
            return Err(RlimitError::UnknownType(name.clone()));
        }
    }
    Ok(())
}

/// Apply the rlimits to the calling process. A hard limit above the current one without
/// CAP_SYS_RESOURCE is clamped, never an error; each clamp is returned as a warning line.
/// A limit equal to the current one is never an error either. Limits are set in spec order
/// (a repeated type: the last wins, as in runc); soft above hard is an error before any is set.
pub fn apply(rlimits: &[PosixRlimit]) -> Result<Vec<String>, RlimitError> {
    for rlimit in rlimits {
        let name = rlimit.typ().to_string();
        if rlimit.soft() > rlimit.hard() {
            return Err(RlimitError::SoftAboveHard {
                name,
                soft: rlimit.soft(),
                hard: rlimit.hard(),
            });
        }
    }
    let mut warnings = Vec::new();
    for rlimit in rlimits {
        if let Some(warning) = apply_one(rlimit)? {
            warnings.push(warning);
        }
    }
    Ok(warnings)
}

/// Set one limit; `Some(warning)` if it had to be clamped.
fn apply_one(rlimit: &PosixRlimit) -> Result<Option<String>, RlimitError> {
    let name = rlimit.typ().to_string();
    let resource = to_resource(rlimit.typ());
    let (soft, hard) = (rlimit.soft(), rlimit.hard());
    let (_, current_hard) = getrlimit(resource).map_err(|source| RlimitError::Get {
        name: name.clone(),
        source,
    })?;
    match setrlimit(resource, soft, hard) {
        Ok(()) => Ok(None),
        Err(nix::Error::EPERM) if hard > current_hard => {
            let clamped_soft = soft.min(current_hard);
            setrlimit(resource, clamped_soft, current_hard).map_err(|source| RlimitError::Set {
                name: name.clone(),
                soft: clamped_soft,
                hard: current_hard,
                source,
            })?;
            Ok(Some(format!(
                "rlimit {name}: hard limit {hard} exceeds the allowed {current_hard}, clamped"
            )))
        }
        Err(source) => Err(RlimitError::Set {
            name,
            soft,
            hard,
            source,
        }),
    }
}

fn to_resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

#[cfg(test)]
mod tests;
