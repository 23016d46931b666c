//! `POST /auth`: `docker login` asks the daemon to check credentials against the registry.
//! Nothing is stored daemon-side: the CLI keeps the credentials in its config.json.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use berth_api::ApiError;
use berth_image::registry::auth::config_key;
use berth_image::registry::client::RepoClient;
use berth_image::registry::{AuthConfig, RegistryError};
use serde_json::json;

use super::error::ApiResult;
use super::json::DockerJson;
use crate::daemon::Daemon;

/// The registry domain of a `serveraddress` as the docker CLI sends it (`https://index.docker.io/v1/`,
/// `localhost:5000`, `http://127.0.0.1:5000/`); empty means Docker Hub.
pub fn registry_domain(server: &str) -> String {
    match config_key(server) {
        d if d.is_empty() => "docker.io".to_owned(),
        d => d,
    }
}

/// `POST /auth`.
pub async fn auth(State(d): D, DockerJson(creds): DockerJson<AuthConfig>) -> ApiResult<Response> {
    if creds.username.is_empty() && creds.identitytoken.is_empty() && creds.auth.is_empty() {
        return Err(ApiError::invalid("username is required").into());
    }
    let domain = registry_domain(&creds.serveraddress);
    let client = RepoClient::for_registry(&domain, creds, &d.config.insecure_registries);
    client.check_login().await.map_err(|e| match &e {
        RegistryError::Registry { status: 401, .. } => {
            ApiError::unauthorized(crate::images::error_chain(&e))
        }
        _ => ApiError::internal(crate::images::error_chain(&e)),
    })?;
    Ok(Json(json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
}

type D = State<Arc<Daemon>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(registry_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_domain(""), "docker.io");
        assert_eq!(registry_domain("localhost:5000"), "localhost:5000");
        assert_eq!(registry_domain("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }
}
