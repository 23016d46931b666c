//! Query-string parameters per endpoint, with Docker's parsing rules.
//!
//! Docker treats a boolean parameter as false when it is absent, empty, `0`, `no`, `false` or
//! `none` (any case) and true otherwise (moby `httputils.BoolValue`); [`docker_bool`]
//! reproduces that so `?all=1`, `?all=true` and `?all=True` all work.

use serde::{Deserialize, Deserializer};

/// Deserializes a query boolean the way Docker does.
pub fn docker_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(parse_docker_bool(s.as_deref().unwrap_or("")))
}

/// Docker's boolean rule on a raw value.
pub fn parse_docker_bool(raw: &str) -> bool {
    let s = raw.trim().to_ascii_lowercase();
    !(s.is_empty() || s == "0" || s == "no" || s == "false" || s == "none")
}

/// Deserializes an optional integer that may be sent as an empty string.
fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("invalid integer value: {v:?}"))),
    }
}

/// `GET /containers/json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerListQuery {
    /// Include stopped containers.
    #[serde(default, deserialize_with = "docker_bool")]
    pub all: bool,
    /// Return at most this many (most recent first); also implies `all`.
    #[serde(default, deserialize_with = "opt_i64")]
    pub limit: Option<i64>,
    /// Report SizeRw/SizeRootFs.
    #[serde(default, deserialize_with = "docker_bool")]
    pub size: bool,
    /// Raw JSON filters.
    #[serde(default)]
    pub filters: Option<String>,
}

/// `POST /containers/create`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerCreateQuery {
    /// Container name (`/` prefix optional).
    #[serde(default)]
    pub name: Option<String>,
    /// `os[/arch[/variant]]`.
    #[serde(default)]
    pub platform: Option<String>,
}

/// `POST /containers/{id}/start`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerStartQuery {
    /// Override of the detach key sequence.
    #[serde(default, rename = "detachKeys")]
    pub detach_keys: Option<String>,
}

/// `POST /containers/{id}/stop` and `/restart`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerStopQuery {
    /// Seconds to wait before SIGKILL.
    #[serde(default, deserialize_with = "opt_i64")]
    pub t: Option<i64>,
    /// Signal to send instead of the container's StopSignal.
    #[serde(default)]
    pub signal: Option<String>,
}

/// `POST /containers/{id}/kill`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerKillQuery {
    /// Signal name (`SIGKILL`, `KILL`) or number; default SIGKILL.
    #[serde(default)]
    pub signal: Option<String>,
}

/// `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerWaitQuery {
    /// `not-running` (default), `next-exit` or `removed`.
    #[serde(default)]
    pub condition: Option<String>,
}

/// `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerAttachQuery {
    /// Detach key sequence override.
    #[serde(default, rename = "detachKeys")]
    pub detach_keys: Option<String>,
    /// Replay the log before streaming.
    #[serde(default, deserialize_with = "docker_bool")]
    pub logs: bool,
    /// Stream output after attaching.
    #[serde(default, deserialize_with = "docker_bool")]
    pub stream: bool,
    /// Attach stdin.
    #[serde(default, deserialize_with = "docker_bool")]
    pub stdin: bool,
    /// Attach stdout.
    #[serde(default, deserialize_with = "docker_bool")]
    pub stdout: bool,
    /// Attach stderr.
    #[serde(default, deserialize_with = "docker_bool")]
    pub stderr: bool,
}

/// `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerLogsQuery {
    /// Keep streaming new lines.
    #[serde(default, deserialize_with = "docker_bool")]
    pub follow: bool,
    /// Include stdout.
    #[serde(default, deserialize_with = "docker_bool")]
    pub stdout: bool,
    /// Include stderr.
    #[serde(default, deserialize_with = "docker_bool")]
    pub stderr: bool,
    /// Only lines after this time (unix seconds, possibly fractional).
    #[serde(default)]
    pub since: Option<String>,
    /// Only lines before this time.
    #[serde(default)]
    pub until: Option<String>,
    /// Prefix each line with its RFC 3339 timestamp.
    #[serde(default, deserialize_with = "docker_bool")]
    pub timestamps: bool,
    /// `all` or a number of lines from the end.
    #[serde(default)]
    pub tail: Option<String>,
}

