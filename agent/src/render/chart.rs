//! Loading a chart (and its subcharts) from in-memory files, and Helm's
//! values coalescing.

use std::collections::BTreeMap;

use crate::render::RenderError;
use crate::render::load::text_of;
use crate::render::template::parse::Source;
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
    /// values.schema.json, when present (shared with the schema check).
    pub schema: Option<std::sync::Arc<[u8]>>,
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

/// Reads a values file as helm does (YAML 1.1 typing; empty means an empty map).
pub fn parse_values(path: &str, bytes: &[u8]) -> Result<Value, RenderError> {
    let text = text_of(bytes);
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
    load_sharing(all, prefix, parent_path, &[])
}

/// [`load`], taking template texts already made from `all`'s bytes from
/// `texts` ((path, text), sorted by path) instead of converting them again.
pub fn load_sharing(
    all: &BTreeMap<String, Vec<u8>>,
    prefix: &str,
    parent_path: Option<&str>,
    texts: &[(String, Source)],
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
        let rules = crate::render::ignore::Rules::parse(&text_of(text))
            .map_err(|e| RenderError::plain(".helmignore", e))?;
        view.retain(|path, _| !rules.excludes(path));
    }
    load_view(&view, prefix, parent_path, texts)
}

fn load_view(
    all: &BTreeMap<&str, &[u8]>,
    prefix: &str,
    parent_path: Option<&str>,
    texts: &[(String, Source)],
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
        Some(b) => parse_values(&format!("{prefix}values.yaml"), b)?,
        None => Value::new_map(BTreeMap::new()),
    };
    let schema = own
        .get("values.schema.json")
        .map(|b| std::sync::Arc::from(*b));
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
            let path = format!("{prefix}{rel}");
            let text = match texts.binary_search_by(|(p, _)| p.as_str().cmp(&path)) {
                Ok(i) => texts[i].1.clone(),
                Err(_) => Source::from(text_of(data)),
            };
            templates.push((rel.to_string(), text));
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
            texts,
        )?);
    }
    for (path, data) in sub_tgz {
        let unpacked = crate::render::load::from_tgz(data, &path)?;
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
        files: std::rc::Rc::new(files),
        subcharts,
        is_library,
    })
}

