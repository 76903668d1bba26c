//! Template functions: one table maps each name to its function and arity,
//! and, for most, its Go parameter types. A template's calls are resolved
//! against the table when it is parsed, so an unknown function is a parse
//! error, as in Go; the executor checks the number of arguments and each
//! argument's type before the call, with Go's messages and at the argument,
//! as Go's reflection does.

use std::collections::HashMap;

use crate::error::{ExecError, FuncError, TextError};
use crate::value::{MapRef, Value};

/// What a function returns.
pub type FuncResult = Result<Value, FuncError>;

/// How many arguments a function takes, as its Go signature would say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    Exact(usize),
    /// Variadic: at least this many.
    AtLeast(usize),
}

/// A Go parameter type, as far as a template's arguments can differ from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `interface{}` (or `reflect.Value`): any value.
    Any,
    /// `string`.
    Str,
    /// `int`.
    Int,
    /// `float64`.
    Float,
    /// `bool`.
    Bool,
    /// `map[string]interface{}`.
    Map,
    /// `[]interface{}`.
    List,
    /// A host type (`time.Time`, sprig's certificate, `uint32`): the
    /// function checks its argument itself.
    Host,
}

impl Param {
    /// Go's name of the type, as its messages print it.
    fn go_name(self) -> &'static str {
        match self {
            Param::Any | Param::Host => "interface {}",
            Param::Str => "string",
            Param::Int => "int",
            Param::Float => "float64",
            Param::Bool => "bool",
            Param::Map => "map[string]interface {}",
            Param::List => "[]interface {}",
        }
    }

    /// Go's `validateType`: why `value` cannot be passed, or `None`. A nil
    /// is either the nil `interface{}` a field gives for a missing key under
    /// Helm's `missingkey=zero`, or a range's nil element
    /// (`nil_is_interface`: Go says "got interface {}" of it, even for a map
    /// or slice parameter), or Go's invalid value, which is what a pipeline
    /// or a variable it set leaves (a map or slice parameter takes it as
    /// empty; any other says "invalid value").
    pub(crate) fn refuses(self, value: &Value, nil_is_interface: bool) -> Option<String> {
        if value.is_nil() && !nil_is_interface {
            return match self {
                Param::Any | Param::Host | Param::Map | Param::List => None,
                _ => Some(format!("invalid value; expected {}", self.go_name())),
            };
        }
        let fits = match (self, value) {
            (Param::Any | Param::Host, _)
            | (Param::Str, Value::String(_) | Value::BinaryString(_))
            | (Param::Int, Value::Int(_))
            | (Param::Float, Value::Float(_))
            | (Param::Bool, Value::Bool(_)) => true,
            (Param::Map, Value::Map(m)) => m.assignable_to_plain_map(),
            // A typed slice (`[]string`) is no `[]interface {}`.
            (Param::List, Value::List(l)) => l.elem_type().is_none(),
            _ => false,
        };
        (!fits).then(|| {
            let got = match value {
                Value::Nil => "interface {}".to_string(),
                other => other.type_name(),
            };
            format!(
                "wrong type for value; expected {}; got {got}",
                self.go_name()
            )
        })
    }

    /// Go's `evalArg` of a constant: why `literal` (printed as `text`)
    /// cannot be passed, or `None`. `int` and `float` say whether a number
    /// literal is one (Go's `IsInt`, `IsFloat`); `None` for other
    /// literals.
    pub(crate) fn refuses_literal(self, literal: Literal, text: &str) -> Option<String> {
        let fits = match (self, literal) {
            (Param::Any | Param::Host, _) => true,
            (Param::Str, Literal::Str) | (Param::Bool, Literal::Bool) => true,
            (Param::Int, Literal::Number { int, .. }) => int,
            (Param::Float, Literal::Number { float, .. }) => float,
            (Param::Map | Param::List, Literal::Nil) => true,
            _ => false,
        };
        if fits {
            return None;
        }
        Some(match (self, literal) {
            (_, Literal::Nil) => format!("cannot assign nil to {}", self.go_name()),
            (Param::Str, _) => format!("expected string; found {text}"),
            (Param::Int, _) => format!("expected integer; found {text}"),
            (Param::Float, _) => format!("expected float; found {text}"),
            (Param::Bool, _) => format!("expected bool; found {text}"),
            _ => format!("can't handle {text} for arg of type {}", self.go_name()),
        })
    }
}

/// A constant argument, as [`Param::refuses_literal`] tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Literal {
    Str,
    Bool,
    Nil,
    Number { int: bool, float: bool },
}

/// A function's Go parameters: the fixed ones, then the element type of a
/// final `...` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub fixed: &'static [Param],
    pub variadic: Option<Param>,
}

impl Params {
    /// The parameter the `index`th argument is passed to (Go's `evalCall`);
    /// `None` past the end of a function without `...`.
    pub(crate) fn at(&self, index: usize) -> Option<Param> {
        self.fixed.get(index).copied().or(self.variadic)
    }
}

/// What a function runs.
#[derive(Clone, Copy)]
pub enum Body {
    /// A function of its arguments alone.
    Plain(fn(&[Value]) -> FuncResult),
    /// A function that runs templates (Helm's `include` and `tpl`).
    Executing(fn(&mut dyn Runner, &[Value]) -> FuncResult),
    /// Go's `and` (stops at the first false argument) and `or` (stops at the
    /// first true one): arguments after that are not evaluated.
    ShortCircuit { stop_at: bool },
}

/// What a function that runs templates may ask of the executor running it.
pub trait Runner {
    /// Runs the template `name` of the set being executed with `dot` (Go's
    /// `{{template}}`); `None` when the set has no such template.
    fn execute_template(&mut self, name: &str, dot: Value) -> Option<Result<String, ExecError>>;

