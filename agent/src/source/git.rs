//! A git branch mirrored into berth's cache with git2 (libgit2).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Once;

use git2::{
    AutotagOption, CredentialType, Direction, ErrorClass, ErrorCode, FetchOptions, Oid,
    RemoteCallbacks, Repository,
};
use sha2::{Digest, Sha256};
use tracing::{debug, info, info_span, warn};

use super::{CommitInfo, RepoTree, SourceError};

/// How long connecting to a remote may take. A refused loopback port fails at once anyway;
/// this bounds black-holed addresses.
const CONNECT_TIMEOUT_MS: i32 = 10_000;
/// How long one read or write on an open connection may stall.
const IO_TIMEOUT_MS: i32 = 60_000;

/// URL schemes libgit2 can fetch from (besides plain paths and scp-like `host:path`).
const SCHEMES: &[&str] = &["file", "git", "http", "https", "ssh", "ssh+git", "git+ssh"];

/// How berth authenticates to a remote.
#[derive(Clone)]
pub enum GitCredentials {
    None,
    /// HTTPS with a token (sent as the password of `username`).
    Token {
        username: String,
        token: String,
    },
    /// SSH with a private key file.
    SshKey {
        username: String,
        private_key: PathBuf,
        passphrase: Option<String>,
    },
}

impl fmt::Debug for GitCredentials {
    // Hand-written so that tokens and passphrases never reach logs or error output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitCredentials::None => f.write_str("None"),
            GitCredentials::Token { username, .. } => f
                .debug_struct("Token")
                .field("username", username)
                .field("token", &"<redacted>")
                .finish(),
            GitCredentials::SshKey {
                username,
                private_key,
                passphrase,
            } => f
                .debug_struct("SshKey")
                .field("username", username)
                .field("private_key", private_key)
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

impl GitCredentials {
    fn secrets(&self) -> Vec<&str> {
        match self {
            GitCredentials::None => vec![],
            GitCredentials::Token { token, .. } => vec![token],
            GitCredentials::SshKey { passphrase, .. } => {
                passphrase.iter().map(String::as_str).collect()
            }
        }
    }
}

/// The result of [`GitSource::update`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The commit the branch points at now (full sha).
    pub commit: String,
    /// Whether objects were downloaded (false when the head had not moved, or moved to a
    /// commit the cache already holds).
    pub fetched: bool,
}

/// One branch of one remote repository, mirrored into a bare repository in berth's cache.
#[derive(Clone)]
pub struct GitSource {
    name: String,
    url: String,
    /// `url` with any password in it replaced, for logs and errors.
    shown_url: String,
    branch: String,
    repo_dir: PathBuf,
    credentials: GitCredentials,
    /// Everything that must never appear in output (token, passphrase, password in the URL).
    secrets: Vec<String>,
}

