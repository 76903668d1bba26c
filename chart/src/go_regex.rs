//! Go `regexp` (RE2 syntax) for the sprig regex functions.
//!
//! Go's syntax differs from the Rust crates' in a few places charts meet:
//! a `{` that does not start a repetition is a literal (`{[^}]+}`), `\Q...\E`
//! quotes, octal escapes, a `]` first in a class is literal, and `\d`, `\s`,
//! `\w`, `\b` are ASCII-only. Patterns are rewritten into the Rust syntax
//! with the same meaning, then compiled by `regex-lite`, which builds a
//! pattern in microseconds rather than the full `regex` crate's hundreds
//! (a template applies a pattern to a few short strings, so compile time is
//! what counts). Only patterns that need Unicode, `\p{..}` classes or
//! case-insensitive matching, go to the `regex` crate.

use std::borrow::Cow;

/// A compiled Go pattern.
#[derive(Debug)]
pub enum GoRegex {
    Lite(regex_lite::Regex),
    Unicode(regex::Regex),
}

impl GoRegex {
    pub fn new(pattern: &str) -> Result<GoRegex, String> {
        if needs_unicode(pattern) {
            let rewritten = rewrite(pattern, true);
            regex::Regex::new(&rewritten)
                .map(GoRegex::Unicode)
                .map_err(|e| e.to_string())
        } else {
            let rewritten = rewrite(pattern, false);
            regex_lite::Regex::new(&rewritten)
                .map(GoRegex::Lite)
                .map_err(|e| e.to_string())
        }
    }

    pub fn is_match(&self, s: &str) -> bool {
        match self {
            GoRegex::Lite(r) => r.is_match(s),
            GoRegex::Unicode(r) => r.is_match(s),
        }
    }

    /// Byte ranges of the successive non-overlapping matches (Go's
    /// `FindAllStringIndex`: an empty match right after a match is skipped,
    /// which both crates' iterators also do).
    pub fn match_ranges(&self, s: &str) -> Vec<(usize, usize)> {
        match self {
            GoRegex::Lite(r) => r.find_iter(s).map(|m| (m.start(), m.end())).collect(),
            GoRegex::Unicode(r) => r.find_iter(s).map(|m| (m.start(), m.end())).collect(),
        }
    }

    /// Go's `ReplaceAllString`: `$1`, `${name}` in `replacement` expand.
    pub fn replace_all(&self, s: &str, replacement: &str) -> String {
        match self {
            GoRegex::Lite(r) => r.replace_all(s, replacement).into_owned(),
            GoRegex::Unicode(r) => r.replace_all(s, replacement).into_owned(),
        }
    }

    /// Go's `ReplaceAllLiteralString`.
    pub fn replace_all_literal(&self, s: &str, replacement: &str) -> String {
        match self {
            GoRegex::Lite(r) => r
                .replace_all(s, regex_lite::NoExpand(replacement))
                .into_owned(),
            GoRegex::Unicode(r) => r.replace_all(s, regex::NoExpand(replacement)).into_owned(),
        }
    }

    /// Go's `Split(s, n)`: `n < 0` all pieces, `n == 0` none, else at most
    /// `n`; an empty match at the start yields no leading empty piece, and an
    /// empty pattern splits between characters.
    pub fn split(&self, s: &str, n: i64) -> Option<Vec<String>> {
        if n == 0 {
            return None;
        }
        if !self.as_str().is_empty() && s.is_empty() {
            return Some(vec![String::new()]);
        }
        let mut pieces = Vec::new();
        let (mut begin, mut end) = (0, 0);
        for (start, stop) in self.match_ranges(s) {
            if n > 0 && pieces.len() as i64 == n - 1 {
                break;
            }
            end = start;
            if stop != 0 {
                pieces.push(s[begin..end].to_string());
            }
            begin = stop;
        }
        if end != s.len() {
            pieces.push(s[begin..].to_string());
        }
        Some(pieces)
    }

    fn as_str(&self) -> &str {
        match self {
            GoRegex::Lite(r) => r.as_str(),
            GoRegex::Unicode(r) => r.as_str(),
        }
    }
}

