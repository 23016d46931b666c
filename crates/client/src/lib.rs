//! Async client for berthd (or any Docker Engine API daemon) over a unix socket or TCP.
//!
//! Used by the `berth` CLI and by end-to-end tests. One HTTP/1.1 connection per request (a
//! unix-socket connect costs microseconds and keeps hijacked streams independent), API version
//! negotiated once through `/_ping`, daemon errors mapped to [`ClientError::Daemon`] with the
//! daemon's `{"message"}` text, streaming bodies as [`ByteStream`]/[`JsonLines`], and attach/exec
//! hijacks as a bidirectional [`Hijacked`] stream.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod body;
pub mod error;
pub mod host;
pub mod query;
pub mod stdcopy;
pub mod stream;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use body::ReqBody;
pub use error::ClientError;
pub use host::{DEFAULT_HOST, Host, HostError};
pub use stdcopy::{Demuxer, StdStream};
pub use stream::{ByteStream, JsonLines};

/// The highest API version this client speaks.
pub const CLIENT_API_VERSION: &str = "1.41";

/// A hijacked (upgraded) connection: raw bytes both ways after attach or exec start.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// A connection to one daemon address.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    version: Option<String>,
}

/// What `/_ping` told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ping {
    /// `API-Version` header, if sent.
    pub api_version: Option<String>,
    /// `OSType` header, if sent.
    pub os_type: Option<String>,
}

/// Compares dotted API versions numerically ("1.9" < "1.41").
pub fn version_lt(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl Client {
    /// A client for `host`; no connection is made until the first request.
    pub fn new(host: Host) -> Self {
        Client {
            host,
            version: None,
        }
    }

    /// The daemon address.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The API version requests are sent with (after [`Client::negotiate`]), if any.
    pub fn api_version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Pins the API version without asking the daemon (`DOCKER_API_VERSION`).
    pub fn set_api_version(&mut self, v: impl Into<String>) {
        self.version = Some(v.into());
    }

    /// Pings the daemon and uses min(daemon's `API-Version`, [`CLIENT_API_VERSION`]).
    pub async fn negotiate(&mut self) -> Result<Ping, ClientError> {
        let ping = self.ping().await?;
        let v = match &ping.api_version {
            Some(s) if version_lt(s, CLIENT_API_VERSION) => s.clone(),
            _ => CLIENT_API_VERSION.to_owned(),
        };
        self.version = Some(v);
        Ok(ping)
    }

    /// `GET /_ping` (unversioned).
    pub async fn ping(&self) -> Result<Ping, ClientError> {
        let resp = self
            .raw(Method::GET, "/_ping", body::empty(), None, false)
            .await?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let ping = Ping {
            api_version: header("api-version"),
            os_type: header("ostype"),
        };
        check_status(resp, &self.host).await?;
        Ok(ping)
    }

    fn url(&self, path: &str) -> String {
        match &self.version {
            Some(v) if path != "/_ping" => format!("/v{v}{path}"),
            _ => path.to_owned(),
        }
    }

    async fn connect(&self) -> Result<Conn, ClientError> {
        let err = |source| ClientError::Connect {
            host: self.host.to_string(),
            source,
        };
        Ok(match &self.host {
            Host::Unix(p) => Conn::Unix(tokio::net::UnixStream::connect(p).await.map_err(err)?),
            Host::Tcp(a) => Conn::Tcp(tokio::net::TcpStream::connect(a).await.map_err(err)?),
        })
    }

    /// Sends one request and returns the response whatever its status.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
        upgrade: bool,
    ) -> Result<Response<Incoming>, ClientError> {
        let url = self.url(path);
        let mut b = Request::builder()
            .method(method)
            .uri(&url)
            .header(HOST, "berth");
        if let Some(ct) = content_type {
            b = b.header(CONTENT_TYPE, ct);
        }
        if upgrade {
            b = b.header(CONNECTION, "Upgrade").header(UPGRADE, "tcp");
        }
        let req = b.body(body).map_err(|e| ClientError::Request {
            path: url.clone(),
            reason: e.to_string(),
        })?;
        let http = |source| ClientError::Http {
            host: self.host.to_string(),
            source,
        };
        let mut sender = match self.connect().await? {
            Conn::Unix(s) => handshake(TokioIo::new(s)).await.map_err(http)?,
            Conn::Tcp(s) => handshake(TokioIo::new(s)).await.map_err(http)?,
        };
        sender.send_request(req).await.map_err(http)
    }

    /// Sends a request; non-2xx statuses become [`ClientError::Daemon`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> Result<ByteStream, ClientError> {
        let resp = self.raw(method, path, body, content_type, false).await?;
        let resp = check_status(resp, &self.host).await?;
        Ok(ByteStream::new(resp.into_body(), self.host.to_string()))
    }

    /// `GET path` decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self
            .send(Method::GET, path, body::empty(), None)
            .await?
            .collect()
            .await?;
        decode(&body, path)
    }

    /// `GET path`, the raw body.
    pub async fn get_bytes(&self, path: &str) -> Result<Bytes, ClientError> {
        self.send(Method::GET, path, body::empty(), None)
            .await?
            .collect()
            .await
    }

    /// `POST path` with an optional JSON body, answer decoded as JSON.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        req: Option<&B>,
    ) -> Result<T, ClientError> {
        let body = self.post_bytes(path, req).await?;
        decode(&body, path)
    }

    /// `POST path` with an optional JSON body; the answer's raw bytes (often empty, 204).
    pub async fn post_bytes<B: Serialize + ?Sized>(
        &self,
        path: &str,
        req: Option<&B>,
    ) -> Result<Bytes, ClientError> {
        let (body, ct) = json_body(req, path)?;
        self.send(Method::POST, path, body, ct)
            .await?
            .collect()
            .await
    }

    /// `DELETE path`; the raw answer.
    pub async fn delete(&self, path: &str) -> Result<Bytes, ClientError> {
        self.send(Method::DELETE, path, body::empty(), None)
            .await?
            .collect()
            .await
    }

    /// A request whose answer is a JSON-lines stream (pull, load, events).
    pub async fn json_lines(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> Result<JsonLines, ClientError> {
        Ok(JsonLines::new(
            self.send(method, path, body, content_type).await?,
        ))
    }

    /// `POST path` with `Connection: Upgrade, Upgrade: tcp`; after the daemon's `101` the
    /// connection is a raw bidirectional stream (attach, exec start).
    pub async fn upgrade<B: Serialize + ?Sized>(
        &self,
        path: &str,
        req: Option<&B>,
    ) -> Result<Hijacked, ClientError> {
        let (body, ct) = json_body(req, path)?;
        let resp = self.raw(Method::POST, path, body, ct, true).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status().as_u16();
            check_status(resp, &self.host).await?;
            return Err(ClientError::NoUpgrade {
                path: path.to_owned(),
                status,
            });
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|source| ClientError::Http {
                host: self.host.to_string(),
                source,
            })?;
        Ok(TokioIo::new(up))
    }
}

