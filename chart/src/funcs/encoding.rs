//! Encoders and decoders: base64 and base32, JSON, YAML (Helm's `toYaml`
//! and friends) and TOML.

use std::collections::BTreeMap;

use base64::Engine as _;
use gotemplate::func::arg::{err, string, string_bytes};
use gotemplate::value::format_float_g;
use gotemplate::{Func, FuncError, FuncResult, Param as P, Value};

use crate::yaml_emit::{SequenceIndent, to_yaml_string_with};
use crate::yaml11;

pub(super) const FUNCS: &[Func] = &[
    Func::go("b64enc", &[P::Str], None, |a| {
        Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(string_bytes(&a[0])?),
        ))
    })
    .reading_bytes(),
    Func::go("b64dec", &[P::Str], None, b64dec),
    Func::go("b32enc", &[P::Str], None, |a| {
        Ok(Value::String(
            data_encoding::BASE32.encode(&string_bytes(&a[0])?),
        ))
    })
    .reading_bytes(),
    Func::go("b32dec", &[P::Str], None, |a| {
        Ok(match go_base32_decode(string(&a[0])?.as_bytes()) {
            Ok(bytes) => Value::go_string(bytes),
            Err(message) => Value::String(message),
        })
    }),
    Func::go("toYaml", &[P::Any], None, |a| {
        Ok(yaml(&a[0], SequenceIndent::AtKey))
    }),
    Func::go("toYamlPretty", &[P::Any], None, |a| {
        Ok(yaml(&a[0], SequenceIndent::UnderKey))
    }),
    Func::go("fromYaml", &[P::Str], None, from_yaml),
    Func::go("fromYamlArray", &[P::Str], None, from_yaml_array),
    // sprig's toJson writes "" where mustToJson fails.
    Func::go("toJson", &[P::Any], None, |a| {
        Ok(json_or_empty(&a[0], Json::Plain))
    }),
    Func::go("mustToJson", &[P::Any], None, |a| json(&a[0], Json::Plain)),
    Func::go("toRawJson", &[P::Any], None, |a| {
        Ok(json_or_empty(&a[0], Json::Raw))
    }),
    Func::go("mustToRawJson", &[P::Any], None, |a| json(&a[0], Json::Raw)),
    Func::go("toPrettyJson", &[P::Any], None, |a| {
        Ok(json_or_empty(&a[0], Json::Pretty))
    }),
    Func::go("mustToPrettyJson", &[P::Any], None, |a| {
        Ok(json_or_empty(&a[0], Json::Pretty))
    }),
    Func::go("fromJson", &[P::Str], None, from_json_object),
    Func::go("mustFromJson", &[P::Str], None, |a| {
        let parsed: serde_json::Value =
            serde_json::from_str(&string(&a[0])?).map_err(|e| FuncError::new(e.to_string()))?;
        Ok(Value::from_json(&parsed))
    }),
    Func::go("fromJsonArray", &[P::Str], None, from_json_array),
    // Helm's toToml writes the encoder's error where mustToToml fails.
    Func::go("toToml", &[P::Any], None, |a| {
        Ok(Value::String(
            to_toml(&a[0])?.unwrap_or_else(|message| message),
        ))
    }),
    Func::go("fromToml", &[P::Str], None, from_toml_text),
];

/// Helm 4's additions: the failing forms of toYaml and toToml (Helm 4's
/// mustToJson fails where sprig's does, with the same message).
pub(super) const HELM4_FUNCS: &[Func] = &[
    Func::go("mustToYaml", &[P::Any], None, |a| {
        // toYaml goes through encoding/json: what it refuses fails here.
        to_json_value(&a[0], 0)?;
        Ok(yaml(&a[0], SequenceIndent::AtKey))
    }),
    Func::go("mustToToml", &[P::Any], None, |a| {
        to_toml(&a[0])?.map(Value::String).map_err(FuncError::new)
    }),
];

