//! berth's main job end to end, against a real API server and real git:
//! deploy, update, per-cluster values, prune, revert, bad commits, drift, ownership.

mod common;

use std::collections::BTreeMap;

use berth_agent::config::AgentConfig;
use berth_agent::inventory::{InventoryStore, Outcome};
use berth_agent::objects::RELEASE_LABEL;
use berth_harness::TestCluster;
use berth_harness::cluster::shared;
use berth_harness::git::GitDaemon;
use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

#[tokio::test(flavor = "multi_thread")]
async fn first_deploy_then_update_applies_the_new_image() {
    let cluster = shared().await;
    let repo = demo_repo("deploy-update");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;

    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.created, 3, "{report:?}"); // config map, service, deployment
    let deployments: Api<Deployment> = Api::namespaced(agent.client.clone(), "deploy-update");
    let deployment = deployments.get("deploy-update-demo").await.unwrap();
    let spec = deployment.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(1), "par-staging-1 runs one replica");
    let container = &spec.template.spec.unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/example/demo:1.4.0")
    );
    assert_eq!(deployment.labels()[RELEASE_LABEL], "deploy-update");
    assert_eq!(deployment.labels()["berth.dev/agent"], "par-staging-1");
    let managers: Vec<_> = deployment
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"berth".to_string()), "{managers:?}");

    // A second sync of the same commit changes nothing.
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(
        (
            report.counts.created,
            report.counts.updated,
            report.counts.unchanged
        ),
        (0, 0, 3)
    );

    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write(
        "deploy/release.yaml",
        release.replace("tag: \"1.4.0\"", "tag: \"1.5.0\""),
    )
    .unwrap();
    let commit = repo.commit("demo 1.5.0").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    let synced = report.commit.as_ref().expect("the commit synced");
    assert_eq!(synced.sha, commit);
    assert_eq!(
        (synced.subject.as_str(), synced.author.as_str()),
        ("demo 1.5.0", "berth test")
    );
    assert_eq!(report.counts.updated, 1, "{report:?}");
    let image = deployment_image(&agent.client, "deploy-update", "deploy-update-demo").await;
    assert_eq!(image.as_deref(), Some("ghcr.io/example/demo:1.5.0"));

    let history = agent.history("deploy-update").await;
    assert_eq!(history[0].commit, commit);
    assert_eq!(history[0].outcome, Outcome::Succeeded);
    assert_eq!(history[0].counts.updated, 1);
    assert_eq!(
        history.len(),
        2,
        "unchanged syncs add no history: {history:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_get_their_own_values_over_git_daemon() {
    let first = shared().await;
    let second = TestCluster::start("prod").await.unwrap();
    let repo = demo_repo("per-cluster");
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    let url = daemon.url_for(&repo);
    let mut staging = TestAgent::new(first, &url, STAGING_PARIS).await;
    let mut prod = TestAgent::new(&second, &url, PROD_GCP).await;
    succeeded(&staging.sync(false).await);
    let report = prod.sync(false).await;
    succeeded(&report);
    assert_eq!(
        report.counts.created, 4,
        "prod also gets the autoscaler: {report:?}"
    );

    let staging_config =
        config_data(&staging.client, "per-cluster", "per-cluster-demo-config").await;
    assert_eq!(staging_config["GREETING"], "hello");
    assert_eq!(staging_config["LOG_LEVEL"], "DEBUG");
    assert_eq!(staging_config["STORAGE_BUCKET"], "demo-paris");
    assert_eq!(staging_config["CLUSTER"], "par-staging-1");
    let prod_config = config_data(&prod.client, "per-cluster", "per-cluster-demo-config").await;
    assert_eq!(prod_config["GREETING"], "welcome to gke-prod-1");
    assert_eq!(prod_config["STORAGE_BUCKET"], "demo-eu");
    assert_eq!(prod_config["REGION"], "europe-west1");

    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(prod.client.clone(), "per-cluster")
        .get("per-cluster-demo")
        .await
        .unwrap();
    assert_eq!(hpa.spec.min_replicas, Some(4), "gke-prod-1 has 4 replicas");
    let staging_hpa =
        Api::<HorizontalPodAutoscaler>::namespaced(staging.client.clone(), "per-cluster")
            .get_opt("per-cluster-demo")
            .await
            .unwrap();
    assert!(staging_hpa.is_none(), "staging has no autoscaler");
    let service = Api::<Service>::namespaced(prod.client.clone(), "per-cluster")
        .get("per-cluster-demo")
        .await
        .unwrap();
    assert_eq!(
        service
            .annotations()
            .get("cloud.google.com/neg")
            .map(String::as_str),
        Some("{\"ingress\": true}"),
        "the gcp override reaches only gcp clusters"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_object_is_pruned_and_revert_brings_it_back() {
    let cluster = shared().await;
    let repo = demo_repo("prune-revert");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);
    let services: Api<Service> = Api::namespaced(agent.client.clone(), "prune-revert");
    assert!(
        services
            .get_opt("prune-revert-demo")
            .await
            .unwrap()
            .is_some()
    );

    repo.remove("deploy/chart/templates/service.yaml").unwrap();
    let removal = repo.commit("drop the service").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.deleted, 1, "{report:?}");
    // Deletion is asynchronous (finalizers); wait until it is gone.
    let mut gone = false;
    for _ in 0..50 {
        if services
            .get_opt("prune-revert-demo")
            .await
            .unwrap()
            .is_none()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the service was not pruned");

    repo.revert(&removal).unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.created, 1, "{report:?}");
    assert!(
        services
            .get_opt("prune-revert-demo")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_commit_changes_nothing_and_says_why() {
    let cluster = shared().await;
    let repo = demo_repo("bad-commit");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);
    let good_inventory =
        InventoryStore::new(agent.client.clone(), STATE_NAMESPACE, "bad-commit", 10)
            .load()
            .await
            .unwrap();

    // A template error in one file and a removed object in the same commit:
    // nothing may be applied, nothing pruned.
    repo.write(
        "deploy/chart/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }-config\n",
    )
    .unwrap();
    repo.remove("deploy/chart/templates/service.yaml").unwrap();
    let bad = repo.commit("broken template").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.clone().unwrap();
    assert!(
        error.contains("templates/configmap.yaml:4"),
        "error names file and line: {error}"
    );
    assert!(
        Api::<Service>::namespaced(agent.client.clone(), "bad-commit")
            .get_opt("bad-commit-demo")
            .await
            .unwrap()
            .is_some(),
        "nothing was pruned"
    );
    let inventory = InventoryStore::new(agent.client.clone(), STATE_NAMESPACE, "bad-commit", 10)
        .load()
        .await
        .unwrap();
    assert_eq!(inventory, good_inventory, "the inventory is kept");
    let history = agent.history("bad-commit").await;
    assert_eq!(history[0].commit, bad);
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(
        history[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("configmap.yaml")
    );
    // Retrying the same broken commit (as every full comparison does) records it once.
    assert_eq!(agent.sync(true).await.outcome, Outcome::Failed);
    assert_eq!(agent.history("bad-commit").await.len(), history.len());

    // Invalid YAML in the release file, and an unknown context key.
    repo.git(&["checkout", "HEAD~1", "--", "deploy/chart"])
        .unwrap();
    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write(
        "deploy/release.yaml",
        release.replace("overrides:\n", "overrides:\n  zone:\n    a: {}\n"),
    )
    .unwrap();
    repo.commit("unknown context key").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains("deploy/release.yaml:") && error.contains("zone"),
        "{error}"
    );

    // The next good commit syncs normally.
    repo.write("deploy/release.yaml", release).unwrap();
    repo.commit("fix").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_edit_is_corrected_on_the_next_full_comparison() {
    let cluster = shared().await;
    let repo = demo_repo("drift");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);
    let deployments: Api<Deployment> = Api::namespaced(agent.client.clone(), "drift");
    // What `kubectl scale` or `kubectl edit` does: an update by another field manager.
    deployments
        .patch(
            "drift-demo",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..Default::default()
            },
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 7}})),
        )
        .await
        .unwrap();

    // Nothing changed in git: a changed-only sync leaves the cluster alone.
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(
        deployments
            .get("drift-demo")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(7)
    );

    let report = agent.sync(true).await;
    succeeded(&report);
    assert_eq!(report.counts.updated, 1, "{report:?}");
    assert_eq!(
        deployments
            .get("drift-demo")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_berth_does_not_own_are_never_deleted_or_taken_over() {
    let cluster = shared().await;
    let repo = demo_repo("ownership");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);
    let config_maps: Api<ConfigMap> = Api::namespaced(agent.client.clone(), "ownership");

    // Someone else's object in the release namespace survives syncs and prunes.
    let foreign = ConfigMap {
        metadata: ObjectMeta {
            name: Some("someone-elses".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("keep".into(), "me".into())])),
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    // An object berth applied, then relabelled by hand: no longer berth's to delete.
    let services: Api<Service> = Api::namespaced(agent.client.clone(), "ownership");
    services
        .patch(
            "ownership-demo",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {RELEASE_LABEL: null}}})),
        )
        .await
        .unwrap();
    repo.remove("deploy/chart/templates/service.yaml").unwrap();
    repo.commit("drop the service").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.deleted, 0, "{report:?}");
    assert!(
        config_maps
            .get_opt("someone-elses")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        services.get_opt("ownership-demo").await.unwrap().is_some(),
        "a relabelled object is not berth's to delete"
    );

    // A chart object whose name is taken by someone else's object is refused, and nothing is applied.
    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write(
        "deploy/chart/templates/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: someone-elses\ndata:\n  taken: \"yes\"\n",
    )
    .unwrap();
    repo.write(
        "deploy/release.yaml",
        release.replace("tag: \"1.4.0\"", "tag: \"9.9.9\""),
    )
    .unwrap();
    repo.commit("collide").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("someone-elses"),
        "{report:?}"
    );
    let data = config_data(&agent.client, "ownership", "someone-elses").await;
    assert_eq!(data.get("keep").map(String::as_str), Some("me"));
    assert!(!data.contains_key("taken"));
    let image = deployment_image(&agent.client, "ownership", "ownership-demo").await;
    assert_eq!(
        image.as_deref(),
        Some("ghcr.io/example/demo:1.4.0"),
        "nothing was applied"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sync_log_has_one_json_line_per_sync() {
    let log = CapturedLog::global();
    let cluster = shared().await;
    let repo = demo_repo("sync-log");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let first = agent.agent.sync_once(None, false).await;
    repo.write(
        "deploy/chart/templates/broken.yaml",
        "{{ fail \"no such thing\" }}\n",
    )
    .unwrap();
    repo.commit("broken").unwrap();
    let second = agent.agent.sync_once(None, false).await;
    assert_eq!((first.len(), second.len()), (1, 1));

    let all = log.sync_log("sync-log");
    // One line per sync, and one when the first sync's health is known.
    let (lines, health): (Vec<_>, Vec<_>) = all.iter().partition(|l| l.get("outcome").is_some());
    assert_eq!(lines.len(), 2, "one line per sync:\n{}", log.text());
    assert_eq!(health.len(), 1, "one health verdict:\n{}", log.text());
    assert_eq!(health[0]["health"], "healthy");
    assert!(
        health[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("sync-log is healthy at "),
        "{}",
        health[0]["message"]
    );
    let ok = lines[0];
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["release"], "sync-log");
    assert_eq!(ok["outcome"], "succeeded");
    assert_eq!(ok["created"], 3);
    let commit = first[0].commit.clone().unwrap();
    assert_eq!(ok["commit"], commit.sha.as_str());
    // Every line says which commit, as people name it: short sha, subject, author.
    assert_eq!(ok["subject"], "release sync-log");
    assert_eq!(ok["author"], "berth test");
    let message = ok["message"].as_str().unwrap();
    assert!(
        message.contains(commit.short_sha())
            && message.contains("release sync-log")
            && message.contains("berth test"),
        "{message}"
    );
    assert!(ok["duration_ms"].is_u64());
    let failed = lines[1];
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["outcome"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("templates/broken.yaml") && error.contains("no such thing"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_shows_what_would_change_and_hides_secret_values() {
    let cluster = shared().await;
    let repo = demo_repo("diff");
    repo.write(
        "deploy/chart/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-credentials\nstringData:\n  password: {{ .Values.dbPassword | quote }}\n",
    )
    .unwrap();
    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write(
        "deploy/release.yaml",
        release.replace(
            "  greeting: hello\n",
            "  greeting: hello\n  dbPassword: first-Secret-42\n",
        ),
    )
    .unwrap();
    repo.commit("with a secret").unwrap();
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);

    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write(
        "deploy/release.yaml",
        release
            .replace("tag: \"1.4.0\"", "tag: \"1.5.0\"")
            .replace("first-Secret-42", "second-Secret-43"),
    )
    .unwrap();
    repo.commit("new image and password").unwrap();
    let config = AgentConfig::load(&agent._dir.path().join("berth.yaml")).unwrap();
    let text = berth_agent::diff::diff_applications(&config, &agent.client, Some("diff"))
        .await
        .unwrap();
    assert!(
        text.contains("# update Deployment diff/diff-demo"),
        "{text}"
    );
    // What the cluster runs now, and how it is doing.
    assert!(
        text.lines()
            .any(|l| l.starts_with("# now: ") && l.contains(" healthy since ")),
        "{text}"
    );
    assert!(
        text.contains("-        image: ghcr.io/example/demo:1.4.0"),
        "{text}"
    );
    assert!(
        text.contains("+        image: ghcr.io/example/demo:1.5.0"),
        "{text}"
    );
    assert!(
        text.contains("# update Secret diff/diff-credentials"),
        "{text}"
    );
    assert!(text.contains("(redacted: changed)"), "{text}");
    for secret in [
        "first-Secret-42",
        "second-Secret-43",
        "Zmlyc3Qt",
        "c2Vjb25k",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the diff:\n{text}"
        );
    }
    // Diff writes nothing.
    let image = deployment_image(&agent.client, "diff", "diff-demo").await;
    assert_eq!(image.as_deref(), Some("ghcr.io/example/demo:1.4.0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_repository_leaves_the_cluster_as_it_is() {
    let cluster = shared().await;
    let repo = demo_repo("unreachable");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);
    let history_before = agent.history("unreachable").await;

    let moved = repo.path().with_extension("moved");
    std::fs::rename(repo.path(), &moved).unwrap();
    let report = agent.sync(true).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or_default()
            .starts_with("source:"),
        "{report:?}"
    );
    assert!(
        Api::<Deployment>::namespaced(agent.client.clone(), "unreachable")
            .get_opt("unreachable-demo")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(agent.history("unreachable").await, history_before);

    std::fs::rename(&moved, repo.path()).unwrap();
    succeeded(&agent.sync(false).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_follows_new_commits_until_stopped() {
    let cluster = shared().await;
    let repo = demo_repo("daemon");
    let TestAgent {
        mut agent,
        client,
        _dir,
    } = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        agent
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "daemon");
    let greeting = |expected: &'static str| {
        let config_maps = config_maps.clone();
        async move {
            for _ in 0..100 {
                if let Ok(Some(cm)) = config_maps.get_opt("daemon-demo-config").await
                    && cm
                        .data
                        .unwrap_or_default()
                        .get("GREETING")
                        .map(String::as_str)
                        == Some(expected)
                {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            false
        }
    };
    assert!(greeting("hello").await, "the first commit was not deployed");
    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write(
        "deploy/release.yaml",
        release.replace("greeting: hello", "greeting: bonjour"),
    )
    .unwrap();
    repo.commit("bonjour").unwrap();
    assert!(greeting("bonjour").await, "the new commit was not deployed");
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), running)
        .await
        .expect("the agent stops when asked")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn crds_are_applied_first_and_established_before_their_objects() {
    let cluster = shared().await;
    let repo = demo_repo("with-crd");
    repo.write(
        "deploy/chart/templates/crd.yaml",
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.berth.dev
spec:
  group: demo.berth.dev
  scope: Namespaced
  names: { kind: Widget, plural: widgets, singular: widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer }
"#,
    )
    .unwrap();
    repo.write(
        "deploy/chart/templates/widget.yaml",
        "apiVersion: demo.berth.dev/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}-widget\nspec:\n  size: {{ .Values.replicaCount }}\n",
    )
    .unwrap();
    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    // Without the scope entry the cluster-scoped CRD is refused, and nothing is applied.
    repo.commit("a CRD and a widget").unwrap();
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains("clusterScopedKinds") && error.contains("CustomResourceDefinition"),
        "{error}"
    );
    assert!(
        Api::<ConfigMap>::namespaced(agent.client.clone(), "with-crd")
            .get_opt("with-crd-demo-config")
            .await
            .unwrap()
            .is_none(),
        "nothing applied"
    );

    repo.write(
        "deploy/release.yaml",
        format!("{release}scope:\n  clusterScopedKinds: [CustomResourceDefinition]\n"),
    )
    .unwrap();
    repo.commit("allow the CRD").unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.created, 5, "{report:?}");
    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("demo.berth.dev", "v1", "Widget"),
        "widgets",
    );
    let widget = Api::<kube::core::DynamicObject>::namespaced_with(
        agent.client.clone(),
        "with-crd",
        &resource,
    )
    .get("with-crd-widget")
    .await
    .unwrap();
    assert_eq!(widget.data["spec"]["size"], 1);
    assert_eq!(widget.labels()[RELEASE_LABEL], "with-crd");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chart_path_outside_the_repository_or_invalid_yaml_is_refused() {
    let cluster = shared().await;
    let repo = demo_repo("bad-paths");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);
    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();

    repo.write(
        "deploy/release.yaml",
        release.replace("chart: chart", "chart: ../../../etc"),
    )
    .unwrap();
    repo.commit("escape").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains("../../../etc") || error.contains("escapes"),
        "{error}"
    );

    repo.write("deploy/release.yaml", &release).unwrap();
    repo.write(
        "deploy/chart/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [unclosed\n",
    )
    .unwrap();
    repo.commit("invalid yaml").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("demo/templates/configmap.yaml"), "{error}");
    assert!(error.contains("line"), "{error}");
    // The objects of the last good commit are still there and unchanged.
    let data = config_data(&agent.client, "bad-paths", "bad-paths-demo-config").await;
    assert_eq!(data["GREETING"], "hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_secrets_without_vault_fail_before_anything_is_applied() {
    let cluster = shared().await;
    let repo = demo_repo("no-vault");
    let release = std::fs::read_to_string(repo.path().join("deploy/release.yaml")).unwrap();
    repo.write(
        "deploy/release.yaml",
        format!("{release}secrets:\n  - name: database-password\n"),
    )
    .unwrap();
    repo.commit("needs a secret").unwrap();
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("no vault configuration"), "{error}");
    assert!(
        Api::<Deployment>::namespaced(agent.client.clone(), "no-vault")
            .get_opt("no-vault-demo")
            .await
            .unwrap()
            .is_none()
    );
}

