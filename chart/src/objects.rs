//! The objects a chart's templates see at the top level: `.Values`,
//! `.Release`, `.Chart`, `.Capabilities`, `.Files` and `.Template`, with the
//! Go types and methods Helm gives them.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use gotemplate::func::arg::err;
use gotemplate::{FuncError, GoMap, Object, Struct, Value};

use crate::chart::Chart;
use crate::yaml_emit::to_yaml_string;
use crate::{HelmCompat, RenderError, RenderOptions};

/// Kubernetes version reported when none is given (helm v4.3.2's default;
/// see [`default_kube_version`]).
pub const DEFAULT_KUBE_VERSION: &str = "v1.37.0";

/// Kubernetes version `helm` reports when none is given: the minor of the
/// Kubernetes client it links (helm v3.21.4: 1.36, helm v4.3.2: 1.37).
pub fn default_kube_version(helm: HelmCompat) -> &'static str {
    match helm {
        HelmCompat::V3 => "v1.36.0",
        HelmCompat::V4 => DEFAULT_KUBE_VERSION,
    }
}

/// The Helm release `.Capabilities.HelmVersion` names: the pinned reference
/// of each major (tests/tools/versions.env), built with this Go.
fn helm_version(helm: HelmCompat) -> &'static str {
    match helm {
        HelmCompat::V3 => "v3.21.4",
        HelmCompat::V4 => "v4.3.2",
    }
}
const HELM_GO_VERSION: &str = "go1.26.8";

/// API versions helm v4.3.2 reports by default for `.Capabilities.APIVersions`
/// (Helm 3's differ: see [`default_api_versions`]).
const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "lifecycle.k8s.io/v1alpha1",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1",
    "resource.k8s.io/v1beta2",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1",
    "storagemigration.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// Helm's `.Files`: a chart's files other than templates, values and
/// Chart.yaml (a Go `map[string][]byte` with accessor methods).
#[derive(Debug)]
pub struct Files(pub Rc<BTreeMap<String, Vec<u8>>>);

impl Object for Files {
    fn type_name(&self) -> String {
        "chart.Files".into()
    }

    fn kind_name(&self) -> &'static str {
        "map"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let files = &self.0;
        let path = match args.first() {
            Some(Value::String(p)) => p.clone(),
            _ => String::new(),
        };
        Some(match name {
            "Get" => Ok(Value::go_string(
                files.get(&path).cloned().unwrap_or_default(),
            )),
            "GetBytes" => Ok(Value::Bytes(Rc::new(
                files.get(&path).cloned().unwrap_or_default(),
            ))),
            // Helm drops one final newline before splitting; an empty file
            // has no lines.
            "Lines" => Ok(match files.get(&path) {
                Some(b) if !b.is_empty() => {
                    let text = String::from_utf8_lossy(b);
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    Value::typed_list(text.split('\n').map(Value::str).collect(), "string")
                }
                _ => Value::typed_list(vec![], "string"),
            }),
            "Glob" => glob_regex(&path).map(|re| {
                let matched: BTreeMap<String, Vec<u8>> = files
                    .iter()
                    .filter(|(k, _)| re.is_match(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Value::Object(Rc::new(Files(Rc::new(matched))))
            }),
            "AsConfig" => Ok(as_config(files, |data| {
                String::from_utf8_lossy(data).into_owned()
            })),
            "AsSecrets" => Ok(as_config(files, |data| {
                base64::engine::general_purpose::STANDARD.encode(data)
            })),
            _ => return None,
        })
    }

    fn entries(&self) -> Option<Value> {
        Some(Value::new_map(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::Bytes(Rc::new(v.clone()))))
                .collect(),
        ))
    }

    fn marshal(&self) -> Value {
        self.entries().unwrap_or_default()
    }

    fn write_go(&self, out: &mut String) {
        out.push_str(&self.marshal().to_go_string());
    }
}

/// `AsConfig`/`AsSecrets`: the files by base name, each through `encode`,
/// as YAML.
fn as_config(files: &BTreeMap<String, Vec<u8>>, encode: impl Fn(&[u8]) -> String) -> Value {
    let mut m = BTreeMap::new();
    for (path, data) in files {
        let base = path.rsplit('/').next().unwrap_or(path).to_string();
        m.insert(base, Value::String(encode(data)));
    }
    if m.is_empty() {
        return Value::str("");
    }
    Value::str(to_yaml_string(&Value::new_map(m)).trim_end_matches('\n'))
}

