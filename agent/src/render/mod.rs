//! Rendering Helm charts with berth's own engine (no helm binary at run time).
//!
//! [`render`] loads a chart from memory, coalesces values as Helm does, executes
//! every template with Go `text/template` semantics and the Helm/sprig function
//! library, and returns the documents in the order `helm template` prints them.

pub mod chart;
pub mod funcs;
pub(crate) mod helper_cpu;
pub mod ignore;
pub mod load;
mod parse_ahead;
pub mod schema;
pub mod strvals;
pub mod template;
pub mod value;
pub mod yaml11;

use std::collections::BTreeMap;
use std::rc::Rc;

use thiserror::Error;

use self::chart::Chart;
use self::template::{Executor, TemplateSet};
use self::value::{Object, Value};

/// Kubernetes version reported when none is given (helm v3.22.0's default).
pub const DEFAULT_KUBE_VERSION: &str = "v1.37.0";

/// API versions helm v3.22.0 reports by default for `.Capabilities.APIVersions`.
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

/// Helm's install order of kinds; unknown kinds come after these.
pub const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// A chart's files, paths relative to the chart root with '/' separators.
#[derive(Debug, Clone, Default)]
pub struct ChartFiles {
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub release_name: String,
    pub namespace: String,
    pub revision: i64,
    pub is_install: bool,
    /// e.g. "v1.30.0"; `None` means helm's default ([`DEFAULT_KUBE_VERSION`]).
    pub kube_version: Option<String>,
    /// Extra API versions for `.Capabilities.APIVersions`.
    pub api_versions: Vec<String>,
    /// Skip values.schema.json validation (`--skip-schema-validation`).
    pub skip_schema_validation: bool,
    /// The process ends right after this render (`berth template`): the
    /// parsed templates and the loaded chart are left for the OS to take back
    /// at exit instead of being freed node by node (~0.8 ms for redis). Never
    /// set in the agent, which renders again and again.
    pub exits_after_render: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            release_name: "release-name".into(),
            namespace: "default".into(),
            revision: 1,
            is_install: true,
            kube_version: None,
            api_versions: vec![],
            skip_schema_validation: false,
            exits_after_render: false,
        }
    }
}

/// One rendered YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// "<chart name>/templates/x.yaml", as helm prints after "# Source: ".
    pub source: String,
    /// The document text (without the leading "---" and "# Source:" lines).
    pub content: String,
}

/// A rendering failure, Helm-style, with its location as fields.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct RenderError {
    /// The template file (e.g. "demo/templates/deployment.yaml"), or the chart file at fault.
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl RenderError {
    pub(crate) fn plain(file: &str, message: String) -> RenderError {
        RenderError {
            file: file.to_string(),
            line: None,
            column: None,
            message,
        }
    }
}

/// The chart's own default values (its values.yaml parsed).
pub fn chart_default_values(chart: &ChartFiles) -> Result<serde_yaml::Value, RenderError> {
    Ok(chart::load(&chart.files, "", None)?.values.to_yaml_value())
}

/// Everything `helm template` can print, in its order.
#[derive(Debug, Clone, Default)]
pub struct RenderOutput {
    /// crds/ files of every enabled chart (printed only with `--include-crds`).
    pub crds: Vec<Manifest>,
    /// Ordinary manifests, in install order.
    pub manifests: Vec<Manifest>,
    /// Hook manifests, in hook order.
    pub hooks: Vec<Hook>,
}

/// A manifest annotated with `helm.sh/hook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub manifest: Manifest,
    /// A `test` (or legacy `test-success`/`test-failure`) hook.
    pub is_test: bool,
}

/// Renders a chart like `helm template`: manifests then hooks, as helm prints them.
pub fn render(
    chart: &ChartFiles,
    values: &serde_yaml::Value,
    options: &RenderOptions,
) -> Result<Vec<Manifest>, RenderError> {
    let out = render_full(chart, &Value::from_yaml(values), options)?;
    Ok(out
        .manifests
        .into_iter()
        .chain(out.hooks.into_iter().map(|h| h.manifest))
        .collect())
}

