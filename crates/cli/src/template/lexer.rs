//! Splits a Go text/template into text and action tokens (`{{ … }}`, with `{{-`/`-}}` trimming
//! and `{{/* comments */}}`).

use super::TemplateError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Literal text between actions.
    Text(String),
    /// `{{` (after trimming was applied to the text before it).
    Open,
    /// `}}`.
    Close,
    /// `.Name` starting a field chain on dot.
    Field(String),
    /// `.Name` attached to what precedes it (`.A.B`'s `.B`, `$x.B`, `(…).B`).
    Chain(String),
    /// `.` alone.
    Dot,
    /// `$name` or `$`.
    Var(String),
    /// A bare word: a function name or keyword (`if`, `range`, `end`, …).
    Ident(String),
    /// A string literal (already unquoted).
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `|`.
    Pipe,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `,`.
    Comma,
}

/// A token and the line it starts on (Go reports `template: :LINE: …`).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// 1-based line.
    pub line: usize,
    /// 0-based byte column of the token in its line (Go's `:LINE:COL` in exec errors).
    pub col: usize,
}

fn err(line: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError::Parse(format!("template: :{line}: {}", msg.into()))
}

/// Tokenizes `src`.
pub fn lex(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1usize;
    let mut trim_next_text = false;
    while !rest.is_empty() {
        let open = rest.find("{{");
        let text_end = open.unwrap_or(rest.len());
        let mut text = &rest[..text_end];
        if trim_next_text {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let after = &rest[text_end..];
        // `{{- ` trims the text before it.
        let trim_left = after.starts_with("{{- ");
        if trim_left {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
        }
        if !text.is_empty() {
            out.push(Token {
                tok: Tok::Text(text.to_owned()),
                line,
                col: 0,
            });
        }
        line += rest[..text_end].matches('\n').count();
        let Some(_) = open else { break };
        let mut body = &after[2..];
        if trim_left {
            body = &body[2..];
        }
        // Comments.
        let trimmed = body.trim_start();
        if let Some(c) = trimmed.strip_prefix("/*") {
            let Some(end) = c.find("*/") else {
                return Err(err(line, "unclosed comment"));
            };
            let mut after_c = c[end + 2..].trim_start_matches(' ');
            let mut trim_right = false;
            if let Some(a) = after_c.strip_prefix("-}}") {
                after_c = a;
                trim_right = true;
            } else if let Some(a) = after_c.strip_prefix("}}") {
                after_c = a;
            } else {
                return Err(err(line, "comment ends before closing delimiter"));
            }
            line += c[..end].matches('\n').count();
            trim_next_text = trim_right;
            rest = after_c;
            continue;
        }
        out.push(Token {
            tok: Tok::Open,
            line,
            col: 0,
        });
        let (consumed, trim_right) = lex_action(src, body, &mut line, &mut out)?;
        trim_next_text = trim_right;
        rest = &body[consumed..];
    }
    Ok(out)
}

/// Lexes inside an action up to and including `}}`; returns bytes consumed and whether it was `-}}`.
fn lex_action(
    src: &str,
    s: &str,
    line: &mut usize,
    out: &mut Vec<Token>,
) -> Result<(usize, bool), TemplateError> {
    let b = s.as_bytes();
    let base = src.len() - s.len();
    let col_of = |i: usize| {
        let abs = base + i;
        abs - src[..abs].rfind('\n').map(|p| p + 1).unwrap_or(0)
    };
    let mut i = 0;
    let mut depth = 0i32;
    let mut attach = false;
    loop {
        let was_attach = std::mem::replace(&mut attach, false);
        if i >= b.len() {
            return Err(err(*line, "unclosed action"));
        }
        let c = b[i];
        if s[i..].starts_with(" -}}") {
            out.push(Token {
                tok: Tok::Close,
                line: *line,
                col: col_of(i),
            });
            return Ok((i + 4, true));
        }
        if s[i..].starts_with("}}") {
            if depth > 0 {
                return Err(err(*line, "unclosed left paren"));
            }
            out.push(Token {
                tok: Tok::Close,
                line: *line,
                col: col_of(i),
            });
            return Ok((i + 2, false));
        }
        let cur = *line;
        let col = col_of(i);
        let push = |out: &mut Vec<Token>, tok| {
            out.push(Token {
                tok,
                line: cur,
                col,
            })
        };
        match c {
            b'\n' => {
                *line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'|' => {
                push(out, Tok::Pipe);
                i += 1;
            }
            b'(' => {
                depth += 1;
                push(out, Tok::LParen);
                i += 1;
            }
            b')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(err(*line, "unexpected right paren"));
                }
                push(out, Tok::RParen);
                attach = true;
                i += 1;
            }
            b',' => {
                push(out, Tok::Comma);
                i += 1;
            }
            b':' => {
                if b.get(i + 1) == Some(&b'=') {
                    push(out, Tok::Declare);
                    i += 2;
                } else {
                    return Err(err(*line, "expected :="));
                }
            }
            b'=' => {
                push(out, Tok::Assign);
                i += 1;
            }
            b'"' => {
                let (v, n) = lex_quoted(&s[i..], *line)?;
                push(out, Tok::Str(v));
                i += n;
            }
            b'`' => {
                let Some(end) = s[i + 1..].find('`') else {
                    return Err(err(*line, "unterminated raw quoted string"));
                };
                let v = &s[i + 1..i + 1 + end];
                *line += v.matches('\n').count();
                push(out, Tok::Str(v.to_owned()));
                i += end + 2;
            }
            b'\'' => {
                let rest = &s[i + 1..];
                let mut chars = rest.chars();
                let ch = match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(c) => c,
                        None => return Err(err(*line, "unterminated character constant")),
                    },
                    Some(c) => c,
                    None => return Err(err(*line, "unterminated character constant")),
                };
                if chars.next() != Some('\'') {
                    return Err(err(*line, "unterminated character constant"));
                }
                let used = rest.len() - chars.as_str().len();
                push(out, Tok::Int(ch as i64));
                i += 1 + used;
            }
            b'.' if b
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                let n = word_len(&b[i + 1..]);
                let name = s[i + 1..i + 1 + n].to_owned();
                push(
                    out,
                    if was_attach {
                        Tok::Chain(name)
                    } else {
                        Tok::Field(name)
                    },
                );
                attach = true;
                i += 1 + n;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let n = number_len(&b[i..]);
                let v: f64 = s[i..i + n]
                    .parse()
                    .map_err(|_| err(*line, format!("bad number syntax: {:?}", &s[i..i + n])))?;
                push(out, Tok::Float(v));
                i += n;
            }
            b'.' => {
                push(out, Tok::Dot);
                i += 1;
            }
            b'$' => {
                let n = word_len(&b[i + 1..]);
                push(out, Tok::Var(s[i..i + 1 + n].to_owned()));
                attach = true;
                i += 1 + n;
            }
            c if c.is_ascii_digit()
                || ((c == b'-' || c == b'+') && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let n = number_len(&b[i..]);
                let text = &s[i..i + n];
                let tok = if let Ok(v) = text.parse::<i64>() {
                    Tok::Int(v)
                } else if let Some(h) = text.strip_prefix("0x") {
                    Tok::Int(
                        i64::from_str_radix(h, 16)
                            .map_err(|_| err(*line, format!("bad number syntax: {text:?}")))?,
                    )
                } else {
                    Tok::Float(
                        text.parse()
                            .map_err(|_| err(*line, format!("bad number syntax: {text:?}")))?,
                    )
                };
                push(out, tok);
                i += n;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let n = word_len(&b[i..]);
                let w = &s[i..i + n];
                let tok = match w {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(w.to_owned()),
                };
                push(out, tok);
                i += n;
                // A field chain directly after an identifier or paren is Go's `(x).Field`.
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(err(*line, format!("unexpected {ch:?} in command")));
            }
        }
    }
}

