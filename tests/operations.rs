//! Running berth and watching it: the HTTP server (health, readiness,
//! metrics, webhooks, status page), Kubernetes Events, notifications and
//! live configuration, against the real control plane, git over smart HTTP,
//! the real kubectl and a real headless Chromium.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_agent::config::AgentConfig;
use berth_agent::health::Health;
use berth_agent::inventory::InventoryStore;
use berth_agent::notifications::signature;
use berth_harness::audit::{AuditLog, Audited, audited_cluster};
use berth_harness::browser::{Browser, Locator};
use berth_harness::cluster::{MISSING_IMAGE, TestCluster, shared};
use berth_harness::git::{BRANCH, GitHttpServer, TestRepo};
use berth_harness::process::{Lifetime, ServerProcess, free_port};
use berth_harness::receiver::Receiver;
use common::*;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WEBHOOK_SECRET: &str = "whsec-7f3a9c0e5b";
const STATUS_TOKEN: &str = "status-token-41d8cd98";
const SINK_SECRET: &str = "sink-hmac-2b7e1516";

/// `berth run` in this process: the same `serve` the command calls, with a
/// configuration file of our making. Stopped on drop.
struct RunningAgent {
    port: u16,
    config_path: PathBuf,
    client: kube::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The agent in a process of its own (`RunningAgent::start_process`).
    process: Option<ServerProcess>,
    _dir: tempfile::TempDir,
}

const CHILD_CONFIG: &str = "BERTH_OPERATIONS_CHILD_CONFIG";

/// Run by `RunningAgent::start_process` in a child test binary: `serve` on
/// the configuration file the parent wrote, until SIGTERM (or SIGKILL).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "started by RunningAgent::start_process"]
async fn child_serves() {
    let Ok(path) = std::env::var(CHILD_CONFIG) else {
        return;
    };
    let path = PathBuf::from(path);
    let config = AgentConfig::load(&path).unwrap();
    let client = berth_agent::kubernetes::kube_client(&config).await.unwrap();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    berth_agent::daemon::serve(config, &path, client, async move {
        terminate.recv().await;
    })
    .await
    .unwrap();
}

/// The configuration file's text: `applications` are (name, url, poll interval).
fn config_text(
    dir: &Path,
    cluster: &TestCluster,
    context: &str,
    port: u16,
    applications: &[(&str, &str, &str)],
    http_extra: &str,
    extra: &str,
) -> String {
    let [cloud, env, region, name] = context.split(',').collect::<Vec<_>>().try_into().unwrap();
    let applications: String = applications
        .iter()
        .map(|(name, url, poll)| {
            format!(
                "  - {{ name: {name}, url: \"{url}\", branch: {BRANCH}, poll_interval: {poll} }}\n"
            )
        })
        .collect();
    format!(
        "context: {{ cloud: {cloud}, env: {env}, region: {region}, cluster: {name} }}\n\
         cache_dir: {cache}\n\
         kubeconfig: {kubeconfig}\n\
         state_namespace: {STATE_NAMESPACE}\n\
         http: {{ address: \"127.0.0.1:{port}\"{http_extra} }}\n\
         {extra}\
         applications:\n{applications}",
        cache = dir.join("cache").display(),
        kubeconfig = cluster.admin_kubeconfig().display(),
    )
}

/// A configuration file of [`config_text`] in a directory of its own, for
/// an agent on a free port: the directory, the file and the port.
fn config_file(
    cluster: &TestCluster,
    applications: &[(&str, &str, &str)],
    http_extra: &str,
    extra: &str,
) -> (tempfile::TempDir, PathBuf, u16) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let config_path = dir.path().join("berth.yaml");
    let text = config_text(
        dir.path(),
        cluster,
        STAGING_PARIS,
        port,
        applications,
        http_extra,
        extra,
    );
    std::fs::write(&config_path, text).unwrap();
    (dir, config_path, port)
}

impl RunningAgent {
    async fn start(
        cluster: &TestCluster,
        applications: &[(&str, &str, &str)],
        http_extra: &str,
        extra: &str,
    ) -> RunningAgent {
        let (dir, config_path, port) = config_file(cluster, applications, http_extra, extra);
        let client = cluster.admin_client().await.unwrap();
        RunningAgent::serve(dir, config_path, port, client).await
    }

    /// Like [`RunningAgent::start`], the agent in a process of its own (the
    /// test binary run again), which [`RunningAgent::kill`] can SIGKILL.
    async fn start_process(
        cluster: &TestCluster,
        applications: &[(&str, &str, &str)],
        extra: &str,
    ) -> RunningAgent {
        let (dir, config_path, port) = config_file(cluster, applications, "", extra);
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["child_serves", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_CONFIG, &config_path);
        // Killed with this test binary, whatever ends it.
        let process = ServerProcess::start(
            "berth agent (child)",
            command,
            &dir.path().join("agent.log"),
            Lifetime::TiedToProcess,
        )
        .unwrap();
        let agent = RunningAgent {
            port,
            config_path,
            client: cluster.admin_client().await.unwrap(),
            stop: None,
            task: None,
            process: Some(process),
            _dir: dir,
        };
        agent.wait_ready().await;
        agent
    }

