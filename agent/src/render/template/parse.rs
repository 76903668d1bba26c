//! Lexer and parser for Go `text/template` source.

use std::collections::BTreeMap;

use thiserror::Error;

/// A parse failure, located by byte offset in the template source.
#[derive(Debug, Clone, Error)]
#[error("template: {name}:{line}: {message}")]
pub struct ParseError {
    /// The template (file) name being parsed.
    pub name: String,
    pub line: usize,
    pub message: String,
}

/// A numeric constant as written in the template.
#[derive(Debug, Clone)]
pub struct NumberLit {
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
    /// Written as a float (has '.', exponent) rather than an integer.
    pub is_float_syntax: bool,
}

#[derive(Debug, Clone)]
pub enum Arg {
    /// `.A.B` and the position Go reports for it (its second token when chained).
    Field(Vec<String>, usize),
    /// `$x.A.B` (first element is the variable name with `$`), with its position.
    Variable(Vec<String>, usize),
    Dot,
    Nil,
    Bool(bool),
    /// Boxed: numbers are rare, and unboxed they would double every argument's size.
    Number(Box<NumberLit>),
    Str(String),
    /// A function name, as the function set spells it.
    Ident(&'static str),
    /// `( pipeline )`
    Pipe(Box<Pipe>),
    /// `(term).A.B`
    Chain(Box<Arg>, Vec<String>, usize),
}

#[derive(Debug, Clone)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    pub pos: usize,
    pub decls: Box<[String]>,
    pub is_assign: bool,
    pub cmds: Box<[Command]>,
}

#[derive(Debug, Clone)]
pub enum Node {
    /// Text copied as it is: its byte range in the template's source (the
    /// file, or the `tpl` text), which every executed template carries.
    Text(std::ops::Range<usize>),
    Action {
        pos: usize,
        pipe: Pipe,
    },
    // The rarer, larger nodes are boxed so that every node, text included,
    // stays small (64 bytes rather than 128).
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Template(Box<TemplateCall>),
    Break {
        pos: usize,
    },
    Continue {
        pos: usize,
    },
}

/// `if`, `range` or `with`: the pipeline and its two lists.
#[derive(Debug, Clone)]
pub struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

/// `{{template "name" pipeline}}` (and a `block`'s call of itself).
#[derive(Debug, Clone)]
pub struct TemplateCall {
    pub pos: usize,
    pub name: String,
    pub pipe: Option<Pipe>,
}

/// The result of parsing one source text: its main body plus `define`d templates.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub body: Vec<Node>,
    pub defines: BTreeMap<String, Vec<Node>>,
    /// True when the main body has content other than whitespace text
    /// (Go ignores empty bodies when redefining a template).
    pub body_is_empty: bool,
}

