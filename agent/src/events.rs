//! Kubernetes Events for sync verdicts, attached to the release's state
//! object (the ConfigMap `berth-release-<name>` in the state namespace), so
//! `kubectl describe configmap berth-release-<name> -n <state namespace>`
//! and `kubectl get events` show them. kube-runtime's recorder aggregates
//! repeats (same reason, same commit) into one event with a count.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource as _};
use tracing::{debug, warn};

use crate::inventory::config_map_name;
use crate::notice::{Notice, NoticeKind};

/// The Event note's limit in the API (1 kB).
const MAX_NOTE_BYTES: usize = 1000;

/// Publishes notices as Events.
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    recorder: Recorder,
    state_namespace: String,
}

impl EventPublisher {
    pub fn new(client: Client, state_namespace: &str) -> EventPublisher {
        let reporter = Reporter {
            controller: "berth".into(),
            // The pod's name in a cluster (the Downward API sets HOSTNAME).
            instance: std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()),
        };
        EventPublisher {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            state_namespace: state_namespace.to_string(),
        }
    }

    /// Publishes `notice` on its release's state object. A notice without a
    /// release (the release file could not be read) or whose release has no
    /// state object yet is only logged.
    pub async fn publish(&self, notice: &Notice) {
        let Some(release) = &notice.release else {
            debug!(application = %notice.application, "no release to attach the event to");
            return;
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.state_namespace);
        let state = match api.get_opt(&config_map_name(release)).await {
            Ok(Some(state)) => state,
            Ok(None) => {
                debug!(%release, "the release has no state object yet; no event");
                return;
            }
            Err(error) => {
                warn!(%release, %error, "could not read the release's state object for its event");
                return;
            }
        };
        let event = Event {
            type_: match notice.kind {
                NoticeKind::Applied => EventType::Normal,
                _ => EventType::Warning,
            },
            reason: notice.kind.reason().into(),
            note: Some(note(notice)),
            // The commit is part of the action so that repeats of one verdict
            // for one commit aggregate, and a new commit gets its own event.
            action: match &notice.commit {
                Some(commit) => format!("Sync {}", commit.short_sha()),
                None => "Sync".into(),
            },
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &state.object_ref(&())).await {
            warn!(%release, %error, reason = notice.kind.reason(), "could not publish the event");
        }
    }
}

/// The event's message: the headline, then the detail, within the API's limit.
fn note(notice: &Notice) -> String {
    let mut note = notice.headline();
    if let Some(detail) = notice.detail.as_deref().filter(|d| !d.is_empty()) {
        note.push_str(": ");
        note.push_str(detail);
    }
    if note.len() > MAX_NOTE_BYTES {
        let mut end = MAX_NOTE_BYTES - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}
