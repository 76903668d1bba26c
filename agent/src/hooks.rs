//! Helm hooks: objects annotated `helm.sh/hook` are not part of the release
//! but run around its apply: `pre-install`/`pre-upgrade` before any object
//! changes, `post-install`/`post-upgrade` once the release is healthy.
//! Install means the release has no inventory on this cluster yet; upgrade
//! means it has one. Each hook is applied in `helm.sh/hook-weight` order
//! (then by name) and waited for with the health rules; its
//! `helm.sh/hook-delete-policy` says when it is deleted. Test hooks, and the
//! delete and rollback events, are never run (docs/health.md says why).

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch};
use kube::{Client, ResourceExt as _};
use tracing::info;

use crate::drift::DriftWatches;
use crate::health::{self, Health, Tracked};
use crate::objects::{DesiredObject, FIELD_MANAGER, ObjectRef};
use crate::plan::KindResolver;
use crate::release::ReleaseFile;

const HOOK: &str = "helm.sh/hook";
const WEIGHT: &str = "helm.sh/hook-weight";
const DELETE_POLICY: &str = "helm.sh/hook-delete-policy";

/// When a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookEvent {
    PreInstall,
    PostInstall,
    PreUpgrade,
    PostUpgrade,
}

impl HookEvent {
    fn name(self) -> &'static str {
        match self {
            HookEvent::PreInstall => "pre-install",
            HookEvent::PostInstall => "post-install",
            HookEvent::PreUpgrade => "pre-upgrade",
            HookEvent::PostUpgrade => "post-upgrade",
        }
    }

    /// The event before (`pre` true) or after the apply of an install or an upgrade.
    pub fn around(install: bool, pre: bool) -> HookEvent {
        match (install, pre) {
            (true, true) => HookEvent::PreInstall,
            (true, false) => HookEvent::PostInstall,
            (false, true) => HookEvent::PreUpgrade,
            (false, false) => HookEvent::PostUpgrade,
        }
    }
}

impl std::fmt::Display for HookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One rendered hook.
#[derive(Clone, Debug)]
pub struct Hook {
    pub object: DesiredObject,
    /// The events it is annotated with (names as written).
    pub events: Vec<String>,
    pub weight: i64,
    pub delete_policies: Vec<String>,
}

impl Hook {
    /// The hook behind a rendered object annotated `helm.sh/hook`, else `None`.
    pub fn of(object: &DesiredObject) -> Option<Hook> {
        // Most objects are no hooks: no need to parse them to know.
        if !object.json().get().contains("\"helm.sh/hook\"") {
            return None;
        }
        let manifest = object.manifest();
        let annotations = manifest.pointer("/metadata/annotations")?;
        let list = |key: &str| -> Vec<String> {
            annotations
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        annotations.get(HOOK)?;
        let weight = annotations
            .get(WEIGHT)
            .and_then(|v| v.as_str())
            .and_then(|w| w.trim().parse().ok())
            .unwrap_or(0);
        let mut delete_policies = list(DELETE_POLICY);
        if delete_policies.is_empty() {
            delete_policies.push("before-hook-creation".to_string());
        }
        Some(Hook {
            object: object.clone(),
            events: list(HOOK),
            weight,
            delete_policies,
        })
    }

    fn runs_at(&self, event: HookEvent) -> bool {
        self.events.iter().any(|e| e == event.name())
    }

    fn deletes(&self, policy: &str) -> bool {
        self.delete_policies.iter().any(|p| p == policy)
    }
}

/// Why a hook stopped the release.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{event} hook {object} failed: {reason}")]
    Failed {
        event: HookEvent,
        object: ObjectRef,
        reason: String,
    },
    #[error("{event} hook {object}: {context}: {}", crate::kubernetes::describe(.source))]
    Kube {
        event: HookEvent,
        object: ObjectRef,
        context: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{event} hook {object}: kind {kind} is not served by the cluster")]
    UnknownKind {
        event: HookEvent,
        object: ObjectRef,
        kind: String,
    },
}

/// Runs the hooks of `event` one after another; the first that fails stops
/// the rest. Returns how many ran.
pub async fn run(
    client: &Client,
    watches: &Arc<DriftWatches>,
    release: &ReleaseFile,
    cluster: &str,
    hooks: &[Hook],
    event: HookEvent,
    timeout: Duration,
) -> Result<usize, HookError> {
    let mut due: Vec<&Hook> = hooks.iter().filter(|h| h.runs_at(event)).collect();
    due.sort_by(|a, b| {
        a.weight
            .cmp(&b.weight)
            .then_with(|| a.object.name().cmp(b.object.name()))
    });
    let run = HookRun {
        client,
        watches,
        release,
        cluster,
        event,
        timeout,
    };
    let mut resolver = KindResolver::new(client.clone());
    for hook in &due {
        run.one(&mut resolver, hook).await?;
    }
    Ok(due.len())
}

/// What every hook of one event shares.
struct HookRun<'a> {
    client: &'a Client,
    watches: &'a Arc<DriftWatches>,
    release: &'a ReleaseFile,
    cluster: &'a str,
    event: HookEvent,
    timeout: Duration,
}

