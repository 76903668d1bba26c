//! The release file (`deploy/release.yaml`): what an application deploys, and
//! the values it gets in each cluster context.
//!
//! Values are layered: the chart's `values.yaml` (merged by the renderer), the
//! release's base `values`, then overrides per env, cloud, region and cluster
//! (most specific last), then per-cluster replicas, then the context itself as
//! `global.*`. [`explain`] says which layer set each value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use berth_chart::values::{self, Merge};
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::context::ClusterContext;

/// Where releases are looked for when an application does not say.
pub const DEFAULT_RELEASE_FILE: &str = "deploy/release.yaml";

/// A parsed and validated release file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseFile {
    /// The release name: names the objects' release label and the inventory.
    pub name: String,
    /// The namespace namespaced objects go to (created if missing).
    pub namespace: String,
    /// The chart directory, relative to the release file's directory.
    #[serde(default = "default_chart_path")]
    pub chart: String,
    /// Base values for every context.
    #[serde(default)]
    pub values: Mapping,
    #[serde(default)]
    pub overrides: Overrides,
    #[serde(default)]
    pub replicas: Option<Replicas>,
    /// Contexts this release deploys to; empty means every context.
    #[serde(default)]
    pub targets: Vec<TargetSelector>,
    /// Secrets the application needs (read from Vault by the secrets stage).
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// What the release may touch besides namespaced objects in its own namespace.
    #[serde(default)]
    pub scope: Scope,
    /// Whether objects that leave the chart are deleted (default true).
    #[serde(default = "yes")]
    pub prune: bool,
    /// Whether existing objects that berth did not create may be taken over (default false).
    #[serde(default)]
    pub adopt_existing: bool,
    /// How long the release may take to become healthy after a sync changed
    /// it, e.g. `90s` or `10m` (default: the agent's `health_timeout`).
    #[serde(default)]
    pub health_timeout: Option<String>,
    /// When a new commit ends degraded or its pre-hook fails, re-apply the
    /// last commit that was healthy on this cluster (default false).
    #[serde(default)]
    pub rollback: bool,
    /// Render as Helm 3 or Helm 4 renders where they differ (default: the
    /// agent's `helm_compat`, itself 4 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_compat: Option<berth_chart::HelmCompat>,
    /// A ServiceAccount of the release's namespace whose permissions the
    /// release's writes are limited to: berth impersonates it to plan,
    /// apply and prune (default: berth's own identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

fn default_chart_path() -> String {
    "chart".to_string()
}

fn yes() -> bool {
    true
}

/// Value overrides keyed by context value, applied env → cloud → region → cluster.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub env: BTreeMap<String, Mapping>,
    #[serde(default)]
    pub cloud: BTreeMap<String, Mapping>,
    #[serde(default)]
    pub region: BTreeMap<String, Mapping>,
    #[serde(default)]
    pub cluster: BTreeMap<String, Mapping>,
}

/// Replica counts per cluster, written to one value path.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Replicas {
    pub default: Option<u32>,
    #[serde(default)]
    pub clusters: BTreeMap<String, u32>,
    /// Dotted value path that receives the count.
    #[serde(default = "default_replicas_path")]
    pub path: String,
}

fn default_replicas_path() -> String {
    "replicaCount".to_string()
}

/// Matches a context when every listed key has the context's value among its values.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetSelector {
    pub env: Option<Vec<String>>,
    pub cloud: Option<Vec<String>>,
    pub region: Option<Vec<String>>,
    pub cluster: Option<Vec<String>>,
}

/// One secret the application needs; becomes one key of the release's Secret.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub name: String,
    /// Field of the Vault entry holding the value (default `value`).
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scope {
    /// Other namespaces the chart may put objects in.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Cluster-scoped kinds the chart may create (e.g. ClusterRole).
    #[serde(default)]
    pub cluster_scoped_kinds: Vec<String>,
}

