//! Hostile layer corpus: every tarball is generated here and applied into `dest` inside a
//! sandbox surrounded by a canary tree (files and dirs beside and above `dest`, including
//! ones named like the escape targets). Each case must end in a clean `Err` or a contained
//! result, and the canary tree — listing, contents, modes, mtimes, link counts — must be
//! identical afterwards, with nothing new outside `dest`.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod apply_common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use apply_common::*;
use berth_image::apply::{ApplyError, ApplyOptions, apply_layer};
use tar::EntryType;

/// Where a case runs: `sandbox/` holds the canary tree, `dest` is `sandbox/beside/dest`.
struct Sandbox {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dest: PathBuf,
}

/// Per-path facts compared before and after (not atime: reading updates it).
#[derive(Debug, PartialEq, Eq)]
struct Canary {
    kind: String,
    mode: u32,
    uid: u32,
    nlink: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let w = |p: &str, data: &[u8]| {
            let p = root.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        };
        // Above dest.
        w("outside", b"outside canary");
        w("pwned", b"not pwned");
        w("etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
        w("etc/shadow", b"root:*:1::::::\n");
        w("x", b"x above");
        fs::create_dir_all(root.join("emptydir")).unwrap();
        // Beside dest.
        w("beside/x", b"x beside");
        w("beside/outside", b"beside outside");
        w("beside/etc/shadow", b"beside shadow");
        w("beside/sub/deeper/file", b"deep canary");
        std::os::unix::fs::symlink("../outside", root.join("beside/link-out")).unwrap();
        let dest = root.join("beside/dest");
        fs::create_dir(&dest).unwrap();
        Sandbox {
            _tmp: tmp,
            root,
            dest,
        }
    }

    /// Everything outside `dest`, plus the sandbox root itself.
    fn canary(&self) -> BTreeMap<PathBuf, Canary> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.root.clone()];
        while let Some(p) = stack.pop() {
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            if p == self.dest {
                // dest itself may change (its mtime); only what is outside matters.
                continue;
            }
            if ft.is_dir() {
                for e in fs::read_dir(&p).unwrap() {
                    stack.push(e.unwrap().path());
                }
            }
            out.insert(
                p.clone(),
                Canary {
                    kind: format!("{ft:?}"),
                    mode: m.mode(),
                    uid: m.uid(),
                    nlink: m.nlink(),
                    mtime: (m.mtime(), m.mtime_nsec()),
                    ctime: (m.ctime(), m.ctime_nsec()),
                    content: ft.is_file().then(|| fs::read(&p).unwrap()),
                    link: ft.is_symlink().then(|| fs::read_link(&p).unwrap()),
                },
            );
        }
        out
    }
}

/// (link count, size, mtime, ctime) of a host file, None when absent.
type HostFacts = Option<(u64, u64, i64, i64)>;

/// Host files hostile entries aim at: their link count, size and times must not change.
fn host_targets() -> Vec<(PathBuf, HostFacts)> {
    [
        "/etc/passwd",
        "/etc/shadow",
        "/pwned",
        "/tmp/pwned",
        "/etc/pwned",
        "/outside",
    ]
    .iter()
    .map(|p| {
        let m = fs::symlink_metadata(p).ok();
        (
            PathBuf::from(p),
            m.map(|m| (m.nlink(), m.len(), m.mtime(), m.ctime())),
        )
    })
    .collect()
}

/// Ok when nothing outside dest changed, else what did.
fn compare_canary(
    before: &BTreeMap<PathBuf, Canary>,
    after: &BTreeMap<PathBuf, Canary>,
) -> Result<(), String> {
    if before.keys().ne(after.keys()) {
        return Err(format!(
            "files appeared or vanished outside dest: before {:?}, after {:?}",
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        ));
    }
    for (p, b) in before {
        if after.get(p) != Some(b) {
            return Err(format!(
                "canary {} changed: {b:?} -> {:?}",
                p.display(),
                after.get(p)
            ));
        }
    }
    Ok(())
}

