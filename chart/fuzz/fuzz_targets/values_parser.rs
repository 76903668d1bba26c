//! Values input — YAML files (read as helm reads them) and `--set` arguments of
//! every kind — must parse or fail cleanly, never panic.
#![no_main]

use std::collections::BTreeMap;

use berth_chart::strvals::{SetKind, parse_into};
use berth_chart::{Value, values, yaml11};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = yaml11::parse_all(&text);
    let _ = values::parse_values("values.yaml", data);
    for kind in [
        SetKind::Typed,
        SetKind::String,
        SetKind::Json,
        SetKind::Literal,
    ] {
        let dest = Value::new_map(BTreeMap::new());
        let _ = parse_into(&text, &dest, kind);
    }
});
