//! Template functions: Go's builtins (`and or not len index print printf println eq ne lt le gt
//! ge slice`) and Docker's (`json join split title lower upper pad truncate`).

use super::value::Value;

const NAMES: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "slice", "json", "join", "split", "title", "lower", "upper", "pad", "truncate", "html",
    "urlquery", "js", "call",
];

/// Whether `name` is a function (Go checks this while parsing).
pub fn known(name: &str) -> bool {
    NAMES.contains(&name)
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn as_string(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("wrong type for value; expected string; got {}", v.kind()))
}

/// Methods of Docker's formatter contexts that take arguments: `Label "key"` on a row whose
/// `Labels` field is Docker's `k=v,k2=v2` text. `None` when `name` is no such method.
pub fn method(recv: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    if name != "Label" {
        return None;
    }
    let labels = recv.get("Labels")?.as_str()?;
    let [key] = args else {
        return Some(Err(format!(
            "wrong number of args for Label: want 1 got {}",
            args.len()
        )));
    };
    let Some(key) = key.as_str() else {
        return Some(Err(format!(
            "wrong type for value; expected string; got {}",
            key.kind()
        )));
    };
    let found = labels
        .split(',')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    Some(Ok(Value::Str(found)))
}

/// Docker's header functions: these return their first argument when rendering a table header.
pub fn passes_header(name: &str) -> bool {
    matches!(
        name,
        "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate" | "pad"
    )
}

