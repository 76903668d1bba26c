//! sprig's string functions.

use std::collections::BTreeMap;

use super::go_unicode;
use gotemplate::fmt::quote;
use gotemplate::func::arg::{err, int, string};
use gotemplate::{Func, FuncError, FuncResult, Param as P, Value};

use super::conversions::strval;

pub(super) const FUNCS: &[Func] = &[
    Func::go("hello", &[], None, |_| Ok(Value::str("Hello!"))),
    Func::go("quote", &[], Some(P::Any), |a| {
        Ok(Value::String(joined(a, |s| quote(&s))))
    }),
    Func::go("squote", &[], Some(P::Any), |a| {
        Ok(Value::String(joined(a, |s| format!("'{s}'"))))
    }),
    Func::go("cat", &[], Some(P::Any), |a| {
        Ok(Value::String(joined(a, |s| s)))
    }),
    Func::go("indent", &[P::Int, P::Str], None, |a| {
        Ok(Value::String(indent(&a[0], &a[1])?))
    }),
    Func::go("nindent", &[P::Int, P::Str], None, |a| {
        Ok(Value::String(format!("\n{}", indent(&a[0], &a[1])?)))
    }),
    Func::go("trim", &[P::Str], None, |a| {
        Ok(Value::str(string(&a[0])?.trim()))
    }),
    Func::go("trimAll", &[P::Str, P::Str], None, trim_all),
    Func::go("trimall", &[P::Str, P::Str], None, trim_all),
    Func::go("trimPrefix", &[P::Str, P::Str], None, |a| {
        let (prefix, s) = (string(&a[0])?, string(&a[1])?);
        Ok(Value::str(s.strip_prefix(prefix.as_str()).unwrap_or(&s)))
    }),
    Func::go("trimSuffix", &[P::Str, P::Str], None, |a| {
        let (suffix, s) = (string(&a[0])?, string(&a[1])?);
        Ok(Value::str(s.strip_suffix(suffix.as_str()).unwrap_or(&s)))
    }),
    Func::go("trunc", &[P::Int, P::Str], None, trunc),
    Func::go("upper", &[P::Str], None, |a| {
        Ok(Value::String(
            string(&a[0])?.chars().map(go_unicode::to_upper).collect(),
        ))
    }),
    Func::go("lower", &[P::Str], None, |a| {
        Ok(Value::String(
            string(&a[0])?.chars().map(go_unicode::to_lower).collect(),
        ))
    }),
    Func::go("title", &[P::Str], None, |a| {
        Ok(Value::String(title(&string(&a[0])?)))
    }),
    Func::go("untitle", &[P::Str], None, untitle),
    Func::go("replace", &[P::Str, P::Str, P::Str], None, |a| {
        let (old, new, s) = (string(&a[0])?, string(&a[1])?, string(&a[2])?);
        Ok(Value::String(s.replace(&old, &new)))
    }),
    Func::go("contains", &[P::Str, P::Str], None, |a| {
        Ok(Value::Bool(string(&a[1])?.contains(&string(&a[0])?)))
    }),
    Func::go("hasPrefix", &[P::Str, P::Str], None, |a| {
        Ok(Value::Bool(string(&a[1])?.starts_with(&string(&a[0])?)))
    }),
    Func::go("hasSuffix", &[P::Str, P::Str], None, |a| {
        Ok(Value::Bool(string(&a[1])?.ends_with(&string(&a[0])?)))
    }),
    Func::go("repeat", &[P::Int, P::Str], None, repeat),
    Func::go("substr", &[P::Int, P::Int, P::Str], None, substr),
    Func::go("nospace", &[P::Str], None, |a| {
        Ok(Value::String(
            string(&a[0])?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        ))
    }),
    Func::go("abbrev", &[P::Int, P::Str], None, abbrev),
    Func::go("abbrevboth", &[P::Int, P::Int, P::Str], None, abbrev_both),
    Func::go("plural", &[P::Str, P::Str, P::Int], None, |a| {
        Ok(Value::String(if int(&a[2])? == 1 {
            string(&a[0])?
        } else {
            string(&a[1])?
        }))
    }),
    Func::go("snakecase", &[P::Str], None, |a| {
        Ok(Value::String(separated(&string(&a[0])?, '_')))
    }),
    Func::go("kebabcase", &[P::Str], None, |a| {
        Ok(Value::String(separated(&string(&a[0])?, '-')))
    }),
    Func::go("camelcase", &[P::Str], None, |a| {
        Ok(Value::String(camelcase(&string(&a[0])?)))
    }),
    Func::go("swapcase", &[P::Str], None, |a| {
        Ok(Value::String(swapcase(&string(&a[0])?)))
    }),
    Func::go("initials", &[P::Str], None, |a| {
        Ok(Value::String(initials(&string(&a[0])?)))
    }),
    Func::go("wrap", &[P::Int, P::Str], None, |a| {
        Ok(Value::String(wrap(
            &string(&a[1])?,
            int(&a[0])?,
            "\n",
            false,
        )))
    }),
    Func::go("wrapWith", &[P::Int, P::Str, P::Str], None, |a| {
        Ok(Value::String(wrap(
            &string(&a[2])?,
            int(&a[0])?,
            &string(&a[1])?,
            true,
        )))
    }),
    Func::go("join", &[P::Str, P::Any], None, join),
    Func::go("split", &[P::Str, P::Str], None, |a| {
        let (sep, s) = (string(&a[0])?, string(&a[1])?);
        Ok(numbered_parts(go_split(&s, &sep).into_iter()))
    }),
    Func::go("splitList", &[P::Str, P::Str], None, |a| {
        let (sep, s) = (string(&a[0])?, string(&a[1])?);
        let parts = go_split(&s, &sep);
        Ok(Value::typed_list(
            parts.into_iter().map(Value::String).collect(),
            "string",
        ))
    }),
    Func::go("splitn", &[P::Str, P::Int, P::Str], None, splitn),
];

