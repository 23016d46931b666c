//! Property test over `POST /containers/create`: arbitrary JSON shaped like Docker's create
//! body (known field names with values of any type) never gets a 5xx, never panics or wedges
//! berthd, and every answer is Docker's `{"message"}` JSON or a created id.

#![allow(clippy::unwrap_used)]

mod common;

use common::Berthd;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const FIELDS: &[&str] = &[
    "Image",
    "Cmd",
    "Entrypoint",
    "Env",
    "WorkingDir",
    "User",
    "Hostname",
    "Domainname",
    "Tty",
    "OpenStdin",
    "AttachStdout",
    "Labels",
    "ExposedPorts",
    "StopSignal",
    "StopTimeout",
    "Healthcheck",
    "Volumes",
    "NetworkDisabled",
    "HostConfig",
    "NetworkingConfig",
];
const HOST_FIELDS: &[&str] = &[
    "Binds",
    "Memory",
    "CpuShares",
    "NanoCpus",
    "PidsLimit",
    "Ulimits",
    "CapAdd",
    "CapDrop",
    "Privileged",
    "ReadonlyRootfs",
    "NetworkMode",
    "RestartPolicy",
    "AutoRemove",
    "Mounts",
    "ShmSize",
    "Sysctls",
    "SecurityOpt",
    "LogConfig",
    "Devices",
    "Tmpfs",
    "PortBindings",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(json!("busybox")),
        Just(json!(["sh", "-c", "true"])),
        Just(json!("-1")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Value> {
    let host = prop::collection::btree_map(prop::sample::select(HOST_FIELDS), value(), 0..5);
    (
        prop::collection::btree_map(prop::sample::select(FIELDS), value(), 0..6),
        host,
        any::<bool>(),
    )
        .prop_map(|(top, host, with_image)| {
            let mut m: Map<String, Value> =
                top.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if with_image {
                m.insert("Image".into(), json!("busybox"));
            }
            if !host.is_empty() {
                m.insert(
                    "HostConfig".into(),
                    Value::Object(host.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
                );
            }
            Value::Object(m)
        })
}

#[test]
fn create_never_answers_5xx_or_wedges() {
    let d = Berthd::start();
    d.load_busybox();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&body(), |b| {
            let r = d.post_json("/v1.41/containers/create", &b);
            prop_assert!(r.status < 500, "status {} for {b}: {}", r.status, r.text());
            let j = r.json();
            prop_assert!(
                j.get("Id").is_some() || j.get("message").is_some(),
                "answer without Id or message for {b}: {}",
                r.text()
            );
            if let Some(id) = j.get("Id").and_then(Value::as_str) {
                let rm = d.request("DELETE", &format!("/v1.41/containers/{id}?force=1"), None);
                prop_assert!(rm.status < 300, "rm {id}: {}", rm.text());
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(d.get("/_ping").status, 200);
}
