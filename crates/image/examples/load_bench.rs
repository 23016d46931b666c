//! Load a `docker save` archive into a fresh store and print how long it took.
//!
//! `cargo run --release -p berth-image --example load_bench -- <archive.tar> [data-root] [--no-sync]`
//! (default data root: a temp dir next to the archive, removed afterwards).

use std::path::PathBuf;
use std::time::Instant;

use berth_image::{Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let no_sync = args.iter().any(|a| a == "--no-sync");
    args.retain(|a| a != "--no-sync");
    let Some(archive) = args.first().map(PathBuf::from) else {
        eprintln!("usage: load_bench <archive.tar> [data-root] [--no-sync]");
        std::process::exit(2);
    };
    let (root, _guard) = match args.get(1) {
        Some(r) => (PathBuf::from(r), None),
        None => {
            let parent = archive
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let d = tempfile::tempdir_in(parent)?;
            (d.path().to_path_buf(), Some(d))
        }
    };
    let opts = StoreOptions {
        sync_layers: !no_sync,
        ..Default::default()
    };
    let t0 = Instant::now();
    let (store, _) = Store::open(&root, opts)?;
    let t_open = t0.elapsed();
    let t1 = Instant::now();
    let f = std::fs::File::open(&archive)?;
    let loaded = store.load(std::io::BufReader::with_capacity(1 << 20, f))?;
    let t_load = t1.elapsed();
    let size: u64 = loaded
        .iter()
        .map(|l| store.image_size(&l.id).unwrap_or(0))
        .sum();
    for l in &loaded {
        for m in l.messages() {
            println!("{m}");
        }
    }
    println!(
        "open {:.1} ms, load {:.1} ms ({} image(s), {:.1} MB of content, sync={})",
        t_open.as_secs_f64() * 1e3,
        t_load.as_secs_f64() * 1e3,
        loaded.len(),
        size as f64 / 1e6,
        !no_sync
    );
    Ok(())
}
