//! Argument checks shared by the function families, worded as sprig and Go word them.

use crate::render::template::FuncError;
use crate::render::value::Value;

pub(super) type R = Result<Value, FuncError>;

pub(super) fn err<T>(msg: impl Into<String>) -> Result<T, FuncError> {
    Err(FuncError::new(msg))
}

pub(super) fn want(name: &str, a: &[Value], n: usize) -> Result<(), FuncError> {
    if a.len() != n {
        return err(format!(
            "wrong number of args for {name}: want {n} got {}",
            a.len()
        ));
    }
    Ok(())
}

pub(super) fn string(v: &Value) -> Result<String, FuncError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

pub(super) fn int(v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Int(i) | Value::Int64(i) => Ok(*i),
        other => err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}
