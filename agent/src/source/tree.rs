//! Read-only views of a repository's files: at one git commit, or in a directory on disk.
//!
//! Both kinds share one path resolver, so symlinks behave the same way in both: a link
//! is followed when its target stays inside the repository and refused
//! ([`SourceError::EscapesRepository`], naming the link) when it does not. The resolver
//! never lets the operating system follow a link, so a link cannot smuggle a path out.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{ErrorCode, ObjectType, Oid, Repository, Tree};

use super::{CommitInfo, RepoPath, SourceError};

/// More links than this while resolving one path is treated as a loop (Linux uses 40 too).
const MAX_SYMLINK_HOPS: usize = 40;

/// Bounds on what one read takes from a repository, so that a hostile or
/// mistaken commit (a 1 GiB file, a million small ones) fails with an error
/// instead of filling memory. Helm itself refuses chart files over 5 MiB
/// (berth's chart loader does too, after `.helmignore`); these are wider,
/// as ignored files are read before the loader drops them.
const MAX_FILE_BYTES: u64 = 64 << 20;
const MAX_DIR_BYTES: u64 = 256 << 20;
const MAX_DIR_FILES: usize = 10_000;

/// Files of a repository at one commit (git), or of a directory on disk (offline `berth render`).
pub struct RepoTree {
    inner: Inner,
}

enum Inner {
    Git {
        // git2's Repository is Send but not Sync; the mutex makes the tree shareable.
        repo: Mutex<Repository>,
        repo_dir: PathBuf,
        commit: CommitInfo,
        tree: Oid,
    },
    Dir {
        root: PathBuf,
    },
}

impl std::fmt::Debug for RepoTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Git {
                repo_dir, commit, ..
            } => f
                .debug_struct("RepoTree")
                .field("repository", repo_dir)
                .field("commit", &commit.sha)
                .finish(),
            Inner::Dir { root } => f.debug_struct("RepoTree").field("dir", root).finish(),
        }
    }
}

