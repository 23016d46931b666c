//! Hijacked connections (attach, exec start): the 101 response and the byte bridge between
//! the client and a shim attach stream.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::containers::store::Entry;

/// Docker's upgrade answer: `101` with `Upgrade: tcp` and the raw-stream content type.
pub fn upgrade_response() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    r
}

/// Counts a live bridge on the container so the shim is not deleted under it.
#[derive(Debug)]
pub struct AttachGuard(Arc<Entry>);

impl AttachGuard {
    /// Registers one bridge.
    pub fn new(e: Arc<Entry>) -> AttachGuard {
        e.attached.send_modify(|n| *n += 1);
        AttachGuard(e)
    }
}

impl Drop for AttachGuard {
    fn drop(&mut self) {
        self.0.attached.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Copies shim → client until the shim closes (process exited, output drained), while
/// copying client → shim (stdin) when `stdin`; a client EOF half-closes the shim side.
pub async fn bridge<C>(client: C, shim: UnixStream, stdin: bool)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut shim_r, mut shim_w) = shim.into_split();
    let input = tokio::spawn(async move {
        if stdin {
            let _ = tokio::io::copy(&mut client_r, &mut shim_w).await;
        } else {
            // Drain and drop whatever the client sends; keep the shim's stdin untouched.
            let _ = tokio::io::copy(&mut client_r, &mut tokio::io::sink()).await;
        }
        let _ = shim_w.shutdown().await;
    });
    let _ = tokio::io::copy(&mut shim_r, &mut client_w).await;
    let _ = client_w.flush().await;
    let _ = client_w.shutdown().await;
    input.abort();
}

/// Wraps hyper's upgraded connection for tokio IO.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;
