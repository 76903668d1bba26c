//! The agent: follows every configured application, syncing when its branch
//! moves, comparing everything with the cluster on a timer, and backing off
//! when a repository cannot be reached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::{Mutex, watch};
use tracing::{Instrument as _, info, warn};

use crate::config::{AgentConfig, Application, CredentialsConfig};
use crate::inventory::{Counts, Outcome};
use crate::reconcile::{SyncReport, SyncTarget, log_summary, sync};
use crate::secrets::VaultSession;
use crate::source::{GitCredentials, GitSource, RepoTree, SourceError};

/// Longest wait between attempts at an unreachable repository.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("connecting to Kubernetes: {0}")]
    Kubernetes(String),
    #[error("application {application}: {cause}")]
    Credentials { application: String, cause: String },
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// The blocking git task stopped unexpectedly (a bug in berth).
    #[error("fetching {application} stopped unexpectedly: {cause}")]
    Task { application: String, cause: String },
}

/// A Kubernetes client from the configured kubeconfig, or in-cluster / `KUBECONFIG`.
pub async fn kube_client(config: &AgentConfig) -> Result<Client, AgentError> {
    let client_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| AgentError::Kubernetes(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| AgentError::Kubernetes(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| AgentError::Kubernetes(e.to_string()))?,
    };
    Client::try_from(client_config).map_err(|e| AgentError::Kubernetes(e.to_string()))
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

/// Brings `application`'s repository up to date and returns the tree at its
/// branch head, with the source to reuse next time (`source`, when given, is
/// the one from last time). git runs on tokio's blocking pool.
pub async fn fetch(
    config: &AgentConfig,
    application: &Application,
    source: Option<GitSource>,
) -> Result<(GitSource, RepoTree), AgentError> {
    let mut source = match source {
        Some(source) => source,
        None => GitSource::new(
            &application.name,
            &application.url,
            &application.branch,
            &config.cache_dir,
            git_credentials(application)?,
        )?,
    };
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

/// How long a stopping agent lets syncs in progress finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// What every follower shares.
struct Shared {
    config: AgentConfig,
    client: Client,
    /// Logged in on first use and kept, so the token is renewed rather than re-issued.
    vault: Option<Mutex<VaultSession>>,
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
}

impl Follower {
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

    /// Polls when due until `stopping` turns true (checked between polls).
    async fn follow(&mut self, shared: &Shared, mut stopping: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stopping.wait_for(|stop| *stop) => return,
                _ = tokio::time::sleep_until(self.next_due.into()) => {}
            }
            let full_compare = self
                .last_full_compare
                .is_none_or(|t| t.elapsed() >= shared.config.full_compare_interval);
            self.poll(shared, false, full_compare).await;
        }
    }

    /// Fetches the application and syncs it if its commit moved, a full
    /// comparison is due, or `always`.
    async fn poll(
        &mut self,
        shared: &Shared,
        always: bool,
        full_compare: bool,
    ) -> Option<SyncReport> {
        let started = Instant::now();
        let application = self.application.clone();
        let fetched = fetch(&shared.config, &application, self.source.take())
            .instrument(tracing::info_span!("fetch", application = %application.name))
            .await;
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
                };
                log_summary(&report);
                return Some(report);
            }
        };
        let commit = tree.commit().unwrap_or_default().to_string();
        self.failures = 0;
        self.next_due = Instant::now() + application.poll_interval;
        if !always && !full_compare && self.last_commit.as_deref() == Some(commit.as_str()) {
            return None;
        }
        let target = |tree: RepoTree| SyncTarget {
            config: &shared.config,
            application: &application,
            client: &shared.client,
            tree: Arc::new(tree),
            full_compare,
            vault: shared.vault.as_ref(),
            source: self.source.as_ref(),
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
        if report.outcome == Outcome::Deferred {
            // Vault is down or sealed: retry this commit with backoff.
            self.back_off();
            return Some(report);
        }
        self.last_commit = Some(commit);
        if full_compare {
            self.last_full_compare = Some(Instant::now());
        }
        Some(report)
    }
}

/// The running agent.
pub struct Agent {
    shared: Shared,
    followers: Vec<Follower>,
}

impl Agent {
    pub fn new(config: AgentConfig, client: Client) -> Self {
        let now = Instant::now();
        let followers = config
            .applications
            .iter()
            .map(|application| Follower {
                application: application.clone(),
                source: None,
                last_commit: None,
                last_full_compare: None,
                failures: 0,
                next_due: now,
            })
            .collect();
        let vault =
            config
                .vault
                .as_ref()
                .and_then(|vault| match VaultSession::new(vault.clone()) {
                    Ok(session) => Some(Mutex::new(session)),
                    Err(error) => {
                        warn!(%error, "Vault client not created");
                        None
                    }
                });
        Self {
            shared: Shared {
                config,
                client,
                vault,
            },
            followers,
        }
    }

    /// Syncs every application (or only `only`) once, side by side, each
    /// waiting for its health verdict. `full_compare` compares every object
    /// with the cluster, correcting manual drift.
    pub async fn sync_once(&mut self, only: Option<&str>, full_compare: bool) -> Vec<SyncReport> {
        let shared = &self.shared;
        let polls = self
            .followers
            .iter_mut()
            .filter(|f| only.is_none_or(|name| name == f.application.name))
            .map(|f| f.poll(shared, true, full_compare));
        futures::future::join_all(polls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Follows every application until `shutdown` resolves; syncs in
    /// progress then have [`SHUTDOWN_GRACE`] to finish.
    pub async fn run(&mut self, shutdown: impl std::future::Future<Output = ()>) {
        info!(context = %self.shared.config.context, applications = self.followers.len(), "agent started");
        let (stop, stopping) = watch::channel(false);
        let shared = &self.shared;
        let follow_all = futures::future::join_all(
            self.followers
                .iter_mut()
                .map(|f| f.follow(shared, stopping.clone())),
        );
        tokio::pin!(follow_all);
        tokio::pin!(shutdown);
        tokio::select! {
            _ = &mut follow_all => {}
            _ = &mut shutdown => {
                info!("agent stopping");
                let _ = stop.send(true);
                if tokio::time::timeout(SHUTDOWN_GRACE, &mut follow_all).await.is_err() {
                    warn!("syncs still running after the grace period were stopped");
                }
            }
        }
    }
}
