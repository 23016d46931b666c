//! A Docker Registry HTTP API v2 client for one repository: ping and authenticate (Basic or
//! Bearer token from the challenge's realm), manifests, blobs (whole, streamed, HEAD, mount,
//! upload) and errors turned into Docker's texts.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::auth::{AuthConfig, Challenge, parse_challenge};
use super::error::RegistryError;
use super::http::{self as h, Body, HttpError};
use crate::reference::Reference;

/// Attempts for a request that fails transiently (connection refused, 5xx, dropped stream).
pub(crate) const ATTEMPTS: u32 = 3;

/// Back-off before attempt `n` (1-based; attempt 1 has none).
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(250u64 << n.saturating_sub(2).min(6))
}

/// Largest manifest or config accepted (Docker: 4 MiB manifests; configs can be larger).
const MANIFEST_LIMIT: usize = 4 << 20;
const CONFIG_LIMIT: usize = 32 << 20;

/// Where a registry is reached.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http://127.0.0.1:5000` or `https://registry-1.docker.io`.
    pub base: String,
}

impl Endpoint {
    /// The endpoint for a reference domain: docker.io maps to registry-1.docker.io; plain
    /// HTTP only for loopback addresses, `localhost` and `insecure` entries (like Docker).
    pub fn for_domain(domain: &str, insecure: &[String]) -> Endpoint {
        if domain == crate::reference::DEFAULT_DOMAIN || domain == "index.docker.io" {
            return Endpoint {
                base: "https://registry-1.docker.io".into(),
            };
        }
        let scheme = if is_insecure(domain, insecure) {
            "http"
        } else {
            "https"
        };
        Endpoint {
            base: format!("{scheme}://{domain}"),
        }
    }
}

/// Whether a registry domain may be spoken to over plain HTTP.
pub fn is_insecure(domain: &str, insecure: &[String]) -> bool {
    let host = host_of(domain);
    if host == "localhost" {
        return true;
    }
    if let Ok(ip) = host.parse::<IpAddr>()
        && ip.is_loopback()
    {
        return true;
    }
    insecure.iter().any(|e| {
        let e = e
            .trim()
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        e == domain || e == host || cidr_contains(e, host)
    })
}

fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    domain.split(':').next().unwrap_or(domain)
}

/// `10.0.0.0/8` contains `10.1.2.3` (IPv4 only).
fn cidr_contains(cidr: &str, host: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits), Ok(ip)) = (
        net.parse::<std::net::Ipv4Addr>(),
        bits.parse::<u32>(),
        host.parse::<std::net::Ipv4Addr>(),
    ) else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(net) & mask == u32::from(ip) & mask
}

