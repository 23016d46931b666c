#![allow(clippy::unwrap_used)]

use super::*;
use crate::security::test_support::in_child;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use serde_json::json;

fn rlimit(typ: &str, soft: u64, hard: u64) -> PosixRlimit {
    serde_json::from_value(json!({"type": typ, "soft": soft, "hard": hard})).unwrap()
}

/// Make raising hard limits impossible in this child, as on hosts without CAP_SYS_RESOURCE.
fn lose_cap_sys_resource() -> Result<(), String> {
    caps::drop(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .map_err(|e| format!("dropping CAP_SYS_RESOURCE: {e}"))
}

fn expect_nofile(soft: u64, hard: u64) -> Result<(), String> {
    let got = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    (got == (soft, hard))
        .then_some(())
        .ok_or(format!("RLIMIT_NOFILE is {got:?}, want {:?}", (soft, hard)))
}

#[test]
fn raising_the_hard_limit_is_clamped_with_a_warning() {
    in_child(|| {
        // A known starting point below anything a host has; lowering always works.
        setrlimit(Resource::RLIMIT_NOFILE, 1000, 5000).map_err(|e| e.to_string())?;
        lose_cap_sys_resource()?;
        let warnings = apply(&[rlimit("RLIMIT_NOFILE", 1_048_576, 1_048_576)])
            .map_err(|e| format!("apply: {e:?}"))?;
        let want = ["rlimit RLIMIT_NOFILE: hard limit 1048576 exceeds the allowed 5000, clamped"];
        if warnings != want {
            return Err(format!("warnings {warnings:?}, want {want:?}"));
        }
        expect_nofile(5000, 5000)
    });
}

#[test]
fn clamping_keeps_a_lower_soft_limit() {
    in_child(|| {
        setrlimit(Resource::RLIMIT_NOFILE, 1000, 5000).map_err(|e| e.to_string())?;
        lose_cap_sys_resource()?;
        let warnings = apply(&[rlimit("RLIMIT_NOFILE", 2048, 1_048_576)])
            .map_err(|e| format!("apply: {e:?}"))?;
        if warnings.len() != 1 {
            return Err(format!("warnings {warnings:?}"));
        }
        expect_nofile(2048, 5000)
    });
}

#[test]
fn the_machine_nofile_hard_limit_clamps_docker_style_ulimits() {
    // On the development machines: no CAP_SYS_RESOURCE and a NOFILE hard limit of 20000.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard >= 1_048_576 {
        println!("SKIP: NOFILE hard limit {hard} is already at least 1048576");
        return;
    }
    in_child(|| {
        lose_cap_sys_resource()?;
        let warnings = apply(&[rlimit("RLIMIT_NOFILE", 1_048_576, 1_048_576)])
            .map_err(|e| format!("apply: {e:?}"))?;
        let want =
            format!("rlimit RLIMIT_NOFILE: hard limit 1048576 exceeds the allowed {hard}, clamped");
        if warnings != [want.clone()] {
            return Err(format!("warnings {warnings:?}, want [{want:?}]"));
        }
        expect_nofile(hard, hard)
    });
}

#[test]
fn lower_limits_are_set_exactly() {
    in_child(|| {
        let warnings = apply(&[
            rlimit("RLIMIT_NOFILE", 512, 1024),
            rlimit("RLIMIT_CORE", 0, 0),
            rlimit("RLIMIT_MSGQUEUE", 4096, 8192),
        ])
        .map_err(|e| format!("apply: {e:?}"))?;
        if !warnings.is_empty() {
            return Err(format!("unexpected warnings {warnings:?}"));
        }
        expect_nofile(512, 1024)?;
        let core = getrlimit(Resource::RLIMIT_CORE).map_err(|e| e.to_string())?;
        let mq = getrlimit(Resource::RLIMIT_MSGQUEUE).map_err(|e| e.to_string())?;
        if core != (0, 0) || mq != (4096, 8192) {
            return Err(format!("RLIMIT_CORE {core:?}, RLIMIT_MSGQUEUE {mq:?}"));
        }
        Ok(())
    });
}

#[test]
fn the_current_limit_is_never_an_error() {
    in_child(|| {
        lose_cap_sys_resource()?;
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
        let (ssoft, shard) = getrlimit(Resource::RLIMIT_STACK).map_err(|e| e.to_string())?;
        let warnings = apply(&[
            rlimit("RLIMIT_NOFILE", soft, hard),
            rlimit("RLIMIT_STACK", ssoft, shard),
        ])
        .map_err(|e| format!("apply: {e:?}"))?;
        if !warnings.is_empty() {
            return Err(format!("unexpected warnings {warnings:?}"));
        }
        expect_nofile(soft, hard)
    });
}

#[test]
fn soft_above_hard_is_an_error() {
    let err = apply(&[rlimit("RLIMIT_NOFILE", 2048, 1024)]).unwrap_err();
    assert!(matches!(err, RlimitError::SoftAboveHard { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "rlimit RLIMIT_NOFILE: soft limit 2048 exceeds the hard limit 1024"
    );
}

#[test]
fn unknown_types_are_errors() {
    let spec = json!({"process": {"rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
        {"type": "RLIMIT_FOO", "soft": 1, "hard": 1}
    ]}});
    let err = validate_types(&spec).unwrap_err();
    assert_eq!(err.to_string(), r#"unknown rlimit type "RLIMIT_FOO""#);
    // oci-spec refuses it as well, so apply() can never see one.
    assert!(serde_json::from_value::<PosixRlimit>(spec["process"]["rlimits"][1].clone()).is_err());
    validate_types(&json!({"process": {"rlimits": [{"type": "RLIMIT_RTTIME"}]}})).unwrap();
    validate_types(&json!({"process": {}})).unwrap();
    assert!(matches!(
        validate_types(&json!({"process": {"rlimits": [{"soft": 1}]}})),
        Err(RlimitError::Malformed)
    ));
}
