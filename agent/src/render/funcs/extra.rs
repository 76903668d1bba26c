//! sprig functions that the main table lacked: aliases, Go-layout dates,
//! filepath helpers, small list/logic helpers, TOML input.

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::RngCore as _;

use crate::render::template::FuncError;
use crate::render::value::Value;

use super::args::{R, err, int, string, want};

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

/// Time-valued functions, with times carried as RFC 3339 strings.
pub fn call_time(name: &str, a: &[Value]) -> Option<R> {
    Some(match name {
        "sha1sum" => (|| {
            want(name, a, 1)?;
            use sha1::Digest as _;
            Ok(Value::str(hex::encode(sha1::Sha1::digest(
                string(&a[0])?.as_bytes(),
            ))))
        })(),
        "b32dec" => (|| {
            want(name, a, 1)?;
            let bytes = data_encoding::BASE32
                .decode(string(&a[0])?.as_bytes())
                .unwrap_or_default();
            Ok(Value::str(String::from_utf8_lossy(&bytes).into_owned()))
        })(),
        "initials" => (|| {
            want(name, a, 1)?;
            Ok(Value::str(
                string(&a[0])?
                    .split_whitespace()
                    .filter_map(|w| w.chars().next())
                    .collect::<String>(),
            ))
        })(),
        "wrap" => (|| {
            want(name, a, 2)?;
            Ok(Value::str(wrap(&string(&a[1])?, int(&a[0])?, "\n", false)))
        })(),
        "wrapWith" => (|| {
            want(name, a, 3)?;
            Ok(Value::str(wrap(
                &string(&a[2])?,
                int(&a[0])?,
                &string(&a[1])?,
                true,
            )))
        })(),
        // helm template resolves no names unless --enable-dns.
        "getHostByName" => Ok(Value::str("")),
        "toDate" | "mustToDate" => (|| {
            want(name, a, 2)?;
            match parse_go_time(&string(&a[0])?, &string(&a[1])?) {
                Ok(ts) => Ok(time_value(ts)),
                Err(e) if name == "mustToDate" => err(e),
                // sprig's toDate yields the zero time on a parse error.
                Err(_) => Ok(time_value(
                    jiff::Timestamp::from_second(-62135596800).unwrap_or_default(),
                )),
            }
        })(),
        "dateModify" | "mustDateModify" => (|| {
            want(name, a, 2)?;
            let t = to_time(&a[1]);
            match parse_go_duration(&string(&a[0])?) {
                Some(nanos) => Ok(time_value(
                    t.checked_add(jiff::SignedDuration::from_nanos(nanos))
                        .unwrap_or(t),
                )),
                None if name == "mustDateModify" => {
                    err(format!("time: invalid duration {:?}", string(&a[0])?))
                }
                None => Ok(time_value(t)),
            }
        })(),
        "ago" => (|| {
            want(name, a, 1)?;
            let since = jiff::Timestamp::now().duration_since(to_time(&a[0]));
            let secs = (since.as_nanos() as f64 / 1e9).round() as i128;
            Ok(Value::str(go_duration_string(secs * 1_000_000_000)))
        })(),
        "duration" => (|| {
            want(name, a, 1)?;
            // sprig reads only strings and int64s; anything else is zero.
            let n: i128 = match &a[0] {
                Value::String(s) => s.parse::<i64>().unwrap_or(0) as i128,
                Value::Int64(i) => *i as i128,
                _ => 0,
            };
            Ok(Value::str(go_duration_string(n * 1_000_000_000)))
        })(),
        "durationRound" => (|| {
            want(name, a, 1)?;
            let nanos: i128 = match &a[0] {
                Value::String(s) => parse_go_duration(s).unwrap_or(0) as i128,
                Value::Int64(i) => *i as i128,
                _ => 0,
            };
            Ok(Value::str(duration_round(nanos.unsigned_abs())))
        })(),
        "urlParse" => (|| {
            want(name, a, 1)?;
            Ok(url_parse(&string(&a[0])?))
        })(),
        "urlJoin" => (|| {
            want(name, a, 1)?;
            Ok(Value::str(url_join(&a[0])))
        })(),
        _ => return None,
    })
}

fn time_value(ts: jiff::Timestamp) -> Value {
    Value::str(ts.to_string())
}

/// A time argument: Unix seconds, a time string, otherwise now (as sprig's toDate).
fn to_time(v: &Value) -> jiff::Timestamp {
    match v {
        Value::Int(i) | Value::Int64(i) => {
            jiff::Timestamp::from_second(*i).unwrap_or_else(|_| jiff::Timestamp::now())
        }
        Value::String(s) => s.parse().unwrap_or_else(|_| jiff::Timestamp::now()),
        _ => jiff::Timestamp::now(),
    }
}

