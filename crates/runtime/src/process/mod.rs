//! Creating container processes: clone3 with namespaces, the parent/child sync channel, the
//! container init, and the final steps before `execve` shared with `exec`.

pub mod channel;
pub mod clone;
pub mod finish;
pub mod init;
pub mod namespaces;
pub mod prime;
pub mod socket;
