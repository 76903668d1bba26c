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

/// A chart of one template, `templates/t.yaml`, rendered under `limits`.
fn render_limited(
    template: &str,
    limits: crate::RenderLimits,
) -> Result<String, crate::RenderError> {
    let chart = crate::ChartFiles {
        files: [
            (
                "Chart.yaml",
                "apiVersion: v2\nname: hostile\nversion: 0.1.0\n",
            ),
            ("templates/t.yaml", template),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect(),
    };
    let options = crate::RenderOptions {
        limits,
        ..crate::RenderOptions::default()
    };
    crate::render(&chart, &Value::new_map(BTreeMap::new()), &options)
        .map(|out| out.manifests.into_iter().map(|m| m.content).collect())
}

#[test]
fn templates_that_would_run_for_ages_stop_at_the_render_timeout() {
    // Each level includes the next twice: 2^60 calls, every one shallow.
    let template = r#"{{- define "x" }}{{ if lt . 60 }}{{ include "x" (add . 1) }}{{ include "x" (add . 1) }}{{ end }}{{ end }}{{ include "x" 0 }}"#;
    let limits = crate::RenderLimits {
        timeout: std::time::Duration::from_millis(500),
        ..crate::RenderLimits::default()
    };
    let started = std::time::Instant::now();
    let error = render_limited(template, limits)
        .expect_err("stopped")
        .to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(error.contains("hostile/templates/t.yaml"), "{error}");
    assert!(error.contains("ran longer than 0.5s"), "{error}");
}

#[test]
fn templates_that_build_a_gigabyte_string_stop_at_the_byte_limit() {
    // Doubling 40 times would be a TiB.
    let template = r#"{{- $s := "x" }}{{ range until 40 }}{{ $s = cat $s $s }}{{ end }}{{ $s }}"#;
    let limits = crate::RenderLimits {
        max_bytes: 1 << 20,
        ..crate::RenderLimits::default()
    };
    let error = render_limited(template, limits)
        .expect_err("stopped")
        .to_string();
    assert!(error.contains("hostile/templates/t.yaml:1:"), "{error}");
    assert!(error.contains("more than 1048576 bytes of text"), "{error}");
    // The default limit stops it too, before a gigabyte.
    let error = render_limited(template, crate::RenderLimits::default())
        .expect_err("stopped")
        .to_string();
    assert!(error.contains("more than 268435456 bytes"), "{error}");
}

#[test]
fn output_within_the_limits_renders() {
    let template = "lines:\n{{ range until 1000 }}- line {{ . }}\n{{ end }}";
    let limits = crate::RenderLimits {
        max_bytes: 64 << 10,
        ..crate::RenderLimits::default()
    };
    let out = render_limited(template, limits).expect("renders");
    assert!(out.contains("line 999"));
    let tight = crate::RenderLimits {
        max_bytes: 1000,
        ..crate::RenderLimits::default()
    };
    assert!(render_limited(template, tight).is_err());
}

#[test]
fn endless_recursion_stops_at_the_depth_limit_even_at_the_largest_allowed() {
    let template = r#"{{- define "x" }}{{ include "x" . }}{{ end }}{{ include "x" . }}"#;
    let limits = crate::RenderLimits {
        max_depth: 50,
        ..crate::RenderLimits::default()
    };
    let error = render_limited(template, limits)
        .expect_err("stopped")
        .to_string();
    assert!(
        error.contains("exceeded maximum template depth (50)"),
        "{error}"
    );
    // The agent renders on threads of 2 MiB stack: the deepest nesting a
    // configuration may ask for must fit (an optimised build uses less).
    let largest = crate::RenderLimits {
        max_depth: crate::RenderLimits::MAX_DEPTH_ALLOWED,
        ..crate::RenderLimits::default()
    };
    let error = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || render_limited(template, largest).map_err(|e| e.to_string()))
        .expect("thread")
        .join()
        .expect("no stack overflow")
        .expect_err("stopped");
    assert!(
        error.contains("exceeded maximum template depth (1000)"),
        "{error}"
    );
}
