//! Go's `time.Duration` for templates: Helm 4's duration helpers, and the
//! parsing and printing that sprig's `duration`, `durationRound` and `ago`
//! share with them.

use gotemplate::fmt::quote;
use gotemplate::func::arg::err;
use gotemplate::value::format_float_g;
use gotemplate::{Arity::*, Func, FuncError, Object, Value};

/// Helm 4's duration helpers. A value is read as seconds when it is a number
/// (or a string that is one), as Go's duration syntax ("1h2m") otherwise;
/// all but `mustToDuration` give 0 where the value is not a duration.
pub(super) const FUNCS: &[Func] = &[
    Func::new("mustToDuration", Exact(1), |a| {
        Ok(Duration(as_duration(&a[0])?).into_value())
    }),
    Func::new("durationSeconds", Exact(1), |a| {
        Ok(Value::Float(or_zero(&a[0]).seconds()))
    }),
    Func::new("durationMilliseconds", Exact(1), |a| {
        Ok(Value::Int64(or_zero(&a[0]).0 / 1_000_000))
    }),
    Func::new("durationMicroseconds", Exact(1), |a| {
        Ok(Value::Int64(or_zero(&a[0]).0 / 1_000))
    }),
    Func::new("durationNanoseconds", Exact(1), |a| {
        Ok(Value::Int64(or_zero(&a[0]).0))
    }),
    Func::new("durationMinutes", Exact(1), |a| {
        Ok(Value::Float(or_zero(&a[0]).minutes()))
    }),
    Func::new("durationHours", Exact(1), |a| {
        Ok(Value::Float(or_zero(&a[0]).hours()))
    }),
    Func::new("durationDays", Exact(1), |a| {
        Ok(Value::Float(or_zero(&a[0]).hours() / 24.0))
    }),
    Func::new("durationWeeks", Exact(1), |a| {
        Ok(Value::Float(or_zero(&a[0]).hours() / 24.0 / 7.0))
    }),
    Func::new("durationRoundTo", Exact(2), |a| {
        Ok(rounded(a, Duration::round).into_value())
    }),
    Func::new("durationTruncateTo", Exact(2), |a| {
        Ok(rounded(a, Duration::truncate).into_value())
    }),
];

const SECOND: i64 = 1_000_000_000;

/// A Go `time.Duration`: nanoseconds, printed as "1h2m3s".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Duration(pub(super) i64);

impl Duration {
    fn into_value(self) -> Value {
        Value::Object(std::rc::Rc::new(self))
    }

    fn seconds(self) -> f64 {
        (self.0 / SECOND) as f64 + (self.0 % SECOND) as f64 / 1e9
    }

    fn minutes(self) -> f64 {
        (self.0 / (60 * SECOND)) as f64 + (self.0 % (60 * SECOND)) as f64 / (60.0 * 1e9)
    }

    fn hours(self) -> f64 {
        (self.0 / (3600 * SECOND)) as f64 + (self.0 % (3600 * SECOND)) as f64 / (3600.0 * 1e9)
    }

    /// Go's Duration.Round: to the nearest multiple of `m`, halves away from
    /// zero, saturating.
    fn round(self, m: Duration) -> Duration {
        let (d, m) = (self.0, m.0);
        if m <= 0 {
            return self;
        }
        let mut r = d % m;
        let less_than_half = |r: i64| (r as u64).wrapping_add(r as u64) < m as u64;
        if d < 0 {
            r = -r;
            if less_than_half(r) {
                return Duration(d + r);
            }
            return Duration(d.checked_sub(m - r).unwrap_or(i64::MIN));
        }
        if less_than_half(r) {
            return Duration(d - r);
        }
        Duration(d.checked_add(m - r).unwrap_or(i64::MAX))
    }

    /// Go's Duration.Truncate: toward zero to a multiple of `m`.
    fn truncate(self, m: Duration) -> Duration {
        if m.0 <= 0 {
            return self;
        }
        Duration(self.0 - self.0 % m.0)
    }
}

