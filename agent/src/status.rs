//! The status page (`/`) and its data (`/api/releases`): every release the
//! agent follows, what the cluster runs, how the last sync went, the
//! previous deploys and the release's pods. Read-only; Secrets are never
//! read, so their contents cannot show.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, ListParams};
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;

use crate::context::ClusterContext;
use crate::daemon::{AgentState, ApplicationStatus};
use crate::health::Health;
use crate::inventory::{HistoryEntry, InventoryStore, Outcome};
use crate::notice::{commit_url, without_credentials};
use crate::source::CommitInfo;

/// Deploys shown per release.
const HISTORY_SHOWN: usize = 10;
/// How long reading one release's records and pods may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One followed application and its release.
#[derive(Debug, Serialize)]
pub struct ReleaseStatus {
    pub application: String,
    /// Known once the release file has been read.
    pub release: Option<String>,
    /// The repository URL without credentials.
    pub repository: String,
    pub branch: String,
    /// What the cluster runs: the newest deploy that applied.
    pub current: Option<Deploy>,
    /// The last sync this agent made (since it started).
    pub last_sync: Option<LastSync>,
    pub last_poll: Option<String>,
    /// Newest first.
    pub history: Vec<Deploy>,
    pub pods: Vec<PodStatus>,
    /// What could not be read (the page shows the rest).
    pub problems: Vec<String>,
}

/// One deploy from the release's history.
#[derive(Debug, Serialize)]
pub struct Deploy {
    pub commit: String,
    pub subject: String,
    pub author: String,
    pub commit_url: Option<String>,
    pub started_at: String,
    pub outcome: Outcome,
    pub health: Option<Health>,
    pub health_reason: Option<String>,
    pub error: Option<String>,
}

/// The agent's last sync of the application.
#[derive(Debug, Serialize)]
pub struct LastSync {
    pub at: Option<String>,
    pub commit: Option<CommitInfo>,
    pub outcome: Outcome,
    pub health: Option<Health>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// One pod of the release's workloads.
#[derive(Debug, Serialize)]
pub struct PodStatus {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    /// Ready containers of all: "1/1".
    pub ready: String,
    pub restarts: i32,
    /// Why a container waits or stopped (ImagePullBackOff, CrashLoopBackOff, ...).
    pub reason: Option<String>,
    pub node: Option<String>,
    pub created: Option<String>,
}

/// Everything the page shows, for every followed application.
pub async fn gather(state: &AgentState) -> Vec<ReleaseStatus> {
    let config = state.config();
    let reads = state
        .applications()
        .into_iter()
        .map(|status| release_status(&state.client, &config.state_namespace, status));
    futures::future::join_all(reads).await
}

async fn release_status(
    client: &Client,
    state_namespace: &str,
    status: ApplicationStatus,
) -> ReleaseStatus {
    let application = &status.application;
    let report = status.last_report.as_ref();
    let release = report.and_then(|r| r.release.clone());
    let mut out = ReleaseStatus {
        application: application.name.clone(),
        release: release.clone(),
        repository: without_credentials(&application.url),
        branch: application.branch.clone(),
        current: None,
        last_sync: report.map(|r| LastSync {
            at: status.last_sync.map(|t| t.to_string()),
            commit: r.commit.clone(),
            outcome: r.outcome,
            health: r.health.as_ref().map(|v| v.health),
            error: r.error.clone(),
            duration_ms: r.duration_ms,
        }),
        last_poll: status.last_poll.map(|t| t.to_string()),
        history: Vec::new(),
        pods: Vec::new(),
        problems: Vec::new(),
    };
    let Some(release) = release else {
        return out;
    };
    let store = InventoryStore::new(client.clone(), state_namespace, &release, usize::MAX);
    let read = async {
        let history = store.history().await.map_err(|e| e.to_string())?;
        let inventory = store.load().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((history, inventory))
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok((history, inventory))) => {
            let deploy = |entry: &HistoryEntry| Deploy {
                commit: entry.commit.clone(),
                subject: entry.subject.clone(),
                author: entry.author.clone(),
                commit_url: commit_url(&application.url, &entry.commit),
                started_at: entry.started_at.clone(),
                outcome: entry.outcome,
                health: entry.health,
                health_reason: entry.health_reason.clone(),
                error: entry.error.clone(),
            };
            out.current = history
                .iter()
                .find(|e| matches!(e.outcome, Outcome::Succeeded | Outcome::RolledBack))
                .map(deploy);
            out.history = history.iter().take(HISTORY_SHOWN).map(deploy).collect();
            let workloads = inventory.objects.iter().map(|entry| &entry.object);
            match tokio::time::timeout(READ_TIMEOUT, pods(client, workloads)).await {
                Ok(Ok(pods)) => out.pods = pods,
                Ok(Err(error)) => out.problems.push(format!("pods: {error}")),
                Err(_) => out
                    .problems
                    .push("pods: the API server did not answer in time".into()),
            }
        }
        Ok(Err(error)) => out.problems.push(error),
        Err(_) => out
            .problems
            .push("history: the API server did not answer in time".into()),
    }
    out
}

