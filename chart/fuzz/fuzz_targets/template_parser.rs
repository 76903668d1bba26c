//! Any text fed to the Go-template parser, with Helm's function table, must
//! give a template or an error, never a panic.
#![no_main]

use berth_chart::funcs;
use gotemplate::TemplateSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let mut set = TemplateSet::new(funcs::table(berth_chart::HelmCompat::default()));
    let _ = set.add("fuzz/templates/t.yaml", &*src);
});
