//! End-to-end rendering tests; expected outputs were produced by `helm template` (v3.22.0).

use std::collections::BTreeMap;
use std::rc::Rc;

use gotemplate::TemplateSet;

use super::*;

/// What `helm template` prints: manifests, then hooks.
fn documents(out: RenderOutput) -> Vec<Manifest> {
    out.manifests
        .into_iter()
        .chain(out.hooks.into_iter().map(|hook| hook.manifest))
        .collect()
}

fn no_values() -> Value {
    Value::new_map(BTreeMap::new())
}

fn chart(files: &[(&str, &str)]) -> ChartFiles {
    ChartFiles {
        files: files
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    }
}

fn opts() -> RenderOptions {
    RenderOptions {
        release_name: "rel".into(),
        ..RenderOptions::default()
    }
}

fn render_one(tpl: &str, values: &str) -> Result<String, RenderError> {
    let c = chart(&[
        (
            "Chart.yaml",
            "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n",
        ),
        ("values.yaml", values),
        ("templates/t.yaml", tpl),
    ]);
    let out = render(&c, &no_values(), &opts())?;
    Ok(documents(out)
        .into_iter()
        .map(|m| m.content)
        .collect::<Vec<_>>()
        .join("\n---\n"))
}

#[test]
fn values_are_float64_like_helm() {
    assert_eq!(
        render_one("n: {{ .Values.num }}", "num: 1000000").expect("renders"),
        "n: 1e+06"
    );
}

/// helm reads values as YAML 1.1: a bare `n`/`y` key is the boolean false/true,
/// so `n: 1` is stored under "false" (checked with helm v3.22.0: `toJson .Values`
/// of `n: 1000000\ny: 2\non: k` is `{"false":1000000,"true":"k"}`).
#[test]
fn yaml_1_1_keys_and_booleans_like_helm() {
    assert_eq!(
        render_one(
            "{{ toJson .Values }}",
            "n: 1000000\ny: 2\non: k\nb: yes\nc: 0x1F\nd: 012\nh: 2001-12-14\nx: +5"
        )
        .expect("renders"),
        r#"{"b":true,"c":31,"d":10,"false":1000000,"h":"2001-12-14","true":"k","x":5}"#
    );
}

#[test]
fn missing_values_print_nothing() {
    assert_eq!(
        render_one("a: x{{ .Values.missing }}y", "{}").expect("renders"),
        "a: xy"
    );
}

#[test]
fn nil_pointer_error_is_located() {
    let e = render_one("a: 1\nb: {{ .Values.x.y }}", "{}").expect_err("fails");
    // Helm 4 (the default) lays the error out on lines; Helm 3 keeps Go's one line.
    assert_eq!(
        e.message,
        "demo/templates/t.yaml:2:13\n  executing \"demo/templates/t.yaml\" at <.Values.x.y>:\n    nil pointer evaluating interface {}.y"
    );
    let c = chart(&[
        ("Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.1.0\n"),
        ("templates/t.yaml", "a: 1\nb: {{ .Values.x.y }}"),
    ]);
    let options = RenderOptions {
        helm: HelmCompat::V3,
        ..opts()
    };
    let v3 = render(&c, &no_values(), &options).expect_err("fails");
    assert_eq!(
        v3.message,
        "template: demo/templates/t.yaml:2:13: executing \"demo/templates/t.yaml\" at <.Values.x.y>: nil pointer evaluating interface {}.y"
    );
    assert_eq!(
        (e.file.as_str(), e.line, e.column),
        ("demo/templates/t.yaml", Some(2), Some(13))
    );
}

fn run(src: &str) -> Result<String, ExecErrorText> {
    let mut set = TemplateSet::new(funcs::table(crate::HelmCompat::default()));
    set.add("t", src)
        .map_err(|e| ExecErrorText(e.to_string()))?;
    let mut values = BTreeMap::new();
    let mut inner = BTreeMap::new();
    inner.insert("a".to_string(), Value::new_map(BTreeMap::new()));
    inner.insert("s".to_string(), Value::str("str"));
    inner.insert(
        "l".to_string(),
        Value::list(vec![Value::Int(1), Value::Int(2)]),
    );
    values.insert("Values".to_string(), Value::new_map(inner));
    Rc::new(set)
        .execute("t", Value::new_map(values))
        .map_err(|e| ExecErrorText(e.message))
}

#[derive(Debug, PartialEq)]
struct ExecErrorText(String);

fn err_text(src: &str) -> String {
    run(src).expect_err("should fail").0
}

