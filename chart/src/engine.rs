//! The render proper: load the chart tree, process its dependencies,
//! coalesce values, check them against the schemas, parse every template
//! into one set, execute the renderable ones and order the documents.

use std::collections::BTreeMap;
use std::rc::Rc;

use gotemplate::{Source, TemplateSet, Value};

use crate::chart::{self, Chart};
use crate::funcs::helm::NO_VALUE;
use crate::load::text_of;
use crate::{
    ChartFiles, HelmCompat, Manifest, RenderError, RenderOptions, RenderOutput, dependencies,
    funcs, manifests, objects, schema,
};

/// What Helm takes for notes: every rendered file whose name ends so.
const NOTES: &str = "NOTES.txt";

pub(crate) fn render(
    chart: &ChartFiles,
    user: &Value,
    options: &RenderOptions,
) -> Result<RenderOutput, RenderError> {
    let (mut rendered, crds) = render_files(chart, user, options)?;
    // NOTES.txt files are rendered like every template (a failure fails the
    // render) and then set aside: `helm template` prints no notes.
    rendered.retain(|(name, _)| !name.ends_with(NOTES));
    rendered.sort_by(|a, b| a.0.cmp(&b.0));
    let (manifests, hooks) = manifests::sort_manifests(rendered, options.helm)?;
    Ok(RenderOutput {
        crds,
        manifests,
        hooks,
    })
}

/// Each executed template's text, by template name.
pub(crate) type RenderedFiles = Vec<(String, String)>;

/// The engine's own output, as Helm's engine.Render gives it: each executed
/// template's text by name (NOTES.txt included), and the enabled charts'
/// crds/ files.
pub(crate) fn render_files(
    chart: &ChartFiles,
    user: &Value,
    options: &RenderOptions,
) -> Result<(RenderedFiles, Vec<Manifest>), RenderError> {
    let mut root = chart::load(&chart.files, "", None, options.helm)?;
    if root.is_library {
        return Err(RenderError::plain(
            &root.name,
            "library charts are not installable".to_string(),
        ));
    }
    dependencies::check_tree(&root, options.helm)?;
    dependencies::process(&mut root, user, options.helm);
    let coalesced = chart::coalesce(&root, user, options.helm == HelmCompat::V4);
    let caps = objects::capabilities(options)?;
    if !options.skip_schema_validation {
        schema::check(&root, &coalesced)?;
    }

    // Every enabled chart with its scoped values.
    let mut charts: Vec<(&Chart, Value)> = Vec::new();
    collect_charts(&root, &coalesced, &mut charts);
    // All templates in one set, deepest paths first so that a parent chart's
    // `define` overrides a subchart's (as helm orders them).
    let mut all: Vec<(String, Source, usize)> = Vec::new();
    for (idx, (c, _)) in charts.iter().enumerate() {
        for (rel, text) in &c.templates {
            all.push((format!("{}/{}", c.full_path, rel), text.clone(), idx));
        }
    }
    all.sort_by(|a, b| {
        let (da, db) = (a.0.matches('/').count(), b.0.matches('/').count());
        db.cmp(&da).then_with(|| b.0.cmp(&a.0))
    });
    let mut set = TemplateSet::new(funcs::table(options.helm));
    set.set_limits(options.limits.exec_limits());
    for (name, text, _) in &all {
        set.add(name, text.clone()).map_err(|e| RenderError {
            file: e.name.clone(),
            line: Some(e.line),
            column: None,
            // Helm keeps only the last ": "-separated part of Go's message.
            message: format!(
                "parse error at ({}:{}): {}",
                e.name,
                e.line,
                e.message.rsplit(": ").next().unwrap_or(&e.message)
            ),
        })?;
    }
    let release = objects::release_value(options);
    let rendered = execute(Rc::new(set), &all, &charts, &release, &caps, options.helm)?;
    let mut crds = Vec::new();
    crd_files(&root, &charts, &mut crds);
    Ok((rendered, crds))
}

