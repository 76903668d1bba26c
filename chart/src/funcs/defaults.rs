//! sprig's defaults and flow: `default`, `empty`, `coalesce`, `ternary`,
//! `all`, `any`, and the emptiness they share.

use gotemplate::func::arg::err;
use gotemplate::{Arity::*, Func, FuncResult, Value};

pub(super) const FUNCS: &[Func] = &[
    Func::new("default", AtLeast(1), default),
    Func::new("empty", Exact(1), |a| Ok(Value::Bool(is_empty(&a[0])))),
    Func::new("coalesce", AtLeast(0), |a| {
        Ok(a.iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil))
    }),
    Func::new("ternary", Exact(3), ternary),
    Func::new("all", AtLeast(0), |a| {
        Ok(Value::Bool(a.iter().all(|v| !is_empty(v))))
    }),
    Func::new("any", AtLeast(0), |a| {
        Ok(Value::Bool(a.iter().any(|v| !is_empty(v))))
    }),
];

/// sprig's `empty`: the zero value of its type, or a collection without
/// entries.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) | Value::Int64(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.borrow().is_empty(),
        // A struct is never empty; a host map or slice is by its entries.
        Value::Object(o) => o.entries().is_some_and(|entries| is_empty(&entries)),
    }
}

fn default(a: &[Value]) -> FuncResult {
    let given = a.get(1).cloned().unwrap_or(Value::Nil);
    Ok(if is_empty(&given) {
        a[0].clone()
    } else {
        given
    })
}

fn ternary(a: &[Value]) -> FuncResult {
    match &a[2] {
        Value::Bool(b) => Ok(if *b { a[0].clone() } else { a[1].clone() }),
        other => err(format!(
            "wrong type for value; expected bool; got {}",
            other.type_name()
        )),
    }
}
