use clap::Parser;

fn main() {
    let code = match berth::cli::run(berth::cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            1
        }
    };
    std::process::exit(code);
}