enum Expect {
    /// Must fail, and the error must satisfy the check.
    Err(fn(&ApplyError) -> bool),
    /// Must succeed; the check looks at dest.
    Ok(fn(&Path)),
    /// Either outcome is acceptable; only containment is checked.
    Contained,
}

/// Run one case: build the tarball (it may use the sandbox's absolute paths), apply,
/// check the outcome and the canaries.
fn run(name: &str, build: fn(&Sandbox) -> Vec<u8>, expect: Expect) {
    let sb = Sandbox::new();
    let before = sb.canary();
    let host_before = host_targets();
    let blob = build(&sb);
    let res = apply_layer(
        &blob[..],
        &sb.dest,
        &ApplyOptions {
            preserve_owner: is_root(),
        },
    );
    eprintln!("case {name}: {res:?}");
    if let Err(e) = &res {
        // The error renders with its chain and names the entry or step.
        let msg = format!("{e}");
        assert!(!msg.is_empty());
    }
    if let Err(diff) = compare_canary(&before, &sb.canary()) {
        panic!("case {name}: {diff}");
    }
    assert_eq!(
        host_before,
        host_targets(),
        "case {name}: host target files changed"
    );
    match expect {
        Expect::Err(check) => match res {
            Err(e) => assert!(check(&e), "case {name}: unexpected error kind: {e:?}"),
            Ok(o) => panic!("case {name}: expected an error, got {o:?}"),
        },
        Expect::Ok(check) => {
            res.unwrap_or_else(|e| panic!("case {name}: expected success, got {e:?}"));
            check(&sb.dest);
        }
        Expect::Contained => {}
    }
}

macro_rules! case {
    ($name:ident, $build:expr, $expect:expr) => {
        #[test]
        fn $name() {
            run(stringify!($name), $build, $expect);
        }
    };
}

fn abs(sb: &Sandbox, rel: &str) -> String {
    sb.root.join(rel).display().to_string()
}

fn file_is(dest: &Path, rel: &str, data: &[u8]) {
    assert_eq!(fs::read(dest.join(rel)).unwrap(), data, "{rel}");
}

fn is_unsafe(e: &ApplyError) -> bool {
    matches!(e, ApplyError::UnsafePath { .. })
}

fn is_io(e: &ApplyError) -> bool {
    matches!(e, ApplyError::Io { .. } | ApplyError::UnsafePath { .. })
}

fn is_tar(e: &ApplyError) -> bool {
    matches!(e, ApplyError::Tar { .. })
}

fn is_decompress(e: &ApplyError) -> bool {
    matches!(e, ApplyError::Decompress { .. })
}

// ---- `..` in every form: cleaned to a path inside the root --------------------------------

case!(
    dotdot_plain,
    |_| TarBuilder::new().file("../pwned", b"p", 0o644).finish(),
    Expect::Ok(|d| file_is(d, "pwned", b"p"))
);
case!(
    dotdot_after_dir,
    |_| TarBuilder::new()
        .file("a/../../pwned", b"p", 0o644)
        .finish(),
    Expect::Ok(|d| file_is(d, "pwned", b"p"))
);
case!(
    dot_dotdot,
    |_| TarBuilder::new().file("./../pwned", b"p", 0o644).finish(),
    Expect::Ok(|d| file_is(d, "pwned", b"p"))
);
case!(
    root_dotdot,
    |_| TarBuilder::new().file("/../pwned", b"p", 0o644).finish(),
    Expect::Ok(|d| file_is(d, "pwned", b"p"))
);
case!(
    many_dotdots,
    |_| TarBuilder::new()
        .file("../../../../../../../../../../../outside", b"p", 0o644)
        .finish(),
    Expect::Ok(|d| file_is(d, "outside", b"p"))
);
case!(
    dotdot_dir_entry,
    |_| TarBuilder::new()
        .dir("../../emptydir/", 0o777)
        .file("../../emptydir/pwned", b"p", 0o644)
        .finish(),
    Expect::Ok(|d| file_is(d, "emptydir/pwned", b"p"))
);
case!(
    pax_path_dotdot,
    |_| {
        let mut t = TarBuilder::new();
        t.b.append_pax_extensions([("path", &b"../../pwned"[..])])
            .unwrap();
        t.file("harmless", b"p", 0o644).finish()
    },
    Expect::Ok(|d| file_is(d, "pwned", b"p"))
);

