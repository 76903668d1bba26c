//! The `berth` command line as users run it: `berth` renders templates itself
//! and hands every other command to `berth-agent` next to it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const BERTH_AGENT: &str = env!("CARGO_BIN_EXE_berth-agent");
const CONTEXT: &str = "cloud=gcp,env=prod,region=europe-west1,cluster=gke-prod-1";

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo")
}

fn run(program: impl AsRef<Path>, args: &[&str]) -> Output {
    Command::new(program.as_ref())
        .args(args)
        .env_remove("BERTH_FRONT_BUILD")
        .output()
        .expect("start the command")
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).expect("utf-8 output")
}

fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).expect("utf-8 errors")
}

#[test]
fn berth_hands_every_command_but_template_to_the_agent() {
    let version = run(BERTH, &["version"]);
    assert!(version.status.success(), "{}", stderr(&version));
    assert_eq!(
        stdout(&version),
        format!(
            "berth {} (Kubernetes API 1.36)\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    let demo = demo();
    let demo = demo.to_str().expect("utf-8 path");
    let through_berth = run(BERTH, &["render", demo, "--context", CONTEXT]);
    let agent_itself = run(BERTH_AGENT, &["render", demo, "--context", CONTEXT]);
    assert!(through_berth.status.success(), "{}", stderr(&through_berth));
    assert!(stdout(&through_berth).contains("# Source: demo/templates/"));
    assert_eq!(through_berth.stdout, agent_itself.stdout);

    // Help and usage errors, of `template` too, come from the agent's whole command line.
    let help = run(BERTH, &["--help"]);
    assert!(
        stdout(&help).contains("Usage: berth [OPTIONS] <COMMAND>"),
        "{}",
        stdout(&help)
    );
    let bad_flag = run(BERTH, &["template", "--no-such-flag", demo]);
    assert_eq!(bad_flag.status.code(), Some(2));
    assert!(stderr(&bad_flag).contains("unexpected argument '--no-such-flag'"));
}

#[test]
fn berth_renders_templates_without_the_agent_and_names_what_is_missing_for_the_rest() {
    let alone = tempfile::tempdir().expect("temporary directory");
    let berth = alone.path().join("berth");
    std::fs::copy(BERTH, &berth).expect("copy berth");
    let chart = demo().join("deploy/chart");
    let chart = chart.to_str().expect("utf-8 path");

    let rendered = run(&berth, &["template", "demo", chart, "--namespace", "apps"]);
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    assert!(stdout(&rendered).starts_with("---\n# Source: demo/templates/"));
    let with_agent = run(
        BERTH_AGENT,
        &["template", "demo", chart, "--namespace", "apps"],
    );
    assert_eq!(rendered.stdout, with_agent.stdout);

    let sync = run(
        &berth,
        &["sync", "--config", "/nonexistent/berth.yaml", "--once"],
    );
    assert_eq!(sync.status.code(), Some(127));
    let expected = format!("cannot run {}", alone.path().join("berth-agent").display());
    assert!(stderr(&sync).contains(&expected), "{}", stderr(&sync));
}

#[test]
fn an_agent_refuses_a_berth_of_another_build() {
    let demo = demo();
    let refused = Command::new(BERTH_AGENT)
        .args([
            "render",
            demo.to_str().expect("utf-8 path"),
            "--context",
            CONTEXT,
        ])
        .env("BERTH_FRONT_BUILD", "0000000000000000")
        .output()
        .expect("start berth-agent");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).is_empty(),
        "rendered: {}",
        stdout(&refused)
    );
    assert!(
        stderr(&refused).contains("come from different builds"),
        "{}",
        stderr(&refused)
    );
}
