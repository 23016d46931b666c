use clap::Parser;
use serde_json::json;

use super::*;

#[derive(Parser)]
#[command(disable_help_flag = true)]
struct T {
    #[command(flatten)]
    o: CreateOpts,
}

fn body(args: &[&str]) -> Value {
    let mut v = vec!["run"];
    v.extend_from_slice(args);
    let t = T::try_parse_from(v).unwrap();
    create_request(&t.o).unwrap().body
}

#[test]
fn env_ports_memory_restart_to_host_config() {
    let b = body(&[
        "-e",
        "A=1",
        "-p",
        "8080:80",
        "--memory",
        "64m",
        "--restart",
        "on-failure:3",
        "busybox",
        "echo",
        "hi",
    ]);
    assert_eq!(b["Env"], json!(["A=1"]));
    assert_eq!(b["Cmd"], json!(["echo", "hi"]));
    assert_eq!(b["Image"], json!("busybox"));
    assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
    let hc = &b["HostConfig"];
    assert_eq!(
        hc["PortBindings"],
        json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
    );
    assert_eq!(hc["Memory"], json!(67108864));
    assert_eq!(
        hc["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 3})
    );
    assert_eq!(hc["NetworkMode"], json!("default"));
    assert_eq!(hc["AutoRemove"], json!(false));
}

#[test]
fn attach_flags_follow_docker() {
    let b = body(&["-it", "busybox", "sh"]);
    assert_eq!(
        (
            b["AttachStdin"].clone(),
            b["OpenStdin"].clone(),
            b["StdinOnce"].clone(),
            b["Tty"].clone()
        ),
        (json!(true), json!(true), json!(true), json!(true))
    );
    let b = body(&["-d", "busybox"]);
    assert_eq!(
        (b["AttachStdout"].clone(), b["AttachStderr"].clone()),
        (json!(false), json!(false))
    );
    assert!(b.get("Cmd").is_none());
    let b = body(&["-a", "stderr", "busybox"]);
    assert_eq!(
        (b["AttachStdout"].clone(), b["AttachStderr"].clone()),
        (json!(false), json!(true))
    );
}

#[test]
fn command_keeps_its_own_flags() {
    let b = body(&["--rm", "busybox", "ls", "-la", "--color"]);
    assert_eq!(b["Cmd"], json!(["ls", "-la", "--color"]));
    assert_eq!(b["HostConfig"]["AutoRemove"], json!(true));
}

#[test]
fn volumes_mounts_tmpfs_and_limits() {
    let b = body(&[
        "-v",
        "/data",
        "-v",
        "/host:/c:ro",
        "--mount",
        "type=bind,source=/a,target=/b,readonly",
        "--tmpfs",
        "/run:size=64m",
        "--cpus",
        "1.5",
        "--pids-limit",
        "100",
        "--ulimit",
        "nofile=1024:2048",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "ALL",
        "--shm-size",
        "128m",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--read-only",
        "--init",
        "--privileged",
        "--entrypoint",
        "/bin/sh",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "box",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "5",
        "-l",
        "a=b",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1m",
        "--network",
        "net1",
        "--network-alias",
        "web",
        "--dns",
        "1.1.1.1",
        "--add-host",
        "h:1.2.3.4",
        "busybox",
    ]);
    assert_eq!(b["Volumes"], json!({"/data": {}}));
    let hc = &b["HostConfig"];
    assert_eq!(hc["Binds"], json!(["/host:/c:ro"]));
    assert_eq!(
        hc["Mounts"],
        json!([{"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true}])
    );
    assert_eq!(hc["Tmpfs"], json!({"/run": "size=64m"}));
    assert_eq!(hc["NanoCpus"], json!(1_500_000_000i64));
    assert_eq!(hc["PidsLimit"], json!(100));
    assert_eq!(
        hc["Ulimits"],
        json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
    );
    assert_eq!(hc["CapAdd"], json!(["NET_ADMIN"]));
    assert_eq!(hc["CapDrop"], json!(["ALL"]));
    assert_eq!(hc["ShmSize"], json!(134217728));
    assert_eq!(hc["Sysctls"], json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(
        (
            hc["ReadonlyRootfs"].clone(),
            hc["Init"].clone(),
            hc["Privileged"].clone()
        ),
        (json!(true), json!(true), json!(true))
    );
    assert_eq!(
        hc["LogConfig"],
        json!({"Type": "json-file", "Config": {"max-size": "1m"}})
    );
    assert_eq!(hc["NetworkMode"], json!("net1"));
    assert_eq!(hc["Dns"], json!(["1.1.1.1"]));
    assert_eq!(hc["ExtraHosts"], json!(["h:1.2.3.4"]));
    assert_eq!(b["Entrypoint"], json!(["/bin/sh"]));
    assert_eq!(b["WorkingDir"], json!("/tmp"));
    assert_eq!(b["User"], json!("1000:1000"));
    assert_eq!(b["Hostname"], json!("box"));
    assert_eq!(b["StopSignal"], json!("SIGINT"));
    assert_eq!(b["StopTimeout"], json!(5));
    assert_eq!(b["Labels"], json!({"a": "b"}));
    assert_eq!(
        b["NetworkingConfig"],
        json!({"EndpointsConfig": {"net1": {"Aliases": ["web"]}}})
    );
}

#[test]
fn port_forms() {
    let p = ports::parse(
        &[
            "127.0.0.1:8000-8001:80-81/udp".into(),
            "9000".into(),
            "[::1]:53:53".into(),
        ],
        &["7000-7001".into()],
    )
    .unwrap();
    assert_eq!(
        p.exposed,
        vec![
            "53/tcp", "7000/tcp", "7001/tcp", "80/udp", "81/udp", "9000/tcp"
        ]
    );
    assert_eq!(
        p.bindings["80/udp"],
        vec![("127.0.0.1".to_owned(), "8000".to_owned())]
    );
    assert_eq!(
        p.bindings["81/udp"],
        vec![("127.0.0.1".to_owned(), "8001".to_owned())]
    );
    assert_eq!(p.bindings["9000/tcp"], vec![(String::new(), String::new())]);
    assert_eq!(
        p.bindings["53/tcp"],
        vec![("::1".to_owned(), "53".to_owned())]
    );
    assert!(ports::parse(&["x:80".into()], &[]).is_err());
}

#[test]
fn healthcheck_and_conflicts() {
    let b = body(&[
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        "--health-retries",
        "2",
        "busybox",
    ]);
    assert_eq!(
        b["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 2})
    );
    let t = T::try_parse_from(["run", "--rm", "--restart", "always", "busybox"]).unwrap();
    assert!(
        create_request(&t.o)
            .unwrap_err()
            .to_string()
            .contains("--restart and --rm")
    );
    let t = T::try_parse_from(["run", "-m", "12q", "busybox"]).unwrap();
    assert_eq!(
        create_request(&t.o).unwrap_err().to_string(),
        "invalid size: '12q'"
    );
}

#[test]
fn timestamps_like_docker() {
    use super::units::timestamp;
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(timestamp("10m", now).unwrap(), "1767322445.000000000");
    assert_eq!(timestamp("1700000000", now).unwrap(), "1700000000");
    assert_eq!(timestamp("1700000000.5", now).unwrap(), "1700000000.5");
    assert_eq!(
        timestamp("2026-01-02T03:00:00Z", now).unwrap(),
        "1767322800.000000000"
    );
    assert!(timestamp("yesterday", now).is_err());
    assert_eq!(timestamp("", now).unwrap(), "");
}
