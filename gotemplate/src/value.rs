//! The dynamic value templates operate on, modelled on the Go values a
//! template sees through `interface{}`: nil, bool, int, int64, float64,
//! string, []byte, []interface{}, map[string]interface{}, and host objects
//! with fields and methods.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Deref;
use std::rc::Rc;

use crate::error::FuncError;

/// A Go map[string]interface{}. Go maps are reference types: `set`/`merge`
/// mutate a dict in place and every holder sees the change, so maps are shared.
pub type MapRef = Rc<GoMap>;

/// The entries of a Go map, and the name of its type when the host gave it
/// another than `map[string]interface {}` (Helm's named `chartutil.Values`,
/// or `map[string]string` for `.Chart.Annotations`): Go prints that name
/// (`typeOf`, `%T`, errors), and a type assertion to the plain map (sprig's
/// `dig`) refuses it. It may be Go's nil map, which has no entries and
/// which encoding/json writes as `null`. Derefs to its entries.
#[derive(Debug, Default)]
pub struct GoMap {
    entries: RefCell<BTreeMap<String, Value>>,
    type_name: Cell<Option<&'static str>>,
    is_nil: bool,
}

impl GoMap {
    pub fn new(entries: BTreeMap<String, Value>) -> GoMap {
        GoMap {
            entries: RefCell::new(entries),
            type_name: Cell::new(None),
            is_nil: false,
        }
    }

    /// Go's nil map (a struct's map field never set).
    pub fn nil() -> GoMap {
        GoMap {
            is_nil: true,
            ..GoMap::default()
        }
    }

    /// Whether it is Go's nil map.
    pub fn is_nil(&self) -> bool {
        self.is_nil
    }

    /// The name of its type where it is not `map[string]interface {}`: a
    /// named map type (`chartutil.Values`) or another map type
    /// (`map[string]string`).
    pub fn go_type(&self) -> Option<&'static str> {
        self.type_name.get()
    }

    /// Gives the map the type `name` (`chartutil.Values`, `map[string]string`).
    pub fn set_go_type(&self, name: &'static str) {
        self.type_name.set(Some(name));
    }

    /// Whether Go would pass it to a `map[string]interface {}` parameter:
    /// a named type of that map (`chartutil.Values`) is assignable to it,
    /// another map type (`map[string]string`, whose name is a type literal)
    /// is not.
    pub fn assignable_to_plain_map(&self) -> bool {
        self.go_type().is_none_or(|t| !t.starts_with("map["))
    }
}

/// The elements of a Go slice, and their Go type where it is not
/// `interface{}` (`[]string` from `splitList`, `[]int` from `until`): Go
/// names it (`typeOf`, errors), a `[]interface {}` parameter refuses it,
/// and ranging over it gives elements of their own type. Derefs to its
/// elements.
#[derive(Debug, Default)]
pub struct GoList {
    items: Vec<Value>,
    elem_type: Option<&'static str>,
}

impl GoList {
    /// A slice of `items`, of `elem_type` (`None`: `interface{}`).
    pub fn new(items: Vec<Value>, elem_type: Option<&'static str>) -> GoList {
        GoList { items, elem_type }
    }

    /// The Go type of its elements where it is not `interface{}`.
    pub fn elem_type(&self) -> Option<&'static str> {
        self.elem_type
    }
}

impl Deref for GoList {
    type Target = Vec<Value>;

    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

impl Deref for GoMap {
    type Target = RefCell<BTreeMap<String, Value>>;

    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

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
    /// A Go `string` whose bytes are not UTF-8 (`.Files.Get` of a binary
    /// file, `b64dec` of binary data). Functions that work on a string's
    /// bytes (the encoders and checksums, `len`, `toString`) are given its
    /// bytes; every other function, and the output, reads it as a
    /// [`Value::String`] with U+FFFD for each invalid byte, as Go does
    /// where it decodes UTF-8 (encoding/json, `upper`, ...).
    BinaryString(Rc<[u8]>),
    /// Go `[]byte` (`.Files.GetBytes`).
    Bytes(Rc<Vec<u8>>),
    /// Go `[]interface{}`.
    List(Rc<GoList>),
    /// Go `map[string]interface{}`.
    Map(MapRef),
    /// A host value with fields or methods ([`Object`]).
    Object(Rc<dyn Object>),
}

/// A value of a host type with Go fields or methods (Helm's `.Files`,
/// `.Capabilities`, ...). Templates reach its members as `.Name` or
/// `.Method arg...`.
pub trait Object: std::fmt::Debug {
    /// Go's type name, as `printf "%T"` shows it.
    fn type_name(&self) -> String;
    /// Go's reflect kind name (sprig's `kindOf`).
    fn kind_name(&self) -> &'static str;
    /// The field or method `name` called with `args`; `None` when it has no
    /// such member.
    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>>;
    /// For a value of a Go map or slice type: its entries as a map or list
    /// value, which `len`, `range`, `index` and emptiness see. `None` for a
    /// struct.
    fn entries(&self) -> Option<Value> {
        None
    }
    /// Go's truth of it (`if`, `with`, `empty`): a struct is true, a map or
    /// slice by its entries; a host number type says its own.
    fn is_true(&self) -> bool {
        self.entries().is_none_or(|entries| entries.is_true())
    }
    /// The plain data `encoding/json` makes of it (for encoders).
    fn marshal(&self) -> Value;
    /// What `%v` prints.
    fn write_go(&self, out: &mut String);
}

/// A Go struct value: fields reached by their exact names, an unknown field
/// is an error.
#[derive(Debug)]
pub struct Struct {
    type_name: String,
    fields: Vec<(String, Value)>,
    /// What `%v` prints (Go prints structs positionally; some types have a
    /// String method).
    display: String,
    /// What encoding/json makes of it, where that is not every field with
    /// its first letter lower-cased.
    json: Option<Value>,
}

impl Struct {
    pub fn new(
        type_name: impl Into<String>,
        fields: Vec<(&str, Value)>,
        display: String,
    ) -> Struct {
        Struct {
            type_name: type_name.into(),
            fields: fields
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
            display,
            json: None,
        }
    }

