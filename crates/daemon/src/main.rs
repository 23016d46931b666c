//! berthd: the Docker Engine API daemon.
fn main() {
    eprintln!("not built yet");
    std::process::exit(125);
}
