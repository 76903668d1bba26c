//! Loading a chart (and its subcharts) from in-memory files, and Helm's
//! values coalescing.

use std::collections::BTreeMap;

use crate::render::RenderError;
use crate::render::value::{Value, yaml_key_string};

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
    pub templates: Vec<(String, String)>,
    /// Other files, for `.Files`.
    pub files: BTreeMap<String, Vec<u8>>,
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
    let text = String::from_utf8_lossy(bytes);
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

/// Reads a values file as helm does (YAML 1.1 typing; empty means an empty map).
pub fn parse_values(path: &str, bytes: &[u8]) -> Result<Value, RenderError> {
    let text = String::from_utf8_lossy(bytes);
    let v = crate::render::yaml11::parse_first(&text).map_err(|e| {
        RenderError::plain(
            path,
            format!("cannot load {path}: error converting YAML to JSON: yaml: {e}"),
        )
    })?;
    match v {
        Value::Nil => Ok(Value::new_map(BTreeMap::new())),
        v @ Value::Map(_) => Ok(v),
        other => Err(RenderError::plain(
            path,
            format!(
                "cannot load {path}: error unmarshaling JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                other.kind_name()
            ),
        )),
    }
}

/// Loads the chart whose files are under `prefix` ("" for the root) in `all`.
pub fn load(
    all: &BTreeMap<String, Vec<u8>>,
    prefix: &str,
    parent_path: Option<&str>,
) -> Result<Chart, RenderError> {
    let mut own: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (path, data) in all.range(prefix.to_string()..) {
        let Some(rel) = path.strip_prefix(prefix) else {
            break;
        };
        own.insert(rel.to_string(), data.clone());
    }
    let chart_yaml = own.get("Chart.yaml").ok_or_else(|| {
        RenderError::plain(
            prefix,
            format!(
                "Chart.yaml file is missing in {}",
                if prefix.is_empty() { "chart" } else { prefix }
            ),
        )
    })?;
    let metadata = parse_yaml(&format!("{prefix}Chart.yaml"), chart_yaml)?;
    let name = meta_str(&metadata, "name");
    if name.is_empty() {
        return Err(RenderError::plain(
            prefix,
            "validation: chart.metadata.name is required".to_string(),
        ));
    }
    let values = match own.get("values.yaml") {
        Some(b) => parse_values(&format!("{prefix}values.yaml"), b)?,
        None => Value::new_map(BTreeMap::new()),
    };
    let schema = own.get("values.schema.json").cloned();
    let full_path = match parent_path {
        Some(p) => format!("{p}/charts/{name}"),
        None => name.clone(),
    };
    let mut templates = Vec::new();
    let mut files = BTreeMap::new();
    let mut sub_dirs: Vec<String> = Vec::new();
    let mut sub_tgz: Vec<(String, Vec<u8>)> = Vec::new();
    let mut crds = Vec::new();
    for (rel, data) in &own {
        if rel.starts_with("crds/") {
            crds.push((rel.clone(), data.clone()));
        }
        if let Some(rest) = rel.strip_prefix("charts/") {
            if let Some((dir, tail)) = rest.split_once('/') {
                if tail == "Chart.yaml" {
                    sub_dirs.push(dir.to_string());
                }
            } else if rest.ends_with(".tgz") || rest.ends_with(".tar.gz") {
                sub_tgz.push((format!("{prefix}{rel}"), data.clone()));
            }
            continue;
        }
        if rel.starts_with("templates/") {
            templates.push((rel.clone(), String::from_utf8_lossy(data).into_owned()));
            continue;
        }
        if matches!(
            rel.as_str(),
            "Chart.yaml"
                | "Chart.lock"
                | "values.yaml"
                | "values.schema.json"
                | "requirements.yaml"
                | "requirements.lock"
        ) {
            continue;
        }
        files.insert(rel.clone(), data.clone());
    }
    let ignore = files
        .get(".helmignore")
        .map(|b| String::from_utf8_lossy(b).into_owned());
    if let Some(ignore) = ignore {
        let patterns: Vec<String> = ignore
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        files.retain(|path, _| !helmignored(&patterns, path));
        templates.retain(|(path, _)| !helmignored(&patterns, path));
    }
    let mut subcharts = Vec::new();
    for dir in sub_dirs {
        subcharts.push(load(
            all,
            &format!("{prefix}charts/{dir}/"),
            Some(&full_path),
        )?);
    }
    for (path, data) in sub_tgz {
        let unpacked = crate::render::load::from_tgz(&data, &path)?;
        subcharts.push(load(&unpacked.files, "", Some(&full_path))?);
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
        files,
        subcharts,
        is_library,
    })
}

/// A small subset of .helmignore: exact names, `*.ext` and `dir/` patterns.
fn helmignored(patterns: &[String], path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    patterns.iter().any(|p| {
        if p.starts_with('!') {
            return false;
        }
        let p = p.trim_start_matches('/');
        if let Some(dir) = p.strip_suffix('/') {
            return path.starts_with(&format!("{dir}/")) || path.contains(&format!("/{dir}/"));
        }
        if let Some(ext) = p.strip_prefix('*')
            && !ext.contains(['*', '?', '['])
        {
            return base.ends_with(ext);
        }
        base == p || path == p
    })
}

