//! The harness gives tests a real, RBAC-enforcing Kubernetes API server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_harness::cluster::{RESTRICTED_USER, TestCluster, shared};
use berth_harness::process::is_alive;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

async fn create_namespace(client: &Client, name: &str) {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
}

fn deployment(name: &str, image: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "web", "image": image }] }
            }
        }
    })
}

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

#[tokio::test]
async fn server_side_apply_records_berth_as_field_manager() {
    let cluster = shared().await;
    let client = cluster.admin_client().await.unwrap();
    create_namespace(&client, "ssa").await;
    let deployments: Api<Deployment> = Api::namespaced(client, "ssa");
    let apply = PatchParams::apply("berth").force();

    let first = deployments
        .patch(
            "web",
            &apply,
            &Patch::Apply(deployment("web", "nginx:1.27")),
        )
        .await
        .unwrap();
    let live = deployments.get("web").await.unwrap();
    let spec = live.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(
        spec.template.spec.as_ref().unwrap().containers[0]
            .image
            .as_deref(),
        Some("nginx:1.27")
    );
    let managers: Vec<(String, String)> = live
        .managed_fields()
        .iter()
        .map(|entry| {
            (
                entry.manager.clone().unwrap_or_default(),
                entry.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("berth".to_string(), "Apply".to_string())),
        "managed fields: {managers:?}"
    );

    // Applying the same object again changes nothing the applier owns: the
    // spec's generation stays (the controller manager writes the status, so
    // the resource version may move).
    let again = deployments
        .patch(
            "web",
            &apply,
            &Patch::Apply(deployment("web", "nginx:1.27")),
        )
        .await
        .unwrap();
    assert_eq!(again.metadata.generation, first.metadata.generation);

    // A changed field is applied.
    let updated = deployments
        .patch(
            "web",
            &apply,
            &Patch::Apply(deployment("web", "nginx:1.28")),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.metadata.generation,
        first.metadata.generation.map(|g| g + 1)
    );
    assert_eq!(
        updated.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("nginx:1.28")
    );
}

#[tokio::test]
async fn restricted_identity_is_refused_where_rbac_says_so() {
    let cluster = shared().await;
    let admin = cluster.admin_client().await.unwrap();
    create_namespace(&admin, "rbac-allowed").await;
    create_namespace(&admin, "rbac-other").await;

    // Grant: read config maps in rbac-allowed, nothing else.
    let role = Role {
        metadata: ObjectMeta {
            name: Some("read-config".into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), "rbac-allowed")
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("read-config".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "read-config".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: RESTRICTED_USER.into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), "rbac-allowed")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    let restricted = cluster.restricted_client().await.unwrap();
    let allowed: Api<ConfigMap> = Api::namespaced(restricted.clone(), "rbac-allowed");
    // The authorizer sees new bindings through an informer: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match allowed.list(&Default::default()).await {
            Ok(_) => break,
            Err(e) if status_code(&e) == Some(403) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the granted list was refused: {e}"),
        }
    }

    let other: Api<ConfigMap> = Api::namespaced(restricted.clone(), "rbac-other");
    let refused = other.list(&Default::default()).await.unwrap_err();
    assert_eq!(status_code(&refused), Some(403), "{refused}");

    let deployments: Api<Deployment> = Api::namespaced(restricted, "rbac-allowed");
    let refused = deployments
        .patch(
            "web",
            &PatchParams::apply("berth"),
            &Patch::Apply(deployment("web", "nginx:1.27")),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&refused), Some(403), "{refused}");
    assert!(
        refused.to_string().contains(RESTRICTED_USER),
        "the refusal names the user: {refused}"
    );
}