/// The non-nil arguments as strings, each through `each`, joined by spaces.
fn joined(a: &[Value], each: impl Fn(String) -> String) -> String {
    a.iter()
        .filter(|v| !v.is_nil())
        .map(|v| each(strval(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Largest string `repeat`, `indent` and `nindent` make: past it Go would
/// fail (an overflow) or exhaust the memory; berth fails with this limit.
const MAX_REPEAT_BYTES: usize = 64 << 20;

/// Go's strings.Repeat, failing as it does on a negative count, on an
/// output length past Go's int and on one past what Go can allocate; and
/// on an output past [`MAX_REPEAT_BYTES`].
fn go_repeat(s: &str, count: i64) -> Result<String, gotemplate::FuncError> {
    let count =
        usize::try_from(count).map_err(|_| FuncError::new("strings: negative Repeat count"))?;
    // Go's own test for an output past its int (go1.26).
    if count > 0 && s.len() > (i64::MAX as usize) / count {
        return err("strings: Repeat output length overflow");
    }
    // Past Go's largest allocation (1 << 48 bytes), its make panics.
    const GO_MAX_ALLOC: usize = 1 << 48;
    match s.len().checked_mul(count) {
        Some(n) if n > GO_MAX_ALLOC => err("runtime error: makeslice: len out of range"),
        None => err("strings: Repeat output length overflow"),
        Some(n) if n > MAX_REPEAT_BYTES => err(format!(
            "strings: Repeat output of {n} bytes is past berth's limit of {MAX_REPEAT_BYTES} bytes"
        )),
        Some(_) => Ok(s.repeat(count)),
    }
}

fn indent(spaces: &Value, text: &Value) -> Result<String, gotemplate::FuncError> {
    let pad = go_repeat(" ", int(spaces)?)?;
    let text = string(text)?;
    Ok(format!("{pad}{}", text.replace('\n', &format!("\n{pad}"))))
}

fn trim_all(a: &[Value]) -> FuncResult {
    let cut: Vec<char> = string(&a[0])?.chars().collect();
    Ok(Value::str(
        string(&a[1])?.trim_matches(|c| cut.contains(&c)),
    ))
}

/// sprig's trunc: Go slices the string's bytes, so a cut inside a
/// character leaves bytes that are not UTF-8 (as `substr` does).
fn trunc(a: &[Value]) -> FuncResult {
    let (c, s) = (int(&a[0])?, string(&a[1])?);
    let bytes = s.as_bytes();
    let len = bytes.len() as i64;
    let cut = if c < 0 && len + c > 0 {
        &bytes[(len + c) as usize..]
    } else if c >= 0 && len > c {
        &bytes[..c as usize]
    } else {
        bytes
    };
    Ok(Value::go_string(cut.to_vec()))
}

/// Go's strings.Title: each character after a separator in title case.
fn title(s: &str) -> String {
    // Go's isSeparator: ASCII but letters, digits and '_'; beyond ASCII, spaces.
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !(go_unicode::is_letter(c) || go_unicode::is_digit(c)) && go_unicode::is_space(c)
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) {
                go_unicode::to_title(c)
            } else {
                c
            };
            prev = c;
            out
        })
        .collect()
}

/// sprig's untitle (goutils' Uncapitalize): the first character of each
/// space-separated word in lower case.
fn untitle(a: &[Value]) -> FuncResult {
    let mut next = true;
    Ok(Value::String(
        string(&a[0])?
            .chars()
            .map(|c| {
                if go_unicode::is_space(c) {
                    next = true;
                    c
                } else if std::mem::take(&mut next) {
                    go_unicode::to_lower(c)
                } else {
                    c
                }
            })
            .collect(),
    ))
}

/// sprig's initials (goutils' Initials), which walks the string's bytes:
/// the first byte of each word, read as a Latin-1 character, as Go's
/// `rune(str[i])` reads it ("é" gives "Ã").
fn initials(s: &str) -> String {
    let mut gap = true;
    let mut out = String::new();
    for c in s.bytes().map(char::from) {
        if go_unicode::is_space(c) {
            gap = true;
        } else if std::mem::take(&mut gap) {
            out.push(c);
        }
    }
    out
}

fn repeat(a: &[Value]) -> FuncResult {
    Ok(Value::String(go_repeat(&string(&a[1])?, int(&a[0])?)?))
}

/// sprig's substr: Go slices the string's bytes (a cut inside a character
/// leaves bytes that are not UTF-8), and out-of-range bounds are Go's
/// runtime panic, which fails the call.
fn substr(a: &[Value]) -> FuncResult {
    let (start, end, s) = (int(&a[0])?, int(&a[1])?, string(&a[2])?);
    let bytes = s.as_bytes();
    let len = bytes.len() as i64;
    let out_of_range = |bounds: String| {
        Err(FuncError::new(format!(
            "runtime error: slice bounds out of range {bounds}"
        )))
    };
    let (lo, hi) = if start < 0 {
        // s[:end]
        if end < 0 {
            return out_of_range(format!("[:{end}]"));
        }
        if end > len {
            return out_of_range(format!("[:{end}] with length {len}"));
        }
        (0, end)
    } else if end < 0 || end > len {
        // s[start:]
        if start > len {
            return out_of_range(format!("[{start}:{len}]"));
        }
        (start, len)
    } else {
        // s[start:end]
        if start > end {
            return out_of_range(format!("[{start}:{end}]"));
        }
        (start, end)
    };
    Ok(Value::go_string(bytes[lo as usize..hi as usize].to_vec()))
}

fn abbrev(a: &[Value]) -> FuncResult {
    let (width, s) = (int(&a[0])?, string(&a[1])?);
    if width < 4 {
        return Ok(Value::String(s));
    }
    Ok(Value::go_string(abbreviate_full(s.as_bytes(), 0, width)))
}

fn abbrev_both(a: &[Value]) -> FuncResult {
    let (left, right, s) = (int(&a[0])?, int(&a[1])?, string(&a[2])?);
    if right < 4 || (left > 0 && right < 7) {
        return Ok(Value::String(s));
    }
    Ok(Value::go_string(abbreviate_full(s.as_bytes(), left, right)))
}

/// goutils' AbbreviateFull (commons-lang's abbreviate), which sprig's
/// `abbrev` and `abbrevboth` call: it counts and cuts bytes, so a cut inside
/// a character keeps part of it, as in Helm. The widths reaching it are at
/// least 4, and at least 7 with an offset past 4, so goutils' errors (after
/// which sprig prints "") cannot happen.
fn abbreviate_full(s: &[u8], offset: i64, max: i64) -> Vec<u8> {
    let len = s.len() as i64;
    if len <= max {
        return s.to_vec();
    }
    let mut offset = offset.min(len);
    if len - offset < max - 3 {
        offset = len - (max - 3);
    }
    const MARKER: &[u8] = b"...";
    if offset <= 4 {
        return [&s[..(max - 3) as usize], MARKER].concat();
    }
    if offset + max - 3 < len {
        return [MARKER, &abbreviate_full(&s[offset as usize..], 0, max - 3)].concat();
    }
    [MARKER, &s[(len - (max - 3)) as usize..]].concat()
}

/// What xstrings' word splitter takes a run of characters for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    /// Nothing left, or only U+FFFD (Go's utf8.RuneError).
    Invalid,
    Number,
    UpperCase,
    Alphabet,
    Connector,
    Punct,
    Other,
}

