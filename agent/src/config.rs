//! The agent's configuration: one file (YAML or TOML) plus `BERTH_*`
//! environment overrides (`BERTH_CONTEXT__ENV=prod`, `BERTH_CACHE_DIR=/x`),
//! read through the `config` crate and validated as a whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_chart::{HelmCompat, RenderLimits};
use serde::Deserialize;

use crate::context::ClusterContext;
use crate::release::DEFAULT_RELEASE_FILE;
use crate::secrets::VaultConfig;

/// A configuration that cannot be used, with every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {file}: {cause}")]
    Read { file: String, cause: String },
    #[error("invalid configuration {file}:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { file: String, problems: Vec<String> },
}

/// The top-level keys of [`RawConfig`]: a `BERTH_*` variable overrides the
/// file only when it names one of them, so unrelated variables that share
/// the prefix (`BERTH_TOOLS_DIR` of the test harness, a team's own) are not
/// read as unknown configuration keys.
const TOP_LEVEL_KEYS: [&str; 19] = [
    "context",
    "cache_dir",
    "kubeconfig",
    "state_namespace",
    "force_conflicts",
    "full_compare_interval",
    "health_timeout",
    "history_limit",
    "max_prune_fraction",
    "helm_compat",
    "render_limits",
    "leader_election",
    "concurrency",
    "log",
    "vault",
    "http",
    "webhooks",
    "notifications",
    "applications",
];

/// Whether the environment variable `name` overrides a configuration key.
fn is_override(name: &str) -> bool {
    name.strip_prefix("BERTH_")
        .and_then(|rest| rest.split("__").next())
        .is_some_and(|key| TOP_LEVEL_KEYS.contains(&key.to_lowercase().as_str()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    context: Option<RawContext>,
    cache_dir: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    state_namespace: Option<String>,
    force_conflicts: Option<bool>,
    full_compare_interval: Option<String>,
    health_timeout: Option<String>,
    history_limit: Option<usize>,
    max_prune_fraction: Option<f64>,
    helm_compat: Option<HelmCompat>,
    render_limits: Option<RawRenderLimits>,
    leader_election: Option<RawLeaderElection>,
    concurrency: Option<RawConcurrency>,
    log: Option<String>,
    vault: Option<VaultConfig>,
    http: Option<RawHttp>,
    webhooks: Option<RawWebhooks>,
    #[serde(default)]
    notifications: Vec<RawSink>,
    #[serde(default)]
    applications: Vec<RawApplication>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLeaderElection {
    enabled: Option<bool>,
    lease_name: Option<String>,
    namespace: Option<String>,
    identity: Option<String>,
    pod_name: Option<String>,
    lease_duration: Option<String>,
    renew_deadline: Option<String>,
    retry_period: Option<String>,
}

/// Several replicas, one writing: who holds the Lease (docs/operations.md,
/// "Replicas and leader election").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    pub lease_name: String,
    /// Where the Lease lives (default: `state_namespace`).
    pub namespace: String,
    /// This replica's name in the Lease (default: `POD_NAME`, else the host name).
    pub identity: String,
    /// This replica's Pod, labelled `berth.dev/leader` while it leads, so a
    /// Service can send webhooks to the leader (default: `POD_NAME`; none
    /// outside a Pod).
    pub pod_name: Option<String>,
    /// How long a Lease not renewed keeps others out.
    pub lease_duration: Duration,
    /// How long the leader goes on without a renewal before it stops writing.
    pub renew_deadline: Duration,
    /// How often the Lease is renewed or tried.
    pub retry_period: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRenderLimits {
    timeout: Option<String>,
    max_bytes: Option<u64>,
    max_depth: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConcurrency {
    fetches: Option<usize>,
    renders: Option<usize>,
    applies: Option<usize>,
    requests: Option<usize>,
}

/// How many applications may be in each stage at once, across the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concurrency {
    /// git ref checks and fetches (network-bound).
    pub fetches: usize,
    /// Chart renders (CPU-bound).
    pub renders: usize,
    /// Plans (reads and dry runs) and applies: requests to the API server.
    pub applies: usize,
    /// Requests to the API server in flight at once, watches aside: each
    /// holds a connection (`kubernetes.rs`).
    pub requests: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            fetches: 8,
            renders: std::thread::available_parallelism().map_or(2, |n| n.get()),
            applies: 8,
            requests: 32,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    address: Option<String>,
    status_address: Option<String>,
    status_token_file: Option<PathBuf>,
    status_token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhooks {
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    max_body_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: Option<String>,
    kind: Option<String>,
    url: Option<String>,
    url_file: Option<PathBuf>,
    url_env: Option<String>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    on: Option<String>,
}

/// A secret from the configuration (a token, a webhook URL): never shown by
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(secret)")
    }
}

/// The agent's HTTP server (docs/operations.md).
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Health, readiness, metrics and webhooks (and the status page unless
    /// `status_address` is set); `None` when turned off.
    pub address: Option<std::net::SocketAddr>,
    /// Where the status page and `/api/releases` are served instead.
    pub status_address: Option<std::net::SocketAddr>,
    /// A bearer token the status page and `/api/releases` require.
    pub status_token: Option<Secret>,
}

/// Incoming webhooks.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// The shared secret pushes are signed with; webhooks are refused without it.
    pub secret: Option<Secret>,
    pub max_body_bytes: usize,
}

/// Where a notification goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkKind {
    /// A Slack incoming webhook.
    Slack,
    /// JSON signed with HMAC-SHA256 (`X-Berth-Signature-256`).
    Webhook,
}

