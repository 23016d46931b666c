//! Link the `berth` CLI as a position-dependent executable (`-no-pie`): a PIE binary applies
//! ~15k relative relocations at each start and the CLI is started once per command
//! (~0.15 ms of a `berth run`, measured spawn → main). It runs unprivileged as often as
//! not and holds no secrets beyond the user's own, as the docker CLI (a Go binary, non-PIE
//! by default).
fn main() {
    println!("cargo:rustc-link-arg-bin=berth=-no-pie");
}