impl Object for Duration {
    fn type_name(&self) -> String {
        "time.Duration".into()
    }

    fn kind_name(&self) -> &'static str {
        "int64"
    }

    fn member(&self, name: &str, _args: &[Value]) -> Option<Result<Value, FuncError>> {
        Some(Ok(match name {
            "String" => Value::String(go_duration_string(i128::from(self.0))),
            "Hours" => Value::Float(self.hours()),
            "Minutes" => Value::Float(self.minutes()),
            "Seconds" => Value::Float(self.seconds()),
            "Milliseconds" => Value::Int64(self.0 / 1_000_000),
            "Microseconds" => Value::Int64(self.0 / 1_000),
            "Nanoseconds" => Value::Int64(self.0),
            "Abs" => Duration(self.0.checked_abs().unwrap_or(i64::MAX)).into_value(),
            _ => return None,
        }))
    }

    /// An int64 to Go: true unless zero.
    fn is_true(&self) -> bool {
        self.0 != 0
    }

    fn marshal(&self) -> Value {
        // encoding/json writes a Duration as its nanoseconds.
        Value::Int64(self.0)
    }

    fn write_go(&self, out: &mut String) {
        out.push_str(&go_duration_string(i128::from(self.0)));
    }
}

fn or_zero(v: &Value) -> Duration {
    as_duration(v).map(Duration).unwrap_or(Duration(0))
}

/// durationRoundTo and durationTruncateTo: 0 when the value is not a
/// duration, the value itself when the multiple is not.
fn rounded(a: &[Value], how: fn(Duration, Duration) -> Duration) -> Duration {
    match as_duration(&a[0]) {
        Err(_) => Duration(0),
        Ok(d) => match as_duration(&a[1]) {
            Err(_) => Duration(d),
            Ok(m) => how(Duration(d), Duration(m)),
        },
    }
}

/// Helm 4's asDuration: nanoseconds from a duration, a duration string, or
/// seconds given as a number or a numeric string.
fn as_duration(v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Object(o) if o.type_name() == "time.Duration" => match o.marshal() {
            Value::Int64(n) => Ok(n),
            _ => err("invalid duration"),
        },
        Value::String(text) => {
            let s = text.trim();
            if s.is_empty() {
                return err("empty duration");
            }
            if let Some(d) = parse_go_duration(s) {
                return Ok(d);
            }
            match super::conversions::parse_go_float(s) {
                Some(f) => from_seconds_float(f),
                None => err(format!("could not parse duration {}", quote(text))),
            }
        }
        Value::Nil => err("invalid duration"),
        Value::Int(i) | Value::Int64(i) => i
            .checked_mul(SECOND)
            .map_or_else(|| err(format!("duration seconds overflow: {i}")), Ok),
        Value::Float(f) => from_seconds_float(*f),
        other => err(format!("unsupported duration type {}", other.type_name())),
    }
}

fn from_seconds_float(seconds: f64) -> Result<i64, FuncError> {
    if seconds.is_nan() || seconds.is_infinite() {
        return err(format!(
            "invalid duration seconds: {}",
            format_float_g(seconds)
        ));
    }
    let limit = i64::MAX as f64 / 1e9;
    if seconds > limit || seconds < -limit {
        return err(format!(
            "duration seconds overflow: {}",
            format_float_g(seconds)
        ));
    }
    let nanos = seconds * 1e9;
    if nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
        return err(format!(
            "duration nanoseconds overflow: {}",
            format_float_g(nanos)
        ));
    }
    Ok(nanos as i64)
}

