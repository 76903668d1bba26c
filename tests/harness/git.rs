//! Real git repositories, a real `git daemon` and smart HTTP (`git http-backend`) for
//! source tests.
//!
//! Everything goes through the installed `git` command, isolated from the user's
//! and the system's configuration, so tests behave the same on every machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tempfile::TempDir;

use crate::process::{Lifetime, ServerProcess, free_port};

/// The branch every test repository starts on.
pub const BRANCH: &str = "main";

const DAEMON_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 3;

/// Runs `git` with a fixed identity and no global or system configuration.
fn git_command(dir: &Path) -> Command {
    isolated(Command::new("git"), dir)
}

/// Applies the fixed identity and isolated configuration to any git program.
fn isolated(mut command: Command, dir: &Path) -> Command {
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "berth test")
        .env("GIT_AUTHOR_EMAIL", "test@berth.invalid")
        .env("GIT_COMMITTER_NAME", "berth test")
        .env("GIT_COMMITTER_EMAIL", "test@berth.invalid")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    command
}

fn run_git(dir: &Path, args: &[&str]) -> Result<String> {
    let output = git_command(dir)
        .args(args)
        .output()
        .with_context(|| format!("running git {} in {}", args.join(" "), dir.display()))?;
    if !output.status.success() {
        bail!(
            "git {} in {} failed ({}): {}",
            args.join(" "),
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A real, non-bare git repository in a temporary directory (removed on drop), on branch
/// [`BRANCH`]. It lives at `base_dir()/name`, so a [`GitDaemon`] on `base_dir()` serves it.
pub struct TestRepo {
    name: String,
    path: PathBuf,
    // Held for its Drop; `None` when the caller owns the base directory.
    _base: Option<TempDir>,
}

impl TestRepo {
    /// An empty repository (no commits yet) in its own temporary base directory.
    pub fn new(name: &str) -> Result<Self> {
        let base = tempfile::Builder::new()
            .prefix("berth-test-repo-")
            .tempdir()
            .context("creating a temporary directory for a test repository")?;
        let path = base.path().join(name);
        Self::init(name, path, Some(base))
    }

    /// An empty repository at `base_dir/name`; the caller owns (and removes) `base_dir`.
    /// Lets one [`GitDaemon`] serve several repositories.
    pub fn new_in(base_dir: &Path, name: &str) -> Result<Self> {
        Self::init(name, base_dir.join(name), None)
    }

    /// A repository whose first commit (with `message`) holds a copy of the files under
    /// `source` (symlinks are copied as symlinks).
    pub fn from_dir(name: &str, source: &Path, message: &str) -> Result<(Self, String)> {
        let repo = Self::new(name)?;
        copy_tree(source, &repo.path)?;
        let commit = repo.commit(message)?;
        Ok((repo, commit))
    }

    fn init(name: &str, path: PathBuf, base: Option<TempDir>) -> Result<Self> {
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        run_git(&path, &["init", "--quiet", "--initial-branch", BRANCH])?;
        // Local settings, so commands behave the same whatever the machine's config says.
        run_git(&path, &["config", "commit.gpgsign", "false"])?;
        run_git(&path, &["config", "core.symlinks", "true"])?;
        Ok(Self {
            name: name.to_string(),
            path,
            _base: base,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The working tree (the repository is `path()/.git`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the repository; give it to [`GitDaemon::start`].
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(&self.path)
    }

    /// A `file://` URL of the repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// Writes a file (creating parent directories), relative to the working tree.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> Result<()> {
        let path = self.path.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    }

    /// Creates a symlink at `relative` pointing to `target` (as given, not resolved).
    pub fn symlink(&self, target: &str, relative: &str) -> Result<()> {
        let path = self.path.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::os::unix::fs::symlink(target, &path)
            .with_context(|| format!("creating symlink {} -> {target}", path.display()))
    }

    /// Removes a file or directory (recursively), relative to the working tree.
    pub fn remove(&self, relative: &str) -> Result<()> {
        let path = self.path.join(relative);
        let metadata = std::fs::symlink_metadata(&path)
            .with_context(|| format!("looking at {}", path.display()))?;
        if metadata.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))
    }

    /// Stages everything (additions, changes, removals) and commits; returns the new sha.
    pub fn commit(&self, message: &str) -> Result<String> {
        run_git(&self.path, &["add", "--all"])?;
        run_git(
            &self.path,
            &["commit", "--quiet", "--allow-empty", "-m", message],
        )?;
        self.head()
    }

    /// `git revert --no-edit commit`; returns the sha of the revert commit.
    pub fn revert(&self, commit: &str) -> Result<String> {
        run_git(&self.path, &["revert", "--no-edit", commit])?;
        self.head()
    }

    /// Moves the branch (and working tree) to `commit`, as a forced push would.
    pub fn reset_hard(&self, commit: &str) -> Result<()> {
        run_git(&self.path, &["reset", "--quiet", "--hard", commit]).map(drop)
    }

    /// The sha of the branch head.
    pub fn head(&self) -> Result<String> {
        self.rev_parse("HEAD")
    }

    /// `git rev-parse --verify <rev>^{commit}`.
    pub fn rev_parse(&self, rev: &str) -> Result<String> {
        run_git(
            &self.path,
            &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
        )
    }

    /// Runs any git command in the working tree; returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        run_git(&self.path, args)
    }
}

/// Copies a directory tree, keeping symlinks as symlinks.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_symlink() {
            let link = std::fs::read_link(&source)?;
            std::os::unix::fs::symlink(&link, &target)
                .with_context(|| format!("copying symlink {}", source.display()))?;
        } else if file_type.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {}", source.display()))?;
        }
    }
    Ok(())
}

