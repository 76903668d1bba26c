//! Rendered manifests as Kubernetes objects: parsing, ownership labels,
//! digests and apply order. Pure logic, no cluster access.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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
///
/// Held as compact JSON text, not as a JSON tree: a release's objects wait
/// in this form from the render to the apply, and a small ConfigMap takes
/// some 300 bytes so rather than 4 KiB (docs/sync.md, "Memory"). The apply
/// sends the text as it is; an edit parses it, changes the tree and writes
/// it back.
#[derive(Clone)]
pub struct DesiredObject {
    /// The template it came from (e.g. `demo/templates/service.yaml`).
    pub source: String,
    json: Box<RawValue>,
    /// apiVersion, kind, namespace and name, as in `json`.
    identity: ObjectRef,
}

impl PartialEq for DesiredObject {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.json.get() == other.json.get()
    }
}

// Not the text: a release's Secret carries its values.
impl fmt::Debug for DesiredObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesiredObject")
            .field("source", &self.source)
            .field("object", &self.identity.to_string())
            .finish_non_exhaustive()
    }
}

/// How deep a manifest may nest: what serde_json reads back (its recursion
/// limit is 128), with room for the labels berth adds.
pub const MAX_MANIFEST_DEPTH: usize = 120;

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
    if depth(&manifest) > MAX_MANIFEST_DEPTH {
        return Err(error(
            None,
            format!("nested deeper than {MAX_MANIFEST_DEPTH} levels"),
        ));
    }
    Ok(Some(DesiredObject::new(source.to_string(), manifest)))
}

/// Nesting depth of a JSON value (a scalar is 0).
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl DesiredObject {
    /// An object from its manifest, which must be a mapping nested at most
    /// [`MAX_MANIFEST_DEPTH`] deep (as [`parse_manifest`] checks).
    pub fn new(source: String, manifest: Value) -> DesiredObject {
        let identity = identity_of(&manifest);
        // Serializing a `Value` cannot fail: its keys are strings.
        let json = serde_json::value::to_raw_value(&manifest).unwrap_or_default();
        DesiredObject {
            source,
            json,
            identity,
        }
    }

    /// The manifest as a JSON tree, parsed from its text.
    pub fn manifest(&self) -> Value {
        // The text was written from a `Value` no deeper than serde_json
        // reads back, so it parses.
        serde_json::from_str(self.json.get()).unwrap_or(Value::Null)
    }

    /// The manifest as compact JSON text, as the apply sends it.
    pub fn json(&self) -> &RawValue {
        &self.json
    }

    /// Changes the manifest: parsed, changed by `change`, written back.
    pub fn edit<T>(&mut self, change: impl FnOnce(&mut Value) -> T) -> T {
        let mut manifest = self.manifest();
        let result = change(&mut manifest);
        *self = DesiredObject::new(std::mem::take(&mut self.source), manifest);
        result
    }

    pub fn api_version(&self) -> &str {
        &self.identity.api_version
    }

    pub fn kind(&self) -> &str {
        &self.identity.kind
    }

    pub fn name(&self) -> &str {
        &self.identity.name
    }

    pub fn namespace(&self) -> Option<&str> {
        self.identity.namespace.as_deref()
    }

    pub fn object_ref(&self) -> &ObjectRef {
        &self.identity
    }

    /// Places the object in `namespace` (or none, for a cluster-scoped
    /// kind), marks it as owned by `release`, applied by the agent of
    /// `cluster`, and returns its digest: one edit for what a plan changes.
    pub fn prepare(&mut self, namespace: Option<&str>, release: &str, cluster: &str) -> String {
        let source = self.source.clone();
        self.edit(|manifest| {
            let metadata = metadata_mut(manifest);
            match namespace {
                Some(ns) => metadata.insert("namespace".into(), Value::String(ns.to_string())),
                None => metadata.remove("namespace"),
            };
            add_ownership(metadata, &source, release, cluster);
            digest_json(manifest)
        })
    }

    /// sha256 of the object's canonical JSON: equal digests mean nothing to apply.
    pub fn digest(&self) -> String {
        digest_json(&self.manifest())
    }
}

