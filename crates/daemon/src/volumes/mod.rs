//! Volumes: the local driver's store and everything containers do with volumes.
//!
//! - [`store`]: `<data-root>/volumes/<name>/{_data,volume.json}`, crash-safe create/remove.
//! - [`local`]: DriverOpts `type`/`device`/`o` (tmpfs, binds, devices) mounted on `_data`.
//! - [`mounts`]: parsing `-v`, `--mount`, `--volumes-from` and image `VOLUME`s into a
//!   container's mount points; their OCI and inspect forms.
//! - [`copyup`]: filling a new volume with the image's content.
//!
//! This module is the boundary the rest of berthd calls; each function says where it is
//! called from. References: a volume is in use while any container (in any state) has it
//! among its mount points, or a container being created has claimed ("pinned") it. The
//! `op` lock makes "check references, then create/remove" one step.

pub mod copyup;
pub mod local;
pub mod mounts;
pub mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use berth_api::{ApiError, Filters};
use serde_json::{Value, json};

pub use mounts::{MountPoints, MountRecord};
pub use store::{ANONYMOUS_LABEL, CreateRequest, Store, VolumeError, VolumeMeta};

use crate::containers::record::ContainerRecord;
use crate::containers::store::lock;
use crate::daemon::Daemon;

/// The volume service held by the daemon.
#[derive(Debug)]
pub struct Volumes {
    /// The on-disk store.
    pub store: Store,
    /// Serialises reference checks with creates and removes.
    op: Mutex<()>,
    /// Volumes claimed by containers still being created: container id → (volume name,
    /// whether it is an anonymous volume created for that container).
    pins: Mutex<HashMap<String, Vec<(String, bool)>>>,
    /// Volumes with driver options mounted for containers: volume → container ids.
    active: Mutex<HashMap<String, HashSet<String>>>,
}

impl Volumes {
    /// The service over `<data-root>/volumes`; sweeps what a crash left half-done.
    pub fn new(root: std::path::PathBuf) -> Volumes {
        let store = Store::new(root);
        store.sweep();
        Volumes {
            store,
            op: Mutex::new(()),
            pins: Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
        }
    }
}

/// Ids of the containers referencing volume `name` (sorted), pinned ones included.
pub fn users(d: &Daemon, name: &str) -> Vec<String> {
    let mut ids: Vec<String> = d
        .containers
        .all()
        .iter()
        .filter(|e| {
            e.with(|r| {
                r.mount_points
                    .values()
                    .any(|m| m.is_volume() && m.name == name)
            })
        })
        .map(|e| e.id.clone())
        .collect();
    for (id, names) in lock(&d.volumes.pins).iter() {
        if names.iter().any(|(n, _)| n == name) && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids.sort();
    ids
}

/// A volume in the API's shape (`GET /volumes/{name}`, list entries, create's answer).
pub fn to_json(d: &Daemon, v: &VolumeMeta) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": d.volumes.store.data_dir(&v.name),
        "Name": v.name,
        "Options": v.options,
        "Scope": "local",
    })
}

fn volume_event(d: &Daemon, action: &str, name: &str, extra: &[(&str, &str)]) {
    let mut attrs = HashMap::from([("driver".to_owned(), store::LOCAL_DRIVER.to_owned())]);
    for (k, v) in extra {
        attrs.insert((*k).to_owned(), (*v).to_owned());
    }
    d.events.emit("volume", action, name, None, attrs);
}

/// `POST /volumes/create`.
pub fn create(d: &Daemon, req: CreateRequest) -> Result<VolumeMeta, ApiError> {
    let _op = lock(&d.volumes.op);
    let (v, created) = d.volumes.store.create(req)?;
    if created {
        volume_event(d, "create", &v.name, &[]);
    }
    Ok(v)
}

/// `GET /volumes/{name}`.
pub fn get(d: &Daemon, name: &str) -> Result<VolumeMeta, ApiError> {
    Ok(d.volumes.store.get(name)?)
}