// ---- absolute names ---------------------------------------------------------------------

case!(
    absolute_etc,
    |_| TarBuilder::new().file("/etc/pwned", b"p", 0o644).finish(),
    Expect::Ok(|d| file_is(d, "etc/pwned", b"p"))
);
case!(
    absolute_to_canary,
    |sb| TarBuilder::new()
        .file(&abs(sb, "outside"), b"p", 0o644)
        .finish(),
    Expect::Ok(|d| assert!(fs::read_dir(d).unwrap().count() == 1))
);
case!(
    absolute_tmp,
    |_| TarBuilder::new().file("/tmp/pwned", b"p", 0o644).finish(),
    Expect::Ok(|d| file_is(d, "tmp/pwned", b"p"))
);

// ---- symlinks ---------------------------------------------------------------------------

case!(
    abs_symlink_then_write_through,
    |sb| TarBuilder::new()
        .symlink("evil", &abs(sb, ""))
        .file("evil/pwned", b"p", 0o644)
        .finish(),
    Expect::Contained
);
case!(
    abs_symlink_to_root_then_write,
    |_| TarBuilder::new()
        .symlink("evil", "/")
        .file("evil/pwned", b"p", 0o644)
        .finish(),
    Expect::Ok(|d| file_is(d, "pwned", b"p"))
);
case!(
    rel_symlink_escape,
    |_| TarBuilder::new()
        .symlink("evil", "../../..")
        .file("evil/outside", b"p", 0o644)
        .finish(),
    Expect::Ok(|d| file_is(d, "outside", b"p"))
);
case!(
    rel_symlink_escape_deeper,
    |_| TarBuilder::new()
        .dir("a/b/", 0o755)
        .symlink("a/b/up", "../../../beside")
        .file("a/b/up/x", b"p", 0o644)
        .finish(),
    Expect::Contained
);
case!(
    symlink_chain_escape,
    |_| TarBuilder::new()
        .symlink("l1", "l2")
        .symlink("l2", "sub/../l3")
        .symlink("l3", "../../../../")
        .file("l1/pwned", b"p", 0o644)
        .finish(),
    Expect::Contained
);
case!(
    symlink_chain_abs_escape,
    |sb| {
        let target = abs(sb, "beside");
        let mut t = TarBuilder::new();
        t.dir("sub/", 0o755)
            .symlink("l1", "sub/l2")
            .symlink("sub/l2", "../l3");
        t.symlink("l3", &target).file("l1/x", b"p", 0o644).finish()
    },
    Expect::Contained
);
case!(
    dir_symlink_from_earlier_entry,
    |sb| {
        let target = abs(sb, "beside");
        TarBuilder::new()
            .dir("dir/", 0o755)
            .file("dir/ok", b"ok", 0o644)
            .symlink("dir", &target)
            .file("dir/x", b"p", 0o644)
            .finish()
    },
    Expect::Contained
);
case!(
    dir_symlink_dotdot_then_file,
    |_| TarBuilder::new()
        .symlink("dir", "..")
        .file("dir/outside", b"p", 0o644)
        .file("dir/dir/dir/pwned", b"q", 0o644)
        .finish(),
    Expect::Ok(|d| {
        file_is(d, "outside", b"p");
        file_is(d, "pwned", b"q");
    })
);
case!(
    symlink_to_proc_self_root,
    |sb| {
        let inner = format!("/proc/self/root{}", abs(sb, "beside"));
        TarBuilder::new()
            .symlink("p", "/proc/self/root")
            .file("p/pwned", b"p", 0o644)
            .symlink("q", &inner)
            .file("q/x", b"p", 0o644)
            .finish()
    },
    Expect::Contained
);
case!(
    symlink_to_proc_self_cwd_fd,
    |_| TarBuilder::new()
        .symlink("fd", "/proc/self/fd/3")
        .file("fd/pwned", b"p", 0o644)
        .finish(),
    Expect::Contained
);
case!(
    symlink_loop,
    |_| TarBuilder::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/pwned", b"p", 0o644)
        .finish(),
    Expect::Err(is_io)
);
case!(
    whiteout_through_symlink,
    |sb| TarBuilder::new()
        .symlink("s", &abs(sb, ""))
        .file("s/.wh.outside", b"", 0o644)
        .file("s/beside/.wh.x", b"", 0o644)
        .finish(),
    Expect::Contained
);
case!(
    whiteout_through_dotdot_symlink,
    |_| TarBuilder::new()
        .symlink("s", "../..")
        .file("s/.wh.outside", b"", 0o644)
        .finish(),
    Expect::Contained
);
case!(
    opaque_through_symlink,
    |sb| TarBuilder::new()
        .symlink("s", &abs(sb, "beside"))
        .file("s/.wh..wh..opq", b"", 0o644)
        .finish(),
    Expect::Contained
);

