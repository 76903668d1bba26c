//! One reconcile of one release, in stages: read the release file, render
//! it for this cluster, add its secrets, plan against the cluster and the
//! inventory ([`prepare`], the half `sync` and `diff` share); then apply,
//! prune and record ([`sync`]). Each stage runs in its own tracing span; a
//! sync ends in one line of the sync log.
//!
//! Nothing is applied or pruned unless every stage before apply succeeded
//! for every object. Rendering and reading git objects are CPU-bound or
//! blocking: they run on tokio's blocking pool, never on the async workers.

use std::sync::Arc;
use std::time::Instant;

use berth_chart::{ChartFiles, RenderError, RenderOptions};
use kube::Client;
use sha2::{Digest, Sha256};
use tracing::{Instrument, info, info_span, warn};

use crate::apply::{self, ApplyError};
use crate::config::AgentConfig;
use crate::context::ClusterContext;
use crate::inventory::{Counts, HistoryEntry, Inventory, InventoryError, InventoryStore, Outcome};
use crate::objects::{DesiredObject, ManifestError, parse_manifest};
use crate::plan::{self, Plan, PlanError, PlanSettings};
use crate::release::{ReleaseError, ReleaseFile};
use crate::secrets::{
    SALT_ANNOTATION, SecretsError, VaultSession, checksum, new_salt, secret_name, secret_object,
    stamp_checksum,
};
use crate::source::{CommitInfo, RepoPath, RepoTree, SourceError};

/// Annotation helm uses for hooks; berth does not run hooks, so those objects are left out.
const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";

