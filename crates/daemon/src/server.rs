//! Listeners and the accept loop: unix sockets (0660, group `berth` when it exists) and
//! opt-in TCP; HTTP/1.1 with upgrades (attach/exec hijack); graceful stop on SIGTERM
//! (stop accepting, finish in-flight requests, leave containers running).

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// Errors setting up listeners.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Bad -H value.
    #[error("invalid listen address {0:?}")]
    BadAddress(String),
    /// Could not bind.
    #[error("listening on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// Unix socket (path removed on shutdown).
    Unix(tokio::net::UnixListener, PathBuf),
    /// TCP.
    Tcp(tokio::net::TcpListener),
}

fn group_gid(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// Binds every `-H` address.
pub fn bind(hosts: &[String]) -> Result<Vec<Listener>, ServerError> {
    let mut out = Vec::new();
    for h in hosts {
        if let Some(path) = h.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            // A stale socket from a previous run (the data-root lock proves no berthd owns it).
            let _ = std::fs::remove_file(&path);
            let l = tokio::net::UnixListener::bind(&path).map_err(|source| ServerError::Bind {
                addr: h.clone(),
                source,
            })?;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660));
            if let Some(gid) = group_gid("berth") {
                let _ = std::os::unix::fs::chown(&path, Some(0), Some(gid));
            }
            out.push(Listener::Unix(l, path));
        } else if let Some(addr) = h.strip_prefix("tcp://") {
            tracing::warn!(
                "LISTENING ON {addr} WITHOUT TLS OR AUTHENTICATION: anyone who can reach it is root on this host"
            );
            eprintln!(
                "WARNING: berthd is listening on tcp://{addr} without TLS or authentication; anyone who can reach it can run anything as root on this host"
            );
            let std_l = std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind {
                addr: h.clone(),
                source,
            })?;
            std_l
                .set_nonblocking(true)
                .map_err(|source| ServerError::Bind {
                    addr: h.clone(),
                    source,
                })?;
            let l =
                tokio::net::TcpListener::from_std(std_l).map_err(|source| ServerError::Bind {
                    addr: h.clone(),
                    source,
                })?;
            out.push(Listener::Tcp(l));
        } else {
            return Err(ServerError::BadAddress(h.clone()));
        }
    }
    Ok(out)
}

fn serve_conn<IO>(
    io: IO,
    router: Router,
    shutdown: watch::Receiver<bool>,
    inflight: Arc<tokio::sync::Semaphore>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _permit = inflight.acquire_owned().await;
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let r = router.clone();
            async move { Ok::<_, Infallible>(crate::api::handle(r, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        tokio::pin!(conn);
        let mut shutdown = shutdown;
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with error");
                }
            }
            _ = until_true(&mut shutdown) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
}

/// Accepts on every listener until `shutdown` turns true, then waits for open connections
/// to finish their in-flight request.
pub async fn serve(listeners: Vec<Listener>, router: Router, shutdown: watch::Receiver<bool>) {
    // Each connection holds one permit; shutdown waits until all are back.
    const MAX_CONNS: u32 = 1 << 20;
    let inflight = Arc::new(tokio::sync::Semaphore::new(MAX_CONNS as usize));
    let mut tasks = Vec::new();
    let mut paths = Vec::new();
    for l in listeners {
        let router = router.clone();
        let mut sd = shutdown.clone();
        let inflight = inflight.clone();
        if let Listener::Unix(_, p) = &l {
            paths.push(p.clone());
        }
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = until_true(&mut sd) => break,
                    acc = accept(&l) => match acc {
                        Ok(Accepted::Unix(s)) => serve_conn(s, router.clone(), sd.clone(), inflight.clone()),
                        Ok(Accepted::Tcp(s)) => serve_conn(s, router.clone(), sd.clone(), inflight.clone()),
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
    // Long polls (wait, logs --follow) may never end on their own: give in-flight requests
    // a bounded grace period, like dockerd's shutdown timeout, then exit anyway.
    if tokio::time::timeout(SHUTDOWN_GRACE, inflight.acquire_many(MAX_CONNS))
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after {}s; exiting anyway (containers keep running)",
            SHUTDOWN_GRACE.as_secs()
        );
    }
}

/// How long SIGTERM waits for in-flight requests.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves once the shutdown flag is true (or its sender is gone).
async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(l: &Listener) -> std::io::Result<Accepted> {
    match l {
        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            Accepted::Tcp(s)
        }),
    }
}
