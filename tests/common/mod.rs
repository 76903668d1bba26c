//! Helpers shared by the end-to-end test binaries (each uses a subset, hence
//! the allow below).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_agent::config::AgentConfig;
use berth_agent::daemon::Agent;
use berth_agent::inventory::{InventoryStore, Outcome};
use berth_agent::reconcile::SyncReport;
use berth_harness::TestCluster;
use berth_harness::git::{BRANCH, TestRepo};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::Api;
use tempfile::TempDir;

pub const STATE_NAMESPACE: &str = "berth-system";

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo")
}

/// The demo application as a real git repository, its release renamed so that
/// tests sharing one cluster do not meet.
pub fn demo_repo(release: &str) -> TestRepo {
    let (repo, _) = TestRepo::from_dir(release, &fixture(), "demo application").unwrap();
    let path = repo.path().join("deploy/release.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("name: demo\n", &format!("name: {release}\n"))
        .replace("namespace: demo\n", &format!("namespace: {release}\n"));
    repo.write("deploy/release.yaml", text).unwrap();
    repo.commit(&format!("release {release}")).unwrap();
    repo
}

/// One agent: a configuration file (through the real loader) for a context.
pub struct TestAgent {
    pub agent: Agent,
    pub client: Client,
    pub _dir: TempDir,
}

impl TestAgent {
    pub async fn new(cluster: &TestCluster, url: &str, context: &str) -> Self {
        Self::with_config(cluster, url, context, "").await
    }

    /// Like [`TestAgent::new`], with more configuration appended (e.g. a `vault:` section).
    pub async fn with_config(cluster: &TestCluster, url: &str, context: &str, extra: &str) -> Self {
        Self::with_applications(cluster, &[("demo", url)], context, extra).await
    }

    /// An agent following several applications: (name, url) each.
    pub async fn with_applications(
        cluster: &TestCluster,
        applications: &[(&str, &str)],
        context: &str,
        extra: &str,
    ) -> Self {
        let applications: String = applications
            .iter()
            .map(|(name, url)| {
                format!(
                    "  - name: {name}\n    url: {url}\n    branch: {BRANCH}\n    poll_interval: 1s\n"
                )
            })
            .collect();
        Self::with_application_entries(cluster, &applications, context, extra).await
    }

    /// An agent whose `applications:` list is `applications` (YAML entries).
    pub async fn with_application_entries(
        cluster: &TestCluster,
        applications: &str,
        context: &str,
        extra: &str,
    ) -> Self {
        // BERTH_LOG=debug (a tracing filter) shows the agents' logs on stderr.
        if let Ok(filter) = std::env::var("BERTH_LOG") {
            berth_agent::logging::init(&filter, berth_agent::logging::LogFormat::Text);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(
            dir.path(),
            &cluster.admin_kubeconfig(),
            context,
            applications,
            &format!("log: debug\n{extra}"),
        );
        let config = AgentConfig::load(&path).unwrap();
        // The agent's own client, as `berth run` makes it.
        let client = berth_agent::kubernetes::kube_client(&config).await.unwrap();
        Self {
            agent: Agent::new(config, client.clone()),
            client,
            _dir: dir,
        }
    }

    pub async fn sync(&mut self, full_compare: bool) -> SyncReport {
        let mut reports = self.agent.sync_once(None, full_compare).await;
        assert_eq!(reports.len(), 1);
        reports.remove(0)
    }

    pub async fn history(&self, release: &str) -> Vec<berth_agent::inventory::HistoryEntry> {
        InventoryStore::new(self.client.clone(), STATE_NAMESPACE, release, 10)
            .history()
            .await
            .unwrap()
    }
}

pub fn succeeded(report: &SyncReport) {
    assert_eq!(
        report.outcome,
        Outcome::Succeeded,
        "sync failed: {report:?}"
    );
}

/// The image of the first container of a Deployment.
pub async fn deployment_image(client: &Client, namespace: &str, name: &str) -> Option<String> {
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap()
        .spec?
        .template
        .spec?
        .containers
        .first()?
        .image
        .clone()
}

/// Someone else's change to the demo ConfigMap `name`: another field
/// manager ("by-hand") takes its GREETING and sets it to "edited-by-hand".
pub async fn edit_greeting_by_hand(client: &Client, namespace: &str, name: &str) {
    kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &kube::api::PatchParams::apply("by-hand").force(),
            &kube::api::Patch::Apply(serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "data": { "GREETING": "edited-by-hand" },
            })),
        )
        .await
        .unwrap();
}

