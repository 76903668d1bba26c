//! The dynamic value that templates operate on, modelled on the Go types that
//! Helm hands to `text/template` (interface{} maps, slices, float64 numbers, ...).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

/// A Go map[string]interface{}. Go maps are reference types: `set`/`merge`
/// mutate a dict in place and every holder sees the change, so maps are shared.
pub type MapRef = Rc<RefCell<BTreeMap<String, Value>>>;

/// A template value.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Go's untyped nil (a missing map key, an absent value).
    #[default]
    Nil,
    Bool(bool),
    /// Go `int` (template integer constants, `len`, `int`, arithmetic results).
    Int(i64),
    /// Go `int64` (integers from `--set`, as helm's strvals types them).
    Int64(i64),
    /// Go `float64` (every number that comes from YAML values, as in Helm).
    Float(f64),
    String(String),
    /// Go `[]byte` (`.Files.GetBytes`).
    Bytes(Rc<Vec<u8>>),
    /// Go `[]interface{}`.
    List(Rc<Vec<Value>>),
    /// Go `map[string]interface{}`.
    Map(MapRef),
    /// Helm's special objects (`.Chart`, `.Files`, `.Capabilities`, ...).
    Object(Rc<Object>),
}

/// Objects with Go struct/method semantics.
#[derive(Debug)]
pub enum Object {
    /// A Go struct: fields are accessed by exact name, unknown fields are errors.
    Struct {
        type_name: String,
        fields: Vec<(String, Value)>,
        /// What `%v` prints (Go structs print positionally, some have a String method).
        display: String,
    },
    /// Helm's `.Files`: a chart's non-template files with accessor methods.
    Files(Rc<BTreeMap<String, Vec<u8>>>),
    /// `.Capabilities.APIVersions` (has a `Has` method).
    VersionSet(Vec<String>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn new_map(map: BTreeMap<String, Value>) -> Value {
        Value::Map(Rc::new(RefCell::new(map)))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(items))
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Go template truthiness (`if`, `with`, `and`, `or`, `not`).
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Object(_) => true,
        }
    }

    /// Go's type name as `printf "%T"` / sprig `typeOf` shows it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Int64(_) => "int64".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::Bytes(_) => "[]uint8".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Object(o) => match &**o {
                Object::Struct { type_name, .. } => type_name.clone(),
                Object::Files(_) => "chart.Files".into(),
                Object::VersionSet(_) => "chartutil.VersionSet".into(),
            },
        }
    }

    /// Go's reflect kind name (sprig `kindOf`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Bytes(_) | Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(o) => match &**o {
                Object::Struct { .. } => "ptr",
                Object::Files(_) => "map",
                Object::VersionSet(_) => "slice",
            },
        }
    }

    /// Formats like Go's `fmt` `%v` at the top level of a template action.
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out, 0);
        out
    }

    fn write_go(&self, out: &mut String, depth: usize) {
        // Self-referencing maps (via `set`) would otherwise recurse forever.
        if depth > 200 {
            out.push_str("...");
            return;
        }
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) | Value::Int64(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_float_g(*f)),
            Value::String(s) => out.push_str(s),
            Value::Bytes(b) => {
                out.push('[');
                for (i, byte) in b.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{byte}");
                }
                out.push(']');
            }
            Value::List(l) => {
                out.push('[');
                for (i, item) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    item.write_go(out, depth + 1);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out, depth + 1);
                }
                out.push(']');
            }
            Value::Object(o) => match &**o {
                Object::Struct { display, .. } => out.push_str(display),
                Object::Files(files) => {
                    out.push_str("map[");
                    for (i, (k, v)) in files.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        out.push_str(k);
                        out.push(':');
                        Value::Bytes(Rc::new(v.clone())).write_go(out, depth + 1);
                    }
                    out.push(']');
                }
                Object::VersionSet(v) => {
                    let _ = write!(out, "[{}]", v.join(" "));
                }
            },
        }
    }

    /// Deep copy (maps are shared references otherwise).
    pub fn deep_copy(&self) -> Value {
        match self {
            Value::Map(m) => Value::new_map(
                m.borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.deep_copy()))
                    .collect(),
            ),
            Value::List(l) => Value::list(l.iter().map(Value::deep_copy).collect()),
            other => other.clone(),
        }
    }

    /// Looks up a key of a map value.
    pub fn map_get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Map(m) => m.borrow().get(key).cloned(),
            _ => None,
        }
    }

    /// Converts YAML (as parsed for values files) into template values.
    /// Numbers become float64 like Helm's YAML→JSON→interface{} path.
    pub fn from_yaml(y: &serde_yaml::Value) -> Value {
        match y {
            serde_yaml::Value::Null => Value::Nil,
            serde_yaml::Value::Bool(b) => Value::Bool(*b),
            serde_yaml::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_yaml::Value::String(s) => Value::String(s.clone()),
            serde_yaml::Value::Sequence(seq) => {
                Value::list(seq.iter().map(Value::from_yaml).collect())
            }
            serde_yaml::Value::Mapping(m) => Value::new_map(
                m.iter()
                    .map(|(k, v)| (yaml_key_string(k), Value::from_yaml(v)))
                    .collect(),
            ),
            serde_yaml::Value::Tagged(t) => Value::from_yaml(&t.value),
        }
    }

    /// Converts JSON into template values (numbers are float64, as Go's encoding/json).
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::new_map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts back to YAML (for handing coalesced values out).
    pub fn to_yaml_value(&self) -> serde_yaml::Value {
        match self {
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
            Value::Bytes(b) => serde_yaml::Value::String(String::from_utf8_lossy(b).into_owned()),
            Value::List(l) => {
                serde_yaml::Value::Sequence(l.iter().map(Value::to_yaml_value).collect())
            }
            Value::Map(m) => serde_yaml::Value::Mapping(
                m.borrow()
                    .iter()
                    .map(|(k, v)| (serde_yaml::Value::String(k.clone()), v.to_yaml_value()))
                    .collect(),
            ),
            Value::Object(_) => serde_yaml::Value::String(self.to_go_string()),
        }
    }
}

