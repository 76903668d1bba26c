//! `berth` is two binaries. `berth` runs `berth template` itself and hands
//! every other command line to `berth-agent`, installed next to it, which holds
//! the whole agent (Kubernetes client, git, async runtime, TLS). `berth
//! template` is a short-lived process run in pipelines: without the agent's
//! libraries linked in, each start is ~0.3–1 ms cheaper (fewer relocations and
//! library constructors; docs/benchmarks.md). The agent's commands are
//! long-running or talk to servers, so one `exec` more is nothing to them.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;

/// The binary that runs every command but `template`.
pub const AGENT_BINARY: &str = "berth-agent";

/// Identity of this build, shared by `berth` and `berth-agent` (build.rs).
pub const BUILD_ID: &str = env!("BERTH_BUILD_ID");

/// Set by `berth` for the agent it starts: the build `berth` comes from.
pub const FRONT_BUILD_ENV: &str = "BERTH_FRONT_BUILD";

/// Errors of the hand-over from `berth` to `berth-agent`.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("cannot find berth's own path to locate {AGENT_BINARY}: {0}")]
    OwnPath(#[source] std::io::Error),
    #[error(
        "cannot run {path} ({cause}); berth runs `template` itself and every other command through {AGENT_BINARY}, installed next to it (with cargo: cargo build -p berth)",
        path = .path.display()
    )]
    Exec {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error(
        "{AGENT_BINARY} (build {agent}) and the berth that started it (build {front}) come from different builds; rebuild or reinstall both (cargo build -p berth)"
    )]
    BuildMismatch { front: String, agent: String },
}

/// Where `berth-agent` is: next to the running `berth`, links resolved.
pub fn agent_path() -> Result<PathBuf, FrontError> {
    let own = std::env::current_exe().map_err(FrontError::OwnPath)?;
    Ok(own.with_file_name(AGENT_BINARY))
}

/// Replaces this process with `berth-agent` and the same arguments (same
/// process id, so signals and container init behave as if `berth` ran it).
/// Returns only when that fails.
pub fn exec_agent(program: &OsStr, args: &[OsString]) -> FrontError {
    let path = match agent_path() {
        Ok(path) => path,
        Err(error) => return error,
    };
    let cause = std::process::Command::new(&path)
        .arg0(program)
        .args(args)
        .env(FRONT_BUILD_ENV, BUILD_ID)
        .exec();
    FrontError::Exec { path, cause }
}

/// Run by `berth-agent` first with the value of [`FRONT_BUILD_ENV`]: a `berth`
/// of another build must not hand commands to it. Started on its own (no
/// `berth` before it, no value), it runs.
pub fn check_front_build(front: Option<&OsStr>) -> Result<(), FrontError> {
    match front {
        Some(front) if front != BUILD_ID => Err(FrontError::BuildMismatch {
            front: front.to_string_lossy().into_owned(),
            agent: BUILD_ID.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The `berth template` arguments in a command line (after the program name),
/// when `berth` itself can run it: the line is `template ...` and parses. Help,
/// `--version` and usage errors go to the agent, whose full command line
/// prints them the same way for every command.
pub fn template_args(args: &[OsString]) -> Option<crate::template_cmd::TemplateArgs> {
    let (first, rest) = args.split_first()?;
    if first != "template" {
        return None;
    }
    crate::template_cmd::parse_args(rest.iter().cloned()).ok()
}

/// Flushes stdout and stderr and ends the process with `code`, without the
/// allocator's exit-time cleanup, which returns memory to the OS page by page
/// (~0.5 ms for a large chart) when the OS takes it back at once anyway. Call
/// only when every thread has finished its work.
pub fn exit_flushed(code: i32) -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit only ends the process; no Rust state is used after it.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_a_parsable_template_line_stays_in_berth() {
        let parsed = template_args(&line(&[
            "template",
            "my-release",
            "charts/app",
            "-n",
            "prod",
        ]))
        .expect("a template command line");
        assert_eq!(parsed.args, ["my-release", "charts/app"]);
        assert_eq!(parsed.namespace, "prod");
        for handed_over in [
            &["render", "fixtures/demo"][..],
            &["template", "--help"],
            &["template", "--no-such-flag", "chart"],
            &["--log-format", "json", "template", "chart"],
            &["--version"],
            &[],
        ] {
            assert!(
                template_args(&line(handed_over)).is_none(),
                "{handed_over:?}"
            );
        }
    }

    #[test]
    fn an_agent_refuses_a_front_of_another_build() {
        let error =
            check_front_build(Some(OsStr::new("0123456789abcdef"))).expect_err("another build");
        assert!(
            error.to_string().contains("come from different builds"),
            "{error}"
        );
        check_front_build(Some(OsStr::new(BUILD_ID))).expect("the same build");
        check_front_build(None).expect("started on its own");
    }
}
