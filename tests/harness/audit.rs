//! kube-apiserver's audit log (metadata only) of some users' requests: who
//! asked what, with which User-Agent and what the answer was. Tests read it
//! to check what a client did (only one replica writes, berth uses the
//! rights it is granted); the fleet bench counts each system's requests.

use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::TestCluster;

/// A control plane of its own whose kube-apiserver writes an audit log of
/// the requests of `users` into `dir`.
pub async fn audited_cluster(
    name: &str,
    users: &[&str],
    dir: &Path,
) -> Result<(TestCluster, AuditLog)> {
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n\
             rules:\n  - level: Metadata\n    users: {users:?}\n  - level: None\n"
        ),
    )?;
    let log = dir.join("audit.log");
    let cluster = TestCluster::start_with_apiserver_args(
        name,
        &[
            &format!("--audit-policy-file={}", policy.display()),
            &format!("--audit-log-path={}", log.display()),
        ],
    )
    .await?;
    Ok((cluster, AuditLog { log }))
}

/// The log of an [`audited_cluster`].
pub struct AuditLog {
    log: PathBuf,
}

impl AuditLog {
    /// Where the log ends now: a window's start for [`AuditLog::requests_since`].
    pub fn end(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// Every request logged so far, in order.
    pub fn requests(&self) -> Vec<Audited> {
        self.requests_since(0).unwrap_or_default()
    }

    /// The requests logged since `start`, in order. A request appears once
    /// it is answered (stage `ResponseComplete`); a watch also when its
    /// answer starts (`ResponseStarted`), as it may stay open.
    pub fn requests_since(&self, start: u64) -> Result<Vec<Audited>> {
        let mut file = std::fs::File::open(&self.log)?;
        file.seek(std::io::SeekFrom::Start(start))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(text.lines().filter_map(Audited::parse).collect())
    }
}

/// One request of the audit log: who asked (user and User-Agent), the
/// verb, API group, resource (with its subresource; empty for discovery and
/// other paths that name no object), namespace (empty across the cluster),
/// whether it was a dry run, the answer's code and the log's stage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Audited {
    pub user: String,
    pub user_agent: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub dry_run: bool,
    pub code: u16,
    pub stage: String,
}

impl Audited {
    fn parse(line: &str) -> Option<Audited> {
        let event: serde_json::Value = serde_json::from_str(line).ok()?;
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        let object = &event["objectRef"];
        let mut resource = text(&object["resource"]);
        // A namespace is cluster-scoped; the log names it as its own.
        let namespace = if resource == "namespaces" {
            String::new()
        } else {
            text(&object["namespace"])
        };
        if let Some(subresource) = object["subresource"].as_str() {
            resource = format!("{resource}/{subresource}");
        }
        Some(Audited {
            user: text(&event["user"]["username"]),
            user_agent: text(&event["userAgent"]),
            verb: text(&event["verb"]),
            group: text(&object["apiGroup"]),
            resource,
            namespace,
            dry_run: event["requestURI"]
                .as_str()
                .is_some_and(|uri| uri.contains("dryRun=All")),
            code: event["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
            stage: text(&event["stage"]),
        })
    }

    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}
