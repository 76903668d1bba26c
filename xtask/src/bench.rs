//! `cargo xtask bench fleet`: berth following a fleet of releases on the
//! real control plane, repositories served over git smart HTTP, measured
//! from outside: the agent's /proc figures and kube-apiserver's audit log
//! of its requests. Figures, not a timed test; the table goes into
//! docs/benchmarks.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth_agent::notifications::signature;
use berth_harness::TestCluster;
use berth_harness::audit::{AuditLog, audited_cluster};
use berth_harness::cluster::ADMIN_USER;
use berth_harness::git::{BRANCH, GitHttpServer, TestRepo, copy_tree};
use berth_harness::process::{Lifetime, ServerProcess, free_port};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::Value;

const REPOSITORIES: usize = 20;
const WEBHOOK_SECRET: &str = "bench-webhook-secret";
const POLL_INTERVAL_SECS: u64 = 10;
const SAMPLES: usize = 10;
/// How long a drift correction is waited for.
const NOT_UNDONE: Duration = Duration::from_secs(30);

/// `cargo xtask bench fleet`'s options.
#[derive(clap::Args)]
pub struct FleetOptions {
    #[arg(long, default_value_t = 200)]
    pub releases: usize,
    /// How many of them are large (ConfigMaps only).
    #[arg(long, default_value_t = 4)]
    pub large: usize,
    #[arg(long, default_value_t = 2300)]
    pub objects_per_large: usize,
    /// The shared chart corpus (podinfo is taken from it).
    #[arg(long, default_value = "../shared/charts")]
    pub charts: PathBuf,
    /// Replace this fleet size's section of this file with the table (e.g. docs/benchmarks.md).
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Also run Flux's source-controller and helm-controller (built first
    /// by tests/tools/build-flux.sh) against the same control plane.
    #[arg(long)]
    pub flux: bool,
    /// Seconds each system is left idle while its idle figures are taken
    /// (and the control plane alone, for its own traffic).
    #[arg(long, default_value_t = 60)]
    pub idle_seconds: u64,
    /// Run this berth binary instead of building the workspace's release
    /// build (another build, or a wrapper that runs it under a profiler).
    #[arg(long)]
    pub berth: Option<PathBuf>,
}

impl FleetOptions {
    fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_seconds)
    }
}

/// What one system measured.
struct Figures {
    all_applied: Option<Duration>,
    peak_until_applied_kib: f64,
    peak_kib: f64,
    idle_rss_kib: f64,
    idle_cpu_per_minute: f64,
    idle_requests: String,
    /// TCP connections to kube-apiserver open while idle (watches and the pool).
    idle_connections: usize,
    ref_checks_per_cycle: String,
    full_comparison_requests: String,
    full_comparison: String,
    pushed: String,
    polled: String,
    drift: String,
}

/// One release of the fleet.
struct Release {
    name: String,
    repository: usize,
    large: bool,
}

pub fn fleet(options: FleetOptions) -> Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace directory")?
        .to_path_buf();
    let berth = match &options.berth {
        Some(berth) => berth.clone(),
        None => {
            println!("building berth (release)");
            let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["build", "--quiet", "--release", "-p", "berth"])
                .current_dir(&workspace)
                .status()?;
            if !status.success() {
                bail!("building berth failed");
            }
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace.join("target"))
                .join("release/berth")
        }
    };
    if options.flux {
        println!(
            "building Flux's controllers (tests/tools/build-flux.sh; cached after the first run)"
        );
        let status = Command::new("bash")
            .arg(workspace.join("tests/tools/build-flux.sh"))
            .status()?;
        if !status.success() {
            bail!("building Flux's controllers failed");
        }
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let table = runtime.block_on(run(&berth, &options))?;
    println!("\n{table}");
    if let Some(path) = &options.write {
        write_section(path, options.releases, &table)?;
        println!("written into {}", path.display());
    }
    Ok(())
}