/// `GET /volumes` with filters `dangling`, `name`, `label`, `driver`.
pub fn list(d: &Daemon, f: &Filters) -> Result<Vec<VolumeMeta>, ApiError> {
    f.validate(&["dangling", "name", "label", "driver"])?;
    let dangling = match f.get("dangling").as_slice() {
        [] => None,
        [v] => Some(match *v {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                return Err(ApiError::invalid(format!(
                    "invalid filter 'dangling={other}'"
                )));
            }
        }),
        _ => return Err(ApiError::invalid("invalid filter 'dangling'")),
    };
    let all = d.volumes.store.list()?;
    let used: HashSet<String> = if dangling.is_some() {
        in_use_names(d)
    } else {
        HashSet::new()
    };
    Ok(all
        .into_iter()
        .filter(|v| dangling.is_none_or(|want| used.contains(&v.name) != want))
        .filter(|v| {
            let names = f.get("name");
            names.is_empty() || names.iter().any(|n| v.name.contains(n))
        })
        .filter(|v| {
            let drivers = f.get("driver");
            drivers.is_empty() || drivers.contains(&v.driver.as_str())
        })
        .filter(|v| f.match_labels("label", &labels_of(v)))
        .collect())
}

fn labels_of(v: &VolumeMeta) -> HashMap<String, String> {
    v.labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect::<HashMap<_, _>>()
}

