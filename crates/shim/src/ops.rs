//! The control operations of PROTOCOL.md, one method per `op`.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::client::{Kind, frame_header};
use crate::proc::{Pending, Proc};
use crate::proto::{self, Request};
use crate::runtime::ExecRequest;
use crate::shim::{Exec, Shim, Status, Target};
use crate::sys;

impl Shim {
    /// Answer one request of client `i`; `None` when the answer comes later (`wait`).
    pub fn handle(&mut self, i: usize, req: Request) -> Option<Vec<u8>> {
        Some(match req {
            Request::Start => self.op_start(),
            Request::State => self.op_state(),
            Request::Kill { signal, all } => self.op_kill(signal, all),
            Request::Wait => return self.op_wait(i, None),
            Request::ExecWait { exec_id } => match self.exec_index(&exec_id) {
                Some(t) => return self.op_wait(i, Some(t)),
                None => match self.done_execs.iter().rev().find(|(id, _)| *id == exec_id) {
                    Some((_, code)) => proto::ok(json!({"exit_code": code})),
                    None => no_such_exec(&exec_id),
                },
            },
            Request::Pause => self.op_pause(true),
            Request::Resume => self.op_pause(false),
            Request::Resize {
                height,
                width,
                exec_id,
            } => self.op_resize(height, width, exec_id.as_deref()),
            Request::Exec {
                exec_id,
                process,
                terminal,
                stdin,
            } => self.op_exec(exec_id, process, terminal, stdin),
            Request::Attach {
                stdin,
                stdout,
                stderr,
                exec_id,
            } => self.op_attach(i, stdin, stdout, stderr, exec_id.as_deref()),
            Request::Delete => self.op_delete(),
            Request::Shutdown => {
                if self.exit.is_none() {
                    proto::err("container is still running", None)
                } else {
                    self.quit = true;
                    proto::ok(json!({}))
                }
            }
        })
    }

    fn exec_index(&self, id: &str) -> Option<u64> {
        self.execs.iter().find(|e| e.id == id).map(|e| e.key)
    }

    fn op_start(&mut self) -> Vec<u8> {
        berth_runtime::timing::mark("shim: start request");
        if self.status != Status::Created || self.exit.is_some() {
            return proto::err(
                &format!("cannot start a container in state {}", self.status.name()),
                None,
            );
        }
        match self.rt.start(&self.args.id) {
            Ok(()) => {
                self.status = Status::Running;
                self.shed_due = true;
                proto::ok(json!({"pid": self.init.pid}))
            }
            Err(e) => {
                let code = e.exit_code();
                self.after_failed_start(code);
                proto::err(&error_chain(&e), Some(code))
            }
        }
    }