    /// Parses `text` as a template called `name` and runs it with `dot`;
    /// the templates it defines are visible while it runs.
    fn execute_text(&mut self, name: &str, text: &str, dot: Value) -> Result<String, TextError>;
}

/// One entry of a function table.
#[derive(Clone, Copy)]
pub struct Func {
    pub name: &'static str,
    pub arity: Arity,
    pub body: Body,
    /// Go's parameter types, when declared: the executor checks the
    /// arguments against them before the call.
    pub params: Option<Params>,
    /// Whether it works on a string's bytes and so is given a
    /// [`Value::BinaryString`] as it is; other functions get its UTF-8
    /// reading ([`Value::utf8_view`]).
    pub reads_bytes: bool,
}

impl Func {
    /// A function of its arguments.
    pub const fn new(name: &'static str, arity: Arity, call: fn(&[Value]) -> FuncResult) -> Func {
        Func {
            name,
            arity,
            body: Body::Plain(call),
            params: None,
            reads_bytes: false,
        }
    }

    /// A function of its arguments with Go's parameter types: `fixed`, then
    /// a final `...variadic` when given (its arity follows from them).
    pub const fn go(
        name: &'static str,
        fixed: &'static [Param],
        variadic: Option<Param>,
        call: fn(&[Value]) -> FuncResult,
    ) -> Func {
        Func {
            name,
            arity: match variadic {
                Some(_) => Arity::AtLeast(fixed.len()),
                None => Arity::Exact(fixed.len()),
            },
            body: Body::Plain(call),
            params: Some(Params { fixed, variadic }),
            reads_bytes: false,
        }
    }

    /// The same function, given the bytes of a [`Value::BinaryString`].
    pub const fn reading_bytes(self) -> Func {
        Func {
            reads_bytes: true,
            ..self
        }
    }

    /// A function that runs templates through the executor, with Go's
    /// parameter types.
    pub const fn executing(
        name: &'static str,
        fixed: &'static [Param],
        call: fn(&mut dyn Runner, &[Value]) -> FuncResult,
    ) -> Func {
        Func {
            name,
            arity: Arity::Exact(fixed.len()),
            body: Body::Executing(call),
            params: Some(Params {
                fixed,
                variadic: None,
            }),
            reads_bytes: false,
        }
    }

    /// Go's message when the argument count does not fit, or `None`.
    /// (`given` counts the explicit arguments; `piped` is the value a
    /// pipeline passes last. Go reports a variadic call's count without it.)
    pub(crate) fn arity_error(&self, given: usize, piped: bool) -> Option<String> {
        let total = given + usize::from(piped);
        match self.arity {
            Arity::Exact(n) if total != n => Some(format!(
                "wrong number of args for {}: want {n} got {total}",
                self.name
            )),
            Arity::AtLeast(n) if total < n => Some(format!(
                "wrong number of args for {}: want at least {n} got {given}",
                self.name
            )),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Func")
            .field("name", &self.name)
            .field("arity", &self.arity)
            .finish()
    }
}

/// The functions templates may call, by name.
#[derive(Clone, Debug, Default)]
pub struct FuncTable {
    by_name: HashMap<&'static str, Func>,
}

impl FuncTable {
    /// Adds `funcs`; a name already in the table is replaced, as Go's
    /// `Template.Funcs` replaces builtins.
    pub fn extend(&mut self, funcs: &[Func]) {
        for func in funcs {
            self.by_name.insert(func.name, *func);
        }
    }

    pub fn get(&self, name: &str) -> Option<Func> {
        self.by_name.get(name).copied()
    }

    /// Every function name, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_name.keys().copied()
    }
}

/// Go's conversions of an argument to a function's parameter type, with
/// Go's error messages.
pub mod arg {
    use super::*;

    pub fn err<T>(message: impl Into<String>) -> Result<T, FuncError> {
        Err(FuncError::new(message))
    }

    fn mismatch<T>(expected: Param, got: &Value) -> Result<T, FuncError> {
        let expected = expected.go_name();
        match got {
            Value::Nil => err(format!("invalid value; expected {expected}")),
            other => err(format!(
                "wrong type for value; expected {expected}; got {}",
                other.type_name()
            )),
        }
    }

    /// A `string` parameter: only strings are assignable.
    pub fn string(v: &Value) -> Result<String, FuncError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            other => mismatch(Param::Str, other),
        }
    }

    /// A `string` parameter's bytes, of a function [`Func::reading_bytes`].
    pub fn string_bytes(v: &Value) -> Result<std::borrow::Cow<'_, [u8]>, FuncError> {
        match v {
            Value::String(s) => Ok(std::borrow::Cow::Borrowed(s.as_bytes())),
            Value::BinaryString(b) => Ok(std::borrow::Cow::Borrowed(b)),
            other => mismatch(Param::Str, other),
        }
    }

    /// An `int` parameter.
    pub fn int(v: &Value) -> Result<i64, FuncError> {
        match v {
            Value::Int(i) | Value::Int64(i) => Ok(*i),
            other => mismatch(Param::Int, other),
        }
    }

    /// A `bool` parameter.
    pub fn bool(v: &Value) -> Result<bool, FuncError> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => mismatch(Param::Bool, other),
        }
    }

    /// A `map[string]interface{}` parameter. Go passes nil to a map
    /// parameter as a nil map, which reads as empty.
    pub fn map(v: &Value) -> Result<MapRef, FuncError> {
        match v {
            Value::Map(m) => Ok(m.clone()),
            Value::Nil => Ok(MapRef::default()),
            other => mismatch(Param::Map, other),
        }
    }
}
