//! The agent: follows every configured application, syncing when its branch
//! moves, comparing everything with the cluster on a timer, and backing off
//! when a repository cannot be reached.

use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
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

struct Followed {
    application: Application,
    source: Option<GitSource>,
    /// The commit of the last sync attempt (successful or not).
    last_commit: Option<String>,
    last_full_compare: Option<Instant>,
    failures: u32,
    next_due: Instant,
}

impl Followed {
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
}

/// The running agent.
pub struct Agent {
    config: AgentConfig,
    client: Client,
    followed: Vec<Followed>,
    /// Logged in on first use and kept, so the token is renewed rather than re-issued.
    vault: Option<VaultSession>,
}

impl Agent {
    pub fn new(config: AgentConfig, client: Client) -> Self {
        let now = Instant::now();
        let followed = config
            .applications
            .iter()
            .map(|application| Followed {
                application: application.clone(),
                source: None,
                last_commit: None,
                last_full_compare: None,
                failures: 0,
                next_due: now,
            })
            .collect();
        Self {
            config,
            client,
            followed,
            vault: None,
        }
    }

    /// Syncs every application (or only `only`) once. `full_compare` compares
    /// every object with the cluster, correcting manual drift.
    pub async fn sync_once(&mut self, only: Option<&str>, full_compare: bool) -> Vec<SyncReport> {
        let mut reports = Vec::new();
        for index in 0..self.followed.len() {
            if only.is_some_and(|name| name != self.followed[index].application.name) {
                continue;
            }
            if let Some(report) = self.poll(index, true, full_compare).await {
                reports.push(report);
            }
        }
        reports
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(&mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        info!(context = %self.config.context, applications = self.followed.len(), "agent started");
        loop {
            let now = Instant::now();
            for index in 0..self.followed.len() {
                if self.followed[index].next_due <= now {
                    let full_compare = self.followed[index]
                        .last_full_compare
                        .is_none_or(|t| t.elapsed() >= self.config.full_compare_interval);
                    self.poll(index, false, full_compare).await;
                }
            }
            let next = self
                .followed
                .iter()
                .map(|f| f.next_due)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
            tokio::select! {
                _ = &mut shutdown => {
                    info!("agent stopping");
                    return;
                }
                _ = tokio::time::sleep_until(next.into()) => {}
            }
        }
    }

    /// Fetches one application and syncs it if its commit moved, a full
    /// comparison is due, or `always`.
    async fn poll(&mut self, index: usize, always: bool, full_compare: bool) -> Option<SyncReport> {
        let started = Instant::now();
        let followed = &mut self.followed[index];
        let application = followed.application.clone();
        let fetched = fetch(&self.config, &application, followed.source.take())
            .instrument(tracing::info_span!("fetch", application = %application.name))
            .await;
        let tree = match fetched {
            Ok((source, tree)) => {
                followed.source = Some(source);
                tree
            }
            Err(error) => {
                // The cluster is left as it is; try again later, less often each time.
                let backoff = followed.back_off();
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
                };
                log_summary(&report);
                return Some(report);
            }
        };
        let commit = tree.commit().unwrap_or_default().to_string();
        followed.failures = 0;
        followed.next_due = Instant::now() + application.poll_interval;
        if !always && !full_compare && followed.last_commit.as_deref() == Some(commit.as_str()) {
            return None;
        }
        if self.vault.is_none()
            && let Some(vault) = &self.config.vault
        {
            match VaultSession::new(vault.clone()) {
                Ok(session) => self.vault = Some(session),
                Err(error) => warn!(%error, "Vault client not created"),
            }
        }
        let report = sync(SyncTarget {
            config: &self.config,
            application: &application,
            client: &self.client,
            tree: std::sync::Arc::new(tree),
            full_compare,
            vault: self.vault.as_mut(),
        })
        .await;
        let followed = &mut self.followed[index];
        if report.outcome == Outcome::Deferred {
            // Vault is down or sealed: retry this commit with backoff.
            followed.back_off();
            return Some(report);
        }
        followed.last_commit = Some(commit);
        if full_compare {
            followed.last_full_compare = Some(Instant::now());
        }
        Some(report)
    }
}
