//! Docker image references: the grammar of `distribution/reference`, its normalisation
//! (`busybox` → `docker.io/library/busybox:latest`) and the familiar form Docker prints
//! (`busybox:latest`, `localhost:5000/a:b`). Error texts are Docker's, because clients show
//! them verbatim.

use std::fmt;

/// The registry implied when a name has no domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag implied when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference string was rejected (messages as Docker prints them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not match the grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The name has uppercase letters.
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    /// The string is empty.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// The name is longer than 255 characters.
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    /// A 64-hex string was given where a name is needed: that is an id.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// The digest part is not `algorithm:hex` of the right shape.
    #[error("invalid checksum digest format")]
    DigestFormat,
    /// The digest's hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    DigestLength,
    /// The digest algorithm is not one Docker knows.
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
}

/// A named reference: `domain/path[:tag][@digest]`. Built only by parsing, so every value is
/// valid; `domain` is empty only for references parsed without normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// What [`parse_any`] found: an image id/digest or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyReference {
    /// `sha256:<64 hex>` (a bare 64-hex string becomes this too).
    Digest(String),
    /// A normalised name.
    Named(Reference),
}

impl Reference {
    /// Registry domain (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// Repository path (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// Digest (`sha256:<hex>`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
    /// Full repository name (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }
    /// The short name Docker prints (`busybox`, `user/img`, `localhost:5000/a`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = self.path.strip_prefix(OFFICIAL_REPO_PREFIX)
                && !rest.contains('/')
                && !rest.is_empty()
            {
                return rest.to_string();
            }
            return self.path.clone();
        }
        self.name()
    }
    /// The short string Docker prints (`busybox:latest`, `localhost:5000/a@sha256:...`).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }
    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
    }
    /// This reference with `:latest` added when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }
    /// The same name with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidFormat);
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }
    /// The same name with a digest (and no tag), as stored for `name@digest` lookups.
    pub fn with_digest(&self, digest: &str) -> Result<Self, ReferenceError> {
        validate_digest(digest)?;
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        })
    }
    /// The bare name (no tag, no digest).
    pub fn name_only(&self) -> Self {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_normalized(s)
    }
}

/// Parse a user-supplied name the way the Docker CLI and daemon do: add `docker.io` and
/// `library/` where implied. Does not add a default tag (see [`Reference::with_default_tag`]).
pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
    if is_hex64(s) {
        return Err(ReferenceError::HexName(s.to_string()));
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote_name = match remainder.find(':') {
        Some(i) => &remainder[..i],
        None => &remainder,
    };
    if remote_name.to_lowercase() != remote_name {
        return Err(ReferenceError::Uppercase);
    }
    parse(&format!("{domain}/{remainder}"))
}

/// `ParseAnyReference`: a 64-hex string or `sha256:<hex>` is an id, anything else a name.
pub fn parse_any(s: &str) -> Result<AnyReference, ReferenceError> {
    if is_hex64(s) {
        return Ok(AnyReference::Digest(format!("sha256:{s}")));
    }
    if looks_like_digest(s) && validate_digest(s).is_ok() {
        return Ok(AnyReference::Digest(s.to_string()));
    }
    parse_normalized(s).map(AnyReference::Named)
}

fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i)
            if name[..i].contains(['.', ':'])
                || &name[..i] == "localhost"
                || name[..i].to_lowercase() != name[..i] =>
        {
            (name[..i].to_string(), name[i + 1..].to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Parse without normalisation (`reference.Parse`): the string must match the grammar as is.
pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
    match match_reference(s) {
        Some((name, tag, digest)) => {
            if name.len() > NAME_TOTAL_LENGTH_MAX {
                return Err(ReferenceError::NameTooLong);
            }
            if let Some(d) = digest {
                validate_digest(d)?;
            }
            let (domain, path) = split_name(name);
            Ok(Reference {
                domain: domain.to_string(),
                path: path.to_string(),
                tag: tag.map(str::to_string),
                digest: digest.map(str::to_string),
            })
        }
        None if s.is_empty() => Err(ReferenceError::NameEmpty),
        None if match_reference(&s.to_lowercase()).is_some() => Err(ReferenceError::Uppercase),
        None => Err(ReferenceError::InvalidFormat),
    }
}

/// Match `name(:tag)?(@digest)?`, returning the three parts.
fn match_reference(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (rest, digest) = match s.find('@') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if let Some(d) = digest
        && !looks_like_digest(d)
    {
        return None;
    }
    // A tag follows the last ':' unless a '/' comes after it (then it was a port).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag
        && !is_tag(t)
    {
        return None;
    }
    if !is_name(name) {
        return None;
    }
    Some((name, tag, digest))
}

fn split_name(name: &str) -> (&str, &str) {
    if let Some(i) = name.find('/') {
        let (first, rest) = (&name[..i], &name[i + 1..]);
        if is_domain(first) && rest.split('/').all(is_path_component) {
            return (first, rest);
        }
    }
    ("", name)
}

fn is_name(name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    if name.split('/').all(is_path_component) {
        return true;
    }
    let (domain, _) = split_name(name);
    !domain.is_empty()
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-')
}

fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // IPv6 literal: [hex:...](:port)?
        let Some(end) = rest.find(']') else {
            return false;
        };
        let inner = &rest[..end];
        if inner.is_empty() || !inner.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        return after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    } else {
        match s.rfind(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    host.split('.').all(is_domain_component)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let lower_alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !lower_alnum(b[0]) || !lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "."
            || sep == "_"
            || sep == "__"
            || (!sep.is_empty() && sep.bytes().all(|c| c == b'-'));
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`
fn looks_like_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|c| c.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// go-digest's `Validate`: known algorithm, lowercase hex of the right length.
fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(ReferenceError::DigestFormat);
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestAlgorithm),
    };
    if hex.len() != len {
        return Err(ReferenceError::DigestLength);
    }
    if !hex
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(ReferenceError::DigestFormat);
    }
    Ok(())
}

fn is_hex64(s: &str) -> bool {
    crate::ids::is_hex64(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(s: &str) -> String {
        parse_normalized(s).unwrap().with_default_tag().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/img"), "docker.io/user/img:latest");
        assert_eq!(
            norm("index.docker.io/user/img"),
            "docker.io/user/img:latest"
        );
        assert_eq!(norm("localhost:5000/a/b:tag"), "localhost:5000/a/b:tag");
        assert_eq!(norm("localhost/a"), "localhost/a:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            norm(&format!("127.0.0.1:5000/x@{d}")),
            format!("127.0.0.1:5000/x@{d}")
        );
        let r = parse_normalized(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(r.familiar_string(), format!("busybox:1@{d}"));
    }

    #[test]
    fn familiar_forms() {
        let f = |s: &str| {
            parse_normalized(s)
                .unwrap()
                .with_default_tag()
                .familiar_string()
        };
        assert_eq!(f("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(f("user/img:x"), "user/img:x");
        assert_eq!(f("localhost:5000/a:b"), "localhost:5000/a:b");
        assert_eq!(
            parse_normalized("busybox").unwrap().familiar_name(),
            "busybox"
        );
    }

    #[test]
    fn rejects_with_docker_messages() {
        let e = |s: &str| parse_normalized(s).unwrap_err().to_string();
        assert_eq!(
            e("Busybox"),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(e("busybox:"), "invalid reference format");
        assert_eq!(e("bus@box"), "invalid reference format");
        assert_eq!(e("-busybox"), "invalid reference format");
        assert_eq!(e("a//b"), "invalid reference format");
        assert_eq!(e(""), "invalid reference format");
        assert_eq!(parse("").unwrap_err(), ReferenceError::NameEmpty);
        assert_eq!(
            e(&format!("a:{}", "t".repeat(129))),
            "invalid reference format"
        );
        assert_eq!(
            e(&"a".repeat(300)),
            "repository name must not be more than 255 characters"
        );
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            e(&hex),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
        );
        assert_eq!(
            e(&format!("a@sha256:{}", "A".repeat(64))),
            "invalid checksum digest format"
        );
        assert_eq!(
            e(&format!("a@sha256:{}", "a".repeat(40))),
            "invalid checksum digest length"
        );
    }

    #[test]
    fn ids_are_not_names() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            parse_any(&hex).unwrap(),
            AnyReference::Digest(format!("sha256:{hex}"))
        );
        assert_eq!(
            parse_any(&format!("sha256:{hex}")).unwrap(),
            AnyReference::Digest(format!("sha256:{hex}"))
        );
        assert!(matches!(
            parse_any("0123abc").unwrap(),
            AnyReference::Named(_)
        ));
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}([._-][a-z0-9]{1,5}){0,2}"
    }

    fn arb_reference() -> impl Strategy<Value = Reference> {
        let domain = prop_oneof![
            Just("docker.io".to_string()),
            Just("localhost:5000".to_string()),
            Just("localhost".to_string()),
            Just("127.0.0.1:5000".to_string()),
            "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.(com|io)(:[0-9]{2,5})?",
        ];
        let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}");
        let digest = proptest::option::of("[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")));
        (
            domain,
            proptest::collection::vec(component(), 1..4),
            tag,
            digest,
        )
            // Docker's familiar form is ambiguous for docker.io names whose first component
            // looks like a domain (`docker.io/a.b/c` prints as `a.b/c`): not generated.
            .prop_filter(
                "familiar form would read as a domain",
                |(d, comps, _, _)| {
                    d != DEFAULT_DOMAIN || comps.len() == 1 || !comps[0].contains('.')
                },
            )
            .prop_map(|(domain, comps, tag, digest)| {
                let mut path = comps.join("/");
                if domain == DEFAULT_DOMAIN && comps.len() == 1 {
                    path = format!("library/{path}");
                }
                Reference {
                    domain,
                    path,
                    tag,
                    digest,
                }
            })
    }

    proptest! {
        #[test]
        fn parse_format_round_trips(r in arb_reference()) {
            prop_assert_eq!(&parse_normalized(&r.to_string()).unwrap(), &r);
            prop_assert_eq!(&parse_normalized(&r.familiar_string()).unwrap(), &r);
            prop_assert_eq!(&parse(&r.to_string()).unwrap(), &r);
        }
    }
}
