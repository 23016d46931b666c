//! berth: a drop-in docker command.
fn main() {
    eprintln!("not built yet");
    std::process::exit(125);
}
