//! Splitting rendered templates into documents and ordering them as Helm
//! does: ordinary manifests by kind (Helm's install order), hooks apart.

use gotemplate::Value;

use crate::{HelmCompat, Hook, Manifest, RenderError, yaml11};

/// Helm 4's install order of kinds; unknown kinds come after these. Helm 3's
/// is the same less the last two (the webhook configurations), which it
/// sorts by name among the kinds it does not know.
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
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The install order of kinds `helm` follows.
pub fn install_order(helm: HelmCompat) -> &'static [&'static str] {
    match helm {
        HelmCompat::V3 => &INSTALL_ORDER[..INSTALL_ORDER.len() - 2],
        HelmCompat::V4 => INSTALL_ORDER,
    }
}

/// A template's output split into documents as `helm` splits it. Helm 3 cuts
/// at "---" after a newline (or at the start), swallowing the whitespace
/// around it, and trims each document; Helm 4 cuts at "---" starting a line
/// (and the spaces or tabs after it) and trims only the start of each
/// document, so its trailing newlines are printed.
pub fn split_documents(text: &str, helm: HelmCompat) -> Vec<&str> {
    let mut docs = Vec::new();
    match helm {
        HelmCompat::V3 => {
            let mut rest = text.trim();
            if let Some(r) = rest.strip_prefix("---") {
                rest = r;
            }
            while let Some(i) = rest.find("\n---") {
                docs.push(rest[..i].trim());
                rest = &rest[i + 4..];
            }
            docs.push(rest.trim());
        }
        HelmCompat::V4 => {
            let text = text.trim_start();
            let mut start = 0;
            let mut line = 0;
            loop {
                if text[line..].starts_with("---") {
                    docs.push(&text[start..line]);
                    start = line + 3;
                    start += text[start..]
                        .find(|c| c != ' ' && c != '\t')
                        .unwrap_or(text.len() - start);
                }
                match text[line..].find('\n') {
                    Some(i) => line += i + 1,
                    None => break,
                }
            }
            docs.push(&text[start..]);
            for doc in &mut docs {
                *doc = doc.trim_start();
            }
        }
    }
    docs.retain(|d| !d.trim().is_empty());
    docs
}

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
    helm: HelmCompat,
) -> Result<(Vec<Manifest>, Vec<Hook>), RenderError> {
    let mut generic: Vec<(DocHead, Manifest)> = Vec::new();
    let mut hooks: Vec<(DocHead, Manifest)> = Vec::new();
    for (source, text) in files {
        for d in split_documents(&text, helm) {
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
    let order = install_order(helm);
    let rank = |k: &str| order.iter().position(|x| *x == k);
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
