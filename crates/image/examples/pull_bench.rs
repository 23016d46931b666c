//! Pull a reference into a fresh store and print how long it took (cold pull: nothing
//! present locally). For bench/: start a registry, seed it with `--seed`, then time pulls.
//!
//! `cargo run --release -p berth-image --example pull_bench -- <reference> [options]`
//! - `--seed <archive.tar>`: first load this `docker save` archive into a temp store and push
//!   it as `<reference>` (the registry then holds it);
//! - `--seed-dirs <dir>[,<dir>...][:<random MB>]`: seed with a 2-layer image built here: one
//!   layer of the dirs' trees, one of random bytes (e.g. `/usr/lib/python3.11:20`);
//! - `--runs N` (default 3), `--concurrency N` (default 3), `--sync` (syncfs per layer, as the
//!   daemon does; default off), `--root DIR` (parent of the temp stores; default /var/tmp).
//!
//! Prints one line per run: `pull <reference>: <seconds> s (<MB> MB compressed, <layers>)`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use berth_image::registry::{PullOptions, PushOptions, pull, push};
use berth_image::{Store, StoreOptions};

fn arg_value(args: &mut Vec<String>, name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    if i + 1 >= args.len() {
        return None;
    }
    let v = args.remove(i + 1);
    args.remove(i);
    Some(v)
}

fn seed_archive(spec: &str, tag: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let (dirs, mb) = match spec.rsplit_once(':') {
        Some((d, m)) => (d, m.parse::<usize>()?),
        None => (spec, 0),
    };
    let tmp = tempfile::tempdir()?;
    let mut layers = Vec::new();
    // Layer 1: the given trees under /seed/<n>.
    let base = tmp.path().join("base");
    std::fs::create_dir_all(&base)?;
    for (n, d) in dirs.split(',').enumerate() {
        let dst = base.join(format!("seed{n}"));
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(d)
            .arg(&dst)
            .status()?;
        if !st.success() {
            return Err(format!("cp -a {d} failed").into());
        }
    }
    layers.push(berth_fixtures::layer_tar_of(&base)?);
    if mb > 0 {
        use std::io::Read;
        let rnd = tmp.path().join("rnd");
        std::fs::create_dir_all(rnd.join("data"))?;
        let mut buf = vec![0u8; mb << 20];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
        std::fs::write(rnd.join("data/random.bin"), buf)?;
        layers.push(berth_fixtures::layer_tar_of(&rnd)?);
    }
    Ok(berth_fixtures::docker_save_archive(
        &layers,
        serde_json::json!({}),
        tag,
    )?)
}

fn open_store(
    parent: &PathBuf,
    sync: bool,
) -> Result<(tempfile::TempDir, Arc<Store>), Box<dyn std::error::Error>> {
    let d = tempfile::Builder::new()
        .prefix("berth-pull-bench-")
        .tempdir_in(parent)?;
    let (s, _) = Store::open(
        d.path(),
        StoreOptions {
            sync_layers: sync,
            ..Default::default()
        },
    )?;
    Ok((d, Arc::new(s)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let sync = args.iter().any(|a| a == "--sync");
    args.retain(|a| a != "--sync");
    let seed = arg_value(&mut args, "--seed");
    let seed_dirs = arg_value(&mut args, "--seed-dirs");
    let runs: usize = arg_value(&mut args, "--runs")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(3);
    let conc: usize = arg_value(&mut args, "--concurrency")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(3);
    let root = PathBuf::from(arg_value(&mut args, "--root").unwrap_or_else(|| "/var/tmp".into()));
    let Some(reference) = args.first().cloned() else {
        eprintln!(
            "usage: pull_bench <reference> [--seed archive.tar | --seed-dirs d1,d2[:MB]] [--runs N] [--concurrency N] [--sync] [--root DIR]"
        );
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let archive = match (&seed, &seed_dirs) {
        (Some(p), _) => Some(std::fs::read(p)?),
        (None, Some(spec)) => Some(seed_archive(spec, &reference)?),
        _ => None,
    };
    if let Some(data) = archive {
        let (_d, s) = open_store(&root, false)?;
        let loaded = s.load(&data[..])?;
        let id = loaded
            .first()
            .map(|l| l.id.clone())
            .ok_or("the archive holds no image")?;
        s.tag(&id, &reference)?;
        let t = Instant::now();
        let r = rt.block_on(push(s.clone(), &reference, PushOptions::default(), |_| {}))?;
        eprintln!(
            "seeded {reference}: {} ({} MB uncompressed) in {:.2} s",
            r.digest,
            s.image_size(&id)? / 1_000_000,
            t.elapsed().as_secs_f64()
        );
    }

    for _ in 0..runs {
        let (_d, s) = open_store(&root, sync)?;
        let mut bytes = std::collections::HashMap::new();
        let t = Instant::now();
        let r = rt.block_on(pull(
            s.clone(),
            &reference,
            PullOptions {
                max_concurrent_downloads: conc,
                ..Default::default()
            },
            |e| {
                if e.status == "Downloading"
                    && let (Some(id), Some(d)) = (e.id.clone(), e.progress_detail.as_ref())
                {
                    bytes.insert(id, d.total.unwrap_or(0));
                }
            },
        ))?;
        let secs = t.elapsed().as_secs_f64();
        let total: u64 = bytes.values().sum();
        println!(
            "pull {reference}: {secs:.3} s ({:.1} MB compressed, {} layers, image {})",
            total as f64 / 1e6,
            s.image_layers(&r.image_id)?.len(),
            &r.image_id[7..19]
        );
    }
    Ok(())
}