/// Deletions past the guard go through only when the commit says so, with a
/// `Berth-Allow-Prune` trailer of at least their count; a whole release is
/// removed on purpose the same way (its chart renders nothing).
#[tokio::test(flavor = "multi_thread")]
async fn deletions_past_the_guard_need_the_commits_trailer() {
    let cluster = shared().await;
    let repo = demo_repo("allow-prune");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);
    let services: Api<Service> = Api::namespaced(agent.client.clone(), "allow-prune");
    let config_maps: Api<ConfigMap> = Api::namespaced(agent.client.clone(), "allow-prune");
    let service_present = || async {
        services
            .get_opt("allow-prune-demo")
            .await
            .unwrap()
            .is_some()
    };

    // Two of three objects removed: past the default limit of a half.
    repo.remove("deploy/chart/templates/service.yaml").unwrap();
    // (The deployment's checksum includes the config's template.)
    repo.write("deploy/chart/templates/configmap.yaml", "")
        .unwrap();
    repo.commit("drop the service and the config").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.deletion_held, "{report:?}");
    let error = report.error.clone().unwrap();
    assert!(
        error.contains("add the trailer \"Berth-Allow-Prune: 2\" to the commit message"),
        "{error}"
    );
    assert!(service_present().await, "nothing deleted");

    // A trailer for fewer, or for another release, is not enough.
    repo.commit("drop them\n\nBerth-Allow-Prune: 1\nBerth-Allow-Prune: other=5")
        .unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.clone().unwrap();
    assert!(
        error.contains("trailer allows 1, fewer than that"),
        "{error}"
    );
    assert!(service_present().await, "nothing deleted");

    let allowed = repo
        .commit("drop them, on purpose\n\nBerth-Allow-Prune: allow-prune=2")
        .unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.deleted, 2, "{report:?}");
    assert_eq!(report.deletions_allowed, Some(2));
    assert!(!service_present().await, "the service is deleted");
    assert!(
        config_maps
            .get_opt("allow-prune-demo-config")
            .await
            .unwrap()
            .is_none()
    );
    let history = agent.history("allow-prune").await;
    assert_eq!(history[0].commit, allowed);
    assert_eq!(history[0].deletions_allowed, Some(2));

    // The whole release: the chart renders nothing, and the commit says so.
    repo.remove("deploy/chart/templates/deployment.yaml")
        .unwrap();
    repo.remove("deploy/chart/templates/hpa.yaml").unwrap();
    repo.commit("retire the demo").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert!(report.deletion_held);
    repo.commit("retire the demo\n\nBerth-Allow-Prune: 1")
        .unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.deleted, 1, "{report:?}");
    let deployments: Api<Deployment> = Api::namespaced(agent.client.clone(), "allow-prune");
    assert!(
        deployments
            .get_opt("allow-prune-demo")
            .await
            .unwrap()
            .is_none()
    );
    let inventory = InventoryStore::new(agent.client.clone(), STATE_NAMESPACE, "allow-prune", 10)
        .load()
        .await
        .unwrap();
    assert!(inventory.objects.is_empty(), "{inventory:?}");
    // And the next sync of the same commit has nothing left to do.
    succeeded(&agent.sync(true).await);
}