/// Which verdicts a sink hears about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkFilter {
    /// Failed, degraded, rolled back, deletion held.
    Failures,
    All,
}

/// One notification sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkConfig {
    pub name: String,
    pub kind: SinkKind,
    pub url: Secret,
    pub secret: Option<Secret>,
    pub on: SinkFilter,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    cloud: Option<String>,
    env: Option<String>,
    region: Option<String>,
    cluster: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: Option<String>,
    url: Option<String>,
    branch: Option<String>,
    branches: Option<BTreeMap<String, String>>,
    release_file: Option<String>,
    poll_interval: Option<String>,
    credentials: Option<CredentialsConfig>,
}

/// How to authenticate to an application's git remote. Secrets are referenced
/// (a file or an environment variable), never written in the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum CredentialsConfig {
    /// HTTPS token, sent as the password of `username` (default `git`).
    Token {
        #[serde(default = "default_git_user")]
        username: String,
        token_file: Option<PathBuf>,
        token_env: Option<String>,
    },
    /// SSH private key.
    SshKey {
        #[serde(default = "default_git_user")]
        username: String,
        private_key_file: PathBuf,
        passphrase_env: Option<String>,
    },
}

fn default_git_user() -> String {
    "git".to_string()
}

/// A validated agent configuration.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub context: ClusterContext,
    pub cache_dir: PathBuf,
    /// Kubeconfig to use; None means in-cluster or the usual `KUBECONFIG` lookup.
    pub kubeconfig: Option<PathBuf>,
    /// Namespace holding berth's own records (inventories and histories).
    pub state_namespace: String,
    /// Take over fields another manager changed (how manual drift is corrected).
    pub force_conflicts: bool,
    /// How often every object is compared with the live one, not only changed ones.
    pub full_compare_interval: Duration,
    /// How long a release may take to become healthy after a sync, unless
    /// its release file says (`healthTimeout`).
    pub health_timeout: Duration,
    pub history_limit: usize,
    /// Largest share of a release's objects one sync may delete.
    pub max_prune_fraction: f64,
    /// How charts render where Helm 3 and Helm 4 differ, unless a release
    /// file says (`helmCompat`).
    pub helm_compat: HelmCompat,
    /// How much one chart's templates may do before the render fails.
    pub render_limits: RenderLimits,
    /// `None`: one replica, always writing.
    pub leader_election: Option<LeaderElection>,
    pub concurrency: Concurrency,
    /// tracing filter, e.g. `info` or `berth=debug`.
    pub log: String,
    /// Where secrets come from; needed only by releases that declare secrets.
    pub vault: Option<VaultConfig>,
    pub http: HttpConfig,
    pub webhooks: WebhookConfig,
    pub notifications: Vec<SinkConfig>,
    pub applications: Vec<Application>,
}

