//! sprig's integer and float arithmetic. Arguments are converted as sprig
//! converts them (spf13/cast): a non-number counts as 0. Integer results
//! are Go `int64`s, as sprig returns them: `indent (add 1 2) "x"` fails in
//! Helm ("expected int; got int64") and here.

use gotemplate::func::arg::err;
use gotemplate::{Func, FuncResult, Param as P, Value};

use super::conversions::{to_f64, to_i64};
use super::decimal::Decimal;

pub(super) const FUNCS: &[Func] = &[
    Func::go("add", &[], Some(P::Any), |a| {
        Ok(Value::Int64(
            a.iter().map(to_i64).fold(0, i64::wrapping_add),
        ))
    }),
    Func::go("add1", &[P::Any], None, |a| {
        Ok(Value::Int64(to_i64(&a[0]).wrapping_add(1)))
    }),
    Func::go("sub", &[P::Any, P::Any], None, |a| {
        Ok(Value::Int64(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
    }),
    Func::go("mul", &[P::Any], Some(P::Any), |a| {
        Ok(Value::Int64(
            a.iter().map(to_i64).fold(1, i64::wrapping_mul),
        ))
    }),
    Func::go("div", &[P::Any, P::Any], None, |a| {
        divide(a, i64::wrapping_div)
    }),
    Func::go("mod", &[P::Any, P::Any], None, |a| {
        divide(a, i64::wrapping_rem)
    }),
    Func::go("max", &[P::Any], Some(P::Any), |a| {
        Ok(Value::Int64(a.iter().map(to_i64).max().unwrap_or(0)))
    }),
    Func::go("biggest", &[P::Any], Some(P::Any), |a| {
        Ok(Value::Int64(a.iter().map(to_i64).max().unwrap_or(0)))
    }),
    Func::go("min", &[P::Any], Some(P::Any), |a| {
        Ok(Value::Int64(a.iter().map(to_i64).min().unwrap_or(0)))
    }),
    Func::go("addf", &[], Some(P::Any), |a| {
        decimal_op(&Value::Float(0.0), a, |x, y| Ok(x.add(y)))
    }),
    Func::go("add1f", &[P::Any], None, |a| {
        decimal_op(&a[0], &[Value::Int(1)], |x, y| Ok(x.add(y)))
    }),
    Func::go("subf", &[P::Any], Some(P::Any), |a| {
        decimal_op(&a[0], &a[1..], |x, y| Ok(x.sub(y)))
    }),
    Func::go("mulf", &[P::Any], Some(P::Any), |a| {
        decimal_op(&a[0], &a[1..], |x, y| Ok(x.mul(y)))
    }),
    Func::go("divf", &[P::Any], Some(P::Any), |a| {
        decimal_op(&a[0], &a[1..], Decimal::div)
    }),
    Func::go("maxf", &[P::Any], Some(P::Any), |a| {
        Ok(Value::Float(a.iter().map(to_f64).fold(f64::MIN, f64::max)))
    }),
    Func::go("minf", &[P::Any], Some(P::Any), |a| {
        Ok(Value::Float(a.iter().map(to_f64).fold(f64::MAX, f64::min)))
    }),
    Func::go("floor", &[P::Any], None, |a| {
        Ok(Value::Float(to_f64(&a[0]).floor()))
    }),
    Func::go("ceil", &[P::Any], None, |a| {
        Ok(Value::Float(to_f64(&a[0]).ceil()))
    }),
    Func::go("round", &[P::Any, P::Int], Some(P::Float), |a| {
        let scale = 10f64.powi(to_i64(&a[1]) as i32);
        Ok(Value::Float((to_f64(&a[0]) * scale).round() / scale))
    }),
];

/// sprig's `execDecimalOp`: `first`, then each of `rest`, through `op` in
/// decimal; the float nearest the result.
fn decimal_op(
    first: &Value,
    rest: &[Value],
    op: impl Fn(&Decimal, &Decimal) -> Result<Decimal, String>,
) -> FuncResult {
    let decimal = |v: &Value| Decimal::from_float(to_f64(v));
    let mut result = decimal(first).or_else(err)?;
    for value in rest {
        result = op(&result, &decimal(value).or_else(err)?).or_else(err)?;
    }
    Ok(Value::Float(result.to_float()))
}

/// `div` and `mod`: Go panics on a zero divisor.
fn divide(a: &[Value], op: fn(i64, i64) -> i64) -> FuncResult {
    let (x, y) = (to_i64(&a[0]), to_i64(&a[1]));
    if y == 0 {
        return err("runtime error: integer divide by zero");
    }
    Ok(Value::Int64(op(x, y)))
}
