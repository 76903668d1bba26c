//! Secrets from a real Vault server, read by agents on real API servers.

mod common;

use berth_agent::inventory::Outcome;
use berth_agent::secrets::CHECKSUM_ANNOTATION;
use berth_harness::TestCluster;
use berth_harness::cluster::shared;
use berth_harness::vault::{VaultServer, service_account_token};
use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

/// The demo repository with one declared secret.
fn repo_with_secret(release: &str) -> berth_harness::git::TestRepo {
    let repo = demo_repo(release);
    add_to_release(&repo, "secrets:\n  - name: database-password\n");
    repo.commit("declare a secret").unwrap();
    repo
}

async fn secret_value(client: &Client, namespace: &str, name: &str) -> Option<String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .unwrap()?;
    let bytes = secret
        .data
        .unwrap_or_default()
        .get("database-password")?
        .0
        .clone();
    Some(String::from_utf8(bytes).unwrap())
}

async fn pod_checksum(client: &Client, namespace: &str, name: &str) -> Option<String> {
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap()
        .spec?
        .template
        .metadata?
        .annotations?
        .get(CHECKSUM_ANNOTATION)
        .cloned()
}

/// An AppRole identity limited to `release`'s entries for `cluster` and its defaults.
async fn approle_agent_config(
    vault: &VaultServer,
    dir: &std::path::Path,
    release: &str,
    cluster: &str,
) -> String {
    let policy = format!(
        "path \"secret/data/{release}/{cluster}/*\" {{ capabilities = [\"read\"] }}\n\
         path \"secret/data/{release}/default/*\" {{ capabilities = [\"read\"] }}\n"
    );
    let name = format!("{release}-{cluster}");
    vault.write_policy(&name, &policy).await.unwrap();
    let (role_id, secret_id) = vault.approle_role(&name, &[&name]).await.unwrap();
    let role_file = dir.join(format!("{name}.role-id"));
    let secret_file = dir.join(format!("{name}.secret-id"));
    std::fs::write(&role_file, role_id).unwrap();
    std::fs::write(&secret_file, secret_id).unwrap();
    format!(
        "vault:\n  address: {}\n  auth:\n    approle:\n      role_id_file: {}\n      secret_id_file: {}\n",
        vault.addr(),
        role_file.display(),
        secret_file.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn default_and_cluster_values_land_in_the_right_clusters() {
    let staging_cluster = shared().await;
    let prod_cluster = TestCluster::start("prod").await.unwrap();
    let vault = VaultServer::start_dev().await.unwrap();
    let release = "per-cluster-secrets";
    vault
        .kv_put(
            &format!("{release}/default/database-password"),
            &[("value", "default-Pw-1")],
        )
        .await
        .unwrap();
    vault
        .kv_put(
            &format!("{release}/gke-prod-1/database-password"),
            &[("value", "prod-Pw-2")],
        )
        .await
        .unwrap();
    let repo = repo_with_secret(release);
    let scratch = tempfile::tempdir().unwrap();

    // Staging logs in with Kubernetes auth: its own service-account token, reviewed by its API server.
    vault.enable_kubernetes_auth(staging_cluster).await.unwrap();
    vault
        .write_policy(
            "staging-agent",
            &format!(
                "path \"secret/data/{release}/par-staging-1/*\" {{ capabilities = [\"read\"] }}\n\
                 path \"secret/data/{release}/default/*\" {{ capabilities = [\"read\"] }}\n"
            ),
        )
        .await
        .unwrap();
    vault
        .kubernetes_role(
            "berth-par-staging-1",
            "berth",
            "berth-system",
            &["staging-agent"],
        )
        .await
        .unwrap();
    let token = service_account_token(staging_cluster, "berth-system", "berth")
        .await
        .unwrap();
    let token_file = scratch.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let staging_vault = format!(
        "vault:\n  address: {}\n  auth:\n    kubernetes:\n      role: berth-par-staging-1\n      token_file: {}\n",
        vault.addr(),
        token_file.display()
    );
    let mut staging = TestAgent::with_config(
        staging_cluster,
        &repo.file_url(),
        STAGING_PARIS,
        &staging_vault,
    )
    .await;
    succeeded(&staging.sync(false).await);

    vault.enable_approle().await.unwrap();
    let prod_vault = approle_agent_config(&vault, scratch.path(), release, "gke-prod-1").await;
    let mut prod =
        TestAgent::with_config(&prod_cluster, &repo.file_url(), PROD_GCP, &prod_vault).await;
    succeeded(&prod.sync(false).await);

    let name = format!("{release}-secrets");
    assert_eq!(
        secret_value(&staging.client, release, &name)
            .await
            .as_deref(),
        Some("default-Pw-1")
    );
    assert_eq!(
        secret_value(&prod.client, release, &name).await.as_deref(),
        Some("prod-Pw-2")
    );
    let deployment = format!("{release}-demo");
    assert!(
        pod_checksum(&staging.client, release, &deployment)
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_secret_rolls_the_pods_and_an_unchanged_one_does_not() {
    let cluster = shared().await;
    let vault = VaultServer::start_dev().await.unwrap();
    vault.enable_approle().await.unwrap();
    let release = "rolling-secrets";
    let path = format!("{release}/default/database-password");
    vault
        .kv_put(&path, &[("value", "first-Pw-1")])
        .await
        .unwrap();
    let repo = repo_with_secret(release);
    let scratch = tempfile::tempdir().unwrap();
    let extra = approle_agent_config(&vault, scratch.path(), release, "par-staging-1").await;
    let mut agent = TestAgent::with_config(cluster, &repo.file_url(), STAGING_PARIS, &extra).await;
    succeeded(&agent.sync(false).await);
    let deployment = format!("{release}-demo");
    let first = pod_checksum(&agent.client, release, &deployment)
        .await
        .unwrap();

    // Nothing changed in Vault: a full comparison leaves the pod template alone.
    let report = agent.sync(true).await;
    succeeded(&report);
    assert_eq!(report.counts.updated, 0, "{report:?}");
    assert_eq!(
        pod_checksum(&agent.client, release, &deployment)
            .await
            .unwrap(),
        first
    );

    vault
        .kv_put(&path, &[("value", "second-Pw-2")])
        .await
        .unwrap();
    let report = agent.sync(true).await;
    succeeded(&report);
    assert_eq!(
        report.counts.updated, 2,
        "the Secret and the Deployment: {report:?}"
    );
    let second = pod_checksum(&agent.client, release, &deployment)
        .await
        .unwrap();
    assert_ne!(second, first, "the pod template changed, so the pods roll");
    assert_eq!(
        secret_value(&agent.client, release, &format!("{release}-secrets"))
            .await
            .as_deref(),
        Some("second-Pw-2")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_narrow_policy_cannot_read_another_clusters_entry() {
    let cluster = shared().await;
    let vault = VaultServer::start_dev().await.unwrap();
    vault.enable_approle().await.unwrap();
    let release = "narrow-policy";
    vault
        .kv_put(
            &format!("{release}/gke-prod-1/database-password"),
            &[("value", "prod-only-Pw")],
        )
        .await
        .unwrap();
    let repo = repo_with_secret(release);
    let scratch = tempfile::tempdir().unwrap();
    // This agent's identity may read par-staging-1 entries only, but its context says gke-prod-1.
    let extra = approle_agent_config(&vault, scratch.path(), release, "par-staging-1").await;
    let mut agent = TestAgent::with_config(cluster, &repo.file_url(), PROD_GCP, &extra).await;
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains("permission denied") && error.contains("gke-prod-1"),
        "{error}"
    );
    assert!(!error.contains("prod-only-Pw"));
    assert_eq!(
        secret_value(&agent.client, release, &format!("{release}-secrets")).await,
        None
    );
    assert!(
        Api::<Deployment>::namespaced(agent.client.clone(), release)
            .get_opt(&format!("{release}-demo"))
            .await
            .unwrap()
            .is_none(),
        "nothing applied"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_down_or_sealed_keeps_everything_and_recovers() {
    let cluster = shared().await;
    let data = tempfile::tempdir().unwrap();
    let mut vault = VaultServer::start_persistent(data.path()).await.unwrap();
    vault.enable_approle().await.unwrap();
    let release = "vault-outage";
    vault
        .kv_put(
            &format!("{release}/default/database-password"),
            &[("value", "steady-Pw-1")],
        )
        .await
        .unwrap();
    let repo = repo_with_secret(release);
    let scratch = tempfile::tempdir().unwrap();
    let extra = approle_agent_config(&vault, scratch.path(), release, "par-staging-1").await;
    let mut agent = TestAgent::with_config(cluster, &repo.file_url(), STAGING_PARIS, &extra).await;
    succeeded(&agent.sync(false).await);
    let secrets: Api<Secret> = Api::namespaced(agent.client.clone(), release);
    let name = format!("{release}-secrets");
    let before = secrets.get(&name).await.unwrap().metadata.resource_version;

    // A new commit arrives while Vault is down: deferred, nothing applied or pruned.
    vault.stop();
    repo.remove("deploy/chart/templates/service.yaml").unwrap();
    repo.commit("drop the service while Vault is down").unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("cannot be reached"),
        "{report:?}"
    );
    // A one-shot run of this commit applies nothing either: it exits with
    // the deferral's own code, not 0.
    assert_eq!(berth_sync_once(&agent), berth::EXIT_DEFERRED);
    assert_eq!(
        secrets.get(&name).await.unwrap().metadata.resource_version,
        before
    );
    assert!(
        Api::<k8s_openapi::api::core::v1::Service>::namespaced(agent.client.clone(), release)
            .get_opt(&format!("{release}-demo"))
            .await
            .unwrap()
            .is_some(),
        "nothing pruned while deferred"
    );

    // Back, but sealed: still deferred.
    vault.restart().await.unwrap();
    vault.seal().await.unwrap();
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("sealed"),
        "{report:?}"
    );

    vault.unseal().await.unwrap();
    let report = agent.sync(false).await;
    succeeded(&report);
    assert_eq!(report.counts.deleted, 1, "{report:?}");
    assert_eq!(
        secret_value(&agent.client, release, &name).await.as_deref(),
        Some("steady-Pw-1")
    );
    assert_eq!(berth_sync_once(&agent), 0);
}

/// Runs `berth sync --once` (the real command, in this process) with
/// `agent`'s configuration file; returns its exit code.
fn berth_sync_once(agent: &TestAgent) -> i32 {
    use clap::Parser as _;
    // The command installs a global log subscriber unless one is there:
    // this binary's captured log comes first, whichever test runs first.
    CapturedLog::global();
    let config = agent._dir.path().join("berth.yaml");
    // The command starts a runtime of its own: not on this test's.
    std::thread::spawn(move || {
        let cli = berth::Cli::parse_from([
            "berth",
            "sync",
            "--once",
            "--config",
            config.to_str().unwrap(),
        ]);
        berth::run(cli).unwrap()
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_or_destroyed_entry_fails_the_commit_and_a_deleted_cluster_entry_falls_back() {
    let cluster = shared().await;
    let vault = VaultServer::start_dev().await.unwrap();
    vault.enable_approle().await.unwrap();
    let release = "vault-deleted";
    let cluster_entry = format!("{release}/par-staging-1/database-password");
    let default_entry = format!("{release}/default/database-password");
    vault
        .kv_put(&cluster_entry, &[("value", "cluster-Pw-1")])
        .await
        .unwrap();
    // `vault kv delete`: Vault then answers 404 with the entry's metadata.
    vault.kv_delete(&cluster_entry).await.unwrap();
    let repo = repo_with_secret(release);
    let scratch = tempfile::tempdir().unwrap();
    let extra = approle_agent_config(&vault, scratch.path(), release, "par-staging-1").await;
    let mut agent = TestAgent::with_config(cluster, &repo.file_url(), STAGING_PARIS, &extra).await;

    // Neither entry has a value: the commit fails (no deferral), naming
    // both paths and saying the cluster entry was deleted.
    let report = agent.sync(true).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "not found in Vault at secret/{cluster_entry} (its latest version, 1, was deleted at "
        )) && error.contains(&format!(
            "`vault kv undelete` restores it) nor secret/{default_entry}"
        )),
        "{error}"
    );
    assert!(!error.contains("cannot be reached"), "{error}");
    assert!(
        Api::<Deployment>::namespaced(agent.client.clone(), release)
            .get_opt(&format!("{release}-demo"))
            .await
            .unwrap()
            .is_none(),
        "nothing applied"
    );

    // A default entry serves the cluster whose own entry was deleted.
    let version = vault
        .kv_put(&default_entry, &[("value", "default-Pw-1")])
        .await
        .unwrap();
    succeeded(&agent.sync(true).await);
    let name = format!("{release}-secrets");
    assert_eq!(
        secret_value(&agent.client, release, &name).await.as_deref(),
        Some("default-Pw-1")
    );

    // The default entry's latest version destroyed: the commit fails again
    // and the Secret stays as it was.
    let (status, body) = vault
        .request(
            reqwest::Method::PUT,
            &format!("secret/destroy/{default_entry}"),
            Some(vault.root_token()),
            Some(serde_json::json!({ "versions": [version] })),
        )
        .await
        .unwrap();
    assert!(status.is_success(), "{status} {body}");
    let report = agent.sync(true).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let error = report.error.unwrap_or_default();
    assert!(
        error.contains(&format!(
            "nor secret/{default_entry} (its latest version, {version}, was destroyed; write a new version)"
        )),
        "{error}"
    );
    assert_eq!(
        secret_value(&agent.client, release, &name).await.as_deref(),
        Some("default-Pw-1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mount_that_is_not_kv_version_2_is_named() {
    let cluster = shared().await;
    let vault = VaultServer::start_dev().await.unwrap();
    vault.enable_approle().await.unwrap();
    let release = "vault-kv1";
    let root = Some(vault.root_token());
    let (status, body) = vault
        .request(
            reqwest::Method::POST,
            "sys/mounts/kv1",
            root,
            Some(serde_json::json!({ "type": "kv", "options": { "version": "1" } })),
        )
        .await
        .unwrap();
    assert!(status.is_success(), "{status} {body}");
    // Where a KV v2 read of the default entry looks, a KV v1 mount has a
    // plain key whose answer has no version metadata.
    let (status, body) = vault
        .request(
            reqwest::Method::POST,
            &format!("kv1/data/{release}/default/database-password"),
            root,
            Some(serde_json::json!({ "value": "v1-Pw" })),
        )
        .await
        .unwrap();
    assert!(status.is_success(), "{status} {body}");
    let policy = format!("path \"kv1/data/{release}/*\" {{ capabilities = [\"read\"] }}\n");
    vault.write_policy(release, &policy).await.unwrap();
    let (role_id, secret_id) = vault.approle_role(release, &[release]).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let (role_file, secret_file) = (
        scratch.path().join("role-id"),
        scratch.path().join("secret-id"),
    );
    std::fs::write(&role_file, role_id).unwrap();
    std::fs::write(&secret_file, secret_id).unwrap();
    let extra = format!(
        "vault:\n  address: {}\n  kv_mount: kv1\n  auth:\n    approle:\n      role_id_file: {}\n      secret_id_file: {}\n",
        vault.addr(),
        role_file.display(),
        secret_file.display()
    );
    let repo = repo_with_secret(release);
    let mut agent = TestAgent::with_config(cluster, &repo.file_url(), STAGING_PARIS, &extra).await;
    let report = agent.sync(false).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let error = report.error.unwrap_or_default();
    assert!(
        error.contains(&format!(
            "Vault's answer for kv1/{release}/default/database-password is not a KV version 2 entry (is kv1 a KV version 2 mount?)"
        )),
        "{error}"
    );
    assert!(!error.contains("v1-Pw"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_values_never_appear_in_logs_diffs_or_history() {
    let log = CapturedLog::global();
    let cluster = shared().await;
    let vault = VaultServer::start_dev().await.unwrap();
    vault.enable_approle().await.unwrap();
    let release = "no-leaks";
    let path = format!("{release}/default/database-password");
    vault
        .kv_put(&path, &[("value", "Leak-Canary-77")])
        .await
        .unwrap();
    let repo = repo_with_secret(release);
    let scratch = tempfile::tempdir().unwrap();
    let extra = approle_agent_config(&vault, scratch.path(), release, "par-staging-1").await;
    let mut agent = TestAgent::with_config(cluster, &repo.file_url(), STAGING_PARIS, &extra).await;
    succeeded(&agent.sync(false).await);
    vault
        .kv_put(&path, &[("value", "Leak-Canary-88")])
        .await
        .unwrap();

    let config =
        berth_agent::config::AgentConfig::load(&agent._dir.path().join("berth.yaml")).unwrap();
    let diff = berth_agent::diff::diff_applications(&config, &agent.client, Some(release))
        .await
        .unwrap();
    assert!(diff.contains("# update Secret"), "{diff}");
    assert!(diff.contains("(redacted: changed)"), "{diff}");
    succeeded(&agent.sync(true).await);
    let history = serde_json::to_string(&agent.history(release).await).unwrap();

    use base64::Engine as _;
    for value in ["Leak-Canary-77", "Leak-Canary-88"] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        for (what, text) in [
            ("log", log.text()),
            ("diff", diff.clone()),
            ("history", history.clone()),
        ] {
            assert!(!text.contains(value), "{value} in the {what}");
            assert!(!text.contains(&encoded), "{value} (base64) in the {what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_replaced_without_failing_a_sync() {
    let cluster = shared().await;
    let vault = VaultServer::start_dev().await.unwrap();
    vault.enable_approle().await.unwrap();
    let release = "short-tokens";
    let path = format!("{release}/default/database-password");
    vault
        .kv_put(&path, &[("value", "short-Pw-1")])
        .await
        .unwrap();
    let repo = repo_with_secret(release);
    let scratch = tempfile::tempdir().unwrap();
    let extra = approle_agent_config(&vault, scratch.path(), release, "par-staging-1").await;
    // Tokens of this role live two seconds and cannot be renewed past that.
    let (status, _) = vault
        .request(
            http::Method::POST,
            &format!("auth/approle/role/{release}-par-staging-1"),
            Some(vault.root_token()),
            Some(serde_json::json!({ "token_ttl": "2s", "token_max_ttl": "2s" })),
        )
        .await
        .unwrap();
    assert!(status.is_success(), "{status}");
    let mut agent = TestAgent::with_config(cluster, &repo.file_url(), STAGING_PARIS, &extra).await;
    succeeded(&agent.sync(false).await);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    vault
        .kv_put(&path, &[("value", "short-Pw-2")])
        .await
        .unwrap();
    succeeded(&agent.sync(true).await);
    assert_eq!(
        secret_value(&agent.client, release, &format!("{release}-secrets"))
            .await
            .as_deref(),
        Some("short-Pw-2")
    );
}