impl fmt::Debug for GitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitSource")
            .field("name", &self.name)
            .field("url", &self.shown_url)
            .field("branch", &self.branch)
            .field("repo_dir", &self.repo_dir)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl GitSource {
    /// `cache_dir` is berth's cache; the repository lives in `cache_dir/git/<name>-<hash>`
    /// (name sanitised; the hash of the exact name keeps distinct names apart) — a bare
    /// repository, created once and reused across restarts.
    pub fn new(
        name: &str,
        url: &str,
        branch: &str,
        cache_dir: &Path,
        credentials: GitCredentials,
    ) -> Result<Self, SourceError> {
        let invalid = |reason: String| SourceError::InvalidConfig {
            name: name.to_string(),
            reason,
        };
        let (shown_url, url_password) = redact_url(url);
        if url.trim().is_empty() {
            return Err(invalid("the repository URL is empty".into()));
        }
        if let Some((scheme, _)) = url.split_once("://")
            && !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
        {
            return Err(invalid(format!(
                "unsupported URL scheme {scheme:?} in {shown_url} (supported: {})",
                SCHEMES.join(", ")
            )));
        }
        if branch.is_empty() || !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(invalid(format!("{branch:?} is not a valid branch name")));
        }
        if let GitCredentials::SshKey { private_key, .. } = &credentials
            && !private_key.is_file()
        {
            return Err(invalid(format!(
                "SSH private key {} is not a readable file",
                private_key.display()
            )));
        }
        let mut secrets: Vec<String> = credentials
            .secrets()
            .into_iter()
            .chain(url_password.as_deref())
            .filter(|secret| !secret.is_empty())
            .map(str::to_string)
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));

        let source = GitSource {
            name: name.to_string(),
            url: url.to_string(),
            shown_url,
            branch: branch.to_string(),
            repo_dir: cache_path(cache_dir, name),
            credentials,
            secrets,
        };
        source.open_or_init()?;
        Ok(source)
    }

    /// The bare repository in the cache.
    pub fn repo_dir(&self) -> &Path {
        &self.repo_dir
    }

    /// The remote URL with any password replaced (safe to log).
    pub fn display_url(&self) -> &str {
        &self.shown_url
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The cheap check: asks the remote for the branch head (like `git ls-remote`) without
    /// fetching objects.
    pub fn remote_head(&self) -> Result<String, SourceError> {
        let span = self.span();
        let _entered = span.enter();
        self.remote_head_oid().map(|oid| oid.to_string())
    }

    /// Brings the local copy up to date: checks the remote head first and fetches only if
    /// it moved (or nothing is cached yet). Returns the commit now current and whether a
    /// fetch happened.
    pub fn update(&mut self) -> Result<Update, SourceError> {
        let span = self.span();
        let _entered = span.enter();
        let remote_head = self.remote_head_oid()?;
        let repo = self.open_or_init()?;
        let tracking = self.tracking_ref();
        let local = repo.refname_to_id(&tracking).ok();
        if local == Some(remote_head) {
            debug!(commit = %remote_head, "branch head unchanged; not fetching");
            return Ok(Update {
                commit: remote_head.to_string(),
                fetched: false,
            });
        }
        // The commit the cache had for the branch, as the log says it.
        let from = local.map_or_else(|| "nothing".to_string(), |oid| oid.to_string());
        if repo.find_commit(remote_head).is_ok() {
            // E.g. the branch was reset to an earlier commit: every object is already here.
            info!(%from, to = %remote_head,
                "branch head moved to a commit already cached; not fetching");
            repo.reference(
                &tracking,
                remote_head,
                true,
                "berth: branch moved to a cached commit",
            )
            .map_err(|cause| self.cache_error(format!("updating {tracking}"), cause))?;
            return Ok(Update {
                commit: remote_head.to_string(),
                fetched: false,
            });
        }
        info!(%from, to = %remote_head, "branch head moved; fetching");
        self.fetch(&repo)?;
        self.compact(&repo)?;
        let commit = repo.refname_to_id(&tracking).map_err(|cause| {
            self.cache_error(format!("reading {tracking} after fetching"), cause)
        })?;
        if commit != remote_head {
            info!(expected = %remote_head, fetched = %commit, "branch moved again while fetching");
        }
        Ok(Update {
            commit: commit.to_string(),
            fetched: true,
        })
    }

    /// The commit the branch pointed at after the last successful [`GitSource::update`]
    /// (kept in the cache, so this survives restarts); `None` before the first fetch.
    pub fn cached_head(&self) -> Option<String> {
        let repo = Repository::open_bare(&self.repo_dir).ok()?;
        repo.refname_to_id(&self.tracking_ref())
            .ok()
            .map(|oid| oid.to_string())
    }

    /// A read-only view of the repository at `commit` (full or abbreviated sha; no
    /// checkout on disk). The commit must have been fetched.
    pub fn tree(&self, commit: &str) -> Result<RepoTree, SourceError> {
        let not_found = || SourceError::CommitNotFound {
            url: self.shown_url.clone(),
            commit: commit.to_string(),
        };
        // Only hex: "HEAD" or a branch name must not be taken for a commit.
        if commit.len() < 4 || commit.len() > 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let repo = self.open_or_init()?;
        let (info, tree) = {
            let found = repo
                .find_commit_by_prefix(commit)
                .map_err(|_| not_found())?;
            let author = found.author();
            let info = CommitInfo {
                sha: found.id().to_string(),
                subject: found.summary().unwrap_or_default().to_string(),
                author: author.name().unwrap_or_default().to_string(),
                allow_prune: allow_prune_trailers(found.message().unwrap_or_default()),
            };
            (info, found.tree_id())
        };
        Ok(RepoTree::from_git(repo, self.repo_dir.clone(), info, tree))
    }

    fn span(&self) -> tracing::Span {
        info_span!("git_source", url = %self.shown_url, branch = %self.branch)
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    fn remote_head_oid(&self) -> Result<Oid, SourceError> {
        configure_timeouts();
        let mut remote = git2::Remote::create_detached(self.url.as_str())
            .map_err(|cause| self.remote_error(cause))?;
        let connection = remote
            .connect_auth(Direction::Fetch, Some(self.callbacks()), None)
            .map_err(|cause| self.remote_error(cause))?;
        let wanted = format!("refs/heads/{}", self.branch);
        let head = connection
            .list()
            .map_err(|cause| self.remote_error(cause))?
            .iter()
            .find(|head| head.name() == wanted)
            .map(|head| head.oid());
        match head {
            Some(oid) => {
                debug!(commit = %oid, "remote branch head");
                Ok(oid)
            }
            None => Err(SourceError::BranchNotFound {
                url: self.shown_url.clone(),
                branch: self.branch.clone(),
            }),
        }
    }

    fn fetch(&self, repo: &Repository) -> Result<(), SourceError> {
        configure_timeouts();
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(|cause| self.remote_error(cause))?;
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(self.callbacks())
            .download_tags(AutotagOption::None)
            .update_fetchhead(false);
        // '+': follow forced pushes and resets of the branch.
        let refspec = format!("+refs/heads/{}:{}", self.branch, self.tracking_ref());
        remote
            .fetch(&[refspec.as_str()], Some(&mut options), None)
            .map_err(|cause| self.remote_error(cause))
    }

    fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut callbacks = RemoteCallbacks::new();
        let credentials = &self.credentials;
        // libgit2 asks again after a rejection; offering the same thing twice would loop.
        let mut offered = CredentialType::empty();
        callbacks.credentials(move |_url, username_from_url, allowed| {
            let refuse = |message: &str| {
                Err(git2::Error::new(
                    ErrorCode::Auth,
                    ErrorClass::Callback,
                    message,
                ))
            };
            let offer = |kind: CredentialType, offered: &mut CredentialType| {
                let first = !offered.contains(kind);
                offered.insert(kind);
                first
            };
            match credentials {
                GitCredentials::None => {
                    refuse("the remote asked for credentials; none are configured")
                }
                GitCredentials::Token { username, token } => {
                    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                        && offer(CredentialType::USER_PASS_PLAINTEXT, &mut offered)
                    {
                        git2::Cred::userpass_plaintext(username, token)
                    } else {
                        refuse("the remote rejected the token")
                    }
                }
                GitCredentials::SshKey {
                    username,
                    private_key,
                    passphrase,
                } => {
                    let user = username_from_url.unwrap_or(username);
                    if allowed.contains(CredentialType::USERNAME)
                        && offer(CredentialType::USERNAME, &mut offered)
                    {
                        git2::Cred::username(user)
                    } else if allowed.contains(CredentialType::SSH_KEY)
                        && offer(CredentialType::SSH_KEY, &mut offered)
                    {
                        git2::Cred::ssh_key(user, None, private_key, passphrase.as_deref())
                    } else {
                        refuse("the remote rejected the SSH key")
                    }
                }
            }
        });
        callbacks
    }

    /// Classifies a failure talking to the remote; the message is scrubbed of secrets.
    fn remote_error(&self, cause: git2::Error) -> SourceError {
        let message = self.redact(cause.message());
        let url = self.shown_url.clone();
        let auth = cause.code() == ErrorCode::Auth
            || (cause.class() == ErrorClass::Ssh && message.contains("authenticat"));
        // Writing what was fetched failed here (a full disk): the cache's
        // fault, not the remote's.
        // (libgit2 reports a refused connection as an OS error too, so the
        // OS's own words tell them apart.)
        let local = matches!(cause.class(), ErrorClass::Odb | ErrorClass::Filesystem)
            || [
                "No space left on device",
                "Disk quota exceeded",
                "Read-only file system",
            ]
            .iter()
            .any(|words| message.contains(words));
        if local {
            warn!(%message, "could not write the fetched objects to the cache");
            return self.cache_error("writing the fetched objects".into(), cause);
        }
        if auth {
            warn!(%message, "remote refused authentication");
            SourceError::Authentication {
                url,
                cause: message,
            }
        } else {
            warn!(%message, "remote unreachable");
            SourceError::Unreachable {
                url,
                cause: message,
            }
        }
    }

    fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), "<redacted>")
        })
    }

    fn cache_error(&self, context: String, cause: git2::Error) -> SourceError {
        SourceError::Cache {
            path: self.repo_dir.clone(),
            context,
            cause,
        }
    }

    /// Opens the cache repository, creating it on first use and re-creating it when it is
    /// damaged (it only ever holds fetched data, so nothing is lost).
    /// Every fetch leaves a pack behind; past [`MAX_PACKS`] they are
    /// rewritten into one pack of what the branch reaches (libgit2's pack
    /// builder), so lookups stay fast and the cache does not grow with
    /// objects no longer reachable (a force-pushed branch's old commits).
    fn compact(&self, repo: &Repository) -> Result<(), SourceError> {
        let pack_dir = self.repo_dir.join("objects").join("pack");
        let packs = pack_files(&pack_dir);
        if packs.len() <= MAX_PACKS {
            return Ok(());
        }
        let tracking = self.tracking_ref();
        let failed = |what: &str, cause: git2::Error| self.cache_error(what.to_string(), cause);
        let head = repo
            .refname_to_id(&tracking)
            .map_err(|cause| failed("reading the branch to compact the cache", cause))?;
        let mut walk = repo
            .revwalk()
            .map_err(|cause| failed("walking the branch", cause))?;
        walk.push(head)
            .map_err(|cause| failed("walking the branch", cause))?;
        let mut builder = repo
            .packbuilder()
            .map_err(|cause| failed("starting a pack", cause))?;
        builder
            .insert_walk(&mut walk)
            .map_err(|cause| failed("packing the branch", cause))?;
        builder
            .write(&pack_dir, 0)
            .map_err(|cause| failed("writing the pack", cause))?;
        let kept = builder.name().map(|name| format!("pack-{name}"));
        for pack in &packs {
            let stem = pack.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if Some(stem) == kept.as_deref() {
                continue;
            }
            for extension in ["pack", "idx", "rev"] {
                let file = pack.with_extension(extension);
                if let Err(cause) = std::fs::remove_file(&file)
                    && cause.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(SourceError::Io { path: file, cause });
                }
            }
        }
        info!(
            packs = packs.len(),
            objects = builder.object_count(),
            "cache compacted into one pack"
        );
        Ok(())
    }

    fn open_or_init(&self) -> Result<Repository, SourceError> {
        let dir = &self.repo_dir;
        match Repository::open_bare(dir) {
            Ok(repo) => return Ok(repo),
            Err(cause) if dir.exists() => {
                warn!(path = %dir.display(), %cause, "cache repository is damaged; re-creating it");
                std::fs::remove_dir_all(dir).map_err(|cause| SourceError::Io {
                    path: dir.clone(),
                    cause,
                })?;
            }
            Err(_) => {}
        }
        std::fs::create_dir_all(dir).map_err(|cause| SourceError::Io {
            path: dir.clone(),
            cause,
        })?;
        debug!(path = %dir.display(), "creating cache repository");
        Repository::init_bare(dir)
            .map_err(|cause| self.cache_error("creating the repository".into(), cause))
    }
}

