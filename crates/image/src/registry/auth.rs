//! Registry credentials as Docker passes them around: the `X-Registry-Auth` header (base64url
//! JSON `{username, password, serveraddress, identitytoken, registrytoken}`), the docker CLI's
//! `config.json` (`auths.<server>.auth` = base64 `user:password`), and the
//! `WWW-Authenticate` challenges a registry answers with (Basic, or Bearer with a token realm).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// Errors decoding credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The header or `auth` field is not base64.
    #[error("invalid registry auth: not base64")]
    Base64,
    /// The decoded header is not the expected JSON.
    #[error("invalid registry auth: {0}")]
    Json(#[source] serde_json::Error),
    /// `auth` is not `user:password`.
    #[error("invalid registry auth: auth field is not user:password")]
    UserPass,
}

/// Credentials for one registry (Docker's `types.AuthConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64 `user:password` (config.json form); used when username is empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// Registry the credentials are for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// OAuth2 refresh token, exchanged at the token realm for access tokens.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    /// A bearer token sent to the registry as is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

fn b64_decode(s: &str) -> Result<Vec<u8>, AuthError> {
    let s = s.trim();
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    URL_SAFE
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .map_err(|_| AuthError::Base64)
}

impl AuthConfig {
    /// Decode an `X-Registry-Auth` header value. An empty value or `{}` is anonymous.
    pub fn from_x_registry_auth(header: &str) -> Result<AuthConfig, AuthError> {
        if header.trim().is_empty() {
            return Ok(AuthConfig::default());
        }
        let raw = b64_decode(header)?;
        let mut a: AuthConfig = serde_json::from_slice(&raw).map_err(AuthError::Json)?;
        a.expand_auth()?;
        Ok(a)
    }

    /// Encode as an `X-Registry-Auth` header value (what the docker CLI sends).
    pub fn to_x_registry_auth(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    /// The credentials for `registry` (a domain like `localhost:5000` or `docker.io`) in a
    /// docker CLI `config.json`; `None` when it has none.
    pub fn from_docker_config(
        json: &[u8],
        registry: &str,
    ) -> Result<Option<AuthConfig>, AuthError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            auths: BTreeMap<String, AuthConfig>,
        }
        let f: File = serde_json::from_slice(json).map_err(AuthError::Json)?;
        let want = config_key(registry);
        for (k, v) in f.auths {
            if config_key(&k) == want {
                let mut a = v;
                a.expand_auth()?;
                if a.serveraddress.is_empty() {
                    a.serveraddress = k;
                }
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Fill username/password from `auth` when they are empty.
    fn expand_auth(&mut self) -> Result<(), AuthError> {
        if self.username.is_empty() && !self.auth.is_empty() {
            let raw = b64_decode(&self.auth)?;
            let s = String::from_utf8(raw).map_err(|_| AuthError::UserPass)?;
            let (u, p) = s.split_once(':').ok_or(AuthError::UserPass)?;
            self.username = u.to_string();
            self.password = p.to_string();
        }
        Ok(())
    }

    /// Whether there is anything to authenticate with.
    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.identitytoken.is_empty() && self.registrytoken.is_empty()
    }

    /// `Basic <base64 user:password>`.
    pub(crate) fn basic_header(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }
}

/// The registry a server address names, as config.json keys and `docker login` write it:
/// docker.io is `https://index.docker.io/v1/`, others are `host[:port]`, possibly written with
/// a scheme and path. Returns `docker.io` or the lowercased `host[:port]` (empty for empty).
pub fn config_key(s: &str) -> String {
    let s = s
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or("");
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_ascii_lowercase(),
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter.
        service: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` header value.
pub fn parse_challenge(v: &str) -> Option<Challenge> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
    })
}

/// The parameters of a `Bearer` challenge (`realm`, `service`, `scope`, `error`, ...).
pub fn bearer_params(v: &str) -> Option<BTreeMap<String, String>> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| parse_params(rest))
}

/// `k=v, k="v, with comma"` parameters.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i.min(b.len());
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i.min(b.len())].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_registry_auth_round_trips() {
        let a = AuthConfig {
            username: "u".into(),
            password: "p:w".into(),
            serveraddress: "localhost:5000".into(),
            ..Default::default()
        };
        let h = a.to_x_registry_auth();
        assert_eq!(AuthConfig::from_x_registry_auth(&h).unwrap(), a);
        assert!(AuthConfig::from_x_registry_auth("").unwrap().is_anonymous());
        assert!(AuthConfig::from_x_registry_auth("!!").is_err());
    }

    #[test]
    fn docker_config_auths() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
            "localhost:5000":{"auth":"YTpiOmM="}}}"#;
        let hub = AuthConfig::from_docker_config(json, "docker.io")
            .unwrap()
            .unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("user", "pass")
        );
        let l = AuthConfig::from_docker_config(json, "localhost:5000")
            .unwrap()
            .unwrap();
        assert_eq!((l.username.as_str(), l.password.as_str()), ("a", "b:c"));
        assert!(
            AuthConfig::from_docker_config(json, "quay.io")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
