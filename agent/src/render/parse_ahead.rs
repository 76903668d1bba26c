//! Template parsing that starts before the chart is loaded.
//!
//! A template's syntax tree depends only on its text, not on values or on
//! which subcharts end up enabled, so the template files of a chart directory
//! are parsed on a helper thread while the main thread reads values files and
//! merges values; the main thread joins the parsing when it is done with that
//! (docs/benchmarks.md). Files parsed for a subchart that turns out disabled
//! are simply not used. The chart loader takes its template texts from here,
//! so results are matched to templates by text identity, without hashing
//! the texts. Parse errors name the template as the render does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::ChartFiles;
use super::template::{self, ParseError, parse::ParsedFile, parse::Source};

pub type Parsed = Result<ParsedFile, ParseError>;

/// The template files of a chart directory (root chart and unpacked
/// subcharts, at any depth), each parsed once by whichever thread takes it.
pub struct ParseAhead {
    files: Vec<(String, Source)>,
    next: AtomicUsize,
    finished: AtomicUsize,
    abandoned: AtomicBool,
    slots: Vec<Mutex<Option<Parsed>>>,
}

impl ParseAhead {
    pub fn new(chart: &ChartFiles) -> ParseAhead {
        let files: Vec<(String, Source)> = chart
            .files
            .iter()
            .filter(|(path, _)| is_template_path(path))
            .map(|(path, data)| {
                (
                    path.clone(),
                    Source::from(crate::render::load::text_of(data)),
                )
            })
            .collect();
        let slots = files.iter().map(|_| Mutex::new(None)).collect();
        ParseAhead {
            files,
            next: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            abandoned: AtomicBool::new(false),
            slots,
        }
    }

    /// Parses files no thread has taken yet, until none is left.
    pub fn parse_some(&self) {
        while !self.abandoned.load(Ordering::Relaxed) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some((path, text)) = self.files.get(i) else {
                break;
            };
            let parsed = template::parse_file(path, text);
            if let Ok(mut slot) = self.slots[i].lock() {
                *slot = Some(parsed);
            }
            self.finished.fetch_add(1, Ordering::Release);
        }
    }

    /// The template texts, (path, text) sorted by path, for
    /// [`super::chart::load_sharing`].
    pub fn texts(&self) -> &[(String, Source)] {
        &self.files
    }

    /// Stops the parsing (the render failed before it needed the results).
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }

    /// Waits until every file is parsed, or `other_thread_alive` says the
    /// other parsing thread ended (its last file is then parsed again on
    /// demand), and hands out the results by text identity.
    pub fn results(&self, other_thread_alive: impl Fn() -> bool) -> ParsedTexts {
        self.parse_some();
        while self.finished.load(Ordering::Acquire) < self.files.len() && other_thread_alive() {
            std::thread::yield_now();
        }
        let mut by_text = HashMap::new();
        for ((_, text), slot) in self.files.iter().zip(&self.slots) {
            if let Some(parsed) = slot.lock().ok().and_then(|mut s| s.take()) {
                by_text.insert(text_id(text), parsed);
            }
        }
        ParsedTexts { by_text }
    }
}

/// A text's identity: where its shared bytes live.
fn text_id(text: &Source) -> usize {
    text.as_ptr() as usize
}

/// Parse results keyed by text identity.
pub struct ParsedTexts {
    by_text: HashMap<usize, Parsed>,
}

impl ParsedTexts {
    /// The parse of template `name` with text `text`: the one made ahead if
    /// `text` is one of [`ParseAhead::texts`], else parsed now.
    pub fn take(&mut self, name: &str, text: &Source) -> Parsed {
        match self.by_text.remove(&text_id(text)) {
            Some(Ok(parsed)) => Ok(parsed),
            // Parsed ahead under its file path, which the message may quote
            // too: parse again under the template name the render reports.
            Some(Err(_)) | None => template::parse_file(name, text),
        }
    }
}

/// Whether a chart-directory path is a template of the root chart or of an
/// unpacked subchart: `templates/...` under `(charts/<dir>/)*`.
pub fn is_template_path(path: &str) -> bool {
    let mut rest = path;
    loop {
        if rest.starts_with("templates/") {
            return true;
        }
        let Some(after) = rest.strip_prefix("charts/") else {
            return false;
        };
        let Some((_, tail)) = after.split_once('/') else {
            return false;
        };
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_paths_are_found_at_any_subchart_depth() {
        assert!(is_template_path("templates/cm.yaml"));
        assert!(is_template_path("charts/common/templates/_names.tpl"));
        assert!(is_template_path("charts/a/charts/b/templates/x.yaml"));
        assert!(!is_template_path("files/templates/x.yaml"));
        assert!(!is_template_path("charts/a.tgz"));
        assert!(!is_template_path("values.yaml"));
    }

    #[test]
    fn results_match_by_text_and_errors_take_the_render_name() {
        let mut files = std::collections::BTreeMap::new();
        files.insert(
            "templates/ok.yaml".to_string(),
            b"a: {{ .Values.a }}".to_vec(),
        );
        files.insert(
            "templates/bad.yaml".to_string(),
            b"a: {{ .Values.a ".to_vec(),
        );
        let ahead = ParseAhead::new(&ChartFiles { files });
        let text = |path: &str| {
            let texts = ahead.texts();
            let i = texts
                .binary_search_by(|(p, _)| p.as_str().cmp(path))
                .expect("listed");
            texts[i].1.clone()
        };
        let (ok, bad) = (text("templates/ok.yaml"), text("templates/bad.yaml"));
        std::thread::scope(|scope| {
            let helper = scope.spawn(|| ahead.parse_some());
            let mut parsed = ahead.results(|| !helper.is_finished());
            assert!(parsed.take("mychart/templates/ok.yaml", &ok).is_ok());
            let error = parsed
                .take("mychart/templates/bad.yaml", &bad)
                .expect_err("unclosed action");
            assert_eq!(error.name, "mychart/templates/bad.yaml");
            assert!(
                !error.to_string().contains(" templates/bad.yaml"),
                "{error}"
            );
            // A text not made here (a packed subchart's) is parsed on demand,
            // and so is an equal text from elsewhere.
            assert!(
                parsed
                    .take("mychart/templates/new.yaml", &Source::from("b: {{ 1 }}"))
                    .is_ok()
            );
            assert!(
                parsed
                    .take(
                        "other/templates/ok.yaml",
                        &Source::from("a: {{ .Values.a }}")
                    )
                    .is_ok()
            );
        });
    }
}
