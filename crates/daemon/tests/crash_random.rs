//! SIGKILL berthd at random moments of a concurrent create/start/stop/kill/restart/pause/rm
//! workload (seeded; the seed is printed, `BERTH_CRASH_SEED` replays it, `BERTH_CRASH_ITERS`
//! sets the number of rounds, 20 by default). After each restart: the daemon answers, every
//! listed container is inspectable and agrees with its record on disk and with the processes,
//! shims and mounts that exist; every container can be removed, and then nothing is left.

#![allow(clippy::unwrap_used)]

mod common;
mod crashkit;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Berthd;
use crashkit::{Baseline, Harness, ProcId, Rng, api, try_request, wait_for};
use serde_json::{Value, json};

const ACTORS: u64 = 3;
const LONG: Duration = Duration::from_secs(60);

/// What a created container runs.
fn random_body(rng: &mut Rng) -> Value {
    let (cmd, host): (&[&str], Value) = match rng.below(6) {
        0 | 1 => (&["sleep", "100000"], json!({})),
        2 => (&["sh", "-c", "sleep 0.1; exit 3"], json!({})),
        3 => (&["sh", "-c", "sleep 0.2"], json!({"AutoRemove": true})),
        4 => (
            &["sh", "-c", "sleep 0.2; exit 1"],
            json!({"RestartPolicy": {"Name": "always"}}),
        ),
        _ => (
            &[
                "sh",
                "-c",
                "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done",
            ],
            json!({"RestartPolicy": {"Name": "unless-stopped"}}),
        ),
    };
    let mut host = host;
    host["NetworkMode"] = json!("none");
    json!({"Image": "busybox", "Cmd": cmd, "HostConfig": host})
}

/// One actor: random operations until berthd stops answering or `stop` is set.
fn actor(
    sock: &Path,
    mut rng: Rng,
    tag: String,
    known: &Mutex<Vec<String>>,
    stop: &AtomicBool,
    ops: &AtomicU64,
) {
    let pick = |rng: &mut Rng| {
        let k = known.lock().unwrap();
        (!k.is_empty()).then(|| k[rng.below(k.len() as u64) as usize].clone())
    };
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let r = match rng.below(22) {
            0..=8 => {
                n += 1;
                let body = random_body(&mut rng);
                let r = try_request(
                    sock,
                    "POST",
                    &format!("/containers/create?name={tag}-{n}"),
                    Some(&body),
                );
                match r {
                    Ok(resp) if resp.status == 201 => {
                        let id = resp.json()["Id"].as_str().unwrap().to_owned();
                        known.lock().unwrap().push(id.clone());
                        if rng.below(4) != 0 {
                            try_request(sock, "POST", &format!("/containers/{id}/start"), None)
                        } else {
                            Ok(resp)
                        }
                    }
                    other => other,
                }
            }
            9..=11 => match pick(&mut rng) {
                Some(id) => try_request(sock, "POST", &format!("/containers/{id}/stop?t=1"), None),
                None => continue,
            },
            12 => match pick(&mut rng) {
                Some(id) => try_request(sock, "POST", &format!("/containers/{id}/kill"), None),
                None => continue,
            },
            13 | 14 => match pick(&mut rng) {
                Some(id) => {
                    try_request(sock, "POST", &format!("/containers/{id}/restart?t=1"), None)
                }
                None => continue,
            },
            15 => match pick(&mut rng) {
                Some(id) => try_request(sock, "POST", &format!("/containers/{id}/start"), None),
                None => continue,
            },
            20 | 21 => match pick(&mut rng) {
                Some(id) => {
                    let op = if rng.below(2) == 0 {
                        "pause"
                    } else {
                        "unpause"
                    };
                    try_request(sock, "POST", &format!("/containers/{id}/{op}"), None)
                }
                None => continue,
            },
            _ => match pick(&mut rng) {
                Some(id) => try_request(sock, "DELETE", &format!("/containers/{id}?force=1"), None),
                None => continue,
            },
        };
        match r {
            // berthd is gone (or going): this actor is done.
            Err(_) => return,
            Ok(resp) => {
                assert!(
                    resp.status < 500
                        || resp.text().contains("is not running")
                        || resp.text().contains("OCI runtime"),
                    "{tag}: server error {}: {}",
                    resp.status,
                    resp.text()
                );
            }
        }
        ops.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(rng.below(30)));
    }
}