/// Go's `QuoteMeta`: a backslash before each of `\.+*?()|[]{}^$`, nothing else.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether matching needs Unicode tables: `\p`/`\P` classes or a flag group
/// that turns on case folding (Go folds non-ASCII letters too). Erring
/// towards yes only costs compile time.
fn needs_unicode(pattern: &str) -> bool {
    if pattern.contains("\\p") || pattern.contains("\\P") {
        return true;
    }
    pattern.match_indices("(?").any(|(at, _)| {
        pattern[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .any(|c| c == 'i')
    })
}

/// Perl classes with Go's ASCII meaning, for the Unicode engine; `inside`
/// gives the form usable within a bracket class.
fn ascii_perl_class(letter: char, inside: bool) -> Option<&'static str> {
    Some(match (letter, inside) {
        ('d', false) => "[0-9]",
        ('d', true) => "0-9",
        ('D', _) => "[^0-9]",
        ('s', false) => "[\\t\\n\\f\\r ]",
        ('s', true) => "\\t\\n\\f\\r ",
        ('S', _) => "[^\\t\\n\\f\\r ]",
        ('w', false) => "[0-9A-Za-z_]",
        ('w', true) => "0-9A-Za-z_",
        ('W', _) => "[^0-9A-Za-z_]",
        _ => return None,
    })
}

/// A character as a literal in the Rust syntax (inside or outside a class).
fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_punctuation() {
        out.push('\\');
    }
    out.push(c);
}

