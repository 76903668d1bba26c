//! `berth-agent`: the whole berth command line. `berth` hands it every command
//! but `template` (berth::front).

use clap::Parser;

// Rendering allocates many small, short-lived values; mimalloc serves those
// markedly faster than glibc's allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = match berth::front::check_front_build(
        std::env::var_os(berth::front::FRONT_BUILD_ENV).as_deref(),
    ) {
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
        Ok(()) => match berth::cli::run(berth::cli::Cli::parse()) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                1
            }
        },
    };
    berth::front::exit_flushed(code)
}
