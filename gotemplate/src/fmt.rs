//! Go's `fmt.Sprintf`/`Sprint`/`Sprintln` for template values.

use std::fmt::Write as _;

use crate::value::{Value, format_float_g};

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Value::String(_));
        if i > 0 && !is_str && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

/// `fmt.Sprintln`: always spaces, plus a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = args
        .iter()
        .map(Value::to_go_string)
        .collect::<Vec<_>>()
        .join(" ");
    out.push('\n');
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.minus {
        s + &" ".repeat(fill)
    } else if spec.zero && numeric {
        // Zero padding goes after the sign.
        let (sign, rest) = if s.starts_with(['-', '+']) {
            s.split_at(1)
        } else {
            ("", s.as_str())
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        " ".repeat(fill) + &s
    }
}

fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's strconv.Quote (used by sprig `quote`).
pub fn quote(s: &str) -> String {
    go_quote(s)
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        other => format!("%!{verb}({}={})", other.type_name(), other.to_go_string()),
    }
}

fn format_exp(f: f64, prec: usize, upper: bool) -> String {
    let s = format!("{:.*e}", prec, f);
    // Rust prints 1.5e6; Go prints 1.5e+06.
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    let r = format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    if upper { r.to_uppercase() } else { r }
}

fn format_one(verb: char, spec: &Spec, v: &Value) -> String {
    let sign = |s: String, neg: bool| -> String {
        if neg {
            s
        } else if spec.plus {
            format!("+{s}")
        } else if spec.space {
            format!(" {s}")
        } else {
            s
        }
    };
    match verb {
        'v' => {
            let s = match v {
                Value::Nil => "<nil>".to_string(),
                Value::Float(f) => sign(format_float_g(*f), *f < 0.0),
                Value::Int(i) | Value::Int64(i) => sign(i.to_string(), *i < 0),
                other if spec.sharp => go_syntax(other, true),
                other => other.to_go_string(),
            };
            pad(
                s,
                spec,
                matches!(v, Value::Int(_) | Value::Int64(_) | Value::Float(_)),
            )
        }
        's' => match v {
            Value::String(s) => {
                let s = match spec.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.clone(),
                };
                pad(s, spec, false)
            }
            Value::Bytes(b) => pad(String::from_utf8_lossy(b).into_owned(), spec, false),
            Value::List(_) | Value::Map(_) => pad(v.to_go_string(), spec, false),
            Value::Nil => "%!s(<nil>)".into(),
            other => bad_verb('s', other),
        },
        'q' => match v {
            Value::String(s) => pad(go_quote(s), spec, false),
            Value::Int(i) | Value::Int64(i) => pad(
                format!("'{}'", char::from_u32(*i as u32).unwrap_or('\u{fffd}')),
                spec,
                false,
            ),
            other => bad_verb('q', other),
        },
        'd' => match v {
            Value::Int(i) | Value::Int64(i) => pad(sign(i.to_string(), *i < 0), spec, true),
            Value::List(l) => format!(
                "[{}]",
                l.iter()
                    .map(|x| format_one('d', spec, x))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            other => bad_verb('d', other),
        },
        'x' | 'X' | 'o' | 'b' => match v {
            Value::Int(i) | Value::Int64(i) => {
                let s = match verb {
                    'x' => format!("{:x}", i.unsigned_abs()),
                    'X' => format!("{:X}", i.unsigned_abs()),
                    'o' => format!("{:o}", i.unsigned_abs()),
                    _ => format!("{:b}", i.unsigned_abs()),
                };
                let s = if *i < 0 { format!("-{s}") } else { s };
                pad(sign(s, *i < 0), spec, true)
            }
            Value::String(s) if verb != 'o' && verb != 'b' => {
                let s: String = s
                    .bytes()
                    .map(|b| {
                        if verb == 'x' {
                            format!("{b:02x}")
                        } else {
                            format!("{b:02X}")
                        }
                    })
                    .collect();
                pad(s, spec, false)
            }
            other => bad_verb(verb, other),
        },
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
            let f = match v {
                Value::Float(f) => *f,
                other => return bad_verb(verb, other),
            };
            let s = match verb {
                'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f),
                'e' | 'E' => format_exp(f, spec.prec.unwrap_or(6), verb == 'E'),
                _ => match spec.prec {
                    None => format_float_g(f),
                    Some(p) => {
                        // %.Ng: N significant digits.
                        let p = p.max(1);
                        let e = format_exp(f, p - 1, false);
                        let exp: i32 = e
                            .split_once('e')
                            .and_then(|(_, x)| x.parse().ok())
                            .unwrap_or(0);
                        if exp < -4 || exp >= p as i32 {
                            let (m, x) = e.split_once('e').unwrap_or((&e, ""));
                            let m = if m.contains('.') {
                                m.trim_end_matches('0').trim_end_matches('.')
                            } else {
                                m
                            };
                            format!("{m}e{x}")
                        } else {
                            let decimals = (p as i32 - 1 - exp).max(0) as usize;
                            let s = format!("{:.*}", decimals, f);
                            if s.contains('.') {
                                s.trim_end_matches('0').trim_end_matches('.').to_string()
                            } else {
                                s
                            }
                        }
                    }
                },
            };
            pad(sign(s, f < 0.0), spec, true)
        }
        't' => match v {
            Value::Bool(b) => pad(b.to_string(), spec, false),
            other => bad_verb('t', other),
        },
        'c' => match v {
            Value::Int(i) | Value::Int64(i) => pad(
                char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
                spec,
                false,
            ),
            other => bad_verb('c', other),
        },
        'T' => pad(v.type_name(), spec, false),
        'U' => match v {
            Value::Int(i) | Value::Int64(i) => {
                let mut s = format!("U+{:04X}", i);
                if spec.sharp
                    && let Some(c) = u32::try_from(*i).ok().and_then(char::from_u32)
                {
                    s.push_str(&format!(" '{c}'"));
                }
                pad(s, spec, false)
            }
            other => bad_verb('U', other),
        },
        other => bad_verb(other, v),
    }
}

