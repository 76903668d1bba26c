//! Push webhooks from forges: checking a delivery's signature and reading
//! which repository and branch moved. The HTTP side is in [`crate::server`].
//!
//! | provider | endpoint | proof |
//! |---|---|---|
//! | GitHub | `/hooks/github` | `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>` |
//! | GitLab | `/hooks/gitlab` | `X-Gitlab-Token: <secret>` |
//! | Gitea, Forgejo | `/hooks/gitea` | `X-Gitea-Signature` / `X-Forgejo-Signature: <hex HMAC-SHA256>` |
//! | anything else | `/hooks/generic` | `X-Berth-Signature-256: sha256=<HMAC-SHA256 of the body>` |

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::notice::web_location;

/// Where a webhook comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    GitLab,
    Gitea,
    Generic,
}

impl Provider {
    /// From the endpoint's last path segment.
    pub fn from_path(name: &str) -> Option<Provider> {
        match name {
            "github" => Some(Provider::GitHub),
            "gitlab" => Some(Provider::GitLab),
            "gitea" | "forgejo" => Some(Provider::Gitea),
            "generic" => Some(Provider::Generic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Gitea => "gitea",
            Provider::Generic => "generic",
        }
    }
}

/// Why a delivery is not acted on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Missing or wrong signature or token (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Signed, but not a JSON body berth can read (400).
    #[error("{0}")]
    BadRequest(String),
}

