//! Reading a chart from disk: a directory or a packaged `.tgz`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::RenderError;

/// A chart's files, paths relative to the chart root with '/' separators.
#[derive(Debug, Clone, Default)]
pub struct ChartFiles {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl ChartFiles {
    /// Reads every file under `dir` (symbolic links followed, as helm does).
    pub fn from_dir(dir: &Path) -> Result<ChartFiles, RenderError> {
        from_dir(dir)
    }

    /// Reads a packaged chart (`.tgz`); `what` names it in errors.
    pub fn from_tgz(bytes: &[u8], what: &str) -> Result<ChartFiles, RenderError> {
        from_tgz(bytes, what)
    }

    /// Reads a chart from a directory or a `.tgz` file.
    pub fn from_path(path: &Path) -> Result<ChartFiles, RenderError> {
        from_path(path)
    }
}

/// Largest chart file Helm 3 loads (its `MaxDecompressedFileSize`).
pub const MAX_CHART_FILE: u64 = 5 << 20;

/// Largest chart Helm 4 loads, all files together, and largest archive
/// either decompresses (`MaxDecompressedChartSize`).
pub const MAX_CHART_BYTES: u64 = 100 << 20;

/// A chart file as text, invalid UTF-8 replaced as Go's string conversion
/// would show it. Checks with `str::from_utf8` first: `from_utf8_lossy` walks
/// every byte on its slow path even when the text is valid, which for a large
/// chart was 5% of a render.
pub fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Reads every file under `dir` (paths relative to it, '/'-separated).
fn from_dir(dir: &Path) -> Result<ChartFiles, RenderError> {
    let mut files = BTreeMap::new();
    walk(dir, "", &mut files)?;
    Ok(ChartFiles { files })
}

fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), RenderError> {
    let io = |e: std::io::Error| RenderError::plain(rel, format!("{}: {e}", dir.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let rel_name = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        // Follow symlinks like helm does for charts/ entries; other entries'
        // types come with the directory listing, without a stat per file.
        let file_type = e.file_type().map_err(io)?;
        let is_dir = if file_type.is_symlink() {
            std::fs::metadata(&path).map_err(io)?.is_dir()
        } else {
            file_type.is_dir()
        };
        if is_dir {
            walk(&path, &rel_name, out)?;
        } else {
            out.insert(rel_name, std::fs::read(&path).map_err(io)?);
        }
    }
    Ok(())
}

/// Reads a packaged chart: a gzipped tar whose entries sit under one top directory.
fn from_tgz(bytes: &[u8], what: &str) -> Result<ChartFiles, RenderError> {
    let bad = |m: String| RenderError::plain(what, format!("{what}: {m}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = BTreeMap::new();
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    let mut remaining = MAX_CHART_BYTES;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .replace('\\', "/");
        // Helm 4's words (the chart loader checks Helm 3's per-file limit).
        if entry.size() > remaining {
            return Err(bad(format!(
                "decompressed chart is larger than the maximum size {MAX_CHART_BYTES}"
            )));
        }
        remaining -= entry.size();
        // Strip the chart's top-level directory, as helm does.
        let rel = match path.split_once('/') {
            Some((_, rest)) => rest.to_string(),
            None => continue,
        };
        if rel.split('/').any(|p| p == "..") {
            return Err(bad(format!(
                "chart illegally references parent directory: {path}"
            )));
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| bad(e.to_string()))?;
        files.insert(rel, data);
    }
    if files.is_empty() {
        return Err(bad("no files in chart archive".into()));
    }
    Ok(ChartFiles { files })
}

/// Reads a chart from a directory or a `.tgz` file.
fn from_path(path: &Path) -> Result<ChartFiles, RenderError> {
    let shown = path.display().to_string();
    if path.is_dir() {
        return from_dir(path);
    }
    if !path.exists() {
        return Err(RenderError::plain(
            &shown,
            format!("path {shown:?} not found"),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| RenderError::plain(&shown, format!("path {shown:?} not found: {e}")))?;
    from_tgz(&bytes, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinked_directories_and_files_are_read_through() {
        let root = tempfile::tempdir().expect("temp dir");
        let chart = root.path().join("chart");
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir_all(chart.join("charts")).expect("mkdir");
        std::fs::create_dir_all(elsewhere.join("sub/templates")).expect("mkdir");
        std::fs::write(chart.join("Chart.yaml"), "name: top\n").expect("write");
        std::fs::write(elsewhere.join("sub/templates/cm.yaml"), "a: b\n").expect("write");
        std::fs::write(elsewhere.join("values.yaml"), "x: 1\n").expect("write");
        std::os::unix::fs::symlink(elsewhere.join("sub"), chart.join("charts/sub")).expect("link");
        std::os::unix::fs::symlink(elsewhere.join("values.yaml"), chart.join("values.yaml"))
            .expect("link");
        let files = from_dir(&chart).expect("reads").files;
        let paths: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            ["Chart.yaml", "charts/sub/templates/cm.yaml", "values.yaml"]
        );
        assert_eq!(files["values.yaml"], b"x: 1\n");
    }
}
