//! A sync's verdict as people hear about it: one [`Notice`] per sync that
//! changed something or failed, published as a Kubernetes Event
//! ([`crate::events`]) and sent to the notification sinks
//! ([`crate::notifications`]). Syncs that found nothing to do make no notice.

use serde::Serialize;

use crate::config::Application;
use crate::context::ClusterContext;
use crate::health::Health;
use crate::inventory::{Counts, Outcome};
use crate::reconcile::SyncReport;
use crate::source::CommitInfo;

/// What a sync amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum NoticeKind {
    /// Applied (and healthy, when its health was waited for).
    Applied,
    /// Stopped before or during the apply.
    SyncFailed,
    /// Waiting for Vault; nothing changed.
    SyncDeferred,
    /// Applied, then not healthy within its health timeout.
    Degraded,
    /// Replaced by the last commit that was healthy here.
    RolledBack,
    /// A guard refused the deletions the sync would have made.
    DeletionHeld,
}

impl NoticeKind {
    /// The notice a sync report makes, if any.
    pub fn of(report: &SyncReport) -> Option<NoticeKind> {
        let changed = report.counts.created + report.counts.updated + report.counts.deleted > 0;
        match report.outcome {
            Outcome::Failed if report.deletion_held => Some(NoticeKind::DeletionHeld),
            Outcome::Failed => Some(NoticeKind::SyncFailed),
            Outcome::Deferred => Some(NoticeKind::SyncDeferred),
            Outcome::RolledBack => Some(NoticeKind::RolledBack),
            Outcome::Succeeded => match report.health.as_ref().map(|v| v.health) {
                Some(Health::Degraded) => Some(NoticeKind::Degraded),
                Some(_) => Some(NoticeKind::Applied),
                None if changed => Some(NoticeKind::Applied),
                None => None,
            },
            Outcome::Skipped => None,
        }
    }

    /// The Event reason (`kubectl get events` REASON column).
    pub fn reason(self) -> &'static str {
        match self {
            NoticeKind::Applied => "Applied",
            NoticeKind::SyncFailed => "SyncFailed",
            NoticeKind::SyncDeferred => "SyncDeferred",
            NoticeKind::Degraded => "Degraded",
            NoticeKind::RolledBack => "RolledBack",
            NoticeKind::DeletionHeld => "DeletionHeld",
        }
    }

    /// Whether a sink that hears only of failures hears of this one.
    pub fn is_failure(self) -> bool {
        !matches!(self, NoticeKind::Applied)
    }
}

/// One sync's verdict with what a reader needs to place it. Holds no secret:
/// the repository URL is shown without credentials, errors never carry
/// secret values (see docs/secrets.md).
#[derive(Clone, Debug, Serialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub application: String,
    pub release: Option<String>,
    pub context: ClusterContext,
    /// The repository URL without user or password.
    pub repository: String,
    pub branch: String,
    pub commit: Option<CommitInfo>,
    /// A web link to the commit, when the repository is on a forge berth knows.
    pub commit_url: Option<String>,
    pub outcome: Outcome,
    pub health: Option<Health>,
    pub counts: Counts,
    /// The error, the health reason or the rollback's cause.
    pub detail: Option<String>,
    /// After a rollback: the commit the cluster runs now.
    pub rolled_back_to: Option<String>,
    pub duration_ms: u64,
}

impl Notice {
    /// The notice of `report`, or `None` when the sync made none.
    pub fn of(
        report: &SyncReport,
        application: &Application,
        context: &ClusterContext,
    ) -> Option<Notice> {
        let kind = NoticeKind::of(report)?;
        let detail = match kind {
            NoticeKind::Degraded => report.health.as_ref().map(|v| v.reason.clone()),
            // A deliberate deletion is said wherever the sync is heard of.
            NoticeKind::Applied => report.deletions_allowed.map(|allowed| {
                format!(
                    "{} deleted past the deletion guard, as the commit's {} trailer allows {allowed}",
                    report.counts.deleted,
                    crate::plan::ALLOW_PRUNE_TRAILER
                )
            }),
            _ => report.error.clone(),
        };
        Some(Notice {
            kind,
            application: report.application.clone(),
            release: report.release.clone(),
            context: context.clone(),
            repository: without_credentials(&application.url),
            branch: application.branch.clone(),
            commit_url: report
                .commit
                .as_ref()
                .and_then(|c| commit_url(&application.url, &c.sha)),
            commit: report.commit.clone(),
            outcome: report.outcome,
            health: report.health.as_ref().map(|v| v.health),
            counts: report.counts,
            detail,
            rolled_back_to: report.rolled_back_to.clone(),
            duration_ms: report.duration_ms,
        })
    }

    /// One line for people: "demo applied at 1a2b3c4d5e6f "subject" by author (2 created, 1 updated)".
    pub fn headline(&self) -> String {
        let what = self.release.as_deref().unwrap_or(&self.application);
        let verb = match self.kind {
            NoticeKind::Applied => "applied",
            NoticeKind::SyncFailed => "failed to sync",
            NoticeKind::SyncDeferred => "deferred (waiting for Vault)",
            NoticeKind::Degraded => "is degraded",
            NoticeKind::RolledBack => "was rolled back",
            NoticeKind::DeletionHeld => "held deletions back",
        };
        let mut line = match &self.commit {
            Some(commit) => format!("{what} {verb} at {commit}"),
            None => format!("{what} {verb}"),
        };
        let Counts {
            created,
            updated,
            deleted,
            ..
        } = self.counts;
        if created + updated + deleted > 0 {
            line.push_str(&format!(
                " ({created} created, {updated} updated, {deleted} deleted)"
            ));
        }
        if let Some(to) = &self.rolled_back_to {
            line.push_str(&format!(" to {}", to.get(..12).unwrap_or(to)));
        }
        line
    }
}