/// Packs a cached repository may hold before they are rewritten into one.
const MAX_PACKS: usize = 16;

/// The `.pack` files in `dir`.
fn pack_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "pack"))
        .collect()
}

/// Where application `name`'s repository is cached under `cache_dir`.
pub fn cache_path(cache_dir: &Path, name: &str) -> PathBuf {
    cache_dir.join("git").join(cache_dir_name(name))
}

/// Removes the cached repositories under `cache_dir` of applications not
/// in `followed`; returns what it removed. Only directories named as berth
/// names them are touched.
pub fn remove_unfollowed(cache_dir: &Path, followed: &[&str]) -> Vec<PathBuf> {
    let keep: Vec<PathBuf> = followed
        .iter()
        .map(|name| cache_path(cache_dir, name))
        .collect();
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(cache_dir.join("git"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        let named_by_berth = entry
            .file_name()
            .to_str()
            .and_then(|name| name.rsplit_once('-'))
            .is_some_and(|(_, hash)| {
                hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit())
            });
        if !path.is_dir() || !named_by_berth || keep.contains(&path) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                info!(path = %path.display(), "removed the cache of an application no longer followed");
                removed.push(path);
            }
            Err(error) => warn!(path = %path.display(), %error, "could not remove an unused cache"),
        }
    }
    removed
}

