//! berth: a per-cluster GitOps agent.
//!
//! The library is organised along the sync pipeline
//! (source → render → secrets → plan → apply → record); the `berth` binary is a
//! thin command line over it.

pub mod cli;
