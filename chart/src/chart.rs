//! A chart tree as Helm loads it from a chart's files: metadata, default
//! values, templates, CRDs, other files and subcharts (directories and
//! `.tgz` archives under `charts/`), filtered by `.helmignore`.

use std::collections::BTreeMap;

use gotemplate::{MapRef, Source, Value};

use crate::load::text_of;
use crate::values::{Merge, merge_values, parse_values_as};
use crate::{HelmCompat, RenderError};

/// One chart of the tree.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Chart.yaml as parsed.
    pub metadata: serde_yaml::Value,
    pub name: String,
    /// Path prefix used in template names: "<root>" or "<root>/charts/<sub>".
    pub full_path: String,
    /// values.yaml (an empty map when absent), read as helm reads YAML.
    pub values: Value,
    /// values.schema.json, when present.
    pub schema: Option<Vec<u8>>,
    /// crds/ files: (path relative to the chart, contents), in name order.
    pub crds: Vec<(String, Vec<u8>)>,
    /// Template files: path relative to the chart root ("templates/x.yaml") → text.
    pub templates: Vec<(String, std::sync::Arc<str>)>,
    /// Other files, for `.Files` (shared: every template of the chart sees them).
    pub files: std::rc::Rc<BTreeMap<String, Vec<u8>>>,
    pub subcharts: Vec<Chart>,
    pub is_library: bool,
}