/// Renders a chart with user values already typed (as `--set` types them).
///
/// Unless the chart is tiny, two threads share the work: a helper starts parsing the
/// chart's template files at once and, when parsing is done, checks the
/// values against the schemas; this thread loads the chart and merges values
/// meanwhile, helps with what is left to parse, then executes the templates
/// (values are not shared between threads). A tiny chart is rendered on this
/// thread alone: starting and joining a thread costs more than it saves
/// there ([`HELPER_THREAD_MIN_BYTES`]). Either way a schema violation wins
/// over whatever the templates did.
pub fn render_full(
    chart: &ChartFiles,
    user: &Value,
    options: &RenderOptions,
) -> Result<RenderOutput, RenderError> {
    render_with(chart, user, options, helper_pays_off(chart))
}

/// Template and schema text below which a chart is rendered on one thread.
/// Measured on 2 vCPUs (docs/benchmarks.md): with the helper started on the
/// other CPU ([`helper_cpu`]) every corpus chart gains from it, from ~2%
/// (podinfo, 30 KB) to 13–20% (grafana, redis); below a few parses' worth of
/// text, starting a thread costs more than it saves.
pub const HELPER_THREAD_MIN_BYTES: usize = 16 * 1024;

fn helper_pays_off(chart: &ChartFiles) -> bool {
    let work: usize = chart
        .files
        .iter()
        .filter(|(path, _)| {
            parse_ahead::is_template_path(path) || path.ends_with("values.schema.json")
        })
        .map(|(_, data)| data.len())
        .sum();
    // Checked second: it reads cgroup files.
    work >= HELPER_THREAD_MIN_BYTES
        && std::thread::available_parallelism().is_ok_and(|cpus| cpus.get() > 1)
}

fn render_with(
    chart: &ChartFiles,
    user: &Value,
    options: &RenderOptions,
    with_helper: bool,
) -> Result<RenderOutput, RenderError> {
    let ahead = std::sync::Arc::new(parse_ahead::ParseAhead::new(chart));
    let run_check =
        |check: Option<schema::SchemaCheck>| check.map_or(Ok(()), schema::SchemaCheck::run);
    let (schema_tx, schema_rx) = std::sync::mpsc::channel::<Option<schema::SchemaCheck>>();
    // Not a scoped thread: placing it needs its pthread handle. It owns what
    // it uses and ends by itself when this thread stops early (the abandoned
    // parse stops, and the closed channel brings no check).
    let helper = with_helper
        .then(|| {
            let spawner = helper_cpu::SpawnerCpu::current();
            let handle = std::thread::Builder::new()
                .name("berth-render".into())
                .spawn({
                    let ahead = std::sync::Arc::clone(&ahead);
                    let spawner = spawner.clone();
                    move || {
                        if let Some(spawner) = &spawner {
                            spawner.settle_helper();
                        }
                        ahead.parse_some();
                        // No check arrives when the render failed before it.
                        schema_rx.recv().map_or(Ok(()), run_check)
                    }
                })
                .ok()?;
            if let Some(spawner) = &spawner {
                spawner.move_off(&handle);
            }
            Some(handle)
        })
        .flatten();
    let mut unsent_check = None;
    let rendered = render_loaded(chart, user, options, &ahead, |check| {
        if helper.is_some() {
            // The helper only ends early by panicking; then check here.
            if let Err(std::sync::mpsc::SendError(check)) = schema_tx.send(check) {
                unsent_check = Some(check);
            }
        } else {
            unsent_check = Some(check);
        }
        || helper.as_ref().is_some_and(|h| !h.is_finished())
    });
    ahead.abandon();
    drop(schema_tx);
    let schema_result = match (unsent_check, helper.map(|h| h.join())) {
        (Some(check), _) => run_check(check),
        (None, Some(Ok(result))) => result,
        // The helper panicked after taking the check: never skip it silently.
        (None, Some(Err(_))) => Err(RenderError::plain(
            "values.schema.json",
            "the schema check stopped unexpectedly (a bug in berth)".to_string(),
        )),
        (None, None) => Ok(()),
    };
    schema_result?;
    rendered
}

