//! Bridge networking end to end (issue 8's acceptance): the real docker CLI against a berthd
//! running in a private network namespace (`Berthd::start_networked`), whose "host" side is
//! inspected with `host_cmd` (ip, nft, wget). Each test has its own netns, so they run in
//! parallel and everything they create in the kernel goes away with the namespace.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Berthd;

/// The address the tests give the "host" (berthd's netns) on a dummy interface: an address of
/// the host that is not on any bridge (TEST-NET-2).
const HOST_ADDR: &str = "198.51.100.1";

fn out(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs the docker CLI and asserts success; returns stdout trimmed.
fn ok(b: &Berthd, args: &[&str]) -> String {
    let (code, o, e) = out(&b.docker(args));
    assert_eq!(
        code,
        0,
        "docker {args:?} failed: {e}\nstdout: {o}\nberthd log tail: {}",
        tail(&b.log())
    );
    o.trim().to_owned()
}

/// Runs the docker CLI expecting failure; returns (exit code, stderr).
fn fails(b: &Berthd, args: &[&str]) -> (i32, String) {
    let (code, o, e) = out(&b.docker(args));
    assert_ne!(code, 0, "docker {args:?} should fail; stdout: {o}");
    (code, e)
}

fn host_ok(b: &Berthd, args: &[&str]) -> String {
    let (code, o, e) = out(&b.host_cmd(args));
    assert_eq!(code, 0, "host {args:?} failed: {e}\n{o}");
    o
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A networked berthd with busybox loaded and an "uplink" (one end of a veth pair; this
/// kernel has no dummy driver) carrying [`HOST_ADDR`].
fn ready() -> Berthd {
    let b = Berthd::start_networked(&[]);
    b.load_busybox();
    host_ok(
        &b,
        &[
            "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1",
        ],
    );
    host_ok(&b, &["ip", "link", "set", "uplink1", "up"]);
    host_ok(
        &b,
        &[
            "ip",
            "addr",
            "add",
            &format!("{HOST_ADDR}/24"),
            "dev",
            "uplink0",
        ],
    );
    host_ok(&b, &["ip", "link", "set", "uplink0", "up"]);
    b
}

/// `IPAddress` of container `c` on network `net`.
fn ip_of(b: &Berthd, c: &str, net: &str) -> String {
    let ip = ok(
        b,
        &[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            c,
        ],
    );
    assert!(
        ip.parse::<std::net::Ipv4Addr>().is_ok(),
        "{c} on {net}: {ip:?}"
    );
    ip
}

fn sleeper(b: &Berthd, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend(["busybox", "sleep", "1000"]);
    ok(b, &args)
}

/// `ping -c1` from inside container `c`; true when answered.
fn pings(b: &Berthd, c: &str, target: &str) -> bool {
    b.docker(&["exec", c, "ping", "-c", "1", "-W", "2", target])
        .status
        .success()
}

/// The busybox shell command serving `text` with httpd on port 80 in the foreground.
fn httpd_cmd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")
}

/// `curl` from the host (the host's static busybox wget crashes); polls (the server may still be starting) and returns the body,
/// or the last error after giving up.
fn host_get(b: &Berthd, url: &str) -> Result<String, String> {
    let mut last = String::new();
    for _ in 0..50 {
        let (code, o, e) = out(&b.host_cmd(&["curl", "-sS", "--max-time", "3", url]));
        if code == 0 {
            return Ok(o.trim().to_owned());
        }
        last = e;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(last)
}

/// One `curl` attempt from the host (for must-not-answer checks after the server is known up).
fn host_get_once(b: &Berthd, url: &str) -> bool {
    b.host_cmd(&["curl", "-sS", "--max-time", "3", url])
        .status
        .success()
}

fn subnet_of(b: &Berthd, net: &str) -> String {
    ok(
        b,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
            net,
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// 1. Reachability

#[test]
fn default_bridge_containers_ping_each_other_by_ip() {
    let b = ready();
    sleeper(&b, "ca", &[]);
    sleeper(&b, "cc", &[]);
    let ip_a = ip_of(&b, "ca", "bridge");
    let ip_c = ip_of(&b, "cc", "bridge");
    assert_ne!(ip_a, ip_c);
    let subnet_gw = subnet_of(&b, "bridge");
    let gw = subnet_gw.split_whitespace().nth(1).unwrap().to_owned();
    // The bridge carries the gateway address on the host side.
    let addrs = host_ok(&b, &["ip", "-o", "-4", "addr", "show", "dev", "berth0"]);
    assert!(addrs.contains(&format!("inet {gw}/")), "{addrs}");
    assert!(pings(&b, "ca", &ip_c), "a -> c {ip_c}");
    assert!(pings(&b, "cc", &ip_a), "c -> a {ip_a}");
    assert!(pings(&b, "ca", &gw), "a -> gateway {gw}");
    // The host reaches the container, the container reaches the host's other address.
    host_ok(&b, &["busybox", "ping", "-c", "1", "-W", "2", &ip_a]);
    assert!(pings(&b, "ca", HOST_ADDR), "a -> host address");
    // No embedded DNS on the default bridge: names do not resolve.
    assert!(
        !pings(&b, "ca", "cc"),
        "default bridge must not resolve container names"
    );
}

#[test]
fn user_network_by_name_and_alias_isolation_and_internal() {
    let b = ready();
    ok(&b, &["network", "create", "front"]);
    ok(&b, &["network", "create", "back"]);
    sleeper(&b, "web", &["--network", "front", "--network-alias", "www"]);
    sleeper(&b, "cli", &["--network", "front"]);
    sleeper(&b, "other", &["--network", "back"]);
    assert!(pings(&b, "cli", "web"), "by name");
    assert!(pings(&b, "cli", "www"), "by alias");
    assert!(pings(&b, "web", "cli"), "by name, other way");
    let (code, o, e) = out(&b.docker(&["exec", "cli", "nslookup", "www"]));
    let web_ip = ip_of(&b, "web", "front");
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains(&web_ip), "nslookup www: {o}");
    let resolv = ok(&b, &["exec", "cli", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    // Different user networks: no name, no route.
    assert!(
        !pings(&b, "other", "web"),
        "name of another network resolves"
    );
    assert!(!pings(&b, "other", &web_ip), "cross-network ping must fail");
    assert!(
        !pings(&b, "web", &ip_of(&b, "other", "back")),
        "and the other way"
    );
    // Both still reach the host (control for the failures above).
    assert!(pings(&b, "other", HOST_ADDR));

    ok(&b, &["network", "create", "--internal", "sealed"]);
    sleeper(&b, "in1", &["--network", "sealed"]);
    sleeper(&b, "in2", &["--network", "sealed"]);
    let routes = ok(&b, &["exec", "in1", "ip", "route"]);
    assert!(
        !routes.contains("default"),
        "internal network has a default route: {routes}"
    );
    assert!(
        pings(&b, "in1", "in2"),
        "internal network members reach each other"
    );
    assert!(
        !pings(&b, "in1", HOST_ADDR),
        "internal network reaches outside"
    );
    assert!(
        !pings(&b, "in1", &web_ip),
        "internal network reaches another network"
    );
    let front_routes = ok(&b, &["exec", "web", "ip", "route"]);
    assert!(front_routes.contains("default via"), "{front_routes}");
}

// ---------------------------------------------------------------------------------------------
// 2. Published ports

/// Loads `bbweb:latest`: busybox whose config exposes 80/tcp and serves `bbweb` with httpd.
fn load_web_image(b: &Berthd) {
    let rootfs = berth_fixtures::busybox_rootfs().unwrap();
    let layer = berth_fixtures::layer_tar_of(&rootfs).unwrap();
    let archive = berth_fixtures::docker_save_archive(
        &[layer],
        serde_json::json!({"config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh", "-c", httpd_cmd("bbweb")],
            "ExposedPorts": {"80/tcp": {}},
        }}),
        "bbweb:latest",
    )
    .unwrap();
    let r = common::request(
        &b.sock,
        "POST",
        "/v1.41/images/load?quiet=1",
        Some(&archive),
        "application/x-tar",
    );
    assert_eq!(r.status, 200, "load: {}", r.text());
}

#[test]
fn published_ports_answer_on_loopback_bridge_and_host_addresses() {
    let b = ready();
    load_web_image(&b);
    let gw = subnet_of(&b, "bridge")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    ok(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "lo-only",
            "-p",
            "127.0.0.1:8080:80",
            "busybox",
            "sh",
            "-c",
            &httpd_cmd("lo-only"),
        ],
    );
    ok(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "all",
            "-p",
            "8081:80",
            "busybox",
            "sh",
            "-c",
            &httpd_cmd("all"),
        ],
    );
    ok(&b, &["run", "-d", "--name", "pub-all", "-P", "bbweb"]);

    assert_eq!(host_get(&b, "http://127.0.0.1:8080/").unwrap(), "lo-only");
    // Bound to 127.0.0.1 only: the host's other addresses do not forward.
    assert!(!host_get_once(&b, &format!("http://{HOST_ADDR}:8080/")));
    assert!(!host_get_once(&b, &format!("http://{gw}:8080/")));

    for addr in ["127.0.0.1", gw.as_str(), HOST_ADDR] {
        assert_eq!(
            host_get(&b, &format!("http://{addr}:8081/")).unwrap(),
            "all",
            "via {addr}"
        );
    }
    // Another container reaches the published port through the host's address (hairpin NAT).
    let (code, o, e) = out(&b.docker(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-O-",
        &format!("http://{HOST_ADDR}:8081/"),
    ]));
    assert_eq!((code, o.trim()), (0, "all"), "{e}");

    // docker port: Docker's format.
    assert_eq!(ok(&b, &["port", "lo-only"]), "80/tcp -> 127.0.0.1:8080");
    assert_eq!(ok(&b, &["port", "all", "80"]), "0.0.0.0:8081");
    let p = ok(&b, &["port", "pub-all"]);
    let host_port: u16 = p
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .unwrap_or_else(|| panic!("docker port of -P: {p:?}"))
        .parse()
        .unwrap();
    assert!(host_port >= 1024, "{p}");
    assert_eq!(
        ok(&b, &["port", "pub-all", "80/tcp"]),
        format!("0.0.0.0:{host_port}")
    );
    let (code, e) = fails(&b, &["port", "pub-all", "81"]);
    assert_eq!(code, 1);
    assert!(e.contains("No public port '81"), "{e}");
    for addr in ["127.0.0.1", HOST_ADDR] {
        assert_eq!(
            host_get(&b, &format!("http://{addr}:{host_port}/")).unwrap(),
            "bbweb"
        );
    }
    let ports = ok(
        &b,
        &[
            "ps",
            "--format",
            "{{.Names}} {{.Ports}}",
            "-f",
            "name=lo-only",
        ],
    );
    assert_eq!(ports, "lo-only 127.0.0.1:8080->80/tcp");
}

#[test]
fn two_containers_cannot_publish_the_same_host_port() {
    let b = ready();
    ok(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "first",
            "-p",
            "8090:80",
            "busybox",
            "sh",
            "-c",
            &httpd_cmd("first"),
        ],
    );
    assert_eq!(host_get(&b, "http://127.0.0.1:8090/").unwrap(), "first");
    let (code, e) = fails(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "second",
            "-p",
            "8090:80",
            "busybox",
            "sh",
            "-c",
            &httpd_cmd("second"),
        ],
    );
    assert_eq!(code, 125, "{e}");
    assert!(
        e.contains("Bind for 0.0.0.0:8090 failed: port is already allocated"),
        "{e}"
    );
    // Also against a narrower binding of the same port.
    let (code, e) = fails(
        &b,
        &["run", "--rm", "-p", "127.0.0.1:8090:80", "busybox", "true"],
    );
    assert_eq!(code, 125, "{e}");
    assert!(e.contains("port is already allocated"), "{e}");
    // The first still serves, the failed one holds nothing: once the first is gone it starts.
    assert_eq!(host_get(&b, "http://127.0.0.1:8090/").unwrap(), "first");
    let st = ok(&b, &["inspect", "-f", "{{.State.Status}}", "second"]);
    assert_eq!(st, "created");
    ok(&b, &["rm", "-f", "first"]);
    ok(&b, &["start", "second"]);
    assert_eq!(host_get(&b, "http://127.0.0.1:8090/").unwrap(), "second");
}

