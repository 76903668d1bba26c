//! sprig's list functions. The `must` forms return errors where the plain
//! ones would panic; both fail the render the same way here.

use std::rc::Rc;

use gotemplate::func::arg::int;
use gotemplate::{Func, FuncError, FuncResult, GoList, Param as P, Value};

use super::conversions::{deep_equal, go_float_to_int, strval, to_i64};

pub(super) const FUNCS: &[Func] = &[
    Func::go("list", &[], Some(P::Any), |a| Ok(Value::list(a.to_vec()))),
    Func::go("tuple", &[], Some(P::Any), |a| Ok(Value::list(a.to_vec()))),
    Func::go("append", &[P::Any, P::Any], None, append),
    Func::go("push", &[P::Any, P::Any], None, append),
    Func::go("mustAppend", &[P::Any, P::Any], None, append),
    Func::go("mustPush", &[P::Any, P::Any], None, append),
    Func::go("prepend", &[P::Any, P::Any], None, prepend),
    Func::go("mustPrepend", &[P::Any, P::Any], None, prepend),
    Func::go("first", &[P::Any], None, first),
    Func::go("mustFirst", &[P::Any], None, first),
    Func::go("last", &[P::Any], None, last),
    Func::go("mustLast", &[P::Any], None, last),
    Func::go("rest", &[P::Any], None, rest),
    Func::go("mustRest", &[P::Any], None, rest),
    Func::go("initial", &[P::Any], None, initial),
    Func::go("mustInitial", &[P::Any], None, initial),
    Func::go("uniq", &[P::Any], None, uniq),
    Func::go("mustUniq", &[P::Any], None, uniq),
    Func::go("without", &[P::Any], Some(P::Any), without),
    Func::go("mustWithout", &[P::Any], Some(P::Any), without),
    Func::go("has", &[P::Any, P::Any], None, has),
    Func::go("mustHas", &[P::Any, P::Any], None, has),
    Func::go("concat", &[], Some(P::Any), concat),
    Func::go("reverse", &[P::Any], None, reverse),
    Func::go("mustReverse", &[P::Any], None, reverse),
    Func::go("compact", &[P::Any], None, compact),
    Func::go("mustCompact", &[P::Any], None, compact),
    Func::go("sortAlpha", &[P::Any], None, sort_alpha),
    Func::go("chunk", &[P::Int, P::Any], None, chunk),
    Func::go("mustChunk", &[P::Int, P::Any], None, chunk),
    // sprig's slice replaces Go's builtin of the name, as in Helm.
    Func::go("slice", &[P::Any], Some(P::Any), slice),
    Func::go("mustSlice", &[P::Any], Some(P::Any), slice),
    Func::go("until", &[P::Int], None, |a| {
        let n = int(&a[0])?;
        Ok(Value::typed_list(
            step_range(0, n, if n < 0 { -1 } else { 1 })?,
            "int",
        ))
    }),
    Func::go("untilStep", &[P::Int, P::Int, P::Int], None, |a| {
        Ok(Value::typed_list(
            step_range(int(&a[0])?, int(&a[1])?, int(&a[2])?)?,
            "int",
        ))
    }),
    Func::go("seq", &[], Some(P::Int), seq),
];

fn append(a: &[Value]) -> FuncResult {
    let mut items = (*sprig_list(&a[0], "Cannot push on type {kind}")?).clone();
    items.push(a[1].clone());
    Ok(Value::list(items))
}

fn prepend(a: &[Value]) -> FuncResult {
    let mut items = vec![a[1].clone()];
    items.extend(
        sprig_list(&a[0], "Cannot prepend on type {kind}")?
            .iter()
            .cloned(),
    );
    Ok(Value::list(items))
}

/// Go's panic when sprig asks a nil argument its kind
/// (`reflect.TypeOf(nil).Kind()`), as the template reports it.
const NIL_DEREFERENCE: &str = "runtime error: invalid memory address or nil pointer dereference";

/// The list argument of a sprig list function, or sprig's error naming the
/// argument's kind (`wording` with `{kind}`); nil is Go's nil dereference.
fn sprig_list(v: &Value, wording: &str) -> Result<Rc<GoList>, FuncError> {
    match v {
        Value::List(items) => Ok(items.clone()),
        Value::Bytes(bytes) => Ok(Rc::new(GoList::new(
            bytes.iter().map(|b| Value::Int(i64::from(*b))).collect(),
            None,
        ))),
        Value::Object(object) => match object.entries() {
            Some(Value::List(items)) => Ok(items),
            _ => Err(FuncError::new(wording.replace("{kind}", v.kind_name()))),
        },
        Value::Nil => Err(FuncError::new(NIL_DEREFERENCE)),
        other => Err(FuncError::new(wording.replace("{kind}", other.kind_name()))),
    }
}