#[test]
fn go_template_semantics() {
    // Each expectation is what Go 1.26 text/template prints (missingkey=zero).
    assert_eq!(run("{{ range 3 }}{{.}}{{end}}"), Ok("012".into()));
    assert_eq!(
        run("{{ range $i, $v := .Values.l }}{{$i}}{{$v}}{{end}}"),
        Ok("0112".into())
    );
    assert_eq!(
        run("{{ \"abc\" | printf \"%s %d\" }}"),
        Ok("abc %!d(MISSING)".into())
    );
    assert_eq!(run("{{ eq \"a\" nil }}"), Ok("false".into()));
    assert_eq!(
        run("{{ printf \"%v %v\" .Values.a nil }}"),
        Ok("map[] <nil>".into())
    );
    // Helm's `slice` is sprig's, which takes lists only (Go's builtin is replaced).
    assert_eq!(run("{{ slice .Values.l 1 }}"), Ok("[2]".into()));
    assert!(
        err_text("{{ slice \"abc\" 1 }}")
            .ends_with("list should be type of slice or array but string")
    );
    assert_eq!(
        run("{{ 1.0 }} {{ 1e3 }} {{ 0x10 }} {{ 017 }} {{ 'a' }} {{ -1.5e-7 }}"),
        Ok("1 1000 16 15 97 -1.5e-07".into())
    );
    assert_eq!(
        run("{{- if false }}a{{ else if true -}} b {{- end }}"),
        Ok("b".into())
    );
    assert_eq!(
        run("{{ range .Values.l }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }}"),
        Ok("2".into())
    );
    assert_eq!(
        run("{{ and 1 0 }} {{ or 0 \"\" }} {{ or 0 2 }} {{ not 0 }}"),
        Ok("0  2 true".into())
    );
}

#[test]
fn go_template_errors() {
    assert_eq!(
        err_text("{{ .Values.x.y.z }}"),
        "template: t:1:10: executing \"t\" at <.Values.x.y.z>: nil pointer evaluating interface {}.y"
    );
    assert_eq!(
        err_text("{{ $v := .Values }}{{ $v.x.y }}"),
        "template: t:1:24: executing \"t\" at <$v.x.y>: nil pointer evaluating interface {}.y"
    );
    assert_eq!(
        err_text("{{ .Values.s.y }}"),
        "template: t:1:10: executing \"t\" at <.Values.s.y>: can't evaluate field y in type interface {}"
    );
    assert_eq!(
        err_text("{{ print 1 .Values.x.y }}"),
        "template: t:1:18: executing \"t\" at <.Values.x.y>: nil pointer evaluating interface {}.y"
    );
    assert_eq!(
        err_text("{{ index .Values.l 5 }}"),
        "template: t:1:3: executing \"t\" at <index .Values.l 5>: error calling index: index out of range: 5"
    );
    assert_eq!(
        err_text("{{ len .Values.x }}"),
        "template: t:1:3: executing \"t\" at <len .Values.x>: error calling len: len of nil pointer"
    );
    assert_eq!(
        err_text("{{ lt 1 2.0 }}"),
        "template: t:1:3: executing \"t\" at <lt 1 2.0>: error calling lt: incompatible types for comparison: int and float64"
    );
}

#[test]
fn helm_error_formats() {
    // From `helm template` v3.22.0.
    let e = render_one("a: {{ .Values.x }\n", "{}").expect_err("parse error");
    assert_eq!(
        e.message,
        "parse error at (demo/templates/t.yaml:1): unexpected \"}\" in operand"
    );
    assert_eq!(e.line, Some(1));
    let e = render_one("a: 1\nb: {{ include \"x\" . }}\n{{ define \"x\" }}\n  {{ required \"need it\" .Values.q }}{{ end }}", "{}")
        .expect_err("required");
    assert_eq!(
        e.message,
        "execution error at (demo/templates/t.yaml:2:6): need it"
    );
    let e = render_one("a: {{ fail \"boom\" }}\n", "{}").expect_err("fail");
    assert_eq!(
        e.message,
        "execution error at (demo/templates/t.yaml:1:6): boom"
    );
}

