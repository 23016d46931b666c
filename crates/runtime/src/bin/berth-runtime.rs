//! `berth-runtime`: the runc-compatible CLI over the berth runtime library.

fn main() {
    berth_runtime::timing::mark("main");
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let enters_container = berth_runtime::cli::needs_sealed_binary(&args);
    // CVE-2019-5736: never enter a container from the on-disk binary. Re-exec from a private
    // read-only overlayfs view of it (~0.15 ms), else from a sealed memfd copy (~3 ms).
    if enters_container && let Err(e) = berth_runtime::seal::ensure_sealed() {
        eprintln!(
            "berth-runtime: sealing the runtime binary: {}",
            berth_runtime::error_chain(&e)
        );
        std::process::exit(1);
    }
    berth_runtime::timing::mark("sealed");
    std::process::exit(berth_runtime::cli::main());
}