/// Converts YAML values to template values (numbers become float64 as in Helm).
pub fn yaml_to_values(y: &serde_yaml::Value) -> Value {
    Value::from_yaml(y)
}

fn as_map(y: &serde_yaml::Value) -> Option<&serde_yaml::Mapping> {
    match y {
        serde_yaml::Value::Mapping(m) => Some(m),
        _ => None,
    }
}

/// Coalesces user values over chart defaults (recursively for the chart and its
/// subcharts), the way `helm template` does: maps merge, user values win, an
/// explicit null in user values deletes the key, globals flow down.
pub fn coalesce(chart: &Chart, user: &Value) -> Value {
    let dst = match user {
        Value::Map(_) => user.deep_copy(),
        _ => Value::new_map(BTreeMap::new()),
    };
    coalesce_chart(chart, &dst);
    dst
}

fn coalesce_chart(chart: &Chart, dst: &Value) {
    let defaults = chart.values.clone();
    merge_defaults(dst, &defaults, true);
    let Value::Map(dm) = dst else { return };
    for sub in &chart.subcharts {
        let key = sub.name.clone();
        let entry = dm.borrow().get(&key).cloned();
        let sub_values = match entry {
            Some(v @ Value::Map(_)) => v,
            _ => {
                let v = Value::new_map(BTreeMap::new());
                dm.borrow_mut().insert(key.clone(), v.clone());
                v
            }
        };
        // Parent globals override the subchart's own globals.
        let parent_global = dm.borrow().get("global").cloned();
        if let Some(Value::Map(pg)) = parent_global {
            let Value::Map(sm) = &sub_values else {
                continue;
            };
            let existing = sm.borrow().get("global").cloned();
            let merged = match existing {
                Some(g @ Value::Map(_)) => g,
                _ => Value::new_map(BTreeMap::new()),
            };
            let parent_copy = Value::Map(pg).deep_copy();
            merge_overwrite(&merged, &parent_copy);
            sm.borrow_mut().insert("global".into(), merged);
        }
        coalesce_chart(sub, &sub_values);
    }
}

/// Fills `dst` with keys from `defaults` that it lacks; nested maps merge.
/// A null in `dst` (user values) deletes the key.
fn merge_defaults(dst: &Value, defaults: &Value, top: bool) {
    let (Value::Map(d), Value::Map(s)) = (dst, defaults) else {
        return;
    };
    let default_entries: Vec<(String, Value)> = s
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, dv) in default_entries {
        let cur = d.borrow().get(&k).cloned();
        match cur {
            None => {
                d.borrow_mut().insert(k, dv);
            }
            Some(Value::Nil) => {
                d.borrow_mut().remove(&k);
            }
            Some(cv @ Value::Map(_)) => {
                if let Value::Map(_) = dv {
                    merge_defaults(&cv, &dv, false);
                }
            }
            Some(_) => {}
        }
    }
    let _ = top;
    // Nulls the user set for keys without defaults are removed too.
    let nulls: Vec<String> = d
        .borrow()
        .iter()
        .filter(|(_, v)| v.is_nil())
        .map(|(k, _)| k.clone())
        .collect();
    for k in nulls {
        if s.borrow().contains_key(&k) {
            d.borrow_mut().remove(&k);
        }
    }
}

fn merge_overwrite(dst: &Value, src: &Value) {
    let (Value::Map(d), Value::Map(s)) = (dst, src) else {
        return;
    };
    let entries: Vec<(String, Value)> = s
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, sv) in entries {
        let cur = d.borrow().get(&k).cloned();
        match (cur, &sv) {
            (Some(cv @ Value::Map(_)), Value::Map(_)) => merge_overwrite(&cv, &sv),
            _ => {
                d.borrow_mut().insert(k, sv);
            }
        }
    }
}

/// Evaluates Chart.yaml `dependencies` conditions/tags against the coalesced
/// values and returns the names of disabled subcharts.
pub fn disabled_subcharts(chart: &Chart, values: &Value) -> Vec<String> {
    let mut disabled = Vec::new();
    let Some(deps) = chart
        .metadata
        .get("dependencies")
        .and_then(|d| d.as_sequence())
    else {
        return disabled;
    };
    for dep in deps {
        let name = dep
            .get("alias")
            .or_else(|| dep.get("name"))
            .map(yaml_key_string)
            .unwrap_or_default();
        let mut enabled: Option<bool> = None;
        if let Some(cond) = dep.get("condition").and_then(|c| c.as_str()) {
            for path in cond.split(',').map(str::trim) {
                let mut cur = values.clone();
                let mut found = true;
                for part in path.split('.') {
                    match cur.map_get(part) {
                        Some(v) => cur = v,
                        None => {
                            found = false;
                            break;
                        }
                    }
                }
                if found && let Value::Bool(b) = cur {
                    enabled = Some(b);
                    break;
                }
            }
        }
        if enabled.is_none()
            && let Some(tags) = dep.get("tags").and_then(|t| t.as_sequence())
        {
            let tag_values = values.map_get("tags");
            for t in tags {
                let tag = yaml_key_string(t);
                if let Some(Value::Bool(b)) = tag_values.as_ref().and_then(|tv| tv.map_get(&tag)) {
                    enabled = Some(b);
                    if b {
                        break;
                    }
                }
            }
        }
        if enabled == Some(false) {
            disabled.push(name);
        }
    }
    let _ = as_map;
    disabled
}
