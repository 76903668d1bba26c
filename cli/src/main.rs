//! `berth`: one binary for every command (`berth --help`).

use clap::Parser as _;

// Rendering allocates many small, short-lived values; mimalloc serves them
// faster than glibc's allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v2's `mi_option_t` (mimalloc.h;
/// libmimalloc-sys names only some of the options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Memory freed is given back to the OS at once, not 10 ms (100 ms for
    // whole arenas) later: a delayed purge runs only at a later allocation,
    // and an idle agent allocates next to nothing, so the pages of its
    // busiest moment stayed resident (docs/sync.md, "Memory").
    // SAFETY: sets a documented mimalloc option; mimalloc reads it at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let code = match berth::run(berth::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", berth::error_text(&error));
            1
        }
    };
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