/// One application repository to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    pub url: String,
    /// The branch this cluster tracks (resolved from `branches` by env when given).
    pub branch: String,
    pub release_file: String,
    pub poll_interval: Duration,
    pub credentials: Option<CredentialsConfig>,
}

impl AgentConfig {
    /// Reads `path` (format from its extension) with `BERTH_*` overrides and validates it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, None)
    }

    /// Like [`AgentConfig::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        path: &Path,
        env: Option<BTreeMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        if !path.is_file() {
            return Err(ConfigError::Read {
                file,
                cause: "no such file".into(),
            });
        }
        let env = env.unwrap_or_else(|| {
            std::env::vars_os()
                .filter_map(|(name, value)| {
                    Some((name.into_string().ok()?, value.into_string().ok()?))
                })
                .collect()
        });
        let overrides = env
            .into_iter()
            .filter(|(name, _)| is_override(name))
            .collect();
        let environment = config::Environment::with_prefix("BERTH")
            .prefix_separator("_")
            .separator("__")
            .source(Some(overrides));
        let raw: RawConfig = config::Config::builder()
            .add_source(config::File::from(path))
            .add_source(environment)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Read {
                file: file.clone(),
                cause: e.to_string(),
            })?;
        validate(raw).map_err(|problems| ConfigError::Invalid { file, problems })
    }
}

/// `leader_election`, when enabled; the lease's durations must nest.
fn leader_election(
    raw: Option<RawLeaderElection>,
    state_namespace: &str,
    problems: &mut Vec<String>,
) -> Option<LeaderElection> {
    let raw = raw?;
    if raw.enabled == Some(false) {
        return None;
    }
    let pod_env = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty());
    let identity = raw
        .identity
        .or_else(|| pod_env.clone())
        .or_else(|| hostname().filter(|n| !n.is_empty()));
    let Some(identity) = identity else {
        problems.push(
            "leader_election.identity: not given, and neither POD_NAME nor the host name is set"
                .into(),
        );
        return None;
    };
    let lease_duration = duration(
        "leader_election.lease_duration",
        raw.lease_duration.as_deref(),
        Duration::from_secs(15),
        problems,
    );
    let renew_deadline = duration(
        "leader_election.renew_deadline",
        raw.renew_deadline.as_deref(),
        Duration::from_secs(10),
        problems,
    );
    let retry_period = duration(
        "leader_election.retry_period",
        raw.retry_period.as_deref(),
        Duration::from_secs(2),
        problems,
    );
    if renew_deadline >= lease_duration {
        problems.push(
            "leader_election: renew_deadline must be shorter than lease_duration (the leader stops writing before its lease can expire)".into(),
        );
    }
    if retry_period >= renew_deadline {
        problems.push("leader_election: retry_period must be shorter than renew_deadline".into());
    }
    Some(LeaderElection {
        lease_name: raw.lease_name.unwrap_or_else(|| "berth".into()),
        namespace: raw.namespace.unwrap_or_else(|| state_namespace.to_string()),
        identity,
        pod_name: raw.pod_name.or(pod_env),
        lease_duration,
        renew_deadline,
        retry_period,
    })
}

/// The machine's host name (a Pod's name in Kubernetes).
fn hostname() -> Option<String> {
    std::env::var("HOSTNAME").ok().or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|name| name.trim().to_string())
    })
}

/// `render_limits`, each bound checked; the defaults where not given.
fn render_limits(raw: Option<&RawRenderLimits>, problems: &mut Vec<String>) -> RenderLimits {
    let defaults = RenderLimits::default();
    let timeout = duration(
        "render_limits.timeout",
        raw.and_then(|r| r.timeout.as_deref()),
        defaults.timeout,
        problems,
    );
    let max_bytes = raw.and_then(|r| r.max_bytes).unwrap_or(defaults.max_bytes);
    if max_bytes == 0 {
        problems.push("render_limits.max_bytes: 0 would fail every render".into());
    }
    let max_depth = raw.and_then(|r| r.max_depth).unwrap_or(defaults.max_depth);
    if !(1..=RenderLimits::MAX_DEPTH_ALLOWED).contains(&max_depth) {
        problems.push(format!(
            "render_limits.max_depth: {max_depth} is not between 1 and {}",
            RenderLimits::MAX_DEPTH_ALLOWED
        ));
    }
    RenderLimits {
        timeout,
        max_bytes,
        max_depth,
    }
}

