//! Normalised relative paths inside a repository.

use std::fmt;

use super::SourceError;

/// A normalised relative path inside a repository ("deploy/chart").
///
/// Components are separated by '/', with no empty, "." or ".." components; the
/// repository root is the empty path (shown as "."). A `RepoPath` can never point
/// outside the repository by construction; symlinks are checked when files are read.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RepoPath(String);

impl RepoPath {
    /// The repository root.
    pub fn root() -> RepoPath {
        RepoPath(String::new())
    }

    /// Parses a path relative to the repository root. "." and ".." are resolved;
    /// an absolute path or one that climbs above the root is refused.
    pub fn parse(path: &str) -> Result<RepoPath, SourceError> {
        RepoPath::root().join(path)
    }

    /// Resolves `relative` (may contain "..") against this directory. A result
    /// outside the repository root (or an absolute `relative`) is
    /// [`SourceError::EscapesRepository`].
    pub fn join(&self, relative: &str) -> Result<RepoPath, SourceError> {
        let escapes = || SourceError::EscapesRepository {
            path: display_join(self, relative),
        };
        if relative.starts_with('/') {
            return Err(escapes());
        }
        if relative.contains('\0') {
            return Err(SourceError::InvalidPath {
                path: relative.escape_default().to_string(),
                reason: "contains a NUL byte",
            });
        }
        let mut components: Vec<&str> = self.components().collect();
        for component in relative.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    if components.pop().is_none() {
                        return Err(escapes());
                    }
                }
                name => components.push(name),
            }
        }
        Ok(RepoPath(components.join("/")))
    }

    /// The directory containing this path (the root is its own parent).
    pub fn parent(&self) -> RepoPath {
        match self.0.rsplit_once('/') {
            Some((parent, _)) => RepoPath(parent.to_string()),
            None => RepoPath::root(),
        }
    }

    /// The path with '/' separators; the root is the empty string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component (`None` for the root).
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            None
        } else {
            self.0.rsplit('/').next()
        }
    }

    /// The components from the root down.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// This path with one more component; `name` must be a single plain component.
    pub(crate) fn child(&self, name: &str) -> RepoPath {
        debug_assert!(!name.is_empty() && name != "." && name != ".." && !name.contains('/'));
        if self.is_root() {
            RepoPath(name.to_string())
        } else {
            RepoPath(format!("{}/{}", self.0, name))
        }
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &RepoPath) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// This path relative to `base` (which it must start with), '/'-separated.
    pub fn strip_prefix(&self, base: &RepoPath) -> Option<&str> {
        if !self.starts_with(base) {
            None
        } else if base.is_root() {
            Some(&self.0)
        } else {
            Some(self.0[base.0.len()..].trim_start_matches('/'))
        }
    }
}

/// How a path that was refused is shown in errors: as the caller wrote it, against its base.
fn display_join(base: &RepoPath, relative: &str) -> String {
    if base.is_root() || relative.starts_with('/') {
        relative.to_string()
    } else {
        format!("{}/{}", base.0, relative)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str(".")
        } else {
            f.write_str(&self.0)
        }
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoPath({:?})", self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> RepoPath {
        RepoPath::parse(path).unwrap()
    }

    #[test]
    fn parse_normalises() {
        assert_eq!(p("deploy/chart").as_str(), "deploy/chart");
        assert_eq!(p("./deploy//chart/").as_str(), "deploy/chart");
        assert_eq!(p("deploy/x/../chart").as_str(), "deploy/chart");
        assert_eq!(p("").as_str(), "");
        assert_eq!(p(".").to_string(), ".");
        assert_eq!(p("a/..").as_str(), "");
    }

    #[test]
    fn parse_refuses_absolute_and_escaping_paths() {
        for path in ["/etc/passwd", "..", "../x", "a/../../x", "deploy/../../etc"] {
            match RepoPath::parse(path) {
                Err(SourceError::EscapesRepository { path: shown }) => assert_eq!(shown, path),
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(matches!(
            RepoPath::parse("a\0b"),
            Err(SourceError::InvalidPath { .. })
        ));
    }

    #[test]
    fn join_resolves_against_directory() {
        let chart = p("deploy/chart");
        assert_eq!(
            chart.join("../values.yaml").unwrap().as_str(),
            "deploy/values.yaml"
        );
        assert_eq!(chart.join("../../x").unwrap().as_str(), "x");
        assert_eq!(
            chart.join("templates/a.yaml").unwrap().as_str(),
            "deploy/chart/templates/a.yaml"
        );
        match chart.join("../../../x") {
            Err(SourceError::EscapesRepository { path }) => {
                assert_eq!(path, "deploy/chart/../../../x")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            chart.join("/x"),
            Err(SourceError::EscapesRepository { .. })
        ));
    }

    #[test]
    fn parent_and_prefixes() {
        assert_eq!(p("deploy/chart").parent(), p("deploy"));
        assert_eq!(p("deploy").parent(), RepoPath::root());
        assert_eq!(RepoPath::root().parent(), RepoPath::root());
        assert!(p("deploy/chart/a").starts_with(&p("deploy/chart")));
        assert!(!p("deploy/chartx").starts_with(&p("deploy/chart")));
        assert!(p("x").starts_with(&RepoPath::root()));
        assert_eq!(
            p("deploy/chart/a/b").strip_prefix(&p("deploy/chart")),
            Some("a/b")
        );
        assert_eq!(p("a/b").strip_prefix(&RepoPath::root()), Some("a/b"));
        assert_eq!(p("deploy/chart/a").file_name(), Some("a"));
    }
}
