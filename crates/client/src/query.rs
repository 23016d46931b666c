//! Query-string building with percent-encoding (filters JSON, image references).

/// Builds `?k=v&…` from pairs, percent-encoding keys and values; empty when there are none.
pub fn encode<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut s = String::from("?");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(&escape(k.as_ref()));
        s.push('=');
        s.push_str(&escape(v.as_ref()));
    }
    s
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes one path segment (a container name or image reference inside the URL path);
/// `/`, `:` and `@` are kept as the docker CLI sends them (image references contain them).
pub fn path_segment(s: &str) -> String {
    escape(s)
        .replace("%2F", "/")
        .replace("%3A", ":")
        .replace("%40", "@")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_filters_json() {
        assert_eq!(
            encode(&[("all", "1"), ("filters", r#"{"status":["exited"]}"#)]),
            "?all=1&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D"
        );
        assert_eq!(encode::<&str, &str>(&[]), "");
        assert_eq!(path_segment("library/busybox:1.36"), "library/busybox:1.36");
    }
}
