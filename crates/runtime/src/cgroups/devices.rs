//! Device access rules: the v1 `devices.allow`/`devices.deny` line format, and the check for
//! rule lists that amount to "allow everything" (all v2 can do without an eBPF program).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// One rule in the devices cgroup's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// `true` → `devices.allow`, `false` → `devices.deny`.
    pub allow: bool,
    /// `'a'` (all), `'c'` or `'b'`.
    pub kind: char,
    /// `None` = any major.
    pub major: Option<u32>,
    /// `None` = any minor.
    pub minor: Option<u32>,
    /// Subset of `rwm`.
    pub access: String,
}

impl DeviceRule {
    /// Convert an OCI rule: type `u` is a char device, a missing type is `a`, negative or missing
    /// numbers are wildcards, empty access means `rwm`. FIFOs (`p`) have no device-cgroup form.
    pub fn from_oci(rule: &LinuxDeviceCgroup) -> Result<Self, CgroupError> {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => {
                return Err(CgroupError::Invalid {
                    what: "device rule".into(),
                    why: "type 'p' (fifo) cannot be expressed in the devices cgroup".into(),
                });
            }
        };
        let num = |n: Option<i64>| -> Result<Option<u32>, CgroupError> {
            match n {
                None => Ok(None),
                Some(v) if v < 0 => Ok(None),
                Some(v) => u32::try_from(v)
                    .map(Some)
                    .map_err(|_| CgroupError::Invalid {
                        what: "device rule".into(),
                        why: format!("device number {v} out of range"),
                    }),
            }
        };
        let access = rule.access().as_deref().unwrap_or("").to_owned();
        let access = if access.is_empty() {
            "rwm".to_owned()
        } else {
            access
        };
        if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(CgroupError::Invalid {
                what: "device rule".into(),
                why: format!("access {access:?} is not a subset of \"rwm\""),
            });
        }
        Ok(DeviceRule {
            allow: rule.allow(),
            kind,
            major: num(rule.major())?,
            minor: num(rule.minor())?,
            access,
        })
    }

    /// The line for `devices.allow`/`devices.deny`, e.g. `c 1:3 rwm`, `b 8:* r`, `a *:* rwm`.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_owned(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// The file the line goes to.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }

    /// An `a` rule: it resets the whole policy to allow-all or deny-all, whatever its numbers.
    fn is_all(&self) -> bool {
        self.kind == 'a'
    }
}

/// Convert every rule, keeping order.
pub fn convert(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    rules.iter().map(DeviceRule::from_oci).collect()
}

/// Whether the rules, applied in order from the default (allow everything), still allow every
/// access to every device — the only outcome reachable on cgroup v2 without an eBPF program.
pub fn is_allow_all(rules: &[DeviceRule]) -> bool {
    // Rules before the last "a" rule are reset by it.
    let start = rules.iter().rposition(DeviceRule::is_all).unwrap_or(0);
    rules[start..].iter().all(|r| r.allow)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        t: LinuxDeviceType,
        ma: Option<i64>,
        mi: Option<i64>,
        acc: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(t)
            .access(acc);
        if let Some(m) = ma {
            b = b.major(m);
        }
        if let Some(m) = mi {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    #[test]
    fn v1_lines() {
        let r =
            DeviceRule::from_oci(&rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm")).unwrap();
        assert_eq!(
            (r.v1_file(), r.v1_line().as_str()),
            ("devices.allow", "c 1:3 rwm")
        );
        let r = DeviceRule::from_oci(&rule(false, LinuxDeviceType::A, None, None, "")).unwrap();
        assert_eq!(
            (r.v1_file(), r.v1_line().as_str()),
            ("devices.deny", "a *:* rwm")
        );
        let r =
            DeviceRule::from_oci(&rule(true, LinuxDeviceType::B, Some(8), Some(-1), "r")).unwrap();
        assert_eq!(r.v1_line(), "b 8:* r");
        let r = DeviceRule::from_oci(&rule(true, LinuxDeviceType::U, None, Some(5), "w")).unwrap();
        assert_eq!(r.v1_line(), "c *:5 w");
        assert!(DeviceRule::from_oci(&rule(true, LinuxDeviceType::P, None, None, "r")).is_err());
        assert!(DeviceRule::from_oci(&rule(true, LinuxDeviceType::C, None, None, "rx")).is_err());
        // No type at all means "a".
        let r = DeviceRule::from_oci(
            &LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .build()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.v1_line(), "a *:* rwm");
    }

    #[test]
    fn allow_all_detection() {
        let conv = |v: Vec<LinuxDeviceCgroup>| convert(&v).unwrap();
        assert!(is_allow_all(&[]));
        assert!(is_allow_all(&conv(vec![rule(
            true,
            LinuxDeviceType::A,
            None,
            None,
            "rwm"
        )])));
        assert!(is_allow_all(&conv(vec![
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        ])));
        // Docker's default: deny all, then allow a list.
        assert!(!is_allow_all(&conv(vec![
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        ])));
        assert!(!is_allow_all(&conv(vec![rule(
            false,
            LinuxDeviceType::C,
            Some(1),
            Some(3),
            "w"
        )])));
    }
}
