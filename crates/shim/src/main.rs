//! berth-shim: per-container parent process that outlives berthd.
fn main() {
    eprintln!("not built yet");
    std::process::exit(125);
}