impl HookRun<'_> {
    async fn one(&self, resolver: &mut KindResolver, hook: &Hook) -> Result<(), HookError> {
        let HookRun {
            client,
            watches,
            release,
            cluster,
            event,
            timeout,
        } = *self;
        let mut object = hook.object.clone();
        let declared = object.object_ref().clone();
        let kube_error = |context: &'static str| {
            let object = declared.clone();
            move |source| HookError::Kube {
                event,
                object,
                context,
                source,
            }
        };
        let Some((resource, namespaced, _)) = resolver
            .resolve(&declared)
            .await
            .map_err(kube_error("looking up its kind"))?
        else {
            return Err(HookError::UnknownKind {
                event,
                object: declared.clone(),
                kind: declared.kind.clone(),
            });
        };
        let namespace =
            namespaced.then(|| object.namespace().unwrap_or(&release.namespace).to_string());
        object.prepare(namespace.as_deref(), &release.name, cluster);
        let reference = object.object_ref().clone();
        let api: Api<DynamicObject> = match &reference.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &*resource),
            None => Api::all_with(client.clone(), &*resource),
        };
        if let Some(namespace) = &reference.namespace {
            // On install the release's namespace does not exist yet.
            crate::inventory::ensure_namespace(client.clone(), namespace)
                .await
                .map_err(kube_error("creating its namespace"))?;
        }
        if hook.deletes("before-hook-creation") {
            delete_and_wait(&api, &reference.name)
                .await
                .map_err(kube_error("deleting the previous run"))?;
        }
        info!(%event, hook = %reference, "running hook");
        api.patch(
            &reference.name,
            &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object.json()),
        )
        .await
        .map_err(kube_error("applying it"))?;
        let tracked = Tracked {
            object: reference.clone(),
            resource,
        };
        let verdict = health::wait(client, watches, &release.name, &[tracked], timeout).await;
        let succeeded = verdict.health == Health::Healthy;
        if (succeeded && hook.deletes("hook-succeeded"))
            || (!succeeded && hook.deletes("hook-failed"))
        {
            delete_and_wait(&api, &reference.name)
                .await
                .map_err(kube_error("deleting it after its run"))?;
        }
        if succeeded {
            info!(%event, hook = %reference, "hook succeeded");
            Ok(())
        } else {
            Err(HookError::Failed {
                event,
                object: reference,
                reason: verdict.reason,
            })
        }
    }
}

/// Longest wait for a deleted hook to be gone.
const DELETE_TIMEOUT: Duration = Duration::from_secs(60);

/// Deletes `name` (its pods with it) and waits, watching, until it is gone.
async fn delete_and_wait(api: &Api<DynamicObject>, name: &str) -> Result<(), kube::Error> {
    let Some(existing) = api.get_opt(name).await? else {
        return Ok(());
    };
    let uid = existing.uid().unwrap_or_default();
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    }
    let gone = kube::runtime::wait::await_condition(
        api.clone(),
        name,
        kube::runtime::conditions::is_deleted(&uid),
    );
    // Still there after the bound: applying again says why.
    let _ = tokio::time::timeout(DELETE_TIMEOUT, gone).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::parse_manifest;

    #[test]
    fn hooks_are_read_from_their_annotations() {
        let text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-install, pre-upgrade\n    helm.sh/hook-weight: \"-5\"\n";
        let object = parse_manifest("demo/templates/migrate.yaml", 1, text)
            .unwrap()
            .unwrap();
        let hook = Hook::of(&object).expect("a hook");
        assert_eq!(hook.events, ["pre-install", "pre-upgrade"]);
        assert_eq!(hook.weight, -5);
        assert_eq!(hook.delete_policies, ["before-hook-creation"]);
        assert!(hook.runs_at(HookEvent::PreUpgrade));
        assert!(!hook.runs_at(HookEvent::PostUpgrade));
        let plain = parse_manifest(
            "demo/templates/cm.yaml",
            1,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        )
        .unwrap()
        .unwrap();
        assert!(Hook::of(&plain).is_none());
    }
}
