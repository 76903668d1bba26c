//! Rendered manifests as Kubernetes objects: parsing, ownership labels,
//! digests and apply order. Pure logic, no cluster access.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use berth_chart::manifests::INSTALL_ORDER;

/// Label naming the release that owns an object.
pub const RELEASE_LABEL: &str = "berth.dev/release";
/// Label naming the agent (cluster) that applied an object.
pub const AGENT_LABEL: &str = "berth.dev/agent";
/// Annotation naming the template an object was rendered from.
pub const SOURCE_ANNOTATION: &str = "berth.dev/source";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "berth";

/// Identifies one object in a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or("")
    }

    pub fn version(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(_, version)| version)
            .unwrap_or(&self.api_version)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One object the release wants, as rendered.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    /// The template it came from (e.g. `demo/templates/service.yaml`).
    pub source: String,
    pub manifest: Value,
}

/// A rendered document that is not a usable object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_file}: document {document}{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
pub struct ManifestError {
    pub source_file: String,
    /// 1-based index of the document within the template's output.
    pub document: usize,
    pub line: Option<usize>,
    pub message: String,
}

/// Parses one rendered document into an object (`None` for an empty document).
pub fn parse_manifest(
    source: &str,
    document: usize,
    text: &str,
) -> Result<Option<DesiredObject>, ManifestError> {
    let error = |line: Option<usize>, message: String| ManifestError {
        source_file: source.to_string(),
        document,
        line,
        message,
    };
    let yaml: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| error(e.location().map(|l| l.line()), e.to_string()))?;
    if yaml.is_null() {
        return Ok(None);
    }
    let manifest: Value = serde_json::to_value(&yaml)
        .map_err(|e| error(None, format!("not a JSON-compatible object: {e}")))?;
    let Value::Object(fields) = &manifest else {
        return Err(error(None, "a manifest must be a mapping".into()));
    };
    for field in ["apiVersion", "kind"] {
        match fields.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(error(None, format!("missing or empty {field}"))),
        }
    }
    match manifest.pointer("/metadata/name") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => {
            let kind = fields
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if kind.ends_with("List") {
                return Err(error(
                    None,
                    format!(
                        "{kind} objects are not supported; render the items as separate documents"
                    ),
                ));
            }
            return Err(error(None, "missing metadata.name".into()));
        }
    }
    Ok(Some(DesiredObject {
        source: source.to_string(),
        manifest,
    }))
}

impl DesiredObject {
    pub fn api_version(&self) -> &str {
        self.manifest["apiVersion"].as_str().unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.manifest["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.manifest
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.manifest
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version().to_string(),
            kind: self.kind().to_string(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
        }
    }

    fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        if !self.manifest["metadata"].is_object() {
            self.manifest["metadata"] = Value::Object(Map::new());
        }
        match &mut self.manifest["metadata"] {
            Value::Object(metadata) => metadata,
            // Made an object just above.
            _ => unreachable!("metadata is an object"),
        }
    }

    pub fn set_namespace(&mut self, namespace: Option<&str>) {
        let metadata = self.metadata_mut();
        match namespace {
            Some(ns) => metadata.insert("namespace".into(), Value::String(ns.to_string())),
            None => metadata.remove("namespace"),
        };
    }

    /// Marks the object as owned by `release`, applied by the agent of `cluster`.
    pub fn add_ownership(&mut self, release: &str, cluster: &str) {
        let source = self.source.clone();
        let metadata = self.metadata_mut();
        for (key, entries) in [
            (
                "labels",
                vec![(RELEASE_LABEL, release), (AGENT_LABEL, cluster)],
            ),
            ("annotations", vec![(SOURCE_ANNOTATION, source.as_str())]),
        ] {
            if !metadata.get(key).is_some_and(Value::is_object) {
                metadata.insert(key.into(), Value::Object(Map::new()));
            }
            if let Some(Value::Object(map)) = metadata.get_mut(key) {
                for (k, v) in entries {
                    map.insert(k.to_string(), Value::String(v.to_string()));
                }
            }
        }
    }

    /// sha256 of the object's canonical JSON: equal digests mean nothing to apply.
    pub fn digest(&self) -> String {
        digest_json(&self.manifest)
    }
}