pub async fn config_data(client: &Client, namespace: &str, name: &str) -> BTreeMap<String, String> {
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap()
        .data
        .unwrap_or_default()
}

pub const STAGING_PARIS: &str = "onprem,staging,paris,par-staging-1";
pub const PROD_GCP: &str = "gcp,prod,europe-west1,gke-prod-1";

/// Log lines captured from berth's own JSON subscriber.
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    /// The log of this whole test binary, through berth's own JSON subscriber.
    /// It is installed as the global default because tracing caches, per call
    /// site, whether anyone listens: a subscriber scoped to one test can miss
    /// events whose call site another test reached first.
    pub fn global() -> &'static CapturedLog {
        static LOG: std::sync::OnceLock<CapturedLog> = std::sync::OnceLock::new();
        LOG.get_or_init(|| {
            let log = CapturedLog::default();
            let writer = log.clone();
            tracing::subscriber::set_global_default(berth_agent::logging::subscriber(
                "info",
                berth_agent::logging::LogFormat::Json,
                move || writer.clone(),
            ))
            .unwrap();
            log
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Sync-log lines of one release.
    pub fn sync_log(&self, release: &str) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|line| line["target"] == "berth::sync_log" && line["release"] == release)
            .collect()
    }
}

/// Sets the demo's image (`repository:tag`) in the release file.
pub fn set_image(repo: &TestRepo, image: &str) {
    let (repository, tag) = image.rsplit_once(':').unwrap();
    let path = repo.path().join("deploy/release.yaml");
    let text: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| {
            if line.starts_with("    repository: ") {
                format!("    repository: {repository}\n")
            } else if line.starts_with("    tag: ") {
                format!("    tag: \"{tag}\"\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    repo.write("deploy/release.yaml", text).unwrap();
}

/// Appends top-level keys to the release file.
pub fn add_to_release(repo: &TestRepo, keys: &str) {
    let text = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write("deploy/release.yaml", format!("{text}{keys}"))
        .unwrap();
}

/// The template of [`config_maps_repo`]'s chart: `.Values.count` ConfigMaps
/// named `<release>-<i>`.
pub const CONFIG_MAPS_TEMPLATE: &str = "{{- range $i := until (int .Values.count) }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ $.Release.Name }}-{{ $i }}\ndata:\n  index: {{ $i | quote }}\n{{- end }}\n";

/// A repository for `release` whose chart renders many ConfigMaps (its
/// release file not written yet: [`set_config_map_count`]).
pub fn config_maps_repo(release: &str) -> TestRepo {
    let repo = TestRepo::new(release).unwrap();
    repo.write(
        "deploy/chart/Chart.yaml",
        "apiVersion: v2\nname: many\nversion: 1.0.0\n",
    )
    .unwrap();
    repo.write(
        "deploy/chart/templates/config-maps.yaml",
        CONFIG_MAPS_TEMPLATE,
    )
    .unwrap();
    repo
}

/// Writes the release file of a [`config_maps_repo`]: `count` ConfigMaps.
pub fn set_config_map_count(repo: &TestRepo, release: &str, count: usize) {
    repo.write(
        "deploy/release.yaml",
        format!("name: {release}\nnamespace: {release}\nchart: chart\nvalues:\n  count: {count}\n"),
    )
    .unwrap();
}

/// Writes `dir/berth.yaml`: the cluster `context` ("cloud,env,region,name"),
/// a cache in `dir`, `kubeconfig`, the state namespace, `extra` keys and
/// the `applications:` list (YAML entries); returns its path.
pub fn write_config(
    dir: &Path,
    kubeconfig: &Path,
    context: &str,
    applications: &str,
    extra: &str,
) -> PathBuf {
    let [cloud, env, region, name] = context.split(',').collect::<Vec<_>>().try_into().unwrap();
    let path = dir.join("berth.yaml");
    std::fs::write(
        &path,
        format!(
            "context: {{ cloud: {cloud}, env: {env}, region: {region}, cluster: {name} }}\n\
             cache_dir: {cache}\n\
             kubeconfig: {kubeconfig}\n\
             state_namespace: {STATE_NAMESPACE}\n\
             {extra}\
             applications:\n{applications}",
            cache = dir.join("cache").display(),
            kubeconfig = kubeconfig.display(),
        ),
    )
    .unwrap();
    path
}
