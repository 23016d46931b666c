//! berthd: the Docker Engine API daemon.
//!
//! Module map:
//! - [`config`]: dockerd-compatible flags + daemon.json.
//! - [`lock`]: one berthd per data root.
//! - [`server`]: listeners, accept loop, graceful shutdown.
//! - [`api`]: routes per resource (system, containers, exec, images, transfer, archive,
//!   events), the `/v1.xx` prefix, Docker's error shape, HTTP upgrade for attach/exec.
//! - [`daemon`]: the backend state handlers call into (config, image store, container table,
//!   execs, events).
//! - [`containers`]: records, create, lifecycle (start/stop/kill/wait/remove + exit watcher,
//!   restart policies, AutoRemove), OCI spec generation, the berth-shim contract, logs,
//!   stats, recovery at start-up.
//! - [`exec`]: exec instances.
//! - [`events`]: the events bus.
//! - [`idle`]: giving memory back once no request has run for a moment.
//! - [`images`]: the `berth_image::Store` boundary (error mapping, image defaults).
//! - [`volumes`]: the local volume driver and containers' mount points.
//!
//! Request flow: `server` accepts (unix/tcp) → `api::handle` strips `/v1.xx`, routes, adds
//! Docker's headers → a handler parses and calls `containers::*` / `images::*` → blocking
//! store work runs on `spawn_blocking` → containers run under `berth-shim`, which berthd
//! execs (never forks) and talks to over `<exec-root>/<id>/shim.sock`.

#![cfg_attr(test, allow(clippy::unwrap_used))]
#![recursion_limit = "256"]

pub mod api;
pub mod config;
pub mod containers;
pub mod daemon;
pub mod events;
pub mod exec;
pub mod fsutil;
pub mod idle;
pub mod images;
pub mod lock;
pub mod networks;
pub mod server;
pub mod volumes;
