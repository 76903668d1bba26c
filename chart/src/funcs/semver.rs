//! sprig's semantic versions: `semver` and `semverCompare`, with
//! Masterminds/semver's constraint syntax (`>=1.2 <2`, `~1.3`, `^1`, `1.x`,
//! `1.2 - 1.4`, `||`).

use std::collections::BTreeMap;

use gotemplate::func::arg::string;
use gotemplate::{Func, FuncError, FuncResult, Param as P, Value};

pub(super) const FUNCS: &[Func] = &[
    Func::go("semverCompare", &[P::Str, P::Str], None, |a| {
        Ok(Value::Bool(semver_check(&string(&a[0])?, &string(&a[1])?)?))
    }),
    Func::go("semver", &[P::Str], None, semver),
];

fn semver(a: &[Value]) -> FuncResult {
    let v = new_version(&string(&a[0])?)?;
    let mut m = BTreeMap::new();
    m.insert("Major".into(), Value::Int(v.major as i64));
    m.insert("Minor".into(), Value::Int(v.minor as i64));
    m.insert("Patch".into(), Value::Int(v.patch as i64));
    m.insert("Prerelease".into(), Value::String(v.pre.to_string()));
    m.insert("Metadata".into(), Value::String(v.build.to_string()));
    Ok(Value::new_map(m))
}

/// Masterminds/semver's NewVersion (v3.5, which both Helms link), with its
/// errors for what it refuses.
fn new_version(s: &str) -> Result<::semver::Version, FuncError> {
    const MAX_VERSION_LEN: usize = 256;
    if s.len() > MAX_VERSION_LEN {
        return Err(FuncError::new(format!(
            "version string is too long (max {MAX_VERSION_LEN} bytes)"
        )));
    }
    parse_version(s).ok_or_else(|| FuncError::new("invalid semantic version"))
}

fn parse_version(s: &str) -> Option<::semver::Version> {
    let t = s.trim().trim_start_matches('v');
    if let Ok(v) = ::semver::Version::parse(t) {
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
    ::semver::Version::parse(&format!("{}{rest}", full.join("."))).ok()
}

/// Masterminds/semver constraint check as used by `semverCompare`: the
/// whole constraint is parsed first (its error comes before the version's).
fn semver_check(constraint: &str, version: &str) -> Result<bool, FuncError> {
    const MAX_CONSTRAINT_LEN: usize = 512;
    const MAX_CONSTRAINT_GROUPS: usize = 32;
    if constraint.len() > MAX_CONSTRAINT_LEN {
        return Err(FuncError::new(format!(
            "constraint string is too long (max {MAX_CONSTRAINT_LEN} bytes)"
        )));
    }
    if constraint.split("||").count() > MAX_CONSTRAINT_GROUPS {
        return Err(FuncError::new(format!(
            "too many constraint groups (max {MAX_CONSTRAINT_GROUPS})"
        )));
    }
    let alternatives = constraint
        .split("||")
        .map(|alternative| {
            split_constraint_terms(alternative)
                .iter()
                .map(|term| Term::parse(term))
                .collect::<Option<Vec<_>>>()
                // Masterminds validates each `||` group whole, and quotes it.
                .ok_or_else(|| {
                    FuncError::new(format!(
                        "improper constraint: {}",
                        gotemplate::fmt::quote(alternative)
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let v = new_version(version)?;
    Ok(alternatives
        .iter()
        .any(|terms| !terms.is_empty() && terms.iter().all(|term| term.matches(&v))))
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

/// One term of a constraint (`>=1.2`, `~1.2.x`, `1.x`): its operator, its
/// version with the parts a wildcard leaves out as zeros, and how many parts
/// were given.
struct Term {
    op: String,
    base: ::semver::Version,
    given_parts: usize,
}

impl Term {
    /// The term, or `None` when Masterminds would call it improper.
    fn parse(term: &str) -> Option<Term> {
        let op_len = term
            .find(|c: char| !"<>=!~^".contains(c))
            .unwrap_or(term.len());
        let (op, ver) = term.split_at(op_len);
        let ver = ver.trim_start_matches('v');
        const OPERATORS: &[&str] = &[
            "", "=", "==", "!=", ">", ">=", "=>", "<", "<=", "=<", "~", "~>", "^",
        ];
        if !OPERATORS.contains(&op) {
            return None;
        }
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
        let base = if base_text.is_empty() {
            ::semver::Version::new(0, 0, 0)
        } else {
            parse_version(&base_text)?
        };
        Some(Term {
            op: op.to_string(),
            base,
            given_parts: wild_at.unwrap_or(parts.len()),
        })
    }

    fn matches(&self, v: &::semver::Version) -> bool {
        let (c, given_parts) = (&self.base, self.given_parts);
        // A prerelease version only satisfies constraints that carry a prerelease.
        if !v.pre.is_empty() && c.pre.is_empty() {
            return false;
        }
        let cmp_core = |a: &::semver::Version, b: &::semver::Version| a.cmp(b);
        let upper_for = |n: usize| -> ::semver::Version {
            match n {
                0 => ::semver::Version::new(u64::MAX, 0, 0),
                1 => ::semver::Version::new(c.major + 1, 0, 0),
                _ => ::semver::Version::new(c.major, c.minor + 1, 0),
            }
        };
        use std::cmp::Ordering::*;
        match self.op.as_str() {
            "" | "=" | "==" => {
                if given_parts < 3 {
                    cmp_core(v, c) != Less && v < &upper_for(given_parts)
                } else {
                    cmp_core(v, c) == Equal
                }
            }
            "!=" => {
                if given_parts < 3 {
                    !(cmp_core(v, c) != Less && v < &upper_for(given_parts))
                } else {
                    cmp_core(v, c) != Equal
                }
            }
            ">" => {
                if given_parts < 3 {
                    v >= &upper_for(given_parts)
                } else {
                    cmp_core(v, c) == Greater
                }
            }
            ">=" | "=>" => cmp_core(v, c) != Less,
            "<" => cmp_core(v, c) == Less,
            "<=" | "=<" => {
                if given_parts < 3 {
                    v < &upper_for(given_parts)
                } else {
                    cmp_core(v, c) != Greater
                }
            }
            "~" | "~>" => {
                cmp_core(v, c) != Less && v < &upper_for(if given_parts == 1 { 1 } else { 2 })
            }
            "^" => {
                let upper = if c.major > 0 || given_parts == 1 {
                    ::semver::Version::new(c.major + 1, 0, 0)
                } else if c.minor > 0 || given_parts == 2 {
                    ::semver::Version::new(0, c.minor + 1, 0)
                } else {
                    ::semver::Version::new(0, 0, c.patch + 1)
                };
                cmp_core(v, c) != Less && v < &upper
            }
            // Term::parse admits only the operators above.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_constraints() {
        assert!(semver_check(">=1.21-0", "v1.37.0").expect("ok"));
        assert!(!semver_check("<1.19-0", "1.37.0").expect("ok"));
        assert!(semver_check("^1.2.0", "1.9.9").expect("ok"));
        assert!(semver_check("~1.2", "1.2.9").expect("ok"));
        assert!(!semver_check("~1.2", "1.3.0").expect("ok"));
        assert!(semver_check(">=1.16-0 <1.40-0 || 2.x", "1.37.0").expect("ok"));
    }
}
