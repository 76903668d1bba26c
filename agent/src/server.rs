//! The agent's HTTP server (docs/operations.md): `/healthz`, `/readyz`,
//! `/metrics`, the push webhooks under `/hooks/`, and the status page `/`
//! with `/api/releases` (on their own address when `http.status_address`
//! is set, behind a bearer token when `http.status_token` is).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{HttpConfig, Secret, WebhookConfig};
use crate::daemon::{AgentError, AgentState};
use crate::leader::Role;
use crate::webhooks::{self, Provider, Rejection};

/// How long `/readyz` waits for the API server.
const API_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct Context {
    agent: Arc<AgentState>,
    webhook_secret: Option<Secret>,
    status_token: Option<Secret>,
}

/// Listeners bound and routes ready; [`Server::run`] serves them.
pub struct Server {
    listeners: Vec<(TcpListener, Router)>,
}

impl Server {
    /// Binds the configured addresses (nothing when `http.address` is off).
    pub async fn bind(
        http: &HttpConfig,
        webhooks: &WebhookConfig,
        agent: Arc<AgentState>,
    ) -> Result<Server, AgentError> {
        let context = Context {
            agent,
            webhook_secret: webhooks.secret.clone(),
            status_token: http.status_token.clone(),
        };
        let mut main = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics));
        if context.webhook_secret.is_some() {
            main = main.route(
                "/hooks/{provider}",
                post(webhook).layer(DefaultBodyLimit::max(webhooks.max_body_bytes)),
            );
        } else {
            info!("no webhook secret configured: webhooks are off");
        }
        let status = Router::new()
            .route("/", get(status_page))
            .route("/api/releases", get(releases))
            .layer(middleware::from_fn_with_state(
                context.clone(),
                require_token,
            ));
        let mut listeners = Vec::new();
        match (http.address, http.status_address) {
            (None, None) => {}
            (Some(address), None) => listeners.push((
                listen(address).await?,
                main.merge(status).with_state(context),
            )),
            (main_address, Some(status_address)) => {
                if let Some(address) = main_address {
                    listeners.push((listen(address).await?, main.with_state(context.clone())));
                }
                listeners.push((listen(status_address).await?, status.with_state(context)));
            }
        }
        for (listener, _) in &listeners {
            if let Ok(address) = listener.local_addr() {
                info!(%address, "HTTP server listening");
            }
        }
        Ok(Server { listeners })
    }

    /// The addresses listened on (port 0 in the configuration becomes the port chosen).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Serves until `stopping` turns true.
    pub async fn run(self, stopping: watch::Receiver<bool>) {
        let serving = self.listeners.into_iter().map(|(listener, router)| {
            let mut stopping = stopping.clone();
            async move {
                let shutdown = async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                };
                if let Err(error) = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    warn!(%error, "HTTP server stopped");
                }
            }
        });
        futures::future::join_all(serving).await;
    }
}

async fn listen(address: SocketAddr) -> Result<TcpListener, AgentError> {
    TcpListener::bind(address)
        .await
        .map_err(|e| AgentError::Listen {
            address: address.to_string(),
            cause: e.to_string(),
        })
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once every application has been polled and the API server
/// answers; a follower (leader election) once it knows it follows.
async fn readyz(State(context): State<Context>) -> Response {
    let role = context.agent.role.borrow().clone();
    match role {
        Role::Starting => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the lease has not been read yet\n",
            )
                .into_response();
        }
        Role::Follower { leader } => {
            return format!(
                "ready: following; the leader is {}\n",
                leader.as_deref().unwrap_or("not known yet")
            )
            .into_response();
        }
        Role::Single | Role::Leader => {}
    }
    if !context.agent.all_polled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: some applications have not been polled yet\n",
        )
            .into_response();
    }
    match tokio::time::timeout(API_CHECK_TIMEOUT, context.agent.client.apiserver_version()).await {
        Ok(Ok(_)) => "ready\n".into_response(),
        Ok(Err(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the API server refused: {error}\n"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the API server did not answer\n",
        )
            .into_response(),
    }
}

