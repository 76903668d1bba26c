//! Executes parsed templates with Go text/template semantics (Helm's
//! `missingkey=zero` option: a missing map key yields nil).

use std::collections::HashMap;
use std::rc::Rc;

use thiserror::Error;

use super::parse::{Arg, Branch, Command, Node, Pipe, Source, TemplateCall, line_col};
use crate::render::funcs;
use crate::render::value::Value;

/// Deepest nesting of `template`/`include`/`tpl` calls before giving up
/// (guards against runaway recursion in a chart).
const MAX_TEMPLATE_DEPTH: usize = 200;

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

pub type TemplateSet = HashMap<String, Rc<TemplateDef>>;

/// An execution failure with Go's message and its location.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct ExecError {
    /// The file of the innermost node being executed.
    pub file: String,
    pub line: usize,
    pub column: Option<usize>,
    /// The complete Go-style message.
    pub message: String,
    /// True when raised by `fail`/`required` (Helm reports these specially).
    pub user_failure: bool,
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

/// A function's error before it is located (Go: "error calling X: ...").
#[derive(Debug, Clone)]
pub struct FuncError {
    pub message: String,
    /// Already a complete located error (from a nested include/tpl).
    pub nested: Option<Box<ExecError>>,
    pub user_failure: bool,
}

impl FuncError {
    pub fn new(message: impl Into<String>) -> FuncError {
        FuncError {
            message: message.into(),
            nested: None,
            user_failure: false,
        }
    }
}

impl From<String> for FuncError {
    fn from(message: String) -> FuncError {
        FuncError::new(message)
    }
}

impl From<&str> for FuncError {
    fn from(message: &str) -> FuncError {
        FuncError::new(message)
    }
}

