//! `toYaml` exactly as Helm prints it: Helm marshals through JSON and then
//! emits with go-yaml v2 (natural key order, 2-space indent, unindented
//! sequences, 80-column folding of long strings, YAML 1.1 quoting).

use std::cmp::Ordering;

use gotemplate::Value;
use gotemplate::value::{format_float_g, format_float_json};

/// A value after Helm's JSON round trip.
#[derive(Debug, Clone)]
pub enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Plain>),
    Map(Vec<(String, Plain)>),
}

const MAX_DEPTH: usize = 200;

/// Normalizes a value the way `json.Marshal` followed by a YAML decode does.
pub fn to_plain(v: &Value) -> Plain {
    to_plain_depth(v, 0)
}

fn to_plain_depth(v: &Value, depth: usize) -> Plain {
    if depth > MAX_DEPTH {
        return Plain::Null;
    }
    match v {
        Value::Nil => Plain::Null,
        Value::Bool(b) => Plain::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Plain::Int(*i),
        Value::Float(f) => {
            if !f.is_finite() {
                return Plain::Null;
            }
            let text = format_float_json(*f);
            match text.parse::<i64>() {
                Ok(i) => Plain::Int(i),
                Err(_) => Plain::Float(*f),
            }
        }
        Value::String(s) => Plain::Str(s.clone()),
        // Helm's YAML goes through encoding/json: U+FFFD for each invalid byte.
        Value::BinaryString(b) => Plain::Str(String::from_utf8_lossy(b).into_owned()),
        Value::Bytes(b) => {
            use base64::Engine as _;
            Plain::Str(base64::engine::general_purpose::STANDARD.encode(&**b))
        }
        Value::List(l) => Plain::List(l.iter().map(|x| to_plain_depth(x, depth + 1)).collect()),
        // Helm's YAML goes through encoding/json: a nil map is null.
        Value::Map(m) if m.is_nil() => Plain::Null,
        Value::Map(m) => {
            let mut entries: Vec<(String, Plain)> = m
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), to_plain_depth(v, depth + 1)))
                .collect();
            entries.sort_by(|a, b| natural_key_cmp(&a.0, &b.0));
            Plain::Map(entries)
        }
        // A host object is written as encoding/json sees it.
        Value::Object(o) => to_plain_depth(&o.marshal(), depth + 1),
    }
}

/// go-yaml v2's map key order: runs of digits compare numerically and
/// letters sort after other characters.
pub fn natural_key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        // Compare the digit runs starting here as numbers.
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// How sequences under a key are written.
#[derive(Clone, Copy, PartialEq)]
pub enum SequenceIndent {
    /// At the key's own indentation, as go-yaml v2 writes them (`toYaml`).
    AtKey,
    /// Indented under the key, as Helm's `toYamlPretty` (go-yaml v3) writes them.
    UnderKey,
}

/// Marshals like go-yaml v2 (with the trailing newline).
pub fn to_yaml_string(v: &Value) -> String {
    to_yaml_string_with(v, SequenceIndent::AtKey)
}

/// Marshals with the given sequence style (with the trailing newline).
pub fn to_yaml_string_with(v: &Value, sequences: SequenceIndent) -> String {
    let mut out = String::new();
    Emitter { sequences }.node(&to_plain(v), 0, &mut out, Context::Root);
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Root,
    MapValue,
    ListItem,
}

struct Emitter {
    sequences: SequenceIndent,
}