/// The followed branch deleted on the server: the sync fails naming the
/// branch, and the release stays as it was (deleting a branch never deletes
/// a release); the branch back, the agent follows it again.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_branch_leaves_the_release_in_place() {
    let cluster = shared().await;
    let repo = demo_repo("branch-gone");
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    succeeded(&agent.sync(false).await);
    let store = InventoryStore::new(agent.client.clone(), STATE_NAMESPACE, "branch-gone", 10);
    let before = store.load().await.unwrap();

    repo.git(&["checkout", "--quiet", "-b", "elsewhere"])
        .unwrap();
    repo.git(&["branch", "-D", berth_harness::git::BRANCH])
        .unwrap();
    let report = agent.sync(true).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let error = report.error.unwrap();
    assert!(
        error.contains(&format!(
            "has no branch \"{}\" (retrying in",
            berth_harness::git::BRANCH
        )),
        "{error}"
    );
    assert_eq!(store.load().await.unwrap(), before, "the inventory is kept");
    let services: Api<Service> = Api::namespaced(agent.client.clone(), "branch-gone");
    assert!(
        services
            .get_opt("branch-gone-demo")
            .await
            .unwrap()
            .is_some()
    );

    repo.git(&["checkout", "--quiet", "-b", berth_harness::git::BRANCH])
        .unwrap();
    succeeded(&agent.sync(true).await);
}

