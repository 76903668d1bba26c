//! Planning a sync: which objects to apply, which to skip, which to prune, and
//! the guards that refuse an unsafe plan before anything is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope as ApiScope;
use serde_json::Value;
use tracing::debug;

use crate::inventory::{Inventory, InventoryEntry};
use crate::objects::{DesiredObject, FIELD_MANAGER, ObjectRef, RELEASE_LABEL, apply_order};
use crate::release::ReleaseFile;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "nothing rendered: refusing to sync a release with no objects (it would prune everything)"
    )]
    NothingRendered,
    #[error(
        "{object} (from {source_file}): unknown kind: the cluster has no {api_version} {kind} and the chart defines no such CRD"
    )]
    UnknownKind {
        object: ObjectRef,
        source_file: String,
        api_version: String,
        kind: String,
    },
    #[error("{object} (from {source_file}) is outside the release's scope: {reason}")]
    OutOfScope {
        object: ObjectRef,
        source_file: String,
        reason: String,
    },
    #[error("{object} is rendered twice (by {first} and {second})")]
    Duplicate {
        object: ObjectRef,
        first: String,
        second: String,
    },
    #[error(
        "refusing to delete {deleting} of {previous} objects in one sync (limit {limit:.0}%); {}; objects to delete: {objects}",
        how_to_allow(*deleting, *allowed)
    )]
    TooManyDeletions {
        deleting: usize,
        previous: usize,
        limit: f64,
        /// What the commit's `Berth-Allow-Prune` trailer allows, if it has one.
        allowed: Option<usize>,
        objects: String,
    },
    #[error(
        "the commit's {ALLOW_PRUNE_TRAILER} trailer {value:?} is neither a count nor <release>=<count>"
    )]
    BadAllowPrune { value: String },
    #[error(
        "{object} already exists and belongs to {owner}; set adoptExisting: true in the release file to take it over"
    )]
    NotOwned { object: ObjectRef, owner: String },
    #[error("{object} (from {source_file}) was rejected by the API server: {cause}")]
    Rejected {
        object: ObjectRef,
        source_file: String,
        cause: String,
    },
    #[error("{context}: {}", crate::kubernetes::describe(.source))]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
}

/// Resolves kinds to API resources (discovery, cached for one sync), knowing
/// also the kinds defined by CRDs in the same render, before they exist.
pub struct KindResolver {
    client: Client,
    cache: HashMap<GroupVersionKind, (Arc<ApiResource>, bool)>,
    /// (group, kind) → (plural, namespaced) of CRDs in the render.
    rendered_crds: HashMap<(String, String), (String, bool)>,
}

/// Whether a resolved kind exists in the cluster yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindState {
    Served,
    /// Defined by a CRD of this render that is not established yet.
    Pending,
}

impl KindResolver {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: HashMap::new(),
            rendered_crds: HashMap::new(),
        }
    }

    /// Learns the kinds that CRDs in the render define.
    pub fn learn_crds(&mut self, objects: &[DesiredObject]) {
        for object in objects
            .iter()
            .filter(|o| o.kind() == "CustomResourceDefinition")
        {
            let manifest = object.manifest();
            let spec = &manifest["spec"];
            if let (Some(group), Some(kind), Some(plural)) = (
                spec["group"].as_str(),
                spec["names"]["kind"].as_str(),
                spec["names"]["plural"].as_str(),
            ) {
                let namespaced = spec["scope"].as_str() != Some("Cluster");
                self.rendered_crds.insert(
                    (group.to_string(), kind.to_string()),
                    (plural.to_string(), namespaced),
                );
            }
        }
    }

    /// Forgets cached misses, e.g. after CRDs were established.
    pub fn refresh(&mut self) {
        self.cache.clear();
    }

    pub async fn resolve(
        &mut self,
        object: &ObjectRef,
    ) -> Result<Option<(Arc<ApiResource>, bool, KindState)>, kube::Error> {
        let gvk = GroupVersionKind::gvk(object.group(), object.version(), &object.kind);
        if let Some((resource, namespaced)) = self.cache.get(&gvk) {
            return Ok(Some((Arc::clone(resource), *namespaced, KindState::Served)));
        }
        match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((resource, capabilities)) => {
                let namespaced = capabilities.scope == ApiScope::Namespaced;
                let resource = Arc::new(resource);
                self.cache.insert(gvk, (Arc::clone(&resource), namespaced));
                Ok(Some((resource, namespaced, KindState::Served)))
            }
            Err(error) if is_missing_kind(&error) => {
                let key = (object.group().to_string(), object.kind.clone());
                Ok(self.rendered_crds.get(&key).map(|(plural, namespaced)| {
                    (
                        Arc::new(ApiResource::from_gvk_with_plural(&gvk, plural)),
                        *namespaced,
                        KindState::Pending,
                    )
                }))
            }
            Err(error) => Err(error),
        }
    }
}