fn word_len(b: &[u8]) -> usize {
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

fn number_len(b: &[u8]) -> usize {
    let mut n = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        n = 1;
    }
    n + b[n..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'.' || **c == b'_')
        .count()
}

fn lex_quoted(s: &str, line: usize) -> Result<(String, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((_, '0')) => out.push('\0'),
                Some((_, c)) => {
                    return Err(err(line, format!("invalid syntax: unknown escape \\{c}")));
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(err(line, "unterminated quoted string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_fields_and_pipes() {
        assert_eq!(
            toks("a {{.State.Pid | printf \"%d\"}} b"),
            vec![
                Tok::Text("a ".into()),
                Tok::Open,
                Tok::Field("State".into()),
                Tok::Chain("Pid".into()),
                Tok::Pipe,
                Tok::Ident("printf".into()),
                Tok::Str("%d".into()),
                Tok::Close,
                Tok::Text(" b".into()),
            ]
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(
            toks("a  {{- .X -}}  b {{/* c */}}d"),
            vec![
                Tok::Text("a".into()),
                Tok::Open,
                Tok::Field("X".into()),
                Tok::Close,
                Tok::Text("b ".into()),
                Tok::Text("d".into()),
            ]
        );
    }

    #[test]
    fn unclosed_action_is_gos_message() {
        assert_eq!(
            lex("{{.Foo").unwrap_err().to_string(),
            "template: :1: unclosed action"
        );
        assert_eq!(
            lex("x\n{{\"a}}").unwrap_err().to_string(),
            "template: :2: unterminated quoted string"
        );
    }

    #[test]
    fn variables_numbers_declarations() {
        assert_eq!(
            toks("{{range $i, $e := .L}}{{$e}} -1 2.5{{end}}"),
            vec![
                Tok::Open,
                Tok::Ident("range".into()),
                Tok::Var("$i".into()),
                Tok::Comma,
                Tok::Var("$e".into()),
                Tok::Declare,
                Tok::Field("L".into()),
                Tok::Close,
                Tok::Open,
                Tok::Var("$e".into()),
                Tok::Close,
                Tok::Text(" -1 2.5".into()),
                Tok::Open,
                Tok::Ident("end".into()),
                Tok::Close,
            ]
        );
    }
}