/// The render proper, on this thread: `start_check` hands over the schema
/// check once the values are merged and tells whether the helper is still
/// parsing.
fn render_loaded<A: Fn() -> bool>(
    chart: &ChartFiles,
    user: &Value,
    options: &RenderOptions,
    ahead: &parse_ahead::ParseAhead,
    start_check: impl FnOnce(Option<schema::SchemaCheck>) -> A,
) -> Result<RenderOutput, RenderError> {
    let mut root = chart::load_sharing(&chart.files, "", None, ahead.texts())?;
    if root.is_library {
        return Err(RenderError::plain(
            &root.name,
            "library charts are not installable".to_string(),
        ));
    }
    check_tree(&root)?;
    chart::process_dependencies(&mut root, user);
    let coalesced = chart::coalesce(&root, user);
    let caps = capabilities(options)?;

    // Collect enabled charts with their scoped values.
    let mut charts: Vec<(&Chart, Value)> = Vec::new();
    collect_charts(&root, &coalesced, &mut charts);
    let helper_parsing = start_check(
        (!options.skip_schema_validation)
            .then(|| schema::SchemaCheck::new(&root, &coalesced, options.exits_after_render)),
    );
    // All templates in one set, deepest paths first so that a parent chart's
    // `define` overrides a subchart's (as helm orders them).
    let mut all: Vec<(String, template::parse::Source, usize)> = Vec::new();
    for (idx, (c, _)) in charts.iter().enumerate() {
        for (rel, text) in &c.templates {
            all.push((format!("{}/{}", c.full_path, rel), text.clone(), idx));
        }
    }
    all.sort_by(|a, b| {
        let (da, db) = (a.0.matches('/').count(), b.0.matches('/').count());
        db.cmp(&da).then_with(|| b.0.cmp(&a.0))
    });
    let release = release_value(options);
    let mut parsed = ahead.results(helper_parsing);
    let mut set = TemplateSet::new();
    for (name, text, _) in &all {
        let file = parsed.take(name, text).map_err(|e| RenderError {
            file: e.name.clone(),
            line: Some(e.line),
            column: None,
            message: format!("parse error at ({}:{}): {}", e.name, e.line, e.message),
        })?;
        template::add_parsed(&mut set, name, text.clone(), file);
    }
    let set = Rc::new(set);
    let mut rendered = execute(set.clone(), &all, &charts, &release, &caps)?;
    rendered.sort_by(|a, b| a.0.cmp(&b.0));
    let (manifests, hooks) = sort_manifests(rendered)?;
    let mut crds = Vec::new();
    crd_files(&root, &charts, &mut crds);
    if options.exits_after_render {
        std::mem::forget(set);
        std::mem::forget(charts);
        std::mem::forget(coalesced);
        std::mem::forget(root);
    }
    Ok(RenderOutput {
        crds,
        manifests,
        hooks,
    })
}

/// Executes every renderable template of the set: (template name, output).
fn execute(
    set: Rc<TemplateSet>,
    all: &[(String, template::parse::Source, usize)],
    charts: &[(&Chart, Value)],
    release: &Value,
    caps: &Value,
) -> Result<Vec<(String, String)>, RenderError> {
    let mut rendered: Vec<(String, String)> = Vec::new();
    for (name, _, idx) in all {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') || name.ends_with("/templates/NOTES.txt") {
            continue;
        }
        let (c, vals) = &charts[*idx];
        if c.is_library {
            continue;
        }
        let dot = top_values(c, vals, release, caps, name);
        let out = Executor::run(set.clone(), name, dot).map_err(|e| {
            let message = if e.user_failure {
                // Helm reports fail/required as "execution error at (file:line:col): msg".
                let cause = e
                    .message
                    .rsplit("error calling ")
                    .next()
                    .unwrap_or(&e.message);
                let cause = cause.split_once(": ").map(|(_, m)| m).unwrap_or(cause);
                format!(
                    "execution error at ({}:{}:{}): {}",
                    e.file,
                    e.line,
                    e.column.unwrap_or(0),
                    cause
                )
            } else {
                e.message.clone()
            };
            RenderError {
                file: e.file.clone(),
                line: Some(e.line),
                column: e.column,
                message,
            }
        })?;
        let out = if out.contains("<no value>") {
            out.replace("<no value>", "")
        } else {
            out
        };
        rendered.push((name.clone(), out));
    }
    Ok(rendered)
}

/// crds/ files, the chart's own first, then its enabled subcharts' (helm's CRDObjects).
fn crd_files(c: &Chart, enabled: &[(&Chart, Value)], out: &mut Vec<Manifest>) {
    for (path, data) in &c.crds {
        out.push(Manifest {
            source: format!("{}/{}", c.full_path, path),
            content: load::text_of(data).into_owned(),
        });
    }
    for sub in &c.subcharts {
        if enabled.iter().any(|(e, _)| e.full_path == sub.full_path) {
            crd_files(sub, enabled, out);
        }
    }
}

