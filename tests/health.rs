//! A deploy is done when the workloads are healthy: rollouts on the real
//! controller manager, scheduler and kwok nodes, Helm hooks, automatic
//! rollback.

mod common;

use std::time::{Duration, Instant};

use berth_agent::health::Health;
use berth_agent::inventory::{Outcome, releases};
use berth_harness::cluster::{FAILING_IMAGE, MISSING_IMAGE, TestCluster, shared};
use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;

async fn ready_replicas(agent: &TestAgent, namespace: &str, name: &str) -> i32 {
    Api::<Deployment>::namespaced(agent.client.clone(), namespace)
        .get(name)
        .await
        .unwrap()
        .status
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_commit_ends_healthy_with_its_replicas_ready() {
    let cluster = shared().await;
    let repo = demo_repo("health-good");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let report = agent.sync(false).await;
    succeeded(&report);
    let verdict = report.health.expect("a verdict");
    assert_eq!(verdict.health, Health::Healthy, "{}", verdict.reason);
    // par-staging-1 runs one replica: the controller manager made a pod,
    // the scheduler placed it, kwok made it ready.
    assert_eq!(
        ready_replicas(&agent, "health-good", "health-good-demo").await,
        1
    );
    let history = agent.history("health-good").await;
    assert_eq!(history[0].health, Some(Health::Healthy));

    // `berth status` says the same.
    let all = releases(agent.client.clone(), STATE_NAMESPACE)
        .await
        .unwrap();
    let status = berth::format_status(&all);
    let line = status
        .lines()
        .find(|l| l.starts_with("health-good "))
        .unwrap_or_else(|| panic!("no line for the release:\n{status}"));
    assert!(
        line.contains("succeeded") && line.contains("healthy"),
        "{line}"
    );

    // A sync that changes nothing does not wait again.
    let again = agent.sync(true).await;
    succeeded(&again);
    assert!(again.health.is_none(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_ends_degraded_with_the_pods_reason_while_another_release_syncs() {
    let cluster = shared().await;
    let bad = demo_repo("health-bad");
    let other = demo_repo("health-other");
    let mut agent = TestAgent::with_applications(
        cluster,
        &[("bad", &bad.file_url()), ("other", &other.file_url())],
        STAGING_PARIS,
        "",
    )
    .await;
    let first = agent.agent.sync_once(None, false).await;
    assert_eq!(first.len(), 2);
    for report in &first {
        succeeded(report);
    }

    add_to_release(&bad, "healthTimeout: 10s\n");
    set_image(&bad, MISSING_IMAGE);
    let bad_commit = bad.commit("an image that does not exist").unwrap();
    let other_text = std::fs::read_to_string(other.path().join("deploy/release.yaml")).unwrap();
    other
        .write(
            "deploy/release.yaml",
            other_text.replace("greeting: hello", "greeting: bonjour"),
        )
        .unwrap();
    other.commit("a new greeting").unwrap();

    let client = agent.client.clone();
    let started = Instant::now();
    let mut seen = None;
    agent
        .agent
        .run(async {
            // The other release is applied while the bad one is still waiting.
            let other_synced = loop {
                let data = config_data(&client, "health-other", "health-other-demo-config").await;
                if data.get("GREETING").map(String::as_str) == Some("bonjour") {
                    break started.elapsed();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "other never synced"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            // Then the bad release's verdict.
            let verdict = loop {
                let history = berth_agent::inventory::InventoryStore::new(
                    client.clone(),
                    STATE_NAMESPACE,
                    "health-bad",
                    10,
                )
                .history()
                .await
                .unwrap();
                if let Some(entry) = history.iter().find(|e| e.commit == bad_commit)
                    && let Some(health) = entry.health
                {
                    break (
                        health,
                        entry.health_reason.clone().unwrap_or_default(),
                        started.elapsed(),
                    );
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "no verdict for the bad commit"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            seen = Some((other_synced, verdict));
        })
        .await;
    let (other_synced, (health, reason, verdict_after)) = seen.expect("the checks ran");
    assert_eq!(health, Health::Degraded, "{reason}");
    assert!(
        reason.contains("Deployment health-bad/health-bad-demo")
            && reason.contains("pod health-bad/health-bad-demo-")
            && reason.contains("ImagePullBackOff")
            && reason.contains(MISSING_IMAGE),
        "{reason}"
    );
    assert!(
        other_synced < verdict_after,
        "the other release waited for the bad one: {other_synced:?} vs {verdict_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_rollback_on_a_degraded_commit_is_replaced_by_the_last_healthy_one() {
    let cluster = shared().await;
    let repo = demo_repo("health-rollback");
    add_to_release(&repo, "healthTimeout: 8s\nrollback: true\n");
    let good = repo.commit("roll back on failure").unwrap();
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let report = agent.sync(false).await;
    assert_eq!(report.health.unwrap().health, Health::Healthy);

    set_image(&repo, MISSING_IMAGE);
    let bad = repo.commit("an image that does not exist").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::RolledBack, "{report:?}");
    assert_eq!(report.health.as_ref().unwrap().health, Health::Degraded);
    assert_eq!(report.rolled_back_to.as_deref(), Some(good.as_str()));
    let image = deployment_image(&agent.client, "health-rollback", "health-rollback-demo").await;
    assert_eq!(image.as_deref(), Some("ghcr.io/example/demo:1.4.0"));
    let history = agent.history("health-rollback").await;
    assert_eq!(history[0].outcome, Outcome::RolledBack);
    assert_eq!(history[0].commit, good);
    assert_eq!(history[0].rolled_back_from.as_deref(), Some(bad.as_str()));
    assert_eq!(history[0].health, Some(Health::Healthy));
    assert!(
        history[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("ImagePullBackOff"),
        "{:?}",
        history[0]
    );

    // The failing commit is not tried again while it is the branch head.
    let report = agent.sync(true).await;
    assert_eq!(
        report.held_back_to, None,
        "the kept commit was compared instead"
    );
    assert_eq!(report.commit.as_ref().unwrap().sha, good);
    let image = deployment_image(&agent.client, "health-rollback", "health-rollback-demo").await;
    assert_eq!(image.as_deref(), Some("ghcr.io/example/demo:1.4.0"));
    assert_eq!(agent.history("health-rollback").await.len(), history.len());

    // A new commit is deployed.
    set_image(&repo, "ghcr.io/example/demo:1.5.0");
    repo.commit("a good image again").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.health.unwrap().health, Health::Healthy);
    let image = deployment_image(&agent.client, "health-rollback", "health-rollback-demo").await;
    assert_eq!(image.as_deref(), Some("ghcr.io/example/demo:1.5.0"));
}

const MIGRATE_HOOK: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-1"
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: {{ .Values.migrationImage | default "ghcr.io/example/migrate:1.0" }}
"#;

const NOTIFY_HOOK: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-notify
  annotations:
    helm.sh/hook: pre-upgrade,post-upgrade
    helm.sh/hook-weight: "5"
    helm.sh/hook-delete-policy: hook-succeeded
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: notify
          image: ghcr.io/example/notify:1.0
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_upgrade_job_runs_before_the_deployment_changes_and_its_failure_keeps_the_old_image()
{
    let cluster = shared().await;
    let repo = demo_repo("health-hooks");
    repo.write("deploy/chart/templates/migrate.yaml", MIGRATE_HOOK)
        .unwrap();
    repo.write("deploy/chart/templates/notify.yaml", NOTIFY_HOOK)
        .unwrap();
    repo.commit("migrations as hooks").unwrap();
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let jobs: Api<Job> = Api::namespaced(agent.client.clone(), "health-hooks");
    let report = agent.sync(false).await;
    succeeded(&report);
    // Install: the pre-install hook ran; notify runs only on upgrades.
    let migrate = jobs.get("health-hooks-migrate").await.unwrap();
    assert!(job_completed(&migrate), "{:?}", migrate.status);
    assert!(jobs.get_opt("health-hooks-notify").await.unwrap().is_none());

    set_image(&repo, "ghcr.io/example/demo:1.5.0");
    repo.commit("demo 1.5.0").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.health.unwrap().health, Health::Healthy);
    // The migration ran again (its old run deleted first) and completed
    // before berth applied the new image.
    let migrate = jobs.get("health-hooks-migrate").await.unwrap();
    assert!(job_completed(&migrate));
    let completed = migrate.status.unwrap().completion_time.unwrap().0;
    let deployments: Api<Deployment> = Api::namespaced(agent.client.clone(), "health-hooks");
    let deployment = deployments.get("health-hooks-demo").await.unwrap();
    let applied = deployment
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|f| f.manager.as_deref() == Some("berth"))
        .and_then(|f| f.time)
        .unwrap()
        .0;
    assert!(
        completed <= applied,
        "migration {completed} vs apply {applied}"
    );
    // notify ran before and after, and was deleted each time it succeeded.
    assert!(jobs.get_opt("health-hooks-notify").await.unwrap().is_none());

    // A failing migration stops the upgrade: the Deployment keeps its image.
    set_image(&repo, "ghcr.io/example/demo:1.6.0");
    let text = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write(
        "deploy/release.yaml",
        text.replace(
            "values:\n",
            &format!("values:\n  migrationImage: {FAILING_IMAGE}\n"),
        ),
    )
    .unwrap();
    let failing = repo.commit("a migration that fails").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let error = report.error.unwrap();
    assert!(
        error.contains("pre-upgrade hook Job health-hooks/health-hooks-migrate failed")
            && error.contains("exited with code 1"),
        "{error}"
    );
    let image = deployment_image(&agent.client, "health-hooks", "health-hooks-demo").await;
    assert_eq!(image.as_deref(), Some("ghcr.io/example/demo:1.5.0"));
    // before-hook-creation alone keeps the failed run for inspection.
    let migrate = jobs.get("health-hooks-migrate").await.unwrap();
    assert!(!job_completed(&migrate));
    let history = agent.history("health-hooks").await;
    assert_eq!(history[0].commit, failing);
    assert_eq!(history[0].outcome, Outcome::Failed);
}

fn job_completed(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_completes_is_healthy_and_a_custom_resource_not_ready_is_degraded() {
    let cluster = shared().await;
    let repo = demo_repo("health-kinds");
    repo.write(
        "deploy/chart/templates/job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-once\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: once\n          image: ghcr.io/example/once:1.0\n",
    )
    .unwrap();
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let report = {
        repo.commit("a job").unwrap();
        agent.sync(false).await
    };
    succeeded(&report);
    assert_eq!(report.health.unwrap().health, Health::Healthy);
    let job = Api::<Job>::namespaced(agent.client.clone(), "health-kinds")
        .get("health-kinds-once")
        .await
        .unwrap();
    assert!(job_completed(&job));

    // A custom resource whose Ready condition is False. Its kind has no
    // status subresource, so the condition is part of what the chart says.
    repo.write(
        "deploy/chart/crds/gadgets.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gadgets.health.berth.dev\nspec:\n  group: health.berth.dev\n  scope: Namespaced\n  names: { kind: Gadget, plural: gadgets, singular: gadget }\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n",
    )
    .unwrap();
    repo.write(
        "deploy/chart/templates/gadget.yaml",
        "apiVersion: health.berth.dev/v1\nkind: Gadget\nmetadata:\n  name: {{ .Release.Name }}-gadget\nstatus:\n  conditions:\n    - type: Ready\n      status: \"False\"\n      reason: BackendDown\n      message: no backend answers\n",
    )
    .unwrap();
    add_to_release(
        &repo,
        "healthTimeout: 5s\nscope:\n  clusterScopedKinds: [CustomResourceDefinition]\n",
    );
    repo.commit("a gadget that is not ready").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    let verdict = report.health.unwrap();
    assert_eq!(verdict.health, Health::Degraded);
    assert!(
        verdict
            .reason
            .contains("Gadget health-kinds/health-kinds-gadget")
            && verdict.reason.contains("BackendDown: no backend answers"),
        "{}",
        verdict.reason
    );
    assert_eq!(
        agent.history("health-kinds").await[0].health,
        Some(Health::Degraded)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revert_brings_every_cluster_back_to_healthy() {
    let first = shared().await;
    let second = TestCluster::start("health-second").await.unwrap();
    let repo = demo_repo("health-revert");
    add_to_release(&repo, "healthTimeout: 8s\n");
    repo.commit("a short health timeout").unwrap();
    let mut staging = TestAgent::new(first, &repo.file_url(), STAGING_PARIS).await;
    let mut prod = TestAgent::new(&second, &repo.file_url(), PROD_GCP).await;
    for agent in [&mut staging, &mut prod] {
        assert_eq!(
            agent.sync(false).await.health.unwrap().health,
            Health::Healthy
        );
    }

    set_image(&repo, MISSING_IMAGE);
    let bad = repo.commit("an image that does not exist").unwrap();
    for agent in [&mut staging, &mut prod] {
        assert_eq!(
            agent.sync(false).await.health.unwrap().health,
            Health::Degraded
        );
    }
    repo.revert(&bad).unwrap();
    for agent in [&mut staging, &mut prod] {
        let report = agent.sync(false).await;
        succeeded(&report);
        assert_eq!(report.health.unwrap().health, Health::Healthy);
        let image = deployment_image(&agent.client, "health-revert", "health-revert-demo").await;
        assert_eq!(image.as_deref(), Some("ghcr.io/example/demo:1.4.0"));
    }
    // prod's replicas (as many as its autoscaler keeps) are all ready again.
    let deployment = Api::<Deployment>::namespaced(prod.client.clone(), "health-revert")
        .get("health-revert-demo")
        .await
        .unwrap();
    let wanted = deployment.spec.unwrap().replicas.unwrap_or(1);
    assert_eq!(
        ready_replicas(&prod, "health-revert", "health-revert-demo").await,
        wanted
    );
}
