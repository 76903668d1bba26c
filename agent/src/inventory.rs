//! What each release applied, and what happened in its last syncs, kept in the
//! cluster (a ConfigMap per release in berth's state namespace) so that any
//! agent restart, or `berth history`, sees the same record.
//!
//! The inventory is stored gzip-compressed. One that compresses to more than
//! [`SHARD_BYTES`] (a release of tens of thousands of objects) is split into
//! shard ConfigMaps named after a digest of their content: the new shards are
//! written first, then the state object is pointed at them, then the old
//! shards are deleted, so a reader (or an agent killed half-way) always finds
//! one complete inventory. docs/sync.md has the layout.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::health::Health;
use crate::objects::{FIELD_MANAGER, ObjectRef};

/// Where inventories written before compression keep them (still read).
const PLAIN_INVENTORY_KEY: &str = "inventory.json";
/// The compressed inventory, in the state object's `binaryData`.
const INVENTORY_KEY: &str = "inventory.json.gz";
/// In place of [`INVENTORY_KEY`]: which shards hold the compressed inventory.
const SHARDS_KEY: &str = "inventory-shards.json";
const HISTORY_KEY: &str = "history.json";
/// The key of a shard's part of the compressed inventory.
const SHARD_PART_KEY: &str = "part";
/// Label on inventory ConfigMaps, naming the release.
pub const INVENTORY_LABEL: &str = "berth.dev/inventory";
/// Label on shard ConfigMaps, naming the release (not [`INVENTORY_LABEL`]:
/// a shard is not a release).
const SHARD_LABEL: &str = "berth.dev/inventory-shard";
/// Label on shard ConfigMaps: the digest of the inventory they hold.
const SHARD_GENERATION_LABEL: &str = "berth.dev/inventory-generation";
/// Largest compressed inventory kept in the state object itself, and the
/// size of each shard: well under the API server's 1 MiB per ConfigMap,
/// leaving room for the history.
pub const SHARD_BYTES: usize = 512 * 1024;
/// Largest inventory JSON read back (a corrupt or hostile record cannot make
/// the agent inflate without bound): about 2 million objects.
const MAX_INVENTORY_JSON_BYTES: u64 = 512 * 1024 * 1024;
/// History texts (errors, health reasons) are cut at this length so that ten
/// entries always fit beside the inventory.
const MAX_HISTORY_TEXT_BYTES: usize = 4 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("reading the inventory of release {release}: {}", crate::kubernetes::describe(.source))]
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
    #[error("writing the inventory of release {release}: {}", crate::kubernetes::describe(.source))]
    Write {
        release: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating the state namespace {namespace}: {}", crate::kubernetes::describe(.source))]
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
    /// The sync deleted past the deletion guard because the commit's
    /// `Berth-Allow-Prune` trailer allowed this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletions_allowed: Option<usize>,
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

/// The name of one shard of an inventory too large for the state object.
fn shard_name(release: &str, generation: &str, part: usize) -> String {
    format!("berth-release-{release}-inventory-{generation}-{part}")
}

/// Where a sharded inventory is: `count` shards of `generation`, whose
/// parts in order are the gzip stream with digest `sha256`.
#[derive(Debug, Serialize, Deserialize)]
struct ShardIndex {
    generation: String,
    count: usize,
    sha256: String,
}

/// The inventory as gzip-compressed JSON.
fn compress(inventory: &Inventory) -> Result<Vec<u8>, std::io::Error> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    serde_json::to_writer(&mut encoder, inventory)?;
    encoder.flush()?;
    encoder.finish()
}

/// `text` cut to [`MAX_HISTORY_TEXT_BYTES`] on a character boundary.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_HISTORY_TEXT_BYTES {
        return text.to_string();
    }
    let mut end = MAX_HISTORY_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes cut)", &text[..end], text.len() - end)
}

