//! Executes parsed templates with Go text/template semantics (Helm's
//! `missingkey=zero` option: a missing map key yields nil).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{ExecError, ParseError, TextError};
use crate::fmt::quote;
use crate::func::{Body, Func, FuncTable, Literal, Param, Runner};
use crate::lex::line_col;
use crate::parse::{Source, parse};
use crate::tree::ParsedFile;
use crate::tree::{
    Arg, Branch, Command, Node, Pipe, TemplateCall, arg_string, cmd_string, pipe_string,
};
use crate::value::Value;

/// Deepest nesting of `template`/`include`/`tpl` calls by default (guards
/// against runaway recursion in a chart).
pub const DEFAULT_MAX_DEPTH: usize = 200;

/// The deepest nesting a host may allow (Helm stops an `include` of itself
/// at 1,000 too).
pub const MAX_DEPTH_ALLOWED: usize = 1000;

/// Stack left at which a nested template call moves to a new segment, and
/// that segment's size.
const STACK_RED_ZONE: usize = 256 << 10;
const STACK_SEGMENT: usize = 2 << 20;

/// How much one execution of a set may do: a chart that loops for ever,
/// builds a gigabyte string or recurses without end stops with an error
/// instead of holding a thread and memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecLimits {
    /// Wall-clock time for everything the set runs from the first execution.
    pub timeout: Option<Duration>,
    /// Bytes of text produced in all: what templates write and the strings
    /// functions return (a bound on both work and memory).
    pub max_bytes: u64,
    /// Nesting of `template`/`include`/`tpl` calls (at most
    /// [`MAX_DEPTH_ALLOWED`]).
    pub max_depth: usize,
}

