//! Authentication: the registry's htpasswd mode (Basic) and a token-auth proxy (Bearer
//! realm challenge, an in-test token server on another loopback port in front of the
//! registry). Right credentials work, from an `X-Registry-Auth` header or a docker
//! `config.json`; wrong or missing ones give Docker's error texts.
#![allow(clippy::unwrap_used)]

mod registry_common;

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine;
use berth_image::registry::{AuthConfig, PullOptions, PushOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use registry_common::*;

fn creds(u: &str, p: &str) -> AuthConfig {
    AuthConfig {
        username: u.into(),
        password: p.into(),
        ..Default::default()
    }
}

#[test]
fn htpasswd_basic_auth() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let reg = Registry::start(Some(("alice", "s3cret")));
    let rt = runtime();
    let src = temp_store();
    let id = load_busybox(&src.store);
    let name = format!("{}/private/busybox:latest", reg.host());
    src.store.tag(&id, &name).unwrap();

    // Anonymous push: Docker's "no basic auth credentials".
    let (r, _) = push(&rt, &src.store, &name, PushOptions::default());
    assert_eq!(r.unwrap_err().to_string(), "no basic auth credentials");

    // Credentials as the API's X-Registry-Auth header carries them.
    let header = creds("alice", "s3cret").to_x_registry_auth();
    let auth = AuthConfig::from_x_registry_auth(&header).unwrap();
    let (r, events) = push(
        &rt,
        &src.store,
        &name,
        PushOptions {
            auth,
            ..Default::default()
        },
    );
    r.unwrap_or_else(|e| panic!("{e}: {events:?}"));

    // Pull with credentials from a docker config.json.
    let cfg = format!(
        r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
        reg.host(),
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    );
    let auth = AuthConfig::from_docker_config(cfg.as_bytes(), &reg.host())
        .unwrap()
        .unwrap();
    let dst = temp_store();
    let (r, _) = pull(
        &rt,
        &dst.store,
        &name,
        PullOptions {
            auth,
            ..Default::default()
        },
    );
    assert_eq!(r.unwrap().image_id, id);

    // Wrong password.
    let dst = temp_store();
    let (r, _) = pull(
        &rt,
        &dst.store,
        &name,
        PullOptions {
            auth: creds("alice", "wrong"),
            ..Default::default()
        },
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "unauthorized: authentication required"
    );
    assert!(dst.store.image_ids().unwrap().is_empty());
}

/// A token server and Bearer-checking proxy in front of a registry.
struct TokenProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ProxyState {
    upstream: String,
    user: String,
    pass: String,
    port: u16,
    tokens: Mutex<HashSet<String>>,
    anon_tokens: Mutex<HashSet<String>>,
}

fn respond(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    st: Arc<ProxyState>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if req.uri().path() == "/token" {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", st.user, st.pass))
        );
        let n = st.tokens.lock().unwrap().len() + st.anon_tokens.lock().unwrap().len();
        let token = format!("tok-{n}");
        if authz.is_empty() {
            st.anon_tokens.lock().unwrap().insert(token.clone());
        } else if authz == want {
            st.tokens.lock().unwrap().insert(token.clone());
        } else {
            return Ok(respond(
                StatusCode::UNAUTHORIZED,
                r#"{"details":"incorrect username or password"}"#,
            ));
        }
        return Ok(respond(
            StatusCode::OK,
            &format!(r#"{{"token":"{token}"}}"#),
        ));
    }
    let token = authz.strip_prefix("Bearer ").unwrap_or("");
    let challenge = format!(
        r#"Bearer realm="http://127.0.0.1:{}/token",service="berth-test""#,
        st.port
    );
    let valid = st.tokens.lock().unwrap().contains(token);
    if !valid {
        let anon = st.anon_tokens.lock().unwrap().contains(token);
        let mut r = respond(
            StatusCode::UNAUTHORIZED,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
        );
        let c = if anon && req.uri().path() != "/v2/" {
            format!(r#"{challenge},error="insufficient_scope""#)
        } else {
            challenge
        };
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, c.parse().unwrap());
        return Ok(r);
    }
    // Forward to the registry (keeping Host so its Location headers point back here).
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let url = format!(
        "http://{}{}",
        st.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut headers = parts.headers.clone();
    headers.remove(header::AUTHORIZATION);
    let up = berth_image::registry::http::request(
        parts.method.clone(),
        &url,
        &headers,
        berth_image::registry::http::full(body),
    )
    .unwrap();
    let resp = match berth_image::registry::http::send(up).await {
        Ok(r) => r,
        Err(e) => return Ok(respond(StatusCode::BAD_GATEWAY, &e.to_string())),
    };
    let (rp, rb) = resp.into_parts();
    let data = rb.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut out = Response::new(Full::new(data));
    *out.status_mut() = rp.status;
    *out.headers_mut() = rp.headers;
    Ok(out)
}

async fn start_proxy(upstream: String, user: &str, pass: &str) -> TokenProxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let st = Arc::new(ProxyState {
        upstream,
        user: user.into(),
        pass: pass.into(),
        port,
        tokens: Mutex::new(HashSet::new()),
        anon_tokens: Mutex::new(HashSet::new()),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let st = st.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(req, st.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    TokenProxy { port, task }
}

#[test]
fn bearer_token_auth() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let reg = Registry::start(None);
    let rt = runtime();
    let proxy = rt.block_on(start_proxy(reg.host(), "bob", "pw"));
    let host = format!("127.0.0.1:{}", proxy.port);
    let src = temp_store();
    let id = load_busybox(&src.store);
    let name = format!("{host}/team/busybox:latest");
    src.store.tag(&id, &name).unwrap();
    let ok = || creds("bob", "pw");

    let (r, events) = push(
        &rt,
        &src.store,
        &name,
        PushOptions {
            auth: ok(),
            ..Default::default()
        },
    );
    r.unwrap_or_else(|e| panic!("{e}: {events:?}"));

    let dst = temp_store();
    let (r, events) = pull(
        &rt,
        &dst.store,
        &name,
        PullOptions {
            auth: ok(),
            ..Default::default()
        },
    );
    assert_eq!(r.unwrap_or_else(|e| panic!("{e}: {events:?}")).image_id, id);

    // Anonymous: the token has no access, Docker's "pull access denied".
    let (r, _) = pull(&rt, &temp_store().store, &name, PullOptions::default());
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "pull access denied for {host}/team/busybox, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        )
    );

    // Wrong password: the token server refuses.
    let (r, _) = pull(
        &rt,
        &temp_store().store,
        &name,
        PullOptions {
            auth: creds("bob", "nope"),
            ..Default::default()
        },
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "unauthorized: incorrect username or password"
    );
    drop(proxy);
}
