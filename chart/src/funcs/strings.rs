//! sprig's string functions.

use std::collections::BTreeMap;

use gotemplate::fmt::quote;
use gotemplate::func::arg::{err, int, string};
use gotemplate::{Func, FuncError, FuncResult, Param as P, Value};

use super::conversions::strval;

pub(super) const FUNCS: &[Func] = &[
    Func::go("hello", &[], None, |_| Ok(Value::str("Hello!"))),
    Func::go("quote", &[], Some(P::Any), |a| {
        Ok(Value::String(joined(a, |s| quote(&s))))
    }),
    Func::go("squote", &[], Some(P::Any), |a| {
        Ok(Value::String(joined(a, |s| format!("'{s}'"))))
    }),
    Func::go("cat", &[], Some(P::Any), |a| {
        Ok(Value::String(joined(a, |s| s)))
    }),
    Func::go("indent", &[P::Int, P::Str], None, |a| {
        Ok(Value::String(indent(&a[0], &a[1])?))
    }),
    Func::go("nindent", &[P::Int, P::Str], None, |a| {
        Ok(Value::String(format!("\n{}", indent(&a[0], &a[1])?)))
    }),
    Func::go("trim", &[P::Str], None, |a| {
        Ok(Value::str(string(&a[0])?.trim()))
    }),
    Func::go("trimAll", &[P::Str, P::Str], None, trim_all),
    Func::go("trimall", &[P::Str, P::Str], None, trim_all),
    Func::go("trimPrefix", &[P::Str, P::Str], None, |a| {
        let (prefix, s) = (string(&a[0])?, string(&a[1])?);
        Ok(Value::str(s.strip_prefix(prefix.as_str()).unwrap_or(&s)))
    }),
    Func::go("trimSuffix", &[P::Str, P::Str], None, |a| {
        let (suffix, s) = (string(&a[0])?, string(&a[1])?);
        Ok(Value::str(s.strip_suffix(suffix.as_str()).unwrap_or(&s)))
    }),
    Func::go("trunc", &[P::Int, P::Str], None, trunc),
    Func::go("upper", &[P::Str], None, |a| {
        Ok(Value::String(string(&a[0])?.to_uppercase()))
    }),
    Func::go("lower", &[P::Str], None, |a| {
        Ok(Value::String(string(&a[0])?.to_lowercase()))
    }),
    Func::go("title", &[P::Str], None, |a| {
        Ok(Value::String(title(&string(&a[0])?)))
    }),
    Func::go("untitle", &[P::Str], None, untitle),
    Func::go("replace", &[P::Str, P::Str, P::Str], None, |a| {
        let (old, new, s) = (string(&a[0])?, string(&a[1])?, string(&a[2])?);
        Ok(Value::String(s.replace(&old, &new)))
    }),
    Func::go("contains", &[P::Str, P::Str], None, |a| {
        Ok(Value::Bool(string(&a[1])?.contains(&string(&a[0])?)))
    }),
    Func::go("hasPrefix", &[P::Str, P::Str], None, |a| {
        Ok(Value::Bool(string(&a[1])?.starts_with(&string(&a[0])?)))
    }),
    Func::go("hasSuffix", &[P::Str, P::Str], None, |a| {
        Ok(Value::Bool(string(&a[1])?.ends_with(&string(&a[0])?)))
    }),
    Func::go("repeat", &[P::Int, P::Str], None, repeat),
    Func::go("substr", &[P::Int, P::Int, P::Str], None, substr),
    Func::go("nospace", &[P::Str], None, |a| {
        Ok(Value::String(
            string(&a[0])?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        ))
    }),
    Func::go("abbrev", &[P::Int, P::Str], None, abbrev),
    Func::go("abbrevboth", &[P::Int, P::Int, P::Str], None, |a| {
        Ok(Value::String(abbrev_both(
            int(&a[0])?,
            int(&a[1])?,
            &string(&a[2])?,
        )))
    }),
    Func::go("plural", &[P::Str, P::Str, P::Int], None, |a| {
        Ok(Value::String(if int(&a[2])? == 1 {
            string(&a[0])?
        } else {
            string(&a[1])?
        }))
    }),
    Func::go("snakecase", &[P::Str], None, |a| {
        Ok(Value::String(separated(&string(&a[0])?, '_')))
    }),
    Func::go("kebabcase", &[P::Str], None, |a| {
        Ok(Value::String(separated(&string(&a[0])?, '-')))
    }),
    Func::go("camelcase", &[P::Str], None, |a| {
        Ok(Value::String(camelcase(&string(&a[0])?)))
    }),
    Func::go("swapcase", &[P::Str], None, |a| {
        Ok(Value::String(swapcase(&string(&a[0])?)))
    }),
    Func::go("initials", &[P::Str], None, |a| {
        Ok(Value::String(
            string(&a[0])?
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect(),
        ))
    }),
    Func::go("wrap", &[P::Int, P::Str], None, |a| {
        Ok(Value::String(wrap(
            &string(&a[1])?,
            int(&a[0])?,
            "\n",
            false,
        )))
    }),
    Func::go("wrapWith", &[P::Int, P::Str, P::Str], None, |a| {
        Ok(Value::String(wrap(
            &string(&a[2])?,
            int(&a[0])?,
            &string(&a[1])?,
            true,
        )))
    }),
    Func::go("join", &[P::Str, P::Any], None, join),
    Func::go("split", &[P::Str, P::Str], None, |a| {
        let (sep, s) = (string(&a[0])?, string(&a[1])?);
        Ok(numbered_parts(go_split(&s, &sep).into_iter()))
    }),
    Func::go("splitList", &[P::Str, P::Str], None, |a| {
        let (sep, s) = (string(&a[0])?, string(&a[1])?);
        let parts = go_split(&s, &sep);
        Ok(Value::list(parts.into_iter().map(Value::String).collect()))
    }),
    Func::go("splitn", &[P::Str, P::Int, P::Str], None, splitn),
];

