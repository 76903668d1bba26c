//! Event-driven drift: after a sync, berth watches the objects the release
//! owns and wakes the release's follower when someone else changes or
//! deletes one, so a `kubectl scale` or `kubectl edit` is undone within
//! seconds rather than at the next full comparison. The wake runs a full
//! comparison of the release, which writes only the objects whose dry run
//! differs from the live object.
//!
//! There is one watch per kind across the cluster (metadata only, by the
//! release label), shared by every release that holds objects of that
//! kind: a fleet of a thousand releases in a thousand namespaces holds a
//! handful of connections to the API server, not thousands. What is kept
//! per object is a 32-byte digest of what other field managers own in it
//! and its release's name, so memory grows with the number of objects, not
//! their size.
//!
//! berth may not be allowed to watch a kind across the cluster (an
//! install that gives it a Role per application namespace only): the
//! refused kind is then watched in each namespace where releases hold
//! objects of it, one watch per namespace, started and stopped as releases
//! come and go. Only a kind berth may not watch in a namespace either is
//! left to the full comparison.
//!
//! The same watches wake health waits ([`DriftWatches::changes`]): a
//! release waiting for its rollout hears which of its objects changed
//! (status writes included) and reads only those, instead of opening a
//! watch of its own per kind and namespace while it waits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::health::Tracked;
use crate::metrics::Metrics;
use crate::objects::{FIELD_MANAGER, ObjectRef, RELEASE_LABEL};

/// One watch: a kind (api version and kind).
type KindKey = (String, String);

/// The kinds of a release's objects, each with the namespaces its
/// namespaced objects are in (what a kind's watches per namespace cover).
type Places = BTreeMap<KindKey, BTreeSet<String>>;

/// The releases being watched: whom to wake, and which kinds each holds.
#[derive(Default)]
struct Releases {
    by_name: HashMap<String, (Arc<Notify>, Places)>,
    /// Health waits in progress, per release, with the kinds they wait on.
    waiting: HashMap<String, Vec<Arc<ChangedObjects>>>,
    /// Kinds berth may watch neither across the cluster nor in these
    /// namespaces.
    unwatched: BTreeSet<(KindKey, String)>,
}

impl Releases {
    /// Wakes `release`'s follower; false when no such release is watched.
    fn wake(&self, release: &str) -> bool {
        let watched = self.by_name.get(release);
        if let Some((drifted, _)) = watched {
            drifted.notify_one();
        }
        watched.is_some()
    }

    /// Tells the health waits of `release` that `object` changed.
    fn changed(&self, release: &str, object: &ObjectRef) {
        for changes in self.waiting.get(release).into_iter().flatten() {
            changes.add(object);
        }
    }

    /// The places of every release and every health wait.
    fn places(&self) -> impl Iterator<Item = &Places> {
        let followed = self.by_name.values().map(|(_, places)| places);
        let waited = self.waiting.values().flatten().map(|c| &c.places);
        followed.chain(waited)
    }

    fn holds(&self, key: &KindKey) -> bool {
        self.places().any(|places| places.contains_key(key))
    }

    /// The namespaces where releases hold objects of the kind `key`.
    fn namespaces(&self, key: &KindKey) -> BTreeSet<String> {
        self.places()
            .filter_map(|places| places.get(key))
            .flatten()
            .cloned()
            .collect()
    }
}

/// The objects of one release seen changing since a health wait last
/// looked, and the wake-up for it.
pub struct ChangedObjects {
    /// The kinds waited on (their watches run while the wait does).
    places: Places,
    objects: Mutex<BTreeSet<ObjectRef>>,
    notify: Notify,
}

impl ChangedObjects {
    fn add(&self, object: &ObjectRef) {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(object.clone());
        self.notify.notify_one();
    }

