use clap::Parser;

fn main() -> anyhow::Result<()> {
    berth::cli::run(berth::cli::Cli::parse())
}
