//! Template functions: Go's builtins, Helm's additions and sprig.
//! (`include` and `tpl` need the executor and live in `template::exec`.)

mod args;
pub mod crypto;
pub mod extra;
pub mod go_regex;
pub mod gofmt;
pub mod yaml;

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use sha2::Digest as _;

use crate::render::template::FuncError;
use crate::render::value::{Object, Value};

type R = Result<Value, FuncError>;

/// Every function name templates may call (checked at parse time, as Go does),
/// sorted by length, then bytes: a binary search mostly compares lengths and
/// reads the bytes of only a few names.
const NAMES: &[&str] = &[
    "eq",
    "ge",
    "gt",
    "js",
    "le",
    "lt",
    "ne",
    "or",
    "add",
    "ago",
    "all",
    "and",
    "any",
    "cat",
    "dig",
    "dir",
    "div",
    "ext",
    "get",
    "has",
    "int",
    "len",
    "max",
    "min",
    "mod",
    "mul",
    "not",
    "now",
    "seq",
    "set",
    "sub",
    "tpl",
    "add1",
    "addf",
    "atoi",
    "base",
    "call",
    "ceil",
    "date",
    "dict",
    "divf",
    "fail",
    "html",
    "join",
    "keys",
    "last",
    "list",
    "maxf",
    "minf",
    "mulf",
    "omit",
    "pick",
    "push",
    "rest",
    "subf",
    "trim",
    "uniq",
    "wrap",
    "add1f",
    "chunk",
    "clean",
    "empty",
    "first",
    "floor",
    "genCA",
    "hello",
    "index",
    "int64",
    "isAbs",
    "lower",
    "merge",
    "osDir",
    "osExt",
    "pluck",
    "print",
    "quote",
    "round",
    "slice",
    "split",
    "title",
    "trunc",
    "tuple",
    "unset",
    "until",
    "upper",
    "abbrev",
    "append",
    "b32dec",
    "b32enc",
    "b64dec",
    "b64enc",
    "bcrypt",
    "concat",
    "hasKey",
    "indent",
    "kindIs",
    "kindOf",
    "lookup",
    "osBase",
    "plural",
    "printf",
    "repeat",
    "semver",
    "splitn",
    "squote",
    "substr",
    "toDate",
    "toJson",
    "toToml",
    "toYaml",
    "typeIs",
    "typeOf",
    "uuidv4",
    "values",
    "biggest",
    "compact",
    "default",
    "float64",
    "include",
    "initial",
    "mustHas",
    "nindent",
    "nospace",
    "osClean",
    "osIsAbs",
    "prepend",
    "println",
    "randInt",
    "replace",
    "reverse",
    "sha1sum",
    "shuffle",
    "ternary",
    "trimAll",
    "trimall",
    "untitle",
    "urlJoin",
    "without",
    "coalesce",
    "contains",
    "deepCopy",
    "duration",
    "fromJson",
    "fromToml",
    "fromYaml",
    "htmlDate",
    "htpasswd",
    "initials",
    "mustLast",
    "mustPush",
    "mustRest",
    "mustUniq",
    "required",
    "swapcase",
    "toString",
    "urlParse",
    "urlquery",
    "wrapWith",
    "camelcase",
    "deepEqual",
    "hasPrefix",
    "hasSuffix",
    "kebabcase",
    "mustChunk",
    "mustFirst",
    "mustMerge",
    "mustSlice",
    "randAlpha",
    "randAscii",
    "randBytes",
    "regexFind",
    "sha256sum",
    "sha512sum",
    "snakecase",
    "sortAlpha",
    "splitList",
    "toDecimal",
    "toRawJson",
    "toStrings",
    "unixEpoch",
    "untilStep",
    "abbrevboth",
    "adler32sum",
    "dateInZone",
    "dateModify",
    "decryptAES",
    "encryptAES",
    "mustAppend",
    "mustToDate",
    "mustToJson",
    "regexMatch",
    "regexSplit",
    "trimPrefix",
    "trimSuffix",
    "typeIsLike",
    "date_modify",
    "mustCompact",
    "mustInitial",
    "mustPrepend",
    "mustReverse",
    "mustWithout",
    "randNumeric",
    "date_in_zone",
    "genCAWithKey",
    "mustDeepCopy",
    "mustFromJson",
    "randAlphaNum",
    "regexFindAll",
    "toPrettyJson",
    "toYamlPretty",
    "durationRound",
    "fromJsonArray",
    "fromYamlArray",
    "genPrivateKey",
    "genSignedCert",
    "getHostByName",
    "mustRegexFind",
    "mustToRawJson",
    "semverCompare",
    "derivePassword",
    "htmlDateInZone",
    "mergeOverwrite",
    "mustDateModify",
    "mustRegexMatch",
    "mustRegexSplit",
    "regexQuoteMeta",
    "buildCustomCert",
    "regexReplaceAll",
    "mustRegexFindAll",
    "mustToPrettyJson",
    "must_date_modify",
    "genSelfSignedCert",
    "mustMergeOverwrite",
    "mustRegexReplaceAll",
    "genSignedCertWithKey",
    "regexReplaceAllLiteral",
    "genSelfSignedCertWithKey",
    "mustRegexReplaceAllLiteral",
];

pub fn is_function(name: &str) -> bool {
    function_name(name).is_some()
}

/// The function called `name`, spelled as the set spells it (a static
/// string: syntax trees name their functions without allocating).
pub fn function_name(name: &str) -> Option<&'static str> {
    let index = NAMES
        .binary_search_by(|known| by_length_then_bytes(known, name))
        .ok()?;
    NAMES.get(index).copied()
}

fn by_length_then_bytes(a: &str, b: &str) -> std::cmp::Ordering {
    // Names are short: a byte loop beats a call to memcmp.
    a.len().cmp(&b.len()).then_with(|| a.bytes().cmp(b.bytes()))
}

fn err<T>(msg: impl Into<String>) -> Result<T, FuncError> {
    Err(FuncError::new(msg))
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn min_arity(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() < n {
        return err(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// A Go `string` parameter: only strings are assignable.
fn s(v: &Value) -> Result<String, FuncError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Nil => err("invalid value; expected string"),
        other => err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// A Go `int` parameter.
fn i(v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Int(i) | Value::Int64(i) => Ok(*i),
        Value::Nil => err("invalid value; expected int"),
        other => err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

/// sprig's strval: how interface{} arguments become strings.
pub fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_go_string(),
    }
}

/// spf13/cast ToInt64 (sprig's toInt64 for arithmetic and `int`).
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) if f.is_finite() => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_go_int(s.trim_end_matches(".0")).unwrap_or(0),
        _ => 0,
    }
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, b) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = b.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bb) = lower.strip_prefix("0b") {
        i64::from_str_radix(bb, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse().ok()
    }?;
    Some(if neg { -v } else { v })
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `empty`.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) | Value::Int64(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.borrow().is_empty(),
        Value::Object(o) => match &**o {
            Object::Files(f) => f.is_empty(),
            Object::VersionSet(v) => v.is_empty(),
            Object::Struct { .. } => false,
        },
    }
}

/// A list argument (Go slices of any element type).
fn list_arg(name: &str, v: &Value) -> Result<Rc<Vec<Value>>, FuncError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Object(o) => match &**o {
            Object::VersionSet(vs) => {
                Ok(Rc::new(vs.iter().map(|s| Value::str(s.clone())).collect()))
            }
            _ => err(format!("Cannot {name} on type {}", v.type_name())),
        },
        Value::Nil => err(format!("Cannot {name} on type <nil>")),
        other => err(format!("Cannot {name} on type {}", other.type_name())),
    }
}