/// sprig's b64dec: the decoded bytes, or the decoder's error as the text.
fn b64dec(a: &[Value]) -> FuncResult {
    Ok(match go_base64_decode(string(&a[0])?.as_bytes()) {
        Ok(bytes) => Value::go_string(bytes),
        Err(message) => Value::String(message),
    })
}

/// Base64 as Go's `base64.StdEncoding.DecodeString` reads it: line breaks
/// anywhere are skipped, padding is required, the last character's unused
/// bits need not be zero, and an error names the byte Go stops at. The
/// offset comes from a walk of Go's decoder over `src`; the decoding
/// itself from the base64 crate.
fn go_base64_decode(src: &[u8]) -> Result<Vec<u8>, String> {
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    );
    if let Some(at) = base64_error_offset(src) {
        return Err(format!("illegal base64 data at input byte {at}"));
    }
    LENIENT
        .decode(without_line_breaks(src))
        .map_err(|e| e.to_string())
}

/// Where Go's base64 decoder fails on `src`, quantum by quantum (its
/// `decodeQuantum`), or `None` when it does not.
fn base64_error_offset(src: &[u8]) -> Option<usize> {
    let mut si = 0;
    while si < src.len() {
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                // A quantum cut short (Go counts back over its characters).
                return (j > 0).then(|| si - j);
            }
            let b = src[si];
            si += 1;
            if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' {
                j += 1;
                continue;
            }
            if is_line_break(b) {
                continue;
            }
            if b != b'=' || j < 2 {
                return Some(si - 1);
            }
            if j == 2 {
                // "==" is expected: the second '=' after any line breaks.
                while si < src.len() && is_line_break(src[si]) {
                    si += 1;
                }
                if si == src.len() {
                    return Some(src.len());
                }
                if src[si] != b'=' {
                    return Some(si - 1);
                }
                si += 1;
            }
            while si < src.len() && is_line_break(src[si]) {
                si += 1;
            }
            // Anything after the padding is an error.
            return (si < src.len()).then_some(si);
        }
    }
    None
}

/// Go's decoders skip '\r' and '\n' anywhere in their input.
fn is_line_break(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

fn without_line_breaks(src: &[u8]) -> Vec<u8> {
    src.iter().copied().filter(|b| !is_line_break(*b)).collect()
}

/// Base32 as Go's `base32.StdEncoding.DecodeString` reads it: line breaks
/// removed first, padding required, unused bits not checked, input after
/// the padding ignored, and an error names the byte (of the input without
/// line breaks) Go stops at. The offsets come from a walk of Go's decoder;
/// the decoding itself from data-encoding.
fn go_base32_decode(src: &[u8]) -> Result<Vec<u8>, String> {
    static LENIENT: std::sync::LazyLock<Option<data_encoding::Encoding>> =
        std::sync::LazyLock::new(|| {
            let mut spec = data_encoding::BASE32_NOPAD.specification();
            spec.check_trailing_bits = false;
            spec.encoding().ok()
        });
    let src = without_line_breaks(src);
    let data_end =
        base32_data_end(&src).map_err(|at| format!("illegal base32 data at input byte {at}"))?;
    match &*LENIENT {
        Some(encoding) => encoding.decode(&src[..data_end]).map_err(|e| e.to_string()),
        None => Err("base32: no decoder".into()),
    }
}

/// Go's base32 decoder over `src` (without line breaks): `Ok` with where
/// the encoded data ends (before the padding), or `Err` with the offset Go
/// reports.
fn base32_data_end(src: &[u8]) -> Result<usize, usize> {
    let olen = src.len();
    let mut rest = src;
    while !rest.is_empty() {
        let mut j = 0;
        while j < 8 {
            let Some((&b, after)) = rest.split_first() else {
                return Err(olen - j);
            };
            rest = after;
            if b == b'=' && j >= 2 && rest.len() < 8 {
                if rest.len() + j < 7 {
                    return Err(olen);
                }
                for k in 0..7 - j {
                    if rest.len() > k && rest[k] != b'=' {
                        return Err(olen - rest.len() + k - 1);
                    }
                }
                // 1, 3 and 6 characters decode to no whole byte.
                if matches!(j, 1 | 3 | 6) {
                    return Err(olen - rest.len() - 1);
                }
                return Ok(olen - rest.len() - 1);
            }
            if !matches!(b, b'A'..=b'Z' | b'2'..=b'7') {
                return Err(olen - rest.len() - 1);
            }
            j += 1;
        }
    }
    Ok(olen)
}

fn yaml(v: &Value, sequences: SequenceIndent) -> Value {
    Value::str(to_yaml_string_with(v, sequences).trim_end_matches('\n'))
}

/// sprig's decoders report a failure in the result, not as an error: a
/// dict with the message under "Error".
fn error_map(message: String) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Error".to_string(), Value::String(message));
    Value::new_map(m)
}

