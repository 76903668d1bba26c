//! Helm's `--set` family: `a.b=c,d[0]=e,f={x,y}` parsed into a values tree.
//!
//! Typing follows helm: with `--set`, `true`/`false` (any case) are booleans,
//! `null` deletes, base-10 integers without a leading zero are int64, all else
//! is a string; `--set-string` keeps every value a string; `--set-json` parses
//! each value as JSON; `--set-file` reads the value from a file.

use std::collections::BTreeMap;

use thiserror::Error;

use gotemplate::{MapRef, Value};

use crate::values::{Merge, merge};

/// Helm refuses list indexes above this (protects against huge allocations).
const MAX_INDEX: usize = 65536;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SetError(pub String);

/// How a value after `=` becomes a template value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    /// `--set`: typed as helm types it.
    Typed,
    /// `--set-string`: always a string.
    String,
    /// `--set-json`: the value is JSON.
    Json,
    /// `--set-literal`: the whole rest of the argument is one string.
    Literal,
}

/// Typing of `--set` scalars.
pub fn typed_value(s: &str) -> Value {
    if s.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if s.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if s.eq_ignore_ascii_case("null") {
        return Value::Nil;
    }
    if s == "0" {
        return Value::Int64(0);
    }
    // A leading zero means "keep as string" (e.g. "0123", zip codes).
    if !s.starts_with('0')
        && let Ok(n) = s.parse::<i64>()
        && !s.starts_with('+')
    {
        return Value::Int64(n);
    }
    Value::str(s)
}

/// Reads a `--set-file` path into a value.
type FileReader<'a> = &'a dyn Fn(&str) -> Result<Value, SetError>;

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    kind: SetKind,
    /// `--set-file`: values are file paths, read by this callback.
    file_reader: Option<FileReader<'a>>,
}

/// Parses one `--set`-style argument into `dest` (a map value).
pub fn parse_into(arg: &str, dest: &Value, kind: SetKind) -> Result<(), SetError> {
    let mut p = Parser {
        chars: arg.chars().collect(),
        pos: 0,
        kind,
        file_reader: None,
    };
    p.parse_all(dest)
}

/// Parses a `--set-file` argument: each value is a path whose contents become a string.
pub fn parse_file_into(
    arg: &str,
    dest: &Value,
    reader: &dyn Fn(&str) -> Result<Value, SetError>,
) -> Result<(), SetError> {
    let mut p = Parser {
        chars: arg.chars().collect(),
        pos: 0,
        kind: SetKind::String,
        file_reader: Some(reader),
    };
    p.parse_all(dest)
}

const MAP_TYPE: &str = "map[string]interface {}";
const LIST_TYPE: &str = "[]interface {}";

/// Setting into a value of another type: Helm's parser asserts the type,
/// and its recovered panic is the error.
fn not_a(found: &Value, wanted: &str) -> SetError {
    let found = match found {
        Value::Nil => "nil".to_string(),
        other => other.type_name(),
    };
    SetError(format!(
        "unable to parse key: interface conversion: interface {{}} is {found}, not {wanted}"
    ))
}

fn map_of(v: &Value) -> Option<MapRef> {
    match v {
        Value::Map(m) => Some(m.clone()),
        _ => None,
    }
}

