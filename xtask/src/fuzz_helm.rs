//! `cargo xtask fuzz-helm`: differential testing of berth's renderer against
//! Helm's own engine (docs/helm-compatibility.md, "Differential testing").
//!
//! A grammar walker writes random charts: templates from Go's text/template
//! grammar (every action, pipelines, variables declared and assigned in
//! every kind of block, `else if`/`else with` chains, `break`/`continue`,
//! `define`/`template`/`block`, Go's number literal forms) calling Helm's and
//! sprig's deterministic functions over random values files and `--set`
//! strings. Each case is rendered by helm-render (Helm's packages) and by
//! berth; a disagreement is written to the output directory as a case file
//! that tests/helm_differential.rs can replay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth_harness::helm_differential::{
    Case, HelmEngine, Rendered, Verdict, berth_render, compare, stopped_at_a_limit,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `cargo xtask fuzz-helm`'s options.
#[derive(Debug, clap::Args)]
pub struct FuzzOptions {
    /// The Helm major to compare with: 3 or 4.
    #[arg(long, default_value_t = 4)]
    pub helm: u8,
    /// How long to run.
    #[arg(long, default_value_t = 1.0)]
    pub minutes: f64,
    /// Seed of the first case (cases are numbered from it); default: the clock.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where disagreements are written (one JSON case file each).
    #[arg(long, default_value = "target/fuzz-helm")]
    pub out: PathBuf,
    /// Print each disagreement as it is found (with --replay: both
    /// renderings in full).
    #[arg(long)]
    pub verbose: bool,
    /// Instead of generating cases, render these case files (as the run
    /// keeps them) with both engines and print how they compare.
    #[arg(long, num_args = 1..)]
    pub replay: Vec<PathBuf>,
}

/// Counts of a run, by verdict.
#[derive(Default, Debug)]
struct Tally {
    cases: u64,
    same: u64,
    both_failed_same: u64,
    error_text: u64,
    one_failed: u64,
    output: u64,
    /// berth stopped at one of its render limits (Helm has none).
    limited: u64,
    /// berth's render panicked (a bug: kept, and the run goes on).
    panicked: u64,
    /// Why cases that failed the same way failed, by the error's last words.
    same_failures: BTreeMap<String, u64>,
    /// A few examples of each kind of disagreement, by a short key.
    kinds: BTreeMap<String, (u64, u64)>,
}

pub fn run(options: &FuzzOptions) -> Result<()> {
    if !options.replay.is_empty() {
        return replay(&options.replay, options.verbose);
    }
    let seed = options.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let mut engine = HelmEngine::start(options.helm)?;
    let deadline = Instant::now() + Duration::from_secs_f64(options.minutes * 60.0);
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut n = seed;
    while Instant::now() < deadline {
        let case = generate(n, options.helm);
        tally.cases += 1;
        let by_helm = match engine.render(&case) {
            Ok(rendered) => rendered,
            Err(e) => {
                // helm-render died: keep the case and start a new one.
                save(
                    &options.out,
                    n,
                    &case,
                    &format!("helm-render failed: {e:#}"),
                )?;
                engine = HelmEngine::start(options.helm)?;
                n += 1;
                continue;
            }
        };
        let by_berth = match render_within(&case, WATCHDOG) {
            Ok(rendered) => rendered,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                tally.panicked += 1;
                save(&options.out, n, &case, "berth's render panicked")?;
                n += 1;
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Past berth's own render timeout: a hang outside the
                // templates. Keep the case and stop (the render's thread
                // cannot be stopped), with what the run found so far.
                save(&options.out, n, &case, "berth did not finish within 30s")?;
                tally.print(options, seed, n, started);
                anyhow::bail!(
                    "case {n}: berth did not finish within 30s (kept in {})",
                    options.out.display()
                );
            }
        };
        if stopped_at_a_limit(&by_berth) {
            tally.limited += 1;
            if tally.limited <= 3 {
                save(&options.out, n, &case, "berth stopped at a render limit")?;
            }
            n += 1;
            continue;
        }
        let verdict = compare(&by_helm, &by_berth);
        let both_failed = matches!(by_berth, Rendered::Failed(_));
        match &verdict {
            Verdict::Same if both_failed => {
                tally.both_failed_same += 1;
                if let Rendered::Failed(message) = &by_berth {
                    *tally.same_failures.entry(cause_of(message)).or_default() += 1;
                }
            }
            Verdict::Same => tally.same += 1,
            Verdict::ErrorText { .. } => tally.error_text += 1,
            Verdict::OneFailed { .. } => tally.one_failed += 1,
            Verdict::Output { .. } => tally.output += 1,
        }
        if verdict != Verdict::Same {
            let key = kind_of(&verdict);
            let entry = tally.kinds.entry(key).or_insert((0, n));
            entry.0 += 1;
            if entry.0 <= 3 {
                save(&options.out, n, &case, &verdict.describe())?;
            }
            if options.verbose {
                println!("case {n}: {}", verdict.describe());
            }
        }
        n += 1;
    }
    tally.print(options, seed, n, started);
    Ok(())
}