fn duration(
    field: &str,
    text: Option<&str>,
    default: Duration,
    problems: &mut Vec<String>,
) -> Duration {
    match text {
        None => default,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if d >= Duration::from_secs(1) => d,
            Ok(_) => {
                problems.push(format!("{field}: {text:?} is shorter than 1s"));
                default
            }
            Err(e) => {
                problems.push(format!(
                    "{field}: {text:?} is not a duration ({e}); use e.g. 30s, 5m"
                ));
                default
            }
        },
    }
}

/// A secret from a file (trimmed) or an environment variable; `None` when
/// neither is given.
fn secret_from(
    field: &str,
    file: Option<&Path>,
    env: Option<&str>,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    match (file, env) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{field}: give a secret file or an environment variable, not both"
            ));
            None
        }
        (Some(file), None) => match std::fs::read_to_string(file) {
            Ok(text) => Some(Secret::new(text.trim())),
            Err(e) => {
                problems.push(format!("{field}: reading {}: {e}", file.display()));
                None
            }
        },
        (None, Some(var)) => match std::env::var(var) {
            Ok(value) => Some(Secret::new(value.trim())),
            Err(_) => {
                problems.push(format!("{field}: environment variable {var} is not set"));
                None
            }
        },
        (None, None) => None,
    }
}

fn socket_address(
    field: &str,
    text: &str,
    problems: &mut Vec<String>,
) -> Option<std::net::SocketAddr> {
    match text.parse() {
        Ok(address) => Some(address),
        Err(_) => {
            problems.push(format!(
                "{field}: {text:?} is not an address such as 0.0.0.0:8080"
            ));
            None
        }
    }
}

fn http_config(raw: Option<RawHttp>, problems: &mut Vec<String>) -> HttpConfig {
    let raw = raw.unwrap_or(RawHttp {
        address: None,
        status_address: None,
        status_token_file: None,
        status_token_env: None,
    });
    let address = match raw.address.as_deref() {
        None => Some(std::net::SocketAddr::from(([0, 0, 0, 0], 8080))),
        Some("off") => None,
        Some(text) => socket_address("http.address", text, problems),
    };
    HttpConfig {
        address,
        status_address: raw
            .status_address
            .as_deref()
            .and_then(|text| socket_address("http.status_address", text, problems)),
        status_token: secret_from(
            "http.status_token",
            raw.status_token_file.as_deref(),
            raw.status_token_env.as_deref(),
            problems,
        ),
    }
}

fn sink_config(index: usize, raw: RawSink, problems: &mut Vec<String>) -> Option<SinkConfig> {
    let label = format!("notifications[{index}]");
    let name = raw.name.unwrap_or_else(|| format!("sink-{index}"));
    let kind = match raw.kind.as_deref() {
        Some("slack") => SinkKind::Slack,
        Some("webhook") => SinkKind::Webhook,
        other => {
            problems.push(format!(
                "{label}: kind {:?} is not slack or webhook",
                other.unwrap_or("")
            ));
            return None;
        }
    };
    let on = match raw.on.as_deref() {
        None | Some("failures") => SinkFilter::Failures,
        Some("all") => SinkFilter::All,
        Some(other) => {
            problems.push(format!("{label}: on {other:?} is not failures or all"));
            return None;
        }
    };
    let url = match (
        raw.url,
        secret_from(
            &label,
            raw.url_file.as_deref(),
            raw.url_env.as_deref(),
            problems,
        ),
    ) {
        (Some(url), None) => Secret::new(url),
        (None, Some(url)) => url,
        _ => {
            problems.push(format!(
                "{label}: give exactly one of url, url_file, url_env"
            ));
            return None;
        }
    };
    if !(url.expose().starts_with("http://") || url.expose().starts_with("https://")) {
        problems.push(format!("{label}: the url is not an http(s) URL"));
        return None;
    }
    let secret = secret_from(
        &label,
        raw.secret_file.as_deref(),
        raw.secret_env.as_deref(),
        problems,
    );
    if kind == SinkKind::Webhook && secret.is_none() {
        problems.push(format!(
            "{label}: a webhook sink signs its messages: give secret_file or secret_env"
        ));
        return None;
    }
    Some(SinkConfig {
        name,
        kind,
        url,
        secret,
        on,
    })
}

