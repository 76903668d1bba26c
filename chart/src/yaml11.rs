//! YAML as helm reads values, Chart.yaml and `fromYaml`: go-yaml v2 (YAML 1.1)
//! resolution, then a trip through JSON. So unquoted `yes`/`no`/`on`/`off`/`y`/`n`
//! are booleans, `0x1F`/`0777`/`1_000` are integers, every number ends up a
//! float64, non-string keys become strings, and `<<` merge keys are honoured.

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

use gotemplate::Value;
use gotemplate::value::format_float_g;

/// Limits that keep hostile input (alias bombs, deep nesting) cheap.
const MAX_ALIAS_NODES: usize = 1_000_000;

enum Frame {
    Seq(usize, Vec<Value>),
    Map(usize, BTreeMap<String, Value>, Option<Value>, Vec<Value>),
}

/// Parses the first document of `text` (an empty text is `Nil`).
pub fn parse_first(text: &str) -> Result<Value, String> {
    Ok(parse_docs(text, true)?
        .into_iter()
        .next()
        .unwrap_or(Value::Nil))
}

/// Parses every document.
pub fn parse_all(text: &str) -> Result<Vec<Value>, String> {
    parse_docs(text, false)
}

fn tag_name(tag: &Option<Tag>) -> Option<String> {
    tag.as_ref().map(|t| {
        if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" {
            format!("!!{}", t.suffix)
        } else {
            format!("{}{}", t.handle, t.suffix)
        }
    })
}

fn parse_docs(text: &str, first_only: bool) -> Result<Vec<Value>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: BTreeMap<usize, Value> = BTreeMap::new();
    let mut alias_budget = MAX_ALIAS_NODES;
    let mut current: Option<Value> = None;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            // go-yaml leaves out the line for errors on the first line.
            match e.marker().line() {
                0 | 1 => e.info().to_string(),
                n => format!("line {n}: {}", e.info()),
            }
        })?;
        let node = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing => continue,
            Event::DocumentStart => {
                current = None;
                continue;
            }
            Event::DocumentEnd => {
                docs.push(current.take().unwrap_or(Value::Nil));
                if first_only {
                    break;
                }
                continue;
            }
            Event::Alias(id) => {
                let v = anchors
                    .get(&id)
                    .ok_or_else(|| format!("line {}: unknown anchor", mark.line()))?;
                let size = count_nodes(v);
                if size > alias_budget {
                    return Err("document contains excessive aliasing".into());
                }
                alias_budget -= size;
                v.deep_copy()
            }
            Event::Scalar(s, style, anchor, tag) => {
                let v = resolve(s, style, tag_name(&tag).as_deref())
                    .map_err(|e| format!("line {}: {e}", mark.line()))?;
                if anchor > 0 {
                    anchors.insert(anchor, v.clone());
                }
                v
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() > 10_000 {
                    return Err("document nested too deeply".into());
                }
                stack.push(Frame::Seq(anchor, Vec::new()));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() > 10_000 {
                    return Err("document nested too deeply".into());
                }
                stack.push(Frame::Map(anchor, BTreeMap::new(), None, Vec::new()));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(anchor, items)) => {
                    let v = Value::list(items);
                    if anchor > 0 {
                        anchors.insert(anchor, v.clone());
                    }
                    v
                }
                _ => return Err("unbalanced sequence".into()),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(anchor, mut map, _, merges)) => {
                    // Explicit keys win over merged ones; earlier merges win over later.
                    for m in merges {
                        merge_under(&mut map, &m)?;
                    }
                    let v = Value::new_map(map);
                    if anchor > 0 {
                        anchors.insert(anchor, v.clone());
                    }
                    v
                }
                _ => return Err("unbalanced mapping".into()),
            },
        };
        match stack.last_mut() {
            None => current = Some(node),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, map, pending, merges)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if matches!(&key, Value::String(k) if k == "<<") && is_merge_key(&key) {
                        match node {
                            Value::List(l) => merges.extend(l.iter().cloned()),
                            other => merges.push(other),
                        }
                    } else {
                        map.insert(key_string(key)?, node);
                    }
                }
            },
        }
    }
    if let Some(v) = current {
        docs.push(v);
    }
    Ok(docs)
}