/// The small chart (podinfo from the shared corpus, with its ServiceAccount:
/// three objects) and a large one made here (one ConfigMap per index).
fn write_charts(charts: &Path, release: &Release, dir: &Path) -> Result<()> {
    let chart = dir.join("chart");
    if release.large {
        std::fs::create_dir_all(chart.join("templates"))?;
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: settings\nversion: 1.0.0\n",
        )?;
        std::fs::write(chart.join("values.yaml"), "count: 1\nrevision: \"1\"\n")?;
        std::fs::write(
            chart.join("templates/configmaps.yaml"),
            "{{- range $i := until (int .Values.count) }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ $.Release.Name }}-{{ $i }}\ndata:\n  index: {{ $i | quote }}\n  revision: {{ $.Values.revision | quote }}\n{{- end }}\n",
        )?;
    } else {
        copy_tree(&charts.join("podinfo"), &chart)
            .with_context(|| format!("copying podinfo from {}", charts.display()))?;
    }
    Ok(())
}

fn release_file(release: &Release, options: &FleetOptions) -> String {
    let values = if release.large {
        format!("  count: {}\n", options.objects_per_large)
    } else {
        "  serviceAccount: { enabled: true }\n".to_string()
    };
    format!(
        "name: {name}\nnamespace: {name}\nchart: chart\nvalues:\n{values}targets:\n  - env: [staging]\n",
        name = release.name
    )
}

/// The values berth's release file gives, for Flux's HelmRelease.
fn helm_values(release: &Release, options: &FleetOptions) -> Value {
    if release.large {
        serde_json::json!({ "count": options.objects_per_large })
    } else {
        serde_json::json!({ "serviceAccount": { "enabled": true } })
    }
}

/// Sets the chart's own default pod annotation `bench/revision` (in the
/// chart, so that both berth and Flux see a commit as a new chart).
fn set_revision(repo: &TestRepo, release: &Release, revision: usize) -> Result<()> {
    let file = format!("apps/{}/chart/values.yaml", release.name);
    let text = std::fs::read_to_string(repo.path().join(&file))?;
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with("podAnnotations:"))
        .map(str::to_string)
        .collect();
    lines.push(format!(
        "podAnnotations: {{ bench/revision: \"{revision}\" }}"
    ));
    repo.write(&file, lines.join("\n") + "\n")
}

