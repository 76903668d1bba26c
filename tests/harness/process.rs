//! Starting server processes so that none outlives the test binary.
//!
//! A process tied to the test binary is spawned by one long-lived thread with
//! `PR_SET_PDEATHSIG = SIGKILL`. Linux sends that signal when the spawning
//! *thread* ends, so spawning from a test thread would kill the server as soon
//! as that test returned; spawning from a thread that lives as long as the
//! process means the servers die exactly when the test binary does, whether it
//! exits normally, panics or is killed.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        // The sender lives in a static, so this loop (and the thread) only ends with the process.
        std::thread::Builder::new()
            .name("berth-harness-spawner".into())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawning the harness spawner thread");
        Mutex::new(requests)
    })
}

/// How long a started server may live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Killed when the process that started it exits, however it exits.
    TiedToProcess,
    /// Outlives its starter (in its own session); stopped by pid, e.g. `cargo xtask cluster down`.
    Detached,
}

/// A running server with its log file; killed and reaped on drop.
pub struct ServerProcess {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl ServerProcess {
    /// Starts `command`, sending its stdout and stderr to `log_path`.
    pub fn start(
        name: &str,
        mut command: Command,
        log_path: &Path,
        lifetime: Lifetime,
    ) -> Result<Self> {
        let log = File::create(log_path)
            .with_context(|| format!("creating log file {}", log_path.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = match lifetime {
            Lifetime::TiedToProcess => spawn_tied_to_process(command),
            Lifetime::Detached => {
                // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
                unsafe {
                    command.pre_exec(|| {
                        libc::setsid();
                        Ok(())
                    });
                }
                command.spawn()
            }
        }
        .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log_path: log_path.to_path_buf(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Fails with the end of the log if the process has already exited.
    pub fn check_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} was stopped", self.name);
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "{} exited early ({status}); last lines of {}:\n{}",
                self.name,
                self.log_path.display(),
                log_tail(&self.log_path, 30)
            );
        }
        Ok(())
    }

    /// Lets the process run on after this handle is dropped (for detached servers).
    pub fn release(mut self) -> u32 {
        self.child.take().map(|c| c.id()).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_tied_to_process(mut command: Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe; the closure only reads a copied integer.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::other(
                    "test process exited while starting a server",
                ));
            }
            Ok(())
        });
    }
    let (reply, response) = mpsc::channel();
    spawner()
        .lock()
        .map_err(|_| io::Error::other("harness spawner lock poisoned"))?
        .send((command, reply))
        .map_err(|_| io::Error::other("harness spawner thread is gone"))?;
    response
        .recv()
        .map_err(|_| io::Error::other("harness spawner thread is gone"))?
}

/// Whether a process with this pid exists (and is not a zombie of ours already reaped).
pub fn is_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    if !exists {
        return false;
    }
    // A zombie still answers kill(0); look at its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends SIGTERM, then SIGKILL after `grace`, to a process we do not hold a handle for.
pub fn terminate(pid: u32, grace: Duration) {
    // SAFETY: plain signal delivery to a pid we recorded ourselves.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while is_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if is_alive(pid) {
        // SAFETY: as above.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(could not read log: {e})"),
    }
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// TCP connections that the processes `pids` hold open to the server at
/// `server` (a URL with a port), counted from `/proc`.
pub fn connections_to(pids: &[u32], server: &str) -> Result<usize> {
    let port: u16 = server
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .with_context(|| format!("no port in {server}"))?;
    let mut inodes = std::collections::BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // rem_address is field 2 (hex ip:port), st field 3 (01: established), inode field 9.
            let (Some(remote), Some(state), Some(inode)) =
                (fields.get(2), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let remote_port = remote
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if remote_port == Some(port) && *state == "01" {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut count = 0;
    for pid in pids {
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                && inodes.contains(inode)
            {
                count += 1;
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_server_is_killed_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sleep");
        command.arg("300");
        let server = ServerProcess::start(
            "sleep",
            command,
            &dir.path().join("sleep.log"),
            Lifetime::TiedToProcess,
        )
        .unwrap();
        let pid = server.pid().unwrap();
        assert!(is_alive(pid));
        drop(server);
        assert!(!is_alive(pid), "process {pid} survived its handle");
    }

    #[test]
    fn early_exit_reports_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo bad flag --foo >&2; exit 3"]);
        let mut server = ServerProcess::start(
            "failing",
            command,
            &dir.path().join("failing.log"),
            Lifetime::TiedToProcess,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let error = server.check_running().unwrap_err().to_string();
        assert!(error.contains("exited early"), "{error}");
        assert!(error.contains("bad flag --foo"), "{error}");
    }
}
