//! berth's renderer against the real `helm template` (v3.22.0, built by the
//! harness) on the public charts in `shared/charts`, with each chart's default
//! values and every `ci/*.yaml` / `values-*.yaml` value set.
//!
//! Each case compares the parsed documents (same order, same `# Source:`) and
//! the bytes. Fields that come from random or time functions are found by
//! rendering with helm twice: a field that differs between two helm runs is
//! compared by shape (same length and alphabet, or PEM with the same block
//! types); every other field must be equal.
//!
//! The table this prints is kept in docs/helm-compatibility.md. The test fails
//! when a case is worse than documented there, or differs without being listed
//! in [`KNOWN_DIFFERENCES`]. `BERTH_CONFORMANCE_WRITE=1` rewrites the doc's table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

/// Cases allowed to differ: (chart, values, reason). Empty: every case matches.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

const DOC: &str = "docs/helm-compatibility.md";
const TABLE_START: &str = "<!-- conformance-table:start -->";
const TABLE_END: &str = "<!-- conformance-table:end -->";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn charts_dir() -> PathBuf {
    // CI clones the repository with shared/ beside the clone root.
    repo_root().join("../shared/charts")
}

fn helm() -> PathBuf {
    berth_harness::tools::ensure()
        .expect("building the pinned helm")
        .helm
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Bytes,
    Documents,
    Differs,
}

impl Level {
    fn label(&self) -> &'static str {
        match self {
            Level::Bytes => "bytes identical",
            Level::Documents => "documents identical",
            Level::Differs => "differs",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        match s.trim() {
            "bytes identical" => Some(Level::Bytes),
            "documents identical" => Some(Level::Documents),
            "differs" => Some(Level::Differs),
            _ => None,
        }
    }
}

struct Outcome {
    chart: String,
    values: String,
    level: Level,
    /// Fields compared by shape (random in helm's own output).
    shaped: usize,
    first_difference: String,
}

/// (source, parsed document, raw text) for each `---\n# Source: ` block.
fn documents(text: &str) -> Vec<(String, serde_yaml::Value, String)> {
    text.split("---\n# Source: ")
        .skip(1)
        .map(|block| {
            let (source, body) = block.split_once('\n').unwrap_or((block, ""));
            let parsed = serde_yaml::from_str(body)
                .unwrap_or_else(|_| serde_yaml::Value::String(body.to_string()));
            (source.to_string(), parsed, body.to_string())
        })
        .collect()
}

type Path_ = Vec<String>;

/// Paths of leaves that differ between two renders (helm's random fields).
fn differing_leaves(
    a: &serde_yaml::Value,
    b: &serde_yaml::Value,
    at: &mut Path_,
    out: &mut BTreeSet<Path_>,
) {
    use serde_yaml::Value as Y;
    match (a, b) {
        (Y::Mapping(x), Y::Mapping(y)) => {
            for (k, va) in x {
                if let Some(vb) = y.get(k) {
                    at.push(key(k));
                    differing_leaves(va, vb, at, out);
                    at.pop();
                }
            }
        }
        (Y::Sequence(x), Y::Sequence(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                at.push(format!("[{i}]"));
                differing_leaves(va, vb, at, out);
                at.pop();
            }
        }
        _ => {
            if a != b {
                out.insert(at.clone());
            }
        }
    }
}

fn key(k: &serde_yaml::Value) -> String {
    match k {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn pem_types(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("-----BEGIN "))
        .map(|l| l.trim_end_matches('-').to_string())
        .collect()
}

/// The PEM block types in a value (directly, or base64-encoded as in Secrets).
fn pem_shape(s: &str) -> Option<Vec<String>> {
    if s.contains("-----BEGIN ") {
        return Some(pem_types(s));
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.contains("-----BEGIN ").then(|| pem_types(&text))
}

fn alphabet(s: &str) -> u8 {
    if s.chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        0
    } else if s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        1
    } else if s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
    {
        2
    } else if s.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        3
    } else {
        4
    }
}