/// Converts YAML values to template values (numbers become float64 as in Helm).
pub fn yaml_to_values(y: &serde_yaml::Value) -> Value {
    Value::from_yaml(y)
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
    // A copy: coalescing fills maps in place and must not change the chart's defaults.
    let defaults = chart.values.deep_copy();
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
    let _ = top;
    let default_entries: Vec<(String, Value)> = s
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, dv) in default_entries {
        let cur = d.borrow().get(&k).cloned();
        match cur {
            // A default (even a null one) fills a missing key.
            None => {
                d.borrow_mut().insert(k, dv);
            }
            // A null over a default deletes the key.
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

/// One entry of Chart.yaml `dependencies` (or requirements.yaml for v1 charts).
#[derive(Debug, Clone)]
struct Dependency {
    name: String,
    alias: Option<String>,
    condition: Option<String>,
    tags: Vec<String>,
    /// `import-values`: a string (an `exports.<name>` table) or a child→parent pair.
    imports: Vec<(String, String)>,
}

impl Dependency {
    /// The name the chart and its values go by (the alias when set).
    fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

fn dependencies(c: &Chart) -> Vec<Dependency> {
    let Some(deps) = c.metadata.get("dependencies").and_then(|d| d.as_sequence()) else {
        return vec![];
    };
    let text = |d: &serde_yaml::Value, k: &str| {
        d.get(k)
            .map(yaml_key_string)
            .filter(|s| !s.is_empty() && s != "null")
    };
    deps.iter()
        .map(|d| Dependency {
            name: text(d, "name").unwrap_or_default(),
            alias: text(d, "alias"),
            condition: text(d, "condition"),
            tags: d
                .get("tags")
                .and_then(|t| t.as_sequence())
                .map(|t| t.iter().map(yaml_key_string).collect())
                .unwrap_or_default(),
            imports: d
                .get("import-values")
                .and_then(|t| t.as_sequence())
                .map(|list| {
                    list.iter()
                        .filter_map(|iv| match iv {
                            serde_yaml::Value::String(name) => {
                                Some((format!("exports.{name}"), ".".to_string()))
                            }
                            serde_yaml::Value::Mapping(_) => Some((
                                iv.get("child").map(yaml_key_string)?,
                                iv.get("parent").map(yaml_key_string)?,
                            )),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Fails like `helm template` when a dependency in Chart.yaml has no chart in charts/.
pub fn check_dependencies(c: &Chart) -> Result<(), RenderError> {
    let missing: Vec<String> = dependencies(c)
        .into_iter()
        .filter(|d| !c.subcharts.iter().any(|s| s.name == d.name))
        .map(|d| d.name)
        .collect();
    if !missing.is_empty() {
        return Err(RenderError::plain(
            &c.full_path,
            format!(
                "An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: {}",
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}

fn rename(c: &mut Chart, name: &str, parent_path: &str) {
    c.name = name.to_string();
    if let serde_yaml::Value::Mapping(m) = &mut c.metadata {
        m.insert("name".into(), name.into());
    }
    reroot(c, &format!("{parent_path}/charts/{name}"));
}

fn reroot(c: &mut Chart, full_path: &str) {
    c.full_path = full_path.to_string();
    let path = c.full_path.clone();
    for sub in &mut c.subcharts {
        let name = sub.name.clone();
        reroot(sub, &format!("{path}/charts/{name}"));
    }
}

/// Helm's dependency processing before values are coalesced for rendering:
/// aliases (a chart copied under each alias), conditions and tags (disabled
/// charts removed, recursively), then `import-values` (bottom-up, imported
/// values below the parent's own).
pub fn process_dependencies(root: &mut Chart, user: &Value) {
    apply_aliases(root);
    let top = coalesce(root, user);
    remove_disabled(root, &top, "");
    import_values(root);
}

fn apply_aliases(c: &mut Chart) {
    let deps = dependencies(c);
    if !deps.is_empty() {
        let loaded = std::mem::take(&mut c.subcharts);
        // Charts in charts/ that no dependency names stay as they are.
        let mut result: Vec<Chart> = loaded
            .iter()
            .filter(|s| !deps.iter().any(|d| d.name == s.name))
            .cloned()
            .collect();
        for d in &deps {
            if let Some(found) = loaded.iter().find(|s| s.name == d.name) {
                let mut sub = found.clone();
                if let Some(alias) = &d.alias {
                    rename(&mut sub, alias, &c.full_path);
                }
                result.push(sub);
            }
        }
        c.subcharts = result;
    }
    for sub in &mut c.subcharts {
        apply_aliases(sub);
    }
}

fn lookup(values: &Value, path: &str) -> Option<Value> {
    let mut cur = values.clone();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = cur.map_get(part)?;
    }
    Some(cur)
}

fn remove_disabled(c: &mut Chart, top: &Value, path: &str) {
    let deps = dependencies(c);
    let tags = top.map_get("tags");
    let mut disabled: Vec<String> = Vec::new();
    for d in &deps {
        let mut enabled = true;
        // Tags first: any true tag enables, otherwise any false tag disables.
        let tag_values: Vec<bool> = d
            .tags
            .iter()
            .filter_map(|t| match tags.as_ref().and_then(|tv| tv.map_get(t)) {
                Some(Value::Bool(b)) => Some(b),
                _ => None,
            })
            .collect();
        if tag_values.contains(&true) {
            enabled = true;
        } else if tag_values.contains(&false) {
            enabled = false;
        }
        // A condition that resolves to a boolean overrides the tags.
        if let Some(cond) = &d.condition {
            for p in cond.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if let Some(Value::Bool(b)) = lookup(top, &format!("{path}{p}")) {
                    enabled = b;
                    break;
                }
            }
        }
        if !enabled {
            disabled.push(d.key().to_string());
        }
    }
    c.subcharts.retain(|s| !disabled.contains(&s.name));
    if let serde_yaml::Value::Mapping(m) = &mut c.metadata
        && let Some(serde_yaml::Value::Sequence(list)) = m.get_mut("dependencies")
    {
        list.retain(|d| {
            let key = d
                .get("alias")
                .or_else(|| d.get("name"))
                .map(yaml_key_string)
                .unwrap_or_default();
            !disabled.contains(&key)
        });
    }
    for sub in &mut c.subcharts {
        let sub_path = format!("{path}{}.", sub.name);
        remove_disabled(sub, top, &sub_path);
    }
}

fn import_values(c: &mut Chart) {
    for sub in &mut c.subcharts {
        import_values(sub);
    }
    let deps = dependencies(c);
    if deps.iter().all(|d| d.imports.is_empty()) {
        return;
    }
    let cvals = coalesce(c, &Value::new_map(BTreeMap::new()));
    let imported = Value::new_map(BTreeMap::new());
    for d in &deps {
        for (child, parent) in &d.imports {
            let Some(table @ Value::Map(_)) = lookup(&cvals, &format!("{}.{child}", d.key()))
            else {
                continue;
            };
            let table = table.deep_copy();
            let placed = if parent == "." {
                table
            } else {
                parent.split('.').rev().fold(table, |inner, part| {
                    let mut m = BTreeMap::new();
                    m.insert(part.to_string(), inner);
                    Value::new_map(m)
                })
            };
            merge_defaults(&imported, &placed, false);
        }
    }
    // The parent's own (coalesced) values win over imported ones.
    merge_defaults(&cvals, &imported, false);
    c.values = cvals;
}
