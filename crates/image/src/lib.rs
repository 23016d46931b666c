//! Image and layer store with Docker's overlay2 on-disk layout, layer tar apply with
//! whiteouts, and (later) registry pull/push.
//!
//! Module map:
//! - [`apply`]: extract a layer tar (plain/gzip/zstd) safely into a diff dir, hashing the
//!   uncompressed stream (diff id) in the same pass; export a diff dir back to a layer tar.
//! - [`reference`]: Docker's image reference grammar, normalisation and familiar form.
//! - [`atomic`]: crash-safe metadata writes (temp, fsync, rename, fsync dir).
//! - [`layer_store`], [`image_store`], [`repositories`], [`container_layers`], [`overlay`]:
//!   the pieces of the overlay2 layout.
//! - [`tarsplit`]: Docker's `tar-split.json.gz`, so a layer's original tar (its diff id) can be
//!   rebuilt for `docker save` and push.
//! - [`store`]: the facade the daemon uses ([`Store`]); [`archive`] load/save/import/export,
//!   [`commit`], [`inspect`], [`delete`] build on it. Open-time repair lives in `gc`.
//!
//! The daemon's view: `Store::open(root, opts) -> (Store, warnings)` once at start-up, then
//! `load`/`save`/`import`/`commit`/`delete`/`prune`/`tag`/`untag`/`resolve`/`inspect`/
//! `history`/`list` for images and `create_container_layers`/`mount`/`unmount`/`changes`/
//! `export_container`/`remove_container_layers` for containers. All are blocking (run them
//! in `spawn_blocking`); `Store` is `Send + Sync`. Errors carry an [`ErrorKind`] for the API
//! edge and Docker's messages verbatim.

pub mod apply;
pub mod archive;
pub mod atomic;
pub mod commit;
pub mod config;
pub mod container_layers;
pub mod delete;
pub mod distribution;
mod gc;
pub mod ids;
pub mod image_store;
pub mod inspect;
pub mod layer_store;
pub mod layout;
pub mod overlay;
pub mod reference;
pub mod repositories;
pub mod store;
pub mod tarsplit;

pub use container_layers::{InitLayerSpec, MountRecord};
pub use reference::Reference;
pub use store::{ErrorKind, ImageUse, Store, StoreError, StoreOptions, StoreWarning};
