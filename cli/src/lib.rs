//! The `berth` command line: every command of the one `berth` binary.
//! `template` is Helm's (berth_chart); the others drive the agent
//! (berth_agent). The binary is `src/main.rs`; this library lets the
//! integration tests run commands in process.

pub mod template;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use berth_agent::config::AgentConfig;
use berth_agent::context::ClusterContext;
use berth_agent::daemon::{Agent, serve};
use berth_agent::diff::diff_applications;
use berth_agent::health::Health;
use berth_agent::inventory::{HistoryEntry, InventoryStore, Outcome, releases};
use berth_agent::kubernetes::kube_client;
use berth_agent::logging::{self, LogFormat};
use berth_agent::reconcile::{SyncReport, read_chart, read_release, render_release};
use berth_agent::release::{DEFAULT_RELEASE_FILE, explain, format_explanation};
use berth_agent::source::{RepoPath, RepoTree};
use clap::{Parser, Subcommand, ValueEnum};

/// The Kubernetes API version berth's types are generated for.
pub const KUBERNETES_API: &str = "1.36";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Per-cluster GitOps agent: renders each application's Helm chart for this cluster and applies it"
)]
pub struct Cli {
    /// Log format (logs go to stderr). Default: json for run and sync, text otherwise.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: BerthCommand,
}

#[derive(Debug, Subcommand)]
pub enum BerthCommand {
    /// Render a release for a cluster context, offline, as multi-document YAML.
    Render {
        /// The application directory (holding deploy/release.yaml) or the release file's directory.
        dir: PathBuf,
        /// The cluster context: cloud=..,env=..,region=..,cluster=..
        #[arg(long)]
        context: String,
        /// The release file, relative to the application directory.
        #[arg(long)]
        release_file: Option<String>,
        /// Instead of manifests, show each value and the layer that set it.
        #[arg(long)]
        explain: bool,
        /// Render as Helm 3 or 4 renders where they differ, unless the
        /// release file says (`helmCompat`); as the agent's `helm_compat`.
        #[arg(long, value_name = "3|4", default_value_t = berth_chart::HelmCompat::default())]
        helm_compat: berth_chart::HelmCompat,
        #[command(flatten)]
        render_limits: template::RenderLimitArgs,
    },
    /// Sync every application once: fetch, render, plan, apply, prune, record.
    Sync {
        #[arg(long)]
        config: PathBuf,
        /// Sync once and exit (the daemon is `berth run`).
        #[arg(long)]
        once: bool,
        /// Only this application.
        #[arg(long)]
        app: Option<String>,
        /// Apply only objects whose rendered digest changed since the last sync
        /// (default: compare every object with the cluster and correct drift).
        #[arg(long)]
        changed_only: bool,
    },
    /// Run the agent: poll every application and sync on change, until stopped.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Show what a sync would change, as a unified diff per object.
    Diff {
        #[arg(long)]
        config: PathBuf,
        /// Only this release (or application).
        release: Option<String>,
    },
    /// One line per release this cluster runs: commit, outcome, health,
    /// since when, last error.
    Status {
        #[arg(long)]
        config: PathBuf,
    },
    /// Show the last syncs of a release, newest first.
    History {
        #[arg(long)]
        config: PathBuf,
        release: String,
    },
    /// Print berth's version and the Kubernetes API version it targets.
    Version,
    /// Render a chart like `helm template`
    Template(template::TemplateArgs),
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Json,
    Text,
}

