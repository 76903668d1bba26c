//! Leader election on a `coordination.k8s.io/v1` Lease, so that several
//! replicas run and one writes (docs/operations.md, "Replicas and leader
//! election").
//!
//! client-go's algorithm on kube-rs's `Api<Lease>`: the Lease is created or
//! taken with the resource version read (the API server's optimistic
//! concurrency decides between two candidates), another holder's lease
//! counts as expired only once its record has not changed for the lease
//! duration on this replica's own clock (no trust in clock agreement), and
//! a leader that has not renewed within the renew deadline says it lost
//! before its lease can expire. Written here rather than taken from
//! kube-lease-manager, which keeps a leader that cannot reach the API
//! server a leader until it can.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::LeaderElection;

/// The Pod label that says which replica leads (a Service for webhooks
/// selects `berth.dev/leader: "true"`).
pub const LEADER_LABEL: &str = "berth.dev/leader";

/// Who this replica is, as the HTTP server and the metrics tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// No leader election: the one replica writes.
    Single,
    /// Not yet known (the Lease has not been read).
    Starting,
    /// Another replica holds the Lease (its identity, if any).
    Follower {
        leader: Option<String>,
    },
    Leader,
}

impl Role {
    /// Whether this replica may write to the cluster.
    pub fn writes(&self) -> bool {
        matches!(self, Role::Single | Role::Leader)
    }
}

/// One replica's side of the election.
pub struct Elector {
    config: LeaderElection,
    client: Client,
    leases: Api<Lease>,
    pods: Option<Api<Pod>>,
    /// The Lease record last read, and when it was first seen so on this
    /// replica's clock.
    observed: Option<(LeaseRecord, Instant)>,
}

/// What tells one renewal from the next: the holder and the renew time.
type LeaseRecord = (Option<String>, Option<String>);

impl Elector {
    pub fn new(client: Client, config: LeaderElection) -> Elector {
        let pods = config
            .pod_name
            .as_ref()
            .map(|_| Api::<Pod>::namespaced(client.clone(), &pod_namespace(&config)));
        Elector {
            leases: Api::namespaced(client.clone(), &config.namespace),
            client,
            pods,
            config,
            observed: None,
        }
    }

