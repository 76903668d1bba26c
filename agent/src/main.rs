//! `berth`: runs `berth template` itself, without the agent's libraries, and
//! hands every other command line to `berth-agent` (berth::front).

use std::ffi::OsString;

// Rendering allocates many small, short-lived values; mimalloc serves those
// markedly faster than glibc's allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| OsString::from("berth"));
    let args: Vec<OsString> = args.collect();
    let code = match berth::front::template_args(&args) {
        Some(template) => match berth::template_cmd::run_template(template) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                1
            }
        },
        None => {
            let error = berth::front::exec_agent(&program, &args);
            eprintln!("error: {error}");
            127
        }
    };
    berth::front::exit_flushed(code)
}