// ---- hardlinks --------------------------------------------------------------------------

case!(
    hardlink_abs_shadow,
    |_| TarBuilder::new().hardlink("stolen", "/etc/shadow").finish(),
    Expect::Err(is_io)
);
case!(
    hardlink_dotdot_outside,
    |_| TarBuilder::new()
        .hardlink("stolen", "../../outside")
        .finish(),
    Expect::Err(is_io)
);
case!(
    hardlink_abs_canary,
    |sb| TarBuilder::new()
        .hardlink("stolen", &abs(sb, "outside"))
        .finish(),
    Expect::Err(is_io)
);
case!(
    symlink_etc_then_hardlink_through,
    |_| TarBuilder::new()
        .symlink("etc", "/etc")
        .hardlink("stolen", "etc/shadow")
        .finish(),
    Expect::Err(is_io)
);
case!(
    symlink_canary_dir_then_hardlink_through,
    |sb| TarBuilder::new()
        .symlink("d", &abs(sb, ""))
        .hardlink("stolen", "d/outside")
        .finish(),
    Expect::Err(is_io)
);
case!(
    hardlink_to_symlink_pointing_out,
    |sb| TarBuilder::new()
        .symlink("s", &abs(sb, "outside"))
        .hardlink("h", "s")
        .finish(),
    Expect::Ok(|d| {
        let m = fs::symlink_metadata(d.join("h")).unwrap();
        assert!(
            m.file_type().is_symlink(),
            "hardlink must link the symlink itself"
        );
        assert_eq!(m.nlink(), 2);
    })
);
case!(
    hardlink_to_symlink_then_write,
    |sb| TarBuilder::new()
        .symlink("s", &abs(sb, ""))
        .hardlink("h", "s")
        .file("h/outside", b"p", 0o644)
        .finish(),
    Expect::Contained
);
case!(
    hardlink_inside_ok,
    |_| TarBuilder::new()
        .file("a/f", b"data", 0o644)
        .hardlink("b/g", "/a/../a/f")
        .finish(),
    Expect::Ok(|d| {
        assert_eq!(
            fs::metadata(d.join("a/f")).unwrap().ino(),
            fs::metadata(d.join("b/g")).unwrap().ino()
        );
    })
);
case!(
    hardlink_to_dir,
    |_| TarBuilder::new()
        .dir("d/", 0o755)
        .hardlink("h", "d")
        .finish(),
    Expect::Err(is_io)
);
case!(
    hardlink_to_root,
    |_| TarBuilder::new().hardlink("h", "/").finish(),
    Expect::Err(is_unsafe)
);
case!(
    hardlink_to_missing,
    |_| TarBuilder::new().hardlink("h", "nope").finish(),
    Expect::Err(is_io)
);

// ---- whiteouts --------------------------------------------------------------------------

