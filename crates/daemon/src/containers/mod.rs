//! Containers: the records, their table, and the verbs on them.
//!
//! - [`record`]: config.v2.json / hostconfig.json shapes.
//! - [`store`]: the in-memory table and name/id lookups.
//! - [`names`]: name validation and random names.
//! - [`create`], [`lifecycle`] ([`autoremove`] for `--rm` after the exit), [`list`], [`inspect`], [`logs`]: the verbs.
//! - [`spec`]: the OCI spec; [`network`]: supported network modes; [`loopback`]: `lo` up.
//! - [`shim`]: the berthd ↔ berth-shim contract ([`launcher`] starts shims); [`recovery`]: daemon start-up.

pub mod autoremove;
pub mod create;
pub mod files;
pub mod inspect;
pub mod launcher;
pub mod lifecycle;
pub mod list;
pub mod logs;
pub mod loopback;
pub mod names;
pub mod network;
pub mod phases;
pub mod record;
pub mod recovery;
pub mod shim;
pub mod signal;
pub mod spec;
pub mod stats;
pub mod store;
