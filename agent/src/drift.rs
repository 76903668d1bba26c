//! Event-driven drift: after a sync, berth watches the objects the release
//! owns (by its release label, metadata only) and wakes the release's
//! follower when someone else changes or deletes one, so a `kubectl scale`
//! or `kubectl edit` is undone within seconds rather than at the next full
//! comparison. The wake runs a full comparison of the release, which writes
//! only the objects whose dry run differs from the live object.
//!
//! What is kept per object is a 32-byte digest of what other field managers
//! own in it, so memory grows with the number of objects, not their size.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::health::Tracked;
use crate::objects::{FIELD_MANAGER, RELEASE_LABEL};

/// One watch: a kind in a namespace (`None`: cluster-scoped).
type WatchKey = (String, String, Option<String>);

/// The watches of one release; dropping it stops them.
#[derive(Default)]
pub struct DriftWatch {
    release: String,
    watches: BTreeMap<WatchKey, JoinHandle<()>>,
}

impl Drop for DriftWatch {
    fn drop(&mut self) {
        for task in self.watches.values() {
            task.abort();
        }
    }
}

impl DriftWatch {
    /// Watches `release`'s objects, one watch per kind and namespace of
    /// `objects`; keeps the watches that are still wanted and stops the
    /// others. `drifted` is notified on every change someone else makes.
    pub fn follow(
        &mut self,
        client: &Client,
        release: &str,
        objects: &[Tracked],
        drifted: &Arc<Notify>,
    ) {
        if release != self.release {
            for (_, task) in std::mem::take(&mut self.watches) {
                task.abort();
            }
            self.release = release.to_string();
        }
        let mut wanted: BTreeMap<WatchKey, &ApiResource> = BTreeMap::new();
        for tracked in objects {
            wanted.insert(
                (
                    tracked.resource.api_version.clone(),
                    tracked.resource.kind.clone(),
                    tracked.object.namespace.clone(),
                ),
                &tracked.resource,
            );
        }
        self.watches.retain(|key, task| {
            let keep = wanted.contains_key(key);
            if !keep {
                task.abort();
            }
            keep
        });
        for (key, resource) in wanted {
            if self.watches.contains_key(&key) {
                continue;
            }
            // Metadata only: the watch never holds whole objects.
            let api: Api<PartialObjectMeta<DynamicObject>> = match &key.2 {
                Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
                None => Api::all_with(client.clone(), resource),
            };
            debug!(%release, kind = %key.1, namespace = key.2.as_deref().unwrap_or(""), "watching for drift");
            let task = tokio::spawn(watch(
                api,
                release.to_string(),
                key.1.clone(),
                Arc::clone(drifted),
            ));
            self.watches.insert(key, task);
        }
    }

    /// How many watches run (one per kind and namespace).
    pub fn len(&self) -> usize {
        self.watches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }
}

/// What other field managers than berth own in the object, status aside:
/// a digest of their entries (manager, operation, subresource and fields),
/// and their names. A new digest means someone took a field or wrote one;
/// status writes (by controllers, all the time) leave it as it is.
fn foreign_fields(object: &PartialObjectMeta<DynamicObject>) -> ([u8; 32], String) {
    let mut entries: Vec<String> = Vec::new();
    let mut managers: Vec<&str> = Vec::new();
    for entry in object.managed_fields() {
        let manager = entry.manager.as_deref().unwrap_or("");
        if manager == FIELD_MANAGER || entry.subresource.as_deref() == Some("status") {
            continue;
        }
        let mut fields = entry
            .fields_v1
            .as_ref()
            .map(|f| f.0.clone())
            .unwrap_or_default();
        if let Some(fields) = fields.as_object_mut() {
            fields.remove("f:status");
            if fields.is_empty() {
                continue;
            }
        }
        entries.push(format!(
            "{manager}\n{}\n{}\n{fields}",
            entry.operation.as_deref().unwrap_or(""),
            entry.subresource.as_deref().unwrap_or("")
        ));
        managers.push(manager);
    }
    entries.sort();
    managers.sort_unstable();
    managers.dedup();
    let digest = Sha256::digest(entries.join("\n\n").as_bytes()).into();
    (digest, managers.join(", "))
}

async fn watch(
    api: Api<PartialObjectMeta<DynamicObject>>,
    release: String,
    kind: String,
    drifted: Arc<Notify>,
) {
    let config = watcher::Config::default().labels(&format!("{RELEASE_LABEL}={release}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    // uid → digest of the other managers' fields, as last seen.
    let mut seen: HashMap<String, [u8; 32]> = HashMap::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                // The watcher backs off and lists again by itself.
                debug!(%release, %kind, %error, "drift watch interrupted");
                continue;
            }
        };
        match event {
            // What the watch starts with is what the sync just compared.
            watcher::Event::InitApply(object) => {
                seen.insert(object.uid().unwrap_or_default(), foreign_fields(&object).0);
            }
            watcher::Event::Apply(object) => {
                let (digest, managers) = foreign_fields(&object);
                let before = seen.insert(object.uid().unwrap_or_default(), digest);
                // An empty set after a change is berth having taken its
                // fields back: nothing to compare.
                if before != Some(digest) && !managers.is_empty() {
                    info!(%release, object = %format!("{kind} {}", object.name_any()),
                        managers = %managers,
                        "managed object changed by another field manager; comparing the release");
                    drifted.notify_one();
                }
            }
            watcher::Event::Delete(object) => {
                seen.remove(&object.uid().unwrap_or_default());
                info!(%release, object = %format!("{kind} {}", object.name_any()),
                    "managed object deleted; comparing the release");
                drifted.notify_one();
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    fn entry(
        manager: &str,
        subresource: Option<&str>,
        fields: serde_json::Value,
    ) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            subresource: subresource.map(Into::into),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    fn object(entries: Vec<ManagedFieldsEntry>) -> PartialObjectMeta<DynamicObject> {
        PartialObjectMeta {
            types: None,
            metadata: kube::api::ObjectMeta {
                managed_fields: Some(entries),
                ..Default::default()
            },
            _phantom: std::marker::PhantomData,
        }
    }

    fn rolled_out(status: serde_json::Value) -> Vec<ManagedFieldsEntry> {
        vec![
            entry(
                FIELD_MANAGER,
                None,
                serde_json::json!({"f:spec": {"f:replicas": {}}}),
            ),
            entry(
                "kube-controller-manager",
                None,
                serde_json::json!({
                    "f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}},
                    "f:status": status,
                }),
            ),
            entry(
                "kubelet",
                Some("status"),
                serde_json::json!({"f:status": {"f:phase": {}}}),
            ),
        ]
    }

    #[test]
    fn status_writes_and_berth_itself_are_not_drift() {
        let before = foreign_fields(&object(rolled_out(serde_json::json!({"f:replicas": {}}))));
        let after = foreign_fields(&object(rolled_out(
            serde_json::json!({"f:replicas": {}, "f:availableReplicas": {}}),
        )));
        assert_eq!(before.0, after.0);
        assert_eq!(before.1, "kube-controller-manager");
    }

    #[test]
    fn a_scale_by_hand_is_drift() {
        let before = foreign_fields(&object(rolled_out(serde_json::json!({}))));
        let mut scaled = rolled_out(serde_json::json!({}));
        scaled.push(entry(
            "kubectl",
            Some("scale"),
            serde_json::json!({"f:spec": {"f:replicas": {}}}),
        ));
        let after = foreign_fields(&object(scaled));
        assert_ne!(before.0, after.0);
        assert_eq!(after.1, "kube-controller-manager, kubectl");
    }
}