impl Parser<'_> {
    fn parse_all(&mut self, dest: &Value) -> Result<(), SetError> {
        while self.pos < self.chars.len() {
            self.key(dest)?;
        }
        Ok(())
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Reads until one of `stops` (unescaped); returns the text and the stop char.
    fn until(&mut self, stops: &[char]) -> (String, Option<char>) {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == '\\' {
                match self.peek() {
                    Some(next) => {
                        out.push(next);
                        self.pos += 1;
                    }
                    None => out.push('\\'),
                }
                continue;
            }
            if stops.contains(&c) {
                return (out, Some(c));
            }
            out.push(c);
        }
        (out, None)
    }

    fn rest(&mut self) -> String {
        let s: String = self.chars[self.pos..].iter().collect();
        self.pos = self.chars.len();
        s
    }

    /// One `key...=value` (nested through `.` and `[i]`) into map `dest`.
    fn key(&mut self, dest: &Value) -> Result<(), SetError> {
        let Some(map) = map_of(dest) else {
            return Err(SetError(
                "unable to parse key: destination is not a map".into(),
            ));
        };
        let (key, stop) = self.until(&['=', '[', ',', '.']);
        match stop {
            None => {
                if key.is_empty() {
                    return Ok(());
                }
                Err(SetError(format!("key {key:?} has no value")))
            }
            Some(',') => {
                if key.is_empty() {
                    return Ok(());
                }
                Err(SetError(format!(
                    "key {key:?} has no value (cannot end with ,)"
                )))
            }
            Some('=') => {
                let v = self.value()?;
                set_key(&map, &key, v);
                Ok(())
            }
            Some('.') => {
                if key.is_empty() {
                    return Err(SetError("key map with no key".into()));
                }
                let child = match map.borrow().get(&key) {
                    Some(v @ Value::Map(_)) => Some(v.clone()),
                    None => None,
                    Some(other) => return Err(not_a(other, MAP_TYPE)),
                };
                let child = child.unwrap_or_else(|| Value::new_map(BTreeMap::new()));
                map.borrow_mut().insert(key.clone(), child.clone());
                self.key(&child)
            }
            Some('[') => {
                if key.is_empty() {
                    return Err(SetError("key \"\" has no value".into()));
                }
                let existing = match map.borrow().get(&key) {
                    Some(Value::List(l)) => l.to_vec(),
                    None => Vec::new(),
                    Some(other) => return Err(not_a(other, LIST_TYPE)),
                };
                let list = self.list_index(existing)?;
                map.borrow_mut().insert(key, Value::list(list));
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    /// After `name[`: reads `i]` and what follows into the list.
    fn list_index(&mut self, mut list: Vec<Value>) -> Result<Vec<Value>, SetError> {
        let (idx_text, stop) = self.until(&[']']);
        if stop.is_none() {
            return Err(SetError(format!(
                "error parsing index: unterminated index {idx_text:?}"
            )));
        }
        let idx: usize = idx_text
            .parse()
            .map_err(|_| SetError(format!("error parsing index: invalid index {idx_text:?}")))?;
        if idx > MAX_INDEX {
            return Err(SetError(format!(
                "index of {idx} is greater than maximum supported index of {MAX_INDEX}"
            )));
        }
        while list.len() <= idx {
            list.push(Value::Nil);
        }
        match self.peek() {
            Some('=') => {
                self.pos += 1;
                let v = self.value()?;
                list[idx] = v;
            }
            Some('.') => {
                self.pos += 1;
                let child = match &list[idx] {
                    v @ Value::Map(_) => v.clone(),
                    _ => Value::new_map(BTreeMap::new()),
                };
                list[idx] = child.clone();
                self.key(&child)?;
            }
            Some('[') => {
                self.pos += 1;
                let inner = match &list[idx] {
                    Value::List(l) => l.to_vec(),
                    Value::Nil => Vec::new(),
                    other => return Err(not_a(other, LIST_TYPE)),
                };
                list[idx] = Value::list(self.list_index(inner)?);
            }
            other => {
                return Err(SetError(format!(
                    "parse error: unexpected {:?} after list index",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
        Ok(list)
    }

    /// The value after `=`, consuming the trailing `,`.
    fn value(&mut self) -> Result<Value, SetError> {
        if self.kind == SetKind::Literal {
            return Ok(Value::str(self.rest()));
        }
        if self.kind == SetKind::Json {
            return self.json_value();
        }
        if self.peek() == Some('{') && self.file_reader.is_none() {
            self.pos += 1;
            let mut items = Vec::new();
            loop {
                let (text, stop) = self.until(&[',', '}']);
                match stop {
                    Some(',') => items.push(self.scalar(&text)?),
                    Some('}') => {
                        if !(text.is_empty() && items.is_empty()) {
                            items.push(self.scalar(&text)?);
                        }
                        break;
                    }
                    _ => {
                        return Err(SetError(format!("list must terminate with '}}': {text:?}")));
                    }
                }
            }
            // The list ends the value; a following comma separates the next key.
            match self.peek() {
                Some(',') => self.pos += 1,
                None => {}
                Some(c) => {
                    return Err(SetError(format!("unexpected {c:?} after list")));
                }
            }
            return Ok(Value::list(items));
        }
        let (text, _) = self.until(&[',']);
        self.scalar(&text)
    }

    fn scalar(&self, text: &str) -> Result<Value, SetError> {
        if let Some(reader) = self.file_reader {
            return reader(text);
        }
        Ok(match self.kind {
            SetKind::Typed => typed_value(text),
            _ => Value::str(text),
        })
    }

    /// A JSON value: reads up to the first top-level comma that ends valid JSON.
    fn json_value(&mut self) -> Result<Value, SetError> {
        let rest: String = self.chars[self.pos..].iter().collect();
        let mut stream = serde_json::Deserializer::from_str(&rest).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(j)) => {
                let used = stream.byte_offset();
                self.pos += rest[..used].chars().count();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    None => {}
                    Some(c) => {
                        return Err(SetError(format!("unexpected {c:?} after JSON value")));
                    }
                }
                Ok(Value::from_json(&j))
            }
            Some(Err(e)) => Err(SetError(format!("failed to parse json: {e}"))),
            None => {
                self.pos = self.chars.len();
                Ok(Value::Nil)
            }
        }
    }
}

fn set_key(map: &MapRef, key: &str, v: Value) {
    // A null from --set removes the key only once values are coalesced;
    // keep it so that it can delete a chart default.
    map.borrow_mut().insert(key.to_string(), v);
}

/// Helm's merge of `-f` files into `base`: maps merge recursively, anything
/// else replaces.
pub fn merge_maps(base: &Value, over: &Value) {
    if let (Value::Map(base), Value::Map(over)) = (base, over) {
        merge(base, over, Merge::Overlay);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn set(args: &[&str], kind: SetKind) -> serde_yaml::Value {
        let dest = Value::new_map(BTreeMap::new());
        for a in args {
            parse_into(a, &dest, kind).expect("parses");
        }
        crate::values::to_yaml(&dest)
    }

    /// YAML text as a value, to compare with.
    pub(crate) fn yaml(s: &str) -> serde_yaml::Value {
        serde_yaml::from_str(s).expect("yaml")
    }

    #[test]
    fn typed_scalars_lists_and_nesting() {
        assert_eq!(
            set(
                &["a.b=1,c=true,d=null,e=0123,f=1.5,g={x,2},h[1].i=j"],
                SetKind::Typed
            ),
            yaml(
                "{a: {b: 1}, c: true, d: null, e: '0123', f: '1.5', g: [x, 2], h: [null, {i: j}]}"
            )
        );
    }

    #[test]
    fn set_string_and_escapes() {
        assert_eq!(
            set(&[r"a=true,b\.c=1\,2"], SetKind::String),
            yaml("{a: 'true', 'b.c': '1,2'}")
        );
    }

    #[test]
    fn set_json() {
        assert_eq!(
            set(&[r#"a={"b":[1,"x"]},c=3"#], SetKind::Json),
            yaml("{a: {b: [1, x]}, c: 3}")
        );
    }

    #[test]
    fn errors() {
        let dest = Value::new_map(BTreeMap::new());
        assert!(parse_into("a", &dest, SetKind::Typed).is_err());
        assert!(parse_into("a[x]=1", &dest, SetKind::Typed).is_err());
        assert!(parse_into("a[99999999]=1", &dest, SetKind::Typed).is_err());
    }

    #[test]
    fn setting_into_a_value_of_another_type_fails_as_helm() {
        let dest = Value::new_map(BTreeMap::new());
        parse_into("s=text,n=null,l[0]=x", &dest, SetKind::Typed).unwrap();
        let error = |arg: &str| parse_into(arg, &dest, SetKind::Typed).unwrap_err().0;
        assert_eq!(
            error("s[0]=1"),
            "unable to parse key: interface conversion: interface {} is string, not []interface {}"
        );
        assert_eq!(
            error("s.x=1"),
            "unable to parse key: interface conversion: interface {} is string, not map[string]interface {}"
        );
        assert_eq!(
            error("n.x=1"),
            "unable to parse key: interface conversion: interface {} is nil, not map[string]interface {}"
        );
        assert_eq!(
            error("l[0][1]=2"),
            "unable to parse key: interface conversion: interface {} is string, not []interface {}"
        );
        // A list item of another type becomes a map, as in Helm.
        parse_into("l[0].k=v", &dest, SetKind::Typed).unwrap();
    }
}