async fn handshake<I>(
    io: I,
) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        // Errors here surface on the request side too; nothing more to do with them.
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

fn json_body<B: Serialize + ?Sized>(
    req: Option<&B>,
    path: &str,
) -> Result<(ReqBody, Option<&'static str>), ClientError> {
    match req {
        None => Ok((body::empty(), None)),
        Some(r) => {
            let v = serde_json::to_vec(r).map_err(|e| ClientError::Request {
                path: path.to_owned(),
                reason: format!("encoding the JSON body: {e}"),
            })?;
            Ok((body::bytes(v), Some("application/json")))
        }
    }
}

fn decode<T: DeserializeOwned>(body: &[u8], path: &str) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|source| ClientError::Decode {
        what: path.split('?').next().unwrap_or(path).to_owned(),
        source,
    })
}

async fn check_status(
    resp: Response<Incoming>,
    host: &Host,
) -> Result<Response<Incoming>, ClientError> {
    let status = resp.status();
    if status.is_success()
        || status == StatusCode::SWITCHING_PROTOCOLS
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(resp);
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|source| ClientError::Http {
            host: host.to_string(),
            source,
        })?
        .to_bytes();
    let mut message = error::message_from_body(&body);
    if message.is_empty() {
        message = status
            .canonical_reason()
            .unwrap_or("unknown error")
            .to_owned();
    }
    Err(ClientError::Daemon {
        status: status.as_u16(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ordering_is_numeric() {
        assert!(version_lt("1.9", "1.41"));
        assert!(version_lt("1.40", "1.41"));
        assert!(!version_lt("1.43", "1.41"));
        assert!(!version_lt("1.41", "1.41"));
    }

    #[tokio::test]
    async fn down_daemon_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let mut c = Client::new(Host::Unix(sock.clone()));
        let e = c.negotiate().await.unwrap_err();
        assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "Cannot connect to the berth daemon at unix://{}. Is berthd running?",
                sock.display()
            )
        );
    }

    #[tokio::test]
    async fn negotiates_and_maps_errors_against_a_tiny_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let first = req.lines().next().unwrap_or("").to_owned();
                let resp = if first.starts_with("GET /_ping") {
                    "HTTP/1.1 200 OK\r\nApi-Version: 1.40\r\nContent-Length: 2\r\n\r\nOK".to_owned()
                } else {
                    let b = r#"{"message":"No such container: nope"}"#;
                    format!(
                        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                        b.len()
                    )
                };
                s.write_all(resp.as_bytes()).await.unwrap();
                seen.push(first);
            }
            seen
        });
        let mut c = Client::new(Host::Unix(sock));
        c.negotiate().await.unwrap();
        assert_eq!(c.api_version(), Some("1.40"));
        let e = c
            .get_json::<serde_json::Value>("/containers/nope/json")
            .await
            .unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: nope"
        );
        let seen = server.await.unwrap();
        assert_eq!(seen[1], "GET /v1.40/containers/nope/json HTTP/1.1");
    }
}
