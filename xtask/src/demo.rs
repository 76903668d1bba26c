//! `cargo xtask demo`: berth doing its job on a laptop. A local control plane
//! (the test harness's real servers), the demo application from `fixtures/`
//! as a git repository served over smart HTTP, and the real `berth run` with
//! its HTTP server; then a commit and its revert, each announced by a signed
//! push webhook, flow through while the user watches. Ctrl-C (or the end of
//! `--once`) stops every process and removes every file it made.

use std::io::{BufRead, BufReader, IsTerminal, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth_agent::notifications::signature;
use berth_harness::TestCluster;
use berth_harness::git::{BRANCH, GitHttpServer, TestRepo, copy_tree};
use berth_harness::process::{Lifetime, ServerProcess, free_port};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

/// The cluster context the demo agent runs for (the release file has
/// overrides for it: staging's log level, Paris' bucket, one replica).
const CONTEXT: [(&str, &str); 4] = [
    ("cloud", "onprem"),
    ("env", "staging"),
    ("region", "paris"),
    ("cluster", "par-staging-1"),
];
const RELEASE: &str = "demo";
const WEBHOOK_SECRET: &str = "demo-webhook-secret";
/// How long one step (first sync, a commit flowing through) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);
const AUTHOR: &str = "Ada Lovelace <ada@example.invalid>";

pub struct DemoOptions {
    /// Stop after the revert instead of waiting for Ctrl-C.
    pub once: bool,
    /// Port of the agent's HTTP server (0: any free port).
    pub port: u16,
    /// Run the agent from this container image instead of the binary.
    pub image: Option<String>,
}

/// Where the agent runs from: the binary cargo built, or a container image.
enum Agent {
    Binary(PathBuf),
    Image(String),
}

/// Runs the demo; every process and file it made is gone when this returns.
pub fn run(options: DemoOptions) -> Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace directory")?
        .to_path_buf();
    let berth = match &options.image {
        Some(image) => Agent::Image(image.clone()),
        None => {
            say("building berth (cargo build -p berth)");
            let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["build", "--quiet", "-p", "berth"])
                .current_dir(&workspace)
                .status()
                .context("running cargo build")?;
            if !status.success() {
                bail!("building berth failed ({status})");
            }
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace.join("target"));
            Agent::Binary(target.join("debug/berth"))
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        tokio::select! {
            result = demo(&workspace, &berth, &options) => result,
            _ = tokio::signal::ctrl_c() => {
                say("Ctrl-C: stopping the agent, the git server and the control plane");
                Ok(())
            }
        }
    })?;
    say("stopped; everything the demo started is gone");
    Ok(())
}

