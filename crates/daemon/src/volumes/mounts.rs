//! A container's mount points: parsed once at create from `--volumes-from`, `Binds` (`-v`),
//! `Mounts` (`--mount`) and the image's/config's `Volumes`, in Docker's order and with its
//! rules, then persisted in `config.v2.json` (`MountPoints`, keyed by destination) so start,
//! inspect and removal never parse them again.

use std::collections::BTreeMap;

use berth_api::ApiError;
use berth_api::models::{ContainerConfig, HostConfig, Mount, MountPoint, MountType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::store::{LOCAL_DRIVER, validate_name};

/// One mount point of a container (Docker's `volume/mounts.MountPoint`, plus what berthd
/// needs to apply it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountRecord {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Volume name (volumes only; empty until an anonymous volume is created).
    #[serde(default)]
    pub name: String,
    /// Host path: the bind source or the volume's `_data`.
    #[serde(default)]
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// Volume driver (volumes only).
    #[serde(default)]
    pub driver: String,
    /// The mode string as given (`ro`, `z`, `nocopy`, …).
    #[serde(default)]
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Bind propagation (binds only).
    #[serde(default)]
    pub propagation: String,
    /// Copy the image's content at the destination into the volume when it is empty.
    #[serde(default)]
    pub copy_data: bool,
    /// The volume was created for this mount (`rm -v` and `--rm` remove it).
    #[serde(default)]
    pub anonymous: bool,
    /// Bind without MS_REC (`bind-recursive=disabled`).
    #[serde(default)]
    pub non_recursive: bool,
    /// tmpfs mount data (`size=…,mode=…`).
    #[serde(default)]
    pub tmpfs_data: String,
    /// Labels for a volume created by this mount (`--mount volume-label=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_labels: Option<BTreeMap<String, String>>,
    /// DriverOpts for a volume created by this mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<BTreeMap<String, String>>,
}

impl MountRecord {
    /// A volume mount (named or anonymous).
    pub fn is_volume(&self) -> bool {
        self.kind == "volume"
    }
}

/// Mount points by destination.
pub type MountPoints = BTreeMap<String, MountRecord>;

fn invalid_spec(raw: &str) -> ApiError {
    ApiError::invalid(format!("invalid volume specification: '{raw}'"))
}

fn mount_config(kind: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("invalid mount config for type \"{kind}\": {msg}"))
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Docker's `linuxValidMountMode`: comma-separated, at most one of each kind.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for o in mode.split(',') {
        let kind = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            p if PROPAGATIONS.contains(&p) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[kind] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

/// `path.Clean` for absolute container paths.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn check_destination(dest: &str) -> Result<String, String> {
    if !dest.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{dest}' mount path must be absolute"
        ));
    }
    let c = clean(dest);
    if c == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(c)
}