/// Go's time.ParseDuration, in nanoseconds: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`,
/// exact (integers, with Go's float step for fractions).
pub(super) fn parse_go_duration(s: &str) -> Option<i64> {
    const LIMIT: u64 = 1 << 63;
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let first = rest.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return None;
        }
        // The integer part; overflow is an error.
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut whole: u64 = 0;
        for c in rest[..digits].bytes() {
            if whole > LIMIT / 10 {
                return None;
            }
            whole = whole * 10 + u64::from(c - b'0');
            if whole > LIMIT {
                return None;
            }
        }
        let pre = digits > 0;
        rest = &rest[digits..];
        // The fraction: digits past what fits are dropped.
        let (mut fraction, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(after) = rest.strip_prefix('.') {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in after[..digits].bytes() {
                if overflow {
                    continue;
                }
                if fraction > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = fraction * 10 + u64::from(c - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                fraction = next;
                scale *= 10.0;
            }
            post = digits > 0;
            rest = &after[digits..];
        }
        if !pre && !post {
            return None;
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        if whole > LIMIT / unit {
            return None;
        }
        let mut v = whole * unit;
        if fraction > 0 {
            v += (fraction as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return None;
            }
        }
        total += v;
        if total > LIMIT {
            return None;
        }
    }
    if neg {
        return Some((total as i64).wrapping_neg());
    }
    if total > LIMIT - 1 {
        return None;
    }
    Some(total as i64)
}

/// Go's time.Duration.String().
pub(super) fn go_duration_string(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
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

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by Go (go1.26.8): time.ParseDuration and
    // Duration.String, Round and Truncate.
    #[test]
    fn go_duration_syntax() {
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(3_723_500_000_000));
        assert_eq!(parse_go_duration("-1.5h"), Some(-5_400_000_000_000));
        assert_eq!(parse_go_duration(".5us"), Some(500));
        assert_eq!(parse_go_duration("1µs"), Some(1_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(
            parse_go_duration("2562047h47m16.854775807s"),
            Some(i64::MAX)
        );
        assert_eq!(
            parse_go_duration("-2562047h47m16.854775808s"),
            Some(i64::MIN)
        );
        assert_eq!(parse_go_duration("2562047h47m16.854775808s"), None);
        for bad in ["", "1", ".s", "1x", "+", "1.5", "h"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
        assert_eq!(go_duration_string(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration_string(1_500), "1.5µs");
        assert_eq!(go_duration_string(-90 * SECOND as i128), "-1m30s");
    }

    #[test]
    fn round_and_truncate_as_go() {
        let d = Duration(parse_go_duration("1h15m30.918273645s").unwrap_or(0));
        let m = |s| Duration(parse_go_duration(s).unwrap_or(0));
        assert_eq!(go_duration_string(d.round(m("1m")).0.into()), "1h16m0s");
        assert_eq!(go_duration_string(d.truncate(m("1m")).0.into()), "1h15m0s");
        assert_eq!(
            go_duration_string(d.round(m("1ms")).0.into()),
            "1h15m30.918s"
        );
        assert_eq!(Duration(-15).round(Duration(10)), Duration(-20));
        assert_eq!(
            Duration(i64::MAX).round(Duration(3 * SECOND)),
            Duration(i64::MAX)
        );
        assert_eq!(
            Duration(i64::MAX).round(Duration(2 * SECOND)),
            Duration(9_223_372_036_000_000_000)
        );
    }

    #[test]
    fn values_read_as_helm_4_reads_them() {
        assert_eq!(as_duration(&Value::str("90")).ok(), Some(90 * SECOND));
        assert_eq!(as_duration(&Value::str(" 2.5 ")).ok(), Some(2_500_000_000));
        assert_eq!(as_duration(&Value::Float(1.5)).ok(), Some(1_500_000_000));
        assert_eq!(as_duration(&Value::Int64(-3)).ok(), Some(-3 * SECOND));
        let message = |v: &Value| as_duration(v).err().map(|e| e.message);
        assert_eq!(message(&Value::str("")).as_deref(), Some("empty duration"));
        assert_eq!(
            message(&Value::str("soon")).as_deref(),
            Some("could not parse duration \"soon\"")
        );
        assert_eq!(message(&Value::Nil).as_deref(), Some("invalid duration"));
        assert_eq!(
            message(&Value::Bool(true)).as_deref(),
            Some("unsupported duration type bool")
        );
        assert_eq!(
            message(&Value::Float(f64::NAN)).as_deref(),
            Some("invalid duration seconds: NaN")
        );
    }
}