fn is_missing_kind(error: &kube::Error) -> bool {
    match error {
        kube::Error::Discovery(_) => true,
        kube::Error::Api(status) => status.code == 404,
        _ => false,
    }
}

/// What to do with one desired object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Changed since the last sync (or a full comparison): apply it.
    Apply,
    /// Same digest as last applied, or the dry run shows the live object
    /// already as desired: nothing to send (a full comparison of a release
    /// that did not drift writes nothing).
    Skip,
}

#[derive(Clone, Debug)]
pub struct PlannedObject {
    pub object: DesiredObject,
    /// Shared by the objects of one kind.
    pub resource: Arc<ApiResource>,
    pub namespaced: bool,
    pub kind_state: KindState,
    pub digest: String,
    pub action: Action,
    /// The live object, read during preflight (None when it does not exist).
    /// Boxed, like the dry run: most planned objects have neither, and a
    /// release of thousands of objects keeps its plan small.
    pub live: Option<Box<DynamicObject>>,
    /// What the API server would store, from a server-side dry run.
    pub dry_run: Option<Box<DynamicObject>>,
}

impl PlannedObject {
    pub fn object_ref(&self) -> &ObjectRef {
        self.object.object_ref()
    }
}

/// The plan of one sync.
#[derive(Clone, Debug)]
pub struct Plan {
    /// In apply order.
    pub objects: Vec<PlannedObject>,
    /// Objects of the last inventory that the render no longer contains.
    pub prune: Vec<ObjectRef>,
    /// The deletions are past the guard and the commit's trailer allowed
    /// them: the count it allowed.
    pub deletions_allowed: Option<usize>,
}

/// The commit trailer that acknowledges deletions past the guard:
/// `Berth-Allow-Prune: 12` (for every release the commit syncs) or
/// `Berth-Allow-Prune: web=12` (for the release `web`).
pub const ALLOW_PRUNE_TRAILER: &str = "Berth-Allow-Prune";

/// How many deletions the commit's trailers allow `release` (the largest
/// that names it or no release); a malformed trailer is an error rather
/// than no permission, so that a typo is seen.
/// The error is the trailer's value that is not understood.
pub fn allowed_deletions(trailers: &[String], release: &str) -> Result<Option<usize>, String> {
    let mut allowed = None;
    for value in trailers {
        let bad = || value.clone();
        let (name, count) = match value.split_once('=') {
            Some((name, count)) => (Some(name.trim()), count.trim()),
            None => (None, value.trim()),
        };
        let count: usize = count.parse().map_err(|_| bad())?;
        if name.is_some_and(str::is_empty) {
            return Err(bad());
        }
        if name.is_none_or(|name| name == release) {
            allowed = allowed.max(Some(count));
        }
    }
    Ok(allowed)
}

/// The second half of the deletion guard's message: how to go on.
fn how_to_allow(deleting: usize, allowed: Option<usize>) -> String {
    match allowed {
        None => format!(
            "if the deletion is intended, add the trailer \"{ALLOW_PRUNE_TRAILER}: {deleting}\" to the commit message"
        ),
        Some(allowed) => {
            format!("the commit's {ALLOW_PRUNE_TRAILER} trailer allows {allowed}, fewer than that")
        }
    }
}

impl Plan {
    /// What the inventory must say before the apply starts, when the apply
    /// creates objects the last inventory does not name: those added with
    /// no digest (not yet applied). A sync killed half-way then leaves an
    /// inventory that names everything it may have created, and the next
    /// sync prunes what its render no longer holds instead of leaving it
    /// orphaned. `None` when the apply only touches recorded objects.
    pub fn intent(&self, previous: &Inventory) -> Option<Inventory> {
        let known: BTreeSet<&ObjectRef> = previous.objects.iter().map(|e| &e.object).collect();
        let new: Vec<InventoryEntry> = self
            .objects
            .iter()
            .filter(|p| !known.contains(p.object_ref()))
            .map(|p| InventoryEntry {
                object: p.object_ref().clone(),
                digest: String::new(),
            })
            .collect();
        if new.is_empty() {
            return None;
        }
        let mut intent = previous.clone();
        intent.objects.extend(new);
        Some(intent)
    }

