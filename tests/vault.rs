//! The harness gives tests a real Vault: KV v2, Kubernetes auth reviewed by the
//! real kube-apiserver, AppRole and policies, restart, seal and unseal.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_harness::TestCluster;
use berth_harness::process::is_alive;
use berth_harness::shared;
use berth_harness::tools::pinned_versions;
use berth_harness::vault::{
    DEV_ROOT_TOKEN, VaultServer, ensure_service_account, service_account_token,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn read(vault: &VaultServer, path: &str, token: &str) -> (StatusCode, Value) {
    vault
        .request(
            Method::GET,
            &format!("secret/data/{path}"),
            Some(token),
            None,
        )
        .await
        .unwrap()
}

fn client_token(answer: &(StatusCode, Value)) -> String {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::OK, "login refused: {body}");
    body["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no client token in {body}"))
        .to_string()
}

#[tokio::test]
async fn dev_server_stores_and_returns_a_kv_v2_secret() {
    let vault = VaultServer::start_dev().await.unwrap();
    assert_eq!(vault.root_token(), DEV_ROOT_TOKEN);

    let (status, written) = vault
        .request(
            Method::POST,
            "secret/data/app/config",
            Some(vault.root_token()),
            Some(json!({ "data": { "password": "s3cr3t", "user": "berth" } })),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["data"]["version"], 1);

    let (status, body) = read(&vault, "app/config", vault.root_token()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["data"],
        json!({ "password": "s3cr3t", "user": "berth" })
    );
    assert_eq!(body["data"]["metadata"]["version"], 1);

    // A second version, and the real CLI sees what the HTTP API wrote.
    assert_eq!(
        vault
            .kv_put("app/config", &[("password", "rotated")])
            .await
            .unwrap(),
        2
    );
    let output = vault
        .cli()
        .args(["kv", "get", "-format=json", "-mount=secret", "app/config"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cli["data"]["data"], json!({ "password": "rotated" }));

    // Deleting the latest version hides the secret.
    vault.kv_delete("app/config").await.unwrap();
    assert_eq!(vault.kv_get("app/config").await.unwrap(), None);

    let pinned = pinned_versions()
        .into_iter()
        .find(|(name, _)| *name == "vault")
        .unwrap()
        .1;
    let version = vault.cli().arg("version").output().await.unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.starts_with(&format!("Vault {pinned}, built ")),
        "{version}"
    );
}

