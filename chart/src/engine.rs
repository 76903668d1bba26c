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
    ChartFiles, Manifest, RenderError, RenderOptions, RenderOutput, dependencies, funcs, manifests,
    objects, schema,
};

pub(crate) fn render(
    chart: &ChartFiles,
    user: &Value,
    options: &RenderOptions,
) -> Result<RenderOutput, RenderError> {
    let mut root = chart::load(&chart.files, "", None)?;
    if root.is_library {
        return Err(RenderError::plain(
            &root.name,
            "library charts are not installable".to_string(),
        ));
    }
    dependencies::check_tree(&root)?;
    dependencies::process(&mut root, user);
    let coalesced = chart::coalesce(&root, user);
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
    let mut set = TemplateSet::new(funcs::table());
    for (name, text, _) in &all {
        set.add(name, text.clone()).map_err(|e| RenderError {
            file: e.name.clone(),
            line: Some(e.line),
            column: None,
            message: format!("parse error at ({}:{}): {}", e.name, e.line, e.message),
        })?;
    }
    let release = objects::release_value(options);
    let mut rendered = execute(Rc::new(set), &all, &charts, &release, &caps)?;
    rendered.sort_by(|a, b| a.0.cmp(&b.0));
    let (manifests, hooks) = manifests::sort_manifests(rendered)?;
    let mut crds = Vec::new();
    crd_files(&root, &charts, &mut crds);
    Ok(RenderOutput {
        crds,
        manifests,
        hooks,
    })
}

/// Executes every renderable template of the set: (template name, output).
fn execute(
    set: Rc<TemplateSet>,
    all: &[(String, Source, usize)],
    charts: &[(&Chart, Value)],
    release: &Value,
    caps: &Value,
) -> Result<Vec<(String, String)>, RenderError> {
    let mut rendered: Vec<(String, String)> = Vec::new();
    let tops: Vec<Value> = charts
        .iter()
        .map(|(c, vals)| objects::top_values(c, vals, release, caps))
        .collect();
    for (name, _, idx) in all {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') || name.ends_with("/templates/NOTES.txt") {
            continue;
        }
        let (c, _) = &charts[*idx];
        if c.is_library {
            continue;
        }
        let dot = tops[*idx].clone();
        objects::set_template(&dot, c, name);
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
