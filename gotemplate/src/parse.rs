//! The parser: tokens into the syntax tree, with Go's checks (undefined
//! variables and functions, `break` outside `range`, ...).

use std::collections::BTreeMap;

use crate::error::ParseError;
use crate::func::FuncTable;
use crate::lex::{Tok, line_of, parse_number, string_value, tokenize};
use crate::tree::*;

struct Parser<'a> {
    /// Where the first error was raised (to tell it from a lexical error
    /// further on).
    error_pos: std::cell::Cell<usize>,
    toks: Vec<(Tok<'a>, usize)>,
    idx: usize,
    src: &'a str,
    name: &'a str,
    defines: BTreeMap<String, Vec<Node>>,
    /// Variables in scope, for "undefined variable" errors.
    vars: Vec<&'a str>,
    range_depth: usize,
    funcs: &'a FuncTable,
}

enum ListEnd {
    End,
    Else(usize),
    Eof,
}

impl<'a> Parser<'a> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        self.error_pos.set(pos);
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
                // Go places a template action at its name.
                Ok(Some(Node::Template(Box::new(TemplateCall {
                    pos: p,
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
                // Go keeps one definition of a name per parse: an empty one
                // gives way, two that are not empty are an error (at the
                // closing delimiter of the second's {{end}}).
                let end_pos = self
                    .toks
                    .get(self.idx.saturating_sub(1))
                    .map_or(pos, |t| t.1);
                let is_empty = is_empty_tree(&body, self.src);
                match self.defines.get(name.as_ref()) {
                    Some(existing) if !is_empty_tree(existing, self.src) => {
                        if !is_empty {
                            return Err(self.err(
                                end_pos,
                                format!("template: multiple definition of template \"{name}\""),
                            ));
                        }
                    }
                    _ => {
                        self.defines.insert(name.to_string(), body);
                    }
                }
                if k == "block" {
                    Ok(Some(Node::Template(Box::new(TemplateCall {
                        pos: p,
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
        // As in Go, the variables declared by the pipeline and in the branches
        // stay known to the parser until {{end}}: an `else` branch may name
        // them (running it, one not set is an error then).
        let vars_mark = self.vars.len();
        let pipe = self.parse_pipeline(k, true)?;
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
                    let nested = self.parse_control(kw, p)?;
                    let _ = else_pos;
                    Some(vec![nested])
                } else {
                    // Go leaves any `if`/`with` after `else` pending, and a
                    // list cannot start with it.
                    if let Tok::Keyword(kw @ ("if" | "with")) = self.peek() {
                        let kw = *kw;
                        return Err(self.err(self.pos(), format!("unexpected <{kw}> in input")));
                    }
                    self.expect_close("else")?;
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
            let (args, arg_positions) = self.parse_operands()?;
            if args.is_empty() {
                let (_, p) = self.next();
                return Err(self.err(p, format!("missing value for {context}")));
            }
            cmds.push(Command {
                pos: cpos,
                args,
                arg_positions,
            });
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
    /// The operands of one command, with where each starts.
    fn parse_operands(&mut self) -> Result<(Vec<Arg>, Vec<usize>), ParseError> {
        let mut args = Vec::new();
        let mut positions = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Tok::Pipe | Tok::Close | Tok::RParen | Tok::Eof => return Ok((args, positions)),
                _ => {}
            }
            positions.push(self.pos());
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
            Tok::Str(s) => Arg::Str(string_value(s).into_owned(), s.into()),
            Tok::Char(text, c) => Arg::Number(Box::new(NumberLit {
                text: text.to_string(),
                int: Some(c),
                float: Some(c as f64),
                is_float_syntax: false,
            })),
            Tok::Number(n) => {
                Arg::Number(Box::new(parse_number(n).ok_or_else(|| {
                    self.err(p, format!("bad number syntax: \"{n}\""))
                })?))
            }
            Tok::Ident(name) => match self.funcs.get(name) {
                Some(function) => Arg::Func(function),
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
                Arg::Dot | Arg::Nil | Arg::Bool(_) | Arg::Str(..) | Arg::Number(_) => {
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
            let (args, arg_positions) = self.parse_operands()?;
            if args.is_empty() {
                return Err(self.err(cpos, "missing value for parenthesized pipeline"));
            }
            cmds.push(Command {
                pos: cpos,
                args,
                arg_positions,
            });
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
        Tok::Char(_, c) => c.to_string(),
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

/// Parses the template `name` from `src`. Every function it calls must be in
/// `funcs`: an unknown function is a parse error, as in Go.
pub fn parse(name: &str, src: &str, funcs: &FuncTable) -> Result<ParsedFile, ParseError> {
    let (toks, lex_error) = tokenize(name, src);
    let mut parser = Parser {
        toks,
        idx: 0,
        src,
        name,
        defines: BTreeMap::new(),
        vars: vec!["$"],
        range_depth: 0,
        funcs,
        error_pos: std::cell::Cell::new(usize::MAX),
    };
    let parsed = parser.parse_list(true);
    if let Some((lex_pos, lex_error)) = lex_error {
        // The parser stopped at the tokens' early end unless it failed before.
        return match parsed {
            Err(error) if parser.error_pos.get() < lex_pos => Err(error),
            _ => Err(lex_error),
        };
    }
    let (body, _) = parsed?;
    let body_is_empty = is_empty_tree(&body, src);
    Ok(ParsedFile {
        body,
        defines: parser.defines,
        body_is_empty,
    })
}

/// Go's `IsEmptyTree`: nothing but blank text (comments are not kept).
pub fn is_empty_tree(nodes: &[Node], src: &str) -> bool {
    nodes.iter().all(
        |n| matches!(n, Node::Text(t) if src.get(t.clone()).is_some_and(|t| t.trim().is_empty())),
    )
}

/// Shared source text for error positions.
pub type Source = std::sync::Arc<str>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::alnum_len;

    fn p(src: &str) -> Result<ParsedFile, ParseError> {
        parse("t", src, &FuncTable::builtins())
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
                    Arg::Str(s, _) => s.as_str(),
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