/// encoding/json's name for a decoded value's kind, as its errors say it.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Float(_) | Value::Int(_) | Value::Int64(_) => "number",
        Value::Bool(_) => "bool",
        Value::List(_) => "array",
        _ => "object",
    }
}

/// Parses YAML text as Helm's fromYaml does: YAML 1.1, the first document,
/// through JSON (numbers are float64).
pub(crate) fn parse_yaml_value(text: &str) -> Result<Value, String> {
    yaml11::parse_first(text).map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))
}

fn from_yaml(a: &[Value]) -> FuncResult {
    Ok(match parse_yaml_value(&string(&a[0])?) {
        Ok(Value::Map(m)) => Value::Map(m),
        Ok(Value::Nil) => Value::new_map(BTreeMap::new()),
        Ok(other) => error_map(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        )),
        Err(e) => error_map(e),
    })
}

fn from_yaml_array(a: &[Value]) -> FuncResult {
    Ok(match parse_yaml_value(&string(&a[0])?) {
        Ok(Value::List(l)) => Value::List(l),
        Ok(Value::Nil) => Value::list(vec![]),
        Ok(other) => Value::list(vec![Value::str(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_kind(&other)
        ))]),
        Err(e) => Value::list(vec![Value::str(e)]),
    })
}

fn from_json_object(a: &[Value]) -> FuncResult {
    Ok(
        match serde_json::from_str::<serde_json::Value>(&string(&a[0])?) {
            Ok(j @ serde_json::Value::Object(_)) => Value::from_json(&j),
            Ok(other) => error_map(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&Value::from_json(&other))
            )),
            Err(e) => error_map(e.to_string()),
        },
    )
}

fn from_json_array(a: &[Value]) -> FuncResult {
    Ok(
        match serde_json::from_str::<serde_json::Value>(&string(&a[0])?) {
            Ok(j @ serde_json::Value::Array(_)) => Value::from_json(&j),
            Ok(_) => Value::list(vec![Value::str(
                "json: cannot unmarshal into Go value of type []interface {}",
            )]),
            Err(e) => Value::list(vec![Value::str(e.to_string())]),
        },
    )
}

/// How `toJson` and its relatives write.
#[derive(Clone, Copy, PartialEq)]
enum Json {
    /// Compact, with `<`, `>` and `&` escaped (Go's default).
    Plain,
    /// Compact, nothing escaped (`toRawJson`).
    Raw,
    /// Indented by two spaces, HTML escaped (`toPrettyJson`).
    Pretty,
}

fn json_or_empty(v: &Value, style: Json) -> Value {
    json(v, style).unwrap_or_else(|_| Value::str(""))
}

