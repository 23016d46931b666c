//! `berth login` / `logout` against a registry that requires basic auth: berthd checks the
//! credentials (`POST /auth`), the CLI stores them in docker's config.json format.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../daemon/tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use common::{Daemon, stderr, stdout};

#[test]
fn login_and_logout_like_docker() {
    if !registry::have_registry() {
        eprintln!("SKIP: needs {}", registry::REGISTRY_BIN);
        return;
    }
    let reg = registry::Registry::start_with_auth(Some(("berth", "s3cret")));
    let host = reg.host();
    let d = Daemon::start();
    let login = |pass: &str| {
        d.berth()
            .args(["login", "-u", "berth", "--password-stdin", &host])
            .write_stdin(format!("{pass}\n"))
            .output()
            .unwrap()
    };
    let bad = login("wrong");
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("401 Unauthorized"),
        "{}",
        stderr(&bad)
    );
    let cfg_path = d.config_dir.join("config.json");
    assert!(
        !std::fs::read_to_string(&cfg_path)
            .unwrap_or_default()
            .contains(&host),
        "refused credentials are not stored"
    );

    let good = login("s3cret");
    assert!(good.status.success(), "{}", stderr(&good));
    assert!(
        stdout(&good).contains("Login Succeeded"),
        "{}",
        stdout(&good)
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    // base64("berth:s3cret"), as docker writes it.
    assert_eq!(cfg["auths"][&host]["auth"], "YmVydGg6czNjcmV0");

    let out = d.berth().args(["logout", &host]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("Removing login credentials for {host}")));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    assert!(cfg["auths"].get(&host).is_none(), "{cfg}");
}
