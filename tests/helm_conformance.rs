//! berth's renderer against the real `helm template` of both majors (helm
//! v3.21.4 and v4.3.2, built by the harness; `berth template --helm-compat 3`
//! and `4`) on the public charts in `shared/charts`, with each chart's default
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

/// The Helm majors berth follows (`--helm-compat`).
const HELM_MAJORS: [u8; 2] = [3, 4];

fn helm() -> PathBuf {
    helm_of(3)
}

/// The pinned helm of a major.
fn helm_of(major: u8) -> PathBuf {
    berth_harness::tools::ensure()
        .expect("building the pinned helm")
        .helm_of(major)
        .to_path_buf()
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
    /// The Helm major compared with.
    helm: u8,
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
        format!("{}…", s.chars().take(80).collect::<String>())
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

/// `berth template` in this process, or, with `BERTH_TEMPLATE_BIN` set, by
/// that binary (CI points it at the static musl `berth` that installs ship).
fn berth_template(major: u8, args: &[String]) -> Result<String, String> {
    let mut args = args.to_vec();
    args.push(format!("--helm-compat={major}"));
    let args = &args;
    if let Some(bin) = std::env::var_os("BERTH_TEMPLATE_BIN") {
        let out = Command::new(&bin)
            .arg("template")
            .args(args)
            .output()
            .map_err(|e| format!("running {}: {e}", Path::new(&bin).display()))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let parsed = berth::template::parse_args(args).map_err(|e| format!("{e:#}"))?;
    berth::template::template(&parsed).map_err(|e| format!("Error: {e:#}"))
}

fn compare_case(major: u8, chart: &str, values: &str, args: &[String]) -> Outcome {
    let helm = &helm_of(major);
    let outcome = |level: Level, shaped: usize, diff: String| Outcome {
        chart: chart.to_string(),
        values: values.to_string(),
        helm: major,
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
    let b = match berth_template(major, args) {
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
        "| chart | values | helm | result | fields compared by shape | first difference |\n|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            o.chart,
            o.values,
            o.helm,
            o.level.label(),
            o.shaped,
            o.first_difference.replace('|', "\\|").replace('\n', " ")
        ));
    }
    t
}

/// (chart, values, helm major) → level, from the doc's table.
fn documented() -> Vec<(String, String, u8, Level)> {
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
                cols.get(3)?.parse().ok()?,
                Level::parse(cols.get(4)?)?,
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
    let cases = cases(&dir);
    let outcomes: Vec<Outcome> = cases
        .iter()
        .flat_map(|case| HELM_MAJORS.map(|major| (case, major)))
        .map(|((chart, values, args), major)| compare_case(major, chart, values, args))
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
            .find(|(c, v, h, _)| *c == o.chart && *v == o.values && *h == o.helm)
            .map(|(_, _, _, l)| l.clone());
        match doc_level {
            None => failures.push(format!(
                "{} {} (helm {}): not in {DOC}'s table (run with BERTH_CONFORMANCE_WRITE=1)",
                o.chart, o.values, o.helm
            )),
            Some(l) if o.level > l => failures.push(format!(
                "{} {} (helm {}): regressed from {} to {}: {}",
                o.chart,
                o.values,
                o.helm,
                l.label(),
                o.level.label(),
                o.first_difference
            )),
            Some(l) if o.level < l => println!(
                "note: {} {} (helm {}) improved to {}; update {DOC} (BERTH_CONFORMANCE_WRITE=1)",
                o.chart,
                o.values,
                o.helm,
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
                "{} {}: differs from helm {}: {}",
                o.chart, o.values, o.helm, o.first_difference
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

/// Writes `files` (path → text) under `dir`.
fn write_chart(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
}

/// A feature chart exercising values, release and capabilities, subcharts,
/// CRDs, hooks and tests (written here, rendered by both helm and berth).
fn feature_charts(root: &Path, helm: &Path) -> PathBuf {
    let parent = root.join("parent");
    write_chart(
        &parent,
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: parent\nversion: 1.2.3\nappVersion: \"4.5\"\n\
                 dependencies:\n\
                 - {name: sub1, version: 0.1.0, condition: sub1.enabled}\n\
                 - {name: sub2, version: 0.1.0, alias: second, import-values: [data, {child: deep, parent: imported}]}\n\
                 - {name: sub2, version: 0.1.0, tags: [front]}\n\
                 - {name: lib, version: 0.1.0}\n",
            ),
            (
                "values.yaml",
                "replicas: 2\nflag: yes\nempty:\nnested: {a: 1, b: {c: two}, d: [1, 2]}\n\
                 global: {region: eu, n: 3}\nsub1: {enabled: false}\ntags: {front: false}\n\
                 second: {greeting: hi-from-parent}\nhex: 0x1F\noct: 0777\nbig: 1e6\nf: 1.50\n",
            ),
            (
                "values.schema.json",
                r#"{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}}"#,
            ),
            (
                "templates/values.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include \"lib.name\" . }}\ndata:\n  \
                 values: {{ toJson .Values | quote }}\n  \
                 kinds: {{ range $k, $v := .Values }}{{ $k }}={{ kindOf $v }},{{ end }}\n  \
                 printf: {{ printf \"%v|%d|%s\" .Values.nested .Values.replicas .Values.nested.b.c | quote }}\n  \
                 release: {{ printf \"%s %s %v %v %d %s\" .Release.Name .Release.Namespace .Release.IsInstall .Release.IsUpgrade .Release.Revision .Release.Service | quote }}\n  \
                 kube: {{ printf \"%s %s %s\" .Capabilities.KubeVersion.Version .Capabilities.KubeVersion.Major .Capabilities.KubeVersion.Minor | quote }}\n  \
                 apis: {{ printf \"%v %v\" (.Capabilities.APIVersions.Has \"foo/v1\") (.Capabilities.APIVersions.Has \"apps/v1\") | quote }}\n  \
                 chart: {{ printf \"%s %s %s %v\" .Chart.Name .Chart.Version .Chart.AppVersion .Chart.IsRoot | quote }}\n  \
                 template: {{ printf \"%s %s\" .Template.Name .Template.BasePath | quote }}\n",
            ),
            (
                "templates/hooks.yaml",
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: post\n  annotations:\n    \"helm.sh/hook\": post-install\n---\n\
                 apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: pre\n  annotations:\n    \"helm.sh/hook\": pre-install\n    \"helm.sh/hook-weight\": \"-5\"\n---\n\
                 apiVersion: v1\nkind: Pod\nmetadata:\n  name: test-conn\n  annotations:\n    \"helm.sh/hook\": test\n",
            ),
            (
                "templates/svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n---\n# only a comment\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n",
            ),
            (
                "templates/NOTES.txt",
                "Thanks for installing {{ .Chart.Name }}.\n",
            ),
            (
                "templates/_partial.tpl",
                "{{ define \"parent.unused\" }}x{{ end }}\n",
            ),
            (
                "crds/widget.yaml",
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n",
            ),
            (".helmignore", "*.bak\nignored/\n"),
            ("ignored/file.txt", "ignored\n"),
            ("notes.bak", "ignored\n"),
            (
                "charts/sub1/Chart.yaml",
                "apiVersion: v2\nname: sub1\nversion: 0.1.0\n",
            ),
            (
                "charts/sub1/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sub1\n",
            ),
            (
                "charts/lib/Chart.yaml",
                "apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n",
            ),
            (
                "charts/lib/templates/_helpers.tpl",
                "{{- define \"lib.name\" -}}{{ .Release.Name }}-{{ .Chart.Name }}{{- end -}}\n",
            ),
        ],
    );
    let sub2_src = root.join("src/sub2");
    write_chart(
        &sub2_src,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: sub2\nversion: 0.1.0\n"),
            (
                "values.yaml",
                "greeting: hello\nexports: {data: {exported: from-sub2}}\ndeep: {val: 42}\nglobal: {region: us, own: 1}\n",
            ),
            (
                "templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}-{{ .Release.Name }}\ndata:\n  \
                 values: {{ toJson .Values | quote }}\n  \
                 chart: {{ printf \"%s %v %s\" .Chart.Name .Chart.IsRoot .Template.BasePath | quote }}\n",
            ),
        ],
    );
    let out = Command::new(helm)
        .arg("package")
        .arg(&sub2_src)
        .arg("-d")
        .arg(parent.join("charts"))
        .output()
        .expect("helm package");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parent
}

const PROBE_TEMPLATE: &str = r##"{{- define "probe.t" }}v={{ .v }}{{ end }}
abbrev: {{ abbrev 5 "hello world" | toJson | quote }}
add: {{ add 1 2 3 | toJson | quote }}
add1: {{ add1 5 | toJson | quote }}
add1f: {{ add1f 1.5 | toJson | quote }}
addf: {{ addf 1.5 2 | toJson | quote }}
adler32sum: {{ adler32sum "hello" | toJson | quote }}
ago: {{ ago 0 | len | gt 0 | toJson | quote }}
append: {{ append (list 1) 2 | toJson | quote }}
atoi: {{ atoi "42" | toJson | quote }}
b32dec: {{ b32dec "NBSWY3DP" | toJson | quote }}
b32enc: {{ b32enc "hello" | toJson | quote }}
b64dec: {{ b64dec "aGVsbG8=" | toJson | quote }}
b64enc: {{ b64enc "hello" | toJson | quote }}
biggest: {{ biggest 1 5 3 | toJson | quote }}
camelcase: {{ camelcase "hello_world-x" | toJson | quote }}
cat: {{ cat "a" 1 nil "b" | toJson | quote }}
ceil: {{ ceil 1.2 | toJson | quote }}
chunk: {{ chunk 2 (list 1 2 3) | toJson | quote }}
coalesce: {{ coalesce "" nil 0 "x" | toJson | quote }}
compact: {{ compact (list 1 "" 0 "a" nil) | toJson | quote }}
concat: {{ concat (list 1) (list 2 3) | toJson | quote }}
contains: {{ contains "ell" "hello" | toJson | quote }}
date: {{ date "2006" 0 | toJson | quote }}
dateInZone: {{ dateInZone "2006-01-02 15:04" 86400 "Europe/Paris" | toJson | quote }}
dateModify: {{ dateModify "1h" (toDate "2006-01-02" "2020-01-01") | date "2006-01-02T15:04" | toJson | quote }}
decryptAES: {{ encryptAES "k" "v" | decryptAES "k" | toJson | quote }}
deepCopy: {{ deepCopy .Values.m | toJson | quote }}
default: {{ default "d" "" | toJson | quote }}
dict: {{ dict "a" 1 "b" (list 2) | toJson | quote }}
dig: {{ dig "a" "b" "none" (dict "a" (dict "b" "found")) | toJson | quote }}
div: {{ div 7 2 | toJson | quote }}
divf: {{ divf 7 2 | toJson | quote }}
duration: {{ duration 95 | toJson | quote }}
durationRound: {{ durationRound "2h10m" | toJson | quote }}
empty: {{ list (empty 0) (empty "") (empty (list)) (empty (dict)) (empty false) (empty 1) | toJson | quote }}
fail: {{ "skip" | toJson | quote }}
first: {{ first (list 1 2) | toJson | quote }}
float64: {{ float64 "1.5" | toJson | quote }}
floor: {{ floor 1.7 | toJson | quote }}
fromJson: {{ fromJson "{\"a\":1}" | toJson | quote }}
fromJsonArray: {{ fromJsonArray "[1,\"a\"]" | toJson | quote }}
fromYaml: {{ fromYaml "a: yes\nb: 1" | toJson | quote }}
fromYamlArray: {{ fromYamlArray "- 1\n- on" | toJson | quote }}
get: {{ get (dict "a" 1) "a" | toJson | quote }}
has: {{ has 2 (list 1 2) | toJson | quote }}
hasKey: {{ hasKey (dict "a" 1) "a" | toJson | quote }}
hasPrefix: {{ hasPrefix "he" "hello" | toJson | quote }}
hasSuffix: {{ hasSuffix "lo" "hello" | toJson | quote }}
htmlDate: {{ htmlDate 0 | toJson | quote }}
indent: {{ indent 2 "a\nb" | toJson | quote }}
initial: {{ initial (list 1 2 3) | toJson | quote }}
initials: {{ initials "hello big world" | toJson | quote }}
int: {{ int "42" | toJson | quote }}
int64: {{ int64 3.9 | toJson | quote }}
isAbs: {{ isAbs "a/b" | toJson | quote }}
join: {{ join "," (list 1 "a" nil 2.5) | toJson | quote }}
kebabcase: {{ kebabcase "HelloWorldX" | toJson | quote }}
keys: {{ keys (dict "b" 1 "a" 2) | sortAlpha | toJson | quote }}
kindIs: {{ kindIs "map" (dict) | toJson | quote }}
kindOf: {{ kindOf 1.5 | toJson | quote }}
last: {{ last (list 1 2) | toJson | quote }}
list: {{ list 1 "a" nil | toJson | quote }}
lower: {{ lower "HeLLo" | toJson | quote }}
max: {{ max 1 9 3 | toJson | quote }}
maxf: {{ maxf 1 9.5 3 | toJson | quote }}
merge: {{ merge (dict "a" 1) (dict "a" 2 "b" 3) | toJson | quote }}
mergeOverwrite: {{ mergeOverwrite (dict "a" 1) (dict "a" 2 "b" 3) | toJson | quote }}
min: {{ min 4 2 8 | toJson | quote }}
minf: {{ minf 4 2.5 8 | toJson | quote }}
mod: {{ mod 7 3 | toJson | quote }}
mul: {{ mul 2 3 4 | toJson | quote }}
mulf: {{ mulf 1.5 2 | toJson | quote }}
mustAppend: {{ mustAppend (list 1) 2 | toJson | quote }}
mustRegexFind: {{ mustRegexFind "[0-9]+" "ab123cd45" | toJson | quote }}
nindent: {{ nindent 2 "a" | toJson | quote }}
nospace: {{ nospace "a b  c" | toJson | quote }}
omit: {{ omit (dict "a" 1 "b" 2) "a" | toJson | quote }}
pick: {{ pick (dict "a" 1 "b" 2) "a" | toJson | quote }}
pluck: {{ pluck "a" (dict "a" 1) (dict "a" 2) (dict "b" 3) | toJson | quote }}
plural: {{ plural "one" "many" 2 | toJson | quote }}
prepend: {{ prepend (list 2) 1 | toJson | quote }}
quote: {{ quote "a\"b" 1 nil | toJson | quote }}
regexFind: {{ regexFind "[0-9]+" "ab123cd45" | toJson | quote }}
regexFindAll: {{ regexFindAll "[0-9]+" "ab123cd45" -1 | toJson | quote }}
regexMatch: {{ regexMatch "^a.c$" "abc" | toJson | quote }}
regexQuoteMeta: {{ regexQuoteMeta "a.b*c" | toJson | quote }}
regexReplaceAll: {{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" | toJson | quote }}
regexReplaceAllLiteral: {{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" | toJson | quote }}
regexSplit: {{ regexSplit "z+" "pizza" -1 | toJson | quote }}
repeat: {{ repeat 3 "ab" | toJson | quote }}
replace: {{ replace "a" "b" "banana" | toJson | quote }}
required: {{ required "msg" "present" | toJson | quote }}
rest: {{ rest (list 1 2 3) | toJson | quote }}
reverse: {{ reverse (list 1 2 3) | toJson | quote }}
round: {{ round 3.14159 2 | toJson | quote }}
semver: {{ (semver "1.2.3-beta.1+b5").Minor | toJson | quote }}
semverCompare: {{ semverCompare ">=1.2.0 <2.0.0" "1.5.0" | toJson | quote }}
seq: {{ seq 1 2 7 | toJson | quote }}
set: {{ set (dict "a" 1) "b" 2 | toJson | quote }}
sha1sum: {{ sha1sum "hello" | toJson | quote }}
sha256sum: {{ sha256sum "hello" | toJson | quote }}
sha512sum: {{ sha512sum "hello" | toJson | quote }}
slice: {{ slice (list 1 2 3 4) 1 3 | toJson | quote }}
snakecase: {{ snakecase "HelloWorldX" | toJson | quote }}
sortAlpha: {{ sortAlpha (list "b" "a" 10 2) | toJson | quote }}
split: {{ split "," "a,b,c" | toJson | quote }}
splitList: {{ splitList "," "a,b,c" | toJson | quote }}
splitn: {{ splitn "," 2 "a,b,c" | toJson | quote }}
squote: {{ squote "a" 1 | toJson | quote }}
sub: {{ sub 10 3 | toJson | quote }}
subf: {{ subf 10 3.5 | toJson | quote }}
substr: {{ substr 1 3 "hello" | toJson | quote }}
swapcase: {{ swapcase "Hello World" | toJson | quote }}
ternary: {{ ternary "y" "n" true | toJson | quote }}
title: {{ title "hello world" | toJson | quote }}
toDate: {{ toDate "2006-01-02" "2020-03-04" | date "2006/01/02" | toJson | quote }}
toDecimal: {{ toDecimal "0777" | toJson | quote }}
toJson: {{ toJson (dict "a" (list 1 "<b>") "c" 1.5) | toJson | quote }}
toPrettyJson: {{ toPrettyJson (dict "a" (list 1 2)) | toJson | quote }}
toRawJson: {{ toRawJson (dict "a" "<b>") | toJson | quote }}
toString: {{ toString 1.50 | toJson | quote }}
toStrings: {{ toStrings (list 1 "a" 2.5 nil) | toJson | quote }}
toToml: {{ toToml (dict "a" 1 "b" (dict "c" "d") "e" (list 1 2)) | toJson | quote }}
toYaml: {{ toYaml (dict "a" (list 1 "x") "b" (dict) "c" "yes" "d" "1.0" "e" "") | toJson | quote }}
toYamlPretty: {{ toYamlPretty (dict "a" (list 1 (dict "x" 1))) | toJson | quote }}
trim: {{ trim "  a  " | toJson | quote }}
trimAll: {{ trimAll "$" "$5.00$" | toJson | quote }}
trimPrefix: {{ trimPrefix "-" "-hello" | toJson | quote }}
trimSuffix: {{ trimSuffix "-" "hello-" | toJson | quote }}
trimall: {{ trimall "$" "$5$" | toJson | quote }}
trunc: {{ trunc 3 "hello" | toJson | quote }}
tuple: {{ tuple 1 "a" | toJson | quote }}
typeIs: {{ typeIs "string" "a" | toJson | quote }}
typeIsLike: {{ typeIsLike "float64" 1.5 | toJson | quote }}
typeOf: {{ typeOf (list) | toJson | quote }}
uniq: {{ uniq (list 1 2 1 "a" "a") | toJson | quote }}
unset: {{ unset (dict "a" 1 "b" 2) "a" | toJson | quote }}
until: {{ until 3 | toJson | quote }}
untilStep: {{ untilStep 0 10 3 | toJson | quote }}
untitle: {{ untitle "Hello World" | toJson | quote }}
upper: {{ upper "hello" | toJson | quote }}
urlJoin: {{ urlJoin (dict "scheme" "https" "host" "x.io" "path" "/p" "query" "a=1") | toJson | quote }}
urlParse: {{ urlParse "https://u:p@x.io:8080/p?q=1#f" | toJson | quote }}
urlquery: {{ urlquery "a b" | toJson | quote }}
values: {{ values (dict "a" 1 "b" 2) | sortAlpha | toJson | quote }}
without: {{ without (list 1 2 3) 2 | toJson | quote }}
wrap: {{ wrap 5 "hello world again" | toJson | quote }}
wrapWith: {{ wrapWith 5 "\t" "hello world again" | toJson | quote }}
include: {{ include "probe.t" (dict "v" 1) | toJson | quote }}
tpl: {{ tpl "{{ .Values.x }}-{{ .Release.Name }}" . | toJson | quote }}
len: {{ len .Values.list | toJson | quote }}
index: {{ index .Values.m "a" | toJson | quote }}
printf: {{ printf "%v %q %5.2f %x %o %b %e %t" .Values.m "s" 3.14159 255 8 5 1234.5678 true | toJson | quote }}
print: {{ print 1 "a" 2 | toJson | quote }}
println: {{ println 1 "a" | toJson | quote }}
html: {{ html "<a>" | toJson | quote }}
js: {{ js "a'b" | toJson | quote }}
eq: {{ eq .Values.x 1.0 | toJson | quote }}
and: {{ and 1 2 | toJson | quote }}
or: {{ or 0 3 | toJson | quote }}
not: {{ not 0 | toJson | quote }}
lt: {{ lt 1 2 | toJson | quote }}
ne: {{ ne 1 2 | toJson | quote }}
gt: {{ gt 2 1 | toJson | quote }}
ge: {{ ge 2 2 | toJson | quote }}
le: {{ le 2 2 | toJson | quote }}
lookup: {{ lookup "v1" "Pod" "ns" "name" | toJson | quote }}
getHostByName: {{ getHostByName "localhost" | toJson | quote }}
fromToml: {{ fromToml "a = 1" | toJson | quote }}
mustToJson: {{ mustToJson (list 1) | toJson | quote }}
unixEpoch: {{ unixEpoch (toDate "2006-01-02" "2020-01-01") | toJson | quote }}
uuidv4: {{ uuidv4 | len | toJson | quote }}
randAlphaNum: {{ randAlphaNum 5 | len | toJson | quote }}
shuffle: {{ shuffle "abc" | len | toJson | quote }}
randInt: {{ randInt 1 2 | toJson | quote }}
semverMajor: {{ (semver "v2.3.4").Major | toJson | quote }}
"##;

const FUNCTIONS_TEMPLATE: &str = r#"hello: {{ hello | quote }}
abbrevboth: {{ list (abbrevboth 5 10 "1234 5678 9123") (abbrevboth 0 4 "abcdefg") (abbrevboth 10 8 "abcdefghijklmno") (abbrevboth 1 3 "x") (abbrevboth 0 10 "short") | toJson | quote }}
logic: {{ list (all 1 "a" true) (all 1 "" true) (any 0 "" nil) (any 0 "x") (deepEqual (list 1 2) (list 1 2)) (deepEqual (dict "a" 1) (dict "a" 2)) | toJson | quote }}
json: {{ mustFromJson "{\"a\":[1,2]}" | toJson | quote }}
paths: {{ list (osBase "/a/b/") (osDir "a/b/") (osExt "x.tar.gz") (osClean "a//b/../c/.") (clean "") (dir "file") (base "") (osIsAbs "/x") (ext "a.b/c") | toJson | quote }}
toml: {{ fromToml "a = 1\nb = \"x\"\n[c]\nd = [1, 2]\ne = 1.5\nf = true" | toJson | quote }}
dates: {{ list (date "2006-01-02 15:04:05 Mon Jan _2 3PM -0700 MST" 1257894000) (dateInZone "2006-01-02T15:04:05Z07:00" 1257894000 "UTC") (htmlDate 0) (htmlDateInZone 1257894000 "UTC") (date_in_zone "Jan 2, 2006 at 3:04pm (MST)" 1700000000 "UTC") | toJson | quote }}
slice: {{ mustSlice (list 1 2 3 4) 1 3 | toJson | quote }}
rb: {{ randBytes 12 | len }}
goRegexSyntax: {{ list (regexMatch "\\$(?:__(?:env|file|vault))?{[^}]+}" "$__file{/x}") (regexFind "a{,2}" "a{,2}") (regexFind "x}" "x}") (regexMatch "\\Qa.b\\E" "a.b") (regexMatch "[]a]" "]") (regexMatch "[a&&b]" "&") (regexFind "\\101" "zA") (regexMatch "[a-]" "-") (regexMatch "[" "a") | toJson | quote }}
goRegexAscii: {{ list (regexFindAll "\\d+" "12 ٣٤ 5" -1) (regexFindAll "\\w+" "héllo" -1) (regexFindAll "\\bé" "é xé" -1) (regexFind "[^\\d\\s]+" "12 ab3") (regexMatch "[[:alpha:]]" "é") | toJson | quote }}
goRegexUnicode: {{ list (regexMatch "(?i)k" "K") (regexFindAll "\\pL+" "héllo wörld" -1) (regexFindAll "(?i)\\bk\\d" "xK1 K2" -1) | toJson | quote }}
goRegexEmpty: {{ list (regexFindAll "a*" "baaab" -1) (regexSplit "" "abc" -1) (regexSplit "a*" "baaab" -1) (regexSplit "," "" -1) (regexSplit "," "a,b,c" 2) (regexReplaceAll "a*" "baaab" "<$0>") (regexReplaceAll "(?P<x>b)" "abc" "${x}$1x[$1]") (regexQuoteMeta "a-b#c&d~e f.g") | toJson | quote }}
"#;

/// Error charts whose message agrees with helm's on its first line only:
/// (chart, why). Listed in docs/helm-compatibility.md.
const FIRST_LINE_ONLY: &[(&str, &str)] = &[(
    "schema-breaks-its-meta-schema",
    "the report under the first line comes from Go's jsonschema library in helm, from the jsonschema crate in berth",
)];

/// Charts whose rendering fails: (name, files).
fn error_charts() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let chart_yaml = ("Chart.yaml", "apiVersion: v2\nname: bad\nversion: 0.1.0\n");
    vec![
        (
            "syntax",
            vec![
                chart_yaml,
                ("templates/ok.yaml", "a: b\n"),
                ("templates/cm.yaml", "a: b\nc: {{ .Values.x \n"),
            ],
        ),
        (
            "unclosed-if",
            vec![
                chart_yaml,
                ("templates/cm.yaml", "a: b\n{{ if .Values.x }}\nc: d\n"),
            ],
        ),
        (
            "required",
            vec![
                chart_yaml,
                (
                    "templates/cm.yaml",
                    "a: b\nc: {{ required \"value c is required\" .Values.c }}\n",
                ),
            ],
        ),
        (
            "fail",
            vec![
                chart_yaml,
                ("templates/cm.yaml", "a: b\n\n{{ fail \"stop here\" }}\n"),
            ],
        ),
        (
            "schema",
            vec![
                chart_yaml,
                ("values.yaml", "port: http\n"),
                (
                    "values.schema.json",
                    r#"{"type": "object", "required": ["name"], "properties": {"port": {"type": "integer"}}}"#,
                ),
                ("templates/cm.yaml", "a: b\n"),
            ],
        ),
        (
            "schema-breaks-its-meta-schema",
            vec![
                chart_yaml,
                (
                    "values.schema.json",
                    r#"{"type": 5, "properties": {"a": {"minimum": "x"}}}"#,
                ),
                ("templates/cm.yaml", "a: b\n"),
            ],
        ),
        (
            "missing-subchart",
            vec![
                (
                    "Chart.yaml",
                    "apiVersion: v2\nname: bad\nversion: 0.1.0\ndependencies:\n- {name: absent, version: 1.0.0}\n",
                ),
                ("templates/cm.yaml", "a: b\n"),
            ],
        ),
        (
            "invalid-yaml",
            vec![chart_yaml, ("templates/cm.yaml", "a: b\nc: d: e\n")],
        ),
        (
            "undefined-function",
            vec![chart_yaml, ("templates/cm.yaml", "a: {{ nosuchfunc 1 }}\n")],
        ),
        (
            "env-is-not-a-helm-function",
            vec![chart_yaml, ("templates/cm.yaml", "a: {{ env \"HOME\" }}\n")],
        ),
        (
            "long-error-context",
            vec![
                chart_yaml,
                (
                    "templates/cm.yaml",
                    "a: {{ index .Values.abcdefghijklmnopqrstuvwxyz \"zzzzzzzzzzzzzzzzzzzz\" 1 }}\n",
                ),
            ],
        ),
        (
            "nil-pointer",
            vec![
                chart_yaml,
                ("templates/cm.yaml", "a: {{ .Values.x.y.z }}\n"),
            ],
        ),
        (
            // Helm 4 prints each template of the chain on lines of its own.
            "nested-include",
            vec![
                chart_yaml,
                (
                    "templates/cm.yaml",
                    "{{ define \"b\" }}{{ .x.y.z }}{{ end }}\n{{ define \"a\" }}{{ include \"b\" . }}{{ end }}\nv: {{ include \"a\" .Values }}\n",
                ),
            ],
        ),
        (
            // A function's own error keeps Go's one-line text in Helm 4 too.
            "function-error-in-include",
            vec![
                chart_yaml,
                (
                    "templates/cm.yaml",
                    "{{ define \"a\" }}{{ index . 5 }}{{ end }}\nv: {{ include \"a\" (list 1) }}\n",
                ),
            ],
        ),
        (
            // A missing template is an error of its own kind in Helm 4's chain.
            "include-of-a-missing-template",
            vec![
                chart_yaml,
                ("templates/cm.yaml", "v: {{ include \"missing\" . }}\n"),
            ],
        ),
        (
            // NOTES.txt is rendered like any template: its failure fails.
            "failing-notes",
            vec![
                chart_yaml,
                ("templates/cm.yaml", "a: 1\n"),
                (
                    "templates/NOTES.txt",
                    "{{ required \"notes need .Values.url\" .Values.url }}\n",
                ),
            ],
        ),
        (
            // Helm 4's functions are no functions to Helm 3.
            "helm-4-functions",
            vec![
                chart_yaml,
                ("templates/cm.yaml", "x: {{ mustToDuration \"soon\" }}\n"),
            ],
        ),
    ]
}

const WEBHOOKS_TEMPLATE: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: validate
webhooks: []

---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: mutate
webhooks: []
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
---
apiVersion: example.com/v1
kind: Zebra
metadata:
  name: z


"#;

/// Helm 4's functions on fixed inputs (Helm 3 fails to parse them).
const HELM4_FUNCTIONS_TEMPLATE: &str = r#"durations: {{ list (durationSeconds "1h2m3.5s") (durationSeconds 90) (durationSeconds "2.5") (durationSeconds "soon") (durationMilliseconds "1.5s") (durationMicroseconds 1) (durationNanoseconds "1us") (durationMinutes "90s") (durationHours "36h") (durationDays "36h") (durationWeeks "336h") | toJson | quote }}
rounding: {{ list (durationRoundTo "1h15m30.5s" "1m") (durationTruncateTo "1h15m30.5s" "1h") (durationRoundTo "bad" "1m") (durationRoundTo "90s" "bad") (mustToDuration 90) (mustToDuration "1.5") | toJson | quote }}
printed: {{ printf "%v %v %v %T" (mustToDuration "1h30m") (durationRoundTo "-15ns" "10ns") (mustToDuration "2h").Minutes (mustToDuration 1) | quote }}
direct: {{ mustToDuration "90m" }} {{ durationTruncateTo "1.5h" "1h" }}
yaml: {{ mustToYaml (dict "a" (list 1 "b")) | quote }}
toml: {{ mustToToml (dict "a" 1 "t" (dict "b" "c")) | quote }}
lone: {{ list (toToml "x") (mustToToml 2) | toJson | quote }}
"#;

/// Where two texts first differ: line number and a little context of each.
fn first_text_difference(h: &str, b: &str) -> String {
    let at = h
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or(h.len().min(b.len()));
    let line = h[..at].matches('\n').count() + 1;
    let mut from = at.saturating_sub(40);
    while !h.is_char_boundary(from) {
        from -= 1;
    }
    let ctx = |t: &str| t.get(from..t.len().min(at + 60)).unwrap_or("").to_string();
    format!(
        "differs at line {line}: helm {:?} berth {:?}",
        ctx(h),
        ctx(b)
    )
}

fn run_both(major: u8, args: &[String]) -> (Result<String, String>, Result<String, String>) {
    (
        helm_template(&helm_of(major), args),
        berth_template(major, args),
    )
}

/// helm's message (every line: Helm 4 spreads a template error over
/// several) without its "Use --debug" hint.
fn error_message(e: &str) -> String {
    let mut lines = e
        .lines()
        .skip_while(|l| !l.starts_with("Error:"))
        .peekable();
    if lines.peek().is_none() {
        return e.lines().next().unwrap_or("").trim().to_string();
    }
    lines
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[test]
fn features_render_like_helm() {
    let helm = helm();
    let tmp = tempfile::tempdir().expect("tempdir");
    // BERTH_FEATURE_DIR keeps the generated charts for a look after a failure.
    let kept = std::env::var_os("BERTH_FEATURE_DIR").map(PathBuf::from);
    let base = kept.as_deref().unwrap_or(tmp.path());
    let _ = std::fs::remove_dir_all(base.join("parent"));
    let parent = feature_charts(base, &helm);
    let p = parent.display().to_string();
    let values_a = base.join("a.yaml");
    let values_b = base.join("b.yaml");
    let file = base.join("file.txt");
    std::fs::write(
        &values_a,
        "nested: {b: {c: three, e: [x]}}\nreplicas: 3\nempty: {k: v}\nsub1: {enabled: true}\n",
    )
    .expect("write");
    std::fs::write(&values_b, "nested: {a: null}\nlist: [1, two]\nswitch: on\n").expect("write");
    std::fs::write(&file, "line1\nline2\n").expect("write");
    // Deterministic sprig/helm functions (dates from fixed Unix times).
    let functions = base.join("functions");
    write_chart(
        &functions,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: fx\nversion: 0.1.0\n"),
            ("templates/t.yaml", FUNCTIONS_TEMPLATE),
        ],
    );
    let f = functions.display().to_string();
    // One line per sprig/helm/Go function with fixed inputs.
    let probe = base.join("probe");
    write_chart(
        &probe,
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
            ),
            (
                "values.yaml",
                "x: 1\nlist: [3, 1, 2]\nm: {b: 2, a: 1}\ns: \"Hello World\"\n",
            ),
            ("templates/t.yaml", PROBE_TEMPLATE),
        ],
    );
    let probe = probe.display().to_string();
    // Helm 4's functions (a parse error to Helm 3).
    let helm4_functions = base.join("helm4-functions");
    write_chart(
        &helm4_functions,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: fx4\nversion: 0.1.0\n"),
            ("templates/t.yaml", HELM4_FUNCTIONS_TEMPLATE),
        ],
    );
    let helm4_functions = helm4_functions.display().to_string();
    // Kinds whose install order differs between Helm 3 and Helm 4: webhook
    // configurations (last of the kinds Helm 4 knows; among the unknown
    // kinds, by name, for Helm 3), with documents ending in blank lines.
    let webhooks = base.join("webhooks");
    write_chart(
        &webhooks,
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: hooks\nversion: 0.1.0\n",
            ),
            ("templates/a-webhooks.yaml", WEBHOOKS_TEMPLATE),
            (
                "templates/b-service.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n\n\n---   \napiVersion: example.com/v1\nkind: Aardvark\nmetadata:\n  name: a\n",
            ),
        ],
    );
    let webhooks = webhooks.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("functions", s(&[&f])),
        ("helm 4 functions", s(&[&helm4_functions])),
        ("webhook configurations", s(&[&webhooks])),
        (
            "webhook configurations, shown only",
            s(&[&webhooks, "-s", "templates/*.yaml"]),
        ),
        ("function probe", s(&[&probe])),
        ("defaults", s(&[&p])),
        ("name and namespace", s(&["myrel", &p, "-n", "team-a"])),
        ("name template", s(&[&p, "--name-template", "fixed-name"])),
        (
            "kube and api versions",
            s(&[
                &p,
                "--kube-version",
                "1.29.3",
                "--api-versions",
                "foo/v1,bar/v2",
                "-a",
                "baz/v1",
            ]),
        ),
        ("is-upgrade", s(&[&p, "--is-upgrade"])),
        (
            "values files in order",
            s(&[
                &p,
                "-f",
                &values_a.display().to_string(),
                "-f",
                &values_b.display().to_string(),
            ]),
        ),
        (
            "values files comma list",
            s(&[
                &p,
                "-f",
                &format!("{},{}", values_b.display(), values_a.display()),
            ]),
        ),
        (
            "set typed",
            s(&[
                &p,
                "--set",
                "a.b=1,c=true,d=null,e=0123,f=1.5,g={x,2},h[1].i=j,k=,replicas=5,nested.a=null,big=12345678901234567890,neg=-7,t=TRUE",
            ]),
        ),
        (
            "set escapes",
            s(&[&p, "--set", r"x\.y=1,name=a\,b", "--set", "list[0]=first"]),
        ),
        ("set-string", s(&[&p, "--set-string", "s=true,n=5,z=null"])),
        (
            "set-json",
            s(&[
                &p,
                "--set-json",
                r#"j={"x":[1,2.5,null],"y":"z"}"#,
                "--set-json",
                "k=[1,2]",
            ]),
        ),
        (
            "set-file",
            s(&[&p, "--set-file", &format!("f={}", file.display())]),
        ),
        ("set-literal", s(&[&p, "--set-literal", "lit=a,b.c=d"])),
        (
            "set order",
            s(&[
                &p,
                "--set",
                "o=set",
                "--set-string",
                "o=string",
                "--set-json",
                "o=1",
            ]),
        ),
        (
            "enable subchart and tag",
            s(&[&p, "--set", "sub1.enabled=true,tags.front=true"]),
        ),
        (
            "global from parent",
            s(&[&p, "--set", "global.region=ap,second.global.own=2"]),
        ),
        ("include-crds", s(&[&p, "--include-crds"])),
        ("skip-crds", s(&[&p, "--include-crds", "--skip-crds"])),
        ("skip-tests", s(&[&p, "--skip-tests"])),
        ("no-hooks", s(&[&p, "--no-hooks"])),
        (
            "show-only",
            s(&[
                &p,
                "--show-only",
                "templates/svc.yaml",
                "-s",
                "templates/hooks.yaml",
            ]),
        ),
        (
            "show-only subchart",
            s(&[&p, "-s", "charts/second/templates/cm.yaml"]),
        ),
        (
            "show-only missing",
            s(&[&p, "--show-only", "templates/nope.yaml"]),
        ),
        ("schema violation", s(&[&p, "--set", "replicas=0"])),
        (
            "skip-schema-validation",
            s(&[&p, "--set", "replicas=0", "--skip-schema-validation"]),
        ),
        ("bad set", s(&[&p, "--set", "novalue"])),
    ];
    let mut failures = Vec::new();
    for major in HELM_MAJORS {
        failures.extend(
            feature_failures(major, base, &cases)
                .into_iter()
                .map(|f| format!("helm {major}: {f}")),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The feature cases, the error charts and the .helmignore rule sets
/// against the helm of `major`: one line per difference.
fn feature_failures(major: u8, base: &Path, cases: &[(&str, Vec<String>)]) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let mut failures = Vec::new();
    for (name, args) in cases {
        match run_both(major, args) {
            (Ok(h), Ok(b)) if h == b => {}
            (Ok(h), Ok(b)) => failures.push(format!("{name}: {}", first_text_difference(&h, &b))),
            (Err(h), Err(b)) if error_message(&h) == error_message(&b) => {}
            (h, b) => failures.push(format!(
                "{name}: helm {:?}\n  berth {:?}",
                h.map_err(|e| error_message(&e)).map(|_| "ok"),
                b.map_err(|e| error_message(&e)).map(|_| "ok")
            )),
        }
    }
    for (name, files) in error_charts() {
        let dir = base.join(name);
        write_chart(&dir, &files);
        let args = s(&[&dir.display().to_string()]);
        // Where the detail lines are known to differ, the first line must agree.
        let message = |e: &str| match FIRST_LINE_ONLY.iter().any(|(chart, _)| *chart == name) {
            true => error_message(e).lines().next().unwrap_or("").to_string(),
            false => error_message(e),
        };
        match run_both(major, &args) {
            (Err(h), Err(b)) if message(&h) == message(&b) => {}
            (h, b) => failures.push(format!(
                "error chart {name}: helm {:?}\n  berth {:?}",
                h.map_err(|e| error_message(&e)).map(|_| "ok"),
                b.map_err(|e| error_message(&e)).map(|_| "ok")
            )),
        }
    }
    // .helmignore rules: which files a chart directory keeps (negation included).
    for (i, rules) in [
        "*.txt\n!keep.txt\n",
        "/top.txt\n*/temp*\n",
        "files/\n",
        "sub/\n",
        "[ab].*\n",
        "a/**/b\n",
    ]
    .iter()
    .enumerate()
    {
        let dir = base.join(format!("helmignore-{i}"));
        let _ = std::fs::remove_dir_all(&dir);
        let mut files: Vec<(&str, &str)> = vec![
            ("Chart.yaml", "apiVersion: v2\nname: hi\nversion: 0.1.0\n"),
            (
                "templates/t.yaml",
                "files: {{ range $p, $_ := .Files }}{{ $p }},{{ end }}\n",
            ),
            (".helmignore", rules),
        ];
        for f in [
            "a.txt",
            "keep.txt",
            "b.yaml",
            "top.txt",
            "files/c.txt",
            "files/temp1",
            "files/sub/d.md",
            ".hidden",
            "templates/.x.yaml",
        ] {
            files.push((f, "x\n"));
        }
        write_chart(&dir, &files);
        let args = s(&[&dir.display().to_string()]);
        match run_both(major, &args) {
            (Ok(h), Ok(b)) if h == b => {}
            (Err(h), Err(b)) if error_message(&h) == error_message(&b) => {}
            (h, b) => failures.push(format!(".helmignore {rules:?}: helm {h:?}\n  berth {b:?}")),
        }
    }
    failures
}

/// Runs `openssl` with `input` on its stdin: (succeeded, stdout, stderr).
fn run_openssl(args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running openssl (apt-get install openssl)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writing to openssl");
    let out = child.wait_with_output().expect("openssl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `openssl` reads from a generated certificate or key: the facts a user
/// checks, none of them random.
fn openssl(args: &[&str], input: &str) -> String {
    let (ok, stdout, stderr) = run_openssl(args, input);
    assert!(ok, "openssl {args:?}: {stderr}");
    stdout
}

/// Facts about the TLS material one render produced, checked with openssl.
fn tls_facts(rendered: &str, dir: &Path) -> Vec<String> {
    let doc: serde_yaml::Value = documents(rendered)
        .into_iter()
        .map(|(_, v, _)| v)
        .find(|v| v["kind"] == "Secret")
        .expect("the Secret document");
    let data = |k: &str| doc["stringData"][k].as_str().expect(k).to_string();
    let mut facts = Vec::new();
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, data("ca.crt")).expect("write ca");
    let ca = ca.display().to_string();
    let (verifies, _, _) = run_openssl(&["verify", "-CAfile", &ca], &data("tls.crt"));
    facts.push(format!(
        "signed certificate verifies against the CA: {verifies}"
    ));
    // (certificate, its key, the days the template asked for)
    for (cert, key, days) in [
        ("ca.crt", "ca.key", 365),
        ("tls.crt", "tls.key", 90),
        ("self.crt", "self.key", 30),
    ] {
        let cert_text = data(cert);
        let key_text = data(key);
        let cert_modulus = openssl(&["x509", "-noout", "-modulus"], &cert_text);
        let key_modulus = openssl(&["rsa", "-noout", "-modulus"], &key_text);
        facts.push(format!(
            "{cert} matches {key}: {}",
            cert_modulus == key_modulus
        ));
        facts.push(format!(
            "{key}: {}",
            openssl(&["rsa", "-noout", "-check"], &key_text)
        ));
        let text = openssl(&["x509", "-noout", "-text"], &cert_text);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if [
                "Version:",
                "Public-Key:",
                "Subject:",
                "Issuer:",
                "Signature Algorithm:",
            ]
            .iter()
            .any(|p| line.starts_with(p))
            {
                facts.push(format!("{cert}: {line}"));
            }
            // Each extension with its value, except the key identifiers (random).
            if line.starts_with("X509v3 ") && *line != "X509v3 extensions:" {
                let value = if line.contains("Key Identifier") {
                    ""
                } else {
                    lines.get(i + 1).copied().unwrap_or_default()
                };
                facts.push(format!("{cert}: {line} {value}"));
            }
        }
        // Extensions in a fixed order: their order carries no meaning, and rcgen
        // writes them in another order than Go (docs/helm-compatibility.md).
        let first = facts
            .iter()
            .position(|f| f.starts_with(&format!("{cert}: X509v3 ")))
            .unwrap_or(facts.len());
        facts[first..].sort();
        // Valid for the days asked: not expired a day before, expired a day after.
        let expires_within = |seconds: i64| {
            let seconds = seconds.to_string();
            !run_openssl(&["x509", "-noout", "-checkend", &seconds], &cert_text).0
        };
        facts.push(format!(
            "{cert}: valid {days} days: {}",
            !expires_within(days * 86_400 - 86_400) && expires_within(days * 86_400 + 86_400)
        ));
    }
    let rsa = data("rsa.key");
    facts.push(format!(
        "rsa.key: {}",
        openssl(&["rsa", "-noout", "-text"], &rsa)
            .lines()
            .next()
            .unwrap_or_default()
    ));
    facts.push(format!(
        "rsa.key: {}",
        openssl(&["rsa", "-noout", "-check"], &rsa)
    ));
    facts
}

/// genCA, genSignedCert, genSelfSignedCert and genPrivateKey make fresh keys,
/// so their output can only be compared with helm's through what openssl
/// reads from it: the chain verifies, each certificate matches its key, and
/// key sizes, subjects, SANs and signature algorithms are helm's.
#[test]
fn generated_certificates_check_out_like_helms() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let chart = tmp.path().join("tls");
    write_chart(
        &chart,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: tls\nversion: 1.0.0\n"),
            (
                "templates/secret.yaml",
                "{{- $ca := genCA \"berth-ca\" 365 }}\n\
                 {{- $cert := genSignedCert \"web.example\" (list \"10.0.0.7\") (list \"web.example\" \"web\") 90 $ca }}\n\
                 {{- $self := genSelfSignedCert \"self.example\" nil (list \"self.example\") 30 }}\n\
                 apiVersion: v1\n\
                 kind: Secret\n\
                 metadata:\n  name: tls\n\
                 stringData:\n\
                 \x20 ca.crt: {{ $ca.Cert | quote }}\n\
                 \x20 ca.key: {{ $ca.Key | quote }}\n\
                 \x20 tls.crt: {{ $cert.Cert | quote }}\n\
                 \x20 tls.key: {{ $cert.Key | quote }}\n\
                 \x20 self.crt: {{ $self.Cert | quote }}\n\
                 \x20 self.key: {{ $self.Key | quote }}\n\
                 \x20 rsa.key: {{ genPrivateKey \"rsa\" | quote }}\n",
            ),
        ],
    );
    let args = vec!["tls".to_string(), chart.display().to_string()];
    let (by_helm, by_berth) = run_both(4, &args);
    let helm_dir = tmp.path().join("helm");
    let berth_dir = tmp.path().join("berth");
    std::fs::create_dir_all(&helm_dir).expect("mkdir");
    std::fs::create_dir_all(&berth_dir).expect("mkdir");
    let helm_facts = tls_facts(&by_helm.expect("helm renders"), &helm_dir);
    let berth_facts = tls_facts(&by_berth.expect("berth renders"), &berth_dir);
    assert!(
        berth_facts.contains(&"signed certificate verifies against the CA: true".to_string()),
        "{berth_facts:#?}"
    );
    assert!(
        berth_facts.contains(&"rsa.key: Private-Key: (4096 bit, 2 primes)".to_string()),
        "{berth_facts:#?}"
    );
    assert_eq!(berth_facts, helm_facts);
}
