//! Go's builtin template functions, with Go's semantics and messages.

use crate::error::FuncError;
use crate::fmt::{sprint, sprintf, sprintln};
use crate::func::arg::{err, string};
use crate::func::{Arity::*, Body, Func, FuncResult, FuncTable, Param};
use crate::value::Value;

impl FuncTable {
    /// Go's builtin functions (`and`, `or`, `not`, `len`, `index`, `slice`,
    /// `print`, `printf`, `println`, `html`, `js`, `urlquery`, `call`, and
    /// the comparisons).
    pub fn builtins() -> FuncTable {
        let mut table = FuncTable::default();
        table.extend(FUNCS);
        table
    }
}

/// Go's builtins.
const FUNCS: &[Func] = &[
    Func {
        name: "and",
        arity: AtLeast(1),
        body: Body::ShortCircuit { stop_at: false },
        params: None,
        // Hands back one of its arguments as it is.
        reads_bytes: true,
    },
    Func {
        name: "or",
        arity: AtLeast(1),
        body: Body::ShortCircuit { stop_at: true },
        params: None,
        reads_bytes: true,
    },
    Func::new("not", Exact(1), not),
    Func::new("len", Exact(1), len).reading_bytes(),
    Func::new("index", AtLeast(1), index),
    Func::new("slice", AtLeast(1), slice),
    Func::new("print", AtLeast(0), |a| Ok(Value::String(sprint(a)))),
    Func::new("println", AtLeast(0), |a| Ok(Value::String(sprintln(a)))),
    Func::go("printf", &[Param::Str], Some(Param::Any), printf),
    Func::new("html", AtLeast(0), |a| {
        Ok(Value::String(html_escape(&escaper_text(a))))
    }),
    Func::new("js", AtLeast(0), |a| {
        Ok(Value::String(js_escape(&escaper_text(a))))
    }),
    Func::new("urlquery", AtLeast(0), |a| {
        Ok(Value::String(query_escape(&escaper_text(a))))
    }),
    Func::new("call", AtLeast(1), |_| err("call of non-function")),
    Func::new("eq", AtLeast(1), eq),
    Func::new("ne", Exact(2), |a| {
        Ok(Value::Bool(!values_equal(&a[0], &a[1])?))
    }),
    Func::new("lt", Exact(2), |a| Ok(Value::Bool(less(&a[0], &a[1])?))),
    Func::new("le", Exact(2), |a| {
        Ok(Value::Bool(
            less(&a[0], &a[1])? || values_equal(&a[0], &a[1])?,
        ))
    }),
    Func::new("gt", Exact(2), |a| {
        Ok(Value::Bool(
            !(less(&a[0], &a[1])? || values_equal(&a[0], &a[1])?),
        ))
    }),
    Func::new("ge", Exact(2), |a| Ok(Value::Bool(!less(&a[0], &a[1])?))),
];

fn not(a: &[Value]) -> FuncResult {
    Ok(Value::Bool(!a[0].is_true()))
}

/// The text `html`, `js` and `urlquery` escape (Go's `evalArgs`): their
/// arguments printed as `print` does, a nil as "<no value>".
fn escaper_text(a: &[Value]) -> String {
    let printable: Vec<Value> = a
        .iter()
        .map(|v| match v {
            Value::Nil => Value::str("<no value>"),
            other => other.clone(),
        })
        .collect();
    sprint(&printable)
}

fn len(a: &[Value]) -> FuncResult {
    let value = match &a[0] {
        Value::Object(o) => o.entries().unwrap_or_else(|| a[0].clone()),
        other => other.clone(),
    };
    Ok(Value::Int(match &value {
        Value::String(s) => s.len() as i64,
        Value::BinaryString(b) => b.len() as i64,
        Value::Bytes(b) => b.len() as i64,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.borrow().len() as i64,
        Value::Nil => return err("len of nil pointer"),
        other => return err(format!("len of type {}", other.type_name())),
    }))
}

fn index(a: &[Value]) -> FuncResult {
    index_value(&a[0], &a[1..])
}