    /// SIGKILLs the agent's process: nothing of it runs after this.
    fn kill(mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Runs `serve` on the configuration file `config_path` (in `dir`, kept
    /// as long as the agent runs); `client` is the test's own, for its
    /// checks. Waits until the agent is ready.
    async fn serve(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        port: u16,
        client: kube::Client,
    ) -> RunningAgent {
        if let Ok(filter) = std::env::var("BERTH_LOG") {
            berth_agent::logging::init(&filter, berth_agent::logging::LogFormat::Text);
        }
        let config = AgentConfig::load(&config_path).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        // The agent's own client, as `berth run` makes it from the
        // configuration (its kubeconfig, its User-Agent).
        let agent_client = berth_agent::kubernetes::kube_client(&config).await.unwrap();
        let task = tokio::spawn({
            let client = agent_client;
            let path = config_path.clone();
            async move {
                berth_agent::daemon::serve(config, &path, client, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            }
        });
        let agent = RunningAgent {
            port,
            config_path,
            client,
            stop: Some(stop),
            task: Some(task),
            process: None,
            _dir: dir,
        };
        agent.wait_ready().await;
        agent
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits for `/readyz` to answer 200 (every application polled once).
    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = http.get(self.url("/readyz")).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "the agent never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn metrics(&self) -> Metrics {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Metrics::parse(&text)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut process) = self.process.take() {
            // SIGTERM, as Kubernetes stops a Pod: the agent's own shutdown
            // (SIGKILL after 30 s, which the caller's checks would notice).
            berth_harness::process::terminate(process.pid().unwrap(), Duration::from_secs(30));
            process.stop();
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the agent stops within its grace period")
                .unwrap();
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }
}

/// `/metrics`, read with a Prometheus text-format parser.
struct Metrics(prometheus_parse::Scrape);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let lines = text.lines().map(|line| Ok(line.to_string()));
        Metrics(prometheus_parse::Scrape::parse(lines).expect("/metrics parses"))
    }

    /// The value of the sample `name` whose labels include `labels` (0 when absent).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map(|b| b.count).unwrap_or(0.0)
                }
                prometheus_parse::Value::Summary(_) => 0.0,
            })
            .unwrap_or(0.0)
    }

    fn has(&self, name: &str) -> bool {
        self.0.samples.iter().any(|s| s.metric == name)
    }
}

/// Waits until `check` holds, polling every 20 ms, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The demo's greeting in `release`'s ConfigMap, `None` until there is one.
async fn greeting(client: &kube::Client, release: &str) -> Option<String> {
    kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), release)
        .get_opt(&format!("{release}-demo-config"))
        .await
        .unwrap()?
        .data?
        .get("GREETING")
        .cloned()
}

