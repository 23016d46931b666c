//! The client's error type: what the CLI needs to pick its message and exit code.

use crate::host::HostError;

/// Everything that can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host address could not be parsed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Nothing answers at the socket (connect refused, socket missing).
    #[error("Cannot connect to the berth daemon at {host}. Is berthd running?")]
    Connect {
        /// The address tried (`unix:///…`).
        host: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered with an error status; `message` is its `{"message"}` text.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// HTTP status.
        status: u16,
        /// The daemon's message (or the raw body when it was not Docker's JSON).
        message: String,
    },
    /// The HTTP exchange itself failed (handshake, broken connection).
    #[error("talking to the daemon at {host}: {source}")]
    Http {
        /// The address.
        host: String,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// Reading the request body source failed (a file given to `load -i`, stdin).
    #[error("reading the request body: {0}")]
    Body(#[source] std::io::Error),
    /// A response body was not the JSON expected.
    #[error("decoding the daemon's answer to {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon did not switch protocols for attach/exec.
    #[error("the daemon did not upgrade the connection for {path} (status {status})")]
    NoUpgrade {
        /// The request path.
        path: String,
        /// The status answered instead.
        status: u16,
    },
    /// Building the request failed (a path with invalid characters).
    #[error("building the request for {path}: {reason}")]
    Request {
        /// The request path.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status of a daemon error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a daemon 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The daemon's message text for daemon errors.
    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            ClientError::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Pulls Docker's `{"message": "..."}` out of an error body, falling back to the raw text.
pub fn message_from_body(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => b.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_json_and_raw_bodies() {
        assert_eq!(
            message_from_body(br#"{"message":"No such container: x"}"#),
            "No such container: x"
        );
        assert_eq!(message_from_body(b"page not found\n"), "page not found");
    }

    #[test]
    fn connect_message_names_the_host() {
        let e = ClientError::Connect {
            host: "unix:///run/berth/berth.sock".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(
            e.to_string(),
            "Cannot connect to the berth daemon at unix:///run/berth/berth.sock. Is berthd running?"
        );
    }
}