/// Notes every container process recorded in the exec root, so the final check can tell
/// whether one outlived its container.
fn note_inits(h: &Harness) {
    for name in crashkit::names_in(&h.d.exec_root) {
        if let Ok(p) = std::fs::read_to_string(h.d.exec_root.join(&name).join("pid"))
            && let Ok(pid) = p.trim().parse::<i32>()
            && let Some(id) = ProcId::of(pid)
        {
            h.reaper.note(id);
        }
    }
}

fn state_of(v: &Value) -> Value {
    let s = &v["State"];
    json!([
        s["Status"],
        s["Running"],
        s["Paused"],
        s["Pid"],
        s["ExitCode"],
        s["StartedAt"],
        s["FinishedAt"]
    ])
}

/// One consistent look at a container: inspect, its record on disk, inspect again; when both
/// inspects agree, the disk must agree too, and a running container has a live init and shim.
fn consistent(d: &Berthd, id: &str) -> Result<(), String> {
    let a = try_request(&d.sock, "GET", &format!("/containers/{id}/json"), None)
        .map_err(|e| e.to_string())?;
    if a.status == 404 {
        return Ok(()); // removed meanwhile (--rm)
    }
    if a.status != 200 {
        return Err(format!("inspect {id}: {} {}", a.status, a.text()));
    }
    let a = a.json();
    let disk: Value = std::fs::read(
        d.data_root()
            .join("containers")
            .join(id)
            .join("config.v2.json"),
    )
    .ok()
    .and_then(|b| serde_json::from_slice(&b).ok())
    .unwrap_or(Value::Null);
    let b = try_request(&d.sock, "GET", &format!("/containers/{id}/json"), None)
        .map_err(|e| e.to_string())?;
    if b.status == 404 {
        return Ok(());
    }
    let b = b.json();
    if state_of(&a) != state_of(&b) {
        return Err(format!("{id}: changed while looking"));
    }
    let s = &a["State"];
    let ds = &disk["State"];
    for (api_key, disk_key) in [
        ("Running", "Running"),
        ("Paused", "Paused"),
        ("Pid", "Pid"),
        ("ExitCode", "ExitCode"),
        ("StartedAt", "StartedAt"),
        ("FinishedAt", "FinishedAt"),
    ] {
        if s[api_key] != ds[disk_key] {
            return Err(format!(
                "{id}: {api_key} is {} but {} on disk",
                s[api_key], ds[disk_key]
            ));
        }
    }
    match s["Status"].as_str().unwrap_or("") {
        "running" | "paused" => {
            let pid = s["Pid"].as_i64().unwrap_or(0) as i32;
            if ProcId::of(pid).is_none() {
                return Err(format!("{id}: running with pid {pid}, which is not alive"));
            }
            let shim =
                std::fs::read_to_string(d.exec_root.join(id).join("shim.pid")).unwrap_or_default();
            if shim.trim().parse().ok().and_then(ProcId::of).is_none() {
                return Err(format!("{id}: running but its shim is gone"));
            }
        }
        "created" | "exited" | "restarting" => {}
        other => return Err(format!("{id}: status {other} after recovery")),
    }
    Ok(())
}

