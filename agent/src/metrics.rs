//! The agent's Prometheus metrics (served at `/metrics`, listed in
//! docs/operations.md). One [`Metrics`] per agent; the daemon, the HTTP
//! server, the notifier and the Vault session record into it.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::health::Health;
use crate::inventory::Outcome;
use crate::reconcile::SyncReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApplicationLabels {
    application: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    application: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    application: String,
    /// created, updated, deleted or unchanged.
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    application: String,
    release: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VaultLabels {
    operation: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds, from 50 ms to about 14 minutes: a sync that changes nothing up
/// to one that waits out a long health timeout.
fn sync_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 15))
}

/// Seconds, from 5 ms to about 80 s: one stage or one fetch.
fn stage_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every metric the agent exports.
pub struct Metrics {
    registry: Registry,
    syncs: Family<SyncLabels, Counter>,
    sync_duration: Histograms<ApplicationLabels>,
    stage_duration: Histograms<StageLabels>,
    objects: Family<ObjectLabels, Counter>,
    health: Family<HealthLabels, Gauge>,
    last_success: Family<ApplicationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    fetch_duration: Histograms<ApplicationLabels>,
    fetch_errors: Family<ApplicationLabels, Counter>,
    webhooks: Family<WebhookLabels, Counter>,
    vault: Family<VaultLabels, Counter>,
    config_reloads: Family<ResultLabels, Counter>,
    config_reload_ok: Gauge,
    notifications: Family<SinkLabels, Counter>,
    applications: Gauge,
    leader: Gauge,
    drift_watches: Gauge,
    /// The release whose health each application's gauges describe.
    health_release: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("berth");
        let metrics = Metrics {
            syncs: Family::default(),
            sync_duration: Family::new_with_constructor(sync_buckets),
            stage_duration: Family::new_with_constructor(stage_buckets),
            objects: Family::default(),
            health: Family::default(),
            last_success: Family::default(),
            fetch_duration: Family::new_with_constructor(stage_buckets),
            fetch_errors: Family::default(),
            webhooks: Family::default(),
            vault: Family::default(),
            config_reloads: Family::default(),
            config_reload_ok: Gauge::default(),
            notifications: Family::default(),
            applications: Gauge::default(),
            leader: Gauge::default(),
            drift_watches: Gauge::default(),
            health_release: Default::default(),
            registry: Registry::default(),
        };
        registry.register(
            "syncs",
            "Syncs by application and outcome (succeeded, failed, skipped, deferred, rolled-back)",
            metrics.syncs.clone(),
        );
        registry.register(
            "sync_duration_seconds",
            "How long a sync took, from the fetched commit to the end of its apply (the health wait is the health stage)",
            metrics.sync_duration.clone(),
        );
        registry.register(
            "stage_duration_seconds",
            "How long each stage of a sync took (release, inventory, render, secrets, plan, hooks, apply, record, health)",
            metrics.stage_duration.clone(),
        );
        registry.register(
            "objects",
            "Objects created, updated, deleted or left unchanged by syncs",
            metrics.objects.clone(),
        );
        registry.register(
            "release_health",
            "1 for the release's current health state (progressing, healthy, degraded), 0 for the others",
            metrics.health.clone(),
        );
        registry.register(
            "last_successful_sync_timestamp_seconds",
            "Unix time of the application's last sync that succeeded",
            metrics.last_success.clone(),
        );
        registry.register(
            "git_fetch_duration_seconds",
            "How long bringing the application's repository up to date took",
            metrics.fetch_duration.clone(),
        );
        registry.register(
            "git_fetch_errors",
            "Fetches of the application's repository that failed",
            metrics.fetch_errors.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by provider and result (accepted, ignored, unknown_repository, unauthorized, too_large, bad_request)",
            metrics.webhooks.clone(),
        );
        registry.register(
            "vault_auth",
            "Vault logins and token renewals by result (ok, error)",
            metrics.vault.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration file changes by result (applied, refused)",
            metrics.config_reloads.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 when the last change of the configuration file was applied, 0 when it was refused",
            metrics.config_reload_ok.clone(),
        );
        registry.register(
            "notifications",
            "Notifications by sink and result (delivered, retried, dropped)",
            metrics.notifications.clone(),
        );
        registry.register(
            "applications",
            "Applications this agent follows",
            metrics.applications.clone(),
        );
        registry.register(
            "leader",
            "1 when this replica writes (it holds the lease, or runs without leader election), 0 when it follows",
            metrics.leader.clone(),
        );
        registry.register(
            "drift_watches",
            "Kinds of the releases' objects watched (across the cluster, or in each of their namespaces where berth may not watch across it)",
            metrics.drift_watches.clone(),
        );
        registry.register(
            "build",
            "The running berth's version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            }),
        );
        metrics.config_reload_ok.set(1);
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Counts one sync and what it did.
    pub fn record_sync(&self, report: &SyncReport) {
        let application = report.application.clone();
        self.syncs
            .get_or_create(&SyncLabels {
                application: application.clone(),
                outcome: report.outcome.to_string(),
            })
            .inc();
        self.sync_duration
            .get_or_create(&ApplicationLabels {
                application: application.clone(),
            })
            .observe(report.duration_ms as f64 / 1000.0);
        for (stage, took) in &report.stages {
            self.stage_duration
                .get_or_create(&StageLabels {
                    stage: stage.to_string(),
                })
                .observe(took.as_secs_f64());
        }
        let counts = report.counts;
        for (action, count) in [
            ("created", counts.created),
            ("updated", counts.updated),
            ("deleted", counts.deleted),
            ("unchanged", counts.unchanged),
        ] {
            self.objects
                .get_or_create(&ObjectLabels {
                    application: application.clone(),
                    action,
                })
                .inc_by(count as u64);
        }
        if matches!(report.outcome, Outcome::Succeeded | Outcome::Skipped) {
            self.last_success
                .get_or_create(&ApplicationLabels {
                    application: application.clone(),
                })
                .set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
        }
        if let (Some(release), Some(verdict)) = (&report.release, &report.health) {
            self.set_health(&application, release, verdict.health);
        }
    }

