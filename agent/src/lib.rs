//! berth: a per-cluster GitOps agent.
//!
//! The library follows the sync pipeline:
//! [`source`] (git) → [`render`] (Helm-compatible charts) → secrets → [`plan`] →
//! [`apply`] → [`inventory`] (record). [`sync`] runs the pipeline for one release,
//! [`daemon`] runs it in a loop, and the `berth` binary is a thin command line
//! over all of it ([`cli`]).

pub mod apply;
pub mod cli;
pub mod config;
pub mod context;
pub mod daemon;
pub mod diff;
pub mod front;
pub mod inventory;
pub mod logging;
pub mod objects;
pub mod plan;
pub mod release;
pub mod render;
pub mod secrets;
pub mod source;
pub mod sync;
pub mod template_cmd;
