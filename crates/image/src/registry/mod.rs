//! Registry distribution: `docker pull` and `docker push` against a Docker Registry HTTP API
//! v2 / OCI distribution registry.
//!
//! The daemon's view:
//! - `POST /images/create?fromImage=x&tag=y`: [`pull`]`(store, "x:y", PullOptions{auth:
//!   AuthConfig::from_x_registry_auth(header)?, platform, ..}, |ev| send(ev.to_json()))`.
//! - `POST /images/{name}/push?tag=y`: [`push`]`(store, "name:y", PushOptions{..}, |ev| ..)`,
//!   then an `aux` message from the [`PushResult`].
//!
//! Both are async (tokio) and stream Docker's progress messages ([`ProgressEvent`]); errors
//! carry Docker's texts. A pull downloads layers in parallel (bounded), each straight into the
//! store's extractor through a bounded channel (no spooled blob): compressed digest, diff id
//! and files in one pass, into a temp dir committed only when both digests verify.
//!
//! Why not oci-client (design.md §4): its push takes whole blobs in memory (no streaming
//! upload or progress), it has no identity-token exchange, and it brings reqwest; the v2
//! protocol needed here is a few hundred lines on hyper ([`http`], [`client`]).

pub mod auth;
pub mod client;
mod error;
pub mod http;
pub mod manifest;
pub mod progress;
mod pull;
mod push;
mod stream;

pub use auth::AuthConfig;
pub use error::RegistryError;
pub use progress::{ProgressDetail, ProgressEvent};
pub use pull::{PullOptions, PullResult, pull};
pub use push::{PUSH_GZIP_LEVEL, PushOptions, PushResult, push};