/// Why a reconcile stopped. Each names the stage and, where it applies, the
/// file, line and cause; [`SyncError::outcome`] says what it means for the
/// release.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("release file {0}")]
    Release(#[from] ReleaseError),
    #[error("release file {file} is not UTF-8")]
    NotUtf8 { file: String },
    #[error("render: {0}")]
    Render(#[from] RenderError),
    #[error("render: {0}")]
    Manifest(#[from] ManifestError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
    #[error("plan: {0}")]
    Plan(Box<PlanError>),
    #[error("apply: {0}")]
    Apply(Box<ApplyError>),
    #[error("record: {0}")]
    Inventory(#[from] InventoryError),
    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    /// A stage's blocking task stopped unexpectedly (a bug in berth).
    #[error("{stage} stopped unexpectedly: {cause}")]
    Task { stage: &'static str, cause: String },
}

impl From<PlanError> for SyncError {
    fn from(error: PlanError) -> Self {
        SyncError::Plan(Box::new(error))
    }
}

impl From<ApplyError> for SyncError {
    fn from(error: ApplyError) -> Self {
        SyncError::Apply(Box::new(error))
    }
}

impl SyncError {
    /// What this failure means for the release: `Deferred` when nothing is
    /// wrong with the commit and the same sync is tried again with backoff
    /// (Vault down or sealed), `Failed` otherwise.
    pub fn outcome(&self) -> Outcome {
        match self {
            SyncError::Secrets(e) if e.is_transient() => Outcome::Deferred,
            _ => Outcome::Failed,
        }
    }
}

/// Runs CPU-bound or blocking work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    stage: &'static str,
    work: impl FnOnce() -> Result<T, SyncError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| SyncError::Task {
            stage,
            cause: join.to_string(),
        })?
}

/// A release rendered for one context.
#[derive(Debug)]
pub struct RenderedRelease {
    pub release: ReleaseFile,
    /// Objects to apply, in render order (hooks left out).
    pub objects: Vec<DesiredObject>,
    /// The rendered documents as multi-document YAML with `# Source:` comments.
    pub manifests: String,
    /// sha256 of `manifests`.
    pub manifests_digest: String,
}

/// Reads and validates the release file at `release_path` in `tree`.
pub fn read_release(tree: &RepoTree, release_path: &RepoPath) -> Result<ReleaseFile, SyncError> {
    let bytes = tree.read_file(release_path)?;
    let text = String::from_utf8(bytes).map_err(|_| SyncError::NotUtf8 {
        file: release_path.as_str().to_string(),
    })?;
    Ok(ReleaseFile::parse(&text, release_path.as_str())?)
}

/// The chart files of a release (its chart path must stay inside the repository).
pub fn read_chart(
    tree: &RepoTree,
    release_path: &RepoPath,
    release: &ReleaseFile,
) -> Result<ChartFiles, SyncError> {
    let chart_dir = release_path.parent().join(&release.chart)?;
    Ok(ChartFiles {
        files: tree.read_dir_all(&chart_dir)?,
    })
}

/// Renders `release` for `context`, offline: the same function serves
/// `berth render` and the agent.
pub fn render_release(
    tree: &RepoTree,
    release_path: &RepoPath,
    release: ReleaseFile,
    context: &ClusterContext,
) -> Result<RenderedRelease, SyncError> {
    let chart = read_chart(tree, release_path, &release)?;
    let options = RenderOptions {
        release_name: release.name.clone(),
        namespace: release.namespace.clone(),
        ..RenderOptions::default()
    };
    // As `helm install` does: the chart's crds/ first, then its templates; hooks are left out below.
    let output = berth_chart::render(&chart, &release.values_for(context), &options)?;
    let rendered = output
        .crds
        .iter()
        .chain(&output.manifests)
        .chain(output.hooks.iter().map(|hook| &hook.manifest));
    let mut manifests = String::new();
    let mut objects = Vec::new();
    let mut documents_per_source = std::collections::HashMap::<&str, usize>::new();
    for manifest in rendered {
        manifests.push_str("---\n# Source: ");
        manifests.push_str(&manifest.source);
        manifests.push('\n');
        manifests.push_str(manifest.content.trim_end_matches('\n'));
        manifests.push('\n');
        let index = documents_per_source
            .entry(manifest.source.as_str())
            .or_default();
        *index += 1;
        if let Some(object) = parse_manifest(&manifest.source, *index, &manifest.content)? {
            let is_hook = object
                .manifest
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(HELM_HOOK_ANNOTATION))
                .is_some();
            if is_hook {
                warn!(object = %object.object_ref(), "helm hook left out: berth does not run hooks");
            } else {
                objects.push(object);
            }
        }
    }
    let manifests_digest = hex::encode(Sha256::digest(manifests.as_bytes()));
    Ok(RenderedRelease {
        release,
        objects,
        manifests,
        manifests_digest,
    })
}

/// Reads the release's declared secrets from Vault, adds the release's Secret
/// to `objects` and stamps the checksum of its data on every pod template.
/// All or nothing: on any error `objects` is left as it was.
pub async fn add_secrets(
    client: &Client,
    vault: Option<&mut VaultSession>,
    release: &ReleaseFile,
    cluster: &str,
    objects: &mut Vec<DesiredObject>,
) -> Result<(), SyncError> {
    if release.secrets.is_empty() {
        return Ok(());
    }
    let session = vault.ok_or_else(|| SecretsError::NotConfigured {
        release: release.name.clone(),
    })?;
    let values = session.read_release_secrets(release, cluster).await?;
    // Keep the salt of the live Secret so that unchanged values give an unchanged checksum.
    let live = kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
        client.clone(),
        &release.namespace,
    )
    .get_opt(&secret_name(release))
    .await
    .map_err(|source| SyncError::Kube {
        context: format!(
            "reading Secret {}/{}",
            release.namespace,
            secret_name(release)
        ),
        source,
    })?;
    let salt = live
        .as_ref()
        .and_then(|secret| secret.metadata.annotations.as_ref())
        .and_then(|annotations| annotations.get(SALT_ANNOTATION))
        .cloned()
        .unwrap_or_else(new_salt);
    let digest = checksum(&salt, &values);
    let stamped = stamp_checksum(objects, &digest);
    objects.push(secret_object(release, &values, &salt));
    info!(
        secrets = values.len(),
        workloads = stamped,
        "secrets read from Vault"
    );
    Ok(())
}

