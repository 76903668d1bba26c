//! Log output: JSON lines for the agent (the sync log), plain text for
//! interactive commands. Both go to stderr so command output stays clean.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global subscriber; `filter` is a tracing filter such as `info`.
/// `BERTH_LOG` overrides it. Safe to call once per process.
pub fn init(filter: &str, format: LogFormat) {
    let filter = std::env::var("BERTH_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
