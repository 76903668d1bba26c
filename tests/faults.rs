//! Faults berth must survive, against the real servers: the agent killed
//! half-way through applying a large release, kube-apiserver restarted,
//! etcd hung, kube-apiserver answering 429.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_agent::config::AgentConfig;
use berth_agent::daemon::Agent;
use berth_agent::inventory::{InventoryStore, Outcome};
use berth_agent::objects::RELEASE_LABEL;
use berth_agent::reconcile::SyncReport;
use berth_harness::TestCluster;
use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

const CHILD_CONFIG: &str = "BERTH_FAULTS_CHILD_CONFIG";

/// Run by `a_sync_killed_half_way_leaves_nothing_orphaned` in a child test
/// binary: one sync of every application of the configuration, until the
/// parent kills it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "started by a_sync_killed_half_way_leaves_nothing_orphaned"]
async fn child_syncs_once() {
    let Ok(path) = std::env::var(CHILD_CONFIG) else {
        return;
    };
    let config = AgentConfig::load(std::path::Path::new(&path)).unwrap();
    let client = berth_agent::kubernetes::kube_client(&config).await.unwrap();
    let mut agent = Agent::new(config, client);
    agent.sync_once(None, false).await;
}

async fn live_names(client: &kube::Client, release: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<ConfigMap>::namespaced(client.clone(), release)
        .list_metadata(&ListParams::default().labels(RELEASE_LABEL))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .collect();
    names.sort();
    names
}