/// Parses `text` with a Go reference layout, in the local zone unless it has an offset.
fn parse_go_time(layout: &str, text: &str) -> Result<jiff::Timestamp, String> {
    let mut fmt = String::new();
    let mut rest = layout;
    let map: &[(&str, &str)] = &[
        ("January", "%B"),
        ("Jan", "%b"),
        ("Monday", "%A"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("2006", "%Y"),
        ("Z07:00", "%:z"),
        ("-07:00", "%:z"),
        ("Z0700", "%z"),
        ("-0700", "%z"),
        ("01", "%m"),
        ("02", "%d"),
        ("_2", "%e"),
        ("06", "%y"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("1", "%m"),
        ("2", "%d"),
        ("3", "%I"),
        ("4", "%M"),
        ("5", "%S"),
        ("%", "%%"),
    ];
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.')
            && let Some(c) = after.chars().next()
            && (c == '0' || c == '9')
        {
            let n = after.chars().take_while(|x| *x == c).count();
            fmt.push_str("%.f");
            rest = &after[n..];
            continue;
        }
        match map.iter().find(|(tok, _)| rest.starts_with(tok)) {
            Some((tok, f)) => {
                fmt.push_str(f);
                rest = &rest[tok.len()..];
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                fmt.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    let tm = jiff::fmt::strtime::BrokenDownTime::parse(&fmt, text)
        .map_err(|e| format!("parsing time {text:?} as {layout:?}: {e}"))?;
    if tm.offset().is_some() {
        return tm.to_timestamp().map_err(|e| e.to_string());
    }
    let mut tm = tm;
    if tm.hour().is_none() {
        tm.set_hour(Some(0)).map_err(|e| e.to_string())?;
        tm.set_minute(Some(0)).map_err(|e| e.to_string())?;
        tm.set_second(Some(0)).map_err(|e| e.to_string())?;
    }
    let dt = tm.to_datetime().map_err(|e| e.to_string())?;
    dt.to_zoned(jiff::tz::TimeZone::system())
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

/// Go's time.ParseDuration, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

/// Go's time.Duration.String().
pub fn go_duration_string(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000_000_000 {
        let (v, unit) = if u < 1_000 {
            return format!("{sign}{u}ns");
        } else if u < 1_000_000 {
            (u as f64 / 1e3, "µs")
        } else {
            (u as f64 / 1e6, "ms")
        };
        return format!("{sign}{}{unit}", trim_float(v));
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s_nanos = u % 60_000_000_000;
    let secs = trim_float(s_nanos as f64 / 1e9);
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h{m}m"));
    } else if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{secs}s"));
    out
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn duration_round(u: u128) -> String {
    const SECOND: u128 = 1_000_000_000;
    const MINUTE: u128 = 60 * SECOND;
    const HOUR: u128 = 60 * MINUTE;
    const DAY: u128 = 24 * HOUR;
    const MONTH: u128 = 30 * DAY;
    const YEAR: u128 = 365 * DAY;
    for (unit, suffix) in [
        (YEAR, "y"),
        (MONTH, "mo"),
        (DAY, "d"),
        (HOUR, "h"),
        (MINUTE, "m"),
        (SECOND, "s"),
    ] {
        if u > unit {
            return format!("{}{suffix}", u / unit);
        }
    }
    "0s".into()
}

/// Word wrapping as sprig's wrap/wrapWith (commons-lang WordUtils.wrap).
fn wrap(s: &str, width: i64, newline: &str, long_words: bool) -> String {
    if s.is_empty() {
        return String::new();
    }
    let width = width.max(1) as usize;
    let b = s.as_bytes();
    let text =
        |from: usize, to: usize| String::from_utf8_lossy(&b[from..to.min(b.len())]).into_owned();
    let mut out = String::new();
    let mut offset = 0usize;
    while b.len() - offset > width {
        if b[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = (width + offset + 1).min(b.len());
        match b[offset..end].iter().rposition(|c| *c == b' ') {
            Some(i) => {
                out.push_str(&text(offset, offset + i));
                out.push_str(newline);
                offset += i + 1;
            }
            None if long_words => {
                out.push_str(&text(offset, offset + width));
                out.push_str(newline);
                offset += width;
            }
            None => {
                let end = width + offset;
                match b[end..].iter().position(|c| *c == b' ') {
                    None => {
                        out.push_str(&text(offset, b.len()));
                        offset = b.len();
                    }
                    Some(i) => {
                        out.push_str(&text(offset, end + i));
                        out.push_str(newline);
                        offset = end + i + 1;
                    }
                }
            }
        }
    }
    out.push_str(&text(offset, b.len()));
    out
}

/// sprig's urlParse: the parts of a URL as Go's net/url splits them.
fn url_parse(raw: &str) -> Value {
    let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (scheme, rest) = match rest.split_once(':') {
        Some((s, r))
            if !s.is_empty()
                && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s.to_ascii_lowercase(), r)
        }
        _ => (String::new(), rest),
    };
    let (mut userinfo, mut host, mut path, mut opaque) =
        (String::new(), String::new(), String::new(), String::new());
    if let Some(after) = rest.strip_prefix("//") {
        let (authority, p) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        path = p.to_string();
        match authority.rsplit_once('@') {
            Some((u, h)) => {
                userinfo = u.to_string();
                host = h.to_string();
            }
            None => host = authority.to_string(),
        }
    } else if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest.to_string();
    } else {
        path = rest.to_string();
    }
    let hostname = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or("").to_string()
    } else {
        host.rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&host)
            .to_string()
    };
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("scheme", scheme),
        ("host", host),
        ("hostname", hostname),
        ("path", path),
        ("query", query.to_string()),
        ("opaque", opaque),
        ("fragment", fragment.to_string()),
        ("userinfo", userinfo),
    ] {
        m.insert(k.to_string(), Value::str(v));
    }
    Value::new_map(m)
}

/// sprig's urlJoin: a URL from urlParse-style parts.
fn url_join(parts: &Value) -> String {
    let get = |k: &str| match parts.map_get(k) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let (scheme, host, path, query, opaque, fragment, userinfo) = (
        get("scheme"),
        get("host"),
        get("path"),
        get("query"),
        get("opaque"),
        get("fragment"),
        get("userinfo"),
    );
    let mut out = String::new();
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    if !opaque.is_empty() {
        out.push_str(&opaque);
    } else {
        if !scheme.is_empty() || !host.is_empty() || !userinfo.is_empty() {
            if !host.is_empty() || !path.is_empty() || !userinfo.is_empty() {
                out.push_str("//");
            }
            if !userinfo.is_empty() {
                out.push_str(&userinfo);
                out.push('@');
            }
            out.push_str(&host);
        }
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        out.push_str(&path);
    }
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(&fragment);
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
