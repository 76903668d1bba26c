//! The agent's Kubernetes client: kube-rs's own, with a bound on how many
//! requests are in flight at once.
//!
//! kube-rs speaks HTTP/1.1, so every request in flight holds a connection
//! of its own, and its pool keeps each one open for 90 s after use. A fleet
//! waking at once (every release reading its state, recording its health,
//! sending its Events) opened one connection per release: 1,000 for 1,000
//! releases. With the bound, the agent holds at most
//! `concurrency.requests` connections for requests, plus one per watch
//! (watches are long-lived and not counted: one per kind, `drift.rs`).
//! HTTP/2 would multiplex them over one connection, but kube-apiserver
//! allows only 100 streams on it, and hyper then queues requests behind
//! watches instead of opening a second connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use kube::Client;
use kube::client::{Body, ClientBuilder};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{BoxError, Layer, Service};

use crate::config::AgentConfig;

#[derive(Debug, thiserror::Error)]
#[error("connecting to Kubernetes: {0}")]
pub struct KubernetesError(String);

/// An API error as people read it: the server's message with its code, or
/// that the server could not be reached and the root cause (kube-rs's own
/// text shows the status structure or "client error (SendRequest)").
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        unreached if is_unreachable(unreached) => {
            let mut cause: &dyn std::error::Error = error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            format!("the API server could not be reached: {cause}")
        }
        other => other.to_string(),
    }
}

/// Whether the request did not reach the API server (a connection refused
/// or cut).
fn is_unreachable(error: &kube::Error) -> bool {
    matches!(error, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// Whether the API server could not be reached or asked to be left alone
/// (429, 5xx): the same request may well succeed later.
pub fn is_unavailable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        other => is_unreachable(other),
    }
}

/// The agent's client: from the configured kubeconfig, else in-cluster or
/// `KUBECONFIG`; at most `concurrency.requests` requests in flight.
pub async fn kube_client(config: &AgentConfig) -> Result<Client, KubernetesError> {
    client_config(config)
        .await
        .and_then(|c| client_with_limit(c, config.concurrency.requests))
}

/// A client of the same identity impersonating the ServiceAccount
/// `account` of `namespace` (a release's `serviceAccountName`): the API
/// server allows its requests only what the account may do. Made for each
/// sync of such a release (a client belongs to the runtime that made it).
pub async fn impersonating_client(
    config: &AgentConfig,
    namespace: &str,
    account: &str,
) -> Result<Client, KubernetesError> {
    let mut client_config = client_config(config).await?;
    client_config.auth_info.impersonate =
        Some(format!("system:serviceaccount:{namespace}:{account}"));
    client_with_limit(client_config, config.concurrency.requests)
}

async fn client_config(config: &AgentConfig) -> Result<kube::Config, KubernetesError> {
    let mut client_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| KubernetesError(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| KubernetesError(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| KubernetesError(e.to_string()))?,
    };
    client_config
        .headers
        .push((http::header::USER_AGENT, user_agent(config)));
    Ok(client_config)
}

/// `berth/VERSION`, and the replica's leader-election identity when there
/// is one: the API server's audit log and metrics tell berth's requests
/// from other clients', and one replica's from another's.
fn user_agent(config: &AgentConfig) -> http::HeaderValue {
    const BERTH: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));
    let plain = http::HeaderValue::from_static(BERTH);
    match &config.leader_election {
        // An identity that is no header value (a control character) is left out.
        Some(election) => http::HeaderValue::from_str(&format!("{BERTH} ({})", election.identity))
            .unwrap_or(plain),
        None => plain,
    }
}

/// kube-rs's client for `config`, with at most `requests` requests (watches
/// aside) in flight.
pub fn client_with_limit(config: kube::Config, requests: usize) -> Result<Client, KubernetesError> {
    let builder = ClientBuilder::try_from(config).map_err(|e| KubernetesError(e.to_string()))?;
    Ok(builder.with_layer(&RequestLimit::new(requests)).build())
}

/// Holds each request (not watches) to a place among `requests`, from
/// before it is sent until its response body is dropped, so that the places
/// bound the connections in use.
#[derive(Clone)]
pub struct RequestLimit {
    places: Arc<Semaphore>,
}

impl RequestLimit {
    pub fn new(requests: usize) -> RequestLimit {
        RequestLimit {
            places: Arc::new(Semaphore::new(requests)),
        }
    }
}

impl<S> Layer<S> for RequestLimit {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            places: Arc::clone(&self.places),
        }
    }
}

/// The service of [`RequestLimit`].
pub struct Limited<S> {
    inner: S,
    places: Arc<Semaphore>,
}

