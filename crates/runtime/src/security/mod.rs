//! Process security settings applied just before `execve`: capabilities, seccomp, rlimits;
//! plus Docker's default capability set and seccomp profile for the daemon.

pub mod caps;
pub mod defaults;
pub mod rlimits;
pub mod seccomp;
