//! The bollard-stubs models accept what the real docker CLI sends.

#![allow(clippy::unwrap_used)]

use berth_api::models::{ContainerCreateBody, HostConfig};

#[test]
fn docker_cli_28_create_body_decodes() {
    let raw = include_str!("data/docker-cli-28-run-create.json");
    let body: ContainerCreateBody = serde_json::from_str(raw).unwrap();
    assert_eq!(body.image.as_deref(), Some("busybox"));
    assert_eq!(
        body.cmd.as_deref(),
        Some(&["echo".to_owned(), "hi".to_owned()][..])
    );
    let hc: HostConfig = body.host_config.unwrap();
    assert_eq!(hc.auto_remove, Some(true));
    assert_eq!(hc.network_mode.as_deref(), Some("default"));
}
