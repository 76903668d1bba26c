//! sprig functions that the main table lacked: aliases, Go-layout dates,
//! filepath helpers, small list/logic helpers, TOML input.

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::RngCore as _;

use crate::render::template::FuncError;
use crate::render::value::Value;

type R = Result<Value, FuncError>;

fn err<T>(msg: impl Into<String>) -> Result<T, FuncError> {
    Err(FuncError::new(msg))
}

fn want(name: &str, a: &[Value], n: usize) -> Result<(), FuncError> {
    if a.len() != n {
        return err(format!(
            "wrong number of args for {name}: want {n} got {}",
            a.len()
        ));
    }
    Ok(())
}

fn string(v: &Value) -> Result<String, FuncError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn int(v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Int(i) | Value::Int64(i) => Ok(*i),
        other => err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

/// Go's path.Clean.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn base_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn dir_path(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    clean_path(dir)
}

fn ext_path(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return p[i..].to_string();
        }
    }
    String::new()
}

/// Dispatches this module's functions; `None` for other names.
pub fn call(name: &str, a: &[Value]) -> Option<R> {
    Some(match name {
        "hello" => Ok(Value::str("Hello!")),
        "base" | "osBase" => one_str(name, a, base_path),
        "dir" | "osDir" => one_str(name, a, dir_path),
        "ext" | "osExt" => one_str(name, a, ext_path),
        "clean" | "osClean" => one_str(name, a, clean_path),
        "isAbs" | "osIsAbs" => (|| {
            want(name, a, 1)?;
            Ok(Value::Bool(string(&a[0])?.starts_with('/')))
        })(),
        "all" => Ok(Value::Bool(a.iter().all(|v| !super::is_empty(v)))),
        "any" => Ok(Value::Bool(a.iter().any(|v| !super::is_empty(v)))),
        "deepEqual" => (|| {
            want(name, a, 2)?;
            Ok(Value::Bool(super::deep_equal(&a[0], &a[1])))
        })(),
        "mustFromJson" => (|| {
            want(name, a, 1)?;
            let text = string(&a[0])?;
            let j: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| FuncError::new(e.to_string()))?;
            Ok(Value::from_json(&j))
        })(),
        "randBytes" => (|| {
            want(name, a, 1)?;
            let n = int(&a[0])?.clamp(0, 1 << 20) as usize;
            let mut buf = vec![0u8; n];
            rand::rngs::OsRng.fill_bytes(&mut buf);
            Ok(Value::str(
                base64::engine::general_purpose::STANDARD.encode(buf),
            ))
        })(),
        "mustSlice" => super::call("slice", a.to_vec()),
        "date_modify" => super::call("dateModify", a.to_vec()),
        "must_date_modify" => super::call("mustDateModify", a.to_vec()),
        "abbrevboth" => (|| {
            want(name, a, 3)?;
            Ok(Value::str(abbrev_both(
                int(&a[0])?,
                int(&a[1])?,
                &string(&a[2])?,
            )))
        })(),
        "fromToml" => (|| {
            want(name, a, 1)?;
            let text = string(&a[0])?;
            Ok(match toml::from_str::<toml::Table>(&text) {
                Ok(t) => from_toml(&toml::Value::Table(t)),
                Err(e) => {
                    let mut m = BTreeMap::new();
                    m.insert("Error".to_string(), Value::str(e.to_string()));
                    Value::new_map(m)
                }
            })
        })(),
        "date" => (|| {
            want(name, a, 2)?;
            format_date(&string(&a[0])?, &a[1], "Local")
        })(),
        "dateInZone" | "date_in_zone" => (|| {
            want(name, a, 3)?;
            format_date(&string(&a[0])?, &a[1], &string(&a[2])?)
        })(),
        "htmlDate" => (|| {
            want(name, a, 1)?;
            format_date("2006-01-02", &a[0], "Local")
        })(),
        "htmlDateInZone" => (|| {
            want(name, a, 2)?;
            format_date("2006-01-02", &a[0], &string(&a[1])?)
        })(),
        _ => return None,
    })
}

