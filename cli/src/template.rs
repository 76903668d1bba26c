//! `berth template`: render a chart like `helm template`, same stdout, errors on stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use berth_chart::strvals::{self, SetError, SetKind};
use berth_chart::{ChartFiles, RenderOptions, Value};

/// `berth template` arguments (boxed: the command enum stays small).
#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    #[command(flatten)]
    pub flags: Box<TemplateFlags>,
}

impl std::ops::Deref for TemplateArgs {
    type Target = TemplateFlags;
    fn deref(&self) -> &TemplateFlags {
        &self.flags
    }
}

/// helm template's flags that berth understands.
#[derive(Debug, clap::Args)]
pub struct TemplateFlags {
    /// `[NAME] CHART`: release name (optional) and chart directory or .tgz.
    #[arg(num_args = 1..=2, value_name = "[NAME] CHART")]
    pub args: Vec<String>,
    /// Values files, merged in order (later wins).
    #[arg(
        short = 'f',
        long = "values",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub values: Vec<PathBuf>,
    /// key=value pairs (typed: true/false/null/integers).
    #[arg(long = "set", value_name = "KEY=VAL")]
    pub set: Vec<String>,
    /// key=value pairs kept as strings.
    #[arg(long = "set-string", value_name = "KEY=VAL")]
    pub set_string: Vec<String>,
    /// key=JSON pairs.
    #[arg(long = "set-json", value_name = "KEY=JSON")]
    pub set_json: Vec<String>,
    /// key=path pairs: the value is the file's contents.
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// key=value, the value taken literally (no commas or dots parsed).
    #[arg(long = "set-literal", value_name = "KEY=VAL")]
    pub set_literal: Vec<String>,
    /// Namespace for `.Release.Namespace`.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Kubernetes version for `.Capabilities.KubeVersion`.
    #[arg(long)]
    pub kube_version: Option<String>,
    /// Extra API versions for `.Capabilities.APIVersions`.
    #[arg(short = 'a', long = "api-versions", value_delimiter = ',')]
    pub api_versions: Vec<String>,
    /// Also print the chart's crds/ files.
    #[arg(long)]
    pub include_crds: bool,
    /// Do not print crds/ files even with --include-crds.
    #[arg(long)]
    pub skip_crds: bool,
    /// Only print manifests rendered from these templates.
    #[arg(short = 's', long = "show-only")]
    pub show_only: Vec<String>,
    /// Do not print hooks.
    #[arg(long)]
    pub no_hooks: bool,
    /// Do not print test hooks.
    #[arg(long)]
    pub skip_tests: bool,
    /// Set `.Release.IsUpgrade` instead of `.Release.IsInstall`.
    #[arg(long)]
    pub is_upgrade: bool,
    /// Release name template (only literal names are supported).
    #[arg(long)]
    pub name_template: Option<String>,
    /// Generate a release name (helm: random; berth uses "release-name").
    #[arg(short = 'g', long)]
    pub generate_name: bool,
    /// Accepted for compatibility (helm: release name in --output-dir paths).
    #[arg(long)]
    pub release_name: bool,
    /// Do not validate values against values.schema.json.
    #[arg(long)]
    pub skip_schema_validation: bool,
    /// Accepted and ignored, as by `helm template` (release metadata only).
    #[arg(long)]
    pub description: Option<String>,
    /// Render as this Helm major renders where Helm 3 and 4 differ (3 or 4;
    /// docs/helm-compatibility.md lists the differences).
    #[arg(long, value_name = "3|4", default_value_t = berth_chart::HelmCompat::default())]
    pub helm_compat: berth_chart::HelmCompat,
    #[command(flatten)]
    pub render_limits: RenderLimitArgs,
    /// Accepted and ignored (`helm template` is always a client-side dry run).
    #[arg(long, num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
}