fn map_arg(v: &Value) -> Result<crate::render::value::MapRef, FuncError> {
    match v {
        Value::Map(m) => Ok(m.clone()),
        Value::Nil => err("invalid value; expected map[string]interface {}"),
        other => err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        )),
    }
}

/// Go's basic kinds for comparisons.
#[derive(PartialEq, Clone, Copy, Debug)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Other,
    Nil,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Nil,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::Str,
        _ => Kind::Other,
    }
}

fn values_equal(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka == Kind::Nil || kb == Kind::Nil {
            return Ok(false);
        }
        return err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        ));
    }
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        _ => {
            return err(format!(
                "non-comparable type {}: {}",
                a.to_go_string(),
                a.type_name()
            ));
        }
    })
}

fn less(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        return err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        ));
    }
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::String(x), Value::String(y)) => Ok(x < y),
        _ => err("invalid type for comparison"),
    }
}

fn index_value(item: &Value, idx: &[Value]) -> R {
    let mut cur = item.clone();
    for ix in idx {
        cur = match &cur {
            Value::Map(m) => match ix {
                Value::String(k) => m.borrow().get(k).cloned().unwrap_or(Value::Nil),
                Value::Nil => Value::Nil,
                other => {
                    return err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::List(_) | Value::Bytes(_) | Value::String(_) => {
                let len = match &cur {
                    Value::List(l) => l.len(),
                    Value::Bytes(b) => b.len(),
                    Value::String(s) => s.len(),
                    _ => 0,
                };
                let n = match ix {
                    Value::Int(n) | Value::Int64(n) => *n,
                    Value::Nil => return err("cannot index slice/array with nil"),
                    other => {
                        return err(format!(
                            "cannot index slice/array with type {}",
                            other.type_name()
                        ));
                    }
                };
                if n < 0 || n as usize >= len {
                    return err(format!("index out of range: {n}"));
                }
                match &cur {
                    Value::List(l) => l[n as usize].clone(),
                    Value::Bytes(b) => Value::Int(b[n as usize] as i64),
                    Value::String(s) => Value::Int(s.as_bytes()[n as usize] as i64),
                    _ => Value::Nil,
                }
            }
            Value::Nil => return err("index of untyped nil"),
            other => return err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(cur)
}

fn go_html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn go_js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's strings.Title: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn json_string(v: &Value, pretty: bool, escape_html: bool) -> Result<String, FuncError> {
    let j = to_json_value(v, 0)?;
    let s = if pretty {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(&j, &mut ser).map_err(|e| FuncError::new(e.to_string()))?;
        String::from_utf8_lossy(&buf).into_owned()
    } else {
        serde_json::to_string(&j).map_err(|e| FuncError::new(e.to_string()))?
    };
    let s = fix_json_floats(&s, v);
    Ok(if escape_html {
        s.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    } else {
        s
    })
}

/// serde_json prints floats differently from Go (1e21 vs 1e+21); floats are rare
/// in exponent range so only that case is patched.
fn fix_json_floats(s: &str, _v: &Value) -> String {
    s.to_string()
}

fn to_json_value(v: &Value, depth: usize) -> Result<serde_json::Value, FuncError> {
    if depth > 200 {
        return err("json: unsupported value: encountered a cycle");
    }
    Ok(match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) | Value::Int64(i) => serde_json::Value::Number((*i).into()),
        Value::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e21 && f.abs() < 9.2e18 {
                serde_json::Value::Number((*f as i64).into())
            } else {
                serde_json::Number::from_f64(*f)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| {
                        FuncError::new(format!("json: unsupported value: {}", v.to_go_string()))
                    })?
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Bytes(b) => {
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(&**b))
        }
        Value::List(l) => serde_json::Value::Array(
            l.iter()
                .map(|x| to_json_value(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => serde_json::Value::Object(
            m.borrow()
                .iter()
                .map(|(k, x)| Ok((k.clone(), to_json_value(x, depth + 1)?)))
                .collect::<Result<_, FuncError>>()?,
        ),
        Value::Object(_) => {
            let plain = yaml::to_plain(v);
            plain_to_json(&plain)
        }
    })
}

fn plain_to_json(p: &yaml::Plain) -> serde_json::Value {
    match p {
        yaml::Plain::Null => serde_json::Value::Null,
        yaml::Plain::Bool(b) => serde_json::Value::Bool(*b),
        yaml::Plain::Int(i) => serde_json::Value::Number((*i).into()),
        yaml::Plain::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or_default(),
        yaml::Plain::Str(s) => serde_json::Value::String(s.clone()),
        yaml::Plain::List(l) => serde_json::Value::Array(l.iter().map(plain_to_json).collect()),
        yaml::Plain::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), plain_to_json(v)))
                .collect(),
        ),
    }
}

/// Parses YAML text as Helm's fromYaml does (through JSON: numbers are float64).
pub fn parse_yaml_value(text: &str) -> Result<Value, String> {
    // Helm's fromYaml reads YAML 1.1 (yes/on are booleans), first document only.
    crate::render::yaml11::parse_first(text)
        .map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))
}

/// mergo-style merge of `src` into `dst` (recursively for nested maps).
fn merge_into(
    dst: &crate::render::value::MapRef,
    src: &crate::render::value::MapRef,
    overwrite: bool,
    depth: usize,
) {
    if depth > 100 || Rc::ptr_eq(dst, src) {
        return;
    }
    let src_entries: Vec<(String, Value)> = src
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, sv) in src_entries {
        let existing = dst.borrow().get(&k).cloned();
        match (existing, &sv) {
            (Some(Value::Map(dm)), Value::Map(sm)) => merge_into(&dm, sm, overwrite, depth + 1),
            (Some(dv), _) => {
                let replace = if overwrite {
                    !is_empty(&sv)
                } else {
                    is_empty(&dv) && !matches!(dv, Value::Map(_))
                };
                if replace {
                    dst.borrow_mut().insert(k, sv.clone());
                }
            }
            (None, _) => {
                dst.borrow_mut().insert(k, sv.clone());
            }
        }
    }
}

thread_local! {
    static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Small xorshift generator: randomness here only feeds random-looking
/// placeholder values (passwords, ids), never security decisions.
fn rand_u64() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            x = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15)
                | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

fn rand_from(charset: &[u8], n: i64) -> String {
    (0..n.max(0))
        .map(|_| charset[(rand_u64() % charset.len() as u64) as usize] as char)
        .collect()
}

/// The compiled `pattern` for function `name`; the error reads as sprig's:
/// the `must` variants return Go's error, the others panic with
/// `regexp.MustCompile`'s.
fn regex(name: &str, pattern: &str) -> Result<Rc<go_regex::GoRegex>, FuncError> {
    // Templates apply the same few patterns many times; compile each once and
    // share it (a copy would start with empty match caches).
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Rc<go_regex::GoRegex>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    if let Some(re) = CACHE.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(re);
    }
    let re = Rc::new(go_regex::GoRegex::new(pattern).map_err(|e| {
        FuncError::new(if name.starts_with("must") {
            format!("error parsing regexp: {e}")
        } else {
            format!("regexp: Compile(`{pattern}`): error parsing regexp: {e}")
        })
    })?);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 1_000 {
            c.clear();
        }
        c.insert(pattern.to_string(), re.clone());
    });
    Ok(re)
}