/// The pods of the release's Deployments, StatefulSets, DaemonSets and
/// Jobs, found through each workload's label selector.
async fn pods(
    client: &Client,
    objects: impl Iterator<Item = &crate::objects::ObjectRef>,
) -> Result<Vec<PodStatus>, kube::Error> {
    let mut found: Vec<PodStatus> = Vec::new();
    for object in objects {
        let Some(namespace) = object.namespace.as_deref() else {
            continue;
        };
        let selector = match object.kind.as_str() {
            "Deployment" => Api::<Deployment>::namespaced(client.clone(), namespace)
                .get_opt(&object.name)
                .await?
                .and_then(|o| o.spec.map(|s| s.selector)),
            "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .get_opt(&object.name)
                .await?
                .and_then(|o| o.spec.map(|s| s.selector)),
            "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), namespace)
                .get_opt(&object.name)
                .await?
                .and_then(|o| o.spec.map(|s| s.selector)),
            "Job" => Api::<Job>::namespaced(client.clone(), namespace)
                .get_opt(&object.name)
                .await?
                .and_then(|o| o.spec.and_then(|s| s.selector)),
            _ => None,
        };
        let Some(selector) = selector.as_ref().and_then(label_selector) else {
            continue;
        };
        let list = Api::<Pod>::namespaced(client.clone(), namespace)
            .list(&ListParams::default().labels(&selector))
            .await?;
        for pod in list.items {
            let status = pod_status(namespace, pod);
            if !found
                .iter()
                .any(|p| p.namespace == status.namespace && p.name == status.name)
            {
                found.push(status);
            }
        }
    }
    found.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(found)
}