fn is_merge_key(_k: &Value) -> bool {
    true
}

fn merge_under(map: &mut BTreeMap<String, Value>, src: &Value) -> Result<(), String> {
    match src {
        Value::Map(m) => {
            for (k, v) in m.borrow().iter() {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Ok(())
        }
        _ => Err("map merge requires map or sequence of maps as the value".into()),
    }
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::List(l) => 1 + l.iter().map(count_nodes).sum::<usize>(),
        Value::Map(m) => 1 + m.borrow().values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// JSON object keys from YAML keys, as sigs.k8s.io/yaml converts them.
fn key_string(k: Value) -> Result<String, String> {
    Ok(match k {
        Value::String(s) => s,
        Value::Bool(b) => b.to_string(),
        Value::Nil => "null".into(),
        Value::Int(i) | Value::Int64(i) => i.to_string(),
        Value::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e21 {
                format!("{}", f as i128)
            } else {
                format_float_g(f)
            }
        }
        _ => {
            return Err(format!(
                "error converting YAML to JSON: yaml: invalid map key: {}",
                k.to_go_string()
            ));
        }
    })
}

/// A scalar's value: `s` itself (not copied) when it is a string.
fn resolve(s: String, style: TScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    match tag {
        Some("!!str") | Some("!!binary") => return Ok(Value::String(s)),
        Some("!!null") => return Ok(Value::Nil),
        Some("!!bool") | Some("!!int") | Some("!!float") => {
            let v = resolve_plain(&s);
            let ok = matches!(
                (tag, &v),
                (Some("!!bool"), Value::Bool(_))
                    | (Some("!!int"), Value::Float(_))
                    | (Some("!!float"), Value::Float(_))
            );
            if !ok {
                return Err(format!(
                    "cannot decode !!str `{s}` as a {}",
                    tag.unwrap_or_default()
                ));
            }
            return Ok(v);
        }
        _ => {}
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::String(s));
    }
    Ok(plain_non_string(&s).unwrap_or(Value::String(s)))
}

/// go-yaml v2's implicit typing of a plain scalar, numbers as float64 (via JSON).
pub fn resolve_plain(s: &str) -> Value {
    plain_non_string(s).unwrap_or_else(|| Value::str(s))
}

/// [`resolve_plain`] of `s` when that is not a string.
fn plain_non_string(s: &str) -> Option<Value> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Nil),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(Value::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(Value::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Some(Value::Float(f64::NAN)),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    let plain = s.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Some(Value::Float(i as f64));
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Some(Value::Float(f));
    }
    // "0b1010"-style binary, with a sign.
    if let Some(rest) = plain.strip_prefix("0b")
        && let Ok(i) = i64::from_str_radix(rest, 2)
    {
        return Some(Value::Float(i as f64));
    }
    if let Some(rest) = plain.strip_prefix("-0b")
        && let Ok(i) = i64::from_str_radix(rest, 2)
    {
        return Some(Value::Float(-(i as f64)));
    }
    None
}

/// Go's strconv.ParseInt(s, 0, 64) (then ParseUint for large positives).
fn go_parse_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(r) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, r)
    } else if let Some(r) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, r)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = u64::from_str_radix(digits, radix).ok()? as i128;
    let v = if neg { -v } else { v };
    if v < i64::MIN as i128 {
        return None;
    }
    Some(v)
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_scalars() {
        let v = parse_first(
            "a: yes\nb: 'yes'\nc: off\nd: 0x1F\ne: 1_000\nf: 1e3\ng: ~\nh: 012\ni: 1.5\n\
             yes: k\n1: l\nm: &x {p: 1}\nmm: {<<: *x, q: 2}\n",
        )
        .expect("parses");
        let y = crate::values::to_yaml(&v);
        let want: serde_yaml::Value = serde_yaml::from_str(
            "{a: true, b: 'yes', c: false, d: 31, e: 1000, f: 1000, g: null, h: 10, i: 1.5, \
             'true': k, '1': l, m: {p: 1}, mm: {p: 1, q: 2}}",
        )
        .expect("yaml");
        assert_eq!(y, want);
    }
}