fn check_tree(c: &Chart) -> Result<(), RenderError> {
    chart::check_dependencies(c)?;
    c.subcharts.iter().try_for_each(check_tree)
}

fn collect_charts<'a>(c: &'a Chart, values: &Value, out: &mut Vec<(&'a Chart, Value)>) {
    for sub in &c.subcharts {
        let sub_values = values
            .map_get(&sub.name)
            .unwrap_or_else(|| Value::new_map(BTreeMap::new()));
        collect_charts(sub, &sub_values, out);
    }
    out.push((c, values.clone()));
}

fn struct_value(type_name: &str, fields: Vec<(&str, Value)>, display: String) -> Value {
    Value::Object(Rc::new(Object::Struct {
        type_name: type_name.to_string(),
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        display,
    }))
}

fn capabilities(options: &RenderOptions) -> Result<Value, RenderError> {
    let kv = options
        .kube_version
        .clone()
        .unwrap_or_else(|| DEFAULT_KUBE_VERSION.to_string());
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
    let kube = struct_value(
        "*chartutil.KubeVersion",
        vec![
            ("Version", Value::str(kv.clone())),
            ("Major", Value::str(major)),
            ("Minor", Value::str(minor)),
            ("GitVersion", Value::str(kv.clone())),
            ("String", Value::str(kv.clone())),
        ],
        kv,
    );
    let mut api: Vec<String> = DEFAULT_API_VERSIONS.iter().map(|s| s.to_string()).collect();
    api.extend(options.api_versions.iter().cloned());
    let helm = struct_value(
        "chartutil.HelmVersion",
        vec![
            ("Version", Value::str("v3.22.0")),
            ("GitCommit", Value::str("")),
            ("GitTreeState", Value::str("clean")),
            ("GoVersion", Value::str("go1.26.8")),
        ],
        "{v3.22.0  clean go1.26.8}".into(),
    );
    Ok(struct_value(
        "*chartutil.Capabilities",
        vec![
            ("KubeVersion", kube),
            (
                "APIVersions",
                Value::Object(Rc::new(Object::VersionSet(api))),
            ),
            ("HelmVersion", helm),
        ],
        "&{...}".into(),
    ))
}

fn release_value(o: &RenderOptions) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Name".into(), Value::str(o.release_name.clone()));
    m.insert("Namespace".into(), Value::str(o.namespace.clone()));
    m.insert("Revision".into(), Value::Int(o.revision));
    m.insert("IsInstall".into(), Value::Bool(o.is_install));
    m.insert("IsUpgrade".into(), Value::Bool(!o.is_install));
    m.insert("Service".into(), Value::str("Helm"));
    Value::new_map(m)
}

