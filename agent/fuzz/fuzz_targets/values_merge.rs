//! Merging values — a release file's layers for a context over a chart's
//! defaults, and sprig's merge functions' merges — must end, never panic,
//! whatever the two YAML documents hold. The input is two documents split
//! at the first NUL byte.
#![no_main]

use berth_agent::context::ClusterContext;
use berth_agent::release::{ReleaseFile, explain};
use berth_chart::Value;
use berth_chart::values::{self, Merge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let (Ok(defaults), Ok(user)) = (
        values::parse_values("values.yaml", first),
        values::parse_values("user.yaml", second),
    ) else {
        return;
    };
    for how in [
        Merge::Overlay,
        Merge::Defaults,
        Merge::Mergo { overwrite: false },
        Merge::Mergo { overwrite: true },
    ] {
        let (Value::Map(dst), Value::Map(src)) = (user.deep_copy(), &defaults) else {
            continue;
        };
        values::merge(&dst, src, how);
    }
    // The second document as a release file's values, layered for a context
    // and explained against the first as chart defaults.
    if let Ok(text) = std::str::from_utf8(second) {
        let release_text = format!("name: fuzz\nnamespace: fuzz\nchart: chart\nvalues:\n{}", indent(text));
        if let Ok(release) = ReleaseFile::parse(&release_text, "release.yaml") {
            let context: ClusterContext = "cloud=gcp,env=prod,region=europe-west1,cluster=gke-prod-1".parse().expect("a context");
            let _ = release.values_for(&context);
            let _ = explain(&values::to_yaml(&defaults), &release.value_layers(&context));
        }
    }
});

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}