/// Parses one `Binds` entry (`src:dst[:mode]` or `dst`).
pub fn parse_bind(raw: &str) -> Result<MountRecord, ApiError> {
    let arr: Vec<&str> = raw.splitn(4, ':').collect();
    if arr[0].is_empty() {
        return Err(invalid_spec(raw));
    }
    let (source, target, mode) = match arr.len() {
        1 => ("", arr[0], ""),
        2 => {
            if valid_mode(arr[1]) {
                return Err(invalid_spec(raw));
            }
            (arr[0], arr[1], "")
        }
        3 => (arr[0], arr[1], arr[2]),
        _ => return Err(invalid_spec(raw)),
    };
    if !valid_mode(mode) {
        return Err(ApiError::invalid(format!("invalid mode: {mode}")));
    }
    let destination = check_destination(target)
        .map_err(|e| ApiError::invalid(format!("invalid volume specification: '{raw}': {e}")))?;
    let opts: Vec<&str> = mode.split(',').collect();
    let rw = !opts.contains(&"ro");
    if source.starts_with('/') {
        let propagation = opts
            .iter()
            .find(|o| PROPAGATIONS.contains(o))
            .copied()
            .unwrap_or("rprivate");
        return Ok(MountRecord {
            kind: "bind".into(),
            source: clean(source),
            destination,
            mode: mode.to_owned(),
            rw,
            propagation: propagation.to_owned(),
            ..Default::default()
        });
    }
    if opts.iter().any(|o| PROPAGATIONS.contains(o)) {
        return Err(ApiError::invalid(format!(
            "invalid volume specification: '{raw}': propagation is only supported for binds"
        )));
    }
    if !source.is_empty() {
        validate_name(source).map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    Ok(MountRecord {
        kind: "volume".into(),
        name: source.to_owned(),
        destination,
        driver: LOCAL_DRIVER.into(),
        // Docker sets the SELinux-relabel mode on local volumes given without one.
        mode: if mode.is_empty() {
            "z".into()
        } else {
            mode.to_owned()
        },
        rw,
        copy_data: !opts.contains(&"nocopy"),
        ..Default::default()
    })
}

/// Docker's tmpfs size suffixes (`ConvertTmpfsOptions`).
fn tmpfs_data(m: &Mount) -> String {
    let mut o = Vec::new();
    if m.read_only == Some(true) {
        o.push("ro".to_owned());
    }
    if let Some(t) = &m.tmpfs_options {
        if let Some(mode) = t.mode.filter(|m| *m != 0) {
            o.push(format!("mode={mode:o}"));
        }
        if let Some(size) = t.size_bytes.filter(|s| *s != 0) {
            let (mut n, mut suffix) = (size, "");
            for (s, d) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
                if size % d == 0 {
                    n = size / d;
                    suffix = s;
                    break;
                }
            }
            o.push(format!("size={n}{suffix}"));
        }
    }
    o.join(",")
}

/// Parses one `Mounts` entry (`--mount`).
pub fn parse_mount(m: &Mount) -> Result<MountRecord, ApiError> {
    let kind = m.typ.map(|t| t.to_string()).unwrap_or_default();
    let target = m.target.clone().unwrap_or_default();
    if target.is_empty() {
        return Err(mount_config(&kind, "field Target must not be empty"));
    }
    let destination = check_destination(&target).map_err(|e| mount_config(&kind, e))?;
    let source = m.source.clone().unwrap_or_default();
    let ro = m.read_only == Some(true);
    match m.typ {
        Some(MountType::BIND) => {
            if source.is_empty() {
                return Err(mount_config(&kind, "field Source must not be empty"));
            }
            if m.volume_options.is_some() {
                return Err(mount_config(
                    &kind,
                    "field VolumeOptions must not be specified",
                ));
            }
            if !source.starts_with('/') {
                return Err(mount_config(
                    &kind,
                    format!("invalid mount path: '{source}' mount path must be absolute"),
                ));
            }
            let create = m
                .bind_options
                .as_ref()
                .and_then(|b| b.create_mountpoint)
                .unwrap_or(false);
            if !create && std::fs::symlink_metadata(&source).is_err() {
                return Err(mount_config(
                    &kind,
                    format!("bind source path does not exist: {source}"),
                ));
            }
            let bo = m.bind_options.clone().unwrap_or_default();
            let propagation = bo
                .propagation
                .map(|p| p.to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "rprivate".into());
            Ok(MountRecord {
                kind,
                source: clean(&source),
                destination,
                rw: !ro,
                propagation,
                non_recursive: bo.non_recursive == Some(true),
                ..Default::default()
            })
        }
        Some(MountType::VOLUME) => {
            if m.bind_options.is_some() {
                return Err(mount_config(
                    &kind,
                    "field BindOptions must not be specified",
                ));
            }
            if source.is_empty() && ro {
                return Err(mount_config(
                    &kind,
                    "must not set ReadOnly mode when using anonymous volumes",
                ));
            }
            if !source.is_empty() {
                validate_name(&source).map_err(|e| mount_config(&kind, e))?;
            }
            let vo = m.volume_options.clone().unwrap_or_default();
            if vo.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(mount_config(
                    &kind,
                    "VolumeOptions.Subpath is not supported (API 1.45; berthd serves 1.41)",
                ));
            }
            let driver = vo
                .driver_config
                .as_ref()
                .and_then(|d| d.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| LOCAL_DRIVER.into());
            if driver != LOCAL_DRIVER {
                return Err(ApiError::not_found(format!(
                    "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
                )));
            }
            Ok(MountRecord {
                kind,
                name: source,
                destination,
                driver,
                mode: "z".into(),
                rw: !ro,
                copy_data: vo.no_copy != Some(true),
                volume_labels: vo.labels.map(|l| l.into_iter().collect()),
                volume_options: vo
                    .driver_config
                    .and_then(|d| d.options)
                    .map(|o| o.into_iter().collect()),
                ..Default::default()
            })
        }
        Some(MountType::TMPFS) => {
            if !source.is_empty() {
                return Err(mount_config(&kind, "field Source must not be specified"));
            }
            if m.bind_options.is_some() {
                return Err(mount_config(
                    &kind,
                    "field BindOptions must not be specified",
                ));
            }
            Ok(MountRecord {
                kind,
                destination,
                rw: !ro,
                tmpfs_data: tmpfs_data(m),
                ..Default::default()
            })
        }
        _ => Err(mount_config(&kind, "mount type unknown")),
    }
}