/// What one path is, without following a symlink at that path.
enum Node {
    File,
    Dir,
    Symlink(String),
    Missing,
    /// Something berth does not read (a submodule, a socket, ...).
    Other(&'static str),
}

/// The storage under the resolver.
trait Backend {
    fn node(&self, path: &RepoPath) -> Result<Node, SourceError>;
    /// Names of the entries of a directory that `node` reported as `Dir`.
    fn list(&self, dir: &RepoPath) -> Result<Vec<String>, SourceError>;
    /// Contents of a path that `node` reported as `File`.
    fn read(&self, file: &RepoPath) -> Result<Vec<u8>, SourceError>;
    /// The size of a path that `node` reported as `File`, without reading it.
    fn size(&self, file: &RepoPath) -> Result<u64, SourceError>;
}

/// Reads a file of `size` bytes (its size as the backend tells it, asked
/// once by the caller) unless that is more than [`MAX_FILE_BYTES`].
fn read_bounded(
    backend: &dyn Backend,
    file: &RepoPath,
    size: u64,
    shown: &str,
) -> Result<Vec<u8>, SourceError> {
    if size > MAX_FILE_BYTES {
        return Err(SourceError::TooLarge {
            path: shown.to_string(),
            what: "the file",
            limit: MAX_FILE_BYTES,
        });
    }
    backend.read(file)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

impl RepoTree {
    /// A view of a directory on disk, for rendering without git.
    pub fn from_dir(root: &Path) -> RepoTree {
        RepoTree {
            inner: Inner::Dir {
                root: root.to_path_buf(),
            },
        }
    }

    /// A view of `commit` in the (bare) repository at `repo_dir`.
    pub(crate) fn from_git(
        repo: Repository,
        repo_dir: PathBuf,
        commit: CommitInfo,
        tree: Oid,
    ) -> RepoTree {
        RepoTree {
            inner: Inner::Git {
                repo: Mutex::new(repo),
                repo_dir,
                commit,
                tree,
            },
        }
    }

    /// The commit this tree shows (full sha; `None` for a directory on disk).
    pub fn commit(&self) -> Option<&str> {
        self.commit_info().map(|info| info.sha.as_str())
    }

    /// The commit this tree shows, with its subject and author.
    pub fn commit_info(&self) -> Option<&CommitInfo> {
        match &self.inner {
            Inner::Git { commit, .. } => Some(commit),
            Inner::Dir { .. } => None,
        }
    }

    /// Reads one file; `path` is relative to the repository root.
    /// A missing file is [`SourceError::NotFound`].
    pub fn read_file(&self, path: &RepoPath) -> Result<Vec<u8>, SourceError> {
        self.with_backend(|backend| {
            let (real, kind) = resolve(backend, path)?;
            match kind {
                Kind::File => read_bounded(backend, &real, backend.size(&real)?, path.as_str()),
                Kind::Dir => Err(SourceError::NotAFile {
                    path: path.to_string(),
                }),
            }
        })
    }

    /// Whether `path` exists (as a file or directory, following symlinks that stay inside).
    pub fn exists(&self, path: &RepoPath) -> Result<bool, SourceError> {
        self.with_backend(|backend| match resolve(backend, path) {
            Ok(_) => Ok(true),
            Err(SourceError::NotFound { .. }) => Ok(false),
            Err(other) => Err(other),
        })
    }

    /// All files below `dir`, keyed by path relative to `dir` with '/' separators.
    /// Symlinks are followed (to files and directories) when they stay inside the repository.
    pub fn read_dir_all(&self, dir: &RepoPath) -> Result<BTreeMap<String, Vec<u8>>, SourceError> {
        self.with_backend(|backend| {
            let (real, kind) = resolve(backend, dir)?;
            if kind != Kind::Dir {
                return Err(SourceError::NotADirectory {
                    path: dir.to_string(),
                });
            }
            let mut files = BTreeMap::new();
            let mut stack = vec![real.clone()];
            let mut read = Budget::default();
            walk(backend, &real, "", &mut stack, &mut files, &mut read).map_err(
                |error| match error {
                    // Name the directory asked for, not where the walk was.
                    SourceError::TooLarge {
                        what: "the directory",
                        limit,
                        ..
                    } => SourceError::TooLarge {
                        path: dir.to_string(),
                        what: "the directory",
                        limit,
                    },
                    SourceError::TooManyFiles { limit, .. } => SourceError::TooManyFiles {
                        path: dir.to_string(),
                        limit,
                    },
                    other => other,
                },
            )?;
            Ok(files)
        })
    }

    fn with_backend<T>(
        &self,
        operation: impl FnOnce(&dyn Backend) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        match &self.inner {
            Inner::Dir { root } => operation(&DirBackend { root }),
            Inner::Git {
                repo,
                repo_dir,
                commit,
                tree,
            } => {
                // A panic elsewhere cannot leave a read-only handle inconsistent.
                let repo = repo.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let tree = repo.find_tree(*tree).map_err(|cause| SourceError::Object {
                    repository: repo_dir.clone(),
                    commit: commit.sha.clone(),
                    path: ".".into(),
                    cause,
                })?;
                operation(&GitBackend {
                    repo: &repo,
                    repo_dir,
                    commit: &commit.sha,
                    tree,
                })
            }
        }
    }
}

/// Follows `path` component by component, expanding symlinks, to a real path and its kind.
fn resolve(backend: &dyn Backend, path: &RepoPath) -> Result<(RepoPath, Kind), SourceError> {
    let mut pending: VecDeque<String> = path.components().map(str::to_string).collect();
    let mut current = RepoPath::root();
    let mut kind = Kind::Dir;
    let mut hops = 0;
    while let Some(name) = pending.pop_front() {
        if kind == Kind::File {
            // "file/more" does not exist.
            return Err(SourceError::NotFound {
                path: path.to_string(),
            });
        }
        let candidate = current.child(&name);
        match backend.node(&candidate)? {
            Node::Missing => {
                return Err(SourceError::NotFound {
                    path: path.to_string(),
                });
            }
            Node::Dir => {
                current = candidate;
                kind = Kind::Dir;
            }
            Node::File => {
                current = candidate;
                kind = Kind::File;
            }
            Node::Symlink(target) => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(SourceError::SymlinkLoop {
                        path: candidate.to_string(),
                    });
                }
                // The target is relative to the directory holding the link (`current`).
                let resolved =
                    current
                        .join(&target)
                        .map_err(|_| SourceError::EscapesRepository {
                            path: candidate.to_string(),
                        })?;
                for component in resolved.components().rev() {
                    pending.push_front(component.to_string());
                }
                current = RepoPath::root();
                kind = Kind::Dir;
            }
            Node::Other(what) => {
                return Err(SourceError::Unsupported {
                    path: candidate.to_string(),
                    what,
                });
            }
        }
    }
    Ok((current, kind))
}