case!(
    whiteout_dot,
    |_| TarBuilder::new().file(".wh..", b"", 0o644).finish(),
    Expect::Err(is_unsafe)
);
case!(
    whiteout_dotdot,
    |_| TarBuilder::new().file(".wh...", b"", 0o644).finish(),
    Expect::Err(is_unsafe)
);
case!(
    whiteout_empty,
    |_| TarBuilder::new().file("a/.wh.", b"", 0o644).finish(),
    Expect::Err(is_unsafe)
);
case!(
    whiteout_of_dotdot_x,
    |_| TarBuilder::new()
        .file("../.wh.outside", b"", 0o644)
        .file("../../.wh.x", b"", 0o644)
        .finish(),
    Expect::Contained
);
case!(
    opaque_at_root,
    |_| TarBuilder::new().file(".wh..wh..opq", b"", 0o644).finish(),
    Expect::Contained
);

// ---- names and sizes --------------------------------------------------------------------

case!(
    component_300_chars,
    |_| TarBuilder::new()
        .file(&"a".repeat(300), b"p", 0o644)
        .finish(),
    Expect::Err(is_io)
);
case!(
    dir_component_300_chars,
    |_| {
        let name = format!("{}/f", "d".repeat(300));
        TarBuilder::new().file(&name, b"p", 0o644).finish()
    },
    Expect::Err(is_io)
);
case!(
    path_5000_chars,
    |_| {
        let name = vec!["c".repeat(99); 50].join("/");
        TarBuilder::new().file(&name, b"p", 0o644).finish()
    },
    Expect::Err(is_io)
);
case!(
    empty_name_file,
    |_| TarBuilder::new().file("", b"p", 0o644).finish(),
    Expect::Err(is_unsafe)
);
case!(
    root_dir_entry_is_fine,
    |_| TarBuilder::new()
        .dir("./", 0o755)
        .file("./f", b"p", 0o644)
        .finish(),
    Expect::Ok(|d| file_is(d, "f", b"p"))
);

// ---- corrupt streams --------------------------------------------------------------------

fn sample() -> Vec<u8> {
    TarBuilder::new()
        .file("a", &[b'a'; 3000], 0o644)
        .file("b", &[b'b'; 3000], 0o644)
        .finish()
}

case!(
    truncated_gzip,
    |_| {
        let g = gzip(&sample());
        g[..g.len() - 12].to_vec()
    },
    Expect::Err(|e| is_decompress(e) || is_tar(e))
);
case!(
    truncated_gzip_header,
    |_| gzip(&sample())[..6].to_vec(),
    Expect::Err(is_decompress)
);
case!(
    truncated_zstd,
    |_| {
        let z = zstd(&sample());
        z[..z.len() / 2].to_vec()
    },
    Expect::Err(|e| is_decompress(e) || is_tar(e))
);
case!(
    truncated_tar_mid_data,
    |_| sample()[..512 + 1000].to_vec(),
    Expect::Err(is_tar)
);
case!(
    truncated_tar_mid_header,
    |_| sample()[..300].to_vec(),
    Expect::Err(is_tar)
);
case!(
    garbage_bytes,
    |_| {
        let mut x: u32 = 0x1234_5678;
        (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    },
    Expect::Err(is_tar)
);
case!(
    gzip_magic_then_garbage,
    |_| {
        let mut v = vec![0x1f, 0x8b];
        v.extend((0..1000u32).map(|i| (i * 7) as u8));
        v
    },
    Expect::Err(is_decompress)
);
case!(
    gzip_trailing_garbage,
    |_| {
        let mut g = gzip(&sample());
        g.extend_from_slice(b"trailing junk that is not gzip");
        g
    },
    Expect::Err(is_decompress)
);

// ---- hostile header numbers -------------------------------------------------------------

/// One regular-file entry whose header `tweak` edits after the path is set.
fn tweaked(tweak: fn(&mut tar::Header), data: &[u8], fix_cksum: bool) -> Vec<u8> {
    let mut h = header(EntryType::Regular, data.len() as u64, 0o644);
    h.set_path("victim").unwrap();
    tweak(&mut h);
    if fix_cksum {
        h.set_cksum();
    }
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0; 1024]);
    out
}