/// A release file that cannot be used: names the file, the line when known, and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReleaseError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl ReleaseFile {
    /// Parses and validates a release file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ReleaseError> {
        let release: ReleaseFile = serde_yaml::from_str(text).map_err(|e| ReleaseError {
            file: file.to_string(),
            line: e.location().map(|l| l.line()),
            message: strip_location(&e.to_string()),
        })?;
        release.validate(text, file)?;
        Ok(release)
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ReleaseError> {
        let error = |path: &[&str], message: String| ReleaseError {
            file: file.to_string(),
            line: locate(text, path),
            message,
        };
        if !is_dns_label(&self.name) {
            return Err(error(
                &["name"],
                format!(
                    "release name {:?} is not a DNS label (lower-case letters, digits and '-', at most 53 characters)",
                    self.name
                ),
            ));
        }
        if !is_dns_label(&self.namespace) {
            return Err(error(
                &["namespace"],
                format!("namespace {:?} is not a DNS label", self.namespace),
            ));
        }
        if let Some(account) = &self.service_account_name
            && !is_dns_label(account)
        {
            return Err(error(
                &["serviceAccountName"],
                format!("service account name {account:?} is not a DNS label"),
            ));
        }
        if self.chart.trim().is_empty() || self.chart.starts_with('/') {
            return Err(error(
                &["chart"],
                format!(
                    "chart path {:?} must be a path relative to the release file",
                    self.chart
                ),
            ));
        }
        if let Some(replicas) = &self.replicas
            && (replicas.path.is_empty() || replicas.path.split('.').any(str::is_empty))
        {
            return Err(error(
                &["replicas", "path"],
                format!(
                    "replicas path {:?} is not a dotted value path",
                    replicas.path
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        for secret in &self.secrets {
            let valid = !secret.name.is_empty()
                && secret.name.len() <= 253
                && secret
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(error(
                    &["secrets"],
                    format!(
                        "secret name {:?} is not a valid Secret key (letters, digits, '-', '_', '.')",
                        secret.name
                    ),
                ));
            }
            if !seen.insert(secret.name.as_str()) {
                return Err(error(
                    &["secrets"],
                    format!("secret {:?} is listed twice", secret.name),
                ));
            }
        }
        if let Some(timeout) = &self.health_timeout {
            match humantime::parse_duration(timeout) {
                Ok(duration) if duration >= std::time::Duration::from_secs(1) => {}
                Ok(_) => {
                    return Err(error(
                        &["healthTimeout"],
                        format!("healthTimeout {timeout:?} is shorter than 1s"),
                    ));
                }
                Err(e) => {
                    return Err(error(
                        &["healthTimeout"],
                        format!(
                            "healthTimeout {timeout:?} is not a duration ({e}); use e.g. 90s, 5m"
                        ),
                    ));
                }
            }
        }
        for namespace in &self.scope.namespaces {
            if !is_dns_label(namespace) {
                return Err(error(
                    &["scope", "namespaces"],
                    format!("scope namespace {namespace:?} is not a DNS label"),
                ));
            }
        }
        Ok(())
    }

    /// The release's health timeout, when its file sets one (checked valid).
    pub fn health_timeout(&self) -> Option<std::time::Duration> {
        self.health_timeout
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
    }

    /// Whether this release deploys to `context`.
    pub fn targets(&self, context: &ClusterContext) -> bool {
        if self.targets.is_empty() {
            return true;
        }
        let matches = |allowed: &Option<Vec<String>>, actual: &str| {
            allowed
                .as_ref()
                .is_none_or(|values| values.iter().any(|v| v == actual))
        };
        self.targets.iter().any(|t| {
            matches(&t.env, &context.env)
                && matches(&t.cloud, &context.cloud)
                && matches(&t.region, &context.region)
                && matches(&t.cluster, &context.cluster)
        })
    }

    /// The value layers for `context`, least specific first (the chart's own
    /// values.yaml is below all of them and is merged by the renderer).
    pub fn value_layers(&self, context: &ClusterContext) -> Vec<ValueLayer> {
        let mut layers = vec![ValueLayer {
            name: "release values".to_string(),
            values: Value::Mapping(self.values.clone()),
        }];
        for (key, overrides) in [
            ("env", &self.overrides.env),
            ("cloud", &self.overrides.cloud),
            ("region", &self.overrides.region),
            ("cluster", &self.overrides.cluster),
        ] {
            let actual = context.get(key).unwrap_or_default();
            if let Some(values) = overrides.get(actual) {
                layers.push(ValueLayer {
                    name: format!("overrides.{key}.{actual}"),
                    values: Value::Mapping(values.clone()),
                });
            }
        }
        if let Some(replicas) = &self.replicas {
            let (count, origin) = match replicas.clusters.get(&context.cluster) {
                Some(count) => (
                    Some(*count),
                    format!("replicas.clusters.{}", context.cluster),
                ),
                None => (replicas.default, "replicas.default".to_string()),
            };
            if let Some(count) = count {
                layers.push(ValueLayer {
                    name: origin,
                    values: nest(&replicas.path, Value::Number(count.into())),
                });
            }
        }
        let mut global = Mapping::new();
        global.insert("cloud".into(), context.cloud.clone().into());
        global.insert("env".into(), context.env.clone().into());
        global.insert("region".into(), context.region.clone().into());
        global.insert("clusterName".into(), context.cluster.clone().into());
        let mut injected = Mapping::new();
        injected.insert("global".into(), Value::Mapping(global));
        layers.push(ValueLayer {
            name: "context".to_string(),
            values: Value::Mapping(injected),
        });
        layers
    }

    /// The values handed to the renderer for `context`: the layers merged as
    /// helm merges several values files (maps key by key, anything else,
    /// lists included, replaced whole; a null is kept, so the renderer
    /// deletes that key from the chart's defaults).
    pub fn values_for(&self, context: &ClusterContext) -> berth_chart::Value {
        let merged = BTreeMap::new();
        let merged = berth_chart::Value::new_map(merged);
        for layer in self.value_layers(context) {
            if let (berth_chart::Value::Map(into), berth_chart::Value::Map(from)) =
                (&merged, values::from_yaml(&layer.values))
            {
                values::merge(into, &from, Merge::Overlay);
            }
        }
        merged
    }
}

/// One named source of values.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueLayer {
    pub name: String,
    pub values: Value,
}

/// Where one effective value came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueOrigin {
    /// Dotted path, e.g. `image.tag`.
    pub path: String,
    /// The value, or None when a layer deleted it with null.
    pub value: Option<Value>,
    /// The layer that set it last.
    pub layer: String,
}