fn validate(raw: RawConfig) -> Result<AgentConfig, Vec<String>> {
    let mut problems = Vec::new();
    let context = match raw.context {
        None => {
            problems.push("context: missing (cloud, env, region, cluster)".to_string());
            None
        }
        Some(c) => {
            let mut missing = Vec::new();
            for (key, value) in [
                ("cloud", &c.cloud),
                ("env", &c.env),
                ("region", &c.region),
                ("cluster", &c.cluster),
            ] {
                if value.is_none() {
                    missing.push(key);
                }
            }
            if !missing.is_empty() {
                problems.push(format!("context: missing {}", missing.join(", ")));
                None
            } else {
                let context = ClusterContext {
                    cloud: c.cloud.unwrap_or_default(),
                    env: c.env.unwrap_or_default(),
                    region: c.region.unwrap_or_default(),
                    cluster: c.cluster.unwrap_or_default(),
                };
                match context.validate() {
                    Ok(()) => Some(context),
                    Err(e) => {
                        problems.push(format!("context: {e}"));
                        None
                    }
                }
            }
        }
    };
    let full_compare_interval = duration(
        "full_compare_interval",
        raw.full_compare_interval.as_deref(),
        Duration::from_secs(600),
        &mut problems,
    );
    let health_timeout = duration(
        "health_timeout",
        raw.health_timeout.as_deref(),
        Duration::from_secs(300),
        &mut problems,
    );
    let max_prune_fraction = raw.max_prune_fraction.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&max_prune_fraction) {
        problems.push(format!(
            "max_prune_fraction: {max_prune_fraction} is not between 0 and 1"
        ));
    }
    let defaults = Concurrency::default();
    let mut limit = |key: &str, value: Option<usize>, default: usize| match value {
        Some(0) => {
            problems.push(format!(
                "concurrency.{key}: 0 would stop every sync; give 1 or more"
            ));
            default
        }
        Some(n) => n,
        None => default,
    };
    let raw_concurrency = raw.concurrency.as_ref();
    let concurrency = Concurrency {
        fetches: limit(
            "fetches",
            raw_concurrency.and_then(|c| c.fetches),
            defaults.fetches,
        ),
        renders: limit(
            "renders",
            raw_concurrency.and_then(|c| c.renders),
            defaults.renders,
        ),
        applies: limit(
            "applies",
            raw_concurrency.and_then(|c| c.applies),
            defaults.applies,
        ),
        requests: limit(
            "requests",
            raw_concurrency.and_then(|c| c.requests),
            defaults.requests,
        ),
    };
    let render_limits = render_limits(raw.render_limits.as_ref(), &mut problems);
    let leader_election = leader_election(
        raw.leader_election,
        raw.state_namespace.as_deref().unwrap_or("berth-system"),
        &mut problems,
    );
    let state_namespace = raw.state_namespace.unwrap_or_else(|| "berth-system".into());
    if state_namespace.is_empty() {
        problems.push("state_namespace: empty".into());
    }
    if let Some(vault) = &raw.vault {
        if !(vault.address.starts_with("http://") || vault.address.starts_with("https://")) {
            problems.push(format!(
                "vault.address: {:?} is not an http(s) URL",
                vault.address
            ));
        }
        for placeholder in ["{app}", "{cluster}", "{name}"] {
            if !vault.path_template.contains(placeholder) {
                problems.push(format!(
                    "vault.path_template: {:?} lacks {placeholder}",
                    vault.path_template
                ));
            }
        }
    }
    let http = http_config(raw.http, &mut problems);
    let webhooks = WebhookConfig {
        secret: raw.webhooks.as_ref().and_then(|w| {
            secret_from(
                "webhooks",
                w.secret_file.as_deref(),
                w.secret_env.as_deref(),
                &mut problems,
            )
        }),
        max_body_bytes: raw
            .webhooks
            .as_ref()
            .and_then(|w| w.max_body_bytes)
            .unwrap_or(1 << 20),
    };
    let notifications = raw
        .notifications
        .into_iter()
        .enumerate()
        .filter_map(|(index, sink)| sink_config(index, sink, &mut problems))
        .collect();
    if raw.applications.is_empty() {
        problems.push("applications: none configured".into());
    }
    let mut names = BTreeSet::new();
    let mut applications = Vec::new();
    for (index, app) in raw.applications.into_iter().enumerate() {
        let label = match &app.name {
            Some(name) => format!("applications[{index}] ({name})"),
            None => format!("applications[{index}]"),
        };
        let name = app.name.clone().unwrap_or_default();
        if name.is_empty() {
            problems.push(format!("{label}: name missing"));
        } else if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            problems.push(format!(
                "{label}: name must be lower-case letters, digits and '-'"
            ));
        } else if !names.insert(name.clone()) {
            problems.push(format!("{label}: name {name:?} is used twice"));
        }
        let url = app.url.clone().unwrap_or_default();
        if url.is_empty() {
            problems.push(format!("{label}: url missing"));
        }
        let branch = match (&app.branch, &app.branches) {
            (Some(_), Some(_)) => {
                problems.push(format!("{label}: give branch or branches, not both"));
                None
            }
            (Some(branch), None) => Some(branch.clone()),
            (None, Some(branches)) => match &context {
                Some(context) => match branches.get(&context.env) {
                    Some(branch) => Some(branch.clone()),
                    None => {
                        problems.push(format!(
                            "{label}: branches has no entry for env {:?}",
                            context.env
                        ));
                        None
                    }
                },
                None => None,
            },
            (None, None) => Some("master".to_string()),
        };
        let release_file = app
            .release_file
            .clone()
            .unwrap_or_else(|| DEFAULT_RELEASE_FILE.to_string());
        if release_file.starts_with('/') || release_file.split('/').any(|c| c == "..") {
            problems.push(format!(
                "{label}: release_file {release_file:?} must be a path inside the repository"
            ));
        }
        if let Some(CredentialsConfig::Token {
            token_file,
            token_env,
            ..
        }) = &app.credentials
            && token_file.is_some() == token_env.is_some()
        {
            problems.push(format!(
                "{label}: token credentials need exactly one of token_file, token_env"
            ));
        }
        let poll_interval = duration(
            &format!("{label}: poll_interval"),
            app.poll_interval.as_deref(),
            Duration::from_secs(60),
            &mut problems,
        );
        applications.push(Application {
            name,
            url,
            branch: branch.unwrap_or_default(),
            release_file,
            poll_interval,
            credentials: app.credentials,
        });
    }
    match context {
        Some(context) if problems.is_empty() => Ok(AgentConfig {
            context,
            cache_dir: raw
                .cache_dir
                .unwrap_or_else(|| PathBuf::from("/var/cache/berth")),
            kubeconfig: raw.kubeconfig,
            state_namespace,
            force_conflicts: raw.force_conflicts.unwrap_or(true),
            full_compare_interval,
            health_timeout,
            history_limit: raw.history_limit.unwrap_or(10).max(1),
            max_prune_fraction,
            helm_compat: raw.helm_compat.unwrap_or_default(),
            render_limits,
            leader_election,
            concurrency,
            log: raw.log.unwrap_or_else(|| "info".into()),
            vault: raw.vault,
            http,
            webhooks,
            notifications,
            applications,
        }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const GOOD: &str = r#"
context: { cloud: gcp, env: prod, region: europe-west1, cluster: gke-1 }
cache_dir: /tmp/berth-cache
applications:
  - name: demo
    url: https://git.example/demo.git
    branches: { dev: dev, staging: master, prod: prod }
    poll_interval: 30s
    credentials:
      token: { token_env: DEMO_TOKEN }
"#;

    #[test]
    fn reads_yaml_and_resolves_branch_by_env() {
        let dir = tempfile::tempdir().unwrap();
        let config = AgentConfig::load_with_env(
            &write(dir.path(), "berth.yaml", GOOD),
            Some(BTreeMap::new()),
        )
        .unwrap();
        assert_eq!(config.context.cluster, "gke-1");
        let app = &config.applications[0];
        assert_eq!(app.branch, "prod");
        assert_eq!(app.poll_interval, Duration::from_secs(30));
        assert_eq!(app.release_file, "deploy/release.yaml");
        assert!(config.force_conflicts);
        assert_eq!(
            app.credentials,
            Some(CredentialsConfig::Token {
                username: "git".into(),
                token_file: None,
                token_env: Some("DEMO_TOKEN".into())
            })
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([
            ("BERTH_CONTEXT__ENV".to_string(), "staging".to_string()),
            ("BERTH_CACHE_DIR".to_string(), "/srv/cache".to_string()),
        ]);
        let config =
            AgentConfig::load_with_env(&write(dir.path(), "berth.yaml", GOOD), Some(env)).unwrap();
        assert_eq!(config.context.env, "staging");
        assert_eq!(config.applications[0].branch, "master");
        assert_eq!(config.cache_dir, PathBuf::from("/srv/cache"));
    }

    #[test]
    fn other_berth_variables_are_not_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([
            ("BERTH_TOOLS_DIR".to_string(), "/opt/tools".to_string()),
            ("BERTH_SCREENSHOT".to_string(), "page.png".to_string()),
            ("BERTH_LOG".to_string(), "debug".to_string()),
        ]);
        let config =
            AgentConfig::load_with_env(&write(dir.path(), "berth.yaml", GOOD), Some(env)).unwrap();
        assert_eq!(config.log, "debug");
    }

    #[test]
    fn every_top_level_key_is_one_the_file_takes() {
        let dir = tempfile::tempdir().unwrap();
        for key in TOP_LEVEL_KEYS {
            // A key the file does not take is refused as unknown; one it takes
            // may still be refused for its value, but not as unknown.
            let text = format!("{GOOD}{key}: ~\n");
            let file = write(dir.path(), "berth.yaml", &text);
            if let Err(error) = AgentConfig::load_with_env(&file, Some(BTreeMap::new())) {
                assert!(
                    !error.to_string().contains("unknown field"),
                    "{key}: {error}"
                );
            }
        }
    }

    #[test]
    fn leader_election_is_off_unless_configured_and_its_durations_nest() {
        let dir = tempfile::tempdir().unwrap();
        let load = |name: &str, text: &str| {
            AgentConfig::load_with_env(&write(dir.path(), name, text), Some(BTreeMap::new()))
        };
        assert_eq!(load("a.yaml", GOOD).unwrap().leader_election, None);
        let text = format!("{GOOD}leader_election: {{ identity: pod-a }}\n");
        let election = load("b.yaml", &text).unwrap().leader_election.unwrap();
        assert_eq!(election.lease_name, "berth");
        assert_eq!(election.namespace, "berth-system");
        assert_eq!(election.identity, "pod-a");
        assert_eq!(
            (
                election.lease_duration,
                election.renew_deadline,
                election.retry_period
            ),
            (
                Duration::from_secs(15),
                Duration::from_secs(10),
                Duration::from_secs(2)
            )
        );
        let text = format!("{GOOD}leader_election: {{ enabled: false }}\n");
        assert_eq!(load("c.yaml", &text).unwrap().leader_election, None);
        let text = format!(
            "{GOOD}leader_election: {{ identity: a, lease_duration: 10s, renew_deadline: 10s }}\n"
        );
        let error = load("d.yaml", &text).unwrap_err().to_string();
        assert!(
            error.contains("renew_deadline must be shorter than lease_duration"),
            "{error}"
        );
    }

    #[test]
    fn render_limits_have_defaults_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "berth.yaml", GOOD);
        let config = AgentConfig::load_with_env(&path, Some(BTreeMap::new())).unwrap();
        assert_eq!(config.render_limits, RenderLimits::default());
        let text = format!("{GOOD}render_limits: {{ timeout: 5s, max_bytes: 1048576 }}\n");
        let config =
            AgentConfig::load_with_env(&write(dir.path(), "b.yaml", &text), Some(BTreeMap::new()))
                .unwrap();
        assert_eq!(config.render_limits.timeout, Duration::from_secs(5));
        assert_eq!(config.render_limits.max_bytes, 1 << 20);
        assert_eq!(
            config.render_limits.max_depth,
            RenderLimits::default().max_depth
        );
        let text =
            format!("{GOOD}render_limits: {{ timeout: 1ms, max_bytes: 0, max_depth: 5000 }}\n");
        let error =
            AgentConfig::load_with_env(&write(dir.path(), "c.yaml", &text), Some(BTreeMap::new()))
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("render_limits.timeout: \"1ms\" is shorter than 1s"),
            "{error}"
        );
        assert!(error.contains("render_limits.max_bytes: 0"), "{error}");
        assert!(
            error.contains("render_limits.max_depth: 5000 is not between 1 and 1000"),
            "{error}"
        );
    }

    #[test]
    fn concurrency_has_defaults_and_refuses_zero() {
        let dir = tempfile::tempdir().unwrap();
        let config = AgentConfig::load_with_env(
            &write(dir.path(), "berth.yaml", GOOD),
            Some(BTreeMap::new()),
        )
        .unwrap();
        assert_eq!(config.concurrency, Concurrency::default());
        let text = format!("{GOOD}concurrency: {{ fetches: 2, applies: 0 }}\n");
        let error = AgentConfig::load_with_env(
            &write(dir.path(), "berth.yaml", &text),
            Some(BTreeMap::new()),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("concurrency.applies: 0"), "{error}");
        let text = format!("{GOOD}concurrency: {{ fetches: 2, renders: 1 }}\n");
        let config = AgentConfig::load_with_env(
            &write(dir.path(), "berth.yaml", &text),
            Some(BTreeMap::new()),
        )
        .unwrap();
        assert_eq!(
            (config.concurrency.fetches, config.concurrency.renders),
            (2, 1)
        );
    }

    #[test]
    fn reads_toml() {
        let dir = tempfile::tempdir().unwrap();
        let toml = r#"
[context]
cloud = "onprem"
env = "dev"
region = "paris"
cluster = "par-1"

[[applications]]
name = "demo"
url = "file:///srv/demo"
branch = "main"
"#;
        let config = AgentConfig::load_with_env(
            &write(dir.path(), "berth.toml", toml),
            Some(BTreeMap::new()),
        )
        .unwrap();
        assert_eq!(config.context.region, "paris");
        assert_eq!(config.applications[0].branch, "main");
    }

    #[test]
    fn lists_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let bad = r#"
