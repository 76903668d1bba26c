//! sprig's integer and float arithmetic. Arguments are converted as sprig
//! converts them (spf13/cast): a non-number counts as 0.

use gotemplate::func::arg::err;
use gotemplate::{Arity::*, Func, FuncResult, Value};

use super::conversions::{to_f64, to_i64};
use super::decimal::Decimal;

pub(super) const FUNCS: &[Func] = &[
    Func::new("add", AtLeast(0), |a| {
        Ok(Value::Int(a.iter().map(to_i64).fold(0, i64::wrapping_add)))
    }),
    Func::new("add1", Exact(1), |a| {
        Ok(Value::Int(to_i64(&a[0]).wrapping_add(1)))
    }),
    Func::new("sub", Exact(2), |a| {
        Ok(Value::Int(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
    }),
    Func::new("mul", AtLeast(1), |a| {
        Ok(Value::Int(a.iter().map(to_i64).fold(1, i64::wrapping_mul)))
    }),
    Func::new("div", Exact(2), |a| divide(a, i64::wrapping_div)),
    Func::new("mod", Exact(2), |a| divide(a, i64::wrapping_rem)),
    Func::new("max", AtLeast(1), |a| {
        Ok(Value::Int(a.iter().map(to_i64).max().unwrap_or(0)))
    }),
    Func::new("biggest", AtLeast(1), |a| {
        Ok(Value::Int(a.iter().map(to_i64).max().unwrap_or(0)))
    }),
    Func::new("min", AtLeast(1), |a| {
        Ok(Value::Int(a.iter().map(to_i64).min().unwrap_or(0)))
    }),
    Func::new("addf", AtLeast(0), |a| {
        decimal_op(&Value::Float(0.0), a, |x, y| Ok(x.add(y)))
    }),
    Func::new("add1f", Exact(1), |a| {
        decimal_op(&a[0], &[Value::Int(1)], |x, y| Ok(x.add(y)))
    }),
    Func::new("subf", AtLeast(1), |a| {
        decimal_op(&a[0], &a[1..], |x, y| Ok(x.sub(y)))
    }),
    Func::new("mulf", AtLeast(1), |a| {
        decimal_op(&a[0], &a[1..], |x, y| Ok(x.mul(y)))
    }),
    Func::new("divf", AtLeast(1), |a| {
        decimal_op(&a[0], &a[1..], Decimal::div)
    }),
    Func::new("maxf", AtLeast(1), |a| {
        Ok(Value::Float(a.iter().map(to_f64).fold(f64::MIN, f64::max)))
    }),
    Func::new("minf", AtLeast(1), |a| {
        Ok(Value::Float(a.iter().map(to_f64).fold(f64::MAX, f64::min)))
    }),
    Func::new("floor", Exact(1), |a| {
        Ok(Value::Float(to_f64(&a[0]).floor()))
    }),
    Func::new("ceil", Exact(1), |a| Ok(Value::Float(to_f64(&a[0]).ceil()))),
    Func::new("round", AtLeast(2), |a| {
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
    Ok(Value::Int(op(x, y)))
}