/// Docker's errcode JSON.
#[derive(Debug, Deserialize)]
struct ErrBody {
    #[serde(default)]
    errors: Vec<ErrItem>,
    #[serde(default)]
    details: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `UNAUTHORIZED` → `unauthorized` (Docker's `ErrorCode.Error()`).
fn code_text(code: &str) -> String {
    code.replace('_', " ").to_ascii_lowercase()
}

/// Build the error for a failed response (body may be empty: HEAD). Like Docker's
/// `HandleErrorResponse`, an OAuth `error=` in a Bearer challenge wins: `insufficient_scope`
/// is `denied`, `invalid_token` is `unauthorized`.
pub(crate) fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> RegistryError {
    if status.is_client_error() {
        for v in headers.get_all(header::WWW_AUTHENTICATE) {
            let Some(params) = v.to_str().ok().and_then(super::auth::bearer_params) else {
                continue;
            };
            let (code, default) = match params.get("error").map(String::as_str) {
                Some("invalid_token") => ("UNAUTHORIZED", "authentication required"),
                Some("insufficient_scope") => {
                    ("DENIED", "requested access to the resource is denied")
                }
                _ => continue,
            };
            let msg = params
                .get("error_description")
                .filter(|d| !d.is_empty())
                .map(String::as_str)
                .unwrap_or(default);
            return RegistryError::Registry {
                status: status.as_u16(),
                code: code.to_string(),
                message: format!("{}: {msg}", code_text(code)),
            };
        }
    }
    let parsed: Option<ErrBody> = serde_json::from_slice(body).ok();
    if let Some(first) = parsed.as_ref().and_then(|p| p.errors.first()) {
        let code = if first.code.is_empty() {
            "UNKNOWN".to_string()
        } else {
            first.code.clone()
        };
        return RegistryError::Registry {
            status: status.as_u16(),
            message: format!("{}: {}", code_text(&code), first.message),
            code,
        };
    }
    let (code, message) = match status {
        StatusCode::UNAUTHORIZED => (
            "UNAUTHORIZED",
            match parsed.and_then(|p| p.details) {
                Some(d) if !d.is_empty() => format!("unauthorized: {d}"),
                _ => "unauthorized: authentication required".to_string(),
            },
        ),
        StatusCode::FORBIDDEN => (
            "DENIED",
            "denied: requested access to the resource is denied".to_string(),
        ),
        StatusCode::NOT_FOUND => ("NOT_FOUND", "not found".to_string()),
        s => (
            "UNKNOWN",
            format!(
                "received unexpected HTTP status: {} {}",
                s.as_u16(),
                s.canonical_reason().unwrap_or("")
            ),
        ),
    };
    RegistryError::Registry {
        status: status.as_u16(),
        code: code.to_string(),
        message,
    }
}

/// A client for one repository of one registry.
#[derive(Debug)]
pub struct RepoClient {
    base: String,
    repo: String,
    creds: AuthConfig,
    scopes: Vec<String>,
    challenge: Mutex<Option<Option<Challenge>>>,
    authz: Mutex<Option<HeaderValue>>,
}

fn http_err(method: &Method, url: &str) -> impl FnOnce(HttpError) -> RegistryError {
    let context = format!(
        "{} \"{url}\"",
        match *method {
            Method::GET => "Get",
            Method::HEAD => "Head",
            Method::PUT => "Put",
            Method::POST => "Post",
            Method::PATCH => "Patch",
            _ => method.as_str(),
        }
    );
    move |source| RegistryError::Http { context, source }
}

impl RepoClient {
    /// A client for `reference`'s repository. `actions` are the token scope actions
    /// (`pull` or `pull,push`); `extra_pull` adds pull scopes on other repos (mount sources).
    pub fn new(
        reference: &Reference,
        creds: AuthConfig,
        insecure: &[String],
        actions: &str,
        extra_pull: &[String],
    ) -> RepoClient {
        let ep = Endpoint::for_domain(reference.domain(), insecure);
        let mut scopes = vec![format!("repository:{}:{actions}", reference.path())];
        for r in extra_pull {
            scopes.push(format!("repository:{r}:pull"));
        }
        RepoClient {
            base: ep.base,
            repo: reference.path().to_string(),
            creds,
            scopes,
            challenge: Mutex::new(None),
            authz: Mutex::new(None),
        }
    }

    /// A client for the registry at `domain` itself, with no repository scope: what
    /// `docker login` checks credentials against.
    pub fn for_registry(domain: &str, creds: AuthConfig, insecure: &[String]) -> RepoClient {
        let ep = Endpoint::for_domain(domain, insecure);
        RepoClient {
            base: ep.base,
            repo: String::new(),
            creds,
            scopes: Vec::new(),
            challenge: Mutex::new(None),
            authz: Mutex::new(None),
        }
    }

    /// `docker login`: `GET /v2/` with the credentials (a token fetched with them first when
    /// the registry wants one). Ok when the registry accepts them, or asks for none.
    pub async fn check_login(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .send(Method::GET, &url, &HeaderMap::new(), h::empty)
            .await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Registry {
                status: 401,
                code: "UNAUTHORIZED".into(),
                message: format!(
                    "login attempt to {url} failed with status: {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
            });
        }
        let hdrs = resp.headers().clone();
        let data = h::read_body(resp, &url, MANIFEST_LIMIT)
            .await
            .map_err(http_err(&Method::GET, &url))?;
        Err(status_error(status, &hdrs, &data))
    }

    /// Repository path (`library/busybox`).
    pub fn repo(&self) -> &str {
        &self.repo
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repo)
    }

