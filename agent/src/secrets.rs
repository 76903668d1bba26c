//! The secrets stage: reads the secrets a release declares from Vault with
//! this cluster's own identity, builds the release's Kubernetes Secret, and
//! stamps a checksum of it on the release's pod templates so that a changed
//! secret rolls the pods and an unchanged one does not.
//!
//! Values live only in memory and in the Secret object; they never reach
//! logs, errors, diffs or the history.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tracing::{debug, info};
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::objects::DesiredObject;
use crate::release::ReleaseFile;

/// Annotation on pod templates: checksum of the release's Secret data.
pub const CHECKSUM_ANNOTATION: &str = "berth.dev/secrets-checksum";
/// Annotation on the Secret: the salt of that checksum (see [`checksum`]).
pub const SALT_ANNOTATION: &str = "berth.dev/checksum-salt";

/// How the agent reaches Vault (the `vault:` section of the agent configuration).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    pub address: String,
    /// KV version 2 mount holding the application secrets.
    #[serde(default = "default_kv_mount")]
    pub kv_mount: String,
    /// Path of an entry inside the mount; `{app}`, `{cluster}` and `{name}` are replaced.
    /// The cluster-specific entry is read first, then the same path with
    /// `{cluster}` = `default`.
    #[serde(default = "default_path_template")]
    pub path_template: String,
    pub auth: VaultAuth,
    /// PEM file of the CA that signed Vault's certificate (https only).
    #[serde(default)]
    pub ca_cert_file: Option<std::path::PathBuf>,
}

fn default_kv_mount() -> String {
    "secret".into()
}

fn default_path_template() -> String {
    "{app}/{cluster}/{name}".into()
}

/// The identity the agent logs in with.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum VaultAuth {
    /// Vault's Kubernetes auth: the agent's service-account token, reviewed by the cluster.
    Kubernetes {
        role: String,
        #[serde(default = "default_kubernetes_mount")]
        mount: String,
        #[serde(default = "default_token_file")]
        token_file: std::path::PathBuf,
    },
    /// AppRole: a role id and a secret id read from files.
    Approle {
        role_id_file: std::path::PathBuf,
        secret_id_file: std::path::PathBuf,
        #[serde(default = "default_approle_mount")]
        mount: String,
    },
}

fn default_kubernetes_mount() -> String {
    "kubernetes".into()
}

fn default_token_file() -> std::path::PathBuf {
    "/var/run/secrets/kubernetes.io/serviceaccount/token".into()
}

fn default_approle_mount() -> String {
    "approle".into()
}

/// Why secrets could not be read. None of these carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("release {release} declares secrets but the agent has no vault configuration")]
    NotConfigured { release: String },
    #[error("Vault at {address} cannot be reached: {cause}")]
    Unreachable { address: String, cause: String },
    #[error("Vault at {address} is sealed")]
    Sealed { address: String },
    #[error("logging in to Vault ({method}) failed: {cause}")]
    Login { method: String, cause: String },
    #[error(
        "reading {path} from Vault was refused (permission denied): the agent's policy does not allow it"
    )]
    PermissionDenied { path: String },
    #[error(
        "secret {name} of release {release} not found in Vault at {cluster_entry} nor {default_entry}"
    )]
    NotFound {
        release: String,
        name: String,
        /// The entry's path, followed by why it is not read when it exists
        /// (" (its latest version, 3, was deleted at ...)").
        cluster_entry: String,
        default_entry: String,
    },
    #[error(
        "Vault's answer for {path} is not a KV version 2 entry (is {mount} a KV version 2 mount?)"
    )]
    NotKv2 { path: String, mount: String },
    #[error("Vault entry {path} has no field {field:?}")]
    MissingField { path: String, field: String },
    #[error("reading {path} from Vault failed: {cause}")]
    Read { path: String, cause: String },
}

impl SecretsError {
    /// Vault is down or sealed: defer the sync and retry, leaving everything as it is.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SecretsError::Unreachable { .. } | SecretsError::Sealed { .. }
        )
    }
}

/// A secret value; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// The two entries tried for one secret, most specific first.
pub fn entry_paths(template: &str, app: &str, cluster: &str, name: &str) -> [String; 2] {
    let fill = |cluster: &str| {
        template
            .replace("{app}", app)
            .replace("{cluster}", cluster)
            .replace("{name}", name)
    };
    [fill(cluster), fill("default")]
}