/// Same shape: both PEM with the same block types, or same length and alphabet.
fn same_shape(a: &serde_yaml::Value, b: &serde_yaml::Value) -> bool {
    let (Some(x), Some(y)) = (a.as_str(), b.as_str()) else {
        return a == b;
    };
    if let (Some(p), Some(q)) = (pem_shape(x), pem_shape(y)) {
        return p == q && !p.is_empty();
    }
    x.len() == y.len() && alphabet(x).max(alphabet(y)) < 4 && {
        // A random string can fall in a smaller alphabet by chance (a hex-looking
        // name); accept neighbours, never printable-vs-binary.
        alphabet(x).abs_diff(alphabet(y)) <= 1
    }
}

fn show(v: &serde_yaml::Value) -> String {
    let s = serde_yaml::to_string(v).unwrap_or_default();
    let s = s.trim();
    if s.len() > 80 {
        format!("{}…", &s[..s.floor_char_boundary(80)])
    } else {
        s.to_string()
    }
}

/// First difference of `berth` from `helm`, comparing `random` paths by shape.
fn compare_value(
    helm: &serde_yaml::Value,
    berth: &serde_yaml::Value,
    random: &BTreeSet<Path_>,
    at: &mut Path_,
    shaped: &mut usize,
) -> Option<String> {
    use serde_yaml::Value as Y;
    if random.contains(at) {
        *shaped += 1;
        return (!same_shape(helm, berth)).then(|| {
            format!(
                "{}: random field of another shape: helm {} berth {}",
                at.join("."),
                show(helm),
                show(berth)
            )
        });
    }
    match (helm, berth) {
        (Y::Mapping(x), Y::Mapping(y)) => {
            for (k, vx) in x {
                at.push(key(k));
                let r = match y.get(k) {
                    Some(vy) => compare_value(vx, vy, random, at, shaped),
                    None => Some(format!("{}: missing in berth", at.join("."))),
                };
                at.pop();
                if r.is_some() {
                    return r;
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{}.{}: only in berth", at.join("."), key(k)))
        }
        (Y::Sequence(x), Y::Sequence(y)) => {
            if x.len() != y.len() {
                return Some(format!(
                    "{}: {} items in helm, {} in berth",
                    at.join("."),
                    x.len(),
                    y.len()
                ));
            }
            for (i, (vx, vy)) in x.iter().zip(y).enumerate() {
                at.push(format!("[{i}]"));
                let r = compare_value(vx, vy, random, at, shaped);
                at.pop();
                if r.is_some() {
                    return r;
                }
            }
            None
        }
        _ => (helm != berth).then(|| {
            format!(
                "{}: helm {} berth {}",
                at.join("."),
                show(helm),
                show(berth)
            )
        }),
    }
}

/// Masks the values of random fields so that the rest of the bytes can be compared.
fn mask(
    text: &str,
    docs: &[(String, serde_yaml::Value, String)],
    random: &[BTreeSet<Path_>],
) -> String {
    let mut out = text.to_string();
    for ((_, doc, _), paths) in docs.iter().zip(random) {
        for p in paths {
            let mut cur = Some(doc);
            for part in p {
                cur = cur.and_then(|v| {
                    match part.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                        Some(i) => i.parse::<usize>().ok().and_then(|i| v.get(i)),
                        None => v.get(part.as_str()),
                    }
                });
            }
            if let Some(s) = cur.and_then(|v| v.as_str())
                && !s.is_empty()
            {
                out = out.replace(s, "<random>");
            }
        }
    }
    out
}

fn helm_template(helm: &Path, args: &[String]) -> Result<String, String> {
    let out = Command::new(helm)
        .arg("template")
        .args(args)
        .output()
        .map_err(|e| format!("running helm: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn berth_template(args: &[String]) -> Result<String, String> {
    let parsed = berth::template_cmd::parse_args(args).map_err(|e| format!("{e:#}"))?;
    berth::template_cmd::template(&parsed).map_err(|e| format!("Error: {e:#}"))
}

fn compare_case(helm: &Path, chart: &str, values: &str, args: &[String]) -> Outcome {
    let outcome = |level: Level, shaped: usize, diff: String| Outcome {
        chart: chart.to_string(),
        values: values.to_string(),
        level,
        shaped,
        first_difference: diff,
    };
    let (h1, h2) = match (helm_template(helm, args), helm_template(helm, args)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return outcome(Level::Differs, 0, format!("helm failed: {}", e.trim()));
        }
    };
    let b = match berth_template(args) {
        Ok(b) => b,
        Err(e) => return outcome(Level::Differs, 0, format!("berth failed: {}", e.trim())),
    };
    let (d1, d2, db) = (documents(&h1), documents(&h2), documents(&b));
    let mut random: Vec<BTreeSet<Path_>> = Vec::new();
    for (i, (_, x, _)) in d1.iter().enumerate() {
        let mut set = BTreeSet::new();
        if let Some((_, y, _)) = d2.get(i) {
            differing_leaves(x, y, &mut vec![], &mut set);
        }
        random.push(set);
    }
    let mut shaped = 0;
    if d1.len() != db.len() {
        return outcome(
            Level::Differs,
            0,
            format!("{} documents from helm, {} from berth", d1.len(), db.len()),
        );
    }
    for (i, ((sh, vh, _), (sb, vb, _))) in d1.iter().zip(&db).enumerate() {
        if sh != sb {
            return outcome(
                Level::Differs,
                shaped,
                format!("document {}: # Source: {sh} (helm) vs {sb} (berth)", i + 1),
            );
        }
        if let Some(d) = compare_value(vh, vb, &random[i], &mut vec![], &mut shaped) {
            return outcome(Level::Differs, shaped, format!("{sh}: {d}"));
        }
    }
    if mask(&h1, &d1, &random) == mask(&b, &db, &random) {
        return outcome(Level::Bytes, shaped, String::new());
    }
    let (mh, mb) = (mask(&h1, &d1, &random), mask(&b, &db, &random));
    let line = mh
        .lines()
        .zip(mb.lines())
        .position(|(x, y)| x != y)
        .map(|n| {
            format!(
                "line {}: {:?} vs {:?}",
                n + 1,
                mh.lines().nth(n),
                mb.lines().nth(n)
            )
        })
        .unwrap_or_else(|| "trailing bytes".into());
    outcome(Level::Documents, shaped, line)
}

fn cases(dir: &Path) -> Vec<(String, String, Vec<String>)> {
    let mut charts: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("reading charts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Chart.yaml").is_file())
        .collect();
    charts.sort();
    let mut out = Vec::new();
    for chart in charts {
        let name = chart
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = chart.display().to_string();
        out.push((name.clone(), "(defaults)".to_string(), vec![path.clone()]));
        let mut files: Vec<PathBuf> = std::fs::read_dir(chart.join("ci"))
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.extend(
            std::fs::read_dir(&chart)
                .expect("reading chart")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("values-"))
                }),
        );
        files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(&chart)
                .map(|r| r.display().to_string())
                .unwrap_or_default();
            out.push((
                name.clone(),
                rel,
                vec![path.clone(), "-f".into(), f.display().to_string()],
            ));
        }
    }
    out
}