/// Collects the files below the real directory `dir` into `files`, keys prefixed by `prefix`.
/// `stack` holds the real directories being walked, to detect directory-symlink loops.
/// What a directory read has taken so far.
#[derive(Default)]
struct Budget {
    files: usize,
    bytes: u64,
}

fn walk(
    backend: &dyn Backend,
    dir: &RepoPath,
    prefix: &str,
    stack: &mut Vec<RepoPath>,
    files: &mut BTreeMap<String, Vec<u8>>,
    read: &mut Budget,
) -> Result<(), SourceError> {
    for name in backend.list(dir)? {
        let child = dir.child(&name);
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let (real, kind) = match backend.node(&child)? {
            Node::File => (child.clone(), Kind::File),
            Node::Dir => (child.clone(), Kind::Dir),
            Node::Symlink(_) => resolve(backend, &child)?,
            Node::Missing => continue,
            Node::Other(what) => {
                tracing::debug!(path = %child, what, "skipping an entry berth does not read");
                continue;
            }
        };
        match kind {
            Kind::File => {
                read.files += 1;
                if read.files > MAX_DIR_FILES {
                    return Err(SourceError::TooManyFiles {
                        path: dir.to_string(),
                        limit: MAX_DIR_FILES,
                    });
                }
                let size = backend.size(&real)?;
                read.bytes = read.bytes.saturating_add(size);
                if read.bytes > MAX_DIR_BYTES {
                    return Err(SourceError::TooLarge {
                        path: dir.to_string(),
                        what: "the directory",
                        limit: MAX_DIR_BYTES,
                    });
                }
                files.insert(key, read_bounded(backend, &real, size, child.as_str())?);
            }
            Kind::Dir => {
                // The link lives inside every directory on the stack; entering one of
                // those (or a parent of one) again would never end.
                if stack.iter().any(|walking| walking.starts_with(&real)) {
                    return Err(SourceError::SymlinkLoop {
                        path: child.to_string(),
                    });
                }
                stack.push(real.clone());
                walk(backend, &real, &key, stack, files, read)?;
                stack.pop();
            }
        }
    }
    Ok(())
}

struct DirBackend<'a> {
    root: &'a Path,
}

impl DirBackend<'_> {
    fn full(&self, path: &RepoPath) -> PathBuf {
        self.root.join(path.as_str())
    }

    fn io_error(&self, path: &RepoPath, cause: std::io::Error) -> SourceError {
        SourceError::Io {
            path: self.full(path),
            cause,
        }
    }
}

impl Backend for DirBackend<'_> {
    fn node(&self, path: &RepoPath) -> Result<Node, SourceError> {
        let full = self.full(path);
        // symlink_metadata: never let the OS follow a link at this path; the resolver does.
        let metadata = match std::fs::symlink_metadata(&full) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Node::Missing),
            Err(e) => return Err(self.io_error(path, e)),
        };
        let file_type = metadata.file_type();
        if file_type.is_symlink() {
            let target = std::fs::read_link(&full).map_err(|e| self.io_error(path, e))?;
            let target = target
                .to_str()
                .ok_or_else(|| SourceError::InvalidPath {
                    path: path.to_string(),
                    reason: "symlink target is not UTF-8",
                })?
                .to_string();
            Ok(Node::Symlink(target))
        } else if file_type.is_dir() {
            Ok(Node::Dir)
        } else if file_type.is_file() {
            Ok(Node::File)
        } else {
            Ok(Node::Other("special files"))
        }
    }

    fn list(&self, dir: &RepoPath) -> Result<Vec<String>, SourceError> {
        let entries = std::fs::read_dir(self.full(dir)).map_err(|e| self.io_error(dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_error(dir, e))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| SourceError::InvalidPath {
                    path: dir.to_string(),
                    reason: "contains a file name that is not UTF-8",
                })?;
            names.push(name);
        }
        Ok(names)
    }

    fn read(&self, file: &RepoPath) -> Result<Vec<u8>, SourceError> {
        std::fs::read(self.full(file)).map_err(|e| self.io_error(file, e))
    }

    fn size(&self, file: &RepoPath) -> Result<u64, SourceError> {
        std::fs::metadata(self.full(file))
            .map(|metadata| metadata.len())
            .map_err(|e| self.io_error(file, e))
    }
}

