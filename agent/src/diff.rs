//! What a sync would change, as unified diffs of YAML per object. Secret
//! values are never shown: each is replaced by a marker saying whether it changed.

use std::sync::Arc;

use serde_json::Value;
use similar::TextDiff;
use tracing::{Instrument as _, info_span};

use crate::config::AgentConfig;
use crate::daemon::{AgentError, fetch};
use crate::inventory::InventoryStore;
use crate::limits::Limits;
use crate::plan::{Plan, comparable};
use crate::reconcile::{
    Prepared, Reconcile, StageClock, Stopped, SyncError, load_release, prepare_release,
};
use crate::secrets::VaultSession;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("application {application}: {error}")]
    Stopped {
        application: String,
        #[source]
        error: SyncError,
    },
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("no release or application named {0}")]
    NoMatch(String),
}

/// What a sync of every application (or only `only`, a release or application
/// name) would change now, as text. Reads the cluster; writes nothing.
pub async fn diff_applications(
    config: &AgentConfig,
    client: &kube::Client,
    only: Option<&str>,
) -> Result<String, DiffError> {
    let mut out = String::new();
    let mut matched = false;
    let vault = match &config.vault {
        Some(vault) => Some(tokio::sync::Mutex::new(
            VaultSession::new(vault.clone()).map_err(|error| DiffError::Stopped {
                application: "(all)".into(),
                error: error.into(),
            })?,
        )),
        None => None,
    };
    let limits = Limits::new(&config.concurrency);
    for application in &config.applications {
        let stopped = |error: SyncError| DiffError::Stopped {
            application: application.name.clone(),
            error,
        };
        let (_, tree) = fetch(config, &limits, application, None)
            .instrument(info_span!("fetch", application = %application.name))
            .await?;
        let tree = Arc::new(tree);
        let commit = tree.commit_info().cloned().unwrap_or_default();
        let release = load_release(&tree, &application.release_file)
            .await
            .map_err(stopped)?;
        if only.is_some_and(|n| n != release.name && n != application.name) {
            continue;
        }
        matched = true;
        out.push_str(&format!(
            "# release {} (application {}, commit {commit})\n",
            release.name, application.name
        ));
        out.push_str(&current_health(config, client, &release.name).await);
        let prepared = prepare_release(
            Reconcile {
                config,
                client,
                tree,
                release_file: &application.release_file,
                vault: vault.as_ref(),
                full_compare: true,
                // Show every deletion; the guard applies when syncing.
                max_prune_fraction: 1.0,
                keep_compared: true,
                clock: &StageClock::default(),
                limits: &limits,
            },
            release,
        )
        .await
        .map_err(|Stopped { error, .. }| stopped(error))?;
        match prepared {
            Prepared::NotTargeted { .. } => out.push_str(&format!(
                "# not targeted at {}: no changes\n",
                config.context
            )),
            Prepared::Planned(planned) => out.push_str(&format_diffs(&diff_plan(&planned.plan))),
        }
    }
    match only {
        Some(name) if !matched => Err(DiffError::NoMatch(name.to_string())),
        _ => Ok(out),
    }
}

/// "# now: <commit> healthy since <time>" from the release's history, or
/// nothing for a release never synced here.
async fn current_health(config: &AgentConfig, client: &kube::Client, release: &str) -> String {
    let store = InventoryStore::new(
        client.clone(),
        &config.state_namespace,
        release,
        config.history_limit,
    );
    let Ok(history) = store.history().await else {
        return String::new();
    };
    let Some(newest) = history.iter().find(|e| e.health.is_some()) else {
        return String::new();
    };
    let health = newest.health.map(|h| h.to_string()).unwrap_or_default();
    let mut line = format!(
        "# now: {} {health} since {}",
        newest.commit.chars().take(12).collect::<String>(),
        newest.started_at
    );
    if let Some(reason) = &newest.health_reason {
        line.push_str(&format!(" ({reason})"));
    }
    line.push('\n');
    line
}

const REDACTED_CHANGED: &str = "(redacted: changed)";
const REDACTED_UNCHANGED: &str = "(redacted: unchanged)";
const REDACTED_NEW: &str = "(redacted)";

/// One object's change.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectDiff {
    pub object: String,
    pub change: Change,
    /// Unified diff (empty for unchanged objects).
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Delete,
    Unchanged,
}

/// Diffs every object of a plan that was built with a full comparison.
pub fn diff_plan(plan: &Plan) -> Vec<ObjectDiff> {
    let mut diffs = Vec::new();
    for item in &plan.objects {
        let name = item.object_ref().to_string();
        let mut desired = item
            .dry_run
            .as_deref()
            .map(comparable)
            .unwrap_or_else(|| item.object.manifest());
        match &item.live {
            None => {
                let mut empty = Value::Null;
                redact_secret(&mut empty, &mut desired);
                diffs.push(ObjectDiff {
                    text: unified(&name, "", &to_yaml(&desired)),
                    object: name,
                    change: Change::Create,
                });
            }
            Some(live) => {
                let mut live = comparable(live);
                let changed = live != desired;
                redact_secret(&mut live, &mut desired);
                let (before, after) = (to_yaml(&live), to_yaml(&desired));
                let change = if !changed {
                    Change::Unchanged
                } else {
                    Change::Update
                };
                diffs.push(ObjectDiff {
                    text: if change == Change::Update {
                        unified(&name, &before, &after)
                    } else {
                        String::new()
                    },
                    object: name,
                    change,
                });
            }
        }
    }
    for object in &plan.prune {
        diffs.push(ObjectDiff {
            object: object.to_string(),
            change: Change::Delete,
            text: String::new(),
        });
    }
    diffs
}