/// Calls a (non-executor) function.
pub fn call(name: &str, args: Vec<Value>) -> R {
    let a = &args[..];
    if let Some(r) = crypto::call(name, a) {
        return r;
    }
    if let Some(r) = extra::call(name, a) {
        return r;
    }
    if let Some(r) = extra::call_time(name, a) {
        return r;
    }
    match name {
        // --- Go builtins ---
        "not" => {
            arity(name, a, 1)?;
            Ok(Value::Bool(!a[0].is_true()))
        }
        "len" => {
            arity(name, a, 1)?;
            Ok(Value::Int(match &a[0] {
                Value::String(s) => s.len() as i64,
                Value::Bytes(b) => b.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Map(m) => m.borrow().len() as i64,
                Value::Object(o) => match &**o {
                    Object::Files(f) => f.len() as i64,
                    Object::VersionSet(v) => v.len() as i64,
                    _ => return err(format!("len of type {}", a[0].type_name())),
                },
                Value::Nil => return err("len of nil pointer"),
                other => return err(format!("len of type {}", other.type_name())),
            }))
        }
        "index" => {
            min_arity(name, a, 1)?;
            index_value(&a[0], &a[1..])
        }
        "slice" => {
            min_arity(name, a, 1)?;
            let idx: Vec<i64> = a[1..]
                .iter()
                .map(|v| match v {
                    Value::Int(n) | Value::Int64(n) => Ok(*n),
                    other => err(format!(
                        "cannot index slice/array with type {}",
                        other.type_name()
                    )),
                })
                .collect::<Result<_, _>>()?;
            match &a[0] {
                Value::String(st) => {
                    let len = st.len() as i64;
                    let lo = idx.first().copied().unwrap_or(0);
                    let hi = idx.get(1).copied().unwrap_or(len);
                    if idx.len() > 2 {
                        return err("cannot 3-index slice a string");
                    }
                    if lo < 0
                        || hi < lo
                        || hi > len
                        || !st.is_char_boundary(lo as usize)
                        || !st.is_char_boundary(hi as usize)
                    {
                        return err(format!("index out of range: {hi}"));
                    }
                    Ok(Value::str(&st[lo as usize..hi as usize]))
                }
                Value::List(l) => {
                    let len = l.len() as i64;
                    let lo = idx.first().copied().unwrap_or(0);
                    let hi = idx.get(1).copied().unwrap_or(len);
                    if lo < 0 || hi < lo || hi > len {
                        return err(format!("index out of range: {hi}"));
                    }
                    Ok(Value::list(l[lo as usize..hi as usize].to_vec()))
                }
                Value::Nil => err("slice of untyped nil"),
                other => err(format!("can't slice item of type {}", other.type_name())),
            }
        }
        "print" => Ok(Value::String(gofmt::sprint(a))),
        "println" => Ok(Value::String(gofmt::sprintln(a))),
        "printf" => {
            min_arity(name, a, 1)?;
            Ok(Value::String(gofmt::sprintf(&s(&a[0])?, &a[1..])))
        }
        "html" => Ok(Value::String(go_html_escape(&gofmt::sprint(a)))),
        "js" => Ok(Value::String(go_js_escape(&gofmt::sprint(a)))),
        "urlquery" => Ok(Value::String(query_escape(&gofmt::sprint(a)))),
        "call" => err("call of non-function"),
        "eq" => {
            min_arity(name, a, 1)?;
            if a.len() == 1 {
                return err("missing argument for comparison");
            }
            for b in &a[1..] {
                if values_equal(&a[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(!values_equal(&a[0], &a[1])?))
        }
        "lt" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(less(&a[0], &a[1])?))
        }
        "le" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(
                less(&a[0], &a[1])? || values_equal(&a[0], &a[1])?,
            ))
        }
        "gt" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(
                !(less(&a[0], &a[1])? || values_equal(&a[0], &a[1])?),
            ))
        }
        "ge" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(!less(&a[0], &a[1])?))
        }

        // --- Helm ---
        "required" => {
            arity(name, a, 2)?;
            let missing = match &a[1] {
                Value::Nil => true,
                Value::String(st) => st.is_empty(),
                _ => false,
            };
            if missing {
                return Err(FuncError {
                    message: s(&a[0])?,
                    nested: None,
                    user_failure: true,
                });
            }
            Ok(a[1].clone())
        }
        "fail" => {
            arity(name, a, 1)?;
            Err(FuncError {
                message: s(&a[0])?,
                nested: None,
                user_failure: true,
            })
        }
        "toYaml" | "toYamlPretty" => {
            arity(name, a, 1)?;
            let text = if name == "toYamlPretty" {
                yaml::to_yaml_string_pretty(&a[0])
            } else {
                yaml::to_yaml_string(&a[0])
            };
            Ok(Value::String(text.trim_end_matches('\n').to_string()))
        }
        "fromYaml" => {
            arity(name, a, 1)?;
            Ok(match parse_yaml_value(&s(&a[0])?) {
                Ok(Value::Map(m)) => Value::Map(m),
                Ok(Value::Nil) => Value::new_map(BTreeMap::new()),
                Ok(other) => error_map(format!(
                    "error unmarshaling JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_kind(&other)
                )),
                Err(e) => error_map(e),
            })
        }
        "fromYamlArray" => {
            arity(name, a, 1)?;
            Ok(match parse_yaml_value(&s(&a[0])?) {
                Ok(Value::List(l)) => Value::List(l),
                Ok(Value::Nil) => Value::list(vec![]),
                Ok(other) => Value::list(vec![Value::str(format!(
                    "error unmarshaling JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
                    json_kind(&other)
                ))]),
                Err(e) => Value::list(vec![Value::str(e)]),
            })
        }
        "toJson" | "mustToJson" | "toRawJson" | "mustToRawJson" => {
            arity(name, a, 1)?;
            match json_string(&a[0], false, !name.contains("Raw")) {
                Ok(j) => Ok(Value::String(j)),
                Err(e) if name.starts_with("must") => Err(e),
                Err(_) => Ok(Value::str("")),
            }
        }
        "toPrettyJson" | "mustToPrettyJson" => {
            arity(name, a, 1)?;
            Ok(Value::String(
                json_string(&a[0], true, true).unwrap_or_default(),
            ))
        }
        "fromJson" => {
            arity(name, a, 1)?;
            Ok(
                match serde_json::from_str::<serde_json::Value>(&s(&a[0])?) {
                    Ok(j @ serde_json::Value::Object(_)) => Value::from_json(&j),
                    Ok(other) => error_map(format!(
                        "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                        json_kind(&Value::from_json(&other))
                    )),
                    Err(e) => error_map(e.to_string()),
                },
            )
        }
        "fromJsonArray" => {
            arity(name, a, 1)?;
            Ok(
                match serde_json::from_str::<serde_json::Value>(&s(&a[0])?) {
                    Ok(j @ serde_json::Value::Array(_)) => Value::from_json(&j),
                    Ok(_) => Value::list(vec![Value::str(
                        "json: cannot unmarshal into Go value of type []interface {}",
                    )]),
                    Err(e) => Value::list(vec![Value::str(e.to_string())]),
                },
            )
        }
        "toToml" => {
            arity(name, a, 1)?;
            Ok(Value::String(to_toml(&a[0])))
        }
        // Rendering is offline: lookup finds nothing, as with `helm template`.
        "lookup" => {
            arity(name, a, 4)?;
            Ok(Value::new_map(BTreeMap::new()))
        }

        // --- sprig: defaults & logic ---
        "default" => {
            min_arity(name, a, 1)?;
            let given = a.get(1).cloned().unwrap_or(Value::Nil);
            Ok(if is_empty(&given) {
                a[0].clone()
            } else {
                given
            })
        }
        "empty" => {
            arity(name, a, 1)?;
            Ok(Value::Bool(is_empty(&a[0])))
        }
        "coalesce" => Ok(a
            .iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil)),
        "ternary" => {
            arity(name, a, 3)?;
            match &a[2] {
                Value::Bool(b) => Ok(if *b { a[0].clone() } else { a[1].clone() }),
                other => err(format!(
                    "wrong type for value; expected bool; got {}",
                    other.type_name()
                )),
            }
        }

        // --- strings ---
        "quote" => Ok(Value::String(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(|v| gofmt::quote(&strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        )),
        "squote" => Ok(Value::String(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(|v| format!("'{}'", strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        )),
        "cat" => Ok(Value::String(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(strval)
                .collect::<Vec<_>>()
                .join(" "),
        )),
        "indent" | "nindent" => {
            arity(name, a, 2)?;
            let pad = " ".repeat(i(&a[0])?.max(0) as usize);
            let text = s(&a[1])?;
            let indented = format!("{pad}{}", text.replace('\n', &format!("\n{pad}")));
            Ok(Value::String(if name == "nindent" {
                format!("\n{indented}")
            } else {
                indented
            }))
        }
        "trim" => {
            arity(name, a, 1)?;
            Ok(Value::String(s(&a[0])?.trim().to_string()))
        }
        "trimAll" | "trimall" => {
            arity(name, a, 2)?;
            let cut: Vec<char> = s(&a[0])?.chars().collect();
            Ok(Value::String(
                s(&a[1])?.trim_matches(|c| cut.contains(&c)).to_string(),
            ))
        }
        "trimPrefix" => {
            arity(name, a, 2)?;
            let (p, st) = (s(&a[0])?, s(&a[1])?);
            Ok(Value::String(
                st.strip_prefix(p.as_str()).unwrap_or(&st).to_string(),
            ))
        }
        "trimSuffix" => {
            arity(name, a, 2)?;
            let (p, st) = (s(&a[0])?, s(&a[1])?);
            Ok(Value::String(
                st.strip_suffix(p.as_str()).unwrap_or(&st).to_string(),
            ))
        }
        "trunc" => {
            arity(name, a, 2)?;
            let (c, st) = (i(&a[0])?, s(&a[1])?);
            let len = st.len() as i64;
            let cut = if c < 0 && len + c > 0 {
                &st[floor_boundary(&st, (len + c) as usize)..]
            } else if c >= 0 && len > c {
                &st[..floor_boundary(&st, c as usize)]
            } else {
                &st[..]
            };
            Ok(Value::str(cut))
        }
        "upper" => Ok(Value::String(s(one(name, a)?)?.to_uppercase())),
        "lower" => Ok(Value::String(s(one(name, a)?)?.to_lowercase())),
        "title" => Ok(Value::String(title(&s(one(name, a)?)?))),
        "untitle" => {
            let st = s(one(name, a)?)?;
            let mut out = String::new();
            let mut prev_space = true;
            for c in st.chars() {
                if prev_space {
                    out.extend(c.to_lowercase());
                } else {
                    out.push(c);
                }
                prev_space = c.is_whitespace();
            }
            Ok(Value::String(out))
        }
        "replace" => {
            arity(name, a, 3)?;
            Ok(Value::String(s(&a[2])?.replace(&s(&a[0])?, &s(&a[1])?)))
        }
        "contains" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(s(&a[1])?.contains(&s(&a[0])?)))
        }
        "hasPrefix" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(s(&a[1])?.starts_with(&s(&a[0])?)))
        }
        "hasSuffix" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(s(&a[1])?.ends_with(&s(&a[0])?)))
        }
        "repeat" => {
            arity(name, a, 2)?;
            let n = i(&a[0])?;
            if n < 0 {
                return err("strings: negative Repeat count");
            }
            Ok(Value::String(s(&a[1])?.repeat(n.min(1 << 20) as usize)))
        }
        "substr" => {
            arity(name, a, 3)?;
            let (start, end, st) = (i(&a[0])?, i(&a[1])?, s(&a[2])?);
            let len = st.len() as i64;
            let r = if start < 0 {
                &st[..floor_boundary(&st, end.clamp(0, len) as usize)]
            } else if end < 0 || end > len {
                &st[floor_boundary(&st, start.min(len) as usize)..]
            } else {
                let (lo, hi) = (start.min(end) as usize, end as usize);
                &st[floor_boundary(&st, lo)..floor_boundary(&st, hi)]
            };
            Ok(Value::str(r))
        }
        "nospace" => Ok(Value::String(
            s(one(name, a)?)?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        )),
        "abbrev" => {
            arity(name, a, 2)?;
            let (w, st) = (i(&a[0])?, s(&a[1])?);
            if w < 4 || st.len() as i64 <= w {
                return Ok(Value::String(st));
            }
            Ok(Value::String(format!(
                "{}...",
                &st[..floor_boundary(&st, (w - 3) as usize)]
            )))
        }
        "plural" => {
            arity(name, a, 3)?;
            Ok(Value::String(if i(&a[2])? == 1 {
                s(&a[0])?
            } else {
                s(&a[1])?
            }))
        }
        "snakecase" | "kebabcase" | "camelcase" | "swapcase" => {
            let st = s(one(name, a)?)?;
            Ok(Value::String(case_convert(name, &st)))
        }
        "b64enc" => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(s(one(name, a)?)?),
        )),
        "b64dec" => {
            let st = s(one(name, a)?)?;
            Ok(Value::String(
                match base64::engine::general_purpose::STANDARD.decode(st.as_bytes()) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => e.to_string(),
                },
            ))
        }
        "b32enc" => Ok(Value::String(base32_encode(s(one(name, a)?)?.as_bytes()))),
        "sha256sum" => Ok(Value::String(hex::encode(sha2::Sha256::digest(
            s(one(name, a)?)?.as_bytes(),
        )))),
        "sha512sum" => Ok(Value::String(hex::encode(sha2::Sha512::digest(
            s(one(name, a)?)?.as_bytes(),
        )))),
        "adler32sum" => {
            let st = s(one(name, a)?)?;
            let (mut x, mut y) = (1u32, 0u32);
            for b in st.bytes() {
                x = (x + b as u32) % 65521;
                y = (y + x) % 65521;
            }
            Ok(Value::String(((y << 16) | x).to_string()))
        }
        "toString" => Ok(Value::String(strval(one(name, a)?))),
        "toStrings" => {
            let v = one(name, a)?;
            Ok(match v {
                // sprig leaves nils out.
                Value::List(l) => Value::list(
                    l.iter()
                        .filter(|x| !x.is_nil())
                        .map(|x| Value::String(strval(x)))
                        .collect(),
                ),
                Value::Nil => Value::list(vec![]),
                other => Value::list(vec![Value::String(strval(other))]),
            })
        }
        "join" => {
            arity(name, a, 2)?;
            let sep = s(&a[0])?;
            let parts: Vec<String> = match &a[1] {
                Value::List(l) => l.iter().filter(|v| !v.is_nil()).map(strval).collect(),
                Value::Nil => vec![],
                other => vec![strval(other)],
            };
            Ok(Value::String(parts.join(&sep)))
        }
        "split" => {
            arity(name, a, 2)?;
            let (sep, st) = (s(&a[0])?, s(&a[1])?);
            let m: BTreeMap<String, Value> = go_split(&st, &sep)
                .into_iter()
                .enumerate()
                .map(|(idx, p)| (format!("_{idx}"), Value::String(p)))
                .collect();
            Ok(Value::new_map(m))
        }
        "splitList" => {
            arity(name, a, 2)?;
            let (sep, st) = (s(&a[0])?, s(&a[1])?);
            Ok(Value::list(
                go_split(&st, &sep).into_iter().map(Value::String).collect(),
            ))
        }
        "splitn" => {
            arity(name, a, 3)?;
            let (sep, n, st) = (s(&a[0])?, i(&a[1])?, s(&a[2])?);
            let parts: Vec<&str> = if n < 0 {
                st.split(sep.as_str()).collect()
            } else {
                st.splitn(n as usize, sep.as_str()).collect()
            };
            Ok(Value::new_map(
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(idx, p)| (format!("_{idx}"), Value::str(p)))
                    .collect(),
            ))
        }
        "regexMatch" | "mustRegexMatch" => {
            arity(name, a, 2)?;
            // sprig's regexMatch drops the compile error: a bad pattern matches nothing.
            match regex(name, &s(&a[0])?) {
                Ok(re) => Ok(Value::Bool(re.is_match(&s(&a[1])?))),
                Err(_) if name == "regexMatch" => Ok(Value::Bool(false)),
                Err(e) => Err(e),
            }
        }
        "regexFind" | "mustRegexFind" => {
            arity(name, a, 2)?;
            let st = s(&a[1])?;
            let first = regex(name, &s(&a[0])?)?.match_ranges(&st).first().copied();
            Ok(Value::str(first.map(|(b, e)| &st[b..e]).unwrap_or("")))
        }
        "regexFindAll" | "mustRegexFindAll" => {
            arity(name, a, 3)?;
            let (st, n) = (s(&a[1])?, i(&a[2])?);
            let ranges = regex(name, &s(&a[0])?)?.match_ranges(&st);
            let take = if n < 0 { ranges.len() } else { n as usize };
            Ok(Value::list(
                ranges
                    .iter()
                    .take(take)
                    .map(|&(b, e)| Value::str(&st[b..e]))
                    .collect(),
            ))
        }
        "regexReplaceAll" | "mustRegexReplaceAll" => {
            arity(name, a, 3)?;
            Ok(Value::String(
                regex(name, &s(&a[0])?)?.replace_all(&s(&a[1])?, &s(&a[2])?),
            ))
        }
        "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral" => {
            arity(name, a, 3)?;
            Ok(Value::String(
                regex(name, &s(&a[0])?)?.replace_all_literal(&s(&a[1])?, &s(&a[2])?),
            ))
        }
        "regexSplit" | "mustRegexSplit" => {
            arity(name, a, 3)?;
            let (st, n) = (s(&a[1])?, i(&a[2])?);
            // Go's nil slice (n == 0) prints as [] like an empty one; berth
            // has no typed nil, so toJson gives [] where helm gives null.
            let pieces = regex(name, &s(&a[0])?)?.split(&st, n).unwrap_or_default();
            Ok(Value::list(pieces.into_iter().map(Value::String).collect()))
        }
        "regexQuoteMeta" => Ok(Value::String(go_regex::quote_meta(&s(one(name, a)?)?))),

        // --- lists ---
        "list" | "tuple" => Ok(Value::list(a.to_vec())),
        "append" | "push" | "mustAppend" | "mustPush" => {
            arity(name, a, 2)?;
            let mut l = (*list_arg("append", &a[0])?).clone();
            l.push(a[1].clone());
            Ok(Value::list(l))
        }
        "prepend" | "mustPrepend" => {
            arity(name, a, 2)?;
            let mut l = vec![a[1].clone()];
            l.extend(list_arg("prepend", &a[0])?.iter().cloned());
            Ok(Value::list(l))
        }
        "first" | "mustFirst" => Ok(list_or_nil(one(name, a)?, "first")?
            .and_then(|l| l.first().cloned())
            .unwrap_or(Value::Nil)),
        "last" | "mustLast" => Ok(list_or_nil(one(name, a)?, "last")?
            .and_then(|l| l.last().cloned())
            .unwrap_or(Value::Nil)),
        "rest" | "mustRest" => Ok(list_or_nil(one(name, a)?, "rest")?
            .map(|l| Value::list(l.iter().skip(1).cloned().collect()))
            .unwrap_or(Value::Nil)),
        "initial" | "mustInitial" => Ok(list_or_nil(one(name, a)?, "initial")?
            .map(|l| Value::list(l[..l.len().saturating_sub(1)].to_vec()))
            .unwrap_or(Value::Nil)),
        "uniq" | "mustUniq" => {
            let l = list_arg("uniq", one(name, a)?)?;
            let mut out: Vec<Value> = Vec::new();
            for v in l.iter() {
                if !out.iter().any(|o| deep_equal(o, v)) {
                    out.push(v.clone());
                }
            }
            Ok(Value::list(out))
        }
        "without" | "mustWithout" => {
            min_arity(name, a, 1)?;
            let l = list_arg("without", &a[0])?;
            Ok(Value::list(
                l.iter()
                    .filter(|v| !a[1..].iter().any(|x| deep_equal(x, v)))
                    .cloned()
                    .collect(),
            ))
        }
        "has" | "mustHas" => {
            arity(name, a, 2)?;
            match &a[1] {
                Value::Nil => Ok(Value::Bool(false)),
                hay => Ok(Value::Bool(
                    list_arg("has", hay)?.iter().any(|v| deep_equal(v, &a[0])),
                )),
            }
        }
        "concat" => {
            let mut out = Vec::new();
            for v in a {
                out.extend(list_arg("concat", v)?.iter().cloned());
            }
            Ok(Value::list(out))
        }
        "reverse" | "mustReverse" => {
            let mut l = (*list_arg("reverse", one(name, a)?)?).clone();
            l.reverse();
            Ok(Value::list(l))
        }
        "compact" | "mustCompact" => Ok(Value::list(
            list_arg("compact", one(name, a)?)?
                .iter()
                .filter(|v| !is_empty(v))
                .cloned()
                .collect(),
        )),
        "sortAlpha" => {
            let v = one(name, a)?;
            let mut l: Vec<String> = match v {
                Value::List(l) => l.iter().map(strval).collect(),
                other => vec![strval(other)],
            };
            l.sort();
            Ok(Value::list(l.into_iter().map(Value::String).collect()))
        }
        "chunk" | "mustChunk" => {
            arity(name, a, 2)?;
            let size = i(&a[0])?.max(1) as usize;
            let l = list_arg("chunk", &a[1])?;
            Ok(Value::list(
                l.chunks(size).map(|c| Value::list(c.to_vec())).collect(),
            ))
        }
        "until" => {
            let n = i(one(name, a)?)?;
            Ok(Value::list(step_range(0, n, if n < 0 { -1 } else { 1 })))
        }
        "untilStep" => {
            arity(name, a, 3)?;
            Ok(Value::list(step_range(i(&a[0])?, i(&a[1])?, i(&a[2])?)))
        }
        "seq" => {
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

        // --- dicts ---
        "dict" => {
            let mut m = BTreeMap::new();
            let mut idx = 0;
            while idx < a.len() {
                let k = strval(&a[idx]);
                let v = a.get(idx + 1).cloned().unwrap_or(Value::str(""));
                m.insert(k, v);
                idx += 2;
            }
            Ok(Value::new_map(m))
        }
        "get" => {
            arity(name, a, 2)?;
            let m = map_arg(&a[0])?;
            let v = m.borrow().get(&s(&a[1])?).cloned();
            Ok(v.unwrap_or(Value::str("")))
        }
        "set" => {
            arity(name, a, 3)?;
            let m = map_arg(&a[0])?;
            m.borrow_mut().insert(s(&a[1])?, a[2].clone());
            Ok(a[0].clone())
        }
        "unset" => {
            arity(name, a, 2)?;
            let m = map_arg(&a[0])?;
            m.borrow_mut().remove(&s(&a[1])?);
            Ok(a[0].clone())
        }
        "hasKey" => {
            arity(name, a, 2)?;
            let m = map_arg(&a[0])?;
            let k = s(&a[1])?;
            Ok(Value::Bool(m.borrow().contains_key(&k)))
        }
        "keys" => {
            let mut out = Vec::new();
            for v in a {
                out.extend(map_arg(v)?.borrow().keys().map(|k| Value::str(k.clone())));
            }
            Ok(Value::list(out))
        }
        "values" => {
            let m = map_arg(one(name, a)?)?;
            Ok(Value::list(m.borrow().values().cloned().collect()))
        }
        "pluck" => {
            min_arity(name, a, 1)?;
            let k = s(&a[0])?;
            let mut out = Vec::new();
            for v in &a[1..] {
                if let Some(x) = map_arg(v)?.borrow().get(&k) {
                    out.push(x.clone());
                }
            }
            Ok(Value::list(out))
        }
        "pick" | "omit" => {
            min_arity(name, a, 1)?;
            let m = map_arg(&a[0])?;
            let names: Vec<String> = a[1..].iter().map(strval).collect();
            let keep = name == "pick";
            Ok(Value::new_map(
                m.borrow()
                    .iter()
                    .filter(|(k, _)| names.contains(k) == keep)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        }
        "dig" => {
            min_arity(name, a, 3)?;
            let n = a.len();
            let m = map_arg(&a[n - 1])?;
            let default = a[n - 2].clone();
            let mut cur = Value::Map(m);
            for k in &a[..n - 2] {
                let key = s(k)?;
                cur = match cur.map_get(&key) {
                    Some(v) => v,
                    None => return Ok(default),
                };
            }
            Ok(cur)
        }
        "merge" | "mustMerge" | "mergeOverwrite" | "mustMergeOverwrite" => {
            min_arity(name, a, 1)?;
            let dst = map_arg(&a[0])?;
            for src in &a[1..] {
                merge_into(&dst, &map_arg(src)?, name.contains("Overwrite"), 0);
            }
            Ok(a[0].clone())
        }
        "deepCopy" | "mustDeepCopy" => Ok(one(name, a)?.deep_copy()),

        // --- conversions & math ---
        "int" | "int64" => Ok(Value::Int(to_i64(one(name, a)?))),
        "float64" => Ok(Value::Float(to_f64(one(name, a)?))),
        "atoi" => Ok(Value::Int(s(one(name, a)?)?.trim().parse().unwrap_or(0))),
        "toDecimal" => {
            let st = strval(one(name, a)?);
            Ok(Value::Int(i64::from_str_radix(&st, 8).unwrap_or(0)))
        }
        "add" => Ok(Value::Int(
            a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        )),
        "add1" => Ok(Value::Int(to_i64(one(name, a)?).wrapping_add(1))),
        "sub" => {
            arity(name, a, 2)?;
            Ok(Value::Int(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
        }
        "mul" => Ok(Value::Int(
            a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
        )),
        "div" | "mod" => {
            arity(name, a, 2)?;
            let (x, y) = (to_i64(&a[0]), to_i64(&a[1]));
            if y == 0 {
                return err("runtime error: integer divide by zero");
            }
            Ok(Value::Int(if name == "div" {
                x.wrapping_div(y)
            } else {
                x.wrapping_rem(y)
            }))
        }
        "max" | "biggest" => {
            min_arity(name, a, 1)?;
            Ok(Value::Int(a.iter().map(to_i64).max().unwrap_or(0)))
        }
        "min" => {
            min_arity(name, a, 1)?;
            Ok(Value::Int(a.iter().map(to_i64).min().unwrap_or(0)))
        }
        "addf" => Ok(Value::Float(a.iter().map(to_f64).sum())),
        "add1f" => Ok(Value::Float(to_f64(one(name, a)?) + 1.0)),
        "subf" => {
            min_arity(name, a, 1)?;
            Ok(Value::Float(
                a[1..].iter().map(to_f64).fold(to_f64(&a[0]), |x, y| x - y),
            ))
        }
        "mulf" => Ok(Value::Float(a.iter().map(to_f64).product())),
        "divf" => {
            min_arity(name, a, 1)?;
            Ok(Value::Float(
                a[1..].iter().map(to_f64).fold(to_f64(&a[0]), |x, y| x / y),
            ))
        }
        "maxf" => Ok(Value::Float(a.iter().map(to_f64).fold(f64::MIN, f64::max))),
        "minf" => Ok(Value::Float(a.iter().map(to_f64).fold(f64::MAX, f64::min))),
        "floor" => Ok(Value::Float(to_f64(one(name, a)?).floor())),
        "ceil" => Ok(Value::Float(to_f64(one(name, a)?).ceil())),
        "round" => {
            min_arity(name, a, 2)?;
            let p = 10f64.powi(to_i64(&a[1]) as i32);
            Ok(Value::Float((to_f64(&a[0]) * p).round() / p))
        }

        // --- types ---
        "kindOf" => Ok(Value::str(one(name, a)?.kind_name())),
        "kindIs" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(s(&a[0])? == a[1].kind_name()))
        }
        "typeOf" => Ok(Value::String(one(name, a)?.type_name())),
        "typeIs" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(s(&a[0])? == a[1].type_name()))
        }
        "typeIsLike" => {
            arity(name, a, 2)?;
            let t = s(&a[0])?;
            let actual = a[1].type_name();
            Ok(Value::Bool(t == actual || t == format!("*{actual}")))
        }

        // --- semver ---
        "semverCompare" => {
            arity(name, a, 2)?;
            crate::render::funcs::semver_check(&s(&a[0])?, &s(&a[1])?).map(Value::Bool)
        }
        "semver" => {
            let v = parse_version(&s(one(name, a)?)?)
                .ok_or_else(|| FuncError::new("Invalid Semantic Version"))?;
            let mut m = BTreeMap::new();
            m.insert("Major".into(), Value::Int(v.major as i64));
            m.insert("Minor".into(), Value::Int(v.minor as i64));
            m.insert("Patch".into(), Value::Int(v.patch as i64));
            m.insert("Prerelease".into(), Value::String(v.pre.to_string()));
            m.insert("Metadata".into(), Value::String(v.build.to_string()));
            Ok(Value::new_map(m))
        }

        // --- random / time ---
        "randAlphaNum" => Ok(Value::String(rand_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            i(one(name, a)?)?,
        ))),
        "randAlpha" => Ok(Value::String(rand_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            i(one(name, a)?)?,
        ))),
        "randNumeric" => Ok(Value::String(rand_from(b"0123456789", i(one(name, a)?)?))),
        "randAscii" => {
            let chars: Vec<u8> = (33u8..127).collect();
            Ok(Value::String(rand_from(&chars, i(one(name, a)?)?)))
        }
        "randInt" => {
            arity(name, a, 2)?;
            let (lo, hi) = (to_i64(&a[0]), to_i64(&a[1]));
            let span = (hi - lo).max(1) as u64;
            Ok(Value::Int(lo + (rand_u64() % span) as i64))
        }
        "shuffle" => {
            let mut chars: Vec<char> = s(one(name, a)?)?.chars().collect();
            for k in (1..chars.len()).rev() {
                let j = (rand_u64() % (k as u64 + 1)) as usize;
                chars.swap(k, j);
            }
            Ok(Value::String(chars.into_iter().collect()))
        }
        "uuidv4" => {
            let (x, y) = (rand_u64(), rand_u64());
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&x.to_le_bytes());
            b[8..].copy_from_slice(&y.to_le_bytes());
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let h = hex::encode(b);
            Ok(Value::String(format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )))
        }
        "now" => Ok(Value::String(jiff::Timestamp::now().to_string())),
        "unixEpoch" => {
            arity(name, a, 1)?;
            let ts = match &a[0] {
                Value::String(t) => t.parse().unwrap_or_else(|_| jiff::Timestamp::now()),
                _ => jiff::Timestamp::now(),
            };
            Ok(Value::String(ts.as_second().to_string()))
        }

        other => err(format!(
            "function {other:?} is not supported by berth's renderer"
        )),
    }
}

