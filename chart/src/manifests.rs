//! Splitting rendered templates into documents and ordering them as Helm
//! does: ordinary manifests by kind (Helm's install order), hooks apart.

use gotemplate::Value;

use crate::{Hook, Manifest, RenderError, yaml11};

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
];

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
pub(crate) fn sort_manifests(
    files: Vec<(String, String)>,
) -> Result<(Vec<Manifest>, Vec<Hook>), RenderError> {
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
