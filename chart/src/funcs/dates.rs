//! sprig's dates and durations. Times travel between functions as RFC 3339
//! strings; layouts are Go's reference-time layouts.

use gotemplate::func::arg::{err, string};
use gotemplate::{Func, FuncError, FuncResult, Param as P, Value};

use super::durations::{go_duration_string, parse_go_duration};

pub(super) const FUNCS: &[Func] = &[
    Func::go("now", &[], None, |_| Ok(time_value(jiff::Timestamp::now()))),
    Func::go("unixEpoch", &[P::Host], None, |a| {
        let ts = match &a[0] {
            Value::String(t) => t.parse().unwrap_or_else(|_| jiff::Timestamp::now()),
            _ => jiff::Timestamp::now(),
        };
        Ok(Value::String(ts.as_second().to_string()))
    }),
    Func::go("date", &[P::Str, P::Any], None, |a| {
        format_date(&string(&a[0])?, &a[1], "Local")
    }),
    Func::go("dateInZone", &[P::Str, P::Any, P::Str], None, date_in_zone),
    Func::go(
        "date_in_zone",
        &[P::Str, P::Any, P::Str],
        None,
        date_in_zone,
    ),
    Func::go("htmlDate", &[P::Any], None, |a| {
        format_date("2006-01-02", &a[0], "Local")
    }),
    Func::go("htmlDateInZone", &[P::Any, P::Str], None, |a| {
        format_date("2006-01-02", &a[0], &string(&a[1])?)
    }),
    Func::go("toDate", &[P::Str, P::Str], None, |a| to_date(a, false)),
    Func::go("mustToDate", &[P::Str, P::Str], None, |a| to_date(a, true)),
    Func::go("dateModify", &[P::Str, P::Host], None, |a| {
        date_modify(a, false)
    }),
    Func::go("date_modify", &[P::Str, P::Host], None, |a| {
        date_modify(a, false)
    }),
    Func::go("mustDateModify", &[P::Str, P::Host], None, |a| {
        date_modify(a, true)
    }),
    Func::go("must_date_modify", &[P::Str, P::Host], None, |a| {
        date_modify(a, true)
    }),
    Func::go("ago", &[P::Any], None, |a| {
        let since = jiff::Timestamp::now().duration_since(to_time(&a[0]));
        let secs = (since.as_nanos() as f64 / 1e9).round() as i128;
        Ok(Value::String(go_duration_string(secs * 1_000_000_000)))
    }),
    Func::go("duration", &[P::Any], None, |a| {
        // sprig reads only strings and int64s; anything else is zero.
        let secs: i128 = match &a[0] {
            Value::String(s) => s.parse::<i64>().unwrap_or(0) as i128,
            Value::Int64(i) => *i as i128,
            _ => 0,
        };
        Ok(Value::String(go_duration_string(secs * 1_000_000_000)))
    }),
    Func::go("durationRound", &[P::Any], None, |a| {
        let nanos: i128 = match &a[0] {
            Value::String(s) => parse_go_duration(s).unwrap_or(0) as i128,
            Value::Int64(i) => *i as i128,
            _ => 0,
        };
        Ok(Value::String(duration_round(nanos.unsigned_abs())))
    }),
];

fn date_in_zone(a: &[Value]) -> FuncResult {
    format_date(&string(&a[0])?, &a[1], &string(&a[2])?)
}

fn to_date(a: &[Value], must: bool) -> FuncResult {
    match parse_go_time(&string(&a[0])?, &string(&a[1])?) {
        Ok(ts) => Ok(time_value(ts)),
        Err(e) if must => err(e),
        // sprig's toDate yields the zero time on a parse error.
        Err(_) => Ok(time_value(
            jiff::Timestamp::from_second(-62135596800).unwrap_or_default(),
        )),
    }
}

fn date_modify(a: &[Value], must: bool) -> FuncResult {
    let t = to_time(&a[1]);
    let modifier = string(&a[0])?;
    match parse_go_duration(&modifier) {
        Some(nanos) => Ok(time_value(
            t.checked_add(jiff::SignedDuration::from_nanos(nanos))
                .unwrap_or(t),
        )),
        None if must => err(format!("time: invalid duration {modifier:?}")),
        None => Ok(time_value(t)),
    }
}

/// sprig's date family: ints are Unix seconds; anything else (including the
/// strings berth's `now` returns) means the current time, as sprig's toDate does
/// for values that are not times.
fn format_date(layout: &str, when: &Value, zone: &str) -> FuncResult {
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
fn go_format(t: &jiff::Zoned, layout: &str) -> String {
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
}
