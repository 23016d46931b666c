#![allow(clippy::unwrap_used)]

use super::*;
use crate::security::test_support::{cap_mask, in_child, is_root};
use oci_spec::runtime::Capability as C;

// Capability numbers from linux/capability.h, written out so the expected masks do not
// come from the code under test.
const CHOWN: u64 = 1 << 0;
const DAC_OVERRIDE: u64 = 1 << 1;
const KILL: u64 = 1 << 5;
const SETGID: u64 = 1 << 6;
const SETUID: u64 = 1 << 7;
const SETPCAP: u64 = 1 << 8;
const NET_BIND_SERVICE: u64 = 1 << 10;
const SYS_ADMIN: u64 = 1 << 21;

fn set(caps: &[C]) -> Option<Capabilities> {
    Some(caps.iter().copied().collect())
}

fn spec() -> LinuxCapabilities {
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(set(&[
        C::Chown,
        C::DacOverride,
        C::Setpcap,
        C::Kill,
        C::NetBindService,
        C::SysAdmin,
        C::Setuid,
        C::Setgid,
    ]));
    caps.set_effective(set(&[C::Chown, C::Kill, C::Setpcap]));
    caps.set_permitted(set(&[C::Chown, C::Kill, C::NetBindService, C::Setpcap]));
    caps.set_inheritable(set(&[C::Kill, C::NetBindService]));
    caps.set_ambient(set(&[C::NetBindService]));
    caps
}

fn check(key: &str, want: u64) -> Result<(), String> {
    let got = cap_mask(key)?;
    if got == want {
        Ok(())
    } else {
        Err(format!("{key}: got {got:#x}, want {want:#x}"))
    }
}

fn check_all() -> Result<(), String> {
    check(
        "CapBnd",
        CHOWN | DAC_OVERRIDE | SETPCAP | KILL | NET_BIND_SERVICE | SYS_ADMIN | SETUID | SETGID,
    )?;
    check("CapEff", CHOWN | KILL | SETPCAP)?;
    check("CapPrm", CHOWN | KILL | NET_BIND_SERVICE | SETPCAP)?;
    check("CapInh", KILL | NET_BIND_SERVICE)?;
    check("CapAmb", NET_BIND_SERVICE)
}

#[test]
fn sets_end_up_as_asked_as_root() {
    if !is_root() {
        println!("SKIP: needs root (CAP_SETPCAP to drop from the bounding set)");
        return;
    }
    in_child(|| {
        let caps = spec();
        drop_bounding(&caps).map_err(|e| format!("drop_bounding: {e:?}"))?;
        apply_sets(&caps).map_err(|e| format!("apply_sets: {e:?}"))?;
        check_all()
    });
}

#[test]
fn sets_end_up_as_asked_after_setuid_with_keepcaps() {
    if !is_root() {
        println!("SKIP: needs root (setuid and CAP_SETPCAP)");
        return;
    }
    in_child(|| {
        let caps = spec();
        drop_bounding(&caps).map_err(|e| format!("drop_bounding: {e:?}"))?;
        set_keep_caps(true).map_err(|e| format!("{e:?}"))?;
        let id = nix::unistd::Gid::from_raw(65534);
        nix::unistd::setresgid(id, id, id).map_err(|e| format!("setresgid: {e}"))?;
        let id = nix::unistd::Uid::from_raw(65534);
        nix::unistd::setresuid(id, id, id).map_err(|e| format!("setresuid: {e}"))?;
        // setuid away from 0 clears the effective set even with KEEPCAPS.
        check("CapEff", 0)?;
        apply_sets(&caps).map_err(|e| format!("apply_sets: {e:?}"))?;
        check_all()
    });
}

#[test]
fn missing_sets_mean_empty() {
    if !is_root() {
        println!("SKIP: needs root (CAP_SETPCAP to drop from the bounding set)");
        return;
    }
    in_child(|| {
        let mut caps = LinuxCapabilities::default();
        caps.set_bounding(set(&[C::Kill]));
        caps.set_effective(None);
        caps.set_permitted(set(&[C::Kill]));
        caps.set_inheritable(None);
        caps.set_ambient(None);
        drop_bounding(&caps).map_err(|e| format!("drop_bounding: {e:?}"))?;
        apply_sets(&caps).map_err(|e| format!("apply_sets: {e:?}"))?;
        check("CapBnd", KILL)?;
        check("CapPrm", KILL)?;
        check("CapEff", 0)?;
        check("CapInh", 0)?;
        check("CapAmb", 0)
    });
}

