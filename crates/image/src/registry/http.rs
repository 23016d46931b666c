//! A minimal HTTP/1.1 client on hyper: one connection per request (registries answer a pull
//! with a handful of requests, and loopback connections cost microseconds), plain TCP or
//! rustls, redirects followed for blob downloads. No pooling, no HTTP/2.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Request body: in memory or streamed (uploads).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Errors of one HTTP exchange.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL could not be parsed or has no host.
    #[error("invalid URL {0:?}")]
    Url(String),
    /// TCP connect failed.
    #[error("dial tcp {addr}")]
    Connect {
        /// host:port.
        addr: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {host}")]
    Tls {
        /// Server name.
        host: String,
        /// TLS error.
        #[source]
        source: std::io::Error,
    },
    /// HTTP protocol error (connection dropped, malformed response).
    #[error("{method} {url}")]
    Hyper {
        /// Method.
        method: Method,
        /// URL.
        url: String,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// Building the request failed.
    #[error("building request for {0}")]
    Build(String, #[source] http::Error),
    /// Too many redirects.
    #[error("{0}: stopped after 10 redirects")]
    Redirects(String),
    /// A response body exceeded its limit.
    #[error("{url}: response body larger than {limit} bytes")]
    TooLarge {
        /// URL.
        url: String,
        /// Limit.
        limit: usize,
    },
}

impl HttpError {
    /// Whether retrying the request may help (connection level failures).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. } | HttpError::Hyper { .. } | HttpError::Tls { .. }
        )
    }
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A body in memory.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth());
            match cfg {
                Ok(c) => Arc::new(c),
                // ring supports the default versions; this cannot fail in practice, but an
                // empty config would only make every TLS handshake fail, never panic.
                Err(_) => Arc::new(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                ),
            }
        })
        .clone()
}

/// Send one request on a fresh connection. `req` must have an absolute URI.
pub async fn send(mut req: Request<Body>) -> Result<Response<Incoming>, HttpError> {
    let uri = req.uri().clone();
    let url = uri.to_string();
    let host = uri.host().ok_or_else(|| HttpError::Url(url.clone()))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .ok_or_else(|| HttpError::Url(url.clone()))?
        .to_string();
    if !req.headers().contains_key(header::HOST)
        && let Ok(v) = header::HeaderValue::from_str(&authority)
    {
        req.headers_mut().insert(header::HOST, v);
    }
    if !req.headers().contains_key(header::USER_AGENT) {
        req.headers_mut().insert(
            header::USER_AGENT,
            header::HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"))),
        );
    }
    // Origin form on the wire.
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = pq.parse().map_err(|_| HttpError::Url(url.clone()))?;
    let addr = format!("{host}:{port}");
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|source| HttpError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let method = req.method().clone();
    let hyper_err = |source| HttpError::Hyper {
        method: method.clone(),
        url: url.clone(),
        source,
    };
    if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| HttpError::Url(url.clone()))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|source| HttpError::Tls {
                host: host.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(hyper_err)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender.send_request(req).await.map_err(hyper_err)
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(hyper_err)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender.send_request(req).await.map_err(hyper_err)
    }
}

/// Build a request.
pub fn request(
    method: Method,
    url: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Request<Body>, HttpError> {
    let uri: Uri = url.parse().map_err(|_| HttpError::Url(url.to_string()))?;
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(body)
        .map_err(|e| HttpError::Build(url.to_string(), e))
}

/// GET following redirects (blob downloads are often redirected to storage); the
/// `Authorization` header is dropped when the redirect leaves the original host.
pub async fn get_following(
    url: &str,
    headers: &HeaderMap,
) -> Result<(Response<Incoming>, String), HttpError> {
    let mut url = url.to_string();
    let mut headers = headers.clone();
    let origin = authority_of(&url);
    for _ in 0..10 {
        let resp = send(request(Method::GET, &url, &headers, empty())?).await?;
        if resp.status().is_redirection()
            && let Some(loc) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
        {
            url = resolve_location(&url, loc);
            if authority_of(&url) != origin {
                headers.remove(header::AUTHORIZATION);
            }
            continue;
        }
        return Ok((resp, url));
    }
    Err(HttpError::Redirects(url))
}

fn authority_of(url: &str) -> Option<String> {
    url.parse::<Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
}

/// Resolve a `Location` header against the URL it answered.
pub fn resolve_location(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let Ok(u) = base.parse::<Uri>() else {
        return loc.to_string();
    };
    let scheme = u.scheme_str().unwrap_or("http");
    let auth = u.authority().map(|a| a.as_str()).unwrap_or("");
    if loc.starts_with('/') {
        format!("{scheme}://{auth}{loc}")
    } else {
        let path = u.path();
        let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
        format!("{scheme}://{auth}{dir}{loc}")
    }
}

/// Read a whole response body, at most `limit` bytes.
pub async fn read_body(
    resp: Response<Incoming>,
    url: &str,
    limit: usize,
) -> Result<Bytes, HttpError> {
    let mut body = resp.into_body();
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| HttpError::Hyper {
            method: Method::GET,
            url: url.to_string(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(HttpError::TooLarge {
                    url: url.to_string(),
                    limit,
                });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// Whether a status is worth retrying (server overloaded or restarting).
pub fn transient_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve() {
        assert_eq!(
            resolve_location(
                "http://h:5000/v2/a/blobs/uploads/",
                "/v2/a/blobs/uploads/x?y=1"
            ),
            "http://h:5000/v2/a/blobs/uploads/x?y=1"
        );
        assert_eq!(
            resolve_location("http://h/v2/a", "https://s3/x"),
            "https://s3/x"
        );
        assert_eq!(resolve_location("http://h/v2/a/b", "c"), "http://h/v2/a/c");
    }
}
