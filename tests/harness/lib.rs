//! Test harness for berth: real servers on loopback ports for integration tests.
//!
//! - [`audit`] reads kube-apiserver's audit log of a control plane started with one;
//! - [`tools`] finds (and on first use builds) the pinned kube-apiserver, etcd, helm and vault;
//! - [`cluster`] starts control planes: one [`cluster::shared`] per test binary, and
//!   independent ones with [`cluster::TestCluster::start`];
//! - [`git`] makes real git repositories and serves them with `git daemon`;
//! - [`vault`] runs a real Vault (dev or persistent) and configures its auth methods;
//! - [`process`] makes sure no server outlives the test binary;
//! - [`browser`] drives a real headless Chromium through chromedriver;
//! - [`receiver`] records the HTTP requests sent to it (notification sinks);
//! - [`helm_differential`] renders cases with Helm's own engine (helm-render)
//!   and with berth's, and compares them.

pub mod audit;
pub mod browser;
pub mod cluster;
pub mod git;
pub mod helm_differential;
pub mod link;
pub mod pki;
pub mod process;
pub mod receiver;
pub mod tools;
pub mod vault;

pub use cluster::{TestCluster, shared};
