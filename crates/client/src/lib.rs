//! Async Docker API client over a unix socket.
