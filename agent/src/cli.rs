//! The `berth` command line.

use clap::{Parser, Subcommand};

/// The Kubernetes API version berth's types are generated for.
pub const KUBERNETES_API: &str = "1.36";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Per-cluster GitOps agent: renders each application's Helm chart for this cluster and applies it"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: BerthCommand,
}

#[derive(Debug, Subcommand)]
pub enum BerthCommand {
    /// Print berth's version and the Kubernetes API version it targets.
    Version,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        BerthCommand::Version => {
            println!(
                "berth {} (Kubernetes API {KUBERNETES_API})",
                env!("CARGO_PKG_VERSION")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_lists_the_subcommands() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("version"), "{help}");
    }

    #[test]
    fn unknown_subcommand_is_rejected() {
        assert!(Cli::try_parse_from(["berth", "deploy-everything"]).is_err());
    }
}
