//! Docker Engine API types and the error-to-JSON mapping.