    /// Waits until an object changed (at once if one did since the last
    /// call) and returns those that did.
    pub async fn next(&self) -> BTreeSet<ObjectRef> {
        self.notify.notified().await;
        std::mem::take(&mut *self.objects.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A health wait's place in the [`DriftWatches`]; dropping it ends it.
pub struct HealthSubscription {
    watches: Arc<DriftWatches>,
    release: String,
    changes: Arc<ChangedObjects>,
    /// Whether every kind waited on is watched (a kind berth may watch
    /// neither across the cluster nor in the namespace is not: its objects
    /// must be read now and then).
    all_watched: bool,
}

impl HealthSubscription {
    pub fn changes(&self) -> &ChangedObjects {
        &self.changes
    }

    pub fn all_watched(&self) -> bool {
        self.all_watched
    }
}

impl Drop for HealthSubscription {
    fn drop(&mut self) {
        let mut releases = write(&self.watches.releases);
        if let Some(waits) = releases.waiting.get_mut(&self.release) {
            waits.retain(|changes| !Arc::ptr_eq(changes, &self.changes));
            if waits.is_empty() {
                releases.waiting.remove(&self.release);
            }
        }
        // The watches stay: the release's follow, right after its wait,
        // most often holds the same kinds; what no release holds any more
        // stops at the next follow or forget.
    }
}

/// The drift watches of every release the agent follows.
pub struct DriftWatches {
    client: Client,
    metrics: Arc<Metrics>,
    releases: Arc<RwLock<Releases>>,
    kinds: Mutex<BTreeMap<KindKey, JoinHandle<()>>>,
    /// Tells the watches of kinds watched per namespace that the
    /// namespaces releases hold objects in may have changed.
    places_changed: tokio::sync::watch::Sender<()>,
}

impl Drop for DriftWatches {
    fn drop(&mut self) {
        for task in self
            .kinds
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            task.abort();
        }
    }
}

impl DriftWatches {
    pub fn new(client: Client, metrics: Arc<Metrics>) -> DriftWatches {
        DriftWatches {
            client,
            metrics,
            releases: Arc::default(),
            kinds: Mutex::default(),
            places_changed: tokio::sync::watch::Sender::new(()),
        }
    }

    /// From now on, wakes `drifted` when someone else changes one of
    /// `release`'s objects (`objects`, what its last sync left); starts the
    /// watches of kinds no release held before.
    fn watch(&self, release: &str, objects: &[Tracked], drifted: &Arc<Notify>) {
        let resources = kinds_of(objects);
        {
            let mut releases = write(&self.releases);
            releases.by_name.insert(
                release.to_string(),
                (Arc::clone(drifted), places_of(objects)),
            );
        }
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        self.start(&mut kinds, resources);
        self.stop_unused(&mut kinds);
        self.places_changed.send_replace(());
    }

    /// From now on, records which of `release`'s objects of the kinds of
    /// `objects` change, for a health wait; starts the watches of kinds no
    /// release held before. Ends when the subscription is dropped.
    pub fn changes(self: &Arc<Self>, release: &str, objects: &[Tracked]) -> HealthSubscription {
        let resources = kinds_of(objects);
        let changes = Arc::new(ChangedObjects {
            places: places_of(objects),
            objects: Mutex::default(),
            notify: Notify::new(),
        });
        {
            let mut releases = write(&self.releases);
            releases
                .waiting
                .entry(release.to_string())
                .or_default()
                .push(Arc::clone(&changes));
        }
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        self.start(&mut kinds, resources);
        self.places_changed.send_replace(());
        let unwatched = &read(&self.releases).unwatched;
        let all_watched = changes.places.iter().all(|(key, namespaces)| {
            kinds.get(key).is_some_and(|task| !task.is_finished())
                && namespaces
                    .iter()
                    .all(|namespace| !unwatched.contains(&(key.clone(), namespace.clone())))
        });
        HealthSubscription {
            watches: Arc::clone(self),
            release: release.to_string(),
            changes,
            all_watched,
        }
    }

    /// Starts the watches of `resources` not yet watched.
    fn start(
        &self,
        kinds: &mut BTreeMap<KindKey, JoinHandle<()>>,
        resources: BTreeMap<KindKey, &ApiResource>,
    ) {
        for (key, resource) in resources {
            if kinds.contains_key(&key) {
                continue;
            }
            debug!(kind = %key.1, api_version = %key.0, "watching for drift");
            let task = tokio::spawn(watch_kind(
                KindWatch {
                    client: self.client.clone(),
                    resource: resource.clone(),
                    key: key.clone(),
                    releases: Arc::clone(&self.releases),
                },
                self.places_changed.subscribe(),
            ));
            kinds.insert(key, task);
        }
    }

    /// Stops waking anyone for `release`; stops the watches of kinds no
    /// release holds any more.
    fn forget(&self, release: &str) {
        write(&self.releases).by_name.remove(release);
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        self.stop_unused(&mut kinds);
        self.places_changed.send_replace(());
    }

    fn stop_unused(&self, kinds: &mut BTreeMap<KindKey, JoinHandle<()>>) {
        let releases = read(&self.releases);
        kinds.retain(|key, task| {
            let used = releases.holds(key);
            if !used {
                debug!(kind = %key.1, api_version = %key.0, "no release holds this kind; its drift watch stops");
                task.abort();
            }
            used
        });
        self.metrics.set_drift_watches(running(kinds));
    }

    /// How many kinds are watched (each across the cluster, or in each of
    /// its namespaces where berth may not watch across it).
    pub fn len(&self) -> usize {
        running(&self.kinds.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The kinds of `objects`, each with its API resource.
fn kinds_of(objects: &[Tracked]) -> BTreeMap<KindKey, &ApiResource> {
    objects
        .iter()
        .map(|tracked| {
            (
                (
                    tracked.resource.api_version.clone(),
                    tracked.resource.kind.clone(),
                ),
                &*tracked.resource,
            )
        })
        .collect()
}

/// The namespaces of `objects`, kind by kind.
fn places_of(objects: &[Tracked]) -> Places {
    let mut places = Places::new();
    for tracked in objects {
        let namespaces = places
            .entry((
                tracked.resource.api_version.clone(),
                tracked.resource.kind.clone(),
            ))
            .or_default();
        if let Some(namespace) = &tracked.object.namespace {
            namespaces.insert(namespace.clone());
        }
    }
    places
}

/// Kinds whose watch still runs (across the cluster or per namespace).
fn running(kinds: &BTreeMap<KindKey, JoinHandle<()>>) -> usize {
    kinds.values().filter(|task| !task.is_finished()).count()
}

/// One release's place in the [`DriftWatches`]; dropping it stops waking
/// the release's follower.
#[derive(Default)]
pub struct DriftWatch {
    watching: Option<(Arc<DriftWatches>, String)>,
}

impl Drop for DriftWatch {
    fn drop(&mut self) {
        if let Some((watches, release)) = self.watching.take() {
            watches.forget(&release);
        }
    }
}

impl DriftWatch {
    /// Watches `release`'s `objects` from now on, waking `drifted` (in
    /// place of what this handle watched before).
    pub fn follow(
        &mut self,
        watches: &Arc<DriftWatches>,
        release: &str,
        objects: &[Tracked],
        drifted: &Arc<Notify>,
    ) {
        if let Some((old, old_release)) = &self.watching
            && (old_release != release || !Arc::ptr_eq(old, watches))
        {
            old.forget(old_release);
        }
        watches.watch(release, objects, drifted);
        self.watching = Some((Arc::clone(watches), release.to_string()));
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

/// What the watch of one kind last saw of an object.
struct Seen {
    release: String,
    digest: [u8; 32],
}

/// What the watches of one kind share.
struct KindWatch {
    client: Client,
    resource: ApiResource,
    key: KindKey,
    releases: Arc<RwLock<Releases>>,
}

/// A task aborted when dropped: the watches per namespace of a kind end
/// with the kind's task.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches one kind across the cluster, metadata only and by the release
/// label: the watch never holds whole objects and serves every release. If
/// berth may not, watches it in each namespace where releases hold objects
/// of it, following the releases as they change.
async fn watch_kind(watch: KindWatch, mut places_changed: tokio::sync::watch::Receiver<()>) {
    let kind = &watch.key.1;
    let api = Api::all_with(watch.client.clone(), &watch.resource);
    let Some(reason) = follow(api, &watch).await else {
        return;
    };
    info!(%kind, %reason, "berth may not watch this kind across the cluster; watching it in each namespace of its releases");
    let watch = Arc::new(watch);
    let mut by_namespace: BTreeMap<String, AbortOnDrop> = BTreeMap::new();
    loop {
        let wanted = read(&watch.releases).namespaces(&watch.key);
        by_namespace.retain(|namespace, _| {
            let keep = wanted.contains(namespace);
            if !keep {
                // Tried again if a release comes back to it.
                write(&watch.releases)
                    .unwatched
                    .remove(&(watch.key.clone(), namespace.clone()));
            }
            keep
        });
        for namespace in wanted {
            by_namespace.entry(namespace.clone()).or_insert_with(|| {
                let watch = Arc::clone(&watch);
                AbortOnDrop(tokio::spawn(async move {
                    let api = Api::namespaced_with(watch.client.clone(), &namespace, &watch.resource);
                    if let Some(reason) = follow(api, &watch).await {
                        warn!(kind = %watch.key.1, %namespace, %reason,
                            "berth may not watch this kind in the namespace; its drift there is found by the full comparison only");
                        write(&watch.releases)
                            .unwatched
                            .insert((watch.key.clone(), namespace));
                    }
                }))
            });
        }
        if places_changed.changed().await.is_err() {
            return;
        }
    }
}

fn read(releases: &RwLock<Releases>) -> std::sync::RwLockReadGuard<'_, Releases> {
    releases.read().unwrap_or_else(|p| p.into_inner())
}

fn write(releases: &RwLock<Releases>) -> std::sync::RwLockWriteGuard<'_, Releases> {
    releases.write().unwrap_or_else(|p| p.into_inner())
}

/// Follows one watch (across the cluster or in a namespace) and wakes the
/// releases whose objects change; returns the API server's reason when it
/// refuses the watch (403), else runs until aborted.
async fn follow(api: Api<PartialObjectMeta<DynamicObject>>, watch: &KindWatch) -> Option<String> {
    let (api_version, kind) = &watch.key;
    let releases = &watch.releases;
    let reference = |object: &PartialObjectMeta<DynamicObject>| ObjectRef {
        api_version: api_version.clone(),
        kind: kind.clone(),
        namespace: object.namespace(),
        name: object.name_any(),
    };
    let config = watcher::Config::default().labels(RELEASE_LABEL);
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    // uid → what was last seen; what the first list finds is what the
    // syncs just compared.
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut listed_once = false;
    // Objects seen before a relist that the relist did not return.
    let mut relisted: Option<BTreeSet<String>> = None;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(
                watcher::Error::InitialListFailed(kube::Error::Api(status))
                | watcher::Error::WatchStartFailed(kube::Error::Api(status)),
            ) if status.code == 403 => return Some(status.message),
            Err(error) => {
                // The watcher backs off and lists again by itself.
                debug!(%kind, %error, "drift watch interrupted");
                continue;
            }
        };
        let (release, change) = match event {
            watcher::Event::Init => {
                relisted = listed_once.then(BTreeSet::new);
                continue;
            }
            watcher::Event::InitDone => {
                listed_once = true;
                if let Some(found) = relisted.take() {
                    // Deleted while the watch was down.
                    let gone: Vec<String> = seen
                        .keys()
                        .filter(|uid| !found.contains(*uid))
                        .cloned()
                        .collect();
                    let releases = read(releases);
                    for uid in gone {
                        if let Some(object) = seen.remove(&uid)
                            && releases.wake(&object.release)
                        {
                            info!(release = %object.release, %kind,
                                "managed object deleted while the watch was down; comparing the release");
                        }
                    }
                }
                continue;
            }
            watcher::Event::InitApply(object) | watcher::Event::Apply(object) => {
                let Some(release) = object.labels().get(RELEASE_LABEL).cloned() else {
                    continue;
                };
                read(releases).changed(&release, &reference(&object));
                let uid = object.uid().unwrap_or_default();
                if let Some(found) = &mut relisted {
                    found.insert(uid.clone());
                }
                let (digest, managers) = foreign_fields(&object);
                let before = seen.insert(
                    uid,
                    Seen {
                        release: release.clone(),
                        digest,
                    },
                );
                // The first sight of an object is the state a sync left;
                // an empty set after a change is berth having taken its
                // fields back: nothing to compare.
                let changed = before.is_some_and(|b| b.digest != digest) && !managers.is_empty();
                if !changed {
                    continue;
                }
                let change = format!(
                    "{kind} {} changed by another field manager ({managers})",
                    object.name_any()
                );
                (release, change)
            }
            watcher::Event::Delete(object) => {
                // An object whose release label was taken away leaves the
                // watch as a deletion, without the label.
                let last = seen.remove(&object.uid().unwrap_or_default());
                let Some(release) = object
                    .labels()
                    .get(RELEASE_LABEL)
                    .cloned()
                    .or(last.map(|seen| seen.release))
                else {
                    continue;
                };
                read(releases).changed(&release, &reference(&object));
                (
                    release,
                    format!("{kind} {} deleted or unlabelled", object.name_any()),
                )
            }
        };
        let releases = read(releases);
        if releases.wake(&release) {
            info!(%release, change = %change, "managed object changed; comparing the release");
        }
    }
    None
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