/// A chart that writes into `kube-system`, or a values file whose anchors
/// expand exponentially: refused with the cause, nothing applied.
#[tokio::test(flavor = "multi_thread")]
async fn a_chart_writing_into_kube_system_or_a_billion_laughs_applies_nothing() {
    let cluster = shared().await;
    let repo = demo_repo("hostile");
    repo.write(
        "deploy/chart/templates/sneaky.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\ndata:\n  a: b\n",
    )
    .unwrap();
    repo.commit("write into kube-system").unwrap();
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains("ConfigMap kube-system/sneaky") && error.contains("sneaky.yaml"),
        "{error}"
    );
    let client = agent.client.clone();
    let config_maps = |namespace: &str| Api::<ConfigMap>::namespaced(client.clone(), namespace);
    assert!(
        config_maps("kube-system")
            .get_opt("sneaky")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        config_maps("hostile")
            .get_opt("hostile-demo-config")
            .await
            .unwrap()
            .is_none(),
        "nothing applied"
    );

    repo.remove("deploy/chart/templates/sneaky.yaml").unwrap();
    let laughs: String =
        std::iter::once("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string())
            .chain((1..10).map(|i| {
                let prev = format!("*l{}", i - 1);
                format!("l{i}: &l{i} [{}]\n", vec![prev; 9].join(", "))
            }))
            .collect();
    let values = std::fs::read_to_string(repo.path().join("deploy/chart/values.yaml")).unwrap();
    repo.write("deploy/chart/values.yaml", format!("{values}{laughs}"))
        .unwrap();
    repo.commit("a billion laughs").unwrap();
    let started = std::time::Instant::now();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains("values.yaml") && error.contains("excessive aliasing"),
        "{error}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        config_maps("hostile")
            .get_opt("hostile-demo-config")
            .await
            .unwrap()
            .is_none()
    );
}