    fn set_health(&self, application: &str, release: &str, health: Health) {
        if let Ok(mut releases) = self.health_release.lock() {
            releases.insert(application.to_string(), release.to_string());
        }
        for state in [Health::Progressing, Health::Healthy, Health::Degraded] {
            self.health
                .get_or_create(&HealthLabels {
                    application: application.to_string(),
                    release: release.to_string(),
                    state: state.to_string(),
                })
                .set(i64::from(state == health));
        }
    }

    /// Drops the gauges of an application that is no longer followed (its
    /// counters stay until the agent restarts, as Prometheus expects).
    pub fn forget_application(&self, application: &str) {
        self.last_success.remove(&ApplicationLabels {
            application: application.to_string(),
        });
        let release = self
            .health_release
            .lock()
            .ok()
            .and_then(|mut releases| releases.remove(application));
        if let Some(release) = release {
            for state in [Health::Progressing, Health::Healthy, Health::Degraded] {
                self.health.remove(&HealthLabels {
                    application: application.to_string(),
                    release: release.clone(),
                    state: state.to_string(),
                });
            }
        }
    }

    pub fn record_fetch(&self, application: &str, took: Duration, ok: bool) {
        let labels = ApplicationLabels {
            application: application.to_string(),
        };
        self.fetch_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if !ok {
            self.fetch_errors.get_or_create(&labels).inc();
        }
    }

    pub fn set_drift_watches(&self, watches: usize) {
        self.drift_watches.set(watches as i64);
    }

    pub fn record_webhook(&self, provider: &str, result: &str) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                provider: provider.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// `operation` is `login` or `renewal`.
    pub fn record_vault_auth(&self, operation: &str, ok: bool) {
        self.vault
            .get_or_create(&VaultLabels {
                operation: operation.to_string(),
                result: if ok { "ok" } else { "error" }.to_string(),
            })
            .inc();
    }

    pub fn record_config_reload(&self, applied: bool) {
        self.config_reloads
            .get_or_create(&ResultLabels {
                result: if applied { "applied" } else { "refused" }.to_string(),
            })
            .inc();
        self.config_reload_ok.set(i64::from(applied));
    }

    /// `result` is `delivered`, `retried` or `dropped`.
    pub fn record_notification(&self, sink: &str, result: &str) {
        self.notifications
            .get_or_create(&SinkLabels {
                sink: sink.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn set_applications(&self, count: usize) {
        self.applications.set(count as i64);
    }

    pub fn set_leader(&self, writes: bool) {
        self.leader.set(i64::from(writes));
    }
}
