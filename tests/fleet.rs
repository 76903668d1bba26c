//! Berth at fleet scale against the real control plane: releases of tens of
//! thousands of objects keep their inventory and history within the API
//! server's 1 MiB per object.

mod common;

use berth_agent::inventory::{
    Counts, HistoryEntry, Inventory, InventoryEntry, InventoryStore, Outcome,
};
use berth_agent::objects::ObjectRef;
use berth_harness::shared;
use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The API server refuses a ConfigMap whose data exceeds this.
const CONFIG_MAP_LIMIT: usize = 1024 * 1024;

/// An inventory of `count` ConfigMaps with digests as real ones look
/// (sha256 hex, so they do not compress away).
fn inventory(release: &str, count: usize, commit: &str) -> Inventory {
    Inventory {
        release: release.to_string(),
        namespace: release.to_string(),
        commit: commit.to_string(),
        manifests_digest: hex(&format!("{release}{commit}")),
        objects: (0..count)
            .map(|i| InventoryEntry {
                object: ObjectRef {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some(release.to_string()),
                    name: format!("{release}-settings-{i:05}"),
                },
                digest: hex(&format!("{commit}/{i}")),
            })
            .collect(),
    }
}

fn hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn entry(commit: &str, error: Option<String>) -> HistoryEntry {
    HistoryEntry {
        commit: commit.to_string(),
        subject: format!("commit {commit}"),
        author: "Ada".into(),
        manifests_digest: hex(commit),
        counts: Counts::default(),
        outcome: if error.is_some() {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        },
        error,
        started_at: "2026-12-04T00:00:00Z".into(),
        duration_ms: 1,
        health: None,
        health_reason: None,
        rolled_back_from: None,
        deletions_allowed: None,
    }
}

/// Every ConfigMap holding `release`'s record, with the bytes of its data.
async fn record_sizes(client: &kube::Client, release: &str) -> Vec<(String, usize)> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), STATE_NAMESPACE);
    let mut sizes = Vec::new();
    for config_map in api.list(&ListParams::default()).await.unwrap().items {
        let name = config_map.metadata.name.clone().unwrap_or_default();
        if !name.starts_with(&format!("berth-release-{release}")) {
            continue;
        }
        let text: usize = config_map
            .data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        let binary: usize = config_map
            .binary_data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.0.len())
            .sum();
        sizes.push((name, text + binary));
    }
    sizes.sort();
    sizes
}

/// A client of the shared control plane and the record of `release` in it.
async fn record_of(release: &str) -> (kube::Client, InventoryStore) {
    let client = shared().await.admin_client().await.unwrap();
    let store = InventoryStore::new(client.clone(), STATE_NAMESPACE, release, 10);
    (client, store)
}

