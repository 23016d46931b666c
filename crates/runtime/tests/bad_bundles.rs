//! Bad bundles fail `create` with a clear message and leave nothing behind: no state dir, no
//! host mount, no cgroup, no process.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod rt_support;
use rt_support::*;

fn assert_rejected(rt: &Rt, bundle: &std::path::Path, want: &str) {
    let id = rt.id("bad");
    // Only mounts that involve this test's paths: other processes on the machine may mount
    // unrelated things meanwhile.
    let ours = |m: String| {
        m.lines()
            .filter(|l| l.contains(rt.tmp.path().to_str().unwrap()) || l.contains(&id))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let mounts_before = ours(host_mounts());
    let (ok, err, _) = rt.detached(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(!ok, "create of a bad bundle succeeded");
    assert!(err.contains(want), "expected {want:?} in: {err}");
    assert!(!rt.state_dir(&id).exists(), "state dir left behind");
    assert_eq!(ours(host_mounts()), mounts_before, "host mounts changed");
    assert!(
        cgroup_dirs(&format!("berth/{id}")).is_empty(),
        "cgroup left behind"
    );
    assert!(
        processes_with_cmdline(&id).is_empty(),
        "process left behind"
    );
}

#[test]
fn missing_rootfs() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| s["root"]["path"] = json!("nope"));
    assert_rejected(&rt, &b, "does not exist or is not a directory");
}

#[test]
fn invalid_json() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |_| {});
    std::fs::write(
        b.join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  oops\n}",
    )
    .unwrap();
    assert_rejected(&rt, &b, "line 3 column");
}

#[test]
fn missing_config() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |_| {});
    std::fs::remove_file(b.join("config.json")).unwrap();
    assert_rejected(&rt, &b, "config.json");
}

#[test]
fn unknown_namespace_type() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| {
        s["linux"]["namespaces"][0]["type"] = json!("bogus")
    });
    assert_rejected(&rt, &b, "unknown namespace type \"bogus\"");
}

#[test]
fn duplicate_namespace() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| {
        s["linux"]["namespaces"][1]["type"] = json!("pid")
    });
    assert_rejected(&rt, &b, "listed more than once");
}

#[test]
fn relative_mount_destination() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| {
        s["mounts"][0]["destination"] = json!("proc")
    });
    assert_rejected(&rt, &b, "mounts[0].destination must be an absolute path");
}

#[test]
fn unknown_capability() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| {
        s["process"]["capabilities"]["bounding"][0] = json!("CAP_TELEPORT")
    });
    assert_rejected(&rt, &b, "unknown capability \"CAP_TELEPORT\"");
}

#[test]
fn relative_cwd() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| s["process"]["cwd"] = json!("tmp"));
    assert_rejected(&rt, &b, "process.cwd must be an absolute path");
}

#[test]
fn failure_inside_the_init_is_reported_and_cleaned_up() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |s| {
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt/x", "type": "bind",
            "source": "/nonexistent-berth-source", "options": ["bind"]
        }));
    });
    assert_rejected(&rt, &b, "/nonexistent-berth-source");
}

#[test]
fn invalid_id() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["true"], |_| {});
    let (ok, err, _) = rt.detached(&["create", "--bundle", b.to_str().unwrap(), "../evil"]);
    assert!(!ok);
    assert!(err.contains("invalid container id"), "{err}");
    assert!(!rt.root.join("../evil").exists());
}