#[test]
fn ambient_without_inheritable_is_a_named_error() {
    if !is_root() {
        println!("SKIP: needs root");
        return;
    }
    in_child(|| {
        let mut caps = spec();
        caps.set_inheritable(set(&[C::Kill]));
        match apply_sets(&caps) {
            Err(e @ CapsError::RaiseAmbient { .. }) => {
                let text = e.to_string();
                if text.contains("cap_net_bind_service") || text.contains("CAP_NET_BIND_SERVICE") {
                    Ok(())
                } else {
                    Err(format!("error does not name the cap: {text}"))
                }
            }
            other => Err(format!("expected RaiseAmbient, got {other:?}")),
        }
    });
}

#[test]
fn caps_above_cap_last_cap_are_skipped() {
    let all = set(&[C::Chown, C::Bpf, C::CheckpointRestore]);
    // CAP_BPF is 39 and CAP_CHECKPOINT_RESTORE 40: a kernel whose last cap is 38 knows neither.
    let got = kernel_set(all.as_ref(), 38).unwrap();
    assert_eq!(got, [caps::Capability::CAP_CHOWN].into_iter().collect());
    let got = kernel_set(all.as_ref(), 40).unwrap();
    assert_eq!(got.len(), 3);
}

#[test]
fn last_cap_reads_the_kernel_value() {
    let want: u8 = std::fs::read_to_string(CAP_LAST_CAP_PATH)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(last_cap().unwrap(), want);
    // Every kernel berth supports knows at least CAP_AUDIT_READ (37).
    assert!(want >= 37);
}

#[test]
fn every_oci_capability_maps_to_the_same_number() {
    let pairs = [
        (C::Chown, 0),
        (C::DacOverride, 1),
        (C::Kill, 5),
        (C::Setpcap, 8),
        (C::NetBindService, 10),
        (C::SysAdmin, 21),
        (C::SysResource, 24),
        (C::AuditWrite, 29),
        (C::Setfcap, 31),
        (C::Syslog, 34),
        (C::AuditRead, 37),
        (C::Perfmon, 38),
        (C::Bpf, 39),
        (C::CheckpointRestore, 40),
    ];
    for (cap, number) in pairs {
        assert_eq!(to_kernel_cap(cap).unwrap().index(), number, "{cap}");
    }
}

#[test]
fn validate_names_names_the_unknown_capability() {
    let spec = serde_json::json!({
        "process": {"capabilities": {
            "bounding": ["CAP_CHOWN", "kill", "SYS_ADMIN"],
            "effective": ["CAP_CHOWN", "CAP_FOO"],
        }}
    });
    let err = validate_names(&spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unknown capability "CAP_FOO" in process.capabilities.effective"#
    );
    // The same JSON fails oci-spec's deserialization too, which is why the runtime calls
    // validate_names first.
    let caps_json = spec["process"]["capabilities"].clone();
    assert!(serde_json::from_value::<LinuxCapabilities>(caps_json).is_err());

    let ok = serde_json::json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN"]}}});
    validate_names(&ok).unwrap();
    validate_names(&serde_json::json!({"process": {}})).unwrap();
    let bad = serde_json::json!({"process": {"capabilities": {"ambient": "CAP_CHOWN"}}});
    assert!(matches!(
        validate_names(&bad),
        Err(CapsError::NotAList { set: "ambient" })
    ));
}

#[test]
fn granting_a_capability_the_runtime_lacks_is_a_named_error() {
    if !is_root() {
        println!("SKIP: needs root");
        return;
    }
    in_child(|| {
        // Make sure this child lacks CAP_SYS_RESOURCE, whatever the host grants.
        caps::drop(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .and_then(|()| {
            caps::drop(
                None,
                caps::CapSet::Permitted,
                caps::Capability::CAP_SYS_RESOURCE,
            )
        })
        .map_err(|e| e.to_string())?;
        let mut caps = spec();
        caps.set_permitted(set(&[C::Chown, C::SysResource]));
        caps.set_effective(set(&[C::Chown]));
        match apply_sets(&caps) {
            Err(CapsError::NotHeld(names)) if names == "CAP_SYS_RESOURCE" => Ok(()),
            other => Err(format!("expected NotHeld(CAP_SYS_RESOURCE), got {other:?}")),
        }
    });
}
