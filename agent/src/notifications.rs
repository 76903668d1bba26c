//! Notifications out: each configured sink (a Slack incoming webhook, or a
//! generic JSON webhook signed with HMAC-SHA256) has its own queue and
//! delivery task, so a slow or dead sink never holds up a sync or another
//! sink. Deliveries are retried with exponential backoff; what cannot be
//! delivered within [`GIVE_UP_AFTER`] is dropped and counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::{SinkConfig, SinkFilter, SinkKind};
use crate::metrics::Metrics;
use crate::notice::{Notice, NoticeKind};

/// Notices waiting per sink; more are dropped (and counted) rather than
/// held in memory without bound while a sink is down.
const QUEUE_LENGTH: usize = 256;
/// How long one delivery is retried.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(15 * 60);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The header carrying a generic webhook's signature: `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Berth-Signature-256";

/// One message ready to post.
struct Delivery {
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    what: String,
}

struct Sink {
    config: SinkConfig,
    queue: mpsc::Sender<Delivery>,
    task: JoinHandle<()>,
}

/// The configured sinks and their delivery tasks.
pub struct Notifier {
    sinks: Vec<Sink>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Starts one delivery task per sink (on the current tokio runtime).
    pub fn start(sinks: &[SinkConfig], metrics: Arc<Metrics>) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let sinks = sinks
            .iter()
            .map(|config| {
                let (queue, receiver) = mpsc::channel(QUEUE_LENGTH);
                let task = tokio::spawn(deliver(
                    client.clone(),
                    config.clone(),
                    receiver,
                    Arc::clone(&metrics),
                ));
                Sink {
                    config: config.clone(),
                    queue,
                    task,
                }
            })
            .collect();
        Notifier { sinks, metrics }
    }

    /// The sinks' configurations, to tell whether a new configuration changes them.
    pub fn configs(&self) -> Vec<SinkConfig> {
        self.sinks.iter().map(|s| s.config.clone()).collect()
    }

    /// Queues `notice` for every sink that wants it; never waits. `previous`
    /// is the application's last notice: sinks that hear only of failures
    /// also hear of the first success after one.
    pub fn send(&self, notice: &Notice, previous: Option<NoticeKind>) {
        let recovered = !notice.kind.is_failure() && previous.is_some_and(NoticeKind::is_failure);
        for sink in &self.sinks {
            let wanted = match sink.config.on {
                SinkFilter::All => true,
                SinkFilter::Failures => notice.kind.is_failure() || recovered,
            };
            if !wanted {
                continue;
            }
            let delivery = match sink.config.kind {
                SinkKind::Slack => slack_message(notice),
                SinkKind::Webhook => {
                    signed_message(notice, sink.config.secret.as_ref().map(|s| s.expose()))
                }
            };
            if sink.queue.try_send(delivery).is_err() {
                warn!(sink = %sink.config.name, "notification queue full; notification dropped");
                self.metrics
                    .record_notification(&sink.config.name, "dropped");
            }
        }
    }

    /// Stops taking notices and lets queued ones be delivered for at most
    /// `grace`; whatever is left then is dropped.
    pub async fn close(self, grace: Duration) {
        let Notifier { sinks, .. } = self;
        let tasks: Vec<JoinHandle<()>> = sinks
            .into_iter()
            .map(|sink| {
                drop(sink.queue);
                sink.task
            })
            .collect();
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(grace, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            warn!("notifications still undelivered when the agent stopped were dropped");
            for abort in aborts {
                abort.abort();
            }
        }
    }
}

/// The delivery task of one sink: one message at a time, in order.
async fn deliver(
    client: reqwest::Client,
    sink: SinkConfig,
    mut queue: mpsc::Receiver<Delivery>,
    metrics: Arc<Metrics>,
) {
    while let Some(delivery) = queue.recv().await {
        let started = Instant::now();
        let mut wait = FIRST_RETRY;
        loop {
            let mut request = client
                .post(sink.url.expose())
                .header("Content-Type", "application/json")
                .body(delivery.body.clone());
            for (name, value) in &delivery.headers {
                request = request.header(*name, value);
            }
            // Errors are described without the URL: a Slack webhook URL is a secret.
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => {
                    let status = response.status();
                    if status.is_server_error() || status.as_u16() == 429 {
                        Some(format!("answered {status}"))
                    } else {
                        warn!(sink = %sink.name, %status, what = %delivery.what, "notification refused; dropped");
                        metrics.record_notification(&sink.name, "dropped");
                        break;
                    }
                }
                Err(error) => Some(describe(error)),
            };
            let Some(failure) = failure else {
                debug!(sink = %sink.name, what = %delivery.what, "notification delivered");
                metrics.record_notification(&sink.name, "delivered");
                break;
            };
            if started.elapsed() + wait > GIVE_UP_AFTER {
                warn!(sink = %sink.name, cause = %failure, what = %delivery.what,
                    "notification undeliverable; dropped");
                metrics.record_notification(&sink.name, "dropped");
                break;
            }
            info!(sink = %sink.name, cause = %failure, retry_in = %humantime::format_duration(wait),
                "notification not delivered; retrying");
            metrics.record_notification(&sink.name, "retried");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(LONGEST_RETRY);
        }
    }
}

