//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), for tests of web pages.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
pub use fantoccini::Locator;

use crate::process::{Lifetime, ServerProcess, free_port};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a program is on `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// chromedriver with one headless Chromium session. chromedriver runs in
/// its own process group, and dropping the browser kills the group, so the
/// Chromium it started goes with it.
pub struct Browser {
    client: Option<fantoccini::Client>,
    driver: ServerProcess,
}

impl Browser {
    /// Starts chromedriver (logging into `dir`) and a headless session with
    /// a `width`×`height` window.
    pub async fn start(dir: &Path, width: u32, height: u32) -> Result<Browser> {
        let driver_path = on_path("chromedriver")
            .context("chromedriver is not on PATH (Debian: apt-get install chromium-driver)")?;
        let chromium = on_path("chromium")
            .or_else(|| on_path("chromium-browser"))
            .context("chromium is not on PATH (Debian: apt-get install chromium)")?;
        let port = free_port()?;
        let mut command = Command::new(&driver_path);
        command.arg(format!("--port={port}")).process_group(0);
        let mut driver = ServerProcess::start(
            "chromedriver",
            command,
            &dir.join("chromedriver.log"),
            Lifetime::TiedToProcess,
        )?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            driver.check_running()?;
            if Instant::now() > deadline {
                bail!("chromedriver did not listen on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = dir.join("chromium-profile");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("starting a Chromium session")?;
        Ok(Browser {
            client: Some(client),
            driver,
        })
    }

    pub fn client(&self) -> &fantoccini::Client {
        // Set in start, taken only by close.
        self.client.as_ref().expect("browser session open")
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        self.kill_group();
    }

    fn kill_group(&mut self) {
        if let Some(pid) = self.driver.pid() {
            // SAFETY: signals the process group chromedriver leads (we set it up).
            unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
        }
        self.driver.stop();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill_group();
    }
}