/// Go's `slice`: a substring or a sub-list.
pub fn slice(a: &[Value]) -> FuncResult {
    let idx: Vec<i64> = a[1..]
        .iter()
        .map(|v| match v {
            Value::Int(n) | Value::Int64(n) => Ok(*n),
            other => err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            )),
        })
        .collect::<Result<_, _>>()?;
    match &a[0] {
        Value::String(st) => {
            let len = st.len() as i64;
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(len);
            if idx.len() > 2 {
                return err("cannot 3-index slice a string");
            }
            if lo < 0
                || hi < lo
                || hi > len
                || !st.is_char_boundary(lo as usize)
                || !st.is_char_boundary(hi as usize)
            {
                return err(format!("index out of range: {hi}"));
            }
            Ok(Value::str(&st[lo as usize..hi as usize]))
        }
        Value::List(l) => {
            let len = l.len() as i64;
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(len);
            if lo < 0 || hi < lo || hi > len {
                return err(format!("index out of range: {hi}"));
            }
            Ok(Value::list(l[lo as usize..hi as usize].to_vec()))
        }
        Value::Nil => err("slice of untyped nil"),
        other => err(format!("can't slice item of type {}", other.type_name())),
    }
}

fn printf(a: &[Value]) -> FuncResult {
    Ok(Value::String(sprintf(&string(&a[0])?, &a[1..])))
}

fn eq(a: &[Value]) -> FuncResult {
    if a.len() == 1 {
        return err("missing argument for comparison");
    }
    for b in &a[1..] {
        if values_equal(&a[0], b)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

/// Go's basic kinds for comparisons.
#[derive(PartialEq, Clone, Copy, Debug)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Other,
    Nil,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Nil,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::Str,
        _ => Kind::Other,
    }
}

pub fn values_equal(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka == Kind::Nil || kb == Kind::Nil {
            return Ok(false);
        }
        return err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        ));
    }
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        _ => {
            return err(format!(
                "non-comparable type {}: {}",
                a.to_go_string(),
                a.type_name()
            ));
        }
    })
}

pub fn less(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (kind(a), kind(b));
    // Go asks each argument for a basic kind (nil has none) before it
    // compares their kinds.
    if [ka, kb]
        .iter()
        .any(|k| matches!(k, Kind::Nil | Kind::Other))
    {
        return err("invalid type for comparison");
    }
    if ka != kb {
        return err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        ));
    }
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::String(x), Value::String(y)) => Ok(x < y),
        _ => err("invalid type for comparison"),
    }
}

pub fn index_value(item: &Value, idx: &[Value]) -> FuncResult {
    // Go refuses a nil item even with no index to apply.
    if item.is_nil() {
        return err("index of untyped nil");
    }
    let mut cur = item.clone();
    for ix in idx {
        cur = match &cur {
            Value::Map(m) => match ix {
                Value::String(k) => m.borrow().get(k).cloned().unwrap_or(Value::Nil),
                Value::Nil => return err("value is nil; should be of type string"),
                other => {
                    return err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::List(_) | Value::Bytes(_) | Value::String(_) => {
                let len = match &cur {
                    Value::List(l) => l.len(),
                    Value::Bytes(b) => b.len(),
                    Value::String(s) => s.len(),
                    _ => 0,
                };
                let n = match ix {
                    Value::Int(n) | Value::Int64(n) => *n,
                    Value::Nil => return err("cannot index slice/array with nil"),
                    other => {
                        return err(format!(
                            "cannot index slice/array with type {}",
                            other.type_name()
                        ));
                    }
                };
                if n < 0 || n as usize >= len {
                    return err(format!("index out of range: {n}"));
                }
                match &cur {
                    Value::List(l) => l[n as usize].clone(),
                    Value::Bytes(b) => Value::Int(b[n as usize] as i64),
                    Value::String(s) => Value::Int(s.as_bytes()[n as usize] as i64),
                    _ => Value::Nil,
                }
            }
            Value::Nil => return err("index of untyped nil"),
            other => return err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(cur)
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