/// A push: the repository's URLs as the forge gives them, and the branch.
#[derive(Debug, PartialEq, Eq)]
pub struct Push {
    pub urls: Vec<String>,
    /// `None` when the push is not to a branch (a tag).
    pub branch: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks that the delivery was made by someone holding `secret`.
pub fn verify(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &[u8],
) -> Result<(), Rejection> {
    match provider {
        Provider::GitLab => {
            let token = header(headers, "x-gitlab-token")
                .ok_or(Rejection::Unauthorized("no X-Gitlab-Token header"))?;
            if bool::from(token.as_bytes().ct_eq(secret)) {
                Ok(())
            } else {
                Err(Rejection::Unauthorized("wrong X-Gitlab-Token"))
            }
        }
        Provider::GitHub | Provider::Generic => {
            let name = if provider == Provider::GitHub {
                "x-hub-signature-256"
            } else {
                "x-berth-signature-256"
            };
            let signature = header(headers, name)
                .ok_or(Rejection::Unauthorized("no signature header"))?
                .strip_prefix("sha256=")
                .ok_or(Rejection::Unauthorized("the signature is not sha256=<hex>"))?;
            check_hmac(secret, body, signature)
        }
        Provider::Gitea => {
            let signature = header(headers, "x-gitea-signature")
                .or_else(|| header(headers, "x-forgejo-signature"))
                .ok_or(Rejection::Unauthorized("no signature header"))?;
            check_hmac(secret, body, signature)
        }
    }
}

fn check_hmac(secret: &[u8], body: &[u8], hex_signature: &str) -> Result<(), Rejection> {
    let expected = hex::decode(hex_signature.trim())
        .map_err(|_| Rejection::Unauthorized("the signature is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| Rejection::Unauthorized("unusable secret"))?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| Rejection::Unauthorized("wrong signature"))
}

/// Reads a verified delivery: `Ok(None)` for events other than pushes (a
/// ping, an issue comment).
pub fn parse(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Push>, Rejection> {
    let event = match provider {
        Provider::GitHub => header(headers, "x-github-event"),
        Provider::GitLab => header(headers, "x-gitlab-event"),
        Provider::Gitea => {
            header(headers, "x-gitea-event").or_else(|| header(headers, "x-forgejo-event"))
        }
        Provider::Generic => Some("push"),
    };
    let is_push = match provider {
        Provider::GitLab => event == Some("Push Hook"),
        _ => event == Some("push"),
    };
    if !is_push {
        return Ok(None);
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| Rejection::BadRequest(format!("the body is not JSON: {e}")))?;
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let urls: Vec<String> = match provider {
        Provider::GitHub | Provider::Gitea => {
            let repository = json.get("repository").unwrap_or(&Value::Null);
            ["clone_url", "ssh_url", "html_url", "git_url", "url"]
                .iter()
                .filter_map(|key| text(repository, key))
                .collect()
        }
        Provider::GitLab => {
            let mut urls = Vec::new();
            for object in ["project", "repository"] {
                let value = json.get(object).unwrap_or(&Value::Null);
                for key in ["git_http_url", "git_ssh_url", "web_url", "homepage", "url"] {
                    urls.extend(text(value, key));
                }
            }
            urls
        }
        Provider::Generic => text(&json, "repository").into_iter().collect(),
    };
    if urls.is_empty() {
        return Err(Rejection::BadRequest("the push names no repository".into()));
    }
    let branch = match (text(&json, "ref"), text(&json, "branch")) {
        (_, Some(branch)) => Some(branch),
        (Some(reference), None) => reference.strip_prefix("refs/heads/").map(str::to_string),
        (None, None) => {
            return Err(Rejection::BadRequest(
                "the push names no ref or branch".into(),
            ));
        }
    };
    Ok(Some(Push { urls, branch }))
}

/// Whether two remote URLs name the same repository: same host and path,
/// whatever the scheme, credentials, `.git` suffix or case. A false match
/// only costs one extra poll.
pub fn same_repository(a: &str, b: &str) -> bool {
    fn key(url: &str) -> Option<(String, String)> {
        let (host, path) = web_location(url)?;
        let path = path
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .to_lowercase();
        Some((host, path))
    }
    match (key(a), key(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::signature;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn github_signatures_are_checked_over_the_body() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = signature(b"topsecret", body);
        let ok = headers(&[("x-hub-signature-256", &good)]);
        assert_eq!(verify(Provider::GitHub, &ok, body, b"topsecret"), Ok(()));
        assert!(matches!(
            verify(Provider::GitHub, &ok, b"{}", b"topsecret"),
            Err(Rejection::Unauthorized(_))
        ));
        assert!(matches!(
            verify(Provider::GitHub, &ok, body, b"other"),
            Err(Rejection::Unauthorized(_))
        ));
        assert!(matches!(
            verify(Provider::GitHub, &HeaderMap::new(), body, b"topsecret"),
            Err(Rejection::Unauthorized(_))
        ));
        let bare = good.trim_start_matches("sha256=").to_string();
        let gitea = headers(&[("x-gitea-signature", &bare)]);
        assert_eq!(verify(Provider::Gitea, &gitea, body, b"topsecret"), Ok(()));
    }

    #[test]
    fn gitlab_compares_its_token() {
        let ok = headers(&[("x-gitlab-token", "topsecret")]);
        assert_eq!(verify(Provider::GitLab, &ok, b"", b"topsecret"), Ok(()));
        let wrong = headers(&[("x-gitlab-token", "topsecreT")]);
        assert!(verify(Provider::GitLab, &wrong, b"", b"topsecret").is_err());
    }

    #[test]
    fn pushes_name_repository_urls_and_branch() {
        let github = br#"{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/acme/shop.git","ssh_url":"git@github.com:acme/shop.git"}}"#;
        let push = parse(
            Provider::GitHub,
            &headers(&[("x-github-event", "push")]),
            github,
        )
        .unwrap()
        .unwrap();
        assert_eq!(push.branch.as_deref(), Some("main"));
        assert_eq!(push.urls.len(), 2);
        assert_eq!(
            parse(
                Provider::GitHub,
                &headers(&[("x-github-event", "ping")]),
                github
            ),
            Ok(None)
        );
        let tag = br#"{"ref":"refs/tags/v1","repository":{"clone_url":"https://github.com/acme/shop.git"}}"#;
        let push = parse(
            Provider::GitHub,
            &headers(&[("x-github-event", "push")]),
            tag,
        )
        .unwrap()
        .unwrap();
        assert_eq!(push.branch, None);
        let gitlab = br#"{"ref":"refs/heads/prod","project":{"git_http_url":"https://gitlab.com/g/shop.git"}}"#;
        let push = parse(
            Provider::GitLab,
            &headers(&[("x-gitlab-event", "Push Hook")]),
            gitlab,
        )
        .unwrap()
        .unwrap();
        assert_eq!(push.branch.as_deref(), Some("prod"));
        assert!(matches!(
            parse(Provider::Generic, &HeaderMap::new(), b"not json"),
            Err(Rejection::BadRequest(_))
        ));
    }

    #[test]
    fn repository_urls_match_across_schemes() {
        assert!(same_repository(
            "https://github.com/Acme/Shop.git",
            "git@github.com:acme/shop"
        ));
        assert!(same_repository(
            "https://token@github.com/acme/shop/",
            "ssh://git@github.com/acme/shop.git"
        ));
        assert!(!same_repository(
            "https://github.com/acme/shop",
            "https://github.com/acme/shop-docs"
        ));
        assert!(!same_repository(
            "http://127.0.0.1:8080/shop",
            "http://127.0.0.1:8081/shop"
        ));
    }
}