/// xstrings' connectors: '-', '_' and white space.
fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || go_unicode::is_space(c)
}

/// xstrings' isAlphabet: a letter, but not a CJK ideograph.
fn is_alphabet(c: char) -> bool {
    go_unicode::is_letter(c)
        && !matches!(c, '\u{4E00}'..='\u{9FCC}' | '\u{3400}'..='\u{4D85}' | '\u{20000}'..='\u{2B81D}')
}

/// xstrings' nextValidRune: the first character of `s` that is not U+FFFD
/// and the bytes up to its end; `prev` and every byte when there is none.
fn next_valid(s: &str, prev: char) -> (char, usize) {
    let mut size = 0;
    for c in s.chars() {
        size += c.len_utf8();
        if c != char::REPLACEMENT_CHARACTER {
            return (c, size);
        }
    }
    (prev, size)
}

/// Moves `offset` and `remaining` past the characters for which `more`
/// holds; `r` is left at the first one it does not.
fn take_run(r: &mut char, offset: &mut usize, remaining: &mut &str, more: impl Fn(char) -> bool) {
    while !remaining.is_empty() {
        let (next, size) = next_valid(remaining, *r);
        *r = next;
        if !more(next) {
            break;
        }
        *offset += size;
        *remaining = &remaining[size..];
    }
}