impl Emitter {
    fn node(&self, p: &Plain, indent: usize, out: &mut String, ctx: Context) {
        match p {
            Plain::Map(entries) if !entries.is_empty() => {
                for (i, (k, v)) in entries.iter().enumerate() {
                    if !(i == 0 && ctx == Context::ListItem) && (ctx != Context::Root || i > 0) {
                        push_indent(out, indent);
                    }
                    let key = scalar_text(k, indent, false, true);
                    out.push_str(&key);
                    out.push(':');
                    self.value_after_key(v, indent, out);
                }
            }
            Plain::List(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    if !(i == 0 && ctx == Context::ListItem) && (ctx != Context::Root || i > 0) {
                        push_indent(out, indent);
                    }
                    out.push_str("- ");
                    match item {
                        Plain::Map(e) if !e.is_empty() => {
                            self.node(item, indent + 2, out, Context::ListItem)
                        }
                        Plain::List(l) if !l.is_empty() => {
                            self.node(item, indent + 2, out, Context::ListItem)
                        }
                        scalar => {
                            out.push_str(&scalar_string(scalar, indent + 2, 2 + indent));
                            out.push('\n');
                        }
                    }
                }
            }
            scalar => {
                out.push_str(&scalar_string(scalar, indent + 2, indent));
                out.push('\n');
            }
        }
    }

    fn value_after_key(&self, v: &Plain, indent: usize, out: &mut String) {
        match v {
            Plain::Map(e) if !e.is_empty() => {
                out.push('\n');
                self.node(v, indent + 2, out, Context::MapValue);
            }
            Plain::List(l) if !l.is_empty() => {
                // go-yaml v2 does not indent a sequence under its key (v3 "pretty" does).
                out.push('\n');
                let under_key = self.sequences == SequenceIndent::UnderKey;
                self.node(
                    v,
                    if under_key { indent + 2 } else { indent },
                    out,
                    Context::MapValue,
                );
            }
            scalar => {
                out.push(' ');
                let col = out.len() - out.rfind('\n').map(|i| i + 1).unwrap_or(0);
                out.push_str(&scalar_string(scalar, indent + 2, col));
                out.push('\n');
            }
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

/// A scalar's text. `indent` is where continuation/block lines go, `column` is
/// the column the scalar starts at (for folding long lines).
fn scalar_string(p: &Plain, indent: usize, column: usize) -> String {
    match p {
        Plain::Null => "null".into(),
        Plain::Bool(b) => b.to_string(),
        Plain::Int(i) => i.to_string(),
        Plain::Float(f) => {
            if f.is_nan() {
                ".nan".into()
            } else if f.is_infinite() {
                if *f > 0.0 {
                    "+.inf".into()
                } else {
                    "-.inf".into()
                }
            } else {
                format_float_g(*f)
            }
        }
        Plain::Str(s) => scalar_text(s, indent, true, false).replace_column(column, indent),
        Plain::Map(_) => "{}".into(),
        Plain::List(_) => "[]".into(),
    }
}

/// Chosen representation of a string scalar (folding applied later).
struct ScalarText {
    style: Style,
    text: String,
}

#[derive(PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

trait ReplaceColumn {
    fn replace_column(self, column: usize, indent: usize) -> String;
}

impl ReplaceColumn for ScalarText {
    fn replace_column(self, column: usize, indent: usize) -> String {
        match self.style {
            Style::Literal => literal_block(&self.text, indent),
            Style::Plain => fold(&self.text, column, indent, None),
            Style::Single => fold(
                &format!("'{}'", self.text.replace('\'', "''")),
                column,
                indent,
                None,
            ),
            Style::Double => fold(&double_quote(&self.text), column, indent, Some(())),
        }
    }
}

impl ReplaceColumn for String {
    fn replace_column(self, _: usize, _: usize) -> String {
        self
    }
}

fn scalar_text(s: &str, _indent: usize, allow_block: bool, is_key: bool) -> ScalarTextOrString {
    let style = choose_style(s, allow_block && !is_key);
    if is_key {
        // Keys are simple keys: never folded or block-styled.
        return ScalarTextOrString::Str(match style {
            Style::Plain => s.to_string(),
            Style::Single => format!("'{}'", s.replace('\'', "''")),
            _ => double_quote(s),
        });
    }
    ScalarTextOrString::Text(ScalarText {
        style,
        text: s.to_string(),
    })
}

enum ScalarTextOrString {
    Text(ScalarText),
    Str(String),
}

impl ReplaceColumn for ScalarTextOrString {
    fn replace_column(self, column: usize, indent: usize) -> String {
        match self {
            ScalarTextOrString::Text(t) => t.replace_column(column, indent),
            ScalarTextOrString::Str(s) => s,
        }
    }
}

impl std::ops::Deref for ScalarTextOrString {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            ScalarTextOrString::Text(t) => &t.text,
            ScalarTextOrString::Str(s) => s,
        }
    }
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || u == 0x85
        || ((0xA0..=0xD7FF).contains(&u))
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
        || (0x10000..=0x10FFFF).contains(&u)
}

fn is_blank_or_end(c: Option<char>) -> bool {
    matches!(c, None | Some(' ') | Some('\t') | Some('\n') | Some('\r'))
}

