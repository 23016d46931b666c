//! The control socket's wire format (PROTOCOL.md): one JSON request line, one JSON response line.

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// One request line, tagged by `op`.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Start,
    State,
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    Wait,
    Pause,
    Resume,
    Resize {
        height: u16,
        width: u16,
        #[serde(default)]
        exec_id: Option<String>,
    },
    Exec {
        exec_id: String,
        process: Value,
        #[serde(default)]
        terminal: bool,
        #[serde(default)]
        stdin: bool,
    },
    ExecWait {
        exec_id: String,
    },
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
        #[serde(default)]
        exec_id: Option<String>,
    },
    Delete,
    Shutdown,
}

/// Parse one line; the error text goes back to the client as `ok:false`.
pub fn parse(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))
}

/// `{"ok":true, ...fields}` as one line with its newline.
pub fn ok(fields: Value) -> Vec<u8> {
    let mut obj = Map::new();
    obj.insert("ok".into(), Value::Bool(true));
    if let Value::Object(m) = fields {
        obj.extend(m);
    }
    line(Value::Object(obj))
}

/// `{"ok":false,"error":msg,"exit_code":code?}` as one line.
pub fn err(msg: &str, exit_code: Option<i32>) -> Vec<u8> {
    let mut v = json!({"ok": false, "error": msg});
    if let Some(c) = exit_code {
        v["exit_code"] = json!(c);
    }
    line(v)
}

fn line(v: Value) -> Vec<u8> {
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ops() {
        assert!(matches!(parse(br#"{"op":"start"}"#), Ok(Request::Start)));
        assert!(matches!(
            parse(br#"{"op":"kill","signal":15,"all":false}"#),
            Ok(Request::Kill {
                signal: 15,
                all: false
            })
        ));
        assert!(matches!(
            parse(br#"{"op":"attach","stdout":true,"exec_id":null}"#),
            Ok(Request::Attach {
                stdout: true,
                stdin: false,
                exec_id: None,
                ..
            })
        ));
        assert!(matches!(
            parse(br#"{"op":"resize","height":24,"width":80,"exec_id":"e1"}"#),
            Ok(Request::Resize { height: 24, width: 80, exec_id: Some(ref e) }) if e == "e1"
        ));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"op":"fly"}"#).is_err());
        assert!(parse(br#"{"op":"kill"}"#).is_err());
    }

    #[test]
    fn builds_responses() {
        assert_eq!(ok(json!({"pid": 4})), b"{\"ok\":true,\"pid\":4}\n");
        let e: Value = serde_json::from_slice(&err("boom", Some(127))).unwrap();
        assert_eq!(e, json!({"ok": false, "error": "boom", "exit_code": 127}));
    }
}