/// A token; names, text and string literals borrow from the source, so
/// tokens are plain copies and lexing allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    Text(&'a str),
    Open, // {{ (trim already applied)
    Close,
    Space,
    Ident(&'a str),
    Keyword(&'static str),
    Field(&'a str),
    Variable(&'a str),
    Dot,
    /// A string literal as written, quotes included; [`string_value`] reads it.
    Str(&'a str),
    Number(&'a str),
    Char(i64),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<(Tok<'a>, usize)>,
    name: &'a str,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Bytes that are ASCII letters, digits or `_`.
static ASCII_ALNUM: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 128 {
        table[byte] = (byte as u8).is_ascii_alphanumeric() || byte == b'_' as usize;
        byte += 1;
    }
    table
};

/// Length of the letters, digits and `_` at the start of `text`; ASCII is
/// looked up byte by byte, anything else checked as Unicode, as Go does.
fn alnum_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut len = 0;
    loop {
        len += bytes[len..]
            .iter()
            .take_while(|b| ASCII_ALNUM[usize::from(**b)])
            .count();
        if bytes.get(len).is_none_or(u8::is_ascii) {
            return len;
        }
        match text[len..].chars().next() {
            Some(c) if is_alnum(c) => len += c.len_utf8(),
            _ => return len,
        }
    }
}

/// Where the next `{{` starts. memchr for `{` (rare in text but as `{{`),
/// instead of `str::find`, which sets up a substring searcher on every call.
fn find_open_delimiter(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = memchr::memchr(b'{', &bytes[from..]) {
        let at = from + offset;
        if bytes.get(at + 1) == Some(&b'{') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

impl<'a> Lexer<'a> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            name: self.name.to_string(),
            line: line_of(self.src, pos),
            message: msg.into(),
        }
    }

    fn run(mut self) -> Result<Vec<(Tok<'a>, usize)>, ParseError> {
        let bytes = self.src.as_bytes();
        let mut trim_next_text = false;
        loop {
            let rest = &self.src[self.pos..];
            let next_open = find_open_delimiter(rest);
            let text_end = next_open.map(|i| self.pos + i).unwrap_or(self.src.len());
            let mut text = &self.src[self.pos..text_end];
            if trim_next_text {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            let action_start = text_end;
            // "{{- " trims the whitespace before the action.
            let left_trim = next_open.is_some()
                && bytes.get(action_start + 2) == Some(&b'-')
                && bytes.get(action_start + 3).is_some_and(|c| is_space(*c));
            if left_trim {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                let text_pos = self.pos;
                self.toks.push((Tok::Text(text), text_pos));
            }
            if next_open.is_none() {
                self.toks.push((Tok::Eof, self.src.len()));
                return Ok(self.toks);
            }
            self.pos = action_start + 2;
            if left_trim {
                self.pos += 2;
            }
            trim_next_text = self.lex_action(action_start)?;
        }
    }

    /// Lexes one action; returns whether it ended with a right trim marker.
    fn lex_action(&mut self, start: usize) -> Result<bool, ParseError> {
        let bytes = self.src.as_bytes();
        // Comments: {{/* ... */}} with optional trim markers.
        {
            // A comment must start right after the delimiter (and trim marker).
            let p = self.src[self.pos..].starts_with("/*").then_some(self.pos);
            if let Some(p) = p {
                let Some(end) = self.src[p + 2..].find("*/") else {
                    return Err(self.err(start, "unclosed comment"));
                };
                let mut q = p + 2 + end + 2;
                let rest = &self.src[q..];
                if rest.starts_with("}}") {
                    self.pos = q + 2;
                    return Ok(false);
                }
                if rest.len() >= 4 && is_space(bytes[q]) && rest[1..].starts_with("-}}") {
                    q += 4;
                    self.pos = q;
                    return Ok(true);
                }
                return Err(self.err(start, "comment ends before closing delimiter"));
            }
        }
        self.toks.push((Tok::Open, start));
        let mut paren_depth = 0i32;
        loop {
            let p = self.pos;
            let rest = &self.src[p..];
            let Some(c) = rest.chars().next() else {
                // Go reports it where the input ends, naming where the action began.
                let msg = format!(
                    "unclosed action started at {}:{}",
                    self.name,
                    line_of(self.src, start)
                );
                return Err(self.err(self.src.len(), msg));
            };
            if rest.starts_with("}}") {
                if paren_depth > 0 {
                    return Err(self.err(p, "unclosed left paren"));
                }
                self.toks.push((Tok::Close, p));
                self.pos = p + 2;
                return Ok(false);
            }
            if is_space(c as u8) && c.is_ascii() {
                let mut q = p;
                while q < bytes.len() && is_space(bytes[q]) {
                    q += 1;
                }
                if self.src[q..].starts_with("-}}") {
                    if paren_depth > 0 {
                        return Err(self.err(p, "unclosed left paren"));
                    }
                    self.toks.push((Tok::Close, q));
                    self.pos = q + 3;
                    return Ok(true);
                }
                self.toks.push((Tok::Space, p));
                self.pos = q;
                continue;
            }
            match c {
                '|' => {
                    self.toks.push((Tok::Pipe, p));
                    self.pos += 1;
                }
                '(' => {
                    paren_depth += 1;
                    self.toks.push((Tok::LParen, p));
                    self.pos += 1;
                }
                ')' => {
                    paren_depth -= 1;
                    if paren_depth < 0 {
                        return Err(self.err(p, "unexpected right paren"));
                    }
                    self.toks.push((Tok::RParen, p));
                    self.pos += 1;
                }
                ',' => {
                    self.toks.push((Tok::Comma, p));
                    self.pos += 1;
                }
                '=' => {
                    self.toks.push((Tok::Assign, p));
                    self.pos += 1;
                }
                ':' => {
                    if !rest.starts_with(":=") {
                        return Err(self.err(p, "expected :="));
                    }
                    self.toks.push((Tok::Declare, p));
                    self.pos += 2;
                }
                '"' => {
                    let len = 1 + unquote(&rest[1..]).map_err(|msg| self.err(p, msg))?.1;
                    self.toks.push((Tok::Str(&rest[..len]), p));
                    self.pos += len;
                }
                '`' => {
                    let Some(end) = rest[1..].find('`') else {
                        return Err(self.err(p, "unterminated raw quoted string"));
                    };
                    self.toks.push((Tok::Str(&rest[..end + 2]), p));
                    self.pos += end + 2;
                }
                '\'' => {
                    let (v, len) = self.lex_char(p)?;
                    self.toks.push((Tok::Char(v), p));
                    self.pos += len;
                }
                '$' => {
                    let len = 1 + alnum_len(&rest[1..]);
                    self.toks.push((Tok::Variable(&rest[..len]), p));
                    self.pos += len;
                }
                '.' => {
                    let next = rest[1..].chars().next();
                    if next.is_some_and(|c| c.is_ascii_digit()) {
                        let len = number_len(rest);
                        self.toks.push((Tok::Number(&rest[..len]), p));
                        self.pos += len;
                    } else if next.is_some_and(is_alnum) {
                        let len = 1 + alnum_len(&rest[1..]);
                        self.toks.push((Tok::Field(&rest[1..len]), p));
                        self.pos += len;
                    } else {
                        self.toks.push((Tok::Dot, p));
                        self.pos += 1;
                    }
                }
                c if c.is_ascii_digit()
                    || ((c == '-' || c == '+')
                        && rest[1..]
                            .chars()
                            .next()
                            .is_some_and(|d| d.is_ascii_digit() || d == '.')) =>
                {
                    let len = number_len(rest);
                    self.toks.push((Tok::Number(&rest[..len]), p));
                    self.pos += len;
                }
                c if is_alnum(c) => {
                    let len = alnum_len(rest);
                    let word = &rest[..len];
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(w),
                        },
                    };
                    self.toks.push((tok, p));
                    self.pos += len;
                }
                other if other.is_ascii() && !other.is_ascii_control() => {
                    return Err(self.err(p, format!("unexpected \"{other}\" in operand")));
                }
                other => {
                    return Err(self.err(
                        p,
                        format!("unrecognized character in action: U+{:04X}", other as u32),
                    ));
                }
            }
        }
    }

    fn lex_char(&self, p: usize) -> Result<(i64, usize), ParseError> {
        let rest = &self.src[p + 1..];
        let Some(end) = rest.find('\'') else {
            return Err(self.err(p, "unterminated character constant"));
        };
        // An escaped quote: '\'' (and it must be closed).
        let end = match rest.strip_prefix("\\'") {
            Some(after) if after.starts_with('\'') => 2,
            Some(_) => return Err(self.err(p, "unterminated character constant")),
            None => end,
        };
        let body = &rest[..end];
        let value = if let Some(esc) = body.strip_prefix('\\') {
            match esc {
                "n" => 10,
                "t" => 9,
                "r" => 13,
                "\\" => 92,
                "'" => 39,
                "0" => 0,
                _ => return Err(self.err(p, format!("malformed character constant: '{body}'"))),
            }
        } else {
            let mut cs = body.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => c as i64,
                _ => return Err(self.err(p, format!("malformed character constant: '{body}'"))),
            }
        };
        Ok((value, end + 2))
    }
}

/// Reads a double-quoted literal from just after its opening quote: its
/// value (borrowed unless it has escapes) and its length with the closing quote.
fn unquote(rest: &str) -> Result<(std::borrow::Cow<'_, str>, usize), &'static str> {
    let Some(first_special) = rest.find(['"', '\\', '\n']) else {
        return Err("unterminated quoted string");
    };
    if rest.as_bytes()[first_special] == b'"' {
        return Ok((
            std::borrow::Cow::Borrowed(&rest[..first_special]),
            first_special + 1,
        ));
    }
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((std::borrow::Cow::Owned(out), i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .map_err(|_| "invalid escape in quoted string")?;
                        if e == 'x' {
                            // A \x escape is one byte; only ASCII fits in a Rust String.
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        } else {
                            out.push(
                                char::from_u32(code).ok_or("invalid escape in quoted string")?,
                            );
                        }
                    }
                    d if d.is_digit(8) => {
                        let mut digits = String::from(d);
                        for _ in 0..2 {
                            if let Some((_, c)) = chars.next() {
                                digits.push(c);
                            }
                        }
                        let code = u32::from_str_radix(&digits, 8)
                            .map_err(|_| "invalid escape in quoted string")?;
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    _ => return Err("invalid syntax"),
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string")
}

/// The value of a string literal token (double-quoted or raw), which the
/// lexer has checked.
fn string_value(literal: &str) -> std::borrow::Cow<'_, str> {
    match literal.strip_prefix('`') {
        Some(raw) => std::borrow::Cow::Borrowed(raw.strip_suffix('`').unwrap_or(raw)),
        None => unquote(literal.get(1..).unwrap_or_default())
            .map_or_else(|_| literal.into(), |(value, _)| value),
    }
}

fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut hex = false;
    if b.len() > i + 1 && b[i] == b'0' && matches!(b[i + 1], b'x' | b'X') {
        hex = true;
        i += 2;
    }
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_alphanumeric()
            || c == b'_'
            || c == b'.'
            || ((c == b'+' || c == b'-')
                && i > 0
                && (if hex {
                    matches!(b[i - 1], b'p' | b'P')
                } else {
                    matches!(b[i - 1], b'e' | b'E')
                }));
        if !ok {
            break;
        }
        i += 1;
    }
    i
}

/// Parses a Go number literal the way text/template does.
pub fn parse_number(text: &str) -> Option<NumberLit> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bn) = lower.strip_prefix("0b") {
        i64::from_str_radix(bn, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    }
    .map(|v| if neg { -v } else { v });
    let is_hex = lower.starts_with("0x");
    let is_float_syntax = !is_hex && lower.contains(['.', 'e']);
    let float = if let Some(i) = int {
        Some(i as f64)
    } else if !is_hex {
        lower.parse::<f64>().ok().map(|v| if neg { -v } else { v })
    } else {
        None
    };
    if int.is_none() && float.is_none() {
        return None;
    }
    Some(NumberLit {
        text: text.to_string(),
        int: if is_float_syntax {
            float
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        } else {
            int
        },
        float,
        is_float_syntax,
    })
}

/// 1-based line number of a byte offset.
pub fn line_of(src: &str, pos: usize) -> usize {
    1 + src.as_bytes()[..pos.min(src.len())]
        .iter()
        .filter(|c| **c == b'\n')
        .count()
}

/// (line, column) of a byte offset as Go reports them (column is the 0-based byte
/// offset within the line).
pub fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|c| **c == b'\n').count();
    let col = match before.iter().rposition(|c| *c == b'\n') {
        Some(nl) => pos - nl - 1,
        None => pos,
    };
    (line, col)
}