/// A logged-in Vault client that renews its token before it expires and logs
/// in again when the token stops working (e.g. after a Vault restart).
pub struct VaultSession {
    config: VaultConfig,
    client: VaultClient,
    expires: Option<Instant>,
    lease: Duration,
    renewable: bool,
    /// Where logins and renewals are counted (the agent's metrics).
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

/// Tells apart Vault not answering (unreachable: defer and retry), answering
/// that it is sealed (defer), and answering something else (a failure).
fn client_error(address: &str, error: ClientError) -> SecretsError {
    use rustify::errors::ClientError as Http;
    match error {
        ClientError::APIError { code: 503, .. }
        | ClientError::RestClientError {
            source: Http::ServerResponseError { code: 503, .. },
        } => SecretsError::Sealed {
            address: address.to_string(),
        },
        // Vault (or a proxy before it) is overloaded or failing: as good as
        // unreachable, and likely to pass.
        ClientError::APIError { code, .. }
        | ClientError::RestClientError {
            source: Http::ServerResponseError { code, .. },
        } if code == 429 || (500..600).contains(&code) => SecretsError::Unreachable {
            address: address.to_string(),
            cause: format!("Vault answered with status {code}"),
        },
        // An answer with a status but no `errors` list, which vaultrs leaves
        // as the HTTP layer's error: Vault answered.
        ClientError::RestClientError {
            source: Http::ServerResponseError { code, .. },
        } => SecretsError::Read {
            path: address.to_string(),
            cause: format!("Vault answered with status {code}"),
        },
        ClientError::RestClientError {
            source: source @ (Http::RequestError { .. } | Http::ResponseError { .. }),
        } => SecretsError::Unreachable {
            address: address.to_string(),
            cause: error_chain(&source),
        },
        other => SecretsError::Read {
            path: address.to_string(),
            cause: error_chain(&other),
        },
    }
}

/// An error and its causes, `: `-separated (the HTTP layer's own message
/// says little: "Error sending HTTP request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What Vault holds at one entry path.
enum Entry {
    Value(SecretValue),
    /// No such entry.
    Missing,
    /// The entry exists but its latest version cannot be read: why (" (its
    /// latest version, 3, was deleted at ...)").
    Unreadable(String),
}

/// Why a KV v2 read answered 404 although the entry exists: its latest
/// version was deleted (soft, undoable) or destroyed. `None` for a plain
/// 404 (no such entry).
fn deleted_version(answer: Option<&str>) -> Option<String> {
    let answer: Value = serde_json::from_str(answer?).ok()?;
    let metadata = answer.pointer("/data/metadata")?;
    let version = metadata
        .get("version")
        .and_then(Value::as_u64)
        .map(|v| format!(", {v},"))
        .unwrap_or_default();
    if metadata.get("destroyed").and_then(Value::as_bool) == Some(true) {
        return Some(format!(
            " (its latest version{version} was destroyed; write a new version)"
        ));
    }
    let deleted = metadata
        .get("deletion_time")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())?;
    Some(format!(
        " (its latest version{version} was deleted at {deleted}; `vault kv undelete` restores it)"
    ))
}

