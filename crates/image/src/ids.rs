//! Content digests, chain ids and random ids as Docker spells them.

use std::io::Read;

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Chain id of a layer: `chainid(L1) = diffid(L1)`,
/// `chainid(Ln) = sha256(chainid(Ln-1) + " " + diffid(Ln))`.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => sha256_digest(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Chain ids of every prefix of `diff_ids` (bottom first).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last().map(String::as_str), d);
        out.push(next);
    }
    out
}

/// The hex part of `sha256:<hex>` (or the string itself when it has no algorithm).
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Whether `s` is `sha256:` followed by 64 lowercase hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(is_hex64)
}

/// Whether `s` is exactly 64 lowercase hex digits (an image/container id).
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // /dev/urandom missing is not a reason to fail a layer: fall back to a hash of
        // time, pid and a counter, unique enough for directory names.
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seed = format!(
            "{:?}{}{}",
            std::time::SystemTime::now(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut out = Vec::new();
        while out.len() < n {
            out.extend_from_slice(&Sha256::digest(format!("{seed}{}", out.len())));
        }
        out.truncate(n);
        return out;
    }
    buf
}

/// A random 64-hex id (cache ids, mount ids), like Docker's `stringid.GenerateRandomID`.
pub fn random_id() -> String {
    hex::encode(random_bytes(32))
}

/// A random 26-character base32 name for `overlay2/l/` (Docker's short link ids).
pub fn random_short_link() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    random_bytes(26)
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_follows_docker_definition() {
        let d1 = sha256_digest(b"a");
        let d2 = sha256_digest(b"b");
        let ids = chain_ids(&[d1.clone(), d2.clone()]);
        assert_eq!(ids[0], d1);
        assert_eq!(ids[1], sha256_digest(format!("{d1} {d2}").as_bytes()));
    }

    #[test]
    fn random_ids_have_docker_shape() {
        assert!(is_hex64(&random_id()));
        assert_ne!(random_id(), random_id());
        let l = random_short_link();
        assert_eq!(l.len(), 26);
        assert!(
            l.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
    }
}
