//! Helm charts rendered in Rust, as `helm template` renders them: the same
//! documents, in the same order, with the same errors. No Kubernetes, git or
//! network: a chart's files and values in, documents out.
//!
//! ```no_run
//! use std::path::Path;
//! use berth_chart::{ChartFiles, RenderOptions, render, values};
//!
//! let chart = ChartFiles::from_path(Path::new("charts/podinfo"))?;
//! // Values as `-f prod.yaml --set replicaCount=3` would give them.
//! let user = values::parse_values("prod.yaml", &std::fs::read("prod.yaml")?)?;
//! berth_chart::strvals::parse_into("replicaCount=3", &user, berth_chart::strvals::SetKind::Typed)?;
//! let options = RenderOptions {
//!     release_name: "web".into(),
//!     namespace: "apps".into(),
//!     ..RenderOptions::default()
//! };
//! let out = render(&chart, &user, &options)?;
//! for doc in out.manifests.iter().chain(out.hooks.iter().map(|h| &h.manifest)) {
//!     println!("---\n# Source: {}\n{}", doc.source, doc.content);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The crate, by stage:
//!
//! | module | what it owns |
//! |---|---|
//! | [`load`] | a chart's files from a directory or a `.tgz` ([`ChartFiles`]) |
//! | [`ignore`] | `.helmignore` rules |
//! | [`chart`] | the chart tree: metadata, templates, files, subcharts |
//! | [`dependencies`] | conditions, tags, aliases and `import-values` |
//! | [`values`] | values files, the one merge, coalescing over chart defaults |
//! | [`strvals`] | `--set`, `--set-string`, `--set-json`, `--set-file`, `--set-literal` |
//! | [`yaml11`] | reading YAML as Helm does (YAML 1.1 scalars, through JSON) |
//! | [`schema`] | `values.schema.json` validation with Helm's report |
//! | [`objects`] | `.Release`, `.Chart`, `.Capabilities`, `.Files`, `.Template` |
//! | [`funcs`] | Helm's and sprig's functions, one file per domain, one table |
//! | [`engine`] | the render: templates parsed into one set and executed |
//! | [`manifests`] | documents split and ordered by kind; hooks apart |
//!
//! Templates run on [`gotemplate`], a Go `text/template` implementation.

pub mod chart;
pub mod dependencies;
mod engine;
pub mod funcs;
pub mod go_regex;
pub mod ignore;
pub mod load;
pub mod manifests;
pub mod objects;
pub mod schema;
pub mod strvals;
pub mod values;
pub mod yaml11;
pub mod yaml_emit;

use thiserror::Error;

pub use gotemplate::Value;
pub use load::ChartFiles;
pub use objects::DEFAULT_KUBE_VERSION;

/// The Helm major a render follows where Helm 3 and Helm 4 differ (install
/// order of webhook configurations, the default Kubernetes version, the
/// functions Helm 4 adds, how documents are split; docs/helm-compatibility.md
/// lists every difference).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HelmCompat {
    /// As helm v3 renders.
    V3,
    /// As helm v4 renders: the current major, and the default.
    #[default]
    V4,
}

impl HelmCompat {
    /// The major version number: 3 or 4.
    pub fn major(self) -> u8 {
        match self {
            HelmCompat::V3 => 3,
            HelmCompat::V4 => 4,
        }
    }

    /// The name of Helm's named map type for values (the top-level object,
    /// `.Values`, `.Template`), which Go prints in `typeOf` and errors.
    pub fn values_type(self) -> &'static str {
        match self {
            HelmCompat::V3 => "chartutil.Values",
            HelmCompat::V4 => "common.Values",
        }
    }
}

impl std::fmt::Display for HelmCompat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.major())
    }
}

impl std::str::FromStr for HelmCompat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().trim_start_matches(['v', 'V']) {
            "3" => Ok(HelmCompat::V3),
            "4" => Ok(HelmCompat::V4),
            _ => Err(format!(
                "unknown Helm version {s:?}: berth renders as Helm 3 or Helm 4 (3 or 4)"
            )),
        }
    }
}

// A release file and the agent's configuration write `helmCompat: 3` (a
// number) or `"v3"` (a string). A visitor, so that serde_yaml can say where
// a wrong one is.
impl<'de> serde::Deserialize<'de> for HelmCompat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Major;
        impl serde::de::Visitor<'_> for Major {
            type Value = HelmCompat;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the Helm major to render as: 3 or 4")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<HelmCompat, E> {
                self.visit_str(&n.to_string())
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<HelmCompat, E> {
                self.visit_str(&n.to_string())
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<HelmCompat, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Major)
    }
}