/// What the shared first half of a reconcile needs.
pub struct Reconcile<'a> {
    pub config: &'a AgentConfig,
    pub client: &'a Client,
    /// The repository at the commit to reconcile.
    pub tree: Arc<RepoTree>,
    /// The application's release file in `tree`.
    pub release_file: &'a str,
    /// The agent's Vault session, for releases that declare secrets.
    pub vault: Option<&'a mut VaultSession>,
    /// Compare every object with the cluster, not only changed ones.
    pub full_compare: bool,
    /// Largest share of the release's objects the plan may delete.
    pub max_prune_fraction: f64,
}

/// What [`prepare`] found.
#[derive(Debug)]
pub enum Prepared {
    /// The release (named) does not deploy to this cluster's context.
    NotTargeted { release: String },
    /// The release rendered, with its secrets, planned against the cluster.
    Planned(Box<Planned>),
}

/// A release ready to apply.
#[derive(Debug)]
pub struct Planned {
    pub rendered: RenderedRelease,
    /// What the release applied last time.
    pub previous: Inventory,
    pub plan: Plan,
}

/// A reconcile that stopped, with what was known when it stopped.
#[derive(Debug)]
pub struct Stopped {
    pub error: SyncError,
    /// The release, once its file was read.
    pub release: Option<String>,
    /// The digest of the rendered manifests, once rendered.
    pub manifests_digest: Option<String>,
    /// Whether the release's records could be read, so the stop can be
    /// recorded in its history.
    pub recordable: bool,
}

impl Stopped {
    fn before_release(error: impl Into<SyncError>) -> Stopped {
        Stopped {
            error: error.into(),
            release: None,
            manifests_digest: None,
            recordable: false,
        }
    }
}

/// The half of a reconcile that changes nothing: read the release file,
/// load the release's inventory, render, add secrets, plan (with the
/// server's dry run).
pub async fn prepare(reconcile: Reconcile<'_>) -> Result<Prepared, Stopped> {
    let release = load_release(&reconcile.tree, reconcile.release_file)
        .await
        .map_err(Stopped::before_release)?;
    prepare_release(reconcile, release).await
}

/// The release file `release_file` of `tree`, read off the async workers.
pub async fn load_release(
    tree: &Arc<RepoTree>,
    release_file: &str,
) -> Result<ReleaseFile, SyncError> {
    let release_path = RepoPath::parse(release_file)?;
    let tree = Arc::clone(tree);
    blocking("reading the release file", move || {
        read_release(&tree, &release_path)
    })
    .instrument(info_span!("release"))
    .await
}

/// [`prepare`] for a release file already read.
pub async fn prepare_release(
    reconcile: Reconcile<'_>,
    release: ReleaseFile,
) -> Result<Prepared, Stopped> {
    let Reconcile {
        config,
        client,
        tree,
        release_file,
        vault,
        full_compare,
        max_prune_fraction,
    } = reconcile;
    let release_path = RepoPath::parse(release_file).map_err(Stopped::before_release)?;
    if !release.targets(&config.context) {
        return Ok(Prepared::NotTargeted {
            release: release.name,
        });
    }
    let name = release.name.clone();
    let stopped = |error: SyncError, recordable: bool, digest: Option<&str>| Stopped {
        error,
        release: Some(name.clone()),
        manifests_digest: digest.map(str::to_string),
        recordable,
    };
    let previous = store(config, client, &release.name)
        .load()
        .instrument(info_span!("inventory"))
        .await
        .map_err(|e| stopped(e.into(), false, None))?;

    let context = config.context.clone();
    let mut rendered = blocking("rendering", move || {
        render_release(&tree, &release_path, release, &context)
    })
    .instrument(info_span!("render"))
    .await
    .map_err(|e| stopped(e, true, None))?;
    let digest = rendered.manifests_digest.clone();
    add_secrets(
        client,
        vault,
        &rendered.release,
        &config.context.cluster,
        &mut rendered.objects,
    )
    .instrument(info_span!("secrets"))
    .await
    .map_err(|e| stopped(e, true, Some(&digest)))?;

    let settings = PlanSettings {
        cluster: config.context.cluster.clone(),
        full_compare,
        max_prune_fraction,
        force_conflicts: config.force_conflicts,
    };
    let plan = plan::plan(
        client,
        &rendered.release,
        rendered.objects.clone(),
        &previous,
        &settings,
    )
    .instrument(info_span!("plan"))
    .await
    .map_err(|e| stopped(e.into(), true, Some(&digest)))?;
    Ok(Prepared::Planned(Box::new(Planned {
        rendered,
        previous,
        plan,
    })))
}

