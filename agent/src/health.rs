//! Whether applied objects work: one rule per kind (docs/health.md), and
//! the wait after apply that follows a release's objects (through the
//! agent's shared watches) until every one is healthy, one turns degraded,
//! or the release's health timeout passes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, ResourceExt as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::debug;

use crate::drift::DriftWatches;
use crate::objects::ObjectRef;

/// What a release (or one object) amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Applied; not (yet) working as asked.
    Progressing,
    Healthy,
    /// Failed, or not healthy within the health timeout.
    Degraded,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Progressing => "progressing",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
        })
    }
}

/// One object's health and, unless healthy, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub health: Health,
    pub reason: String,
}

impl Assessment {
    fn healthy() -> Assessment {
        Assessment {
            health: Health::Healthy,
            reason: String::new(),
        }
    }

    fn progressing(reason: impl Into<String>) -> Assessment {
        Assessment {
            health: Health::Progressing,
            reason: reason.into(),
        }
    }

    fn degraded(reason: impl Into<String>) -> Assessment {
        Assessment {
            health: Health::Degraded,
            reason: reason.into(),
        }
    }
}

/// Waiting reasons of a container that mean it will not start by itself.
const FAILING_WAIT_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

fn int(value: &Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer).and_then(Value::as_i64)
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The condition of `type_` in `status.conditions`.
fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn condition_is(object: &Value, type_: &str, status: &str) -> bool {
    condition(object, type_).is_some_and(|c| c["status"] == status)
}

/// "reason: message" of a condition, whichever parts it has.
fn explained(condition: &Value) -> String {
    let (reason, message) = (text(condition, "/reason"), text(condition, "/message"));
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        (true, false) => message.to_string(),
        (true, true) => format!(
            "{} is {}",
            text(condition, "/type"),
            text(condition, "/status")
        ),
    }
}

/// The health of one live object, from its status alone.
pub fn assess(kind: &str, object: &Value) -> Assessment {
    if let (Some(generation), Some(observed)) = (
        int(object, "/metadata/generation"),
        int(object, "/status/observedGeneration"),
    ) && observed < generation
    {
        return Assessment::progressing(format!(
            "its controller has not seen generation {generation} yet"
        ));
    }
    match kind {
        "Deployment" => deployment(object),
        "StatefulSet" => stateful_set(object),
        "DaemonSet" => daemon_set(object),
        "ReplicaSet" | "ReplicationController" => replica_set(object),
        "Pod" => pod(object),
        "Job" => job(object),
        "PersistentVolumeClaim" => match text(object, "/status/phase") {
            "Bound" => Assessment::healthy(),
            "Lost" => Assessment::degraded("its volume is lost"),
            phase => Assessment::progressing(format!("{} (not bound)", or_unknown(phase))),
        },
        "CustomResourceDefinition" => {
            if condition_is(object, "Established", "True") {
                Assessment::healthy()
            } else if let Some(c) =
                condition(object, "NamesAccepted").filter(|c| c["status"] == "False")
            {
                Assessment::degraded(explained(c))
            } else {
                Assessment::progressing("not established")
            }
        }
        "APIService" => match condition(object, "Available") {
            Some(c) if c["status"] == "True" => Assessment::healthy(),
            Some(c) => Assessment::progressing(explained(c)),
            None => Assessment::progressing("not available"),
        },
        _ => generic(object),
    }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "unknown" } else { text }
}

/// kstatus's and Argo CD's rules for any other object: `Stalled`, then
/// `Ready` (or `Available`); no conditions and no observed generation
/// behind means nothing to wait for.
fn generic(object: &Value) -> Assessment {
    if let Some(c) = condition(object, "Stalled").filter(|c| c["status"] == "True") {
        return Assessment::degraded(explained(c));
    }
    for type_ in ["Ready", "Available"] {
        match condition(object, type_) {
            Some(c) if c["status"] == "True" => return Assessment::healthy(),
            Some(c) => return Assessment::progressing(explained(c)),
            None => {}
        }
    }
    if let Some(c) = condition(object, "Reconciling").filter(|c| c["status"] == "True") {
        return Assessment::progressing(explained(c));
    }
    Assessment::healthy()
}