/// `.Capabilities.APIVersions`: a Go `[]string` with a `Has` method.
#[derive(Debug)]
pub struct VersionSet(pub Vec<String>);

impl Object for VersionSet {
    fn type_name(&self) -> String {
        "chartutil.VersionSet".into()
    }

    fn kind_name(&self) -> &'static str {
        "slice"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        match name {
            "Has" => Some(match args {
                [Value::String(v)] => Ok(Value::Bool(self.0.contains(v))),
                _ => err("wrong number of args for Has: want 1"),
            }),
            _ => None,
        }
    }

    fn entries(&self) -> Option<Value> {
        Some(Value::list(
            self.0.iter().cloned().map(Value::String).collect(),
        ))
    }

    fn marshal(&self) -> Value {
        self.entries().unwrap_or_default()
    }

    fn write_go(&self, out: &mut String) {
        out.push('[');
        out.push_str(&self.0.join(" "));
        out.push(']');
    }
}

/// Glob with '/' as separator: `*` stays within a path segment, `**` crosses them.
pub(crate) fn glob_regex(pattern: &str) -> Result<regex_lite::Regex, FuncError> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut k = 0;
    let mut in_alt = false;
    while k < chars.len() {
        let c = chars[k];
        match c {
            '*' if chars.get(k + 1) == Some(&'*') => {
                re.push_str(".*");
                k += 1;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '{' => {
                re.push('(');
                in_alt = true;
            }
            '}' if in_alt => {
                re.push(')');
                in_alt = false;
            }
            ',' if in_alt => re.push('|'),
            '[' => {
                let end = chars[k..].iter().position(|x| *x == ']').map(|p| p + k);
                match end {
                    Some(e) => {
                        let body: String = chars[k + 1..e].iter().collect();
                        let body = body
                            .strip_prefix('!')
                            .map(|b| format!("^{b}"))
                            .unwrap_or(body);
                        re.push('[');
                        re.push_str(&body);
                        re.push(']');
                        k = e;
                    }
                    None => re.push_str("\\["),
                }
            }
            '\\' if k + 1 < chars.len() => {
                k += 1;
                re.push_str(&regex_lite::escape(&chars[k].to_string()));
            }
            other => re.push_str(&regex_lite::escape(&other.to_string())),
        }
        k += 1;
    }
    re.push('$');
    regex_lite::Regex::new(&re).map_err(|e| FuncError::new(format!("bad glob pattern: {e}")))
}

/// `.Capabilities.APIVersions` when none are added. helm v3.21.4 links the
/// Kubernetes 1.36 client: it lacks two groups' versions helm v4.3.2 knows
/// and has scheduling's older alpha.
fn default_api_versions(helm: HelmCompat) -> Vec<String> {
    let all = DEFAULT_API_VERSIONS.iter().map(|s| s.to_string());
    match helm {
        HelmCompat::V4 => all.collect(),
        HelmCompat::V3 => all
            .filter(|v| v != "lifecycle.k8s.io/v1alpha1" && v != "storagemigration.k8s.io/v1")
            .map(|v| {
                if v == "scheduling.k8s.io/v1alpha3" {
                    "scheduling.k8s.io/v1alpha2".to_string()
                } else {
                    v
                }
            })
            .collect(),
    }
}