impl VaultSession {
    pub fn new(config: VaultConfig) -> Result<Self, SecretsError> {
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&config.address)
            .token("")
            .timeout(Some(Duration::from_secs(10)));
        if let Some(ca) = &config.ca_cert_file {
            settings.ca_certs(vec![ca.display().to_string()]);
        }
        let client = settings
            .build()
            .map_err(|e| SecretsError::Login {
                method: "settings".into(),
                cause: e.to_string(),
            })
            .and_then(|s| {
                VaultClient::new(s).map_err(|e| SecretsError::Login {
                    method: "client".into(),
                    cause: e.to_string(),
                })
            })?;
        Ok(Self {
            config,
            client,
            expires: None,
            lease: Duration::ZERO,
            renewable: false,
            metrics: None,
        })
    }

    /// Counts logins and renewals in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, operation: &str, ok: bool) {
        if let Some(metrics) = &self.metrics {
            metrics.record_vault_auth(operation, ok);
        }
    }

    async fn login(&mut self) -> Result<(), SecretsError> {
        let result = self.log_in().await;
        self.count("login", result.is_ok());
        result
    }

    async fn log_in(&mut self) -> Result<(), SecretsError> {
        let address = self.config.address.clone();
        let (method, result) = match &self.config.auth {
            VaultAuth::Kubernetes {
                role,
                mount,
                token_file,
            } => {
                let jwt = std::fs::read_to_string(token_file).map_err(|e| SecretsError::Login {
                    method: "kubernetes".into(),
                    cause: format!("reading {}: {e}", token_file.display()),
                })?;
                (
                    "kubernetes",
                    vaultrs::auth::kubernetes::login(&self.client, mount, role, jwt.trim()).await,
                )
            }
            VaultAuth::Approle {
                role_id_file,
                secret_id_file,
                mount,
            } => {
                let read = |path: &std::path::Path| {
                    std::fs::read_to_string(path)
                        .map(|s| s.trim().to_string())
                        .map_err(|e| SecretsError::Login {
                            method: "approle".into(),
                            cause: format!("reading {}: {e}", path.display()),
                        })
                };
                let (role_id, secret_id) = (read(role_id_file)?, read(secret_id_file)?);
                (
                    "approle",
                    vaultrs::auth::approle::login(&self.client, mount, &role_id, &secret_id).await,
                )
            }
        };
        let auth = result.map_err(|error| match client_error(&address, error) {
            SecretsError::Read { cause, .. } => SecretsError::Login {
                method: method.into(),
                cause,
            },
            transient => transient,
        })?;
        self.client.set_token(&auth.client_token);
        self.lease = Duration::from_secs(auth.lease_duration);
        // A token without a lease (e.g. root) never expires.
        self.expires = Some(if auth.lease_duration > 0 {
            Instant::now() + self.lease
        } else {
            Instant::now() + Duration::from_secs(u32::MAX as u64)
        });
        self.renewable = auth.renewable;
        info!(
            method,
            lease_seconds = auth.lease_duration,
            "logged in to Vault"
        );
        Ok(())
    }

    /// Makes sure the session holds a token that is valid for a while: renews
    /// it in the last third of its lease, and logs in again when renewal is
    /// not possible or fails.
    async fn ensure_token(&mut self) -> Result<(), SecretsError> {
        let Some(expires) = self.expires else {
            return self.login().await;
        };
        let left = expires.saturating_duration_since(Instant::now());
        if left > self.lease / 3 && left > Duration::from_secs(30) {
            return Ok(());
        }
        let renewed = if self.renewable {
            let renewal = vaultrs::token::renew_self(&self.client, None).await;
            self.count("renewal", renewal.is_ok());
            renewal.ok()
        } else {
            None
        };
        if let Some(auth) = renewed
            && auth.lease_duration > 0
        {
            self.lease = Duration::from_secs(auth.lease_duration);
            self.expires = Some(Instant::now() + self.lease);
            debug!(
                lease_seconds = auth.lease_duration,
                "renewed the Vault token"
            );
            return Ok(());
        }
        self.login().await
    }

    /// Reads one field of a KV v2 entry.
    async fn read_entry(&mut self, path: &str, field: &str) -> Result<Entry, SecretsError> {
        let mount = self.config.kv_mount.clone();
        let full = format!("{mount}/{path}");
        let mut relogged = false;
        loop {
            self.ensure_token().await?;
            match vaultrs::kv2::read::<BTreeMap<String, Value>>(&self.client, &mount, path).await {
                Ok(data) => {
                    let value = data.get(field).ok_or_else(|| SecretsError::MissingField {
                        path: full.clone(),
                        field: field.to_string(),
                    })?;
                    let bytes = match value {
                        Value::String(s) => s.as_bytes().to_vec(),
                        other => other.to_string().into_bytes(),
                    };
                    return Ok(Entry::Value(SecretValue(bytes)));
                }
                Err(ClientError::APIError { code: 404, .. }) => return Ok(Entry::Missing),
                // A deleted or destroyed latest version: Vault answers 404
                // with the entry's metadata (and no `errors` list).
                Err(ClientError::RestClientError {
                    source: rustify::errors::ClientError::ServerResponseError { code: 404, content },
                }) => {
                    return Ok(match deleted_version(content.as_deref()) {
                        Some(why) => Entry::Unreadable(why),
                        None => Entry::Missing,
                    });
                }
                Err(
                    ClientError::RestClientError {
                        source: rustify::errors::ClientError::ResponseParseError { .. },
                    }
                    | ClientError::JsonParseError { .. },
                ) => {
                    return Err(SecretsError::NotKv2 { path: full, mount });
                }
                // A token that stopped working (Vault restarted, token revoked): log in once more.
                Err(ClientError::APIError { code: 403, .. }) if !relogged => {
                    relogged = true;
                    self.expires = None;
                }
                Err(ClientError::APIError { code: 403, .. }) => {
                    return Err(SecretsError::PermissionDenied { path: full });
                }
                Err(error) => {
                    return Err(match client_error(&self.config.address, error) {
                        SecretsError::Read { cause, .. } => {
                            SecretsError::Read { path: full, cause }
                        }
                        other => other,
                    });
                }
            }
        }
    }

    /// Reads every secret the release declares, cluster entry first, then the
    /// default one. All or nothing: any failure returns an error and no values.
    pub async fn read_release_secrets(
        &mut self,
        release: &ReleaseFile,
        cluster: &str,
    ) -> Result<BTreeMap<String, SecretValue>, SecretsError> {
        let mut values = BTreeMap::new();
        for secret in &release.secrets {
            let field = secret.field.as_deref().unwrap_or("value");
            let [cluster_path, default_path] = entry_paths(
                &self.config.path_template,
                &release.name,
                cluster,
                &secret.name,
            );
            // A deleted cluster entry is as good as none: the default one
            // is read, and if neither has a value both are named.
            let mut notes = [String::new(), String::new()];
            let mut found = None;
            for (path, note) in [&cluster_path, &default_path].into_iter().zip(&mut notes) {
                match self.read_entry(path, field).await? {
                    Entry::Value(value) => {
                        debug!(secret = %secret.name, %path, "read secret");
                        found = Some(value);
                        break;
                    }
                    Entry::Missing => {}
                    Entry::Unreadable(why) => *note = why,
                }
            }
            let Some(value) = found else {
                let [cluster_note, default_note] = notes;
                let mount = &self.config.kv_mount;
                return Err(SecretsError::NotFound {
                    release: release.name.clone(),
                    name: secret.name.clone(),
                    cluster_entry: format!("{mount}/{cluster_path}{cluster_note}"),
                    default_entry: format!("{mount}/{default_path}{default_note}"),
                });
            };
            values.insert(secret.name.clone(), value);
        }
        Ok(values)
    }
}

