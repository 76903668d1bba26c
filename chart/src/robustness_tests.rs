//! No input may panic: random text (biased towards the syntax that matters) is
//! fed to the template parser, the values YAML reader and the `--set` parsers.
//! Each must return a value or an error. (The cargo-fuzz targets in agent/fuzz
//! do the same with coverage guidance; this runs with every `cargo test`.)

use std::collections::BTreeMap;
use std::rc::Rc;

use proptest::prelude::*;

use gotemplate::{TemplateSet, Value};

use super::strvals::{SetKind, parse_into};
use super::{funcs, values, yaml11};

fn new_set() -> TemplateSet {
    TemplateSet::new(funcs::table(crate::HelmCompat::default()))
}

fn template_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just("{{-".to_string()),
            Just("-}}".to_string()),
            Just(" ".to_string()),
            Just("\n".to_string()),
            Just("if".to_string()),
            Just("else".to_string()),
            Just("end".to_string()),
            Just("with".to_string()),
            Just("define \"x\"".to_string()),
            Just("template \"x\"".to_string()),
            Just("include \"x\" .".to_string()),
            Just(".Values.a".to_string()),
            Just("$v := ".to_string()),
            Just("$v".to_string()),
            Just("|".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("\"s\"".to_string()),
            Just("`raw`".to_string()),
            Just("/*".to_string()),
            Just("*/".to_string()),
            Just("1.5e3".to_string()),
            Just("'c'".to_string()),
            Just("printf \"%v\"".to_string()),
            Just("default".to_string()),
            Just("toYaml".to_string()),
            Just("nindent 2".to_string()),
            "[a-z0-9.$\"'`|(){}=:, -]{0,6}".prop_map(|s| s),
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn values_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[a-z]{1,4}".prop_map(|s| s),
            Just(": ".to_string()),
            Just("\n".to_string()),
            Just("  ".to_string()),
            Just("- ".to_string()),
            Just("&a ".to_string()),
            Just("*a".to_string()),
            Just("<<: ".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(",".to_string()),
            Just("=".to_string()),
            Just(".".to_string()),
            Just("\\".to_string()),
            Just("'q'".to_string()),
            Just("\"d\"".to_string()),
            Just("!!str ".to_string()),
            Just("0x1F".to_string()),
            Just("yes".to_string()),
            Just("~".to_string()),
            Just("|\n".to_string()),
            Just("---\n".to_string()),
            Just("[99999999]".to_string()),
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn template_parser_never_panics(src in template_text()) {
        let mut set = new_set();
        if set.add("t", src.as_str()).is_ok() && !src.contains("range") {
            // Execution must not panic either (range is left out: a huge
            // integer range is valid and merely slow).
            let mut values = BTreeMap::new();
            values.insert("a".to_string(), Value::str("x"));
            let mut dot = BTreeMap::new();
            dot.insert("Values".to_string(), Value::new_map(values));
            let _ = Rc::new(set).execute("t", Value::new_map(dot));
        }
    }

    #[test]
    fn values_parsers_never_panic(text in values_text()) {
        let _ = yaml11::parse_all(&text);
        let _ = values::parse_values("values.yaml", text.as_bytes());
        for kind in [SetKind::Typed, SetKind::String, SetKind::Json, SetKind::Literal] {
            let dest = Value::new_map(BTreeMap::new());
            let _ = parse_into(&text, &dest, kind);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = new_set().add("t", &*text);
        let _ = yaml11::parse_all(&text);
        let _ = parse_into(&text, &Value::new_map(BTreeMap::new()), SetKind::Typed);
    }
}

/// Inputs the fuzzers found, kept as regressions.
#[test]
fn fuzzer_findings_fail_cleanly() {
    // An escaped quote character constant left open at the end of the input.
    let src = "\u{1}\u{10}{k{{'\\'";
    assert!(new_set().add("t", src).is_err());
}