struct Parser<'a> {
    toks: Vec<(Tok<'a>, usize)>,
    idx: usize,
    src: &'a str,
    name: &'a str,
    defines: BTreeMap<String, Vec<Node>>,
    /// Variables in scope, for "undefined variable" errors.
    vars: Vec<&'a str>,
    range_depth: usize,
    function_name: &'a dyn Fn(&str) -> Option<&'static str>,
}

enum ListEnd {
    End,
    Else(usize),
    Eof,
}

impl<'a> Parser<'a> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            name: self.name.to_string(),
            line: line_of(self.src, pos),
            message: msg.into(),
        }
    }

    fn peek(&self) -> &Tok<'a> {
        &self.toks[self.idx.min(self.toks.len() - 1)].0
    }

    fn pos(&self) -> usize {
        self.toks[self.idx.min(self.toks.len() - 1)].1
    }

    fn next(&mut self) -> (Tok<'a>, usize) {
        let t = self.toks[self.idx.min(self.toks.len() - 1)];
        self.idx += 1;
        t
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Tok::Space) {
            self.idx += 1;
        }
    }

    fn next_non_space(&mut self) -> (Tok<'a>, usize) {
        self.skip_space();
        self.next()
    }

    fn expect_close(&mut self, context: &str) -> Result<(), ParseError> {
        let (t, p) = self.next_non_space();
        if !matches!(t, Tok::Close) {
            return Err(self.err(p, format!("unexpected {} in {context}", describe(&t))));
        }
        Ok(())
    }

    /// Parses nodes until `{{end}}`, `{{else}}` or EOF.
    fn parse_list(&mut self, top: bool) -> Result<(Vec<Node>, ListEnd), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let (t, p) = self.next();
            match t {
                Tok::Eof => return Ok((nodes, ListEnd::Eof)),
                Tok::Text(s) => {
                    // Text tokens are slices of the source.
                    let start = s.as_ptr() as usize - self.src.as_ptr() as usize;
                    nodes.push(Node::Text(start..start + s.len()));
                }
                Tok::Open => {
                    self.skip_space();
                    let (kw, kp) = (*self.peek(), self.pos());
                    match kw {
                        Tok::Keyword("end") => {
                            self.idx += 1;
                            self.expect_close("end")?;
                            if top {
                                return Err(self.err(kp, "unexpected {{end}}"));
                            }
                            return Ok((nodes, ListEnd::End));
                        }
                        Tok::Keyword("else") => {
                            self.idx += 1;
                            if top {
                                return Err(self.err(kp, "unexpected {{else}}"));
                            }
                            return Ok((nodes, ListEnd::Else(kp)));
                        }
                        Tok::Keyword(k) => {
                            self.idx += 1;
                            if let Some(n) = self.parse_keyword(k, kp, top)? {
                                nodes.push(n);
                            }
                        }
                        _ => {
                            let vars_before = self.vars.len();
                            let pipe = self.parse_pipeline("command", true)?;
                            // Declarations in a plain action stay in scope until the end of
                            // the enclosing block.
                            let _ = vars_before;
                            nodes.push(Node::Action { pos: p, pipe });
                        }
                    }
                }
                other => return Err(self.err(p, format!("unexpected {}", describe(&other)))),
            }
        }
    }

    fn parse_keyword(
        &mut self,
        k: &str,
        pos: usize,
        top: bool,
    ) -> Result<Option<Node>, ParseError> {
        match k {
            "if" | "with" | "range" => self.parse_control(k, pos).map(Some),
            "break" | "continue" => {
                if self.range_depth == 0 {
                    return Err(self.err(pos, format!("{{{{{k}}}}} outside {{{{range}}}}")));
                }
                self.expect_close(k)?;
                Ok(Some(if k == "break" {
                    Node::Break { pos }
                } else {
                    Node::Continue { pos }
                }))
            }
            "template" => {
                let (t, p) = self.next_non_space();
                let name = match t {
                    Tok::Str(s) => string_value(s),
                    other => {
                        return Err(self.err(
                            p,
                            format!("unexpected {} in template clause", describe(&other)),
                        ));
                    }
                };
                self.skip_space();
                let pipe = if matches!(self.peek(), Tok::Close) {
                    self.idx += 1;
                    None
                } else {
                    Some(self.parse_pipeline("template clause", false)?)
                };
                Ok(Some(Node::Template(Box::new(TemplateCall {
                    pos,
                    name: name.into_owned(),
                    pipe,
                }))))
            }
            "define" | "block" => {
                if k == "define" && !top {
                    return Err(self.err(pos, "unexpected <define> in command"));
                }
                let (t, p) = self.next_non_space();
                let name = match t {
                    Tok::Str(s) => string_value(s),
                    other => {
                        return Err(
                            self.err(p, format!("unexpected {} in {k} clause", describe(&other)))
                        );
                    }
                };
                let pipe = if k == "block" {
                    Some(self.parse_pipeline("block clause", false)?)
                } else {
                    self.expect_close("define clause")?;
                    None
                };
                let saved_vars = std::mem::replace(&mut self.vars, vec!["$"]);
                let saved_range = std::mem::replace(&mut self.range_depth, 0);
                let (body, end) = self.parse_list(false)?;
                self.vars = saved_vars;
                self.range_depth = saved_range;
                match end {
                    ListEnd::End => {}
                    ListEnd::Else(p) => {
                        return Err(self.err(p, format!("unexpected <else> in {k}")));
                    }
                    ListEnd::Eof => {
                        return Err(self.err(self.src.len(), "unexpected EOF".to_string()));
                    }
                }
                self.defines.insert(name.to_string(), body);
                if k == "block" {
                    Ok(Some(Node::Template(Box::new(TemplateCall {
                        pos,
                        name: name.into_owned(),
                        pipe,
                    }))))
                } else {
                    Ok(None)
                }
            }
            _ => Err(self.err(pos, format!("unexpected keyword {k}"))),
        }
    }

    fn parse_control(&mut self, k: &str, pos: usize) -> Result<Node, ParseError> {
        let vars_mark = self.vars.len();
        let pipe = self.parse_pipeline(k, k == "range")?;
        if k == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.parse_list(false)?;
        if k == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            ListEnd::End => None,
            ListEnd::Eof => return Err(self.err(self.src.len(), "unexpected EOF".to_string())),
            ListEnd::Else(else_pos) => {
                self.skip_space();
                // `else if` / `else with` chain into a nested control sharing the {{end}}.
                let chained = match self.peek() {
                    Tok::Keyword(kw)
                        if (*kw == "if" && k == "if") || (*kw == "with" && k == "with") =>
                    {
                        Some(*kw)
                    }
                    _ => None,
                };
                if let Some(kw) = chained {
                    let p = self.pos();
                    self.idx += 1;
                    self.vars.truncate(vars_mark);
                    let nested = self.parse_control(kw, p)?;
                    let _ = else_pos;
                    Some(vec![nested])
                } else {
                    self.expect_close("else")?;
                    self.vars.truncate(vars_mark);
                    let (else_list, end) = self.parse_list(false)?;
                    match end {
                        ListEnd::End => {}
                        ListEnd::Else(p) => return Err(self.err(p, "expected end; found {{else}}")),
                        ListEnd::Eof => {
                            return Err(self.err(self.src.len(), "unexpected EOF".to_string()));
                        }
                    }
                    Some(else_list)
                }
            }
        };
        self.vars.truncate(vars_mark);
        let branch = Box::new(Branch {
            pos,
            pipe,
            list,
            else_list,
        });
        Ok(match k {
            "if" => Node::If(branch),
            "with" => Node::With(branch),
            _ => Node::Range(branch),
        })
    }

    /// Parses a pipeline up to and including the closing delimiter.
    fn parse_pipeline(&mut self, context: &str, allow_decl: bool) -> Result<Pipe, ParseError> {
        self.skip_space();
        let pos = self.pos();
        let mut decls = Vec::new();
        let mut is_assign = false;
        // Look ahead for `$x :=`, `$x =`, `$i, $v :=`.
        if let Tok::Variable(_) = self.peek() {
            let save = self.idx;
            let mut names = Vec::new();
            loop {
                let (t, _) = self.next_non_space();
                let Tok::Variable(v) = t else {
                    break;
                };
                names.push(v);
                let (sep, _) = self.next_non_space();
                match sep {
                    Tok::Declare | Tok::Assign => {
                        is_assign = matches!(sep, Tok::Assign);
                        decls = names.clone();
                        break;
                    }
                    Tok::Comma if context == "range" && names.len() == 1 => continue,
                    _ => break,
                }
            }
            if decls.is_empty() {
                self.idx = save;
            } else if !allow_decl && context != "range" {
                return Err(self.err(pos, format!("unexpected declaration in {context}")));
            }
        }
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            let cpos = self.pos();
            let args = self.parse_operands()?;
            if args.is_empty() {
                let (_, p) = self.next();
                return Err(self.err(p, format!("missing value for {context}")));
            }
            cmds.push(Command { pos: cpos, args });
            let (t, p) = self.next_non_space();
            match t {
                Tok::Pipe => continue,
                Tok::Close => break,
                other => {
                    return Err(
                        self.err(p, format!("unexpected {} in {context}", describe(&other)))
                    );
                }
            }
        }
        // Check declared/assigned variables.
        if is_assign {
            for d in &decls {
                if !self.vars.contains(d) {
                    return Err(self.err(pos, format!("undefined variable \"{d}\"")));
                }
            }
        } else {
            self.vars.extend(decls.iter().copied());
        }
        Ok(Pipe {
            pos,
            decls: decls.iter().map(|d| d.to_string()).collect(),
            is_assign,
            cmds: cmds.into_boxed_slice(),
        })
    }

    /// Parses operands of one command, stopping before `|`, `)` or the close delimiter.
    fn parse_operands(&mut self) -> Result<Vec<Arg>, ParseError> {
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Tok::Pipe | Tok::Close | Tok::RParen | Tok::Eof => return Ok(args),
                _ => {}
            }
            let operand = self.parse_operand()?;
            args.push(operand);
            match self.peek() {
                Tok::Space | Tok::Pipe | Tok::Close | Tok::RParen => {}
                other => {
                    let (other, p) = (*other, self.pos());
                    return Err(self.err(p, format!("unexpected {} in operand", describe(&other))));
                }
            }
        }
    }

    fn parse_operand(&mut self) -> Result<Arg, ParseError> {
        let (t, p) = self.next();
        let term = match t {
            Tok::Field(f) => {
                let (fields, second) = self.take_fields(Some(f));
                return Ok(Arg::Field(fields, second.unwrap_or(p)));
            }
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(p, format!("undefined variable \"{v}\"")));
                }
                let (parts, second) = self.take_fields(Some(v));
                return Ok(Arg::Variable(parts, second.unwrap_or(p)));
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Str(s) => Arg::Str(string_value(s).into_owned()),
            Tok::Char(c) => Arg::Number(Box::new(NumberLit {
                text: c.to_string(),
                int: Some(c),
                float: Some(c as f64),
                is_float_syntax: false,
            })),
            Tok::Number(n) => {
                Arg::Number(Box::new(parse_number(n).ok_or_else(|| {
                    self.err(p, format!("bad number syntax: \"{n}\""))
                })?))
            }
            Tok::Ident(name) => match (self.function_name)(name) {
                Some(function) => Arg::Ident(function),
                None => return Err(self.err(p, format!("function \"{name}\" not defined"))),
            },
            Tok::LParen => {
                let inner = self.parse_paren_pipeline(p)?;
                Arg::Pipe(Box::new(inner))
            }
            other => return Err(self.err(p, format!("unexpected {} in operand", describe(&other)))),
        };
        let (fields, _) = self.take_fields(None);
        if fields.is_empty() {
            Ok(term)
        } else {
            match term {
                Arg::Dot | Arg::Nil | Arg::Bool(_) | Arg::Str(_) | Arg::Number(_) => {
                    Err(self.err(p, "unexpected . after term"))
                }
                t => Ok(Arg::Chain(Box::new(t), fields, p)),
            }
        }
    }

    /// Takes the field tokens at the cursor (`.b.c` after a term) as names,
    /// after `first` when given; returns them with the first taken token's
    /// position. The names are counted first: one allocation for the list.
    fn take_fields(&mut self, first: Option<&str>) -> (Vec<String>, Option<usize>) {
        let start = self.idx;
        let mut end = start;
        while let Some((Tok::Field(_), _)) = self.toks.get(end) {
            end += 1;
        }
        let mut names = Vec::with_capacity(usize::from(first.is_some()) + end - start);
        names.extend(first.map(str::to_string));
        for (tok, _) in &self.toks[start..end] {
            if let Tok::Field(name) = tok {
                names.push(name.to_string());
            }
        }
        self.idx = end;
        (
            names,
            self.toks
                .get(start)
                .filter(|_| end > start)
                .map(|(_, pos)| *pos),
        )
    }

    /// Parses `pipeline )` after a `(`.
    fn parse_paren_pipeline(&mut self, pos: usize) -> Result<Pipe, ParseError> {
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            let cpos = self.pos();
            let args = self.parse_operands()?;
            if args.is_empty() {
                return Err(self.err(cpos, "missing value for parenthesized pipeline"));
            }
            cmds.push(Command { pos: cpos, args });
            let (t, p) = self.next_non_space();
            match t {
                Tok::Pipe => continue,
                Tok::RParen => break,
                other => {
                    return Err(self.err(
                        p,
                        format!("unexpected {} in parenthesized pipeline", describe(&other)),
                    ));
                }
            }
        }
        Ok(Pipe {
            pos,
            decls: Box::default(),
            is_assign: false,
            cmds: cmds.into_boxed_slice(),
        })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Close => "\"}}\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::Eof => "EOF".into(),
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Variable(v) => format!("<{v}>"),
        Tok::Str(s) => format!("\"{}\"", string_value(s)),
        Tok::Number(n) => n.to_string(),
        Tok::Char(c) => c.to_string(),
        Tok::Bool(b) => b.to_string(),
        Tok::Nil => "<nil>".into(),
        Tok::Dot => "<.>".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Space => "space".into(),
        Tok::Open => "\"{{\"".into(),
        Tok::Text(_) => "text".into(),
    }
}

