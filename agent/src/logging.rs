//! Log output: JSON lines for the agent (the sync log), plain text for
//! interactive commands. Both go to stderr so command output stays clean.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

const WATCHER_ERRORS_ONLY: &str = "kube_runtime::watcher=error";

/// The subscriber berth logs through, writing to `writer`. `filter` is a
/// tracing filter such as `info`; `BERTH_LOG` overrides it.
pub fn subscriber<W>(
    filter: &str,
    format: LogFormat,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // kube-runtime's watcher logs each failed list as a warning in Rust's
    // debug form; berth says what a watch error means in its own lines.
    let quiet_watcher = |filter: &str| format!("{filter},{WATCHER_ERRORS_ONLY}");
    let filter = std::env::var("BERTH_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(quiet_watcher(filter)).ok())
        .unwrap_or_else(|| EnvFilter::new(quiet_watcher("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_target(false).finish()),
    }
}

/// Installs the process-wide subscriber, logging to stderr.
pub fn init(filter: &str, format: LogFormat) {
    // A second init keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber(filter, format, std::io::stderr));
}