#[tokio::test(flavor = "multi_thread")]
async fn inventories_of_ten_and_forty_thousand_objects_round_trip_within_the_object_limit() {
    let release = "fleet-large";
    let (client, store) = record_of(release).await;

    // 10,000 objects: as plain JSON about 1.9 MB, over the limit.
    let ten_thousand = inventory(release, 10_000, "c1");
    assert!(serde_json::to_vec(&ten_thousand).unwrap().len() > CONFIG_MAP_LIMIT);
    store
        .record(Some(&ten_thousand), entry("c1", None))
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), ten_thousand);
    let sizes = record_sizes(&client, release).await;
    assert_eq!(sizes.len(), 1, "one state object: {sizes:?}");
    assert!(sizes[0].1 < CONFIG_MAP_LIMIT, "{sizes:?}");

    // A failed sync keeps the inventory and adds a (long) history entry.
    let long_error = "x".repeat(200_000);
    store
        .record(None, entry("c2", Some(long_error)))
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), ten_thousand);
    let history = store.history().await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].error.as_ref().unwrap().len() < 5_000);

    // 40,000 objects: split into shards, each under the limit.
    let forty_thousand = inventory(release, 40_000, "c3");
    store
        .record(Some(&forty_thousand), entry("c3", None))
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), forty_thousand);
    let sizes = record_sizes(&client, release).await;
    assert!(sizes.len() >= 3, "state object and shards: {sizes:?}");
    assert!(
        sizes.iter().all(|(_, size)| *size < CONFIG_MAP_LIMIT),
        "{sizes:?}"
    );
    // The history is still read from the state object alone.
    assert_eq!(store.history().await.unwrap().len(), 3);

    // A new large inventory replaces the shards; the old ones are deleted.
    let forty_thousand_again = inventory(release, 40_001, "c4");
    store
        .record(Some(&forty_thousand_again), entry("c4", None))
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), forty_thousand_again);
    assert_eq!(record_sizes(&client, release).await.len(), sizes.len());

    // A health verdict keeps the sharded inventory.
    store
        .record_health("c4", berth_agent::health::Health::Healthy, None)
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), forty_thousand_again);

    // Back to a small release: the shards go.
    let small = inventory(release, 3, "c5");
    store.record(Some(&small), entry("c5", None)).await.unwrap();
    assert_eq!(store.load().await.unwrap(), small);
    assert_eq!(record_sizes(&client, release).await.len(), 1);

    // The release is listed once, not once per shard.
    let releases = berth_agent::inventory::releases(client.clone(), STATE_NAMESPACE)
        .await
        .unwrap();
    assert_eq!(
        releases.iter().filter(|(name, _)| name == release).count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_shard_is_a_clear_error_not_an_empty_inventory() {
    let release = "fleet-torn";
    let (client, store) = record_of(release).await;
    store
        .record(Some(&inventory(release, 40_000, "c1")), entry("c1", None))
        .await
        .unwrap();
    let api = Api::<ConfigMap>::namespaced(client.clone(), STATE_NAMESPACE);
    let shard = record_sizes(&client, release)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .find(|name| name.contains("-inventory-"))
        .unwrap();
    api.delete(&shard, &Default::default()).await.unwrap();
    // An empty inventory would let the next sync forget (and never prune)
    // every object; a missing shard must stop the sync instead.
    let error = store.load().await.unwrap_err().to_string();
    assert!(
        error.contains(release) && error.contains("missing"),
        "{error}"
    );
}

/// A [`TestAgent`]'s agent running as `berth run` runs it (every
/// application on its own follower) until [`Daemon::stop`].
struct Daemon {
    state: std::sync::Arc<berth_agent::daemon::AgentState>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<TestAgent>,
}

impl Daemon {
    fn start(mut agent: TestAgent) -> Daemon {
        let state = agent.agent.state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            agent
                .agent
                .run(async {
                    let _ = stopped.await;
                })
                .await;
            agent
        });
        Daemon { state, stop, task }
    }

    /// What the agent knows of `application` (its status page entry).
    fn status(&self, application: &str) -> berth_agent::daemon::ApplicationStatus {
        self.state
            .applications()
            .into_iter()
            .find(|status| status.application.name == application)
            .unwrap()
    }

    /// Stops the agent; gives it back (to sync it once more by hand).
    async fn stop(self) -> TestAgent {
        self.stop_releasing(&[]).await
    }

    /// Stops the agent, closing the connections `hanging` holds until every
    /// follower has ended (a follower waiting for a fetch slot connects
    /// when it gets one).
    async fn stop_releasing(self, hanging: &[&Hanging]) -> TestAgent {
        let _ = self.stop.send(());
        let mut task = self.task;
        loop {
            for h in hanging {
                h.release();
            }
            if let Ok(ended) =
                tokio::time::timeout(std::time::Duration::from_millis(100), &mut task).await
            {
                return ended.unwrap();
            }
        }
    }
}