/// `url` without a user or password (`https://token@host/x` → `https://host/x`).
pub fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed)
            if parsed.has_host()
                && (!parsed.username().is_empty() || parsed.password().is_some()) =>
        {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// The forge's page of `sha` in the repository at `url`, for the forges
/// whose commit URLs berth knows (GitHub, GitLab, Bitbucket, Codeberg),
/// from HTTPS or SSH remote URLs.
pub fn commit_url(url: &str, sha: &str) -> Option<String> {
    let (host, path) = web_location(url)?;
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    let page = match host.as_str() {
        "github.com" | "codeberg.org" => format!("https://{host}/{path}/commit/{sha}"),
        "gitlab.com" => format!("https://{host}/{path}/-/commit/{sha}"),
        "bitbucket.org" => format!("https://{host}/{path}/commits/{sha}"),
        _ => return None,
    };
    Some(page)
}

/// Host (lowercase) and path of a remote URL: `https://host/path`,
/// `ssh://git@host/path` or scp-like `git@host:path`.
pub fn web_location(url: &str) -> Option<(String, String)> {
    if let Ok(parsed) = url::Url::parse(url)
        && let Some(host) = parsed.host_str()
    {
        let host = match parsed.port() {
            Some(port) if parsed.scheme() != "ssh" => format!("{}:{port}", host.to_lowercase()),
            _ => host.to_lowercase(),
        };
        return Some((host, parsed.path().trim_start_matches('/').to_string()));
    }
    // scp-like syntax: [user@]host:path
    let (authority, path) = url.split_once(':')?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty() && !host.contains('/')).then(|| {
        (
            host.to_lowercase(),
            path.trim_start_matches('/').to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_links_for_known_forges_only() {
        let sha = "0123456789abcdef";
        assert_eq!(
            commit_url("https://github.com/acme/shop.git", sha).as_deref(),
            Some("https://github.com/acme/shop/commit/0123456789abcdef")
        );
        assert_eq!(
            commit_url("git@github.com:acme/shop.git", sha).as_deref(),
            Some("https://github.com/acme/shop/commit/0123456789abcdef")
        );
        assert_eq!(
            commit_url("ssh://git@gitlab.com/group/sub/shop.git", sha).as_deref(),
            Some("https://gitlab.com/group/sub/shop/-/commit/0123456789abcdef")
        );
        assert_eq!(
            commit_url("https://x-token:secret@bitbucket.org/acme/shop", sha).as_deref(),
            Some("https://bitbucket.org/acme/shop/commits/0123456789abcdef")
        );
        assert_eq!(commit_url("http://127.0.0.1:8080/shop", sha), None);
        assert_eq!(commit_url("file:///tmp/shop", sha), None);
    }

    #[test]
    fn credentials_are_taken_out_of_urls() {
        assert_eq!(
            without_credentials("https://oauth2:glpat-secret@gitlab.example.com/a/b.git"),
            "https://gitlab.example.com/a/b.git"
        );
        assert_eq!(
            without_credentials("git@github.com:acme/shop.git"),
            "git@github.com:acme/shop.git"
        );
        assert_eq!(without_credentials("file:///srv/repo"), "file:///srv/repo");
    }

    fn report(outcome: Outcome, health: Option<Health>, counts: Counts) -> SyncReport {
        SyncReport {
            application: "demo".into(),
            release: Some("demo".into()),
            commit: None,
            counts,
            outcome,
            error: None,
            duration_ms: 0,
            health: health.map(|health| crate::health::Verdict {
                health,
                reason: String::new(),
            }),
            rolled_back_to: None,
            held_back_to: None,
            deletion_held: false,
            retry: false,
            deletions_allowed: None,
            stages: Vec::new(),
            tracked: Vec::new(),
        }
    }

    #[test]
    fn only_changes_and_failures_make_a_notice() {
        let none = Counts::default();
        let one = Counts {
            updated: 1,
            ..Counts::default()
        };
        assert_eq!(
            NoticeKind::of(&report(Outcome::Succeeded, None, none)),
            None
        );
        assert_eq!(NoticeKind::of(&report(Outcome::Skipped, None, none)), None);
        assert_eq!(
            NoticeKind::of(&report(Outcome::Succeeded, None, one)),
            Some(NoticeKind::Applied)
        );
        assert_eq!(
            NoticeKind::of(&report(Outcome::Succeeded, Some(Health::Degraded), one)),
            Some(NoticeKind::Degraded)
        );
        let mut held = report(Outcome::Failed, None, none);
        held.deletion_held = true;
        assert_eq!(NoticeKind::of(&held), Some(NoticeKind::DeletionHeld));
        assert_eq!(
            NoticeKind::of(&report(Outcome::RolledBack, Some(Health::Healthy), one)),
            Some(NoticeKind::RolledBack)
        );
    }
}