/// Parses template source. `function_name` says which identifiers are
/// functions, giving each function's name as the function set spells it.
pub fn parse(
    name: &str,
    src: &str,
    function_name: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<ParsedFile, ParseError> {
    let toks = Lexer {
        src,
        pos: 0,
        // Chart templates run to ~0.14 tokens per byte (0.23 at most in the
        // corpus): sized once, the vector is not copied as it grows, and
        // pages it never reaches are never touched.
        toks: Vec::with_capacity(src.len() / 4 + 8),
        name,
    }
    .run()?;
    let mut parser = Parser {
        toks,
        idx: 0,
        src,
        name,
        defines: BTreeMap::new(),
        vars: vec!["$"],
        range_depth: 0,
        function_name,
    };
    let (body, _) = parser.parse_list(true)?;
    let body_is_empty = body.iter().all(
        |n| matches!(n, Node::Text(t) if src.get(t.clone()).is_some_and(|t| t.trim().is_empty())),
    );
    Ok(ParsedFile {
        body,
        defines: parser.defines,
        body_is_empty,
    })
}

/// Shared source text for error positions.
pub type Source = std::sync::Arc<str>;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Result<ParsedFile, ParseError> {
        parse("t", src, &|n| {
            ["printf", "len"].into_iter().find(|f| *f == n)
        })
    }

    #[test]
    fn identifiers_run_over_unicode_letters_and_stop_at_anything_else() {
        assert_eq!(alnum_len("_x9 rest"), 3);
        assert_eq!(alnum_len("größe.x"), "größe".len());
        assert_eq!(alnum_len("a-b"), 1);
        assert_eq!(alnum_len("x\u{2028}"), 1);
        assert_eq!(alnum_len(""), 0);
        let parsed = p("{{ $größe := .Values.café }}{{ $größe }}").expect("parses");
        let Node::Action { pipe, .. } = &parsed.body[0] else {
            panic!("an action: {:?}", parsed.body);
        };
        assert_eq!(&*pipe.decls, ["$größe"]);
        assert!(
            matches!(&pipe.cmds[0].args[0], Arg::Field(names, _) if names == &["Values", "café"])
        );
    }

    #[test]
    fn string_literals_keep_their_values_and_their_errors() {
        let parsed = p(r#"{{ "plain" }}{{ "tab\there \u00e9\x41\101" }}{{ `raw\n` }}{{ "" }}"#)
            .expect("parses");
        let strings: Vec<&str> = parsed
            .body
            .iter()
            .map(|node| match node {
                Node::Action { pipe, .. } => match &pipe.cmds[0].args[0] {
                    Arg::Str(s) => s.as_str(),
                    other => panic!("a string: {other:?}"),
                },
                other => panic!("an action: {other:?}"),
            })
            .collect();
        assert_eq!(strings, ["plain", "tab\there éAA", "raw\\n", ""]);
        for (src, message) in [
            ("{{ \"open }}", "unterminated quoted string"),
            ("{{ \"a\nb\" }}", "unterminated quoted string"),
            ("{{ \"bad \\q\" }}", "invalid syntax"),
            ("{{ `open }}", "unterminated raw quoted string"),
        ] {
            let error = p(src).expect_err(src);
            assert_eq!(error.message, message, "{src}");
        }
    }

    #[test]
    fn parses_nested_controls_and_defines() {
        let f = p("{{define \"x\"}}a{{end}}{{if .A}}{{else if .B}}{{else}}{{end}}{{range $i, $v := .L}}{{$i}}{{end}}")
            .expect("parses");
        assert!(f.defines.contains_key("x"));
        assert_eq!(f.body.len(), 2);
    }

    #[test]
    fn reports_go_style_errors() {
        // Messages as Go's text/template reports them.
        assert_eq!(
            p("a\n{{ $x }}").unwrap_err().to_string(),
            "template: t:2: undefined variable \"$x\""
        );
        assert_eq!(
            p("{{ foo }}").unwrap_err().to_string(),
            "template: t:1: function \"foo\" not defined"
        );
        assert_eq!(
            p("{{ if .A }}").unwrap_err().to_string(),
            "template: t:1: unexpected EOF"
        );
    }

    #[test]
    fn numbers() {
        let n = parse_number("0x1F").expect("hex");
        assert_eq!(n.int, Some(31));
        assert!(!n.is_float_syntax);
        let n = parse_number("1e3").expect("exp");
        assert!(n.is_float_syntax);
        assert_eq!(parse_number("017").and_then(|n| n.int), Some(15));
    }
}