/// Bold and dim on a terminal, plain text in a log.
fn styled(text: &str, code: &str) -> String {
    if std::io::stdout().is_terminal() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn say(line: &str) {
    println!("{} {line}", styled("demo:", "1"));
}

async fn demo(workspace: &Path, berth: &Agent, options: &DemoOptions) -> Result<()> {
    say(
        "starting a control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (the first run builds them from the Go module proxy)",
    );
    let cluster = TestCluster::start("demo").await?;
    let client = cluster.admin_client().await?;
    say(&format!("control plane up at {}", cluster.server_url()));

    let repo = TestRepo::new(RELEASE)?;
    copy_tree(&workspace.join("fixtures/demo"), repo.path())?;
    let first = commit(&repo, "Add the demo application")?;
    let git = GitHttpServer::start(repo.base_dir(), None)?;
    let url = git.url_for(&repo);
    say(&format!(
        "demo repository {} served over git smart HTTP at {url}",
        repo.path().display()
    ));

    let dir = tempfile::Builder::new().prefix("berth-demo-").tempdir()?;
    let port = if options.port == 0 {
        free_port()?
    } else {
        options.port
    };
    let config = dir.path().join("berth.yaml");
    std::fs::write(dir.path().join("webhook-secret"), WEBHOOK_SECRET)?;
    let log = dir.path().join("agent.log");
    let (mut agent, container) = match berth {
        Agent::Binary(berth) => {
            std::fs::write(
                &config,
                config_text(
                    dir.path(),
                    &dir.path().join("cache"),
                    &cluster.admin_kubeconfig(),
                    &url,
                    port,
                ),
            )?;
            let mut command = Command::new(berth);
            command
                .args(["run", "--log-format", "text", "--config"])
                .arg(&config)
                .env("NO_COLOR", "1");
            say(&format!(
                "berth run --config {} (its log: {})",
                config.display(),
                log.display()
            ));
            let agent = ServerProcess::start("berth run", command, &log, Lifetime::TiedToProcess)?;
            (agent, None)
        }
        Agent::Image(image) => {
            let (agent, container) =
                start_container(workspace, image, dir.path(), &cluster, &url, port)?;
            say(&format!(
                "berth run from the image {image} in the container {} (its log: {})",
                container.name,
                log.display()
            ));
            (agent, Some(container))
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut log_follower = LogFollower::new(&log);
    let http = reqwest::Client::new();

    let took = wait_applied(&http, &base, &first, &mut agent, &mut log_follower).await?;
    say(&format!(
        "first sync of {} applied and healthy after {:.1} s",
        short(&first),
        took.as_secs_f64()
    ));
    if let Some(container) = &container {
        let user = container_user(container)?;
        say(&format!(
            "the agent runs as (user in the container, on the host): {user}"
        ));
        if user
            .split_whitespace()
            .any(|part| part == "0" || part == "root")
        {
            bail!("the agent runs as root in its container");
        }
    }
    say(&format!("status page:   {base}/"));
    say(&format!("its data:      {base}/api/releases"));
    say(&format!("metrics:       {base}/metrics"));
    say(&format!(
        "kubectl:       KUBECONFIG={} kubectl -n {RELEASE} get configmaps,deployments,pods",
        cluster.admin_kubeconfig().display()
    ));
    say(&format!(
        "the greeting the cluster serves: {}",
        greeting(&client).await?
    ));

    set_greeting(&repo, "bonjour from the demo")?;
    let change = commit(&repo, "Greet in French")?;
    say(&format!(
        "committed {} \"Greet in French\"; sending the push webhook",
        short(&change)
    ));
    push(&http, &base, &url).await?;
    let took = wait_applied(&http, &base, &change, &mut agent, &mut log_follower).await?;
    say_applied(&change, took, &client).await?;

    repo.git(&["revert", "--no-commit", &change])?;
    let revert = commit(
        &repo,
        &format!("Revert \"Greet in French\"\n\nThis reverts commit {change}."),
    )?;
    say(&format!(
        "git revert {} -> {}; sending the push webhook",
        short(&change),
        short(&revert)
    ));
    push(&http, &base, &url).await?;
    let took = wait_applied(&http, &base, &revert, &mut agent, &mut log_follower).await?;
    say_applied(&revert, took, &client).await?;

    let history = releases(&http, &base).await?;
    say("the release's history (newest first):");
    for deploy in history[0]["history"].as_array().into_iter().flatten() {
        println!(
            "      {}  {:<10} {:<8} {}",
            text(deploy, "commit").get(..7).unwrap_or(""),
            text(deploy, "outcome"),
            text(deploy, "health"),
            text(deploy, "subject")
        );
    }
    if options.once {
        return Ok(());
    }
    say(&format!(
        "the agent keeps running and polls every 10 s: commit in {} and watch {base}/ (Ctrl-C stops everything)",
        repo.path().display()
    ));
    loop {
        agent.check_running()?;
        log_follower.print_new();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn say_applied(commit: &str, took: Duration, client: &kube::Client) -> Result<()> {
    say(&format!(
        "{} applied and healthy {:.1} s after the push; the greeting the cluster serves: {}",
        short(commit),
        took.as_secs_f64(),
        greeting(client).await?
    ));
    Ok(())
}

/// A container that `podman rm` removes on drop (killing `podman run`
/// leaves it running).
struct Container {
    name: String,
    podman_env: (String, String),
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .env(&self.podman_env.0, &self.podman_env.1)
            .args(["rm", "--force", "--time", "0", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Starts the agent from `image` with podman, as the manifests run it: its
/// own user (the image's, not root), a read-only root filesystem, a fresh
/// cache volume, the configuration mounted read-only at /etc/berth. The
/// host's network: the control plane and the git server listen on
/// loopback.
fn start_container(
    workspace: &Path,
    image: &str,
    dir: &Path,
    cluster: &TestCluster,
    url: &str,
    port: u16,
) -> Result<(ServerProcess, Container)> {
    let podman_env = podman_env(workspace)?;
    let etc = dir.join("etc");
    std::fs::create_dir(&etc)?;
    std::fs::copy(cluster.admin_kubeconfig(), etc.join("kubeconfig"))?;
    std::fs::copy(dir.join("webhook-secret"), etc.join("webhook-secret"))?;
    std::fs::write(
        etc.join("berth.yaml"),
        config_text(
            Path::new("/etc/berth"),
            Path::new("/var/cache/berth"),
            Path::new("/etc/berth/kubeconfig"),
            url,
            port,
        ),
    )?;
    // The image's user reads what the demo (root, or whoever runs it) wrote.
    use std::os::unix::fs::PermissionsExt;
    for path in [dir, etc.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    for file in ["kubeconfig", "webhook-secret", "berth.yaml"] {
        std::fs::set_permissions(etc.join(file), std::fs::Permissions::from_mode(0o644))?;
    }
    let name = format!("berth-demo-{}", std::process::id());
    let mut command = Command::new("podman");
    command
        .env(&podman_env.0, &podman_env.1)
        .args([
            "run",
            "--rm",
            "--name",
            &name,
            "--network",
            "host",
            "--read-only",
        ])
        .args(["--volume", "/var/cache/berth", "--env", "NO_COLOR=1"])
        .arg("--volume")
        .arg(format!("{}:/etc/berth:ro", etc.display()))
        .args([
            image,
            "run",
            "--log-format",
            "text",
            "--config",
            "/etc/berth/berth.yaml",
        ]);
    let agent = ServerProcess::start(
        "berth run (container)",
        command,
        &dir.join("agent.log"),
        Lifetime::TiedToProcess,
    )?;
    Ok((agent, Container { name, podman_env }))
}

/// What podman needs in its environment on this machine
/// (tests/tools/build-image.sh --print-env: `NAME=value`).
fn podman_env(workspace: &Path) -> Result<(String, String)> {
    let output = Command::new("bash")
        .arg(workspace.join("tests/tools/build-image.sh"))
        .arg("--print-env")
        .output()
        .context("running tests/tools/build-image.sh --print-env")?;
    if !output.status.success() {
        bail!(
            "tests/tools/build-image.sh --print-env: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8(output.stdout)?;
    let (name, value) = text
        .trim()
        .split_once('=')
        .context("tests/tools/build-image.sh --print-env printed no NAME=value")?;
    Ok((name.to_string(), value.to_string()))
}

/// The user the container's processes run as (`podman top`).
fn container_user(container: &Container) -> Result<String> {
    let output = Command::new("podman")
        .env(&container.podman_env.0, &container.podman_env.1)
        .args(["top", &container.name, "user", "huser"])
        .output()
        .context("running podman top")?;
    if !output.status.success() {
        bail!("podman top: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8(output.stdout)?;
    // A header line, then one line per process: its user in the container
    // and on the host.
    text.lines()
        .nth(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .context("podman top listed no process")
}

/// The agent's configuration: the webhook secret in `dir`, its cache in
/// `cache`.
fn config_text(dir: &Path, cache: &Path, kubeconfig: &Path, url: &str, port: u16) -> String {
    let context: Vec<String> = CONTEXT.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!(
        "# Written by cargo xtask demo (docs/configuration.md, docs/operations.md).\n\
         context: {{ {context} }}\n\
         cache_dir: {cache}\n\
         kubeconfig: {kubeconfig}\n\
         health_timeout: 2m\n\
         http: {{ address: \"127.0.0.1:{port}\" }}\n\
         webhooks: {{ secret_file: {secret} }}\n\
         applications:\n  - {{ name: {RELEASE}, url: \"{url}\", branch: {BRANCH}, poll_interval: 10s }}\n",
        context = context.join(", "),
        cache = cache.display(),
        kubeconfig = kubeconfig.display(),
        secret = dir.join("webhook-secret").display(),
    )
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Commits everything with the demo's author.
fn commit(repo: &TestRepo, message: &str) -> Result<String> {
    repo.git(&["add", "--all"])?;
    repo.git(&["commit", "--quiet", "--author", AUTHOR, "-m", message])?;
    repo.head()
}

/// Sets the release file's `greeting` value (the ConfigMap's GREETING).
fn set_greeting(repo: &TestRepo, greeting: &str) -> Result<()> {
    let path = repo.path().join("deploy/release.yaml");
    let before = std::fs::read_to_string(&path)?;
    let after: String = before
        .lines()
        .map(|line| match line.strip_prefix("  greeting: ") {
            Some(_) => format!("  greeting: {greeting}\n"),
            None => format!("{line}\n"),
        })
        .collect();
    if after == before {
        bail!("{} has no greeting value to change", path.display());
    }
    repo.write("deploy/release.yaml", after)
}

/// A GitHub-style push delivery, signed as GitHub signs it.
async fn push(http: &reqwest::Client, base: &str, url: &str) -> Result<()> {
    let body = serde_json::json!({
        "ref": format!("refs/heads/{BRANCH}"),
        "repository": { "clone_url": url },
    })
    .to_string();
    let response = http
        .post(format!("{base}/hooks/github"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery_id())
        .header(
            "X-Hub-Signature-256",
            signature(WEBHOOK_SECRET.as_bytes(), body.as_bytes()),
        )
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::ACCEPTED {
        bail!("the webhook was answered {}", response.status());
    }
    Ok(())
}

/// A delivery id unique enough for a log line.
fn delivery_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("demo-{}", now.as_nanos())
}

async fn releases(http: &reqwest::Client, base: &str) -> Result<Value> {
    Ok(http
        .get(format!("{base}/api/releases"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Waits until the agent's last sync of the release applied `commit` and
/// found it healthy, printing the agent's log as it goes.
async fn wait_applied(
    http: &reqwest::Client,
    base: &str,
    commit: &str,
    agent: &mut ServerProcess,
    log: &mut LogFollower,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        agent.check_running()?;
        log.print_new();
        if let Ok(releases) = releases(http, base).await {
            let last = &releases[0]["last_sync"];
            let sha = last["commit"]["sha"].as_str().unwrap_or("");
            if sha == commit {
                match (text(last, "outcome"), text(last, "health")) {
                    ("succeeded", "healthy") => {
                        log.print_new();
                        return Ok(started.elapsed());
                    }
                    ("succeeded", "progressing") => {}
                    (outcome, health) => bail!(
                        "the sync of {} ended {outcome} (health {health}): {}",
                        short(commit),
                        text(last, "error")
                    ),
                }
            }
        }
        if started.elapsed() > STEP_TIMEOUT {
            bail!(
                "{} was not applied within {STEP_TIMEOUT:?}; see {}",
                short(commit),
                agent.log_path().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn greeting(client: &kube::Client) -> Result<String> {
    let api = kube::Api::<ConfigMap>::namespaced(client.clone(), RELEASE);
    // The chart's fullname is the release name when it contains the chart's.
    let name = format!("{RELEASE}-config");
    let config_map = api
        .get(&name)
        .await
        .with_context(|| format!("reading ConfigMap {RELEASE}/{name}"))?;
    Ok(config_map
        .data
        .and_then(|data| data.get("GREETING").cloned())
        .unwrap_or_default())
}

/// Prints the lines the agent adds to its log file.
struct LogFollower {
    path: PathBuf,
    offset: u64,
}

impl LogFollower {
    fn new(path: &Path) -> LogFollower {
        LogFollower {
            path: path.to_path_buf(),
            offset: 0,
        }
    }

    fn print_new(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        // Whole lines only; a line being written is read next time.
        while let Ok(read) = reader.read_line(&mut line) {
            if read == 0 || !line.ends_with('\n') {
                break;
            }
            self.offset += read as u64;
            print!("  {} {line}", styled("agent │", "2"));
            line.clear();
        }
    }
}