impl serde::Serialize for HelmCompat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.major())
    }
}

/// How to render: the release and the cluster the chart is rendered for.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub release_name: String,
    pub namespace: String,
    pub revision: i64,
    /// `.Release.IsInstall` (otherwise `.Release.IsUpgrade`).
    pub is_install: bool,
    /// e.g. "v1.30.0"; `None` means helm's default ([`DEFAULT_KUBE_VERSION`]).
    pub kube_version: Option<String>,
    /// Extra API versions for `.Capabilities.APIVersions`.
    pub api_versions: Vec<String>,
    /// Skip values.schema.json validation (`--skip-schema-validation`).
    pub skip_schema_validation: bool,
    /// Which Helm major to follow where they differ.
    pub helm: HelmCompat,
    /// How much the templates may do (Helm has no such bound).
    pub limits: RenderLimits,
}

/// Bounds on one render's template execution, so that a chart that loops,
/// recurses or builds huge strings fails with an error naming the template
/// instead of holding a thread and memory. The defaults leave room many
/// times over for the largest charts berth has met (docs/helm-compatibility.md, "Render limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Wall-clock time for executing all of a chart's templates.
    pub timeout: std::time::Duration,
    /// Bytes of text the templates may produce in all: their output and the
    /// strings and lists functions return along the way.
    pub max_bytes: u64,
    /// Nesting of `template`/`include`/`tpl` calls (at most
    /// [`RenderLimits::MAX_DEPTH_ALLOWED`]).
    pub max_depth: usize,
}

impl RenderLimits {
    /// The deepest nesting that may be configured: each level takes stack.
    pub const MAX_DEPTH_ALLOWED: usize = gotemplate::exec::MAX_DEPTH_ALLOWED;

    /// As the template executor takes them.
    pub(crate) fn exec_limits(&self) -> gotemplate::ExecLimits {
        gotemplate::ExecLimits {
            timeout: Some(self.timeout),
            max_bytes: self.max_bytes,
            max_depth: self.max_depth,
        }
    }
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            timeout: std::time::Duration::from_secs(60),
            max_bytes: 256 << 20,
            max_depth: gotemplate::exec::DEFAULT_MAX_DEPTH,
        }
    }
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
            helm: HelmCompat::default(),
            limits: RenderLimits::default(),
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

/// A manifest annotated with `helm.sh/hook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub manifest: Manifest,
    /// A `test` (or legacy `test-success`/`test-failure`) hook.
    pub is_test: bool,
}

/// Everything `helm template` can print, in its order.
#[derive(Debug, Clone, Default)]
pub struct RenderOutput {
    /// crds/ files of every enabled chart (printed only with `--include-crds`).
    pub crds: Vec<Manifest>,
    /// Ordinary manifests, in install order.
    pub manifests: Vec<Manifest>,
    /// Hook manifests, in the order `helm template` prints them.
    pub hooks: Vec<Hook>,
}

/// A rendering failure in Helm's words, with its location as fields.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct RenderError {
    /// The template (e.g. "demo/templates/deployment.yaml") or chart file at fault.
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

/// Renders `chart` with the user's `values` (a map; as `-f` and `--set`
/// give them) like `helm template`.
pub fn render(
    chart: &ChartFiles,
    values: &Value,
    options: &RenderOptions,
) -> Result<RenderOutput, RenderError> {
    engine::render(chart, values, options)
}

/// What the template engine makes of `chart`, before documents are split and
/// ordered: each executed template's text by name ("<chart>/templates/x.yaml",
/// NOTES.txt included), as Helm's `engine.Render` returns it. The
/// differential tests compare this with Helm's own engine.
pub fn render_templates(
    chart: &ChartFiles,
    values: &Value,
    options: &RenderOptions,
) -> Result<std::collections::BTreeMap<String, String>, RenderError> {
    Ok(engine::render_files(chart, values, options)?
        .0
        .into_iter()
        .collect())
}

/// The chart's own default values (its values.yaml as read).
pub fn default_values(chart: &ChartFiles) -> Result<Value, RenderError> {
    Ok(chart::load(&chart.files, "", None, HelmCompat::default())?.values)
}

#[cfg(test)]
mod render_tests;

#[cfg(test)]
mod robustness_tests;
