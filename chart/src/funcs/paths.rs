//! sprig's path functions: slash-separated paths as Go's `path` package
//! handles them (the `os*` forms are the same on Linux).

use gotemplate::func::arg::string;
use gotemplate::{Func, FuncResult, Param as P, Value};

pub(super) const FUNCS: &[Func] = &[
    Func::go("base", &[P::Str], None, |a| path_op(a, base_path)),
    Func::go("osBase", &[P::Str], None, |a| path_op(a, base_path)),
    Func::go("dir", &[P::Str], None, |a| path_op(a, dir_path)),
    Func::go("osDir", &[P::Str], None, |a| path_op(a, dir_path)),
    Func::go("ext", &[P::Str], None, |a| path_op(a, ext_path)),
    Func::go("osExt", &[P::Str], None, |a| path_op(a, ext_path)),
    Func::go("clean", &[P::Str], None, |a| path_op(a, clean_path)),
    Func::go("osClean", &[P::Str], None, |a| path_op(a, clean_path)),
    Func::go("isAbs", &[P::Str], None, |a| {
        Ok(Value::Bool(string(&a[0])?.starts_with('/')))
    }),
    Func::go("osIsAbs", &[P::Str], None, |a| {
        Ok(Value::Bool(string(&a[0])?.starts_with('/')))
    }),
];

fn path_op(a: &[Value], op: fn(&str) -> String) -> FuncResult {
    Ok(Value::String(op(&string(&a[0])?)))
}

/// Go's path.Clean.
fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn base_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn dir_path(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    clean_path(dir)
}

fn ext_path(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return p[i..].to_string();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_like_go() {
        assert_eq!(clean_path("a//b/./c/../d/"), "a/b/d");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(dir_path("a/b/"), "a/b");
        assert_eq!(dir_path("file"), ".");
        assert_eq!(ext_path("a.b/c"), "");
        assert_eq!(base_path("/a/b/"), "b");
    }
}