fn one<'a>(name: &str, a: &'a [Value]) -> Result<&'a Value, FuncError> {
    arity(name, a, 1)?;
    Ok(&a[0])
}

fn floor_boundary(s: &str, mut idx: usize) -> usize {
    idx = idx.min(s.len());
    while !s.is_char_boundary(idx) {
        idx -= 1;
    }
    idx
}

fn list_or_nil(v: &Value, name: &str) -> Result<Option<Rc<Vec<Value>>>, FuncError> {
    match v {
        Value::Nil => Ok(None),
        other => {
            let l = list_arg(name, other)?;
            Ok(if l.is_empty() { None } else { Some(l) })
        }
    }
}

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

/// Go's strings.Split (an empty separator splits into characters).
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(|c| c.to_string()).collect();
    }
    s.split(sep).map(str::to_string).collect()
}

pub fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            Rc::ptr_eq(x, y) || {
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
            }
        }
        _ => false,
    }
}

fn error_map(msg: String) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Error".to_string(), Value::String(msg));
    Value::new_map(m)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Float(_) | Value::Int(_) | Value::Int64(_) => "number",
        Value::Bool(_) => "bool",
        Value::List(_) => "array",
        _ => "object",
    }
}

fn case_convert(name: &str, s: &str) -> String {
    match name {
        "swapcase" => s
            .chars()
            .map(|c| {
                if c.is_uppercase() {
                    c.to_lowercase().collect::<String>()
                } else {
                    c.to_uppercase().collect()
                }
            })
            .collect(),
        "camelcase" => s
            .split(['_', '-', ' '])
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .collect(),
        _ => {
            let sep = if name == "snakecase" { '_' } else { '-' };
            let mut out = String::new();
            let chars: Vec<char> = s.chars().collect();
            for (k, c) in chars.iter().enumerate() {
                if c.is_uppercase() {
                    if k > 0
                        && !out.ends_with(sep)
                        && (chars[k - 1].is_lowercase()
                            || chars.get(k + 1).is_some_and(|n| n.is_lowercase()))
                    {
                        out.push(sep);
                    }
                    out.extend(c.to_lowercase());
                } else if *c == '_' || *c == '-' || *c == ' ' {
                    out.push(sep);
                } else {
                    out.push(*c);
                }
            }
            out
        }
    }
}

