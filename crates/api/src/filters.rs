//! Docker's `filters` query parameter: a JSON object of filter name → values.
//!
//! Clients send either `{"status":{"running":true}}` (the docker CLI's encoding) or
//! `{"status":["running"]}` (older clients and the API docs); both are accepted.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ApiError;

/// Parsed filters: name → set of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    map: BTreeMap<String, BTreeSet<String>>,
}

impl Filters {
    /// Parses the raw `filters` query value; empty means no filters.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Filters::default());
        }
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ApiError::invalid("invalid filter: expected a JSON object"))?;
        let mut map = BTreeMap::new();
        for (name, values) in obj {
            let mut set = BTreeSet::new();
            match values {
                serde_json::Value::Array(items) => {
                    for item in items {
                        let s = item.as_str().ok_or_else(|| {
                            ApiError::invalid(format!("invalid filter '{name}': expected strings"))
                        })?;
                        set.insert(s.to_owned());
                    }
                }
                serde_json::Value::Object(items) => {
                    for (k, v) in items {
                        if v.as_bool().unwrap_or(false) {
                            set.insert(k.clone());
                        }
                    }
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "invalid filter '{name}': expected a list or an object"
                    )));
                }
            }
            map.insert(name.clone(), set);
        }
        Ok(Filters { map })
    }

    /// Rejects any filter name not in `allowed`, with Docker's message.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for name in self.map.keys() {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::invalid(format!("invalid filter '{name}'")));
            }
        }
        Ok(())
    }

    /// The values given for `name` (empty when the filter is absent).
    pub fn get(&self, name: &str) -> Vec<&str> {
        self.map
            .get(name)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Whether the filter `name` was given at all.
    pub fn contains(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|s| !s.is_empty())
    }

    /// Whether no filters were given.
    pub fn is_empty(&self) -> bool {
        self.map.values().all(BTreeSet::is_empty)
    }

    /// Docker's `label` filter semantics: every `key` or `key=value` given must match `labels`.
    pub fn match_labels(
        &self,
        name: &str,
        labels: &std::collections::HashMap<String, String>,
    ) -> bool {
        self.get(name)
            .iter()
            .all(|want| match want.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
                None => labels.contains_key(*want),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings() {
        let a = Filters::parse(r#"{"status":{"running":true,"exited":false}}"#).unwrap();
        assert_eq!(a.get("status"), vec!["running"]);
        let b = Filters::parse(r#"{"status":["running","paused"]}"#).unwrap();
        assert_eq!(b.get("status"), vec!["paused", "running"]);
        assert!(Filters::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_filters_are_400() {
        assert_eq!(Filters::parse("{").unwrap_err().http_status(), 400);
        assert_eq!(Filters::parse("[1]").unwrap_err().http_status(), 400);
        let f = Filters::parse(r#"{"bogus":["x"]}"#).unwrap();
        assert_eq!(
            f.validate(&["status"]).unwrap_err().message,
            "invalid filter 'bogus'"
        );
    }

    #[test]
    fn labels() {
        let f = Filters::parse(r#"{"label":["a","b=2"]}"#).unwrap();
        let mut l = std::collections::HashMap::new();
        l.insert("a".into(), "1".into());
        assert!(!f.match_labels("label", &l));
        l.insert("b".into(), "2".into());
        assert!(f.match_labels("label", &l));
    }
}
