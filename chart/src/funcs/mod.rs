//! Helm's and sprig's template functions, one file per domain. Each file
//! starts with its `FUNCS` table: a function is one line there (name, arity,
//! body) and nothing else names it. [`table`] puts Go's builtins and every
//! family into the one [`FuncTable`] templates are parsed against; Helm 4's
//! table also holds the functions Helm 4 added (each family's `HELM4_FUNCS`).

mod conversions;
mod crypto;
mod dates;
mod decimal;
mod defaults;
mod dicts;
mod durations;
mod encoding;
mod go_unicode;
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

use crate::HelmCompat;

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

/// The functions Helm 4 added (Helm 3 fails to parse a template calling them).
const HELM4_FAMILIES: &[&[Func]] = &[encoding::HELM4_FUNCS, durations::FUNCS];

fn build(families: &[&[Func]]) -> Arc<FuncTable> {
    let mut table = FuncTable::builtins();
    for family in families {
        table.extend(family);
    }
    Arc::new(table)
}

static HELM3_TABLE: LazyLock<Arc<FuncTable>> = LazyLock::new(|| build(FAMILIES));
static HELM4_TABLE: LazyLock<Arc<FuncTable>> =
    LazyLock::new(|| build(&[FAMILIES, HELM4_FAMILIES].concat()));

/// Every function a chart's templates may call under `helm`: Go's builtins,
/// Helm's own (`include`, `tpl`, `required`, `toYaml`, ...) and sprig's.
pub fn table(helm: HelmCompat) -> Arc<FuncTable> {
    match helm {
        HelmCompat::V3 => Arc::clone(&HELM3_TABLE),
        HelmCompat::V4 => Arc::clone(&HELM4_TABLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_function_is_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        for func in FAMILIES
            .iter()
            .chain(HELM4_FAMILIES)
            .flat_map(|family| family.iter())
        {
            assert!(seen.insert(func.name), "{} is listed twice", func.name);
        }
        // Helm's table holds what Helm and sprig v3 offer, less the
        // functions Helm removes (env, expandenv).
        for helm in [HelmCompat::V3, HelmCompat::V4] {
            assert!(table(helm).get("env").is_none());
            assert!(table(helm).get("include").is_some());
            assert!(table(helm).get("printf").is_some(), "Go's builtins are in");
        }
        // Helm 4's additions are Helm 4's only.
        assert!(table(HelmCompat::V3).get("mustToYaml").is_none());
        assert!(table(HelmCompat::V4).get("mustToYaml").is_some());
        assert!(table(HelmCompat::V3).get("durationSeconds").is_none());
        assert!(table(HelmCompat::V4).get("durationSeconds").is_some());
    }
}