pub(crate) fn capabilities(options: &RenderOptions) -> Result<Value, RenderError> {
    let helm_compat = options.helm;
    let kv = options
        .kube_version
        .clone()
        .unwrap_or_else(|| default_kube_version(helm_compat).to_string());
    let kv = if kv.starts_with('v') {
        kv
    } else {
        format!("v{kv}")
    };
    let mut parts = kv.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or("").to_string();
    let minor = parts.next().unwrap_or("").to_string();
    if major.parse::<u64>().is_err() || minor.parse::<u64>().is_err() {
        return Err(RenderError::plain(
            "",
            format!("invalid kube version {kv:?}"),
        ));
    }
    let package = match helm_compat {
        HelmCompat::V3 => "chartutil",
        HelmCompat::V4 => "common",
    };
    // encoding/json writes its exported fields by their Go names.
    let text = |pairs: &[(&str, &str)]| {
        Value::new_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::str(*v)))
                .collect(),
        )
    };
    let kube_json = text(&[("Version", &kv), ("Major", &major), ("Minor", &minor)]);
    let kube = Struct::new(
        format!("{package}.KubeVersion"),
        vec![
            ("Version", Value::str(kv.clone())),
            ("Major", Value::str(major)),
            ("Minor", Value::str(minor)),
            ("GitVersion", Value::str(kv.clone())),
            ("String", Value::str(kv.clone())),
        ],
        kv,
    )
    .with_json(kube_json)
    .into_value();
    let mut api = default_api_versions(helm_compat);
    api.extend(options.api_versions.iter().cloned());
    let version = helm_version(helm_compat);
    let mut fields = vec![
        ("Version", Value::str(version)),
        ("GitCommit", Value::str("")),
        ("GitTreeState", Value::str("clean")),
        ("GoVersion", Value::str(HELM_GO_VERSION)),
    ];
    let mut display = format!("{{{version}  clean {HELM_GO_VERSION}}}");
    // BuildInfo's JSON tags; the empty git commit is left out.
    let mut json = vec![
        ("version", version),
        ("git_tree_state", "clean"),
        ("go_version", HELM_GO_VERSION),
    ];
    let client = DEFAULT_KUBE_VERSION.trim_end_matches(".0");
    if helm_compat == HelmCompat::V4 {
        // Helm 4 also names the Kubernetes client it links.
        fields.push(("KubeClientVersion", Value::str(client)));
        display = format!("{{{version}  clean {HELM_GO_VERSION} {client}}}");
        json.push(("kube_client_version", client));
    }
    let helm = Struct::new("version.BuildInfo", fields, display)
        .with_json(text(&json))
        .into_value();
    Ok(Struct::new(
        format!("*{package}.Capabilities"),
        vec![
            ("KubeVersion", kube.clone()),
            (
                "APIVersions",
                Value::Object(Rc::new(VersionSet(api.clone()))),
            ),
            ("HelmVersion", helm.clone()),
        ],
        "&{...}".into(),
    )
    // Capabilities has no JSON tags: its fields keep their Go names.
    .with_json(Value::new_map(BTreeMap::from([
        ("KubeVersion".to_string(), marshalled(&kube)),
        (
            "APIVersions".to_string(),
            Value::list(api.into_iter().map(Value::String).collect()),
        ),
        ("HelmVersion".to_string(), marshalled(&helm)),
    ])))
    .into_value())
}

/// What encoding/json makes of a host value.
fn marshalled(v: &Value) -> Value {
    match v {
        Value::Object(o) => o.marshal(),
        other => other.clone(),
    }
}

pub(crate) fn release_value(o: &RenderOptions) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Name".into(), Value::str(o.release_name.clone()));
    m.insert("Namespace".into(), Value::str(o.namespace.clone()));
    m.insert("Revision".into(), Value::Int(o.revision));
    m.insert("IsInstall".into(), Value::Bool(o.is_install));
    m.insert("IsUpgrade".into(), Value::Bool(!o.is_install));
    m.insert("Service".into(), Value::str("Helm"));
    Value::new_map(m)
}

/// A Chart.yaml entry as a template value (nil when absent).
fn metadata_value(c: &Chart, key: &str) -> Value {
    c.metadata
        .get(key)
        .map(crate::values::from_yaml)
        .unwrap_or(Value::Nil)
}