/// A list argument whose emptiness gives nil (`first`, `last`, `rest`,
/// `initial`).
fn nonempty_list(v: &Value, what: &str) -> Result<Option<Rc<GoList>>, FuncError> {
    let items = sprig_list(v, &format!("Cannot find {what} on type {{kind}}"))?;
    Ok(if items.is_empty() { None } else { Some(items) })
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
    for v in sprig_list(&a[0], "Cannot find uniq on type {kind}")?.iter() {
        if !out.iter().any(|o| deep_equal(o, v)) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

fn without(a: &[Value]) -> FuncResult {
    Ok(Value::list(
        sprig_list(&a[0], "Cannot find without on type {kind}")?
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
            sprig_list(haystack, "Cannot find has on type {kind}")?
                .iter()
                .any(|v| deep_equal(v, &a[0])),
        )),
    }
}

fn concat(a: &[Value]) -> FuncResult {
    let mut out = Vec::new();
    for v in a {
        out.extend(
            sprig_list(v, "Cannot concat type {kind} as list")?
                .iter()
                .cloned(),
        );
    }
    Ok(Value::list(out))
}

fn reverse(a: &[Value]) -> FuncResult {
    let mut items = (*sprig_list(&a[0], "Cannot find reverse on type {kind}")?).clone();
    items.reverse();
    Ok(Value::list(items))
}

fn compact(a: &[Value]) -> FuncResult {
    Ok(Value::list(
        sprig_list(&a[0], "Cannot compact on type {kind}")?
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
    Ok(Value::typed_list(
        items.into_iter().map(Value::String).collect(),
        "string",
    ))
}

/// sprig's chunk, with its float arithmetic: a size of zero or below
/// makes Go allocate a negative length (a panic), except where the
/// arithmetic happens to give no chunk at all.
fn chunk(a: &[Value]) -> FuncResult {
    let size = int(&a[0])?;
    let list = sprig_list(&a[1], "Cannot chunk type {kind}")?;
    let len = list.len() as i64;
    let makeslice = || FuncError::new("runtime error: makeslice: len out of range");
    let count = go_float_to_int(((len - 1) as f64 / size as f64).floor()).wrapping_add(1);
    if count < 0 {
        return Err(makeslice());
    }
    let mut chunks = Vec::new();
    for i in 0..count {
        let mut chunk_len = size;
        if i == count - 1 {
            chunk_len = go_float_to_int((len as f64 % size as f64).floor());
            if chunk_len == 0 {
                chunk_len = size;
            }
        }
        if chunk_len < 0 {
            return Err(makeslice());
        }
        let start = i.saturating_mul(size);
        let items = (start..start.saturating_add(chunk_len))
            .map(|ix| {
                usize::try_from(ix)
                    .ok()
                    .and_then(|ix| list.get(ix).cloned())
                    .ok_or_else(|| FuncError::new("reflect: slice index out of range"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        chunks.push(Value::list(items));
    }
    Ok(Value::typed_list(chunks, "[]interface {}"))
}

/// sprig's slice and mustSlice: a list (or byte slice) from the first
/// index (default 0) to the second (default its length), indices read as
/// spf13/cast reads them; nothing for an empty list; anything else fails
/// with sprig's message or the panic Go's reflection raises.
fn slice(a: &[Value]) -> FuncResult {
    Ok(match &a[0] {
        Value::List(l) => {
            // Go's reflection slices keep the slice's type.
            slice_range(l.len(), &a[1..])?.map_or(Value::Nil, |r| {
                Value::List(Rc::new(GoList::new(l[r].to_vec(), l.elem_type())))
            })
        }
        Value::Bytes(b) => slice_range(b.len(), &a[1..])?
            .map_or(Value::Nil, |r| Value::Bytes(Rc::new(b[r].to_vec()))),
        Value::Nil => {
            return Err(FuncError::new(
                "runtime error: invalid memory address or nil pointer dereference",
            ));
        }
        other => {
            return Err(FuncError::new(format!(
                "list should be type of slice or array but {}",
                other.kind_name()
            )));
        }
    })
}

/// The part of a sequence of `len` items that sprig's slice takes for
/// `indices`; `None` for an empty sequence.
fn slice_range(len: usize, indices: &[Value]) -> Result<Option<std::ops::Range<usize>>, FuncError> {
    if len == 0 {
        return Ok(None);
    }
    let start = indices.first().map_or(0, to_i64);
    let end = indices.get(1).map_or(len as i64, to_i64);
    if start < 0 || end < start || end > len as i64 {
        return Err(FuncError::new(
            "reflect.Value.Slice: slice index out of bounds",
        ));
    }
    Ok(Some(start as usize..end as usize))
}

/// Most numbers `until`, `untilStep` and `seq` make: Go would go on
/// allocating; berth says so instead.
const MAX_STEPS: i128 = 1_000_000;

/// sprig's untilStep: start, start+step, ... up to `stop` (excluded); none
/// when the step goes the other way or is zero.
fn step_range(start: i64, stop: i64, step: i64) -> Result<Vec<Value>, FuncError> {
    let (start, stop, step) = (i128::from(start), i128::from(stop), i128::from(step));
    let count = if stop < start && step < 0 {
        (start - stop + (-step) - 1) / (-step)
    } else if stop > start && step > 0 {
        (stop - start + step - 1) / step
    } else {
        0
    };
    if count > MAX_STEPS {
        return Err(FuncError::new(format!(
            "{count} numbers are more than berth makes in one call ({MAX_STEPS})"
        )));
    }
    // Each number lies between start and stop: it fits in an i64.
    Ok((0..count)
        .map(|i| Value::Int((start + i * step) as i64))
        .collect())
}

/// sprig's seq: like the Unix command, numbers joined by spaces (Go's int
/// arithmetic wraps, so `seq` up to the largest int makes nothing).
fn seq(a: &[Value]) -> FuncResult {
    let n: Vec<i64> = a.iter().map(to_i64).collect();
    let numbers = match *n.as_slice() {
        [] => return Ok(Value::str("")),
        [end] => {
            let increment = if end < 1 { -1 } else { 1 };
            step_range(1, end.wrapping_add(increment), increment)?
        }
        [start, end] => {
            let step = if end < start { -1 } else { 1 };
            step_range(start, end.wrapping_add(step), step)?
        }
        [start, step, end] => {
            let increment = if end < start { -1 } else { 1 };
            if end < start && step > 0 {
                return Ok(Value::str(""));
            }
            step_range(start, end.wrapping_add(increment), step)?
        }
        _ => return Ok(Value::str("")),
    };
    let items: Vec<String> = numbers.iter().map(strval).collect();
    Ok(Value::String(items.join(" ")))
}
