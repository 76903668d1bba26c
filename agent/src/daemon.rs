//! The agent: follows every configured application, syncing when its branch
//! moves, comparing everything with the cluster on a timer, and backing off
//! when a repository cannot be reached.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument as _, debug, error, info, warn};

use crate::config::{AgentConfig, Application, ConfigError, CredentialsConfig};
use crate::drift::{DriftWatch, DriftWatches};
use crate::events::EventPublisher;
use crate::inventory::{Counts, Outcome};
use crate::leader::Role;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::notice::{Notice, NoticeKind};
use crate::notifications::Notifier;
use crate::reconcile::{SyncReport, SyncTarget, log_summary, sync};
use crate::reload::ConfigWatcher;
use crate::secrets::VaultSession;
use crate::source::{GitCredentials, GitSource, RepoTree, SourceError, remove_unfollowed};
use crate::webhooks::same_repository;

/// Longest wait between attempts at an unreachable repository.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How old a fetch of a shared repository may be for a poll woken by drift
/// to use it. A scheduled poll uses a fetch made since it was due; a poll
/// woken by a push never uses an older fetch.
const SHARED_FETCH_AGE: Duration = Duration::from_secs(1);
/// How long a follower lets a burst of changes by someone else settle
/// before it compares the release (a `kubectl edit` writes once, a rollout
/// by hand several times).
const DRIFT_SETTLE: Duration = Duration::from_millis(300);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Kubernetes(#[from] crate::kubernetes::KubernetesError),
    #[error("application {application}: {cause}")]
    Credentials { application: String, cause: String },
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// The blocking git task stopped unexpectedly (a bug in berth).
    #[error("fetching {application} stopped unexpectedly: {cause}")]
    Task { application: String, cause: String },
    #[error("cannot listen on {address}: {cause}")]
    Listen { address: String, cause: String },
    /// This replica led and lost the lease: it stopped writing and exits,
    /// to come back as a follower.
    #[error("lost the leadership of lease {lease}; stopped writing")]
    LostLeadership { lease: String },
}

/// Resolves credential references (files, environment variables) to secrets.
pub fn git_credentials(application: &Application) -> Result<GitCredentials, AgentError> {
    let error = |cause: String| AgentError::Credentials {
        application: application.name.clone(),
        cause,
    };
    Ok(match &application.credentials {
        None => GitCredentials::None,
        Some(CredentialsConfig::Token {
            username,
            token_file,
            token_env,
        }) => {
            let token = match (token_file, token_env) {
                (Some(file), _) => std::fs::read_to_string(file)
                    .map_err(|e| error(format!("reading token file {}: {e}", file.display())))?
                    .trim()
                    .to_string(),
                (None, Some(var)) => std::env::var(var)
                    .map_err(|_| error(format!("environment variable {var} is not set")))?,
                (None, None) => return Err(error("token credentials name no token".into())),
            };
            GitCredentials::Token {
                username: username.clone(),
                token,
            }
        }
        Some(CredentialsConfig::SshKey {
            username,
            private_key_file,
            passphrase_env,
        }) => GitCredentials::SshKey {
            username: username.clone(),
            private_key: private_key_file.clone(),
            passphrase: match passphrase_env {
                Some(var) => Some(
                    std::env::var(var)
                        .map_err(|_| error(format!("environment variable {var} is not set")))?,
                ),
                None => None,
            },
        },
    })
}

/// The name of the cached repository `application` follows: one per
/// repository, branch and credentials, so that applications of one
/// repository (several release files in a monorepo) share one clone. It
/// names no secret: the URL and credentials are only hashed.
pub fn source_name(application: &Application) -> String {
    use sha2::Digest as _;
    let key = format!(
        "{}\n{}\n{:?}",
        application.url, application.branch, application.credentials
    );
    let hash = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    let repository = crate::notice::without_credentials(&application.url);
    let last = repository
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repository")
        .to_string();
    format!("{last}@{}-{}", application.branch, &hash[..12])
}