    /// `GET /v2/` to learn the auth challenge (once).
    async fn challenge(&self) -> Result<Option<Challenge>, RegistryError> {
        let mut g = self.challenge.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let url = format!("{}/v2/", self.base);
        let resp = with_retry(|| async {
            let r = h::send(
                h::request(Method::GET, &url, &HeaderMap::new(), h::empty())
                    .map_err(http_err(&Method::GET, &url))?,
            )
            .await
            .map_err(http_err(&Method::GET, &url))?;
            if h::transient_status(r.status()) {
                return Err(status_error(r.status(), r.headers(), b""));
            }
            Ok(r)
        })
        .await?;
        let c = if resp.status() == StatusCode::UNAUTHORIZED {
            resp.headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(parse_challenge)
                .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
        } else {
            None
        };
        *g = Some(c.clone());
        Ok(c)
    }

    /// The `Authorization` header to send, fetching a token when the registry wants one.
    async fn authorization(&self, refresh: bool) -> Result<Option<HeaderValue>, RegistryError> {
        if !refresh && let Some(v) = self.authz.lock().await.as_ref() {
            return Ok(Some(v.clone()));
        }
        let value = match self.challenge().await? {
            None => None,
            Some(Challenge::Basic) => match self.creds.basic_header() {
                Some(b) => Some(b),
                None => {
                    return Err(RegistryError::Registry {
                        status: 401,
                        code: "UNAUTHORIZED".into(),
                        message: "no basic auth credentials".into(),
                    });
                }
            },
            Some(Challenge::Bearer { realm, service }) => {
                if !self.creds.registrytoken.is_empty() {
                    Some(format!("Bearer {}", self.creds.registrytoken))
                } else {
                    Some(format!(
                        "Bearer {}",
                        self.fetch_token(&realm, service.as_deref()).await?
                    ))
                }
            }
        };
        let value = match value {
            Some(v) => Some(HeaderValue::from_str(&v).map_err(|_| {
                RegistryError::Invalid("credentials contain invalid header characters".into())
            })?),
            None => None,
        };
        *self.authz.lock().await = value.clone();
        Ok(value)
    }

