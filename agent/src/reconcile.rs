//! One reconcile of one release, in stages: read the release file, render
//! it for this cluster, add its secrets, plan against the cluster and the
//! inventory ([`prepare`], the half `sync` and `diff` share); then apply,
//! prune and record ([`sync`]). Each stage runs in its own tracing span; a
//! sync ends in one line of the sync log.
//!
//! Nothing is applied or pruned unless every stage before apply succeeded
//! for every object. Rendering and reading git objects are CPU-bound or
//! blocking: they run on tokio's blocking pool, never on the async workers.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_chart::{ChartFiles, HelmCompat, RenderError, RenderLimits, RenderOptions};
use kube::Client;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::apply::{self, ApplyError};
use crate::config::AgentConfig;
use crate::context::ClusterContext;
use crate::health::{self, Health, Tracked, Verdict};
use crate::hooks::{self, Hook, HookError, HookEvent};
use crate::inventory::{Counts, HistoryEntry, Inventory, InventoryError, InventoryStore, Outcome};
use crate::limits::Limits;
use crate::objects::{DesiredObject, ManifestError, parse_manifest};
use crate::plan::{self, Plan, PlanError, PlanSettings};
use crate::release::{ReleaseError, ReleaseFile};
use crate::secrets::{
    SALT_ANNOTATION, SecretsError, VaultSession, checksum, new_salt, secret_name, secret_object,
    stamp_checksum,
};
use crate::source::{CommitInfo, GitSource, RepoPath, RepoTree, SourceError};

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
    #[error("hook: {0}")]
    Hook(Box<HookError>),
    #[error("record: {0}")]
    Inventory(#[from] InventoryError),
    #[error("{context}: {}", crate::kubernetes::describe(.source))]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    /// A stage's blocking task stopped unexpectedly (a bug in berth).
    #[error("{stage} stopped unexpectedly: {cause}")]
    Task { stage: &'static str, cause: String },
    #[error("impersonating service account {account}: {cause}")]
    Impersonation { account: String, cause: String },
}

impl From<PlanError> for SyncError {
    fn from(error: PlanError) -> Self {
        SyncError::Plan(Box::new(error))
    }
}

impl From<HookError> for SyncError {
    fn from(error: HookError) -> Self {
        SyncError::Hook(Box::new(error))
    }
}

impl From<ApplyError> for SyncError {
    fn from(error: ApplyError) -> Self {
        SyncError::Apply(Box::new(error))
    }
}

impl SyncError {
    /// Whether a guard refused to delete what the plan would have deleted.
    pub fn is_deletion_guard(&self) -> bool {
        matches!(
            self,
            SyncError::Plan(error)
                if matches!(**error, PlanError::NothingRendered | PlanError::TooManyDeletions { .. })
        )
    }

    /// What this failure means for the release: `Deferred` when nothing is
    /// wrong with the commit and the same sync is tried again with backoff
    /// (Vault down or sealed), `Failed` otherwise.
    pub fn outcome(&self) -> Outcome {
        match self {
            SyncError::Secrets(e) if e.is_transient() => Outcome::Deferred,
            _ => Outcome::Failed,
        }
    }

    /// Whether the API server could not be reached or asked to be left
    /// alone (a connection refused or cut, 429 or 5xx once kube-rs's own
    /// retries are spent): the commit may be fine, so the sync is tried
    /// again with backoff rather than at the next full comparison.
    pub fn is_api_unavailable(&self) -> bool {
        let unavailable = crate::kubernetes::is_unavailable;
        match self {
            SyncError::Kube { source, .. } => unavailable(source),
            SyncError::Plan(error) => {
                matches!(&**error, PlanError::Kube { source, .. } if unavailable(source))
            }
            SyncError::Apply(error) => match &**error {
                ApplyError::Apply { source, .. }
                | ApplyError::Namespace { source, .. }
                | ApplyError::Prune { source, .. } => unavailable(source),
                ApplyError::CrdNotEstablished { .. } => false,
            },
            SyncError::Inventory(
                InventoryError::Read { source, .. }
                | InventoryError::Write { source, .. }
                | InventoryError::Namespace { source, .. },
            ) => unavailable(source),
            _ => false,
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

/// How long each stage of one sync took, for the metrics.
#[derive(Debug, Default)]
pub struct StageClock(std::sync::Mutex<Vec<(&'static str, Duration)>>);

impl StageClock {
    /// Runs `work` (one stage, already in its span) and notes how long it
    /// took. The stage's future is boxed, so that a sync's future holds the
    /// stage it is in rather than room for its largest one: at a fleet's
    /// start every follower waits in its first stages at once.
    pub fn time<'a, T: 'a>(
        &'a self,
        stage: &'static str,
        work: impl Future<Output = T> + Send + 'a,
    ) -> Pin<Box<dyn Future<Output = T> + Send + 'a>> {
        Box::pin(async move {
            let started = Instant::now();
            let output = work.await;
            if let Ok(mut stages) = self.0.lock() {
                stages.push((stage, started.elapsed()));
            }
            output
        })
    }

    fn take(&self) -> Vec<(&'static str, Duration)> {
        self.0
            .lock()
            .map(|mut stages| std::mem::take(&mut *stages))
            .unwrap_or_default()
    }
}

/// A release rendered for one context.
#[derive(Debug)]
pub struct RenderedRelease {
    pub release: ReleaseFile,
    /// Objects to apply, in render order (hooks apart).
    pub objects: Vec<DesiredObject>,
    /// Objects annotated as Helm hooks (test hooks left out).
    pub hooks: Vec<Hook>,
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
    helm: HelmCompat,
    limits: RenderLimits,
) -> Result<RenderedRelease, SyncError> {
    let chart = read_chart(tree, release_path, &release)?;
    let options = RenderOptions {
        release_name: release.name.clone(),
        namespace: release.namespace.clone(),
        helm: release.helm_compat.unwrap_or(helm),
        limits,
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
    let mut hooks = Vec::new();
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
            match Hook::of(&object) {
                None => objects.push(object),
                Some(hook) if hook.events.iter().any(|e| e.starts_with("test")) => {
                    debug!(object = %object.object_ref(), "test hook left out: berth does not run tests");
                }
                Some(hook) => hooks.push(hook),
            }
        }
    }
    let manifests_digest = hex::encode(Sha256::digest(manifests.as_bytes()));
    Ok(RenderedRelease {
        release,
        objects,
        hooks,
        manifests,
        manifests_digest,
    })
}

/// Reads the release's declared secrets from Vault, adds the release's Secret
/// to `objects` and stamps the checksum of its data on every pod template.
/// All or nothing: on any error `objects` is left as it was.
pub async fn add_secrets(
    client: &Client,
    vault: Option<&Mutex<VaultSession>>,
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
    let values = session
        .lock()
        .await
        .read_release_secrets(release, cluster)
        .await?;
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
    pub vault: Option<&'a Mutex<VaultSession>>,
    /// Compare every object with the cluster, not only changed ones.
    pub full_compare: bool,
    /// Largest share of the release's objects the plan may delete.
    pub max_prune_fraction: f64,
    /// Keep each object's live version and dry run in the plan (`berth
    /// diff` shows them); a sync keeps only what its apply needs.
    pub keep_compared: bool,
    /// Where the stages' durations go.
    pub clock: &'a StageClock,
    /// How many syncs render and plan at once.
    pub limits: &'a Limits,
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
pub struct Planned {
    pub rendered: RenderedRelease,
    /// What the release applied last time.
    pub previous: Inventory,
    pub plan: Plan,
    /// The client that plans, applies and prunes: berth's own, or one
    /// impersonating the release's `serviceAccountName`.
    pub writer: Client,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // kube's Client has no Debug; the rest says what was planned.
        f.debug_struct("Planned")
            .field("rendered", &self.rendered)
            .field("previous", &self.previous)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
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
    /// Whether the release asks to be rolled back when it fails.
    pub rollback: bool,
}

impl Stopped {
    fn before_release(error: impl Into<SyncError>) -> Stopped {
        Stopped {
            error: error.into(),
            release: None,
            manifests_digest: None,
            recordable: false,
            rollback: false,
        }
    }
}

/// The half of a reconcile that changes nothing: read the release file,
/// load the release's inventory, render, add secrets, plan (with the
/// server's dry run).
pub async fn prepare(reconcile: Reconcile<'_>) -> Result<Prepared, Stopped> {
    let release = reconcile
        .clock
        .time(
            "release",
            load_release(&reconcile.tree, reconcile.release_file),
        )
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
        keep_compared,
        clock,
        limits,
    } = reconcile;
    let release_path = RepoPath::parse(release_file).map_err(Stopped::before_release)?;
    if !release.targets(&config.context) {
        return Ok(Prepared::NotTargeted {
            release: release.name,
        });
    }
    let name = release.name.clone();
    let rollback = release.rollback;
    let stopped = |error: SyncError, recordable: bool, digest: Option<&str>| Stopped {
        error,
        release: Some(name.clone()),
        manifests_digest: digest.map(str::to_string),
        recordable,
        rollback,
    };
    let context = config.context.clone();
    let helm = config.helm_compat;
    let render_limits = config.render_limits;
    let allow_prune = tree
        .commit_info()
        .map(|commit| commit.allow_prune.clone())
        .unwrap_or_default();
    let rendering = async {
        let _permit = limits.render().await;
        blocking("rendering", move || {
            render_release(&tree, &release_path, release, &context, helm, render_limits)
        })
        .await
    };
    let mut rendered = clock
        .time("render", rendering.instrument(info_span!("render")))
        .await
        .map_err(|e| stopped(e, true, None))?;
    let digest = rendered.manifests_digest.clone();
    let secrets = add_secrets(
        client,
        vault,
        &rendered.release,
        &config.context.cluster,
        &mut rendered.objects,
    );
    clock
        .time("secrets", secrets.instrument(info_span!("secrets")))
        .await
        .map_err(|e| stopped(e, true, Some(&digest)))?;

    let settings = PlanSettings {
        cluster: config.context.cluster.clone(),
        full_compare,
        max_prune_fraction,
        allow_prune,
        force_conflicts: config.force_conflicts,
        keep_compared,
    };
    // The plan takes the objects over, and neither a sync nor a diff reads
    // the manifests text (`berth render` prints it, without planning): a
    // large release is held once, not three times.
    let objects = std::mem::take(&mut rendered.objects);
    rendered.manifests = String::new();
    // The inventory is read with the plan, in its place among the requests
    // to the API server: a fleet waking at once reads a few at a time, not
    // every release's at once.
    let _permit = limits.apply().await;
    let previous = clock
        .time(
            "inventory",
            store(config, client, &rendered.release.name)
                .load()
                .instrument(info_span!("inventory")),
        )
        .await
        .map_err(|e| stopped(e.into(), false, None))?;
    let writer = match &rendered.release.service_account_name {
        Some(account) => {
            crate::kubernetes::impersonating_client(config, &rendered.release.namespace, account)
                .await
                .map_err(|e| {
                    stopped(
                        SyncError::Impersonation {
                            account: account.clone(),
                            cause: e.to_string(),
                        },
                        true,
                        Some(&digest),
                    )
                })?
        }
        None => client.clone(),
    };
    let planning = plan::plan(
        &writer,
        client,
        &rendered.release,
        objects,
        &previous,
        &settings,
    );
    let plan = clock
        .time("plan", planning.instrument(info_span!("plan")))
        .await
        .map_err(|e| stopped(e.into(), true, Some(&digest)))?;
    Ok(Prepared::Planned(Box::new(Planned {
        rendered,
        previous,
        plan,
        writer,
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
    /// The health verdict, when the sync changed the release.
    pub health: Option<Verdict>,
    /// After a rollback: the commit re-applied (`commit` is the one that failed).
    pub rolled_back_to: Option<String>,
    /// The commit is held back: it was rolled back here and the branch head
    /// has not moved since; this commit is what the cluster runs instead.
    pub held_back_to: Option<String>,
    /// The sync stopped at a deletion guard: nothing was deleted.
    pub deletion_held: bool,
    /// The sync failed because the API server was unavailable: it is tried
    /// again with backoff.
    pub retry: bool,
    /// The sync deleted past the deletion guard, as the commit's
    /// `Berth-Allow-Prune` trailer allowed (this many).
    pub deletions_allowed: Option<usize>,
    /// How long each stage took, in order.
    pub stages: Vec<(&'static str, Duration)>,
    /// The objects the release holds after a sync that applied (what drift
    /// is watched on); empty when the sync stopped.
    pub tracked: Vec<Tracked>,
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
    pub vault: Option<&'a Mutex<VaultSession>>,
    /// The repository, to read an earlier commit for a rollback.
    pub source: Option<&'a GitSource>,
    /// How many syncs render and apply at once.
    pub limits: &'a Limits,
    /// The agent's shared watches, which also tell health waits what changed.
    pub watches: &'a Arc<crate::drift::DriftWatches>,
}

/// Why a sync runs.
#[derive(Clone, Debug)]
enum Mode {
    /// The tree's commit is deployed (new, or compared again).
    Deploy,
    /// The tree's commit was healthy here and replaces `failed`.
    Rollback { failed: CommitInfo, reason: String },
}

/// What the stages did when they did not stop.
struct Applied {
    release: String,
    counts: Counts,
    outcome: Outcome,
    /// The release file, when it was applied (not skipped).
    file: Option<ReleaseFile>,
    /// Whether the release changed (a history entry was written): its
    /// health is then waited for.
    changed: bool,
    /// Whether this was the release's first sync here (Helm's install).
    install: bool,
    /// Whether the commit is new here (hooks run only then).
    new_commit: bool,
    tracked: Vec<Tracked>,
    hooks: Vec<Hook>,
    /// Set when the commit is held back: the commit the cluster keeps.
    held_back_to: Option<String>,
    /// Deletions past the guard the commit's trailer allowed.
    deletions_allowed: Option<usize>,
}

impl Applied {
    /// Nothing applied: the release does not target this cluster, or the
    /// commit is held back (`held_back_to`, the commit kept instead).
    fn skipped(release: String, held_back_to: Option<String>) -> Applied {
        Applied {
            release,
            counts: Counts::default(),
            outcome: Outcome::Skipped,
            file: None,
            changed: false,
            install: false,
            new_commit: false,
            tracked: Vec::new(),
            hooks: Vec::new(),
            held_back_to,
            deletions_allowed: None,
        }
    }
}

/// Runs every stage for the tree's commit, waits for the release's health
/// when the sync changed it, rolls back when the release asks for it and
/// the commit failed, and writes the summary lines to the sync log.
pub async fn sync(target: SyncTarget<'_>) -> SyncReport {
    let started = Instant::now();
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
    async move {
        let tree = Arc::clone(&target.tree);
        let clock = StageClock::default();
        let result = run_stages(&target, &clock, tree, &commit, &Mode::Deploy, started).await;
        let mut report = SyncReport {
            application: target.application.name.clone(),
            release: None,
            commit: Some(commit.clone()),
            counts: Counts::default(),
            outcome: Outcome::Failed,
            error: None,
            duration_ms: 0,
            health: None,
            rolled_back_to: None,
            held_back_to: None,
            deletion_held: false,
            retry: false,
            deletions_allowed: None,
            stages: Vec::new(),
            tracked: Vec::new(),
        };
        // The release and the reason when the commit failed in a way a
        // rollback answers.
        let mut failed: Option<(String, String)> = None;
        let mut settled: Option<Applied> = None;
        match result {
            Err(stopped) => {
                report.release = stopped.release.clone();
                report.outcome = stopped.error.outcome();
                report.error = Some(stopped.error.to_string());
                report.deletion_held = stopped.error.is_deletion_guard();
                report.retry = stopped.error.is_api_unavailable();
                if stopped.rollback && matches!(stopped.error, SyncError::Hook(_)) {
                    failed = stopped.release.clone().zip(report.error.clone());
                }
            }
            Ok(applied) => {
                report.release = Some(applied.release.clone());
                report.counts = applied.counts;
                report.outcome = applied.outcome;
                report.held_back_to = applied.held_back_to.clone();
                report.deletions_allowed = applied.deletions_allowed;
                report.tracked = applied.tracked.clone();
                settled = Some(applied);
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        // The sync's line first; the health verdict's line when it is reached.
        log_summary(&report);
        if let Some(applied) = settled.filter(|a| a.changed)
            && let Some(file) = &applied.file
        {
            let verdict = settle(&target, &clock, file, &applied, &commit).await;
            if verdict.health == Health::Degraded && file.rollback {
                failed = Some((file.name.clone(), verdict.reason.clone()));
            }
            report.health = Some(verdict);
        }
        if let Some((release, reason)) = failed {
            roll_back(&target, &clock, &release, &commit, &reason, &mut report).await;
        }
        report.stages = clock.take();
        report
    }
    .instrument(span)
    .await
}

/// After a sync that changed the release: waits for its health, runs the
/// post hooks once it is healthy, records and logs the verdict.
async fn settle(
    target: &SyncTarget<'_>,
    clock: &StageClock,
    file: &ReleaseFile,
    applied: &Applied,
    commit: &CommitInfo,
) -> Verdict {
    let timeout = file
        .health_timeout()
        .unwrap_or(target.config.health_timeout);
    let waiting = health::wait(
        target.client,
        target.watches,
        &file.name,
        &applied.tracked,
        timeout,
    );
    let mut verdict = clock
        .time("health", waiting.instrument(info_span!("health")))
        .await;
    if verdict.health == Health::Healthy && applied.new_commit {
        let event = HookEvent::around(applied.install, false);
        let hooks = hooks::run(
            target.client,
            target.watches,
            file,
            &target.config.context.cluster,
            &applied.hooks,
            event,
            timeout,
        );
        if let Err(error) = clock
            .time("hooks", hooks.instrument(info_span!("hooks", %event)))
            .await
        {
            verdict = Verdict {
                health: Health::Degraded,
                reason: error.to_string(),
            };
        }
    }
    let reason = (verdict.health != Health::Healthy).then(|| verdict.reason.clone());
    if let Err(record_error) = store(target.config, target.client, &file.name)
        .record_health(&commit.sha, verdict.health, reason)
        .await
    {
        warn!(%record_error, "could not record the release's health");
    }
    log_health(&target.application.name, &file.name, commit, &verdict);
    verdict
}

/// Re-applies the last commit that was healthy here in place of `failed`,
/// records `rolled-back` and waits for the rollback's own health.
async fn roll_back(
    target: &SyncTarget<'_>,
    clock: &StageClock,
    release: &str,
    failed: &CommitInfo,
    reason: &str,
    report: &mut SyncReport,
) {
    let history = match store(target.config, target.client, release).history().await {
        Ok(history) => history,
        Err(error) => {
            warn!(%error, "no rollback: the release's history cannot be read");
            return;
        }
    };
    let Some(healthy) = history
        .iter()
        .find(|e| e.health == Some(Health::Healthy) && e.commit != failed.sha)
    else {
        warn!(%release, "no rollback: no commit of this release was ever healthy here");
        return;
    };
    let Some(source) = target.source else {
        warn!(%release, "no rollback: the repository is not at hand");
        return;
    };
    let (source, sha) = (source.clone(), healthy.commit.clone());
    let tree = match blocking("opening the healthy commit", move || Ok(source.tree(&sha)?)).await {
        Ok(tree) => Arc::new(tree),
        Err(error) => {
            warn!(%error, "no rollback: the healthy commit cannot be read");
            return;
        }
    };
    let good = tree.commit_info().cloned().unwrap_or_default();
    info!(%release, from = %failed, to = %good, "rolling back");
    let mode = Mode::Rollback {
        failed: failed.clone(),
        reason: reason.to_string(),
    };
    match run_stages(
        target,
        clock,
        Arc::clone(&tree),
        &good,
        &mode,
        Instant::now(),
    )
    .await
    {
        Ok(applied) => {
            report.outcome = Outcome::RolledBack;
            report.rolled_back_to = Some(good.sha.clone());
            report.error = Some(reason.to_string());
            if let Some(file) = &applied.file {
                let verdict = settle(target, clock, file, &applied, &good).await;
                info!(target: "berth::sync_log", application = %target.application.name,
                    release, commit = good.sha.as_str(), rolled_back_from = failed.sha.as_str(),
                    health = %verdict.health, outcome = %Outcome::RolledBack,
                    "rolled back {release} from {failed} to {good}");
            }
        }
        Err(stopped) => {
            warn!(error = %stopped.error, "the rollback failed");
        }
    }
}

/// The one sync-log line when a release's health verdict is reached.
fn log_health(application: &str, release: &str, commit: &CommitInfo, verdict: &Verdict) {
    macro_rules! health_log {
        ($level:ident, $message:expr) => {
            tracing::$level!(
                target: "berth::sync_log",
                application,
                release,
                commit = commit.sha.as_str(),
                subject = commit.subject.as_str(),
                author = commit.author.as_str(),
                health = %verdict.health,
                reason = verdict.reason.as_str(),
                "{}", $message
            )
        };
    }
    match verdict.health {
        Health::Healthy => health_log!(info, format!("{release} is healthy at {commit}")),
        _ => health_log!(
            error,
            format!(
                "{release} is {} at {commit}: {}",
                verdict.health, verdict.reason
            )
        ),
    }
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
    let message = match report.deletions_allowed {
        Some(allowed) => format!(
            "{message}; {} deleted past the deletion guard, as the commit's {} trailer allows {allowed}",
            report.counts.deleted,
            crate::plan::ALLOW_PRUNE_TRAILER
        ),
        None => message,
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

/// The commit the cluster keeps instead of `commit`, when `commit` was
/// rolled back here and is still the branch head: the newest history entry
/// about `commit` says so.
fn held_back(history: &[HistoryEntry], commit: &str) -> Option<String> {
    let newest = history
        .iter()
        .find(|e| e.commit == commit || e.rolled_back_from.as_deref() == Some(commit))?;
    (newest.outcome == Outcome::RolledBack && newest.rolled_back_from.as_deref() == Some(commit))
        .then(|| newest.commit.clone())
}

/// Stages of a sync: the shared first half, the pre hooks, apply, record.
async fn run_stages(
    target: &SyncTarget<'_>,
    clock: &StageClock,
    tree: Arc<RepoTree>,
    commit: &CommitInfo,
    mode: &Mode,
    started: Instant,
) -> Result<Applied, Stopped> {
    let SyncTarget {
        config,
        application,
        client,
        full_compare,
        vault,
        limits,
        watches,
        ..
    } = *target;
    let started_at = jiff::Timestamp::now().to_string();
    let entry = |outcome: Outcome, digest: String, counts: Counts, error: Option<String>| {
        let (outcome, error, rolled_back_from) = match mode {
            Mode::Deploy => (outcome, error, None),
            Mode::Rollback { failed, reason } if outcome == Outcome::Succeeded => (
                Outcome::RolledBack,
                Some(format!("{failed}: {reason}")),
                Some(failed.sha.clone()),
            ),
            Mode::Rollback { failed, .. } => (outcome, error, Some(failed.sha.clone())),
        };
        HistoryEntry {
            commit: commit.sha.clone(),
            subject: commit.subject.clone(),
            author: commit.author.clone(),
            manifests_digest: digest,
            counts,
            outcome,
            error,
            started_at: started_at.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
            health: None,
            health_reason: None,
            rolled_back_from,
            deletions_allowed: None,
        }
    };
    let release_file = clock
        .time("release", load_release(&tree, &application.release_file))
        .await
        .map_err(Stopped::before_release)?;
    let name = release_file.name.clone();
    let store = store(config, client, &name);
    if matches!(mode, Mode::Deploy)
        && release_file.targets(&config.context)
        && let Ok(history) = store.history().await
        && let Some(kept) = held_back(&history, &commit.sha)
    {
        info!(release = %name, %commit, kept = %kept, "commit held back after its rollback; waiting for the branch to move");
        return Ok(Applied::skipped(name, Some(kept)));
    }
    let prepared = prepare_release(
        Reconcile {
            config,
            client,
            tree,
            release_file: &application.release_file,
            vault,
            // A rollback compares everything: the objects are those of an older render.
            full_compare: full_compare || matches!(mode, Mode::Rollback { .. }),
            max_prune_fraction: config.max_prune_fraction,
            keep_compared: false,
            clock,
            limits,
        },
        release_file,
    )
    .await;
    let record_stop = |stopped: Stopped| async {
        if stopped.recordable {
            let failed = entry(
                stopped.error.outcome(),
                stopped.manifests_digest.clone().unwrap_or_default(),
                Counts::default(),
                Some(stopped.error.to_string()),
            );
            if let Err(record_error) = store.record(None, failed).await {
                warn!(%record_error, "could not record the failed sync in the history");
            }
        }
        stopped
    };
    let planned = match prepared {
        Ok(Prepared::Planned(planned)) => planned,
        Ok(Prepared::NotTargeted { release }) => {
            info!(%release, context = %config.context, "release does not target this context; skipped");
            return Ok(Applied::skipped(release, None));
        }
        Err(stopped) => return Err(record_stop(stopped).await),
    };
    let Planned {
        rendered,
        previous,
        plan,
        writer,
    } = *planned;
    let stopped_at = |error: SyncError| Stopped {
        error,
        release: Some(name.clone()),
        manifests_digest: Some(rendered.manifests_digest.clone()),
        recordable: true,
        rollback: rendered.release.rollback,
    };
    // An interrupted first sync leaves objects in the inventory but no commit.
    let install = previous.commit.is_empty();
    let new_commit = previous.commit != commit.sha && matches!(mode, Mode::Deploy);
    let timeout = rendered
        .release
        .health_timeout()
        .unwrap_or(config.health_timeout);
    if new_commit {
        let event = HookEvent::around(install, true);
        let hooks = hooks::run(
            &writer,
            watches,
            &rendered.release,
            &config.context.cluster,
            &rendered.hooks,
            event,
            timeout,
        );
        if let Err(error) = clock
            .time("hooks", hooks.instrument(info_span!("hooks", %event)))
            .await
        {
            return Err(record_stop(stopped_at(error.into())).await);
        }
    }
    // Objects about to be created are named in the inventory first, so
    // that a sync killed half-way orphans nothing.
    if let Some(intent) = plan.intent(&previous) {
        let recording = store.record_intent(&intent);
        if let Err(error) = clock
            .time("record", recording.instrument(info_span!("intent")))
            .await
        {
            return Err(record_stop(stopped_at(error.into())).await);
        }
    }
    let applying = async {
        let _permit = limits.apply().await;
        apply::execute(
            &writer,
            client,
            &rendered.release,
            &plan,
            config.force_conflicts,
        )
        .await
    };
    let counts = match clock
        .time("apply", applying.instrument(info_span!("apply")))
        .await
    {
        Ok(counts) => counts,
        Err(error) => return Err(record_stop(stopped_at(error.into())).await),
    };

    let inventory = plan.inventory(&rendered.release, &commit.sha, &rendered.manifests_digest);
    let changed = counts.created + counts.updated + counts.deleted > 0
        || previous.commit != commit.sha
        || previous.objects != inventory.objects
        || matches!(mode, Mode::Rollback { .. });
    if changed {
        let mut recorded = entry(
            Outcome::Succeeded,
            rendered.manifests_digest.clone(),
            counts,
            None,
        );
        recorded.deletions_allowed = plan.deletions_allowed;
        let recording = store.record(Some(&inventory), recorded);
        clock
            .time("record", recording.instrument(info_span!("record")))
            .await
            .map_err(|e| Stopped {
                recordable: false,
                ..stopped_at(e.into())
            })?;
    }
    let tracked = plan
        .objects
        .iter()
        .map(|p| Tracked {
            object: p.object_ref().clone(),
            resource: p.resource.clone(),
        })
        .collect();
    Ok(Applied {
        release: name,
        counts,
        outcome: Outcome::Succeeded,
        file: Some(rendered.release),
        changed,
        install,
        new_commit,
        tracked,
        hooks: rendered.hooks,
        held_back_to: None,
        deletions_allowed: plan.deletions_allowed,
    })
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

    fn entry(commit: &str, outcome: Outcome, from: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            commit: commit.into(),
            subject: String::new(),
            author: String::new(),
            manifests_digest: String::new(),
            counts: Counts::default(),
            outcome,
            error: None,
            started_at: String::new(),
            duration_ms: 0,
            health: None,
            health_reason: None,
            rolled_back_from: from.map(str::to_string),
            deletions_allowed: None,
        }
    }

    #[test]
    fn a_rolled_back_head_is_held_until_a_newer_entry_about_it() {
        let history = vec![
            entry("good", Outcome::RolledBack, Some("bad")),
            entry("bad", Outcome::Succeeded, None),
            entry("good", Outcome::Succeeded, None),
        ];
        assert_eq!(held_back(&history, "bad").as_deref(), Some("good"));
        assert_eq!(held_back(&history, "good"), None);
        // Deployed again later (e.g. after a revert of the revert): not held.
        let mut again = history.clone();
        again.insert(0, entry("bad", Outcome::Succeeded, None));
        assert_eq!(held_back(&again, "bad"), None);
        // Drift corrections of the kept commit do not release the hold.
        let mut drift = history.clone();
        drift.insert(0, entry("good", Outcome::Succeeded, None));
        assert_eq!(held_back(&drift, "bad").as_deref(), Some("good"));
    }
}
