//! Values: reading values files, the one merge every layering uses
//! (coalescing over a chart tree's defaults is `Chart::coalesce`), and the
//! conversions between template values and YAML.

use std::collections::BTreeMap;
use std::rc::Rc;

use gotemplate::{MapRef, Value};

use crate::load::text_of;
use crate::{HelmCompat, RenderError};

/// How [`merge`] settles a key both maps hold (nested maps always merge
/// key by key; a key only the source has is always copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The source wins: how Helm layers `-f` files and `--set`, and how a
    /// parent's globals reach its subcharts.
    Overlay,
    /// The destination wins, filled from the source's defaults; a null in
    /// the destination deletes the key (Helm's coalescing of user values
    /// over chart defaults).
    Defaults,
    /// mergo's merge, as sprig's `merge` (`overwrite` false: only empty
    /// destination values are filled) and `mergeOverwrite` (true: every
    /// non-empty source value wins).
    Mergo { overwrite: bool },
}

/// Deepest nesting merged; deeper maps (only a self-referencing dict built
/// with `set` gets there) are left as they are.
const MAX_MERGE_DEPTH: usize = 100;

/// Merges `src` into `dst` in place, settling shared keys as `how` says.
pub fn merge(dst: &MapRef, src: &MapRef, how: Merge) {
    merge_at(dst, src, how, 0);
}

fn merge_at(dst: &MapRef, src: &MapRef, how: Merge, depth: usize) {
    if depth > MAX_MERGE_DEPTH || Rc::ptr_eq(dst, src) {
        return;
    }
    let entries: Vec<(String, Value)> = src
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, incoming) in entries {
        let current = dst.borrow().get(&key).cloned();
        match (current, &incoming) {
            (Some(Value::Map(inner)), Value::Map(from)) => merge_at(&inner, from, how, depth + 1),
            (None, _) => {
                dst.borrow_mut().insert(key, incoming);
            }
            (Some(current), _) => {
                let replace = match how {
                    Merge::Overlay => true,
                    Merge::Defaults => {
                        if current.is_nil() {
                            dst.borrow_mut().remove(&key);
                        }
                        false
                    }
                    Merge::Mergo { overwrite: true } => !incoming.is_empty(),
                    Merge::Mergo { overwrite: false } => {
                        current.is_empty() && !matches!(current, Value::Map(_))
                    }
                };
                if replace {
                    dst.borrow_mut().insert(key, incoming);
                }
            }
        }
    }
}

/// [`merge`] for values that are maps; anything else is left alone.
pub(crate) fn merge_values(dst: &Value, src: &Value, how: Merge) {
    if let (Value::Map(dst), Value::Map(src)) = (dst, src) {
        merge(dst, src, how);
    }
}

/// Reads a values file as helm does (YAML 1.1 typing; empty means an empty
/// map). `path` names the file in errors.
pub fn parse_values(path: &str, bytes: &[u8]) -> Result<Value, RenderError> {
    values_map(bytes).map_err(|e| RenderError::plain(path, format!("cannot load {path}: {e}")))
}

/// The first YAML document of `bytes` as a map, or sigs.k8s.io/yaml's words.
fn values_map(bytes: &[u8]) -> Result<Value, String> {
    let text = text_of(bytes);
    let v = crate::yaml11::parse_first(&text)
        .map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))?;
    json_representable(&v)?;
    match v {
        Value::Nil => Ok(Value::new_map(BTreeMap::new())),
        v @ Value::Map(_) => Ok(v),
        other => Err(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            other.kind_name()
        )),
    }
}

/// Reads a values file as `helm template -f` of `helm` does: Helm 3 reads
/// its first YAML document, Helm 4 merges every document into one map (a
/// later document's keys win). The message is the reader's (the command
/// adds "failed to parse <file>").
pub fn parse_values_as(path: &str, bytes: &[u8], helm: HelmCompat) -> Result<Value, RenderError> {
    if helm == HelmCompat::V3 {
        return values_map(bytes).map_err(|e| RenderError::plain(path, e));
    }
    let cannot =
        |e: String| RenderError::plain(path, format!("cannot unmarshal yaml document: {e}"));
    let documents = crate::yaml11::parse_all(&text_of(bytes))
        .map_err(|e| cannot(format!("error converting YAML to JSON: yaml: {e}")))?;
    let merged = Value::new_map(BTreeMap::new());
    for document in documents {
        json_representable(&document).map_err(cannot)?;
        match document {
            Value::Nil => {}
            Value::Map(_) => merge_values(&merged, &document, Merge::Overlay),
            other => {
                return Err(cannot(format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    other.kind_name()
                )));
            }
        }
    }
    Ok(merged)
}

