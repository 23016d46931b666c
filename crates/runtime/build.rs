//! Link berth-runtime as a position-dependent executable (`-no-pie`): a PIE binary applies
//! ~13k relative relocations at each start, and `run` starts it twice (the caller's exec and
//! the CVE-2019-5736 re-exec): ~0.15 ms each, measured spawn → main. The price is a fixed
//! load address for the runtime's own code (libraries keep ASLR), as with Go's default
//! builds of containerd's shims.
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-runtime=-no-pie");
}