/// What went wrong with a request, without its URL.
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        error.without_url().to_string()
    }
}

/// Slack's escaping for text: `&`, `<` and `>` only.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: one `text` in Slack's markup.
fn slack_message(notice: &Notice) -> Delivery {
    let icon = match notice.kind {
        NoticeKind::Applied => ":white_check_mark:",
        NoticeKind::SyncDeferred => ":hourglass:",
        NoticeKind::RolledBack => ":rewind:",
        _ => ":x:",
    };
    let ctx = &notice.context;
    let what = notice.release.as_deref().unwrap_or(&notice.application);
    let mut text = format!(
        "{icon} *{}* {} on *{}* ({} {} {})",
        slack_escape(what),
        notice.kind.reason(),
        slack_escape(&ctx.cluster),
        slack_escape(&ctx.cloud),
        slack_escape(&ctx.env),
        slack_escape(&ctx.region),
    );
    if let Some(commit) = &notice.commit {
        let sha = match &notice.commit_url {
            Some(url) => format!("<{url}|{}>", commit.short_sha()),
            None => format!("`{}`", commit.short_sha()),
        };
        text.push_str(&format!(
            "\n{sha} {} by {}",
            slack_escape(&commit.subject),
            slack_escape(&commit.author)
        ));
    }
    text.push_str(&format!("\n{}", slack_escape(&notice.headline())));
    if let Some(health) = notice.health {
        text.push_str(&format!(" (health: {health})"));
    }
    if let Some(detail) = notice.detail.as_deref().filter(|d| !d.is_empty()) {
        let detail: String = detail.chars().take(1500).collect();
        text.push_str(&format!("\n```{}```", slack_escape(&detail)));
    }
    Delivery {
        body: json!({ "text": text }).to_string().into_bytes(),
        headers: Vec::new(),
        what: notice.headline(),
    }
}

/// The generic webhook's body: the notice as JSON, with `event` (the
/// reason) and `headline`; signed when the sink has a secret.
fn signed_message(notice: &Notice, secret: Option<&str>) -> Delivery {
    let mut body = serde_json::to_value(notice).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("event".into(), notice.kind.reason().into());
        fields.insert("headline".into(), notice.headline().into());
    }
    let body = body.to_string().into_bytes();
    let mut headers = vec![
        ("X-Berth-Event", notice.kind.reason().to_string()),
        ("X-Berth-Delivery", uuid::Uuid::new_v4().to_string()),
    ];
    if let Some(secret) = secret {
        headers.push((SIGNATURE_HEADER, signature(secret.as_bytes(), &body)));
    }
    Delivery {
        body,
        headers,
        what: notice.headline(),
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub signs its webhooks.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this cannot happen.
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ClusterContext;
    use crate::inventory::{Counts, Outcome};
    use crate::source::CommitInfo;

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            kind,
            application: "shop".into(),
            release: Some("shop".into()),
            context: ClusterContext {
                cloud: "gcp".into(),
                env: "prod".into(),
                region: "europe-west1".into(),
                cluster: "gke-prod-1".into(),
            },
            repository: "https://github.com/acme/shop.git".into(),
            branch: "main".into(),
            commit: Some(CommitInfo {
                sha: "0123456789abcdef0123".into(),
                subject: "Raise <replicas> & limits".into(),
                author: "Ada".into(),
                allow_prune: Vec::new(),
            }),
            commit_url: Some("https://github.com/acme/shop/commit/0123456789abcdef0123".into()),
            outcome: Outcome::Failed,
            health: None,
            counts: Counts::default(),
            detail: Some("render: values.yaml line 3: bad".into()),
            rolled_back_to: None,
            duration_ms: 10,
        }
    }

    #[test]
    fn slack_text_names_app_cluster_commit_and_links_it() {
        let delivery = slack_message(&notice(NoticeKind::SyncFailed));
        let body: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("*shop* SyncFailed on *gke-prod-1*"), "{text}");
        assert!(
            text.contains(
                "<https://github.com/acme/shop/commit/0123456789abcdef0123|0123456789ab>"
            ),
            "{text}"
        );
        assert!(
            text.contains("Raise &lt;replicas&gt; &amp; limits by Ada"),
            "{text}"
        );
        assert!(text.contains("values.yaml line 3"), "{text}");
    }

    #[test]
    fn generic_messages_are_signed_over_the_exact_body() {
        let delivery = signed_message(&notice(NoticeKind::SyncFailed), Some("s3cret"));
        let header = delivery
            .headers
            .iter()
            .find(|(name, _)| *name == SIGNATURE_HEADER)
            .map(|(_, value)| value.clone())
            .unwrap();
        assert_eq!(header, signature(b"s3cret", &delivery.body));
        assert_ne!(header, signature(b"other", &delivery.body));
        let body: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
        assert_eq!(body["event"], "SyncFailed");
        assert_eq!(body["commit"]["author"], "Ada");
        assert!(!String::from_utf8_lossy(&delivery.body).contains("s3cret"));
    }

    #[test]
    fn signature_matches_githubs_documented_example() {
        // docs.github.com "Validating webhook deliveries": secret "It's a Secret to Everybody", payload "Hello, World!"
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