context: { cloud: gcp, env: prod }
max_prune_fraction: 2
applications:
  - name: demo
    branches: { dev: dev }
    poll_interval: soon
  - name: demo
    url: x
    release_file: ../outside.yaml
"#;
        let error = AgentConfig::load_with_env(
            &write(dir.path(), "berth.yaml", bad),
            Some(BTreeMap::new()),
        )
        .unwrap_err();
        let text = error.to_string();
        for expected in [
            "context: missing region, cluster",
            "max_prune_fraction",
            "applications[0] (demo): url missing",
            "poll_interval: \"soon\" is not a duration",
            "name \"demo\" is used twice",
            "must be a path inside the repository",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn vault_section_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{GOOD}vault:\n  address: http://127.0.0.1:8200\n  auth:\n    kubernetes: {{ role: berth-gke-1 }}\n"
        );
        let config = AgentConfig::load_with_env(
            &write(dir.path(), "berth.yaml", &text),
            Some(BTreeMap::new()),
        )
        .unwrap();
        let vault = config.vault.unwrap();
        assert_eq!(vault.kv_mount, "secret");
        assert_eq!(vault.path_template, "{app}/{cluster}/{name}");
        let text = format!(
            "{GOOD}vault:\n  address: vault:8200\n  path_template: \"{{app}}/{{name}}\"\n  auth:\n    approle: {{ role_id_file: /r, secret_id_file: /s }}\n"
        );
        let error = AgentConfig::load_with_env(
            &write(dir.path(), "berth.yaml", &text),
            Some(BTreeMap::new()),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("not an http(s) URL"), "{error}");
        assert!(error.contains("lacks {cluster}"), "{error}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let text = GOOD.replace("cache_dir:", "cache_directory:");
        let error = AgentConfig::load_with_env(
            &write(dir.path(), "berth.yaml", &text),
            Some(BTreeMap::new()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("cache_directory"), "{error}");
    }
}