#[tokio::test]
async fn kubernetes_auth_reviews_real_service_account_tokens() {
    let cluster = shared().await;
    let vault = VaultServer::start_dev().await.unwrap();
    vault
        .write_policy(
            "berth-read",
            r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
    vault
        .kv_put("app/db", &[("password", "from-vault")])
        .await
        .unwrap();
    vault.enable_kubernetes_auth(cluster).await.unwrap();
    vault
        .kubernetes_role(
            "berth-agent",
            "berth-agent",
            "berth-system",
            &["berth-read"],
        )
        .await
        .unwrap();

    // The agent's own token, made by the API server's TokenRequest API.
    let jwt = service_account_token(cluster, "berth-system", "berth-agent")
        .await
        .unwrap();
    let login = vault.kubernetes_login("berth-agent", &jwt).await.unwrap();
    let token = client_token(&login);
    assert_eq!(
        login.1["auth"]["metadata"]["service_account_name"],
        "berth-agent"
    );
    assert_eq!(
        login.1["auth"]["metadata"]["service_account_namespace"],
        "berth-system"
    );
    let (status, body) = read(&vault, "app/db", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["data"]["password"], "from-vault");

    // A real token of a ServiceAccount the role is not bound to.
    let other = service_account_token(cluster, "berth-system", "someone-else")
        .await
        .unwrap();
    let (status, body) = vault.kubernetes_login("berth-agent", &other).await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // The right name and namespace, but signed by another cluster's key: only a
    // real TokenReview against this cluster's API server can tell.
    let mut stranger = TestCluster::start("vault-stranger").await.unwrap();
    let foreign = service_account_token(&stranger, "berth-system", "berth-agent")
        .await
        .unwrap();
    let (status, body) = vault
        .kubernetes_login("berth-agent", &foreign)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    stranger.stop();

    // A ServiceAccount deleted after its token was issued is refused as well.
    let client = cluster.admin_client().await.unwrap();
    ensure_service_account(&client, "berth-system", "short-lived")
        .await
        .unwrap();
    vault
        .kubernetes_role(
            "short-lived",
            "short-lived",
            "berth-system",
            &["berth-read"],
        )
        .await
        .unwrap();
    let jwt = service_account_token(cluster, "berth-system", "short-lived")
        .await
        .unwrap();
    client_token(&vault.kubernetes_login("short-lived", &jwt).await.unwrap());
    kube::Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client, "berth-system")
        .delete("short-lived", &Default::default())
        .await
        .unwrap();
    // The API server looks the ServiceAccount up through its informer cache,
    // which may take a moment to see the deletion.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = vault.kubernetes_login("short-lived", &jwt).await.unwrap();
        if status == StatusCode::FORBIDDEN {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "token of a deleted ServiceAccount still accepted: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn approle_login_gets_only_what_its_policy_allows() {
    let vault = VaultServer::start_dev().await.unwrap();
    vault
        .write_policy(
            "cluster-a",
            r#"path "secret/data/app/cluster-a/*" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
    vault
        .kv_put("app/cluster-a/x", &[("token", "a")])
        .await
        .unwrap();
    vault
        .kv_put("app/cluster-b/x", &[("token", "b")])
        .await
        .unwrap();
    vault.enable_approle().await.unwrap();
    let (role_id, secret_id) = vault
        .approle_role("cluster-a", &["cluster-a"])
        .await
        .unwrap();

    let token = client_token(&vault.approle_login(&role_id, &secret_id).await.unwrap());
    let (status, body) = read(&vault, "app/cluster-a/x", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["data"]["token"], "a");
    let (status, body) = read(&vault, "app/cluster-b/x", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = vault
        .approle_login(&role_id, "not-the-secret-id")
        .await
        .unwrap();
    assert!(!status.is_success(), "{status} {body}");
}

#[tokio::test]
async fn persistent_server_survives_restart_seal_and_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let mut vault = VaultServer::start_persistent(dir.path()).await.unwrap();
    assert!(vault.unseal_key().is_some());
    vault
        .kv_put("app/cluster-a/db", &[("password", "kept")])
        .await
        .unwrap();
    let first_pid = vault.pid().unwrap();
    let addr = vault.addr();

    // Restarted: a new process on the same address, same data.
    vault.restart().await.unwrap();
    assert_ne!(vault.pid().unwrap(), first_pid);
    assert!(!is_alive(first_pid));
    assert_eq!(vault.addr(), addr);
    let (status, body) = read(&vault, "app/cluster-a/db", vault.root_token()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["data"]["password"], "kept");

    // Sealed: the process runs, reads get 503.
    vault.seal().await.unwrap();
    assert_eq!(vault.health().await.unwrap(), 503);
    let (status, body) = read(&vault, "app/cluster-a/db", vault.root_token()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    vault.unseal().await.unwrap();
    let (status, body) = read(&vault, "app/cluster-a/db", vault.root_token()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Down: nothing listens; it comes back with its data.
    vault.stop();
    assert!(vault.health().await.is_err());
    vault.restart().await.unwrap();
    assert_eq!(
        vault.kv_get("app/cluster-a/db").await.unwrap().unwrap()["password"],
        "kept"
    );

    // Reopened from the directory by a new handle.
    let root_token = vault.root_token().to_string();
    drop(vault);
    let vault = VaultServer::start_persistent(dir.path()).await.unwrap();
    assert_eq!(vault.root_token(), root_token);
    assert_eq!(
        vault.kv_get("app/cluster-a/db").await.unwrap().unwrap()["password"],
        "kept"
    );
}

const CHILD_MODE: &str = "BERTH_VAULT_CHILD_MODE";
const CHILD_PIDFILE: &str = "BERTH_VAULT_CHILD_PIDFILE";

/// Run by `no_vault_outlives_the_test_binary` in a child test binary: starts a
/// Vault, leaks its handle (so no destructor stops it), writes its pid, then
/// either returns (the binary exits normally) or hangs until it is killed.
#[tokio::test]
#[ignore = "started by no_vault_outlives_the_test_binary"]
async fn child_leaves_a_vault_running() {
    let (Ok(mode), Ok(pidfile)) = (std::env::var(CHILD_MODE), std::env::var(CHILD_PIDFILE)) else {
        return;
    };
    let vault = VaultServer::start_dev().await.unwrap();
    std::fs::write(&pidfile, vault.pid().unwrap().to_string()).unwrap();
    std::mem::forget(vault);
    if mode == "hang" {
        tokio::time::sleep(Duration::from_secs(300)).await;
    }
}

fn wait_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_alive(pid) {
        assert!(Instant::now() < deadline, "vault {pid} survived {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn no_vault_outlives_the_test_binary() {
    for mode in ["exit", "hang"] {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("vault.pid");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_leaves_a_vault_running",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_MODE, mode)
            .env(CHILD_PIDFILE, &pidfile)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "the child test binary did not start a vault"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        if mode == "hang" {
            assert!(is_alive(pid), "vault {pid} is not running in the child");
            child.kill().unwrap(); // SIGKILL: no destructor, no exit hook runs
            let status = child.wait().unwrap();
            assert!(!status.success());
            wait_gone(pid, "a SIGKILLed test binary");
        } else {
            let status = child.wait().unwrap();
            assert!(status.success(), "child test failed: {status}");
            wait_gone(pid, "its test binary's normal exit");
        }
    }
}