/// A server that accepts connections and never answers; [`Hanging::release`]
/// closes what it holds so the stuck fetches end.
struct Hanging {
    port: u16,
    held: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Hanging {
    fn start() -> Hanging {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (holding, stopping) = (held.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => holding.lock().unwrap().push(stream),
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Hanging { port, held, stop }
    }

    fn accepted(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Closes the connections held so far (their fetches fail at once);
    /// later connections are held again.
    fn release(&self) {
        for stream in self.held.lock().unwrap().iter() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Forgets the connections released so far.
    fn reset(&self) {
        self.held.lock().unwrap().clear();
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.release();
    }
}

/// How long until `release`'s ConfigMap exists while another application's
/// repository hangs, the agent configured with `extra`; `None` if not
/// within `limit`. Checks that the hanging fetch was under way throughout.
async fn applied_beside_a_hang(
    release: &str,
    extra: &str,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    let cluster = shared().await;
    let hanging = Hanging::start();
    let stuck_url = format!("http://127.0.0.1:{}/stuck.git", hanging.port);
    let repo = demo_repo(release);
    let git = berth_harness::git::GitHttpServer::start(repo.base_dir(), None).unwrap();
    let url = git.url_for(&repo);
    // The stuck application comes first, as it would in a sequential loop.
    let agent = TestAgent::with_applications(
        cluster,
        &[("stuck", &stuck_url), (release, &url)],
        STAGING_PARIS,
        extra,
    )
    .await;
    let api = Api::<ConfigMap>::namespaced(agent.client.clone(), release);
    let daemon = Daemon::start(agent);
    let started = std::time::Instant::now();
    let config_map = format!("{release}-demo-config");
    let mut applied = None;
    while started.elapsed() < limit {
        if api.get_opt(&config_map).await.unwrap().is_some() {
            applied = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The stuck fetch was really under way, and still is: its first poll
    // has not ended.
    assert!(
        hanging.accepted() >= 1,
        "the agent never reached the hanging server"
    );
    assert!(
        daemon.status("stuck").last_poll.is_none(),
        "the hanging fetch ended early"
    );
    daemon.stop_releasing(&[&hanging]).await;
    applied
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_repository_does_not_delay_another_application() {
    // libgit2 gives up on a silent server after 60 s; the other application
    // must not wait for that.
    let took = applied_beside_a_hang("fleet-beside", "", std::time::Duration::from_secs(20)).await;
    assert!(
        took.is_some(),
        "fleet-beside was not applied while the other repository hung"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrency_fetches_bounds_the_fetches_in_flight() {
    let cluster = shared().await;
    // Two repositories that hang: each fetch holds its place until released.
    let hanging = [Hanging::start(), Hanging::start()];
    let urls: Vec<String> = hanging
        .iter()
        .map(|h| format!("http://127.0.0.1:{}/stuck.git", h.port))
        .collect();
    let in_flight = |limit: usize| {
        let urls = urls.clone();
        let hanging = &hanging;
        async move {
            let agent = TestAgent::with_applications(
                cluster,
                &[("stuck-a", &urls[0]), ("stuck-b", &urls[1])],
                STAGING_PARIS,
                &format!("concurrency: {{ fetches: {limit} }}\n"),
            )
            .await;
            let daemon = Daemon::start(agent);
            let reached = || hanging.iter().map(Hanging::accepted).sum::<usize>();
            let started = std::time::Instant::now();
            while reached() < limit && started.elapsed() < std::time::Duration::from_secs(10) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            // Time for a fetch beyond the limit to show itself.
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            let reached = reached();
            daemon.stop_releasing(&[&hanging[0], &hanging[1]]).await;
            reached
        }
    };
    assert_eq!(in_flight(1).await, 1, "a second fetch ran beside the first");
    for h in &hanging {
        h.reset();
    }
    assert_eq!(
        in_flight(2).await,
        2,
        "the two fetches did not run together"
    );
}

/// The resources the demo release and berth's records live in: nothing but
/// berth writes them once the release has rolled out (the controller
/// manager writes only their `status`, kwok only pods and nodes).
const BERTH_RESOURCES: [&str; 5] = [
    "configmaps",
    "secrets",
    "services",
    "deployments",
    "namespaces",
];

/// Requests kube-apiserver has served on [`BERTH_RESOURCES`] (not their
/// subresources) with one of `verbs`, dry runs apart, from its own `/metrics`.
async fn apiserver_requests(client: &kube::Client, verbs: &[&str]) -> f64 {
    apiserver_counts(client, verbs, false).await
}

/// Dry-run applies kube-apiserver has served on [`BERTH_RESOURCES`].
async fn apiserver_dry_runs(client: &kube::Client) -> f64 {
    apiserver_counts(client, &["APPLY", "PATCH"], true).await
}

async fn apiserver_counts(client: &kube::Client, verbs: &[&str], dry_run: bool) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "apiserver_request_total")
        .filter(|s| s.labels.get("verb").is_some_and(|v| verbs.contains(&v)))
        .filter(|s| {
            s.labels
                .get("resource")
                .is_some_and(|r| BERTH_RESOURCES.contains(&r))
        })
        .filter(|s| s.labels.get("subresource").unwrap_or("").is_empty())
        .filter(|s| s.labels.get("dry_run").is_some_and(|d| !d.is_empty()) == dry_run)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Watches open on kube-apiserver, by resource of [`BERTH_RESOURCES`], from
/// its own `/metrics` (`apiserver_longrunning_requests`).
async fn apiserver_watches(client: &kube::Client) -> BTreeMap<&'static str, f64> {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    BERTH_RESOURCES
        .iter()
        .map(|resource| {
            let open = scrape
                .samples
                .iter()
                .filter(|s| s.metric == "apiserver_longrunning_requests")
                .filter(|s| s.labels.get("verb") == Some("WATCH"))
                .filter(|s| s.labels.get("resource") == Some(resource))
                .map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                    _ => 0.0,
                })
                .sum();
            (*resource, open)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_agent_writes_nothing_and_a_full_comparison_without_drift_writes_nothing() {
    // A cluster of its own: no other test writes while this one counts.
    let cluster = berth_harness::TestCluster::start("idle").await.unwrap();
    // Two releases in two namespaces, from one repository.
    let names = ["fleet-idle-a", "fleet-idle-b"];
    let repo = monorepo("fleet-idle", &names);
    let git = berth_harness::git::GitHttpServer::start(repo.base_dir(), None).unwrap();
    let url = git.url_for(&repo);
    let agent = TestAgent::with_application_entries(
        &cluster,
        &monorepo_entries(&url, &names),
        STAGING_PARIS,
        "full_compare_interval: 1h\n",
    )
    .await;
    let client = agent.client.clone();
    const WRITES: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];
    let writes_at_start = apiserver_requests(&client, &WRITES).await;
    let watches_at_start = apiserver_watches(&client).await;
    let daemon = Daemon::start(agent);
    for name in names {
        wait_healthy(&daemon, name).await;
    }
    // Let the rollout's own writes (the controller manager's) settle.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let writes_before = apiserver_requests(&client, &WRITES).await;
    // The count sees berth's writes: the first sync made some.
    assert!(
        writes_before > writes_at_start,
        "no write counted for the first sync"
    );
    let writes_before = apiserver_requests(&client, &WRITES).await;
    let lists_before = apiserver_requests(&client, &["LIST"]).await;
    let gets_before = apiserver_requests(&client, &["GET"]).await;
    // Six poll cycles (poll_interval 1s), each a ref check of the repository.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let writes = apiserver_requests(&client, &WRITES).await - writes_before;
    let lists = apiserver_requests(&client, &["LIST"]).await - lists_before;
    let gets = apiserver_requests(&client, &["GET"]).await - gets_before;
    eprintln!("idle for 6 poll cycles: {writes} writes, {lists} lists, {gets} gets");
    assert_eq!(writes, 0.0, "an idle agent wrote");
    assert_eq!(lists, 0.0, "an idle agent listed");
    assert_eq!(gets, 0.0, "an idle agent read objects");
    // One drift watch per kind (Deployment, Service, ConfigMap), shared by
    // the two releases: not one per release and namespace.
    let watches = apiserver_watches(&client).await;
    let opened: BTreeMap<&str, f64> = BERTH_RESOURCES
        .iter()
        .map(|r| (*r, watches[*r] - watches_at_start[*r]))
        .collect();
    eprintln!("watches berth opened, by resource: {opened:?}");
    assert_eq!(opened["deployments"], 1.0, "{opened:?}");
    assert_eq!(opened["services"], 1.0, "{opened:?}");
    assert_eq!(opened["configmaps"], 1.0, "{opened:?}");
    assert_eq!(daemon.state.drift.len(), 3);

    // A full comparison of a release that did not drift reads and dry-runs
    // every object and writes none.
    let mut agent = daemon.stop().await;
    let writes_before = apiserver_requests(&client, &WRITES).await;
    let dry_runs_before = apiserver_dry_runs(&client).await;
    let reports = agent.agent.sync_once(None, true).await;
    assert_eq!(reports.len(), 2);
    for report in &reports {
        succeeded(report);
        assert_eq!(report.counts.unchanged, 3, "{report:?}");
    }
    assert!(
        apiserver_dry_runs(&client).await > dry_runs_before,
        "the full comparison dry-ran nothing"
    );
    assert_eq!(
        apiserver_requests(&client, &WRITES).await - writes_before,
        0.0,
        "a full comparison without drift wrote"
    );
}

/// Waits until the daemon's last sync of `application` succeeded and found
/// the release healthy.
async fn wait_healthy(daemon: &Daemon, application: &str) {
    let healthy = Some((
        Outcome::Succeeded,
        Some(berth_agent::health::Health::Healthy),
    ));
    let verdict = || {
        let report = daemon.status(application).last_report?;
        Some((report.outcome, report.health.map(|h| h.health)))
    };
    let started = std::time::Instant::now();
    while verdict() != healthy {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{application}'s first sync: {:?}",
            verdict()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Runs the real kubectl against `cluster`; returns its standard output.
fn kubectl(
    cluster: &berth_harness::TestCluster,
    args: &[&str],
    editor: Option<&std::path::Path>,
) -> String {
    let mut command = std::process::Command::new("kubectl");
    command
        .args(args)
        .env("KUBECONFIG", cluster.admin_kubeconfig());
    if let Some(editor) = editor {
        command.env("KUBE_EDITOR", editor);
    }
    let output = command.output().expect("running kubectl");
    assert!(
        output.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `check` every 50 ms for at most 20 s; returns how long it took.
async fn eventually<F, Fut>(what: &str, mut check: F) -> std::time::Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_scale_and_edit_are_undone_within_seconds_without_a_full_comparison() {
    let cluster = shared().await;
    let release = "fleet-drift";
    let repo = demo_repo(release);
    let agent = TestAgent::with_applications(
        cluster,
        &[(release, &repo.file_url())],
        STAGING_PARIS,
        // The periodic comparison cannot be what corrects the drift here.
        "full_compare_interval: 6h\n",
    )
    .await;
    let client = agent.client.clone();
    let daemon = Daemon::start(agent);
    wait_healthy(&daemon, release).await;
    let deployments =
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), release);
    let deployment = format!("{release}-demo");
    let replicas = || async {
        deployments
            .get(&deployment)
            .await
            .unwrap()
            .spec
            .and_then(|s| s.replicas)
    };
    // par-staging-1 runs one replica (the release file says so).
    assert_eq!(replicas().await, Some(1));
    let history = || async {
        InventoryStore::new(client.clone(), STATE_NAMESPACE, release, 10)
            .history()
            .await
            .unwrap()
            .len()
    };
    let recorded = history().await;

    let scaled = kubectl(
        cluster,
        &[
            "scale",
            "-n",
            release,
            &format!("deployment/{deployment}"),
            "--replicas=3",
        ],
        None,
    );
    assert!(scaled.contains("scaled"), "{scaled}");
    let took = eventually("kubectl scale to be undone", || async {
        replicas().await == Some(1)
    })
    .await;
    eprintln!("kubectl scale undone in {} ms", took.as_millis());

    let editor_dir = tempfile::tempdir().unwrap();
    let editor = editor_dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/GREETING: hello/GREETING: edited-by-hand/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config_map = format!("{release}-demo-config");
    let edited = kubectl(
        cluster,
        &["edit", "-n", release, &format!("configmap/{config_map}")],
        Some(&editor),
    );
    assert!(
        edited.contains("edited"),
        "kubectl edit changed nothing: {edited}"
    );
    let took = eventually("kubectl edit to be undone", || async {
        config_data(&client, release, &config_map)
            .await
            .get("GREETING")
            .map(String::as_str)
            == Some("hello")
    })
    .await;
    eprintln!("kubectl edit undone in {} ms", took.as_millis());

    // Each correction is a sync of its own in the history.
    let corrected = eventually("the history of the corrections", || async {
        history().await >= recorded + 2
    })
    .await;
    assert!(corrected < std::time::Duration::from_secs(20));
    daemon.stop().await;
}

/// A repository holding the demo application once per name, each in
/// `apps/<name>/` with its release file (release and namespace `name`).
fn monorepo(repo_name: &str, names: &[&str]) -> berth_harness::git::TestRepo {
    let repo = berth_harness::git::TestRepo::new(repo_name).unwrap();
    for name in names {
        let dir = repo.path().join("apps").join(name);
        berth_harness::git::copy_tree(&fixture().join("deploy"), &dir).unwrap();
        let release = dir.join("release.yaml");
        let text = std::fs::read_to_string(&release).unwrap();
        let text = text
            .replace("name: demo\n", &format!("name: {name}\n"))
            .replace("namespace: demo\n", &format!("namespace: {name}\n"));
        std::fs::write(&release, text).unwrap();
    }
    repo.commit("applications").unwrap();
    repo
}

/// Configuration entries following each of `names` in the monorepo at `url`.
fn monorepo_entries(url: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            format!(
                "  - {{ name: {name}, url: \"{url}\", branch: {}, release_file: apps/{name}/release.yaml, poll_interval: 1s }}\n",
                berth_harness::git::BRANCH
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn applications_of_one_repository_share_its_fetches() {
    let cluster = shared().await;
    let names = ["fleet-mono-a", "fleet-mono-b"];
    let repo = monorepo("fleet-mono", &names);
    let git = berth_harness::git::GitHttpServer::start(repo.base_dir(), None).unwrap();
    let url = git.url_for(&repo);
    let agent = TestAgent::with_application_entries(
        cluster,
        &monorepo_entries(&url, &names),
        STAGING_PARIS,
        "full_compare_interval: 6h\n",
    )
    .await;
    let client = agent.client.clone();
    let daemon = Daemon::start(agent);
    for name in names {
        wait_healthy(&daemon, name).await;
    }
    // Both follow the repository, polling every second: one ref check a
    // cycle serves both.
    let before = git.ref_checks();
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let checks = git.ref_checks() - before;
    eprintln!("two applications of one repository, 6 poll cycles: {checks} ref checks");
    assert!(
        (4..=8).contains(&checks),
        "{checks} ref checks in six cycles for two applications of one repository"
    );
    // Both still see new commits.
    for name in names {
        let release = repo.path().join("apps").join(name).join("release.yaml");
        let text = std::fs::read_to_string(&release).unwrap();
        std::fs::write(
            &release,
            text.replace("greeting: hello", "greeting: shared"),
        )
        .unwrap();
    }
    repo.commit("a greeting for both").unwrap();
    for name in names {
        let config_map = format!("{name}-demo-config");
        eventually(&format!("{name}'s new greeting"), || async {
            config_data(&client, name, &config_map)
                .await
                .get("GREETING")
                .map(String::as_str)
                == Some("shared")
        })
        .await;
    }
    daemon.stop().await;
}

/// What the restricted identity may do in the forbidden-watch test:
/// everything the demo release needs, but ConfigMaps only in the state
/// namespace and the release's own (a Role each), never across the cluster.
fn rbac_without_cluster_wide_config_maps(user: &str, namespaces: &[&str]) -> String {
    let mut text = format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{ name: berth-test-no-cluster-configmaps }}
rules:
  - apiGroups: [\"\"]
    resources: [namespaces, services, secrets, pods, events, serviceaccounts]
    verbs: [\"*\"]
  - apiGroups: [apps, autoscaling, events.k8s.io]
    resources: [\"*\"]
    verbs: [\"*\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{ name: berth-test-no-cluster-configmaps }}
roleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: berth-test-no-cluster-configmaps }}
subjects: [{{ apiGroup: rbac.authorization.k8s.io, kind: User, name: {user} }}]
"
    );
    for namespace in namespaces {
        text.push_str(&format!(
            "---
apiVersion: v1
kind: Namespace
metadata: {{ name: {namespace} }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{ name: berth-test-configmaps, namespace: {namespace} }}
rules: [{{ apiGroups: [\"\"], resources: [configmaps], verbs: [\"*\"] }}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{ name: berth-test-configmaps, namespace: {namespace} }}
roleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: Role, name: berth-test-configmaps }}
subjects: [{{ apiGroup: rbac.authorization.k8s.io, kind: User, name: {user} }}]
"
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_berth_may_not_watch_across_the_cluster_is_watched_in_its_release_namespaces() {
    // A cluster of its own: the test grants the restricted identity roles.
    let cluster = berth_harness::TestCluster::start("drift-403")
        .await
        .unwrap();
    let release = "fleet-forbidden";
    let rbac_dir = tempfile::tempdir().unwrap();
    let rbac = rbac_dir.path().join("rbac.yaml");
    std::fs::write(
        &rbac,
        rbac_without_cluster_wide_config_maps(
            berth_harness::cluster::RESTRICTED_USER,
            &[STATE_NAMESPACE, release],
        ),
    )
    .unwrap();
    kubectl(&cluster, &["apply", "-f", rbac.to_str().unwrap()], None);
    let repo = demo_repo(release);
    let mut agent = TestAgent::with_applications(
        &cluster,
        &[(release, &repo.file_url())],
        STAGING_PARIS,
        "full_compare_interval: 6h\n",
    )
    .await;
    // The agent runs as the restricted identity.
    let config =
        berth_agent::config::AgentConfig::load(&agent._dir.path().join("berth.yaml")).unwrap();
    let restricted = cluster.restricted_client().await.unwrap();
    agent.agent = berth_agent::daemon::Agent::new(config, restricted);
    let client = agent.client.clone();
    let daemon = Daemon::start(agent);
    wait_healthy(&daemon, release).await;
    // Deployments, Services and ConfigMaps are watched: ConfigMaps, refused
    // across the cluster, in the release's namespace.
    assert_eq!(daemon.state.drift.len(), 3);
    let metrics = daemon.state.metrics.encode();
    assert!(
        metrics.lines().any(|line| line == "berth_drift_watches 3"),
        "{metrics}"
    );

    // The watch across the cluster undoes a manual change within seconds.
    let deployment = format!("{release}-demo");
    let deployments =
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), release);
    kubectl(
        &cluster,
        &[
            "scale",
            "-n",
            release,
            &format!("deployment/{deployment}"),
            "--replicas=3",
        ],
        None,
    );
    eventually("kubectl scale to be undone", || async {
        deployments
            .get(&deployment)
            .await
            .unwrap()
            .spec
            .and_then(|s| s.replicas)
            == Some(1)
    })
    .await;

    // So does the ConfigMaps' watch in the namespace, though the full
    // comparison is hours away.
    let config_map = format!("{release}-demo-config");
    edit_greeting_by_hand(&client, release, &config_map).await;
    eventually("the hand-made ConfigMap change to be undone", || async {
        config_data(&client, release, &config_map)
            .await
            .get("GREETING")
            .is_some_and(|greeting| greeting == "hello")
    })
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_of_ten_thousand_objects_syncs_and_its_inventory_round_trips() {
    // A cluster of its own: ten thousand labelled ConfigMaps would weigh on
    // every other test's drift watches.
    let cluster = berth_harness::TestCluster::start("large-release")
        .await
        .unwrap();
    let release = "fleet-ten-thousand";
    const OBJECTS: usize = 10_000;
    let repo = config_maps_repo(release);
    set_config_map_count(&repo, release, OBJECTS);
    let commit = repo.commit("ten thousand ConfigMaps").unwrap();
    let mut agent = TestAgent::new(&cluster, &repo.file_url(), STAGING_PARIS).await;
    let client = agent.client.clone();

    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.created, OBJECTS, "{:?}", report.counts);
    let live = Api::<ConfigMap>::namespaced(client.clone(), release)
        .list_metadata(&ListParams::default().labels(berth_agent::objects::RELEASE_LABEL))
        .await
        .unwrap();
    assert_eq!(live.items.len(), OBJECTS);

    // The inventory names every object, read back from records that each
    // fit the API server's limit.
    let store = InventoryStore::new(client.clone(), STATE_NAMESPACE, release, 10);
    let inventory = store.load().await.unwrap();
    assert_eq!(inventory.commit, commit);
    assert_eq!(inventory.objects.len(), OBJECTS);
    let sizes = record_sizes(&client, release).await;
    assert!(
        sizes.iter().all(|(_, size)| *size < CONFIG_MAP_LIMIT),
        "{sizes:?}"
    );

    // A new commit changes one object: one update, the rest unchanged,
    // nothing pruned.
    repo.write(
        "deploy/release.yaml",
        format!("name: {release}\nnamespace: {release}\nchart: chart\nvalues:\n  count: {OBJECTS}\n  extra: one\n"),
    )
    .unwrap();
    repo.write(
        "deploy/chart/templates/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-0\ndata:\n  index: \"0\"\n  extra: {{ .Values.extra | quote }}\n",
    )
    .unwrap();
    repo.write(
        "deploy/chart/templates/config-maps.yaml",
        "{{- range $i := until (int .Values.count) }}{{ if $i }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ $.Release.Name }}-{{ $i }}\ndata:\n  index: {{ $i | quote }}\n{{- end }}{{- end }}\n",
    )
    .unwrap();
    let second = repo.commit("one ConfigMap more data").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(
        (
            report.counts.updated,
            report.counts.unchanged,
            report.counts.deleted
        ),
        (1, OBJECTS - 1, 0),
        "{:?}",
        report.counts
    );
    assert_eq!(
        config_data(&client, release, &format!("{release}-0"))
            .await
            .get("extra")
            .map(String::as_str),
        Some("one")
    );
    let inventory = store.load().await.unwrap();
    assert_eq!(inventory.commit, second);
    assert_eq!(inventory.objects.len(), OBJECTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_waiting_for_health_share_the_agents_watches_and_few_connections() {
    // A cluster of its own: every watch and connection counted is this agent's.
    let cluster = berth_harness::TestCluster::start("waits").await.unwrap();
    let names: Vec<String> = (0..8).map(|i| format!("fleet-wait-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let repo = monorepo("fleet-waits", &names);
    // Images that never pull: every release waits until its health timeout.
    for name in &names {
        let path = repo.path().join("apps").join(name).join("release.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let (repository, tag) = berth_harness::cluster::MISSING_IMAGE
            .rsplit_once(':')
            .unwrap();
        let text = text
            .replace(
                "repository: ghcr.io/example/demo",
                &format!("repository: {repository}"),
            )
            .replace("tag: \"1.4.0\"", &format!("tag: \"{tag}\""));
        std::fs::write(&path, format!("{text}healthTimeout: 20s\n")).unwrap();
    }
    repo.commit("images that never pull").unwrap();
    let git = berth_harness::git::GitHttpServer::start(repo.base_dir(), None).unwrap();
    let url = git.url_for(&repo);
    const REQUESTS: usize = 2;
    let agent = TestAgent::with_application_entries(
        &cluster,
        &monorepo_entries(&url, &names),
        STAGING_PARIS,
        &format!("concurrency: {{ requests: {REQUESTS} }}\n"),
    )
    .await;
    let client = agent.client.clone();
    let watches_at_start = apiserver_watches(&client).await;
    let daemon = Daemon::start(agent);
    let me = [std::process::id()];
    // Sampled while the releases sync and then wait for their verdicts.
    let mut most_connections = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(8) {
        let connections =
            berth_harness::process::connections_to(&me, cluster.server_url()).unwrap();
        most_connections = most_connections.max(connections);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Every release applied its Deployment and none has its verdict yet.
    for name in &names {
        let deployments =
            Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), name);
        assert!(
            deployments
                .get_opt(&format!("{name}-demo"))
                .await
                .unwrap()
                .is_some(),
            "{name} not applied"
        );
        let status = daemon.status(name);
        assert!(
            status.last_report.is_none(),
            "{name} judged before its timeout"
        );
    }

    // Eight releases wait for their Deployments: through the agent's one
    // watch of Deployments, not one watch each.
    let watches = apiserver_watches(&client).await;
    let opened = watches["deployments"] - watches_at_start["deployments"];
    eprintln!(
        "while 8 releases wait: {opened} Deployment watches, at most {most_connections} connections"
    );
    assert_eq!(opened, 1.0, "{watches:?}");
    // Requests hold at most REQUESTS connections; each watch one more (one
    // per kind: Deployment, Service, ConfigMap).
    assert!(
        most_connections <= REQUESTS + 3,
        "{most_connections} connections to the API server at once"
    );
    let _ = daemon.stop().await;
}
