//! Live configuration: watches the agent's configuration file and reads it
//! again when it changes. The file's directory is watched, not the file, so
//! that editors that write a new file and rename it, and Kubernetes'
//! ConfigMap volumes (which swap a `..data` symlink), are seen too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::{AgentConfig, ConfigError};

/// Changes closer together than this are read once.
const SETTLE: Duration = Duration::from_millis(300);

/// Watches one configuration file.
pub struct ConfigWatcher {
    path: PathBuf,
    // Kept alive for as long as the changes are wanted.
    _watcher: notify::RecommendedWatcher,
    changes: mpsc::Receiver<()>,
    /// The digest of the content last read, to ignore events that change nothing.
    last: Option<[u8; 32]>,
}

impl ConfigWatcher {
    pub fn start(path: &Path) -> Result<ConfigWatcher, notify::Error> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let directory = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let (sender, changes) = mpsc::channel(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    // A full channel already holds a pending change.
                    let _ = sender.try_send(());
                }
            })?;
        watcher.watch(&directory, RecursiveMode::NonRecursive)?;
        let last = std::fs::read(&path).ok().map(|bytes| digest(&bytes));
        Ok(ConfigWatcher {
            path,
            _watcher: watcher,
            changes,
            last,
        })
    }

    /// Waits for the file's content to change and reads it: the new valid
    /// configuration, or why it is not valid. `Ok(None)` when something else
    /// in the directory changed.
    pub async fn next(&mut self) -> Result<Option<AgentConfig>, ConfigError> {
        if self.changes.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SETTLE).await;
        while self.changes.try_recv().is_ok() {}
        let Ok(bytes) = std::fs::read(&self.path) else {
            // Removed, or between a delete and a create: wait for the next event.
            return Ok(None);
        };
        let now = digest(&bytes);
        if self.last == Some(now) {
            return Ok(None);
        }
        self.last = Some(now);
        let path = self.path.clone();
        match tokio::task::spawn_blocking(move || AgentConfig::load(&path)).await {
            Ok(result) => result.map(Some),
            Err(join) => Err(ConfigError::Read {
                file: self.path.display().to_string(),
                cause: join.to_string(),
            }),
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
