//! Test harness for berth: real servers on loopback ports for integration tests.
//!
//! - [`tools`] finds (and on first use builds) the pinned kube-apiserver, etcd and helm;
//! - [`cluster`] starts control planes: one [`cluster::shared`] per test binary, and
//!   independent ones with [`cluster::TestCluster::start`];
//! - [`git`] makes real git repositories and serves them with `git daemon`;
//! - [`process`] makes sure no server outlives the test binary.

pub mod cluster;
pub mod git;
pub mod pki;
pub mod process;
pub mod tools;

pub use cluster::{TestCluster, shared};