    /// The struct with what encoding/json makes of it (its JSON tags).
    pub fn with_json(mut self, json: Value) -> Struct {
        self.json = Some(json);
        self
    }

    /// The struct as a template value.
    pub fn into_value(self) -> Value {
        Value::Object(Rc::new(self))
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl Object for Struct {
    fn type_name(&self) -> String {
        self.type_name.clone()
    }

    fn kind_name(&self) -> &'static str {
        "ptr"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let value = self.field(name)?.clone();
        if !args.is_empty() {
            return Some(Err(FuncError::new(format!(
                "{name} has arguments but cannot be invoked as function"
            ))));
        }
        Some(Ok(value))
    }

    fn marshal(&self) -> Value {
        if let Some(json) = &self.json {
            return json.clone();
        }
        // The structs templates see carry JSON tags that lower-case the first
        // letter of each field (Helm's chart metadata).
        Value::new_map(
            self.fields
                .iter()
                .map(|(name, value)| (lower_first(name), value.clone()))
                .collect(),
        )
    }

    fn write_go(&self, out: &mut String) {
        out.push_str(&self.display);
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

impl Value {
    /// The bytes a function made in returning this value, as render limits
    /// count them: a string's or byte slice's length, a list's slots (its
    /// elements are counted when they were made).
    pub fn produced_size(&self) -> usize {
        match self {
            Value::String(s) => s.len(),
            Value::BinaryString(b) => b.len(),
            Value::Bytes(b) => b.len(),
            Value::List(l) => l.len().saturating_mul(std::mem::size_of::<Value>()),
            _ => 0,
        }
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A Go string of `bytes`: a [`Value::String`] when they are UTF-8.
    pub fn go_string(bytes: Vec<u8>) -> Value {
        match String::from_utf8(bytes) {
            Ok(s) => Value::String(s),
            Err(e) => Value::BinaryString(e.into_bytes().into()),
        }
    }

    /// The value as functions that read strings as UTF-8 see it: a
    /// [`Value::BinaryString`] becomes its text with U+FFFD for each invalid
    /// byte; every other value is itself.
    pub fn utf8_view(self) -> Value {
        match self {
            Value::BinaryString(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
            other => other,
        }
    }

    pub fn new_map(map: BTreeMap<String, Value>) -> Value {
        Value::Map(Rc::new(GoMap::new(map)))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(GoList::new(items, None)))
    }

    /// A Go slice of `elem_type` (`"string"`, `"int"`).
    pub fn typed_list(items: Vec<Value>, elem_type: &'static str) -> Value {
        Value::List(Rc::new(GoList::new(items, Some(elem_type))))
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
            Value::BinaryString(b) => !b.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Object(o) => o.is_true(),
        }
    }

    /// The zero value of its type, or a collection without entries: what
    /// sprig's `empty` and mergo call empty (the opposite of [`Value::is_true`]).
    pub fn is_empty(&self) -> bool {
        !self.is_true()
    }

    /// Go's type name as `printf "%T"` / sprig `typeOf` shows it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Int64(_) => "int64".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) | Value::BinaryString(_) => "string".into(),
            Value::Bytes(_) => "[]uint8".into(),
            Value::List(l) => format!("[]{}", l.elem_type().unwrap_or("interface {}")),
            Value::Map(m) => m.go_type().unwrap_or("map[string]interface {}").into(),
            Value::Object(o) => o.type_name(),
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
            Value::String(_) | Value::BinaryString(_) => "string",
            Value::Bytes(_) | Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(o) => o.kind_name(),
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
            Value::BinaryString(b) => out.push_str(&String::from_utf8_lossy(b)),
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
            Value::Object(o) => o.write_go(out),
        }
    }

    /// Deep copy (maps are shared references otherwise).
    pub fn deep_copy(&self) -> Value {
        match self {
            // Go's copy keeps the map's type, and a nil map stays nil.
            Value::Map(m) => Value::Map(Rc::new(GoMap {
                entries: RefCell::new(
                    m.borrow()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.deep_copy()))
                        .collect(),
                ),
                type_name: Cell::new(m.go_type()),
                is_nil: m.is_nil(),
            })),
            Value::List(l) => Value::List(Rc::new(GoList::new(
                l.iter().map(Value::deep_copy).collect(),
                l.elem_type(),
            ))),
            other => other.clone(),
        }
    }

    /// JSON as Go's encoding/json decodes it into `interface{}` (numbers are
    /// float64).
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

    /// Looks up a key of a map value.
    pub fn map_get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Map(m) => m.borrow().get(key).cloned(),
            _ => None,
        }
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
