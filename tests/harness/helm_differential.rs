//! Differential testing of berth's renderer against Helm's own engine.
//!
//! A [`Case`] is a chart's files, a values file, `--set` strings and the
//! release; [`HelmEngine`] renders it with helm-render (Helm's `pkg/engine`
//! and chart packages linked into a small Go program,
//! tests/tools/helm-render, one per Helm major), [`berth_render`] with
//! `berth_chart::render_templates`, and [`compare`] says whether the two
//! agree template by template. `cargo xtask fuzz-helm` feeds it generated
//! cases; tests/helm_differential.rs replays the cases kept in
//! tests/helm_differential/.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_chart::{ChartFiles, HelmCompat, RenderOptions};
use serde::{Deserialize, Serialize};

/// One input to both renderers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Case {
    /// The Helm major compared with (3 or 4).
    pub helm: u8,
    /// The chart's files by path ("Chart.yaml", "templates/t.yaml"); bytes,
    /// base64 in JSON (as Go encodes []byte).
    #[serde(with = "files_base64")]
    pub files: BTreeMap<String, Vec<u8>>,
    /// A values file, as `-f` gives it.
    pub values: String,
    /// `--set` strings, in order.
    pub set: Vec<String>,
    pub release: String,
    pub namespace: String,
    /// `--kube-version`; empty for Helm's default.
    pub kube_version: String,
}

