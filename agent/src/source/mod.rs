//! Where releases come from: git repositories (and plain directories, offline).
//!
//! [`GitSource`] keeps one bare repository per application in berth's cache and
//! brings it up to date cheaply: it asks the remote for the branch head first (like
//! `git ls-remote`) and downloads objects only when the head moved. [`RepoTree`]
//! reads files at one commit straight from the object database (no checkout), or
//! from a directory on disk for offline rendering; both refuse paths and symlinks
//! that lead outside the repository.

mod git;
mod path;
mod tree;

use std::path::PathBuf;

pub use git::{GitCredentials, GitSource, Update, remove_unfollowed};
pub use path::RepoPath;
pub use tree::RepoTree;

/// The commit a tree shows, as the sync log names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommitInfo {
    /// The full sha.
    pub sha: String,
    /// The first line of its message.
    pub subject: String,
    /// Its author's name.
    pub author: String,
    /// The values of its `Berth-Allow-Prune` trailers: deletions the
    /// commit acknowledges beyond the deletion guard ([`crate::plan`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_prune: Vec<String>,
}

impl CommitInfo {
    /// The sha as people read it (12 characters, as `berth history` prints).
    pub fn short_sha(&self) -> &str {
        self.sha.get(..12).unwrap_or(&self.sha)
    }
}

impl std::fmt::Display for CommitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} \"{}\" by {}",
            self.short_sha(),
            self.subject,
            self.author
        )
    }
}

/// Why reading a source failed.
///
/// [`SourceError::is_transient`] tells "the remote could not be reached or refused us,
/// try again later and leave the cluster as it is" apart from problems with the
/// configuration or the repository's content.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The remote could not be reached or the transfer failed (network, DNS, timeout,
    /// server error, repository missing on the server).
    #[error("git remote {url} is unreachable: {cause}")]
    Unreachable { url: String, cause: String },
    /// The remote asked for credentials and refused the ones berth has (or it has none).
    #[error("git remote {url} refused authentication: {cause}")]
    Authentication { url: String, cause: String },
    /// The remote answered but has no such branch.
    #[error("git remote {url} has no branch {branch:?}")]
    BranchNotFound { url: String, branch: String },
    /// The source is configured wrongly (bad URL or branch name, unreadable key file, ...).
    #[error("git source {name:?}: {reason}")]
    InvalidConfig { name: String, reason: String },
    /// The local cache repository could not be created, opened or updated.
    #[error("git cache {}: {context}: {cause}", path.display())]
    Cache {
        path: PathBuf,
        context: String,
        #[source]
        cause: git2::Error,
    },
    /// A file-system operation in the cache or in a directory tree failed.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    /// The commit is not in the local copy (not fetched yet, or not a commit).
    #[error("commit {commit:?} is not in the local copy of {url}")]
    CommitNotFound { url: String, commit: String },
    /// Reading an object of a commit failed (a damaged cache).
    #[error("reading {path} at commit {commit} in {}: {cause}", repository.display())]
    Object {
        repository: PathBuf,
        commit: String,
        path: String,
        #[source]
        cause: git2::Error,
    },
    /// No file or directory at this path.
    #[error("{path}: no such file or directory in the repository")]
    NotFound { path: String },
    /// The path, or the symlink it names, points outside the repository.
    #[error("{path}: refers to a location outside the repository")]
    EscapesRepository { path: String },
    /// Resolving the path followed symlinks in a circle.
    #[error("{path}: symlinks form a loop")]
    SymlinkLoop { path: String },
    #[error("{path}: is a directory, not a file")]
    NotAFile { path: String },
    #[error("{path}: is not a directory")]
    NotADirectory { path: String },
    #[error("{path}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// The repository holds something berth does not read there (e.g. a submodule).
    #[error("{path}: {what} are not supported")]
    Unsupported { path: String, what: &'static str },
    /// A file, or a directory read whole (a chart), is larger than berth reads.
    #[error("{path}: {what} is larger than berth reads ({limit} bytes)")]
    TooLarge {
        path: String,
        what: &'static str,
        limit: u64,
    },
    /// A directory read whole (a chart) holds more files than berth reads.
    #[error("{path}: holds more than {limit} files, more than berth reads in a chart")]
    TooManyFiles { path: String, limit: usize },
}

impl SourceError {
    /// Whether the failure is about reaching the remote (retry later, leave the cluster
    /// as it is) rather than about configuration or content.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Unreachable { .. })
    }
}