/// Would a plain scalar be read back as something other than a string (YAML 1.1)?
pub fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "yes",
        "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    let first = s.chars().next();
    if !matches!(first, Some(c) if c.is_ascii_digit() || c == '+' || c == '-' || c == '.') {
        return false;
    }
    let plain = s.replace('_', "");
    if go_parse_int(&plain) {
        return true;
    }
    if let Some(b) = plain.strip_prefix("0b")
        && !b.is_empty()
        && b.chars().all(|c| c == '0' || c == '1')
    {
        return true;
    }
    if is_yaml_float(&plain) {
        return true;
    }
    if is_base60_float(s) || is_timestamp(s) {
        return true;
    }
    false
}

/// strconv.ParseInt(s, 0, 64) success (also tried as unsigned by go-yaml).
fn go_parse_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    let lower = body.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    !digits.is_empty() && u128::from_str_radix(digits, radix).is_ok_and(|v| v <= u64::MAX as u128)
}

fn is_yaml_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mant_ok = if let Some(frac) = mant.strip_prefix('.') {
        !frac.is_empty() && frac.bytes().all(|c| c.is_ascii_digit())
    } else {
        let (int, frac) = match mant.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mant, ""),
        };
        !int.is_empty()
            && int.bytes().all(|c| c.is_ascii_digit())
            && frac.bytes().all(|c| c.is_ascii_digit())
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        }
    };
    mant_ok && exp_ok
}

fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, frac) = match b.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (b, None),
    };
    if let Some(f) = frac
        && !f.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return false;
    }
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if head.is_empty()
        || !head.as_bytes()[0].is_ascii_digit()
        || !head.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return false;
    }
    rest.iter().all(|p| {
        let pb = p.as_bytes();
        match pb.len() {
            1 => pb[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&pb[0]) && pb[1].is_ascii_digit(),
            _ => false,
        }
    })
}

/// go-yaml v2 treats unquoted timestamps (2001-12-14, 2001-12-14T21:59:43Z, ...) as timestamps.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 10 || !(b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-') {
        return false;
    }
    let date_ok = |d: &[u8]| {
        d.len() == 10
            && d[..4].iter().all(u8::is_ascii_digit)
            && d[4] == b'-'
            && d[5..7].iter().all(u8::is_ascii_digit)
            && d[7] == b'-'
            && d[8..10].iter().all(u8::is_ascii_digit)
    };
    if b.len() == 10 {
        return date_ok(b);
    }
    if !date_ok(&b[..10]) {
        return false;
    }
    let rest = &s[10..];
    let rest = rest.strip_prefix(['T', 't', ' ']).unwrap_or("");
    jiff::Timestamp::strptime("%H:%M:%S%.f%:z", rest).is_ok()
        || jiff::civil::Time::strptime("%H:%M:%S%.f", rest.trim_end_matches('Z')).is_ok()
        || jiff::civil::Time::strptime("%H:%M:%S", rest.trim_end_matches('Z')).is_ok()
}

fn choose_style(s: &str, allow_block: bool) -> Style {
    if s.contains('\n') {
        let special = s.chars().any(|c| !is_printable(c));
        let space_break = s.contains(" \n");
        let trailing_space = s.ends_with(' ');
        if allow_block && !special && !space_break && !trailing_space {
            return Style::Literal;
        }
        return Style::Double;
    }
    if resolves_to_non_string(s) {
        return Style::Double;
    }
    let chars: Vec<char> = s.chars().collect();
    let special = chars.iter().any(|c| !is_printable(*c));
    if special {
        return Style::Double;
    }
    let mut plain = true;
    if s.starts_with(' ') || s.ends_with(' ') {
        plain = false;
    }
    if (s.starts_with("---") || s.starts_with("...")) && is_blank_or_end(chars.get(3).copied()) {
        plain = false;
    }
    for (i, c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => plain = false,
                '?' | ':' | '-' if is_blank_or_end(next) => plain = false,
                _ => {}
            }
        } else {
            match c {
                ':' if is_blank_or_end(next) => plain = false,
                '#' if matches!(chars[i - 1], ' ' | '\t') => plain = false,
                _ => {}
            }
        }
    }
    if plain { Style::Plain } else { Style::Single }
}