    pub fn inventory(
        &self,
        release: &ReleaseFile,
        commit: &str,
        manifests_digest: &str,
    ) -> Inventory {
        Inventory {
            release: release.name.clone(),
            namespace: release.namespace.clone(),
            commit: commit.to_string(),
            manifests_digest: manifests_digest.to_string(),
            objects: self
                .objects
                .iter()
                .map(|p| InventoryEntry {
                    object: p.object_ref().clone(),
                    digest: p.digest.clone(),
                })
                .collect(),
        }
    }
}

/// Settings that shape a plan.
#[derive(Clone, Debug)]
pub struct PlanSettings {
    /// The agent's cluster name, written on every object.
    pub cluster: String,
    /// Compare every object with the cluster, not only those whose digest changed.
    pub full_compare: bool,
    pub max_prune_fraction: f64,
    /// The commit's `Berth-Allow-Prune` trailers ([`allowed_deletions`]).
    pub allow_prune: Vec<String>,
    /// Take over fields that another field manager set (corrects manual edits).
    pub force_conflicts: bool,
    /// Keep each object's live version and dry run whole (for `berth diff`);
    /// otherwise the live object keeps only the metadata the apply reads and
    /// the dry run is dropped once compared, so that the plan of a release
    /// of 10,000 objects holds each object once.
    pub keep_compared: bool,
}

