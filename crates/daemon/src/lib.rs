//! berthd: the Docker Engine API daemon.
//!
//! Module map:
//! - [`config`]: dockerd-compatible flags + daemon.json.
//! - [`lock`]: one berthd per data root.
//! - [`server`]: listeners, accept loop, graceful shutdown.
//! - [`api`]: routes per resource, the version prefix, Docker's error shape.
//! - [`daemon`]: the backend state handlers call into.
//! - [`containers`]: container records, lifecycle, shim contract, recovery.
//! - [`exec`]: exec instances.
//! - [`images`]: the image-store boundary.

#![cfg_attr(test, allow(clippy::unwrap_used))]
#![recursion_limit = "256"]

pub mod api;
pub mod config;
pub mod containers;
pub mod daemon;
pub mod events;
pub mod exec;
pub mod fsutil;
pub mod images;
pub mod lock;
pub mod server;
