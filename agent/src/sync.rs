//! One sync of one application: source → render → plan → apply → record,
//! each stage in its own tracing span, with one summary line in the sync log.

use std::time::Instant;

use kube::Client;
use sha2::{Digest, Sha256};
use tracing::{Instrument, error, info, info_span, warn};

use crate::apply::{self, ApplyError};
use crate::config::{AgentConfig, Application};
use crate::context::ClusterContext;
use crate::inventory::{Counts, HistoryEntry, InventoryError, InventoryStore, Outcome};
use crate::objects::{DesiredObject, ManifestError, parse_manifest};
use crate::plan::{self, Plan, PlanError, PlanSettings};
use crate::release::{ReleaseError, ReleaseFile};
use crate::render::{self, ChartFiles, RenderError, RenderOptions};
use crate::secrets::{
    SALT_ANNOTATION, SecretsError, VaultSession, checksum, new_salt, secret_name, secret_object,
    stamp_checksum,
};
use crate::source::{RepoPath, RepoTree, SourceError};

/// Annotation helm uses for hooks; berth does not run hooks, so those objects are left out.
const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";

/// Why a sync did not complete. Each names the stage and, where it applies,
/// the file, line and cause.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("release file {0}")]
    Release(#[from] ReleaseError),
    #[error("render: {0}")]
    Render(#[from] RenderError),
    #[error("render: {0}")]
    Manifest(#[from] ManifestError),
    #[error("plan: {0}")]
    Plan(Box<PlanError>),
    #[error("apply: {0}")]
    Apply(Box<ApplyError>),
    #[error("record: {0}")]
    Inventory(#[from] InventoryError),
    #[error("release file {file} is not UTF-8")]
    NotUtf8 { file: String },
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
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

/// Renders a release for `context`, offline: the same function serves
/// `berth render` and the agent.
pub fn render_release(
    tree: &RepoTree,
    release_path: &RepoPath,
    context: &ClusterContext,
) -> Result<RenderedRelease, SyncError> {
    let release = read_release(tree, release_path)?;
    let chart = read_chart(tree, release_path, &release)?;
    let values = release.values_for(context);
    let options = RenderOptions {
        release_name: release.name.clone(),
        namespace: release.namespace.clone(),
        ..RenderOptions::default()
    };
    // As `helm install` does: the chart's crds/ first, then its templates; hooks are left out below.
    let output = render::render_full(&chart, &render::value::Value::from_yaml(&values), &options)?;
    let rendered: Vec<render::Manifest> = output
        .crds
        .into_iter()
        .chain(output.manifests)
        .chain(output.hooks.into_iter().map(|hook| hook.manifest))
        .collect();
    let mut manifests = String::new();
    let mut objects = Vec::new();
    let mut documents_per_source = std::collections::HashMap::<&str, usize>::new();
    for manifest in &rendered {
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

/// What one sync did.
#[derive(Clone, Debug)]
pub struct SyncReport {
    pub application: String,
    pub release: Option<String>,
    pub commit: Option<String>,
    pub counts: Counts,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Everything one sync needs.
pub struct SyncTarget<'a> {
    pub config: &'a AgentConfig,
    pub application: &'a Application,
    pub client: &'a Client,
    pub tree: &'a RepoTree,
    /// Compare every object with the cluster, not only changed ones.
    pub full_compare: bool,
    /// The agent's Vault session, for releases that declare secrets.
    pub vault: Option<&'a mut VaultSession>,
}

/// Runs render → plan → apply → record for the tree's commit and writes the
/// summary line to the sync log. Nothing is applied or pruned unless render
/// and plan (with its dry run) succeed for every object.
pub async fn sync(mut target: SyncTarget<'_>) -> SyncReport {
    let started = Instant::now();
    let started_at = jiff::Timestamp::now().to_string();
    let commit = target.tree.commit().unwrap_or("working-tree").to_string();
    let span = info_span!("sync", application = %target.application.name, commit = %commit);
    let result = run_stages(&mut target, &commit, &started_at, started)
        .instrument(span.clone())
        .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let (release, counts, outcome, error) = match result {
        Ok((release, counts, outcome)) => (Some(release), counts, outcome, None),
        Err((release, error, outcome)) => (release, Counts::default(), outcome, Some(error)),
    };
    let report = SyncReport {
        application: target.application.name.clone(),
        release,
        commit: Some(commit),
        counts,
        outcome,
        error,
        duration_ms,
    };
    log_summary(&report);
    report
}

/// The one structured line per sync per release.
pub fn log_summary(report: &SyncReport) {
    if matches!(report.outcome, Outcome::Failed | Outcome::Deferred) {
        error!(
            target: "berth::sync_log",
            application = %report.application,
            release = report.release.as_deref().unwrap_or(""),
            commit = report.commit.as_deref().unwrap_or(""),
            created = report.counts.created,
            updated = report.counts.updated,
            deleted = report.counts.deleted,
            unchanged = report.counts.unchanged,
            duration_ms = report.duration_ms,
            outcome = %report.outcome,
            error = report.error.as_deref().unwrap_or(""),
            "sync {}", report.outcome
        );
    } else {
        info!(
            target: "berth::sync_log",
            application = %report.application,
            release = report.release.as_deref().unwrap_or(""),
            commit = report.commit.as_deref().unwrap_or(""),
            created = report.counts.created,
            updated = report.counts.updated,
            deleted = report.counts.deleted,
            unchanged = report.counts.unchanged,
            duration_ms = report.duration_ms,
            outcome = %report.outcome,
            "sync finished"
        );
    }
}

type StageResult = Result<(String, Counts, Outcome), (Option<String>, String, Outcome)>;

async fn run_stages(
    target: &mut SyncTarget<'_>,
    commit: &str,
    started_at: &str,
    started: Instant,
) -> StageResult {
    let config = target.config;
    let release_path = RepoPath::parse(&target.application.release_file)
        .map_err(|e| (None, SyncError::from(e).to_string(), Outcome::Failed))?;

    // Render (offline); a release that cannot be read is not recorded anywhere
    // because its name, and so its inventory, is unknown.
    let render_span = info_span!("render");
    let release = render_span
        .in_scope(|| read_release(target.tree, &release_path))
        .map_err(|e| (None, e.to_string(), Outcome::Failed))?;
    let name = release.name.clone();
    if !release.targets(&config.context) {
        info!(release = %name, context = %config.context, "release does not target this context; skipped");
        return Ok((name, Counts::default(), Outcome::Skipped));
    }
    let store = InventoryStore::new(
        target.client.clone(),
        &config.state_namespace,
        &name,
        config.history_limit,
    );
    let previous = store
        .load()
        .instrument(info_span!("inventory"))
        .await
        .map_err(|e| {
            (
                Some(name.clone()),
                SyncError::from(e).to_string(),
                Outcome::Failed,
            )
        })?;

    let fail = |error: SyncError, digest: String| {
        let store = &store;
        let name = name.clone();
        async move {
            let message = error.to_string();
            // Vault down or sealed: nothing was wrong with the commit; try again later.
            let outcome = match &error {
                SyncError::Secrets(e) if e.is_transient() => Outcome::Deferred,
                _ => Outcome::Failed,
            };
            let entry = HistoryEntry {
                commit: commit.to_string(),
                manifests_digest: digest,
                counts: Counts::default(),
                outcome,
                error: Some(message.clone()),
                started_at: started_at.to_string(),
                duration_ms: started.elapsed().as_millis() as u64,
            };
            if let Err(record_error) = store.record(None, entry).await {
                warn!(%record_error, "could not record the failed sync in the history");
            }
            (Some(name), message, outcome)
        }
    };

    let mut rendered = match render_span
        .in_scope(|| render_release(target.tree, &release_path, &config.context))
    {
        Ok(rendered) => rendered,
        Err(error) => return Err(fail(error, String::new()).await),
    };
    if let Err(error) = add_secrets(
        target.client,
        target.vault.as_deref_mut(),
        &rendered.release,
        &config.context.cluster,
        &mut rendered.objects,
    )
    .instrument(info_span!("secrets"))
    .await
    {
        return Err(fail(error, rendered.manifests_digest.clone()).await);
    }

    let settings = PlanSettings {
        cluster: config.context.cluster.clone(),
        full_compare: target.full_compare,
        max_prune_fraction: config.max_prune_fraction,
        force_conflicts: config.force_conflicts,
    };
    let planned: Result<Plan, PlanError> = plan::plan(
        target.client,
        &rendered.release,
        rendered.objects.clone(),
        &previous,
        &settings,
    )
    .instrument(info_span!("plan"))
    .await;
    let planned = match planned {
        Ok(planned) => planned,
        Err(error) => return Err(fail(error.into(), rendered.manifests_digest.clone()).await),
    };

    let counts = match apply::execute(
        target.client,
        &rendered.release,
        &planned,
        config.force_conflicts,
    )
    .instrument(info_span!("apply"))
    .await
    {
        Ok(counts) => counts,
        Err(error) => return Err(fail(error.into(), rendered.manifests_digest.clone()).await),
    };

    let inventory = planned.inventory(&rendered.release, commit, &rendered.manifests_digest);
    let changed = counts.created + counts.updated + counts.deleted > 0;
    if changed || previous.commit != commit || previous.objects != inventory.objects {
        let entry = HistoryEntry {
            commit: commit.to_string(),
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
            .map_err(|e| {
                (
                    Some(name.clone()),
                    SyncError::from(e).to_string(),
                    Outcome::Failed,
                )
            })?;
    }
    Ok((name, counts, Outcome::Succeeded))
}