async fn run(berth: &Path, options: &FleetOptions) -> Result<String> {
    println!("starting a control plane");
    let base = tempfile::Builder::new().prefix("berth-fleet-").tempdir()?;
    // berth, Flux, the bench and the control plane's components all use
    // the admin identity here; each system's requests are told apart by
    // their User-Agent (`requests_of`).
    let (cluster, audit) = audited_cluster("fleet-bench", &[ADMIN_USER], base.path()).await?;
    let client = cluster.admin_client().await?;
    let releases: Vec<Release> = (0..options.releases)
        .map(|i| Release {
            name: format!("fleet-{i:04}"),
            repository: i % REPOSITORIES,
            large: i < options.large,
        })
        .collect();
    let repos: Vec<TestRepo> = (0..REPOSITORIES)
        .map(|r| TestRepo::new_in(base.path(), &format!("team-{r:02}")))
        .collect::<Result<_>>()?;
    for release in &releases {
        let repo = &repos[release.repository];
        let dir = repo.path().join("apps").join(&release.name);
        write_charts(&options.charts, release, &dir)?;
        std::fs::write(dir.join("release.yaml"), release_file(release, options))?;
        if !release.large {
            set_revision(&repos[release.repository], release, 1)?;
        }
    }
    for repo in &repos {
        repo.commit("the fleet")?;
    }
    let git = GitHttpServer::start(base.path(), None)?;
    let objects: usize = releases
        .iter()
        .map(|r| {
            if r.large {
                options.objects_per_large
            } else {
                3
            }
        })
        .sum();
    println!(
        "{} releases ({} large of {} objects), {objects} objects, in {REPOSITORIES} repositories over smart HTTP",
        releases.len(),
        options.large,
        options.objects_per_large
    );

    let work = tempfile::Builder::new()
        .prefix("berth-fleet-agent-")
        .tempdir()?;
    let port = free_port()?;
    std::fs::write(work.path().join("webhook-secret"), WEBHOOK_SECRET)?;
    let applications: String = releases
        .iter()
        .map(|r| {
            format!(
                "  - {{ name: {name}, url: \"{url}\", branch: {BRANCH}, release_file: apps/{name}/release.yaml, poll_interval: {POLL_INTERVAL_SECS}s }}\n",
                name = r.name,
                url = git.url_for(&repos[r.repository]),
            )
        })
        .collect();
    let config = work.path().join("berth.yaml");
    std::fs::write(
        &config,
        format!(
            "context: {{ cloud: onprem, env: staging, region: paris, cluster: par-staging-1 }}\n\
             cache_dir: {cache}\n\
             kubeconfig: {kubeconfig}\n\
             full_compare_interval: 6h\n\
             health_timeout: 10m\n\
             max_prune_fraction: 1.0\n\
             http: {{ address: \"127.0.0.1:{port}\" }}\n\
             webhooks: {{ secret_file: {secret} }}\n\
             applications:\n{applications}",
            cache = work.path().join("cache").display(),
            kubeconfig = cluster.admin_kubeconfig().display(),
            secret = work.path().join("webhook-secret").display(),
        ),
    )?;

    println!("starting berth run");
    let mut command = Command::new(berth);
    command.arg("run").arg("--config").arg(&config);
    let log = work.path().join("agent.log");
    let started = Instant::now();
    let mut agent = ServerProcess::start("berth run", command, &log, Lifetime::TiedToProcess)?;
    let pid = agent.pid().context("the agent's pid")?;
    let api = format!("http://127.0.0.1:{port}/api/releases");
    let http = reqwest::Client::new();
    loop {
        agent.check_running()?;
        if let Ok(status) = fetch_json(&http, &api).await {
            let done = status
                .as_array()
                .map(|all| {
                    all.iter()
                        .filter(|r| {
                            r["last_sync"]["outcome"] == "succeeded"
                                && r["last_sync"]["health"] == "healthy"
                        })
                        .count()
                })
                .unwrap_or(0);
            if done == releases.len() {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!(
                "the fleet was not applied within 30 minutes; see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_applied = started.elapsed();
    let peak_after_start = proc_status_kib(pid, "VmHWM")?;
    println!(
        "all {} releases applied and healthy in {:.1}s",
        releases.len(),
        all_applied.as_secs_f64()
    );

    // Idle: nothing changes; the agent polls every POLL_INTERVAL_SECS.
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("measuring the idle agent ({}s)", options.idle().as_secs());
    let cpu_before = cpu_seconds(pid)?;
    let idle_start = audit.end();
    let refs_before = git.ref_checks();
    tokio::time::sleep(options.idle()).await;
    let idle_requests = requests_of(&audit, idle_start, is_berth)?;
    println!(
        "idle requests of the agent: {}",
        by_resource(&idle_requests)
    );
    let idle_cpu = cpu_seconds(pid)? - cpu_before;
    let idle_ref_checks = git.ref_checks() - refs_before;
    let idle_rss = proc_status_kib(pid, "VmRSS")?;
    let idle_connections = berth_harness::process::connections_to(&[pid], cluster.server_url())?;
    let cycles = options.idle().as_secs() as f64 / POLL_INTERVAL_SECS as f64;

    // Commit → applied, announced by a webhook, then found by polling;
    // then drift.
    let small: Vec<&Release> = releases.iter().filter(|r| !r.large).collect();
    let berth_namespace = |r: &Release| r.name.clone();
    let webhook = Webhook {
        http: &http,
        port,
        git: &git,
    };
    let samples = |from: usize| &small[from.min(small.len())..(from + SAMPLES).min(small.len())];
    let mut pushed = commit_latencies(
        &client,
        &repos,
        samples(0),
        &berth_namespace,
        100,
        Some(&webhook),
    )
    .await?;
    let mut polled = commit_latencies(
        &client,
        &repos,
        samples(SAMPLES),
        &berth_namespace,
        200,
        None,
    )
    .await?;
    let mut drift =
        drift_latencies(&cluster, &client, samples(2 * SAMPLES), &berth_namespace).await?;
    let peak = proc_status_kib(pid, "VmHWM")?;
    agent.stop();

    // A full comparison of the whole fleet: berth sync --once, once the
    // controllers have settled after the drift samples.
    tokio::time::sleep(Duration::from_secs(15)).await;
    println!("one full comparison (berth sync --once)");
    let full_start = audit.end();
    let full_started = Instant::now();
    let output = Command::new(berth)
        .args(["sync", "--once", "--config"])
        .arg(&config)
        .output()?;
    if !output.status.success() {
        bail!(
            "berth sync --once failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let full_took = full_started.elapsed();
    let full_requests = requests_of(&audit, full_start, is_berth)?;

    let berth_figures = Figures {
        all_applied: Some(all_applied),
        peak_until_applied_kib: peak_after_start,
        peak_kib: peak,
        idle_rss_kib: idle_rss,
        idle_cpu_per_minute: idle_cpu * 60.0 / options.idle().as_secs_f64(),
        idle_requests: per_cycle(&by_verb(&idle_requests), cycles),
        idle_connections,
        ref_checks_per_cycle: format!("{:.1}", idle_ref_checks as f64 / cycles),
        full_comparison_requests: per_cycle(&by_verb(&full_requests), 1.0),
        full_comparison: format!("{:.1} s", full_took.as_secs_f64()),
        pushed: percentiles(&mut pushed),
        polled: percentiles(&mut polled),
        drift: percentiles(&mut drift),
    };
    let mut flux_failure = None;
    let flux_figures = if options.flux {
        match run_flux(&cluster, &client, &repos, &git, &releases, options, &audit).await {
            Ok(figures) => Some(figures),
            Err(error) => {
                println!("Flux run failed: {error:#}");
                flux_failure = Some(format!("{error:#}"));
                None
            }
        }
    } else {
        None
    };
    let machine = machine();
    let mut table = String::new();
    table.push_str(&format!(
        "{} releases ({} of {} ConfigMaps, the others podinfo from the shared corpus with its ServiceAccount: 3 objects), {objects} objects, {REPOSITORIES} repositories over git smart HTTP, poll interval {POLL_INTERVAL_SECS}s. {machine}.\n\n",
        releases.len(),
        options.large,
        options.objects_per_large,
    ));
    let flux = flux_figures.as_ref();
    table.push_str(match flux {
        Some(_) => {
            "| measure | berth | Flux (source-controller + helm-controller) |\n|---|---|---|\n"
        }
        None => "| measure | berth |\n|---|---|\n",
    });
    let row = |table: &mut String, measure: &str, value: &dyn Fn(&Figures) -> String| {
        let mut line = format!("| {measure} | {} |", value(&berth_figures));
        if let Some(flux) = flux {
            line.push_str(&format!(" {} |", value(flux)));
        }
        table.push_str(&line);
        table.push('\n');
    };
    let mib = |kib: f64| format!("{:.1} MiB", kib / 1024.0);
    row(
        &mut table,
        "start → every release applied and healthy (Ready)",
        &|f| {
            f.all_applied.map_or("not within 30 min".into(), |d| {
                format!("{:.1} s", d.as_secs_f64())
            })
        },
    );
    row(
        &mut table,
        "peak RSS until applied / over the whole run",
        &|f| format!("{} / {}", mib(f.peak_until_applied_kib), mib(f.peak_kib)),
    );
    row(&mut table, "idle RSS", &|f| mib(f.idle_rss_kib));
    row(&mut table, "CPU seconds per idle minute", &|f| {
        format!("{:.2}", f.idle_cpu_per_minute)
    });
    row(
        &mut table,
        "API requests per idle poll cycle, by verb (the system's own, from the audit log)",
        &|f| f.idle_requests.clone(),
    );
    row(
        &mut table,
        "connections to kube-apiserver while idle",
        &|f| f.idle_connections.to_string(),
    );
    row(&mut table, "git ref checks per idle poll cycle", &|f| {
        f.ref_checks_per_cycle.clone()
    });
    row(
        &mut table,
        "API requests of one full comparison, by verb",
        &|f| f.full_comparison_requests.clone(),
    );
    row(&mut table, "one full comparison of the fleet", &|f| {
        f.full_comparison.clone()
    });
    row(
        &mut table,
        "commit → applied with the webhook, p50 / p99",
        &|f| f.pushed.clone(),
    );
    row(
        &mut table,
        "commit → applied by polling, p50 / p99",
        &|f| f.polled.clone(),
    );
    row(&mut table, "kubectl scale undone, p50 / p99", &|f| {
        f.drift.clone()
    });
    if let Some(failure) = flux_failure {
        table.push_str(&format!(
            "\nFlux could not be measured in this run: {failure}\n"
        ));
    }
    Ok(table)
}

/// podinfo's Deployment: the release name and the chart's.
fn deployment_name(release: &Release) -> String {
    format!("{}-podinfo", release.name)
}

async fn fetch_json(http: &reqwest::Client, url: &str) -> Result<Value> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn push(http: &reqwest::Client, port: u16, url: &str) -> Result<()> {
    let body = serde_json::json!({ "ref": format!("refs/heads/{BRANCH}"), "repository": { "clone_url": url } }).to_string();
    let answer = http
        .post(format!("http://127.0.0.1:{port}/hooks/github"))
        .header("X-GitHub-Event", "push")
        .header(
            "X-Hub-Signature-256",
            signature(WEBHOOK_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await?;
    if answer.status() != reqwest::StatusCode::ACCEPTED {
        bail!("the webhook was answered {}", answer.status());
    }
    Ok(())
}

/// Where the benchmark sends push webhooks.
struct Webhook<'a> {
    http: &'a reqwest::Client,
    port: u16,
    git: &'a GitHttpServer,
}

/// Commit → applied for each of `releases`: a new pod annotation in its
/// chart, committed (and announced by `webhook` when given), until its
/// Deployment (in `namespace(release)`) carries it.
async fn commit_latencies(
    client: &kube::Client,
    repos: &[TestRepo],
    releases: &[&Release],
    namespace: &dyn Fn(&Release) -> String,
    first_revision: usize,
    webhook: Option<&Webhook<'_>>,
) -> Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    for (sample, release) in releases.iter().enumerate() {
        let revision = first_revision + sample;
        let repo = &repos[release.repository];
        if webhook.is_none() {
            // Commits land at every phase of the poll interval, as they do
            // in life (not right after a poll, where the previous sample
            // left off).
            let phase = POLL_INTERVAL_SECS as f64 * sample as f64 / releases.len().max(1) as f64;
            tokio::time::sleep(Duration::from_secs_f64(phase)).await;
        }
        set_revision(repo, release, revision)?;
        repo.commit(&format!("{} revision {revision}", release.name))?;
        let committed = Instant::now();
        if let Some(webhook) = webhook {
            push(webhook.http, webhook.port, &webhook.git.url_for(repo)).await?;
        }
        let deployments = kube::Api::<Deployment>::namespaced(client.clone(), &namespace(release));
        let want = revision.to_string();
        loop {
            let annotation = deployments
                .get_opt(&deployment_name(release))
                .await?
                .and_then(|d| {
                    d.spec?
                        .template
                        .metadata?
                        .annotations?
                        .get("bench/revision")
                        .cloned()
                });
            if annotation.as_deref() == Some(want.as_str()) {
                latencies.push(committed.elapsed());
                break;
            }
            if committed.elapsed() > Duration::from_secs(180) {
                bail!(
                    "{} revision {revision} was not applied within 3 minutes",
                    release.name
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(latencies)
}

/// How long until a `kubectl scale` of each release's Deployment is undone;
/// an entry of [`NOT_UNDONE`] where it was not within that time.
async fn drift_latencies(
    cluster: &TestCluster,
    client: &kube::Client,
    releases: &[&Release],
    namespace: &dyn Fn(&Release) -> String,
) -> Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    for release in releases {
        let namespace = namespace(release);
        let output = Command::new("kubectl")
            .args([
                "scale",
                "-n",
                &namespace,
                &format!("deployment/{}", deployment_name(release)),
                "--replicas=3",
            ])
            .env("KUBECONFIG", cluster.admin_kubeconfig())
            .output()?;
        if !output.status.success() {
            bail!("kubectl scale: {}", String::from_utf8_lossy(&output.stderr));
        }
        let scaled = Instant::now();
        let deployments = kube::Api::<Deployment>::namespaced(client.clone(), &namespace);
        loop {
            let replicas = deployments
                .get(&deployment_name(release))
                .await?
                .spec
                .and_then(|s| s.replicas);
            if replicas == Some(1) {
                latencies.push(scaled.elapsed());
                break;
            }
            if scaled.elapsed() > NOT_UNDONE {
                latencies.push(NOT_UNDONE);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(latencies)
}

/// The requests of the audit log since `start` whose User-Agent `from`
/// accepts, counted by "VERB\tresource" (POST for create, PUT for update; a
/// dry run marked). Each request is counted once, when it is answered: the
/// control plane's own traffic needs no estimate, though it grows with the
/// workloads (at 1,000 releases kube-controller-manager still posts the
/// Deployments' Events well after berth has seen them ready).
fn requests_of(
    audit: &AuditLog,
    start: u64,
    from: fn(&str) -> bool,
) -> Result<BTreeMap<String, f64>> {
    let mut counts = BTreeMap::new();
    for request in audit.requests_since(start)? {
        if request.stage != "ResponseComplete" || !from(&request.user_agent) {
            continue;
        }
        let mut verb = match request.verb.as_str() {
            "create" => "POST".to_string(),
            "update" => "PUT".to_string(),
            other => other.to_uppercase(),
        };
        if request.dry_run {
            verb.push_str(" (dry run)");
        }
        *counts
            .entry(format!("{verb}\t{}", request.resource))
            .or_insert(0.0) += 1.0;
    }
    Ok(counts)
}

/// berth's requests: its User-Agent is `berth/VERSION`.
fn is_berth(user_agent: &str) -> bool {
    user_agent.starts_with("berth/")
}

/// Flux's: client-go names each controller (`source-controller/v0.0.0
/// ...`), and the Helm library inside helm-controller sends Go's default.
/// The control plane (kube-controller-manager, kube-scheduler, kwok) uses
/// the same identity here under names of its own.
fn is_flux(user_agent: &str) -> bool {
    ["source-controller/", "helm-controller/", "Go-http-client/"]
        .iter()
        .any(|name| user_agent.starts_with(name))
}

/// Counts keyed "VERB\tresource" summed by verb.
fn by_verb(counts: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut verbs = BTreeMap::new();
    for (key, n) in counts {
        let verb = key.split('\t').next().unwrap_or(key);
        *verbs.entry(verb.to_string()).or_insert(0.0) += n;
    }
    verbs
}

/// "PATCH events 3, GET configmaps 1": what a window's requests were, for
/// the run's output.
fn by_resource(counts: &BTreeMap<String, f64>) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n >= 1.0)
        .map(|(key, n)| format!("{} {n:.0}", key.replace('\t', " ")))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn per_cycle(counts: &BTreeMap<String, f64>, cycles: f64) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n / cycles >= 0.5)
        .map(|(verb, n)| format!("{verb} {:.0}", n / cycles))
        .collect();
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join(", ")
    }
}

fn percentiles(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "-".into();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    if at(0.5) >= NOT_UNDONE {
        return format!("not undone within {} s", NOT_UNDONE.as_secs());
    }
    format!(
        "{:.2} s / {:.2} s ({} samples)",
        at(0.5).as_secs_f64(),
        at(0.99).as_secs_f64(),
        samples.len()
    )
}

/// Established TCP connections of `pids` to the API server at `server`
/// (`https://127.0.0.1:PORT`), from /proc/net/tcp and the processes' fds.
fn proc_status_kib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} of process {pid}"))
}

fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the name.
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11) + ticks(12)) / hz.max(1.0))
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(String::new(), |kib| {
            format!(", {:.0} GiB", kib / 1024.0 / 1024.0)
        });
    format!(
        "Machine: {cpus} CPUs{memory}; one kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok on the same machine"
    )
}

/// Replaces the fleet section of `path` (from its heading to the next
/// heading of the same level) with `table`.
/// Replaces the section of a fleet of `releases` (one per size, so that
/// runs at 200 and at 1,000 each keep their table).
fn write_section(path: &Path, releases: usize, table: &str) -> Result<()> {
    let heading =
        format!("## Fleet of {releases} releases: `cargo xtask bench fleet --releases {releases}`");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let section = format!("{heading}\n\n{table}\n");
    let new = match text.find(&heading) {
        Some(start) => {
            let after = &text[start + heading.len()..];
            let end = after
                .find("\n## ")
                .map_or(text.len(), |i| start + heading.len() + i + 1);
            format!("{}{section}{}", &text[..start], &text[end..])
        }
        None => format!("{text}\n{section}"),
    };
    std::fs::write(path, new)?;
    Ok(())
}

/// The same fleet deployed by Flux's source-controller and helm-controller
/// (run out of cluster against the same control plane): one GitRepository
/// and one HelmRelease per release, the chart from the same repository and
/// the values berth's release file gives; Flux's default settings.
async fn run_flux(
    cluster: &TestCluster,
    client: &kube::Client,
    repos: &[TestRepo],
    git: &GitHttpServer,
    releases: &[Release],
    options: &FleetOptions,
    audit: &AuditLog,
) -> Result<Figures> {
    let tools = berth_harness::tools::tools_dir();
    let kubectl = |args: &[&str]| -> Result<()> {
        let output = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", cluster.admin_kubeconfig())
            .output()?;
        if !output.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    println!("Flux: installing its CRDs and starting source-controller and helm-controller");
    let crds = tools.join("flux-crds");
    kubectl(&["apply", "--server-side", "-f", &crds.to_string_lossy()])?;
    kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd",
        "--all",
    ])?;
    kubectl(&["create", "namespace", "flux-system"])?;
    kubectl(&["create", "namespace", "flux-fleet"])?;
    let work = tempfile::Builder::new()
        .prefix("berth-fleet-flux-")
        .tempdir()?;
    let bin = tools.join("bin");
    let port = |_: &str| free_port();
    let storage = port("storage")?;
    std::fs::create_dir_all(work.path().join("storage"))?;
    // Both run out of cluster with KUBECONFIG, their own metrics and health
    // addresses, no leader election, and only errors in their logs.
    let start = |name: &str, extra: Vec<String>| -> Result<ServerProcess> {
        let mut command = Command::new(bin.join(name));
        command
            .args(extra)
            .args([
                format!("--metrics-addr=127.0.0.1:{}", port("metrics")?),
                format!("--health-addr=127.0.0.1:{}", port("health")?),
                "--enable-leader-election=false".into(),
                "--log-level=error".into(),
            ])
            .env("KUBECONFIG", cluster.admin_kubeconfig())
            .env("RUNTIME_NAMESPACE", "flux-system");
        ServerProcess::start(
            name,
            command,
            &work.path().join(format!("{name}.log")),
            Lifetime::TiedToProcess,
        )
    };
    let mut source = start(
        "source-controller",
        vec![
            format!("--storage-path={}", work.path().join("storage").display()),
            format!("--storage-addr=127.0.0.1:{storage}"),
            format!("--storage-adv-addr=127.0.0.1:{storage}"),
        ],
    )?;
    let mut helm = start("helm-controller", Vec::new())?;
    let pids = [
        source.pid().context("source-controller's pid")?,
        helm.pid().context("helm-controller's pid")?,
    ];
    tokio::time::sleep(Duration::from_secs(3)).await;
    source.check_running()?;
    helm.check_running()?;

    let namespace = |r: &Release| format!("flux-{}", r.name);
    let mut manifests = String::new();
    for release in releases {
        manifests.push_str(&format!(
            "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{ name: {name}, namespace: flux-fleet }}\nspec:\n  url: {url}\n  ref: {{ branch: {BRANCH} }}\n  interval: {POLL_INTERVAL_SECS}s\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {{ name: {name}, namespace: flux-fleet }}\nspec:\n  interval: 10m\n  releaseName: {name}\n  targetNamespace: {target}\n  install: {{ createNamespace: true }}\n  chart:\n    spec:\n      chart: apps/{name}/chart\n      reconcileStrategy: Revision\n      sourceRef: {{ kind: GitRepository, name: {name} }}\n  values: {values}\n",
            name = release.name,
            url = git.url_for(&repos[release.repository]),
            target = namespace(release),
            values = helm_values(release, options),
        ));
    }
    let file = work.path().join("fleet.yaml");
    std::fs::write(&file, manifests)?;
    let started = Instant::now();
    kubectl(&["apply", "--server-side", "-f", &file.to_string_lossy()])?;
    let resource = kube::core::ApiResource {
        group: "helm.toolkit.fluxcd.io".into(),
        version: "v2".into(),
        api_version: "helm.toolkit.fluxcd.io/v2".into(),
        kind: "HelmRelease".into(),
        plural: "helmreleases".into(),
    };
    let helm_releases = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        "flux-fleet",
        &resource,
    );
    let mut all_applied = None;
    while started.elapsed() < Duration::from_secs(1800) {
        source.check_running()?;
        helm.check_running()?;
        let list = helm_releases.list(&Default::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|hr| {
                hr.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        if ready == releases.len() {
            all_applied = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let peak_until_applied: f64 = pids
        .iter()
        .map(|p| proc_status_kib(*p, "VmHWM").unwrap_or(0.0))
        .sum();
    match all_applied {
        Some(took) => println!(
            "Flux: all {} HelmReleases Ready in {:.1}s",
            releases.len(),
            took.as_secs_f64()
        ),
        None => println!("Flux: not every HelmRelease was Ready within 30 minutes"),
    }

    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "Flux: measuring the idle controllers ({}s)",
        options.idle().as_secs()
    );
    let cpu = || -> f64 { pids.iter().map(|p| cpu_seconds(*p).unwrap_or(0.0)).sum() };
    let cpu_before = cpu();
    let idle_start = audit.end();
    let refs_before = git.ref_checks();
    tokio::time::sleep(options.idle()).await;
    let idle_requests = requests_of(audit, idle_start, is_flux)?;
    println!(
        "Flux: idle requests of the controllers: {}",
        by_resource(&idle_requests)
    );
    let idle_cpu = cpu() - cpu_before;
    let idle_ref_checks = git.ref_checks() - refs_before;
    let idle_rss: f64 = pids
        .iter()
        .map(|p| proc_status_kib(*p, "VmRSS").unwrap_or(0.0))
        .sum();
    let idle_connections = berth_harness::process::connections_to(&pids, cluster.server_url())?;
    let cycles = options.idle().as_secs() as f64 / POLL_INTERVAL_SECS as f64;

    let small: Vec<&Release> = releases.iter().filter(|r| !r.large).collect();
    let samples = |from: usize| &small[from.min(small.len())..(from + SAMPLES).min(small.len())];
    let mut polled =
        commit_latencies(client, repos, samples(SAMPLES), &namespace, 300, None).await?;
    let mut drift = drift_latencies(cluster, client, samples(2 * SAMPLES), &namespace).await?;
    let peak: f64 = pids
        .iter()
        .map(|p| proc_status_kib(*p, "VmHWM").unwrap_or(0.0))
        .sum();
    source.stop();
    helm.stop();
    Ok(Figures {
        all_applied,
        peak_until_applied_kib: peak_until_applied,
        peak_kib: peak,
        idle_rss_kib: idle_rss,
        idle_cpu_per_minute: idle_cpu * 60.0 / options.idle().as_secs_f64(),
        idle_requests: per_cycle(&by_verb(&idle_requests), cycles),
        idle_connections,
        ref_checks_per_cycle: format!("{:.1}", idle_ref_checks as f64 / cycles),
        full_comparison_requests: "- (no such operation)".into(),
        full_comparison: "- (drift detection is off by default)".into(),
        pushed: "- (needs notification-controller's Receiver)".into(),
        polled: percentiles(&mut polled),
        drift: percentiles(&mut drift),
    })
}