fn one_str(name: &str, a: &[Value], f: fn(&str) -> String) -> R {
    want(name, a, 1)?;
    Ok(Value::str(f(&string(&a[0])?)))
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

/// commons-lang's abbreviate with an offset, as sprig's abbrevboth uses it.
fn abbrev_both(left: i64, right: i64, s: &str) -> String {
    if right < 4 || (left > 0 && right < 7) {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let (mut offset, max) = (left, right);
    if chars.is_empty() || len <= max {
        return s.to_string();
    }
    let text = |from: i64, to: i64| -> String {
        chars[from.clamp(0, len) as usize..to.clamp(0, len) as usize]
            .iter()
            .collect()
    };
    if offset > len {
        offset = len;
    }
    if len - offset < max - 3 {
        offset = len - (max - 3);
    }
    if offset <= 4 {
        return format!("{}...", text(0, max - 3));
    }
    if offset + max - 3 < len {
        let rest = text(offset, len);
        return format!("...{}", abbrev_both(0, max - 3, &rest));
    }
    format!("...{}", text(len - (max - 3), len))
}

/// sprig's date family: ints are Unix seconds; anything else (including the
/// strings berth's `now` returns) means the current time, as sprig's toDate does
/// for values that are not times.
fn format_date(layout: &str, when: &Value, zone: &str) -> R {
    let ts = match when {
        Value::Int(i) | Value::Int64(i) => {
            jiff::Timestamp::from_second(*i).map_err(|e| FuncError::new(e.to_string()))?
        }
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .unwrap_or_else(|_| jiff::Timestamp::now()),
        _ => jiff::Timestamp::now(),
    };
    let tz = match zone {
        "Local" => jiff::tz::TimeZone::system(),
        "UTC" | "" => jiff::tz::TimeZone::UTC,
        other => jiff::tz::TimeZone::get(other).unwrap_or(jiff::tz::TimeZone::UTC),
    };
    Ok(Value::str(go_format(&ts.to_zoned(tz), layout)))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Formats with a Go reference-time layout ("2006-01-02T15:04:05Z07:00").
pub fn go_format(t: &jiff::Zoned, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    let month = t.month() as usize;
    let day = t.day();
    let hour = t.hour();
    let weekday = t.weekday().to_monday_zero_offset() as usize;
    let offset = t.offset().seconds();
    let abbrev = t
        .time_zone()
        .to_offset_info(t.timestamp())
        .abbreviation()
        .to_string();
    let zone = |sep: &str, z: bool, secs: bool| -> String {
        if z && offset == 0 {
            return "Z".into();
        }
        let sign = if offset < 0 { '-' } else { '+' };
        let o = offset.abs();
        let mut s = format!("{sign}{:02}{sep}{:02}", o / 3600, (o / 60) % 60);
        if secs {
            s.push_str(&format!("{sep}{:02}", o % 60));
        }
        s
    };
    while !rest.is_empty() {
        let tokens: &[(&str, &dyn Fn() -> String)] = &[
            ("January", &|| MONTHS[month - 1].to_string()),
            ("Jan", &|| MONTHS[month - 1][..3].to_string()),
            ("Monday", &|| DAYS[weekday].to_string()),
            ("Mon", &|| DAYS[weekday][..3].to_string()),
            ("MST", &|| abbrev.clone()),
            ("2006", &|| format!("{:04}", t.year())),
            ("-07:00:00", &|| zone(":", false, true)),
            ("-070000", &|| zone("", false, true)),
            ("-07:00", &|| zone(":", false, false)),
            ("-0700", &|| zone("", false, false)),
            ("-07", &|| zone("", false, false)[..3].to_string()),
            ("Z07:00:00", &|| zone(":", true, true)),
            ("Z070000", &|| zone("", true, true)),
            ("Z07:00", &|| zone(":", true, false)),
            ("Z0700", &|| zone("", true, false)),
            ("Z07", &|| {
                let z = zone("", true, false);
                z.get(..3).unwrap_or(&z).to_string()
            }),
            ("002", &|| format!("{:03}", t.day_of_year())),
            ("__2", &|| format!("{:>3}", t.day_of_year())),
            ("01", &|| format!("{month:02}")),
            ("02", &|| format!("{day:02}")),
            ("_2", &|| format!("{day:>2}")),
            ("06", &|| format!("{:02}", t.year() % 100)),
            ("15", &|| format!("{hour:02}")),
            ("03", &|| format!("{:02}", (hour + 11) % 12 + 1)),
            ("04", &|| format!("{:02}", t.minute())),
            ("05", &|| format!("{:02}", t.second())),
            ("PM", &|| if hour >= 12 { "PM" } else { "AM" }.to_string()),
            ("pm", &|| if hour >= 12 { "pm" } else { "am" }.to_string()),
            ("1", &|| month.to_string()),
            ("2", &|| day.to_string()),
            ("3", &|| ((hour + 11) % 12 + 1).to_string()),
            ("4", &|| t.minute().to_string()),
            ("5", &|| t.second().to_string()),
        ];
        // Fractional seconds: ".000" (fixed) or ".999" (trailing zeros trimmed).
        if let Some(after) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(','))
            && let Some(c) = after.chars().next()
            && (c == '0' || c == '9')
        {
            let n = after.chars().take_while(|x| *x == c).count();
            let next = after[n..].chars().next();
            if !next.is_some_and(|x| x.is_ascii_digit()) {
                let nanos = format!("{:09}", t.subsec_nanosecond());
                let digits = &nanos[..n.min(9)];
                if c == '0' {
                    out.push_str(&rest[..1]);
                    out.push_str(digits);
                } else {
                    let trimmed = digits.trim_end_matches('0');
                    if !trimmed.is_empty() {
                        out.push_str(&rest[..1]);
                        out.push_str(trimmed);
                    }
                }
                rest = &after[n..];
                continue;
            }
        }
        match tokens.iter().find(|(tok, _)| rest.starts_with(tok)) {
            Some((tok, f)) => {
                out.push_str(&f());
                rest = &rest[tok.len()..];
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layouts() {
        let t: jiff::Zoned = "2009-11-10T23:04:05.120+00:00[UTC]".parse().expect("time");
        assert_eq!(
            go_format(&t, "2006-01-02T15:04:05Z07:00 Mon Jan _2 3PM .000 .999 MST"),
            "2009-11-10T23:04:05Z Tue Nov 10 11PM .120 .12 UTC"
        );
    }

    #[test]
    fn paths_like_go() {
        assert_eq!(clean_path("a//b/./c/../d/"), "a/b/d");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(dir_path("a/b/"), "a/b");
        assert_eq!(dir_path("file"), ".");
        assert_eq!(ext_path("a.b/c"), "");
        assert_eq!(base_path("/a/b/"), "b");
    }
}
