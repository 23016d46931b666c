//! `start`: release the waiting init and return once it has exec'd the user process (or
//! report why it could not), then run poststart hooks.

use super::{Container, hook_state};
use crate::RuntimeError;
use crate::hooks::{self, Kind};
use crate::process::channel::{Channel, Msg};
use crate::process::socket;
use crate::state::Status;

impl Container {
    /// Start the user process. Returns after the init's `execve` succeeded; the init's own
    /// failure (not found, bad cwd, hook failure...) comes back as [`RuntimeError::ExecFailed`].
    pub fn start(&mut self) -> Result<(), RuntimeError> {
        let status = self.status();
        if status != Status::Created {
            return Err(RuntimeError::InvalidStatus {
                id: self.id().to_string(),
                status,
                op: "start",
            });
        }
        let sock = self.dir.start_socket();
        let conn = Channel::from_fd(
            socket::connect_to(&sock)
                .map_err(|e| RuntimeError::io("connecting to the init's start socket", e))?,
        );
        // Only one start: from now on the container no longer reads as `created`.
        let _ = std::fs::remove_file(&sock);
        conn.send(&Msg::Start {
            state_json: hook_state(&self.record, Status::Created),
        })?;
        crate::timing::mark("start: released");
        if let Err(e) = conn.wait_closed() {
            return Err(match e {
                crate::process::channel::ChannelError::Peer(message) => {
                    // When we are the init's parent we can tell its exit status.
                    let code = if self.pidfd.is_some() {
                        super::wait_status(self.pid()).unwrap_or(1)
                    } else {
                        1
                    };
                    RuntimeError::ExecFailed { message, code }
                }
                other => other.into(),
            });
        }
        crate::timing::mark("start: exec'd");
        // The status on disk stays `created`: it is derived live (the start socket is gone),
        // so no extra state write is needed here.
        self.record.state.status = Status::Running;
        let spec = super::stored_spec(&self.dir)?;
        hooks::run_all_warn(
            Kind::Poststart,
            &hooks::of(&spec, Kind::Poststart),
            &hook_state(&self.record, Status::Running),
        );
        Ok(())
    }
}
