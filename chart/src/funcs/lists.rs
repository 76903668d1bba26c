//! sprig's list functions. The `must` forms return errors where the plain
//! ones would panic; both fail the render the same way here.

use std::rc::Rc;

use gotemplate::builtins;
use gotemplate::func::arg::{int, list};
use gotemplate::{Arity::*, Func, FuncError, FuncResult, Value};

use super::conversions::{deep_equal, strval, to_i64};

pub(super) const FUNCS: &[Func] = &[
    Func::new("list", AtLeast(0), |a| Ok(Value::list(a.to_vec()))),
    Func::new("tuple", AtLeast(0), |a| Ok(Value::list(a.to_vec()))),
    Func::new("append", Exact(2), append),
    Func::new("push", Exact(2), append),
    Func::new("mustAppend", Exact(2), append),
    Func::new("mustPush", Exact(2), append),
    Func::new("prepend", Exact(2), prepend),
    Func::new("mustPrepend", Exact(2), prepend),
    Func::new("first", Exact(1), first),
    Func::new("mustFirst", Exact(1), first),
    Func::new("last", Exact(1), last),
    Func::new("mustLast", Exact(1), last),
    Func::new("rest", Exact(1), rest),
    Func::new("mustRest", Exact(1), rest),
    Func::new("initial", Exact(1), initial),
    Func::new("mustInitial", Exact(1), initial),
    Func::new("uniq", Exact(1), uniq),
    Func::new("mustUniq", Exact(1), uniq),
    Func::new("without", AtLeast(1), without),
    Func::new("mustWithout", AtLeast(1), without),
    Func::new("has", Exact(2), has),
    Func::new("mustHas", Exact(2), has),
    Func::new("concat", AtLeast(0), concat),
    Func::new("reverse", Exact(1), reverse),
    Func::new("mustReverse", Exact(1), reverse),
    Func::new("compact", Exact(1), compact),
    Func::new("mustCompact", Exact(1), compact),
    Func::new("sortAlpha", Exact(1), sort_alpha),
    Func::new("chunk", Exact(2), chunk),
    Func::new("mustChunk", Exact(2), chunk),
    Func::new("mustSlice", AtLeast(1), slice),
    Func::new("until", Exact(1), |a| {
        let n = int(&a[0])?;
        Ok(Value::list(step_range(0, n, if n < 0 { -1 } else { 1 })))
    }),
    Func::new("untilStep", Exact(3), |a| {
        Ok(Value::list(step_range(
            int(&a[0])?,
            int(&a[1])?,
            int(&a[2])?,
        )))
    }),
    Func::new("seq", AtLeast(0), seq),
];

fn append(a: &[Value]) -> FuncResult {
    let mut items = (*list("append", &a[0])?).clone();
    items.push(a[1].clone());
    Ok(Value::list(items))
}

fn prepend(a: &[Value]) -> FuncResult {
    let mut items = vec![a[1].clone()];
    items.extend(list("prepend", &a[0])?.iter().cloned());
    Ok(Value::list(items))
}

/// A list argument that may be nil; an empty list counts as none.
fn nonempty_list(v: &Value, what: &str) -> Result<Option<Rc<Vec<Value>>>, FuncError> {
    match v {
        Value::Nil => Ok(None),
        other => {
            let items = list(what, other)?;
            Ok(if items.is_empty() { None } else { Some(items) })
        }
    }
}

fn first(a: &[Value]) -> FuncResult {
    Ok(nonempty_list(&a[0], "first")?
        .and_then(|l| l.first().cloned())
        .unwrap_or(Value::Nil))
}

fn last(a: &[Value]) -> FuncResult {
    Ok(nonempty_list(&a[0], "last")?
        .and_then(|l| l.last().cloned())
        .unwrap_or(Value::Nil))
}

fn rest(a: &[Value]) -> FuncResult {
    Ok(nonempty_list(&a[0], "rest")?
        .map(|l| Value::list(l.iter().skip(1).cloned().collect()))
        .unwrap_or(Value::Nil))
}

fn initial(a: &[Value]) -> FuncResult {
    Ok(nonempty_list(&a[0], "initial")?
        .map(|l| Value::list(l[..l.len().saturating_sub(1)].to_vec()))
        .unwrap_or(Value::Nil))
}

fn uniq(a: &[Value]) -> FuncResult {
    let mut out: Vec<Value> = Vec::new();
    for v in list("uniq", &a[0])?.iter() {
        if !out.iter().any(|o| deep_equal(o, v)) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

fn without(a: &[Value]) -> FuncResult {
    Ok(Value::list(
        list("without", &a[0])?
            .iter()
            .filter(|v| !a[1..].iter().any(|x| deep_equal(x, v)))
            .cloned()
            .collect(),
    ))
}

fn has(a: &[Value]) -> FuncResult {
    match &a[1] {
        Value::Nil => Ok(Value::Bool(false)),
        haystack => Ok(Value::Bool(
            list("has", haystack)?.iter().any(|v| deep_equal(v, &a[0])),
        )),
    }
}

fn concat(a: &[Value]) -> FuncResult {
    let mut out = Vec::new();
    for v in a {
        out.extend(list("concat", v)?.iter().cloned());
    }
    Ok(Value::list(out))
}

fn reverse(a: &[Value]) -> FuncResult {
    let mut items = (*list("reverse", &a[0])?).clone();
    items.reverse();
    Ok(Value::list(items))
}

fn compact(a: &[Value]) -> FuncResult {
    Ok(Value::list(
        list("compact", &a[0])?
            .iter()
            .filter(|v| !v.is_empty())
            .cloned()
            .collect(),
    ))
}

fn sort_alpha(a: &[Value]) -> FuncResult {
    let mut items: Vec<String> = match &a[0] {
        Value::List(l) => l.iter().map(strval).collect(),
        other => vec![strval(other)],
    };
    items.sort();
    Ok(Value::list(items.into_iter().map(Value::String).collect()))
}

fn chunk(a: &[Value]) -> FuncResult {
    let size = int(&a[0])?.max(1) as usize;
    Ok(Value::list(
        list("chunk", &a[1])?
            .chunks(size)
            .map(|c| Value::list(c.to_vec()))
            .collect(),
    ))
}

/// `mustSlice` slices as the `slice` builtin does.
fn slice(a: &[Value]) -> FuncResult {
    builtins::slice(a)
}

/// start, start+step, ... up to `stop` (excluded); at most a million.
fn step_range(start: i64, stop: i64, step: i64) -> Vec<Value> {
    let mut out = Vec::new();
    if step == 0 {
        return out;
    }
    let mut k = start;
    while (step > 0 && k < stop) || (step < 0 && k > stop) {
        out.push(Value::Int(k));
        k += step;
        if out.len() > 1_000_000 {
            break;
        }
    }
    out
}

/// sprig's seq: like the Unix command, numbers joined by spaces.
fn seq(a: &[Value]) -> FuncResult {
    let n: Vec<i64> = a.iter().map(to_i64).collect();
    let (start, step, end) = match n.as_slice() {
        [] => return Ok(Value::str("")),
        [end] => (1, 1, *end),
        [start, end] => (*start, if end >= start { 1 } else { -1 }, *end),
        [start, step, end, ..] => (*start, *step, *end),
    };
    let end_excl = if step > 0 { end + 1 } else { end - 1 };
    let items: Vec<String> = step_range(start, end_excl, step)
        .iter()
        .map(strval)
        .collect();
    Ok(Value::String(items.join(" ")))
}