/// Renders kept cases again, each under its own Helm major, and prints
/// each verdict (with `verbose`, both renderings in full); fails if any
/// still disagree.
fn replay(files: &[PathBuf], verbose: bool) -> Result<()> {
    let mut engines: BTreeMap<u8, HelmEngine> = BTreeMap::new();
    let mut disagreeing = 0;
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let case: Case = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a case file", file.display()))?;
        let engine = match engines.entry(case.helm) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(HelmEngine::start(case.helm)?)
            }
        };
        let (by_helm, by_berth) = (engine.render(&case)?, berth_render(&case));
        let verdict = compare(&by_helm, &by_berth);
        println!("{}: {}", file.display(), verdict.describe());
        if verdict != Verdict::Same {
            disagreeing += 1;
            if verbose {
                for (who, rendered) in [("helm", &by_helm), ("berth", &by_berth)] {
                    match rendered {
                        Rendered::Failed(message) => println!("--- {who} failed: {message}"),
                        Rendered::Templates(templates) => {
                            for (name, text) in templates {
                                println!("--- {who}: {name}\n{text}");
                            }
                        }
                    }
                }
            }
        }
    }
    anyhow::ensure!(
        disagreeing == 0,
        "{disagreeing} of {} cases disagree",
        files.len()
    );
    Ok(())
}

/// berth's watchdog on one case: well past its own render timeout.
const WATCHDOG: Duration = Duration::from_secs(30);

impl Tally {
    fn print(&self, options: &FuzzOptions, seed: u64, next: u64, started: Instant) {
        println!(
            "helm {}: {} cases in {:.0}s (seeds {seed}..{next}): {} rendered the same, {} failed the same, {} failed with other words, {} failed on one side only, {} rendered differently, {} stopped by berth's render limits, {} panics in berth",
            options.helm,
            self.cases,
            started.elapsed().as_secs_f64(),
            self.same,
            self.both_failed_same,
            self.error_text,
            self.one_failed,
            self.output,
            self.limited,
            self.panicked,
        );
        for (kind, (count, first)) in &self.kinds {
            println!("  {count:>6} × {kind} (first: case {first})");
        }
        let mut causes: Vec<_> = self.same_failures.iter().collect();
        causes.sort_by(|a, b| b.1.cmp(a.1));
        println!("most common causes of the cases that failed the same way:");
        for (cause, count) in causes.into_iter().take(12) {
            println!("  {count:>6} × {cause}");
        }
        println!("cases kept in {}", options.out.display());
    }
}

/// berth's rendering of `case`; `Disconnected` if the render panicked,
/// `Timeout` if it takes longer than `limit`.
fn render_within(
    case: &Case,
    limit: Duration,
) -> Result<Rendered, std::sync::mpsc::RecvTimeoutError> {
    let (send, receive) = std::sync::mpsc::channel();
    let case = case.clone();
    std::thread::spawn(move || {
        let _ = send.send(berth_render(&case));
    });
    receive.recv_timeout(limit)
}

