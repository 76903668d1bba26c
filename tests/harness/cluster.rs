//! A real Kubernetes control plane on loopback ports: etcd and
//! kube-apiserver, with kube-controller-manager, kube-scheduler and kwok
//! (fake nodes whose pods follow `kwok-stages.yaml`) so that workloads roll
//! out: Deployments make ReplicaSets and Pods, Pods are scheduled and become
//! Ready, Jobs complete.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::OnceCell;

use crate::pki::{CertificateAuthority, CertifiedKey, signing_key_pem};
use crate::process::{Lifetime, ServerProcess, free_port, is_alive, log_tail};
use crate::tools;

/// The user name of the admin identity (in `system:masters`, so RBAC allows everything).
pub const ADMIN_USER: &str = "berth-admin";
/// The user name of the restricted identity: RBAC grants it nothing until a test binds a role.
pub const RESTRICTED_USER: &str = "berth-restricted";
/// The group of the restricted identity.
pub const RESTRICTED_GROUP: &str = "berth:restricted";

/// An image no registry has: its pods stay in `ImagePullBackOff`.
pub const MISSING_IMAGE: &str = "registry.invalid/berth/missing:1.0";
/// An image whose container exits at once: its pods go to `CrashLoopBackOff`.
pub const CRASHING_IMAGE: &str = "registry.invalid/berth/crashes:1.0";
/// An image whose container exits with 1: a Job's pod fails.
pub const FAILING_IMAGE: &str = "registry.invalid/berth/fails:1.0";

/// What kwok does to pods (see the file).
const KWOK_STAGES: &str = include_str!("kwok-stages.yaml");

/// The fake nodes kwok manages.
pub const NODES: [&str; 2] = ["kwok-node-0", "kwok-node-1"];

const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const START_ATTEMPTS: usize = 3;

/// A running control plane: etcd, kube-apiserver, kube-controller-manager,
/// kube-scheduler and kwok with two fake nodes; RBAC on and
/// client-certificate authentication for an admin and a restricted identity.
pub struct TestCluster {
    name: String,
    dir: PathBuf,
    server_url: String,
    lifetime: Lifetime,
    // Stopped in this order: what uses the API server, the API server, etcd.
    workloads: Vec<ServerProcess>,
    apiserver: Option<ServerProcess>,
    etcd: Option<ServerProcess>,
    /// kube-apiserver's binary and arguments, to start it again.
    apiserver_command: (PathBuf, Vec<String>),
}

/// Where test clusters keep their files (certificates, kubeconfigs, data, logs).
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join("berth-test-clusters")
}

