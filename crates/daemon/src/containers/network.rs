//! Network modes berthd supports today: `none` (own net namespace with only `lo`) and `host`
//! (no net namespace). `default` follows the daemon's `--bridge` setting, which can only be
//! `none` until bridge networking lands — like dockerd started with `--bridge=none`.
//! Every other mode is refused with a clear message, never silently downgraded.

use berth_api::ApiError;

/// A container's network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// Own net namespace, loopback only.
    None,
    /// The host's net namespace.
    Host,
}

impl NetMode {
    /// Parses HostConfig.NetworkMode given the daemon's default bridge.
    pub fn parse(mode: &str, bridge: &str) -> Result<NetMode, ApiError> {
        match mode {
            "none" => Ok(NetMode::None),
            "host" => Ok(NetMode::Host),
            "" | "default" if bridge == "none" => Ok(NetMode::None),
            other => Err(ApiError::not_implemented(format!(
                "network mode {other} not supported yet (berthd supports --network none and --network host)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(NetMode::parse("default", "none").unwrap(), NetMode::None);
        assert_eq!(NetMode::parse("", "none").unwrap(), NetMode::None);
        assert_eq!(NetMode::parse("host", "none").unwrap(), NetMode::Host);
        let e = NetMode::parse("bridge", "none").unwrap_err();
        assert_eq!(e.http_status(), 501);
        assert!(e.message.contains("network mode bridge not supported yet"));
        assert!(NetMode::parse("container:abc", "none").is_err());
    }
}