/// Parses a `--volumes-from` entry: container and mode (`rw` when absent).
pub fn parse_volumes_from(spec: &str) -> Result<(String, String), ApiError> {
    if spec.is_empty() {
        return Err(ApiError::invalid(
            "volumes-from specification cannot be an empty string",
        ));
    }
    let (id, mode) = spec.split_once(':').unwrap_or((spec, ""));
    if mode.is_empty() {
        return Ok((id.to_owned(), "rw".to_owned()));
    }
    let bad = !valid_mode(mode)
        || mode
            .split(',')
            .any(|o| PROPAGATIONS.contains(&o) || o == "nocopy");
    if bad {
        return Err(ApiError::invalid(format!("invalid mode: {mode}")));
    }
    Ok((id.to_owned(), mode.to_owned()))
}

/// Every mount point of a new container, in Docker's order of precedence: volumes-from,
/// then binds and mounts (a duplicate destination among these two is an error), then the
/// config's and image's `Volumes` for destinations still free. `from` looks up a
/// `--volumes-from` container's mount points.
pub fn plan(
    config: &ContainerConfig,
    host: &HostConfig,
    mut from: impl FnMut(&str) -> Result<MountPoints, ApiError>,
) -> Result<MountPoints, ApiError> {
    let mut points = MountPoints::new();
    for spec in host.volumes_from.as_deref().unwrap_or(&[]) {
        let (id, mode) = parse_volumes_from(spec)?;
        let ro = mode.split(',').any(|o| o == "ro");
        for (dest, m) in from(&id)? {
            let copy = MountRecord {
                rw: m.rw && !ro,
                mode: String::new(),
                copy_data: false,
                ..m
            };
            points.insert(dest, copy);
        }
    }
    let mut explicit = std::collections::BTreeSet::new();
    let binds = host
        .binds
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|b| parse_bind(b));
    let mounts = host
        .mounts
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(parse_mount);
    for m in binds.chain(mounts) {
        let m = m?;
        if !explicit.insert(m.destination.clone()) {
            return Err(ApiError::invalid(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
        points.insert(m.destination.clone(), m);
    }
    for dest in config.volumes.as_deref().unwrap_or(&[]) {
        let Ok(dest) = check_destination(dest) else {
            return Err(ApiError::invalid(format!(
                "invalid volume specification: '{dest}'"
            )));
        };
        points.entry(dest.clone()).or_insert_with(|| MountRecord {
            kind: "volume".into(),
            destination: dest,
            driver: LOCAL_DRIVER.into(),
            rw: true,
            copy_data: true,
            ..Default::default()
        });
    }
    // `--volume-driver` names the driver for `-v` and image volumes; only `local` exists.
    if let Some(driver) = host
        .volume_driver
        .as_deref()
        .filter(|v| !v.is_empty() && *v != LOCAL_DRIVER)
        && points
            .values()
            .any(|m| m.is_volume() && m.driver == LOCAL_DRIVER && !explicit_mount(host, m))
    {
        return Err(ApiError::not_found(format!(
            "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
        )));
    }
    Ok(points)
}

/// Whether `m` came from `HostConfig.Mounts` (which carries its own driver config).
fn explicit_mount(host: &HostConfig, m: &MountRecord) -> bool {
    host.mounts
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .any(|x| x.target.as_deref().map(clean).as_deref() == Some(m.destination.as_str()))
}

/// A container's mount points; records written before berthd kept `MountPoints` get theirs
/// from `Binds` and `Mounts` (only binds and tmpfs existed then; anything else is skipped).
pub fn of_record<'a>(
    points: &'a MountPoints,
    host: &HostConfig,
) -> std::borrow::Cow<'a, MountPoints> {
    let legacy = host.binds.as_ref().is_some_and(|b| !b.is_empty())
        || host.mounts.as_ref().is_some_and(|m| !m.is_empty());
    if !points.is_empty() || !legacy {
        return std::borrow::Cow::Borrowed(points);
    }
    let binds = host
        .binds
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|b| parse_bind(b));
    let mounts = host
        .mounts
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(parse_mount);
    std::borrow::Cow::Owned(
        binds
            .chain(mounts)
            .filter_map(Result::ok)
            .filter(|m| !m.is_volume())
            .map(|m| (m.destination.clone(), m))
            .collect(),
    )
}