/// `matchLabels` as a selector string (`matchExpressions` are not used by
/// workload selectors in practice and are left out).
fn label_selector(selector: &LabelSelector) -> Option<String> {
    let labels = selector.match_labels.as_ref()?;
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn pod_status(namespace: &str, pod: Pod) -> PodStatus {
    let status = pod.status.unwrap_or_default();
    let containers = status.container_statuses.unwrap_or_default();
    let ready = containers.iter().filter(|c| c.ready).count();
    let total = pod
        .spec
        .as_ref()
        .map(|s| s.containers.len())
        .unwrap_or(containers.len());
    let reason = containers.iter().find_map(|c| {
        let state = c.state.as_ref()?;
        state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .or_else(|| state.terminated.as_ref().and_then(|t| t.reason.clone()))
    });
    PodStatus {
        namespace: namespace.to_string(),
        name: pod.metadata.name.unwrap_or_default(),
        phase: status.phase.unwrap_or_else(|| "Unknown".into()),
        ready: format!("{ready}/{total}"),
        restarts: containers.iter().map(|c| c.restart_count).sum(),
        reason,
        node: pod.spec.and_then(|s| s.node_name),
        created: pod.metadata.creation_timestamp.map(|t| t.0.to_string()),
    }
}

/// An RFC 3339 time as people read it: "2026-12-01 11:47:17 UTC".
fn when(time: &str) -> String {
    time.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| time.to_string())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The CSS class for a health or outcome badge.
fn tone(word: &str) -> &'static str {
    match word {
        "healthy" | "succeeded" | "Running" | "Succeeded" => "good",
        "progressing" | "deferred" | "skipped" | "Pending" => "wait",
        _ => "bad",
    }
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1c2330}
header{background:#14213d;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px} header p{margin:2px 0 0;opacity:.8}
main{padding:16px 24px;display:grid;gap:16px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 18px}
h2{margin:0 0 4px;font-size:17px} h3{margin:12px 0 4px;font-size:14px;color:#4a5568}
.meta{color:#4a5568;margin:0}
table{border-collapse:collapse;width:100%;margin-top:4px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #edf0f3;vertical-align:top}
th{font-weight:600;color:#4a5568}
code{font:12px ui-monospace,monospace}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600}
.good{background:#d7f5df;color:#17612d}.wait{background:#fdf1c7;color:#7a5a00}.bad{background:#fde0dd;color:#9b1c13}
.error{color:#9b1c13;white-space:pre-wrap;margin:4px 0}
";

fn badge(word: &str) -> Markup {
    html! { span class={"badge " (tone(word))} { (word) } }
}

fn commit_link(sha: &str, url: Option<&str>) -> Markup {
    html! {
        @match url {
            Some(url) => a href=(url) { code { (short(sha)) } },
            None => code { (short(sha)) },
        }
    }
}

/// The status page. maud escapes every value, so commit subjects and error
/// texts cannot inject markup.
pub fn page(context: &ClusterContext, releases: &[ReleaseStatus]) -> String {
    let title = format!("berth on {}", context.cluster);
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { (title) }
                    p { "cloud " (context.cloud) " · env " (context.env) " · region " (context.region)
                        " · " (releases.len()) " applications · " (jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")) }
                }
                main {
                    @for release in releases { (release_section(release)) }
                }
            }
        }
    };
    markup.into_string()
}

fn release_section(status: &ReleaseStatus) -> Markup {
    let name = status.release.as_deref().unwrap_or(&status.application);
    html! {
        section id={"release-" (name)} data-release=(name) {
            h2 {
                (name) " "
                @if let Some(current) = &status.current {
                    @if let Some(health) = current.health { (badge(&health.to_string())) }
                } @else {
                    (badge("not deployed"))
                }
            }
            p.meta { "application " (status.application) " · " code { (status.repository) } " · branch " code { (status.branch) } }
            @if let Some(current) = &status.current {
                p.meta {
                    "runs " (commit_link(&current.commit, current.commit_url.as_deref()))
                    " “" (current.subject) "” by " (current.author) " · deployed " (when(&current.started_at))
                }
                @if let Some(reason) = &current.health_reason { p.error { (reason) } }
            }
            @if let Some(last) = &status.last_sync {
                p.meta {
                    "last sync " (badge(&last.outcome.to_string()))
                    @if let Some(health) = last.health { " " (badge(&health.to_string())) }
                    @if let Some(at) = &last.at { " at " (when(at)) }
                    @if let Some(commit) = &last.commit { " of " code { (commit.short_sha()) } }
                    " in " (last.duration_ms) " ms"
                }
                @if let Some(error) = &last.error { p.error { (error) } }
            } @else {
                p.meta { "not synced yet by this agent" }
            }
            @for problem in &status.problems { p.error { (problem) } }
            h3 { "Pods" }
            @if status.pods.is_empty() {
                p.meta { "none" }
            } @else {
                table.pods {
                    tr { th { "pod" } th { "phase" } th { "ready" } th { "restarts" } th { "reason" } th { "node" } }
                    @for pod in &status.pods {
                        tr {
                            td { code { (pod.namespace) "/" (pod.name) } }
                            td { (badge(&pod.phase)) }
                            td { (pod.ready) }
                            td { (pod.restarts) }
                            td { (pod.reason.as_deref().unwrap_or("")) }
                            td { (pod.node.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            h3 { "Deploys" }
            @if status.history.is_empty() {
                p.meta { "none recorded" }
            } @else {
                table.history {
                    tr { th { "commit" } th { "subject" } th { "author" } th { "started" } th { "outcome" } th { "health" } }
                    @for deploy in &status.history {
                        tr {
                            td { (commit_link(&deploy.commit, deploy.commit_url.as_deref())) }
                            td { (deploy.subject) }
                            td { (deploy.author) }
                            td { (when(&deploy.started_at)) }
                            td { (badge(&deploy.outcome.to_string())) }
                            td { @if let Some(health) = deploy.health { (badge(&health.to_string())) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_what_commits_and_errors_say() {
        let release = ReleaseStatus {
            application: "shop".into(),
            release: Some("shop".into()),
            repository: "https://github.com/acme/shop.git".into(),
            branch: "main".into(),
            current: Some(Deploy {
                commit: "0123456789abcdef".into(),
                subject: "<script>alert(1)</script>".into(),
                author: "Ada & Bob".into(),
                commit_url: None,
                started_at: "2026-12-01T10:00:00Z".into(),
                outcome: Outcome::Succeeded,
                health: Some(Health::Healthy),
                health_reason: None,
                error: None,
            }),
            last_sync: None,
            last_poll: None,
            history: Vec::new(),
            pods: Vec::new(),
            problems: Vec::new(),
        };
        let context = ClusterContext {
            cloud: "gcp".into(),
            env: "prod".into(),
            region: "eu".into(),
            cluster: "c1".into(),
        };
        let html = page(&context, &[release]);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("Ada &amp; Bob"));
        assert!(html.contains("0123456789ab"));
    }
}