fn expected_names(release: &str, count: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..count).map(|i| format!("{release}-{i}")).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_half_way_leaves_nothing_orphaned() {
    // A cluster of its own: thousands of labelled ConfigMaps.
    let cluster = TestCluster::start("faults-kill").await.unwrap();
    let release = "killed";
    let repo = config_maps_repo(release);
    set_config_map_count(&repo, release, 5);
    repo.commit("five").unwrap();
    let mut agent = TestAgent::new(&cluster, &repo.file_url(), STAGING_PARIS).await;
    let client = agent.client.clone();
    succeeded(&agent.sync(false).await);
    let store = InventoryStore::new(client.clone(), STATE_NAMESPACE, release, 10);

    // Three thousand: a child process syncs, and is killed half-way.
    set_config_map_count(&repo, release, 3000);
    repo.commit("three thousand").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_syncs_once", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_CONFIG, agent._dir.path().join("berth.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let live_at_kill = loop {
        let live = live_names(&client, release).await.len();
        if live >= 300 {
            child.kill().unwrap(); // SIGKILL: nothing of the child runs after it
            child.wait().unwrap();
            break live_names(&client, release).await.len();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it could be killed ({live} objects)"
        );
        assert!(Instant::now() < deadline, "the child applied nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        live_at_kill < 3000,
        "killed after the apply ended ({live_at_kill} objects)"
    );
    // What the killed sync may have created is named in the inventory.
    let inventory = store.load().await.unwrap();
    assert_eq!(
        inventory.objects.len(),
        3000,
        "the intent names every object"
    );
    for name in live_names(&client, release).await {
        assert!(
            inventory.objects.iter().any(|e| e.object.name == name),
            "{name} is live but not in the inventory"
        );
    }

    // The next commit renders a thousand: the agent converges on exactly
    // those, pruning what the killed sync created beyond them (never
    // confirmed, so no deletion guard), and keeps the first five.
    set_config_map_count(&repo, release, 1000);
    repo.commit("a thousand after all").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(
        live_names(&client, release).await,
        expected_names(release, 1000)
    );
    let inventory = store.load().await.unwrap();
    assert_eq!(inventory.objects.len(), 1000);
    assert!(inventory.objects.iter().all(|e| !e.digest.is_empty()));

    // And back to three thousand: all there, recorded, one history entry
    // per sync (the killed one recorded none).
    set_config_map_count(&repo, release, 3000);
    repo.commit("three thousand again").unwrap();
    succeeded(&agent.sync(false).await);
    assert_eq!(
        live_names(&client, release).await,
        expected_names(release, 3000)
    );
    assert_eq!(store.load().await.unwrap().objects.len(), 3000);
    let history = agent.history(release).await;
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(history.iter().all(|h| h.outcome == Outcome::Succeeded));
}

/// A sync of 2,000 ConfigMaps in a release of its own, started in the
/// background; returns once 200 of them exist (the sync well under way).
struct InterruptedSync {
    release: &'static str,
    commit: String,
    syncing: tokio::task::JoinHandle<(TestAgent, SyncReport)>,
    /// The repository lives as long as the syncs that fetch it.
    _repo: berth_harness::git::TestRepo,
}

const INTERRUPTED_OBJECTS: usize = 2000;

impl InterruptedSync {
    async fn start(cluster: &TestCluster, release: &'static str) -> InterruptedSync {
        let repo = config_maps_repo(release);
        set_config_map_count(&repo, release, INTERRUPTED_OBJECTS);
        let commit = repo.commit("two thousand").unwrap();
        let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
        let watcher = cluster.admin_client().await.unwrap();
        let syncing = tokio::spawn(async move {
            let report = agent.sync(false).await;
            (agent, report)
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while live_names(&watcher, release).await.len() < 200 {
            assert!(Instant::now() < deadline, "the sync applied nothing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        InterruptedSync {
            release,
            commit,
            syncing,
            _repo: repo,
        }
    }

    /// Waits for the interrupted sync, which either completed or failed
    /// cleanly, marked for the daemon's retry with backoff (the API server
    /// was away, not the commit wrong); then the next sync converges: every
    /// object, a whole inventory, no history entry twice, and a sync after
    /// it has nothing to do.
    async fn converges(self, client: kube::Client) {
        let (mut agent, first) = tokio::time::timeout(Duration::from_secs(300), self.syncing)
            .await
            .expect("the interrupted sync ends")
            .unwrap();
        if first.outcome == Outcome::Failed {
            let error = first.error.clone().unwrap_or_default();
            assert!(!error.is_empty(), "{first:?}");
            assert!(first.retry, "not marked for a retry: {error}");
        } else {
            succeeded(&first);
        }
        let release = self.release;
        succeeded(&agent.sync(true).await);
        assert_eq!(
            live_names(&client, release).await,
            expected_names(release, INTERRUPTED_OBJECTS)
        );
        let store = InventoryStore::new(client.clone(), STATE_NAMESPACE, release, 10);
        let inventory = store.load().await.unwrap();
        assert_eq!(inventory.commit, self.commit);
        assert_eq!(inventory.objects.len(), INTERRUPTED_OBJECTS);
        assert!(inventory.objects.iter().all(|e| !e.digest.is_empty()));
        // One entry per distinct outcome of the commit, never two alike.
        let history = store.history().await.unwrap();
        let outcomes: Vec<Outcome> = history.iter().map(|h| h.outcome).collect();
        let mut distinct = outcomes.clone();
        distinct.dedup();
        assert_eq!(outcomes, distinct, "{history:?}");
        assert_eq!(history[0].outcome, Outcome::Succeeded);
        let third = agent.sync(true).await;
        succeeded(&third);
        assert_eq!(
            third.counts.created + third.counts.updated + third.counts.deleted,
            0
        );
    }
}

/// kube-apiserver killed and started again (same etcd) in the middle of a
/// sync: the sync fails cleanly or completes, the next one converges, and
/// the history holds no entry twice.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_restart_during_a_sync_is_survived() {
    let mut cluster = TestCluster::start("faults-restart").await.unwrap();
    let sync = InterruptedSync::start(&cluster, "restarted").await;
    cluster
        .restart_apiserver(Duration::from_secs(2))
        .await
        .unwrap();
    // A new client: the old one's connections died with the server.
    sync.converges(cluster.admin_client().await.unwrap()).await;
}

/// etcd hung (SIGSTOP) for a while in the middle of a sync, as a stalled
/// disk leaves it: kube-apiserver times out what it asked of etcd and
/// answers 5xx (its request timeout shortened to 3 s so that the test does
/// not wait a minute); the sync fails cleanly, marked for a retry with
/// backoff, or completes; once etcd goes on, the next sync converges with
/// the inventory whole and no history entry twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_etcd_during_a_sync_is_survived() {
    let cluster = TestCluster::start_with_apiserver_args("faults-etcd", &["--request-timeout=3s"])
        .await
        .unwrap();
    let sync = InterruptedSync::start(&cluster, "etcd-hung").await;
    cluster.hang_etcd(Duration::from_secs(8)).await.unwrap();
    // The hang was felt: kube-apiserver answered berth's applies (only
    // berth applies here) with 5xx.
    let client = cluster.admin_client().await.unwrap();
    let failed = apiserver_requests(&client, |metric, labels| {
        metric == "apiserver_request_total"
            && labels.get("verb") == Some("APPLY")
            && labels.get("code").is_some_and(|code| code.starts_with('5'))
    })
    .await;
    assert!(
        failed > 0.0,
        "kube-apiserver answered no apply with 5xx while etcd hung"
    );
    sync.converges(client).await;
}

/// The sum of kube-apiserver's own `/metrics` samples that `wanted` picks
/// (by metric name and labels).
async fn apiserver_requests(
    client: &kube::Client,
    wanted: impl Fn(&str, &prometheus_parse::Labels) -> bool,
) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let lines = text.lines().map(|line| Ok(line.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .unwrap()
        .samples
        .iter()
        .filter(|s| wanted(&s.metric, &s.labels))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// kube-apiserver's requests answered with 429, from its own `/metrics`.
async fn too_many_requests(client: &kube::Client) -> f64 {
    apiserver_requests(client, |metric, labels| {
        // The in-flight limit's refusals are counted as terminations.
        (metric == "apiserver_request_terminations_total" || metric == "apiserver_request_total")
            && labels.get("code") == Some("429")
    })
    .await
}

/// An API server that answers 429 (more mutating requests in flight than
/// it takes, from four releases syncing side by side): berth's requests are
/// retried with backoff (kube-rs's retry layer, which honours
/// `Retry-After`), every sync completes with its inventory whole, and the
/// retries stay bounded (no busy loop).
#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_answering_429_is_retried_with_backoff() {
    let cluster = TestCluster::start_with_apiserver_args(
        "faults-429",
        &[
            "--max-requests-inflight=3",
            "--max-mutating-requests-inflight=1",
        ],
    )
    .await
    .unwrap();
    let releases = ["throttled-a", "throttled-b", "throttled-c", "throttled-d"];
    let repos: Vec<_> = releases
        .iter()
        .map(|release| {
            let repo = config_maps_repo(release);
            set_config_map_count(&repo, release, 100);
            repo.commit("a hundred").unwrap();
            repo
        })
        .collect();
    let urls: Vec<String> = repos.iter().map(|r| r.file_url()).collect();
    let applications: Vec<(&str, &str)> = releases
        .iter()
        .zip(&urls)
        .map(|(release, url)| (*release, url.as_str()))
        .collect();
    // The admin identity (system:masters) is exempt from the in-flight
    // limits: berth runs as the restricted one, given cluster-admin.
    let admin = cluster.admin_client().await.unwrap();
    let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding =
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "restricted-is-admin" },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": berth_harness::cluster::RESTRICTED_GROUP }],
        }))
        .unwrap();
    Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(admin.clone())
        .create(&Default::default(), &binding)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let entries: String = applications
        .iter()
        .map(|(name, url)| {
            format!(
                "  - {{ name: {name}, url: \"{url}\", branch: {}, poll_interval: 1s }}\n",
                berth_harness::git::BRANCH
            )
        })
        .collect();
    let path = write_config(
        dir.path(),
        &cluster.restricted_kubeconfig(),
        STAGING_PARIS,
        &entries,
        "",
    );
    let config = AgentConfig::load(&path).unwrap();
    let client = berth_agent::kubernetes::kube_client(&config).await.unwrap();
    let mut agent = Agent::new(config, client.clone());
    let before = too_many_requests(&client).await;
    // Another client writing all the while, as controllers of a busy
    // cluster do: the one mutating place is contended.
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writers: Vec<_> = (0..3)
        .map(|i| {
            let (busy, client) = (busy.clone(), client.clone());
            tokio::spawn(async move {
                let api = Api::<ConfigMap>::namespaced(client, "default");
                let params = kube::api::PatchParams::apply("busy-neighbour").force();
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    let object = serde_json::json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": { "name": format!("neighbour-{i}") },
                        "data": { "at": format!("{:?}", Instant::now()) },
                    });
                    let _ = api
                        .patch(
                            &format!("neighbour-{i}"),
                            &params,
                            &kube::api::Patch::Apply(&object),
                        )
                        .await;
                }
            })
        })
        .collect();
    let reports = agent.sync_once(None, false).await;
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(reports.len(), releases.len());
    for report in &reports {
        succeeded(report);
    }
    let refused = too_many_requests(&client).await - before;
    assert!(refused > 0.0, "the API server never answered 429");
    // Each refused request was retried after a pause, not in a loop.
    assert!(
        refused < 4000.0,
        "{refused} requests refused for 400 objects"
    );
    for release in releases {
        assert_eq!(
            live_names(&client, release).await,
            expected_names(release, 100)
        );
        let inventory = InventoryStore::new(client.clone(), STATE_NAMESPACE, release, 10)
            .load()
            .await
            .unwrap();
        assert_eq!(inventory.objects.len(), 100, "{release}");
    }
}