/// Names of every volume some container or pending create references.
fn in_use_names(d: &Daemon) -> HashSet<String> {
    let mut used: HashSet<String> = d
        .containers
        .all()
        .iter()
        .flat_map(|e| {
            e.with(|r| {
                r.mount_points
                    .values()
                    .filter(|m| m.is_volume())
                    .map(|m| m.name.clone())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for names in lock(&d.volumes.pins).values() {
        used.extend(names.iter().map(|(n, _)| n.clone()));
    }
    used
}

/// Removes a volume nobody uses; the caller holds `op`.
fn remove_locked(d: &Daemon, name: &str) -> Result<(), VolumeError> {
    let refs = users(d, name);
    if !refs.is_empty() {
        return Err(VolumeError::InUse {
            name: name.to_owned(),
            refs,
        });
    }
    let data = d.volumes.store.data_dir(name);
    if local::is_mounted(&data) {
        local::unmount(&data)?;
    }
    d.volumes.store.remove(name)?;
    lock(&d.volumes.active).remove(name);
    volume_event(d, "destroy", name, &[]);
    Ok(())
}

/// `DELETE /volumes/{name}`: 409 while in use (even with force); with force a missing
/// volume is not an error (Docker's purge-on-error).
pub fn remove(d: &Daemon, name: &str, force: bool) -> Result<(), ApiError> {
    let _op = lock(&d.volumes.op);
    match remove_locked(d, name) {
        Err(VolumeError::NotFound(_)) if force => Ok(()),
        r => Ok(r?),
    }
}

/// `POST /volumes/prune`: unused volumes matching `label`/`label!`; before API 1.42 all of
/// them, from 1.42 only anonymous ones unless `all=true`. Returns (names, bytes freed).
pub fn prune(d: &Daemon, f: &Filters, api_1_42: bool) -> Result<(Vec<String>, u64), ApiError> {
    f.validate(&["label", "label!", "all"])?;
    let all = match f.get("all").as_slice() {
        [] => !api_1_42,
        ["true"] | ["1"] => true,
        ["false"] | ["0"] => !api_1_42,
        _ => return Err(ApiError::invalid("invalid filter 'all'")),
    };
    let _op = lock(&d.volumes.op);
    let used = in_use_names(d);
    let mut deleted = Vec::new();
    let mut space = 0;
    for v in d.volumes.store.list()? {
        let labels = labels_of(&v);
        let excluded = f
            .get("label!")
            .iter()
            .any(|want| match want.split_once('=') {
                Some((k, val)) => labels.get(k).is_some_and(|have| have == val),
                None => labels.contains_key(*want),
            });
        if used.contains(&v.name)
            || !f.match_labels("label", &labels)
            || excluded
            || (!all && !v.is_anonymous())
        {
            continue;
        }
        let size = store::dir_size(&d.volumes.store.data_dir(&v.name));
        match remove_locked(d, &v.name) {
            Ok(()) => {
                deleted.push(v.name);
                space += size;
            }
            Err(e) => tracing::warn!(volume = %v.name, error = %e, "prune: removing volume"),
        }
    }
    Ok((deleted, space))
}

/// `system df`'s Volumes: every volume with UsageData (size of `_data`, reference count).
pub fn disk_usage(d: &Daemon) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for v in d.volumes.store.list()? {
        let mut j = to_json(d, &v);
        j["UsageData"] = json!({
            "Size": store::dir_size(&d.volumes.store.data_dir(&v.name)),
            "RefCount": users(d, &v.name).len(),
        });
        out.push(j);
    }
    Ok(out)
}

// ---- containers ------------------------------------------------------------------------

/// Create, step 1 (no side effects): a new container's mount points from its config, host
/// config and `--volumes-from` containers. Anonymous volumes still have no name.
pub fn plan(
    d: &Daemon,
    config: &berth_api::models::ContainerConfig,
    host: &berth_api::models::HostConfig,
) -> Result<MountPoints, ApiError> {
    mounts::plan(config, host, |key| {
        let e = d.containers.get(key)?;
        Ok(e.with(|r| r.mount_points.clone()))
    })
}

/// Create, step 2: creates the named volumes that do not exist yet and the anonymous ones,
/// fills in names and sources, creates missing `-v` bind sources (as Docker does), and
/// pins the volumes to `id` until [`created`] or [`discard`].
pub fn claim(d: &Daemon, id: &str, mut points: MountPoints) -> Result<MountPoints, ApiError> {
    let _op = lock(&d.volumes.op);
    let mut names = Vec::new();
    let res = (|| -> Result<(), ApiError> {
        for m in points.values_mut() {
            if m.kind == "bind" {
                // `-v /missing:/x` creates the host dir, as Docker does (`--mount` refused
                // a missing source at parse time unless asked to create it).
                if std::fs::symlink_metadata(&m.source).is_err() {
                    std::fs::create_dir_all(&m.source).map_err(|e| {
                        ApiError::invalid(format!(
                            "error while creating mount source path '{}': {e}",
                            m.source
                        ))
                    })?;
                }
                continue;
            }
            if !m.is_volume() {
                continue;
            }
            let anonymous = m.name.is_empty();
            let mut labels = m.volume_labels.clone();
            if anonymous {
                labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(ANONYMOUS_LABEL.to_owned(), String::new());
            }
            let (v, created) = d.volumes.store.create(CreateRequest {
                name: (!anonymous).then(|| m.name.clone()),
                driver: Some(m.driver.clone()),
                labels,
                options: m.volume_options.clone(),
            })?;
            if created {
                volume_event(d, "create", &v.name, &[]);
            }
            if anonymous {
                m.anonymous = true;
            }
            m.name = v.name.clone();
            m.source = d.volumes.store.data_dir(&v.name).display().to_string();
            names.push((v.name, anonymous && created));
        }
        Ok(())
    })();
    lock(&d.volumes.pins).insert(id.to_owned(), names);
    res.map(|()| points)
}

/// Create, step 3 (the container's layers exist): copy the image's content into new empty
/// volumes. Mounts the container's rootfs for the copy and releases it after.
pub fn populate(d: &Daemon, id: &str, points: &MountPoints) -> Result<(), ApiError> {
    let wanted: Vec<&MountRecord> = points
        .values()
        .filter(|m| m.is_volume() && m.copy_data && copyup::is_empty_dir(Path::new(&m.source)))
        .filter(|m| {
            d.volumes
                .store
                .get(&m.name)
                .ok()
                .and_then(|v| v.local_options().ok())
                .is_some_and(|o| o.is_none())
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let rootfs = d.images.mount(id).map_err(crate::images::api_error)?;
    let mut res = Ok(());
    for m in wanted {
        if let Err(e) = copyup::copy_up(&rootfs, &m.destination, Path::new(&m.source)) {
            res = Err(ApiError::internal(e.to_string()));
            break;
        }
    }
    if let Err(e) = d.images.unmount(id) {
        tracing::warn!(%id, error = %e, "unmounting rootfs after volume copy-up");
    }
    res
}

/// Create succeeded and the container is in the table: its references count from there.
pub fn created(d: &Daemon, id: &str) {
    lock(&d.volumes.pins).remove(id);
}

/// Create failed: drop the pins and remove the anonymous volumes made for it.
pub fn discard(d: &Daemon, id: &str) {
    let _op = lock(&d.volumes.op);
    let pinned = lock(&d.volumes.pins).remove(id).unwrap_or_default();
    for (name, made_for_it) in pinned {
        if made_for_it && let Err(e) = remove_locked(d, &name) {
            tracing::warn!(volume = %name, error = %e, "removing anonymous volume of a failed create");
        }
    }
}

fn options_volumes(d: &Daemon, rec: &ContainerRecord) -> Vec<(String, local::LocalOptions)> {
    rec.mount_points
        .values()
        .filter(|m| m.is_volume())
        .filter_map(|m| {
            let v = d.volumes.store.get(&m.name).ok()?;
            Some((m.name.clone(), v.local_options().ok()??))
        })
        .collect()
}

/// Start (before the OCI spec is used): mounts the container's volumes that have driver
/// options (tmpfs, binds, devices) on their `_data`, once for all containers sharing one.
pub fn activate(d: &Daemon, rec: &ContainerRecord) -> Result<(), ApiError> {
    for (name, opts) in options_volumes(d, rec) {
        let _op = lock(&d.volumes.op);
        let data = d.volumes.store.data_dir(&name);
        if !local::is_mounted(&data) {
            opts.mount(&data)?;
            volume_event(d, "mount", &name, &[("container", &rec.id)]);
        }
        lock(&d.volumes.active)
            .entry(name)
            .or_default()
            .insert(rec.id.clone());
    }
    Ok(())
}

/// After the container stopped (or was removed): unmounts driver-option volumes no other
/// running or starting container uses.
pub fn deactivate(d: &Daemon, rec: &ContainerRecord) {
    for (name, _) in options_volumes(d, rec) {
        let _op = lock(&d.volumes.op);
        let others_active = {
            let mut active = lock(&d.volumes.active);
            let set = active.entry(name.clone()).or_default();
            set.remove(&rec.id);
            !set.is_empty()
        };
        let others_running = d.containers.all().iter().any(|e| {
            e.id != rec.id
                && e.with(|r| r.state.running && r.mount_points.values().any(|m| m.name == name))
        });
        let data = d.volumes.store.data_dir(&name);
        if !others_active && !others_running && local::is_mounted(&data) {
            match local::unmount(&data) {
                Ok(()) => volume_event(d, "unmount", &name, &[("container", &rec.id)]),
                Err(e) => tracing::warn!(volume = %name, error = %e, "unmounting volume"),
            }
        }
    }
}

/// After the container left the table: releases its volumes; with `remove_anonymous`
/// (`rm -v`, AutoRemove) deletes its anonymous volumes nobody else references.
pub fn release(d: &Daemon, rec: &ContainerRecord, remove_anonymous: bool) {
    deactivate(d, rec);
    if !remove_anonymous {
        return;
    }
    let _op = lock(&d.volumes.op);
    for m in rec.mount_points.values() {
        if m.is_volume() && m.anonymous {
            match remove_locked(d, &m.name) {
                Ok(()) | Err(VolumeError::InUse { .. }) | Err(VolumeError::NotFound(_)) => {}
                Err(e) => tracing::warn!(volume = %m.name, error = %e, "removing anonymous volume"),
            }
        }
    }
}
