//! Go's `text/template` in Rust: the lexer, the parser, the executor, the
//! dynamic value templates operate on and Go's builtin functions. No Helm
//! and no I/O: a host adds its own functions and objects.
//!
//! | module | what it holds |
//! |---|---|
//! | [`lex`] | template text into tokens (trim markers, comments, literals) |
//! | [`parse`] | tokens into the syntax tree of [`tree`], with Go's parse errors |
//! | [`exec`] | running a [`TemplateSet`] over a [`Value`], with Go's error messages |
//! | [`value`] | the dynamic [`Value`] and host [`Object`]s |
//! | [`func`] | the [`FuncTable`]: name → function and arity, resolved at parse time |
//! | [`error`] | parse, execution and function errors, in Go's words |
//! | [`builtins`] | Go's builtins (`and`, `len`, `index`, `printf`, `eq`, ...) |
//! | [`fmt`] | Go's `fmt` verbs and number formatting for template values |
//!
//! ```
//! use std::rc::Rc;
//! use std::sync::Arc;
//! use gotemplate::{FuncTable, TemplateSet, Value};
//!
//! let mut set = TemplateSet::new(Arc::new(FuncTable::builtins()));
//! set.add("greeting", "{{ printf \"%s, %d\" .name .n }}").unwrap();
//! let dot = Value::new_map(
//!     [("name".to_string(), Value::str("hello")), ("n".to_string(), Value::Int(3))]
//!         .into_iter()
//!         .collect(),
//! );
//! assert_eq!(Rc::new(set).execute("greeting", dot).unwrap(), "hello, 3");
//! ```
//!
//! Missing map keys evaluate to nil and print as `<no value>` (Go's
//! `missingkey=zero` for `map[string]interface{}`, as Helm runs templates).

pub mod builtins;
pub mod error;
pub mod exec;
pub mod fmt;
pub mod func;
pub mod lex;
pub mod parse;
pub mod tree;
pub mod value;

pub use error::{ExecError, FuncError, ParseError, TextError};
pub use exec::{ExecLimits, Executor, TemplateDef, TemplateSet};
pub use func::{Arity, Body, Func, FuncResult, FuncTable, Param, Params, Runner};
pub use parse::Source;
pub use tree::ParsedFile;
pub use value::{GoList, GoMap, MapRef, Object, Struct, Value};

#[cfg(test)]
mod go_semantics_tests;