/// Rewrites a Go pattern into the Rust crates' syntax with the same meaning.
/// Malformed input is passed on so that the engine reports it.
fn rewrite(pattern: &str, unicode_engine: bool) -> Cow<'_, str> {
    if !pattern.chars().any(|c| matches!(c, '\\' | '[' | '{' | '}')) {
        return Cow::Borrowed(pattern);
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i = rewrite_escape(&chars, i, false, unicode_engine, &mut out),
            '[' => i = rewrite_class(&chars, i, unicode_engine, &mut out),
            '{' => match repetition_end(&chars, i) {
                Some(end) => {
                    out.extend(&chars[i..end]);
                    i = end;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// The end of a Go repetition `{n}`, `{n,}`, `{n,m}` starting at `at`.
fn repetition_end(chars: &[char], at: usize) -> Option<usize> {
    let mut i = at + 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if chars.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    (chars.get(i) == Some(&'}')).then_some(i + 1)
}

/// Rewrites the escape at `at` (a backslash); returns where to go on.
fn rewrite_escape(
    chars: &[char],
    at: usize,
    in_class: bool,
    unicode_engine: bool,
    out: &mut String,
) -> usize {
    let Some(&letter) = chars.get(at + 1) else {
        out.push('\\');
        return at + 1;
    };
    match letter {
        'Q' if !in_class => {
            let mut i = at + 2;
            while i < chars.len() {
                if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                    return i + 2;
                }
                push_literal(out, chars[i]);
                i += 1;
            }
            i
        }
        '0'..='7' => {
            // Go: \0, or \1-\7 followed by another octal digit, starts an
            // octal code of up to three digits; a lone \1-\7 (a
            // backreference) is passed on for the engine to refuse.
            let octal = |c: Option<&char>| c.is_some_and(|c| ('0'..='7').contains(c));
            if letter != '0' && !octal(chars.get(at + 2)) {
                out.push('\\');
                out.push(letter);
                return at + 2;
            }
            let mut code = 0u32;
            let mut i = at + 1;
            while i < at + 4 && octal(chars.get(i)) {
                code = code * 8 + (chars[i] as u32 - '0' as u32);
                i += 1;
            }
            out.push_str(&format!("\\x{{{code:x}}}"));
            i
        }
        'p' | 'P' => {
            out.push('\\');
            out.push(letter);
            let mut i = at + 2;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            if i < chars.len() {
                out.push(chars[i]);
                i += 1;
            }
            i
        }
        'b' | 'B' if unicode_engine && !in_class => {
            out.push_str(if letter == 'b' {
                "(?-u:\\b)"
            } else {
                "(?-u:\\B)"
            });
            at + 2
        }
        _ => {
            match ascii_perl_class(letter, in_class) {
                Some(class) if unicode_engine => out.push_str(class),
                _ => {
                    out.push('\\');
                    out.push(letter);
                }
            }
            at + 2
        }
    }
}

/// Rewrites the bracket class starting at `at` by Go's rules: a `]` first is
/// literal, `[:name:]` is a POSIX class, `-` between two characters is a
/// range and a literal elsewhere; everything else is a literal character
/// (Rust's nested classes and `&&`/`--`/`~~` do not exist in Go).
fn rewrite_class(chars: &[char], at: usize, unicode_engine: bool, out: &mut String) -> usize {
    out.push('[');
    let mut i = at + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    while i < chars.len() && (chars[i] != ']' || first) {
        first = false;
        let posix_class_len = (chars[i] == '[' && chars.get(i + 1) == Some(&':'))
            .then(|| chars[i + 2..].windows(2).position(|w| w == [':', ']']))
            .flatten();
        if let Some(len) = posix_class_len {
            out.extend(&chars[i..i + 2 + len + 2]);
            i += 2 + len + 2;
            continue;
        }
        i = rewrite_class_char(chars, i, unicode_engine, out);
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            out.push('-');
            i = rewrite_class_char(chars, i + 1, unicode_engine, out);
        }
    }
    if i < chars.len() {
        out.push(']');
        i += 1;
    }
    i
}

fn rewrite_class_char(chars: &[char], at: usize, unicode_engine: bool, out: &mut String) -> usize {
    if chars[at] == '\\' {
        rewrite_escape(chars, at, true, unicode_engine, out)
    } else {
        push_literal(out, chars[at]);
        at + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(pattern: &str, s: &str) -> Vec<String> {
        let re = GoRegex::new(pattern).expect("compiles");
        re.match_ranges(s)
            .into_iter()
            .map(|(a, b)| s[a..b].to_string())
            .collect()
    }

    #[test]
    fn braces_that_are_no_repetition_are_literals() {
        assert!(
            GoRegex::new("\\$(?:__(?:env|file|vault))?{[^}]+}")
                .expect("compiles")
                .is_match("$__file{/etc/secret}")
        );
        assert_eq!(finds("a{,2}", "a{,2}"), ["a{,2}"]);
        assert_eq!(finds("^[a-z]{2,}$", "ab"), ["ab"]);
        assert_eq!(finds("x}", "x}"), ["x}"]);
    }

    #[test]
    fn perl_classes_and_word_boundaries_are_ascii_in_both_engines() {
        assert_eq!(finds("\\d+", "12 ٣٤ 5"), ["12", "5"]);
        assert_eq!(finds("\\w+", "héllo"), ["h", "llo"]);
        // The \p class sends this one to the Unicode engine.
        assert_eq!(finds("\\pL+|\\d+", "é١2"), ["é", "2"]);
        assert_eq!(finds("(?i)\\bk", "xK K"), ["K"]);
        assert_eq!(finds("[^\\d\\s]+", "12 ab3"), ["ab"]);
    }

    #[test]
    fn go_only_syntax_is_rewritten() {
        assert_eq!(finds("\\Qa.b\\E", "axb a.b"), ["a.b"]);
        assert_eq!(finds("\\101", "zA"), ["A"]);
        assert_eq!(finds("[]a]+", "]a]"), ["]a]"]);
        assert_eq!(finds("[a&&b]", "&"), ["&"]);
        assert_eq!(finds("[a-]+", "-a-"), ["-a-"]);
        assert_eq!(finds("[[:alpha:]]+", "éab"), ["ab"]);
        assert!(GoRegex::new("\\1").is_err());
        assert!(GoRegex::new("[a").is_err());
    }

    #[test]
    fn case_folding_covers_non_ascii_letters_like_go() {
        assert!(
            GoRegex::new("(?i)k")
                .expect("compiles")
                .is_match("\u{212a}")
        );
        assert!(matches!(GoRegex::new("(?i)k"), Ok(GoRegex::Unicode(_))));
        assert!(matches!(GoRegex::new("[a-z]+"), Ok(GoRegex::Lite(_))));
    }

    #[test]
    fn no_short_pattern_makes_the_rewrite_panic() {
        let alphabet: Vec<char> = "\\[]{}-^:QE01p,a&(?i)".chars().collect();
        let mut compiled = 0;
        for a in &alphabet {
            for b in &alphabet {
                for c in &alphabet {
                    for d in &alphabet {
                        let pattern: String = [*a, *b, *c, *d].iter().collect();
                        compiled += usize::from(GoRegex::new(&pattern).is_ok());
                    }
                }
            }
        }
        assert!(compiled > 0);
    }

    #[test]
    fn split_and_replace_follow_go() {
        let split = |p: &str, s: &str, n| GoRegex::new(p).expect("compiles").split(s, n);
        assert_eq!(
            split("", "abc", -1),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(split("a*", "baaab", -1), Some(vec!["b".into(), "b".into()]));
        assert_eq!(split(",", "", -1), Some(vec![String::new()]));
        assert_eq!(split(",", "a,b,c", 2), Some(vec!["a".into(), "b,c".into()]));
        assert_eq!(split(",", "a,b,c", 0), None);
        let re = GoRegex::new("a*").expect("compiles");
        assert_eq!(re.replace_all("baaab", "<$0>"), "<>b<aaa>b<>");
        let re = GoRegex::new("(?P<x>b)").expect("compiles");
        assert_eq!(re.replace_all("abc", "${x}$1x[$1]"), "ab[b]c");
        assert_eq!(re.replace_all_literal("abc", "$1"), "a$1c");
        assert_eq!(quote_meta("a-b#c&d~e f.g"), "a-b#c&d~e f\\.g");
    }
}
