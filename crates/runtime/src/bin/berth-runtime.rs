//! `berth-runtime`: the runc-compatible CLI over the berth runtime library.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if berth_runtime::cli::needs_sealed_binary(&args)
        && let Err(e) = pentacle::ensure_sealed()
    {
        // CVE-2019-5736: never enter a container from the on-disk binary.
        eprintln!("berth-runtime: sealing the runtime binary in a memfd: {e}");
        std::process::exit(1);
    }
    std::process::exit(berth_runtime::cli::main());
}
