//! The agent: follows every configured application, syncing when its branch
//! moves, comparing everything with the cluster on a timer, and backing off
//! when a repository cannot be reached.

use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tracing::{info, warn};

use crate::config::{AgentConfig, Application, CredentialsConfig};
use crate::inventory::{Counts, Outcome};
use crate::secrets::VaultSession;
use crate::source::{GitCredentials, GitSource, SourceError};
use crate::sync::{SyncReport, SyncTarget, log_summary, sync};

/// Longest wait between attempts at an unreachable repository.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("connecting to Kubernetes: {0}")]
    Kubernetes(String),
    #[error("application {application}: {cause}")]
    Credentials { application: String, cause: String },
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
        let cache_dir = self.config.cache_dir.clone();
        let followed = &mut self.followed[index];
        let application = followed.application.clone();
        let update = match followed.source.take() {
            Some(source) => Ok(source),
            None => git_credentials(&application)
                .map_err(|e| e.to_string())
                .and_then(|credentials| {
                    GitSource::new(
                        &application.name,
                        &application.url,
                        &application.branch,
                        &cache_dir,
                        credentials,
                    )
                    .map_err(|e: SourceError| e.to_string())
                }),
        };
        let fetched = match update {
            Ok(mut source) => {
                let (source, result) = match tokio::task::spawn_blocking(move || {
                    let result = source.update();
                    (source, result)
                })
                .await
                {
                    Ok(done) => done,
                    Err(join) => {
                        warn!(%join, "source update task failed");
                        return None;
                    }
                };
                let outcome = result.map_err(|e| e.to_string()).and_then(|update| {
                    source
                        .tree(&update.commit)
                        .map(|tree| (update.commit, tree))
                        .map_err(|e| e.to_string())
                });
                followed.source = Some(source);
                outcome
            }
            Err(error) => Err(error),
        };
        let (commit, tree) = match fetched {
            Ok(fetched) => fetched,
            Err(error) => {
                // The cluster is left as it is; try again later, less often each time.
                let backoff = followed.back_off();
                let report = SyncReport {
                    application: application.name.clone(),
                    release: None,
                    commit: None,
                    counts: Counts::default(),
                    outcome: Outcome::Failed,
                    error: Some(format!("source: {error} (retrying in {backoff:?})")),
                    duration_ms: started.elapsed().as_millis() as u64,
                };
                log_summary(&report);
                return Some(report);
            }
        };
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
            tree: &tree,
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