mod files_base64 {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        files: &BTreeMap<String, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let encoded: BTreeMap<&String, String> = files
            .iter()
            .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
            .collect();
        serde::Serialize::serialize(&encoded, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let encoded = BTreeMap::<String, String>::deserialize(d)?;
        encoded
            .into_iter()
            .map(|(k, v)| {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(|bytes| (k, bytes))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

/// What a renderer made of a case: each template's text, or an error.
#[derive(Clone, Debug, PartialEq)]
pub enum Rendered {
    Templates(BTreeMap<String, String>),
    Failed(String),
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    templates: Option<BTreeMap<String, String>>,
    #[serde(default)]
    error: Option<String>,
}

/// How long helm-render may take over one case before it is taken for hung
/// (a template that loops for ever).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// A running helm-render: one process answers many cases.
pub struct HelmEngine {
    child: Child,
    stdin: ChildStdin,
    /// Its answers, one line each, read by a thread (so a hung case times out).
    answers: Receiver<String>,
}

impl HelmEngine {
    /// Starts the helm-render of `major` built by the test-server script.
    pub fn start(major: u8) -> Result<HelmEngine> {
        let tools = crate::tools::ensure()?;
        Self::start_binary(tools.helm_render_of(major))
    }

    pub fn start_binary(binary: &Path) -> Result<HelmEngine> {
        let mut child = Command::new(binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("{} has no pipes", binary.display());
        };
        let (send, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(HelmEngine {
            child,
            stdin,
            answers,
        })
    }

    /// Helm's engine output for `case`.
    pub fn render(&mut self, case: &Case) -> Result<Rendered> {
        let mut request = serde_json::to_vec(case)?;
        request.push(b'\n');
        self.stdin.write_all(&request)?;
        self.stdin.flush()?;
        let line = match self.answers.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                bail!("helm-render did not answer within {ANSWER_TIMEOUT:?}");
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("helm-render stopped (a Go panic outside the engine's recovery?)")
            }
        };
        let answer: Answer = serde_json::from_str(&line).context("reading helm-render's answer")?;
        Ok(match (answer.templates, answer.error) {
            (_, Some(error)) => Rendered::Failed(error),
            (Some(templates), None) => Rendered::Templates(templates),
            (None, None) => Rendered::Templates(BTreeMap::new()),
        })
    }
}

impl Drop for HelmEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// berth's engine output for `case`: values as `berth template -f` reads
/// them, then the `--set` strings, rendered under the case's Helm major.
pub fn berth_render(case: &Case) -> Rendered {
    let helm = if case.helm == 3 {
        HelmCompat::V3
    } else {
        HelmCompat::V4
    };
    let values =
        match berth_chart::values::parse_values_as("values.yaml", case.values.as_bytes(), helm) {
            Ok(v) => v,
            Err(e) => return Rendered::Failed(e.message),
        };
    for set in &case.set {
        if let Err(e) =
            berth_chart::strvals::parse_into(set, &values, berth_chart::strvals::SetKind::Typed)
        {
            return Rendered::Failed(e.to_string());
        }
    }
    let options = RenderOptions {
        release_name: case.release.clone(),
        namespace: case.namespace.clone(),
        kube_version: (!case.kube_version.is_empty()).then(|| case.kube_version.clone()),
        helm,
        // Within the engine's answer timeout: a case berth stops at its
        // limits is told apart from one it hangs on.
        limits: berth_chart::RenderLimits {
            timeout: RENDER_TIMEOUT,
            ..berth_chart::RenderLimits::default()
        },
        ..RenderOptions::default()
    };
    let chart = ChartFiles {
        files: case.files.clone(),
    };
    match berth_chart::render_templates(&chart, &values, &options) {
        Ok(templates) => Rendered::Templates(templates),
        Err(e) => Rendered::Failed(e.message),
    }
}

/// How long berth's templates may run on one case.
pub const RENDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether berth's failure is one of its render limits (Helm has none).
pub fn stopped_at_a_limit(rendered: &Rendered) -> bool {
    matches!(rendered, Rendered::Failed(message) if message.contains("render limit: "))
}

/// How two renderings of a case compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The same templates with the same text, or the same error.
    Same,
    /// Both failed, with different messages.
    ErrorText { helm: String, berth: String },
    /// One failed and the other did not.
    OneFailed { helm: String, berth: String },
    /// Both rendered; a template's text differs (or is missing).
    Output {
        template: String,
        helm: String,
        berth: String,
    },
}

impl Verdict {
    /// A one-line account, for logs and test failures.
    pub fn describe(&self) -> String {
        let short = |s: &str| {
            let s: String = s.chars().take(300).collect();
            format!("{s:?}")
        };
        match self {
            Verdict::Same => "same".into(),
            Verdict::ErrorText { helm, berth } => {
                format!("both fail, helm: {} berth: {}", short(helm), short(berth))
            }
            Verdict::OneFailed { helm, berth } => {
                format!("helm: {} berth: {}", short(helm), short(berth))
            }
            Verdict::Output {
                template,
                helm,
                berth,
            } => {
                let at = helm
                    .chars()
                    .zip(berth.chars())
                    .take_while(|(a, b)| a == b)
                    .count();
                let from = at.saturating_sub(40);
                let part = |s: &str| s.chars().skip(from).take(120).collect::<String>();
                format!(
                    "{template} differs at character {at}: helm {} berth {}",
                    short(&part(helm)),
                    short(&part(berth))
                )
            }
        }
    }
}

/// Compares Helm's and berth's renderings of one case.
pub fn compare(helm: &Rendered, berth: &Rendered) -> Verdict {
    match (helm, berth) {
        (Rendered::Failed(h), Rendered::Failed(b)) if h == b => Verdict::Same,
        (Rendered::Failed(h), Rendered::Failed(b)) => Verdict::ErrorText {
            helm: h.clone(),
            berth: b.clone(),
        },
        (Rendered::Failed(h), Rendered::Templates(_)) => Verdict::OneFailed {
            helm: h.clone(),
            berth: "(rendered)".into(),
        },
        (Rendered::Templates(_), Rendered::Failed(b)) => Verdict::OneFailed {
            helm: "(rendered)".into(),
            berth: b.clone(),
        },
        (Rendered::Templates(h), Rendered::Templates(b)) => {
            let names: std::collections::BTreeSet<&String> = h.keys().chain(b.keys()).collect();
            for name in names {
                let (x, y) = (h.get(name), b.get(name));
                if x != y {
                    return Verdict::Output {
                        template: name.clone(),
                        helm: x.cloned().unwrap_or_else(|| "(no such template)".into()),
                        berth: y.cloned().unwrap_or_else(|| "(no such template)".into()),
                    };
                }
            }
            Verdict::Same
        }
    }
}

/// Both renderings of `case` and how they compare.
pub fn check(engine: &mut HelmEngine, case: &Case) -> Result<Verdict> {
    let helm = engine.render(case)?;
    Ok(compare(&helm, &berth_render(case)))
}