/// A short key grouping disagreements of one cause: the kind and the first
/// words of helm's side.
fn kind_of(verdict: &Verdict) -> String {
    // Places (file:line:col, numbers) are left out, so that one cause is
    // one group wherever it happened.
    let words = |s: &str| -> String {
        let s = s.rsplit("error calling ").next().unwrap_or(s);
        let s = s.lines().last().unwrap_or(s);
        s.split_whitespace()
            .take(5)
            .map(|w| {
                w.chars()
                    .map(|c| if c.is_ascii_digit() { 'N' } else { c })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    match verdict {
        Verdict::Same => "same".into(),
        Verdict::ErrorText { helm, .. } => format!("error text: {}", words(helm)),
        Verdict::OneFailed { helm, berth } => {
            format!("one fails: helm {} / berth {}", words(helm), words(berth))
        }
        Verdict::Output { helm, berth, .. } => {
            // Grouped by what each side printed where they part.
            let at = helm
                .chars()
                .zip(berth.chars())
                .take_while(|(a, b)| a == b)
                .count();
            let part = |s: &str| -> String {
                s.chars()
                    .skip(at)
                    .take(12)
                    .map(|c| if c.is_ascii_digit() { 'N' } else { c })
                    .collect::<String>()
            };
            format!("output: helm {:?} / berth {:?}", part(helm), part(berth))
        }
    }
}

/// The cause of an error message without its place: its last line after
/// the last location, cut to a few words.
fn cause_of(message: &str) -> String {
    let last = message.lines().last().unwrap_or(message);
    let last = last.rsplit(">: ").next().unwrap_or(last);
    let last = last.rsplit("error calling ").next().unwrap_or(last);
    last.split_whitespace()
        .take(5)
        .collect::<Vec<_>>()
        .join(" ")
}

fn save(dir: &Path, n: u64, case: &Case, why: &str) -> Result<()> {
    let path = dir.join(format!("helm{}-{n}.json", case.helm));
    let mut text = serde_json::to_string_pretty(case)?;
    text.push('\n');
    std::fs::write(&path, text)?;
    std::fs::write(path.with_extension("txt"), format!("{why}\n"))?;
    Ok(())
}

/// The case of seed `n`: a chart with one to three templates and a helper,
/// a values file and a few `--set` strings.
pub fn generate(n: u64, helm: u8) -> Case {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(n),
        scopes: vec![vec![]],
        loops: 0,
        depth: 0,
        helm,
        defined: vec!["helper".into()],
    };
    let mut files = BTreeMap::new();
    files.insert(
        "Chart.yaml".to_string(),
        b"apiVersion: v2\nname: fz\nversion: 0.1.0\nappVersion: \"1.0\"\n".to_vec(),
    );
    let values = g.values_file();
    files.insert("values.yaml".into(), g.values_file().into_bytes());
    files.insert(
        "templates/_helpers.tpl".into(),
        format!(
            "{{{{- define \"helper\" -}}}}{}{{{{- end -}}}}\n",
            g.with_fresh_scope(|g| g.nodes(3))
        )
        .into_bytes(),
    );
    files.insert(
        "files/data.txt".into(),
        g.pick(&["line1\nline2\n", "", "a=b\n", "\u{e9}t\u{e9}\n"])
            .as_bytes()
            .to_vec(),
    );
    // Bytes that are not UTF-8, for .Files.Get and GetBytes.
    files.insert("files/blob.bin".into(), vec![0xff, 0xfe, b'a', 0x00, 0x80]);
    for i in 0..g.rng.gen_range(1..=3) {
        let text = g.with_fresh_scope(|g| g.nodes(6));
        files.insert(format!("templates/t{i}.yaml"), text.into_bytes());
    }
    let set = (0..g.rng.gen_range(0..=2))
        .map(|_| g.set_string())
        .collect();
    Case {
        helm,
        files,
        values,
        set,
        release: g.pick(&["rel", "my-release", "r"]).to_string(),
        namespace: g.pick(&["default", "team-a"]).to_string(),
        kube_version: g.pick(&["", "", "1.29.3", "v1.30.0"]).to_string(),
    }
}

/// Keys the values files use, so templates can reach them.
const KEYS: &[&str] = &["a", "b", "list", "map", "n", "s", "empty", "nested"];

/// Deterministic functions with their argument counts (a negative count:
/// at least that many, more allowed). Random, time, network and crypto
/// functions are left out: their outputs cannot be compared.
const FUNCTIONS: &[(&str, i8)] = &[
    ("and", -2),
    ("or", -2),
    ("not", 1),
    ("len", 1),
    ("index", -1),
    ("slice", -1),
    ("print", -0),
    ("printf", -1),
    ("println", -0),
    ("eq", -2),
    ("ne", 2),
    ("lt", 2),
    ("le", 2),
    ("gt", 2),
    ("ge", 2),
    ("html", 1),
    ("js", 1),
    ("urlquery", 1),
    ("trim", 1),
    ("trimAll", 2),
    ("trimPrefix", 2),
    ("trimSuffix", 2),
    ("upper", 1),
    ("lower", 1),
    ("title", 1),
    ("untitle", 1),
    ("repeat", 2),
    ("substr", 3),
    ("nospace", 1),
    ("trunc", 2),
    ("abbrev", 2),
    ("initials", 1),
    ("wrap", 2),
    ("contains", 2),
    ("hasPrefix", 2),
    ("hasSuffix", 2),
    ("quote", -0),
    ("squote", -0),
    ("cat", -0),
    ("indent", 2),
    ("nindent", 2),
    ("replace", 3),
    ("plural", 3),
    ("snakecase", 1),
    ("camelcase", 1),
    ("kebabcase", 1),
    ("swapcase", 1),
    ("toString", 1),
    ("toStrings", 1),
    ("join", 2),
    ("split", 2),
    ("splitList", 2),
    ("splitn", 3),
    ("sortAlpha", 1),
    ("add", -0),
    ("add1", 1),
    ("sub", 2),
    ("div", 2),
    ("mod", 2),
    ("mul", -1),
    ("max", -1),
    ("min", -1),
    ("floor", 1),
    ("ceil", 1),
    ("round", 2),
    ("int", 1),
    ("int64", 1),
    ("float64", 1),
    ("atoi", 1),
    ("toDecimal", 1),
    ("seq", -1),
    ("until", 1),
    ("untilStep", 3),
    ("addf", -0),
    ("subf", -1),
    ("mulf", -1),
    ("divf", -1),
    ("list", -0),
    ("first", 1),
    ("rest", 1),
    ("last", 1),
    ("initial", 1),
    ("append", 2),
    ("prepend", 2),
    ("concat", -0),
    ("reverse", 1),
    ("uniq", 1),
    ("without", -1),
    ("has", 2),
    ("compact", 1),
    ("chunk", 2),
    ("dict", -0),
    ("get", 2),
    ("set", 3),
    ("unset", 2),
    ("hasKey", 2),
    ("pluck", -1),
    ("dig", -2),
    ("merge", -1),
    ("mergeOverwrite", -1),
    ("keys", -1),
    ("pick", -1),
    ("omit", -1),
    ("values", 1),
    ("deepCopy", 1),
    ("default", 2),
    ("empty", 1),
    ("coalesce", -0),
    ("ternary", 3),
    ("fromJson", 1),
    ("toJson", 1),
    ("toPrettyJson", 1),
    ("toRawJson", 1),
    ("toYaml", 1),
    ("fromYaml", 1),
    ("fromYamlArray", 1),
    ("fromJsonArray", 1),
    ("toToml", 1),
    ("kindOf", 1),
    ("kindIs", 2),
    ("typeOf", 1),
    ("typeIs", 2),
    ("deepEqual", 2),
    ("b64enc", 1),
    ("b64dec", 1),
    ("b32enc", 1),
    ("sha1sum", 1),
    ("sha256sum", 1),
    ("adler32sum", 1),
    ("regexMatch", 2),
    ("regexFind", 2),
    ("regexFindAll", 3),
    ("regexReplaceAll", 3),
    ("regexSplit", 3),
    ("regexQuoteMeta", 1),
    ("semverCompare", 2),
    ("base", 1),
    ("dir", 1),
    ("ext", 1),
    ("clean", 1),
    ("include", 2),
    ("tpl", 2),
    ("required", 2),
    ("toYamlPretty", 1),
    ("mustToJson", 1),
    ("mustFromJson", 1),
    ("duration", 1),
    ("durationRound", 1),
];

/// Helm 4's additions (a parse error under Helm 3, which the comparison
/// checks too).
const HELM4_FUNCTIONS: &[(&str, i8)] = &[
    ("mustToYaml", 1),
    ("mustToToml", 1),
    ("mustToDuration", 1),
    ("durationSeconds", 1),
    ("durationMilliseconds", 1),
    ("durationMinutes", 1),
    ("durationDays", 1),
    ("durationRoundTo", 2),
    ("durationTruncateTo", 2),
];

struct Gen {
    rng: StdRng,
    /// Variables in scope, innermost block last.
    scopes: Vec<Vec<String>>,
    /// How many `range` blocks enclose the current point.
    loops: usize,
    depth: usize,
    helm: u8,
    /// Names given to `define`.
    defined: Vec<String>,
}

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.gen_range(0..items.len())]
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.gen_range(0..100) < percent
    }

    fn with_fresh_scope(&mut self, f: impl FnOnce(&mut Gen) -> String) -> String {
        let saved = std::mem::replace(&mut self.scopes, vec![vec!["$".into()]]);
        let loops = std::mem::take(&mut self.loops);
        let out = f(self);
        self.scopes = saved;
        self.loops = loops;
        out
    }

    fn variables(&self) -> Vec<String> {
        self.scopes.iter().flatten().cloned().collect()
    }

    /// A sequence of up to `max` nodes.
    fn nodes(&mut self, max: usize) -> String {
        let count = self.rng.gen_range(1..=max);
        (0..count).map(|_| self.node()).collect()
    }

    fn node(&mut self) -> String {
        self.depth += 1;
        let deep = self.depth > 3;
        let out = match self.rng.gen_range(0..if deep { 4 } else { 12 }) {
            0 => self.text(),
            1 | 2 => format!("{}{}{}", self.open(), self.pipeline(), self.close()),
            3 => self.declaration(),
            4 => self.if_block(),
            5 => self.with_block(),
            6 => self.range_block(),
            7 => format!("{}/* a comment */{}", self.open_plain(), self.close_plain()),
            8 => self.template_call(),
            9 => self.define_block(),
            10 if self.loops > 0 => format!(
                "{}{}{}",
                self.open(),
                self.pick(&["break", "continue"]),
                self.close()
            ),
            _ => format!(
                "key{}: {}{}{}\n",
                self.rng.gen_range(0..9),
                self.open(),
                self.pipeline(),
                self.close()
            ),
        };
        self.depth -= 1;
        out
    }

    fn text(&mut self) -> String {
        self.pick(&[
            "x: 1\n",
            "\n",
            "  ",
            "---\n",
            "text ",
            "\t- item\n",
            "é ",
            "{ }",
            "a: b\n",
        ])
        .to_string()
    }

    /// `{{` with or without the trim marker.
    fn open(&mut self) -> &'static str {
        if self.chance(30) { "{{- " } else { "{{ " }
    }

    fn close(&mut self) -> &'static str {
        if self.chance(30) { " -}}" } else { " }}" }
    }

    fn open_plain(&mut self) -> &'static str {
        if self.chance(30) { "{{- " } else { "{{" }
    }

    fn close_plain(&mut self) -> &'static str {
        if self.chance(30) { " -}}" } else { "}}" }
    }

    /// `$x := pipeline` or `$x = pipeline` (an assignment to a variable in scope).
    fn declaration(&mut self) -> String {
        let known = self.variables();
        let assign = !known.is_empty() && self.chance(40);
        let pipeline = self.pipeline();
        if assign {
            let name = known[self.rng.gen_range(0..known.len())].clone();
            format!("{}{name} = {pipeline}{}", self.open(), self.close())
        } else {
            let name = format!("$v{}", self.rng.gen_range(0..5));
            self.declare(&[&name]);
            format!("{}{name} := {pipeline}{}", self.open(), self.close())
        }
    }

    /// A pipeline: an optional declaration, then commands joined by `|`.
    fn pipeline(&mut self) -> String {
        let mut out = self.command(false);
        for _ in 0..self.rng.gen_range(0..=2) {
            out.push_str(" | ");
            out.push_str(&self.command(true));
        }
        out
    }

    /// A block's pipeline, maybe declaring a variable scoped to the block.
    fn block_pipeline(&mut self) -> String {
        let pipeline = self.pipeline();
        if !self.chance(35) {
            return pipeline;
        }
        let a = format!("$b{}", self.rng.gen_range(0..3));
        self.declare(&[&a]);
        format!("{a} := {pipeline}")
    }

    fn declare(&mut self, names: &[&str]) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.extend(names.iter().map(|n| n.to_string()));
        }
    }

    fn if_block(&mut self) -> String {
        self.scopes.push(vec![]);
        let kw = if self.chance(50) { "if" } else { "with" };
        let mut out = format!(
            "{}{kw} {}{}",
            self.open(),
            self.block_pipeline(),
            self.close()
        );
        out.push_str(&self.nodes(3));
        // `else if` / `else with` chains: the first pipeline's variables stay in scope.
        for _ in 0..self.rng.gen_range(0..=2) {
            let chained = self.pick(&["else if", "else with"]);
            out.push_str(&format!(
                "{}{chained} {}{}",
                self.open(),
                self.pipeline(),
                self.close()
            ));
            out.push_str(&self.nodes(2));
        }
        if self.chance(50) {
            out.push_str(&format!("{}else{}", self.open(), self.close()));
            out.push_str(&self.nodes(2));
        }
        out.push_str(&format!("{}end{}", self.open(), self.close()));
        self.scopes.pop();
        out
    }

    fn with_block(&mut self) -> String {
        self.scopes.push(vec![]);
        let mut out = format!(
            "{}with {}{}",
            self.open(),
            self.block_pipeline(),
            self.close()
        );
        out.push_str(&self.nodes(3));
        out.push_str(&format!("{}end{}", self.open(), self.close()));
        self.scopes.pop();
        out
    }

    fn range_block(&mut self) -> String {
        self.scopes.push(vec![]);
        let over = match self.rng.gen_range(0..4) {
            0 => format!("$.Values.{}", self.pick(KEYS)),
            1 => self.small_number(),
            2 => "(list 1 \"two\" 3.5)".into(),
            _ => self.pipeline(),
        };
        let head = if self.chance(50) {
            let a = format!("$k{}", self.rng.gen_range(0..2));
            let b = format!("$e{}", self.rng.gen_range(0..2));
            self.declare(&[&a, &b]);
            format!("{a}, {b} := {over}")
        } else {
            over
        };
        let mut out = format!("{}range {head}{}", self.open(), self.close());
        self.loops += 1;
        out.push_str(&self.nodes(3));
        self.loops -= 1;
        if self.chance(30) {
            out.push_str(&format!("{}else{}", self.open(), self.close()));
            out.push_str(&self.nodes(1));
        }
        out.push_str(&format!("{}end{}", self.open(), self.close()));
        self.scopes.pop();
        out
    }

    fn template_call(&mut self) -> String {
        let name = if self.chance(85) {
            let i = self.rng.gen_range(0..self.defined.len());
            self.defined[i].clone()
        } else {
            "missing".into()
        };
        let argument = if self.chance(50) {
            ".".to_string()
        } else {
            self.operand()
        };
        match self.rng.gen_range(0..3) {
            0 => format!(
                "{}template \"{name}\" {argument}{}",
                self.open(),
                self.close()
            ),
            1 => format!(
                "{}include \"{name}\" {argument}{}",
                self.open(),
                self.close()
            ),
            _ => format!(
                "{}block \"blk{}\" {argument}{}{}{}end{}",
                self.open(),
                self.rng.gen_range(0..3),
                self.close(),
                self.with_fresh_scope(|g| g.nodes(2)),
                self.open(),
                self.close()
            ),
        }
    }

    fn define_block(&mut self) -> String {
        let name = format!("def{}", self.rng.gen_range(0..3));
        if !self.defined.contains(&name) {
            self.defined.push(name.clone());
        }
        let body = self.with_fresh_scope(|g| g.nodes(3));
        format!("{{{{- define \"{name}\" -}}}}{body}{{{{- end -}}}}")
    }

    /// A command: a function call, or (first in a pipeline) an operand.
    fn command(&mut self, piped: bool) -> String {
        if !piped && self.chance(40) {
            return self.operand();
        }
        let table: Vec<(&str, i8)> = if self.helm == 4 || self.chance(3) {
            FUNCTIONS.iter().chain(HELM4_FUNCTIONS).copied().collect()
        } else {
            FUNCTIONS.to_vec()
        };
        let (name, arity) = table[self.rng.gen_range(0..table.len())];
        let mut count = if arity < 0 {
            (-arity) as usize + self.rng.gen_range(0..=2)
        } else {
            arity as usize
        };
        if self.chance(5) {
            // A wrong number of arguments, now and then.
            count = count.saturating_sub(1) + self.rng.gen_range(0..=1) * 2;
        }
        if piped {
            count = count.saturating_sub(1);
        }
        let arguments: Vec<String> = (0..count).map(|_| self.argument(name)).collect();
        if arguments.is_empty() {
            name.to_string()
        } else {
            format!("{name} {}", arguments.join(" "))
        }
    }

    /// An argument fitting `function` more often than not.
    fn argument(&mut self, function: &str) -> String {
        // Sizes and counts stay small: a huge one makes Helm and berth loop
        // or allocate for ever alike, which tells nothing.
        if matches!(
            function,
            "until"
                | "seq"
                | "untilStep"
                | "repeat"
                | "indent"
                | "nindent"
                | "trunc"
                | "substr"
                | "abbrev"
                | "wrap"
                | "chunk"
                | "splitn"
                | "regexFindAll"
                | "regexSplit"
                | "round"
        ) {
            return self.small_number();
        }
        if self.chance(40) {
            return self.operand();
        }
        match function {
            "printf" => self
                .pick(&[
                    "\"%v\"",
                    "\"%d-%s\"",
                    "\"%q\"",
                    "\"%x %X\"",
                    "\"%5.2f|%-4d|%04d\"",
                    "\"%T\"",
                    "\"%#v\"",
                    "\"%+v %t\"",
                    "\"%e %g %G\"",
                    "\"%c %U %o %b\"",
                    "\"%s %%\"",
                ])
                .into(),
            "include" | "template" => {
                format!("\"{}\"", self.pick(&["helper", "def0", "def1", "missing"]))
            }
            "tpl" => self
                .pick(&["\"{{ .Values.a }}\"", "\"x{{ . }}y\"", "\"{{ if }}\""])
                .into(),
            "regexMatch" | "regexFind" | "regexFindAll" | "regexReplaceAll" | "regexSplit" => self
                .pick(&[
                    "\"a+\"",
                    "\"[0-9]+\"",
                    "\"^x\"",
                    "\"(a)(b)?\"",
                    "\"\\\\d\"",
                    "\"[\"",
                    "\"x{2,}\"",
                    "\"{\"",
                ])
                .into(),
            "semverCompare" => self
                .pick(&["\">=1.2.3\"", "\"~1.29\"", "\"bad\"", "\"1.0.0\""])
                .into(),
            "durationRound"
            | "duration"
            | "mustToDuration"
            | "durationSeconds"
            | "durationMilliseconds"
            | "durationMinutes"
            | "durationDays"
            | "durationRoundTo"
            | "durationTruncateTo" => self
                .pick(&[
                    "\"1h2m3.5s\"",
                    "90",
                    "\"90\"",
                    "2.5",
                    "\"-1.5h\"",
                    "\"soon\"",
                    "\"\"",
                    "nil",
                ])
                .into(),
            "fromJson" | "mustFromJson" | "fromJsonArray" => self
                .pick(&[
                    "\"{\\\"a\\\":1}\"",
                    "\"[1,2.5,null]\"",
                    "\"{\"",
                    "\"1e400\"",
                    "\"{\\\"a\\\":{\\\"b\\\":[]}}\"",
                ])
                .into(),
            "fromYaml" | "fromYamlArray" => self
                .pick(&[
                    "\"a: 1\\nb: [x]\"",
                    "\"- 1\\n- two\"",
                    "\"a: [\"",
                    "\"yes: no\"",
                    "\"0x1F: 017\"",
                ])
                .into(),
            _ => self.operand(),
        }
    }

    fn operand(&mut self) -> String {
        self.depth += 1;
        let out = match self.rng.gen_range(0..if self.depth > 4 { 6 } else { 9 }) {
            0 => self.number_literal(),
            1 => self.string_literal(),
            2 => self.pick(&["true", "false", "nil", "."]).to_string(),
            3 | 4 => self.field(),
            5 => {
                let vars = self.variables();
                if vars.is_empty() || self.chance(5) {
                    "$undeclared".into()
                } else {
                    let v = vars[self.rng.gen_range(0..vars.len())].clone();
                    if self.chance(30) {
                        format!("{v}.{}", self.pick(KEYS))
                    } else {
                        v
                    }
                }
            }
            _ => format!("({})", self.pipeline()),
        };
        self.depth -= 1;
        out
    }

    fn field(&mut self) -> String {
        match self.rng.gen_range(0..10) {
            0 => self
                .pick(&[
                    ".Release.Name",
                    ".Release.Namespace",
                    ".Release.IsInstall",
                    ".Release.Revision",
                    ".Release.Service",
                ])
                .into(),
            1 => self
                .pick(&[
                    ".Chart.Name",
                    ".Chart.Version",
                    ".Chart.AppVersion",
                    ".Chart.IsRoot",
                    ".Chart",
                    ".Chart.Missing",
                ])
                .into(),
            2 => self
                .pick(&[
                    ".Capabilities.KubeVersion.Major",
                    ".Capabilities.KubeVersion.Version",
                    ".Capabilities.KubeVersion",
                    "(.Capabilities.APIVersions.Has \"apps/v1\")",
                    ".Template.Name",
                    ".Template.BasePath",
                    ".Subcharts",
                ])
                .into(),
            3 => self
                .pick(&[
                    "(.Files.Get \"files/data.txt\")",
                    "(.Files.GetBytes \"files/blob.bin\")",
                    "(.Files.Get \"files/blob.bin\")",
                    "(.Files.Lines \"files/data.txt\")",
                    "(.Files.Glob \"files/*\")",
                    "(.Files.AsConfig)",
                    "((.Files.Glob \"files/*.txt\").AsSecrets)",
                ])
                .into(),
            4 => format!("$.Values.{}", self.pick(KEYS)),
            _ => {
                let mut path = format!(".Values.{}", self.pick(KEYS));
                if self.chance(40) {
                    path.push_str(&format!(".{}", self.pick(&["x", "y", "deep", "a"])));
                }
                path
            }
        }
    }

    fn small_number(&mut self) -> String {
        self.pick(&["0", "1", "2", "3", "-1", "0x3", "5", "2.5"])
            .to_string()
    }

    /// Go's number literal forms.
    fn number_literal(&mut self) -> String {
        self.pick(&[
            "0",
            "1",
            "42",
            "-7",
            "3",
            "0x1F",
            "0X1f",
            "0o17",
            "017",
            "0b101",
            "1_000",
            "0x_1F",
            "1.5",
            "-2.5e3",
            ".5",
            "1e-3",
            "1E6",
            "0x1p-2",
            "9223372036854775807",
            "9223372036854775808",
            "1e400",
            "'a'",
            "'\\n'",
            "'\\x41'",
            // Complex literals (`1i`) are left out: berth refuses them
            // (docs/helm-compatibility.md) and they hid what followed.
            "'\\u00e9'",
            "0.",
            "00",
            "-0",
            "+3",
            "2.0",
        ])
        .to_string()
    }

    fn string_literal(&mut self) -> String {
        self.pick(&[
            "\"\"",
            "\"x\"",
            "\"a,b,c\"",
            "\"Hello World\"",
            "\"true\"",
            "\"12\"",
            "\"1.5\"",
            "\"a.b\"",
            "`raw\\n`",
            "\"tab\\tnew\\nline\"",
            "\"\\u00e9t\\u00e9\"",
            "\"\\x41\"",
            "\"-\"",
            "\"0x1F\"",
            "\"  padded  \"",
            "\"apps/v1\"",
            "\"a\"",
            "\"b\"",
        ])
        .to_string()
    }

    /// A values file: every key of [`KEYS`] most of the time. Values are
    /// written in YAML's flow style (JSON with YAML 1.1's scalars among
    /// them), so the file parses and the templates get to run.
    fn values_file(&mut self) -> String {
        let mut out = String::new();
        for key in KEYS {
            if self.chance(80) {
                let v = self.flow_value(0);
                out.push_str(&format!("{key}: {v}\n"));
            }
        }
        if self.chance(20) {
            // A block scalar and a document of its own, now and then.
            out.push_str(self.pick(&[
                "text: |\n  two\n  lines\n",
                "folded: >-\n  a\n  b\n",
                "---\nn: 2\n",
            ]));
        }
        out
    }

    fn flow_value(&mut self, depth: usize) -> String {
        let scalar = |g: &mut Gen| {
            // Infinities and NaN fail the whole values file (JSON has none):
            // rare, so that most cases get to their templates.
            if g.chance(1) {
                return g.pick(&[".inf", "-.Inf", ".nan"]).to_string();
            }
            g.pick(&[
                "1",
                "0",
                "-3",
                "2.5",
                "1e3",
                "1.0",
                "12345678901234567890",
                "0x1F",
                "017",
                "\"text\"",
                "text",
                "\"\"",
                "true",
                "false",
                "yes",
                "no",
                "on",
                "null",
                "~",
                "'quoted'",
                "\"1.5\"",
                "2020-01-02",
                "\"a b\"",
                "\u{e9}t\u{e9}",
                "\"x,y\"",
                "-0",
                "+1",
                "0o17",
                "1_000",
            ])
            .to_string()
        };
        if depth > 2 {
            return scalar(self);
        }
        match self.rng.gen_range(0..5) {
            0 => {
                let items: Vec<String> = (0..self.rng.gen_range(0..4))
                    .map(|_| self.flow_value(depth + 1))
                    .collect();
                format!("[{}]", items.join(", "))
            }
            1 => {
                let mut seen = std::collections::BTreeSet::new();
                let entries: Vec<String> = (0..self.rng.gen_range(0..4))
                    .filter_map(|_| {
                        let key = self.pick(&["x", "y", "deep", "a", "1", "true"]);
                        let value = self.flow_value(depth + 1);
                        seen.insert(key).then(|| format!("{key}: {value}"))
                    })
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            _ => scalar(self),
        }
    }

    fn set_string(&mut self) -> String {
        format!(
            "{}={}",
            self.pick(&[
                "a",
                "b.x",
                "list[0]",
                "map.y",
                "n",
                "s",
                "nested.deep.a",
                "new"
            ]),
            self.pick(&[
                "1",
                "true",
                "null",
                "x",
                "1.5",
                "0123",
                "{a,b}",
                "",
                "12345678901234567890",
                "a\\,b"
            ])
        )
    }
}