    /// A failed start usually ends the init. The in-process runtime reaps it itself to learn
    /// the exit code (ECHILD for us); then the error's code is the exit status.
    fn after_failed_start(&mut self, code: i32) {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let pid = Pid::from_raw(self.init.pid);
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => self.record_init_exit(c),
            Ok(WaitStatus::Signaled(_, sig, _)) => self.record_init_exit(128 + sig as i32),
            Err(nix::errno::Errno::ECHILD) => self.record_init_exit(code),
            // Still alive: its exit arrives through SIGCHLD like any other.
            _ => {}
        }
    }

    fn op_state(&self) -> Vec<u8> {
        let mut v = json!({
            "status": self.status.name(),
            "pid": self.init.pid,
            "oom_killed": self.exit.as_ref().is_some_and(|e| e.oom_killed),
        });
        if let Some(e) = &self.exit {
            v["exit_code"] = json!(e.code);
            v["exited_at"] = json!(e.at);
        }
        proto::ok(v)
    }

    fn op_kill(&mut self, signal: i32, all: bool) -> Vec<u8> {
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => return proto::err(&format!("invalid signal {signal}"), None),
        };
        if all {
            return match self.rt.kill_all(&self.args.id, signal) {
                Ok(()) => proto::ok(json!({})),
                Err(e) => proto::err(&error_chain(&e), None),
            };
        }
        if self.exit.is_some() {
            return proto::err("container is not running", None);
        }
        // The init is our child and not yet reaped, so its pid cannot have been reused.
        match kill(Pid::from_raw(self.init.pid), sig) {
            Ok(()) => proto::ok(json!({})),
            Err(e) => proto::err(&format!("kill {}: {e}", self.init.pid), None),
        }
    }

    fn op_wait(&mut self, i: usize, t: Target) -> Option<Vec<u8>> {
        match (t, self.proc_ref(t).and_then(|p| p.exit.clone())) {
            (None, Some((code, at))) => {
                Some(proto::ok(json!({"exit_code": code, "exited_at": at})))
            }
            (Some(_), Some((code, _))) => Some(proto::ok(json!({"exit_code": code}))),
            (_, None) => {
                self.clients[i].kind = Kind::Wait(t);
                None
            }
        }
    }

    fn op_pause(&mut self, pause: bool) -> Vec<u8> {
        let want = if pause {
            Status::Running
        } else {
            Status::Paused
        };
        if self.status != want {
            return proto::err(
                &format!("container is {}, not {}", self.status.name(), want.name()),
                None,
            );
        }
        let r = if pause {
            self.rt.pause(&self.args.id)
        } else {
            self.rt.resume(&self.args.id)
        };
        match r {
            Ok(()) => {
                self.status = if pause {
                    Status::Paused
                } else {
                    Status::Running
                };
                proto::ok(json!({}))
            }
            Err(e) => proto::err(&error_chain(&e), None),
        }
    }

    fn op_resize(&mut self, height: u16, width: u16, exec_id: Option<&str>) -> Vec<u8> {
        let t = match exec_id {
            None => None,
            Some(id) => match self.exec_index(id) {
                Some(t) => Some(t),
                None => return no_such_exec(id),
            },
        };
        let Some(master) = self.proc_ref(t).and_then(|p| p.master.as_ref()) else {
            return proto::err("the process has no terminal", None);
        };
        match sys::set_winsize(std::os::fd::AsRawFd::as_raw_fd(master), height, width) {
            Ok(()) => proto::ok(json!({})),
            Err(e) => proto::err(&format!("resize: {e}"), None),
        }
    }

    fn op_exec(&mut self, exec_id: String, mut process: Value, tty: bool, stdin: bool) -> Vec<u8> {
        if self.status != Status::Running || self.exit.is_some() {
            return proto::err("container is not running", None);
        }
        if self.exec_index(&exec_id).is_some() {
            return proto::err(&format!("exec {exec_id} already exists"), None);
        }
        if !process.is_object() {
            return proto::err("exec: process must be an OCI process object", None);
        }
        process["terminal"] = json!(tty);
        let n = self.next_exec_key;
        self.next_exec_key += 1;
        let dir = self.args.state_dir.clone();
        let console_path = self.sock_dir.sock_path(&format!("exec{n}.console.sock"));
        let pending = match Pending::new(tty, stdin, &console_path) {
            Ok(p) => p,
            Err(e) => return proto::err(&error_chain(&e), None),
        };
        let console = pending.console.as_ref().map(|c| c.path().to_path_buf());
        let mut pending = pending;
        let stdio = pending.for_runtime.take();
        let r = self.rt.exec(ExecRequest {
            id: &self.args.id,
            exec_id: &format!("exec{n}"),
            process: &process,
            console_socket: console.as_deref(),
            stdio,
            scratch_dir: &dir,
        });
        self.shed_due = true;
        let pid = match r {
            Ok(pid) => pid,
            Err(e) => return proto::err(&error_chain(&e), Some(e.exit_code())),
        };
        match pending.finish(pid, true) {
            Ok(p) => {
                self.execs.push(Exec {
                    key: n,
                    id: exec_id,
                    proc: p,
                    waited: false,
                    exited: None,
                });
                proto::ok(json!({"pid": pid}))
            }
            Err(e) => proto::err(&error_chain(&e), None),
        }
    }

    fn op_attach(
        &mut self,
        i: usize,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        exec_id: Option<&str>,
    ) -> Vec<u8> {
        let t = match exec_id {
            None => None,
            Some(id) => match self.exec_index(id) {
                Some(t) => Some(t),
                None => return no_such_exec(id),
            },
        };
        let mut backlog = Vec::new();
        if let Some(p) = self.proc_mut(t)
            && let Some(b) = p.backlog.take()
        {
            backlog = b;
        }
        let tty = self.proc_ref(t).is_some_and(|p: &Proc| p.tty);
        let c = &mut self.clients[i];
        c.kind = Kind::Attach {
            target: t,
            stdin,
            stdout,
            stderr,
        };
        let mut resp = proto::ok(json!({}));
        for (stream, data) in backlog {
            let wants = match stream {
                crate::log::Stream::Stdout => stdout,
                crate::log::Stream::Stderr => stderr,
            };
            if wants {
                if !tty {
                    resp.extend_from_slice(&frame_header(stream, data.len()));
                }
                resp.extend_from_slice(&data);
            }
        }
        resp
    }

    fn op_delete(&mut self) -> Vec<u8> {
        if self.exit.is_none() {
            return proto::err("cannot delete a running container", None);
        }
        if let Err(e) = self.rt.delete(&self.args.id) {
            return proto::err(&error_chain(&e), None);
        }
        self.quit = true;
        proto::ok(json!({}))
    }
}

fn no_such_exec(id: &str) -> Vec<u8> {
    proto::err(&format!("no such exec: {id}"), None)
}

/// The error with its causes, `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
