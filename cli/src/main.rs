//! `berth`: one binary for every command (`berth --help`).

use clap::Parser as _;

/// How many arenas glibc's allocator may make. By default a thread that
/// finds the arenas busy gets one more, up to eight per CPU, and each keeps
/// its freed pages for later: a fleet's start (async workers, git and
/// rendering in the blocking pool at once) left the agent with many.
const ALLOCATOR_ARENAS: i32 = 2;

/// The size from which a block is mapped on its own and given back when
/// freed, and the free space at the heap's top that is given back. glibc
/// starts both at 128 KiB but raises them as large blocks are freed, after
/// which a large release's buffers came from the heap and their pages
/// stayed; fixed, they stay at 128 KiB.
const ALLOCATOR_THRESHOLD: i32 = 128 * 1024;

fn main() -> std::process::ExitCode {
    // Together these keep 200 releases under 64 MiB at peak, and rendering
    // as fast (docs/sync.md, "Memory"; docs/benchmarks.md).
    // SAFETY: mallopt sets documented parameters of glibc's allocator; it
    // is called before any other thread exists.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ALLOCATOR_ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, ALLOCATOR_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, ALLOCATOR_THRESHOLD);
    }
    let code = match berth::run(berth::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", berth::error_text(&error));
            1
        }
    };
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
