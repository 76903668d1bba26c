//! Helm's own functions that are not encoders: `include` and `tpl` (which
//! run templates), `required`, `fail` and `lookup`.

use std::collections::BTreeMap;

use gotemplate::func::arg::{err, string};
use gotemplate::{Func, FuncError, FuncResult, Param as P, Runner, TextError, Value};

pub(super) const FUNCS: &[Func] = &[
    Func::executing("include", &[P::Str, P::Any], include),
    Func::executing("tpl", &[P::Str, P::Any], tpl),
    Func::go("required", &[P::Str, P::Any], None, required),
    Func::go("fail", &[P::Str], None, |a| {
        Err(FuncError::user_failure(string(&a[0])?))
    }),
    // Rendering is offline: lookup finds nothing, as with `helm template`.
    Func::go("lookup", &[P::Str, P::Str, P::Str, P::Str], None, |_| {
        Ok(Value::new_map(BTreeMap::new()))
    }),
];

/// Helm's "<no value>" for missing values: templates print nothing there.
pub(crate) const NO_VALUE: &str = "<no value>";

fn include(runner: &mut dyn Runner, a: &[Value]) -> FuncResult {
    let name = string(&a[0])?;
    match runner.execute_template(&name, a[1].clone()) {
        Some(Ok(out)) => Ok(Value::String(out)),
        Some(Err(e)) => Err(FuncError::nested(e)),
        None => err(format!(
            "template: no template {name:?} associated with template \"gotpl\""
        )),
    }
}

fn tpl(runner: &mut dyn Runner, a: &[Value]) -> FuncResult {
    let text = string(&a[0])?;
    let data = a[1].clone();
    // Helm names the tpl template after the calling template's file.
    let name = match data.map_get("Template").and_then(|t| t.map_get("Name")) {
        Some(Value::String(name)) => name,
        _ => "gotpl".to_string(),
    };
    match runner.execute_text(&name, &text, data) {
        Ok(out) => Ok(Value::String(out.replace(NO_VALUE, ""))),
        Err(TextError::Parse(e)) => err(format!("cannot parse template {text:?}: {e}")),
        // Helm wraps the failure in words of its own, so Helm 4 prints the
        // chain on one line (a link that is not a template's error).
        Err(TextError::Exec(mut e)) => {
            e.message = format!(
                "error during tpl function execution for {}: {}",
                gotemplate::fmt::quote(&text),
                e.message
            );
            Err(FuncError::nested(e))
        }
    }
}

fn required(a: &[Value]) -> FuncResult {
    let missing = match &a[1] {
        Value::Nil => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    if missing {
        return Err(FuncError::user_failure(string(&a[0])?));
    }
    Ok(a[1].clone())
}
