//! Shared helpers for the kernel tests.
//!
//! Every test runs inside its own "world": a thread that unshared a fresh network namespace, with
//! a single-threaded tokio runtime, so the bridge, veths, `inet berth` table, sysctls and
//! published ports of a test never touch the host's (or a running dockerd's) and vanish with the
//! thread even when the test is killed. Only the container netns bind mounts live in the host's
//! mount namespace; they sit in a temp dir named after the test's pid and are removed by guards,
//! or by `clean_stale_mounts` at the start of a later run.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_network::bridge::{BridgeNetwork, EndpointRequest};
use berth_network::ipam::IpamConfig;
use berth_network::netns::{create_netns, remove_netns};

const PREFIX: &str = "berth-nettest-";

/// Panics unless running as root: these tests need CAP_NET_ADMIN and CAP_SYS_ADMIN.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "berth-network kernel tests must run as root (CI runs them as root)"
    );
}

/// Runs `f` on a thread in a fresh netns with `lo` up, on a current-thread runtime.
pub fn in_world<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    require_root();
    clean_stale_mounts();
    let r = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare netns");
        run(&["ip", "link", "set", "lo", "up"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(f());
    })
    .join();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

/// Runs a command (in the calling thread's netns); panics on failure; returns stdout.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs a command, returns whether it succeeded.
pub fn ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// `busybox ping -c1 -W1 ip` run inside the netns at `ns` (or the caller's netns for `None`).
pub fn ping(ns: Option<&Path>, ip: Ipv4Addr) -> bool {
    let ip = ip.to_string();
    match ns {
        Some(ns) => {
            let net = format!("--net={}", ns.display());
            ok(&["nsenter", &net, "/bin/busybox", "ping", "-c1", "-W1", &ip])
        }
        None => ok(&["/bin/busybox", "ping", "-c1", "-W1", &ip]),
    }
}

/// `ping` until it answers (10 s at most): a fresh veth's bridge port starts forwarding only
/// once the kernel's link watcher has seen its carrier, which can lag under load. For positive
/// checks; negative checks use a single [`ping`] after a positive one proved the path is up.
pub fn ping_ok(ns: Option<&Path>, ip: Ipv4Addr) -> bool {
    eventually(|| ping(ns, ip))
}

/// A unique small number per call in this process.
pub fn seq() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A bridge name unique to this process: `bt<pid><n>` (≤ 15 bytes).
pub fn bridge_name() -> String {
    format!("bt{}x{}", std::process::id(), seq())
}

/// A test network on 10.199.<n>.0/24.
pub fn network(n: u8, internal: bool, icc: bool) -> BridgeNetwork {
    BridgeNetwork {
        id: format!("net{}-{n}", std::process::id()),
        bridge: bridge_name(),
        ipam: IpamConfig {
            subnet: format!("10.199.{n}.0/24").parse().unwrap(),
            gateway: Ipv4Addr::new(10, 199, n, 1),
            ip_range: None,
        },
        mtu: Some(1500),
        internal,
        icc,
    }
}

/// A temp dir for the test's state (IPAM) and netns files; its name carries our pid.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .tempdir()
        .unwrap()
}

/// A container netns pinned under `dir`, removed on drop.
pub struct Netns(pub PathBuf);

impl Netns {
    pub fn new(dir: &Path) -> Self {
        let p = dir.join(format!("ns{}", seq()));
        create_netns(&p).unwrap();
        Netns(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = remove_netns(&self.0);
    }
}

/// An endpoint request without ports.
pub fn request(id: &str, ns: &Netns) -> EndpointRequest {
    EndpointRequest {
        id: id.to_string(),
        netns: ns.path().to_path_buf(),
        ifname: "eth0".into(),
        ip: None,
        ports: vec![],
        default_route: true,
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `busybox httpd` serving `dir` on port 80 inside `ns`.
pub fn httpd(ns: &Path, dir: &Path) -> Proc {
    let net = format!("--net={}", ns.display());
    Proc(
        Command::new("nsenter")
            .args([&net, "/bin/busybox", "httpd", "-f", "-p", "80", "-h"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// HTTP GET / from the caller's netns; `None` when the connection fails.
pub fn http_get(addr: std::net::SocketAddrV4) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Polls `f` until it returns true or 10 s pass (eventual states such as a veth dying after its
/// netns); returns the last result.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Links of the caller's netns, by name.
pub fn links() -> Vec<String> {
    run(&["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

/// `nft list table inet berth` text (empty when absent).
pub fn nft_table() -> String {
    Command::new("nft")
        .args(["list", "table", "inet", "berth"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

/// Unmounts and removes netns files left by killed runs of these tests (dead pid in the dir).
pub fn clean_stale_mounts() {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in info.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let Some(pos) = mp.find(PREFIX) else { continue };
        let pid: Option<i32> = mp[pos + PREFIX.len()..]
            .split('-')
            .next()
            .and_then(|p| p.parse().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = remove_netns(Path::new(mp));
        }
    }
}

/// HTTP GET / from inside the netns at `ns` with `busybox nc` (busybox's static wget crashes
/// in a netns here); returns the response or "" on failure.
pub fn http_get_in(ns: &Path, ip: Ipv4Addr, port: u16) -> String {
    use std::io::Write;
    let net = format!("--net={}", ns.display());
    let mut child = Command::new("nsenter")
        .args([
            &net,
            "/bin/busybox",
            "nc",
            "-w",
            "5",
            &ip.to_string(),
            &port.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}
