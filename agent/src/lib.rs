//! The berth agent: follows applications' git repositories and keeps this
//! cluster at what their release files and charts say.
//!
//! The modules follow one reconcile of one release:
//!
//! | stage | module | what it owns |
//! |---|---|---|
//! | configuration | [`config`], [`context`] | the agent's file; the cluster's cloud, env, region and name |
//! | source | [`source`] | git repositories in the cache; files at one commit |
//! | release | [`release`] | `deploy/release.yaml`: values per context, targets, scope, secrets |
//! | render | [`reconcile`] with `berth_chart` | the chart rendered for this cluster |
//! | secrets | [`secrets`] | Vault reads, the release's Secret and the pod checksum |
//! | objects | [`objects`] | manifests as Kubernetes objects: ownership, digests, order |
//! | plan | [`plan`] | desired vs live vs inventory, server dry run, guards |
//! | apply | [`apply`] | server-side apply in order, then prune |
//! | record | [`inventory`] | the release's inventory and history in the cluster |
//!
//! [`reconcile`] runs the stages for one release: [`reconcile::prepare`]
//! (release file → render → secrets → plan) is shared by [`reconcile::sync`]
//! and [`diff`]. [`daemon`] follows every application and calls `sync`;
//! [`drift`] watches what a release owns and wakes its follower when someone
//! else changes it; [`limits`] bounds how many applications are in each
//! stage at once; [`logging`] writes the sync log; [`kubernetes`] makes
//! the client they share, with a bound on requests in flight.

pub mod apply;
pub mod config;
pub mod context;
pub mod daemon;
pub mod diff;
pub mod drift;
pub mod events;
pub mod health;
pub mod hooks;
pub mod inventory;
pub mod kubernetes;
pub mod leader;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod notice;
pub mod notifications;
pub mod objects;
pub mod plan;
pub mod reconcile;
pub mod release;
pub mod reload;
pub mod secrets;
pub mod server;
pub mod source;
pub mod status;
pub mod webhooks;