/// Brings `application`'s repository up to date and returns the tree at its
/// branch head, with the source to reuse next time (`source`, when given, is
/// the one from last time). git runs on tokio's blocking pool.
pub async fn fetch(
    config: &AgentConfig,
    limits: &Limits,
    application: &Application,
    source: Option<GitSource>,
) -> Result<(GitSource, RepoTree), AgentError> {
    let mut source = match source {
        Some(source) => source,
        None => GitSource::new(
            &source_name(application),
            &application.url,
            &application.branch,
            &config.cache_dir,
            git_credentials(application)?,
        )?,
    };
    let _permit = limits.fetch().await;
    tokio::task::spawn_blocking(move || {
        let update = source.update()?;
        let tree = source.tree(&update.commit)?;
        Ok((source, tree))
    })
    .await
    .map_err(|join| AgentError::Task {
        application: application.name.clone(),
        cause: join.to_string(),
    })?
}

/// The repositories the agent follows, each shared by the applications that
/// follow the same repository, branch and credentials: a fetch made for one
/// of them serves the others that asked for it before it started.
pub struct SharedRepos {
    repos: std::sync::Mutex<BTreeMap<String, Arc<Mutex<SharedRepo>>>>,
    /// Where the poll schedules start.
    epoch: Instant,
}

impl Default for SharedRepos {
    fn default() -> Self {
        SharedRepos {
            repos: Default::default(),
            epoch: Instant::now(),
        }
    }
}

#[derive(Default)]
struct SharedRepo {
    source: Option<GitSource>,
    /// When the last successful fetch started, and the commit it found.
    last: Option<(Instant, String)>,
}

impl SharedRepos {
    /// `application`'s tree at its branch head: the result of a fetch of the
    /// same repository that started at or after `wanted_at`, or a new fetch.
    pub async fn fetch(
        &self,
        config: &AgentConfig,
        limits: &Limits,
        application: &Application,
        wanted_at: Instant,
    ) -> Result<(GitSource, RepoTree), AgentError> {
        let entry = {
            let mut repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(repos.entry(source_name(application)).or_default())
        };
        let mut repo = entry.lock().await;
        if let (Some(source), Some((started, commit))) = (&repo.source, &repo.last)
            && *started >= wanted_at
        {
            debug!(application = %application.name, %commit, "sharing a fetch made for another application");
            let (source, commit) = (source.clone(), commit.clone());
            let reader = source.clone();
            let tree = tokio::task::spawn_blocking(move || reader.tree(&commit))
                .await
                .map_err(|join| AgentError::Task {
                    application: application.name.clone(),
                    cause: join.to_string(),
                })??;
            return Ok((source, tree));
        }
        let started = Instant::now();
        let (source, tree) = fetch(config, limits, application, repo.source.take()).await?;
        repo.source = Some(source.clone());
        repo.last = Some((started, tree.commit().unwrap_or_default().to_string()));
        Ok((source, tree))
    }

    /// When `application` next polls after `after`: the applications of one
    /// repository that poll at the same interval poll at the same instants,
    /// so that one fetch a cycle serves them all; each repository has its
    /// own phase, so that their fetches spread over the interval.
    pub fn next_poll(&self, application: &Application, after: Instant) -> Instant {
        let interval = application.poll_interval.as_millis().max(1);
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&source_name(application), &mut hasher);
        let phase = u128::from(std::hash::Hasher::finish(&hasher)) % interval;
        let since = after.saturating_duration_since(self.epoch).as_millis();
        // The first instant epoch + phase + k × interval after `after`.
        let k = (since + interval - phase) / interval;
        let at = (k * interval + phase) as u64;
        self.epoch + Duration::from_millis(at)
    }

    /// Forgets the repositories that none of `applications` follows.
    fn retain(&self, applications: &[Application]) {
        let names: Vec<String> = applications.iter().map(source_name).collect();
        self.repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name, _| names.contains(name));
    }
}

/// How long a stopping agent lets syncs in progress finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// How long queued notifications may take to go out when the agent stops.
const NOTIFY_GRACE: Duration = Duration::from_secs(10);

/// One followed application as the status page and readiness see it.
#[derive(Clone)]
pub struct ApplicationStatus {
    pub application: Application,
    /// The last sync's report (a poll that found nothing new keeps the previous one).
    pub last_report: Option<SyncReport>,
    /// When the application was last polled (fetched, and synced if needed).
    pub last_poll: Option<jiff::Timestamp>,
    /// When the last sync that changed or checked the cluster ended.
    pub last_sync: Option<jiff::Timestamp>,
    /// Wakes the application's follower (a webhook).
    wake: Arc<Notify>,
}