    /// One round: takes the Lease if it is free or expired, renews it if
    /// held; returns whether this replica holds it now and the holder.
    pub async fn try_acquire_or_renew(&mut self) -> Result<(bool, Option<String>), kube::Error> {
        let me = self.config.identity.clone();
        let now = MicroTime(jiff::Timestamp::now());
        let duration_seconds =
            i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(lease) = self.leases.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok((true, Some(me))),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok((false, None)),
                Err(error) => Err(error),
            };
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
        );
        let first_seen = match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((record, at));
                at
            }
        };
        let their_duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.config.lease_duration, Duration::from_secs);
        if let Some(other) = holder.as_ref().filter(|h| **h != me)
            && first_seen.elapsed() < their_duration
        {
            return Ok((false, Some(other.clone())));
        }
        if holder.as_deref() != Some(me.as_str()) {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(me.clone());
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(duration_seconds);
        let updated = Lease {
            // The resource version read: a concurrent change makes this a conflict.
            metadata: lease.metadata.clone(),
            spec: Some(spec),
        };
        match self
            .leases
            .replace(&self.config.lease_name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok((true, Some(me))),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok((false, holder)),
            Err(error) => Err(error),
        }
    }

    /// Gives the Lease up (on a clean stop), so another replica takes over
    /// at once rather than after the lease duration.
    pub async fn release(&mut self) {
        let Ok(Some(lease)) = self.leases.get_opt(&self.config.lease_name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        let released = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(spec),
        };
        match self
            .leases
            .replace(&self.config.lease_name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => info!(lease = %self.config.lease_name, "leadership released"),
            Err(error) => {
                warn!(error = %crate::kubernetes::describe(&error), "could not release the lease; another replica takes over when it expires")
            }
        }
    }

    /// Labels this replica's Pod as leader or not (when it runs in one).
    async fn label_pod(&self, leader: bool) {
        let (Some(pods), Some(name)) = (&self.pods, &self.config.pod_name) else {
            return;
        };
        let patch = serde_json::json!({
            "metadata": { "labels": { LEADER_LABEL: if leader { "true" } else { "false" } } }
        });
        if let Err(error) = pods
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            warn!(pod = %name, error = %crate::kubernetes::describe(&error), "could not label the pod with its role; webhooks may reach a follower");
        }
    }

    /// Takes part in the election until `stop` is set: publishes this
    /// replica's role on `role`. Once it has led and then could not renew
    /// within the renew deadline (or saw another holder), it publishes
    /// `Follower` and returns: the caller stops writing and exits.
    pub async fn run(mut self, role: watch::Sender<Role>, mut stop: watch::Receiver<bool>) {
        self.label_pod(false).await;
        // The Lease lives beside the inventories: the namespace may not exist
        // before the first replica starts.
        if let Err(error) =
            crate::inventory::ensure_namespace(self.client.clone(), &self.config.namespace).await
        {
            warn!(namespace = %self.config.namespace, error = %crate::kubernetes::describe(&error), "could not create the lease's namespace");
        }
        let mut last_renewal: Option<Instant> = None;
        let renew_deadline = self.config.retry_period.max(self.config.renew_deadline);
        // A leader never waits past its renew deadline: not in a request
        // that hangs, not in the pause between two.
        let patience = |leading: bool, last: Option<Instant>, retry: Duration| {
            if !leading {
                return retry;
            }
            let left = last.map_or(Duration::ZERO, |at| {
                (at + renew_deadline).saturating_duration_since(Instant::now())
            });
            retry.min(left)
        };
        loop {
            let leading = *role.borrow() == Role::Leader;
            let attempt = tokio::time::timeout(
                patience(leading, last_renewal, self.config.retry_period),
                self.try_acquire_or_renew(),
            )
            .await;
            match attempt {
                Ok(Ok((true, _))) => {
                    last_renewal = Some(Instant::now());
                    if !leading {
                        info!(identity = %self.config.identity, lease = %self.config.lease_name, "became the leader");
                        self.label_pod(true).await;
                        role.send_replace(Role::Leader);
                    }
                }
                Ok(Ok((false, holder))) => {
                    if leading {
                        warn!(
                            holder = holder.as_deref().unwrap_or(""),
                            "another replica holds the lease; stopping writes"
                        );
                        role.send_replace(Role::Follower { leader: holder });
                        self.label_pod(false).await;
                        return;
                    }
                    role.send_if_modified(|current| {
                        let next = Role::Follower { leader: holder };
                        let changed = *current != next;
                        *current = next;
                        changed
                    });
                }
                Ok(Err(error)) => {
                    warn!(error = %crate::kubernetes::describe(&error), "could not read or renew the lease")
                }
                Err(_) => warn!("the lease request did not finish within the retry period"),
            }
            if leading && last_renewal.is_none_or(|at| at.elapsed() >= self.config.renew_deadline) {
                warn!(
                    deadline = %humantime::format_duration(self.config.renew_deadline),
                    "could not renew the lease within the renew deadline; stopping writes"
                );
                role.send_replace(Role::Follower { leader: None });
                return;
            }
            let leading = *role.borrow() == Role::Leader;
            let pause = patience(leading, last_renewal, self.config.retry_period);
            let stopping = tokio::select! {
                _ = tokio::time::sleep(pause) => false,
                // Told to stop, or the sender is gone: both end the election.
                _ = stop.wait_for(|stopped| *stopped) => true,
            };
            if stopping {
                let led = *role.borrow() == Role::Leader;
                if led {
                    self.release().await;
                }
                self.label_pod(false).await;
                return;
            }
        }
    }
}

/// The namespace of this replica's Pod: `POD_NAMESPACE`, else the Lease's.
fn pod_namespace(config: &LeaderElection) -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| config.namespace.clone())
}
