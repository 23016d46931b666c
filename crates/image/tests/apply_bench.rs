//! Bench helper (not a test): apply a generated ~200 MB / 6,000-file gzip layer and print
//! the time. Run it optimised:
//!
//! `cargo test --release -p berth-image --test apply_bench -- --ignored --nocapture`
//!
//! Prints one `apply_bench:` line with key=value pairs for the bench/ runner.

#![allow(clippy::unwrap_used)] // bench helper: a panic is the failure report

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use berth_image::apply::{ApplyOptions, apply_layer};

const FILES: usize = 6_000;
const TOTAL: usize = 200 * 1024 * 1024;

/// Deterministic, moderately compressible content (words from a small vocabulary plus some
/// noise), like binaries and text mixed in real layers.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut Vec<u8>, len: usize) {
        const WORDS: [&[u8]; 8] = [
            b"lib",
            b"usr/share/",
            b"\x7fELF\x02\x01",
            b"function ",
            b"return 0;\n",
            b"\0\0\0\0",
            b"GLIBC_2.34",
            b"  ",
        ];
        buf.clear();
        while buf.len() < len {
            let r = self.next();
            if r.is_multiple_of(4) {
                buf.extend_from_slice(&r.to_le_bytes());
            } else {
                buf.extend_from_slice(WORDS[(r >> 8) as usize % WORDS.len()]);
            }
        }
        buf.truncate(len);
    }
}

fn build_layer(path: &std::path::Path) -> (u64, u64) {
    let out = BufWriter::new(File::create(path).unwrap());
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
    let mut b = tar::Builder::new(gz);
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    let per_file = TOTAL / FILES;
    let mut content = 0u64;
    for i in 0..FILES {
        if i.is_multiple_of(100) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(1_600_000_000);
            b.append_data(&mut h, format!("usr/lib/d{:03}/", i / 100), &[][..])
                .unwrap();
        }
        // Sizes vary 0.25x..1.75x around the mean.
        let len = per_file / 4 + (g.next() as usize % (per_file * 3 / 2));
        g.fill(&mut buf, len);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(if i.is_multiple_of(10) { 0o755 } else { 0o644 });
        h.set_size(len as u64);
        h.set_mtime(1_600_000_000);
        b.append_data(
            &mut h,
            format!("usr/lib/d{:03}/f{i:05}.so", i / 100),
            &buf[..],
        )
        .unwrap();
        content += len as u64;
    }
    let gz = b.into_inner().unwrap();
    gz.finish().unwrap().flush().unwrap();
    (content, std::fs::metadata(path).unwrap().len())
}

#[test]
#[ignore = "bench: run by bench/"]
fn apply_bench() {
    let work = tempfile::tempdir().unwrap();
    // APPLY_BENCH_BLOB=<path> keeps the generated layer there and reuses it next time.
    let blob = std::env::var_os("APPLY_BENCH_BLOB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| work.path().join("layer.tar.gz"));
    let t = Instant::now();
    let (content, blob_len) = if blob.exists() {
        (0, std::fs::metadata(&blob).unwrap().len())
    } else {
        build_layer(&blob)
    };
    let gen_secs = t.elapsed().as_secs_f64();

    // Reference: decompress only.
    let t = Instant::now();
    let mut dec =
        flate2::read::MultiGzDecoder::new(std::io::BufReader::new(File::open(&blob).unwrap()));
    let mut sink = vec![0u8; 256 * 1024];
    let mut tar_len = 0u64;
    loop {
        let n = dec.read(&mut sink).unwrap();
        if n == 0 {
            break;
        }
        tar_len += n as u64;
    }
    let gunzip_secs = t.elapsed().as_secs_f64();

    let dest = work.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let t = Instant::now();
    let out = apply_layer(
        File::open(&blob).unwrap(),
        &dest,
        &ApplyOptions {
            preserve_owner: rustix::process::geteuid().is_root(),
        },
    )
    .unwrap();
    let apply_secs = t.elapsed().as_secs_f64();
    if content != 0 {
        assert_eq!(out.size, content);
    }
    let content = out.size;
    println!(
        "apply_bench: files={FILES} content_bytes={content} tar_bytes={tar_len} \
         blob_bytes={blob_len} gen_secs={gen_secs:.3} gunzip_only_secs={gunzip_secs:.3} \
         apply_secs={apply_secs:.3} apply_mb_per_s={:.1}",
        content as f64 / 1e6 / apply_secs
    );
}