/// `.Chart` as Helm 4 gives it: the metadata as a map keyed by Go's field
/// names (every field present, lists never nil), plus `IsRoot`.
fn chart_map(c: &Chart, is_root: bool) -> Value {
    let y = |k: &str| metadata_value(c, k);
    let items = |k: &str| match y(k) {
        Value::List(items) => items.to_vec(),
        _ => vec![],
    };
    // Maintainers and dependencies are Go structs too: maps of their fields.
    let fields_of = |item: &Value, fields: &[(&str, &str)]| {
        let mut m = BTreeMap::new();
        for (go, yaml) in fields {
            let v = item.map_get(yaml).unwrap_or(Value::Nil);
            let v = match (v, *go) {
                (Value::List(l), _) => Value::List(l),
                (Value::Nil, "Tags" | "ImportValues") => Value::list(vec![]),
                (Value::Nil, _) => Value::str(""),
                (v, _) => Value::str(v.to_go_string()),
            };
            m.insert(go.to_string(), v);
        }
        m
    };
    let maintainers = items("maintainers")
        .iter()
        .map(|m| {
            Value::new_map(fields_of(
                m,
                &[("Name", "name"), ("Email", "email"), ("URL", "url")],
            ))
        })
        .collect();
    let dependencies = items("dependencies")
        .iter()
        .map(|d| {
            let mut m = fields_of(
                d,
                &[
                    ("Name", "name"),
                    ("Version", "version"),
                    ("Repository", "repository"),
                    ("Condition", "condition"),
                    ("Tags", "tags"),
                    ("ImportValues", "import-values"),
                    ("Alias", "alias"),
                ],
            );
            let name = d
                .map_get("alias")
                .filter(|a| !a.is_empty())
                .or_else(|| d.map_get("name"))
                .map(|n| n.to_go_string())
                .unwrap_or_default();
            let enabled = c.subcharts.iter().any(|s| s.name == name);
            m.insert("Enabled".into(), Value::Bool(enabled));
            Value::new_map(m)
        })
        .collect();
    let annotations = annotations_value(c);
    let text = |k: &str| Value::str(c.meta(k));
    let fields = [
        ("Name", Value::str(c.name.clone())),
        ("Home", text("home")),
        ("Sources", Value::list(items("sources"))),
        ("Version", Value::str(c.version())),
        ("Description", text("description")),
        ("Keywords", Value::list(items("keywords"))),
        ("Maintainers", Value::list(maintainers)),
        ("Icon", text("icon")),
        ("APIVersion", text("apiVersion")),
        ("Condition", text("condition")),
        ("Tags", text("tags")),
        ("AppVersion", Value::str(c.app_version())),
        (
            "Deprecated",
            Value::Bool(matches!(y("deprecated"), Value::Bool(true))),
        ),
        ("Annotations", annotations),
        ("KubeVersion", text("kubeVersion")),
        ("Dependencies", Value::list(dependencies)),
        ("Type", text("type")),
        ("IsRoot", Value::Bool(is_root)),
    ];
    Value::new_map(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// A chart metadata entry (a maintainer, a dependency) as the Go struct
/// Helm 3 gives templates: `fields` are (Go name, YAML and JSON name); empty
/// fields are left out of its JSON, as their tags say.
fn go_struct(item: &Value, type_name: &str, fields: &[(&str, &str)]) -> Value {
    let mut go = Vec::new();
    let mut json = BTreeMap::new();
    for (name, key) in fields {
        let value = item.map_get(key).unwrap_or(Value::Nil);
        let value = match (value, *name) {
            (Value::Nil, "Enabled") => Value::Bool(false),
            (Value::Nil, "Tags" | "ImportValues") => Value::Nil,
            (Value::Nil, _) => Value::str(""),
            (v @ (Value::List(_) | Value::Bool(_)), _) => v,
            (v, _) => Value::str(v.to_go_string()),
        };
        if !value.is_empty() {
            json.insert(key.to_string(), value.clone());
        }
        go.push((*name, value));
    }
    let display = format!(
        "&{{{}}}",
        go.iter()
            .map(|(_, v)| v.to_go_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Struct::new(type_name, go, display)
        .with_json(Value::new_map(json))
        .into_value()
}

/// `.Chart.Annotations`: Go's `map[string]string`, a nil one for a chart
/// without annotations (`toJson` writes `null`).
fn annotations_value(c: &Chart) -> Value {
    let annotations = match metadata_value(c, "annotations") {
        Value::Map(m) => m,
        _ => Rc::new(GoMap::nil()),
    };
    annotations.set_go_type("map[string]string");
    Value::Map(annotations)
}

/// `.Chart` as Helm 3 gives it: a struct embedding the metadata.
fn chart_value(c: &Chart, is_root: bool) -> Value {
    let y = |k: &str| metadata_value(c, k);
    let list_or_empty = |k: &str| match y(k) {
        Value::Nil => Value::list(vec![]),
        v => v,
    };
    let annotations = annotations_value(c);
    // Maintainers and dependencies are Go structs: `.Name`, not `.name`.
    let structs = |key: &str, type_name: &str, fields: &[(&str, &str)]| match y(key) {
        Value::List(items) => Value::list(
            items
                .iter()
                .map(|item| go_struct(item, type_name, fields))
                .collect(),
        ),
        _ => Value::list(vec![]),
    };
    let maintainers = structs(
        "maintainers",
        "*chart.Maintainer",
        &[("Name", "name"), ("Email", "email"), ("URL", "url")],
    );
    let dependencies = structs(
        "dependencies",
        "*chart.Dependency",
        &[
            ("Name", "name"),
            ("Version", "version"),
            ("Repository", "repository"),
            ("Condition", "condition"),
            ("Tags", "tags"),
            ("Enabled", "enabled"),
            ("ImportValues", "import-values"),
            ("Alias", "alias"),
        ],
    );
    let deprecated = matches!(y("deprecated"), Value::Bool(true));
    let fields = vec![
        ("Name", Value::str(c.name.clone())),
        ("Home", Value::str(c.meta("home"))),
        ("Sources", list_or_empty("sources")),
        ("Version", Value::str(c.version())),
        ("Description", Value::str(c.meta("description"))),
        ("Keywords", list_or_empty("keywords")),
        ("Maintainers", maintainers),
        ("Icon", Value::str(c.meta("icon"))),
        ("APIVersion", Value::str(c.meta("apiVersion"))),
        ("Condition", Value::str(c.meta("condition"))),
        ("Tags", Value::str(c.meta("tags"))),
        ("AppVersion", Value::str(c.app_version())),
        ("Deprecated", Value::Bool(deprecated)),
        ("Annotations", annotations),
        ("KubeVersion", Value::str(c.meta("kubeVersion"))),
        ("Dependencies", dependencies),
        ("Type", Value::str(c.meta("type"))),
    ];
    let display = format!(
        "{{{{{}}} {is_root}}}",
        fields
            .iter()
            .map(|(_, v)| v.to_go_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut fields = fields;
    fields.push(("IsRoot", Value::Bool(is_root)));
    Struct::new("struct { chart.Metadata; IsRoot bool }", fields, display).into_value()
}

/// The top-level object of chart `c`'s templates. As in Helm, one map
/// serves every template of the chart: a template that changes it (`set $
/// "Values" ...`) changes it for the templates executed after it.
pub(crate) fn top_values(
    c: &Chart,
    vals: &Value,
    release: &Value,
    caps: &Value,
    helm: HelmCompat,
) -> Value {
    let is_root = !c.full_path.contains('/');
    // The top-level object and `.Values` are of Helm's named values type.
    if let Value::Map(v) = vals {
        v.set_go_type(helm.values_type());
    }
    let mut m = BTreeMap::new();
    m.insert("Values".into(), vals.clone());
    m.insert("Release".into(), release.clone());
    let chart = match helm {
        HelmCompat::V3 => chart_value(c, is_root),
        HelmCompat::V4 => chart_map(c, is_root),
    };
    m.insert("Chart".into(), chart);
    m.insert("Subcharts".into(), Value::new_map(BTreeMap::new()));
    m.insert("Capabilities".into(), caps.clone());
    m.insert(
        "Files".into(),
        Value::Object(Rc::new(Files(c.files.clone()))),
    );
    let top = GoMap::new(m);
    top.set_go_type(helm.values_type());
    Value::Map(Rc::new(top))
}

/// Gives `top` (a chart's top-level object) `.Subcharts.<name>`: the top-level
/// object of each of its enabled subcharts, as Helm does.
pub(crate) fn add_subchart(top: &Value, name: &str, sub_top: &Value) {
    if let Some(Value::Map(subcharts)) = top.map_get("Subcharts") {
        subcharts
            .borrow_mut()
            .insert(name.to_string(), sub_top.clone());
    }
}

/// Names the template about to run in its chart's top-level object.
pub(crate) fn set_template(top: &Value, c: &Chart, template_name: &str, helm: HelmCompat) {
    if let Value::Map(m) = top {
        let mut t = BTreeMap::new();
        t.insert("Name".into(), Value::str(template_name));
        t.insert(
            "BasePath".into(),
            Value::str(format!("{}/templates", c.full_path)),
        );
        let template = GoMap::new(t);
        template.set_go_type(helm.values_type());
        m.borrow_mut()
            .insert("Template".into(), Value::Map(Rc::new(template)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let re = glob_regex("files/*.conf").expect("glob");
        assert!(re.is_match("files/a.conf"));
        assert!(!re.is_match("files/x/a.conf"));
        assert!(
            glob_regex("dashboards/**.json")
                .expect("glob")
                .is_match("dashboards/x/y.json")
        );
    }
}
