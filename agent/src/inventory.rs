//! What each release applied, and what happened in its last syncs, kept in the
//! cluster (a ConfigMap per release in berth's state namespace) so that any
//! agent restart, or `berth history`, sees the same record.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};

use crate::health::Health;
use crate::objects::{FIELD_MANAGER, ObjectRef};

const INVENTORY_KEY: &str = "inventory.json";
const HISTORY_KEY: &str = "history.json";
/// Label on inventory ConfigMaps, naming the release.
pub const INVENTORY_LABEL: &str = "berth.dev/inventory";

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("reading the inventory of release {release}: {source}")]
    Read {
        release: String,
        #[source]
        source: kube::Error,
    },
    #[error("the inventory of release {release} is corrupt ({key}): {cause}")]
    Corrupt {
        release: String,
        key: &'static str,
        cause: String,
    },
    #[error("writing the inventory of release {release}: {source}")]
    Write {
        release: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating the state namespace {namespace}: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// One applied object, with the digest of what was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub digest: String,
}

/// The objects a release applied in its last successful sync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub release: String,
    pub namespace: String,
    /// The commit the objects were rendered from.
    pub commit: String,
    /// sha256 of the rendered manifests.
    pub manifests_digest: String,
    pub objects: Vec<InventoryEntry>,
}

impl Inventory {
    pub fn digest_of(&self, object: &ObjectRef) -> Option<&str> {
        self.objects
            .iter()
            .find(|entry| &entry.object == object)
            .map(|entry| entry.digest.as_str())
    }
}

/// How a sync ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
    Skipped,
    /// Waiting for something outside berth (Vault down or sealed); nothing was changed.
    Deferred,
    /// A failing commit was replaced by the last one that was healthy here.
    #[serde(rename = "rolled-back")]
    RolledBack,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Deferred => "deferred",
            Outcome::RolledBack => "rolled-back",
        })
    }
}

/// Object counts of one sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

/// One sync of one release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub commit: String,
    /// The commit's subject and author, as the sync log names them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// sha256 of the rendered manifests (empty when rendering failed).
    pub manifests_digest: String,
    pub counts: Counts,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RFC 3339 time the sync started.
    pub started_at: String,
    pub duration_ms: u64,
    /// The release's health after this sync, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Why it is not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_reason: Option<String>,
    /// For a rollback: the commit that failed (`commit` is the one re-applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_from: Option<String>,
}

/// The in-cluster record of one release.
pub struct InventoryStore {
    api: Api<ConfigMap>,
    namespace: String,
    release: String,
    history_limit: usize,
}

/// The name of the ConfigMap holding `release`'s inventory and history (its state object).
pub fn config_map_name(release: &str) -> String {
    format!("berth-release-{release}")
}

impl InventoryStore {
    pub fn new(client: Client, state_namespace: &str, release: &str, history_limit: usize) -> Self {
        Self {
            api: Api::namespaced(client, state_namespace),
            namespace: state_namespace.to_string(),
            release: release.to_string(),
            history_limit,
        }
    }

    async fn read(&self) -> Result<Option<ConfigMap>, InventoryError> {
        self.api
            .get_opt(&config_map_name(&self.release))
            .await
            .map_err(|source| InventoryError::Read {
                release: self.release.clone(),
                source,
            })
    }

    fn decode<T: serde::de::DeserializeOwned + Default>(
        &self,
        config_map: &Option<ConfigMap>,
        key: &'static str,
    ) -> Result<T, InventoryError> {
        let text = config_map
            .as_ref()
            .and_then(|cm| cm.data.as_ref())
            .and_then(|data| data.get(key));
        match text {
            None => Ok(T::default()),
            Some(text) => serde_json::from_str(text).map_err(|e| InventoryError::Corrupt {
                release: self.release.clone(),
                key,
                cause: e.to_string(),
            }),
        }
    }

    /// The last successful sync's objects (empty for a new release).
    pub async fn load(&self) -> Result<Inventory, InventoryError> {
        let config_map = self.read().await?;
        self.decode(&config_map, INVENTORY_KEY)
    }