/// Executes templates of one set.
pub struct Executor {
    pub templates: Rc<TemplateSet>,
    vars: Vec<(String, Value)>,
    current: Rc<TemplateDef>,
    depth: usize,
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
        let mut ex = Executor {
            templates,
            vars: Vec::new(),
            current: def.clone(),
            depth: 0,
        };
        ex.exec_template(&def, dot)
    }

    fn exec_template(&mut self, def: &Rc<TemplateDef>, dot: Value) -> Result<String, ExecError> {
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.located(
                0,
                "",
                format!("exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"),
            ));
        }
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), dot.clone())]);
        let saved_current = std::mem::replace(&mut self.current, def.clone());
        self.depth += 1;
        let mut out = String::new();
        let result = self.walk_list(&mut out, &dot, &def.body.clone());
        self.depth -= 1;
        self.vars = saved_vars;
        self.current = saved_current;
        match result {
            Ok(()) => Ok(out),
            Err(Ctl::Err(e)) => Err(*e),
            // The parser rejects break/continue outside range.
            Err(_) => Ok(out),
        }
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

    fn walk(&mut self, out: &mut String, dot: &Value, node: &Node) -> Res<()> {
        match node {
            // The node was parsed from this template's source (`current`).
            Node::Text(range) => out.push_str(self.current.source.get(range.clone()).unwrap_or("")),
            Node::Action { pos, pipe } => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decls.is_empty() {
                    self.print_value(out, &v, *pos, pipe)?;
                }
            }
            Node::If(branch) | Node::With(branch) => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, &branch.pipe)?;
                let r = if v.is_true() {
                    // `with` moves dot to the value it tested; `if` keeps it.
                    let inner = if matches!(node, Node::With(_)) {
                        &v
                    } else {
                        dot
                    };
                    self.walk_list(out, inner, &branch.list)
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
                let arg = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                let Some(def) = self.templates.get(name).cloned() else {
                    return Err(self
                        .located(
                            *pos,
                            &format!("{{{{template {name:?}}}}}"),
                            format!(
                                "template: no template {name:?} associated with template {:?}",
                                self.current.name
                            ),
                        )
                        .into());
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
        // Evaluate without declaring: range declarations bind per iteration.
        let value = self.eval_pipeline_raw(dot, pipe)?;
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
                    return Err(self
                        .located(
                            pos,
                            &pipe_string(pipe),
                            "can't use range over int with two variables".into(),
                        )
                        .into());
                }
                // Go would loop for ages; refuse instead of allocating without bound.
                if *n > 10_000_000 {
                    return Err(self
                        .located(
                            pos,
                            &pipe_string(pipe),
                            format!("range over {n} iterations is more than berth allows"),
                        )
                        .into());
                }
                (0..*n.max(&0))
                    .map(|i| (Value::Int(i), Value::Int(i)))
                    .collect()
            }
            Value::Object(o) => match &**o {
                // .Files is a map[string][]byte: keys in order, contents as bytes.
                crate::render::value::Object::Files(files) => files
                    .iter()
                    .map(|(k, v)| (Value::str(k.clone()), Value::Bytes(Rc::new(v.clone()))))
                    .collect(),
                crate::render::value::Object::VersionSet(vs) => vs
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Value::Int(i as i64), Value::str(v.clone())))
                    .collect(),
                _ => {
                    return Err(self
                        .located(
                            pos,
                            &pipe_string(pipe),
                            format!("range can't iterate over {}", value.to_go_string()),
                        )
                        .into());
                }
            },
            other => {
                return Err(self
                    .located(
                        pos,
                        &pipe_string(pipe),
                        format!("range can't iterate over {}", other.to_go_string()),
                    )
                    .into());
            }
        };
        if items.is_empty() {
            self.vars.truncate(mark);
            if let Some(el) = else_list {
                self.walk_list(out, dot, el)?;
            }
            return Ok(());
        }
        for (key, elem) in items {
            match pipe.decls.len() {
                0 => {}
                1 => self.vars.push((pipe.decls[0].clone(), elem.clone())),
                _ => {
                    self.vars.push((pipe.decls[0].clone(), key));
                    self.vars.push((pipe.decls[1].clone(), elem.clone()));
                }
            }
            let r = self.walk_list(out, &elem, list);
            self.vars.truncate(mark);
            match r {
                Ok(()) | Err(Ctl::Continue) => {}
                Err(Ctl::Break) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn print_value(&self, out: &mut String, v: &Value, pos: usize, pipe: &Pipe) -> Res<()> {
        match v {
            Value::Nil => out.push_str("<no value>"),
            Value::Object(o) if matches!(&**o, crate::render::value::Object::Files(_)) => {
                let _ = (pos, pipe);
                out.push_str(&v.to_go_string());
            }
            other => out.push_str(&other.to_go_string()),
        }
        Ok(())
    }

    fn lookup_var(&self, name: &str) -> Option<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Res<Value> {
        let v = self.eval_pipeline_raw(dot, pipe)?;
        if pipe.is_assign {
            for name in &pipe.decls {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            }
        } else {
            for name in &pipe.decls {
                self.vars.push((name.clone(), v.clone()));
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
            Arg::Ident(name) => self.eval_function(dot, cmd, name, last),
            Arg::Field(fields, pos) => {
                let args = self.eval_args(dot, &cmd.args[1..], last)?;
                self.eval_field_chain(dot.clone(), fields, args, *pos, first)
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
                let args = self.eval_args(dot, &cmd.args[1..], last)?;
                self.eval_field_chain(base, &parts[1..], args, *pos, first)
            }
            Arg::Chain(inner, fields, pos) => {
                let base = self.eval_arg(dot, inner, *pos)?;
                if base.is_nil() {
                    return Ok(Value::Nil);
                }
                let args = self.eval_args(dot, &cmd.args[1..], last)?;
                self.eval_field_chain(base, fields, args, *pos, inner)
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

    fn eval_args(&mut self, dot: &Value, args: &[Arg], last: Option<Value>) -> Res<Vec<Value>> {
        let mut out = Vec::with_capacity(args.len() + 1);
        for a in args {
            out.push(self.eval_arg(dot, a, arg_pos(a))?);
        }
        if let Some(l) = last {
            out.push(l);
        }
        Ok(out)
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
            Arg::Str(s) => Value::str(s.clone()),
            Arg::Number(n) => match (n.is_float_syntax, n.int, n.float) {
                (false, Some(i), _) => Value::Int(i),
                (_, _, Some(f)) => Value::Float(f),
                (_, Some(i), None) => Value::Int(i),
                _ => Value::Nil,
            },
            Arg::Field(fields, fpos) => {
                self.eval_field_chain(dot.clone(), fields, vec![], *fpos, arg)?
            }
            Arg::Variable(parts, vpos) => {
                let base = self.variable(&parts[0], *vpos)?;
                if base.is_nil() {
                    return Ok(Value::Nil);
                }
                self.eval_field_chain(base, &parts[1..], vec![], *vpos, arg)?
            }
            Arg::Pipe(p) => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, p)?;
                self.vars.truncate(mark);
                v
            }
            Arg::Chain(inner, fields, cpos) => {
                let base = self.eval_arg(dot, inner, *cpos)?;
                if base.is_nil() {
                    return Ok(Value::Nil);
                }
                self.eval_field_chain(base, fields, vec![], *cpos, inner)?
            }
            Arg::Ident(name) => {
                // A function used as an argument is called without arguments.
                let cmd = Command {
                    pos,
                    args: vec![arg.clone()],
                };
                self.eval_function(dot, &cmd, name, None)?
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
        pos: usize,
        context: &Arg,
    ) -> Res<Value> {
        let n = fields.len();
        let mut args = Some(args);
        for (i, f) in fields.iter().enumerate() {
            let call_args = if i + 1 == n {
                args.take().unwrap_or_default()
            } else {
                vec![]
            };
            receiver = self.eval_field(receiver, f, call_args, pos, context)?;
        }
        if n == 0
            && let Some(a) = args
            && !a.is_empty()
        {
            let context = arg_string(context);
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

    fn eval_field(
        &mut self,
        receiver: Value,
        name: &str,
        args: Vec<Value>,
        pos: usize,
        context: &Arg,
    ) -> Res<Value> {
        // The error context is only spelled out for an error: fields are
        // evaluated all the time.
        let context = || arg_string(context);
        match &receiver {
            Value::Map(m) => {
                if !args.is_empty() {
                    return Err(self
                        .located(
                            pos,
                            &context(),
                            format!("{name} is not a method but has arguments"),
                        )
                        .into());
                }
                Ok(m.borrow().get(name).cloned().unwrap_or(Value::Nil))
            }
            Value::Object(o) => match funcs::object_member(o, name, &args) {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(self
                    .located(
                        pos,
                        &context(),
                        format!("error calling {name}: {}", e.message),
                    )
                    .into()),
                None => Err(self
                    .located(
                        pos,
                        &context(),
                        format!(
                            "can't evaluate field {name} in type {}",
                            receiver.type_name()
                        ),
                    )
                    .into()),
            },
            Value::Nil => Err(self
                .located(
                    pos,
                    &context(),
                    format!("nil pointer evaluating interface {{}}.{name}"),
                )
                .into()),
            // Values come out of interface{} maps, so Go names the static type.
            _ => Err(self
                .located(
                    pos,
                    &context(),
                    format!("can't evaluate field {name} in type interface {{}}"),
                )
                .into()),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        cmd: &Command,
        name: &str,
        last: Option<Value>,
    ) -> Res<Value> {
        let arg_nodes = &cmd.args[1..];
        // and/or short-circuit: later arguments are not evaluated.
        if name == "and" || name == "or" {
            let total = arg_nodes.len() + usize::from(last.is_some());
            if total == 0 {
                return Err(self
                    .located(
                        cmd.pos,
                        &cmd_string(cmd),
                        format!("wrong number of args for {name}: want at least 1 got 0"),
                    )
                    .into());
            }
            let mut v = Value::Nil;
            for a in arg_nodes {
                v = self.eval_arg(dot, a, cmd.pos)?;
                if (name == "and") != v.is_true() {
                    return Ok(v);
                }
            }
            if let Some(l) = last {
                v = l;
            }
            return Ok(v);
        }
        let args = self.eval_args(dot, arg_nodes, last)?;
        let result = match name {
            "include" => self.call_include(&args),
            "tpl" => self.call_tpl(&args),
            _ => funcs::call(name, args),
        };
        result.map_err(|e| {
            let mut err = self.located(
                cmd.pos,
                &cmd_string(cmd),
                format!("error calling {name}: {}", e.message),
            );
            if let Some(n) = e.nested {
                err.message = format!(
                    "{}",
                    self.located(
                        cmd.pos,
                        &cmd_string(cmd),
                        format!("error calling {name}: {}", n.message)
                    )
                );
                err.user_failure = n.user_failure;
            } else {
                err.user_failure = e.user_failure;
            }
            Ctl::Err(Box::new(err))
        })
    }

    fn call_include(&mut self, args: &[Value]) -> Result<Value, FuncError> {
        let (name, data) = match args {
            [Value::String(n), d] => (n.clone(), d.clone()),
            [n, _] => {
                return Err(FuncError::new(format!(
                    "wrong type for value; expected string; got {}",
                    n.type_name()
                )));
            }
            _ => {
                return Err(FuncError::new(format!(
                    "wrong number of args for include: want 2 got {}",
                    args.len()
                )));
            }
        };
        let Some(def) = self.templates.get(&name).cloned() else {
            return Err(FuncError::new(format!(
                "template: no template {name:?} associated with template \"gotpl\""
            )));
        };
        match self.exec_template(&def, data) {
            Ok(s) => Ok(Value::String(s)),
            Err(e) => Err(FuncError {
                message: e.message.clone(),
                user_failure: e.user_failure,
                nested: Some(Box::new(e)),
            }),
        }
    }

    fn call_tpl(&mut self, args: &[Value]) -> Result<Value, FuncError> {
        let (text, data) = match args {
            [Value::String(t), d] => (t.clone(), d.clone()),
            [t, _] => {
                return Err(FuncError::new(format!(
                    "wrong type for value; expected string; got {}",
                    t.type_name()
                )));
            }
            _ => {
                return Err(FuncError::new(format!(
                    "wrong number of args for tpl: want 2 got {}",
                    args.len()
                )));
            }
        };
        // Helm names the tpl template after the calling template's file.
        let name = data
            .map_get("Template")
            .and_then(|t| t.map_get("Name"))
            .and_then(|n| match n {
                Value::String(s) => Some(s),
                _ => None,
            })
            .unwrap_or_else(|| "gotpl".to_string());
        // Charts call tpl on the same small texts again and again (bitnami's
        // tplvalues.render): parse each (name, text) once per thread.
        thread_local! {
            static TPL_CACHE: std::cell::RefCell<HashMap<(String, String), ParsedTpl>> =
                std::cell::RefCell::new(HashMap::new());
        }
        let key = (name.clone(), text.clone());
        let cached = TPL_CACHE.with(|c| c.borrow().get(&key).cloned());
        let (def, defines) = match cached {
            Some(hit) => hit,
            None => {
                let parsed = super::parse_file(&name, &text)
                    .map_err(|e| FuncError::new(format!("cannot parse template {text:?}: {e}")))?;
                let (def, defines) =
                    super::template_defs(&name, Source::from(text.as_str()), parsed);
                TPL_CACHE.with(|c| {
                    let mut c = c.borrow_mut();
                    // Bound the cache: a chart with endless distinct texts
                    // should not grow memory without limit.
                    if c.len() > 10_000 {
                        c.clear();
                    }
                    c.insert(key, (def.clone(), defines.clone()));
                });
                (def, defines)
            }
        };
        if defines.is_empty() {
            // No new defines: the current set serves as it is.
            let result = self.exec_template(&def, data);
            return match result {
                Ok(s) => Ok(Value::String(s.replace("<no value>", ""))),
                Err(e) => Err(FuncError {
                    message: e.message.to_string(),
                    user_failure: e.user_failure,
                    nested: Some(Box::new(e)),
                }),
            };
        }
        let mut set = (*self.templates).clone();
        for d in defines {
            set.insert(d.name.clone(), d);
        }
        let saved = std::mem::replace(&mut self.templates, Rc::new(set));
        let result = self.exec_template(&def, data);
        self.templates = saved;
        match result {
            Ok(s) => Ok(Value::String(s.replace("<no value>", ""))),
            Err(e) => Err(FuncError {
                message: e.message.to_string(),
                user_failure: e.user_failure,
                nested: Some(Box::new(e)),
            }),
        }
    }
}

/// A parsed `tpl` text: its body and the templates it defines.
type ParsedTpl = (Rc<TemplateDef>, Vec<Rc<TemplateDef>>);

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
        Arg::Str(s) => crate::render::funcs::gofmt::quote(s),
        Arg::Ident(i) => i.to_string(),
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

/// Position used when an argument itself fails (fields and variables carry one).
fn arg_pos(a: &Arg) -> usize {
    match a {
        Arg::Field(_, p) | Arg::Variable(_, p) | Arg::Chain(_, _, p) => *p,
        _ => 0,
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