#[tokio::test]
async fn a_second_cluster_is_independent_and_stops_cleanly() {
    let first = shared().await;
    let mut second = TestCluster::start("second").await.unwrap();
    assert_ne!(first.server_url(), second.server_url());

    let second_client = second.admin_client().await.unwrap();
    create_namespace(&second_client, "only-in-second").await;
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("marker".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("cluster".into(), "second".into())])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(second_client.clone(), "only-in-second")
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();

    let first_client = first.admin_client().await.unwrap();
    let in_first = Api::<Namespace>::all(first_client)
        .get_opt("only-in-second")
        .await
        .unwrap();
    assert!(
        in_first.is_none(),
        "namespace leaked into the first cluster"
    );
    let marker = Api::<ConfigMap>::namespaced(second_client, "only-in-second")
        .get("marker")
        .await
        .unwrap();
    assert_eq!(marker.data.unwrap()["cluster"], "second");

    let pids = second.pids();
    let dir = second.dir().to_path_buf();
    // etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.
    assert_eq!(pids.len(), 5);
    second.stop();
    for pid in pids {
        assert!(!is_alive(pid), "server {pid} still running after stop");
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Polls `check` until it gives a value or `timeout` passes.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn workloads_roll_out_on_fake_nodes_and_failing_images_fail_as_a_kubelet_says() {
    use berth_harness::cluster::{CRASHING_IMAGE, FAILING_IMAGE, MISSING_IMAGE};
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::Pod;
    let cluster = shared().await;
    let client = cluster.admin_client().await.unwrap();
    create_namespace(&client, "workloads").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "workloads");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "workloads");
    let apply = PatchParams::apply("test").force();
    for (name, image) in [
        ("good", "ghcr.io/example/demo:1.0"),
        ("missing", MISSING_IMAGE),
        ("crashing", CRASHING_IMAGE),
    ] {
        deployments
            .patch(name, &apply, &Patch::Apply(deployment(name, image)))
            .await
            .unwrap();
    }
    // The controller manager makes a ReplicaSet and pods, the scheduler
    // places them on kwok's nodes, kwok makes them Ready.
    eventually(
        "2 ready replicas of good",
        Duration::from_secs(60),
        || async {
            let d = deployments.get("good").await.ok()?;
            (d.status?.ready_replicas? == 2).then_some(())
        },
    )
    .await;
    let waiting_reason = |app: &'static str| {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&kube::api::ListParams::default().labels(&format!("app={app}")))
                .await
                .ok()?;
            let pod = list.items.into_iter().next()?;
            assert!(pod.spec.as_ref()?.node_name.is_some(), "scheduled");
            let status = pod.status?.container_statuses?.into_iter().next()?;
            status.state?.waiting?.reason
        }
    };
    let missing = eventually(
        "the missing image's reason",
        Duration::from_secs(60),
        || waiting_reason("missing"),
    )
    .await;
    assert_eq!(missing, "ImagePullBackOff");
    let crashing = eventually(
        "the crashing image's reason",
        Duration::from_secs(60),
        || waiting_reason("crashing"),
    )
    .await;
    assert_eq!(crashing, "CrashLoopBackOff");

    let jobs: Api<Job> = Api::namespaced(client, "workloads");
    let job = |name: &str, image: &str| {
        serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": name },
            "spec": { "backoffLimit": 0, "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "run", "image": image }] } } }
        })
    };
    for (name, image) in [
        ("completes", "ghcr.io/example/migrate:1.0"),
        ("fails", FAILING_IMAGE),
    ] {
        jobs.patch(name, &apply, &Patch::Apply(job(name, image)))
            .await
            .unwrap();
    }
    let condition = |name: &'static str| {
        let jobs = jobs.clone();
        async move {
            let conditions = jobs.get(name).await.ok()?.status?.conditions?;
            conditions
                .into_iter()
                .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
                .map(|c| c.type_)
        }
    };
    let completed = eventually("completes finishing", Duration::from_secs(60), || {
        condition("completes")
    })
    .await;
    assert_eq!(completed, "Complete");
    let failed = eventually("fails finishing", Duration::from_secs(60), || {
        condition("fails")
    })
    .await;
    assert_eq!(failed, "Failed");
}
