use std::io::Write as _;

use clap::Parser;

// Rendering allocates many small, short-lived values; mimalloc serves those
// markedly faster than glibc's allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = match berth::cli::run(berth::cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Everything is written and every thread has ended: leave without the
    // allocator's exit-time cleanup, which returns memory to the OS page by
    // page (~0.5 ms for a large chart) when the OS takes it back at once anyway.
    // SAFETY: _exit only ends the process; no Rust state is used after it.
    unsafe { libc::_exit(code) }
}