fn meta_str(meta: &serde_yaml::Value, key: &str) -> String {
    match meta.get(key) {
        Some(serde_yaml::Value::String(s)) => s.clone(),
        Some(serde_yaml::Value::Number(n)) => n.to_string(),
        Some(serde_yaml::Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

impl Chart {
    pub fn version(&self) -> String {
        meta_str(&self.metadata, "version")
    }

    pub fn app_version(&self) -> String {
        meta_str(&self.metadata, "appVersion")
    }

    pub fn meta(&self, key: &str) -> String {
        meta_str(&self.metadata, key)
    }
}

fn parse_yaml(path: &str, bytes: &[u8]) -> Result<serde_yaml::Value, RenderError> {
    let text = text_of(bytes);
    if text.trim().is_empty() {
        return Ok(serde_yaml::Value::Mapping(Default::default()));
    }
    let v: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        RenderError::plain(
            path,
            format!("cannot load {path}: error converting YAML to JSON: {e}"),
        )
    })?;
    Ok(match v {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        other => other,
    })
}

/// Loads the chart whose files are under `prefix` ("" for the root) in
/// `all`; `parent_path` is the parent chart's path for a subchart.
pub fn load(
    all: &BTreeMap<String, Vec<u8>>,
    prefix: &str,
    parent_path: Option<&str>,
    helm: HelmCompat,
) -> Result<Chart, RenderError> {
    // The files are only borrowed until each lands where the chart keeps it:
    // a large chart is read once instead of copied at every step.
    let mut view: BTreeMap<&str, &[u8]> = all
        .iter()
        .map(|(path, data)| (path.as_str(), data.as_slice()))
        .collect();
    // helm applies the top chart's .helmignore to everything it loads from a
    // directory, subcharts included (packaged charts were filtered when packed).
    if prefix.is_empty()
        && parent_path.is_none()
        && let Some(text) = all.get(".helmignore")
    {
        let rules = crate::ignore::Rules::parse(&text_of(text))
            .map_err(|e| RenderError::plain(".helmignore", e))?;
        view.retain(|path, _| !rules.excludes(path));
    }
    if prefix.is_empty() && parent_path.is_none() {
        check_size(&view, helm)?;
    }
    load_view(&view, prefix, parent_path, helm)
}

/// Helm's loader limits, once ignored files are gone: Helm 3 refuses a file
/// over 5 MiB, Helm 4 a chart over 100 MiB in all.
fn check_size(files: &BTreeMap<&str, &[u8]>, helm: HelmCompat) -> Result<(), RenderError> {
    use crate::load::{MAX_CHART_BYTES, MAX_CHART_FILE};
    match helm {
        HelmCompat::V3 => {
            if let Some((path, _)) = files
                .iter()
                .find(|(_, data)| data.len() as u64 > MAX_CHART_FILE)
            {
                let base = path.rsplit('/').next().unwrap_or(path);
                return Err(RenderError::plain(
                    path,
                    format!(
                        "chart file {base:?} is larger than the maximum file size {MAX_CHART_FILE}"
                    ),
                ));
            }
        }
        HelmCompat::V4 => {
            // Read in path order; the file that passes the budget is named.
            let mut total: u64 = 0;
            for (path, data) in files {
                total += data.len() as u64;
                if total > MAX_CHART_BYTES {
                    return Err(RenderError::plain(
                        path,
                        format!(
                            "error reading {path}: chart exceeds maximum decompressed size of {MAX_CHART_BYTES} bytes"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn load_view(
    all: &BTreeMap<&str, &[u8]>,
    prefix: &str,
    parent_path: Option<&str>,
    helm: HelmCompat,
) -> Result<Chart, RenderError> {
    let mut own: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for (path, data) in all.range(prefix..) {
        let Some(rel) = path.strip_prefix(prefix) else {
            break;
        };
        own.insert(rel, data);
    }
    let chart_yaml = own.get("Chart.yaml").ok_or_else(|| {
        RenderError::plain(
            prefix,
            if prefix.is_empty() {
                "Chart.yaml file is missing".to_string()
            } else {
                format!("Chart.yaml file is missing in {prefix}")
            },
        )
    })?;
    let mut metadata = parse_yaml(&format!("{prefix}Chart.yaml"), chart_yaml)?;
    // apiVersion v1 charts list their dependencies in requirements.yaml.
    if meta_str(&metadata, "apiVersion") == "v1"
        && metadata.get("dependencies").is_none()
        && let Some(req) = own.get("requirements.yaml")
    {
        let req = parse_yaml(&format!("{prefix}requirements.yaml"), req)?;
        if let (serde_yaml::Value::Mapping(m), Some(deps)) =
            (&mut metadata, req.get("dependencies"))
        {
            m.insert("dependencies".into(), deps.clone());
        }
    }
    let name = meta_str(&metadata, "name");
    if name.is_empty() {
        return Err(RenderError::plain(
            prefix,
            "validation: chart.metadata.name is required".to_string(),
        ));
    }
    let values = match own.get("values.yaml") {
        // Helm 4 reads a chart's values.yaml as it reads a values file (every
        // document merged).
        Some(b) => {
            let path = format!("{prefix}values.yaml");
            parse_values_as(&path, b, helm).map_err(|e| {
                RenderError::plain(&path, format!("cannot load {path}: {}", e.message))
            })?
        }
        None => Value::new_map(BTreeMap::new()),
    };
    let schema = own.get("values.schema.json").map(|b| b.to_vec());
    let full_path = match parent_path {
        Some(p) => format!("{p}/charts/{name}"),
        None => name.clone(),
    };
    let mut templates = Vec::new();
    let mut files = BTreeMap::new();
    let mut sub_dirs: Vec<String> = Vec::new();
    let mut sub_tgz: Vec<(String, &[u8])> = Vec::new();
    let mut crds = Vec::new();
    for (&rel, &data) in &own {
        if rel.starts_with("crds/") {
            crds.push((rel.to_string(), data.to_vec()));
        }
        if let Some(rest) = rel.strip_prefix("charts/") {
            if let Some((dir, tail)) = rest.split_once('/') {
                if tail == "Chart.yaml" {
                    sub_dirs.push(dir.to_string());
                }
            } else if rest.ends_with(".tgz") || rest.ends_with(".tar.gz") {
                sub_tgz.push((format!("{prefix}{rel}"), data));
            }
            continue;
        }
        if rel.starts_with("templates/") {
            templates.push((rel.to_string(), Source::from(text_of(data))));
            continue;
        }
        if matches!(
            rel,
            "Chart.yaml"
                | "Chart.lock"
                | "values.yaml"
                | "values.schema.json"
                | "requirements.yaml"
                | "requirements.lock"
        ) {
            continue;
        }
        files.insert(rel.to_string(), data.to_vec());
    }
    let mut subcharts = Vec::new();
    for dir in sub_dirs {
        subcharts.push(load_view(
            all,
            &format!("{prefix}charts/{dir}/"),
            Some(&full_path),
            helm,
        )?);
    }
    for (path, data) in sub_tgz {
        let unpacked = crate::load::ChartFiles::from_tgz(data, &path)?;
        subcharts.push(load(&unpacked.files, "", Some(&full_path), helm)?);
    }
    // Helm orders dependencies by name regardless of how they were stored.
    subcharts.sort_by(|a, b| a.name.cmp(&b.name));
    let is_library = meta_str(&metadata, "type") == "library";
    Ok(Chart {
        metadata,
        name,
        full_path,
        values,
        schema,
        crds,
        templates,
        files: std::rc::Rc::new(files),
        subcharts,
        is_library,
    })
}

/// Coalesces user values over chart defaults (recursively for the chart and
/// its subcharts), as `helm template` does: maps merge, user values win, an
/// explicit null in user values deletes the key, globals flow down. With
/// `drop_default_nulls` (Helm 4), nulls among a chart's defaults are dropped
/// rather than handed to templates.
pub fn coalesce(chart: &Chart, user: &Value, drop_default_nulls: bool) -> Value {
    let dst = match user {
        Value::Map(_) => user.deep_copy(),
        _ => Value::new_map(BTreeMap::new()),
    };
    coalesce_chart(chart, &dst, drop_default_nulls);
    dst
}

/// Removes null entries from `m`, at every depth (Helm 4's cleanNilValues).
fn drop_nulls(m: &MapRef) {
    m.borrow_mut().retain(|_, v| !v.is_nil());
    for v in m.borrow().values() {
        if let Value::Map(sub) = v {
            drop_nulls(sub);
        }
    }
}

fn coalesce_chart(chart: &Chart, dst: &Value, drop_default_nulls: bool) {
    // A copy: coalescing fills maps in place and must not change the chart's defaults.
    let defaults = chart.values.deep_copy();
    if let (true, Value::Map(defaults), Value::Map(given)) = (drop_default_nulls, &defaults, dst) {
        // Helm 4 keeps the nulls of a subchart's table the user also gives:
        // that table is merged, not coalesced, there.
        let given = given.borrow();
        let merged = |key: &str| {
            matches!(given.get(key), Some(Value::Map(_)))
                && chart.subcharts.iter().any(|s| s.name == key)
        };
        defaults.borrow_mut().retain(|_, v| !v.is_nil());
        for (key, v) in defaults.borrow().iter() {
            if let Value::Map(table) = v
                && !merged(key)
            {
                drop_nulls(table);
            }
        }
    }
    merge_values(dst, &defaults, Merge::Defaults);
    let Value::Map(dm) = dst else { return };
    for sub in &chart.subcharts {
        let entry = dm.borrow().get(&sub.name).cloned();
        let sub_values = match entry {
            Some(v @ Value::Map(_)) => v,
            _ => {
                let v = Value::new_map(BTreeMap::new());
                dm.borrow_mut().insert(sub.name.clone(), v.clone());
                v
            }
        };
        // Parent globals override the subchart's own globals.
        let parent_global = dm.borrow().get("global").cloned();
        if let (Some(Value::Map(parent_global)), Value::Map(sm)) = (parent_global, &sub_values) {
            let existing = sm.borrow().get("global").cloned();
            let merged = match existing {
                Some(g @ Value::Map(_)) => g,
                _ => Value::new_map(BTreeMap::new()),
            };
            merge_values(
                &merged,
                &Value::Map(parent_global).deep_copy(),
                Merge::Overlay,
            );
            sm.borrow_mut().insert("global".into(), merged);
        }
        coalesce_chart(sub, &sub_values, drop_default_nulls);
    }
}
