//! Helm's and sprig's template functions, one file per domain. Each file
//! starts with its `FUNCS` table: a function is one line there (name, arity,
//! body) and nothing else names it. [`table`] puts Go's builtins and every
//! family into the one [`FuncTable`] templates are parsed against.

mod conversions;
mod crypto;
mod dates;
mod defaults;
mod dicts;
mod encoding;
pub(crate) mod helm;
mod lists;
mod math;
mod paths;
mod random;
mod regex;
mod semver;
mod strings;
mod urls;

use std::sync::{Arc, LazyLock};

use gotemplate::{Func, FuncTable};

pub use conversions::strval;

/// The families, in the order their tables are added.
const FAMILIES: &[&[Func]] = &[
    helm::FUNCS,
    defaults::FUNCS,
    strings::FUNCS,
    lists::FUNCS,
    dicts::FUNCS,
    math::FUNCS,
    conversions::FUNCS,
    encoding::FUNCS,
    crypto::FUNCS,
    random::FUNCS,
    regex::FUNCS,
    semver::FUNCS,
    dates::FUNCS,
    paths::FUNCS,
    urls::FUNCS,
];

static TABLE: LazyLock<Arc<FuncTable>> = LazyLock::new(|| {
    let mut table = FuncTable::builtins();
    for family in FAMILIES {
        table.extend(family);
    }
    Arc::new(table)
});

/// Every function a chart's templates may call: Go's builtins, Helm's own
/// (`include`, `tpl`, `required`, `toYaml`, ...) and sprig's.
pub fn table() -> Arc<FuncTable> {
    Arc::clone(&TABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_function_is_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        for func in FAMILIES.iter().flat_map(|family| family.iter()) {
            assert!(seen.insert(func.name), "{} is listed twice", func.name);
        }
        // Helm's table holds what Helm 3 and sprig v3 offer, less the
        // functions Helm removes (env, expandenv).
        assert!(table().get("env").is_none());
        assert!(table().get("include").is_some());
        assert!(table().get("printf").is_some(), "Go's builtins are in");
    }
}