async fn metrics(State(context): State<Context>) -> Response {
    // The gauge is the role as it is now, read when scraped.
    let writes = context.agent.role.borrow().writes();
    context.agent.metrics.set_leader(writes);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        context.agent.metrics.encode(),
    )
        .into_response()
}

/// One push delivery: checked, matched to the followed applications, and
/// answered the same whether or not one matched.
async fn webhook(
    State(context): State<Context>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(provider) = Provider::from_path(&provider) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let metrics = &context.agent.metrics;
    let delivery = [
        "x-github-delivery",
        "x-gitlab-event-uuid",
        "x-gitea-delivery",
        "x-berth-delivery",
    ]
    .iter()
    .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
    .unwrap_or("")
    .to_string();
    let answer = |result: &'static str, status: StatusCode, text: &'static str| {
        metrics.record_webhook(provider.name(), result);
        (status, text).into_response()
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            warn!(provider = provider.name(), %delivery, "webhook refused: body over the limit");
            return answer(
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large\n",
            );
        }
        Err(rejection) => {
            warn!(provider = provider.name(), %delivery, cause = %rejection.body_text(), "webhook body unreadable");
            return answer("bad_request", StatusCode::BAD_REQUEST, "unreadable body\n");
        }
    };
    let Some(secret) = &context.webhook_secret else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(rejection) = webhooks::verify(provider, &headers, &body, secret.expose().as_bytes())
    {
        warn!(provider = provider.name(), %delivery, cause = %rejection, "webhook refused");
        return answer("unauthorized", StatusCode::UNAUTHORIZED, "unauthorized\n");
    }
    // A follower cannot sync: the sender should reach the leader (the
    // manifests' webhook Service selects it by its Pod label).
    if !context.agent.role.borrow().writes() {
        warn!(provider = provider.name(), %delivery, "webhook refused: this replica follows");
        return answer(
            "not_leader",
            StatusCode::SERVICE_UNAVAILABLE,
            "not the leader\n",
        );
    }
    let push = match webhooks::parse(provider, &headers, &body) {
        Ok(Some(push)) => push,
        Ok(None) => {
            info!(provider = provider.name(), %delivery, "webhook ignored: not a push");
            return answer("ignored", StatusCode::ACCEPTED, "accepted\n");
        }
        Err(Rejection::BadRequest(cause)) => {
            warn!(provider = provider.name(), %delivery, %cause, "webhook refused");
            return answer("bad_request", StatusCode::BAD_REQUEST, "bad request\n");
        }
        Err(Rejection::Unauthorized(_)) => {
            return answer("unauthorized", StatusCode::UNAUTHORIZED, "unauthorized\n");
        }
    };
    let Some(branch) = push.branch else {
        info!(provider = provider.name(), %delivery, "webhook ignored: not a branch push");
        return answer("ignored", StatusCode::ACCEPTED, "accepted\n");
    };
    let woken = context.agent.wake(&push.urls, &branch);
    let repository = push
        .urls
        .first()
        .map(|u| crate::notice::without_credentials(u))
        .unwrap_or_default();
    info!(provider = provider.name(), %delivery, %repository, %branch, applications = woken, "push received");
    // The same answer either way: a caller learns nothing about what is followed.
    let result = if woken > 0 {
        "accepted"
    } else {
        "unknown_repository"
    };
    answer(result, StatusCode::ACCEPTED, "accepted\n")
}

/// The status routes need `Authorization: Bearer <token>` when a token is configured.
async fn require_token(State(context): State<Context>, request: Request, next: Next) -> Response {
    if let Some(token) = &context.status_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "unauthorized\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

async fn status_page(State(context): State<Context>) -> Html<String> {
    let releases = crate::status::gather(&context.agent).await;
    Html(crate::status::page(
        &context.agent.config().context,
        &releases,
    ))
}

async fn releases(State(context): State<Context>) -> Json<Vec<crate::status::ReleaseStatus>> {
    Json(crate::status::gather(&context.agent).await)
}