/// apiVersion, kind, namespace and name of a manifest.
fn identity_of(manifest: &Value) -> ObjectRef {
    let text = |pointer: &str| manifest.pointer(pointer).and_then(Value::as_str);
    ObjectRef {
        api_version: text("/apiVersion").unwrap_or_default().to_string(),
        kind: text("/kind").unwrap_or_default().to_string(),
        namespace: text("/metadata/namespace")
            .filter(|ns| !ns.is_empty())
            .map(str::to_string),
        name: text("/metadata/name").unwrap_or_default().to_string(),
    }
}

/// The manifest's metadata, made a mapping if it was not one.
fn metadata_mut(manifest: &mut Value) -> &mut Map<String, Value> {
    if !manifest["metadata"].is_object() {
        manifest["metadata"] = Value::Object(Map::new());
    }
    match &mut manifest["metadata"] {
        Value::Object(metadata) => metadata,
        // Made an object just above.
        _ => unreachable!("metadata is an object"),
    }
}

fn add_ownership(metadata: &mut Map<String, Value>, source: &str, release: &str, cluster: &str) {
    for (key, entries) in [
        (
            "labels",
            vec![(RELEASE_LABEL, release), (AGENT_LABEL, cluster)],
        ),
        ("annotations", vec![(SOURCE_ANNOTATION, source)]),
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
    fn parses_a_manifest_and_prepares_it() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {app: demo}\ndata:\n  a: \"1\"\n";
        let mut object = parse_manifest("demo/templates/cm.yaml", 1, text)
            .unwrap()
            .unwrap();
        assert_eq!(object.kind(), "ConfigMap");
        assert_eq!(object.namespace(), None);
        let before = object.digest();
        let digest = object.prepare(Some("demo"), "demo", "gke-1");
        assert_ne!(digest, before);
        assert_eq!(digest, object.digest());
        let manifest = object.manifest();
        assert_eq!(manifest["metadata"]["labels"]["app"], "demo");
        assert_eq!(manifest["metadata"]["labels"][RELEASE_LABEL], "demo");
        assert_eq!(manifest["metadata"]["labels"][AGENT_LABEL], "gke-1");
        assert_eq!(
            manifest["metadata"]["annotations"][SOURCE_ANNOTATION],
            "demo/templates/cm.yaml"
        );
        assert_eq!(object.object_ref().to_string(), "ConfigMap demo/settings");
        // What the apply sends is the same object, as compact JSON.
        let sent: Value = serde_json::from_str(object.json().get()).unwrap();
        assert_eq!(sent, manifest);
        assert!(!object.json().get().contains('\n'));
        // A cluster-scoped kind loses the namespace it was given.
        object.prepare(None, "demo", "gke-1");
        assert_eq!(object.namespace(), None);
        assert!(object.manifest()["metadata"].get("namespace").is_none());
    }

    #[test]
    fn a_manifest_nested_too_deep_is_refused() {
        let deep = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata: {}1{}\n",
            "[".repeat(MAX_MANIFEST_DEPTH),
            "]".repeat(MAX_MANIFEST_DEPTH)
        );
        let error = parse_manifest("t.yaml", 1, &deep).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("t.yaml: document 1: nested deeper than {MAX_MANIFEST_DEPTH} levels")
        );
        let fits = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata: {}1{}\n",
            "[".repeat(MAX_MANIFEST_DEPTH - 1),
            "]".repeat(MAX_MANIFEST_DEPTH - 1)
        );
        let object = parse_manifest("t.yaml", 1, &fits).unwrap().unwrap();
        assert_eq!(object.manifest()["kind"], "ConfigMap");
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