/// xstrings' nextWord: the kind of the first word of `s`, the word, and
/// the rest. An upper-case run keeps its last letter for the next word
/// when a lower-case one follows ("HTTPStatus" is "HTTP", "Status").
fn next_word(s: &str) -> (Word, &str, &str) {
    if s.is_empty() {
        return (Word::Invalid, "", "");
    }
    let (mut r, mut size) = next_valid(s, char::REPLACEMENT_CHARACTER);
    let mut offset = size;
    if r == char::REPLACEMENT_CHARACTER {
        return (Word::Invalid, &s[..offset], &s[offset..]);
    }
    let mut remaining = &s[size..];
    let kind = if is_connector(r) {
        take_run(&mut r, &mut offset, &mut remaining, is_connector);
        Word::Connector
    } else if go_unicode::is_punct(r) {
        take_run(&mut r, &mut offset, &mut remaining, go_unicode::is_punct);
        Word::Punct
    } else if go_unicode::is_upper(r) {
        if !remaining.is_empty() {
            (r, size) = next_valid(remaining, r);
            if go_unicode::is_upper(r) {
                let mut last_size = size;
                offset += size;
                remaining = &remaining[size..];
                while !remaining.is_empty() {
                    (r, size) = next_valid(remaining, r);
                    if !go_unicode::is_upper(r) {
                        break;
                    }
                    last_size = size;
                    offset += size;
                    remaining = &remaining[size..];
                }
                if !remaining.is_empty() && is_alphabet(r) {
                    offset -= last_size;
                    remaining = &s[offset..];
                }
            } else if is_alphabet(r) {
                offset += size;
                remaining = &remaining[size..];
                take_run(&mut r, &mut offset, &mut remaining, |c| {
                    is_alphabet(c) && !go_unicode::is_upper(c)
                });
            }
        }
        Word::UpperCase
    } else if is_alphabet(r) {
        take_run(&mut r, &mut offset, &mut remaining, |c| {
            is_alphabet(c) && !go_unicode::is_upper(c)
        });
        Word::Alphabet
    } else if go_unicode::is_number(r) {
        take_run(&mut r, &mut offset, &mut remaining, go_unicode::is_number);
        Word::Number
    } else {
        take_run(&mut r, &mut offset, &mut remaining, |c| {
            !(is_connector(c)
                || is_alphabet(c)
                || go_unicode::is_number(c)
                || go_unicode::is_punct(c))
        });
        Word::Other
    };
    (kind, &s[..offset], remaining)
}

/// xstrings' toLower: an upper-case or connector word lowered, its
/// connectors made `connector`; any other word as it is.
fn push_lowered(out: &mut String, kind: Word, word: &str, connector: char) {
    if kind != Word::UpperCase && kind != Word::Connector {
        out.push_str(word);
        return;
    }
    for c in word.chars() {
        out.push(if is_connector(c) {
            connector
        } else if go_unicode::is_upper(c) {
            go_unicode::to_lower(c)
        } else {
            c
        });
    }
}

