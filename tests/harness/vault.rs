//! A real HashiCorp Vault (built from the Go module proxy) on a loopback port.
//!
//! - [`VaultServer::start_dev`]: `vault server -dev`, in memory, known root token,
//!   KV v2 at `secret/`;
//! - [`VaultServer::start_persistent`]: file storage in a directory, initialised
//!   with one key share, unsealed, KV v2 at `secret/`; it can be restarted
//!   (same data and port, unsealed again), sealed, unsealed and stopped.
//!
//! Setup helpers talk to Vault's HTTP API; [`VaultServer::cli`] gives the real
//! `vault` CLI with `VAULT_ADDR` and `VAULT_TOKEN` set. Kubernetes auth is
//! configured to review tokens through the real kube-apiserver of a
//! [`TestCluster`].
//!
//! The server runs through [`ServerProcess`] tied to the test binary, so it
//! dies with it however the binary ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cluster::TestCluster;
use crate::process::{Lifetime, ServerProcess, free_port, log_tail};
use crate::tools;

/// The root token of dev servers.
pub const DEV_ROOT_TOKEN: &str = "berth-dev-root";
/// Namespace and name of the ServiceAccount whose token Vault uses for TokenReview.
pub const TOKEN_REVIEWER_NAMESPACE: &str = "vault-auth";
pub const TOKEN_REVIEWER_NAME: &str = "vault-token-reviewer";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 3;

enum Mode {
    Dev,
    Persistent { unseal_key: String },
}

/// A running Vault server; stopped (and, in dev mode, its files removed) on drop.
pub struct VaultServer {
    mode: Mode,
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    root_token: String,
    process: Option<ServerProcess>,
    starts: usize,
    // Dev servers keep their log in a temporary directory removed on drop.
    _scratch: Option<tempfile::TempDir>,
}

/// The keys of an initialised persistent server, kept next to its data so a
/// later [`VaultServer::start_persistent`] on the same directory can unseal it.
#[derive(serde::Serialize, serde::Deserialize)]
struct InitKeys {
    unseal_key: String,
    root_token: String,
}