impl Default for ExecLimits {
    /// No time or size bound (a library user opts in); the default depth.
    fn default() -> Self {
        ExecLimits {
            timeout: None,
            max_bytes: u64::MAX,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// What one set's executions have used of their [`ExecLimits`]; shared by
/// the sets derived from it (`tpl` with `define`s).
#[derive(Debug, Default)]
struct Budget {
    limits: ExecLimits,
    deadline: Cell<Option<Instant>>,
    bytes: Cell<u64>,
    steps: Cell<u32>,
}

/// Steps (nodes walked, functions called) between two looks at the clock.
const STEPS_PER_CLOCK_CHECK: u32 = 1024;

impl Budget {
    fn new(limits: ExecLimits) -> Budget {
        Budget {
            limits,
            ..Budget::default()
        }
    }

    /// Starts the clock at the first execution.
    fn start(&self) {
        if self.deadline.get().is_none()
            && let Some(timeout) = self.limits.timeout
        {
            self.deadline.set(Instant::now().checked_add(timeout));
        }
    }

    /// Counts one step; every so often, whether time is up.
    fn step(&self) -> Result<(), String> {
        let steps = self.steps.get().wrapping_add(1);
        self.steps.set(steps);
        if steps.is_multiple_of(STEPS_PER_CLOCK_CHECK)
            && let Some(deadline) = self.deadline.get()
            && Instant::now() >= deadline
        {
            let secs = self.limits.timeout.unwrap_or_default().as_secs_f64();
            return Err(format!(
                "render limit: the templates ran longer than {secs}s (render limits: timeout)"
            ));
        }
        Ok(())
    }

    /// Counts `n` bytes of produced text.
    fn charge(&self, n: usize) -> Result<(), String> {
        let total = self.bytes.get().saturating_add(n as u64);
        self.bytes.set(total);
        if total > self.limits.max_bytes {
            return Err(format!(
                "render limit: the templates produced more than {} bytes of text (render limits: max_bytes)",
                self.limits.max_bytes
            ));
        }
        Ok(())
    }
}

/// One named template: a file's body or a `define`.
#[derive(Debug)]
pub struct TemplateDef {
    /// The name it is called by.
    pub name: String,
    /// The file it was parsed from (for error positions).
    pub file: String,
    pub source: Source,
    pub body: Rc<Vec<Node>>,
}

/// Named templates (files' bodies and their `define`s) and the functions
/// they call.
#[derive(Clone, Debug)]
pub struct TemplateSet {
    defs: HashMap<String, Rc<TemplateDef>>,
    funcs: Arc<FuncTable>,
    /// Texts parsed while templates run ([`Executor::execute_text`]), by
    /// (name, text): charts hand the same small texts to `tpl` again and
    /// again. Shared by the sets derived from this one.
    parsed_texts: Rc<RefCell<HashMap<(String, String), ParsedText>>>,
    budget: Rc<Budget>,
}

/// A text parsed at run time: its body and the templates it defines.
type ParsedText = (Rc<TemplateDef>, Vec<Rc<TemplateDef>>);

/// Texts parsed at run time kept for reuse; past this many the cache starts
/// over (a chart that makes endless distinct texts must not grow memory).
const MAX_PARSED_TEXTS: usize = 10_000;

impl TemplateSet {
    pub fn new(funcs: Arc<FuncTable>) -> TemplateSet {
        TemplateSet {
            defs: HashMap::new(),
            funcs,
            parsed_texts: Rc::default(),
            budget: Rc::default(),
        }
    }

    /// Bounds every execution of this set from now on, together: the clock
    /// starts at the first execution and the bytes add up across them.
    pub fn set_limits(&mut self, limits: ExecLimits) {
        let limits = ExecLimits {
            max_depth: limits.max_depth.min(MAX_DEPTH_ALLOWED),
            ..limits
        };
        self.budget = Rc::new(Budget::new(limits));
    }

    pub fn funcs(&self) -> &FuncTable {
        &self.funcs
    }

    /// Parses `src` as the template `name` (any thread: the parsed file does
    /// not depend on the set).
    pub fn parse(&self, name: &str, src: &str) -> Result<ParsedFile, ParseError> {
        parse(name, src, &self.funcs)
    }

    /// Parses `src` as the template `name` and adds it with its `define`s.
    pub fn add(&mut self, name: &str, src: impl Into<Source>) -> Result<(), ParseError> {
        let source = src.into();
        let parsed = self.parse(name, &source)?;
        self.add_parsed(name, source, parsed);
        Ok(())
    }

    /// Adds a file parsed by [`TemplateSet::parse`]. A later definition of a
    /// name replaces an earlier one, as in Go.
    pub fn add_parsed(&mut self, name: &str, source: Source, parsed: ParsedFile) {
        let (body, defines) = template_defs(name, source, parsed);
        self.insert_all(defines);
        self.defs.insert(name.to_string(), body);
    }

    fn insert_all(&mut self, defs: Vec<Rc<TemplateDef>>) {
        for def in defs {
            // As Go's associate: an empty definition never replaces one.
            if self.defs.contains_key(&def.name)
                && crate::parse::is_empty_tree(&def.body, &def.source)
            {
                continue;
            }
            self.defs.insert(def.name.clone(), def);
        }
    }

    pub fn get(&self, name: &str) -> Option<&Rc<TemplateDef>> {
        self.defs.get(name)
    }

    /// Runs the template `name` with `dot`, returning its output.
    pub fn execute(self: &Rc<Self>, name: &str, dot: Value) -> Result<String, ExecError> {
        Executor::run(Rc::clone(self), name, dot)
    }
}

/// The templates one parsed file gives: its body (named after the file) and
/// its `define`s, all located in that file.
fn template_defs(
    name: &str,
    source: Source,
    parsed: ParsedFile,
) -> (Rc<TemplateDef>, Vec<Rc<TemplateDef>>) {
    let defines = parsed
        .defines
        .into_iter()
        .map(|(define, body)| {
            Rc::new(TemplateDef {
                name: define,
                file: name.to_string(),
                source: source.clone(),
                body: Rc::new(body),
            })
        })
        .collect();
    let body = Rc::new(TemplateDef {
        name: name.to_string(),
        file: name.to_string(),
        source,
        body: Rc::new(parsed.body),
    });
    (body, defines)
}

/// Non-local control flow inside a template.
enum Ctl {
    Break,
    Continue,
    Err(Box<ExecError>),
}

impl From<ExecError> for Ctl {
    fn from(e: ExecError) -> Ctl {
        Ctl::Err(Box::new(e))
    }
}

/// A variable in scope.
struct Var {
    name: String,
    value: Value,
    /// Of Go's static type interface{}: bound by range to an element of a
    /// list or map. A nil there is Go's nil interface{}, not the invalid
    /// value a pipeline leaves (which a map or slice parameter takes as
    /// empty), and a field of it fails "in type interface {}".
    is_interface: bool,
}

impl Var {
    fn new(name: &str, value: Value) -> Var {
        Var {
            name: name.to_string(),
            value,
            is_interface: false,
        }
    }
}

/// Executes templates of one set.
pub struct Executor {
    pub templates: Rc<TemplateSet>,
    vars: Vec<Var>,
    current: Rc<TemplateDef>,
    depth: usize,
    /// Whether dot has Go's static type interface{} (a range's element of a
    /// list or map), rather than its value's own type (a template's data,
    /// `with`'s value), which Go names in a failed field's error. A nil dot
    /// is then Go's nil interface (its fields are an error); otherwise it
    /// is Go's invalid value (a template entered with nil data: its fields
    /// are silently empty).
    dot_is_interface: bool,
    /// Whether the last chain evaluated (`(pipeline).field`) stood on a nil,
    /// which makes its own result Go's invalid value.
    chain_on_nil: bool,
}

type Res<T> = Result<T, Ctl>;

impl Executor {
    /// Runs the template `name` with `dot`, returning its output.
    pub fn run(templates: Rc<TemplateSet>, name: &str, dot: Value) -> Result<String, ExecError> {
        let Some(def) = templates.get(name).cloned() else {
            return Err(ExecError {
                file: name.to_string(),
                line: 0,
                column: None,
                message: format!(
                    "template: no template {name:?} associated with template {name:?}"
                ),
                user_failure: false,
            });
        };
        templates.budget.start();
        let mut ex = Executor {
            templates,
            vars: Vec::new(),
            current: def.clone(),
            depth: 0,
            dot_is_interface: false,
            chain_on_nil: false,
        };
        ex.exec_template(&def, dot)
    }

    fn exec_template(&mut self, def: &Rc<TemplateDef>, dot: Value) -> Result<String, ExecError> {
        if let Some(cause) = self.depth_exceeded() {
            return Err(self.located(0, "", cause));
        }
        let saved_vars = std::mem::replace(&mut self.vars, vec![Var::new("$", dot.clone())]);
        let saved_current = std::mem::replace(&mut self.current, def.clone());
        // Go hands a template its data through reflect.ValueOf (or an
        // unwrapped pipeline result): a nil is the invalid value.
        let saved_dot_is_interface = std::mem::replace(&mut self.dot_is_interface, false);
        self.depth += 1;
        let mut out = String::new();
        // Each nesting takes a few KiB of stack: continue on a new segment
        // near the end of this one, whatever thread the host runs on.
        let result = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.walk_list(&mut out, &dot, &def.body.clone())
        });
        self.depth -= 1;
        self.vars = saved_vars;
        self.current = saved_current;
        self.dot_is_interface = saved_dot_is_interface;
        match result {
            Ok(()) => Ok(out),
            Err(Ctl::Err(e)) => Err(*e),
            // The parser rejects break/continue outside range.
            Err(_) => Ok(out),
        }
    }

    /// Go's words when one more template would go past the depth limit.
    fn depth_exceeded(&self) -> Option<String> {
        let max_depth = self.templates.budget.limits.max_depth;
        (self.depth >= max_depth).then(|| format!("exceeded maximum template depth ({max_depth})"))
    }

    /// Builds a located error the way Go formats it.
    fn located(&self, pos: usize, context: &str, cause: String) -> ExecError {
        let (line, col) = line_col(&self.current.source, pos);
        // Go's ErrorContext once cut the node's text at 20 bytes; the Go that
        // builds helm 3.22 prints it whole.
        let ctx = context;
        ExecError {
            file: self.current.file.clone(),
            line,
            column: Some(col),
            message: format!(
                "template: {}:{}:{}: executing {:?} at <{}>: {}",
                self.current.file, line, col, self.current.name, ctx, cause
            ),
            user_failure: false,
        }
    }

    fn walk_list(&mut self, out: &mut String, dot: &Value, nodes: &[Node]) -> Res<()> {
        for node in nodes {
            self.walk(out, dot, node)?;
        }
        Ok(())
    }

    /// Counts a step against the render's limits.
    fn step(&self, pos: usize) -> Res<()> {
        self.templates
            .budget
            .step()
            .map_err(|cause| self.located(pos, "", cause).into())
    }

    /// Counts `n` bytes of produced text against the render's limits.
    fn charge(&self, pos: usize, n: usize) -> Res<()> {
        self.templates
            .budget
            .charge(n)
            .map_err(|cause| self.located(pos, "", cause).into())
    }

    fn walk(&mut self, out: &mut String, dot: &Value, node: &Node) -> Res<()> {
        match node {
            // The node was parsed from this template's source (`current`).
            Node::Text(range) => {
                let text = self.current.source.get(range.clone()).unwrap_or("");
                self.step(range.start)?;
                self.charge(range.start, text.len())?;
                out.push_str(text);
            }
            Node::Action { pipe, pos } => {
                self.step(*pos)?;
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decls.is_empty() {
                    let before = out.len();
                    Self::print_value(out, &v);
                    self.charge(*pos, out.len() - before)?;
                }
            }
            Node::If(branch) | Node::With(branch) => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, &branch.pipe)?;
                let r = if v.is_true() {
                    // `with` moves dot to the value it tested (a pipeline's
                    // result, of its own type); `if` keeps it.
                    if matches!(node, Node::With(_)) {
                        let saved = std::mem::replace(&mut self.dot_is_interface, false);
                        let r = self.walk_list(out, &v, &branch.list);
                        self.dot_is_interface = saved;
                        r
                    } else {
                        self.walk_list(out, dot, &branch.list)
                    }
                } else if let Some(el) = &branch.else_list {
                    self.walk_list(out, dot, el)
                } else {
                    Ok(())
                };
                self.vars.truncate(mark);
                r?;
            }
            Node::Range(branch) => {
                let Branch {
                    pos,
                    pipe,
                    list,
                    else_list,
                } = &**branch;
                self.walk_range(out, dot, *pos, pipe, list, else_list.as_deref())?
            }
            Node::Template(call) => {
                let TemplateCall { pos, name, pipe } = &**call;
                // Go looks the template up and counts the depth before it
                // evaluates the argument, and reports both at the action.
                let fail = |this: &Self, cause: String| -> Res<()> {
                    let context = match pipe {
                        Some(p) => format!("{{{{template {} {}}}}}", quote(name), pipe_string(p)),
                        None => format!("{{{{template {}}}}}", quote(name)),
                    };
                    Err(this.located(*pos, &context, cause).into())
                };
                let Some(def) = self.templates.get(name).cloned() else {
                    return fail(self, format!("template {} not defined", quote(name)));
                };
                if let Some(cause) = self.depth_exceeded() {
                    return fail(self, cause);
                }
                let arg = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                let s = self.exec_template(&def, arg)?;
                out.push_str(&s);
            }
            Node::Break { .. } => return Err(Ctl::Break),
            Node::Continue { .. } => return Err(Ctl::Continue),
        }
        Ok(())
    }

    fn walk_range(
        &mut self,
        out: &mut String,
        dot: &Value,
        pos: usize,
        pipe: &Pipe,
        list: &[Node],
        else_list: Option<&[Node]>,
    ) -> Res<()> {
        let mark = self.vars.len();
        // Go declares (or assigns) the range's variables with the pipeline's
        // value, which the `else` branch sees; each iteration then sets them.
        let value = self.eval_pipeline(dot, pipe)?;
        let body_mark = self.vars.len();
        // Go reports what it cannot range over where its executor stands
        // after the pipeline: the last node its last command evaluated.
        let fail = |this: &Self, cause: String| -> Res<()> {
            let (at, context) = match pipe.cmds.last() {
                Some(cmd) => command_last_touched(cmd),
                None => (pos, pipe_string(pipe)),
            };
            Err(this.located(at, &context, cause).into())
        };
        // A list's or map's elements have Go's static type interface{}.
        let elements_are_interfaces = match &value {
            Value::List(l) => l.elem_type().is_none(),
            Value::Map(_) => true,
            _ => false,
        };
        // A host value of a map or slice type ranges as its entries.
        let value = match &value {
            Value::Object(o) => o.entries().unwrap_or(value),
            _ => value,
        };
        let items: Vec<(Value, Value)> = match &value {
            Value::Nil => vec![],
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Map(m) => m
                .borrow()
                .iter()
                .map(|(k, v)| (Value::str(k.clone()), v.clone()))
                .collect(),
            Value::Bytes(b) => b
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), Value::Int(*v as i64)))
                .collect(),
            Value::Int(n) | Value::Int64(n) => {
                if pipe.decls.len() > 1 {
                    return fail(
                        self,
                        format!("can't use {n} to iterate over more than one variable"),
                    );
                }
                // Go would loop for ages; refuse instead of allocating without bound.
                if *n > 10_000_000 {
                    return fail(
                        self,
                        format!("range over {n} iterations is more than berth allows"),
                    );
                }
                (0..*n.max(&0))
                    .map(|i| (Value::Int(i), Value::Int(i)))
                    .collect()
            }
            other => {
                return fail(
                    self,
                    format!("range can't iterate over {}", other.to_go_string()),
                );
            }
        };
        if items.is_empty() {
            let r = match else_list {
                Some(el) => self.walk_list(out, dot, el),
                None => Ok(()),
            };
            self.vars.truncate(mark);
            return r;
        }
        for (key, elem) in items {
            self.step(pos)?;
            // One variable is the element; two are the index, then the element.
            match &pipe.decls[..] {
                [] => {}
                [e] => self.set_var(e, elem.clone(), elements_are_interfaces),
                [k, e, ..] => {
                    self.set_var(k, key, false);
                    self.set_var(e, elem.clone(), elements_are_interfaces);
                }
            }
            let saved_dot_is_interface =
                std::mem::replace(&mut self.dot_is_interface, elements_are_interfaces);
            let r = self.walk_list(out, &elem, list);
            self.dot_is_interface = saved_dot_is_interface;
            self.vars.truncate(body_mark);
            match r {
                Ok(()) | Err(Ctl::Continue) => {}
                Err(Ctl::Break) => break,
                Err(e) => return Err(e),
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn print_value(out: &mut String, v: &Value) {
        match v {
            // Go prints a missing value so; hosts may replace it (Helm does).
            Value::Nil => out.push_str("<no value>"),
            other => out.push_str(&other.to_go_string()),
        }
    }

    /// The innermost variable called `name`.
    fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().rev().find(|var| var.name == name)
    }

    fn lookup_var(&self, name: &str) -> Option<Value> {
        self.var(name).map(|var| var.value.clone())
    }

    /// Sets the innermost variable called `name`.
    fn set_var(&mut self, name: &str, value: Value, is_interface: bool) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|var| var.name == name) {
            slot.value = value;
            slot.is_interface = is_interface;
        }
    }

    /// Evaluates `pipe` and binds its variables as Go does: declared ones
    /// pushed, assigned ones set.
    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Res<Value> {
        let v = self.eval_pipeline_raw(dot, pipe)?;
        if pipe.is_assign {
            for name in &pipe.decls {
                self.set_var(name, v.clone(), false);
            }
        } else {
            for name in &pipe.decls {
                self.vars.push(Var::new(name, v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_pipeline_raw(&mut self, dot: &Value, pipe: &Pipe) -> Res<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        Ok(value.unwrap_or(Value::Nil))
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, last: Option<Value>) -> Res<Value> {
        let Some(first) = cmd.args.first() else {
            return Ok(Value::Nil);
        };
        match first {
            Arg::Func(func) => self.eval_function(dot, cmd, func, last),
            Arg::Field(..) if self.dot_is_invalid(dot) => Ok(Value::Nil),
            Arg::Field(fields, pos) => {
                let args = self.eval_args(dot, cmd, last)?;
                self.eval_field_chain(dot.clone(), fields, args, FieldSite::Node(*pos, first))
            }
            Arg::Variable(parts, pos) => {
                let base = self.variable(&parts[0], *pos)?;
                if base.is_nil() && parts.len() > 1 {
                    // Go stores pipeline results unwrapped: a nil variable is an invalid
                    // value, and fields of an invalid value are silently empty.
                    return Ok(Value::Nil);
                }
                if parts.len() == 1 {
                    if cmd.args.len() > 1 || last.is_some() {
                        return Err(self
                            .located(
                                cmd.pos,
                                &cmd_string(cmd),
                                format!("can't give argument to non-function {}", parts[0]),
                            )
                            .into());
                    }
                    return Ok(base);
                }
                let args = self.eval_args(dot, cmd, last)?;
                self.eval_field_chain(base, &parts[1..], args, FieldSite::Node(*pos, first))
            }
            Arg::Chain(inner, fields, pos) => {
                let base = self.eval_arg(dot, inner, *pos)?;
                if base.is_nil() {
                    return Ok(Value::Nil);
                }
                let args = self.eval_args(dot, cmd, last)?;
                self.eval_field_chain(base, fields, args, FieldSite::Chain(*pos, inner))
            }
            other => {
                if cmd.args.len() > 1 || last.is_some() {
                    return Err(self
                        .located(
                            cmd.pos,
                            &cmd_string(cmd),
                            format!("can't give argument to non-function {}", arg_string(other)),
                        )
                        .into());
                }
                if matches!(other, Arg::Nil) {
                    return Err(self
                        .located(cmd.pos, "nil", "nil is not a command".into())
                        .into());
                }
                self.eval_arg(dot, other, cmd.pos)
            }
        }
    }

    /// The arguments of `cmd` after its first word, then the piped `last`.
    fn eval_args(&mut self, dot: &Value, cmd: &Command, last: Option<Value>) -> Res<Vec<Value>> {
        let mut out = Vec::with_capacity(cmd.args.len());
        for (i, a) in cmd.args.iter().enumerate().skip(1) {
            out.push(self.eval_arg(dot, a, cmd.arg_position(i))?);
        }
        if let Some(l) = last {
            out.push(l);
        }
        Ok(out)
    }

    /// The arguments `func` is called with: [`Self::eval_call_args`], each
    /// [`Value::BinaryString`] read as UTF-8 unless `func` reads bytes.
    fn call_args(
        &mut self,
        dot: &Value,
        cmd: &Command,
        func: &Func,
        last: Option<Value>,
    ) -> Res<Vec<Value>> {
        let mut args = self.eval_call_args(dot, cmd, func, last)?;
        if !func.reads_bytes {
            for arg in &mut args {
                if matches!(arg, Value::BinaryString(_)) {
                    *arg = std::mem::take(arg).utf8_view();
                }
            }
        }
        Ok(args)
    }

    /// The arguments of a call of `func` (`cmd` without its first word, then
    /// the piped `last`), each checked against its Go parameter when the
    /// function declares them, in Go's order and words: a constant as
    /// `evalArg` converts it ("expected integer; found 1.5"), any other
    /// argument as `validateType` checks it ("wrong type for value; expected
    /// string; got int"), reported where Go's executor stands.
    fn eval_call_args(
        &mut self,
        dot: &Value,
        cmd: &Command,
        func: &Func,
        last: Option<Value>,
    ) -> Res<Vec<Value>> {
        let nodes = &cmd.args[1..];
        let Some(params) = func.params else {
            return self.eval_args(dot, cmd, last);
        };
        let mut out = Vec::with_capacity(nodes.len() + 1);
        for (i, node) in nodes.iter().enumerate() {
            let param = params.at(i).unwrap_or(Param::Any);
            let pos = cmd.arg_position(i + 1);
            if let Some(literal) = literal(node) {
                let text = arg_string(node);
                if let Some(cause) = param.refuses_literal(literal, &text) {
                    return Err(self.located(pos, &text, cause).into());
                }
                let value = match typed_number(node, param) {
                    Some(value) => value,
                    None => self.eval_arg(dot, node, pos)?,
                };
                out.push(value);
                continue;
            }
            let value = self.eval_arg(dot, node, pos)?;
            let nil_is_interface = value.is_nil() && self.nil_is_interface(dot, node);
            if let Some(cause) = param.refuses(&value, nil_is_interface) {
                let (at, context) = last_touched(node, pos);
                return Err(self.located(at, &context, cause).into());
            }
            out.push(value);
        }
        if let Some(last) = last {
            // A piped value is a pipeline's result: a nil there is invalid.
            if let Some(cause) = params.at(nodes.len()).and_then(|p| p.refuses(&last, false)) {
                // Go checks the piped value where its executor last stood.
                let (at, context) = match nodes.last() {
                    Some(node) => last_touched(node, cmd.arg_position(nodes.len())),
                    None => (cmd.arg_position(0), func.name.to_string()),
                };
                return Err(self.located(at, &context, cause).into());
            }
            out.push(last);
        }
        Ok(out)
    }

    /// Whether the receiver of `site`'s first field has Go's static type
    /// interface{}: dot or a variable that range bound to an element of a
    /// list or map, or a chain on anything but a parenthesized pipeline
    /// (whose result Go unwraps).
    fn receiver_is_interface(&self, site: FieldSite<'_>) -> bool {
        match site {
            FieldSite::Node(_, Arg::Variable(parts, _)) => {
                self.var(&parts[0]).is_some_and(|var| var.is_interface)
            }
            FieldSite::Node(..) => self.dot_is_interface,
            FieldSite::Chain(..) => !site.is_on_pipeline(),
        }
    }

    /// Whether `dot` is Go's invalid value (fields of it are empty).
    fn dot_is_invalid(&self, dot: &Value) -> bool {
        dot.is_nil() && !self.dot_is_interface
    }

    /// Whether a nil that argument `node` evaluated to is Go's nil
    /// `interface{}` rather than its invalid value: a field's missing key
    /// (not a field of an invalid value, which stays invalid), a range's
    /// nil element as dot or variable. Pipelines, function results and
    /// variables they set are invalid.
    fn nil_is_interface(&self, dot: &Value, node: &Arg) -> bool {
        match node {
            Arg::Dot => self.dot_is_interface,
            Arg::Field(..) => !self.dot_is_invalid(dot),
            Arg::Variable(parts, _) => match self.var(&parts[0]) {
                Some(var) if parts.len() == 1 => var.is_interface,
                Some(var) => !var.value.is_nil(),
                None => false,
            },
            // A chain on a nil is silently nil (invalid); on a value, a
            // missing key.
            Arg::Chain(..) => !self.chain_on_nil,
            _ => false,
        }
    }

    fn variable(&self, name: &str, pos: usize) -> Res<Value> {
        self.lookup_var(name).ok_or_else(|| {
            self.located(pos, name, format!("undefined variable: {name}"))
                .into()
        })
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg, pos: usize) -> Res<Value> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Str(s, _) => Value::str(s.clone()),
            Arg::Number(n) => match (n.is_float_syntax, n.int, n.float) {
                (false, Some(i), _) => Value::Int(i),
                // An integer literal past int64 (Go reads it as a uint64).
                (false, None, Some(_)) => {
                    return Err(self
                        .located(pos, &n.text, format!("{} overflows int", n.text))
                        .into());
                }
                (_, _, Some(f)) => Value::Float(f),
                (_, Some(i), None) => Value::Int(i),
                _ => Value::Nil,
            },
            // Fields of an invalid value are silently empty.
            Arg::Field(..) if self.dot_is_invalid(dot) => Value::Nil,
            Arg::Field(fields, fpos) => {
                self.eval_field_chain(dot.clone(), fields, vec![], FieldSite::Node(*fpos, arg))?
            }
            Arg::Variable(parts, vpos) => {
                let base = self.variable(&parts[0], *vpos)?;
                if base.is_nil() {
                    return Ok(Value::Nil);
                }
                self.eval_field_chain(base, &parts[1..], vec![], FieldSite::Node(*vpos, arg))?
            }
            Arg::Pipe(p) => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, p)?;
                self.vars.truncate(mark);
                v
            }
            Arg::Chain(inner, fields, cpos) => {
                let base = self.eval_arg(dot, inner, *cpos)?;
                self.chain_on_nil = base.is_nil();
                if base.is_nil() {
                    return Ok(Value::Nil);
                }
                self.eval_field_chain(base, fields, vec![], FieldSite::Chain(*cpos, inner))?
            }
            Arg::Func(func) => {
                // A function used as an argument is called without arguments.
                let cmd = Command {
                    pos,
                    args: vec![arg.clone()],
                    arg_positions: vec![pos],
                };
                self.eval_function(dot, &cmd, func, None)?
            }
        })
    }

    /// Evaluates `.a.b.c` starting at `receiver`; `args` go to the last element
    /// (a method call).
    fn eval_field_chain(
        &mut self,
        mut receiver: Value,
        fields: &[String],
        args: Vec<Value>,
        site: FieldSite<'_>,
    ) -> Res<Value> {
        let n = fields.len();
        let mut args = Some(args);
        for (i, f) in fields.iter().enumerate() {
            let call_args = if i + 1 == n {
                args.take().unwrap_or_default()
            } else {
                vec![]
            };
            // Go's pipeline unwraps its interface {} result, so the first
            // field of `(pipeline).x` sees the value's own type.
            let unwrapped = i == 0 && !self.receiver_is_interface(site);
            receiver = self.eval_field(receiver, f, call_args, site, unwrapped)?;
        }
        if n == 0
            && let Some(a) = args
            && !a.is_empty()
        {
            let (pos, context) = site.at();
            return Err(self
                .located(
                    pos,
                    &context,
                    format!("can't give argument to non-function {context}"),
                )
                .into());
        }
        Ok(receiver)
    }

    /// Field `name` of `receiver`; `unwrapped` when Go names the receiver
    /// by its own type rather than the `interface {}` of the map it came
    /// out of.
    fn eval_field(
        &mut self,
        receiver: Value,
        name: &str,
        args: Vec<Value>,
        site: FieldSite<'_>,
        unwrapped: bool,
    ) -> Res<Value> {
        // The error's place is only spelled out for an error: fields are
        // evaluated all the time.
        let fail = |this: &Self, message: String| -> Res<Value> {
            let (pos, context) = site.at();
            Err(this.located(pos, &context, message).into())
        };
        match &receiver {
            Value::Map(m) => {
                if !args.is_empty() {
                    return fail(self, format!("{name} is not a method but has arguments"));
                }
                Ok(m.borrow().get(name).cloned().unwrap_or(Value::Nil))
            }
            Value::Object(o) => match o.member(name, &args) {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => fail(self, format!("error calling {name}: {}", e.message)),
                None => fail(
                    self,
                    format!(
                        "can't evaluate field {name} in type {}",
                        receiver.type_name()
                    ),
                ),
            },
            Value::Nil => fail(
                self,
                format!("nil pointer evaluating interface {{}}.{name}"),
            ),
            _ => {
                // Values come out of interface{} maps, so Go names the static
                // type, unless a pipeline unwrapped the value.
                let type_name = if unwrapped {
                    receiver.type_name()
                } else {
                    "interface {}".to_string()
                };
                fail(
                    self,
                    format!("can't evaluate field {name} in type {type_name}"),
                )
            }
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        cmd: &Command,
        func: &Func,
        last: Option<Value>,
    ) -> Res<Value> {
        let arg_nodes = &cmd.args[1..];
        self.step(cmd.pos)?;
        if let Some(message) = func.arity_error(arg_nodes.len(), last.is_some()) {
            // Go counts the arguments standing at the function's name.
            return Err(self.located(cmd.arg_position(0), func.name, message).into());
        }
        let result = match func.body {
            Body::ShortCircuit { stop_at } => {
                let mut v = Value::Nil;
                for (i, a) in arg_nodes.iter().enumerate() {
                    v = self.eval_arg(dot, a, cmd.arg_position(i + 1))?;
                    if v.is_true() == stop_at {
                        return Ok(v);
                    }
                }
                return Ok(last.unwrap_or(v));
            }
            Body::Plain(call) => call(&self.call_args(dot, cmd, func, last)?),
            Body::Executing(call) => {
                let args = self.call_args(dot, cmd, func, last)?;
                call(self, &args)
            }
        };
        if let Ok(v) = &result {
            self.charge(cmd.pos, v.produced_size())?;
        }
        result.map_err(|e| {
            let name = func.name;
            let mut err = self.located(
                cmd.pos,
                &cmd_string(cmd),
                format!("error calling {name}: {}", e.message),
            );
            if let Some(n) = e.nested {
                err.message = self
                    .located(
                        cmd.pos,
                        &cmd_string(cmd),
                        format!("error calling {name}: {}", n.message),
                    )
                    .to_string();
                err.user_failure = n.user_failure;
            } else {
                err.user_failure = e.user_failure;
            }
            Ctl::Err(Box::new(err))
        })
    }
}

