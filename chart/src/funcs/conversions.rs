//! sprig's type conversions and reflection: `toString`, `int`, `float64`,
//! `typeOf`, `kindIs`, `deepEqual`, ... and the conversions the other
//! families share (spf13/cast's, as sprig uses them).

use std::rc::Rc;

use gotemplate::func::arg::string;
use gotemplate::lex::parse_number;
use gotemplate::{Func, FuncResult, Param as P, Value};

pub(super) const FUNCS: &[Func] = &[
    // A string, binary or not, is handed back as it is.
    Func::go("toString", &[P::Any], None, |a| {
        Ok(match &a[0] {
            Value::BinaryString(_) => a[0].clone(),
            other => Value::String(strval(other)),
        })
    })
    .reading_bytes(),
    Func::go("toStrings", &[P::Any], None, to_strings),
    Func::go("int", &[P::Any], None, |a| Ok(Value::Int(to_i64(&a[0])))),
    Func::go("int64", &[P::Any], None, |a| {
        Ok(Value::Int64(to_i64(&a[0])))
    }),
    Func::go("float64", &[P::Any], None, |a| {
        Ok(Value::Float(to_f64(&a[0])))
    }),
    Func::go("atoi", &[P::Str], None, atoi),
    Func::go("toDecimal", &[P::Any], None, to_decimal),
    Func::go("kindOf", &[P::Any], None, |a| {
        Ok(Value::str(a[0].kind_name()))
    }),
    Func::go("kindIs", &[P::Str, P::Any], None, |a| {
        Ok(Value::Bool(string(&a[0])? == a[1].kind_name()))
    }),
    Func::go("typeOf", &[P::Any], None, |a| {
        Ok(Value::String(a[0].type_name()))
    }),
    Func::go("typeIs", &[P::Str, P::Any], None, |a| {
        Ok(Value::Bool(string(&a[0])? == a[1].type_name()))
    }),
    Func::go("typeIsLike", &[P::Str, P::Any], None, type_is_like),
    Func::go("deepEqual", &[P::Any, P::Any], None, |a| {
        Ok(Value::Bool(deep_equal(&a[0], &a[1])))
    }),
];

/// sprig's strval: how `interface{}` arguments become strings.
pub fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_go_string(),
    }
}

/// spf13/cast's ToInt64 (sprig's `int` and integer arithmetic).
pub(super) fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => go_float_to_int(*f),
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_go_int(s.trim_end_matches(".0")).unwrap_or(0),
        _ => 0,
    }
}

/// Go's `int64(f)` on amd64: truncated toward zero, and the smallest int64
/// for NaN, infinities and anything out of range (the processor's
/// "integer indefinite"; Rust's `as` would saturate).
pub(super) fn go_float_to_int(f: f64) -> i64 {
    // -2^63 is in range, 2^63 is not (both exact as floats).
    let min = i64::MIN as f64;
    if f.is_nan() || !(min..-min).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// An integer as Go's strconv.ParseInt with base 0 reads it (the integer
/// literals Go's templates accept).
fn parse_go_int(s: &str) -> Option<i64> {
    parse_number(s)
        .filter(|number| !number.is_float_syntax)
        .and_then(|number| number.int)
}

/// spf13/cast's ToFloat64.
/// Go's strconv.ParseFloat(s, 64) for decimal forms and Inf/NaN (hex
/// floats aside): `None` where Go fails, also out of range.
pub(super) fn parse_go_float(s: &str) -> Option<f64> {
    let f: f64 = s.parse().ok()?;
    let literal_infinity = s
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase()
        .starts_with("inf");
    (!f.is_infinite() || literal_infinity).then_some(f)
}

pub(super) fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Go's reflect.DeepEqual over template values.
pub(super) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            Rc::ptr_eq(x, y) || {
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
            }
        }
        _ => false,
    }
}

fn to_strings(a: &[Value]) -> FuncResult {
    let strings = match &a[0] {
        // sprig leaves nils out.
        Value::List(l) => l
            .iter()
            .filter(|x| !x.is_nil())
            .map(|x| Value::String(strval(x)))
            .collect(),
        Value::Nil => vec![],
        other => vec![Value::String(strval(other))],
    };
    Ok(Value::typed_list(strings, "string"))
}

fn atoi(a: &[Value]) -> FuncResult {
    Ok(Value::Int(string(&a[0])?.trim().parse().unwrap_or(0)))
}

fn to_decimal(a: &[Value]) -> FuncResult {
    Ok(Value::Int64(
        i64::from_str_radix(&strval(&a[0]), 8).unwrap_or(0),
    ))
}

fn type_is_like(a: &[Value]) -> FuncResult {
    let wanted = string(&a[0])?;
    let actual = a[1].type_name();
    Ok(Value::Bool(
        wanted == actual || wanted == format!("*{actual}"),
    ))
}
