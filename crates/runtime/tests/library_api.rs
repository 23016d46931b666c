//! The library API as berth-shim uses it, in-process: create with our own stdio pipes, start,
//! exec, wait for the init (a direct child of the caller), delete. Runs in a forked child so
//! the cloning happens from a single-threaded process, as in the shim.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod rt_support;
use rt_support::Rt;

use std::io::Read;
use std::os::fd::OwnedFd;

use berth_runtime::container::{self, CreateOptions, ExecOptions};

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().unwrap()
}

/// Run `f` in a forked child; its Err/panic text fails the test.
fn in_child(f: impl FnOnce() -> Result<(), String>) {
    let (r, w) = pipe();
    // SAFETY: the child runs `f` and `_exit`s; the harness's other threads are idle.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let msg = match res {
                Ok(Ok(())) => "OK".to_string(),
                Ok(Err(e)) => e,
                Err(_) => "panic".to_string(),
            };
            let _ = nix::unistd::write(&w, msg.as_bytes());
            // SAFETY: leave without running the harness's destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            std::fs::File::from(r).read_to_string(&mut msg).unwrap();
            nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(msg, "OK");
        }
    }
}

#[test]
fn create_start_exec_wait_delete_in_process() {
    let rt = Rt::new();
    let b = rt.bundle("b", &["sh", "-c", "read line; echo got:$line"], |_| {});
    let id = rt.id("lib");
    let root = rt.root.clone();
    in_child(move || {
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        let err_w = out_w.try_clone().map_err(|e| e.to_string())?;
        let mut c = container::create(CreateOptions {
            id: id.clone(),
            bundle: b,
            root: root.clone(),
            console_socket: None,
            pid_file: None,
            no_pivot: false,
            stdio: Some([in_r, out_w, err_w]),
            preserve_fds: 0,
        })
        .map_err(|e| berth_runtime::error_chain(&e))?;
        if c.state().status != berth_runtime::state::Status::Created {
            return Err(format!("status {:?}", c.state().status));
        }
        if c.pidfd().is_none() {
            return Err("no pidfd for our own child".into());
        }
        c.start().map_err(|e| berth_runtime::error_chain(&e))?;
        // Exec a second process with its own pipes while the init waits on stdin.
        let (eo_r, eo_w) = pipe();
        let (_ei_r, ei_w) = pipe();
        let null = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
        let mut process = c
            .spec()
            .map_err(|e| e.to_string())?
            .process()
            .clone()
            .unwrap();
        process.set_args(Some(vec!["echo".into(), "from-exec".into()]));
        let p = container::exec(
            &root,
            &id,
            &process,
            ExecOptions {
                stdio: Some([null.into(), eo_w, ei_w]),
                ..Default::default()
            },
        )
        .map_err(|e| berth_runtime::error_chain(&e))?;
        if p.wait().map_err(|e| e.to_string())? != 0 {
            return Err("exec exit status".into());
        }
        let mut s = String::new();
        std::fs::File::from(eo_r)
            .read_to_string(&mut s)
            .map_err(|e| e.to_string())?;
        if s != "from-exec\n" {
            return Err(format!("exec output {s:?}"));
        }
        nix::unistd::write(&in_w, b"hello\n").map_err(|e| e.to_string())?;
        drop(in_w);
        let code = container::wait_status(c.pid()).map_err(|e| e.to_string())?;
        let mut out = String::new();
        std::fs::File::from(out_r)
            .read_to_string(&mut out)
            .map_err(|e| e.to_string())?;
        if code != 0 || out != "got:hello\n" {
            return Err(format!("code {code}, output {out:?}"));
        }
        let st = container::load(&root, &id)
            .map_err(|e| e.to_string())?
            .state();
        if st.status != berth_runtime::state::Status::Stopped {
            return Err(format!("after exit: {:?}", st.status));
        }
        container::delete(&root, &id, false).map_err(|e| berth_runtime::error_chain(&e))?;
        if root.join(&id).exists() {
            return Err("state dir left".into());
        }
        Ok(())
    });
}
