//! `berth-runtime`: the runc-compatible CLI over the berth runtime library.

fn main() {
    berth_runtime::timing::mark("main");
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let enters_container = berth_runtime::cli::needs_sealed_binary(&args);
    if enters_container && !pentacle::is_sealed() {
        // Overlap the cgroup attach lock's grace period with the memfd copy below.
        berth_runtime::process::prime::start_for_reexec();
    }
    // Measured cost on the dev VM: 3.0-3.4 ms per invocation (copying the ~4.2 MB stripped
    // release binary into a memfd, then re-exec), about a third of a warm `run`.
    if enters_container && let Err(e) = pentacle::ensure_sealed() {
        // CVE-2019-5736: never enter a container from the on-disk binary.
        eprintln!("berth-runtime: sealing the runtime binary in a memfd: {e}");
        std::process::exit(1);
    }
    berth_runtime::timing::mark("sealed");
    std::process::exit(berth_runtime::cli::main());
}
