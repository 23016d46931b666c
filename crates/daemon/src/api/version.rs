//! The `/v1.xx` path prefix: parsed, checked against the range we serve, stripped before
//! routing, and kept in the request extensions for handlers whose shape depends on it.

use berth_api::{API_VERSION, ApiError, MIN_API_VERSION};

/// The API version a request asked for (unversioned paths get the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Major (always 1).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl ApiVersion {
    /// Parses `1.41`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }

    /// The newest version served.
    pub fn max() -> ApiVersion {
        // API_VERSION is a constant "1.41"; the fallback is never taken.
        ApiVersion::parse(API_VERSION).unwrap_or(ApiVersion {
            major: 1,
            minor: 41,
        })
    }

    fn min() -> ApiVersion {
        ApiVersion::parse(MIN_API_VERSION).unwrap_or(ApiVersion {
            major: 1,
            minor: 24,
        })
    }
}

/// Splits `/v1.41/containers/json` into (version, `/containers/json`). Paths without a
/// version prefix come back unchanged with `None`.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let ver = &rest[..end];
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return (None, path);
    }
    let remainder = &rest[end..];
    (
        Some(ver),
        if remainder.is_empty() { "/" } else { remainder },
    )
}

/// Checks a requested version against the served range, with Docker's messages.
pub fn check_version(ver: &str) -> Result<ApiVersion, ApiError> {
    let v = ApiVersion::parse(ver)
        .ok_or_else(|| ApiError::invalid(format!("invalid API version: {ver}")))?;
    if v > ApiVersion::max() {
        return Err(ApiError::invalid(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < ApiVersion::min() {
        return Err(ApiError::invalid(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/v1.41"), (Some("1.41"), "/"));
        assert_eq!(split_version("/volumes"), (None, "/volumes"));
    }

    #[test]
    fn range() {
        assert!(check_version("1.41").is_ok());
        assert!(check_version("1.24").is_ok());
        assert!(check_version("1.25").is_ok());
        let e = check_version("1.50").unwrap_err();
        assert_eq!(
            e.message,
            "client version 1.50 is too new. Maximum supported API version is 1.41"
        );
        assert_eq!(e.http_status(), 400);
        assert!(
            check_version("1.12")
                .unwrap_err()
                .message
                .contains("too old")
        );
        assert!(check_version("1.x").is_err());
    }
}
