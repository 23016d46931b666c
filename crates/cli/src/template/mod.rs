//! A Go text/template subset, enough for every `--format` Docker documents: field paths,
//! `{{json .}}`, `range`/`if`/`with`/`else`, variables, pipelines, parentheses, Go's builtins
//! and Docker's functions. Split as lexer → parser → executor.

pub mod exec;
pub mod funcs;
pub mod lexer;
pub mod parser;
pub mod value;

pub use value::Value;

/// Template errors, with Go's wording (`template: :1: unclosed action`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text is malformed.
    #[error("{0}")]
    Parse(String),
    /// The template failed while running on data.
    #[error("{0}")]
    Exec(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<parser::Node>,
}

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let toks = lexer::lex(src)?;
        let nodes = parser::parse(&toks, &funcs::known)?;
        Ok(Template { nodes })
    }

    /// Runs the template with `data` as dot.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        exec::execute(&self.nodes, data, &mut out, false, None)?;
        Ok(out)
    }

    /// Runs the template on data standing for a Go struct named `ty` (Docker's formatter
    /// contexts): unknown fields are errors, as in Go.
    pub fn render_struct(&self, data: &Value, ty: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        exec::execute(&self.nodes, data, &mut out, false, Some(ty))?;
        Ok(out)
    }

    /// Runs the template over a header map (field → column title), formatting functions
    /// passing titles through, as Docker renders `table` headers.
    pub fn render_header(&self, header: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        exec::execute(&self.nodes, header, &mut out, true, None)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