fn json(v: &Value, style: Json) -> FuncResult {
    let j = to_json_value(v, 0)?;
    let text = if style == Json::Pretty {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(&j, &mut ser).map_err(|e| FuncError::new(e.to_string()))?;
        String::from_utf8_lossy(&buf).into_owned()
    } else {
        serde_json::to_string(&j).map_err(|e| FuncError::new(e.to_string()))?
    };
    Ok(Value::String(if style == Json::Raw {
        text
    } else {
        text.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }))
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
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
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
        // encoding/json writes U+FFFD for each invalid byte.
        Value::BinaryString(b) => {
            serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
        }
        Value::Bytes(b) => {
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(&**b))
        }
        Value::List(l) => serde_json::Value::Array(
            l.iter()
                .map(|x| to_json_value(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) if m.is_nil() => serde_json::Value::Null,
        Value::Map(m) => serde_json::Value::Object(
            m.borrow()
                .iter()
                .map(|(k, x)| Ok((k.clone(), to_json_value(x, depth + 1)?)))
                .collect::<Result<_, FuncError>>()?,
        ),
        Value::Object(o) => to_json_value(&o.marshal(), depth + 1)?,
    })
}

/// BurntSushi/toml's encoding of a dict (sprig's toToml).
/// `v` as TOML, as BurntSushi/toml's encoder (which both Helms link) writes
/// it: `Ok(Err(text))` is the encoder's own error, which `toToml` prints
/// and `mustToToml` fails with; `Err` is where the encoder panics in Go
/// (a nil given), which fails both.
fn to_toml(v: &Value) -> Result<Result<String, String>, FuncError> {
    if v.is_nil() {
        return err("reflect: call of reflect.Value.Type on zero Value");
    }
    let mut encoder = TomlEncoder::default();
    Ok(encoder.encode(&[], v).map(|()| encoder.out))
}

/// What the encoder takes a value for (its `tomlTypeOfGo`).
#[derive(PartialEq, Eq)]
enum TomlType {
    /// A map (a TOML table).
    Table,
    /// A non-empty list of maps only (an array of tables).
    TableArray,
    Other,
}

#[derive(Default)]
struct TomlEncoder {
    out: String,
}

impl TomlEncoder {
    fn encode(&mut self, key: &[&str], v: &Value) -> Result<(), String> {
        match v {
            Value::Nil => Ok(()),
            Value::Map(m) => self.table(key, &m.borrow()),
            Value::Object(o) => self.encode(key, &o.marshal()),
            Value::List(l) if toml_type(v)? == TomlType::TableArray => {
                if key.is_empty() {
                    return Err("toml: top-level values must be Go maps or structs".into());
                }
                for item in l.iter() {
                    let Value::Map(m) = item else { continue };
                    self.newline();
                    self.out
                        .push_str(&format!("{}[[{}]]", indent(key), toml_key(key)));
                    self.newline();
                    self.map(key, &m.borrow(), false)?;
                }
                Ok(())
            }
            _ => self.key_value(key, v, false),
        }
    }

    fn table(&mut self, key: &[&str], m: &BTreeMap<String, Value>) -> Result<(), String> {
        // An empty line between top-level tables (not before the first).
        if key.len() == 1 {
            self.newline();
        }
        if !key.is_empty() {
            self.out
                .push_str(&format!("{}[{}]", indent(key), toml_key(key)));
            self.newline();
        }
        self.map(key, m, false)
    }

