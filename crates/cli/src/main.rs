//! `berth`: a drop-in `docker` command that talks only HTTP to berthd.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod template;

fn main() {}