/// Removes directories left by test binaries that have died (e.g. killed), so
/// `/tmp` does not fill up over many runs.
fn remove_abandoned_dirs() {
    let Ok(entries) = std::fs::read_dir(scratch_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let owner = std::fs::read_to_string(entry.path().join("owner.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        if owner.is_some_and(|pid| !is_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl TestCluster {
    /// Starts an independent cluster that lives until it is dropped or the
    /// test binary exits, whichever comes first.
    pub async fn start(name: &str) -> Result<Self> {
        Self::start_with_apiserver_args(name, &[]).await
    }

    /// Like [`TestCluster::start`], with more kube-apiserver flags (e.g. a
    /// small `--max-requests-inflight`, so that it answers 429).
    pub async fn start_with_apiserver_args(name: &str, extra: &[&str]) -> Result<Self> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        remove_abandoned_dirs();
        let dir = scratch_root().join(format!(
            "{}-{}-{}",
            std::process::id(),
            name,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        Self::start_in(name, &dir, Lifetime::TiedToProcess, &extra).await
    }

    /// Starts a cluster whose servers outlive this process (for `cargo xtask cluster up`);
    /// its pids are written to `dir/pids`.
    pub async fn start_detached(name: &str, dir: &Path) -> Result<Self> {
        Self::start_in(name, dir, Lifetime::Detached, &[]).await
    }

    async fn start_in(
        name: &str,
        dir: &Path,
        lifetime: Lifetime,
        extra_apiserver_args: &[String],
    ) -> Result<Self> {
        let servers = tools::ensure_control_plane()?;
        let mut last_error = None;
        // A port found free can be taken before the server binds it; try again with new ports.
        for attempt in 1..=START_ATTEMPTS {
            if dir.exists() {
                std::fs::remove_dir_all(dir)
                    .with_context(|| format!("clearing {}", dir.display()))?;
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(dir.join("owner.pid"), std::process::id().to_string())?;
            match Self::try_start(name, dir, lifetime, &servers, extra_apiserver_args).await {
                Ok(cluster) => return Ok(cluster),
                Err(error) => {
                    eprintln!("cluster {name}: start attempt {attempt} failed: {error:#}");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("cluster {name} did not start")))
    }

    async fn try_start(
        name: &str,
        dir: &Path,
        lifetime: Lifetime,
        servers: &tools::TestServers,
        extra_apiserver_args: &[String],
    ) -> Result<Self> {
        let pki = Pki::write(dir)?;
        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let apiserver_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let server_url = format!("https://127.0.0.1:{apiserver_port}");

        let mut etcd_command = Command::new(&servers.etcd);
        etcd_command.args([
            "--name=default".to_string(),
            format!("--data-dir={}", dir.join("etcd-data").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
            format!("--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}"),
            // Test data is disposable; skipping fsync keeps a 2-core machine responsive.
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ]);
        let mut etcd = ServerProcess::start("etcd", etcd_command, &dir.join("etcd.log"), lifetime)?;
        wait_for_tcp("etcd", &mut etcd, etcd_port).await?;

        let apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={apiserver_port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", pki.server_cert.display()),
            format!("--tls-private-key-file={}", pki.server_key.display()),
            format!("--client-ca-file={}", pki.ca_cert.display()),
            "--authorization-mode=RBAC".to_string(),
            "--anonymous-auth=false".to_string(),
            format!(
                "--service-account-key-file={}",
                pki.service_account_public_key.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                pki.service_account_key.display()
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
            "--service-cluster-ip-range=10.96.0.0/16".to_string(),
            // Fewer background loops: nothing in the tests depends on flow control or profiling.
            "--enable-priority-and-fairness=false".to_string(),
            "--profiling=false".to_string(),
            "--v=1".to_string(),
        ];
        let apiserver_args: Vec<String> = apiserver_args
            .into_iter()
            .chain(extra_apiserver_args.iter().cloned())
            .collect();
        let mut apiserver_command = Command::new(&servers.kube_apiserver);
        apiserver_command.args(&apiserver_args);
        let apiserver = ServerProcess::start(
            "kube-apiserver",
            apiserver_command,
            &dir.join("kube-apiserver.log"),
            lifetime,
        )?;

        let mut cluster = Self {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            server_url,
            lifetime,
            workloads: Vec::new(),
            apiserver: Some(apiserver),
            etcd: Some(etcd),
            apiserver_command: (servers.kube_apiserver.clone(), apiserver_args),
        };
        cluster.write_kubeconfig(&pki, ADMIN_USER, &pki.admin)?;
        cluster.write_kubeconfig(&pki, RESTRICTED_USER, &pki.restricted)?;
        cluster.wait_ready().await?;
        cluster.start_workload_servers(&pki, servers)?;
        cluster.wait_workloads_ready().await?;
        cluster.write_pids()?;
        Ok(cluster)
    }

    /// kube-controller-manager, kube-scheduler and kwok, all as the admin.
    fn start_workload_servers(&mut self, pki: &Pki, servers: &tools::TestServers) -> Result<()> {
        let kubeconfig = self.admin_kubeconfig().display().to_string();
        // Each serves its health endpoints on a port of its own.
        let admin = || -> Result<[String; 7]> {
            Ok([
                format!("--kubeconfig={kubeconfig}"),
                format!("--authentication-kubeconfig={kubeconfig}"),
                format!("--authorization-kubeconfig={kubeconfig}"),
                "--leader-elect=false".to_string(),
                "--bind-address=127.0.0.1".to_string(),
                format!("--secure-port={}", free_port()?),
                "--v=1".to_string(),
            ])
        };
        let mut controller_manager = Command::new(&servers.kube_controller_manager);
        controller_manager.args(admin()?).args([
            format!(
                "--service-account-private-key-file={}",
                pki.service_account_key.display()
            ),
            format!("--root-ca-file={}", pki.ca_cert.display()),
            "--use-service-account-credentials=false".to_string(),
            // Terminated pods are deleted at once rather than kept for debugging.
            "--terminated-pod-gc-threshold=100".to_string(),
        ]);
        let mut scheduler = Command::new(&servers.kube_scheduler);
        scheduler.args(admin()?);
        let stages = self.dir.join("kwok-stages.yaml");
        std::fs::write(&stages, KWOK_STAGES)
            .with_context(|| format!("writing {}", stages.display()))?;
        let mut kwok = Command::new(&servers.kwok);
        kwok.args([
            format!("--kubeconfig={kubeconfig}"),
            format!("--config={}", stages.display()),
            "--manage-all-nodes=false".to_string(),
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".to_string(),
            "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom".to_string(),
            "--cidr=10.0.0.1/24".to_string(),
            "--node-ip=10.0.0.1".to_string(),
            "--node-lease-duration-seconds=40".to_string(),
        ]);
        for (name, command) in [
            ("kube-controller-manager", controller_manager),
            ("kube-scheduler", scheduler),
            ("kwok", kwok),
        ] {
            let log = self.dir.join(format!("{name}.log"));
            self.workloads
                .push(ServerProcess::start(name, command, &log, self.lifetime)?);
        }
        Ok(())
    }

    /// Creates the fake nodes and waits until kwok has made them Ready and
    /// the controller manager has made the `default` ServiceAccount (pods
    /// need it).
    async fn wait_workloads_ready(&mut self) -> Result<()> {
        let client = self.admin_client().await?;
        let nodes = kube::Api::<Node>::all(client.clone());
        for name in NODES {
            let node: Node = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": { "kwok.x-k8s.io/node": "fake" },
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
            }))?;
            nodes
                .create(&kube::api::PostParams::default(), &node)
                .await
                .with_context(|| format!("creating node {name}"))?;
        }
        let accounts = kube::Api::<ServiceAccount>::namespaced(client, "default");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            for server in &mut self.workloads {
                server.check_running()?;
            }
            let ready = nodes
                .list(&Default::default())
                .await?
                .items
                .iter()
                .filter(|node| {
                    node.status
                        .as_ref()
                        .and_then(|status| status.conditions.as_ref())
                        .is_some_and(|conditions| {
                            conditions
                                .iter()
                                .any(|c| c.type_ == "Ready" && c.status == "True")
                        })
                })
                .count();
            let account = accounts.get_opt("default").await?.is_some();
            if ready == NODES.len() && account {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "cluster {}: {ready} of {} nodes Ready, default ServiceAccount {}, after {STARTUP_TIMEOUT:?}; last lines of kwok's log:\n{}\nand of kube-controller-manager's:\n{}",
                    self.name,
                    NODES.len(),
                    if account { "made" } else { "missing" },
                    log_tail(&self.dir.join("kwok.log"), 20),
                    log_tail(&self.dir.join("kube-controller-manager.log"), 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn write_kubeconfig(&self, pki: &Pki, user: &str, identity: &CertifiedKey) -> Result<()> {
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": self.name,
                "cluster": {
                    "server": self.server_url,
                    "certificate-authority-data": BASE64.encode(&pki.ca_pem),
                },
            }],
            "users": [{
                "name": user,
                "user": {
                    "client-certificate-data": BASE64.encode(&identity.cert_pem),
                    "client-key-data": BASE64.encode(&identity.key_pem),
                },
            }],
            "contexts": [{
                "name": format!("{user}@{}", self.name),
                "context": { "cluster": self.name, "user": user, "namespace": "default" },
            }],
            "current-context": format!("{user}@{}", self.name),
        });
        let path = self.kubeconfig_path(user);
        std::fs::write(&path, serde_yaml::to_string(&kubeconfig)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    fn write_pids(&self) -> Result<()> {
        let pids: Vec<String> = self.pids().iter().map(u32::to_string).collect();
        std::fs::write(self.dir.join("pids"), pids.join("\n") + "\n")?;
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let client = self.admin_client().await?;
        let mut last_problem;
        loop {
            if let Some(apiserver) = self.apiserver.as_mut() {
                apiserver.check_running()?;
            }
            if let Some(etcd) = self.etcd.as_mut() {
                etcd.check_running()?;
            }
            let readyz = http::Request::get("/readyz")
                .body(Vec::new())
                .context("building the readiness request")?;
            match client.request_text(readyz).await {
                // The bootstrap controller creates "default" shortly after readiness.
                Ok(_) => match kube::Api::<Namespace>::all(client.clone())
                    .get_opt("default")
                    .await
                {
                    Ok(Some(_)) => return Ok(()),
                    Ok(None) => last_problem = "namespace default not created yet".into(),
                    Err(e) => last_problem = e.to_string(),
                },
                Err(e) => last_problem = e.to_string(),
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver of cluster {} not ready after {:?} ({last_problem}); last lines of its log:\n{}",
                    self.name,
                    STARTUP_TIMEOUT,
                    log_tail(&self.dir.join("kube-apiserver.log"), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kills kube-apiserver (SIGKILL), leaves it down for `down_for`, and
    /// starts it again on the same port over the same etcd; returns once it
    /// answers again.
    pub async fn restart_apiserver(&mut self, down_for: Duration) -> Result<()> {
        if let Some(mut apiserver) = self.apiserver.take() {
            apiserver.stop();
        }
        tokio::time::sleep(down_for).await;
        let (binary, args) = &self.apiserver_command;
        let mut command = Command::new(binary);
        command.args(args);
        self.apiserver = Some(ServerProcess::start(
            "kube-apiserver",
            command,
            &self.dir.join("kube-apiserver.log"),
            self.lifetime,
        )?);
        self.write_pids()?;
        self.wait_ready().await
    }

    /// Stops etcd (SIGSTOP) for `hung_for`, then lets it go on (SIGCONT):
    /// an etcd that answers nothing for a while, as a stalled disk makes
    /// it. kube-apiserver stays up and times out what it asked of etcd.
    pub async fn hang_etcd(&self, hung_for: Duration) -> Result<()> {
        let pid = self
            .etcd
            .as_ref()
            .and_then(ServerProcess::pid)
            .context("etcd is not running")?;
        let signal = |signal: libc::c_int| {
            // SAFETY: kill(2) with a pid this cluster started and still owns.
            if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
                bail!(
                    "signalling etcd ({pid}): {}",
                    std::io::Error::last_os_error()
                );
            }
            Ok(())
        };
        signal(libc::SIGSTOP)?;
        tokio::time::sleep(hung_for).await;
        signal(libc::SIGCONT)
    }

    /// The API server's URL (`https://127.0.0.1:PORT`).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// Directory holding this cluster's certificates, kubeconfigs, data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Pids of the running servers, in stopping order.
    pub fn pids(&self) -> Vec<u32> {
        self.workloads
            .iter()
            .chain([&self.apiserver, &self.etcd].into_iter().flatten())
            .filter_map(ServerProcess::pid)
            .collect()
    }

    fn kubeconfig_path(&self, user: &str) -> PathBuf {
        self.dir.join(format!("{user}.kubeconfig"))
    }

    /// Kubeconfig of the admin identity (`system:masters`).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.kubeconfig_path(ADMIN_USER)
    }

    /// Kubeconfig of the restricted identity ([`RESTRICTED_USER`], no permissions by default).
    pub fn restricted_kubeconfig(&self) -> PathBuf {
        self.kubeconfig_path(RESTRICTED_USER)
    }

    /// A new client for the admin identity. Each call builds its own client because
    /// a `kube::Client` is bound to the Tokio runtime that created it, and every
    /// `#[tokio::test]` has its own runtime.
    pub async fn admin_client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.admin_kubeconfig()).await
    }

    /// A new client for the restricted identity.
    pub async fn restricted_client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.restricted_kubeconfig()).await
    }

    /// Leaves the servers running after this handle is dropped (detached clusters).
    pub fn release(mut self) -> Vec<u32> {
        std::mem::take(&mut self.workloads)
            .into_iter()
            .chain(
                [self.apiserver.take(), self.etcd.take()]
                    .into_iter()
                    .flatten(),
            )
            .map(ServerProcess::release)
            .collect()
    }

    /// Stops the servers and removes the cluster's files.
    pub fn stop(&mut self) {
        for process in std::mem::take(&mut self.workloads).into_iter().chain(
            [self.apiserver.take(), self.etcd.take()]
                .into_iter()
                .flatten(),
        ) {
            drop(process);
        }
        if self.lifetime == Lifetime::TiedToProcess {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds a client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    Client::try_from(config).context("building a Kubernetes client")
}

static SHARED: OnceCell<TestCluster> = OnceCell::const_new();

/// The control plane shared by every test in one test binary, started on first use.
///
/// Statics are never dropped, so an exit hook stops it and removes its files when
/// the test binary exits normally; if the binary is killed instead, the kernel
/// kills the servers and the next run removes the files.
pub async fn shared() -> &'static TestCluster {
    SHARED
        .get_or_try_init(|| async {
            let cluster = TestCluster::start("shared").await?;
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe { libc::atexit(stop_shared_at_exit) };
            Ok::<_, anyhow::Error>(cluster)
        })
        .await
        .unwrap_or_else(|e| panic!("starting the shared test control plane failed: {e:#}"))
}

extern "C" fn stop_shared_at_exit() {
    if let Some(cluster) = SHARED.get() {
        for pid in cluster.pids() {
            crate::process::terminate(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(cluster.dir());
    }
}

async fn wait_for_tcp(name: &str, process: &mut ServerProcess, port: u16) -> Result<()> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        process.check_running()?;
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} did not listen on port {port} within {STARTUP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The certificate files of one cluster.
struct Pki {
    ca_pem: String,
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    service_account_key: PathBuf,
    service_account_public_key: PathBuf,
    admin: CertifiedKey,
    restricted: CertifiedKey,
}

impl Pki {
    fn write(dir: &Path) -> Result<Self> {
        let ca = CertificateAuthority::generate("berth-test-ca")?;
        let server = ca.server_cert(
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "10.96.0.1",
            ],
        )?;
        let admin = ca.client_cert(ADMIN_USER, &["system:masters"])?;
        let restricted = ca.client_cert(RESTRICTED_USER, &[RESTRICTED_GROUP])?;
        let write = |file: &str, contents: &str| -> Result<PathBuf> {
            let path = dir.join(file);
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        let (signing_key, verifying_key) = signing_key_pem()?;
        Ok(Self {
            ca_cert: write("ca.crt", ca.cert_pem())?,
            server_cert: write("apiserver.crt", &server.cert_pem)?,
            server_key: write("apiserver.key", &server.key_pem)?,
            service_account_key: write("service-account.key", &signing_key)?,
            service_account_public_key: write("service-account.pub", &verifying_key)?,
            ca_pem: ca.cert_pem().to_string(),
            admin,
            restricted,
        })
    }
}