/// What Go's `%#v` prints: the value in Go syntax. `top` is false inside a
/// list or map, whose elements are interfaces (a nil one is `interface {}(nil)`).
fn go_syntax(v: &Value, top: bool) -> String {
    match v {
        Value::Nil if top => "<nil>".into(),
        Value::Nil => "interface {}(nil)".into(),
        Value::Float(f) => crate::value::format_float_g(*f),
        Value::String(s) => go_quote(s),
        Value::Bytes(b) => format!(
            "[]byte{{{}}}",
            b.iter()
                .map(|x| format!("0x{x:x}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::List(items) => format!(
            "[]interface {{}}{{{}}}",
            items
                .iter()
                .map(|i| go_syntax(i, false))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Map(m) => format!(
            "map[string]interface {{}}{{{}}}",
            m.borrow()
                .iter()
                .map(|(k, i)| format!("{}:{}", go_quote(k), go_syntax(i, false)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_go_string(),
    }
}

/// `fmt.Sprintf` with Go's verbs, flags, width and precision.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut argi = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while i < chars.len() {
            match chars[i] {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                _ => break,
            }
            i += 1;
        }
        let read_num = |i: &mut usize, argi: &mut usize| -> Option<usize> {
            if *i < chars.len() && chars[*i] == '*' {
                *i += 1;
                let n = match args.get(*argi) {
                    Some(Value::Int(n) | Value::Int64(n)) => Some((*n).max(0) as usize),
                    _ => None,
                };
                *argi += 1;
                return n;
            }
            let start = *i;
            while *i < chars.len() && chars[*i].is_ascii_digit() {
                *i += 1;
            }
            if *i > start {
                chars[start..*i].iter().collect::<String>().parse().ok()
            } else {
                None
            }
        };
        // Go refuses a width or precision past a million (BADWIDTH/BADPREC).
        let read_num =
            |i: &mut usize, argi: &mut usize| read_num(i, argi).filter(|n| *n <= 1_000_000);
        spec.width = read_num(&mut i, &mut argi);
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            spec.prec = Some(read_num(&mut i, &mut argi).unwrap_or(0));
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            Some(v) => out.push_str(&format_one(verb, &spec, v)),
            None => {
                let _ = write!(out, "%!{verb}(MISSING)");
            }
        }
        argi += 1;
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extras: Vec<String> = args[argi..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_string(),
                a => format!("{}={}", a.type_name(), a.to_go_string()),
            })
            .collect();
        out.push_str(&extras.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprintf_matches_go() {
        // Outputs checked with Go's fmt.Sprintf.
        let s = |v: &str| Value::str(v);
        assert_eq!(sprintf("%s-%d", &[s("a"), Value::Int(3)]), "a-3");
        assert_eq!(sprintf("%v", &[Value::Float(1000000.0)]), "1e+06");
        assert_eq!(
            sprintf("%05d|%-4s|%q", &[Value::Int(42), s("ab"), s("x\"y")]),
            "00042|ab  |\"x\\\"y\""
        );
        assert_eq!(sprintf("%d", &[s("a")]), "%!d(string=a)");
        assert_eq!(sprintf("%s %s", &[s("a")]), "a %!s(MISSING)");
        assert_eq!(sprintf("%s", &[s("a"), Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(sprintf("%.2f", &[Value::Float(1.23456)]), "1.23");
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), s("a"), Value::Int(3)]),
            "1 2a3"
        );
    }
}