fn store(config: &AgentConfig, client: &Client, release: &str) -> InventoryStore {
    InventoryStore::new(
        client.clone(),
        &config.state_namespace,
        release,
        config.history_limit,
    )
}

/// What one sync did.
#[derive(Clone, Debug)]
pub struct SyncReport {
    pub application: String,
    pub release: Option<String>,
    /// The commit synced (`None` when the source could not be read).
    pub commit: Option<CommitInfo>,
    pub counts: Counts,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Everything one sync needs.
pub struct SyncTarget<'a> {
    pub config: &'a AgentConfig,
    pub application: &'a crate::config::Application,
    pub client: &'a Client,
    pub tree: Arc<RepoTree>,
    /// Compare every object with the cluster, not only changed ones.
    pub full_compare: bool,
    /// The agent's Vault session, for releases that declare secrets.
    pub vault: Option<&'a mut VaultSession>,
}

/// Runs every stage for the tree's commit and writes the summary line to
/// the sync log.
pub async fn sync(target: SyncTarget<'_>) -> SyncReport {
    let started = Instant::now();
    let started_at = jiff::Timestamp::now().to_string();
    let commit = target
        .tree
        .commit_info()
        .cloned()
        .unwrap_or_else(|| CommitInfo {
            sha: "working-tree".into(),
            ..CommitInfo::default()
        });
    let span = info_span!(
        "sync",
        application = %target.application.name,
        commit = %commit.short_sha(),
    );
    let application = target.application.name.clone();
    let result = run_stages(target, &commit, &started_at, started)
        .instrument(span)
        .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let report = match result {
        Ok((release, counts, outcome)) => SyncReport {
            application,
            release: Some(release),
            commit: Some(commit),
            counts,
            outcome,
            error: None,
            duration_ms,
        },
        Err(stopped) => SyncReport {
            application,
            release: stopped.release,
            commit: Some(commit),
            counts: Counts::default(),
            outcome: stopped.error.outcome(),
            error: Some(stopped.error.to_string()),
            duration_ms,
        },
    };
    log_summary(&report);
    report
}

/// Writes the one structured line per sync to the sync log (target
/// `berth::sync_log`): failures at error level, the rest at info.
pub fn log_summary(report: &SyncReport) {
    let commit = report.commit.clone().unwrap_or_default();
    let release = report.release.as_deref().unwrap_or("");
    let error = report.error.as_deref().unwrap_or("");
    let message = match (&report.commit, report.release.as_deref()) {
        (Some(commit), Some(release)) => {
            format!("sync {} for {release} at {commit}", report.outcome)
        }
        (Some(commit), None) => format!("sync {} at {commit}", report.outcome),
        (None, _) => format!("sync {}", report.outcome),
    };
    macro_rules! sync_log {
        ($level:ident) => {
            tracing::$level!(
                target: "berth::sync_log",
                application = %report.application,
                release,
                commit = commit.sha.as_str(),
                subject = commit.subject.as_str(),
                author = commit.author.as_str(),
                created = report.counts.created,
                updated = report.counts.updated,
                deleted = report.counts.deleted,
                unchanged = report.counts.unchanged,
                duration_ms = report.duration_ms,
                outcome = %report.outcome,
                error,
                "{message}"
            )
        };
    }
    if matches!(report.outcome, Outcome::Failed | Outcome::Deferred) {
        sync_log!(error);
    } else {
        sync_log!(info);
    }
}

