//! Go `text/template` corner cases, checked against Go itself: the expected
//! outputs below were printed by `testdata/go_semantics.go` (go1.26.8), which
//! executes the same templates over the same JSON data. Regenerate them there.

use std::rc::Rc;
use std::sync::Arc;

use crate::{FuncTable, TemplateSet, Value};

const DATA: &str = r#"{"f": 1000000, "half": 0.5, "i": 3, "s": "str", "empty": "", "nilval": null,
 "m": {"b": 2, "a": 1, "c": {"z": [1, "x", {"k": true}]}},
 "list": [1, "a", {"x": 1.5}], "t": true}"#;

/// (name, template, what Go printed — or "EXEC ERROR: " and Go's error).
const CASES: &[(&str, &str, &str)] = &[
    ("trim_both", r#"a  {{- 1 -}}  b"#, r#"a1b"#),
    ("trim_comment", r#"x {{- /* c */ -}} y"#, r#"xy"#),
    (
        "trim_newlines",
        r#"x
  {{- if true }}
y
{{- end }}
z"#,
        r#"x
y
z"#,
    ),
    ("missing_key", r#"[{{ .missing }}]"#, r#"[<no value>]"#),
    ("missing_nested", r#"[{{ .m.missing }}]"#, r#"[<no value>]"#),
    ("nil_value", r#"[{{ .nilval }}]"#, r#"[<no value>]"#),
    (
        "if_missing",
        r#"{{ if .missing }}yes{{ else }}no{{ end }}"#,
        r#"no"#,
    ),
    (
        "empty_string_false",
        r#"{{ if .empty }}yes{{ else }}no{{ end }}"#,
        r#"no"#,
    ),
    (
        "int_constants",
        r#"{{ 3 }} {{ 3.0 }} {{ 1e6 }} {{ 0x10 }} {{ 1.5e-7 }}"#,
        r#"3 3 1e+06 16 1.5e-07"#,
    ),
    (
        "float_values",
        r#"{{ .f }} {{ .half }} {{ .i }}"#,
        r#"1e+06 0.5 3"#,
    ),
    (
        "printf_numbers",
        r#"{{ printf "%v %d %.2f %g %s" .f 3 .half .f .i }}"#,
        r#"1e+06 3 0.50 1e+06 %!s(float64=3)"#,
    ),
    (
        "printf_types",
        r#"{{ printf "%T %T %T %T %T" 1 1.5 .f .m .list }}"#,
        r#"int float64 float64 map[string]interface {} []interface {}"#,
    ),
    (
        "map_order",
        r#"{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}"#,
        r#"a=1;b=2;c=map[z:[1 x map[k:true]]];"#,
    ),
    (
        "map_print",
        r#"{{ .m }}"#,
        r#"map[a:1 b:2 c:map[z:[1 x map[k:true]]]]"#,
    ),
    (
        "printf_nested",
        r#"{{ printf "%v" .m }}|{{ printf "%+v" .list }}"#,
        r#"map[a:1 b:2 c:map[z:[1 x map[k:true]]]]|[1 a map[x:1.5]]"#,
    ),
    ("list_print", r#"{{ .list }}"#, r#"[1 a map[x:1.5]]"#),
    (
        "and_or",
        r#"{{ and 1 0 }} {{ and 1 "x" }} {{ or 0 "" "x" }} {{ or 0 "" }} {{ not .empty }}"#,
        r#"0 x x  true"#,
    ),
    (
        "eq_ne_lt",
        r#"{{ eq 1 1 }} {{ eq "a" "a" "b" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2.5 2.5 }} {{ eq .i 3.0 }}"#,
        r#"true true true true true true"#,
    ),
    (
        "index_slice_len",
        r#"{{ index .list 1 }} {{ index .m "a" }} {{ slice "hello" 1 3 }} {{ len .list }} {{ len .m }} {{ len "héllo" }}"#,
        r#"a 1 el 3 3 6"#,
    ),
    (
        "variables",
        r#"{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"#,
        r#"2"#,
    ),
    (
        "range_else",
        r#"{{ range .nolist }}x{{ else }}empty{{ end }}"#,
        r#"empty"#,
    ),
    (
        "range_index",
        r#"{{ range $i, $v := .list }}{{ $i }}:{{ $v }} {{ end }}"#,
        r#"0:1 1:a 2:map[x:1.5] "#,
    ),
    (
        "break_continue",
        r#"{{ range $i, $v := .list }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $v }}{{ end }}"#,
        r#"1"#,
    ),
    (
        "with_else",
        r#"{{ with .missing }}a{{ else with .s }}{{ . }}{{ end }}"#,
        r#"str"#,
    ),
    (
        "print_spacing",
        r#"{{ print 1 2 "a" "b" 3 }}|{{ println "x" 1 }}|{{ print .nilval }}"#,
        r#"1 2ab3|x 1
|<nil>"#,
    ),
    (
        "escapers",
        r#"{{ html "<a href='x'>&</a>" }} {{ js "a'b\"c<" }} {{ urlquery "a b&c" }}"#,
        r#"&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt; a\'b\"c\u003C a+b%26c"#,
    ),
    (
        "pipeline_chain",
        r#"{{ "x" | printf "%s-%s" "y" }}"#,
        r#"y-x"#,
    ),
    (
        "bool_print",
        r#"{{ .t }} {{ true }} {{ not .t }}"#,
        r#"true true false"#,
    ),
    (
        "define_template",
        r#"{{ define "T" }}<{{ . }}>{{ end }}{{ template "T" .s }}{{ template "T" }}"#,
        r#"<str><<no value>>"#,
    ),
    (
        "call_error_missing_map_field_on_nil",
        r#"{{ .nilval.x }}"#,
        r#"EXEC ERROR: template: call_error_missing_map_field_on_nil:1:10: executing "call_error_missing_map_field_on_nil" at <.nilval.x>: nil pointer evaluating interface {}.x"#,
    ),
    (
        "range_over_int",
        r#"{{ range 3 }}{{ . }}{{ end }}"#,
        r#"012"#,
    ),
    (
        "printf_bad_verb",
        r#"{{ printf "%d" "s" }}|{{ printf "%s" }}|{{ printf "%z" 1 }}"#,
        r#"%!d(string=s)|%!s(MISSING)|%!z(int=1)"#,
    ),
    (
        "float_formatting",
        r#"{{ 0.000001 }} {{ 123456789.0 }} {{ 1e21 }} {{ 100000000000000000000.0 }}"#,
        r#"1e-06 1.23456789e+08 1e+21 1e+20"#,
    ),
    (
        "printf_format_constant",
        r#"{{ printf 3 }}"#,
        r#"EXEC ERROR: template: printf_format_constant:1:10: executing "printf_format_constant" at <3>: expected string; found 3"#,
    ),
    (
        "printf_format_nil",
        r#"{{ printf nil }}"#,
        r#"EXEC ERROR: template: printf_format_nil:1:10: executing "printf_format_nil" at <nil>: cannot assign nil to string"#,
    ),
    (
        "printf_format_value",
        r#"{{ printf .i }}"#,
        r#"EXEC ERROR: template: printf_format_value:1:10: executing "printf_format_value" at <.i>: wrong type for value; expected string; got float64"#,
    ),
    (
        "printf_format_piped",
        r#"{{ .i | printf }}"#,
        r#"EXEC ERROR: template: printf_format_piped:1:8: executing "printf_format_piped" at <printf>: wrong type for value; expected string; got float64"#,
    ),
    (
        "printf_format_from_a_pipeline",
        r#"{{ printf (len .list) }}"#,
        r#"EXEC ERROR: template: printf_format_from_a_pipeline:1:15: executing "printf_format_from_a_pipeline" at <.list>: wrong type for value; expected string; got int"#,
    ),
    (
        "printf_format_checked_before_later_args",
        r#"{{ printf .i .nosuch.field }}"#,
        r#"EXEC ERROR: template: printf_format_checked_before_later_args:1:10: executing "printf_format_checked_before_later_args" at <.i>: wrong type for value; expected string; got float64"#,
    ),
];

fn run(name: &str, src: &str) -> String {
    let data: serde_json::Value = serde_json::from_str(DATA).expect("test data is JSON");
    let mut set = TemplateSet::new(Arc::new(FuncTable::builtins()));
    if let Err(e) = set.add(name, src) {
        return format!(
            "PARSE ERROR: template: {}:{}: {}",
            e.name, e.line, e.message
        );
    }
    match Rc::new(set).execute(name, Value::from_json(&data)) {
        Ok(out) => out,
        Err(e) => format!("EXEC ERROR: {}", e.message),
    }
}

#[test]
fn templates_behave_like_go() {
    let mut failures = Vec::new();
    for (name, src, want) in CASES {
        let got = run(name, src);
        if got != *want {
            failures.push(format!(
                "{name}: {src}\n  go:    {want:?}\n  berth: {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