/// A release that names a `serviceAccountName`: berth impersonates it, so
/// the release can do only what that account may, as the real API server's
/// RBAC decides — nothing applied while one of its kinds is forbidden.
#[tokio::test(flavor = "multi_thread")]
async fn a_release_with_a_service_account_does_only_what_the_account_may() {
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let cluster = shared().await;
    let release = "impersonated";
    let repo = demo_repo(release);
    let admin = cluster.admin_client().await.unwrap();
    let create = kube::api::PostParams::default();
    Api::<Namespace>::all(admin.clone())
        .create(
            &create,
            &serde_json::from_value(serde_json::json!({ "metadata": { "name": release } }))
                .unwrap(),
        )
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), release)
        .create(
            &create,
            &serde_json::from_value(serde_json::json!({ "metadata": { "name": "deployer" } }))
                .unwrap(),
        )
        .await
        .unwrap();
    let role = |resources: &[&str]| -> Role {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "deployer" },
            "rules": [{
                "apiGroups": ["", "apps"],
                "resources": resources,
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            }],
        }))
        .unwrap()
    };
    let roles = Api::<Role>::namespaced(admin.clone(), release);
    roles
        .create(&create, &role(&["configmaps", "services"]))
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), release)
        .create(
            &create,
            &serde_json::from_value(serde_json::json!({
                "metadata": { "name": "deployer" },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer" },
                "subjects": [{ "kind": "ServiceAccount", "name": "deployer", "namespace": release }],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    add_to_release(&repo, "serviceAccountName: deployer\n");
    repo.commit("deploy as the deployer").unwrap();
    let mut agent = TestAgent::new(cluster, &repo.file_url(), STAGING_PARIS).await;

    // Deployments are not the account's: refused, and nothing applied.
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let error = report.error.unwrap();
    assert!(
        error.contains("system:serviceaccount:impersonated:deployer")
            && error.contains("deployments"),
        "{error}"
    );
    let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), release);
    assert!(
        config_maps
            .get_opt("impersonated-demo-config")
            .await
            .unwrap()
            .is_none(),
        "nothing applied"
    );

    // Once the account may, the release applies as it.
    roles
        .replace("deployer", &create, &{
            let mut wider = role(&["configmaps", "services", "deployments"]);
            wider.metadata.resource_version = roles
                .get("deployer")
                .await
                .unwrap()
                .metadata
                .resource_version;
            wider
        })
        .await
        .unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.created, 3, "{report:?}");
    assert!(
        config_maps
            .get_opt("impersonated-demo-config")
            .await
            .unwrap()
            .is_some()
    );
}