fn deployment(object: &Value) -> Assessment {
    if let Some(c) =
        condition(object, "Progressing").filter(|c| c["reason"] == "ProgressDeadlineExceeded")
    {
        return Assessment::degraded(explained(c));
    }
    if object.pointer("/spec/paused") == Some(&Value::Bool(true)) {
        return Assessment::healthy();
    }
    let wanted = int(object, "/spec/replicas").unwrap_or(1);
    let updated = int(object, "/status/updatedReplicas").unwrap_or(0);
    let total = int(object, "/status/replicas").unwrap_or(0);
    let available = int(object, "/status/availableReplicas").unwrap_or(0);
    if updated < wanted {
        Assessment::progressing(format!("{updated} of {wanted} replicas updated"))
    } else if total > updated {
        Assessment::progressing(format!("{} old replicas still running", total - updated))
    } else if available < updated {
        Assessment::progressing(format!(
            "{available} of {updated} updated replicas available"
        ))
    } else {
        Assessment::healthy()
    }
}

fn stateful_set(object: &Value) -> Assessment {
    let wanted = int(object, "/spec/replicas").unwrap_or(1);
    let ready = int(object, "/status/readyReplicas").unwrap_or(0);
    if ready < wanted {
        return Assessment::progressing(format!("{ready} of {wanted} replicas ready"));
    }
    if text(object, "/spec/updateStrategy/type") == "OnDelete" {
        return Assessment::healthy();
    }
    let partition = int(object, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
    let updated = int(object, "/status/updatedReplicas").unwrap_or(0);
    if updated < wanted - partition {
        return Assessment::progressing(format!(
            "{updated} of {} replicas updated",
            wanted - partition
        ));
    }
    let (current, update) = (
        text(object, "/status/currentRevision"),
        text(object, "/status/updateRevision"),
    );
    if partition == 0 && !update.is_empty() && current != update {
        return Assessment::progressing(format!("rolling out revision {update}"));
    }
    Assessment::healthy()
}

fn daemon_set(object: &Value) -> Assessment {
    let desired = int(object, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(object, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(object, "/status/numberAvailable").unwrap_or(0);
    if text(object, "/spec/updateStrategy/type") != "OnDelete" && updated < desired {
        Assessment::progressing(format!("{updated} of {desired} pods updated"))
    } else if available < desired {
        Assessment::progressing(format!("{available} of {desired} pods available"))
    } else {
        Assessment::healthy()
    }
}

fn replica_set(object: &Value) -> Assessment {
    if let Some(c) = condition(object, "ReplicaFailure").filter(|c| c["status"] == "True") {
        return Assessment::degraded(explained(c));
    }
    let wanted = int(object, "/spec/replicas").unwrap_or(1);
    let available = int(object, "/status/availableReplicas").unwrap_or(0);
    if available < wanted {
        Assessment::progressing(format!("{available} of {wanted} replicas available"))
    } else {
        Assessment::healthy()
    }
}

fn job(object: &Value) -> Assessment {
    if condition_is(object, "Complete", "True") {
        return Assessment::healthy();
    }
    if let Some(c) = condition(object, "Failed").filter(|c| c["status"] == "True") {
        return Assessment::degraded(explained(c));
    }
    Assessment::progressing(format!(
        "{} running, {} succeeded, {} failed",
        int(object, "/status/active").unwrap_or(0),
        int(object, "/status/succeeded").unwrap_or(0),
        int(object, "/status/failed").unwrap_or(0)
    ))
}

/// A pod: done when it succeeded, failed when it failed, else ready or not;
/// a container that cannot start says why.
fn pod(object: &Value) -> Assessment {
    match text(object, "/status/phase") {
        "Succeeded" => return Assessment::healthy(),
        "Failed" => {
            let why = container_problem(object)
                .or_else(|| {
                    let reason = text(object, "/status/reason");
                    (!reason.is_empty()).then(|| reason.to_string())
                })
                .unwrap_or_else(|| "failed".to_string());
            return Assessment::degraded(why);
        }
        _ => {}
    }
    if let Some(problem) = container_problem(object) {
        return Assessment::progressing(problem);
    }
    if condition_is(object, "Ready", "True") {
        Assessment::healthy()
    } else {
        Assessment::progressing("not ready")
    }
}

/// The first container that is stuck or ended badly: "container web:
/// ImagePullBackOff: Back-off pulling image ...".
fn container_problem(pod: &Value) -> Option<String> {
    let statuses = ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten();
    for status in statuses {
        let name = text(status, "/name");
        let waiting = text(status, "/state/waiting/reason");
        if FAILING_WAIT_REASONS.contains(&waiting) {
            let message = text(status, "/state/waiting/message");
            return Some(if message.is_empty() {
                format!("container {name}: {waiting}")
            } else {
                format!("container {name}: {waiting}: {message}")
            });
        }
        if let Some(code) = int(status, "/state/terminated/exitCode").filter(|c| *c != 0) {
            let reason = text(status, "/state/terminated/reason");
            return Some(format!(
                "container {name} exited with code {code} ({})",
                or_unknown(reason)
            ));
        }
    }
    None
}

/// Kinds whose objects carry nothing to wait for: applied is healthy, and
/// they are not watched.
const WITHOUT_HEALTH: &[&str] = &[
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Service",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "Namespace",
    "LimitRange",
    "ResourceQuota",
    "PriorityClass",
    "StorageClass",
    "Ingress",
    "IngressClass",
    "HorizontalPodAutoscaler",
    "CronJob",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// One applied object to wait for.
#[derive(Clone, Debug)]
pub struct Tracked {
    pub object: ObjectRef,
    pub resource: Arc<ApiResource>,
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub health: Health,
    /// Why not healthy: "Deployment demo/web: container web: ImagePullBackOff: ...".
    pub reason: String,
}

impl Verdict {
    fn healthy() -> Verdict {
        Verdict {
            health: Health::Healthy,
            reason: String::new(),
        }
    }
}

/// How often a waiting release's unhealthy objects are read again though
/// no watch said they changed: a safety net for a missed event, and the
/// pace for kinds berth may not watch across the cluster.
const RECHECK: Duration = Duration::from_secs(30);
const RECHECK_UNWATCHED: Duration = Duration::from_secs(2);

/// Waits until every one of `objects` (applied by `release`) is healthy
/// (healthy), one is degraded (degraded, at once), or `timeout` passes
/// (degraded, with why the first unhealthy object is not healthy, its pods'
/// reasons included).
///
/// The wait opens no watch of its own: the agent's shared watches (one per
/// kind across the cluster, [`DriftWatches`]) say which of the release's
/// objects changed, and only those are read again.
pub async fn wait(
    client: &Client,
    watches: &Arc<DriftWatches>,
    release: &str,
    objects: &[Tracked],
    timeout: Duration,
) -> Verdict {
    let watched: Vec<&Tracked> = objects
        .iter()
        .filter(|t| !WITHOUT_HEALTH.contains(&t.object.kind.as_str()))
        .collect();
    if watched.is_empty() {
        return Verdict::healthy();
    }
    let owned: Vec<Tracked> = watched.iter().map(|t| (*t).clone()).collect();
    // Subscribed before the first read, so that no change between the read
    // and the wait is missed.
    let subscription = watches.changes(release, &owned);
    let recheck = if subscription.all_watched() {
        RECHECK
    } else {
        RECHECK_UNWATCHED
    };
    let mut live: HashMap<ObjectRef, Value> = HashMap::new();
    let mut stale: Vec<&Tracked> = watched.clone();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        for tracked in stale.drain(..) {
            match read(client, tracked).await {
                Ok(Some(object)) => {
                    live.insert(tracked.object.clone(), what_health_reads(object));
                }
                Ok(None) => {
                    live.remove(&tracked.object);
                }
                // Read again at the next change or recheck.
                Err(error) => debug!(object = %tracked.object, %error, "reading for health failed"),
            }
        }
        match first_unhealthy(&watched, &live) {
            None => return Verdict::healthy(),
            Some((object, assessment)) if assessment.health == Health::Degraded => {
                return Verdict {
                    health: Health::Degraded,
                    reason: explain(client, object, &assessment, &live).await,
                };
            }
            Some(_) => {}
        }
        tokio::select! {
            changed = subscription.changes().next() => {
                stale = watched.iter().copied().filter(|t| changed.contains(&t.object)).collect();
            }
            _ = tokio::time::sleep(recheck) => {
                stale = watched
                    .iter()
                    .copied()
                    .filter(|t| live.get(&t.object).is_none_or(|v| assess(&t.object.kind, v).health != Health::Healthy))
                    .collect();
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // Timed out: say why, down to the pods.
    let Some((object, assessment)) = first_unhealthy(&watched, &live) else {
        return Verdict::healthy();
    };
    let reason = explain(client, object, &assessment, &live).await;
    Verdict {
        health: Health::Degraded,
        reason: format!(
            "not healthy within {}: {reason}",
            humantime::format_duration(timeout)
        ),
    }
}

/// One object as it is now; `None` when it does not exist.
async fn read(client: &Client, tracked: &Tracked) -> Result<Option<DynamicObject>, kube::Error> {
    let api: Api<DynamicObject> = match &tracked.object.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &*tracked.resource),
        None => Api::all_with(client.clone(), &*tracked.resource),
    };
    api.get_opt(&tracked.object.name).await
}

/// "Kind namespace/name: why", with the first of its pods that says why it
/// does not run, for workloads.
async fn explain(
    client: &Client,
    object: &Tracked,
    assessment: &Assessment,
    live: &HashMap<ObjectRef, Value>,
) -> String {
    let pods = match live.get(&object.object) {
        Some(value) => pod_problem(client, &object.object, value).await,
        None => None,
    };
    match pods {
        Some(pods) => format!("{}: {}; {pods}", object.object, assessment.reason),
        None => format!("{}: {}", object.object, assessment.reason),
    }
}

/// Of a watched object, what the rules read: its generation, spec and
/// status. The pod template and the managed fields (most of a workload's
/// bytes) are dropped, as a fleet's releases wait for health at once.
fn what_health_reads(object: DynamicObject) -> Value {
    let mut kept = object.data;
    if let Value::Object(fields) = &mut kept {
        if let Some(Value::Object(spec)) = fields.get_mut("spec") {
            spec.remove("template");
            spec.remove("volumeClaimTemplates");
        }
        fields.insert(
            "metadata".into(),
            serde_json::json!({ "generation": object.metadata.generation }),
        );
    }
    kept
}

/// The release so far: the first degraded object, else the first one still
/// progressing; `None` when every object is healthy.
fn first_unhealthy<'a>(
    watched: &[&'a Tracked],
    live: &HashMap<ObjectRef, Value>,
) -> Option<(&'a Tracked, Assessment)> {
    let mut progressing = None;
    for t in watched {
        let assessment = match live.get(&t.object) {
            Some(value) => assess(&t.object.kind, value),
            None => Assessment::progressing("not found"),
        };
        match assessment.health {
            Health::Degraded => return Some((*t, assessment)),
            Health::Progressing => {
                progressing.get_or_insert((*t, assessment));
            }
            Health::Healthy => {}
        }
    }
    progressing
}

/// For a workload, the first of its pods that says why it does not run:
/// "pod demo/web-5d9c-x7z: container web: ImagePullBackOff: ...".
async fn pod_problem(client: &Client, object: &ObjectRef, live: &Value) -> Option<String> {
    let namespace = object.namespace.as_deref()?;
    let labels = live.pointer("/spec/selector/matchLabels")?.as_object()?;
    let selector = labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .ok()?;
    list.items.iter().find_map(|p| {
        let value = serde_json::to_value(p).ok()?;
        let assessment = pod(&value);
        (assessment.health != Health::Healthy)
            .then(|| format!("pod {namespace}/{}: {}", p.name_any(), assessment.reason))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn health(kind: &str, object: Value) -> (Health, String) {
        let a = assess(kind, &object);
        (a.health, a.reason)
    }

    #[test]
    fn a_deployment_is_healthy_when_every_replica_is_updated_and_available() {
        let rolled = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(health("Deployment", rolled).0, Health::Healthy);
        let unseen = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(health("Deployment", unseen).0, Health::Progressing);
        let surge = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(
            health("Deployment", surge),
            (Health::Progressing, "1 old replicas still running".into())
        );
        let stuck = json!({"spec": {"replicas": 1}, "status": {"conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-1\" has timed out progressing."}]}});
        assert_eq!(
            health("Deployment", stuck),
            (
                Health::Degraded,
                "ProgressDeadlineExceeded: ReplicaSet \"web-1\" has timed out progressing.".into()
            )
        );
    }

    #[test]
    fn a_watched_workload_keeps_what_the_rules_read_and_not_its_template() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "generation": 2,
                "managedFields": [{"manager": "berth", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        }))
        .unwrap();
        let whole = serde_json::to_value(&object).unwrap();
        let kept = what_health_reads(object);
        assert_eq!(kept.pointer("/spec/template"), None);
        assert_eq!(kept.pointer("/metadata/managedFields"), None);
        assert_eq!(
            kept["spec"]["selector"],
            json!({"matchLabels": {"app": "web"}})
        );
        assert_eq!(assess("Deployment", &kept), assess("Deployment", &whole));
        assert_eq!(assess("Deployment", &kept).health, Health::Healthy);
    }

    #[test]
    fn pods_say_why_their_containers_do_not_run() {
        let pulling = json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "web",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}});
        assert_eq!(
            health("Pod", pulling),
            (
                Health::Progressing,
                "container web: ImagePullBackOff: Back-off pulling image \"x\"".into()
            )
        );
        let failed = json!({"status": {"phase": "Failed", "containerStatuses": [{"name": "run",
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}});
        assert_eq!(
            health("Pod", failed),
            (
                Health::Degraded,
                "container run exited with code 1 (Error)".into()
            )
        );
        let done = json!({"status": {"phase": "Succeeded"}});
        assert_eq!(health("Pod", done).0, Health::Healthy);
        let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(health("Pod", ready).0, Health::Healthy);
    }

    #[test]
    fn jobs_statefulsets_daemonsets_claims_and_definitions() {
        let complete = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(health("Job", complete).0, Health::Healthy);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(
            health("Job", failed),
            (
                Health::Degraded,
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
        let sts = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3, "updatedReplicas": 3,
            "currentRevision": "a", "updateRevision": "b"}});
        assert_eq!(health("StatefulSet", sts).0, Health::Progressing);
        let ds = json!({"status": {"desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1}});
        assert_eq!(
            health("DaemonSet", ds),
            (Health::Progressing, "1 of 2 pods available".into())
        );
        assert_eq!(
            health(
                "PersistentVolumeClaim",
                json!({"status": {"phase": "Bound"}})
            )
            .0,
            Health::Healthy
        );
        assert_eq!(
            health(
                "PersistentVolumeClaim",
                json!({"status": {"phase": "Pending"}})
            )
            .0,
            Health::Progressing
        );
        let crd = json!({"status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(health("CustomResourceDefinition", crd).0, Health::Healthy);
    }

    #[test]
    fn other_objects_follow_their_ready_and_stalled_conditions() {
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False",
            "reason": "BackendDown", "message": "no backend answers"}]}});
        assert_eq!(
            health("Widget", not_ready),
            (
                Health::Progressing,
                "BackendDown: no backend answers".into()
            )
        );
        let stalled = json!({"status": {"conditions": [{"type": "Stalled", "status": "True", "reason": "InvalidSpec"}]}});
        assert_eq!(
            health("Widget", stalled),
            (Health::Degraded, "InvalidSpec".into())
        );
        assert_eq!(health("Widget", json!({"spec": {}})).0, Health::Healthy);
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(health("Widget", ready).0, Health::Healthy);
    }
}
