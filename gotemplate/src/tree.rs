//! The syntax tree a parsed template is made of.

use std::collections::BTreeMap;

use crate::func::Func;

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
    /// A string constant: its value, and its text as written (quotes and
    /// escapes), which Go prints where it reports an error.
    Str(String, Box<str>),
    /// A function, resolved in the function table when parsed.
    Func(Func),
    /// `( pipeline )`
    Pipe(Box<Pipe>),
    /// `(term).A.B`
    Chain(Box<Arg>, Vec<String>, usize),
}

#[derive(Debug, Clone)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
    /// Where each of `args` starts (Go's position of its node).
    pub arg_positions: Vec<usize>,
}

impl Command {
    /// Where the `index`th of `args` starts (the command's own position
    /// when there is no such argument).
    pub fn arg_position(&self, index: usize) -> usize {
        self.arg_positions.get(index).copied().unwrap_or(self.pos)
    }
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

/// Go's String() of an argument node (used in error contexts).
pub fn arg_string(a: &Arg) -> String {
    match a {
        Arg::Field(f, _) => f.iter().map(|x| format!(".{x}")).collect(),
        Arg::Variable(parts, _) => {
            let mut s = parts[0].clone();
            for p in &parts[1..] {
                s.push('.');
                s.push_str(p);
            }
            s
        }
        Arg::Dot => ".".into(),
        Arg::Nil => "nil".into(),
        Arg::Bool(b) => b.to_string(),
        Arg::Number(n) => n.text.clone(),
        Arg::Str(_, written) => written.to_string(),
        Arg::Func(f) => f.name.to_string(),
        Arg::Pipe(p) => format!("({})", pipe_string(p)),
        Arg::Chain(inner, fields, _) => {
            let mut s = arg_string(inner);
            for f in fields {
                s.push('.');
                s.push_str(f);
            }
            s
        }
    }
}

pub fn cmd_string(c: &Command) -> String {
    c.args.iter().map(arg_string).collect::<Vec<_>>().join(" ")
}

pub fn pipe_string(p: &Pipe) -> String {
    let mut s = String::new();
    if !p.decls.is_empty() {
        s.push_str(&p.decls.join(", "));
        s.push_str(if p.is_assign { " = " } else { " := " });
    }
    s.push_str(
        &p.cmds
            .iter()
            .map(cmd_string)
            .collect::<Vec<_>>()
            .join(" | "),
    );
    s
}