/// Sets libgit2's network timeouts once per process.
fn configure_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: libgit2 global options; set once, before this module starts any transfer.
        unsafe {
            if let Err(e) =
                git2::opts::set_server_connect_timeout_in_milliseconds(CONNECT_TIMEOUT_MS)
            {
                warn!(%e, "could not set the git connect timeout");
            }
            if let Err(e) = git2::opts::set_server_timeout_in_milliseconds(IO_TIMEOUT_MS) {
                warn!(%e, "could not set the git I/O timeout");
            }
        }
    });
}

/// The cache directory name for a source: the name with unusual characters replaced,
/// plus a hash of the exact name so that "a/b" and "a_b" do not share a repository.
fn cache_dir_name(name: &str) -> String {
    let sanitised: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{sanitised}-{}", &hash[..12])
}

/// `url` with the password of its userinfo (if any) replaced, and that password.
fn redact_url(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    match userinfo.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}:<redacted>@{host}{path}"),
            Some(password.to_string()),
        ),
        None => (url.to_string(), None),
    }
}

/// The values of the `Berth-Allow-Prune` trailers of a commit message (git's
/// own trailer parsing; the key matched without regard to case).
fn allow_prune_trailers(message: &str) -> Vec<String> {
    git2::message_trailers_strs(message)
        .map(|trailers| {
            trailers
                .iter()
                .filter(|(key, _)| key.eq_ignore_ascii_case(crate::plan::ALLOW_PRUNE_TRAILER))
                .map(|(_, value)| value.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    #[test]
    fn allow_prune_trailers_are_read_as_git_reads_trailers() {
        let message = "Remove the worker\n\nIt moved to its own repository.\n\nBerth-Allow-Prune: 4\nberth-allow-prune: api=2\nSigned-off-by: Ada <ada@example.com>\n";
        assert_eq!(allow_prune_trailers(message), vec!["4", "api=2"]);
        // A line in the body is no trailer.
        assert!(allow_prune_trailers("Subject\n\nBerth-Allow-Prune: 4\n\nmore text\n").is_empty());
        assert!(allow_prune_trailers("Berth-Allow-Prune: 4").is_empty());
    }

    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let token = GitCredentials::Token {
            username: "bot".into(),
            token: "s3cr3t-token".into(),
        };
        let key = GitCredentials::SshKey {
            username: "git".into(),
            private_key: "/keys/id".into(),
            passphrase: Some("open-sesame".into()),
        };
        let shown = format!("{token:?} {key:?}");
        assert!(
            !shown.contains("s3cr3t-token") && !shown.contains("open-sesame"),
            "{shown}"
        );
        assert!(
            shown.contains("bot") && shown.contains("/keys/id"),
            "{shown}"
        );
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("https://bot:tok@example.com/a/b.git"),
            (
                "https://bot:<redacted>@example.com/a/b.git".to_string(),
                Some("tok".to_string())
            )
        );
        assert_eq!(redact_url("https://example.com/a").1, None);
        assert_eq!(redact_url("git@example.com:a/b.git").1, None);
        assert_eq!(redact_url("ssh://git@example.com/a").1, None);
    }

    #[test]
    fn cache_dir_names_are_safe_and_distinct() {
        let a = cache_dir_name("team/app");
        let b = cache_dir_name("team_app");
        assert!(a.starts_with("team_app-") && b.starts_with("team_app-"));
        assert_ne!(a, b);
        for name in ["..", ".", "", "../../etc", "a b"] {
            let dir = cache_dir_name(name);
            assert!(
                !dir.contains('/') && !dir.contains('.') && !dir.is_empty(),
                "{dir}"
            );
        }
    }

    #[test]
    fn new_refuses_bad_configuration() {
        let cache = tempfile::tempdir().unwrap();
        let new = |url: &str, branch: &str, credentials| {
            GitSource::new("app", url, branch, cache.path(), credentials)
        };
        for (url, branch) in [
            ("", "main"),
            ("ftp://x/y", "main"),
            ("file:///x", "a..b"),
            ("file:///x", ""),
        ] {
            assert!(
                matches!(
                    new(url, branch, GitCredentials::None),
                    Err(SourceError::InvalidConfig { .. })
                ),
                "{url} {branch}"
            );
        }
        let missing_key = GitCredentials::SshKey {
            username: "git".into(),
            private_key: cache.path().join("nope"),
            passphrase: None,
        };
        assert!(matches!(
            new("ssh://git@localhost/x", "main", missing_key),
            Err(SourceError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn unreachable_remote_fails_fast_without_leaking_the_token() {
        let cache = tempfile::tempdir().unwrap();
        // A port that was just free: connecting is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut source = GitSource::new(
            "app",
            &format!("http://bot:url-secret@127.0.0.1:{port}/repo.git"),
            "main",
            cache.path(),
            GitCredentials::Token {
                username: "bot".into(),
                token: "token-secret".into(),
            },
        )
        .unwrap();
        let started = std::time::Instant::now();
        let error = source.update().unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(error.is_transient(), "{error:?}");
        let shown = format!("{error} {error:?} {source:?}");
        assert!(
            !shown.contains("url-secret") && !shown.contains("token-secret"),
            "{shown}"
        );
        assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    }

    #[test]
    fn tree_of_an_unknown_commit_is_commit_not_found() {
        let cache = tempfile::tempdir().unwrap();
        let source = GitSource::new(
            "app",
            "file:///nonexistent",
            "main",
            cache.path(),
            GitCredentials::None,
        )
        .unwrap();
        for commit in [
            "HEAD",
            "main",
            "abc",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(
                matches!(source.tree(commit), Err(SourceError::CommitNotFound { .. })),
                "{commit}"
            );
        }
        assert_eq!(source.cached_head(), None);
    }
}
