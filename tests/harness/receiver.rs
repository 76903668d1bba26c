//! A local HTTP receiver that records every request it gets: the far end of
//! notification sinks (a Slack incoming webhook, a generic JSON webhook).
//! It can be stopped and started again on the same port, to play a sink
//! that is down for a while.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One request received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The receiver; stopped on drop.
pub struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

async fn record(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    if let Ok(mut received) = received.lock() {
        received.push(Received {
            path: uri.path().to_string(),
            headers,
            body: body.to_vec(),
        });
    }
    "ok"
}

impl Receiver {
    /// Starts on a free loopback port.
    pub async fn start() -> Result<Receiver> {
        let mut receiver = Receiver {
            port: 0,
            received: Arc::default(),
            running: None,
        };
        receiver.resume().await?;
        Ok(receiver)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Stops listening: connections are refused until [`Receiver::resume`].
    pub async fn pause(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Listens again (on the same port after a pause).
    pub async fn resume(&mut self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .with_context(|| format!("binding the receiver on port {}", self.port))?;
        self.port = listener.local_addr()?.port();
        let router = Router::new()
            .fallback(record)
            .with_state(Arc::clone(&self.received));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        self.running = Some((stop, task));
        Ok(())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            task.abort();
        }
    }
}
