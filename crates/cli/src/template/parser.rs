//! Builds the template tree from tokens: text, actions, `if`/`range`/`with` with `else` (and
//! `else if`/`else with` chains), pipelines with variable declarations, parenthesised pipes.

use super::TemplateError;
use super::lexer::{Tok, Token};

/// A template node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{pipeline}}`: print the result (unless it declares variables).
    Action(Pipe),
    /// `{{if}}…{{else}}…{{end}}`.
    If(Pipe, Vec<Node>, Vec<Node>),
    /// `{{range}}…{{else}}…{{end}}`.
    Range(Pipe, Vec<Node>, Vec<Node>),
    /// `{{with}}…{{else}}…{{end}}`.
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// `$x := cmd | cmd …`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    /// Declared or assigned variables.
    pub decl: Vec<String>,
    /// True for `=` (assign to existing), false for `:=`.
    pub assign: bool,
    /// The commands, output of each passed as the last argument of the next.
    pub cmds: Vec<Cmd>,
    /// Line for messages.
    pub line: usize,
    /// Column of the pipeline's first token.
    pub col: usize,
    /// Source-ish text of the pipeline for `executing "" at <…>` messages.
    pub text: String,
}

/// One command: a function call or a single operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    /// Operands; the first may be a function identifier.
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.`
    Dot,
    /// `.A.B` on dot.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    /// Literals.
    Str(String),
    /// Integer literal.
    Int(i64),
    /// Float literal.
    Float(f64),
    /// Boolean literal.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
}

/// Function names known at parse time (Go rejects unknown ones while parsing).
pub type FuncCheck<'a> = &'a dyn Fn(&str) -> bool;

struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    known: FuncCheck<'a>,
}

fn perr(line: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError::Parse(format!("template: :{line}: {}", msg.into()))
}

/// How a list of nodes ended.
enum Stop {
    Eof,
    Closed,
    Else,
    ElseChain(&'static str),
}

/// Parses tokens into nodes.
pub fn parse(toks: &[Token], known: FuncCheck<'_>) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser {
        toks,
        pos: 0,
        known,
    };
    let (nodes, end, line) = p.list()?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::Closed => Err(perr(line, "unexpected {{end}}")),
        Stop::Else | Stop::ElseChain(_) => Err(perr(line, "unexpected {{else}}")),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map(|t| t.line)
            .unwrap_or(1)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop, usize), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let line = self.line();
            match self.next() {
                None => return Ok((nodes, Stop::Eof, line)),
                Some(Tok::Text(t)) => nodes.push(Node::Text(t)),
                Some(Tok::Open) => match self.peek().cloned() {
                    Some(Tok::Ident(k)) if k == "end" => {
                        self.pos += 1;
                        self.expect_close("end")?;
                        return Ok((nodes, Stop::Closed, line));
                    }
                    Some(Tok::Ident(k)) if k == "else" => {
                        self.pos += 1;
                        match self.peek().cloned() {
                            Some(Tok::Ident(k2)) if k2 == "if" || k2 == "with" => {
                                self.pos += 1;
                                let kw = if k2 == "if" { "if" } else { "with" };
                                return Ok((nodes, Stop::ElseChain(kw), line));
                            }
                            _ => {
                                self.expect_close("else")?;
                                return Ok((nodes, Stop::Else, line));
                            }
                        }
                    }
                    Some(Tok::Ident(k)) if k == "if" || k == "range" || k == "with" => {
                        self.pos += 1;
                        nodes.push(self.control(&k)?);
                    }
                    Some(Tok::Ident(k))
                        if k == "define"
                            || k == "template"
                            || k == "block"
                            || k == "break"
                            || k == "continue" =>
                    {
                        return Err(perr(
                            line,
                            format!("{{{{{k}}}}} is not supported by berth's templates"),
                        ));
                    }
                    _ => {
                        let pipe = self.pipeline("command", false)?;
                        nodes.push(Node::Action(pipe));
                    }
                },
                Some(t) => return Err(perr(line, format!("unexpected {t:?}"))),
            }
        }
    }

    fn expect_close(&mut self, ctx: &str) -> Result<(), TemplateError> {
        let line = self.line();
        match self.next() {
            Some(Tok::Close) => Ok(()),
            _ => Err(perr(line, format!("unexpected token in {ctx}"))),
        }
    }

    /// After `if`/`range`/`with` (already consumed).
    fn control(&mut self, kw: &str) -> Result<Node, TemplateError> {
        let pipe = self.pipeline(kw, true)?;
        let (body, end, line) = self.list()?;
        let els = match end {
            Stop::Eof => return Err(perr(line, "unexpected EOF")),
            Stop::Closed => Vec::new(),
            Stop::Else => {
                let (els, end2, line2) = self.list()?;
                match end2 {
                    Stop::Closed => els,
                    Stop::Eof => return Err(perr(line2, "unexpected EOF")),
                    _ => return Err(perr(line2, "expected end; found {{else}}")),
                }
            }
            Stop::ElseChain(k) => {
                // `{{else if x}}…{{end}}` is `{{else}}{{if x}}…{{end}}{{end}}`: the inner control
                // consumes the single shared {{end}}.
                vec![self.control(k)?]
            }
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, els),
            "range" => Node::Range(pipe, body, els),
            _ => Node::With(pipe, body, els),
        })
    }

    fn pipeline(&mut self, ctx: &str, _control: bool) -> Result<Pipe, TemplateError> {
        let line = self.line();
        let col = self.toks.get(self.pos).map(|t| t.col).unwrap_or(0);
        let start = self.pos;
        let mut decl = Vec::new();
        let mut assign = false;
        // Look ahead for `$a :=`, `$a, $b :=` or `$a =`.
        if let Some(Tok::Var(v)) = self.peek().cloned() {
            let save = self.pos;
            self.pos += 1;
            let mut vars = vec![v];
            if self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                if let Some(Tok::Var(v2)) = self.peek().cloned() {
                    self.pos += 1;
                    vars.push(v2);
                }
            }
            match self.peek() {
                Some(Tok::Declare) => {
                    self.pos += 1;
                    decl = vars;
                }
                Some(Tok::Assign) => {
                    self.pos += 1;
                    decl = vars;
                    assign = true;
                }
                _ => self.pos = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command()?;
            if cmd.args.is_empty() {
                let l = self.line();
                return Err(perr(l, format!("missing value for {ctx}")));
            }
            cmds.push(cmd);
            match self.peek() {
                Some(Tok::Pipe) => {
                    self.pos += 1;
                }
                Some(Tok::Close) | Some(Tok::RParen) => break,
                None => return Err(perr(self.line(), "unclosed action")),
                Some(t) => return Err(perr(self.line(), format!("unexpected {t:?} in operand"))),
            }
        }
        let end = self.pos;
        if self.peek() == Some(&Tok::Close) {
            self.pos += 1;
        }
        Ok(Pipe {
            decl,
            assign,
            cmds,
            line,
            col,
            text: describe(&self.toks[start..end]),
        })
    }

    fn command(&mut self) -> Result<Cmd, TemplateError> {
        let mut args = Vec::new();
        loop {
            let line = self.line();
            let Some(t) = self.peek().cloned() else { break };
            let arg = match t {
                Tok::Pipe | Tok::Close | Tok::RParen => break,
                Tok::Dot => {
                    self.pos += 1;
                    Arg::Dot
                }
                Tok::Field(first) => {
                    self.pos += 1;
                    let mut path = vec![first];
                    path.extend(self.fields());
                    Arg::Field(path)
                }
                Tok::Chain(_) => return Err(perr(line, "unexpected . after term")),
                Tok::Var(v) => {
                    self.pos += 1;
                    Arg::Var(v, self.fields())
                }
                Tok::Ident(name) => {
                    self.pos += 1;
                    if !(self.known)(&name) {
                        return Err(perr(line, format!("function {name:?} not defined")));
                    }
                    Arg::Ident(name)
                }
                Tok::Str(s) => {
                    self.pos += 1;
                    Arg::Str(s)
                }
                Tok::Int(i) => {
                    self.pos += 1;
                    Arg::Int(i)
                }
                Tok::Float(f) => {
                    self.pos += 1;
                    Arg::Float(f)
                }
                Tok::Bool(b) => {
                    self.pos += 1;
                    Arg::Bool(b)
                }
                Tok::Nil => {
                    self.pos += 1;
                    Arg::Nil
                }
                Tok::LParen => {
                    self.pos += 1;
                    let inner = self.pipeline("parenthesized pipeline", false)?;
                    match self.next() {
                        Some(Tok::RParen) => {}
                        _ => return Err(perr(line, "unclosed left paren")),
                    }
                    Arg::Sub(Box::new(inner), self.fields())
                }
                other => return Err(perr(line, format!("unexpected {other:?} in command"))),
            };
            args.push(arg);
        }
        Ok(Cmd { args })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut f = Vec::new();
        while let Some(Tok::Chain(name)) = self.peek().cloned() {
            f.push(name);
            self.pos += 1;
        }
        f
    }
}

/// Renders tokens back to roughly their source (for error messages).
fn describe(toks: &[Token]) -> String {
    let mut s = String::new();
    for t in toks {
        let piece = match &t.tok {
            Tok::Chain(f) => {
                s.push('.');
                s.push_str(f);
                continue;
            }
            Tok::Field(f) => {
                if !s.is_empty() && !s.ends_with('(') {
                    s.push(' ');
                }
                s.push('.');
                s.push_str(f);
                continue;
            }
            Tok::Dot => ".".to_owned(),
            Tok::Var(v) => v.clone(),
            Tok::Ident(i) => i.clone(),
            Tok::Str(x) => format!("{x:?}"),
            Tok::Int(i) => i.to_string(),
            Tok::Float(f) => f.to_string(),
            Tok::Bool(b) => b.to_string(),
            Tok::Nil => "nil".into(),
            Tok::Pipe => "|".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Declare => ":=".into(),
            Tok::Assign => "=".into(),
            Tok::Comma => ",".into(),
            Tok::Text(_) | Tok::Open | Tok::Close => continue,
        };
        if !s.is_empty() && !s.ends_with('(') && piece != ")" {
            s.push(' ');
        }
        s.push_str(&piece);
    }
    s
}