case!(
    size_claims_1tb,
    |_| tweaked(|h| h.set_size(1 << 40), b"tiny", true),
    Expect::Err(is_tar)
);
case!(
    size_base256_max,
    |_| tweaked(
        |h| {
            let f = &mut h.as_old_mut().size;
            f.fill(0xff);
            f[0] = 0x80 | 0x7f;
        },
        b"tiny",
        true
    ),
    Expect::Err(is_tar)
);
case!(
    size_not_octal,
    |_| tweaked(
        |h| h.as_old_mut().size.copy_from_slice(b"-0000000001\0"),
        b"",
        true
    ),
    Expect::Err(is_tar)
);
case!(
    mode_negative_base256,
    |_| tweaked(|h| h.as_old_mut().mode.fill(0xff), b"x", true),
    Expect::Contained
);
case!(
    uid_negative_base256,
    |_| tweaked(|h| h.as_old_mut().uid.fill(0xff), b"x", true),
    Expect::Err(is_tar)
);
case!(
    mtime_garbage,
    |_| tweaked(
        |h| h.as_old_mut().mtime.copy_from_slice(b"zzzzzzzzzzz\0"),
        b"x",
        true
    ),
    Expect::Err(is_tar)
);
case!(
    bad_checksum,
    |_| tweaked(|h| h.set_mode(0o4777), b"x", false),
    Expect::Err(is_tar)
);
case!(
    pax_record_claims_1tb,
    |_| {
        let mut h = header(EntryType::XHeader, 1 << 40, 0o644);
        h.set_path("pax").unwrap();
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(b"20 path=whatever\n");
        out
    },
    Expect::Err(is_tar)
);
case!(
    pax_bad_record,
    |_| {
        let mut t = TarBuilder::new();
        let mut h = header(EntryType::XHeader, 9, 0o644);
        h.set_path("pax").unwrap();
        h.set_cksum();
        t.b.append(&h, &b"99999 a=\n"[..]).unwrap();
        t.file("f", b"p", 0o644).finish()
    },
    Expect::Err(is_tar)
);

// ---- duplicates, specials, privileges ---------------------------------------------------