// ---------------------------------------------------------------------------------------------
// 3. host, none, container: modes

fn link_names(ip_o_link: &str) -> BTreeSet<String> {
    ip_o_link
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap().to_owned())
        .collect()
}

fn nameservers(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn host_none_bridge_and_container_modes() {
    let b = ready();
    // host: the host's interfaces (berth0, uplink0) and addresses.
    let host_links = link_names(&host_ok(&b, &["ip", "-o", "link"]));
    assert!(host_links.contains("uplink0") && host_links.contains("berth0"));
    let c_links = link_names(&ok(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-o",
            "link",
        ],
    ));
    assert_eq!(c_links, host_links);
    let addrs = ok(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-o",
            "-4",
            "addr",
        ],
    );
    assert!(addrs.contains(HOST_ADDR), "{addrs}");
    let host_name = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap();
    let c_name = ok(
        &b,
        &["run", "--rm", "--network", "host", "busybox", "hostname"],
    );
    assert_eq!(
        c_name,
        host_name.trim(),
        "host mode uses the host's hostname"
    );
    let resolv = ok(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ],
    );
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert_eq!(nameservers(&resolv), nameservers(&host_resolv));
    let hosts = ok(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "cat",
            "/etc/hosts",
        ],
    );
    assert!(hosts.contains("localhost"), "{hosts}");

    // none: loopback only, up.
    let id = ok(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "nonet",
            "--network",
            "none",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    let links = ok(&b, &["exec", "nonet", "ip", "-o", "link"]);
    assert_eq!(
        link_names(&links),
        BTreeSet::from(["lo".to_owned()]),
        "{links}"
    );
    assert!(links.contains("UP"), "lo is up: {links}");
    let addrs = ok(&b, &["exec", "nonet", "ip", "-o", "-4", "addr"]);
    assert_eq!(addrs.lines().count(), 1, "{addrs}");
    assert!(addrs.contains("inet 127.0.0.1/8"), "{addrs}");
    assert_eq!(ok(&b, &["exec", "nonet", "hostname"]), id[..12]);
    let hosts = ok(&b, &["exec", "nonet", "cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("127.0.0.1") && l.contains("localhost")),
        "{hosts}"
    );
    assert!(
        !hosts.contains("172."),
        "none mode has no bridge address: {hosts}"
    );
    assert_eq!(
        ok(
            &b,
            &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "nonet"]
        ),
        ""
    );

    // bridge: eth0 in the bridge's subnet, /etc/hosts maps the hostname to it.
    ok(
        &b,
        &[
            "run", "-d", "--name", "br", "-h", "brhost", "busybox", "sleep", "1000",
        ],
    );
    let ip = ip_of(&b, "br", "bridge");
    assert_eq!(
        ok(
            &b,
            &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "br"]
        ),
        ip
    );
    let links = link_names(&ok(&b, &["exec", "br", "ip", "-o", "link"]));
    assert_eq!(links, BTreeSet::from(["lo".to_owned(), "eth0".to_owned()]));
    let addrs = ok(
        &b,
        &["exec", "br", "ip", "-o", "-4", "addr", "show", "eth0"],
    );
    assert!(addrs.contains(&format!("inet {ip}/")), "{addrs}");
    assert_eq!(ok(&b, &["exec", "br", "hostname"]), "brhost");
    let hosts = ok(&b, &["exec", "br", "cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(&ip) && l.contains("brhost")),
        "{hosts}"
    );
    let resolv = ok(&b, &["exec", "br", "cat", "/etc/resolv.conf"]);
    assert!(
        !resolv.contains("127.0.0.11"),
        "no embedded DNS on the default bridge: {resolv}"
    );

    // container:br — same interfaces, address, hostname and /etc files.
    let j_addrs = ok(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "container:br",
            "busybox",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(j_addrs.contains(&format!("inet {ip}/")), "{j_addrs}");
    assert_eq!(
        ok(
            &b,
            &[
                "run",
                "--rm",
                "--network",
                "container:br",
                "busybox",
                "hostname"
            ]
        ),
        "brhost"
    );
    assert_eq!(
        ok(
            &b,
            &[
                "run",
                "--rm",
                "--network",
                "container:br",
                "busybox",
                "cat",
                "/etc/hosts"
            ]
        ),
        hosts
    );
    assert_eq!(
        ok(
            &b,
            &[
                "run",
                "--rm",
                "--network",
                "container:br",
                "busybox",
                "cat",
                "/etc/resolv.conf"
            ]
        ),
        resolv
    );
    // The joiner serves on the shared namespace: reachable from br's localhost.
    ok(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "side",
            "--network",
            "container:br",
            "busybox",
            "sh",
            "-c",
            &httpd_cmd("side"),
        ],
    );
    let mut got = String::new();
    for _ in 0..50 {
        got = ok(
            &b,
            &[
                "exec",
                "br",
                "sh",
                "-c",
                "wget -q -O- http://127.0.0.1/ || true",
            ],
        );
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(got, "side");

    // Docker's conflicts.
    for (flags, msg) in [
        (
            &["-p", "80:80"][..],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            &["-h", "foo"][..],
            "conflicting options: hostname and the network mode",
        ),
        (
            &["--dns", "1.1.1.1"][..],
            "conflicting options: dns and the network mode",
        ),
        (
            &["-P"][..],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            &["--expose", "8000"][..],
            "conflicting options: port exposing and the container type network mode",
        ),
        (
            &["--add-host", "x:10.0.0.1"][..],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--network", "container:br"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let (code, e) = fails(&b, &args);
        assert_eq!(code, 125, "{flags:?}: {e}");
        assert!(e.contains(msg), "{flags:?}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. network create/ls/inspect/rm/prune/connect/disconnect

#[test]
fn network_commands_behave_like_docker() {
    let b = ready();
    let since = ok(&b, &["system", "info", "-f", "{{.SystemTime}}"]);
    let id = ok(&b, &["network", "create", "n1"]);
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    // Duplicate name: 409 and Docker's message.
    let r = b.post_json("/v1.41/networks/create", &serde_json::json!({"Name": "n1"}));
    assert_eq!(r.status, 409, "{}", r.text());
    let (code, e) = fails(&b, &["network", "create", "n1"]);
    assert_eq!(code, 1);
    assert!(e.contains("network with name n1 already exists"), "{e}");

    // ls: predefined + n1, Docker's columns.
    let ls = ok(&b, &["network", "ls"]);
    let header = ls.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"],
        "{ls}"
    );
    let rows: BTreeSet<String> = ok(
        &b,
        &[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect();
    let want: BTreeSet<String> = [
        "bridge bridge local",
        "host host local",
        "none null local",
        "n1 bridge local",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(rows, want);
    assert!(
        ls.lines()
            .any(|l| l.starts_with(&id[..12]) && l.contains("n1")),
        "{ls}"
    );

    // inspect.
    let v: serde_json::Value =
        serde_json::from_str(&ok(&b, &["network", "inspect", "n1"])).unwrap();
    let n = &v[0];
    assert_eq!(n["Name"], "n1");
    assert_eq!(n["Id"], id.as_str());
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["Internal"], false);
    let sub = n["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sub.parse::<berth_network::Ipv4Net>().is_ok(), "{sub}");
    let (code, e) = fails(&b, &["network", "inspect", "nosuchnet"]);
    assert_eq!(code, 1);
    assert!(e.contains("network nosuchnet not found"), "{e}");

    // --subnet/--gateway/--ip-range/--ip.
    ok(
        &b,
        &[
            "network",
            "create",
            "--subnet",
            "10.123.0.0/16",
            "--gateway",
            "10.123.0.254",
            "--ip-range",
            "10.123.5.0/24",
            "--label",
            "env=test",
            "--label",
            "tier",
            "custom",
        ],
    );
    assert_eq!(subnet_of(&b, "custom"), "10.123.0.0/16 10.123.0.254");
    assert_eq!(
        ok(
            &b,
            &[
                "network",
                "inspect",
                "-f",
                "{{range .IPAM.Config}}{{.IPRange}}{{end}} {{.Labels.env}}",
                "custom"
            ]
        ),
        "10.123.5.0/24 test"
    );
    sleeper(&b, "r1", &["--network", "custom"]);
    let ip = ip_of(&b, "r1", "custom");
    assert!(
        ip.starts_with("10.123.5."),
        "allocated from --ip-range: {ip}"
    );
    let routes = ok(&b, &["exec", "r1", "ip", "route"]);
    assert!(routes.contains("default via 10.123.0.254"), "{routes}");
    sleeper(&b, "r2", &["--network", "custom", "--ip", "10.123.0.77"]);
    assert_eq!(ip_of(&b, "r2", "custom"), "10.123.0.77");
    assert!(pings(&b, "r1", "10.123.0.77"));
    let (code, e) = fails(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "custom",
            "--ip",
            "10.123.0.77",
            "busybox",
            "true",
        ],
    );
    assert_eq!(code, 125, "{e}");
    let (code, e) = fails(
        &b,
        &["network", "create", "--subnet", "10.123.7.0/24", "overlap"],
    );
    assert_eq!(code, 1);
    assert!(
        e.contains("Pool overlaps with other one on this address space"),
        "{e}"
    );
    let (_, e) = fails(
        &b,
        &["run", "--rm", "--ip", "172.30.9.9", "busybox", "true"],
    );
    assert!(
        e.contains("user specified IP address is supported on user defined networks only"),
        "{e}"
    );

    // Filters.
    let names = |f: &[&str]| -> Vec<String> {
        let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
        for x in f {
            args.extend(["-f", x]);
        }
        let mut v: Vec<String> = ok(&b, &args).lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(names(&["label=env=test"]), ["custom"]);
    assert_eq!(names(&["label=tier"]), ["custom"]);
    assert_eq!(names(&["label=env=prod"]), Vec::<String>::new());
    assert_eq!(names(&["name=n1"]), ["n1"]);
    assert_eq!(names(&["driver=null"]), ["none"]);
    assert_eq!(names(&["type=custom"]), ["custom", "n1"]);
    assert_eq!(names(&["type=builtin"]), ["bridge", "host", "none"]);
    assert_eq!(names(&["dangling=true"]), ["n1"]);
    assert_eq!(names(&[&format!("id={}", &id[..10])]), ["n1"]);
    let (code, e) = fails(&b, &["network", "ls", "-f", "bogus=1"]);
    assert_eq!(code, 1);
    assert!(e.contains("invalid filter 'bogus'"), "{e}");

    // rm: in use, predefined, unknown.
    let (code, e) = fails(&b, &["network", "rm", "custom"]);
    assert_eq!(code, 1);
    assert!(e.contains("has active endpoints"), "{e}");
    for pre in ["bridge", "host", "none"] {
        let (code, e) = fails(&b, &["network", "rm", pre]);
        assert_eq!(code, 1);
        assert!(
            e.contains(&format!(
                "{pre} is a pre-defined network and cannot be removed"
            )),
            "{e}"
        );
    }
    let (_, e) = fails(&b, &["network", "rm", "nosuchnet"]);
    assert!(e.contains("network nosuchnet not found"), "{e}");

    // connect a running container: eth1 with an address in n1; disconnect removes it.
    sleeper(&b, "mover", &[]);
    ok(&b, &["network", "connect", "--alias", "mv", "n1", "mover"]);
    let ip1 = ip_of(&b, "mover", "n1");
    let eth1 = ok(
        &b,
        &["exec", "mover", "ip", "-o", "-4", "addr", "show", "eth1"],
    );
    assert!(eth1.contains(&format!("inet {ip1}/")), "{eth1}");
    let nets = ok(
        &b,
        &[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            "mover",
        ],
    );
    assert_eq!(nets, "bridge n1");
    sleeper(&b, "peer", &["--network", "n1"]);
    assert!(
        pings(&b, "peer", "mover"),
        "connected container resolves by name"
    );
    assert!(pings(&b, "peer", "mv"), "and by its connect alias");
    let (_, e) = fails(&b, &["network", "connect", "n1", "mover"]);
    assert!(e.contains("already exists in network n1"), "{e}");
    let members = ok(
        &b,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            "n1",
        ],
    );
    let members: BTreeSet<&str> = members.split_whitespace().collect();
    assert_eq!(members, BTreeSet::from(["mover", "peer"]));
    ok(&b, &["network", "disconnect", "n1", "mover"]);
    let links = link_names(&ok(&b, &["exec", "mover", "ip", "-o", "link"]));
    assert_eq!(links, BTreeSet::from(["lo".to_owned(), "eth0".to_owned()]));
    assert!(!pings(&b, "peer", &ip1), "disconnected address is gone");
    let (_, e) = fails(&b, &["network", "disconnect", "n1", "mover"]);
    assert!(e.contains("is not connected to network n1"), "{e}");
    let (_, e) = fails(&b, &["network", "connect", "host", "mover"]);
    assert!(
        e.contains(
            "container cannot be disconnected from host network or connected to host network"
        ),
        "{e}"
    );
    // The veth went with the disconnect: exactly the live endpoints remain on the host.
    let veths = link_names(&host_ok(&b, &["ip", "-o", "link", "show", "type", "veth"]))
        .into_iter()
        .filter(|l| l.starts_with("veth"))
        .count();
    assert_eq!(veths, 4, "r1, r2, mover, peer");

    // prune: only unused user networks, with label filters.
    ok(&b, &["network", "create", "--label", "keep=1", "p-keep"]);
    ok(&b, &["network", "create", "p-drop"]);
    ok(&b, &["rm", "-f", "peer"]);
    let pruned = ok(&b, &["network", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(
        pruned.lines().collect::<Vec<_>>(),
        ["Deleted Networks:", "n1", "p-drop"],
        "{pruned}"
    );
    let left: BTreeSet<String> = ok(&b, &["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    let want: BTreeSet<String> = ["bridge", "host", "none", "custom", "p-keep"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(left, want);
    ok(&b, &["network", "rm", "p-keep"]);

    // Events with since/until.
    let until = ok(&b, &["system", "info", "-f", "{{.SystemTime}}"]);
    let ev = ok(
        &b,
        &[
            "events",
            "--filter",
            "type=network",
            "--since",
            &since,
            "--until",
            &until,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    let ev: Vec<&str> = ev.lines().collect();
    for want in [
        "network create n1",
        "network create custom",
        // Container start and stop connect and disconnect, as in Docker.
        "network connect custom",
        "network disconnect n1",
        "network connect bridge",
        "network connect n1",
        "network disconnect n1",
        "network destroy n1",
        "network destroy p-drop",
        "network destroy p-keep",
    ] {
        assert!(ev.contains(&want), "missing {want:?} in {ev:#?}");
    }
    assert!(ev.iter().all(|l| l.starts_with("network ")), "{ev:#?}");
    let first_create = ev.iter().position(|l| *l == "network create n1").unwrap();
    let destroy = ev.iter().position(|l| *l == "network destroy n1").unwrap();
    assert!(first_create < destroy);
    // --until before everything: nothing.
    let none = ok(
        &b,
        &[
            "events",
            "--filter",
            "type=network",
            "--since",
            "1",
            "--until",
            "2",
        ],
    );
    assert_eq!(none, "");
}

// ---------------------------------------------------------------------------------------------
// 5. Leak checks

/// What berth holds in the kernel and on disk that must match the idle state.
#[derive(Debug, PartialEq)]
struct Footprint {
    links: BTreeSet<String>,
    netns_pins: Vec<String>,
    nft: String,
    ipam: Vec<(String, String)>,
}

fn footprint(b: &Berthd) -> Footprint {
    let links = link_names(&host_ok(b, &["ip", "-o", "link"]));
    let mut netns_pins: Vec<String> = std::fs::read_dir(b.exec_root.join("netns"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    netns_pins.sort();
    // Counters change with traffic; the rules must not.
    let nft = host_ok(b, &["nft", "list", "table", "inet", "berth"])
        .lines()
        .map(|l| {
            let mut l = l.to_owned();
            if let Some(i) = l.find("counter packets") {
                l.truncate(i);
            }
            l.trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = b.data_root().join("network").join("ipam");
    // Config and allocations; not the next-fit cursor (`last`), which moves by design.
    let mut ipam: Vec<(String, String)> = std::fs::read_dir(&dir)
        .map(|r| {
            r.flatten()
                .map(|e| {
                    let v: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        format!("{} {}", v["config"], v["allocations"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ipam.sort();
    Footprint {
        links,
        netns_pins,
        nft,
        ipam,
    }
}

/// Host mount points of netns pins under the exec root (a pin left mounted leaks the netns).
fn netns_mounts(exec_root: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = exec_root.join("netns");
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| Path::new(p).starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

fn assert_idle(b: &Berthd, baseline: &Footprint, when: &str) {
    let now = footprint(b);
    assert!(
        !now.links.iter().any(|l| l.starts_with("veth")),
        "{when}: veths left: {:?}",
        now.links
    );
    assert_eq!(now.links, baseline.links, "{when}: links");
    assert_eq!(now.netns_pins, Vec::<String>::new(), "{when}: netns pins");
    assert_eq!(
        netns_mounts(&b.exec_root),
        Vec::<String>::new(),
        "{when}: netns mounts"
    );
    assert_eq!(now.nft, baseline.nft, "{when}: nft table inet berth");
    assert_eq!(now.ipam, baseline.ipam, "{when}: IPAM state");
}

#[test]
fn two_hundred_run_rm_cycles_leave_nothing() {
    let b = Berthd::start_networked(&[]);
    b.load_busybox();
    // One user network too, so its DNS registry and IPAM are exercised.
    ok(&b, &["network", "create", "cyc"]);
    let baseline = footprint(&b);
    assert!(!baseline.ipam.is_empty(), "IPAM state files exist");
    assert!(
        baseline.nft.contains("table inet berth"),
        "{}",
        baseline.nft
    );
    std::thread::scope(|s| {
        for t in 0..4u16 {
            let b = &b;
            s.spawn(move || {
                for i in 0..50u16 {
                    let port = format!("{}:80", 20000 + t * 100 + i);
                    let mut args = vec!["run", "--rm"];
                    match i % 5 {
                        0 => args.extend(["-p", port.as_str()]),
                        1 => args.push("-P"),
                        2 => args.extend(["--network", "cyc"]),
                        _ => {}
                    }
                    if i % 5 == 1 {
                        args.extend(["--expose", "80"]);
                    }
                    args.extend(["busybox", "true"]);
                    ok(b, &args);
                }
            });
        }
    });
    assert_eq!(ok(&b, &["ps", "-aq"]), "");
    assert_idle(&b, &baseline, "after 200 run --rm");
}

/// `docker` against a berthd that may be down (for calls racing a SIGKILL).
fn docker_raw(sock: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(common::DOCKER)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn sigkill_mid_start_then_restart_and_rm_leaves_nothing() {
    let mut b = Berthd::start_networked(&[]);
    b.load_busybox();
    ok(&b, &["network", "create", "kn"]);
    let baseline = footprint(&b);
    // A container that lives through every kill, holding a port and addresses on both networks.
    sleeper(&b, "survivor", &["-p", "30999:80", "--network", "kn"]);
    for round in 0..4u32 {
        let sock = b.sock.clone();
        let cfg = b.docker_config.clone();
        let workers: Vec<_> = (0..4u32)
            .map(|t| {
                let sock = sock.clone();
                let cfg = cfg.clone();
                std::thread::spawn(move || {
                    for i in 0..6u32 {
                        let port = format!("{}:80", 30000 + round * 100 + t * 10 + i);
                        let mut args = vec!["run", "-d", "-p", port.as_str()];
                        if t == 3 {
                            args.extend(["--network", "kn"]);
                        }
                        args.extend(["busybox", "sleep", "1000"]);
                        // Fails once berthd is gone: that is the point.
                        if !docker_raw(&sock, &cfg, &args).status.success() {
                            break;
                        }
                    }
                })
            })
            .collect();
        // Let some starts get under way, then pull the plug.
        std::thread::sleep(std::time::Duration::from_millis(
            300 + 150 * u64::from(round),
        ));
        b.kill9_and_restart();
        for w in workers {
            w.join().unwrap();
        }
    }
    let ids = ok(&b, &["ps", "-aq"]);
    let ids: Vec<&str> = ids.lines().collect();
    println!(
        "{} containers (survivor included) after the kills",
        ids.len()
    );
    assert_eq!(
        ok(&b, &["inspect", "-f", "{{.State.Running}}", "survivor"]),
        "true"
    );
    let ip = ip_of(&b, "survivor", "kn");
    let ipam = footprint(&b).ipam;
    assert!(
        ipam.iter().any(|(_, v)| v.contains(&format!("\"{ip}\""))),
        "the survivor's address stays allocated across restarts: {ipam:?}"
    );
    let nft = host_ok(&b, &["nft", "list", "chain", "inet", "berth", "publish"]);
    assert!(nft.contains("dport 30999"), "and its port rule: {nft}");
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().copied());
    ok(&b, &args);
    assert_eq!(ok(&b, &["ps", "-aq"]), "");
    assert_idle(&b, &baseline, "after SIGKILLs, restart and rm -f");
    // And another restart does not bring anything back.
    b.kill9_and_restart();
    assert_idle(&b, &baseline, "after one more restart");
}

// ---------------------------------------------------------------------------------------------
// 6. Coexistence with dockerd in the same network namespace

/// A private dockerd in berthd's netns; stopped (and its containers killed) on drop.
struct Dockerd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    exec_root: std::path::PathBuf,
}

impl Dockerd {
    fn sock(&self) -> std::path::PathBuf {
        self.dir.path().join("docker.sock")
    }
    fn docker(&self, args: &[&str]) -> Output {
        docker_raw(&self.sock(), &self.dir.path().join("cfg"), args)
    }
    fn ok(&self, args: &[&str]) -> String {
        let (code, o, e) = out(&self.docker(args));
        assert_eq!(code, 0, "dockerd: docker {args:?}: {e}\n{}", self.log());
        o.trim().to_owned()
    }
    fn log(&self) -> String {
        tail(&std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        if !ids.trim().is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.lines());
            let _ = self.docker(&args);
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        berth_fixtures::cleanup::unmount_under(self.dir.path());
        berth_fixtures::cleanup::unmount_under(&self.exec_root);
        let _ = std::fs::remove_dir_all(&self.exec_root);
        // dockerd leaves its (now empty) --cgroup-parent in every hierarchy.
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                remove_cgroup_tree(&h.path().join(cgroup_parent_name()));
            }
        }
    }
}

fn cgroup_parent_name() -> String {
    format!("berth-nettest-{}", std::process::id())
}

/// Removes an empty cgroup directory tree, deepest first (cgroupfs allows only rmdir).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Starts dockerd in `netns` with bridge `dock0` (10.199.0.1/24); `Err(reason)` if it cannot.
fn start_dockerd(b: &Berthd) -> Result<Dockerd, String> {
    if Command::new("dockerd").arg("--version").output().is_err() {
        return Err("dockerd is not installed".into());
    }
    let ns = b.netns.clone().unwrap();
    // dockerd turns FORWARD's policy to drop when it has to enable forwarding itself, as on a
    // host where it starts first; berthd already enabled it here.
    host_ok(b, &["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    host_ok(b, &["ip", "link", "add", "dock0", "type", "bridge"]);
    host_ok(b, &["ip", "addr", "add", "10.199.0.1/24", "dev", "dock0"]);
    host_ok(b, &["ip", "link", "set", "dock0", "up"]);
    let dir = tempfile::Builder::new()
        .prefix("dockerd-test")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("cfg")).unwrap();
    std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
    let exec_root = std::path::PathBuf::from(format!("/tmp/dx{}-{}", std::process::id(), ns.len()));
    let _ = std::fs::remove_dir_all(&exec_root);
    let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg("--")
        .arg("dockerd")
        .arg("-H")
        .arg(format!(
            "unix://{}",
            dir.path().join("docker.sock").display()
        ))
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("--exec-root")
        .arg(&exec_root)
        .arg("--pidfile")
        .arg(dir.path().join("docker.pid"))
        .arg("--config-file")
        .arg(dir.path().join("daemon.json"))
        .args([
            "--bridge",
            "dock0",
            "--storage-driver",
            "overlay2",
            "--log-level",
            "warn",
        ])
        .arg(format!("--cgroup-parent=/{}", cgroup_parent_name()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawning dockerd: {e}"))?;
    let mut d = Dockerd {
        child,
        dir,
        exec_root,
    };
    for _ in 0..600 {
        if let Ok(Some(st)) = d.child.try_wait() {
            return Err(format!("dockerd exited ({st}): {}", d.log()));
        }
        if d.sock().exists() && d.docker(&["version"]).status.success() {
            return Ok(d);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!("dockerd did not come up in 60 s: {}", d.log()))
}

#[test]
fn coexists_with_dockerd_in_the_same_netns() {
    let mut b = ready();
    ok(&b, &["network", "create", "bnet"]);
    let bnet_bridge = format!(
        "br-{}",
        &ok(&b, &["network", "inspect", "-f", "{{.Id}}", "bnet"])[..12]
    );
    let d = match start_dockerd(&b) {
        Ok(d) => d,
        Err(why) => {
            println!("SKIP: dockerd cannot run here: {why}");
            return;
        }
    };
    // dockerd took over FORWARD with a drop policy.
    let fwd = host_ok(&b, &["iptables", "-S", "FORWARD"]);
    assert!(fwd.contains("-P FORWARD DROP"), "{fwd}");
    // berthd adds its DOCKER-USER accepts within its refresh period (5 s); poll for them.
    let mut chain = String::new();
    for _ in 0..100 {
        chain = host_ok(&b, &["nft", "list", "chain", "ip", "filter", "DOCKER-USER"]);
        if chain.contains("berth0") && chain.contains(&bnet_bridge) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(chain.contains("berth br/berth0"), "{chain}");
    assert!(chain.contains(&bnet_bridge), "{chain}");

    // Docker's own containers work: ping between them, a published port, the outside.
    let archive = berth_fixtures::busybox_image_archive().unwrap();
    d.ok(&["load", "-i", archive.to_str().unwrap()]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "d1",
        "-p",
        "9090:80",
        "busybox",
        "sh",
        "-c",
        &httpd_cmd("docker-d1"),
    ]);
    d.ok(&["run", "-d", "--name", "d2", "busybox", "sleep", "1000"]);
    let d1_ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "d1"]);
    assert!(d1_ip.starts_with("10.199.0."), "{d1_ip}");
    d.ok(&["exec", "d2", "ping", "-c", "1", "-W", "2", &d1_ip]);
    d.ok(&["exec", "d2", "ping", "-c", "1", "-W", "2", HOST_ADDR]);
    assert_eq!(
        host_get(&b, &format!("http://{HOST_ADDR}:9090/")).unwrap(),
        "docker-d1"
    );

    // berth's containers, default bridge and user network, with dockerd's drop policy.
    sleeper(&b, "ca", &[]);
    sleeper(&b, "cc", &[]);
    sleeper(&b, "u1", &["--network", "bnet"]);
    sleeper(&b, "u2", &["--network", "bnet"]);
    assert!(pings(&b, "ca", &ip_of(&b, "cc", "bridge")), "berth0 peers");
    assert!(pings(&b, "u1", "u2"), "bnet peers by name");
    assert!(
        pings(&b, "ca", HOST_ADDR),
        "berth container reaches the host"
    );
    ok(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "web8088",
            "-p",
            "8088:80",
            "busybox",
            "sh",
            "-c",
            &httpd_cmd("berth-w"),
        ],
    );
    assert_eq!(
        host_get(&b, &format!("http://{HOST_ADDR}:8088/")).unwrap(),
        "berth-w"
    );
    assert_eq!(host_get(&b, "http://127.0.0.1:8088/").unwrap(), "berth-w");
    // Not checked: isolation between the engines' bridges. berth's DOCKER-USER accepts
    // (`iifname berth0 accept`) let berth containers reach Docker containers' unpublished ports
    // (Docker drops that for other host interfaces); see the report of this test's commit.
    // Docker's still fine after berth's traffic.
    assert_eq!(
        host_get(&b, &format!("http://{HOST_ADDR}:9090/")).unwrap(),
        "docker-d1"
    );

    // Teardown: removing berth's networks removes its DOCKER-USER accepts; with the default
    // bridge gone too (restart with --bridge none) nothing of berth's is in Docker's tables.
    let ids = ok(&b, &["ps", "-aq"]);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.lines());
    ok(&b, &args);
    ok(&b, &["network", "rm", "bnet"]);
    let chain = host_ok(&b, &["nft", "list", "chain", "ip", "filter", "DOCKER-USER"]);
    assert!(!chain.contains(&bnet_bridge), "{chain}");
    assert!(
        chain.contains("berth0"),
        "default bridge still there: {chain}"
    );
    // Restart on the same roots without the default bridge.
    drop_default_bridge(&mut b);
    let ruleset = host_ok(&b, &["nft", "list", "table", "ip", "filter"]);
    assert!(
        !ruleset.contains("berth"),
        "berth left rules in Docker's table: {ruleset}"
    );
    let nat = host_ok(&b, &["nft", "list", "table", "ip", "nat"]);
    assert!(!nat.contains("berth"), "{nat}");
    // Docker's container still works after berth is gone.
    d.ok(&["exec", "d2", "ping", "-c", "1", "-W", "2", &d1_ip]);
    assert_eq!(
        host_get(&b, &format!("http://{HOST_ADDR}:9090/")).unwrap(),
        "docker-d1"
    );
    drop(d);
}

/// Restarts berthd with `--bridge none` on the same data root: the default bridge goes away.
fn drop_default_bridge(b: &mut Berthd) {
    b.restart_with(&["--bridge", "none"]);
    let names = ok(b, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(!names.lines().any(|n| n == "bridge"), "{names}");
}
