//! sprig's dictionary functions. Dicts are Go maps: `set`, `unset` and
//! `merge` change the dict they are given, and every holder sees it.

use std::collections::BTreeMap;

use gotemplate::func::arg::{map, string};
use gotemplate::{Arity::*, Func, FuncError, FuncResult, MapRef, Param as P, Value};

use super::conversions::strval;
use crate::values::{Merge, merge};

pub(super) const FUNCS: &[Func] = &[
    Func::go("dict", &[], Some(P::Any), dict),
    Func::go("get", &[P::Map, P::Str], None, |a| {
        let value = map(&a[0])?.borrow().get(&string(&a[1])?).cloned();
        Ok(value.unwrap_or(Value::str("")))
    }),
    Func::go("set", &[P::Map, P::Str, P::Any], None, |a| {
        // Go's nil map takes no entry: sprig's set panics.
        if a[0].is_nil() {
            return Err(FuncError::new("assignment to entry in nil map"));
        }
        map(&a[0])?
            .borrow_mut()
            .insert(string(&a[1])?, a[2].clone());
        Ok(a[0].clone())
    }),
    Func::go("unset", &[P::Map, P::Str], None, |a| {
        map(&a[0])?.borrow_mut().remove(&string(&a[1])?);
        Ok(a[0].clone())
    }),
    Func::go("hasKey", &[P::Map, P::Str], None, |a| {
        let dict = map(&a[0])?;
        let key = string(&a[1])?;
        Ok(Value::Bool(dict.borrow().contains_key(&key)))
    }),
    Func::go("keys", &[], Some(P::Map), keys),
    Func::go("values", &[P::Map], None, |a| {
        Ok(Value::list(
            map(&a[0])?.borrow().values().cloned().collect(),
        ))
    }),
    Func::go("pluck", &[P::Str], Some(P::Map), pluck),
    Func::go("pick", &[P::Map], Some(P::Str), |a| selected(a, true)),
    Func::go("omit", &[P::Map], Some(P::Str), |a| selected(a, false)),
    Func::new("dig", AtLeast(0), dig),
    Func::go("merge", &[P::Map], Some(P::Map), |a| merge_all(a, false)),
    Func::go("mustMerge", &[P::Map], Some(P::Map), |a| {
        merge_all(a, false)
    }),
    Func::go("mergeOverwrite", &[P::Map], Some(P::Map), |a| {
        merge_all(a, true)
    }),
    Func::go("mustMergeOverwrite", &[P::Map], Some(P::Map), |a| {
        merge_all(a, true)
    }),
    Func::go("deepCopy", &[P::Any], None, deep_copy),
    Func::go("mustDeepCopy", &[P::Any], None, deep_copy),
];

/// deepCopy and mustDeepCopy: copystructure panics on a nil, which both
/// report as the call's error.
fn deep_copy(a: &[Value]) -> FuncResult {
    if a[0].is_nil() {
        return Err(FuncError::new(
            "reflect: call of reflect.Value.Type on zero Value",
        ));
    }
    Ok(a[0].deep_copy())
}

fn dict(a: &[Value]) -> FuncResult {
    let mut m = BTreeMap::new();
    for pair in a.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or(Value::str(""));
        m.insert(strval(&pair[0]), value);
    }
    Ok(Value::new_map(m))
}

fn keys(a: &[Value]) -> FuncResult {
    let mut out = Vec::new();
    for v in a {
        out.extend(map(v)?.borrow().keys().map(|k| Value::str(k.clone())));
    }
    Ok(Value::typed_list(out, "string"))
}

fn pluck(a: &[Value]) -> FuncResult {
    let key = string(&a[0])?;
    let mut out = Vec::new();
    for v in &a[1..] {
        if let Some(x) = map(v)?.borrow().get(&key) {
            out.push(x.clone());
        }
    }
    Ok(Value::list(out))
}

/// `pick` (`keep`: only the named keys) and `omit` (all but those).
fn selected(a: &[Value], keep: bool) -> FuncResult {
    let dict = map(&a[0])?;
    let names: Vec<String> = a[1..].iter().map(strval).collect();
    Ok(Value::new_map(
        dict.borrow()
            .iter()
            .filter(|(k, _)| names.contains(k) == keep)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ))
}

/// sprig's dig: the keys' path into the last argument, or the default when
/// a key is missing. Go's type assertions decide what fails, and how: the
/// dict first, then each key, then each value dug through.
fn dig(a: &[Value]) -> FuncResult {
    // sprig's dig is variadic and counts its arguments itself (a panic,
    // which Go's executor reports as the call's error).
    let n = a.len();
    if n < 3 {
        return Err(FuncError::new("dig needs at least three arguments"));
    }
    let assertion = |v: &Value, want: &str| {
        let got = if v.is_nil() {
            "nil".to_string()
        } else {
            v.type_name()
        };
        FuncError::new(format!(
            "interface conversion: interface {{}} is {got}, not {want}"
        ))
    };
    const MAP: &str = "map[string]interface {}";
    // A named map type (Helm's values) is no map[string]interface{} to a
    // type assertion.
    let Some(dict) = plain_map(&a[n - 1]) else {
        return Err(assertion(&a[n - 1], MAP));
    };
    let keys = a[..n - 2]
        .iter()
        .map(|k| match k {
            Value::String(k) => Ok(k.as_str()),
            other => Err(assertion(other, "string")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let default = &a[n - 2];
    // At least one key: the function takes at least three arguments.
    let Some((last, path)) = keys.split_last() else {
        return Ok(default.clone());
    };
    let mut current = dict.clone();
    for key in path {
        let step = current.borrow().get(*key).cloned();
        current = match step {
            None => return Ok(default.clone()),
            Some(other) => match plain_map(&other) {
                Some(m) => m.clone(),
                None => return Err(assertion(&other, MAP)),
            },
        };
    }
    let value = current.borrow().get(*last).cloned();
    Ok(value.unwrap_or_else(|| default.clone()))
}

/// `v` when it is a Go map[string]interface{} (not of a named map type).
fn plain_map(v: &Value) -> Option<&MapRef> {
    match v {
        Value::Map(m) if m.go_type().is_none() => Some(m),
        _ => None,
    }
}

/// mergo's merge of every later dict into the first: `overwrite` lets a
/// non-empty later value replace an earlier one.
fn merge_all(a: &[Value], overwrite: bool) -> FuncResult {
    let dst = map(&a[0])?;
    for src in &a[1..] {
        merge(&dst, &map(src)?, Merge::Mergo { overwrite });
    }
    // A nil dict is Go's nil map of the parameter's type: still a map.
    Ok(Value::Map(dst))
}