impl VaultServer {
    /// Starts `vault server -dev` on `127.0.0.1:<free port>` with root token
    /// [`DEV_ROOT_TOKEN`]; dev mode mounts KV v2 at `secret/`. Data is in memory.
    pub async fn start_dev() -> Result<Self> {
        let binary = tools::ensure()?.vault;
        let scratch = tempfile::Builder::new()
            .prefix("berth-vault-dev-")
            .tempdir()
            .context("creating a directory for the dev Vault")?;
        let mut last_error = None;
        for attempt in 1..=START_ATTEMPTS {
            let mut server = Self {
                mode: Mode::Dev,
                binary: binary.clone(),
                dir: scratch.path().to_path_buf(),
                port: free_port()?,
                root_token: DEV_ROOT_TOKEN.to_string(),
                process: None,
                starts: 0,
                _scratch: None,
            };
            match server.spawn_and_wait(&[200]).await {
                Ok(_) => {
                    server._scratch = Some(scratch);
                    return Ok(server);
                }
                Err(error) => {
                    eprintln!("dev vault: start attempt {attempt} failed: {error:#}");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("dev vault did not start")))
    }

    /// Starts Vault with file storage under `dir` (`dir/data`; config, logs and
    /// the init keys beside it). A new directory is initialised with one key
    /// share and KV v2 is mounted at `secret/`; a directory initialised before
    /// is reopened with its saved keys. Either way the server is unsealed.
    pub async fn start_persistent(dir: &Path) -> Result<Self> {
        let binary = tools::ensure()?.vault;
        std::fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let saved: Option<InitKeys> = match std::fs::read_to_string(dir.join("init.json")) {
            Ok(text) => Some(serde_json::from_str(&text).context("reading init.json")?),
            Err(_) => None,
        };
        let mut last_error = None;
        for attempt in 1..=START_ATTEMPTS {
            let mut server = Self {
                mode: Mode::Persistent {
                    unseal_key: String::new(),
                },
                binary: binary.clone(),
                dir: dir.to_path_buf(),
                port: free_port()?,
                root_token: String::new(),
                process: None,
                starts: 0,
                _scratch: None,
            };
            // 501: not initialised; 503: sealed.
            match server.spawn_and_wait(&[501, 503]).await {
                Ok(_) => {
                    match &saved {
                        Some(keys) => {
                            server.root_token = keys.root_token.clone();
                            server.mode = Mode::Persistent {
                                unseal_key: keys.unseal_key.clone(),
                            };
                            server.unseal().await?;
                        }
                        None => server.initialise().await?,
                    }
                    return Ok(server);
                }
                Err(error) => {
                    eprintln!("persistent vault: start attempt {attempt} failed: {error:#}");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("persistent vault did not start")))
    }

    fn write_config(&self) -> Result<PathBuf> {
        let path = self.dir.join("vault.hcl");
        let config = format!(
            r#"storage "file" {{
  path = "{data}"
}}

listener "tcp" {{
  address     = "127.0.0.1:{port}"
  tls_disable = true
}}

api_addr      = "http://127.0.0.1:{port}"
disable_mlock = true
ui            = false
log_level     = "info"
"#,
            data = self.dir.join("data").display(),
            port = self.port,
        );
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Starts the process and waits until `/v1/sys/health` answers one of `ready`.
    async fn spawn_and_wait(&mut self, ready: &[u16]) -> Result<u16> {
        let mut command = Command::new(&self.binary);
        match self.mode {
            Mode::Dev => {
                command.args([
                    "server".to_string(),
                    "-dev".to_string(),
                    format!("-dev-listen-address=127.0.0.1:{}", self.port),
                    format!("-dev-root-token-id={}", self.root_token),
                    "-dev-no-store-token".to_string(),
                ]);
            }
            Mode::Persistent { .. } => {
                let config = self.write_config()?;
                command.args([
                    "server".to_string(),
                    format!("-config={}", config.display()),
                ]);
            }
        }
        // Nothing from the developer's environment (VAULT_ADDR, VAULT_TOKEN,
        // ~/.vault-token, ~/.vault) reaches the server.
        command.env_clear().env("HOME", &self.dir);
        self.starts += 1;
        let log = self.dir.join(format!("vault-{}.log", self.starts));
        self.process = Some(ServerProcess::start(
            "vault",
            command,
            &log,
            Lifetime::TiedToProcess,
        )?);
        self.wait_for_health(ready).await
    }

    /// Polls `/v1/sys/health` until it answers one of `codes`; fails with the
    /// end of the log if the process exits or the time runs out.
    async fn wait_for_health(&mut self, codes: &[u16]) -> Result<u16> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last;
        loop {
            match self.process.as_mut() {
                Some(process) => process.check_running()?,
                None => bail!("vault is stopped"),
            }
            match self.health().await {
                Ok(code) if codes.contains(&code) => return Ok(code),
                Ok(code) => last = format!("/v1/sys/health answered {code}"),
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() > deadline {
                bail!(
                    "vault on {} not ready after {STARTUP_TIMEOUT:?} (waiting for {codes:?}, {last}); last lines of {}:\n{}",
                    self.addr(),
                    self.log_path().display(),
                    log_tail(&self.log_path(), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Initialises a new persistent server (one key share), unseals it and mounts KV v2.
    async fn initialise(&mut self) -> Result<()> {
        let init = self
            .expect_ok(
                Method::PUT,
                "sys/init",
                None,
                Some(json!({ "secret_shares": 1, "secret_threshold": 1 })),
            )
            .await?;
        let keys = InitKeys {
            unseal_key: init["keys_base64"][0]
                .as_str()
                .context("sys/init returned no unseal key")?
                .to_string(),
            root_token: init["root_token"]
                .as_str()
                .context("sys/init returned no root token")?
                .to_string(),
        };
        std::fs::write(self.dir.join("init.json"), serde_json::to_vec(&keys)?)?;
        self.root_token = keys.root_token;
        self.mode = Mode::Persistent {
            unseal_key: keys.unseal_key,
        };
        self.unseal().await?;
        self.expect_ok(
            Method::POST,
            "sys/mounts/secret",
            Some(&self.root_token),
            Some(json!({ "type": "kv", "options": { "version": "2" } })),
        )
        .await?;
        // A new KV v2 mount refuses requests until it has finished its upgrade step.
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let (status, body) = self
                .request(Method::GET, "secret/config", Some(&self.root_token), None)
                .await?;
            if status.is_success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("KV v2 mount at secret/ not ready: {status} {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT`, the value for `VAULT_ADDR`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The unseal key of a persistent server (`None` in dev mode).
    pub fn unseal_key(&self) -> Option<&str> {
        match &self.mode {
            Mode::Dev => None,
            Mode::Persistent { unseal_key } => Some(unseal_key),
        }
    }

    /// The pid of the running server, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ServerProcess::pid)
    }

    /// The log of the current (or last) server process.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("vault-{}.log", self.starts))
    }

    /// Kills the server ("Vault down"). A persistent server can come back with [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Stops a persistent server and starts a new process on the same port and
    /// data, then unseals it ("Vault restarted"). Dev servers keep nothing, so
    /// they cannot be restarted.
    pub async fn restart(&mut self) -> Result<()> {
        if matches!(self.mode, Mode::Dev) {
            bail!("a dev-mode Vault keeps its data in memory and cannot be restarted");
        }
        self.stop();
        // Same port, so clients configured with addr() reach the new process.
        self.spawn_and_wait(&[503]).await?;
        self.unseal().await
    }

    /// Seals the server ("Vault sealed"): it keeps running and answers 503.
    pub async fn seal(&self) -> Result<()> {
        self.expect_ok(Method::PUT, "sys/seal", Some(&self.root_token), None)
            .await?;
        Ok(())
    }

    /// Unseals a persistent server with its key and waits until it is active.
    pub async fn unseal(&self) -> Result<()> {
        let Some(key) = self.unseal_key() else {
            bail!("a dev-mode Vault has no unseal key");
        };
        let status = self
            .expect_ok(Method::PUT, "sys/unseal", None, Some(json!({ "key": key })))
            .await?;
        if status["sealed"] != Value::Bool(false) {
            bail!("vault still sealed after the unseal key: {status}");
        }
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if self.health().await? == 200 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "vault unsealed but not active after {STARTUP_TIMEOUT:?}; last lines of its log:\n{}",
                    log_tail(&self.log_path(), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The status code of `GET /v1/sys/health`: 200 active, 501 not
    /// initialised, 503 sealed.
    pub async fn health(&self) -> Result<u16> {
        let (status, _) = self.request(Method::GET, "sys/health", None, None).await?;
        Ok(status.as_u16())
    }

    /// The real `vault` CLI with `VAULT_ADDR` and `VAULT_TOKEN` (root) set and
    /// nothing else from the environment.
    pub fn cli(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .env_clear()
            .env("HOME", &self.dir)
            .env("VAULT_ADDR", self.addr())
            .env("VAULT_TOKEN", &self.root_token)
            .kill_on_drop(true);
        command
    }

    /// One request to `/v1/<path>`, with `X-Vault-Token` if a token is given.
    /// Returns the status and the JSON body (`null` when there is none).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        // A new client per request: a client belongs to the runtime that built
        // it, and each #[tokio::test] has its own.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let url = format!("{}/v1/{}", self.addr(), path.trim_start_matches('/'));
        let mut request = client.request(method.clone(), &url);
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let text = response.text().await?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, body))
    }

    async fn expect_ok(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value> {
        let (status, response) = self.request(method.clone(), path, token, body).await?;
        if !status.is_success() {
            bail!("{method} /v1/{path}: {status} {response}");
        }
        Ok(response)
    }

    async fn root(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        self.expect_ok(method, path, Some(&self.root_token), body)
            .await
    }

    /// Writes a new version of the KV v2 secret `secret/<path>`; returns its version.
    pub async fn kv_put(&self, path: &str, data: &[(&str, &str)]) -> Result<u64> {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        let response = self
            .root(
                Method::POST,
                &format!("secret/data/{path}"),
                Some(json!({ "data": data })),
            )
            .await?;
        response["data"]["version"]
            .as_u64()
            .with_context(|| format!("no version in the answer to a KV write: {response}"))
    }

    /// Reads the latest version of `secret/<path>` with the root token; `None`
    /// if it does not exist or its latest version is deleted.
    pub async fn kv_get(&self, path: &str) -> Result<Option<BTreeMap<String, String>>> {
        let (status, body) = self
            .request(
                Method::GET,
                &format!("secret/data/{path}"),
                Some(&self.root_token),
                None,
            )
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            bail!("reading secret/{path}: {status} {body}");
        }
        let data = body["data"]["data"]
            .as_object()
            .with_context(|| format!("no data in {body}"))?;
        Ok(Some(
            data.iter()
                .map(|(k, v)| {
                    let value = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), value)
                })
                .collect(),
        ))
    }

    /// Deletes the latest version of `secret/<path>`, like `vault kv delete`
    /// (older versions and the metadata stay).
    pub async fn kv_delete(&self, path: &str) -> Result<()> {
        self.root(Method::DELETE, &format!("secret/data/{path}"), None)
            .await?;
        Ok(())
    }

    /// Removes `secret/<path>` with all its versions and metadata, like
    /// `vault kv metadata delete`.
    pub async fn kv_delete_all(&self, path: &str) -> Result<()> {
        self.root(Method::DELETE, &format!("secret/metadata/{path}"), None)
            .await?;
        Ok(())
    }

    /// Writes the ACL policy `name`.
    pub async fn write_policy(&self, name: &str, hcl: &str) -> Result<()> {
        self.root(
            Method::PUT,
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        )
        .await?;
        Ok(())
    }

    /// Enables the AppRole auth method at `auth/approle`.
    pub async fn enable_approle(&self) -> Result<()> {
        self.root(
            Method::POST,
            "sys/auth/approle",
            Some(json!({ "type": "approle" })),
        )
        .await?;
        Ok(())
    }

    /// Creates (or replaces) the AppRole `name` with `policies`; returns its
    /// role ID and a new secret ID.
    pub async fn approle_role(&self, name: &str, policies: &[&str]) -> Result<(String, String)> {
        self.root(
            Method::POST,
            &format!("auth/approle/role/{name}"),
            Some(json!({ "token_policies": policies, "token_ttl": "1h" })),
        )
        .await?;
        let role = self
            .root(
                Method::GET,
                &format!("auth/approle/role/{name}/role-id"),
                None,
            )
            .await?;
        let secret = self
            .root(
                Method::POST,
                &format!("auth/approle/role/{name}/secret-id"),
                None,
            )
            .await?;
        let role_id = role["data"]["role_id"]
            .as_str()
            .with_context(|| format!("no role_id in {role}"))?;
        let secret_id = secret["data"]["secret_id"]
            .as_str()
            .with_context(|| format!("no secret_id in {secret}"))?;
        Ok((role_id.to_string(), secret_id.to_string()))
    }

    /// Logs in with AppRole; returns the answer (`auth.client_token` on success).
    pub async fn approle_login(
        &self,
        role_id: &str,
        secret_id: &str,
    ) -> Result<(StatusCode, Value)> {
        self.request(
            Method::POST,
            "auth/approle/login",
            None,
            Some(json!({ "role_id": role_id, "secret_id": secret_id })),
        )
        .await
    }

    /// Enables Kubernetes auth at `auth/kubernetes`, reviewing tokens through
    /// the real kube-apiserver of `cluster`: its https URL, its CA certificate,
    /// and a token of the ServiceAccount [`TOKEN_REVIEWER_NAMESPACE`]/[`TOKEN_REVIEWER_NAME`]
    /// (bound to `system:auth-delegator`) made with the TokenRequest API.
    pub async fn enable_kubernetes_auth(&self, cluster: &TestCluster) -> Result<()> {
        let client = cluster.admin_client().await?;
        ensure_service_account(&client, TOKEN_REVIEWER_NAMESPACE, TOKEN_REVIEWER_NAME).await?;
        let binding = ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("{TOKEN_REVIEWER_NAME}-auth-delegator")),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "system:auth-delegator".into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: TOKEN_REVIEWER_NAME.into(),
                namespace: Some(TOKEN_REVIEWER_NAMESPACE.into()),
                ..Default::default()
            }]),
        };
        create_if_missing(&Api::<ClusterRoleBinding>::all(client.clone()), &binding).await?;
        let reviewer_jwt =
            service_account_token(cluster, TOKEN_REVIEWER_NAMESPACE, TOKEN_REVIEWER_NAME).await?;
        // The cluster's files are written by the harness (cluster.rs, Pki::write).
        let ca_path = cluster.dir().join("ca.crt");
        let ca_pem = std::fs::read_to_string(&ca_path)
            .with_context(|| format!("reading {}", ca_path.display()))?;
        self.root(
            Method::POST,
            "sys/auth/kubernetes",
            Some(json!({ "type": "kubernetes" })),
        )
        .await?;
        self.root(
            Method::POST,
            "auth/kubernetes/config",
            Some(json!({
                "kubernetes_host": cluster.server_url(),
                "kubernetes_ca_cert": ca_pem,
                "token_reviewer_jwt": reviewer_jwt,
                // Vault is not running in a pod: use only what is configured here.
                "disable_local_ca_jwt": true,
            })),
        )
        .await?;
        Ok(())
    }

    /// Creates (or replaces) the Kubernetes auth role `name` for the
    /// ServiceAccount `namespace`/`service_account`, giving `policies`.
    pub async fn kubernetes_role(
        &self,
        name: &str,
        service_account: &str,
        namespace: &str,
        policies: &[&str],
    ) -> Result<()> {
        self.root(
            Method::POST,
            &format!("auth/kubernetes/role/{name}"),
            Some(json!({
                "bound_service_account_names": [service_account],
                "bound_service_account_namespaces": [namespace],
                "token_policies": policies,
                "token_ttl": "1h",
            })),
        )
        .await?;
        Ok(())
    }

    /// Logs in with Kubernetes auth; returns the answer (`auth.client_token` on success).
    pub async fn kubernetes_login(&self, role: &str, jwt: &str) -> Result<(StatusCode, Value)> {
        self.request(
            Method::POST,
            "auth/kubernetes/login",
            None,
            Some(json!({ "role": role, "jwt": jwt })),
        )
        .await
    }
}

impl Drop for VaultServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates `namespace` and the ServiceAccount `name` in it unless they exist.
pub async fn ensure_service_account(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    create_if_missing(&Api::<Namespace>::all(client.clone()), &ns).await?;
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    create_if_missing(
        &Api::<ServiceAccount>::namespaced(client.clone(), namespace),
        &sa,
    )
    .await
}

async fn create_if_missing<K>(api: &Api<K>, object: &K) -> Result<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| {
            format!(
                "creating {} {}",
                K::kind(&()),
                object.meta().name.as_deref().unwrap_or_default()
            )
        }),
    }
}

/// A token for the ServiceAccount `namespace`/`name` (created if missing),
/// made by the real API server's TokenRequest API, as a pod would get it:
/// default audience, one hour.
pub async fn service_account_token(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
) -> Result<String> {
    let client = cluster.admin_client().await?;
    ensure_service_account(&client, namespace, name).await?;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let answer = Api::<ServiceAccount>::namespaced(client, namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for {namespace}/{name}"))?;
    let token = answer
        .status
        .and_then(|status| status.token)
        .filter(|token| !token.is_empty())
        .with_context(|| format!("TokenRequest for {namespace}/{name} returned no token"))?;
    Ok(token)
}
