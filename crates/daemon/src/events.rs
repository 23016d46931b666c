//! The events bus behind `GET /events`: every lifecycle change is published once, kept in a
//! short ring for `since=`, and fanned out to streaming clients.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::containers::record::ContainerRecord;
use crate::containers::store::lock;

/// Events remembered for `since=` replays.
const RING: usize = 1024;

/// One published event (Docker's JSON shape) with its time for filtering.
#[derive(Debug, Clone)]
pub struct Event {
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
    /// The JSON sent to clients.
    pub json: Arc<Value>,
}

/// The bus.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    ring: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::Sender::new(256),
            ring: Mutex::new(VecDeque::new()),
        }
    }
}

impl Events {
    /// Publishes an event of `typ` (`container`, `image`) for `id`.
    pub fn emit(
        &self,
        typ: &str,
        action: &str,
        id: &str,
        from: Option<&str>,
        attrs: HashMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let mut v = json!({
            "Type": typ,
            "Action": action,
            "Actor": {"ID": id, "Attributes": attrs},
            "scope": "local",
            "time": now.timestamp(),
            "timeNano": nanos,
        });
        if typ == "container" || typ == "image" {
            v["status"] = json!(action);
            v["id"] = json!(id);
            if let Some(f) = from {
                v["from"] = json!(f);
            }
        }
        let ev = Event {
            time_nano: nanos,
            json: Arc::new(v),
        };
        {
            let mut r = lock(&self.ring);
            r.push_back(ev.clone());
            while r.len() > RING {
                r.pop_front();
            }
        }
        let _ = self.tx.send(ev);
    }

    /// A container event with Docker's attributes (image, name, labels, + `extra`).
    pub fn container(&self, rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let image = rec.config.image.clone().unwrap_or_default();
        let mut attrs: HashMap<String, String> = rec.config.labels.clone().unwrap_or_default();
        attrs.insert("image".into(), image.clone());
        attrs.insert("name".into(), rec.name.trim_start_matches('/').to_owned());
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.emit("container", action, &rec.id, Some(&image), attrs);
    }

    /// An image event.
    pub fn image(&self, action: &str, id: &str, name: &str) {
        let mut attrs = HashMap::new();
        attrs.insert("name".to_owned(), name.to_owned());
        self.emit("image", action, id, None, attrs);
    }

    /// Past events (for `since`) and a receiver for the live ones, taken atomically.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let r = lock(&self.ring);
        let rx = self.tx.subscribe();
        (r.iter().cloned().collect(), rx)
    }
}

/// Docker's event filters applied to one event.
pub fn matches(f: &berth_api::Filters, v: &Value) -> bool {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("");
    let typ = s("/Type");
    let check = |name: &str, ok: &dyn Fn(&str) -> bool| -> bool {
        !f.contains(name) || f.get(name).iter().any(|w| ok(w))
    };
    let id = s("/Actor/ID");
    let name = s("/Actor/Attributes/name");
    check("type", &|w| w == typ)
        && check("event", &|w| w == s("/Action"))
        && check("container", &|w| {
            typ == "container" && (id.starts_with(w) || name == w)
        })
        && check("image", &|w| {
            s("/Actor/Attributes/image") == w || (typ == "image" && (id == w || name == w))
        })
        && check("label", &|w| match w.split_once('=') {
            Some((k, val)) => {
                v.pointer(&format!("/Actor/Attributes/{k}"))
                    .and_then(Value::as_str)
                    == Some(val)
            }
            None => v.pointer(&format!("/Actor/Attributes/{w}")).is_some(),
        })
}

/// Parses `since`/`until` (unix seconds, maybe fractional) into nanoseconds.
pub fn parse_time(s: &str) -> Result<Option<i64>, berth_api::ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_nanos_opt());
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = secs
        .parse()
        .map_err(|_| berth_api::ApiError::invalid(format!("invalid time {s:?}")))?;
    let frac = format!("{frac:0<9}");
    let nanos: i64 = frac.get(..9).unwrap_or("0").parse().unwrap_or(0);
    Ok(Some(
        secs.saturating_mul(1_000_000_000).saturating_add(nanos),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_replay() {
        let bus = Events::default();
        let mut attrs = HashMap::new();
        attrs.insert("name".to_owned(), "web".to_owned());
        attrs.insert("image".to_owned(), "busybox".to_owned());
        bus.emit("container", "start", "abc123", Some("busybox"), attrs);
        let (past, _rx) = bus.subscribe();
        assert_eq!(past.len(), 1);
        let v = &past[0].json;
        assert_eq!(v["status"], "start");
        let f = berth_api::Filters::parse(r#"{"container":["web"],"event":["start"]}"#).unwrap();
        assert!(matches(&f, v));
        let f = berth_api::Filters::parse(r#"{"event":["die"]}"#).unwrap();
        assert!(!matches(&f, v));
        assert_eq!(parse_time("1.5").unwrap(), Some(1_500_000_000));
    }
}