/// What the followers, the HTTP server and the configuration watcher share.
pub struct AgentState {
    config: std::sync::RwLock<Arc<AgentConfig>>,
    pub client: Client,
    /// Logged in on first use and kept, so the token is renewed rather than re-issued.
    vault: Option<Mutex<VaultSession>>,
    pub metrics: Arc<Metrics>,
    /// How many applications fetch, render and apply at once.
    pub limits: Limits,
    /// The followed repositories, shared by their applications.
    pub repos: SharedRepos,
    /// The watches of the releases' objects, one per kind.
    pub drift: Arc<DriftWatches>,
    events: EventPublisher,
    notifier: std::sync::Mutex<Option<Notifier>>,
    applications: std::sync::RwLock<BTreeMap<String, ApplicationStatus>>,
    /// Whether this replica writes (leader election, `leader.rs`).
    pub role: watch::Sender<Role>,
}

impl AgentState {
    /// The configuration in force (it changes when the file is edited).
    pub fn config(&self) -> Arc<AgentConfig> {
        match self.config.read() {
            Ok(config) => Arc::clone(&config),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_config(&self, config: AgentConfig) {
        let mut current = self.config.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(config);
    }

    /// Every followed application, by name.
    pub fn applications(&self) -> Vec<ApplicationStatus> {
        let applications = self.applications.read().unwrap_or_else(|p| p.into_inner());
        applications.values().cloned().collect()
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut ApplicationStatus)) {
        let mut applications = self.applications.write().unwrap_or_else(|p| p.into_inner());
        if let Some(status) = applications.get_mut(name) {
            change(status);
        }
    }

    /// Whether every followed application has been polled at least once.
    pub fn all_polled(&self) -> bool {
        let applications = self.applications.read().unwrap_or_else(|p| p.into_inner());
        applications.values().all(|a| a.last_poll.is_some())
    }

    /// Starts a poll of every application following `branch` of a
    /// repository at one of `urls` now; returns how many there are. Wakes
    /// that arrive while a poll runs make one more poll after it.
    pub fn wake(&self, urls: &[String], branch: &str) -> usize {
        let applications = self.applications.read().unwrap_or_else(|p| p.into_inner());
        let mut woken = 0;
        for status in applications.values() {
            let application = &status.application;
            if application.branch == branch
                && urls
                    .iter()
                    .any(|url| same_repository(url, &application.url))
            {
                status.wake.notify_one();
                woken += 1;
            }
        }
        woken
    }

    fn notify(&self, notice: &Notice, previous: Option<NoticeKind>) {
        let notifier = self.notifier.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(notifier) = notifier.as_ref() {
            notifier.send(notice, previous);
        }
    }

    /// Starts the sinks of `config` in place of the current ones, unless they are the same.
    fn replace_notifier(&self, sinks: &[crate::config::SinkConfig]) -> Option<Notifier> {
        let mut notifier = self.notifier.lock().unwrap_or_else(|p| p.into_inner());
        if notifier.as_ref().is_some_and(|n| n.configs() == sinks) {
            return None;
        }
        notifier.replace(Notifier::start(sinks, Arc::clone(&self.metrics)))
    }

    fn take_notifier(&self) -> Option<Notifier> {
        self.notifier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// The last notice of one application, to send a repeated failure only once.
#[derive(Clone, PartialEq, Eq)]
struct LastNotice {
    kind: NoticeKind,
    commit: Option<String>,
    detail: Option<String>,
}

/// One application, followed on its own: its syncs and its health waits
/// never hold up another application.
struct Follower {
    application: Application,
    source: Option<GitSource>,
    /// The commit of the last sync attempt (successful or not).
    last_commit: Option<String>,
    last_full_compare: Option<Instant>,
    failures: u32,
    next_due: Instant,
    /// The release last synced, for events about syncs that stopped before
    /// reading the release file.
    release: Option<String>,
    last_notice: Option<LastNotice>,
    /// Watches of the release's objects (`berth run` only).
    drift: DriftWatch,
    /// Notified by those watches when someone else changes an object.
    drifted: Arc<Notify>,
    /// The poll under way was asked for by a push: it must see the remote
    /// as it is now, not as another application's fetch saw it.
    pushed: bool,
    /// The poll under way is the scheduled one due at this instant: a fetch
    /// of the repository made since then serves it.
    scheduled: Option<Instant>,
}

impl Follower {
    fn new(application: Application) -> Follower {
        Follower {
            application,
            source: None,
            last_commit: None,
            last_full_compare: None,
            failures: 0,
            next_due: Instant::now(),
            release: None,
            last_notice: None,
            drift: DriftWatch::default(),
            drifted: Arc::new(Notify::new()),
            pushed: false,
            scheduled: None,
        }
    }

    /// Counts a failure and schedules the next attempt: poll interval × 2ⁿ, at most [`MAX_BACKOFF`].
    fn back_off(&mut self) -> Duration {
        self.failures += 1;
        let backoff = self
            .application
            .poll_interval
            .saturating_mul(2u32.saturating_pow(self.failures.min(16)))
            .min(MAX_BACKOFF);
        self.next_due = Instant::now() + backoff;
        backoff
    }

    /// Polls when due or woken until `stopping` turns true (checked between
    /// polls, so a sync in progress is never cut short); returns itself so
    /// that the agent can follow the application again.
    async fn follow(
        mut self,
        state: Arc<AgentState>,
        wake: Arc<Notify>,
        mut stopping: watch::Receiver<bool>,
    ) -> Follower {
        let drifted = Arc::clone(&self.drifted);
        loop {
            let mut drift = false;
            self.pushed = false;
            self.scheduled = None;
            tokio::select! {
                biased;
                _ = stopping.wait_for(|stop| *stop) => {
                    // The release leaves the watches with the follow; a new follow
                    // joins them after its first sync.
                    self.drift = DriftWatch::default();
                    return self;
                }
                _ = wake.notified() => {
                    debug!(application = %self.application.name, "woken by a webhook");
                    self.pushed = true;
                }
                _ = drifted.notified() => drift = true,
                _ = tokio::time::sleep_until(self.next_due.into()) => {
                    self.scheduled = Some(self.next_due);
                }
            }
            if drift {
                tokio::time::sleep(DRIFT_SETTLE).await;
            }
            let full_compare = drift
                || self
                    .last_full_compare
                    .is_none_or(|t| t.elapsed() >= state.config().full_compare_interval);
            // Boxed: a sync's future is large (some 22 KiB), and a follower
            // rests between polls far longer than it syncs.
            let report = Box::pin(self.poll(&state, false, full_compare)).await;
            if let Some(report) = report
                && let Some(release) = &report.release
                && !report.tracked.is_empty()
            {
                self.drift
                    .follow(&state.drift, release, &report.tracked, &self.drifted);
            }
        }
    }

    /// Fetches the application and syncs it if its commit moved, a full
    /// comparison is due, or `always`; announces the verdict.
    async fn poll(
        &mut self,
        state: &AgentState,
        always: bool,
        full_compare: bool,
    ) -> Option<SyncReport> {
        let report = self.fetch_and_sync(state, always, full_compare).await;
        let now = jiff::Timestamp::now();
        state.update(&self.application.name, |status| {
            status.last_poll = Some(now);
            if let Some(report) = &report {
                // The status page needs no list of the release's objects.
                let mut kept = report.clone();
                kept.tracked = Vec::new();
                status.last_report = Some(kept);
                status.last_sync = Some(now);
            }
        });
        if let Some(report) = &report {
            self.announce(state, report).await;
        }
        report
    }

    async fn fetch_and_sync(
        &mut self,
        state: &AgentState,
        always: bool,
        full_compare: bool,
    ) -> Option<SyncReport> {
        let config = state.config();
        let started = Instant::now();
        let application = self.application.clone();
        // A one-off sync (`berth sync`) or a push must see the remote as it is now.
        let wanted_at = if self.pushed || always {
            started
        } else if let Some(due) = self.scheduled {
            due.min(started)
        } else {
            started.checked_sub(SHARED_FETCH_AGE).unwrap_or(started)
        };
        let fetched = state
            .repos
            .fetch(&config, &state.limits, &application, wanted_at)
            .instrument(tracing::info_span!("fetch", application = %application.name))
            .await;
        state
            .metrics
            .record_fetch(&application.name, started.elapsed(), fetched.is_ok());
        let tree = match fetched {
            Ok((source, tree)) => {
                self.source = Some(source);
                tree
            }
            Err(error) => {
                // The cluster is left as it is; try again later, less often each time.
                let backoff = self.back_off();
                let report = SyncReport {
                    application: application.name.clone(),
                    release: None,
                    commit: None,
                    counts: Counts::default(),
                    outcome: Outcome::Failed,
                    error: Some(format!(
                        "{error} (retrying in {})",
                        humantime::format_duration(backoff)
                    )),
                    duration_ms: started.elapsed().as_millis() as u64,
                    health: None,
                    rolled_back_to: None,
                    held_back_to: None,
                    deletion_held: false,
                    retry: false,
                    deletions_allowed: None,
                    stages: Vec::new(),
                    tracked: Vec::new(),
                };
                log_summary(&report);
                return Some(report);
            }
        };
        let commit = tree.commit().unwrap_or_default().to_string();
        self.failures = 0;
        self.next_due = state.repos.next_poll(&application, Instant::now());
        if !always && !full_compare && self.last_commit.as_deref() == Some(commit.as_str()) {
            return None;
        }
        let target = |tree: RepoTree| SyncTarget {
            config: &config,
            application: &application,
            client: &state.client,
            tree: Arc::new(tree),
            full_compare,
            vault: state.vault.as_ref(),
            source: self.source.as_ref(),
            limits: &state.limits,
            watches: &state.drift,
        };
        let mut report = sync(target(tree)).await;
        if let Some(kept) = report.held_back_to.clone()
            && full_compare
            && let Some(source) = self.source.clone()
        {
            // The head was rolled back here: what the cluster keeps is the
            // commit compared with it, so that drift is still corrected.
            let opened = tokio::task::spawn_blocking(move || source.tree(&kept)).await;
            if let Ok(Ok(tree)) = opened {
                report = sync(target(tree)).await;
            }
        }
        if report.outcome == Outcome::Deferred || report.retry {
            // Vault or the API server unavailable: retry this commit with
            // backoff, not only at the next full comparison.
            self.back_off();
            return Some(report);
        }
        self.last_commit = Some(commit);
        if full_compare {
            self.last_full_compare = Some(Instant::now());
        }
        Some(report)
    }

    /// Metrics for every sync; an Event and notifications for a sync that
    /// changed something or failed. A failure repeated with the same cause
    /// at the same commit is notified once (its Event counts the repeats).
    async fn announce(&mut self, state: &AgentState, report: &SyncReport) {
        state.metrics.record_sync(report);
        if report.release.is_some() {
            self.release = report.release.clone();
        }
        let config = state.config();
        let Some(mut notice) = Notice::of(report, &self.application, &config.context) else {
            return;
        };
        if notice.release.is_none() {
            notice.release = self.release.clone();
        }
        let last = LastNotice {
            kind: notice.kind,
            commit: notice.commit.as_ref().map(|c| c.sha.clone()),
            detail: notice.detail.clone(),
        };
        let previous = self.last_notice.replace(last.clone());
        state.events.publish(&notice).await;
        if !(notice.kind.is_failure() && previous.as_ref() == Some(&last)) {
            state.notify(&notice, previous.map(|p| p.kind));
        }
    }
}

/// A follower running on its own task.
struct Running {
    application: Application,
    stop: watch::Sender<bool>,
    task: JoinHandle<Follower>,
}

/// The running agent.
pub struct Agent {
    state: Arc<AgentState>,
    followers: Vec<Follower>,
    shutdown_grace: Duration,
}

impl Agent {
    pub fn new(config: AgentConfig, client: Client) -> Self {
        let metrics = Arc::new(Metrics::new());
        let followers: Vec<Follower> = config
            .applications
            .iter()
            .cloned()
            .map(Follower::new)
            .collect();
        let vault =
            config
                .vault
                .as_ref()
                .and_then(|vault| match VaultSession::new(vault.clone()) {
                    Ok(session) => Some(Mutex::new(session.with_metrics(Arc::clone(&metrics)))),
                    Err(error) => {
                        warn!(%error, "Vault client not created");
                        None
                    }
                });
        metrics.set_applications(followers.len());
        let applications = config
            .applications
            .iter()
            .map(|application| (application.name.clone(), new_status(application)))
            .collect();
        let limits = Limits::new(&config.concurrency);
        let state = AgentState {
            events: EventPublisher::new(client.clone(), &config.state_namespace),
            notifier: std::sync::Mutex::new(Some(Notifier::start(
                &config.notifications,
                Arc::clone(&metrics),
            ))),
            config: std::sync::RwLock::new(Arc::new(config)),
            limits,
            repos: SharedRepos::default(),
            drift: Arc::new(DriftWatches::new(client.clone(), Arc::clone(&metrics))),
            client,
            vault,
            metrics,
            applications: std::sync::RwLock::new(applications),
            role: watch::Sender::new(Role::Single),
        };
        Self {
            state: Arc::new(state),
            followers,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }

    /// What the HTTP server reads.
    pub fn state(&self) -> Arc<AgentState> {
        Arc::clone(&self.state)
    }

    /// Syncs every application (or only `only`) once, side by side, each
    /// waiting for its health verdict. `full_compare` compares every object
    /// with the cluster, correcting manual drift.
    pub async fn sync_once(&mut self, only: Option<&str>, full_compare: bool) -> Vec<SyncReport> {
        let state = &self.state;
        let polls = self
            .followers
            .iter_mut()
            .filter(|f| only.is_none_or(|name| name == f.application.name))
            .map(|f| f.poll(state, true, full_compare));
        futures::future::join_all(polls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Lets queued notifications go out (for a few seconds at most); call
    /// before the process exits.
    pub async fn finish(&self) {
        if let Some(notifier) = self.state.take_notifier() {
            notifier.close(NOTIFY_GRACE).await;
        }
    }

    /// How long syncs in progress may finish once the agent is told to
    /// stop (less than [`SHUTDOWN_GRACE`] when a lost lease must stop
    /// writes sooner).
    pub fn set_shutdown_grace(&mut self, grace: Duration) {
        self.shutdown_grace = grace;
    }

    /// Follows every application until `shutdown` resolves; syncs in
    /// progress then have [`SHUTDOWN_GRACE`] to finish.
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) {
        self.run_with_reload(None, shutdown).await
    }

    /// Like [`Agent::run`], also applying every valid change of the
    /// configuration file at `config_file` (applications added, removed or
    /// changed, notification sinks, sync settings) without a restart.
    pub async fn run_with_reload(
        &mut self,
        config_file: Option<&Path>,
        shutdown: impl Future<Output = ()>,
    ) {
        let config = self.state.config();
        info!(context = %config.context, applications = self.followers.len(), "agent started");
        remove_unused_caches(&config.cache_dir, &application_names(&config));
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        for follower in std::mem::take(&mut self.followers) {
            self.start(follower, None, &mut running);
        }
        let mut watcher = config_file.and_then(|path| match ConfigWatcher::start(path) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                warn!(file = %path.display(), %error, "configuration changes will not be seen; restart to apply them");
                None
            }
        });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                reloaded = next_change(&mut watcher) => match reloaded {
                    Ok(Some(new)) => self.reconfigure(new, &mut running),
                    Ok(None) => {}
                    Err(error) => {
                        error!(%error, "configuration change refused; the running configuration stays in force");
                        self.state.metrics.record_config_reload(false);
                    }
                },
            }
        }
        info!("agent stopping");
        for follower in running.values() {
            let _ = follower.stop.send(true);
        }
        let tasks: Vec<JoinHandle<Follower>> = running.into_values().map(|r| r.task).collect();
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        match tokio::time::timeout(self.shutdown_grace, futures::future::join_all(tasks)).await {
            Ok(stopped) => self.followers = stopped.into_iter().flatten().collect(),
            Err(_) => {
                warn!("syncs still running after the grace period were stopped");
                for abort in aborts {
                    abort.abort();
                }
            }
        }
    }

    /// Runs `follower` on its own task, after `previous` (the task it
    /// replaces) has finished, so one application never syncs twice at once.
    fn start(
        &self,
        follower: Follower,
        previous: Option<JoinHandle<Follower>>,
        running: &mut BTreeMap<String, Running>,
    ) {
        let name = follower.application.name.clone();
        let application = follower.application.clone();
        let wake = {
            let mut applications = self
                .state
                .applications
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let status = applications
                .entry(name.clone())
                .or_insert_with(|| new_status(&application));
            status.application = application.clone();
            Arc::clone(&status.wake)
        };
        let (stop, stopping) = watch::channel(false);
        let state = Arc::clone(&self.state);
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            follower.follow(state, wake, stopping).await
        });
        running.insert(
            name,
            Running {
                application,
                stop,
                task,
            },
        );
    }

    /// Puts a new, valid configuration in force.
    fn reconfigure(&mut self, new: AgentConfig, running: &mut BTreeMap<String, Running>) {
        let old = self.state.config();
        let new = keep_connection_settings(&old, new);
        let wanted: BTreeMap<String, Application> = new
            .applications
            .iter()
            .map(|a| (a.name.clone(), a.clone()))
            .collect();
        let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        let names: Vec<String> = running.keys().cloned().collect();
        for name in names {
            let Some(current) = running.get(&name) else {
                continue;
            };
            match wanted.get(&name) {
                Some(application) if *application == current.application => {}
                Some(application) => {
                    let Some(old) = running.remove(&name) else {
                        continue;
                    };
                    let _ = old.stop.send(true);
                    self.start(Follower::new(application.clone()), Some(old.task), running);
                    changed.push(name);
                }
                None => {
                    if let Some(old) = running.remove(&name) {
                        let _ = old.stop.send(true);
                        // Its cache goes once its last sync has ended.
                        let (cache_dir, names) = (new.cache_dir.clone(), application_names(&new));
                        tokio::spawn(async move {
                            let _ = old.task.await;
                            remove_unused_caches(&cache_dir, &names);
                        });
                    }
                    self.state
                        .applications
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&name);
                    self.state.metrics.forget_application(&name);
                    removed.push(name);
                }
            }
        }
        for (name, application) in &wanted {
            if !running.contains_key(name) {
                self.start(Follower::new(application.clone()), None, running);
                added.push(name.clone());
            }
        }
        if let Some(replaced) = self.state.replace_notifier(&new.notifications) {
            info!(
                sinks = new.notifications.len(),
                "notification sinks changed"
            );
            tokio::spawn(replaced.close(NOTIFY_GRACE));
        }
        self.state.metrics.set_applications(wanted.len());
        self.state.repos.retain(&new.applications);
        self.state.metrics.record_config_reload(true);
        info!(
            added = %added.join(","),
            removed = %removed.join(","),
            changed = %changed.join(","),
            "configuration reloaded"
        );
        self.state.set_config(new);
    }
}

