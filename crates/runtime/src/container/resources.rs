//! The cgroup resources the runtime writes: the spec's, plus the device rules every container
//! needs to work (as runc's `AllowedDevices`): mknod of any device, the standard /dev nodes,
//! ptys, and the spec's own `linux.devices`. Without them a deny-all device rule (runc's and
//! Docker's default) would stop the init from creating /dev/null.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources, Spec};

/// (type, major, minor, access); -1 is a wildcard.
const ALLOWED: [(&str, i64, i64, &str); 11] = [
    ("c", -1, -1, "m"),
    ("b", -1, -1, "m"),
    ("c", 1, 3, "rwm"),
    ("c", 1, 8, "rwm"),
    ("c", 1, 7, "rwm"),
    ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"),
    ("c", 1, 9, "rwm"),
    ("c", 136, -1, "rwm"),
    ("c", 5, 2, "rwm"),
    ("c", 10, 200, "rwm"),
];

fn rule(typ: &str, major: i64, minor: i64, access: &str) -> Option<LinuxDeviceCgroup> {
    let mut v = serde_json::json!({"allow": true, "type": typ, "access": access});
    if major >= 0 {
        v["major"] = major.into();
    }
    if minor >= 0 {
        v["minor"] = minor.into();
    }
    serde_json::from_value(v).ok()
}

/// The spec's resources with the always-allowed device rules appended (later rules win).
pub fn effective(spec: &Spec) -> Option<LinuxResources> {
    let linux = spec.linux().as_ref()?;
    let mut res = linux.resources().clone()?;
    let mut devices = res.devices().clone().unwrap_or_default();
    devices.extend(
        ALLOWED
            .iter()
            .filter_map(|(t, ma, mi, a)| rule(t, *ma, *mi, a)),
    );
    for d in linux.devices().iter().flatten() {
        devices.push(LinuxDeviceCgroup::from(d));
    }
    res.set_devices(Some(devices));
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_defaults_after_deny_all() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "r"},
            "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}
        }))
        .unwrap();
        let res = effective(&spec).unwrap();
        let devs = res.devices().as_ref().unwrap();
        assert!(!devs[0].allow());
        assert_eq!(devs.len(), 1 + ALLOWED.len());
        assert!(
            devs.iter()
                .any(|d| d.major() == Some(1) && d.minor() == Some(3) && d.allow())
        );
    }
}
