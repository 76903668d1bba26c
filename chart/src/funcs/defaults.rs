//! sprig's defaults and flow: `default`, `empty`, `coalesce`, `ternary`,
//! `all`, `any` (emptiness is `Value::is_empty`, Go's zero value).

use gotemplate::func::arg::err;
use gotemplate::{Arity::*, Func, FuncResult, Value};

pub(super) const FUNCS: &[Func] = &[
    Func::new("default", AtLeast(1), default),
    Func::new("empty", Exact(1), |a| Ok(Value::Bool(a[0].is_empty()))),
    Func::new("coalesce", AtLeast(0), |a| {
        Ok(a.iter()
            .find(|v| !v.is_empty())
            .cloned()
            .unwrap_or(Value::Nil))
    }),
    Func::new("ternary", Exact(3), ternary),
    Func::new("all", AtLeast(0), |a| {
        Ok(Value::Bool(a.iter().all(|v| !v.is_empty())))
    }),
    Func::new("any", AtLeast(0), |a| {
        Ok(Value::Bool(a.iter().any(|v| !v.is_empty())))
    }),
];

fn default(a: &[Value]) -> FuncResult {
    let given = a.get(1).cloned().unwrap_or(Value::Nil);
    Ok(if given.is_empty() {
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