/// Name of the Secret berth writes for a release.
pub fn secret_name(release: &ReleaseFile) -> String {
    format!("{}-secrets", release.name)
}

/// The checksum stamped on pod templates: sha256 over a salt and the sorted
/// key/value pairs. The salt (random, kept on the Secret) stops anyone who can
/// read pod templates but not Secrets from testing guesses of a weak value.
pub fn checksum(salt: &str, values: &BTreeMap<String, SecretValue>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    for (key, value) in values {
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.0.len() as u64).to_be_bytes());
        hasher.update(&value.0);
    }
    hex::encode(hasher.finalize())
}

/// A new random salt (hex).
pub fn new_salt() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The release's Secret: one key per declared secret.
pub fn secret_object(
    release: &ReleaseFile,
    values: &BTreeMap<String, SecretValue>,
    salt: &str,
) -> DesiredObject {
    let data: Map<String, Value> = values
        .iter()
        .map(|(key, value)| {
            (
                key.clone(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(&value.0)),
            )
        })
        .collect();
    DesiredObject::new(
        "berth/secrets".to_string(),
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": secret_name(release),
                "namespace": release.namespace,
                "annotations": { SALT_ANNOTATION: salt },
            },
            "data": data,
        }),
    )
}

/// Where the pod template sits in a workload kind that runs pods.
fn pod_template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Stamps the checksum on every workload's pod template.
pub fn stamp_checksum(objects: &mut [DesiredObject], checksum: &str) -> usize {
    let mut stamped = 0;
    for object in objects.iter_mut() {
        let Some(pointer) = pod_template_pointer(object.kind()) else {
            continue;
        };
        let done = object.edit(|manifest| {
            let Some(template) = manifest.pointer_mut(pointer).and_then(Value::as_object_mut)
            else {
                return false;
            };
            let metadata = template
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(annotations) = metadata.as_object_mut().and_then(|metadata| {
                metadata
                    .entry("annotations")
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
            }) else {
                return false;
            };
            annotations.insert(
                CHECKSUM_ANNOTATION.to_string(),
                Value::String(checksum.to_string()),
            );
            true
        });
        stamped += usize::from(done);
    }
    stamped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn cluster_entry_comes_before_the_default() {
        let [first, second] = entry_paths("{app}/{cluster}/{name}", "demo", "gke-1", "db");
        assert_eq!(first, "demo/gke-1/db");
        assert_eq!(second, "demo/default/db");
    }

    #[test]
    fn checksum_changes_with_any_value_and_not_otherwise() {
        let a = checksum("salt", &values(&[("db", "one"), ("api", "two")]));
        assert_eq!(
            a,
            checksum("salt", &values(&[("api", "two"), ("db", "one")]))
        );
        assert_ne!(
            a,
            checksum("salt", &values(&[("db", "one!"), ("api", "two")]))
        );
        assert_ne!(
            a,
            checksum("other", &values(&[("db", "one"), ("api", "two")]))
        );
        // Key/value boundaries matter.
        assert_ne!(
            checksum("s", &values(&[("ab", "c")])),
            checksum("s", &values(&[("a", "bc")]))
        );
    }

    #[test]
    fn debug_never_shows_a_value() {
        let text = format!("{:?}", values(&[("db", "hunter2")]));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn checksum_is_stamped_on_pod_templates_only() {
        let mut objects: Vec<DesiredObject> = [
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{}}}}"#,
            r#"{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"jobTemplate":{"spec":{"template":{"metadata":{"annotations":{"a":"b"}}}}}}}"#,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"m"}}"#,
        ]
        .iter()
        .map(|text| DesiredObject::new("t".into(), serde_json::from_str(text).unwrap()))
        .collect();
        assert_eq!(stamp_checksum(&mut objects, "abc"), 2);
        assert_eq!(
            objects[0].manifest()["spec"]["template"]["metadata"]["annotations"]
                [CHECKSUM_ANNOTATION],
            "abc"
        );
        let cron = &objects[1].manifest()["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(cron[CHECKSUM_ANNOTATION], "abc");
        assert_eq!(cron["a"], "b");
        assert!(objects[2].manifest().get("spec").is_none());
    }

    #[test]
    fn a_deleted_or_destroyed_version_is_told_from_a_missing_entry() {
        // Vault's 404 answers to a KV v2 read (no `errors` list with the
        // metadata).
        let deleted = r#"{"data":{"data":null,"metadata":{"created_time":"2026-12-04T10:00:00Z","deletion_time":"2026-12-04T11:00:00Z","destroyed":false,"version":3}}}"#;
        assert_eq!(
            deleted_version(Some(deleted)).as_deref(),
            Some(
                " (its latest version, 3, was deleted at 2026-12-04T11:00:00Z; `vault kv undelete` restores it)"
            )
        );
        let destroyed = r#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":2}}}"#;
        assert_eq!(
            deleted_version(Some(destroyed)).as_deref(),
            Some(" (its latest version, 2, was destroyed; write a new version)")
        );
        assert_eq!(deleted_version(Some(r#"{"errors":[]}"#)), None);
        assert_eq!(deleted_version(Some("not json")), None);
        assert_eq!(deleted_version(None), None);
    }

    #[test]
    fn only_no_answer_overload_or_a_seal_defer_a_sync() {
        use rustify::errors::ClientError as Http;
        let answered = |code: u16| ClientError::RestClientError {
            source: Http::ServerResponseError {
                code,
                content: Some("{}".into()),
            },
        };
        let classified = |error| client_error("http://vault:8200", error);
        assert!(matches!(
            classified(answered(503)),
            SecretsError::Sealed { .. }
        ));
        assert!(classified(answered(502)).is_transient());
        assert!(classified(answered(429)).is_transient());
        assert!(
            classified(ClientError::APIError {
                code: 500,
                errors: vec!["internal error".into()]
            })
            .is_transient()
        );
        let refused = classified(answered(400));
        assert!(!refused.is_transient());
        assert_eq!(
            refused.to_string(),
            "reading http://vault:8200 from Vault failed: Vault answered with status 400"
        );
        let unreachable = classified(ClientError::RestClientError {
            source: Http::RequestError {
                source: anyhow::anyhow!("connection refused"),
                url: "http://vault:8200/v1/secret/data/x".into(),
                method: "GET".into(),
            },
        });
        assert!(unreachable.is_transient());
        assert_eq!(
            unreachable.to_string(),
            "Vault at http://vault:8200 cannot be reached: Error sending HTTP request: connection refused"
        );
    }

    #[test]
    fn salts_differ() {
        assert_ne!(new_salt(), new_salt());
        assert_eq!(new_salt().len(), 32);
    }
}