impl HistoryEntry {
    /// The entry with its texts cut to a length ten entries can afford.
    fn bounded(mut self) -> HistoryEntry {
        self.error = self.error.as_deref().map(bounded);
        self.health_reason = self.health_reason.as_deref().map(bounded);
        self
    }
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
        self.read_named(&config_map_name(&self.release)).await
    }

    async fn read_named(&self, name: &str) -> Result<Option<ConfigMap>, InventoryError> {
        self.api
            .get_opt(name)
            .await
            .map_err(|source| InventoryError::Read {
                release: self.release.clone(),
                source,
            })
    }

    fn corrupt(&self, key: &'static str, cause: impl std::fmt::Display) -> InventoryError {
        InventoryError::Corrupt {
            release: self.release.clone(),
            key,
            cause: cause.to_string(),
        }
    }

    /// The inventory recorded in `state` (its shards read when it has them).
    async fn decode_inventory(
        &self,
        state: &Option<ConfigMap>,
    ) -> Result<Inventory, InventoryError> {
        let Some(state) = state else {
            return Ok(Inventory::default());
        };
        if state
            .data
            .as_ref()
            .is_some_and(|data| data.contains_key(PLAIN_INVENTORY_KEY))
        {
            return self.decode(&Some(state.clone()), PLAIN_INVENTORY_KEY);
        }
        let binary = state.binary_data.as_ref();
        let compressed = match binary.and_then(|data| data.get(INVENTORY_KEY)) {
            Some(bytes) => bytes.0.clone(),
            None => {
                let shards = state.data.as_ref().and_then(|data| data.get(SHARDS_KEY));
                let Some(shards) = shards else {
                    return Ok(Inventory::default());
                };
                let shards: ShardIndex =
                    serde_json::from_str(shards).map_err(|e| self.corrupt(SHARDS_KEY, e))?;
                self.read_shards(&shards).await?
            }
        };
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .take(MAX_INVENTORY_JSON_BYTES + 1)
            .read_to_end(&mut json)
            .map_err(|e| self.corrupt(INVENTORY_KEY, format!("not gzip: {e}")))?;
        if json.len() as u64 > MAX_INVENTORY_JSON_BYTES {
            return Err(self.corrupt(
                INVENTORY_KEY,
                format!("inflates to more than {MAX_INVENTORY_JSON_BYTES} bytes"),
            ));
        }
        serde_json::from_slice(&json).map_err(|e| self.corrupt(INVENTORY_KEY, e))
    }

    /// The compressed inventory put back together from its shards, checked
    /// against the digest the state object names.
    async fn read_shards(&self, index: &ShardIndex) -> Result<Vec<u8>, InventoryError> {
        let mut compressed = Vec::new();
        for part in 0..index.count {
            let name = shard_name(&self.release, &index.generation, part);
            let shard = self
                .read_named(&name)
                .await?
                .ok_or_else(|| self.corrupt(SHARDS_KEY, format!("shard {name} is missing")))?;
            let bytes = shard
                .binary_data
                .as_ref()
                .and_then(|data| data.get(SHARD_PART_KEY))
                .ok_or_else(|| self.corrupt(SHARDS_KEY, format!("shard {name} is empty")))?;
            compressed.extend_from_slice(&bytes.0);
        }
        if hex::encode(Sha256::digest(&compressed)) != index.sha256 {
            return Err(self.corrupt(
                SHARDS_KEY,
                "the shards do not add up to the recorded digest",
            ));
        }
        Ok(compressed)
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
        self.decode_inventory(&config_map).await
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
        history.insert(0, entry.bounded());
        history.truncate(self.history_limit);
        self.write(inventory, &existing, &history).await
    }

    /// Replaces the inventory and keeps the history: the intent written
    /// before an apply that creates objects ([`crate::plan::Plan::intent`]).
    pub async fn record_intent(&self, inventory: &Inventory) -> Result<(), InventoryError> {
        self.ensure_namespace().await?;
        let existing = self.read().await?;
        let history: Vec<HistoryEntry> = self.decode(&existing, HISTORY_KEY)?;
        self.write(Some(inventory), &existing, &history).await
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
        entry.health_reason = reason.map(|r| bounded(&r));
        self.write(None, &existing, &history).await
    }

    /// Writes the history and, when given, a new inventory; without one the
    /// inventory recorded in `existing` (the state object as read) is kept.
    async fn write(
        &self,
        inventory: Option<&Inventory>,
        existing: &Option<ConfigMap>,
        history: &[HistoryEntry],
    ) -> Result<(), InventoryError> {
        let history_json =
            serde_json::to_string(&history).map_err(|e| self.corrupt(HISTORY_KEY, e))?;
        let mut data = BTreeMap::from([(HISTORY_KEY.to_string(), history_json)]);
        let mut binary_data = BTreeMap::new();
        let mut generation = None;
        match inventory {
            Some(inventory) => {
                let compressed = compress(inventory).map_err(|e| self.corrupt(INVENTORY_KEY, e))?;
                if compressed.len() <= SHARD_BYTES {
                    binary_data.insert(INVENTORY_KEY.to_string(), ByteString(compressed));
                } else {
                    let index = self.write_shards(&compressed).await?;
                    generation = Some(index.generation.clone());
                    let index =
                        serde_json::to_string(&index).map_err(|e| self.corrupt(SHARDS_KEY, e))?;
                    data.insert(SHARDS_KEY.to_string(), index);
                }
            }
            None => {
                // Keep what is recorded: the same keys, written again, stay
                // owned by berth (server-side apply drops what it omits).
                if let Some(existing) = existing {
                    for key in [PLAIN_INVENTORY_KEY, SHARDS_KEY] {
                        if let Some(value) = existing.data.as_ref().and_then(|d| d.get(key)) {
                            data.insert(key.to_string(), value.clone());
                        }
                    }
                    if let Some(value) = existing
                        .binary_data
                        .as_ref()
                        .and_then(|d| d.get(INVENTORY_KEY))
                    {
                        binary_data.insert(INVENTORY_KEY.to_string(), value.clone());
                    }
                }
            }
        }
        let config_map = ConfigMap {
            metadata: self.metadata(config_map_name(&self.release), INVENTORY_LABEL, None),
            data: Some(data),
            binary_data: (!binary_data.is_empty()).then_some(binary_data),
            ..Default::default()
        };
        self.apply(&config_map).await?;
        if inventory.is_some() {
            self.delete_shards_except(generation.as_deref()).await?;
        }
        Ok(())
    }

    fn metadata(&self, name: String, label: &str, generation: Option<&str>) -> ObjectMeta {
        let mut labels = BTreeMap::from([
            (label.to_string(), self.release.clone()),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "berth".to_string(),
            ),
        ]);
        if let Some(generation) = generation {
            labels.insert(SHARD_GENERATION_LABEL.to_string(), generation.to_string());
        }
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        }
    }

    async fn apply(&self, config_map: &ConfigMap) -> Result<(), InventoryError> {
        let name = config_map.metadata.name.clone().unwrap_or_default();
        self.api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(config_map),
            )
            .await
            .map_err(|source| InventoryError::Write {
                release: self.release.clone(),
                source,
            })?;
        Ok(())
    }

    /// Writes `compressed` as shards named after its digest.
    async fn write_shards(&self, compressed: &[u8]) -> Result<ShardIndex, InventoryError> {
        let sha256 = hex::encode(Sha256::digest(compressed));
        let generation = sha256[..16].to_string();
        let parts: Vec<&[u8]> = compressed.chunks(SHARD_BYTES).collect();
        for (part, bytes) in parts.iter().enumerate() {
            let shard = ConfigMap {
                metadata: self.metadata(
                    shard_name(&self.release, &generation, part),
                    SHARD_LABEL,
                    Some(&generation),
                ),
                binary_data: Some(BTreeMap::from([(
                    SHARD_PART_KEY.to_string(),
                    ByteString(bytes.to_vec()),
                )])),
                ..Default::default()
            };
            self.apply(&shard).await?;
        }
        Ok(ShardIndex {
            generation,
            count: parts.len(),
            sha256,
        })
    }

    /// Deletes this release's shards but those of `keep`.
    async fn delete_shards_except(&self, keep: Option<&str>) -> Result<(), InventoryError> {
        let selector = format!("{SHARD_LABEL}={}", self.release);
        let shards = self
            .api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| InventoryError::Read {
                release: self.release.clone(),
                source,
            })?;
        for shard in shards.items {
            let generation = shard
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(SHARD_GENERATION_LABEL));
            if keep.is_some() && generation.map(String::as_str) == keep {
                continue;
            }
            let Some(name) = shard.metadata.name else {
                continue;
            };
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(InventoryError::Write {
                        release: self.release.clone(),
                        source,
                    });
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_history_texts_are_cut_on_a_character_boundary() {
        let short = "no route to host";
        assert_eq!(bounded(short), short);
        let long = "é".repeat(MAX_HISTORY_TEXT_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() < MAX_HISTORY_TEXT_BYTES + 40, "{}", cut.len());
        assert!(cut.ends_with("bytes cut)"));
    }

    #[test]
    fn a_compressed_inventory_is_gzip_of_its_json() {
        let inventory = Inventory {
            release: "shop".into(),
            namespace: "shop".into(),
            commit: "abc".into(),
            manifests_digest: "d".into(),
            objects: vec![InventoryEntry {
                object: ObjectRef {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some("shop".into()),
                    name: "settings".into(),
                },
                digest: "0".repeat(64),
            }],
        };
        let compressed = compress(&inventory).unwrap();
        let mut json = String::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .read_to_string(&mut json)
            .unwrap();
        assert_eq!(serde_json::from_str::<Inventory>(&json).unwrap(), inventory);
    }

    #[test]
    fn shard_names_are_valid_object_names_for_the_longest_release() {
        let name = shard_name(&"r".repeat(53), &"f".repeat(16), 999);
        assert!(name.len() <= 253, "{}", name.len());
    }
}