    /// A map's keys, those whose values are no tables first; `inline` as
    /// `{k = v, ...}`.
    fn map(
        &mut self,
        key: &[&str],
        m: &BTreeMap<String, Value>,
        inline: bool,
    ) -> Result<(), String> {
        let mut direct = Vec::new();
        let mut tables = Vec::new();
        for (k, v) in m {
            match toml_type(v)? {
                TomlType::Table | TomlType::TableArray => tables.push((k.as_str(), v)),
                TomlType::Other => direct.push((k.as_str(), v)),
            }
        }
        if inline {
            self.out.push('{');
        }
        let more_after_direct = !tables.is_empty();
        for (entries, trailing) in [(direct, more_after_direct), (tables, false)] {
            let count = entries.len();
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if v.is_nil() {
                    continue;
                }
                if inline {
                    self.key_value(&[k], v, true)?;
                    // As the encoder does, counting skipped nils too.
                    if trailing || i != count - 1 {
                        self.out.push_str(", ");
                    }
                } else {
                    let mut sub = key.to_vec();
                    sub.push(k);
                    self.encode(&sub, v)?;
                }
            }
        }
        if inline {
            self.out.push('}');
        }
        Ok(())
    }

    fn key_value(&mut self, key: &[&str], v: &Value, inline: bool) -> Result<(), String> {
        if let Some(last) = key.last() {
            self.out
                .push_str(&format!("{}{} = ", indent(key), toml_key(&[last])));
        }
        self.element(v)?;
        if !key.is_empty() && !inline {
            self.newline();
        }
        Ok(())
    }

    fn element(&mut self, v: &Value) -> Result<(), String> {
        match v {
            Value::String(s) => self.out.push_str(&toml_string(s)),
            Value::BinaryString(b) => self.out.push_str(&toml_string(&String::from_utf8_lossy(b))),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) | Value::Int64(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) if f.is_nan() => {
                self.out
                    .push_str(if f.is_sign_negative() { "-nan" } else { "nan" })
            }
            Value::Float(f) if f.is_infinite() => {
                self.out.push_str(if *f < 0.0 { "-inf" } else { "inf" })
            }
            Value::Float(f) => {
                let text = format_float_g(*f);
                // TOML floats have a decimal point or an exponent.
                let decimal = text.contains(['.', 'e']);
                self.out.push_str(&text);
                if !decimal {
                    self.out.push_str(".0");
                }
            }
            Value::Bytes(b) => {
                let items: Vec<String> = b.iter().map(u8::to_string).collect();
                self.out.push_str(&format!("[{}]", items.join(", ")));
            }
            Value::List(l) => {
                self.out.push('[');
                for (i, item) in l.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.element(item)?;
                }
                self.out.push(']');
            }
            Value::Map(m) => self.map(&[], &m.borrow(), true)?,
            Value::Object(o) => self.element(&o.marshal())?,
            // Only reached inside a list, which toml_type has refused.
            Value::Nil => return Err("toml: cannot encode array with nil element".into()),
        }
        Ok(())
    }

    /// A line break, unless nothing has been written yet.
    fn newline(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }
}

/// The encoder's tomlTypeOfGo; a list with a nil anywhere in it fails.
fn toml_type(v: &Value) -> Result<TomlType, String> {
    Ok(match v {
        Value::Map(_) => TomlType::Table,
        Value::Object(o) => toml_type(&o.marshal())?,
        Value::List(l) if !l.is_empty() => {
            let mut all_tables = true;
            for item in l.iter() {
                if item.is_nil() {
                    return Err("toml: cannot encode array with nil element".into());
                }
                all_tables &= toml_type(item)? == TomlType::Table;
            }
            if all_tables {
                TomlType::TableArray
            } else {
                TomlType::Other
            }
        }
        _ => TomlType::Other,
    })
}

/// Two spaces per level below the top.
fn indent(key: &[&str]) -> String {
    "  ".repeat(key.len().saturating_sub(1))
}

/// A dotted key, each piece bare when it can be.
fn toml_key(key: &[&str]) -> String {
    let piece = |k: &&str| {
        if !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            k.to_string()
        } else {
            toml_string(k)
        }
    };
    key.iter().map(piece).collect::<Vec<_>>().join(".")
}

/// A basic string: quotes, backslashes and control characters escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\0'..='\u{1f}' | '\u{7f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn from_toml_text(a: &[Value]) -> FuncResult {
    Ok(match toml::from_str::<toml::Table>(&string(&a[0])?) {
        Ok(t) => from_toml(&toml::Value::Table(t)),
        Err(e) => error_map(e.to_string()),
    })
}

fn from_toml(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::str(s.clone()),
        toml::Value::Integer(i) => Value::Int64(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::str(d.to_string()),
        toml::Value::Array(items) => Value::list(items.iter().map(from_toml).collect()),
        toml::Value::Table(t) => {
            Value::new_map(t.iter().map(|(k, v)| (k.clone(), from_toml(v))).collect())
        }
    }
}
