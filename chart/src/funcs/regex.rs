//! sprig's regular expressions, with Go's RE2 syntax ([`crate::go_regex`]).
//! A bad pattern fails the `must` forms with Go's error, and the plain ones
//! with the panic message of Go's `regexp.MustCompile`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gotemplate::func::arg::{int, string};
use gotemplate::{Func, FuncError, FuncResult, Param as P, Value};

use crate::go_regex::{GoRegex, quote_meta};

pub(super) const FUNCS: &[Func] = &[
    // sprig's regexMatch drops the compile error: a bad pattern matches nothing.
    Func::go("regexMatch", &[P::Str, P::Str], None, |a| {
        match compiled(&a[0], false) {
            Ok(re) => Ok(Value::Bool(re.is_match(&string(&a[1])?))),
            Err(_) => Ok(Value::Bool(false)),
        }
    }),
    Func::go("mustRegexMatch", &[P::Str, P::Str], None, |a| {
        Ok(Value::Bool(
            compiled(&a[0], true)?.is_match(&string(&a[1])?),
        ))
    }),
    Func::go("regexFind", &[P::Str, P::Str], None, |a| find(a, false)),
    Func::go("mustRegexFind", &[P::Str, P::Str], None, |a| find(a, true)),
    Func::go("regexFindAll", &[P::Str, P::Str, P::Int], None, |a| {
        find_all(a, false)
    }),
    Func::go("mustRegexFindAll", &[P::Str, P::Str, P::Int], None, |a| {
        find_all(a, true)
    }),
    Func::go("regexReplaceAll", &[P::Str, P::Str, P::Str], None, |a| {
        replace_all(a, false)
    }),
    Func::go(
        "mustRegexReplaceAll",
        &[P::Str, P::Str, P::Str],
        None,
        |a| replace_all(a, true),
    ),
    Func::go(
        "regexReplaceAllLiteral",
        &[P::Str, P::Str, P::Str],
        None,
        |a| replace_all_literal(a, false),
    ),
    Func::go(
        "mustRegexReplaceAllLiteral",
        &[P::Str, P::Str, P::Str],
        None,
        |a| replace_all_literal(a, true),
    ),
    Func::go("regexSplit", &[P::Str, P::Str, P::Int], None, |a| {
        split(a, false)
    }),
    Func::go("mustRegexSplit", &[P::Str, P::Str, P::Int], None, |a| {
        split(a, true)
    }),
    Func::go("regexQuoteMeta", &[P::Str], None, |a| {
        Ok(Value::String(quote_meta(&string(&a[0])?)))
    }),
];

/// Compiled patterns kept per thread: templates apply the same few patterns
/// many times (a copy would start with empty match caches). Past this many
/// the cache starts over.
const MAX_CACHED_PATTERNS: usize = 1_000;

/// The pattern argument compiled; `must` picks the error's wording.
fn compiled(pattern: &Value, must: bool) -> Result<Rc<GoRegex>, FuncError> {
    thread_local! {
        static CACHE: RefCell<HashMap<String, Rc<GoRegex>>> = RefCell::new(HashMap::new());
    }
    let pattern = string(pattern)?;
    if let Some(re) = CACHE.with(|c| c.borrow().get(&pattern).cloned()) {
        return Ok(re);
    }
    let re = Rc::new(GoRegex::new(&pattern).map_err(|e| {
        FuncError::new(if must {
            format!("error parsing regexp: {e}")
        } else {
            format!("regexp: Compile(`{pattern}`): error parsing regexp: {e}")
        })
    })?);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MAX_CACHED_PATTERNS {
            c.clear();
        }
        c.insert(pattern, Rc::clone(&re));
    });
    Ok(re)
}

fn find(a: &[Value], must: bool) -> FuncResult {
    let s = string(&a[1])?;
    let first = compiled(&a[0], must)?.match_ranges(&s).first().copied();
    Ok(Value::str(first.map(|(b, e)| &s[b..e]).unwrap_or("")))
}

fn find_all(a: &[Value], must: bool) -> FuncResult {
    let (s, n) = (string(&a[1])?, int(&a[2])?);
    let ranges = compiled(&a[0], must)?.match_ranges(&s);
    let take = if n < 0 { ranges.len() } else { n as usize };
    Ok(Value::typed_list(
        ranges
            .iter()
            .take(take)
            .map(|&(b, e)| Value::str(&s[b..e]))
            .collect(),
        "string",
    ))
}

fn replace_all(a: &[Value], must: bool) -> FuncResult {
    let re = compiled(&a[0], must)?;
    Ok(Value::String(
        re.replace_all(&string(&a[1])?, &string(&a[2])?),
    ))
}

fn replace_all_literal(a: &[Value], must: bool) -> FuncResult {
    let re = compiled(&a[0], must)?;
    Ok(Value::String(
        re.replace_all_literal(&string(&a[1])?, &string(&a[2])?),
    ))
}

fn split(a: &[Value], must: bool) -> FuncResult {
    let (s, n) = (string(&a[1])?, int(&a[2])?);
    // Go's nil slice (n == 0) prints as [] like an empty one; berth has no
    // typed nil, so toJson gives [] where helm gives null.
    let pieces = compiled(&a[0], must)?.split(&s, n).unwrap_or_default();
    Ok(Value::typed_list(
        pieces.into_iter().map(Value::String).collect(),
        "string",
    ))
}