/// Builds the plan: places each object in its namespace, checks scope and
/// ownership, and runs a server-side dry run of everything that would change.
/// Writes nothing.
/// `client` reads and dry-runs the objects (it may impersonate the
/// release's service account); `berth`, berth's own, reads namespaces.
pub async fn plan(
    client: &Client,
    berth: &Client,
    release: &ReleaseFile,
    rendered: Vec<DesiredObject>,
    previous: &Inventory,
    settings: &PlanSettings,
) -> Result<Plan, PlanError> {
    let allowed = allowed_deletions(&settings.allow_prune, &release.name)
        .map_err(|value| PlanError::BadAllowPrune { value })?;
    // Rendering nothing deletes everything: only when the commit says so.
    let rendered_nothing = rendered.is_empty();
    if rendered_nothing
        && allowed.is_none_or(|n| n < previous.objects.len())
        && !previous.objects.is_empty()
    {
        return Err(PlanError::NothingRendered);
    }
    let mut resolver = KindResolver::new(client.clone());
    resolver.learn_crds(&rendered);
    let allowed_namespaces: BTreeSet<&str> = std::iter::once(release.namespace.as_str())
        .chain(release.scope.namespaces.iter().map(String::as_str))
        .collect();

    let mut planned: Vec<PlannedObject> = Vec::with_capacity(rendered.len());
    let mut seen: BTreeMap<ObjectRef, String> = BTreeMap::new();
    for mut object in rendered {
        let before = object.object_ref().clone();
        let Some((resource, namespaced, kind_state)) =
            resolver
                .resolve(&before)
                .await
                .map_err(|source| PlanError::Kube {
                    context: format!("looking up kind {} {}", before.api_version, before.kind),
                    source,
                })?
        else {
            return Err(PlanError::UnknownKind {
                api_version: before.api_version.clone(),
                kind: before.kind.clone(),
                object: before,
                source_file: object.source.clone(),
            });
        };
        let namespace = if namespaced {
            let namespace = object.namespace().unwrap_or(&release.namespace).to_string();
            if !allowed_namespaces.contains(namespace.as_str()) {
                return Err(PlanError::OutOfScope {
                    object: before,
                    source_file: object.source.clone(),
                    reason: format!(
                        "namespace {namespace} is not the release's namespace {} nor listed in scope.namespaces",
                        release.namespace
                    ),
                });
            }
            Some(namespace)
        } else {
            if !release
                .scope
                .cluster_scoped_kinds
                .iter()
                .any(|k| k == object.kind())
            {
                return Err(PlanError::OutOfScope {
                    object: before,
                    source_file: object.source.clone(),
                    reason: format!(
                        "{} is cluster-scoped and not listed in scope.clusterScopedKinds",
                        object.kind()
                    ),
                });
            }
            None
        };
        let digest = object.prepare(namespace.as_deref(), &release.name, &settings.cluster);
        let object_ref = object.object_ref();
        if let Some(first) = seen.insert(object_ref.clone(), object.source.clone()) {
            return Err(PlanError::Duplicate {
                object: object_ref.clone(),
                first,
                second: object.source.clone(),
            });
        }
        let action =
            if !settings.full_compare && previous.digest_of(object_ref) == Some(digest.as_str()) {
                Action::Skip
            } else {
                Action::Apply
            };
        planned.push(PlannedObject {
            object,
            resource,
            namespaced,
            kind_state,
            digest,
            action,
            live: None,
            dry_run: None,
        });
    }
    planned.sort_by(|a, b| {
        apply_order(
            (a.object_ref(), a.namespaced),
            (b.object_ref(), b.namespaced),
        )
    });

    // Entries of the last inventory the render no longer holds.
    let leaving: Vec<&InventoryEntry> = if release.prune {
        previous
            .objects
            .iter()
            .filter(|entry| !seen.contains_key(&entry.object))
            .collect()
    } else {
        Vec::new()
    };
    // Objects a sync meant to create but never confirmed (an interrupted
    // sync's intent, no digest) go without counting against the guard: they
    // were never part of a release that synced.
    let previous_count = previous
        .objects
        .iter()
        .filter(|e| !e.digest.is_empty())
        .count();
    let deleting = leaving.iter().filter(|e| !e.digest.is_empty()).count();
    let prune: Vec<ObjectRef> = leaving.into_iter().map(|e| e.object.clone()).collect();
    let past_guard = (deleting > 1
        && deleting as f64 > settings.max_prune_fraction * previous_count as f64)
        || (rendered_nothing && previous_count > 0);
    let deletions_allowed = match allowed {
        _ if !past_guard => None,
        Some(allowed) if deleting <= allowed => Some(allowed),
        allowed => {
            return Err(PlanError::TooManyDeletions {
                deleting,
                previous: previous_count,
                limit: settings.max_prune_fraction * 100.0,
                allowed,
                objects: prune
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };

    preflight(client, berth, release, settings, &mut planned).await?;
    Ok(Plan {
        objects: planned,
        prune,
        deletions_allowed,
    })
}

/// Reads the live version of every object to apply, refuses objects owned by
/// someone else, and dry-runs the apply so a bad object fails before any write.
async fn preflight(
    client: &Client,
    berth: &Client,
    release: &ReleaseFile,
    settings: &PlanSettings,
    planned: &mut [PlannedObject],
) -> Result<(), PlanError> {
    let mut existing_namespaces = HashMap::new();
    for item in planned.iter_mut().filter(|p| p.action == Action::Apply) {
        if item.kind_state == KindState::Pending {
            // Its CRD is created by this sync; nothing to read or dry-run yet.
            continue;
        }
        let api = dynamic_api(client, item);
        item.live = api
            .get_opt(&item.object_ref().name)
            .await
            .map(|live| live.map(Box::new))
            .map_err(|source| PlanError::Kube {
                context: format!("reading {}", item.object_ref()),
                source,
            })?;
        if let Some(live) = &item.live {
            let owner = live
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(RELEASE_LABEL));
            match owner {
                Some(owner) if owner == &release.name => {}
                Some(other) => {
                    return Err(PlanError::NotOwned {
                        object: item.object_ref().clone(),
                        owner: format!("berth release {other}"),
                    });
                }
                None if release.adopt_existing => {}
                None => {
                    return Err(PlanError::NotOwned {
                        object: item.object_ref().clone(),
                        owner: "no berth release (created by someone else)".into(),
                    });
                }
            }
        }
        if let Some(namespace) = &item.object_ref().namespace {
            let exists = match existing_namespaces.get(namespace) {
                Some(exists) => *exists,
                None => {
                    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(berth.clone());
                    let exists = api
                        .get_opt(namespace)
                        .await
                        .map_err(|source| PlanError::Kube {
                            context: format!("reading namespace {namespace}"),
                            source,
                        })?
                        .is_some();
                    existing_namespaces.insert(namespace.clone(), exists);
                    exists
                }
            };
            if !exists {
                // The namespace is created by this sync: a dry run would only say it is missing.
                continue;
            }
        }
        let params = apply_params(settings.force_conflicts).dry_run();
        match api
            .patch(
                &item.object_ref().name,
                &params,
                &Patch::Apply(item.object.json()),
            )
            .await
        {
            Ok(result) => {
                if item
                    .live
                    .as_ref()
                    .is_some_and(|live| comparable(live) == comparable(&result))
                {
                    item.action = Action::Skip;
                }
                if settings.keep_compared {
                    item.dry_run = Some(Box::new(result));
                } else {
                    item.live = item.live.take().map(|live| Box::new(identity_only(*live)));
                }
            }
            Err(kube::Error::Api(status)) => {
                return Err(PlanError::Rejected {
                    object: item.object_ref().clone(),
                    source_file: item.object.source.clone(),
                    cause: status.message,
                });
            }
            Err(source) => {
                return Err(PlanError::Kube {
                    context: format!("dry-run apply of {}", item.object_ref()),
                    source,
                });
            }
        }
        debug!(object = %item.object_ref(), "preflight passed");
    }
    Ok(())
}

/// What the apply reads of a live object: that it exists, and its version.
fn identity_only(live: DynamicObject) -> DynamicObject {
    DynamicObject {
        types: live.types,
        metadata: kube::api::ObjectMeta {
            name: live.metadata.name,
            namespace: live.metadata.namespace,
            resource_version: live.metadata.resource_version,
            ..Default::default()
        },
        data: Value::Null,
    }
}

/// Server-side apply as berth's field manager.
pub fn apply_params(force_conflicts: bool) -> PatchParams {
    let params = PatchParams::apply(FIELD_MANAGER);
    if force_conflicts {
        params.force()
    } else {
        params
    }
}

/// The dynamic API for a planned object.
pub fn dynamic_api(client: &Client, item: &PlannedObject) -> Api<DynamicObject> {
    match (&item.object_ref().namespace, item.namespaced) {
        (Some(namespace), true) => Api::namespaced_with(client.clone(), namespace, &*item.resource),
        _ => Api::all_with(client.clone(), &*item.resource),
    }
}

/// A live object reduced to what a person compares: no server bookkeeping.
pub fn comparable(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "managedFields",
            "resourceVersion",
            "generation",
            "uid",
            "creationTimestamp",
        ] {
            metadata.remove(field);
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.remove("status");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailers(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn the_trailer_allows_a_count_for_every_release_or_for_one() {
        assert_eq!(allowed_deletions(&[], "web").unwrap(), None);
        assert_eq!(
            allowed_deletions(&trailers(&["12"]), "web").unwrap(),
            Some(12)
        );
        let both = trailers(&["api=3", " web = 7 "]);
        assert_eq!(allowed_deletions(&both, "web").unwrap(), Some(7));
        assert_eq!(allowed_deletions(&both, "api").unwrap(), Some(3));
        assert_eq!(allowed_deletions(&both, "db").unwrap(), None);
        // Several that apply: the largest.
        assert_eq!(
            allowed_deletions(&trailers(&["2", "web=5"]), "web").unwrap(),
            Some(5)
        );
    }

    #[test]
    fn a_malformed_trailer_is_an_error_not_silence() {
        for bad in ["lots", "-1", "web=", "=3", "web=all"] {
            let value = allowed_deletions(&trailers(&[bad]), "web").unwrap_err();
            let error = PlanError::BadAllowPrune { value }.to_string();
            assert!(
                error.contains(&format!("Berth-Allow-Prune trailer {bad:?} is neither")),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn the_guard_says_how_to_go_on() {
        let error = PlanError::TooManyDeletions {
            deleting: 4,
            previous: 5,
            limit: 50.0,
            allowed: None,
            objects: "a, b, c, d".into(),
        };
        assert!(
            error
                .to_string()
                .contains("add the trailer \"Berth-Allow-Prune: 4\" to the commit message"),
            "{error}"
        );
        let error = PlanError::TooManyDeletions {
            deleting: 4,
            previous: 5,
            limit: 50.0,
            allowed: Some(2),
            objects: "a, b, c, d".into(),
        };
        assert!(
            error.to_string().contains("allows 2, fewer than that"),
            "{error}"
        );
    }
}
