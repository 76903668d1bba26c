//! Finding the pinned test servers (kube-apiserver, kube-controller-manager,
//! kube-scheduler, etcd, kwok, helm 3 and 4, vault) and berth's helm-render
//! programs, building them first when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The pins, shared with `tests/tools/build-test-servers.sh`.
const VERSIONS_ENV: &str = include_str!("../tools/versions.env");
/// helm-render's sources: their stamps hold a hash of them, as the build
/// script writes it, so that an edit rebuilds.
const HELM_RENDER_3: &[u8] = include_bytes!("../tools/helm-render/v3/main.go");
const HELM_RENDER_4: &[u8] = include_bytes!("../tools/helm-render/v4/main.go");

/// Paths of the built servers.
#[derive(Clone, Debug)]
pub struct TestServers {
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kwok: PathBuf,
    pub etcd: PathBuf,
    /// Helm 3 (`HELM_VERSION`).
    pub helm: PathBuf,
    /// Helm 4 (`HELM4_VERSION`).
    pub helm4: PathBuf,
    /// Helm's rendering packages behind a JSON-lines interface
    /// (tests/tools/helm-render), per Helm major.
    pub helm_render3: PathBuf,
    pub helm_render4: PathBuf,
    pub vault: PathBuf,
}

impl TestServers {
    /// The helm binary of Helm major `major` (3 or 4).
    pub fn helm_of(&self, major: u8) -> &Path {
        if major == 3 { &self.helm } else { &self.helm4 }
    }

    /// The helm-render program of Helm major `major` (3 or 4).
    pub fn helm_render_of(&self, major: u8) -> &Path {
        if major == 3 {
            &self.helm_render3
        } else {
            &self.helm_render4
        }
    }
}

/// The script that builds the servers.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/build-test-servers.sh")
}

/// Where the servers are cached: `BERTH_TOOLS_DIR`, else `$XDG_CACHE_HOME/berth/tools`,
/// else `~/.cache/berth/tools` (outside the clone, so fresh clones reuse them).
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("berth").join("tools")
}

/// The stamp of a helm-render build: the Helm pin and the source's hash.
fn helm_render_stamp(version: &str, source: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = hex::encode(sha2::Sha256::digest(source));
    format!("{version} {}", &hash[..16])
}

/// `(binary, pinned version)` for every server.
pub fn pinned_versions() -> Vec<(&'static str, String)> {
    let lookup = |key: &str| {
        VERSIONS_ENV
            .lines()
            .filter_map(|line| line.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    vec![
        ("kube-apiserver", lookup("KUBERNETES_VERSION")),
        ("kube-controller-manager", lookup("KUBERNETES_VERSION")),
        ("kube-scheduler", lookup("KUBERNETES_VERSION")),
        ("kwok", lookup("KWOK_VERSION")),
        ("etcd", lookup("ETCD_VERSION")),
        ("helm", lookup("HELM_VERSION")),
        ("helm4", lookup("HELM4_VERSION")),
        (
            "helm-render3",
            helm_render_stamp(&lookup("HELM_VERSION"), HELM_RENDER_3),
        ),
        (
            "helm-render4",
            helm_render_stamp(&lookup("HELM4_VERSION"), HELM_RENDER_4),
        ),
        ("vault", lookup("VAULT_VERSION")),
    ]
}

/// The servers a control plane runs (what [`ensure_control_plane`] builds).
const CONTROL_PLANE: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

fn stale_servers(dir: &Path) -> Vec<&'static str> {
    pinned_versions()
        .into_iter()
        .filter(|(name, version)| {
            let stamp = std::fs::read_to_string(dir.join("stamps").join(name)).unwrap_or_default();
            !dir.join("bin").join(name).is_file() || stamp.trim() != version
        })
        .map(|(name, _)| name)
        .collect()
}

/// Returns the servers, running the build script first if any is missing or
/// built at another version (the script holds a lock, so concurrent callers wait).
pub fn ensure() -> Result<TestServers> {
    build_stale(false)
}

/// Like [`ensure`], building only the control plane's servers when they are
/// missing (a control plane needs neither helm nor Vault, the longest build).
pub fn ensure_control_plane() -> Result<TestServers> {
    build_stale(true)
}

fn build_stale(control_plane_only: bool) -> Result<TestServers> {
    let dir = tools_dir();
    let wanted = |name: &&str| !control_plane_only || CONTROL_PLANE.contains(name);
    let stale: Vec<_> = stale_servers(&dir).into_iter().filter(wanted).collect();
    if !stale.is_empty() {
        eprintln!(
            "berth test harness: building {} with {} (first run only)",
            stale.join(", "),
            build_script().display()
        );
        let mut command = Command::new("bash");
        command.arg(build_script());
        if control_plane_only {
            command.arg("--control-plane");
        }
        let status = command
            .env("BERTH_TOOLS_DIR", &dir)
            // Test output is captured from stderr; keep the build's progress visible there.
            .stdout(std::io::stderr())
            .status()
            .context("running the test-server build script")?;
        if !status.success() {
            bail!(
                "building the test servers failed ({status}); run {} by hand to see why",
                build_script().display()
            );
        }
        let still: Vec<_> = stale_servers(&dir).into_iter().filter(wanted).collect();
        if !still.is_empty() {
            bail!(
                "after the build, {} still missing in {}",
                still.join(", "),
                dir.display()
            );
        }
    }
    let bin = dir.join("bin");
    Ok(TestServers {
        kube_apiserver: bin.join("kube-apiserver"),
        kube_controller_manager: bin.join("kube-controller-manager"),
        kube_scheduler: bin.join("kube-scheduler"),
        kwok: bin.join("kwok"),
        etcd: bin.join("etcd"),
        helm: bin.join("helm"),
        helm4: bin.join("helm4"),
        helm_render3: bin.join("helm-render3"),
        helm_render4: bin.join("helm-render4"),
        vault: bin.join("vault"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_has_a_pinned_version() {
        for (name, stamp) in pinned_versions() {
            let version = stamp.split(' ').next().unwrap_or_default();
            assert!(
                version.starts_with('v') && version.matches('.').count() == 2,
                "{name} has no exact pin in versions.env: {stamp:?}"
            );
        }
    }

    #[test]
    fn the_control_plane_servers_are_pinned_ones() {
        let pinned: Vec<_> = pinned_versions()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for name in CONTROL_PLANE {
            assert!(pinned.contains(&name), "{name} has no pin");
        }
        assert!(!CONTROL_PLANE.contains(&"vault") && !CONTROL_PLANE.contains(&"helm"));
    }

    #[test]
    fn a_missing_binary_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stale_servers(dir.path()).len(), pinned_versions().len());
    }
}
