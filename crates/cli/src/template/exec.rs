//! Runs a parsed template over a [`Value`]: Go's scoping of `$` variables, truthiness, `range`
//! over lists and maps (sorted keys), pipelines passing the previous result as the last argument.

use super::TemplateError;
use super::funcs;
use super::parser::{Arg, Cmd, Node, Pipe};
use super::value::Value;

/// Execution state: the variable stack.
struct Exec<'a> {
    vars: Vec<(String, Value)>,
    out: &'a mut String,
    header: bool,
    /// The root data is a Go struct of this type: unknown fields on it are errors.
    strict: Option<&'a str>,
    root: *const Value,
}

fn xerr(p: &Pipe, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError::Exec(format!(
        "template: :{}:{}: executing \"\" at <{}>: {msg}",
        p.line, p.col, p.text
    ))
}

/// Executes `nodes` with `data` as dot and `$`, appending to `out`.
/// With `header`, Docker's formatting functions pass their first argument through unchanged,
/// so `table {{upper .ID}}` still prints the `CONTAINER ID` header.
/// With `strict`, the data stands for a Go struct of that type name: a missing field on it
/// is an error (`can't evaluate field Foo in type *formatter.ContainerContext`), not `<no value>`.
pub fn execute<'a>(
    nodes: &[Node],
    data: &Value,
    out: &'a mut String,
    header: bool,
    strict: Option<&'a str>,
) -> Result<(), TemplateError> {
    let mut e = Exec {
        vars: vec![("$".to_owned(), data.clone())],
        out,
        header,
        strict,
        root: data as *const Value,
    };
    e.walk(nodes, data)
}

impl Exec<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&v.go_string());
                    }
                }
                Node::If(p, then, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let r = if v.truthy() {
                        self.walk(then, dot)
                    } else {
                        self.walk(els, dot)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let r = if v.truthy() {
                        self.walk(body, &v)
                    } else {
                        self.walk(els, dot)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::Range(p, body, els) => {
                    let mark = self.vars.len();
                    // The declared variables of a range are bound per element, not to the value.
                    let undecl = Pipe {
                        decl: Vec::new(),
                        ..p.clone()
                    };
                    let v = self.pipe(&undecl, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, x)| (Value::Int(i as i64), x))
                            .collect(),
                        Value::Map(m) => {
                            let mut m = m;
                            m.sort_by(|a, b| a.0.cmp(&b.0));
                            m.into_iter().map(|(k, x)| (Value::Str(k), x)).collect()
                        }
                        Value::Null | Value::Missing => Vec::new(),
                        Value::Int(n) => (0..n.max(0))
                            .map(|i| (Value::Int(i), Value::Int(i)))
                            .collect(),
                        other => {
                            return Err(xerr(
                                p,
                                format!("range can't iterate over {}", other.go_string()),
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.walk(els, dot)?;
                    }
                    for (k, x) in items {
                        let inner = self.vars.len();
                        match p.decl.as_slice() {
                            [one] => self.vars.push((one.clone(), x.clone())),
                            [a, b] => {
                                self.vars.push((a.clone(), k));
                                self.vars.push((b.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        let r = self.walk(body, &x);
                        self.vars.truncate(inner);
                        r?;
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, TemplateError> {
        let mut prev: Option<Value> = None;
        for c in &p.cmds {
            prev = Some(self.cmd(p, c, dot, prev)?);
        }
        let v = prev.unwrap_or(Value::Missing);
        for name in &p.decl {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(xerr(p, format!("undefined variable: {name}"))),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn cmd(
        &mut self,
        p: &Pipe,
        c: &Cmd,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let Some(first) = c.args.first() else {
            return Err(xerr(p, "empty command"));
        };
        if let Arg::Ident(name) = first {
            let mut args = Vec::with_capacity(c.args.len());
            // `and`/`or` short-circuit in Go; evaluating all is equivalent without side effects.
            for a in &c.args[1..] {
                args.push(self.arg(p, a, dot)?);
            }
            if let Some(v) = piped {
                args.push(v);
            }
            if self.header && funcs::passes_header(name) {
                return Ok(args.into_iter().next().unwrap_or(Value::Missing));
            }
            return funcs::call(name, args)
                .map_err(|m| xerr(p, format!("error calling {name}: {m}")));
        }
        if c.args.len() > 1 || piped.is_some() {
            // A method call on a formatter context (`{{.Label "key"}}`).
            if let Arg::Field(path) = first
                && let Some((name, recv_path)) = path.split_last()
            {
                let recv = walk_fields(p, dot, recv_path)?;
                let mut args = Vec::new();
                for a in &c.args[1..] {
                    args.push(self.arg(p, a, dot)?);
                }
                if let Some(v) = piped {
                    args.push(v);
                }
                if let Some(r) = funcs::method(&recv, name, &args) {
                    return r.map_err(|m| xerr(p, format!("error calling {name}: {m}")));
                }
            }
            return Err(xerr(
                p,
                format!("can't give argument to non-function {}", p.text),
            ));
        }
        self.arg(p, first, dot)
    }

    fn arg(&mut self, p: &Pipe, a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Field(path) => {
                if let (Some(ty), Some(first)) = (self.strict, path.first())
                    && std::ptr::eq(dot, self.root)
                    && dot.get(first).is_none()
                {
                    return Err(xerr(
                        p,
                        format!("can't evaluate field {first} in type {ty}"),
                    ));
                }
                walk_fields(p, dot, path)?
            }
            Arg::Var(name, path) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(TemplateError::Parse(format!(
                        "template: :{}: undefined variable \"{name}\"",
                        p.line
                    )));
                };
                let v = v.clone();
                walk_fields(p, &v, path)?
            }
            Arg::Ident(name) => funcs::call(name, Vec::new())
                .map_err(|m| xerr(p, format!("error calling {name}: {m}")))?,
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Null,
            Arg::Sub(inner, path) => {
                let v = self.pipe(inner, dot)?;
                walk_fields(p, &v, path)?
            }
        })
    }
}

fn walk_fields(p: &Pipe, start: &Value, path: &[String]) -> Result<Value, TemplateError> {
    let mut cur = start.clone();
    for (i, f) in path.iter().enumerate() {
        cur = match &cur {
            Value::Map(_) => cur.get(f).cloned().unwrap_or(Value::Missing),
            Value::Null | Value::Missing if i > 0 => {
                return Err(xerr(
                    p,
                    format!("nil pointer evaluating interface {{}}.{f}"),
                ));
            }
            Value::Null | Value::Missing => Value::Missing,
            other => {
                return Err(xerr(
                    p,
                    format!("can't evaluate field {f} in type {}", go_type(other)),
                ));
            }
        };
    }
    Ok(cur)
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "string",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::Uint(_) => "int",
        Value::Float(_) => "float64",
        Value::List(_) => "[]interface {}",
        _ => "interface {}",
    }
}
