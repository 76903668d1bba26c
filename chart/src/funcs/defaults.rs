//! sprig's defaults and flow: `default`, `empty`, `coalesce`, `ternary`,
//! `all`, `any` (emptiness is `Value::is_empty`, Go's zero value).

use gotemplate::func::arg;
use gotemplate::{Func, FuncResult, Param as P, Value};

pub(super) const FUNCS: &[Func] = &[
    // default, coalesce and ternary hand back one of their arguments as it is.
    Func::go("default", &[P::Any], Some(P::Any), default).reading_bytes(),
    Func::go("empty", &[P::Any], None, |a| {
        Ok(Value::Bool(a[0].is_empty()))
    }),
    Func::go("coalesce", &[], Some(P::Any), |a| {
        Ok(a.iter()
            .find(|v| !v.is_empty())
            .cloned()
            .unwrap_or(Value::Nil))
    })
    .reading_bytes(),
    Func::go("ternary", &[P::Any, P::Any, P::Bool], None, ternary).reading_bytes(),
    Func::go("all", &[], Some(P::Any), |a| {
        Ok(Value::Bool(a.iter().all(|v| !v.is_empty())))
    }),
    Func::go("any", &[], Some(P::Any), |a| {
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
    Ok(if arg::bool(&a[2])? {
        a[0].clone()
    } else {
        a[1].clone()
    })
}
