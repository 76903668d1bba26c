//! Any text fed to the Go-template parser must give a template or an error, never a panic.
#![no_main]

use berth::render::template::{TemplateSet, add_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let mut set = TemplateSet::new();
    let _ = add_file(&mut set, "fuzz/templates/t.yaml", &src);
});