fn double_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) || c == '\u{feff}' => {
                let u = c as u32;
                if u <= 0xFF {
                    out.push_str(&format!("\\x{u:02X}"));
                } else if u <= 0xFFFF {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\U{u:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Folds a flow scalar at spaces once past column 80, like go-yaml's emitter.
fn fold(text: &str, start_column: usize, indent: usize, double: Option<()>) -> String {
    const BEST_WIDTH: usize = 80;
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut column = start_column;
    let mut prev_space = false;
    let n = chars.len();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if c == ' ' {
            let interior = double.is_none() || (i != 0 && i != n - 1);
            let quoted_interior = i != 0 && i + 1 != n;
            let next_is_space = chars.get(i + 1) == Some(&' ');
            let can_break = if double.is_some() {
                interior
            } else {
                quoted_interior && !next_is_space
            };
            if !prev_space && column > BEST_WIDTH && can_break {
                out.push('\n');
                for _ in 0..indent {
                    out.push(' ');
                }
                column = indent;
                if double.is_some() && next_is_space {
                    out.push('\\');
                    column += 1;
                }
            } else {
                out.push(' ');
                column += 1;
            }
            prev_space = true;
        } else {
            out.push(c);
            column += 1;
            prev_space = false;
        }
        i += 1;
    }
    out
}

fn literal_block(s: &str, indent: usize) -> String {
    let mut header = String::from("|");
    if s.starts_with(' ') || s.starts_with('\n') {
        header.push('2');
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    match trailing {
        0 => header.push('-'),
        1 => {}
        _ => header.push('+'),
    }
    let body = if trailing == 0 { s } else { &s[..s.len() - 1] };
    let mut out = header;
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            for _ in 0..indent {
                out.push(' ');
            }
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(src: &str) -> String {
        let v: serde_yaml::Value = serde_yaml::from_str(src).expect("yaml");
        to_yaml_string(&crate::values::from_yaml(&v))
    }

    #[test]
    fn matches_helm_to_yaml() {
        // Expected texts from `helm template` (v3.22.0) with `toYaml .Values.v`.
        assert_eq!(y("{b: 2, a: 1}"), "a: 1\nb: 2\n");
        assert_eq!(
            y("{a10: 1, a9: 1, a_b: 1, aB: 1}"),
            "a_b: 1\na9: 1\na10: 1\naB: 1\n"
        );
        assert_eq!(
            y("{ll: [[1, 2], {a: 1, b: [x]}]}"),
            "ll:\n- - 1\n  - 2\n- a: 1\n  b:\n  - x\n"
        );
        assert_eq!(
            y("{i: 1000000, f: 1.5, big: 1e21}"),
            "big: 1e+21\nf: 1.5\ni: 1000000\n"
        );
        assert_eq!(
            y(
                r#"{date: "2024-01-01", num: "123", t: "true", empty: "", tilde: "~", hex: "0x1F", base60: "12:30", dot: ".5"}"#
            ),
            "base60: \"12:30\"\ndate: \"2024-01-01\"\ndot: \".5\"\nempty: \"\"\nhex: \"0x1F\"\nnum: \"123\"\nt: \"true\"\ntilde: \"~\"\n"
        );
        assert_eq!(
            y(
                r#"{colon: "a: b", hash: "a #b", star: "*x", dash: "- x", dash2: "-x", q: "it's", sq: "'x'", qm: "?x", trail: "x ", tab: "a\tb", url: "http://x"}"#
            ),
            "colon: 'a: b'\ndash: '- x'\ndash2: -x\nhash: 'a #b'\nq: it's\nqm: ?x\nsq: '''x'''\nstar: '*x'\ntab: \"a\\tb\"\ntrail: 'x '\nurl: http://x\n"
        );
        assert_eq!(
            y(r#"{multi: "line1\nline2\n", multi2: "line1\n line2", multi3: " lead\nx"}"#),
            "multi: |\n  line1\n  line2\nmulti2: |-\n  line1\n   line2\nmulti3: |2-\n   lead\n  x\n"
        );
        assert_eq!(
            y(
                r#"{long: "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq rrrr ssss tttt"}"#
            ),
            "long: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp\n  qqqq rrrr ssss tttt\n"
        );
        assert_eq!(
            y("{el: [], em: {}, nul: null}"),
            "el: []\nem: {}\nnul: null\n"
        );
        assert_eq!(y("[a, b]"), "- a\n- b\n");
    }
}