impl From<LogFormatArg> for LogFormat {
    fn from(format: LogFormatArg) -> LogFormat {
        match format {
            LogFormatArg::Json => LogFormat::Json,
            LogFormatArg::Text => LogFormat::Text,
        }
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let default_format = match cli.command {
        BerthCommand::Run { .. } | BerthCommand::Sync { .. } => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let format = cli.log_format.map_or(default_format, LogFormat::from);
    match cli.command {
        BerthCommand::Version => {
            println!(
                "berth {} (Kubernetes API {KUBERNETES_API})",
                env!("CARGO_PKG_VERSION")
            );
            Ok(0)
        }
        BerthCommand::Template(args) => template::run(&args),
        BerthCommand::Render {
            dir,
            context,
            release_file,
            explain,
            helm_compat,
            render_limits,
        } => {
            logging::init("warn", format);
            render(
                &dir,
                &context,
                release_file.as_deref(),
                explain,
                helm_compat,
                render_limits.limits(),
            )
        }
        command => {
            let config_path = match &command {
                BerthCommand::Sync { config, .. }
                | BerthCommand::Run { config }
                | BerthCommand::Diff { config, .. }
                | BerthCommand::History { config, .. }
                | BerthCommand::Status { config } => config.clone(),
                _ => bail!("not an online command"),
            };
            let config = AgentConfig::load(&config_path)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(berth_agent::limits::blocking_threads(&config.concurrency))
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(run_online(command, config, config_path, format))
        }
    }
}

/// An error and its causes on one line, each cause once: berth's error
/// types already spell out their source in their own message, and anyhow's
/// `{:#}` would repeat it.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// `berth sync --once` exits 1 when a sync failed, ended degraded or was
/// rolled back.
pub const EXIT_FAILED: i32 = 1;
/// `berth sync --once` exits 3 when a sync was deferred (Vault down or
/// sealed): nothing was applied, and the same run later may succeed.
pub const EXIT_DEFERRED: i32 = 3;

/// The exit code of `berth sync --once`: a failure outweighs a deferral,
/// and a run that applied nothing because it was deferred is no success.
fn sync_exit_code(reports: &[SyncReport]) -> i32 {
    let failed = reports.iter().any(|r| {
        matches!(r.outcome, Outcome::Failed | Outcome::RolledBack)
            || r.health
                .as_ref()
                .is_some_and(|v| v.health == Health::Degraded)
    });
    let deferred = reports.iter().any(|r| r.outcome == Outcome::Deferred);
    if failed {
        EXIT_FAILED
    } else if deferred {
        EXIT_DEFERRED
    } else {
        0
    }
}

/// Finds the repository root and release file for `berth render DIR`.
fn locate_release(dir: &Path, release_file: Option<&str>) -> Result<(PathBuf, String)> {
    if let Some(release_file) = release_file {
        return Ok((dir.to_path_buf(), release_file.to_string()));
    }
    if dir.join(DEFAULT_RELEASE_FILE).is_file() {
        return Ok((dir.to_path_buf(), DEFAULT_RELEASE_FILE.to_string()));
    }
    if dir.join("release.yaml").is_file() {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            bail!("{} has no parent directory", dir.display());
        };
        return Ok((
            parent.to_path_buf(),
            format!("{}/release.yaml", name.to_string_lossy()),
        ));
    }
    bail!(
        "no release file in {}: expected {} or release.yaml",
        dir.display(),
        DEFAULT_RELEASE_FILE
    )
}

fn render(
    dir: &Path,
    context: &str,
    release_file: Option<&str>,
    explain_values: bool,
    helm: berth_chart::HelmCompat,
    limits: berth_chart::RenderLimits,
) -> Result<i32> {
    let context: ClusterContext = context.parse().context("--context")?;
    let (root, release_file) = locate_release(dir, release_file)?;
    let tree = RepoTree::from_dir(&root);
    let release_path = RepoPath::parse(&release_file)?;
    let release = read_release(&tree, &release_path)?;
    if explain_values {
        let chart = read_chart(&tree, &release_path, &release)?;
        let defaults = berth_chart::values::to_yaml(&berth_chart::default_values(&chart)?);
        print!(
            "{}",
            format_explanation(&explain(&defaults, &release.value_layers(&context)))
        );
        return Ok(0);
    }
    let rendered = render_release(&tree, &release_path, release, &context, helm, limits)?;
    if !rendered.release.targets(&context) {
        eprintln!(
            "note: release {} does not target {context}; an agent there would skip it",
            rendered.release.name
        );
    }
    print!("{}", rendered.manifests);
    Ok(0)
}

async fn run_online(
    command: BerthCommand,
    config: AgentConfig,
    config_path: PathBuf,
    format: LogFormat,
) -> Result<i32> {
    logging::init(&config.log, format);
    let client = kube_client(&config).await?;
    match command {
        BerthCommand::Sync {
            once,
            app,
            changed_only,
            ..
        } => {
            if !once {
                bail!("berth sync needs --once; to keep syncing, use berth run");
            }
            if let Some(name) = &app
                && !config.applications.iter().any(|a| &a.name == name)
            {
                bail!("no application named {name} in {}", config_path.display());
            }
            let mut agent = Agent::new(config, client);
            let reports = agent.sync_once(app.as_deref(), !changed_only).await;
            agent.finish().await;
            Ok(sync_exit_code(&reports))
        }
        BerthCommand::Run { .. } => {
            serve(config, &config_path, client, shutdown_signal()).await?;
            Ok(0)
        }
        BerthCommand::History { release, .. } => {
            let store = InventoryStore::new(
                client,
                &config.state_namespace,
                &release,
                config.history_limit,
            );
            let history = store.history().await?;
            if history.is_empty() {
                println!("no syncs recorded for release {release}");
                return Ok(0);
            }
            println!(
                "STARTED                         COMMIT        OUTCOME      HEALTH       CREATED UPDATED DELETED UNCHANGED  DURATION  SUBJECT (AUTHOR) / ERROR"
            );
            for entry in history {
                let said = match (&entry.error, &entry.health_reason, entry.subject.is_empty()) {
                    (Some(error), _, _) => error.clone(),
                    (None, Some(reason), _) => reason.clone(),
                    (None, None, false) => format!("{} ({})", entry.subject, entry.author),
                    (None, None, true) => String::new(),
                };
                println!(
                    "{:<31} {:<13} {:<12} {:<12} {:>7} {:>7} {:>7} {:>9} {:>8}ms  {}",
                    entry.started_at,
                    entry.commit.chars().take(12).collect::<String>(),
                    entry.outcome.to_string(),
                    entry.health.map_or("-".to_string(), |h| h.to_string()),
                    entry.counts.created,
                    entry.counts.updated,
                    entry.counts.deleted,
                    entry.counts.unchanged,
                    entry.duration_ms,
                    said
                );
            }
            Ok(0)
        }
        BerthCommand::Status { .. } => {
            let releases = releases(client, &config.state_namespace).await?;
            if releases.is_empty() {
                println!(
                    "no release recorded in namespace {}",
                    config.state_namespace
                );
                return Ok(0);
            }
            print!("{}", format_status(&releases));
            Ok(0)
        }
        BerthCommand::Diff { release, .. } => {
            print!(
                "{}",
                diff_applications(&config, &client, release.as_deref()).await?
            );
            Ok(0)
        }
        _ => bail!("not an online command"),
    }
}

/// `berth status`: one aligned line per release, newest state first.
pub fn format_status(releases: &[(String, Vec<HistoryEntry>)]) -> String {
    let mut out = format!(
        "{:<24} {:<13} {:<12} {:<12} {:<31} {}\n",
        "RELEASE", "COMMIT", "OUTCOME", "HEALTH", "SINCE", "LAST ERROR"
    );
    for (release, history) in releases {
        let Some(newest) = history.first() else {
            continue;
        };
        let last_error = history
            .iter()
            .find_map(|e| e.error.clone().or_else(|| e.health_reason.clone()))
            .unwrap_or_else(|| "-".to_string());
        out.push_str(&format!(
            "{:<24} {:<13} {:<12} {:<12} {:<31} {}\n",
            release,
            newest.commit.chars().take(12).collect::<String>(),
            newest.outcome.to_string(),
            newest.health.map_or("-".to_string(), |h| h.to_string()),
            newest.started_at,
            last_error
        ));
    }
    out
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_lists_the_subcommands() {
        let help = Cli::command().render_help().to_string();
        for command in [
            "render", "sync", "run", "diff", "history", "status", "version",
        ] {
            assert!(help.contains(command), "{command} missing from:\n{help}");
        }
    }

    #[test]
    fn an_error_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("repetition limit exceeded at line 3")]
        struct Inner;
        #[derive(Debug, thiserror::Error)]
        #[error("release file deploy/release.yaml: {0}")]
        struct Outer(#[source] Inner);
        let error = anyhow::Error::new(Outer(Inner)).context("render");
        assert_eq!(
            error_text(&error),
            "render: release file deploy/release.yaml: repetition limit exceeded at line 3"
        );
    }

    #[test]
    fn unknown_subcommand_is_rejected() {
        assert!(Cli::try_parse_from(["berth", "deploy-everything"]).is_err());
    }
}
