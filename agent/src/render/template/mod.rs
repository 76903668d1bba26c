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
    parse(name, src, &funcs::function_name)
}

/// Adds a file parsed by [`parse_file`] to `set`, as [`add_file`] does.
pub fn add_parsed(
    set: &mut TemplateSet,
    name: &str,
    source: parse::Source,
    parsed: parse::ParsedFile,
) {
    let (body, defines) = template_defs(name, source, parsed);
    for def in defines {
        set.insert(def.name.clone(), def);
    }
    set.insert(name.to_string(), body);
}

/// The templates one parsed file gives: its body (named after the file) and
/// its `define`s, all located in that file.
pub fn template_defs(
    name: &str,
    source: parse::Source,
    parsed: parse::ParsedFile,
) -> (Rc<TemplateDef>, Vec<Rc<TemplateDef>>) {
    let defines = parsed
        .defines
        .into_iter()
        .map(|(dname, body)| {
            Rc::new(TemplateDef {
                name: dname,
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

#[cfg(test)]
mod go_semantics_tests;
