//! The git source against real repositories: over file:// and a real `git daemon`.
//!
//! Every test makes its own repositories, cache and daemon (removed or stopped on drop),
//! so tests are independent of each other and of their order.

use std::time::{Duration, Instant};

use berth_agent::source::{GitCredentials, GitSource, RepoPath, SourceError, Update};
use berth_harness::git::{BRANCH, BasicAuth, GitDaemon, GitHttpServer, TestRepo};
use tempfile::TempDir;

const RELEASE: &str = "deploy/release.yaml";
const CHART: &str = "deploy/chart";

/// A repository holding a release file and a small chart, committed once.
fn app_repo(name: &str) -> (TestRepo, String) {
    let repo = TestRepo::new(name).unwrap();
    repo.write(RELEASE, "chart: chart\nversion: 1\n").unwrap();
    repo.write(
        "deploy/chart/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .unwrap();
    repo.write("deploy/chart/values.yaml", "replicas: 1\n")
        .unwrap();
    repo.write("deploy/chart/templates/cm.yaml", "kind: ConfigMap\n")
        .unwrap();
    let commit = repo.commit("first release").unwrap();
    (repo, commit)
}

fn source(url: &str, cache: &TempDir) -> GitSource {
    GitSource::new("team/app", url, BRANCH, cache.path(), GitCredentials::None).unwrap()
}

fn path(p: &str) -> RepoPath {
    RepoPath::parse(p).unwrap()
}

fn read(source: &GitSource, commit: &str, file: &str) -> String {
    let tree = source.tree(commit).unwrap();
    String::from_utf8(tree.read_file(&path(file)).unwrap()).unwrap()
}

/// A first update clones and shows the branch head's files.
fn assert_first_clone(url: &str, repo: &TestRepo, head: &str) {
    let cache = tempfile::tempdir().unwrap();
    let mut source = source(url, &cache);
    let update = source.update().unwrap();
    assert_eq!(
        update,
        Update {
            commit: head.to_string(),
            fetched: true
        }
    );
    assert_eq!(repo.head().unwrap(), update.commit);

    let tree = source.tree(&update.commit).unwrap();
    assert_eq!(tree.commit(), Some(head));
    assert_eq!(
        tree.read_file(&path(RELEASE)).unwrap(),
        b"chart: chart\nversion: 1\n"
    );
    let chart = tree.read_dir_all(&path(CHART)).unwrap();
    let names: Vec<&str> = chart.keys().map(String::as_str).collect();
    assert_eq!(names, ["Chart.yaml", "templates/cm.yaml", "values.yaml"]);
    assert_eq!(chart["values.yaml"], b"replicas: 1\n");
    // The cache is a bare repository: nothing is checked out.
    assert!(source.repo_dir().join("HEAD").is_file());
    assert!(!source.repo_dir().join("deploy").exists());
}

#[test]
fn clone_over_file_url_gets_the_commit_and_files() {
    let (repo, head) = app_repo("file-clone");
    assert_first_clone(&repo.file_url(), &repo, &head);
    // A plain path works as well as a file:// URL.
    assert_first_clone(&repo.path().display().to_string(), &repo, &head);
}

#[test]
fn clone_over_git_daemon_gets_the_commit_and_files() {
    let (repo, head) = app_repo("daemon-clone");
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    assert_first_clone(&daemon.url_for(&repo), &repo, &head);
}

#[test]
fn from_dir_repository_round_trips_through_git_daemon() {
    let files = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(files.path().join("deploy/chart")).unwrap();
    std::fs::write(files.path().join(RELEASE), "chart: chart\n").unwrap();
    std::fs::write(
        files.path().join("deploy/chart/Chart.yaml"),
        "name: copied\n",
    )
    .unwrap();
    let (repo, head) = TestRepo::from_dir("copied", files.path(), "import").unwrap();
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut source = source(&daemon.url_for(&repo), &cache);
    assert_eq!(source.update().unwrap().commit, head);
    assert_eq!(
        read(&source, &head, "deploy/chart/Chart.yaml"),
        "name: copied\n"
    );
}

#[test]
fn update_fetches_only_when_the_branch_moved() {
    let (repo, first) = app_repo("incremental");
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    let url = daemon.url_for(&repo);
    let cache = tempfile::tempdir().unwrap();
    let mut source = source(&url, &cache);
    assert!(source.update().unwrap().fetched);

    let again = source.update().unwrap();
    assert_eq!(
        again,
        Update {
            commit: first.clone(),
            fetched: false
        }
    );

    repo.write(RELEASE, "chart: chart\nversion: 2\n").unwrap();
    let second = repo.commit("second release").unwrap();
    let update = source.update().unwrap();
    assert_eq!(
        update,
        Update {
            commit: second.clone(),
            fetched: true
        }
    );
    assert_eq!(
        read(&source, &second, RELEASE),
        "chart: chart\nversion: 2\n"
    );

    // A restarted agent reuses the cached repository: nothing to fetch.
    drop(source);
    let mut restarted = self::source(&url, &cache);
    assert_eq!(restarted.cached_head(), Some(second.clone()));
    assert_eq!(
        restarted.update().unwrap(),
        Update {
            commit: second,
            fetched: false
        }
    );
}

#[test]
fn forced_push_and_reset_are_followed() {
    let (repo, first) = app_repo("forced");
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut source = source(&daemon.url_for(&repo), &cache);

    repo.write(RELEASE, "chart: chart\nversion: 2\n").unwrap();
    let second = repo.commit("second").unwrap();
    assert_eq!(source.update().unwrap().commit, second);

    // History rewritten: the branch now points at a commit that is not a descendant.
    repo.reset_hard(&first).unwrap();
    repo.write(RELEASE, "chart: chart\nversion: rewritten\n")
        .unwrap();
    let rewritten = repo.commit("rewritten").unwrap();
    let update = source.update().unwrap();
    assert_eq!(
        update,
        Update {
            commit: rewritten.clone(),
            fetched: true
        }
    );
    assert_eq!(
        read(&source, &rewritten, RELEASE),
        "chart: chart\nversion: rewritten\n"
    );

    // Reset back to a commit already cached: followed without downloading anything.
    repo.reset_hard(&first).unwrap();
    assert_eq!(
        source.update().unwrap(),
        Update {
            commit: first.clone(),
            fetched: false
        }
    );
    assert_eq!(read(&source, &first, RELEASE), "chart: chart\nversion: 1\n");
}

#[test]
fn remote_head_matches_git_rev_parse_without_fetching() {
    let (repo, _) = app_repo("heads");
    repo.write("extra.txt", "x\n").unwrap();
    repo.commit("second").unwrap();
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    let expected = repo.git(&["rev-parse", BRANCH]).unwrap();
    for url in [repo.file_url(), daemon.url_for(&repo)] {
        let cache = tempfile::tempdir().unwrap();
        let source = source(&url, &cache);
        assert_eq!(source.remote_head().unwrap(), expected, "{url}");
        // Only looked: the commit is not in the cache.
        assert_eq!(source.cached_head(), None, "{url}");
        assert!(matches!(
            source.tree(&expected),
            Err(SourceError::CommitNotFound { .. })
        ));
    }
}

#[test]
fn a_missing_branch_is_reported_as_such() {
    let (repo, _) = app_repo("branches");
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut source = GitSource::new(
        "app",
        &daemon.url_for(&repo),
        "release",
        cache.path(),
        GitCredentials::None,
    )
    .unwrap();
    match source.update() {
        Err(SourceError::BranchNotFound { branch, url }) => {
            assert_eq!(branch, "release");
            assert_eq!(url, daemon.url_for(&repo));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreachable_remotes_fail_fast_as_unreachable() {
    // Nothing listens on a port that was just free: the connection is refused at once.
    let port = berth_harness::process::free_port().unwrap();
    let missing = tempfile::tempdir().unwrap();
    let urls = [
        format!("git://127.0.0.1:{port}/app"),
        format!("http://127.0.0.1:{port}/app.git"),
        format!("file://{}", missing.path().join("nothing-here").display()),
    ];
    for url in urls {
        let cache = tempfile::tempdir().unwrap();
        let mut source = source(&url, &cache);
        let started = Instant::now();
        let error = source.update().unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{url}: took {:?}",
            started.elapsed()
        );
        match &error {
            SourceError::Unreachable { url: shown, .. } => assert_eq!(shown, &url),
            other => panic!("{url}: {other:?}"),
        }
        assert!(error.is_transient());
        assert!(error.to_string().contains(&url), "{error}");
    }
}

#[test]
fn chart_paths_escaping_the_repository_are_refused() {
    let (repo, _) = app_repo("escapes");
    repo.write("outside-chart/Chart.yaml", "name: sibling\n")
        .unwrap();
    repo.symlink("../../../etc", "deploy/escaping-chart")
        .unwrap();
    repo.symlink("/etc/hostname", "deploy/chart/templates/abs.yaml")
        .unwrap();
    repo.symlink("../outside-chart", "deploy/linked-chart")
        .unwrap();
    let head = repo.commit("links").unwrap();
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut source = source(&daemon.url_for(&repo), &cache);
    source.update().unwrap();
    let tree = source.tree(&head).unwrap();
    let release_dir = path(RELEASE).parent();

    // "chart: ../../x" in release.yaml.
    match release_dir.join("../../elsewhere") {
        Err(SourceError::EscapesRepository { path }) => {
            assert_eq!(path, "deploy/../../elsewhere");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        RepoPath::parse("/etc"),
        Err(SourceError::EscapesRepository { .. })
    ));

    // A chart directory that is a symlink out of the repository.
    let escaping = release_dir.join("escaping-chart").unwrap();
    match tree.read_dir_all(&escaping) {
        Err(SourceError::EscapesRepository { path }) => assert_eq!(path, "deploy/escaping-chart"),
        other => panic!("{other:?}"),
    }
    // A chart with one file linking out (absolute target) is refused as a whole.
    match tree.read_dir_all(&path(CHART)) {
        Err(SourceError::EscapesRepository { path }) => {
            assert_eq!(path, "deploy/chart/templates/abs.yaml");
        }
        other => panic!("{other:?}"),
    }
    // A symlink that stays inside the repository is followed.
    let linked = tree
        .read_dir_all(&release_dir.join("linked-chart").unwrap())
        .unwrap();
    assert_eq!(linked["Chart.yaml"], b"name: sibling\n");

    // The same rules for a plain directory (offline render) of the same files.
    let offline = berth_agent::source::RepoTree::from_dir(repo.path());
    assert_eq!(offline.commit(), None);
    assert!(matches!(
        offline.read_dir_all(&escaping),
        Err(SourceError::EscapesRepository { .. })
    ));
    assert_eq!(
        offline.read_dir_all(&path("deploy/linked-chart")).unwrap()["Chart.yaml"],
        b"name: sibling\n"
    );
}

#[test]
fn older_commits_keep_their_content() {
    let (repo, first) = app_repo("history");
    repo.write("deploy/chart/values.yaml", "replicas: 3\n")
        .unwrap();
    repo.remove("deploy/chart/templates/cm.yaml").unwrap();
    let second = repo.commit("scale up, drop the config map").unwrap();
    let reverted = repo.revert(&second).unwrap();
    let daemon = GitDaemon::start(repo.base_dir()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut source = source(&daemon.url_for(&repo), &cache);
    assert_eq!(source.update().unwrap().commit, reverted);

    let values = "deploy/chart/values.yaml";
    assert_eq!(read(&source, &first, values), "replicas: 1\n");
    assert_eq!(read(&source, &second, values), "replicas: 3\n");
    assert_eq!(read(&source, &reverted, values), "replicas: 1\n");
    // Abbreviated shas work too.
    assert_eq!(read(&source, &second[..10], values), "replicas: 3\n");

    let cm = path("deploy/chart/templates/cm.yaml");
    assert!(matches!(
        source.tree(&second).unwrap().read_file(&cm),
        Err(SourceError::NotFound { .. })
    ));
    assert_eq!(
        source.tree(&first).unwrap().read_file(&cm).unwrap(),
        b"kind: ConfigMap\n"
    );
    assert_eq!(
        source.tree(&reverted).unwrap().read_file(&cm).unwrap(),
        b"kind: ConfigMap\n"
    );
}

#[test]
fn smart_http_clones_and_updates() {
    let (repo, first) = app_repo("over-http");
    let server = GitHttpServer::start(repo.base_dir(), None).unwrap();
    assert_first_clone(&server.url_for(&repo), &repo, &first);

    let cache = tempfile::tempdir().unwrap();
    let mut source = source(&server.url_for(&repo), &cache);
    assert!(source.update().unwrap().fetched);
    assert!(!source.update().unwrap().fetched);
    repo.write(RELEASE, "chart: chart\nversion: 2\n").unwrap();
    let second = repo.commit("second").unwrap();
    assert_eq!(source.remote_head().unwrap(), second);
    assert_eq!(
        source.update().unwrap(),
        Update {
            commit: second,
            fetched: true
        }
    );
}

#[test]
fn http_token_is_sent_and_never_shown() {
    let (repo, head) = app_repo("private");
    let token = "tok-3f9c1e0d77";
    let server = GitHttpServer::start(
        repo.base_dir(),
        Some(BasicAuth {
            username: "berth-bot".into(),
            password: token.into(),
        }),
    )
    .unwrap();
    let url = server.url_for(&repo);
    let with = |credentials: GitCredentials| {
        let cache = tempfile::tempdir().unwrap();
        let mut source =
            GitSource::new("private", &url, BRANCH, cache.path(), credentials).unwrap();
        let result = source.update();
        (result, format!("{source:?}"))
    };

    let (result, debug) = with(GitCredentials::Token {
        username: "berth-bot".into(),
        token: token.into(),
    });
    assert_eq!(result.unwrap().commit, head);
    assert!(!debug.contains(token), "{debug}");

    let wrong = "wrong-7a1b2c";
    let (result, debug) = with(GitCredentials::Token {
        username: "berth-bot".into(),
        token: wrong.into(),
    });
    let error = result.unwrap_err();
    assert!(
        matches!(error, SourceError::Authentication { .. }),
        "{error:?}"
    );
    assert!(!error.is_transient());
    let shown = format!("{error} {error:?} {debug}");
    assert!(!shown.contains(wrong) && !shown.contains(token), "{shown}");

    let (result, _) = with(GitCredentials::None);
    let error = result.unwrap_err();
    assert!(
        matches!(error, SourceError::Authentication { .. }),
        "{error:?}"
    );
}

fn packs(source: &GitSource) -> usize {
    std::fs::read_dir(source.repo_dir().join("objects/pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count()
}

/// A repository followed for many commits keeps a bounded number of packs
/// (one is left behind by each fetch) and every commit of the branch.
#[test]
fn a_long_followed_repository_keeps_few_packs_and_its_history() {
    let (repo, first) = app_repo("many-commits");
    let server = GitHttpServer::start(repo.base_dir(), None).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut source = source(&server.url_for(&repo), &cache);
    let mut most = 0;
    for version in 2..=40 {
        repo.write(RELEASE, format!("chart: chart\nversion: {version}\n"))
            .unwrap();
        repo.commit(&format!("version {version}")).unwrap();
        let update = source.update().unwrap();
        assert!(update.fetched);
        most = most.max(packs(&source));
    }
    assert!(most <= 16, "{most} packs at most");
    assert!(packs(&source) >= 1);
    let head = repo.head().unwrap();
    assert_eq!(read(&source, &head, RELEASE), "chart: chart\nversion: 40\n");
    // Older commits (a rollback's target) are still there.
    assert_eq!(read(&source, &first, RELEASE), "chart: chart\nversion: 1\n");
}

/// The caches of applications no longer followed are removed; what berth
/// did not name is left alone.
#[test]
fn caches_of_applications_no_longer_followed_are_removed() {
    let (repo, _) = app_repo("cached");
    let cache = tempfile::tempdir().unwrap();
    let url = repo.file_url();
    let mut kept =
        GitSource::new("kept", &url, BRANCH, cache.path(), GitCredentials::None).unwrap();
    let mut gone =
        GitSource::new("gone", &url, BRANCH, cache.path(), GitCredentials::None).unwrap();
    kept.update().unwrap();
    gone.update().unwrap();
    let notes = cache.path().join("git").join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    let removed = berth_agent::source::remove_unfollowed(cache.path(), &["kept"]);
    assert_eq!(removed, vec![gone.repo_dir().to_path_buf()]);
    assert!(!gone.repo_dir().exists());
    assert!(kept.repo_dir().exists() && notes.exists());
    assert!(kept.update().is_ok());
}

/// Bytes that do not compress, so a pack of them is as large.
fn noise(bytes: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..bytes)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// The git server gone in the middle of a fetch (the link cut after part
/// of the pack): the update fails as unreachable, and the cache is whole —
/// with the server back, the next update fetches the commit and reads it.
#[test]
fn a_server_gone_mid_fetch_leaves_a_cache_that_fetches_again() {
    let (repo, first) = app_repo("cut-mid-fetch");
    let server = GitHttpServer::start(repo.base_dir(), None).unwrap();
    let served = server.url_for(&repo);
    let port: u16 = served
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let link = berth_harness::link::FaultyLink::start(([127, 0, 0, 1], port).into()).unwrap();
    let url = served.replace(&format!(":{port}/"), &format!(":{}/", link.port()));
    let cache = tempfile::tempdir().unwrap();
    let mut source = source(&url, &cache);
    assert_eq!(source.update().unwrap().commit, first);

    repo.write("deploy/chart/files/blob.bin", noise(4 << 20, 7))
        .unwrap();
    let second = repo.commit("a large file").unwrap();
    link.cut_after(512 * 1024);
    match source.update() {
        Err(SourceError::Unreachable { .. }) => {}
        other => panic!("a cut fetch: {other:?}"),
    }
    // What was fetched before is still there and readable.
    assert_eq!(read(&source, &first, RELEASE), "chart: chart\nversion: 1\n");

    link.restore();
    assert_eq!(
        source.update().unwrap(),
        Update {
            commit: second.clone(),
            fetched: true
        }
    );
    let tree = source.tree(&second).unwrap();
    assert_eq!(
        tree.read_file(&path("deploy/chart/files/blob.bin"))
            .unwrap(),
        noise(4 << 20, 7)
    );
}

/// A tmpfs of `bytes` mounted on `dir` for the length of a test (root's
/// `mount`, as the test machines run the suite); unmounted on drop, also
/// when the test fails.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, bytes: u64) -> SmallDisk {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root: {status}");
        SmallDisk(dir.to_path_buf())
    }

    fn grow(&self, bytes: u64) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remounting the tmpfs: {status}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The git cache's disk full in the middle of a fetch: a clear error, and
/// once there is room again the cache fetches the commit and reads it —
/// nothing half-written is taken for a commit.
#[test]
fn a_full_disk_fails_the_fetch_clearly_and_the_cache_recovers() {
    let (repo, first) = app_repo("disk-full");
    let cache = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(cache.path(), 2 << 20);
    let mut source = source(&repo.file_url(), &cache);
    assert_eq!(source.update().unwrap().commit, first);

    repo.write("deploy/chart/files/blob.bin", noise(4 << 20, 11))
        .unwrap();
    let second = repo.commit("larger than the disk").unwrap();
    let error = source
        .update()
        .expect_err("no room for the pack")
        .to_string();
    assert!(
        error.starts_with("git cache ")
            && error.contains("writing the fetched objects")
            && error.contains("No space left on device"),
        "the error says the cache's disk is full: {error}"
    );
    assert_eq!(read(&source, &first, RELEASE), "chart: chart\nversion: 1\n");

    disk.grow(64 << 20);
    assert_eq!(source.update().unwrap().commit, second);
    assert_eq!(
        source
            .tree(&second)
            .unwrap()
            .read_file(&path("deploy/chart/files/blob.bin"))
            .unwrap(),
        noise(4 << 20, 11)
    );
}