/// The OCI `mounts` entries, parents before children (sorted by depth, as Docker does).
pub fn oci_mounts(points: &MountPoints) -> Vec<Value> {
    let mut list: Vec<&MountRecord> = points.values().collect();
    list.sort_by_key(|m| m.destination.split('/').count());
    list.into_iter()
        .map(|m| {
            if m.kind == "tmpfs" {
                let mut o = vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
                o.extend(
                    m.tmpfs_data
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
                return json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": o});
            }
            let mut o = vec![if m.non_recursive { "bind" } else { "rbind" }.to_owned()];
            o.push(if m.propagation.is_empty() {
                "rprivate".to_owned()
            } else {
                m.propagation.clone()
            });
            o.push(if m.rw { "rw" } else { "ro" }.to_owned());
            json!({"destination": m.destination, "type": "bind", "source": m.source, "options": o})
        })
        .collect()
}

/// `docker ps --filter volume=X`: X is a volume name (a bind's source) or a destination.
pub fn matches_volume_filter(points: &MountPoints, wanted: &[&str]) -> bool {
    points.values().any(|m| {
        let key = if m.name.is_empty() {
            &m.source
        } else {
            &m.name
        };
        wanted
            .iter()
            .any(|w| *w == key.as_str() || *w == m.destination.as_str())
    })
}

/// `Mounts` in inspect and in `GET /containers/json`.
pub fn inspect_mounts(points: &MountPoints) -> Vec<MountPoint> {
    points
        .values()
        .map(|m| {
            let vol = m.is_volume();
            MountPoint {
                typ: Some(m.kind.clone()),
                name: vol.then(|| m.name.clone()),
                source: Some(m.source.clone()),
                destination: Some(m.destination.clone()),
                driver: vol.then(|| m.driver.clone()),
                mode: Some(m.mode.clone()),
                rw: Some(m.rw),
                propagation: Some(m.propagation.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_like_docker() {
        let b = parse_bind("/src/../host:/data:ro").unwrap();
        assert_eq!(
            (
                b.kind.as_str(),
                b.source.as_str(),
                b.rw,
                b.propagation.as_str(),
                b.mode.as_str()
            ),
            ("bind", "/host", false, "rprivate", "ro")
        );
        let v = parse_bind("myvol:/data").unwrap();
        assert_eq!(
            (
                v.kind.as_str(),
                v.name.as_str(),
                v.rw,
                v.mode.as_str(),
                v.copy_data
            ),
            ("volume", "myvol", true, "z", true)
        );
        let v = parse_bind("myvol:/data:ro,nocopy").unwrap();
        assert!(!v.rw && !v.copy_data);
        let a = parse_bind("/anon").unwrap();
        assert_eq!((a.kind.as_str(), a.name.as_str()), ("volume", ""));
        assert_eq!(
            parse_bind("/data:rw").unwrap_err().message,
            "invalid volume specification: '/data:rw'"
        );
        assert_eq!(
            parse_bind("v1:/x:bogus").unwrap_err().message,
            "invalid mode: bogus"
        );
        assert!(parse_bind("v1:/x:ro,rw").is_err());
        assert!(parse_bind("v1:relative").is_err());
        assert!(parse_bind("v1:/").is_err());
        assert!(parse_bind("a:/x").is_err(), "one-char names are refused");
    }

    #[test]
    fn mounts_like_docker() {
        let m: Mount =
            serde_json::from_value(json!({"Type": "volume", "Target": "/v", "ReadOnly": true}))
                .unwrap();
        assert!(
            parse_mount(&m)
                .unwrap_err()
                .message
                .contains("anonymous volumes")
        );
        let m: Mount = serde_json::from_value(json!({"Type": "volume", "Source": "named", "Target": "/v", "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"}}})).unwrap();
        let r = parse_mount(&m).unwrap();
        assert_eq!(
            (r.name.as_str(), r.copy_data, r.mode.as_str()),
            ("named", false, "z")
        );
        assert_eq!(r.volume_labels.unwrap()["a"], "b");
        let m: Mount = serde_json::from_value(json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}})).unwrap();
        assert_eq!(parse_mount(&m).unwrap().tmpfs_data, "mode=700,size=1m");
        let m: Mount = serde_json::from_value(
            json!({"Type": "bind", "Source": "/nonexistent-berth", "Target": "/b"}),
        )
        .unwrap();
        assert_eq!(
            parse_mount(&m).unwrap_err().message,
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth"
        );
    }

    #[test]
    fn plan_precedence_and_duplicates() {
        let config = ContainerConfig {
            volumes: Some(vec!["/data".into(), "/cache".into()]),
            ..Default::default()
        };
        let host = HostConfig {
            binds: Some(vec!["named:/data".into()]),
            volumes_from: Some(vec!["other:ro".into()]),
            ..Default::default()
        };
        let p = plan(&config, &host, |id| {
            assert_eq!(id, "other");
            Ok(MountPoints::from([(
                "/shared".to_owned(),
                MountRecord {
                    kind: "volume".into(),
                    name: "sharedvol".into(),
                    destination: "/shared".into(),
                    rw: true,
                    copy_data: true,
                    mode: "z".into(),
                    ..Default::default()
                },
            )]))
        })
        .unwrap();
        assert_eq!(p["/data"].name, "named");
        assert_eq!(p["/cache"].name, "", "anonymous, named at create");
        assert!(!p["/shared"].rw && !p["/shared"].copy_data);
        let dup = HostConfig {
            binds: Some(vec!["a1:/x".into(), "/tmp:/x".into()]),
            ..Default::default()
        };
        assert_eq!(
            plan(
                &ContainerConfig::default(),
                &dup,
                |_| Ok(MountPoints::new())
            )
            .unwrap_err()
            .message,
            "Duplicate mount point: /x"
        );
        let other_driver = HostConfig {
            binds: Some(vec!["v1:/x".into()]),
            volume_driver: Some("convoy".into()),
            ..Default::default()
        };
        let e = plan(&ContainerConfig::default(), &other_driver, |_| {
            Ok(MountPoints::new())
        })
        .unwrap_err();
        assert_eq!(e.http_status(), 404);
    }

    #[test]
    fn records_without_mount_points_use_their_binds() {
        let host = HostConfig {
            binds: Some(vec!["/srv:/srv:ro".into(), "named:/n".into()]),
            ..Default::default()
        };
        let none = MountPoints::new();
        let p = of_record(&none, &host);
        assert_eq!(p.len(), 1);
        assert!(!p["/srv"].rw);
        let mut own = MountPoints::new();
        own.insert("/x".into(), MountRecord::default());
        assert_eq!(of_record(&own, &host).len(), 1);
        assert!(of_record(&own, &host).contains_key("/x"));
    }

    #[test]
    fn oci_order_and_options() {
        let mut p = MountPoints::new();
        for (d, k) in [("/a/b/c", "bind"), ("/a", "volume"), ("/t", "tmpfs")] {
            p.insert(
                d.into(),
                MountRecord {
                    kind: k.into(),
                    destination: d.into(),
                    source: "/src".into(),
                    rw: k != "bind",
                    ..Default::default()
                },
            );
        }
        let o = oci_mounts(&p);
        let dests: Vec<&str> = o
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(dests, ["/a", "/t", "/a/b/c"]);
        assert_eq!(o[2]["options"], json!(["rbind", "rprivate", "ro"]));
        assert_eq!(o[1]["type"], "tmpfs");
    }
}