/// `arg` as a constant of [`Param::refuses_literal`], or `None`.
fn literal(arg: &Arg) -> Option<Literal> {
    Some(match arg {
        Arg::Str(..) => Literal::Str,
        Arg::Bool(_) => Literal::Bool,
        Arg::Nil => Literal::Nil,
        Arg::Number(n) => Literal::Number {
            int: n.int.is_some(),
            float: n.float.is_some(),
        },
        _ => return None,
    })
}

/// A number constant passed to an `int` or `float64` parameter, converted
/// as Go converts it (`1e3` to an int, `2` to a float64); `None` for any
/// other argument or parameter.
fn typed_number(arg: &Arg, param: Param) -> Option<Value> {
    let Arg::Number(n) = arg else {
        return None;
    };
    match param {
        Param::Int => n.int.map(Value::Int),
        Param::Float => n.float.map(Value::Float),
        _ => None,
    }
}

/// Where a field chain's errors are reported, as Go's executor reports
/// them.
#[derive(Clone, Copy)]
enum FieldSite<'a> {
    /// A field, variable or dot node: at the node (its position, the node).
    Node(usize, &'a Arg),
    /// A chain on a parenthesized pipeline or a function (`(list 1 2).x`):
    /// at the last node that evaluated (the chain's position, what it is
    /// on), where Go's executor still stands when the field fails.
    Chain(usize, &'a Arg),
}

impl FieldSite<'_> {
    fn at(self) -> (usize, String) {
        match self {
            FieldSite::Node(pos, node) => (pos, arg_string(node)),
            FieldSite::Chain(pos, inner) => last_touched(inner, pos),
        }
    }

    fn is_on_pipeline(self) -> bool {
        matches!(self, FieldSite::Chain(_, Arg::Pipe(_)))
    }
}