/// `DELETE /containers/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerRemoveQuery {
    /// Remove anonymous volumes too.
    #[serde(default, deserialize_with = "docker_bool")]
    pub v: bool,
    /// Kill a running container first.
    #[serde(default, deserialize_with = "docker_bool")]
    pub force: bool,
    /// Remove a link (legacy links; unsupported).
    #[serde(default, deserialize_with = "docker_bool")]
    pub link: bool,
}

/// `DELETE /volumes/{name}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VolumeRemoveQuery {
    /// A missing volume is not an error (in-use volumes are still refused).
    #[serde(default, deserialize_with = "docker_bool")]
    pub force: bool,
}

/// `POST /containers/{id}/resize` and `/exec/{id}/resize`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResizeQuery {
    /// Rows.
    #[serde(default, deserialize_with = "opt_i64")]
    pub h: Option<i64>,
    /// Columns.
    #[serde(default, deserialize_with = "opt_i64")]
    pub w: Option<i64>,
}

/// `POST /containers/{id}/rename`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerRenameQuery {
    /// The new name.
    #[serde(default)]
    pub name: Option<String>,
}

/// `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerTopQuery {
    /// Arguments to `ps` (default `-ef`).
    #[serde(default)]
    pub ps_args: Option<String>,
}

/// `POST /containers/prune`, `/images/prune`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PruneQuery {
    /// Raw JSON filters.
    #[serde(default)]
    pub filters: Option<String>,
}

/// `GET /images/json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageListQuery {
    /// Include intermediate images.
    #[serde(default, deserialize_with = "docker_bool")]
    pub all: bool,
    /// Raw JSON filters.
    #[serde(default)]
    pub filters: Option<String>,
    /// Include digests.
    #[serde(default, deserialize_with = "docker_bool")]
    pub digests: bool,
}

/// `DELETE /images/{name}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageRemoveQuery {
    /// Remove even if tagged in several repositories or used by stopped containers.
    #[serde(default, deserialize_with = "docker_bool")]
    pub force: bool,
    /// Keep untagged parents.
    #[serde(default, deserialize_with = "docker_bool")]
    pub noprune: bool,
}

/// `POST /images/{name}/tag`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageTagQuery {
    /// Target repository.
    #[serde(default)]
    pub repo: Option<String>,
    /// Target tag (default `latest`).
    #[serde(default)]
    pub tag: Option<String>,
}

/// `POST /images/load`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageLoadQuery {
    /// Suppress progress output.
    #[serde(default, deserialize_with = "docker_bool")]
    pub quiet: bool,
}

/// `GET /events`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventsQuery {
    /// Start time.
    #[serde(default)]
    pub since: Option<String>,
    /// End time.
    #[serde(default)]
    pub until: Option<String>,
    /// Raw JSON filters.
    #[serde(default)]
    pub filters: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_booleans() {
        for t in ["1", "true", "True", "yes", "x"] {
            assert!(parse_docker_bool(t), "{t}");
        }
        for f in ["", "0", "false", "FALSE", "no", "none", " "] {
            assert!(!parse_docker_bool(f), "{f:?}");
        }
    }

    #[test]
    fn list_query_from_urlencoded() {
        let q: ContainerListQuery = serde_urlencoded_like("all=1&limit=&size=0&filters=%7B%7D");
        assert!(q.all);
        assert_eq!(q.limit, None);
        assert!(!q.size);
        assert_eq!(q.filters.as_deref(), Some("{}"));
    }

    fn serde_urlencoded_like<T: serde::de::DeserializeOwned>(s: &str) -> T {
        // Build a JSON object of strings from the pairs: the same data model
        // serde_urlencoded gives (every value a string).
        let mut m = serde_json::Map::new();
        for pair in s.split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            let v = v.replace("%7B", "{").replace("%7D", "}");
            m.insert(k.to_owned(), serde_json::Value::String(v));
        }
        serde_json::from_value(serde_json::Value::Object(m)).unwrap()
    }
}
