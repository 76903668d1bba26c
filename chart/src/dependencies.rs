//! Chart dependencies as Helm processes them before rendering: missing
//! charts, aliases, conditions and tags, and `import-values`.

use std::collections::BTreeMap;

use gotemplate::Value;

use crate::chart::{Chart, coalesce};
use crate::values::{fill_defaults, yaml_key_string};
use crate::{HelmCompat, RenderError};

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

/// Fails like `helm template` when a dependency in Chart.yaml has no chart
/// in charts/, in the chart or any subchart.
pub fn check_tree(c: &Chart, helm: HelmCompat) -> Result<(), RenderError> {
    check_dependencies(c, helm)?;
    c.subcharts.iter().try_for_each(|sub| check_tree(sub, helm))
}

fn check_dependencies(c: &Chart, helm: HelmCompat) -> Result<(), RenderError> {
    let missing: Vec<String> = dependencies(c)
        .into_iter()
        .filter(|d| !c.subcharts.iter().any(|s| s.name == d.name))
        .map(|d| d.name)
        .collect();
    if !missing.is_empty() {
        // Helm 4 words it in lower case, with quotes for the command.
        let (an, build) = match helm {
            HelmCompat::V3 => ("An", "`helm dependency build`"),
            HelmCompat::V4 => ("an", "'helm dependency build'"),
        };
        return Err(RenderError::plain(
            &c.full_path,
            format!(
                "{an} error occurred while checking for chart dependencies. You may need to run {build} to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: {}",
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
pub fn process(root: &mut Chart, user: &Value, helm: HelmCompat) {
    apply_aliases(root);
    let top = coalesce(root, user, helm == HelmCompat::V4);
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
    // Imports merge (Helm's MergeValues): chart defaults keep their nulls.
    let cvals = coalesce(c, &Value::new_map(BTreeMap::new()), false);
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
            fill_defaults(&imported, &placed);
        }
    }
    // The parent's own (coalesced) values win over imported ones.
    fill_defaults(&cvals, &imported);
    c.values = cvals;
}
