//! Go `text/template`: lexer, parser and executor.

pub mod exec;
pub mod parse;

use std::rc::Rc;

pub use exec::{ExecError, Executor, FuncError, TemplateDef, TemplateSet};
pub use parse::{ParseError, parse};

use crate::render::funcs;

/// Parses `src` (a file named `name`) and adds its body and defines to `set`.
/// A later define of the same name replaces an earlier one, as in Go.
pub fn add_file(set: &mut TemplateSet, name: &str, src: &str) -> Result<(), ParseError> {
    let parsed = parse_file(name, src)?;
    add_parsed(set, name, parse::Source::from(src), parsed);
    Ok(())
}

/// Parses one template file with Helm's function set (any thread).
pub fn parse_file(name: &str, src: &str) -> Result<parse::ParsedFile, ParseError> {
    parse(name, src, &funcs::is_function)
}

/// Adds a file parsed by [`parse_file`] to `set`, as [`add_file`] does.
pub fn add_parsed(
    set: &mut TemplateSet,
    name: &str,
    source: parse::Source,
    parsed: parse::ParsedFile,
) {
    for (dname, body) in parsed.defines {
        set.insert(
            dname.clone(),
            Rc::new(TemplateDef {
                name: dname,
                file: name.to_string(),
                source: source.clone(),
                body: Rc::new(body),
            }),
        );
    }
    set.insert(
        name.to_string(),
        Rc::new(TemplateDef {
            name: name.to_string(),
            file: name.to_string(),
            source,
            body: Rc::new(parsed.body),
        }),
    );
}

#[cfg(test)]
mod go_semantics_tests;