struct GitBackend<'a> {
    repo: &'a Repository,
    repo_dir: &'a Path,
    commit: &'a str,
    tree: Tree<'a>,
}

/// Git file modes (the type bits of a tree entry).
const MODE_TYPE_MASK: i32 = 0o170000;
const MODE_DIR: i32 = 0o040000;
const MODE_FILE: i32 = 0o100000;
const MODE_SYMLINK: i32 = 0o120000;
const MODE_SUBMODULE: i32 = 0o160000;

impl GitBackend<'_> {
    fn object_error(&self, path: &RepoPath, cause: git2::Error) -> SourceError {
        SourceError::Object {
            repository: self.repo_dir.to_path_buf(),
            commit: self.commit.to_string(),
            path: path.to_string(),
            cause,
        }
    }

    fn blob(&self, path: &RepoPath) -> Result<Vec<u8>, SourceError> {
        let entry = self
            .tree
            .get_path(Path::new(path.as_str()))
            .map_err(|e| self.object_error(path, e))?;
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(|e| self.object_error(path, e))?;
        Ok(blob.content().to_vec())
    }
}

impl Backend for GitBackend<'_> {
    fn node(&self, path: &RepoPath) -> Result<Node, SourceError> {
        if path.is_root() {
            return Ok(Node::Dir);
        }
        let entry = match self.tree.get_path(Path::new(path.as_str())) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(Node::Missing),
            Err(e) => return Err(self.object_error(path, e)),
        };
        Ok(match entry.filemode() & MODE_TYPE_MASK {
            MODE_DIR => Node::Dir,
            MODE_FILE => Node::File,
            MODE_SYMLINK => {
                let target =
                    String::from_utf8(self.blob(path)?).map_err(|_| SourceError::InvalidPath {
                        path: path.to_string(),
                        reason: "symlink target is not UTF-8",
                    })?;
                Node::Symlink(target)
            }
            MODE_SUBMODULE => Node::Other("submodules"),
            _ => Node::Other("unknown tree entries"),
        })
    }

    fn list(&self, dir: &RepoPath) -> Result<Vec<String>, SourceError> {
        let tree = if dir.is_root() {
            self.tree.clone()
        } else {
            self.tree
                .get_path(Path::new(dir.as_str()))
                .and_then(|entry| entry.to_object(self.repo))
                .and_then(|object| object.peel_to_tree())
                .map_err(|e| self.object_error(dir, e))?
        };
        tree.iter()
            .filter(|entry| entry.kind() != Some(ObjectType::Any))
            .map(|entry| {
                entry
                    .name()
                    .map(str::to_string)
                    .ok_or_else(|| SourceError::InvalidPath {
                        path: dir.to_string(),
                        reason: "contains a file name that is not UTF-8",
                    })
            })
            .collect()
    }

    fn read(&self, file: &RepoPath) -> Result<Vec<u8>, SourceError> {
        self.blob(file)
    }

    fn size(&self, file: &RepoPath) -> Result<u64, SourceError> {
        // The object's header only: the blob is not loaded.
        let entry = self
            .tree
            .get_path(Path::new(file.as_str()))
            .map_err(|e| self.object_error(file, e))?;
        let odb = self.repo.odb().map_err(|e| self.object_error(file, e))?;
        let (size, _) = odb
            .read_header(entry.id())
            .map_err(|e| self.object_error(file, e))?;
        Ok(size as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn p(path: &str) -> RepoPath {
        RepoPath::parse(path).unwrap()
    }

    /// A directory with a small chart, a symlink that stays inside and one that escapes.
    fn sample_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("deploy/chart/templates")).unwrap();
        std::fs::write(root.join("deploy/release.yaml"), "chart: chart\n").unwrap();
        std::fs::write(root.join("deploy/chart/Chart.yaml"), "name: demo\n").unwrap();
        std::fs::write(
            root.join("deploy/chart/templates/cm.yaml"),
            "kind: ConfigMap\n",
        )
        .unwrap();
        std::fs::write(root.join("shared.yaml"), "shared\n").unwrap();
        symlink("../../shared.yaml", root.join("deploy/chart/values.yaml")).unwrap();
        symlink("chart", root.join("deploy/alias")).unwrap();
        symlink("../../..", root.join("deploy/escape")).unwrap();
        symlink("/etc/passwd", root.join("deploy/absolute")).unwrap();
        dir
    }

    #[test]
    fn from_dir_reads_files_and_follows_inner_symlinks() {
        let dir = sample_dir();
        let tree = RepoTree::from_dir(dir.path());
        assert_eq!(tree.commit(), None);
        assert_eq!(
            tree.read_file(&p("deploy/chart/Chart.yaml")).unwrap(),
            b"name: demo\n"
        );
        assert_eq!(
            tree.read_file(&p("deploy/chart/values.yaml")).unwrap(),
            b"shared\n"
        );
        assert_eq!(
            tree.read_file(&p("deploy/alias/Chart.yaml")).unwrap(),
            b"name: demo\n"
        );

        let files = tree.read_dir_all(&p("deploy/alias")).unwrap();
        let keys: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(keys, ["Chart.yaml", "templates/cm.yaml", "values.yaml"]);
        assert_eq!(files["values.yaml"], b"shared\n");
    }

    #[test]
    fn from_dir_refuses_escaping_symlinks_and_reports_missing_files() {
        let dir = sample_dir();
        let tree = RepoTree::from_dir(dir.path());
        for (path, link) in [
            ("deploy/escape/x", "deploy/escape"),
            ("deploy/absolute", "deploy/absolute"),
        ] {
            match tree.read_file(&p(path)) {
                Err(SourceError::EscapesRepository { path }) => assert_eq!(path, link),
                other => panic!("{path}: {other:?}"),
            }
        }
        // Walking the directory that holds the escaping links refuses too.
        assert!(matches!(
            tree.read_dir_all(&p("deploy")),
            Err(SourceError::EscapesRepository { .. })
        ));
        match tree.read_file(&p("deploy/chart/missing.yaml")) {
            Err(SourceError::NotFound { path }) => assert_eq!(path, "deploy/chart/missing.yaml"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            tree.read_file(&p("deploy/chart")),
            Err(SourceError::NotAFile { .. })
        ));
        assert!(!tree.exists(&p("deploy/nothing")).unwrap());
        assert!(tree.exists(&p("deploy/alias")).unwrap());
    }

    #[test]
    fn symlink_loops_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a")).unwrap();
        symlink("b", root.join("a/c")).unwrap();
        symlink("c", root.join("a/b")).unwrap();
        symlink("..", root.join("a/up")).unwrap();
        let tree = RepoTree::from_dir(root);
        assert!(matches!(
            tree.read_file(&p("a/c")),
            Err(SourceError::SymlinkLoop { .. })
        ));
        let only_up = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(only_up.path().join("a")).unwrap();
        symlink("..", only_up.path().join("a/up")).unwrap();
        let tree = RepoTree::from_dir(only_up.path());
        match tree.read_dir_all(&p("a")) {
            Err(SourceError::SymlinkLoop { path }) => assert_eq!(path, "a/up"),
            other => panic!("{other:?}"),
        }
    }

    /// `(path components, file mode, content)`.
    type Entry<'a> = (Vec<&'a str>, i32, &'a [u8]);

    /// Builds a commit from `(path, mode, content)` entries with git2 alone.
    fn commit_tree(repo: &Repository, entries: &[(&str, i32, &[u8])]) -> Oid {
        fn build(repo: &Repository, entries: &[(Vec<&str>, i32, &[u8])]) -> Oid {
            let mut builder = repo.treebuilder(None).unwrap();
            let mut dirs: BTreeMap<&str, Vec<Entry<'_>>> = BTreeMap::new();
            for (parts, mode, content) in entries {
                if parts.len() == 1 {
                    let blob = repo.blob(content).unwrap();
                    builder.insert(parts[0], blob, *mode).unwrap();
                } else {
                    dirs.entry(parts[0])
                        .or_default()
                        .push((parts[1..].to_vec(), *mode, content));
                }
            }
            for (name, children) in dirs {
                let sub = build(repo, &children);
                builder.insert(name, sub, MODE_DIR).unwrap();
            }
            builder.write().unwrap()
        }
        let split: Vec<Entry<'_>> = entries
            .iter()
            .map(|(path, mode, content)| (path.split('/').collect(), *mode, *content))
            .collect();
        let tree = repo.find_tree(build(repo, &split)).unwrap();
        let signature = git2::Signature::now("test", "test@example.invalid").unwrap();
        repo.commit(None, &signature, &signature, "test", &tree, &[])
            .unwrap()
    }

    #[test]
    fn a_huge_file_or_a_million_files_are_refused_before_they_are_read() {
        // In git: a blob past the limit is refused from its header.
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let huge = vec![0u8; (MAX_FILE_BYTES + 1) as usize];
        let commit = commit_tree(
            &repo,
            &[
                ("chart/Chart.yaml", 0o100644, b"name: demo\n"),
                ("chart/files/huge.bin", 0o100644, &huge),
            ],
        );
        drop(huge);
        let tree = RepoTree::from_git(
            Repository::open_bare(dir.path()).unwrap(),
            dir.path().to_path_buf(),
            CommitInfo::default(),
            repo.find_commit(commit).unwrap().tree_id(),
        );
        let error = tree.read_dir_all(&p("chart")).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "chart/files/huge.bin: the file is larger than berth reads ({MAX_FILE_BYTES} bytes)"
            )
        );
        assert!(tree.read_file(&p("chart/files/huge.bin")).is_err());
        assert!(tree.read_file(&p("chart/Chart.yaml")).is_ok());

        // On disk: too many files, and too many bytes in all (sparse files).
        let dir = tempfile::tempdir().unwrap();
        let many = dir.path().join("chart/templates");
        std::fs::create_dir_all(&many).unwrap();
        for i in 0..=MAX_DIR_FILES {
            std::fs::write(many.join(format!("f{i}.yaml")), "").unwrap();
        }
        let tree = RepoTree::from_dir(dir.path());
        let error = tree.read_dir_all(&p("chart")).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "chart: holds more than {MAX_DIR_FILES} files, more than berth reads in a chart"
            )
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("chart")).unwrap();
        for i in 0..5 {
            let file = std::fs::File::create(dir.path().join(format!("chart/part{i}"))).unwrap();
            file.set_len(MAX_FILE_BYTES).unwrap();
        }
        let tree = RepoTree::from_dir(dir.path());
        let error = tree.read_dir_all(&p("chart")).unwrap_err().to_string();
        assert_eq!(
            error,
            format!("chart: the directory is larger than berth reads ({MAX_DIR_BYTES} bytes)")
        );
    }

    #[test]
    fn git_tree_follows_inner_symlinks_and_refuses_escaping_ones() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let commit = commit_tree(
            &repo,
            &[
                ("deploy/chart/Chart.yaml", 0o100644, b"name: demo\n"),
                (
                    "deploy/chart/templates/cm.yaml",
                    0o100644,
                    b"kind: ConfigMap\n",
                ),
                (
                    "deploy/chart/values.yaml",
                    MODE_SYMLINK,
                    b"../../shared.yaml",
                ),
                ("shared.yaml", 0o100644, b"shared\n"),
                ("deploy/alias", MODE_SYMLINK, b"chart"),
                ("evil/chart", MODE_SYMLINK, b"../../outside"),
                ("evil/abs", MODE_SYMLINK, b"/etc"),
            ],
        );
        let tree_id = repo.find_commit(commit).unwrap().tree_id();
        let tree = RepoTree::from_git(
            Repository::open_bare(dir.path()).unwrap(),
            dir.path().to_path_buf(),
            CommitInfo {
                sha: commit.to_string(),
                subject: "test".into(),
                author: "berth".into(),
                allow_prune: Vec::new(),
            },
            tree_id,
        );
        assert_eq!(tree.commit(), Some(commit.to_string().as_str()));
        assert_eq!(
            tree.read_file(&p("deploy/alias/values.yaml")).unwrap(),
            b"shared\n"
        );
        let files = tree.read_dir_all(&p("deploy/alias")).unwrap();
        let keys: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(keys, ["Chart.yaml", "templates/cm.yaml", "values.yaml"]);
        for (path, link) in [
            ("evil/chart/Chart.yaml", "evil/chart"),
            ("evil/abs/passwd", "evil/abs"),
        ] {
            match tree.read_file(&p(path)) {
                Err(SourceError::EscapesRepository { path }) => assert_eq!(path, link),
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(matches!(
            tree.read_dir_all(&p("evil")),
            Err(SourceError::EscapesRepository { .. })
        ));
        assert!(matches!(
            tree.read_file(&p("deploy/chart/nope")),
            Err(SourceError::NotFound { .. })
        ));
    }
}