/// sha256 (hex) of a JSON value with object keys sorted.
pub fn digest_json(value: &Value) -> String {
    let mut hasher = Sha256::new();
    hash_canonical(value, &mut hasher);
    hex::encode(hasher.finalize())
}

fn hash_canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                hasher.update(serde_json::to_string(key).unwrap_or_default().as_bytes());
                hasher.update(b":");
                hash_canonical(&map[key], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                hash_canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

/// Rank in apply order: namespaces and CRDs first (everything else may depend
/// on them), then cluster-scoped objects, then namespaced ones, each group in
/// Helm's install order.
pub fn apply_rank(kind: &str, namespaced: bool) -> (u8, usize) {
    let group = match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        _ if !namespaced => 2,
        _ => 3,
    };
    let position = INSTALL_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(INSTALL_ORDER.len());
    (group, position)
}

/// Orders two objects for applying; deletion uses the reverse.
pub fn apply_order(a: (&ObjectRef, bool), b: (&ObjectRef, bool)) -> Ordering {
    apply_rank(&a.0.kind, a.1)
        .cmp(&apply_rank(&b.0.kind, b.1))
        .then_with(|| a.0.kind.cmp(&b.0.kind))
        .then_with(|| a.0.namespace.cmp(&b.0.namespace))
        .then_with(|| a.0.name.cmp(&b.0.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_manifest_and_adds_ownership() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {app: demo}\ndata:\n  a: \"1\"\n";
        let mut object = parse_manifest("demo/templates/cm.yaml", 1, text)
            .unwrap()
            .unwrap();
        assert_eq!(object.kind(), "ConfigMap");
        assert_eq!(object.namespace(), None);
        let before = object.digest();
        object.set_namespace(Some("demo"));
        object.add_ownership("demo", "gke-1");
        assert_ne!(object.digest(), before);
        assert_eq!(object.manifest["metadata"]["labels"]["app"], "demo");
        assert_eq!(object.manifest["metadata"]["labels"][RELEASE_LABEL], "demo");
        assert_eq!(object.manifest["metadata"]["labels"][AGENT_LABEL], "gke-1");
        assert_eq!(object.object_ref().to_string(), "ConfigMap demo/settings");
    }

    #[test]
    fn digest_ignores_key_order() {
        let a: Value = serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": "x"}});
        let b: Value = serde_json::from_str(r#"{"b": {"d": "x", "c": [1, 2]}, "a": 1}"#).unwrap();
        assert_eq!(digest_json(&a), digest_json(&b));
        let c: Value = serde_json::json!({"a": 1, "b": {"c": [2, 1], "d": "x"}});
        assert_ne!(digest_json(&a), digest_json(&c));
    }

    #[test]
    fn bad_documents_name_source_and_cause() {
        assert_eq!(
            parse_manifest("t.yaml", 1, "# only a comment\n").unwrap(),
            None
        );
        let error = parse_manifest(
            "demo/templates/x.yaml",
            2,
            "kind: ConfigMap\nmetadata: {name: a}\n",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "demo/templates/x.yaml: document 2: missing or empty apiVersion"
        );
        let error = parse_manifest(
            "demo/templates/x.yaml",
            1,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [a\n",
        )
        .unwrap_err();
        assert!(error.line.is_some(), "{error}");
        let error = parse_manifest("t.yaml", 1, "- a\n- b\n").unwrap_err();
        assert!(error.message.contains("mapping"), "{error}");
    }

    #[test]
    fn namespaces_and_crds_come_first() {
        let r = |kind: &str| ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: None,
            name: "x".into(),
        };
        let mut objects = [
            (r("Deployment"), true),
            (r("ClusterRole"), false),
            (r("Service"), true),
            (r("CustomResourceDefinition"), false),
            (r("Widget"), true),
            (r("Namespace"), false),
            (r("ConfigMap"), true),
        ];
        objects.sort_by(|a, b| apply_order((&a.0, a.1), (&b.0, b.1)));
        let kinds: Vec<&str> = objects.iter().map(|(r, _)| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "CustomResourceDefinition",
                "ClusterRole",
                "ConfigMap",
                "Service",
                "Deployment",
                "Widget"
            ]
        );
    }
}