fn table(outcomes: &[Outcome]) -> String {
    let mut t = String::from(
        "| chart | values | result | fields compared by shape | first difference |\n|---|---|---|---|---|\n",
    );
    for o in outcomes {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            o.chart,
            o.values,
            o.level.label(),
            o.shaped,
            o.first_difference.replace('|', "\\|").replace('\n', " ")
        ));
    }
    t
}

/// (chart, values) → level, from the doc's table.
fn documented() -> Vec<(String, String, Level)> {
    let doc = std::fs::read_to_string(repo_root().join(DOC)).unwrap_or_default();
    let Some((_, rest)) = doc.split_once(TABLE_START) else {
        return vec![];
    };
    let body = rest.split_once(TABLE_END).map(|(b, _)| b).unwrap_or("");
    body.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| chart "))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            Some((
                cols.get(1)?.to_string(),
                cols.get(2)?.to_string(),
                Level::parse(cols.get(3)?)?,
            ))
        })
        .collect()
}

#[test]
fn corpus_renders_like_helm() {
    let dir = charts_dir();
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED: no chart corpus at {} (CI places shared/ beside the clone)",
            dir.display()
        );
        return;
    }
    let helm = helm();
    let outcomes: Vec<Outcome> = cases(&dir)
        .into_iter()
        .map(|(chart, values, args)| compare_case(&helm, &chart, &values, &args))
        .collect();
    let t = table(&outcomes);
    println!("{t}");
    if std::env::var_os("BERTH_CONFORMANCE_WRITE").is_some() {
        let path = repo_root().join(DOC);
        let doc = std::fs::read_to_string(&path).expect("reading the doc");
        let (head, rest) = doc.split_once(TABLE_START).expect("table start marker");
        let (_, tail) = rest.split_once(TABLE_END).expect("table end marker");
        std::fs::write(&path, format!("{head}{TABLE_START}\n{t}{TABLE_END}{tail}"))
            .expect("writing the doc");
    }
    let documented = documented();
    let mut failures = Vec::new();
    for o in &outcomes {
        let doc_level = documented
            .iter()
            .find(|(c, v, _)| *c == o.chart && *v == o.values)
            .map(|(_, _, l)| l.clone());
        match doc_level {
            None => failures.push(format!(
                "{} {}: not in {DOC}'s table (run with BERTH_CONFORMANCE_WRITE=1)",
                o.chart, o.values
            )),
            Some(l) if o.level > l => failures.push(format!(
                "{} {}: regressed from {} to {}: {}",
                o.chart,
                o.values,
                l.label(),
                o.level.label(),
                o.first_difference
            )),
            Some(l) if o.level < l => println!(
                "note: {} {} improved to {}; update {DOC} (BERTH_CONFORMANCE_WRITE=1)",
                o.chart,
                o.values,
                o.level.label()
            ),
            _ => {}
        }
        if o.level == Level::Differs
            && !KNOWN_DIFFERENCES
                .iter()
                .any(|(c, v, _)| *c == o.chart && *v == o.values)
        {
            failures.push(format!(
                "{} {}: differs from helm: {}",
                o.chart, o.values, o.first_difference
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The comparison itself: a changed ordinary field is a difference; a random
/// field (one that differs between two helm runs) passes only with the same shape.
#[test]
fn comparison_tells_random_fields_from_real_differences() {
    let doc = |name: &str, pass: &str, cert: &str| {
        format!(
            "---\n# Source: c/templates/s.yaml\nkind: Secret\nmetadata:\n  name: {name}\ndata:\n  pass: {pass}\n  crt: {cert}\n"
        )
    };
    let pem = |body: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!(
            "-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
        ))
    };
    let h1 = doc("a", "abcd1234", &pem("AAAA"));
    let h2 = doc("a", "zyxw9876", &pem("BBBBBB"));
    let (d1, d2) = (documents(&h1), documents(&h2));
    let mut random = BTreeSet::new();
    differing_leaves(&d1[0].1, &d2[0].1, &mut vec![], &mut random);
    assert_eq!(random.len(), 2, "{random:?}");
    let check = |berth: &str| {
        let db = documents(berth);
        compare_value(&d1[0].1, &db[0].1, &random, &mut vec![], &mut 0)
    };
    assert_eq!(check(&doc("a", "qqqq5555", &pem("CCC"))), None);
    assert!(
        check(&doc("b", "qqqq5555", &pem("CCC"))).is_some(),
        "name changed"
    );
    assert!(
        check(&doc("a", "short", &pem("CCC"))).is_some(),
        "password shape"
    );
    assert!(
        check(&doc("a", "qqqq5555", "bm90IGEgY2VydA==")).is_some(),
        "not a PEM"
    );
    let masked = |t: &str| mask(t, &documents(t), std::slice::from_ref(&random));
    assert_eq!(masked(&h1), masked(&doc("a", "qqqq5555", &pem("CCC"))));
}