/// Calls function `name`.
pub fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "and" => {
            if args.is_empty() {
                return Err("wrong number of args for and: want at least 1 got 0".into());
            }
            Ok(args
                .iter()
                .find(|a| !a.truthy())
                .unwrap_or(&args[args.len() - 1])
                .clone())
        }
        "or" => {
            if args.is_empty() {
                return Err("wrong number of args for or: want at least 1 got 0".into());
            }
            Ok(args
                .iter()
                .find(|a| a.truthy())
                .unwrap_or(&args[args.len() - 1])
                .clone())
        }
        "not" => {
            want(name, &args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            want(name, &args, 1)?;
            let n = match &args[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                other => return Err(format!("len of type {}", other.kind())),
            };
            Ok(Value::Int(n as i64))
        }
        "index" => {
            let mut it = args.into_iter();
            let mut cur = it
                .next()
                .ok_or("wrong number of args for index: want at least 1 got 0")?;
            for k in it {
                cur = match (&cur, &k) {
                    (Value::Map(_), Value::Str(s)) => cur.get(s).cloned().unwrap_or(Value::Missing),
                    (Value::List(l), k) => {
                        let i = k.as_i64().ok_or_else(|| {
                            format!("cannot index slice/array with type {}", k.kind())
                        })?;
                        let len = l.len();
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| l.get(i).cloned())
                            .ok_or_else(|| format!("index out of range: {i} (len {len})"))?
                    }
                    (Value::Str(s), k) => {
                        let i = k
                            .as_i64()
                            .ok_or_else(|| format!("cannot index string with type {}", k.kind()))?;
                        let b = usize::try_from(i)
                            .ok()
                            .and_then(|i| s.as_bytes().get(i))
                            .ok_or_else(|| format!("index out of range: {i}"))?;
                        Value::Int(i64::from(*b))
                    }
                    (Value::Null | Value::Missing, _) => return Err("index of untyped nil".into()),
                    (c, _) => return Err(format!("can't index item of type {}", c.kind())),
                };
            }
            Ok(cur)
        }
        "slice" => {
            let mut it = args.into_iter();
            let v = it.next().ok_or("wrong number of args for slice")?;
            let idx: Vec<usize> = it
                .map(|a| {
                    a.as_i64()
                        .and_then(|i| usize::try_from(i).ok())
                        .ok_or("invalid slice index".to_owned())
                })
                .collect::<Result<_, _>>()?;
            match v {
                Value::Str(s) => {
                    let (a, b) = (
                        idx.first().copied().unwrap_or(0),
                        idx.get(1).copied().unwrap_or(s.len()),
                    );
                    s.get(a..b)
                        .map(|x| Value::Str(x.to_owned()))
                        .ok_or_else(|| "slice index out of range".into())
                }
                Value::List(l) => {
                    let (a, b) = (
                        idx.first().copied().unwrap_or(0),
                        idx.get(1).copied().unwrap_or(l.len()),
                    );
                    l.get(a..b)
                        .map(|x| Value::List(x.to_vec()))
                        .ok_or_else(|| "slice index out of range".into())
                }
                other => Err(format!("can't slice item of type {}", other.kind())),
            }
        }
        "print" => Ok(Value::Str(go_sprint(&args))),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::go_string).collect();
            Ok(Value::Str(parts.join(" ") + "\n"))
        }
        "printf" => {
            let mut it = args.into_iter();
            let f = it
                .next()
                .ok_or("wrong number of args for printf: want at least 1 got 0")?;
            let f = as_string(&f)?.to_owned();
            Ok(Value::Str(sprintf(&f, &it.collect::<Vec<_>>())))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let a = &args[0];
            for b in &args[1..] {
                if compare(a, b)? == std::cmp::Ordering::Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(name, &args, 2)?;
            let o = compare(&args[0], &args[1])?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match name {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "json" => {
            want(name, &args, 1)?;
            Ok(Value::Str(args[0].to_json()))
        }
        "join" => {
            want(name, &args, 2)?;
            let sep = as_string(&args[1])?;
            match &args[0] {
                Value::List(l) => Ok(Value::Str(
                    l.iter().map(Value::go_string).collect::<Vec<_>>().join(sep),
                )),
                Value::Null | Value::Missing => Ok(Value::Str(String::new())),
                other => Err(format!(
                    "wrong type for value; expected []string; got {}",
                    other.kind()
                )),
            }
        }
        "split" => {
            want(name, &args, 2)?;
            let s = as_string(&args[0])?;
            let sep = as_string(&args[1])?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                s.split(sep).map(Value::from).collect()
            };
            Ok(Value::List(parts))
        }
        "title" => {
            want(name, &args, 1)?;
            Ok(Value::Str(title(as_string(&args[0])?)))
        }
        "lower" => {
            want(name, &args, 1)?;
            Ok(Value::Str(as_string(&args[0])?.to_lowercase()))
        }
        "upper" => {
            want(name, &args, 1)?;
            Ok(Value::Str(as_string(&args[0])?.to_uppercase()))
        }
        "pad" => {
            want(name, &args, 3)?;
            let s = as_string(&args[0])?;
            let l = args[1].as_i64().unwrap_or(0).max(0) as usize;
            let r = args[2].as_i64().unwrap_or(0).max(0) as usize;
            Ok(Value::Str(format!("{}{s}{}", " ".repeat(l), " ".repeat(r))))
        }
        "truncate" => {
            want(name, &args, 2)?;
            let s = as_string(&args[0])?;
            let n = args[1]
                .as_i64()
                .ok_or("truncate length must be an integer")?
                .max(0) as usize;
            Ok(Value::Str(s.chars().take(n).collect()))
        }
        "html" | "js" | "urlquery" => Ok(Value::Str(go_sprint(&args))),
        other => Err(format!("function {other:?} not supported")),
    }
}

/// Go's `strings.Title` (deprecated but what Docker uses): upper-cases the first letter of
/// every word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use Value::*;
    let num = |v: &Value| -> Option<f64> {
        match v {
            Int(i) => Some(*i as f64),
            Uint(u) => Some(*u as f64),
            Float(f) => Some(*f),
            _ => None,
        }
    };
    match (a, b) {
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        (Bool(x), Bool(y)) => Ok(x.cmp(y)),
        (Null | Missing, Null | Missing) => Ok(std::cmp::Ordering::Equal),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| "incomparable numbers".to_owned()),
            _ => Err("incompatible types for comparison".into()),
        },
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut s = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            s.push(' ');
        }
        s.push_str(&a.go_string());
    }
    s
}

