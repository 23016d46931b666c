//! The CLI's error type and how each error maps to a message and an exit code (Docker's:
//! 1 for command errors, 125 for `run`/`create` failures and usage errors, 126/127 from the
//! container start, the container's own status otherwise).

use berth_client::ClientError;

use crate::format::FormatError;
use crate::opts::OptsError;
use crate::template::TemplateError;

/// Anything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the daemon failed, or it answered with an error.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A flag value is invalid.
    #[error(transparent)]
    Opts(#[from] OptsError),
    /// A `--format` template is bad or failed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// `inspect -f` template errors (Docker: "template parsing error: …", exit 64).
    #[error("template parsing error: {0}")]
    InspectTemplate(#[source] TemplateError),
    /// A local file or terminal operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A message to print as is, with exit code 1.
    #[error("{0}")]
    Msg(String),
    /// Exit with this status; print the message, if any.
    #[error("{}", .msg.as_deref().unwrap_or(""))]
    Status {
        /// Exit status.
        code: i32,
        /// Message for stderr.
        msg: Option<String>,
    },
}

impl CliError {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            what: what.into(),
            source,
        }
    }

    /// The exit code Docker uses for this error outside `run`.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Status { code, .. } => *code,
            CliError::InspectTemplate(_) => 64,
            _ => 1,
        }
    }
}

/// Shorthand.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
