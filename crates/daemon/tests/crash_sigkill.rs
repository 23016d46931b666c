//! Issue 6's crash acceptance: SIGKILL berthd while 20 containers of mixed kinds run; while it
//! is down some of them exit. After a restart on the same roots: the running ones kept running
//! (same pids), no log line is lost, exits have their codes, `--restart` policies restart,
//! `--rm` ones are removed, a paused one is still paused, a manually stopped `always` one stays
//! stopped; and once everything is removed nothing is left on disk, mounted or running.

#![allow(clippy::unwrap_used)]

mod common;
mod crashkit;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::Berthd;
use crashkit::{Baseline, Harness, ProcId, api, demux, wait_for};

const LONG: Duration = Duration::from_secs(60);

fn docker(d: &Berthd, args: &[&str]) -> String {
    let o = d.docker(args);
    assert!(
        o.status.success(),
        "docker {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        crashkit::tail(&d.log(), 60)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn inspect(d: &Berthd, name: &str) -> serde_json::Value {
    let r = api(d, "GET", &format!("/containers/{name}/json"), None);
    assert_eq!(r.status, 200, "inspect {name}: {}", r.text());
    r.json()
}

/// The container's stdout and stderr through the logs API.
fn logs(d: &Berthd, name: &str) -> (String, String) {
    let r = api(
        d,
        "GET",
        &format!("/containers/{name}/logs?stdout=1&stderr=1"),
        None,
    );
    assert_eq!(r.status, 200, "logs {name}: {}", r.text());
    let (o, e) = demux(&r.body);
    (
        String::from_utf8_lossy(&o).into_owned(),
        String::from_utf8_lossy(&e).into_owned(),
    )
}

/// Numbers after `prefix` on each line must be exactly 1..=n; returns n.
fn contiguous(name: &str, text: &str, prefix: &str) -> u64 {
    let mut want = 1u64;
    for line in text.lines() {
        let Some(n) = line.strip_prefix(prefix) else {
            continue;
        };
        let n: u64 = n
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: bad log line {line:?}"));
        assert_eq!(
            n, want,
            "{name}: log line {prefix}{want} missing or out of order"
        );
        want += 1;
    }
    want - 1
}

/// A shell loop that waits for /tmp/go (written into the rootfs from the host while berthd
/// is down), then runs `then`.
fn on_go(then: &str) -> String {
    format!("echo started; while [ ! -e /tmp/go ]; do sleep 0.05; done; rm -f /tmp/go; {then}")
}

const WRITER: &str = "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo \"out $i\"; echo \"err $i\" >&2; sleep 0.05; done";
const BURST_LINES: u64 = 50_000;

#[test]
fn twenty_containers_survive_a_berthd_sigkill() {
    let mut h = Harness::start();
    let base = Baseline::take(&h.d);
    let d = &mut h.d;
    let none = ["--network", "none"];
    let run = |d: &Berthd, name: &str, flags: &[&str], cmd: &str| {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(&none);
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sh", "-c", cmd]);
        docker(d, &args)
    };
    let writers: Vec<String> = (0..6).map(|i| format!("writer{i}")).collect();
    for w in &writers {
        run(d, w, &[], WRITER);
    }
    run(d, "burst", &[], &on_go(&format!("seq 1 {BURST_LINES}")));
    // Restarted by their policy after exiting while berthd is down; the restarted process waits
    // for a new /tmp/go, so it stays up and the restart count is exactly one.
    run(d, "always1", &["--restart", "always"], &on_go("exit 3"));
    run(d, "always2", &["--restart", "always"], &on_go("exit 0"));
    run(d, "onfail", &["--restart", "on-failure"], &on_go("exit 5"));
    // Stopped by hand before the crash: `unless-stopped` stays down, `always` comes back at
    // daemon start (Docker's documented rules).
    let idle = "trap 'exit 0' TERM; while :; do sleep 0.05; done";
    run(d, "stopped", &["--restart", "unless-stopped"], idle);
    run(d, "stopped_always", &["--restart", "always"], idle);
    for i in 0..3 {
        run(d, &format!("rm{i}"), &["--rm"], &on_go("echo bye; exit 2"));
    }
    let codes: BTreeMap<&str, i64> = [("code0", 0), ("code1", 1), ("code42", 42), ("code255", 255)]
        .into_iter()
        .collect();
    for (name, code) in &codes {
        run(d, name, &[], &on_go(&format!("echo bye; exit {code}")));
    }
    run(d, "paused", &[], "while :; do sleep 0.05; done");
    docker(d, &["pause", "paused"]);
    docker(d, &["stop", "-t", "10", "stopped", "stopped_always"]);

    let all: Vec<String> = docker(d, &["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(all.len(), 20, "{all:?}");
    let mut ids = BTreeSet::new();
    let mut pids: BTreeMap<String, i64> = BTreeMap::new();
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    let mut log_paths: BTreeMap<String, String> = BTreeMap::new();
    for name in &all {
        let v = inspect(d, name);
        ids.insert(v["Id"].as_str().unwrap().to_owned());
        let pid = v["State"]["Pid"].as_i64().unwrap();
        if !name.starts_with("stopped") {
            assert!(v["State"]["Running"].as_bool().unwrap(), "{name}: {v}");
            h.reaper.note(ProcId::of(pid as i32).unwrap());
        }
        pids.insert(name.clone(), pid);
        merged.insert(
            name.clone(),
            v["GraphDriver"]["Data"]["MergedDir"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        log_paths.insert(name.clone(), v["LogPath"].as_str().unwrap().to_owned());
    }
    // Every waiting container has printed "started" (so /tmp/go is looked for from now on).
    for name in all.iter().filter(|n| {
        !writers.contains(n) && !["paused", "stopped", "stopped_always"].contains(&n.as_str())
    }) {
        wait_for(&format!("{name} to start"), LONG, || {
            logs(d, name).0.contains("started").then_some(())
        });
    }
    let before: BTreeMap<String, u64> = writers
        .iter()
        .map(|w| (w.clone(), contiguous(w, &logs(d, w).0, "out ")))
        .collect();

    // SIGKILL berthd.
    let mut child = d.take_child().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let log_sizes: BTreeMap<String, u64> = writers
        .iter()
        .map(|w| (w.clone(), std::fs::metadata(&log_paths[w]).unwrap().len()))
        .collect();
    // While it is down: 11 containers exit (3 by policy, 3 --rm, 4 with codes, the burst).
    let exiting: Vec<&String> = all
        .iter()
        .filter(|n| {
            n.starts_with("always")
                || n.starts_with("rm")
                || n.starts_with("code")
                || *n == "onfail"
                || *n == "burst"
        })
        .collect();
    assert_eq!(exiting.len(), 11);
    for name in &exiting {
        std::fs::write(format!("{}/tmp/go", merged[*name]), "").unwrap();
    }
    for name in &exiting {
        let pid = pids[*name] as i32;
        wait_for(
            &format!("{name} to exit while berthd is down"),
            LONG,
            || {
                (!std::path::Path::new(&format!("/proc/{pid}")).exists()
                    || ProcId::of(pid).is_none())
                .then_some(())
            },
        );
    }
    // ...and the writers keep writing into their logs.
    for w in &writers {
        wait_for(&format!("{w} to write while berthd is down"), LONG, || {
            (std::fs::metadata(&log_paths[w]).unwrap().len() > log_sizes[w] + 1000).then_some(())
        });
    }

    d.kill9_and_restart();

    // Still running, same processes.
    for name in &writers {
        let v = inspect(d, name);
        assert_eq!(v["State"]["Status"], "running", "{name}: {}", v["State"]);
        assert_eq!(v["State"]["Pid"].as_i64().unwrap(), pids[name], "{name}");
    }
    let v = inspect(d, "paused");
    assert_eq!(v["State"]["Status"], "paused", "{}", v["State"]);
    assert_eq!(v["State"]["Pid"].as_i64().unwrap(), pids["paused"]);
    let v = inspect(d, "stopped");
    assert_eq!(
        v["State"]["Status"], "exited",
        "manually stopped: {}",
        v["State"]
    );
    assert_eq!(v["RestartCount"], 0);
    let v = wait_for("stopped_always started at daemon start", LONG, || {
        let v = inspect(d, "stopped_always");
        (v["State"]["Running"] == true).then_some(v)
    });
    h.reaper
        .note(ProcId::of(v["State"]["Pid"].as_i64().unwrap() as i32).unwrap());
    // Exit codes recorded while berthd was down.
    for (name, code) in &codes {
        let v = inspect(d, name);
        assert_eq!(v["State"]["Status"], "exited", "{name}: {}", v["State"]);
        assert_eq!(v["State"]["ExitCode"].as_i64().unwrap(), *code, "{name}");
        assert!(logs(d, name).0.contains("bye"), "{name} lost its last line");
    }
    let v = inspect(d, "burst");
    assert_eq!(
        (
            v["State"]["Status"].as_str().unwrap(),
            v["State"]["ExitCode"].as_i64().unwrap()
        ),
        ("exited", 0)
    );
    let out = logs(d, "burst").0;
    let out = out.strip_prefix("started\n").unwrap_or(&out);
    assert_eq!(contiguous("burst", out, ""), BURST_LINES);
    // Restart policies: one restart each, running again.
    for name in ["always1", "always2", "onfail"] {
        let v = wait_for(&format!("{name} restarted by its policy"), LONG, || {
            let v = inspect(d, name);
            (v["State"]["Running"] == true && v["RestartCount"] == 1).then_some(v)
        });
        assert_ne!(v["State"]["Pid"].as_i64().unwrap(), pids[name]);
        h.reaper
            .note(ProcId::of(v["State"]["Pid"].as_i64().unwrap() as i32).unwrap());
        wait_for(&format!("{name}'s second start in its log"), LONG, || {
            (logs(d, name).0.matches("started").count() == 2).then_some(())
        });
    }
    // --rm: removed once berthd learned of the exit.
    for i in 0..3 {
        let name = format!("rm{i}");
        wait_for(&format!("{name} removed"), LONG, || {
            (api(d, "GET", &format!("/containers/{name}/json"), None).status == 404).then_some(())
        });
    }
    // Stop the writers, then every numbered line is in the log, once, in order.
    let stop = api(d, "POST", "/containers/paused/unpause", None);
    assert_eq!(stop.status, 204, "{}", stop.text());
    for w in &writers {
        let r = api(d, "POST", &format!("/containers/{w}/stop?t=10"), None);
        assert_eq!(r.status, 204, "stop {w}: {}", r.text());
        let v = inspect(d, w);
        assert_eq!(v["State"]["ExitCode"], 0, "{w}: {}", v["State"]);
        let (out, err) = logs(d, w);
        let n = contiguous(w, &out, "out ");
        let m = contiguous(w, &err, "err ");
        assert!(
            n > before[w],
            "{w}: {n} lines, {} before the kill",
            before[w]
        );
        assert!(
            m + 1 >= n && m <= n,
            "{w}: {n} stdout lines, {m} stderr lines"
        );
    }

    // Everything can be removed, and then nothing is left.
    for name in docker(d, &["ps", "-aq"]).lines() {
        let r = api(d, "DELETE", &format!("/containers/{name}?force=1"), None);
        assert_eq!(r.status, 204, "rm {name}: {}", r.text());
    }
    let inits = h.reaper.inits.lock().unwrap().clone();
    crashkit::assert_nothing_left(d, &base, &ids, &inits);
}

/// Edits a container's record on disk while berthd is down.
fn edit_record(d: &Berthd, id: &str, f: impl FnOnce(&mut serde_json::Value)) {
    let p = d
        .data_root()
        .join("containers")
        .join(id)
        .join("config.v2.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// The states a SIGKILL leaves when it lands inside an operation, made deterministically
/// (the random test only hits them by chance): each is finished or undone at restart.
#[test]
fn operations_cut_short_by_a_crash_are_finished_at_restart() {
    let mut h = Harness::start();
    let base = Baseline::take(&h.d);
    let d = &mut h.d;
    let create = |name: &str| {
        docker(
            d,
            &[
                "create",
                "--network",
                "none",
                "--name",
                name,
                "busybox",
                "sleep",
                "100000",
            ],
        )
    };
    let half_created = create("half_created");
    let half_removed = create("half_removed");
    let layers_gone = create("layers_gone");
    let half_deleted = create("half_deleted");
    let unrecorded = docker(
        d,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "unrecorded",
            "busybox",
            "sleep",
            "100000",
        ],
    );
    let pid = inspect(d, "unrecorded")["State"]["Pid"].as_i64().unwrap();
    h.reaper.note(ProcId::of(pid as i32).unwrap());
    let ids: BTreeSet<String> = [
        &half_created,
        &half_removed,
        &layers_gone,
        &half_deleted,
        &unrecorded,
    ]
    .into_iter()
    .cloned()
    .collect();

    let mut child = d.take_child().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // create: layers and files written, config.v2.json (the commit point) not yet.
    let dir = d.data_root().join("containers").join(&half_created);
    std::fs::remove_file(dir.join("config.v2.json")).unwrap();
    // rm: marked as being removed, nothing removed yet.
    edit_record(d, &half_removed, |v| {
        v["State"]["RemovalInProgress"] = true.into()
    });
    // rm: marked, and the layers already went.
    edit_record(d, &layers_gone, |v| {
        v["State"]["RemovalInProgress"] = true.into()
    });
    std::fs::remove_dir_all(
        d.data_root()
            .join("image/overlay2/layerdb/mounts")
            .join(&layers_gone),
    )
    .unwrap();
    // rm: removing the container dir, file by file, got as far as hostconfig.json.
    let dir = d.data_root().join("containers").join(&half_deleted);
    edit_record(d, &half_deleted, |v| {
        v["State"]["RemovalInProgress"] = true.into()
    });
    std::fs::remove_file(dir.join("hostconfig.json")).unwrap();
    // start: the shim started the container, the record was not saved.
    edit_record(d, &unrecorded, |v| {
        v["State"]["Running"] = false.into();
        v["State"]["Pid"] = 0.into();
        v["State"]["StartedAt"] = "0001-01-01T00:00:00Z".into();
        v["HasBeenStartedBefore"] = false.into();
    });

    d.kill9_and_restart();
    for name in [
        "half_created",
        "half_removed",
        "layers_gone",
        "half_deleted",
    ] {
        wait_for(&format!("{name} gone"), LONG, || {
            (api(d, "GET", &format!("/containers/{name}/json"), None).status == 404).then_some(())
        });
    }
    let v = inspect(d, "unrecorded");
    assert_eq!(v["State"]["Status"], "running", "{}", v["State"]);
    assert_eq!(v["State"]["Pid"].as_i64().unwrap(), pid);
    assert_ne!(v["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    let disk: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            d.data_root()
                .join("containers")
                .join(&unrecorded)
                .join("config.v2.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(disk["State"]["Running"], true, "the adopted state is saved");
    assert_eq!(disk["State"]["Pid"].as_i64().unwrap(), pid);
    // The adopted container's rootfs mount is counted: a mount/unmount pair (docker cp) must
    // not unmount it under the running container.
    let merged = v["GraphDriver"]["Data"]["MergedDir"]
        .as_str()
        .unwrap()
        .to_owned();
    docker(
        d,
        &[
            "cp",
            "unrecorded:/etc/hostname",
            d.root.path().join("hostname").to_str().unwrap(),
        ],
    );
    assert!(
        crashkit::mounts_under(&d.data_root()).contains(&merged),
        "rootfs of a running container unmounted by docker cp"
    );
    let r = api(d, "DELETE", "/containers/unrecorded?force=1", None);
    assert_eq!(r.status, 204, "{}", r.text());
    let inits = h.reaper.inits.lock().unwrap().clone();
    crashkit::assert_nothing_left(d, &base, &ids, &inits);
}