/// Renders the public charts in /work/shared/charts into $BERTH_RENDER_OUT (for
/// diffing against `helm template rel <chart>` by hand); ignored in normal runs.
#[test]
#[ignore]
fn render_shared_charts() {
    let charts_dir =
        std::env::var("BERTH_CHARTS_DIR").unwrap_or_else(|_| "/work/shared/charts".into());
    let root = std::path::Path::new(&charts_dir);
    let out_dir = std::env::var("BERTH_RENDER_OUT").unwrap_or_else(|_| "/tmp/berth-render".into());
    let _ = std::fs::create_dir_all(&out_dir);
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join("Chart.yaml").exists() {
            continue;
        }
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&dir)
                        .expect("prefix")
                        .to_string_lossy()
                        .replace('\\', "/");
                    files.insert(rel, std::fs::read(&p).expect("read"));
                }
            }
        }
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let text = match render(&ChartFiles { files }, &no_values(), &opts()) {
            Ok(out) => documents(out)
                .iter()
                .map(|m| format!("---\n# Source: {}\n{}\n", m.source, m.content))
                .collect::<String>(),
            Err(e) => format!("Error: {e}\n"),
        };
        std::fs::write(format!("{out_dir}/{name}.yaml"), text).expect("write");
    }
}

#[test]
fn nil_pipeline_results_have_empty_fields() {
    // Go unwraps pipeline results: fields of a nil result are empty, not errors.
    assert_eq!(
        run(
            "{{ (.Values.x).y }}|{{ $v := .Values.x }}{{ $v.y.z }}|{{ (index .Values \"q\").r.s }}"
        ),
        Ok("<no value>|<no value>|<no value>".into())
    );
}

#[test]
fn from_yaml_reads_the_first_document() {
    assert_eq!(
        run("{{ (fromYaml \"a: 1\\n---\\nb: 2\").a }}"),
        Ok("1".into())
    );
}

#[test]
fn a_schema_violation_is_reported_before_any_template_error() {
    let files = |replicas: &str, service: &str| {
        chart(&[
            ("Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.1.0\n"),
            ("values.yaml", replicas),
            (
                "values.schema.json",
                r#"{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}}"#,
            ),
            (
                "templates/_helpers.tpl",
                "{{ define \"demo.name\" }}{{ .Chart.Name }}-{{ .Release.Name }}{{ end }}",
            ),
            (
                "templates/deploy.yaml",
                "kind: Deployment\nmetadata:\n  name: {{ include \"demo.name\" . }}\nspec:\n  replicas: {{ .Values.replicas }}\n",
            ),
            ("templates/svc.yaml", service),
        ])
    };
    let service = "kind: Service\nmetadata:\n  name: {{ include \"demo.name\" . }}\n";
    let user = Value::new_map(BTreeMap::new());
    let good = render(&files("replicas: 2\n", service), &user, &opts()).expect("renders");
    assert_eq!(good.manifests.len(), 2);
    assert!(good.manifests[1].content.contains("replicas: 2"));
    assert!(good.manifests[1].content.contains("name: demo-rel"));

    // As helm: the values are checked before any template runs.
    for service in [service, "kind: Service\n{{ fail \"broken\" }}\n"] {
        let error =
            render(&files("replicas: 0\n", service), &user, &opts()).expect_err("schema violation");
        assert!(
            error
                .message
                .contains("values don't meet the specifications of the schema(s)"),
            "{}",
            error.message
        );
    }
}

#[test]
fn a_schema_pattern_that_re2_refuses_is_refused_like_helm_does() {
    let files = |pattern: &str| {
        chart(&[
            ("Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.1.0\n"),
            ("values.yaml", "name: abc\n"),
            (
                "values.schema.json",
                &format!(
                    r#"{{"type": "object", "properties": {{"name": {{"type": "string", "pattern": "{pattern}"}}}}}}"#
                ),
            ),
            (
                "templates/cm.yaml",
                "kind: ConfigMap\nname: {{ .Values.name }}\n",
            ),
        ])
    };
    let user = Value::new_map(BTreeMap::new());
    render(&files("^[a-z]+$"), &user, &opts()).expect("an RE2 pattern");
    for look_around in ["^(?=a)[a-z]+$", "^(a)\\\\1$"] {
        let error = render(&files(look_around), &user, &opts()).expect_err(look_around);
        assert!(
            error.message.contains("invalid JSON schema") && error.message.contains("regex"),
            "{look_around}: {}",
            error.message
        );
    }
}

