//! `inspect` (any object type, Docker's lookup order) and the typed `… inspect` commands.

use berth_client::query;

use super::Ctx;
use crate::cli::{InspectArgs, InspectTypedArgs};
use crate::error::{CliError, Result};
use crate::output;
use crate::template::{Template, Value};

/// The endpoint for an object of `kind`.
fn path(kind: &str, name: &str, size: bool) -> String {
    let n = query::path_segment(name);
    match kind {
        "container" => format!("/containers/{n}/json{}", if size { "?size=1" } else { "" }),
        "image" => format!("/images/{n}/json"),
        "network" => format!("/networks/{n}"),
        "volume" => format!("/volumes/{n}"),
        other => format!("/{other}s/{n}"),
    }
}

/// Go's `json.Indent(…, "", "    ")` of a value: empty arrays/objects stay `[]`/`{}`.
pub fn indent_json(v: &Value) -> String {
    fn go(v: &Value, depth: usize, out: &mut String) {
        let pad = |d: usize| "    ".repeat(d);
        match v {
            Value::List(l) if !l.is_empty() => {
                out.push_str("[\n");
                for (i, x) in l.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    go(x, depth + 1, out);
                    if i + 1 < l.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&pad(depth));
                out.push(']');
            }
            Value::Map(m) if !m.is_empty() => {
                out.push_str("{\n");
                for (i, (k, x)) in m.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    out.push_str(&Value::Str(k.clone()).to_json());
                    out.push_str(": ");
                    go(x, depth + 1, out);
                    if i + 1 < m.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&pad(depth));
                out.push('}');
            }
            other => out.push_str(&other.to_json()),
        }
    }
    let mut s = String::new();
    go(v, 0, &mut s);
    s
}

fn parse_format(f: Option<&str>) -> Result<Option<Template>> {
    match f {
        None | Some("") => Ok(None),
        Some("json") => Ok(Some(
            Template::parse("{{json .}}").map_err(CliError::InspectTemplate)?,
        )),
        Some(f) => {
            let (_, body) = crate::format::prepare(f);
            Ok(Some(
                Template::parse(&body).map_err(CliError::InspectTemplate)?,
            ))
        }
    }
}

/// Prints found objects as Docker does (JSON array, or one template line each) and the errors.
fn print(found: Vec<Value>, tmpl: Option<Template>, errors: Vec<String>) -> Result<i32> {
    match tmpl {
        None => {
            output::outln(&indent_json(&Value::List(found)));
        }
        Some(t) => {
            let mut s = String::new();
            for v in &found {
                s.push_str(&t.render(v).map_err(|e| CliError::Msg(e.to_string()))?);
                s.push('\n');
            }
            output::out(&s);
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::Msg(errors.join("\n")))
    }
}

/// `inspect [--type]`.
pub async fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<i32> {
    let tmpl = parse_format(a.format.as_deref())?;
    let kinds: Vec<&str> = match a.kind.as_deref() {
        None | Some("") => vec!["container", "image", "network", "volume"],
        Some(
            k @ ("container" | "image" | "network" | "volume" | "plugin" | "node" | "service"
            | "task" | "secret" | "config"),
        ) => vec![k],
        Some(k) => {
            return Err(CliError::Msg(format!(
                "\"{k}\" is not a valid value for --type"
            )));
        }
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    'names: for name in &a.names {
        for kind in &kinds {
            match ctx.get_value(&path(kind, name, a.size)).await {
                Ok(v) => {
                    found.push(v);
                    continue 'names;
                }
                Err(CliError::Client(e))
                    if e.is_not_found() || e.status() == Some(501) && kinds.len() > 1 =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        errors.push(match a.kind.as_deref() {
            Some(k) if !k.is_empty() => format!("Error: No such {k}: {name}"),
            _ => format!("Error: No such object: {name}"),
        });
    }
    print(found, tmpl, errors)
}

/// `container inspect`, `image inspect`, `network inspect`, `volume inspect`.
pub async fn typed(ctx: &Ctx, kind: &str, a: InspectTypedArgs) -> Result<i32> {
    let tmpl = parse_format(a.format.as_deref())?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match ctx.get_value(&path(kind, name, a.size)).await {
            Ok(v) => found.push(v),
            // The docker CLI (v28) shows the daemon's own words for a typed inspect.
            Err(CliError::Client(e)) if e.is_not_found() => errors.push(e.to_string()),
            Err(e) => return Err(e),
        }
    }
    print(found, tmpl, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let v: Value =
            serde_json::from_str(r#"[{"Id":"x","Args":[],"Config":{},"Env":["A=1"],"N":1}]"#)
                .unwrap();
        assert_eq!(
            indent_json(&v),
            "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"Config\": {},\n        \"Env\": [\n            \"A=1\"\n        ],\n        \"N\": 1\n    }\n]"
        );
    }
}