/// Explains every effective leaf value: which layer set it last. `chart_defaults`
/// is the chart's values.yaml, the lowest layer.
pub fn explain(chart_defaults: &Value, layers: &[ValueLayer]) -> Vec<ValueOrigin> {
    let mut origins: BTreeMap<Vec<String>, (Option<Value>, String)> = BTreeMap::new();
    let mut record = |layer: &str, values: &Value| {
        let mut leaves = Vec::new();
        collect_leaves(&mut Vec::new(), values, &mut leaves);
        for (path, value) in leaves {
            // A leaf replaces whatever lower layers set below it, and a value set
            // below a former leaf (e.g. into an empty map) replaces that leaf.
            origins
                .retain(|existing, _| !(existing.starts_with(&path) || path.starts_with(existing)));
            origins.insert(
                path,
                ((!value.is_null()).then_some(value), layer.to_string()),
            );
        }
    };
    record("chart values.yaml", chart_defaults);
    for layer in layers {
        record(&layer.name, &layer.values);
    }
    origins
        .into_iter()
        .map(|(path, (value, layer))| ValueOrigin {
            path: format_path(&path),
            value,
            layer,
        })
        .collect()
}

/// `a.b` for plain keys, `a["x.y"]` for keys that contain dots.
fn format_path(segments: &[String]) -> String {
    let mut path = String::new();
    for segment in segments {
        if segment.contains('.') || segment.contains('[') {
            path.push_str(&format!("[{segment:?}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
    }
    path
}

fn collect_leaves(prefix: &mut Vec<String>, value: &Value, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            for (key, child) in map {
                let key = match key {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                prefix.push(key);
                collect_leaves(prefix, child, out);
                prefix.pop();
            }
        }
        leaf => {
            if !prefix.is_empty() {
                out.push((prefix.clone(), leaf.clone()));
            }
        }
    }
}

/// Renders an explanation as aligned `path: value  # layer` lines.
pub fn format_explanation(origins: &[ValueOrigin]) -> String {
    let rows: Vec<(String, &str)> = origins
        .iter()
        .map(|o| {
            let value = match &o.value {
                None => "(deleted)".to_string(),
                Some(v) => serde_json::to_string(v).unwrap_or_else(|_| "?".into()),
            };
            (format!("{}: {}", o.path, value), o.layer.as_str())
        })
        .collect();
    let width = rows.iter().map(|(left, _)| left.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(left, layer)| format!("{left:width$}  # {layer}\n"))
        .collect()
}

fn nest(path: &str, leaf: Value) -> Value {
    path.rsplit('.').fold(leaf, |inner, key| {
        let mut map = Mapping::new();
        map.insert(Value::String(key.to_string()), inner);
        Value::Mapping(map)
    })
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 53
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// serde_yaml appends " at line L column C"; the line is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// Finds the 1-based line of a key path such as `["scope", "namespaces"]` by
/// following the keys down the indentation, for errors serde cannot place.
pub fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let mut start = 0;
    let mut min_indent = 0;
    let mut found = None;
    let lines: Vec<&str> = text.lines().collect();
    for key in path {
        let mut hit = None;
        for (index, line) in lines.iter().enumerate().skip(start) {
            let indent = line.len() - line.trim_start().len();
            let trimmed = line.trim_start().trim_start_matches("- ");
            if found.is_some() && indent < min_indent && !line.trim().is_empty() {
                break;
            }
            if indent >= min_indent
                && (trimmed.starts_with(&format!("{key}:"))
                    || trimmed.starts_with(&format!("\"{key}\":")))
            {
                hit = Some((index, indent));
                break;
            }
        }
        let (index, indent) = hit?;
        found = Some(index + 1);
        start = index + 1;
        min_indent = indent + 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = r#"
name: demo
namespace: demo
values:
  image:
    repository: ghcr.io/example/demo
    tag: "1.0"
  config:
    greeting: hello
    colour: blue
overrides:
  env:
    prod:
      config:
        greeting: bonjour
  cloud:
    gcp:
      config:
        colour: green
      service:
        annotations:
          cloud.google.com/neg: "true"
  cluster:
    gke-1:
      config:
        colour: red
replicas:
  default: 2
  clusters:
    gke-1: 5
targets:
  - env: [staging, prod]
"#;

    fn context(env: &str, cloud: &str, cluster: &str) -> ClusterContext {
        ClusterContext {
            cloud: cloud.into(),
            env: env.into(),
            region: "europe-west1".into(),
            cluster: cluster.into(),
        }
    }

    fn get<'a>(values: &'a Value, path: &str) -> &'a Value {
        path.split('.').fold(values, |v, key| &v[key])
    }

    #[test]
    fn most_specific_layer_wins() {
        let release = ReleaseFile::parse(RELEASE, "deploy/release.yaml").unwrap();
        let values = values::to_yaml(&release.values_for(&context("prod", "gcp", "gke-1")));
        assert_eq!(get(&values, "config.greeting"), "bonjour");
        assert_eq!(get(&values, "config.colour"), "red");
        assert_eq!(get(&values, "replicaCount"), 5);
        assert_eq!(get(&values, "global.clusterName"), "gke-1");
        assert_eq!(get(&values, "image.tag"), "1.0");

        let values = values::to_yaml(&release.values_for(&context("staging", "gcp", "gke-2")));
        assert_eq!(get(&values, "config.greeting"), "hello");
        assert_eq!(get(&values, "config.colour"), "green");
        assert_eq!(get(&values, "replicaCount"), 2);
        assert_eq!(get(&values, "global.env"), "staging");
    }

    #[test]
    fn targets_select_contexts() {
        let release = ReleaseFile::parse(RELEASE, "deploy/release.yaml").unwrap();
        assert!(release.targets(&context("prod", "gcp", "a")));
        assert!(!release.targets(&context("dev", "gcp", "a")));
    }

    #[test]
    fn explain_names_the_layer_that_set_each_value() {
        let release = ReleaseFile::parse(RELEASE, "deploy/release.yaml").unwrap();
        let chart: Value = serde_yaml::from_str(
            "config:\n  greeting: hi\n  size: 3\nservice:\n  port: 80\n  annotations: {}\n",
        )
        .unwrap();
        let origins = explain(
            &chart,
            &release.value_layers(&context("prod", "gcp", "gke-1")),
        );
        let layer_of = |path: &str| {
            origins
                .iter()
                .find(|o| o.path == path)
                .map(|o| o.layer.clone())
                .unwrap_or_else(|| panic!("no origin for {path}"))
        };
        assert_eq!(layer_of("service.port"), "chart values.yaml");
        assert_eq!(layer_of("config.size"), "chart values.yaml");
        assert_eq!(layer_of("config.greeting"), "overrides.env.prod");
        assert_eq!(layer_of("config.colour"), "overrides.cluster.gke-1");
        assert_eq!(layer_of("replicaCount"), "replicas.clusters.gke-1");
        assert_eq!(layer_of("global.cloud"), "context");
        assert_eq!(
            layer_of("service.annotations[\"cloud.google.com/neg\"]"),
            "overrides.cloud.gcp"
        );
        assert!(
            origins.iter().all(|o| o.path != "service.annotations"),
            "an empty map filled by a higher layer is not a leaf any more"
        );
        let text = format_explanation(&origins);
        assert!(text.contains("config.greeting: \"bonjour\""), "{text}");
    }

    #[test]
    fn null_is_kept_so_the_renderer_deletes_the_default() {
        let text = "name: demo\nnamespace: demo\nvalues:\n  a: {b: 1, c: 2}\noverrides:\n  env:\n    prod:\n      a: {b: null}\n";
        let release = ReleaseFile::parse(text, "deploy/release.yaml").unwrap();
        let values = values::to_yaml(&release.values_for(&context("prod", "gcp", "gke-1")));
        let a = values["a"].as_mapping().unwrap();
        assert!(a.contains_key("b") && a["b"].is_null(), "{values:?}");
        assert_eq!(get(&values, "a.c"), 2);
    }

    #[test]
    fn unknown_context_key_in_overrides_names_file_and_line() {
        let text = "name: demo\nnamespace: demo\noverrides:\n  zone:\n    a: {}\n";
        let error = ReleaseFile::parse(text, "deploy/release.yaml").unwrap_err();
        assert_eq!(error.line, Some(4), "{error}");
        assert!(
            error.to_string().starts_with("deploy/release.yaml:4: "),
            "{error}"
        );
        assert!(error.message.contains("unknown field `zone`"), "{error}");
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let text = "name: demo\nnamespace: demo\nvalues:\n  a: [1, 2\n";
        let error = ReleaseFile::parse(text, "deploy/release.yaml").unwrap_err();
        assert!(error.line.is_some(), "{error}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let text = "name: demo\nnamespace: demo\nscope:\n  namespaces:\n    - Bad_NS\n";
        let error = ReleaseFile::parse(text, "r.yaml").unwrap_err();
        assert_eq!(error.line, Some(4), "{error}");
        let text = "name: Demo\nnamespace: demo\n";
        assert_eq!(
            ReleaseFile::parse(text, "r.yaml").unwrap_err().line,
            Some(1)
        );
    }

    #[test]
    fn helm_compat_is_read_as_a_number_or_a_name_and_checked() {
        let parse = |key: &str| {
            ReleaseFile::parse(&format!("name: demo\nnamespace: demo\n{key}"), "r.yaml")
        };
        assert_eq!(parse("").unwrap().helm_compat, None);
        assert_eq!(
            parse("helmCompat: 3\n").unwrap().helm_compat,
            Some(berth_chart::HelmCompat::V3)
        );
        assert_eq!(
            parse("helmCompat: \"v4\"\n").unwrap().helm_compat,
            Some(berth_chart::HelmCompat::V4)
        );
        let error = parse("helmCompat: 2\n").unwrap_err();
        assert!(error.to_string().contains("Helm 3 or Helm 4"), "{error}");
        assert_eq!(error.line, Some(3), "{error}");
    }
}