/// Found on istiod (its `zzz_profile.yaml`) and linkerd-viz; the expected
/// text is `helm template rel .` of the same files (helm v3.22.0, and v4.3.2
/// for the Helm 4 order).
#[test]
fn later_templates_see_what_earlier_ones_set_on_the_top_object_and_kinds_sort_as_helm_does() {
    let c = chart(&[
        ("Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.1.0\n"),
        ("values.yaml", "pilot: null\nbase:\n  a: 1\n"),
        (
            "templates/zz_profile.yaml",
            // A nil dict argument is a nil map in Go, not an error.
            "{{- $_ := mustMergeOverwrite $.Values (index $.Values \"pilot\") }}\n{{- $b := set $ \"Values\" (dict \"replaced\" true \"a\" .Values.base.a) }}\n",
        ),
        (
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  replaced: {{ .Values.replaced | quote }}\n  a: {{ .Values.a | quote }}\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: v\n---\napiVersion: example.com/v1\nkind: Zebra\nmetadata:\n  name: z\n---\napiVersion: example.com/v1\nkind: Aardvark\nmetadata:\n  name: a\n---\napiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata:\n  name: api\n",
        ),
    ]);
    let kinds_as = |helm| {
        let options = RenderOptions { helm, ..opts() };
        let out = documents(render(&c, &no_values(), &options).expect("renders"));
        assert!(
            out[0]
                .content
                .trim_end()
                .ends_with("data:\n  replaced: \"true\"\n  a: \"1\""),
            "{}",
            out[0].content
        );
        out.iter()
            .filter_map(|m| m.content.lines().find_map(|l| l.strip_prefix("kind: ")))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Helm 3's install order has no webhook configurations: they sort with
    // the kinds it does not know, by name. Helm 4 puts them last of the
    // kinds it knows.
    assert_eq!(
        kinds_as(HelmCompat::V3),
        [
            "ConfigMap",
            "APIService",
            "Aardvark",
            "ValidatingWebhookConfiguration",
            "Zebra"
        ]
    );
    assert_eq!(
        kinds_as(HelmCompat::V4),
        [
            "ConfigMap",
            "APIService",
            "ValidatingWebhookConfiguration",
            "Aardvark",
            "Zebra"
        ]
    );
}

/// Helm's loader limits (checked against both helms by hand: a 6 MB file
/// fails Helm 3 only; 106 MB in all fails Helm 4 naming the file that
/// passed the budget).
#[test]
fn chart_size_limits_follow_each_helm() {
    let mut files = vec![
        (
            "Chart.yaml",
            b"apiVersion: v2\nname: big\nversion: 0.1.0\n".to_vec(),
        ),
        ("templates/a.yaml", b"a: 1\n".to_vec()),
        ("files/big.bin", vec![0u8; 6_000_000]),
    ];
    let chart_of = |files: &[(&str, Vec<u8>)]| ChartFiles {
        files: files
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    let options = |helm| RenderOptions { helm, ..opts() };
    let error = render(&chart_of(&files), &no_values(), &options(HelmCompat::V3)).unwrap_err();
    assert_eq!(
        error.message,
        "chart file \"big.bin\" is larger than the maximum file size 5242880"
    );
    assert!(render(&chart_of(&files), &no_values(), &options(HelmCompat::V4)).is_ok());
    // Ignored files do not count.
    files.push((".helmignore", b"files/\n".to_vec()));
    assert!(render(&chart_of(&files), &no_values(), &options(HelmCompat::V3)).is_ok());
    files.pop();
    for name in [
        "files/b1.bin",
        "files/b2.bin",
        "files/b3.bin",
        "files/b4.bin",
    ] {
        files.push((name, vec![0u8; 25_000_000]));
    }
    let error = render(&chart_of(&files), &no_values(), &options(HelmCompat::V4)).unwrap_err();
    assert_eq!(
        error.message,
        "error reading files/big.bin: chart exceeds maximum decompressed size of 104857600 bytes"
    );
}

#[test]
fn a_binary_file_keeps_its_bytes_where_go_reads_a_strings_bytes() {
    let mut c = chart(&[
        ("Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.1.0\n"),
        (
            "templates/cm.yaml",
            "kind: Secret\ndata:\n  a: {{ .Files.Get \"ks.jks\" | b64enc }}\n  b: {{ .Files.Get \"ks.jks\" | toString | default \"x\" | b64enc }}\n  len: {{ .Files.Get \"ks.jks\" | len }}\n  upper: {{ .Files.Get \"ks.jks\" | upper | b64enc }}\n",
        ),
    ]);
    c.files
        .insert("ks.jks".into(), vec![0xfe, 0xed, 0xfe, 0xed, 0x00]);
    let out = render(&c, &no_values(), &opts()).unwrap();
    let text = &documents(out)[0].content;
    // The keystore's own bytes, where a UTF-8 reading would have given 77+977+977+977+9AA==.
    assert!(text.contains("a: /u3+7QA=\n"), "{text}");
    assert!(text.contains("b: /u3+7QA=\n"), "{text}");
    assert!(text.contains("len: 5\n"), "{text}");
    // upper reads UTF-8, as Go's strings.ToUpper does.
    assert!(text.contains("upper: 77+977+977+977+9AA==\n"), "{text}");
}
