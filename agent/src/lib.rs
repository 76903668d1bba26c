//! berth: a per-cluster GitOps agent.
//!
//! The library follows the sync pipeline:
//! [`source`] (git) → [`render`] (Helm-compatible charts) → secrets → [`plan`] →
//! [`apply`] → [`inventory`] (record). [`sync`] runs the pipeline for one release,
//! [`daemon`] runs it in a loop, and the `berth` binary is a thin command line
//! over all of it ([`cli`]).

#[cfg(feature = "agent")]
pub mod apply;
#[cfg(feature = "agent")]
pub mod cli;
#[cfg(feature = "agent")]
pub mod config;
#[cfg(feature = "agent")]
pub mod context;
#[cfg(feature = "agent")]
pub mod daemon;
#[cfg(feature = "agent")]
pub mod diff;
pub mod front;
#[cfg(feature = "agent")]
pub mod inventory;
#[cfg(feature = "agent")]
pub mod logging;
#[cfg(feature = "agent")]
pub mod objects;
#[cfg(feature = "agent")]
pub mod plan;
#[cfg(feature = "agent")]
pub mod release;
pub mod render;
#[cfg(feature = "agent")]
pub mod secrets;
#[cfg(feature = "agent")]
pub mod source;
#[cfg(feature = "agent")]
pub mod sync;
pub mod template_cmd;
