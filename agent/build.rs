//! Gives `berth` and `berth-agent` a shared build identity (`BERTH_BUILD_ID`):
//! a digest of the package's sources, manifest and lock file. `berth` hands
//! every command but `template` to `berth-agent`, and the agent refuses to run
//! for a `berth` of another build (a stale binary left by `cargo build --bin`,
//! or one of the two replaced by hand). A digest of the inputs, not a
//! timestamp, so that rebuilding the same sources gives the same identity.

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let inputs = [
        manifest_dir.join("src"),
        manifest_dir.join("build.rs"),
        manifest_dir.join("Cargo.toml"),
        manifest_dir.join("../Cargo.lock"),
    ];
    let mut files = Vec::new();
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
        collect_files(input, &mut files);
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    hasher.write(env!("CARGO_PKG_VERSION").as_bytes());
    for file in &files {
        hasher.write(
            file.strip_prefix(&manifest_dir)
                .unwrap_or(file)
                .as_os_str()
                .as_encoded_bytes(),
        );
        // An unreadable input cannot be built from either; it hashes as empty.
        hasher.write(&std::fs::read(file).unwrap_or_default());
    }
    println!("cargo:rustc-env=BERTH_BUILD_ID={:016x}", hasher.finish());
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                collect_files(&entry.path(), files);
            }
        }
        Err(_) if path.is_file() => files.push(path.to_path_buf()),
        Err(_) => {}
    }
}
