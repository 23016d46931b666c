//! Round trip: a tree with every kind of node and metadata → tar (tar crate, xattrs in PAX)
//! → apply → same tree; export → re-apply → same tree; exporting twice gives the same bytes.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod apply_common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use apply_common::*;
use berth_image::apply::{ApplyOptions, apply_layer, export_layer};
use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

const MB: u64 = 1024 * 1024;

/// `security.capability` v2 granting CAP_NET_BIND_SERVICE (bit 10), effective.
const CAP_NET_BIND: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, // magic_etc: VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
    0x00, 0x04, 0x00, 0x00, // permitted (low)
    0x00, 0x00, 0x00, 0x00, // inheritable (low)
    0x00, 0x00, 0x00, 0x00, // permitted (high)
    0x00, 0x00, 0x00, 0x00, // inheritable (high)
];

fn set_mtime(p: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        p,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Build the source tree; returns the paths in creation order for mtime fix-ups.
fn build_tree(src: &Path) {
    fs::create_dir_all(src.join("a/b/c")).unwrap();
    fs::write(src.join("a/b/c/deep.txt"), b"deep\n").unwrap();
    fs::write(src.join("a/h1"), b"hardlinked content\n").unwrap();
    fs::hard_link(src.join("a/h1"), src.join("a/b/h2")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("a/abs-link")).unwrap();
    std::os::unix::fs::symlink("../h1", src.join("a/b/rel-link")).unwrap();
    fs::write(src.join("a/suid"), b"#!/bin/sh\n").unwrap();
    chmod(&src.join("a/suid"), 0o4755);
    fs::write(src.join("a/sgid-odd"), b"x").unwrap();
    chmod(&src.join("a/sgid-odd"), 0o2741);
    fs::write(src.join("a/nothing"), b"no perms").unwrap();
    chmod(&src.join("a/nothing"), 0o000);
    fs::create_dir(src.join("tmp")).unwrap();
    chmod(&src.join("tmp"), 0o1777);
    fs::create_dir(src.join("a/b/x-only")).unwrap();
    chmod(&src.join("a/b/x-only"), 0o711);

    // xattrs: user.* on a file and a dir, security.capability on a binary.
    rustix::fs::setxattr(src.join("a/h1"), "user.note", b"hello", XattrFlags::empty()).unwrap();
    rustix::fs::setxattr(
        src.join("a/b"),
        "user.dir",
        b"\x00\x01bin",
        XattrFlags::empty(),
    )
    .unwrap();
    fs::write(src.join("a/ping"), b"\x7fELF fake").unwrap();
    chmod(&src.join("a/ping"), 0o755);
    rustix::fs::setxattr(
        src.join("a/ping"),
        "security.capability",
        &CAP_NET_BIND,
        XattrFlags::empty(),
    )
    .unwrap();

    // Special files.
    rustix::fs::mknodat(
        CWD,
        src.join("dev-fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o620),
        0,
    )
    .unwrap();
    rustix::fs::mknodat(
        CWD,
        src.join("dev-null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    chmod(&src.join("dev-null"), 0o666);

    // 100 MB sparse file with three small data extents.
    let f = fs::File::create(src.join("sparse.img")).unwrap();
    f.set_len(100 * MB).unwrap();
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(&[0xab; 8192], 50 * MB).unwrap();
    f.write_all_at(b"end", 100 * MB - 3).unwrap();
    drop(f);
    // A file whose tail is a hole.
    let f = fs::File::create(src.join("tail-hole")).unwrap();
    f.set_len(10 * MB).unwrap();
    f.write_all_at(&[7; 4096], 0).unwrap();
    drop(f);

    // Owners.
    rustix::fs::chownat(
        CWD,
        src.join("a/b/c/deep.txt"),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(5678)),
        AtFlags::empty(),
    )
    .unwrap();
    rustix::fs::chownat(
        CWD,
        src.join("a/abs-link"),
        Some(rustix::fs::Uid::from_raw(42)),
        Some(rustix::fs::Gid::from_raw(43)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    // chown cleared setuid; put the odd modes back after.
    chmod(&src.join("a/suid"), 0o4755);

    // Mtimes: leaves first, dirs last (children change their parent's mtime).
    let mut t = 315_532_800; // 1980-01-01
    for p in [
        "a/b/c/deep.txt",
        "a/h1",
        "a/abs-link",
        "a/b/rel-link",
        "a/suid",
        "a/sgid-odd",
        "a/nothing",
        "a/ping",
        "dev-fifo",
        "dev-null",
        "sparse.img",
        "tail-hole",
        "a/b/x-only",
        "a/b/c",
        "a/b",
        "a",
        "tmp",
    ] {
        t += 86_400 * 97;
        set_mtime(&src.join(p), t);
    }
}

/// Tar `src` with the tar crate: sorted walk, hardlinks as link entries, xattrs in PAX,
/// sparse files as GNU sparse entries.
fn tar_tree(src: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.sparse(true);
    let mut paths = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            paths.push(p);
        }
    }
    paths.sort();
    let mut seen: HashMap<u64, std::path::PathBuf> = HashMap::new();
    for p in paths {
        let rel = p.strip_prefix(src).unwrap().to_path_buf();
        let m = fs::symlink_metadata(&p).unwrap();
        let x = xattrs_of(&p);
        if !x.is_empty() {
            let recs: Vec<(String, Vec<u8>)> = x
                .into_iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
                .collect();
            b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        if m.is_file() && m.nlink() > 1 {
            if let Some(first) = seen.get(&m.ino()) {
                let mut h = tar::Header::new_gnu();
                h.set_metadata(&m);
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &rel, first).unwrap();
                continue;
            }
            seen.insert(m.ino(), rel.clone());
        }
        let ft = m.file_type();
        if !ft.is_file() && !ft.is_dir() {
            // The tar crate refuses absolute symlink targets and mangles special files'
            // paths in append_path; write these headers here.
            use std::os::unix::fs::FileTypeExt;
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&m);
            h.set_size(0);
            h.set_path(&rel).unwrap();
            if ft.is_symlink() {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name_literal(fs::read_link(&p).unwrap().as_os_str().as_encoded_bytes())
                    .unwrap();
            } else {
                h.set_entry_type(if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                h.set_device_major(rustix::fs::major(m.rdev())).unwrap();
                h.set_device_minor(rustix::fs::minor(m.rdev())).unwrap();
            }
            h.set_cksum();
            b.append(&h, &[][..]).unwrap();
            continue;
        }
        b.append_path_with_name(&p, &rel)
            .unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
    }
    b.into_inner().unwrap()
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        preserve_owner: true,
    }
}

#[test]
fn round_trip_preserves_everything_and_export_is_deterministic() {
    if !is_root() {
        eprintln!("SKIP: needs root (device nodes, owners, security.capability)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    build_tree(&src);
    let want = snapshot(&src);
    // The source really has what we claim to test.
    assert!(
        want["sparse.img"].sparse,
        "source sparse file is not sparse"
    );
    assert_eq!(want["a/b/h2"].hardlink_of.as_deref(), Some("a/b/h2"));
    assert_eq!(want["a/h1"].hardlink_of.as_deref(), Some("a/b/h2"));

    let tar = tar_tree(&src);
    assert!(
        (tar.len() as u64) < 2 * MB,
        "sparse file was stored densely ({} bytes)",
        tar.len()
    );
    let d1 = work.path().join("d1");
    fs::create_dir(&d1).unwrap();
    let out = apply_layer(&gzip(&tar)[..], &d1, &opts()).unwrap();
    assert_eq!(out.diff_id, sha256(&tar));
    let got = snapshot(&d1);
    assert_eq!(got, want);
    let big = fs::metadata(d1.join("sparse.img")).unwrap();
    assert_eq!(big.len(), 100 * MB);
    assert!(
        big.blocks() * 512 < MB,
        "applied file not sparse: {} blocks",
        big.blocks()
    );

    // Export, re-apply: same tree; a second export of the copy gives the same bytes.
    let mut t1 = Vec::new();
    export_layer(&d1, &mut t1).unwrap();
    assert!((t1.len() as u64) < 2 * MB, "export wrote holes densely");
    let d2 = work.path().join("d2");
    fs::create_dir(&d2).unwrap();
    let out1 = apply_layer(&t1[..], &d2, &opts()).unwrap();
    assert_eq!(snapshot(&d2), want);
    let mut t2 = Vec::new();
    export_layer(&d2, &mut t2).unwrap();
    assert!(t1 == t2, "export is not deterministic");
    let d3 = work.path().join("d3");
    fs::create_dir(&d3).unwrap();
    let out2 = apply_layer(&zstd(&t2)[..], &d3, &opts()).unwrap();
    assert_eq!(out1.diff_id, out2.diff_id);
    assert_eq!(snapshot(&d3), want);
}

#[test]
fn long_names_and_link_targets_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let long_dir = "d".repeat(120);
    let long_file = "f".repeat(200);
    fs::create_dir_all(src.join(&long_dir).join(&long_dir)).unwrap();
    let fpath = src.join(&long_dir).join(&long_dir).join(&long_file);
    fs::write(&fpath, b"long").unwrap();
    let target = format!("../{}/{}", long_dir, "t".repeat(150));
    std::os::unix::fs::symlink(&target, src.join(&long_dir).join("l")).unwrap();
    let mut tar = Vec::new();
    export_layer(&src, &mut tar).unwrap();
    let dst = work.path().join("dst");
    fs::create_dir(&dst).unwrap();
    apply_layer(
        &tar[..],
        &dst,
        &ApplyOptions {
            preserve_owner: is_root(),
        },
    )
    .unwrap();
    assert_eq!(
        fs::read(dst.join(&long_dir).join(&long_dir).join(&long_file)).unwrap(),
        b"long"
    );
    assert_eq!(
        fs::read_link(dst.join(&long_dir).join("l"))
            .unwrap()
            .to_str(),
        Some(target.as_str())
    );
    assert_eq!(snapshot(&dst), snapshot(&src));
}

#[test]
fn sparse_file_with_many_extents_uses_extension_headers() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    // 60 data extents: 4 fit the GNU header, the rest need three extension blocks.
    let f = fs::File::create(src.join("holes")).unwrap();
    f.set_len(64 * MB + 100).unwrap();
    for i in 0..60u64 {
        f.write_all_at(&[i as u8 + 1; 4096], i * MB).unwrap();
    }
    f.write_all_at(b"tail", 64 * MB + 96).unwrap();
    drop(f);
    let mut tar = Vec::new();
    export_layer(&src, &mut tar).unwrap();
    assert!(
        (tar.len() as u64) < MB,
        "holes were written densely: {}",
        tar.len()
    );
    // The entry really is GNU sparse with extension headers.
    let h = tar::Header::from_byte_slice(&tar[..512]);
    assert_eq!(h.entry_type(), tar::EntryType::GNUSparse);
    assert!(h.as_gnu().unwrap().is_extended());
    let dst = work.path().join("dst");
    fs::create_dir(&dst).unwrap();
    apply_layer(
        &tar[..],
        &dst,
        &ApplyOptions {
            preserve_owner: is_root(),
        },
    )
    .unwrap();
    let m = fs::metadata(dst.join("holes")).unwrap();
    assert_eq!(m.len(), 64 * MB + 100);
    assert!(
        m.blocks() * 512 < 2 * MB,
        "not sparse: {} blocks",
        m.blocks()
    );
    assert_eq!(snapshot(&dst), snapshot(&src));
}

#[test]
fn blank_numeric_fields_read_as_zero() {
    // Some writers leave uid/gid/mtime blank; Go's archive/tar (Docker) reads 0.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("f").unwrap();
    h.set_size(2);
    h.set_mode(0o640);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"hi"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let dst = tempfile::tempdir().unwrap();
    apply_layer(
        &tar[..],
        dst.path(),
        &ApplyOptions {
            preserve_owner: is_root(),
        },
    )
    .unwrap();
    let m = fs::metadata(dst.path().join("f")).unwrap();
    assert_eq!(m.mtime(), 0);
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (0, 0));
    }
}