/// The names of the cached repositories `config`'s applications follow.
fn application_names(config: &AgentConfig) -> Vec<String> {
    config.applications.iter().map(source_name).collect()
}

/// Removes the git caches of applications other than `followed`.
fn remove_unused_caches(cache_dir: &Path, followed: &[String]) {
    let followed: Vec<&str> = followed.iter().map(String::as_str).collect();
    remove_unfollowed(cache_dir, &followed);
}

fn new_status(application: &Application) -> ApplicationStatus {
    ApplicationStatus {
        application: application.clone(),
        last_report: None,
        last_poll: None,
        last_sync: None,
        wake: Arc::new(Notify::new()),
    }
}

/// The settings the running agent holds connections or listeners for keep
/// their values until a restart; a change to one is logged.
fn keep_connection_settings(old: &AgentConfig, mut new: AgentConfig) -> AgentConfig {
    let mut kept = Vec::new();
    if new.kubeconfig != old.kubeconfig {
        kept.push("kubeconfig");
    }
    if new.state_namespace != old.state_namespace {
        kept.push("state_namespace");
    }
    if new.cache_dir != old.cache_dir {
        kept.push("cache_dir");
    }
    if new.http.address != old.http.address
        || new.http.status_address != old.http.status_address
        || new.http.status_token != old.http.status_token
    {
        kept.push("http");
    }
    if new.webhooks.secret != old.webhooks.secret
        || new.webhooks.max_body_bytes != old.webhooks.max_body_bytes
    {
        kept.push("webhooks");
    }
    if new.vault != old.vault {
        kept.push("vault");
    }
    if new.log != old.log {
        kept.push("log");
    }
    if new.concurrency != old.concurrency {
        kept.push("concurrency");
    }
    if !kept.is_empty() {
        warn!(settings = %kept.join(", "), "these settings changed in the configuration file and take effect after a restart");
    }
    new.kubeconfig = old.kubeconfig.clone();
    new.state_namespace = old.state_namespace.clone();
    new.cache_dir = old.cache_dir.clone();
    new.http = old.http.clone();
    new.webhooks = old.webhooks.clone();
    new.vault = old.vault.clone();
    new.log = old.log.clone();
    new.concurrency = old.concurrency;
    new
}