/// How much a chart's templates may do (the agent's `render_limits`).
#[derive(Debug, Clone, clap::Args)]
pub struct RenderLimitArgs {
    /// Stop templates that run longer than this (e.g. 60s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub render_timeout: std::time::Duration,
    /// Stop templates that produce more text than this many bytes in all.
    #[arg(long, value_name = "BYTES", default_value_t = berth_chart::RenderLimits::default().max_bytes)]
    pub render_max_bytes: u64,
    /// Stop templates nested deeper than this (template, include, tpl).
    #[arg(long, value_name = "N", default_value_t = berth_chart::RenderLimits::default().max_depth as u64,
          value_parser = clap::value_parser!(u64).range(1..=berth_chart::RenderLimits::MAX_DEPTH_ALLOWED as u64))]
    pub render_max_depth: u64,
}

impl RenderLimitArgs {
    pub fn limits(&self) -> berth_chart::RenderLimits {
        berth_chart::RenderLimits {
            timeout: self.render_timeout,
            max_bytes: self.render_max_bytes,
            // Bounded by the parser above.
            max_depth: usize::try_from(self.render_max_depth).unwrap_or(usize::MAX),
        }
    }
}

#[derive(Debug, clap::Parser)]
#[command(name = "berth template")]
struct Standalone {
    #[command(flatten)]
    args: TemplateArgs,
}

/// Parses `berth template` arguments (without the program name), e.g. for tests.
pub fn parse_args<I, S>(args: I) -> Result<TemplateArgs>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser as _;
    let argv = std::iter::once(std::ffi::OsString::from("berth-template"))
        .chain(args.into_iter().map(Into::into));
    Ok(Standalone::try_parse_from(argv)?.args)
}

/// Runs `berth template`: the documents on stdout, an error on stderr (in
/// helm's words) with exit code 1.
pub fn run(args: &TemplateArgs) -> Result<i32> {
    match template(args) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes())?;
            stdout.flush()?;
            Ok(0)
        }
        Err(e) => {
            eprintln!("Error: {e:#}");
            Ok(1)
        }
    }
}

/// Renders to the text `helm template` prints.
pub fn template(args: &TemplateArgs) -> Result<String> {
    let (name, chart_path) = match args.args.as_slice() {
        [chart] => (None, chart),
        [name, chart] => (Some(name.clone()), chart),
        _ => bail!("\"berth template\" requires at least 1 argument"),
    };
    let release_name = match (name, &args.name_template) {
        (Some(n), _) => n,
        (None, Some(t)) => t.clone(),
        _ => "release-name".to_string(),
    };
    let chart = ChartFiles::from_path(Path::new(chart_path))?;
    let values = user_values(args)?;
    let options = RenderOptions {
        release_name,
        namespace: args.namespace.clone(),
        revision: 1,
        is_install: !args.is_upgrade,
        kube_version: args.kube_version.clone(),
        api_versions: args.api_versions.clone(),
        skip_schema_validation: args.skip_schema_validation,
        helm: args.helm_compat,
        limits: args.render_limits.limits(),
    };
    let out = berth_chart::render(&chart, &values, &options)?;
    // Assembled as helm assembles it: the release manifest (CRDs with
    // --include-crds, even with --skip-crds, which only matters when
    // installing; then the manifests), trimmed, then the hooks.
    // One buffer, sized first: a chart's output can be megabytes of CRDs.
    let crds = if args.include_crds {
        &out.crds[..]
    } else {
        &[]
    };
    let hooks: Vec<&berth_chart::Manifest> = if args.no_hooks {
        vec![]
    } else {
        out.hooks
            .iter()
            .filter(|h| !(args.skip_tests && h.is_test))
            .map(|h| &h.manifest)
            .collect()
    };
    let release: Vec<&berth_chart::Manifest> = crds.iter().chain(&out.manifests).collect();
    let size = release
        .iter()
        .chain(&hooks)
        .map(|m| m.source.len() + m.content.len() + 16)
        .sum();
    let mut text = String::with_capacity(size);
    let document = |text: &mut String, m: &berth_chart::Manifest| {
        text.push_str("---\n# Source: ");
        text.push_str(&m.source);
        text.push('\n');
        text.push_str(&m.content);
        text.push('\n');
    };
    release.iter().for_each(|m| document(&mut text, m));
    text.truncate(text.trim_end().len());
    let leading = text.len() - text.trim_start().len();
    text.drain(..leading);
    text.push('\n');
    hooks.iter().for_each(|m| document(&mut text, m));
    if args.show_only.is_empty() {
        return Ok(text);
    }
    // --show-only: helm splits that text again and prints, pattern by
    // pattern, the documents whose template path (without the chart's name)
    // matches the pattern as a file glob.
    let documents = berth_chart::manifests::split_documents(&text, args.helm_compat);
    let mut shown = String::new();
    for pattern in &args.show_only {
        let pattern = pattern.replace('\\', "/");
        let mut missing = true;
        for doc in &documents {
            let Some(path) = doc
                .lines()
                .find_map(|l| l.split_once("# Source: ").map(|(_, s)| s))
                .and_then(|source| source.split_once('/'))
                .map(|(_, path)| path)
            else {
                continue;
            };
            if file_glob_matches(&pattern, path) {
                shown.push_str(&format!("---\n{doc}\n"));
                missing = false;
            }
        }
        if missing {
            bail!("could not find template {pattern} in chart");
        }
    }
    Ok(shown)
}

