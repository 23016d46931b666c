//! Docker Engine API types and the error-to-JSON mapping.
//!
//! berthd speaks the Docker Engine API; this crate holds what both sides of that wire agree on:
//! - [`error`]: the closed set of error kinds every backend tags its errors with, the single
//!   kind → HTTP status function, and Docker's `{"message": "..."}` body.
//! - [`query`]: query-string structs for each endpoint, parsed with Docker's lenient booleans
//!   and its two `filters` encodings.
//! - [`models`]: the bollard-stubs models (they serialize to Docker's field names), plus a few
//!   structs of our own where the generated ones do not fit.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
pub mod filters;
pub mod query;
pub mod types;

pub use bollard_stubs::models;
pub use error::{ApiError, ErrorKind};
pub use filters::Filters;

/// Highest API version berthd serves.
pub const API_VERSION: &str = "1.41";
/// Lowest API version berthd serves.
pub const MIN_API_VERSION: &str = "1.24";