case!(
    duplicate_file_dir_symlink,
    |_| TarBuilder::new()
        .file("dup", b"file", 0o644)
        .dir("dup/", 0o755)
        .file("dup/inner", b"i", 0o644)
        .symlink("dup", "/etc/passwd")
        .finish(),
    Expect::Ok(|d| {
        assert_eq!(
            fs::read_link(d.join("dup")).unwrap(),
            Path::new("/etc/passwd")
        );
    })
);
case!(
    duplicate_symlink_then_file,
    |sb| TarBuilder::new()
        .symlink("f", &abs(sb, "outside"))
        .file("f", b"replaced", 0o644)
        .finish(),
    Expect::Ok(|d| {
        assert!(fs::symlink_metadata(d.join("f")).unwrap().is_file());
        file_is(d, "f", b"replaced");
    })
);
case!(
    device_node_host_disk,
    |_| TarBuilder::new()
        .device(EntryType::Block, "sda", 8, 0)
        .device(EntryType::Char, "mem", 1, 1)
        .finish(),
    Expect::Ok(|d| {
        if is_root() {
            let m = fs::symlink_metadata(d.join("sda")).unwrap();
            assert!(m.file_type().is_block_device());
            assert_eq!(m.rdev(), rustix::fs::makedev(8, 0));
        } else {
            assert!(
                !d.join("sda").exists(),
                "device nodes are skipped when not root"
            );
        }
    })
);
case!(
    setuid_root_file,
    |_| {
        let mut t = TarBuilder::new();
        t.file("bin/su", b"#!/bin/sh\n", 0o4755);
        t.file("bin/sg", b"#!/bin/sh\n", 0o2755);
        t.finish()
    },
    Expect::Ok(|d| {
        let m = fs::metadata(d.join("bin/su")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
        if is_root() {
            assert_eq!(m.uid(), 0);
        }
        assert_eq!(
            fs::metadata(d.join("bin/sg")).unwrap().permissions().mode() & 0o7777,
            0o2755
        );
    })
);
case!(
    fifo_entry,
    |_| TarBuilder::new()
        .device(EntryType::Fifo, "pipe", 0, 0)
        .finish(),
    Expect::Ok(|d| assert!(
        fs::symlink_metadata(d.join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    ))
);
case!(
    overlay_xattrs_from_tar_ignored,
    |_| {
        let mut t = TarBuilder::new();
        t.b.append_pax_extensions([
            ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
            ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
            ("SCHILY.xattr.user.ok", &b"1"[..]),
        ])
        .unwrap();
        t.dir("d/", 0o755).finish()
    },
    Expect::Ok(|d| {
        let names: Vec<String> = xattrs_of(&d.join("d"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with("trusted.overlay.")),
            "{names:?}"
        );
        assert!(names.contains(&"user.ok".to_string()), "{names:?}");
    })
);
case!(
    unknown_entry_type_skipped,
    |_| {
        let mut t = TarBuilder::new();
        let mut h = header(EntryType::new(b'Z'), 3, 0o644);
        h.set_path("weird").unwrap();
        h.set_cksum();
        t.b.append(&h, &b"abc"[..]).unwrap();
        t.file("after", b"ok", 0o644).finish()
    },
    Expect::Ok(|d| {
        assert!(!d.join("weird").exists());
        file_is(d, "after", b"ok");
    })
);

// ---- oversized extension headers (decompression bombs aimed at the tar reader) ----------

fn too_large(e: &ApplyError) -> bool {
    matches!(e, ApplyError::Tar { source, .. } if source.to_string().contains("limit"))
}

/// A PAX header with `n` bytes of real records.
fn big_pax(t: &mut TarBuilder, n: usize) {
    let value = vec![b'a'; n];
    t.b.append_pax_extensions([("comment", &value[..])])
        .unwrap();
}

case!(
    pax_header_2mib_gzipped,
    |_| {
        let mut t = TarBuilder::new();
        big_pax(&mut t, 2 << 20);
        gzip(&t.file("f", b"p", 0o644).finish())
    },
    Expect::Err(too_large)
);
case!(
    gnu_longname_2mib,
    |_| {
        let name = "n/".repeat(1 << 20);
        TarBuilder::new().file(&name, b"p", 0o644).finish()
    },
    Expect::Err(too_large)
);
case!(
    pax_header_just_under_limit_is_fine,
    |_| {
        let mut t = TarBuilder::new();
        big_pax(&mut t, 1000 * 1000);
        t.file("f", b"p", 0o644).finish()
    },
    Expect::Ok(|d| file_is(d, "f", b"p"))
);
case!(
    pax_size_override_then_big_pax,
    |_| {
        // The PAX `size` wins over the header's; the guard must follow it to stay in step
        // and still catch the oversized header after it.
        let mut t = TarBuilder::new();
        t.b.append_pax_extensions([("size", &b"5000"[..])]).unwrap();
        let mut h = header(EntryType::Regular, 0, 0o644);
        h.set_path("sized").unwrap();
        h.set_cksum();
        let mut bytes = t.finish();
        bytes.truncate(bytes.len() - 1024); // drop end-of-archive
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(&[b'z'; 5000]);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        let mut t2 = TarBuilder::new();
        big_pax(&mut t2, 2 << 20);
        bytes.extend(t2.file("g", b"p", 0o644).finish());
        bytes
    },
    Expect::Err(too_large)
);
case!(
    sparse_ext_headers_then_big_pax,
    |_| {
        // A GNU sparse entry with extension blocks, then an oversized PAX header.
        let dir = tempfile::tempdir().unwrap();
        let f = fs::File::create(dir.path().join("holes")).unwrap();
        f.set_len(40 << 20).unwrap();
        for i in 0..30u64 {
            std::os::unix::fs::FileExt::write_all_at(&f, &[1; 4096], i << 20).unwrap();
        }
        drop(f);
        let mut bytes = Vec::new();
        berth_image::apply::export_layer(dir.path(), &mut bytes).unwrap();
        assert_eq!(bytes[156], b'S');
        bytes.truncate(bytes.len() - 1024);
        let mut t2 = TarBuilder::new();
        big_pax(&mut t2, 2 << 20);
        bytes.extend(t2.file("g", b"p", 0o644).finish());
        bytes
    },
    Expect::Err(too_large)
);

// ---- the harness itself ------------------------------------------------------------------

#[test]
fn canary_detects_changes_outside_dest() {
    let sb = Sandbox::new();
    let before = sb.canary();
    assert!(compare_canary(&before, &sb.canary()).is_ok());
    // Writing inside dest is not a change.
    fs::write(sb.dest.join("inside"), b"fine").unwrap();
    assert!(compare_canary(&before, &sb.canary()).is_ok());
    // A new file beside dest, a rewritten canary, an extra hardlink: all detected.
    fs::write(sb.root.join("beside/pwned"), b"x").unwrap();
    assert!(compare_canary(&before, &sb.canary()).is_err());
    fs::remove_file(sb.root.join("beside/pwned")).unwrap();
    let before = sb.canary();
    fs::write(sb.root.join("outside"), b"outside canarY").unwrap();
    assert!(compare_canary(&before, &sb.canary()).is_err());
    let before = sb.canary();
    fs::hard_link(sb.root.join("etc/shadow"), sb.dest.join("stolen")).unwrap();
    assert!(compare_canary(&before, &sb.canary()).is_err());
}

/// Random byte flips in a layer full of links and whiteouts: every outcome must be a clean
/// `Ok`/`Err` (no panic) and contained. Deterministic seeds; the failing round is printed.
#[test]
fn mutated_layers_never_escape() {
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut outcomes = [0u32; 2];
    for round in 0..150 {
        let sb = Sandbox::new();
        let target = sb.root.join("beside").display().to_string();
        let mut t = TarBuilder::new();
        t.dir("d/", 0o755)
            .file("d/f", b"data", 0o644)
            .symlink("up", "../..")
            .symlink("abs", &target)
            .hardlink("d/h", "d/f")
            .file("up/x", b"p", 0o644)
            .file("d/.wh.f2", b"", 0o644)
            .symlink("d/s", "/etc")
            .file(".wh..wh..opq", b"", 0o644)
            .device(EntryType::Fifo, "fifo", 0, 0);
        let mut blob = t.finish();
        let headers: Vec<usize> = tar::Archive::new(&blob[..])
            .entries()
            .unwrap()
            .raw(true)
            .map(|e| e.unwrap().raw_header_position() as usize)
            .collect();
        let flips = 1 + next() % 4;
        for _ in 0..flips {
            // Mostly header bytes (names, types, sizes, link names), sometimes anywhere.
            let block = (next() as usize % (blob.len() / 512)) * 512;
            let off = if next().is_multiple_of(4) {
                next() as usize % blob.len()
            } else {
                block + (next() as usize % 345)
            };
            blob[off] = match next() % 4 {
                0 => b'/',
                1 => b'.',
                2 => next() as u8,
                _ => 0,
            };
        }
        // Fix the checksums so the mutations reach the apply logic, not just the checksum.
        for &h in &headers {
            let mut hdr = tar::Header::new_old();
            hdr.as_mut_bytes().copy_from_slice(&blob[h..h + 512]);
            hdr.set_cksum();
            blob[h..h + 512].copy_from_slice(hdr.as_bytes());
        }
        let before = sb.canary();
        let res = apply_layer(
            &blob[..],
            &sb.dest,
            &ApplyOptions {
                preserve_owner: is_root(),
            },
        );
        if let Err(diff) = compare_canary(&before, &sb.canary()) {
            panic!("round {round}: {diff}; result {res:?}");
        }
        outcomes[usize::from(res.is_ok())] += 1;
    }
    eprintln!("mutations: {} errors, {} applied", outcomes[0], outcomes[1]);
    assert!(
        outcomes[0] > 10 && outcomes[1] > 10,
        "mutations should reach both outcomes: {outcomes:?}"
    );
}