/// A `watch=true` (or `watch=1`) request: long-lived, not limited.
fn is_watch<B>(request: &Request<B>) -> bool {
    request.uri().query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    })
}

impl<S, B> Service<Request<Body>> for Limited<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
{
    type Response = Response<HeldBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let watch = is_watch(&request);
        let places = Arc::clone(&self.places);
        // The request is sent when its future is first polled: after it
        // has a place.
        let sent = self.inner.call(request);
        Box::pin(async move {
            let place = if watch {
                None
            } else {
                Some(places.acquire_owned().await?)
            };
            let response = sent.await.map_err(Into::into)?;
            Ok(response.map(|body| HeldBody {
                body,
                _place: place,
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its request's place until dropped.
    pub struct HeldBody<B> {
        #[pin]
        body: B,
        _place: Option<OwnedSemaphorePermit>,
    }
}

impl<B: http_body::Body> http_body::Body for HeldBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tower::ServiceExt as _;

    #[test]
    fn the_user_agent_names_berth_and_the_replica() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.yaml");
        let text = "context: { cloud: gcp, env: prod, region: eu, cluster: c1 }\n\
                    cache_dir: /tmp/berth-cache\n\
                    applications: [{ name: demo, url: \"https://git.example/demo.git\", branch: main }]\n";
        std::fs::write(&path, text).unwrap();
        let config = AgentConfig::load(&path).unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(user_agent(&config), format!("berth/{version}").as_str());
        std::fs::write(
            &path,
            format!("{text}leader_election: {{ identity: replica-a }}\n"),
        )
        .unwrap();
        let config = AgentConfig::load(&path).unwrap();
        assert_eq!(
            user_agent(&config),
            format!("berth/{version} (replica-a)").as_str()
        );
    }

    /// An HTTP service that answers after a pause and counts the requests
    /// it is answering at once (the most it saw in `most`).
    fn counting(
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    ) -> impl Service<
        Request<Body>,
        Response = Response<http_body_util::Full<bytes::Bytes>>,
        Error = BoxError,
        Future = impl Send,
    > + Clone {
        tower::service_fn(move |_request: Request<Body>| {
            let (now, most) = (Arc::clone(&now), Arc::clone(&most));
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, BoxError>(Response::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(b"{}"),
                )))
            }
        })
    }

    #[tokio::test]
    async fn requests_wait_for_a_place_and_watches_do_not() {
        let (now, most) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
        let limit = RequestLimit::new(3);
        let mut calls = Vec::new();
        for i in 0..12 {
            let service = limit.layer(counting(Arc::clone(&now), Arc::clone(&most)));
            calls.push(tokio::spawn(async move {
                let uri = format!("/api/v1/namespaces/a/configmaps/c{i}");
                let response = service
                    .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                drop(response);
            }));
        }
        for call in calls {
            call.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3, "requests in flight");

        // Watches hold no place: three of them run beside a request while
        // the places are all held by unread response bodies.
        let most = Arc::new(AtomicUsize::new(0));
        let mut held = Vec::new();
        for _ in 0..3 {
            let service = limit.layer(counting(Arc::clone(&now), Arc::clone(&most)));
            held.push(
                service
                    .oneshot(Request::get("/api/v1/pods").body(Body::empty()).unwrap())
                    .await
                    .unwrap(),
            );
        }
        let watch = limit
            .layer(counting(Arc::clone(&now), Arc::clone(&most)))
            .oneshot(
                Request::get("/api/v1/pods?watch=true")
                    .body(Body::empty())
                    .unwrap(),
            );
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("a watch waited for a place")
            .unwrap();
        let request = limit
            .layer(counting(Arc::clone(&now), Arc::clone(&most)))
            .oneshot(Request::get("/api/v1/pods").body(Body::empty()).unwrap());
        let waiting = tokio::spawn(request);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "a request ran while its body held every place"
        );
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a place freed by a dropped body")
            .unwrap()
            .unwrap();
    }

    #[test]
    fn watches_are_told_from_requests() {
        let request = |uri: &str| Request::get(uri).body(()).unwrap();
        assert!(is_watch(&request(
            "/api/v1/configmaps?labelSelector=a&watch=true&timeoutSeconds=290"
        )));
        assert!(is_watch(&request("/apis/apps/v1/deployments?watch=1")));
        assert!(!is_watch(&request("/api/v1/namespaces/a/configmaps/b")));
        assert!(!is_watch(&request("/api/v1/configmaps?watch=false")));
        assert!(!is_watch(&request(
            "/api/v1/configmaps?fieldSelector=watch=true"
        )));
    }
}