/// snakecase (`connector` '_') and kebabcase ('-'): xstrings'
/// camelCaseToLowerCase, word by word ("HTTP20xOK" is "http_20x_ok",
/// "Bld4Floor3rd" is "bld4_floor_3rd").
fn separated(s: &str, connector: char) -> String {
    let mut out = String::new();
    let (mut kind, mut word, mut remaining) = next_word(s);
    let joins = |kind: Word| !matches!(kind, Word::Invalid | Word::Connector | Word::Punct);
    while !remaining.is_empty() {
        if kind != Word::Connector {
            push_lowered(&mut out, kind, word, connector);
        }
        let (prev, last) = (kind, word);
        (kind, word, remaining) = next_word(remaining);
        match prev {
            Word::Number => {
                while matches!(kind, Word::Alphabet | Word::Number) {
                    push_lowered(&mut out, kind, word, connector);
                    (kind, word, remaining) = next_word(remaining);
                }
                if joins(kind) {
                    out.push(connector);
                }
            }
            Word::Connector => push_lowered(&mut out, prev, last, connector),
            Word::Punct => {}
            _ if kind != Word::Number => {
                if kind != Word::Connector && kind != Word::Punct {
                    out.push(connector);
                }
            }
            _ if remaining.is_empty() => {}
            _ => {
                let number = word;
                (kind, word, remaining) = next_word(remaining);
                if kind != Word::Alphabet {
                    // A number ends the word before it ("Bld4Floor": "bld4_floor").
                    push_lowered(&mut out, Word::Number, number, connector);
                    if kind != Word::Connector && kind != Word::Punct {
                        out.push(connector);
                    }
                } else {
                    // Lower-case letters after a number start a word with it
                    // ("HTTP2xx": "http_2xx").
                    out.push(connector);
                    push_lowered(&mut out, Word::Number, number, connector);
                    while matches!(kind, Word::Alphabet | Word::Number) {
                        push_lowered(&mut out, kind, word, connector);
                        (kind, word, remaining) = next_word(remaining);
                    }
                    if joins(kind) {
                        out.push(connector);
                    }
                }
            }
        }
    }
    push_lowered(&mut out, kind, word, connector);
    out
}

/// sprig's camelcase: xstrings' ToPascalCase. Connectors go, each word's
/// first letter goes up, and a word that starts upper-case has the rest of
/// its upper-case run lowered ("GOLANG_IS_GREAT" is "GolangIsGreat");
/// connectors before the first letter stay, and of a run of connectors all
/// but the last.
fn camelcase(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    let mut first_upper = false;
    let Some(mut r0) = chars.next() else {
        return out;
    };
    loop {
        if !is_connector(r0) {
            first_upper = go_unicode::is_upper(r0);
            r0 = go_unicode::to_upper(r0);
            break;
        }
        out.push(r0);
        match chars.next() {
            Some(next) => r0 = next,
            // Only connectors: xstrings writes the last one twice.
            None => break,
        }
    }
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = go_unicode::is_upper(r0);
            r0 = go_unicode::to_upper(r0);
        } else {
            if first_upper {
                if go_unicode::is_upper(r0) {
                    r0 = go_unicode::to_lower(r0);
                } else {
                    first_upper = false;
                }
            }
            out.push(r1);
        }
    }
    out.push(r0);
    out
}

/// sprig's swapcase (goutils' SwapCase): upper- and title-case letters
/// lowered, lower-case ones raised, to title case at the start of a word.
fn swapcase(s: &str) -> String {
    let mut word_start = true;
    s.chars()
        .map(|c| {
            if go_unicode::is_upper(c) || go_unicode::is_title(c) {
                word_start = false;
                go_unicode::to_lower(c)
            } else if go_unicode::is_lower(c) {
                if std::mem::take(&mut word_start) {
                    go_unicode::to_title(c)
                } else {
                    go_unicode::to_upper(c)
                }
            } else {
                word_start = go_unicode::is_space(c);
                c
            }
        })
        .collect()
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

fn join(a: &[Value]) -> FuncResult {
    let sep = string(&a[0])?;
    let parts: Vec<String> = match &a[1] {
        Value::List(l) => l.iter().filter(|v| !v.is_nil()).map(strval).collect(),
        Value::Nil => vec![],
        other => vec![strval(other)],
    };
    Ok(Value::String(parts.join(&sep)))
}

/// Go's strings.Split (an empty separator splits into characters).
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(|c| c.to_string()).collect();
    }
    s.split(sep).map(str::to_string).collect()
}

/// sprig's split result: a dict with keys `_0`, `_1`, ...
fn numbered_parts(parts: impl Iterator<Item = String>) -> Value {
    let m: BTreeMap<String, Value> = parts
        .enumerate()
        .map(|(idx, part)| (format!("_{idx}"), Value::String(part)))
        .collect();
    Value::new_map(m)
}

fn splitn(a: &[Value]) -> FuncResult {
    let (sep, n, s) = (string(&a[0])?, int(&a[1])?, string(&a[2])?);
    let parts: Vec<String> = if n < 0 {
        s.split(sep.as_str()).map(str::to_string).collect()
    } else {
        s.splitn(n as usize, sep.as_str())
            .map(str::to_string)
            .collect()
    };
    Ok(numbered_parts(parts.into_iter()))
}