/// Go's filepath.Match on '/'-separated paths: `*` and `?` stop at a
/// separator, `[...]` (negated by `^`) and `\\` escapes as Go reads them; a
/// malformed pattern matches nothing.
fn file_glob_matches(pattern: &str, path: &str) -> bool {
    let mut re = String::from("^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => match chars.next() {
                Some(e) => re.push_str(&regex_lite::escape(&e.to_string())),
                None => return false,
            },
            '[' => {
                re.push('[');
                if chars.clone().next() == Some('^') {
                    chars.next();
                    re.push('^');
                }
                let mut closed = false;
                for k in chars.by_ref() {
                    if k == ']' {
                        closed = true;
                        break;
                    }
                    if k == '\\' || k == '[' || k == '&' || k == '~' {
                        re.push('\\');
                    }
                    re.push(k);
                }
                if !closed {
                    return false;
                }
                re.push(']');
            }
            other => re.push_str(&regex_lite::escape(&other.to_string())),
        }
    }
    re.push('$');
    regex_lite::Regex::new(&re).is_ok_and(|r| r.is_match(path))
}

/// Values from `-f` files then `--set-json`, `--set`, `--set-string`,
/// `--set-file`, `--set-literal`, in helm's order.
pub fn user_values(args: &TemplateArgs) -> Result<Value> {
    let base = Value::new_map(BTreeMap::new());
    for f in &args.values {
        let text = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s
        } else {
            std::fs::read_to_string(f).with_context(|| format!("open {}", f.display()))?
        };
        let parsed = berth_chart::values::parse_values_as(
            &f.display().to_string(),
            text.as_bytes(),
            args.helm_compat,
        )
        .map_err(|e| anyhow::anyhow!("failed to parse {}: {}", f.display(), e.message))?;
        strvals::merge_maps(&base, &parsed);
    }
    let apply = |list: &[String], kind: SetKind, flag: &str| -> Result<()> {
        for s in list {
            strvals::parse_into(s, &base, kind)
                .map_err(|e| anyhow::anyhow!("failed parsing {flag} data: {e}"))?;
        }
        Ok(())
    };
    apply(&args.set_json, SetKind::Json, "--set-json")?;
    apply(&args.set, SetKind::Typed, "--set")?;
    apply(&args.set_string, SetKind::String, "--set-string")?;
    for s in &args.set_file {
        let reader = |p: &str| -> Result<Value, SetError> {
            std::fs::read_to_string(p)
                .map(Value::str)
                .map_err(|e| SetError(format!("open {p}: {e}")))
        };
        strvals::parse_file_into(s, &base, &reader)
            .map_err(|e| anyhow::anyhow!("failed parsing --set-file data: {e}"))?;
    }
    apply(&args.set_literal, SetKind::Literal, "--set-literal")?;
    Ok(base)
}
