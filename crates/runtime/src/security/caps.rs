//! Capabilities: the five sets of `process.capabilities`.
//!
//! Order in the container init (as runc does it):
//! 1. [`drop_bounding`] while still uid 0 with `CAP_SETPCAP` (dropping from the bounding set
//!    needs it, and a later `execve` can never regain what the bounding set lacks);
//! 2. [`set_keep_caps`]`(true)`, then setgroups/setgid/setuid — without KEEPCAPS a uid change
//!    away from 0 clears the permitted set;
//! 3. [`apply_sets`] (inheritable, effective, permitted, then ambient) just before `execve`.
//!
//! A missing set in the spec means the empty set, as in runc. Capabilities the running kernel
//! does not know (index above `/proc/sys/kernel/cap_last_cap`) are skipped silently, so a spec
//! written for a newer kernel still runs.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// Where the kernel publishes the highest capability number it knows.
const CAP_LAST_CAP_PATH: &str = "/proc/sys/kernel/cap_last_cap";

/// The spec keys of `process.capabilities`, in the order they are checked.
const SET_NAMES: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// Errors applying capability sets.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// A name in `process.capabilities.<set>` is no capability at all.
    #[error("unknown capability {name:?} in process.capabilities.{set}")]
    UnknownName {
        /// The spec key (`bounding`, `effective`, ...).
        set: &'static str,
        /// The name as written in the spec.
        name: String,
    },
    /// `process.capabilities.<set>` is not an array of strings.
    #[error("process.capabilities.{set} must be an array of capability names")]
    NotAList {
        /// The spec key.
        set: &'static str,
    },
    /// oci-spec knows the capability but the `caps` crate of this build does not.
    #[error("capability {0} is not supported by this build of berth-runtime")]
    Unsupported(String),
    /// `/proc/sys/kernel/cap_last_cap` could not be read or parsed.
    #[error("reading {CAP_LAST_CAP_PATH}")]
    LastCap(#[source] std::io::Error),
    /// Dropping one capability from the bounding set failed (needs `CAP_SETPCAP`).
    #[error("dropping {cap} from the bounding set")]
    DropBounding {
        /// The capability.
        cap: caps::Capability,
        /// The error from `prctl(PR_CAPBSET_DROP)`.
        #[source]
        source: caps::errors::CapsError,
    },
    /// Reading the current bounding set failed.
    #[error("reading the bounding set")]
    ReadBounding(#[source] caps::errors::CapsError),
    /// `capset` for one of the base sets failed, e.g. asking for a capability that is not in
    /// the bounding set of the runtime itself (on the dev machine: CAP_SYS_RESOURCE).
    #[error("setting the {set} capability set to [{wanted}]")]
    SetBase {
        /// Which set.
        set: &'static str,
        /// The capabilities asked for, comma separated.
        wanted: String,
        /// The error from `capset`.
        #[source]
        source: caps::errors::CapsError,
    },
    /// The spec grants capabilities the runtime itself does not hold (on the development
    /// machines CAP_SYS_RESOURCE is missing even from the host's bounding set); a process can
    /// never add to its permitted set.
    #[error("cannot grant [{0}]: the runtime itself does not hold them (not in its permitted set)")]
    NotHeld(String),
    /// Reading the current permitted set failed.
    #[error("reading the permitted capability set")]
    ReadPermitted(#[source] caps::errors::CapsError),
    /// Clearing the ambient set failed.
    #[error("clearing the ambient capability set")]
    ClearAmbient(#[source] caps::errors::CapsError),
    /// Raising one ambient capability failed; it must be in both permitted and inheritable.
    #[error("raising ambient capability {cap} (it must also be permitted and inheritable)")]
    RaiseAmbient {
        /// The capability.
        cap: caps::Capability,
        /// The error from `prctl(PR_CAP_AMBIENT_RAISE)`.
        #[source]
        source: caps::errors::CapsError,
    },
    /// `prctl(PR_SET_KEEPCAPS)` failed.
    #[error("prctl(PR_SET_KEEPCAPS, {0})")]
    KeepCaps(bool, #[source] nix::Error),
}

/// Check every name in `process.capabilities` of the raw `config.json`, before oci-spec
/// deserializes it: oci-spec rejects an unknown name too, but with a serde message that does
/// not say which name or where. Accepts what oci-spec accepts (`CAP_X` or `X`, any case).
pub fn validate_names(raw_spec_json: &serde_json::Value) -> Result<(), CapsError> {
    let Some(capabilities) = raw_spec_json
        .get("process")
        .and_then(|p| p.get("capabilities"))
    else {
        return Ok(());
    };
    for set in SET_NAMES {
        let names = match capabilities.get(set) {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::Array(names)) => names,
            Some(_) => return Err(CapsError::NotAList { set }),
        };
        for name in names {
            let serde_json::Value::String(text) = name else {
                return Err(CapsError::NotAList { set });
            };
            if serde_json::from_value::<Capability>(name.clone()).is_err() {
                return Err(CapsError::UnknownName {
                    set,
                    name: text.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Drop from the bounding set every capability the spec's bounding set lacks.
/// Call in the container init before changing uid/gid (needs `CAP_SETPCAP`).
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<(), CapsError> {
    let keep = kernel_set(caps.bounding().as_ref(), last_cap()?)?;
    let current = caps::read(None, CapSet::Bounding).map_err(CapsError::ReadBounding)?;
    let mut to_drop: Vec<caps::Capability> = current.difference(&keep).copied().collect();
    to_drop.sort_by_key(|c| c.index());
    for cap in to_drop {
        caps::drop(None, CapSet::Bounding, cap)
            .map_err(|source| CapsError::DropBounding { cap, source })?;
    }
    Ok(())
}

/// Set inheritable, effective, permitted and ambient sets. Call after setuid/setgid
/// (with [`set_keep_caps`]`(true)` before the uid change), just before `execve`.
///
/// Inheritable goes first while the permitted set is still the old, larger one (a new
/// inheritable must lie within the old permitted), then effective (must lie within
/// permitted), then permitted shrinks; ambient last, since raising needs the cap in both
/// permitted and inheritable.
pub fn apply_sets(caps: &LinuxCapabilities) -> Result<(), CapsError> {
    let last = last_cap()?;
    let held = caps::read(None, CapSet::Permitted).map_err(CapsError::ReadPermitted)?;
    let permitted = kernel_set(caps.permitted().as_ref(), last)?;
    let missing: CapsHashSet = permitted.difference(&held).copied().collect();
    if !missing.is_empty() {
        return Err(CapsError::NotHeld(names(&missing)));
    }
    let base = [
        ("inheritable", CapSet::Inheritable, caps.inheritable()),
        ("effective", CapSet::Effective, caps.effective()),
        ("permitted", CapSet::Permitted, caps.permitted()),
    ];
    for (set, cset, wanted) in base {
        let wanted = kernel_set(wanted.as_ref(), last)?;
        caps::set(None, cset, &wanted).map_err(|source| CapsError::SetBase {
            set,
            wanted: names(&wanted),
            source,
        })?;
    }
    let ambient = kernel_set(caps.ambient().as_ref(), last)?;
    caps::clear(None, CapSet::Ambient).map_err(CapsError::ClearAmbient)?;
    let mut ambient: Vec<caps::Capability> = ambient.into_iter().collect();
    ambient.sort_by_key(|c| c.index());
    for cap in ambient {
        caps::raise(None, CapSet::Ambient, cap)
            .map_err(|source| CapsError::RaiseAmbient { cap, source })?;
    }
    Ok(())
}

/// `prctl(PR_SET_KEEPCAPS)`: keep the permitted set across the init's setuid away from 0.
/// The kernel clears the flag again on `execve`.
pub fn set_keep_caps(keep: bool) -> Result<(), CapsError> {
    nix::sys::prctl::set_keepcaps(keep).map_err(|e| CapsError::KeepCaps(keep, e))
}

/// The highest capability number the running kernel knows.
pub fn last_cap() -> Result<u8, CapsError> {
    let text = std::fs::read_to_string(CAP_LAST_CAP_PATH).map_err(CapsError::LastCap)?;
    text.trim()
        .parse::<u8>()
        .map_err(|e| CapsError::LastCap(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// The `caps` crate's value for an oci-spec capability (both spell it `CAP_X`).
pub fn to_kernel_cap(cap: Capability) -> Result<caps::Capability, CapsError> {
    let name = format!("CAP_{cap}");
    caps::Capability::from_str(&name).map_err(|_| CapsError::Unsupported(name))
}

/// The spec set as kernel capabilities, without those above `last_cap`.
/// `None` (set absent from the spec) is the empty set.
fn kernel_set(set: Option<&Capabilities>, last_cap: u8) -> Result<CapsHashSet, CapsError> {
    let mut out = HashSet::new();
    for cap in set.into_iter().flatten() {
        let kernel = to_kernel_cap(*cap)?;
        if kernel.index() <= last_cap {
            out.insert(kernel);
        }
    }
    Ok(out)
}

/// Comma-separated names, sorted by number, for error messages.
fn names(set: &CapsHashSet) -> String {
    let mut list: Vec<caps::Capability> = set.iter().copied().collect();
    list.sort_by_key(|c| c.index());
    list.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
