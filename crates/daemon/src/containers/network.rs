//! Network modes: `none` (own net namespace with only `lo`), `host` (no net namespace),
//! `container:<name|id>` (join another container's), and bridge networks — `default`/`bridge`
//! for the default bridge, or the name/id of a user-defined network. With `--bridge none`
//! there is no default bridge: `default` means `none`, like dockerd started that way.

use berth_api::ApiError;

/// A container's network mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    /// Own net namespace, loopback only.
    None,
    /// The host's net namespace.
    Host,
    /// Own net namespace with a veth per attached bridge network.
    Bridge,
    /// Another container's net namespace (its name or id as given).
    Container(String),
}

impl NetMode {
    /// Parses HostConfig.NetworkMode given the daemon's default bridge.
    pub fn parse(mode: &str, bridge: &str) -> Result<NetMode, ApiError> {
        match mode {
            "none" => Ok(NetMode::None),
            "host" => Ok(NetMode::Host),
            "" | "default" if bridge == "none" => Ok(NetMode::None),
            m if m.starts_with("container:") => {
                let other = &m["container:".len()..];
                if other.is_empty() {
                    return Err(ApiError::invalid(
                        "invalid network mode: container: needs a container name or id",
                    ));
                }
                Ok(NetMode::Container(other.to_owned()))
            }
            _ => Ok(NetMode::Bridge),
        }
    }

    /// The network a bridge-mode container joins first: `default` is the `bridge` network.
    pub fn primary_network(mode: &str) -> &str {
        match mode {
            "" | "default" => "bridge",
            m => m,
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
        assert_eq!(
            NetMode::parse("default", "berth0").unwrap(),
            NetMode::Bridge
        );
        assert_eq!(NetMode::parse("mynet", "berth0").unwrap(), NetMode::Bridge);
        assert_eq!(
            NetMode::parse("container:abc", "none").unwrap(),
            NetMode::Container("abc".into())
        );
        assert!(NetMode::parse("container:", "none").is_err());
        assert_eq!(NetMode::primary_network("default"), "bridge");
        assert_eq!(NetMode::primary_network("mynet"), "mynet");
    }
}
