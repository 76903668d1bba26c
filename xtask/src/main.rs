//! Developer commands for berth: `cargo xtask demo`, `cargo xtask tools`,
//! `cargo xtask cluster up|down|list`, `cargo xtask bench fleet`,
//! `cargo xtask fuzz-helm`.

mod bench;
mod demo;
mod fuzz_helm;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_harness::cluster::TestCluster;
use berth_harness::process::{is_alive, terminate};
use berth_harness::tools;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Developer commands for berth")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// See berth at work: a local control plane, the demo application in a git
    /// repository served over HTTP, `berth run` with its status page, and a
    /// commit and its revert flowing through. Ctrl-C stops and cleans everything.
    Demo {
        /// Stop after the revert has been applied instead of waiting for Ctrl-C.
        #[arg(long)]
        once: bool,
        /// Port of the agent's HTTP server on 127.0.0.1 (default: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Run the agent from this container image with podman (as
        /// tests/tools/build-image.sh builds it: localhost/berth:dev)
        /// instead of the binary cargo builds.
        #[arg(long)]
        image: Option<String>,
    },
    /// Benchmarks that print figures (not tests): `bench fleet`.
    Bench {
        #[command(subcommand)]
        benchmark: Benchmark,
    },
    /// Differential testing against Helm's own engine: random charts rendered
    /// by helm-render and by berth; disagreements kept as case files.
    FuzzHelm(fuzz_helm::FuzzOptions),
    /// Build the pinned test servers (kube-apiserver, etcd, helm) into the cache, if missing.
    Tools {
        /// Only print the directory holding the binaries.
        #[arg(long)]
        print_dir: bool,
    },
    /// Start, stop or list local control planes for trying berth by hand.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
}

#[derive(Subcommand)]
enum Benchmark {
    /// berth following a fleet of releases on a local control plane.
    Fleet(bench::FleetOptions),
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Start a control plane that keeps running after this command; prints its kubeconfig.
    Up {
        #[arg(long, default_value = "dev")]
        name: String,
    },
    /// Stop a control plane started with `up` and delete its data.
    Down {
        #[arg(long, default_value = "dev")]
        name: String,
    },
    /// List the control planes started with `up`.
    List,
}

fn clusters_dir() -> PathBuf {
    let tools = tools::tools_dir();
    tools
        .parent()
        .map(|p| p.join("clusters"))
        .unwrap_or_else(|| tools.join("clusters"))
}

fn recorded_pids(dir: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Task::Demo { once, port, image } => demo::run(demo::DemoOptions { once, port, image })?,
        Task::Bench {
            benchmark: Benchmark::Fleet(options),
        } => bench::fleet(options)?,
        Task::FuzzHelm(options) => fuzz_helm::run(&options)?,
        Task::Tools { print_dir } => {
            let mut command = Command::new("bash");
            command.arg(tools::build_script());
            if print_dir {
                command.arg("--print-dir");
            }
            run(&mut command, "building the test servers")?;
        }
        Task::Cluster { action } => cluster(action)?,
    }
    Ok(())
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn cluster(action: ClusterAction) -> Result<()> {
    match action {
        ClusterAction::Up { name } => {
            let dir = clusters_dir().join(&name);
            let running = recorded_pids(&dir);
            if !running.is_empty() && running.iter().all(|pid| is_alive(*pid)) {
                println!("cluster {name} is already running");
                println!(
                    "kubeconfig: {}",
                    dir.join("berth-admin.kubeconfig").display()
                );
                return Ok(());
            }
            let runtime = tokio::runtime::Runtime::new()?;
            let cluster = runtime.block_on(TestCluster::start_detached(&name, &dir))?;
            println!("cluster {name} is up at {}", cluster.server_url());
            println!("kubeconfig: {}", cluster.admin_kubeconfig().display());
            println!(
                "restricted kubeconfig: {}",
                cluster.restricted_kubeconfig().display()
            );
            println!("logs: {}", dir.display());
            println!("stop it with: cargo xtask cluster down --name {name}");
            cluster.release();
        }
        ClusterAction::Down { name } => {
            let dir = clusters_dir().join(&name);
            if !dir.exists() {
                bail!("no cluster named {name} (looked in {})", dir.display());
            }
            for pid in recorded_pids(&dir) {
                terminate(pid, Duration::from_secs(10));
            }
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            println!("cluster {name} stopped");
        }
        ClusterAction::List => {
            let Ok(entries) = std::fs::read_dir(clusters_dir()) else {
                return Ok(());
            };
            for entry in entries.flatten() {
                let pids = recorded_pids(&entry.path());
                let state = if !pids.is_empty() && pids.iter().all(|pid| is_alive(*pid)) {
                    "running"
                } else {
                    "stopped (run `down` to clean up)"
                };
                println!(
                    "{}\t{state}\t{}",
                    entry.file_name().to_string_lossy(),
                    entry.path().join("berth-admin.kubeconfig").display()
                );
            }
        }
    }
    Ok(())
}
