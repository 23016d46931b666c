//! Link berth-shim as a position-dependent executable (`-no-pie`), as Go builds
//! containerd-shim by default. A PIE binary's ~13k relative relocations dirty its whole
//! `.data.rel.ro` at every start: ~270 kB of private memory in each of the long-lived shims
//! (one per running container, design target ≤ 1 MB each), plus ~0.15 ms of loader work per
//! container. The price is a fixed load address for the shim's own code (libraries keep ASLR).
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
}