/// The next valid configuration from `watcher` (never resolves without one).
async fn next_change(
    watcher: &mut Option<ConfigWatcher>,
) -> Result<Option<AgentConfig>, ConfigError> {
    match watcher {
        Some(watcher) => watcher.next().await,
        None => std::future::pending().await,
    }
}

/// Everything `berth run` does: the agent following its applications, the
/// HTTP server (health, readiness, metrics, webhooks, status page) and live
/// configuration from `config_file`, until `shutdown` resolves.
pub async fn serve(
    config: AgentConfig,
    config_file: &Path,
    client: Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let http = config.http.clone();
    let webhooks = config.webhooks.clone();
    let election = config.leader_election.clone();
    let mut agent = Agent::new(config, client.clone());
    let server = crate::server::Server::bind(&http, &webhooks, agent.state()).await?;
    let (stop_server, server_stopping) = watch::channel(false);
    let serving = tokio::spawn(server.run(server_stopping));
    let result = match election {
        None => {
            agent.run_with_reload(Some(config_file), shutdown).await;
            Ok(())
        }
        Some(election) => lead_then_run(&mut agent, election, client, config_file, shutdown).await,
    };
    let _ = stop_server.send(true);
    let _ = serving.await;
    agent.finish().await;
    result
}

/// With leader election: serves as a follower until this replica holds the
/// lease, then runs the agent until `shutdown` or until the lease is lost;
/// a lost lease stops the syncs within half the time left before it can
/// expire, and is an error (the process exits and comes back a follower).
async fn lead_then_run(
    agent: &mut Agent,
    election: crate::config::LeaderElection,
    client: Client,
    config_file: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let state = agent.state();
    state.role.send_replace(Role::Starting);
    let mut role = state.role.subscribe();
    let (stop_election, election_stopping) = watch::channel(false);
    let lease = election.lease_name.clone();
    let margin = election
        .lease_duration
        .saturating_sub(election.renew_deadline)
        / 2;
    agent.set_shutdown_grace(margin.min(SHUTDOWN_GRACE));
    let elector = crate::leader::Elector::new(client, election);
    // The election runs in this task, beside the agent: if this task dies,
    // so does the renewal (as when the process is killed).
    let electing = elector.run(state.role.clone(), election_stopping);
    let following_then_leading = async {
        tokio::pin!(shutdown);
        let leading = tokio::select! {
            _ = &mut shutdown => false,
            led = role.wait_for(Role::writes) => led.is_ok(),
        };
        let mut lost = false;
        if leading {
            let lost_lease = async {
                let _ = role.wait_for(|r| !r.writes()).await;
            };
            agent
                .run_with_reload(Some(config_file), async {
                    tokio::select! {
                        _ = &mut shutdown => {}
                        _ = lost_lease => lost = true,
                    }
                })
                .await;
        }
        let _ = stop_election.send(true);
        lost
    };
    let ((), lost) = tokio::join!(electing, following_then_leading);
    if lost {
        return Err(AgentError::LostLeadership { lease });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn application(name: &str, url: &str, every: Duration) -> Application {
        Application {
            name: name.into(),
            url: url.into(),
            branch: "main".into(),
            release_file: format!("apps/{name}/release.yaml"),
            poll_interval: every,
            credentials: None,
        }
    }

    #[test]
    fn applications_of_one_repository_poll_at_the_same_instants() {
        let repos = SharedRepos::default();
        let every = Duration::from_secs(10);
        let a = application("a", "https://git.example/apps.git", every);
        let b = application("b", "https://git.example/apps.git", every);
        for offset_ms in [0, 1, 3_700, 9_999, 10_000, 123_456] {
            let after = repos.epoch + Duration::from_millis(offset_ms);
            let next = repos.next_poll(&a, after);
            assert!(next > after && next <= after + every, "{offset_ms}");
            // b, of the same repository, ends its poll later in the cycle
            // (a slower sync): it still polls next with a.
            let later = after + Duration::from_millis(1);
            if next > later {
                assert_eq!(repos.next_poll(&b, later), next, "{offset_ms}");
            }
            assert_eq!(repos.next_poll(&b, after), next);
            // A cycle later, one interval later.
            assert_eq!(repos.next_poll(&a, next), next + every);
        }
    }

    #[test]
    fn repositories_poll_at_their_own_phases() {
        let repos = SharedRepos::default();
        let every = Duration::from_secs(10);
        let phases: std::collections::BTreeSet<Instant> = (0..20)
            .map(|n| {
                let app = application("a", &format!("https://git.example/r{n}.git"), every);
                repos.next_poll(&app, repos.epoch)
            })
            .collect();
        assert!(phases.len() > 10, "{} distinct phases of 20", phases.len());
    }
}
