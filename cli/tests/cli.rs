//! The `berth` binary as users run it: one program with every command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const CONTEXT: &str = "cloud=gcp,env=prod,region=europe-west1,cluster=gke-prod-1";

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo")
}

fn run(args: &[&str]) -> Output {
    Command::new(BERTH)
        .args(args)
        .output()
        .expect("start berth")
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).expect("utf-8 output")
}

fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).expect("utf-8 errors")
}

#[test]
fn one_binary_has_every_command() {
    let help = run(&["--help"]);
    assert!(help.status.success(), "{}", stderr(&help));
    for command in [
        "template", "render", "sync", "run", "diff", "history", "status", "version",
    ] {
        assert!(
            stdout(&help).contains(&format!("  {command}")),
            "{command} missing from:\n{}",
            stdout(&help)
        );
    }
    let version = run(&["version"]);
    assert_eq!(
        stdout(&version),
        format!(
            "berth {} (Kubernetes API 1.36)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn render_prints_the_release_for_a_context_and_explains_its_values() {
    let demo = demo();
    let demo = demo.to_str().expect("utf-8 path");
    let rendered = run(&["render", demo, "--context", CONTEXT]);
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    let text = stdout(&rendered);
    assert!(text.starts_with("---\n# Source: demo/templates/"), "{text}");
    assert!(text.contains("kind: Deployment"), "{text}");

    let explained = run(&["render", demo, "--context", CONTEXT, "--explain"]);
    assert!(explained.status.success(), "{}", stderr(&explained));
    let explanation = stdout(&explained);
    assert!(
        explanation.lines().any(
            |line| line.starts_with("global.clusterName: \"gke-prod-1\"")
                && line.ends_with("# context")
        ),
        "{explanation}"
    );
}

#[test]
fn template_renders_a_chart_and_reports_errors_in_helms_words() {
    let chart = demo().join("deploy/chart");
    let chart = chart.to_str().expect("utf-8 path");
    let rendered = run(&["template", "demo", chart, "--namespace", "apps"]);
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    assert!(stdout(&rendered).starts_with("---\n# Source: demo/templates/"));
    assert!(stdout(&rendered).contains("namespace: apps") || stdout(&rendered).contains("apps"));

    let missing = run(&["template", "demo", "/nonexistent/chart"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).starts_with("Error: path \"/nonexistent/chart\" not found"),
        "{}",
        stderr(&missing)
    );

    let bad_flag = run(&["template", "--no-such-flag", chart]);
    assert_eq!(bad_flag.status.code(), Some(2));
    assert!(stderr(&bad_flag).contains("unexpected argument '--no-such-flag'"));
}

#[test]
fn agent_commands_name_a_missing_configuration_file() {
    let sync = run(&["sync", "--config", "/nonexistent/berth.yaml", "--once"]);
    assert_eq!(sync.status.code(), Some(1));
    assert!(
        stderr(&sync).contains("cannot read configuration /nonexistent/berth.yaml"),
        "{}",
        stderr(&sync)
    );
}