/// Where Go's executor stands once it has evaluated `arg` (its `s.node`),
/// and that node's text: the argument itself, but for a parenthesized
/// pipeline (and a chain on one) the last node its last command evaluated.
/// Go reports an argument of the wrong type there. `pos` is where `arg`
/// starts.
fn last_touched(arg: &Arg, pos: usize) -> (usize, String) {
    match arg {
        Arg::Pipe(pipe) => match pipe.cmds.last() {
            Some(cmd) => command_last_touched(cmd),
            None => (pos, arg_string(arg)),
        },
        Arg::Chain(inner, _, _) => last_touched(inner, pos),
        Arg::Field(_, at) | Arg::Variable(_, at) => (*at, arg_string(arg)),
        _ => (pos, arg_string(arg)),
    }
}

/// [`last_touched`] of a command: its last argument when its first word
/// calls something with arguments, else the first word.
fn command_last_touched(cmd: &Command) -> (usize, String) {
    let calls = matches!(
        cmd.args.first(),
        Some(Arg::Func(_) | Arg::Field(..) | Arg::Variable(..) | Arg::Chain(..))
    );
    match cmd.args.len() {
        0 => (cmd.pos, String::new()),
        n if calls && n > 1 => last_touched(&cmd.args[n - 1], cmd.arg_position(n - 1)),
        _ => last_touched(&cmd.args[0], cmd.arg_position(0)),
    }
}

impl Runner for Executor {
    fn execute_template(&mut self, name: &str, dot: Value) -> Option<Result<String, ExecError>> {
        let def = self.templates.get(name).cloned()?;
        Some(self.exec_template(&def, dot))
    }

    fn execute_text(&mut self, name: &str, text: &str, dot: Value) -> Result<String, TextError> {
        let key = (name.to_string(), text.to_string());
        let cached = self.templates.parsed_texts.borrow().get(&key).cloned();
        let (def, defines) = match cached {
            Some(hit) => hit,
            None => {
                let parsed = self.templates.parse(name, text)?;
                let parsed = template_defs(name, Source::from(text), parsed);
                let mut texts = self.templates.parsed_texts.borrow_mut();
                if texts.len() >= MAX_PARSED_TEXTS {
                    texts.clear();
                }
                texts.insert(key, parsed.clone());
                parsed
            }
        };
        if defines.is_empty() {
            return Ok(self.exec_template(&def, dot)?);
        }
        let mut extended = (*self.templates).clone();
        extended.insert_all(defines);
        let saved = std::mem::replace(&mut self.templates, Rc::new(extended));
        let result = self.exec_template(&def, dot);
        self.templates = saved;
        Ok(result?)
    }
}