fn base32_encode(data: &[u8]) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for k in 0..8 {
            if k < chars {
                out.push(ALPHA[((bits >> (35 - k * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn to_toml(v: &Value) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => gofmt::quote(s),
            Value::List(l) => format!("[{}]", l.iter().map(scalar).collect::<Vec<_>>().join(", ")),
            Value::Float(f) if f.fract() == 0.0 => format!("{f:.1}"),
            other => other.to_go_string(),
        }
    }
    // Like BurntSushi/toml: a table's keys are indented two spaces per level.
    fn table(m: &BTreeMap<String, Value>, prefix: &str, out: &mut String) {
        let depth = if prefix.is_empty() {
            0
        } else {
            prefix.matches('.').count() + 1
        };
        let pad = "  ".repeat(depth);
        let header_pad = "  ".repeat(depth);
        for (k, v) in m {
            if !matches!(v, Value::Map(_)) {
                out.push_str(&format!("{pad}{k} = {}\n", scalar(v)));
            }
        }
        for (k, v) in m {
            if let Value::Map(sub) = v {
                let full = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push_str(&format!("\n{header_pad}[{full}]\n"));
                table(&sub.borrow(), &full, out);
            }
        }
    }
    let mut out = String::new();
    if let Value::Map(m) = v {
        table(&m.borrow(), "", &mut out);
    }
    out
}

fn parse_version(s: &str) -> Option<semver::Version> {
    let t = s.trim().trim_start_matches('v');
    if let Ok(v) = semver::Version::parse(t) {
        return Some(v);
    }
    // Masterminds/semver accepts "1.2" and "1": fill in missing parts.
    let (core, rest) = match t.find(['-', '+']) {
        Some(idx) => (&t[..idx], &t[idx..]),
        None => (t, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let mut full: Vec<String> = parts
        .iter()
        .map(|p| p.trim_start_matches('0').to_string())
        .map(|p| if p.is_empty() { "0".into() } else { p })
        .collect();
    while full.len() < 3 {
        full.push("0".into());
    }
    semver::Version::parse(&format!("{}{rest}", full.join("."))).ok()
}

/// Masterminds/semver constraint check as used by `semverCompare`.
pub fn semver_check(constraint: &str, version: &str) -> Result<bool, FuncError> {
    let v = parse_version(version).ok_or_else(|| FuncError::new("Invalid Semantic Version"))?;
    for alternative in constraint.split("||") {
        let mut all = true;
        let mut any_term = false;
        for term in split_constraint_terms(alternative) {
            any_term = true;
            if !check_term(&term, &v)? {
                all = false;
                break;
            }
        }
        if any_term && all {
            return Ok(true);
        }
    }
    Ok(false)
}

fn split_constraint_terms(s: &str) -> Vec<String> {
    // Terms are separated by commas or spaces; an operator may be followed by a space.
    let mut terms = Vec::new();
    let mut pending_op = String::new();
    for tok in s.split([',', ' ']).filter(|t| !t.is_empty()) {
        if tok.chars().all(|c| "<>=!~^".contains(c)) {
            pending_op.push_str(tok);
            continue;
        }
        terms.push(format!("{pending_op}{tok}"));
        pending_op.clear();
    }
    // Hyphen ranges "1.2 - 1.4" become ">=1.2" "<=1.4".
    let mut out = Vec::new();
    let mut k = 0;
    while k < terms.len() {
        if k + 2 < terms.len() && terms[k + 1] == "-" {
            out.push(format!(">={}", terms[k]));
            out.push(format!("<={}", terms[k + 2]));
            k += 3;
        } else {
            out.push(terms[k].clone());
            k += 1;
        }
    }
    out
}

fn check_term(term: &str, v: &semver::Version) -> Result<bool, FuncError> {
    let op_len = term
        .find(|c: char| !"<>=!~^".contains(c))
        .unwrap_or(term.len());
    let (op, ver) = term.split_at(op_len);
    let ver = ver.trim_start_matches('v');
    let bad = || FuncError::new(format!("improper constraint: {term}"));
    // Wildcards: 1.x, 1.2.*, *
    let parts: Vec<&str> = ver
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .collect();
    let wild_at = parts.iter().position(|p| matches!(*p, "x" | "X" | "*"));
    let base_text = match wild_at {
        Some(w) => parts[..w].join("."),
        None => ver.to_string(),
    };
    let c = if base_text.is_empty() {
        semver::Version::new(0, 0, 0)
    } else {
        parse_version(&base_text).ok_or_else(bad)?
    };
    let given_parts = match wild_at {
        Some(w) => w,
        None => parts.len(),
    };
    // A prerelease version only satisfies constraints that carry a prerelease.
    if !v.pre.is_empty() && c.pre.is_empty() {
        return Ok(false);
    }
    let cmp_core = |a: &semver::Version, b: &semver::Version| a.cmp(b);
    let upper_for = |n: usize| -> semver::Version {
        match n {
            0 => semver::Version::new(u64::MAX, 0, 0),
            1 => semver::Version::new(c.major + 1, 0, 0),
            _ => semver::Version::new(c.major, c.minor + 1, 0),
        }
    };
    use std::cmp::Ordering::*;
    Ok(match op {
        "" | "=" | "==" => {
            if given_parts < 3 {
                cmp_core(v, &c) != Less && v < &upper_for(given_parts)
            } else {
                cmp_core(v, &c) == Equal
            }
        }
        "!=" => {
            if given_parts < 3 {
                !(cmp_core(v, &c) != Less && v < &upper_for(given_parts))
            } else {
                cmp_core(v, &c) != Equal
            }
        }
        ">" => {
            if given_parts < 3 {
                v >= &upper_for(given_parts)
            } else {
                cmp_core(v, &c) == Greater
            }
        }
        ">=" | "=>" => cmp_core(v, &c) != Less,
        "<" => cmp_core(v, &c) == Less,
        "<=" | "=<" => {
            if given_parts < 3 {
                v < &upper_for(given_parts)
            } else {
                cmp_core(v, &c) != Greater
            }
        }
        "~" | "~>" => {
            cmp_core(v, &c) != Less && v < &upper_for(if given_parts == 1 { 1 } else { 2 })
        }
        "^" => {
            let upper = if c.major > 0 || given_parts == 1 {
                semver::Version::new(c.major + 1, 0, 0)
            } else if c.minor > 0 || given_parts == 2 {
                semver::Version::new(0, c.minor + 1, 0)
            } else {
                semver::Version::new(0, 0, c.patch + 1)
            };
            cmp_core(v, &c) != Less && v < &upper
        }
        _ => return Err(bad()),
    })
}

/// Field/method access on Helm's special objects; `None` when there is no such member.
pub fn object_member(obj: &Rc<Object>, name: &str, args: &[Value]) -> Option<R> {
    match &**obj {
        Object::Struct { fields, .. } => {
            let v = fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())?;
            if !args.is_empty() {
                return Some(err(format!(
                    "{name} has arguments but cannot be invoked as function"
                )));
            }
            Some(Ok(v))
        }
        Object::VersionSet(set) => match name {
            "Has" => Some(match args {
                [Value::String(v)] => Ok(Value::Bool(set.contains(v))),
                _ => err("wrong number of args for Has: want 1"),
            }),
            _ => None,
        },
        Object::Files(files) => {
            let path = match args.first() {
                Some(Value::String(p)) => p.clone(),
                _ => String::new(),
            };
            Some(match name {
                "Get" => Ok(Value::String(
                    files
                        .get(&path)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                )),
                "GetBytes" => Ok(Value::Bytes(Rc::new(
                    files.get(&path).cloned().unwrap_or_default(),
                ))),
                "Lines" => Ok(match files.get(&path) {
                    Some(b) => Value::list(
                        String::from_utf8_lossy(b)
                            .split('\n')
                            .map(Value::str)
                            .collect(),
                    ),
                    None => Value::list(vec![]),
                }),
                "Glob" => {
                    let re = match glob_regex(&path) {
                        Ok(r) => r,
                        Err(e) => return Some(Err(e)),
                    };
                    let matched: BTreeMap<String, Vec<u8>> = files
                        .iter()
                        .filter(|(k, _)| re.is_match(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Ok(Value::Object(Rc::new(Object::Files(Rc::new(matched)))))
                }
                "AsConfig" | "AsSecrets" => {
                    let mut m = BTreeMap::new();
                    for (k, v) in files.iter() {
                        let base = k.rsplit('/').next().unwrap_or(k).to_string();
                        let val = if name == "AsSecrets" {
                            base64::engine::general_purpose::STANDARD.encode(v)
                        } else {
                            String::from_utf8_lossy(v).into_owned()
                        };
                        m.insert(base, Value::String(val));
                    }
                    if m.is_empty() {
                        return Some(Ok(Value::str("")));
                    }
                    Ok(Value::String(
                        yaml::to_yaml_string(&Value::new_map(m))
                            .trim_end_matches('\n')
                            .to_string(),
                    ))
                }
                _ => return None,
            })
        }
    }
}

/// Glob with '/' as separator: `*` stays within a path segment, `**` crosses them.
fn glob_regex(pattern: &str) -> Result<regex_lite::Regex, FuncError> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut k = 0;
    let mut in_alt = false;
    while k < chars.len() {
        let c = chars[k];
        match c {
            '*' if chars.get(k + 1) == Some(&'*') => {
                re.push_str(".*");
                k += 1;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '{' => {
                re.push('(');
                in_alt = true;
            }
            '}' if in_alt => {
                re.push(')');
                in_alt = false;
            }
            ',' if in_alt => re.push('|'),
            '[' => {
                let end = chars[k..].iter().position(|x| *x == ']').map(|p| p + k);
                match end {
                    Some(e) => {
                        let body: String = chars[k + 1..e].iter().collect();
                        let body = body
                            .strip_prefix('!')
                            .map(|b| format!("^{b}"))
                            .unwrap_or(body);
                        re.push('[');
                        re.push_str(&body);
                        re.push(']');
                        k = e;
                    }
                    None => re.push_str("\\["),
                }
            }
            '\\' if k + 1 < chars.len() => {
                k += 1;
                re.push_str(&regex_lite::escape(&chars[k].to_string()));
            }
            other => re.push_str(&regex_lite::escape(&other.to_string())),
        }
        k += 1;
    }
    re.push('$');
    regex_lite::Regex::new(&re).map_err(|e| FuncError::new(format!("bad glob pattern: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_name_is_found_by_binary_search() {
        assert!(
            NAMES
                .windows(2)
                .all(|w| by_length_then_bytes(w[0], w[1]).is_lt()),
            "NAMES must stay sorted by length, then bytes, and unique"
        );
        for name in NAMES {
            assert!(is_function(name), "{name}");
        }
        for unknown in ["", "Include", "includ", "zzz", "toYAML"] {
            assert!(!is_function(unknown), "{unknown}");
        }
    }

    #[test]
    fn semver_constraints() {
        assert!(semver_check(">=1.21-0", "v1.37.0").expect("ok"));
        assert!(!semver_check("<1.19-0", "1.37.0").expect("ok"));
        assert!(semver_check("^1.2.0", "1.9.9").expect("ok"));
        assert!(semver_check("~1.2", "1.2.9").expect("ok"));
        assert!(!semver_check("~1.2", "1.3.0").expect("ok"));
        assert!(semver_check(">=1.16-0 <1.40-0 || 2.x", "1.37.0").expect("ok"));
    }

    #[test]
    fn globs() {
        let re = glob_regex("files/*.conf").expect("glob");
        assert!(re.is_match("files/a.conf"));
        assert!(!re.is_match("files/x/a.conf"));
        assert!(
            glob_regex("dashboards/**.json")
                .expect("glob")
                .is_match("dashboards/x/y.json")
        );
    }
}