/// Helm reads YAML through JSON, which has no NaN or infinity: a value file
/// holding `.nan` or `.inf` fails as encoding/json fails.
fn json_representable(v: &Value) -> Result<(), String> {
    match v {
        Value::Float(f) if !f.is_finite() => Err(format!(
            "error converting YAML to JSON: json: unsupported value: {}",
            gotemplate::value::format_float_g(*f)
        )),
        Value::List(items) => items.iter().try_for_each(json_representable),
        Value::Map(m) => m.borrow().values().try_for_each(json_representable),
        _ => Ok(()),
    }
}

/// Imported values go below the parent's own: fills `dst` from `src` as
/// coalescing does.
pub(crate) fn fill_defaults(dst: &Value, src: &Value) {
    merge_values(dst, src, Merge::Defaults);
}

/// YAML (as serde_yaml parses it) as template values; numbers become
/// float64, as through Helm's YAML → JSON → interface{} path.
pub fn from_yaml(y: &serde_yaml::Value) -> Value {
    match y {
        serde_yaml::Value::Null => Value::Nil,
        serde_yaml::Value::Bool(b) => Value::Bool(*b),
        serde_yaml::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_yaml::Value::String(s) => Value::String(s.clone()),
        serde_yaml::Value::Sequence(seq) => Value::list(seq.iter().map(from_yaml).collect()),
        serde_yaml::Value::Mapping(m) => Value::new_map(
            m.iter()
                .map(|(k, v)| (yaml_key_string(k), from_yaml(v)))
                .collect(),
        ),
        serde_yaml::Value::Tagged(t) => from_yaml(&t.value),
    }
}

/// Template values as YAML (for handing coalesced values out).
pub fn to_yaml(v: &Value) -> serde_yaml::Value {
    match v {
        Value::Nil => serde_yaml::Value::Null,
        Value::Bool(b) => serde_yaml::Value::Bool(*b),
        Value::Int(i) | Value::Int64(i) => serde_yaml::Value::Number((*i).into()),
        Value::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                serde_yaml::Value::Number((*f as i64).into())
            } else {
                serde_yaml::Value::Number((*f).into())
            }
        }
        Value::String(s) => serde_yaml::Value::String(s.clone()),
        Value::BinaryString(b) => {
            serde_yaml::Value::String(String::from_utf8_lossy(b).into_owned())
        }
        Value::Bytes(b) => serde_yaml::Value::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(l) => serde_yaml::Value::Sequence(l.iter().map(to_yaml).collect()),
        Value::Map(m) => serde_yaml::Value::Mapping(
            m.borrow()
                .iter()
                .map(|(k, v)| (serde_yaml::Value::String(k.clone()), to_yaml(v)))
                .collect(),
        ),
        Value::Object(_) => serde_yaml::Value::String(v.to_go_string()),
    }
}

/// A YAML map key as a string, the way Helm's YAML → JSON conversion
/// renders it.
pub fn yaml_key_string(k: &serde_yaml::Value) -> String {
    match k {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => "null".into(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(yaml: &str) -> MapRef {
        match from_yaml(&serde_yaml::from_str(yaml).expect("yaml")) {
            Value::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    fn merged(dst: &str, src: &str, how: Merge) -> serde_yaml::Value {
        let dst = map(dst);
        merge(&dst, &map(src), how);
        to_yaml(&Value::Map(dst))
    }

    use crate::strvals::tests::yaml;

    #[test]
    fn overlay_replaces_all_but_maps_which_merge() {
        assert_eq!(
            merged(
                "{a: {x: 1, y: 2}, l: [1, 2], s: old}",
                "{a: {y: 3}, l: [9], s: null, n: new}",
                Merge::Overlay
            ),
            yaml("{a: {x: 1, y: 3}, l: [9], s: null, n: new}")
        );
    }

    #[test]
    fn defaults_fill_gaps_and_a_null_deletes_the_default() {
        assert_eq!(
            merged(
                "{a: {y: 3}, s: user, gone: null}",
                "{a: {x: 1, y: 2}, s: chart, gone: 5, extra: e}",
                Merge::Defaults
            ),
            yaml("{a: {x: 1, y: 3}, s: user, extra: e}")
        );
    }

    #[test]
    fn mergo_fills_empty_values_or_overwrites_with_non_empty_ones() {
        assert_eq!(
            merged(
                "{a: '', b: kept, m: {x: 1}}",
                "{a: filled, b: other, m: {y: 2}, c: new}",
                Merge::Mergo { overwrite: false }
            ),
            yaml("{a: filled, b: kept, m: {x: 1, y: 2}, c: new}")
        );
        assert_eq!(
            merged(
                "{a: old, b: kept}",
                "{a: new, b: ''}",
                Merge::Mergo { overwrite: true }
            ),
            yaml("{a: new, b: kept}")
        );
    }
}
