//! Carrying out a plan: server-side apply in order (waiting for CRDs to be
//! established), then pruning what the release no longer renders.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch};
use kube::core::GroupVersionKind;
use tracing::{debug, info, warn};

use crate::inventory::{Counts, ensure_namespace};
use crate::objects::{ObjectRef, RELEASE_LABEL};
use crate::plan::{Action, Plan, apply_params, dynamic_api};
use crate::release::ReleaseFile;

const CRD_ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("applying {object}: {}", crate::kubernetes::describe(.source))]
    Apply {
        object: ObjectRef,
        #[source]
        source: kube::Error,
    },
    #[error("creating namespace {namespace}: {}", crate::kubernetes::describe(.source))]
    Namespace {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("CustomResourceDefinition {name} was not established within {timeout:?}")]
    CrdNotEstablished { name: String, timeout: Duration },
    #[error("pruning {object}: {}", crate::kubernetes::describe(.source))]
    Prune {
        object: ObjectRef,
        #[source]
        source: kube::Error,
    },
}

/// Applies every object the plan marks for applying and prunes the rest,
/// as `client` (which may impersonate the release's service account); the
/// release's namespaces are made as `berth` (berth's own identity): they
/// are the release file's, not the chart's. Returns the counts.
pub async fn execute(
    client: &Client,
    berth: &Client,
    release: &ReleaseFile,
    plan: &Plan,
    force_conflicts: bool,
) -> Result<Counts, ApplyError> {
    let mut counts = Counts::default();
    let mut namespaces: Vec<&str> = plan
        .objects
        .iter()
        .filter_map(|p| p.object_ref().namespace.as_deref())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    for namespace in namespaces {
        ensure_namespace(berth.clone(), namespace)
            .await
            .map_err(|source| ApplyError::Namespace {
                namespace: namespace.to_string(),
                source,
            })?;
    }

    let params = apply_params(force_conflicts);
    for item in &plan.objects {
        if item.action == Action::Skip {
            counts.unchanged += 1;
            continue;
        }
        let api = dynamic_api(client, item);
        let applied = api
            .patch(
                &item.object_ref().name,
                &params,
                &Patch::Apply(item.object.json()),
            )
            .await
            .map_err(|source| ApplyError::Apply {
                object: item.object_ref().clone(),
                source,
            })?;
        let live_version = item.live.as_ref().and_then(|l| l.resource_version());
        let outcome = match &item.live {
            None => {
                counts.created += 1;
                "created"
            }
            Some(_) if live_version != applied.resource_version() => {
                counts.updated += 1;
                "updated"
            }
            _ => {
                counts.unchanged += 1;
                "unchanged"
            }
        };
        if outcome == "unchanged" {
            debug!(object = %item.object_ref(), outcome, "applied");
        } else {
            info!(object = %item.object_ref(), outcome, "applied");
        }
        if item.object_ref().kind == "CustomResourceDefinition" {
            wait_established(client, &item.object_ref().name).await?;
        }
    }

    for object in plan.prune.iter().rev() {
        if delete_if_owned(client, release, object).await? {
            counts.deleted += 1;
        }
    }
    Ok(counts)
}

/// Deletes an object the release applied before, only if it still carries the
/// release's label: an object berth does not own is never deleted.
async fn delete_if_owned(
    client: &Client,
    release: &ReleaseFile,
    object: &ObjectRef,
) -> Result<bool, ApplyError> {
    let gvk = GroupVersionKind::gvk(object.group(), object.version(), &object.kind);
    let (resource, capabilities) = match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(found) => found,
        Err(error) => {
            warn!(object = %object, %error, "not pruned: its kind is no longer served");
            return Ok(false);
        }
    };
    let api: Api<DynamicObject> = match (&object.namespace, capabilities.scope) {
        (Some(ns), kube::discovery::Scope::Namespaced) => {
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        _ => Api::all_with(client.clone(), &resource),
    };
    let live = api
        .get_opt(&object.name)
        .await
        .map_err(|source| ApplyError::Prune {
            object: object.clone(),
            source,
        })?;
    let Some(live) = live else {
        return Ok(false);
    };
    if live.labels().get(RELEASE_LABEL) != Some(&release.name) {
        warn!(object = %object, "not pruned: it is no longer labelled as this release's");
        return Ok(false);
    }
    match api.delete(&object.name, &DeleteParams::background()).await {
        Ok(_) => {
            info!(object = %object, "pruned");
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(ApplyError::Prune {
            object: object.clone(),
            source,
        }),
    }
}

async fn wait_established(client: &Client, name: &str) -> Result<(), ApplyError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + CRD_ESTABLISH_TIMEOUT;
    loop {
        let established = api
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|crd| crd.status)
            .and_then(|status| status.conditions)
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ApplyError::CrdNotEstablished {
                name: name.to_string(),
                timeout: CRD_ESTABLISH_TIMEOUT,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