/// Live shims and mounts belong to containers that are up (or being restarted).
fn no_strays(d: &Berthd) -> Result<(), String> {
    let list = try_request(&d.sock, "GET", "/containers/json?all=1", None)
        .map_err(|e| e.to_string())?
        .json();
    let up: BTreeSet<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            matches!(
                c["State"].as_str(),
                Some("running" | "paused" | "restarting")
            )
        })
        .map(|c| c["Id"].as_str().unwrap().to_owned())
        .collect();
    for (p, dir) in crashkit::shims_under(&d.exec_root) {
        let id = Path::new(&dir)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !up.contains(&id) {
            let st = list
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["Id"] == id.as_str())
                .map(|c| c["State"].to_string())
                .unwrap_or_else(|| "unknown".into());
            let files = crashkit::names_in(Path::new(&dir));
            let shim_state =
                std::os::unix::net::UnixStream::connect(Path::new(&dir).join("shim.sock"))
                    .and_then(|mut s| {
                        use std::io::{BufRead, Write};
                        s.write_all(b"{\"op\":\"state\"}\n")?;
                        let mut line = String::new();
                        std::io::BufReader::new(s).read_line(&mut line)?;
                        Ok(line)
                    })
                    .unwrap_or_else(|e| e.to_string());
            let wchan =
                std::fs::read_to_string(format!("/proc/{}/wchan", p.pid)).unwrap_or_default();
            let started = std::fs::metadata(format!("/proc/{}", p.pid))
                .and_then(|m| m.modified())
                .ok();
            return Err(format!(
                "shim {p:?} serves {id}, which is not up ({st}); state dir {files:?}, shim says {shim_state}, shim in {wchan}, started {started:?}"
            ));
        }
    }
    let mut merged = BTreeSet::new();
    for id in &up {
        if let Ok(r) = try_request(&d.sock, "GET", &format!("/containers/{id}/json"), None)
            && r.status == 200
        {
            merged.insert(
                r.json()["GraphDriver"]["Data"]["MergedDir"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
        }
    }
    for m in crashkit::mounts_under(&d.data_root()) {
        if !merged.contains(&m) {
            return Err(format!("mount {m} belongs to no container that is up"));
        }
    }
    Ok(())
}

fn check_after_restart(h: &Harness, round: u64) {
    let d = &h.d;
    let ping = api(d, "GET", "/_ping", None);
    assert_eq!(ping.status, 200);
    let list = api(d, "GET", "/containers/json?all=1", None);
    assert_eq!(list.status, 200, "{}", list.text());
    for c in list.json().as_array().unwrap() {
        let id = c["Id"].as_str().unwrap();
        let mut last = String::new();
        wait_for(
            &format!("round {round}: a consistent view of {id}"),
            LONG,
            || match consistent(d, id) {
                Ok(()) => Some(()),
                Err(e) => {
                    if e != last {
                        eprintln!("round {round}: {e}");
                        last = e;
                    }
                    None
                }
            },
        );
    }
    let mut last = String::new();
    wait_for(
        &format!("round {round}: no stray shims or mounts"),
        LONG,
        || match no_strays(d) {
            Ok(()) => Some(()),
            Err(e) => {
                if e != last {
                    eprintln!("round {round}: {e}");
                    last = e;
                }
                None
            }
        },
    );
}

fn remove_all(h: &Harness, round: u64) {
    let d = &h.d;
    wait_for(
        &format!("round {round}: every container removed"),
        LONG,
        || {
            note_inits(h);
            let list = api(d, "GET", "/containers/json?all=1", None).json();
            let list = list.as_array().unwrap();
            if list.is_empty() {
                return Some(());
            }
            for c in list {
                let id = c["Id"].as_str().unwrap();
                let r = api(d, "DELETE", &format!("/containers/{id}?force=1"), None);
                // 404/409: an auto-remove got there first.
                assert!(
                    matches!(r.status, 204 | 404 | 409),
                    "round {round}: rm -f {id}: {} {}\n{}",
                    r.status,
                    r.text(),
                    crashkit::tail(&d.log(), 60)
                );
            }
            None
        },
    );
}

#[test]
fn random_sigkills_during_create_start_stop_rm() {
    let seed = crashkit::seed();
    let rounds: u64 = std::env::var("BERTH_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!("crash seed {seed} (replay: BERTH_CRASH_SEED={seed}), {rounds} rounds");
    let mut h = Harness::start();
    let base = Baseline::take(&h.d);
    let mut rng = Rng::new(seed);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for round in 0..rounds {
        let known = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..ACTORS)
            .map(|a| {
                let (known, stop, ops) = (known.clone(), stop.clone(), ops.clone());
                let sock = h.d.sock.clone();
                let arng = Rng::new(rng.next_u64());
                let tag = format!("r{round}a{a}");
                std::thread::spawn(move || actor(&sock, arng, tag, &known, &stop, &ops))
            })
            .collect();
        let delay = 30 + rng.below(1200);
        std::thread::sleep(Duration::from_millis(delay));
        let mut child = h.d.take_child().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        note_inits(&h);
        seen.extend(known.lock().unwrap().iter().cloned());
        // Down for a moment: short-lived containers exit meanwhile.
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        h.d.kill9_and_restart();
        let n = known.lock().unwrap().len();
        eprintln!(
            "round {round}: killed after {delay} ms, {} ops, {n} containers created",
            ops.load(Ordering::Relaxed)
        );
        check_after_restart(&h, round);
        remove_all(&h, round);
        let inits = h.reaper.inits.lock().unwrap().clone();
        let mut last = Vec::new();
        let settled = (0..250).any(|_| {
            last = crashkit::leftovers(&h.d, &base, &seen, &inits);
            if !last.is_empty() {
                std::thread::sleep(Duration::from_millis(40));
            }
            last.is_empty()
        });
        assert!(
            settled,
            "round {round}: left behind:\n{}\n--- berthd log tail:\n{}",
            last.join("\n"),
            crashkit::tail(&h.d.log(), 80)
        );
        assert!(
            !h.d.log().contains("panicked"),
            "berthd panicked:\n{}",
            h.d.log()
        );
    }
}