/// A subset of Go's `fmt.Sprintf`: flags `-+ 0#`, width, precision, verbs `v s d q x X f e g t c %`.
pub fn sprintf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = f.chars().peekable();
    let mut argi = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space, mut sharp) =
            (false, false, false, false, false);
        while let Some(&fc) = chars.peek() {
            match fc {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut width: Option<usize> = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0) * 10 + d as usize);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                p = p * 10 + d as usize;
                chars.next();
            }
            prec = Some(p);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let body = match (verb, arg) {
            ('v' | 's', _) => {
                let s = arg.go_string();
                match (verb, prec) {
                    ('s', Some(p)) => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            ('q', Value::Str(s)) => format!("{s:?}"),
            ('d', v) if v.as_i64().is_some() && !matches!(v, Value::Float(_)) => {
                let i = v.as_i64().unwrap_or(0);
                if plus && i >= 0 {
                    format!("+{i}")
                } else if space && i >= 0 {
                    format!(" {i}")
                } else {
                    i.to_string()
                }
            }
            ('x', Value::Int(i)) => {
                if sharp {
                    format!("{i:#x}")
                } else {
                    format!("{i:x}")
                }
            }
            ('X', Value::Int(i)) => {
                if sharp {
                    format!("{i:#X}")
                } else {
                    format!("{i:X}")
                }
            }
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('o', Value::Int(i)) => format!("{i:o}"),
            ('b', Value::Int(i)) => format!("{i:b}"),
            ('c', Value::Int(i)) => u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .map(String::from)
                .unwrap_or_default(),
            ('t', Value::Bool(b)) => b.to_string(),
            ('f' | 'F' | 'e' | 'g', v)
                if matches!(v, Value::Int(_) | Value::Uint(_) | Value::Float(_)) =>
            {
                let x = match v {
                    Value::Int(i) => *i as f64,
                    Value::Uint(u) => *u as f64,
                    Value::Float(f) => *f,
                    _ => 0.0,
                };
                let s = match verb {
                    'e' => {
                        let s = format!("{:.*e}", prec.unwrap_or(6), x);
                        match s.split_once('e') {
                            Some((m, e)) => {
                                let e: i32 = e.parse().unwrap_or(0);
                                format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
                            }
                            None => s,
                        }
                    }
                    'g' => super::value::go_float(x),
                    _ => format!("{:.*}", prec.unwrap_or(6), x),
                };
                if plus && x >= 0.0 { format!("+{s}") } else { s }
            }
            (v, a) => format!("%!{v}({}={})", go_type_name(a), a.go_string()),
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if minus {
                    out.push_str(&body);
                    out.push_str(&" ".repeat(pad));
                } else if zero && !matches!(verb, 's' | 'v' | 'q') {
                    let (sign, digits) = match body.strip_prefix(['-', '+']) {
                        Some(d) => (&body[..1], d),
                        None => ("", body.as_str()),
                    };
                    out.push_str(sign);
                    out.push_str(&"0".repeat(pad));
                    out.push_str(digits);
                } else {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", go_type_name(a), a.go_string()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "string",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint64",
        Value::Float(_) => "float64",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        Value::Null | Value::Missing => "<nil>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_verbs() {
        let s = |x: &str| Value::str(x);
        assert_eq!(sprintf("%s-%d", &[s("a"), Value::Int(3)]), "a-3");
        assert_eq!(sprintf("%-5s|%5s|", &[s("ab"), s("cd")]), "ab   |   cd|");
        assert_eq!(
            sprintf(
                "%05d %x %.2f %q %%",
                &[
                    Value::Int(42),
                    Value::Int(255),
                    Value::Float(1.23456),
                    s("q")
                ]
            ),
            "00042 ff 1.23 \"q\" %"
        );
        assert_eq!(sprintf("%d", &[s("x")]), "%!d(string=x)");
        assert_eq!(sprintf("%s", &[]), "%!s(MISSING)");
        assert_eq!(sprintf("a", &[Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(sprintf("%.3s", &[s("abcdef")]), "abc");
    }

    #[test]
    fn title_like_go() {
        assert_eq!(title("hello wORLD foo-bar"), "Hello WORLD Foo-Bar");
    }
}