    /// Get a bearer token from `realm` (GET with Basic credentials, or POST an identity
    /// token as an OAuth2 refresh token).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
    ) -> Result<String, RegistryError> {
        let mut q = Vec::new();
        if let Some(s) = service {
            q.push(format!("service={}", urlenc(s)));
        }
        for s in &self.scopes {
            q.push(format!("scope={}", urlenc(s)));
        }
        let mut headers = HeaderMap::new();
        let (method, url, body) = if !self.creds.identitytoken.is_empty() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            q.push("grant_type=refresh_token".into());
            q.push("client_id=berth".into());
            q.push(format!(
                "refresh_token={}",
                urlenc(&self.creds.identitytoken)
            ));
            (Method::POST, realm.to_string(), q.join("&"))
        } else {
            if let Some(b) = self.creds.basic_header() {
                q.push(format!("account={}", urlenc(&self.creds.username)));
                if let Ok(v) = HeaderValue::from_str(&b) {
                    headers.insert(header::AUTHORIZATION, v);
                }
            }
            let sep = if realm.contains('?') { '&' } else { '?' };
            (
                Method::GET,
                format!("{realm}{sep}{}", q.join("&")),
                String::new(),
            )
        };
        let body = Bytes::from(body);
        let resp = with_retry(|| async {
            let r = h::send(
                h::request(method.clone(), &url, &headers, h::full(body.clone()))
                    .map_err(http_err(&method, &url))?,
            )
            .await
            .map_err(http_err(&method, &url))?;
            if h::transient_status(r.status()) {
                return Err(status_error(r.status(), r.headers(), b""));
            }
            Ok(r)
        })
        .await?;
        let status = resp.status();
        let rh = resp.headers().clone();
        let data = h::read_body(resp, &url, MANIFEST_LIMIT)
            .await
            .map_err(http_err(&method, &url))?;
        if !status.is_success() {
            return Err(status_error(status, &rh, &data));
        }
        #[derive(Deserialize)]
        struct Tok {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Tok = serde_json::from_slice(&data)
            .map_err(|e| RegistryError::Manifest(format!("token response from {realm}: {e}")))?;
        let t = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if t.is_empty() {
            return Err(RegistryError::Manifest(format!(
                "token response from {realm} has no token"
            )));
        }
        Ok(t)
    }

    /// Send a request with authorization; on 401 refresh the token once and resend.
    /// `body` is rebuilt for the resend, so it must be cheap to make.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: impl Fn() -> Body,
    ) -> Result<hyper::Response<Incoming>, RegistryError> {
        let mut refreshed = false;
        loop {
            let mut hdrs = headers.clone();
            if let Some(a) = self.authorization(refreshed).await? {
                hdrs.insert(header::AUTHORIZATION, a);
            }
            let resp = if method == Method::GET {
                h::get_following(url, &hdrs).await.map(|(r, _)| r)
            } else {
                match h::request(method.clone(), url, &hdrs, body()) {
                    Ok(req) => h::send(req).await,
                    Err(e) => Err(e),
                }
            }
            .map_err(http_err(&method, url))?;
            if resp.status() == StatusCode::UNAUTHORIZED && !refreshed {
                let bearer = matches!(
                    *self.challenge.lock().await,
                    Some(Some(Challenge::Bearer { .. }))
                );
                if bearer {
                    refreshed = true;
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Send and read a small body, retrying transient failures; errors for non-2xx.
    async fn fetch_small(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        limit: usize,
    ) -> Result<(HeaderMap, Bytes), RegistryError> {
        with_retry(|| async {
            let resp = self.send(method.clone(), url, headers, h::empty).await?;
            let status = resp.status();
            let hdrs = resp.headers().clone();
            let data = h::read_body(resp, url, limit)
                .await
                .map_err(http_err(&method, url))?;
            if !status.is_success() {
                return Err(status_error(status, &hdrs, &data));
            }
            Ok((hdrs, data))
        })
        .await
    }

    /// Fetch a manifest by tag or digest: (bytes, media type).
    pub async fn manifest(&self, tag_or_digest: &str) -> Result<(Bytes, String), RegistryError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(super::manifest::ACCEPT),
        );
        let url = self.url(&format!("manifests/{tag_or_digest}"));
        let (hdrs, data) = self
            .fetch_small(Method::GET, &url, &headers, MANIFEST_LIMIT)
            .await?;
        let ct = hdrs
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        Ok((data, ct))
    }

    /// Fetch a small blob (image config) and verify its digest.
    pub async fn blob_bytes(&self, digest: &str, what: &str) -> Result<Bytes, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let (_, data) = self
            .fetch_small(Method::GET, &url, &HeaderMap::new(), CONFIG_LIMIT)
            .await?;
        let got = crate::ids::sha256_digest(&data);
        if got != digest {
            return Err(RegistryError::DigestMismatch {
                what: what.to_string(),
                expected: digest.to_string(),
                got,
            });
        }
        Ok(data)
    }

    /// Start downloading a blob: the response whose body is the blob.
    pub async fn blob_stream(
        &self,
        digest: &str,
    ) -> Result<hyper::Response<Incoming>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self
            .send(Method::GET, &url, &HeaderMap::new(), h::empty)
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let rh = resp.headers().clone();
            let data = h::read_body(resp, &url, MANIFEST_LIMIT)
                .await
                .unwrap_or_default();
            return Err(status_error(status, &rh, &data));
        }
        Ok(resp)
    }

    /// `HEAD` a blob: its size when the registry has it.
    pub async fn blob_exists(&self, digest: &str) -> Result<Option<u64>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        with_retry(|| async {
            let resp = self
                .send(Method::HEAD, &url, &HeaderMap::new(), h::empty)
                .await?;
            match resp.status() {
                s if s.is_success() => Ok(Some(
                    resp.headers()
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                )),
                StatusCode::NOT_FOUND => Ok(None),
                s => Err(status_error(s, resp.headers(), b"")),
            }
        })
        .await
    }

    /// Try a cross-repository mount of `digest` from `from` (a path on the same registry).
    /// `Ok(true)` when mounted; `Ok(false)` when the registry started an upload instead.
    pub async fn mount_blob(&self, digest: &str, from: &str) -> Result<bool, RegistryError> {
        let url = self.url(&format!(
            "blobs/uploads/?mount={}&from={}",
            urlenc(digest),
            urlenc(from)
        ));
        let resp = self
            .send(Method::POST, &url, &HeaderMap::new(), h::empty)
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // An upload session was opened instead; cancel it (best effort).
                if let Some(loc) = location(&resp, &url) {
                    let _ = self
                        .send(Method::DELETE, &loc, &HeaderMap::new(), h::empty)
                        .await;
                }
                Ok(false)
            }
            s => {
                let rh = resp.headers().clone();
                let data = h::read_body(resp, &url, MANIFEST_LIMIT)
                    .await
                    .unwrap_or_default();
                Err(status_error(s, &rh, &data))
            }
        }
    }

    /// Upload a blob monolithically: POST to open a session, PUT the content with the digest.
    /// `body` makes the request body (called again on a retry of the whole upload).
    pub async fn upload_blob(
        &self,
        digest: &str,
        size: u64,
        body: impl Fn() -> Body,
    ) -> Result<(), RegistryError> {
        let start = self.url("blobs/uploads/");
        let resp = self
            .send(Method::POST, &start, &HeaderMap::new(), h::empty)
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            let s = resp.status();
            let rh = resp.headers().clone();
            let data = h::read_body(resp, &start, MANIFEST_LIMIT)
                .await
                .unwrap_or_default();
            return Err(status_error(s, &rh, &data));
        }
        let loc = location(&resp, &start).ok_or_else(|| {
            RegistryError::Manifest(format!("{start}: upload started without a Location"))
        })?;
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = format!("{loc}{sep}digest={}", urlenc(digest));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        let resp = self.send(Method::PUT, &put, &headers, body).await?;
        let s = resp.status();
        if s != StatusCode::CREATED && !s.is_success() {
            let rh = resp.headers().clone();
            let data = h::read_body(resp, &put, MANIFEST_LIMIT)
                .await
                .unwrap_or_default();
            return Err(status_error(s, &rh, &data));
        }
        Ok(())
    }

    /// PUT a manifest under a tag (or digest).
    pub async fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        data: Bytes,
    ) -> Result<(), RegistryError> {
        let url = self.url(&format!("manifests/{tag}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(media_type)
                .map_err(|_| RegistryError::Invalid(format!("bad media type {media_type}")))?,
        );
        with_retry(|| async {
            let d = data.clone();
            let resp = self
                .send(Method::PUT, &url, &headers, || h::full(d.clone()))
                .await?;
            let s = resp.status();
            if !s.is_success() {
                let rh = resp.headers().clone();
                let body = h::read_body(resp, &url, MANIFEST_LIMIT)
                    .await
                    .unwrap_or_default();
                return Err(status_error(s, &rh, &body));
            }
            Ok(())
        })
        .await
    }
}