/// YAML map keys become strings the way Helm's YAML→JSON conversion renders them.
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

/// Shortest decimal digits and exponent of a finite non-zero float:
/// value = 0.d1d2d3... × 10^point.
fn shortest_digits(f: f64) -> (String, i32) {
    // Rust's `{:e}` gives the shortest round-tripping digits, as Go's 'g' -1 does.
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which `%v` uses for float64.
pub fn format_float_g(f: f64) -> String {
    // Go uses exponent form when exp < -4 or exp >= 6 for shortest 'g'.
    format_float_shortest(f, -4, 6)
}

fn format_float_shortest(f: f64, min_exp: i32, max_exp: i32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (digits, point) = shortest_digits(f);
    let exp = point - 1;
    let sign = if f < 0.0 { "-" } else { "" };
    if exp < min_exp || exp >= max_exp {
        let mut s = String::from(sign);
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let _ = write!(s, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
        s
    } else {
        let mut s = String::from(sign);
        if point <= 0 {
            s.push_str("0.");
            for _ in 0..(-point) {
                s.push('0');
            }
            s.push_str(&digits);
        } else if point as usize >= digits.len() {
            s.push_str(&digits);
            for _ in 0..(point as usize - digits.len()) {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..point as usize]);
            s.push('.');
            s.push_str(&digits[point as usize..]);
        }
        s
    }
}

/// encoding/json float formatting: plain unless exponent < -6 or >= 21.
pub fn format_float_json(f: f64) -> String {
    let s = format_float_shortest(f, -6, 21);
    // json writes e-07 as e-7
    if let Some(idx) = s.find('e') {
        let (m, e) = s.split_at(idx);
        let sign = &e[1..2];
        let digits = e[2..].trim_start_matches('0');
        return format!("{m}e{sign}{}", if digits.is_empty() { "0" } else { digits });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        // Verified with `fmt.Println` in Go 1.26.
        assert_eq!(format_float_g(1000000.0), "1e+06");
        assert_eq!(format_float_g(123456.0), "123456");
        assert_eq!(format_float_g(1.5), "1.5");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(0.00001), "1e-05");
        assert_eq!(format_float_g(1234567.0), "1.234567e+06");
        assert_eq!(format_float_g(3.0), "3");
        assert_eq!(format_float_json(1e21), "1e+21");
        assert_eq!(format_float_json(1000000.0), "1000000");
        assert_eq!(format_float_json(1e-7), "1e-7");
    }

    #[test]
    fn containers_print_like_go() {
        let m = Value::new_map(
            [
                ("b".to_string(), Value::Float(2.0)),
                (
                    "a".to_string(),
                    Value::list(vec![Value::str("x"), Value::Nil]),
                ),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(m.to_go_string(), "map[a:[x <nil>] b:2]");
    }
}