fn chart_value(c: &Chart, is_root: bool) -> Value {
    let y = |k: &str| {
        c.metadata
            .get(k)
            .map(Value::from_yaml)
            .unwrap_or(Value::Nil)
    };
    let list_or_empty = |k: &str| match y(k) {
        Value::Nil => Value::list(vec![]),
        v => v,
    };
    let annotations = match y("annotations") {
        Value::Nil => Value::new_map(BTreeMap::new()),
        v => v,
    };
    let deprecated = matches!(y("deprecated"), Value::Bool(true));
    let fields = vec![
        ("Name", Value::str(c.name.clone())),
        ("Home", Value::str(c.meta("home"))),
        ("Sources", list_or_empty("sources")),
        ("Version", Value::str(c.version())),
        ("Description", Value::str(c.meta("description"))),
        ("Keywords", list_or_empty("keywords")),
        ("Maintainers", list_or_empty("maintainers")),
        ("Icon", Value::str(c.meta("icon"))),
        ("APIVersion", Value::str(c.meta("apiVersion"))),
        ("Condition", Value::str(c.meta("condition"))),
        ("Tags", Value::str(c.meta("tags"))),
        ("AppVersion", Value::str(c.app_version())),
        ("Deprecated", Value::Bool(deprecated)),
        ("Annotations", annotations),
        ("KubeVersion", Value::str(c.meta("kubeVersion"))),
        ("Dependencies", list_or_empty("dependencies")),
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
    struct_value("struct { chart.Metadata; IsRoot bool }", fields, display)
}

fn top_values(
    c: &Chart,
    vals: &Value,
    release: &Value,
    caps: &Value,
    template_name: &str,
) -> Value {
    let is_root = !c.full_path.contains('/');
    let mut m = BTreeMap::new();
    m.insert("Values".into(), vals.clone());
    m.insert("Release".into(), release.clone());
    m.insert("Chart".into(), chart_value(c, is_root));
    m.insert("Capabilities".into(), caps.clone());
    m.insert(
        "Files".into(),
        Value::Object(Rc::new(Object::Files(c.files.clone()))),
    );
    let mut t = BTreeMap::new();
    t.insert("Name".into(), Value::str(template_name));
    t.insert(
        "BasePath".into(),
        Value::str(format!("{}/templates", c.full_path)),
    );
    m.insert("Template".into(), Value::new_map(t));
    Value::new_map(m)
}

/// Head of a document: its kind and hook annotations.
struct DocHead {
    kind: String,
    hook: bool,
    is_test: bool,
}

/// Parses a document's head the way helm does (its YAML must parse, and be a map).
fn doc_head(content: &str) -> Result<DocHead, String> {
    let parsed = yaml11::parse_first(content)
        .map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))?;
    if !matches!(parsed, Value::Map(_) | Value::Nil) {
        return Err(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type releaseutil.SimpleHead",
            match parsed {
                Value::List(_) => "array",
                Value::String(_) => "string",
                Value::Bool(_) => "bool",
                _ => "number",
            }
        ));
    }
    let get = |path: &[&str]| -> Option<Value> {
        let mut cur = parsed.clone();
        for p in path {
            cur = cur.map_get(p)?;
        }
        Some(cur)
    };
    let as_string = |v: Option<Value>| match v {
        Some(Value::String(s)) => s,
        Some(Value::Nil) | None => String::new(),
        Some(other) => other.to_go_string(),
    };
    let hook = as_string(get(&["metadata", "annotations", "helm.sh/hook"]));
    Ok(DocHead {
        kind: as_string(get(&["kind"])),
        hook: get(&["metadata", "annotations", "helm.sh/hook"]).is_some(),
        is_test: hook
            .split(',')
            .any(|h| matches!(h.trim(), "test" | "test-success" | "test-failure")),
    })
}

/// Splits rendered files into documents and orders them as `helm template` prints.
fn sort_manifests(files: Vec<(String, String)>) -> Result<(Vec<Manifest>, Vec<Hook>), RenderError> {
    // Helm splits on "---" at the start of the text or of a line (its separator
    // also swallows the whitespace around it) and trims each document.
    let split = |t: &'_ str| -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = t;
        if let Some(r) = rest.strip_prefix("---") {
            rest = r;
        }
        while let Some(i) = rest.find("\n---") {
            out.push(rest[..i].to_string());
            rest = &rest[i + 4..];
        }
        out.push(rest.to_string());
        out
    };
    let mut generic: Vec<(DocHead, Manifest)> = Vec::new();
    let mut hooks: Vec<(DocHead, Manifest)> = Vec::new();
    for (source, text) in files {
        let trimmed = text.trim();
        for d in split(trimmed) {
            let d = d.trim();
            if d.is_empty() {
                continue;
            }
            let head = doc_head(d).map_err(|e| {
                RenderError::plain(&source, format!("YAML parse error on {source}: {e}"))
            })?;
            let m = Manifest {
                source: source.clone(),
                content: d.to_string(),
            };
            if head.hook {
                hooks.push((head, m));
            } else {
                generic.push((head, m));
            }
        }
    }
    let rank = |k: &str| INSTALL_ORDER.iter().position(|x| *x == k);
    let by_kind = |a: &DocHead, b: &DocHead| match (rank(&a.kind), rank(&b.kind)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.kind.cmp(&b.kind),
    };
    generic.sort_by(|a, b| by_kind(&a.0, &b.0));
    // `helm template` prints hooks in kind order only (weights order execution).
    hooks.sort_by(|a, b| by_kind(&a.0, &b.0));
    Ok((
        generic.into_iter().map(|(_, m)| m).collect(),
        hooks
            .into_iter()
            .map(|(h, m)| Hook {
                manifest: m,
                is_test: h.is_test,
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod robustness_tests;