/// The directory of git's helper programs (`git --exec-path`).
fn exec_path() -> Result<PathBuf> {
    let dir = std::env::temp_dir();
    Ok(PathBuf::from(run_git(&dir, &["--exec-path"])?))
}

/// A real `git daemon` serving every repository under a base directory on a loopback
/// port; stopped on drop (and killed with the test binary however it ends).
pub struct GitDaemon {
    port: u16,
    process: ServerProcess,
    _log_dir: TempDir,
}

impl GitDaemon {
    /// Starts `git daemon` on `base_dir` and waits until it accepts connections.
    pub fn start(base_dir: &Path) -> Result<Self> {
        let log_dir = tempfile::Builder::new()
            .prefix("berth-git-daemon-")
            .tempdir()
            .context("creating the git daemon's log directory")?;
        let mut last_error = None;
        // A port found free can be taken before the daemon binds it; try again with another.
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            // `git daemon` would fork git-daemon and wait: killing that wrapper would
            // orphan the daemon. Running the program itself ties it to the test binary.
            let mut command = isolated(Command::new(exec_path()?.join("git-daemon")), base_dir);
            command.args([
                "--reuseaddr".to_string(),
                "--export-all".to_string(),
                "--informative-errors".to_string(),
                "--verbose".to_string(),
                format!("--base-path={}", base_dir.display()),
                "--listen=127.0.0.1".to_string(),
                format!("--port={port}"),
            ]);
            let process = ServerProcess::start(
                "git daemon",
                command,
                &log_dir.path().join("git-daemon.log"),
                Lifetime::TiedToProcess,
            )?;
            match wait_for_port(process, port) {
                Ok(process) => {
                    return Ok(Self {
                        port,
                        process,
                        _log_dir: log_dir,
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("git daemon did not start")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `git://127.0.0.1:PORT/<name>` for a repository under the base directory.
    pub fn url_for(&self, repo: &TestRepo) -> String {
        self.url_for_name(repo.name())
    }

    /// `git://127.0.0.1:PORT/<name>`.
    pub fn url_for_name(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The daemon's log (for failure messages).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}

fn wait_for_port(mut process: ServerProcess, port: u16) -> Result<ServerProcess> {
    let deadline = Instant::now() + DAEMON_STARTUP_TIMEOUT;
    loop {
        process.check_running()?;
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(process);
        }
        if Instant::now() > deadline {
            bail!("git daemon did not listen on port {port} within {DAEMON_STARTUP_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Credentials a [`GitHttpServer`] demands (HTTP Basic: the token is the password).
#[derive(Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

/// Smart HTTP for every repository under a base directory: a small HTTP/1.1 server on a
/// loopback port that hands each request to the real `git http-backend` (as CGI), with
/// optional Basic authentication. It runs on a thread of the test binary, so it cannot
/// outlive it; dropping it stops it.
pub struct GitHttpServer {
    port: u16,
    /// Ref advertisements served (`GET …/info/refs`): one per ref check or fetch.
    ref_checks: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GitHttpServer {
    /// Starts serving `base_dir`; with `auth`, requests without those credentials get 401.
    pub fn start(base_dir: &Path, auth: Option<BasicAuth>) -> Result<Self> {
        // Binding port 0 here (not free_port) leaves no window for another process.
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the git HTTP server's port")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let base_dir = base_dir.to_path_buf();
        let expected = auth.map(|auth| {
            format!(
                "Basic {}",
                BASE64.encode(format!("{}:{}", auth.username, auth.password))
            )
        });
        let stopping = Arc::clone(&stop);
        let ref_checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&ref_checks);
        let thread = std::thread::Builder::new()
            .name("berth-git-http".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let base_dir = base_dir.clone();
                    let expected = expected.clone();
                    let counted = Arc::clone(&counted);
                    std::thread::spawn(move || {
                        if let Err(error) = serve(stream, &base_dir, expected.as_deref(), &counted)
                        {
                            eprintln!("git HTTP server: {error:#}");
                        }
                    });
                }
            })
            .context("starting the git HTTP server thread")?;
        Ok(Self {
            port,
            ref_checks,
            stop,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many ref advertisements were served: each ref check or fetch a
    /// client makes starts with one.
    pub fn ref_checks(&self) -> usize {
        self.ref_checks.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT/<name>`.
    pub fn url_for(&self, repo: &TestRepo) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, repo.name())
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request (the connection is closed afterwards).
fn serve(
    stream: TcpStream,
    base_dir: &Path,
    expected_auth: Option<&str>,
    ref_checks: &std::sync::atomic::AtomicUsize,
) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(()); // e.g. the wake-up connection of Drop
    };
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)?
    } else {
        let length: usize = header("content-length").unwrap_or("0").parse()?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    if let Some(expected) = expected_auth
        && header("authorization") != Some(expected)
    {
        writer.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"berth\"\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }

    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path.ends_with("/info/refs") {
        ref_checks.fetch_add(1, Ordering::SeqCst);
    }
    let mut command = git_command(base_dir);
    command
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", base_dir)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, variable) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(value) = header(name) {
            command.env(variable, value);
        }
    }
    let mut child = command.spawn().context("starting git http-backend")?;
    let mut stdin = child.stdin.take().context("git http-backend stdin")?;
    // Written from another thread: the backend may answer before it has read everything.
    let feeder = std::thread::spawn(move || stdin.write_all(&body));
    let output = child.wait_with_output()?;
    let _ = feeder.join();

    let cgi = output.stdout;
    let split = find(&cgi, b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| find(&cgi, b"\n\n").map(|at| (at, 2)))
        .context("git http-backend wrote no CGI header")?;
    let (head, body) = (&cgi[..split.0], &cgi[split.0 + split.1..]);
    let mut status = "200 OK".to_string();
    let mut response = Vec::new();
    for line in String::from_utf8_lossy(head).lines() {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                status = value.trim().to_string();
            }
            _ => response.extend_from_slice(format!("{line}\r\n").as_bytes()),
        }
    }
    writer.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        )
        .as_bytes(),
    )?;
    writer.write_all(&response)?;
    writer.write_all(b"\r\n")?;
    writer.write_all(body)?;
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_hex = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {size_hex:?}"))?;
        if size == 0 {
            // Skip trailers up to the final empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_reverts_and_serves_over_git_daemon() {
        let repo = TestRepo::new("demo").unwrap();
        repo.write("a.txt", "one\n").unwrap();
        let first = repo.commit("first").unwrap();
        repo.write("a.txt", "two\n").unwrap();
        let second = repo.commit("second").unwrap();
        assert_ne!(first, second);
        let revert = repo.revert(&second).unwrap();
        assert_eq!(
            std::fs::read_to_string(repo.path().join("a.txt")).unwrap(),
            "one\n"
        );
        assert_eq!(repo.head().unwrap(), revert);

        let daemon = GitDaemon::start(repo.base_dir()).unwrap();
        let listed = run_git(repo.path(), &["ls-remote", &daemon.url_for(&repo), BRANCH]).unwrap();
        assert!(listed.starts_with(&revert), "{listed}");

        let http = GitHttpServer::start(repo.base_dir(), None).unwrap();
        let listed = run_git(repo.path(), &["ls-remote", &http.url_for(&repo), BRANCH]).unwrap();
        assert!(listed.starts_with(&revert), "{listed}");
        drop(http);

        let pid = daemon.pid().unwrap();
        let port = daemon.port();
        drop(daemon);
        assert!(!crate::process::is_alive(pid));
        // Nothing is left listening (no orphaned daemon behind a wrapper).
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