/// The non-nil arguments as strings, each through `each`, joined by spaces.
fn joined(a: &[Value], each: impl Fn(String) -> String) -> String {
    a.iter()
        .filter(|v| !v.is_nil())
        .map(|v| each(strval(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Largest string `repeat`, `indent` and `nindent` make: past it Go would
/// fail (an overflow) or exhaust the memory; berth fails with this limit.
const MAX_REPEAT_BYTES: usize = 64 << 20;

/// Go's strings.Repeat, failing as it does on a negative count, on an
/// output length past Go's int and on one past what Go can allocate; and
/// on an output past [`MAX_REPEAT_BYTES`].
fn go_repeat(s: &str, count: i64) -> Result<String, gotemplate::FuncError> {
    let count =
        usize::try_from(count).map_err(|_| FuncError::new("strings: negative Repeat count"))?;
    // Go's own test for an output past its int (go1.26).
    if count > 0 && s.len() > (i64::MAX as usize) / count {
        return err("strings: Repeat output length overflow");
    }
    // Past Go's largest allocation (1 << 48 bytes), its make panics.
    const GO_MAX_ALLOC: usize = 1 << 48;
    match s.len().checked_mul(count) {
        Some(n) if n > GO_MAX_ALLOC => err("runtime error: makeslice: len out of range"),
        None => err("strings: Repeat output length overflow"),
        Some(n) if n > MAX_REPEAT_BYTES => err(format!(
            "strings: Repeat output of {n} bytes is past berth's limit of {MAX_REPEAT_BYTES} bytes"
        )),
        Some(_) => Ok(s.repeat(count)),
    }
}

fn indent(spaces: &Value, text: &Value) -> Result<String, gotemplate::FuncError> {
    let pad = go_repeat(" ", int(spaces)?)?;
    let text = string(text)?;
    Ok(format!("{pad}{}", text.replace('\n', &format!("\n{pad}"))))
}

fn trim_all(a: &[Value]) -> FuncResult {
    let cut: Vec<char> = string(&a[0])?.chars().collect();
    Ok(Value::str(
        string(&a[1])?.trim_matches(|c| cut.contains(&c)),
    ))
}

/// The largest char boundary of `s` at or below `idx`.
fn floor_boundary(s: &str, idx: usize) -> usize {
    let mut idx = idx.min(s.len());
    while !s.is_char_boundary(idx) {
        idx -= 1;
    }
    idx
}

fn trunc(a: &[Value]) -> FuncResult {
    let (c, s) = (int(&a[0])?, string(&a[1])?);
    let len = s.len() as i64;
    let cut = if c < 0 && len + c > 0 {
        &s[floor_boundary(&s, (len + c) as usize)..]
    } else if c >= 0 && len > c {
        &s[..floor_boundary(&s, c as usize)]
    } else {
        &s[..]
    };
    Ok(Value::str(cut))
}

/// Go's strings.Title: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn untitle(a: &[Value]) -> FuncResult {
    let mut out = String::new();
    let mut prev_space = true;
    for c in string(&a[0])?.chars() {
        if prev_space {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        prev_space = c.is_whitespace();
    }
    Ok(Value::String(out))
}

fn repeat(a: &[Value]) -> FuncResult {
    Ok(Value::String(go_repeat(&string(&a[1])?, int(&a[0])?)?))
}

fn substr(a: &[Value]) -> FuncResult {
    let (start, end, s) = (int(&a[0])?, int(&a[1])?, string(&a[2])?);
    let len = s.len() as i64;
    let r = if start < 0 {
        &s[..floor_boundary(&s, end.clamp(0, len) as usize)]
    } else if end < 0 || end > len {
        &s[floor_boundary(&s, start.min(len) as usize)..]
    } else {
        let (lo, hi) = (start.min(end) as usize, end as usize);
        &s[floor_boundary(&s, lo)..floor_boundary(&s, hi)]
    };
    Ok(Value::str(r))
}

fn abbrev(a: &[Value]) -> FuncResult {
    let (width, s) = (int(&a[0])?, string(&a[1])?);
    if width < 4 || s.len() as i64 <= width {
        return Ok(Value::String(s));
    }
    Ok(Value::String(format!(
        "{}...",
        &s[..floor_boundary(&s, (width - 3) as usize)]
    )))
}

/// commons-lang's abbreviate with an offset, as sprig's abbrevboth uses it.
fn abbrev_both(left: i64, right: i64, s: &str) -> String {
    if right < 4 || (left > 0 && right < 7) {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let (mut offset, max) = (left, right);
    if chars.is_empty() || len <= max {
        return s.to_string();
    }
    let text = |from: i64, to: i64| -> String {
        chars[from.clamp(0, len) as usize..to.clamp(0, len) as usize]
            .iter()
            .collect()
    };
    if offset > len {
        offset = len;
    }
    if len - offset < max - 3 {
        offset = len - (max - 3);
    }
    if offset <= 4 {
        return format!("{}...", text(0, max - 3));
    }
    if offset + max - 3 < len {
        let rest = text(offset, len);
        return format!("...{}", abbrev_both(0, max - 3, &rest));
    }
    format!("...{}", text(len - (max - 3), len))
}

/// snakecase (`sep` '_') and kebabcase ('-').
fn separated(s: &str, sep: char) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (k, c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            if k > 0
                && !out.ends_with(sep)
                && (chars[k - 1].is_lowercase()
                    || chars.get(k + 1).is_some_and(|n| n.is_lowercase()))
            {
                out.push(sep);
            }
            out.extend(c.to_lowercase());
        } else if *c == '_' || *c == '-' || *c == ' ' {
            out.push(sep);
        } else {
            out.push(*c);
        }
    }
    out
}

fn camelcase(s: &str) -> String {
    s.split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn swapcase(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_uppercase() {
                c.to_lowercase().collect::<String>()
            } else {
                c.to_uppercase().collect()
            }
        })
        .collect()
}

/// Word wrapping as sprig's wrap/wrapWith (commons-lang WordUtils.wrap).
fn wrap(s: &str, width: i64, newline: &str, long_words: bool) -> String {
    if s.is_empty() {
        return String::new();
    }
    let width = width.max(1) as usize;
    let b = s.as_bytes();
    let text =
        |from: usize, to: usize| String::from_utf8_lossy(&b[from..to.min(b.len())]).into_owned();
    let mut out = String::new();
    let mut offset = 0usize;
    while b.len() - offset > width {
        if b[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = (width + offset + 1).min(b.len());
        match b[offset..end].iter().rposition(|c| *c == b' ') {
            Some(i) => {
                out.push_str(&text(offset, offset + i));
                out.push_str(newline);
                offset += i + 1;
            }
            None if long_words => {
                out.push_str(&text(offset, offset + width));
                out.push_str(newline);
                offset += width;
            }
            None => {
                let end = width + offset;
                match b[end..].iter().position(|c| *c == b' ') {
                    None => {
                        out.push_str(&text(offset, b.len()));
                        offset = b.len();
                    }
                    Some(i) => {
                        out.push_str(&text(offset, end + i));
                        out.push_str(newline);
                        offset = end + i + 1;
                    }
                }
            }
        }
    }
    out.push_str(&text(offset, b.len()));
    out
}

fn join(a: &[Value]) -> FuncResult {
    let sep = string(&a[0])?;
    let parts: Vec<String> = match &a[1] {
        Value::List(l) => l.iter().filter(|v| !v.is_nil()).map(strval).collect(),
        Value::Nil => vec![],
        other => vec![strval(other)],
    };
    Ok(Value::String(parts.join(&sep)))
}

/// Go's strings.Split (an empty separator splits into characters).
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(|c| c.to_string()).collect();
    }
    s.split(sep).map(str::to_string).collect()
}

/// sprig's split result: a dict with keys `_0`, `_1`, ...
fn numbered_parts(parts: impl Iterator<Item = String>) -> Value {
    let m: BTreeMap<String, Value> = parts
        .enumerate()
        .map(|(idx, part)| (format!("_{idx}"), Value::String(part)))
        .collect();
    Value::new_map(m)
}

fn splitn(a: &[Value]) -> FuncResult {
    let (sep, n, s) = (string(&a[0])?, int(&a[1])?, string(&a[2])?);
    let parts: Vec<String> = if n < 0 {
        s.split(sep.as_str()).map(str::to_string).collect()
    } else {
        s.splitn(n as usize, sep.as_str())
            .map(str::to_string)
            .collect()
    };
    Ok(numbered_parts(parts.into_iter()))
}