fn location(resp: &hyper::Response<Incoming>, base: &str) -> Option<String> {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| h::resolve_location(base, l))
}

/// Run `f` up to [`ATTEMPTS`] times while it fails transiently, backing off in between.
pub(crate) async fn with_retry<T, F, Fut>(mut f: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RegistryError>>,
{
    let mut n = 1;
    loop {
        match f().await {
            Err(e) if e.is_transient() && n < ATTEMPTS => {
                n += 1;
                tracing::debug!(error = %e, attempt = n, "registry request failed, retrying");
                tokio::time::sleep(backoff(n)).await;
            }
            other => return other,
        }
    }
}

/// Percent-encode a query value.
fn urlenc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_hosts() {
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("127.3.2.1", &[]));
        assert!(is_insecure("localhost:5000", &[]));
        assert!(is_insecure("[::1]:5000", &[]));
        assert!(!is_insecure("10.0.0.1:5000", &[]));
        assert!(is_insecure("10.0.0.1:5000", &["10.0.0.0/8".into()]));
        assert!(is_insecure("reg.lan:5000", &["reg.lan:5000".into()]));
        assert!(!is_insecure("example.com", &["reg.lan".into()]));
        assert_eq!(
            Endpoint::for_domain("docker.io", &[]).base,
            "https://registry-1.docker.io"
        );
        assert_eq!(
            Endpoint::for_domain("127.0.0.1:5000", &[]).base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(Endpoint::for_domain("quay.io", &[]).base, "https://quay.io");
    }

    #[test]
    fn error_texts() {
        let e = status_error(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
        );
        assert_eq!(e.to_string(), "unauthorized: authentication required");
        assert_eq!(
            status_error(StatusCode::UNAUTHORIZED, &HeaderMap::new(), b"").to_string(),
            "unauthorized: authentication required"
        );
        assert_eq!(
            urlenc("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