    /// The newest entries first.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>, InventoryError> {
        let config_map = self.read().await?;
        self.decode(&config_map, HISTORY_KEY)
    }

    /// Records a sync: adds `entry` to the history and, when given, replaces the inventory.
    pub async fn record(
        &self,
        inventory: Option<&Inventory>,
        entry: HistoryEntry,
    ) -> Result<(), InventoryError> {
        self.ensure_namespace().await?;
        let existing = self.read().await?;
        let mut history: Vec<HistoryEntry> = self.decode(&existing, HISTORY_KEY)?;
        // A broken commit is retried on every full comparison; record its failure once.
        let repeated = history.first().is_some_and(|last| {
            inventory.is_none()
                && last.outcome == entry.outcome
                && last.commit == entry.commit
                && last.error == entry.error
        });
        if repeated {
            return Ok(());
        }
        history.insert(0, entry);
        history.truncate(self.history_limit);
        let inventory = match inventory {
            Some(inventory) => inventory.clone(),
            None => self.decode::<Inventory>(&existing, INVENTORY_KEY)?,
        };
        self.write(&inventory, &history).await
    }

    /// Records the health verdict of `commit`'s newest entry (a sync that
    /// changed the release).
    pub async fn record_health(
        &self,
        commit: &str,
        health: Health,
        reason: Option<String>,
    ) -> Result<(), InventoryError> {
        let existing = self.read().await?;
        let mut history: Vec<HistoryEntry> = self.decode(&existing, HISTORY_KEY)?;
        let Some(entry) = history.iter_mut().find(|e| e.commit == commit) else {
            return Ok(());
        };
        entry.health = Some(health);
        entry.health_reason = reason;
        let inventory = self.decode::<Inventory>(&existing, INVENTORY_KEY)?;
        self.write(&inventory, &history).await
    }

    async fn write(
        &self,
        inventory: &Inventory,
        history: &[HistoryEntry],
    ) -> Result<(), InventoryError> {
        let inventory_json =
            serde_json::to_string(inventory).map_err(|e| InventoryError::Corrupt {
                release: self.release.clone(),
                key: INVENTORY_KEY,
                cause: e.to_string(),
            })?;
        let history_json =
            serde_json::to_string(&history).map_err(|e| InventoryError::Corrupt {
                release: self.release.clone(),
                key: HISTORY_KEY,
                cause: e.to_string(),
            })?;
        let config_map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(config_map_name(&self.release)),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (INVENTORY_LABEL.to_string(), self.release.clone()),
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "berth".to_string(),
                    ),
                ])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                (INVENTORY_KEY.to_string(), inventory_json),
                (HISTORY_KEY.to_string(), history_json),
            ])),
            ..Default::default()
        };
        self.api
            .patch(
                &config_map_name(&self.release),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&config_map),
            )
            .await
            .map_err(|source| InventoryError::Write {
                release: self.release.clone(),
                source,
            })?;
        Ok(())
    }

    async fn ensure_namespace(&self) -> Result<(), InventoryError> {
        ensure_namespace(self.api.clone().into_client(), &self.namespace)
            .await
            .map_err(|source| InventoryError::Namespace {
                namespace: self.namespace.clone(),
                source,
            })
    }
}

/// Every release recorded in `state_namespace`, by name, with its history
/// (newest entry first).
pub async fn releases(
    client: Client,
    state_namespace: &str,
) -> Result<Vec<(String, Vec<HistoryEntry>)>, InventoryError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let list = api
        .list(&kube::api::ListParams::default().labels(INVENTORY_LABEL))
        .await
        .map_err(|source| InventoryError::Read {
            release: "(all)".into(),
            source,
        })?;
    let mut out = Vec::new();
    for config_map in list.items {
        let Some(release) = config_map
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(INVENTORY_LABEL))
            .cloned()
        else {
            continue;
        };
        let store = InventoryStore::new(client.clone(), state_namespace, &release, usize::MAX);
        let history = store.decode(&Some(config_map), HISTORY_KEY)?;
        out.push((release, history));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Creates `namespace` if it does not exist (never deletes one).
pub async fn ensure_namespace(client: Client, namespace: &str) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client);
    if api.get_opt(namespace).await?.is_some() {
        return Ok(());
    }
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/created-by".to_string(),
                "berth".to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        // Another sync created it meanwhile.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