fn set_greeting(repo: &TestRepo, greeting: &str) {
    let path = repo.path().join("deploy/release.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("  greeting: ") {
                format!("  greeting: {greeting}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    repo.write("deploy/release.yaml", text).unwrap();
}

/// A GitHub push delivery for `url`'s `branch`, signed with `secret`.
async fn github_push(
    agent: &RunningAgent,
    url: &str,
    branch: &str,
    secret: &str,
) -> reqwest::Response {
    let body = serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "after": "0000000000000000000000000000000000000000",
        "repository": { "clone_url": url, "html_url": url },
        "pusher": { "name": "ada" },
    })
    .to_string();
    reqwest::Client::new()
        .post(agent.url("/hooks/github"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header(
            "X-Hub-Signature-256",
            signature(secret.as_bytes(), body.as_bytes()),
        )
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_push_applies_at_once_and_anything_else_changes_nothing() {
    let cluster = shared().await;
    let repo = demo_repo("ops-hook");
    let git = GitHttpServer::start(repo.base_dir(), None).unwrap();
    let url = git.url_for(&repo);
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{WEBHOOK_SECRET}\n")).unwrap();
    let token_file = secrets.path().join("status-token");
    std::fs::write(&token_file, STATUS_TOKEN).unwrap();
    // Polling once an hour: only a webhook can make this agent sync soon.
    let agent = RunningAgent::start(
        cluster,
        &[("ops-hook", &url, "1h")],
        &format!(", status_token_file: {}", token_file.display()),
        &format!(
            "webhooks: {{ secret_file: {}, max_body_bytes: 8192 }}\n",
            secret_file.display()
        ),
    )
    .await;
    let client = agent.client.clone();
    assert_eq!(
        greeting(&client, "ops-hook").await.as_deref(),
        Some("hello")
    );
    let before = agent.metrics().await;
    let succeeded = [("application", "ops-hook"), ("outcome", "succeeded")];
    assert_eq!(before.value("berth_syncs_total", &succeeded), 1.0);

    set_greeting(&repo, "pushed");
    repo.commit("greet the pushers").unwrap();

    // Wrong signature: 401, and nothing happens.
    let refused = github_push(&agent, &url, BRANCH, "not-the-secret").await;
    assert_eq!(refused.status(), 401);
    // An unknown repository: the same answer as a known one, nothing to do.
    let unknown = github_push(
        &agent,
        "https://github.com/acme/elsewhere.git",
        BRANCH,
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(unknown.status(), 202);
    // Another branch of the followed repository: nothing to do either.
    let other_branch = github_push(&agent, &url, "feature", WEBHOOK_SECRET).await;
    assert_eq!(other_branch.status(), 202);
    // Over the body limit: 413.
    let huge = reqwest::Client::new()
        .post(agent.url("/hooks/github"))
        .header("X-GitHub-Event", "push")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        greeting(&client, "ops-hook").await.as_deref(),
        Some("hello")
    );

    // The signed push: applied in under a second.
    let pushed = Instant::now();
    let accepted = github_push(&agent, &url, BRANCH, WEBHOOK_SECRET).await;
    assert_eq!(accepted.status(), 202);
    let took = eventually(Duration::from_secs(10), "the pushed greeting", || async {
        greeting(&client, "ops-hook").await.as_deref() == Some("pushed")
    })
    .await;
    let took = took.max(pushed.elapsed());
    eprintln!("push → applied: {} ms", took.as_millis());
    assert!(
        took < Duration::from_secs(1),
        "push → applied took {took:?}"
    );

    // A burst of pushes for one new commit makes one sync.
    eventually(
        Duration::from_secs(30),
        "the pushed sync's report",
        || async { agent.metrics().await.value("berth_syncs_total", &succeeded) == 2.0 },
    )
    .await;
    set_greeting(&repo, "burst");
    repo.commit("one commit, many pushes").unwrap();
    for _ in 0..5 {
        assert_eq!(
            github_push(&agent, &url, BRANCH, WEBHOOK_SECRET)
                .await
                .status(),
            202
        );
    }
    eventually(Duration::from_secs(10), "the burst's greeting", || async {
        greeting(&client, "ops-hook").await.as_deref() == Some("burst")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = agent.metrics().await;
    assert_eq!(
        after.value("berth_syncs_total", &succeeded),
        3.0,
        "one sync per new commit"
    );
    let fetches = after.value(
        "berth_git_fetch_duration_seconds_count",
        &[("application", "ops-hook")],
    );
    assert!(
        fetches <= 5.0,
        "the burst was coalesced: {fetches} fetches in all"
    );

    // The counters moved with what happened.
    let deliveries = |result: &str| {
        after.value(
            "berth_webhook_deliveries_total",
            &[("provider", "github"), ("result", result)],
        )
    };
    assert_eq!(deliveries("unauthorized"), 1.0);
    assert_eq!(deliveries("too_large"), 1.0);
    assert_eq!(deliveries("unknown_repository"), 2.0);
    assert_eq!(deliveries("accepted"), 6.0);
    assert!(
        after.value(
            "berth_objects_total",
            &[("application", "ops-hook"), ("action", "updated")]
        ) >= 2.0
    );
    assert_eq!(
        after.value(
            "berth_release_health",
            &[("release", "ops-hook"), ("state", "healthy")]
        ),
        1.0
    );
    assert!(
        after.value(
            "berth_last_successful_sync_timestamp_seconds",
            &[("application", "ops-hook")]
        ) > 1.7e9
    );
    assert!(after.value("berth_stage_duration_seconds_count", &[("stage", "render")]) >= 3.0);
    assert!(after.has("berth_build_info"));
    assert_eq!(after.value("berth_applications", &[]), 1.0);

    // The status data needs the token.
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(agent.url("/api/releases"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.get(agent.url("/"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let releases: serde_json::Value = http
        .get(agent.url("/api/releases"))
        .bearer_auth(STATUS_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(releases[0]["release"], "ops-hook");
    assert_eq!(releases[0]["current"]["subject"], "one commit, many pushes");
    assert_eq!(releases[0]["history"].as_array().unwrap().len(), 3);
    assert!(!releases[0]["pods"].as_array().unwrap().is_empty());
    assert_eq!(
        http.get(agent.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    agent.stop().await;
}

/// Waits until the receiver holds `count` requests on `path`.
async fn wait_for_messages(
    receiver: &Receiver,
    path: &str,
    count: usize,
    limit: Duration,
) -> Vec<berth_harness::receiver::Received> {
    let started = Instant::now();
    loop {
        let got: Vec<_> = receiver
            .received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect();
        if got.len() >= count {
            return got;
        }
        assert!(
            started.elapsed() < limit,
            "{path} got {} messages, not {count}: {:?}",
            got.len(),
            got.iter().map(|r| r.json()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The reasons and counts of the Events on a release's state object, as
/// the real kubectl lists them.
fn kubectl_events(cluster: &TestCluster, release: &str) -> Vec<(String, String, i64)> {
    let output = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.admin_kubeconfig())
        .args([
            "get",
            "events",
            "--namespace",
            STATE_NAMESPACE,
            "--field-selector",
            &format!("involvedObject.name=berth-release-{release}"),
            "--output",
            "json",
        ])
        .output()
        .expect("kubectl runs (Debian: apt-get install kubectl)");
    assert!(
        output.status.success(),
        "kubectl get events: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let count = event["series"]["count"]
                .as_i64()
                .or_else(|| event["count"].as_i64())
                .unwrap_or(1);
            (
                event["reason"].as_str().unwrap_or("").to_string(),
                event["type"].as_str().unwrap_or("").to_string(),
                count,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_verdict_is_an_event_and_reaches_both_sinks_even_after_downtime() {
    let cluster = shared().await;
    let release = "ops-notify";
    let repo = demo_repo(release);
    let mut receiver = Receiver::start().await.unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let sink_secret = secrets.path().join("sink-secret");
    std::fs::write(&sink_secret, SINK_SECRET).unwrap();
    let webhook_secret = secrets.path().join("webhook-secret");
    std::fs::write(&webhook_secret, WEBHOOK_SECRET).unwrap();
    let sinks = format!(
        "webhooks: {{ secret_file: {webhook} }}\n\
         notifications:\n\
         - {{ name: chat, kind: slack, url: \"{slack}\", on: all }}\n\
         - {{ name: bridge, kind: webhook, url: \"{hook}\", secret_file: {secret}, on: all }}\n\
         - {{ name: pager, kind: webhook, url: \"{pager}\", secret_file: {secret} }}\n",
        webhook = webhook_secret.display(),
        slack = receiver.url("/slack"),
        hook = receiver.url("/hook"),
        pager = receiver.url("/pager"),
        secret = sink_secret.display(),
    );
    let mut agent = TestAgent::with_applications(
        cluster,
        &[(release, &repo.file_url())],
        STAGING_PARIS,
        &sinks,
    )
    .await;
    let mut expected: Vec<&str> = Vec::new();

    // Applied.
    succeeded(&agent.sync(false).await);
    expected.push("Applied");

    // A template that does not parse: SyncFailed; the same failure again is
    // one more Event count, not one more message.
    repo.write("deploy/chart/templates/broken.yaml", "{{ if }}\n")
        .unwrap();
    repo.commit("a broken template").unwrap();
    assert_eq!(
        agent.sync(false).await.outcome,
        berth_agent::inventory::Outcome::Failed
    );
    assert_eq!(
        agent.sync(true).await.outcome,
        berth_agent::inventory::Outcome::Failed
    );
    expected.push("SyncFailed");
    repo.remove("deploy/chart/templates/broken.yaml").unwrap();

    // Most objects gone at once: the deletion guard holds them.
    repo.remove("deploy/chart/templates/deployment.yaml")
        .unwrap();
    repo.remove("deploy/chart/templates/service.yaml").unwrap();
    repo.commit("drop the workload").unwrap();
    let held = agent.sync(false).await;
    assert!(held.deletion_held, "{:?}", held.error);
    expected.push("DeletionHeld");
    repo.git(&[
        "checkout",
        "HEAD~1",
        "--",
        "deploy/chart/templates/deployment.yaml",
        "deploy/chart/templates/service.yaml",
    ])
    .unwrap();

    // An image that never pulls: Degraded.
    add_to_release(&repo, "healthTimeout: 4s\n");
    set_image(&repo, MISSING_IMAGE);
    repo.commit("an image that does not exist").unwrap();
    let degraded = agent.sync(false).await;
    assert_eq!(
        degraded.health.as_ref().map(|v| v.health),
        Some(berth_agent::health::Health::Degraded)
    );
    expected.push("Degraded");

    // The same with rollback on: RolledBack to the first commit.
    add_to_release(&repo, "rollback: true\n");
    repo.commit("roll back when unhealthy").unwrap();
    assert_eq!(
        agent.sync(false).await.outcome,
        berth_agent::inventory::Outcome::RolledBack
    );
    expected.push("RolledBack");

    let slack =
        wait_for_messages(&receiver, "/slack", expected.len(), Duration::from_secs(30)).await;
    // The sink down for a while: a good commit's message waits for it.
    receiver.pause().await;
    set_image(&repo, "ghcr.io/example/demo:1.5.0");
    repo.commit("a good image again").unwrap();
    let applied = agent.sync(false).await;
    assert_eq!(
        applied.health.as_ref().map(|v| v.health),
        Some(berth_agent::health::Health::Healthy)
    );
    expected.push("Applied");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        receiver
            .received()
            .iter()
            .filter(|r| r.path == "/slack")
            .count(),
        slack.len()
    );
    receiver.resume().await.unwrap();

    let slack =
        wait_for_messages(&receiver, "/slack", expected.len(), Duration::from_secs(60)).await;
    let hook = wait_for_messages(&receiver, "/hook", expected.len(), Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver
            .received()
            .iter()
            .filter(|r| r.path == "/slack")
            .count(),
        expected.len(),
        "one Slack message per verdict"
    );

    let commits = |message: &serde_json::Value| {
        message["commit"]["subject"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let events: Vec<String> = hook
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        expected,
        "{:?}",
        hook.iter().map(|r| commits(&r.json())).collect::<Vec<_>>()
    );
    for message in &hook {
        // Signed over the exact body with the sink's secret.
        assert_eq!(
            message.header("x-berth-signature-256"),
            Some(signature(SINK_SECRET.as_bytes(), &message.body).as_str())
        );
        let body = message.json();
        assert_eq!(body["release"], release);
        assert_eq!(body["context"]["cluster"], "par-staging-1");
        assert_eq!(body["commit"]["author"], "berth test");
    }
    for (message, event) in slack.iter().zip(&expected) {
        let text = message.json()["text"].as_str().unwrap().to_string();
        assert!(
            text.contains(&format!("*{release}* {event} on *par-staging-1*")),
            "{text}"
        );
        assert!(text.contains("by berth test"), "{text}");
    }
    // The failures-only sink heard of failures and of the recovery.
    let pager: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| r.path == "/pager")
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        pager,
        [
            "SyncFailed",
            "DeletionHeld",
            "Degraded",
            "RolledBack",
            "Applied"
        ]
    );
    // No secret anywhere in what the sinks received.
    for message in receiver.received() {
        let mut seen = String::from_utf8_lossy(&message.body).to_string();
        for (_, value) in message.headers.iter() {
            seen.push_str(value.to_str().unwrap_or(""));
        }
        for secret in [SINK_SECRET, WEBHOOK_SECRET] {
            assert!(!seen.contains(secret), "a secret reached a sink: {seen}");
        }
    }

    // kubectl lists one Event per verdict, the repeated failure counted twice.
    let events = kubectl_events(cluster, release);
    let reasons: BTreeSet<&str> = events
        .iter()
        .map(|(reason, _, _)| reason.as_str())
        .collect();
    for reason in [
        "Applied",
        "SyncFailed",
        "DeletionHeld",
        "Degraded",
        "RolledBack",
    ] {
        assert!(reasons.contains(reason), "no {reason} event in {events:?}");
    }
    let failed: Vec<_> = events
        .iter()
        .filter(|(reason, _, _)| reason == "SyncFailed")
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0].1, "Warning");
    assert_eq!(
        failed[0].2, 2,
        "the repeated failure is counted, not repeated"
    );
    assert!(
        events
            .iter()
            .filter(|(reason, _, _)| reason == "Applied")
            .all(|(_, kind, _)| kind == "Normal")
    );
    agent.agent.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_releases_health_and_pods_in_a_browser() {
    let cluster = shared().await;
    let good = demo_repo("ops-page");
    let bad = demo_repo("ops-page-bad");
    add_to_release(&bad, "healthTimeout: 3s\n");
    set_image(&bad, MISSING_IMAGE);
    bad.commit("an image that does not exist").unwrap();
    let agent = RunningAgent::start(
        cluster,
        &[
            ("ops-page", &good.file_url(), "1h"),
            ("ops-page-bad", &bad.file_url(), "1h"),
        ],
        "",
        "",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::start(dir.path(), 1280, 1100).await.unwrap();
    let page = browser.client();
    page.goto(&agent.url("/")).await.unwrap();
    let title = page.title().await.unwrap();
    assert_eq!(title, "berth on par-staging-1");

    let section = |release: &'static str| {
        let css = format!("section[data-release=\"{release}\"]");
        async move {
            page.find(Locator::Css(&css))
                .await
                .unwrap_or_else(|e| panic!("no section for {release}: {e}"))
        }
    };
    let good_section = section("ops-page").await;
    let text = good_section.text().await.unwrap();
    assert!(text.contains("healthy"), "{text}");
    assert!(text.contains("runs "), "{text}");
    assert!(
        text.contains("release ops-page"),
        "the deploy's subject: {text}"
    );
    let pods = good_section
        .find_all(Locator::Css("table.pods tr"))
        .await
        .unwrap();
    // A header row and the Deployment's one replica, running on a kwok node.
    assert_eq!(pods.len(), 2, "{text}");
    let pod = pods[1].text().await.unwrap();
    assert!(
        pod.contains("Running") && pod.contains("1/1") && pod.contains("kwok-node-"),
        "{pod}"
    );

    let bad_section = section("ops-page-bad").await;
    let text = bad_section.text().await.unwrap();
    assert!(text.contains("degraded"), "{text}");
    assert!(
        text.contains("ImagePullBackOff"),
        "the pod's reason: {text}"
    );
    assert!(text.contains("an image that does not exist"), "{text}");

    let screenshot = page.screenshot().await.unwrap();
    let saved = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&saved, &screenshot).unwrap();
    // BERTH_SCREENSHOT=docs/status-page.png keeps it for the documentation.
    if let Ok(path) = std::env::var("BERTH_SCREENSHOT") {
        std::fs::write(path, &screenshot).unwrap();
    }
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG screenshot");
    browser.close().await;

    // The same data as JSON.
    let releases: serde_json::Value = reqwest::get(agent.url("/api/releases"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["release"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ops-page", "ops-page-bad"]);
    assert_eq!(releases[1]["current"]["health"], "degraded");
    assert_eq!(releases[1]["pods"][0]["reason"], "ImagePullBackOff");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_config_file_adds_a_release_and_a_broken_one_changes_nothing() {
    let cluster = shared().await;
    let first = demo_repo("ops-live-a");
    let second = demo_repo("ops-live-b");
    let agent =
        RunningAgent::start(cluster, &[("ops-live-a", &first.file_url(), "1s")], "", "").await;
    let client = agent.client.clone();
    assert_eq!(
        greeting(&client, "ops-live-a").await.as_deref(),
        Some("hello")
    );
    assert_eq!(greeting(&client, "ops-live-b").await, None);
    let dir = agent.config_path.parent().unwrap().to_path_buf();

    // Edited in place like an editor would: a new file renamed over the old one.
    let both = config_text(
        &dir,
        cluster,
        STAGING_PARIS,
        agent.port,
        &[
            ("ops-live-a", &first.file_url(), "1s"),
            ("ops-live-b", &second.file_url(), "1s"),
        ],
        "",
        "",
    );
    let replace = |text: &str| {
        let staged = dir.join("berth.yaml.new");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, &agent.config_path).unwrap();
    };
    replace(&both);
    eventually(Duration::from_secs(30), "the added release", || async {
        greeting(&client, "ops-live-b").await.as_deref() == Some("hello")
    })
    .await;
    let metrics = agent.metrics().await;
    assert_eq!(
        metrics.value("berth_config_reloads_total", &[("result", "applied")]),
        1.0
    );
    assert_eq!(metrics.value("berth_applications", &[]), 2.0);

    // A file that does not validate: refused, and both releases are still followed.
    replace(&both.replace("  - { name: ops-live-b", "  - { nme: ops-live-b"));
    eventually(
        Duration::from_secs(10),
        "the refusal in the metrics",
        || async {
            agent
                .metrics()
                .await
                .value("berth_config_reloads_total", &[("result", "refused")])
                == 1.0
        },
    )
    .await;
    let metrics = agent.metrics().await;
    assert_eq!(
        metrics.value("berth_config_last_reload_successful", &[]),
        0.0
    );
    assert_eq!(metrics.value("berth_applications", &[]), 2.0);
    set_greeting(&second, "still followed");
    second.commit("a change after the broken config").unwrap();
    eventually(
        Duration::from_secs(30),
        "the second release's change",
        || async { greeting(&client, "ops-live-b").await.as_deref() == Some("still followed") },
    )
    .await;
    let releases: serde_json::Value = reqwest::get(agent.url("/api/releases"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(releases.as_array().unwrap().len(), 2);
    agent.stop().await;
}

/// Two replicas with a Lease: one leads and syncs, the other follows (ready,
/// refusing webhooks, writing nothing: the API server's audit log tells
/// their requests apart by User-Agent); when the leader dies without
/// releasing the lease (SIGKILL), the follower takes over within the lease
/// duration and applies the next commit; a clean stop (SIGTERM) releases
/// the lease.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_one_leads_and_the_other_takes_over() {
    use berth_harness::cluster::ADMIN_USER;
    use k8s_openapi::api::coordination::v1::Lease;
    let audit_dir = tempfile::tempdir().unwrap();
    // A cluster of its own, for an audit log of the replicas' requests.
    let (cluster, audit_log) = audited_cluster("replicas", &[ADMIN_USER], audit_dir.path())
        .await
        .unwrap();
    let cluster = &cluster;
    let repo = demo_repo("replicas");
    let url = repo.file_url();
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("webhook-secret");
    std::fs::write(&secret_file, WEBHOOK_SECRET).unwrap();
    let extra = |identity: &str| {
        format!(
            "webhooks: {{ secret_file: {} }}\n\
             leader_election: {{ lease_name: berth-replicas, identity: {identity}, lease_duration: 4s, renew_deadline: 2s, retry_period: 1s }}\n",
            secret_file.display()
        )
    };
    let applications = [("replicas", url.as_str(), "1s")];
    // Each replica a process of its own, as Pods are.
    let first = RunningAgent::start_process(cluster, &applications, &extra("replica-a")).await;
    let second = RunningAgent::start_process(cluster, &applications, &extra("replica-b")).await;
    let client = first.client.clone();
    let leases = kube::Api::<Lease>::namespaced(client.clone(), STATE_NAMESPACE);
    let holder = || async {
        leases
            .get_opt("berth-replicas")
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity)
    };
    eventually(Duration::from_secs(20), "one replica to lead", || async {
        let leading = first.metrics().await.value("berth_leader", &[])
            + second.metrics().await.value("berth_leader", &[]);
        leading == 1.0
    })
    .await;
    let (leader, follower, leader_name, follower_name) =
        if first.metrics().await.value("berth_leader", &[]) == 1.0 {
            (first, second, "replica-a", "replica-b")
        } else {
            (second, first, "replica-b", "replica-a")
        };
    assert_eq!(holder().await.as_deref(), Some(leader_name));
    eventually(
        Duration::from_secs(30),
        "the leader to apply the release",
        || async { greeting(&client, "replicas").await.as_deref() == Some("hello") },
    )
    .await;

    // The follower is ready, says whom it follows, and refuses pushes.
    let ready = reqwest::get(follower.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let text = ready.text().await.unwrap();
    assert_eq!(
        text,
        format!("ready: following; the leader is {leader_name}\n")
    );
    let push = github_push(&follower, &url, BRANCH, WEBHOOK_SECRET).await;
    assert_eq!(push.status(), 503);
    assert_eq!(follower.metrics().await.value("berth_leader", &[]), 0.0);
    // Only the leader synced: one history entry, and the follower's
    // metrics count no sync.
    let history = InventoryStore::new(client.clone(), STATE_NAMESPACE, "replicas", 10)
        .history()
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        follower.metrics().await.value("berth_syncs_total", &[]),
        0.0
    );

    // Until now, the follower wrote nothing but its tries of the Lease;
    // the leader applied the release.
    let agent_of = |name: &str| format!("berth/{} ({name})", env!("CARGO_PKG_VERSION"));
    let before_takeover = audited_requests(&audit_log);
    let writes = |requests: &[Audited], name: &str| -> Vec<Audited> {
        requests
            .iter()
            .filter(|r| r.user_agent == agent_of(name) && r.is_write() && r.resource != "leases")
            .cloned()
            .collect()
    };
    assert!(
        before_takeover
            .iter()
            .any(|r| r.user_agent == agent_of(follower_name) && r.resource == "leases"),
        "no request of the follower in the audit log"
    );
    let follower_writes = writes(&before_takeover, follower_name);
    assert!(
        follower_writes.is_empty(),
        "the follower wrote: {follower_writes:#?}"
    );
    // An apply of the release's ConfigMap among `requests`.
    let applies = |requests: &[Audited]| {
        requests
            .iter()
            .any(|r| r.verb == "patch" && r.resource == "configmaps" && r.namespace == "replicas")
    };
    let leader_writes = writes(&before_takeover, leader_name);
    assert!(
        applies(&leader_writes),
        "the leader applied nothing: {leader_writes:#?}"
    );
    // One field manager in the applied objects, whichever replica wrote.
    let managers: Vec<String> =
        kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "replicas")
            .get("replicas-demo-config")
            .await
            .unwrap()
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .map(|entry| {
                format!(
                    "{} {}",
                    entry.manager.unwrap_or_default(),
                    entry.operation.unwrap_or_default()
                )
            })
            .collect();
    assert_eq!(managers, ["berth Apply"]);

    // The leader is SIGKILLed: it dies without a word (no release).
    leader.kill();
    set_greeting(&repo, "from-the-new-leader");
    repo.commit("greet from the new leader").unwrap();
    let took = eventually(
        Duration::from_secs(30),
        "the follower to take over and apply the commit",
        || async { greeting(&client, "replicas").await.as_deref() == Some("from-the-new-leader") },
    )
    .await;
    assert_eq!(holder().await.as_deref(), Some(follower_name));
    assert_eq!(follower.metrics().await.value("berth_leader", &[]), 1.0);
    // Within the lease duration (4 s) plus a retry and a sync.
    assert!(took < Duration::from_secs(15), "took over in {took:?}");

    // The new leader wrote the new commit.
    let after_takeover = audited_requests(&audit_log);
    assert!(
        applies(&writes(
            &after_takeover[before_takeover.len()..],
            follower_name
        )),
        "the new leader applied nothing"
    );

    // A clean stop gives the lease up at once.
    follower.stop().await;
    assert_eq!(holder().await, None);
}

/// A leader cut off from the API server stops writing by itself before its
/// lease can expire (its renew deadline is shorter), and says why.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_off_from_the_api_server_stops_before_its_lease_expires() {
    use berth_harness::link::FaultyLink;
    use k8s_openapi::api::coordination::v1::Lease;
    let cluster = shared().await;
    let repo = demo_repo("partition");
    // The agent reaches the API server through a link the test can cut.
    let admin = std::fs::read_to_string(cluster.admin_kubeconfig()).unwrap();
    let server = admin
        .lines()
        .find_map(|line| line.trim().strip_prefix("server: "))
        .unwrap()
        .to_string();
    let upstream: std::net::SocketAddr = server.trim_start_matches("https://").parse().unwrap();
    let link = FaultyLink::start(upstream).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        admin.replace(&server, &format!("https://127.0.0.1:{}", link.port())),
    )
    .unwrap();
    let port = free_port().unwrap();
    let config_path = write_config(
        dir.path(),
        &kubeconfig,
        STAGING_PARIS,
        &format!(
            "  - {{ name: partition, url: \"{}\", branch: {BRANCH}, poll_interval: 1s }}\n",
            repo.file_url()
        ),
        &format!(
            "http: {{ address: \"127.0.0.1:{port}\" }}\n\
             leader_election: {{ lease_name: berth-partition, identity: cut-off, lease_duration: 4s, renew_deadline: 2s, retry_period: 1s }}\n"
        ),
    );
    let config = AgentConfig::load(&config_path).unwrap();
    let agent_client = berth_agent::kubernetes::kube_client(&config).await.unwrap();
    let task = tokio::spawn({
        let path = config_path.clone();
        async move {
            berth_agent::daemon::serve(config, &path, agent_client, std::future::pending()).await
        }
    });
    let client = cluster.admin_client().await.unwrap();
    let leases = kube::Api::<Lease>::namespaced(client.clone(), STATE_NAMESPACE);
    eventually(
        Duration::from_secs(30),
        "the agent to lead and apply",
        || async {
            let leads = leases
                .get_opt("berth-partition")
                .await
                .unwrap()
                .and_then(|l| l.spec?.holder_identity)
                .as_deref()
                == Some("cut-off");
            leads && greeting(&client, "partition").await.as_deref() == Some("hello")
        },
    )
    .await;

    link.cut();
    let result = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the leader stops by itself")
        .unwrap();
    let stopped_at = k8s_openapi::jiff::Timestamp::now();
    let error = result.expect_err("a lost lease is an error").to_string();
    assert_eq!(
        error,
        "lost the leadership of lease berth-partition; stopped writing"
    );
    // Before the lease could expire: the last renewal the API server
    // recorded, plus the lease duration, is still ahead.
    let renewed = leases
        .get("berth-partition")
        .await
        .unwrap()
        .spec
        .unwrap()
        .renew_time
        .unwrap()
        .0;
    let expires = renewed + k8s_openapi::jiff::SignedDuration::from_secs(4);
    assert!(
        stopped_at < expires,
        "stopped at {stopped_at}, the lease expires at {expires}"
    );
}

/// berth's ServiceAccount in the install manifests.
const BERTH_ACCOUNT: &str = "system:serviceaccount:berth-system:berth";

/// The audit log's requests on objects (discovery has none), in order.
fn audited_requests(log: &AuditLog) -> Vec<Audited> {
    log.requests()
        .into_iter()
        .filter(|request| !request.resource.is_empty())
        .collect()
}

/// A right: (verb, API group, resource, namespace), the namespace empty
/// across the cluster.
type Right = (String, String, String, String);

/// What the manifests' Roles and ClusterRoles grant berth.
fn granted_by(manifests: &str) -> BTreeSet<Right> {
    let mut granted = BTreeSet::new();
    for document in serde_yaml::Deserializer::from_str(manifests) {
        let object: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
        let kind = object["kind"].as_str().unwrap();
        if kind != "Role" && kind != "ClusterRole" {
            continue;
        }
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("");
        for rule in object["rules"].as_array().unwrap() {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        granted.insert((
                            verb.clone(),
                            group.clone(),
                            resource.clone(),
                            namespace.to_string(),
                        ));
                    }
                }
            }
        }
    }
    granted
}

/// The install manifests on a real API server: applied with kubectl, their
/// ServiceAccount's token in a kubeconfig, the agent with the ConfigMap's
/// configuration (its repository made local) syncs, corrects drift and
/// prunes with that RBAC alone; the API server's audit log shows every
/// right the manifests grant in use, and nothing refused but the watches
/// across the cluster that berth tries first.
#[tokio::test(flavor = "multi_thread")]
async fn the_install_manifests_give_the_agent_what_a_sync_needs_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    // A cluster of its own: its audit log, and the manifests' cluster-wide
    // objects, are this test's.
    let (cluster, audit_log) = audited_cluster("install", &[BERTH_ACCOUNT], dir.path())
        .await
        .unwrap();
    let admin = cluster.admin_client().await.unwrap();
    let manifests_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/berth.yaml");
    let manifests = std::fs::read_to_string(&manifests_path).unwrap();
    let kubectl = |args: &[&str]| {
        let output = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(cluster.admin_kubeconfig())
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    kubectl(&[
        "apply",
        "--server-side",
        "-f",
        manifests_path.to_str().unwrap(),
    ]);

    // The Deployment's Pods (kwok runs them): the agent stands in for one.
    let pods =
        kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(admin.clone(), "berth-system");
    let selector = kube::api::ListParams::default().labels("app.kubernetes.io/name=berth");
    eventually(Duration::from_secs(60), "the Deployment's pods", || async {
        pods.list(&selector).await.unwrap().items.len() == 2
    })
    .await;
    let pod = pods.list(&selector).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();

    // A kubeconfig with the ServiceAccount's token, as a Pod would have.
    let token = kubectl(&["create", "token", "berth", "-n", "berth-system"]);
    let admin_kubeconfig: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(cluster.admin_kubeconfig()).unwrap())
            .unwrap();
    let cluster_entry = &admin_kubeconfig["clusters"][0];
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{ "name": "berth", "user": { "token": token.trim() } }],
        "contexts": [{ "name": "berth", "context": {
            "cluster": cluster_entry["name"], "user": "berth" } }],
        "current-context": "berth",
    });
    let kubeconfig_path = dir.path().join("berth-token.kubeconfig");
    std::fs::write(
        &kubeconfig_path,
        serde_yaml::to_string(&kubeconfig).unwrap(),
    )
    .unwrap();

    // The demo application, on the branch the shipped configuration
    // follows for its context (env prod).
    let repo = demo_repo("demo");
    repo.git(&["checkout", "-b", "prod"]).unwrap();

    // The configuration the ConfigMap ships, made to run here: the
    // repository, cache and address are local, the leader is that Pod.
    let config_map = manifests
        .split("\n---\n")
        .find(|document| document.contains("kind: ConfigMap"))
        .unwrap();
    let config_map: serde_yaml::Value = serde_yaml::from_str(config_map).unwrap();
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(config_map["data"]["berth.yaml"].as_str().unwrap()).unwrap();
    let port = free_port().unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let set = |config: &mut serde_yaml::Value, path: &[&str], value: serde_yaml::Value| {
        let mut at = config;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
    };
    let cache = agent_dir.path().join("cache");
    set(&mut config, &["cache_dir"], cache.to_str().unwrap().into());
    set(
        &mut config,
        &["kubeconfig"],
        kubeconfig_path.to_str().unwrap().into(),
    );
    set(
        &mut config,
        &["http", "address"],
        format!("127.0.0.1:{port}").into(),
    );
    set(
        &mut config,
        &["leader_election", "identity"],
        pod.as_str().into(),
    );
    set(
        &mut config,
        &["leader_election", "pod_name"],
        pod.as_str().into(),
    );
    let application = &mut config["applications"][0];
    application["url"] = repo.file_url().into();
    application["poll_interval"] = "1s".into();
    let config_path = agent_dir.path().join("berth.yaml");
    std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let agent = RunningAgent::serve(agent_dir, config_path, port, admin.clone()).await;

    // It leads (its Pod labelled), applies and turns healthy.
    let head = repo.head().unwrap();
    let store = InventoryStore::new(admin.clone(), "berth-system", "demo", 10);
    // Waits until the history holds a verdict of `health` on `commit` for
    // which `reason` holds.
    let verdict = |commit: String, health: Health, reason: fn(&str) -> bool| {
        let store = &store;
        async move {
            eventually(
                Duration::from_secs(60),
                &format!("{health:?} at {commit}"),
                || async {
                    store
                        .history()
                        .await
                        .unwrap_or_default()
                        .iter()
                        .any(|entry| {
                            entry.commit == commit
                                && entry.health == Some(health)
                                && reason(entry.health_reason.as_deref().unwrap_or(""))
                        })
                },
            )
            .await
        }
    };
    verdict(head, Health::Healthy, |_| true).await;
    let labels = pods.get(&pod).await.unwrap().metadata.labels.unwrap();
    assert_eq!(
        labels.get("berth.dev/leader").map(String::as_str),
        Some("true")
    );

    // A hand-made change is undone within seconds, by a watch in the
    // release's namespace (berth may not watch across the cluster).
    eventually(
        Duration::from_secs(20),
        "berth's watch of the ConfigMaps",
        || async {
            audited_requests(&audit_log)
                .iter()
                .any(|r| r.verb == "watch" && r.resource == "configmaps" && r.namespace == "demo")
        },
    )
    .await;
    edit_greeting_by_hand(&admin, "demo", "demo-config").await;
    eventually(
        Duration::from_secs(20),
        "the hand-made change undone",
        || async {
            config_data(&admin, "demo", "demo-config")
                .await
                .get("GREETING")
                .is_some_and(|greeting| greeting != "edited-by-hand")
        },
    )
    .await;

    // A commit that leaves the HorizontalPodAutoscaler out prunes it.
    let release_file = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    let without_autoscaling = release_file.replace(
        "      autoscaling:\n        enabled: true\n",
        "      autoscaling:\n        enabled: false\n",
    );
    assert_ne!(release_file, without_autoscaling);
    repo.write("deploy/release.yaml", without_autoscaling)
        .unwrap();
    let second = repo.commit("no autoscaling in prod").unwrap();
    let autoscalers =
        kube::Api::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>::namespaced(
            admin.clone(),
            "demo",
        );
    verdict(second, Health::Healthy, |_| true).await;
    assert!(
        autoscalers
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // An image that does not exist: the verdict names the pod's reason,
    // read from the release's pods.
    add_to_release(&repo, "healthTimeout: 10s\n");
    set_image(&repo, MISSING_IMAGE);
    let third = repo.commit("an image that does not exist").unwrap();
    verdict(third, Health::Degraded, |reason| {
        reason.contains("ImagePullBackOff")
    })
    .await;
    agent.stop().await;

    let requests: Vec<Audited> = audited_requests(&audit_log)
        .into_iter()
        .filter(|r| r.user == BERTH_ACCOUNT)
        .collect();
    // Nothing refused but the watches across the cluster of the release's
    // kinds, which berth tries before watching in the namespace.
    let refused: Vec<&Audited> = requests
        .iter()
        .filter(|r| r.code == 403 && !(r.verb == "list" && r.namespace.is_empty()))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:#?}");
    let mut used: BTreeSet<Right> = BTreeSet::new();
    for request in requests.iter().filter(|r| r.code != 403) {
        let right = (
            request.verb.clone(),
            request.group.clone(),
            request.resource.clone(),
            request.namespace.clone(),
        );
        // A server-side apply that creates is allowed as "create" but
        // audited as the "patch" it is.
        if request.verb == "patch" {
            used.insert((
                "create".into(),
                right.1.clone(),
                right.2.clone(),
                right.3.clone(),
            ));
        }
        used.insert(right);
    }
    let granted = granted_by(&manifests);
    // berth's own state and the cluster-wide rules: every right is used,
    // but the deletion of inventory shards, which only a release too large
    // for one record has.
    let shards = (
        "delete".into(),
        String::new(),
        "configmaps".into(),
        "berth-system".into(),
    );
    let unused: Vec<&Right> = granted
        .iter()
        .filter(|right| right.3 != "demo" && **right != shards && !used.contains(*right))
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never used: {unused:#?}\nused: {used:#?}"
    );
    // The application's namespace: the kinds granted are those the release
    // holds and the pods health reads; each verb granted is used.
    let in_demo = |rights: &BTreeSet<Right>, part: fn(&Right) -> String| -> BTreeSet<String> {
        rights.iter().filter(|r| r.3 == "demo").map(part).collect()
    };
    assert_eq!(
        in_demo(&granted, |r| format!("{}/{}", r.1, r.2)),
        in_demo(&used, |r| format!("{}/{}", r.1, r.2))
    );
    assert_eq!(
        in_demo(&granted, |r| r.0.clone()),
        in_demo(&used, |r| r.0.clone())
    );
}