/// Stages of a sync: the shared first half, then apply and record.
async fn run_stages(
    target: SyncTarget<'_>,
    commit: &CommitInfo,
    started_at: &str,
    started: Instant,
) -> Result<(String, Counts, Outcome), Stopped> {
    let SyncTarget {
        config,
        application,
        client,
        tree,
        full_compare,
        vault,
    } = target;
    let record = |outcome_of: &Stopped| HistoryEntry {
        commit: commit.sha.clone(),
        subject: commit.subject.clone(),
        author: commit.author.clone(),
        manifests_digest: outcome_of.manifests_digest.clone().unwrap_or_default(),
        counts: Counts::default(),
        outcome: outcome_of.error.outcome(),
        error: Some(outcome_of.error.to_string()),
        started_at: started_at.to_string(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let prepared = prepare(Reconcile {
        config,
        client,
        tree,
        release_file: &application.release_file,
        vault,
        full_compare,
        max_prune_fraction: config.max_prune_fraction,
    })
    .await;
    let planned = match prepared {
        Ok(Prepared::Planned(planned)) => planned,
        Ok(Prepared::NotTargeted { release }) => {
            info!(%release, context = %config.context, "release does not target this context; skipped");
            return Ok((release, Counts::default(), Outcome::Skipped));
        }
        Err(stopped) => {
            if let (true, Some(release)) = (stopped.recordable, &stopped.release)
                && let Err(record_error) = store(config, client, release)
                    .record(None, record(&stopped))
                    .await
            {
                warn!(%record_error, "could not record the failed sync in the history");
            }
            return Err(stopped);
        }
    };
    let Planned {
        rendered,
        previous,
        plan,
    } = *planned;
    let name = rendered.release.name.clone();
    let store = store(config, client, &name);
    let counts = match apply::execute(client, &rendered.release, &plan, config.force_conflicts)
        .instrument(info_span!("apply"))
        .await
    {
        Ok(counts) => counts,
        Err(error) => {
            let stopped = Stopped {
                error: error.into(),
                release: Some(name),
                manifests_digest: Some(rendered.manifests_digest.clone()),
                recordable: true,
            };
            if let Err(record_error) = store.record(None, record(&stopped)).await {
                warn!(%record_error, "could not record the failed sync in the history");
            }
            return Err(stopped);
        }
    };

    let inventory = plan.inventory(&rendered.release, &commit.sha, &rendered.manifests_digest);
    let changed = counts.created + counts.updated + counts.deleted > 0;
    if changed || previous.commit != commit.sha || previous.objects != inventory.objects {
        let entry = HistoryEntry {
            commit: commit.sha.clone(),
            subject: commit.subject.clone(),
            author: commit.author.clone(),
            manifests_digest: rendered.manifests_digest.clone(),
            counts,
            outcome: Outcome::Succeeded,
            error: None,
            started_at: started_at.to_string(),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        store
            .record(Some(&inventory), entry)
            .instrument(info_span!("record"))
            .await
            .map_err(|e| Stopped {
                error: e.into(),
                release: Some(name.clone()),
                manifests_digest: Some(rendered.manifests_digest.clone()),
                recordable: false,
            })?;
    }
    Ok((name, counts, Outcome::Succeeded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_vault_defers_and_anything_else_fails() {
        let sealed = SyncError::Secrets(SecretsError::Sealed {
            address: "https://vault.example".into(),
        });
        assert_eq!(sealed.outcome(), Outcome::Deferred);
        let broken = SyncError::NotUtf8 {
            file: "deploy/release.yaml".into(),
        };
        assert_eq!(broken.outcome(), Outcome::Failed);
        let missing = SyncError::Source(SourceError::NotFound {
            path: "deploy/release.yaml".into(),
        });
        assert_eq!(missing.outcome(), Outcome::Failed);
    }
}