/// Prints diffs as a person reads them: one header per changed object.
pub fn format_diffs(diffs: &[ObjectDiff]) -> String {
    let mut out = String::new();
    for diff in diffs {
        match diff.change {
            Change::Unchanged => {}
            Change::Create => out.push_str(&format!("# create {}\n{}", diff.object, diff.text)),
            Change::Update => out.push_str(&format!("# update {}\n{}", diff.object, diff.text)),
            Change::Delete => out.push_str(&format!("# delete {}\n", diff.object)),
        }
    }
    let count = |c: Change| diffs.iter().filter(|d| d.change == c).count();
    out.push_str(&format!(
        "# {} to create, {} to update, {} to delete, {} unchanged\n",
        count(Change::Create),
        count(Change::Update),
        count(Change::Delete),
        count(Change::Unchanged)
    ));
    out
}

fn unified(name: &str, before: &str, after: &str) -> String {
    TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{name}"), &format!("desired/{name}"))
        .to_string()
}

fn to_yaml(value: &Value) -> String {
    if value.is_null() {
        return String::new();
    }
    serde_yaml::to_string(value).unwrap_or_default()
}

/// Replaces the values of a Secret's `data` and `stringData` in both versions
/// with markers that only say whether each value changed: the desired side
/// reads `(redacted: changed)`, `(redacted: unchanged)` or `(redacted)` (new
/// key); the live side `(redacted: unchanged)` or `(redacted)`, so a changed
/// value still shows as a changed line.
pub fn redact_secret(live: &mut Value, desired: &mut Value) {
    let is_secret = |v: &Value| v["kind"] == "Secret" && v["apiVersion"] == "v1";
    if !is_secret(desired) && !is_secret(live) {
        return;
    }
    let live_values = secret_values(live);
    let desired_values = secret_values(desired);
    let same = |key: &str, value: &[u8], others: &[(String, Vec<u8>)]| {
        others.iter().any(|(k, v)| k == key && v == value)
    };
    for field in ["data", "stringData"] {
        if let Some(map) = desired.get_mut(field).and_then(Value::as_object_mut) {
            for (key, entry) in map.iter_mut() {
                let value = decoded(field, entry);
                let marker = if same(key, &value, &live_values) {
                    REDACTED_UNCHANGED
                } else if live_values.iter().any(|(k, _)| k == key) {
                    REDACTED_CHANGED
                } else {
                    REDACTED_NEW
                };
                *entry = Value::String(marker.to_string());
            }
        }
        if let Some(map) = live.get_mut(field).and_then(Value::as_object_mut) {
            for (key, entry) in map.iter_mut() {
                let value = decoded(field, entry);
                let marker = if same(key, &value, &desired_values) {
                    REDACTED_UNCHANGED
                } else {
                    REDACTED_NEW
                };
                *entry = Value::String(marker.to_string());
            }
        }
    }
}

/// The decoded values of a Secret (`data` is base64, `stringData` plain).
fn secret_values(secret: &Value) -> Vec<(String, Vec<u8>)> {
    let mut values = Vec::new();
    for field in ["data", "stringData"] {
        if let Some(map) = secret.get(field).and_then(Value::as_object) {
            for (key, entry) in map {
                values.push((key.clone(), decoded(field, entry)));
            }
        }
    }
    values
}

fn decoded(field: &str, entry: &Value) -> Vec<u8> {
    use base64::Engine as _;
    let text = entry.as_str().unwrap_or_default();
    if field == "data" {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_else(|_| text.as_bytes().to_vec())
    } else {
        text.as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_appear_and_changes_are_marked() {
        let mut live = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}
        });
        let mut desired = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": "czNjcjN0", "user": "YWRtaW4=", "token": "dG9r"}
        });
        redact_secret(&mut live, &mut desired);
        let text = unified("Secret x/s", &to_yaml(&live), &to_yaml(&desired));
        for secret in [
            "aHVudGVyMg==",
            "czNjcjN0",
            "YWRtaW4=",
            "dG9r",
            "hunter2",
            "s3cr3t",
        ] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        assert_eq!(desired["data"]["password"], REDACTED_CHANGED);
        assert_eq!(live["data"]["password"], REDACTED_NEW);
        assert_eq!(live["data"]["user"], REDACTED_UNCHANGED);
        assert!(text.contains("-  password: (redacted)"), "{text}");
        assert!(
            text.contains("+  password: '(redacted: changed)'"),
            "{text}"
        );
        assert_eq!(desired["data"]["user"], REDACTED_UNCHANGED);
        assert_eq!(desired["data"]["token"], REDACTED_NEW);
    }

    #[test]
    fn other_kinds_are_shown_as_they_are() {
        let mut live =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}});
        let mut desired =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "2"}});
        redact_secret(&mut live, &mut desired);
        let text = unified("ConfigMap x/c", &to_yaml(&live), &to_yaml(&desired));
        assert!(
            text.contains("-  a: '1'") && text.contains("+  a: '2'"),
            "{text}"
        );
    }
}