/// Executes every renderable template of the set: (template name, output).
fn execute(
    set: Rc<TemplateSet>,
    all: &[(String, Source, usize)],
    charts: &[(&Chart, Value)],
    release: &Value,
    caps: &Value,
    helm: HelmCompat,
) -> Result<Vec<(String, String)>, RenderError> {
    let mut rendered: Vec<(String, String)> = Vec::new();
    let tops: Vec<Value> = charts
        .iter()
        .map(|(c, vals)| objects::top_values(c, vals, release, caps, helm))
        .collect();
    for (parent, (c, _)) in charts.iter().enumerate() {
        for sub in &c.subcharts {
            if let Some(idx) = charts
                .iter()
                .position(|(e, _)| e.full_path == sub.full_path)
            {
                objects::add_subchart(&tops[parent], &sub.name, &tops[idx]);
            }
        }
    }
    for (name, _, idx) in all {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') {
            continue;
        }
        let (c, _) = &charts[*idx];
        if c.is_library {
            continue;
        }
        let dot = tops[*idx].clone();
        objects::set_template(&dot, c, name, helm);
        let out = set.execute(name, dot).map_err(|e| {
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
            } else if helm == HelmCompat::V4 {
                helm4_execution_error(&e.message).unwrap_or_else(|| e.message.clone())
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
        let out = if out.contains(NO_VALUE) {
            out.replace(NO_VALUE, "")
        } else {
            out
        };
        rendered.push((name.clone(), out));
    }
    Ok(rendered)
}

/// One step of a template error as Helm 4 lays it out: where, in which
/// action, and what went wrong.
#[derive(PartialEq)]
struct Trace<'a> {
    location: &'a str,
    action: Option<(&'a str, &'a str)>,
    message: &'a str,
}

impl Trace<'_> {
    /// Go's text/template error text: "template: <file:line:col>: executing
    /// \"<name>\" at <<action>>: <message>", or "template: <file>: <message>".
    fn parse(link: &str) -> Option<Trace<'_>> {
        let rest = link.strip_prefix("template: ")?;
        // A message ends where a wrapped error's own text begins.
        let cut = |m: &str| -> usize { m.find(" template:").unwrap_or(m.len()) };
        if rest.starts_with("no template ") {
            return Some(Trace {
                location: "",
                action: None,
                message: link,
            });
        }
        if let Some((location, after)) = rest.split_once(": executing ") {
            let after = after.strip_prefix('"')?;
            let (name, after) = after.split_once('"')?;
            let after = after.strip_prefix(" at <")?;
            let (action, message) = after.split_once(">: ")?;
            return Some(Trace {
                location,
                action: Some((name, action)),
                message: &message[..cut(message)],
            });
        }
        let sep = rest.rfind(": ")?;
        let message = &rest[sep + 2..];
        Some(Trace {
            location: &rest[..sep],
            action: None,
            message: &message[..cut(message)],
        })
    }

    fn write(&self, out: &mut String) {
        if !self.location.is_empty() {
            out.push_str(self.location);
            out.push_str("\n  ");
        }
        if let Some((name, action)) = self.action {
            out.push_str(&format!("executing \"{name}\" at <{action}>:\n    "));
        }
        if !self.message.is_empty() {
            out.push_str(self.message);
            out.push('\n');
        }
    }
}

/// A template execution error as Helm 4 reports it: each template of the
/// chain (an `include` inside an `include`...) on lines of its own. Helm 4
/// keeps Go's one-line text when a link of the chain is not a template's
/// error (a function's own failure, `tpl`'s): then `None`.
fn helm4_execution_error(message: &str) -> Option<String> {
    let mut traces: Vec<Trace> = Vec::new();
    let mut link = message;
    loop {
        let trace = Trace::parse(link)?;
        if traces.last() != Some(&trace) {
            traces.push(trace);
        }
        // A function's error is wrapped (Go's %w) after "error calling <name>: ".
        let Some(at) = link.find("error calling ") else {
            break;
        };
        let (name, inner) = link[at + "error calling ".len()..].split_once(": ")?;
        if !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        link = inner;
    }
    let mut out = String::new();
    traces.iter().for_each(|t| t.write(&mut out));
    Some(out.trim().to_string())
}

/// crds/ files, the chart's own first, then its enabled subcharts' (helm's CRDObjects).
fn crd_files(c: &Chart, enabled: &[(&Chart, Value)], out: &mut Vec<Manifest>) {
    for (path, data) in &c.crds {
        out.push(Manifest {
            source: format!("{}/{}", c.full_path, path),
            content: text_of(data).into_owned(),
        });
    }
    for sub in &c.subcharts {
        if enabled.iter().any(|(e, _)| e.full_path == sub.full_path) {
            crd_files(sub, enabled, out);
        }
    }
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
