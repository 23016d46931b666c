//! Listing output as Docker's formatter does it: a default `table …` template per command,
//! `--format` (Go template, `table` prefix, `json`), headers from the field → title map, rows
//! aligned by a Go-compatible tabwriter.

pub mod tabwriter;
pub mod units;

use crate::template::{Template, TemplateError, Value};

/// Errors from formatting.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The `--format` template does not parse (Docker: "failed to parse template: …").
    #[error("failed to parse template: {0}")]
    Parse(#[source] TemplateError),
    /// The template failed on a row.
    #[error("failed to execute template: {0}")]
    Exec(#[source] TemplateError),
}

/// A `--format` value understood as Docker does.
#[derive(Debug, Clone)]
pub struct Format {
    table: bool,
    template: Template,
    context: Option<&'static str>,
}

/// Docker's pre-formatting: `table` prefix, trimmed spaces, `\t`/`\n` escapes turned into
/// the characters.
pub fn prepare(format: &str) -> (bool, String) {
    let (table, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let body = body
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    (table, body)
}

impl Format {
    /// Parses a `--format` value; `default_table` is used for `""` and `table` alone.
    pub fn new(format: Option<&str>, default_table: &str) -> Result<Format, FormatError> {
        let f = match format {
            None | Some("") | Some("table") => default_table,
            Some("json") => "{{json .}}",
            Some(f) => f,
        };
        let (table, body) = prepare(f);
        let template = Template::parse(&body).map_err(FormatError::Parse)?;
        Ok(Format {
            table,
            template,
            context: None,
        })
    }

    /// Rows stand for Docker's Go formatter context `ty` (`*formatter.ContainerContext`):
    /// unknown fields are errors, as with the docker CLI.
    pub fn context(mut self, ty: &'static str) -> Format {
        self.context = Some(ty);
        self
    }

    /// Renders rows (each followed by a newline), with the header and alignment for tables.
    pub fn render(&self, rows: &[Value], header: &Value) -> Result<String, FormatError> {
        let mut buf = String::new();
        if self.table {
            buf.push_str(
                &self
                    .template
                    .render_header(header)
                    .map_err(FormatError::Exec)?,
            );
            buf.push('\n');
        }
        for r in rows {
            // Docker's contexts marshal to JSON objects with sorted keys (`{{json .}}`).
            let mut r = r.clone();
            if let Value::Map(m) = &mut r {
                m.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let text = match self.context {
                Some(ty) => self.template.render_struct(&r, ty),
                None => self.template.render(&r),
            };
            buf.push_str(&text.map_err(FormatError::Exec)?);
            buf.push('\n');
        }
        if self.table {
            Ok(tabwriter::align(&buf, 10, 3))
        } else {
            Ok(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Value {
        Value::map([
            ("ID", Value::str("CONTAINER ID")),
            ("Names", Value::str("NAMES")),
        ])
    }

    #[test]
    fn table_prefix_header_and_escapes() {
        let f = Format::new(Some("table {{.ID}}\\t{{.Names}}"), "").unwrap();
        let rows = vec![Value::map([
            ("ID", Value::str("abc")),
            ("Names", Value::str("web")),
        ])];
        assert_eq!(
            f.render(&rows, &header()).unwrap(),
            "CONTAINER ID   NAMES\nabc            web\n"
        );
    }

    #[test]
    fn plain_format_has_no_header() {
        let f = Format::new(Some("{{.ID}}"), "table {{.ID}}").unwrap();
        let rows = vec![Value::map([("ID", Value::str("abc"))])];
        assert_eq!(f.render(&rows, &header()).unwrap(), "abc\n");
    }

    #[test]
    fn bad_template_is_dockers_message() {
        let e = Format::new(Some("{{.ID"), "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to parse template: template: :1: unclosed action"
        );
    }
}
