//! `.helmignore`, as helm applies it when loading a chart directory: one shell
//! glob per line, `#` comments, `!` negation, a trailing `/` for directories
//! only, a leading `/` or an inner `/` to match the whole relative path
//! (otherwise only the base name), and no `**`. A directory that is ignored
//! takes everything under it along. Dotfiles in `templates/` are always ignored.

/// One parsed rule.
#[derive(Debug, Clone)]
struct Rule {
    glob: String,
    negate: bool,
    dir_only: bool,
    whole_path: bool,
}

/// Parsed `.helmignore` rules.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Parses the file; invalid lines (`**`, bad globs) are errors, as in helm.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let mut rules = Vec::new();
        // helm's default rule: dotfiles under templates/.
        for line in std::iter::once("templates/.?*").chain(text.lines()) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.contains("**") {
                return Err("double-star (**) syntax is not supported".into());
            }
            let (negate, rest) = match line.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, line),
            };
            let (dir_only, rest) = match rest.strip_suffix('/') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let (whole_path, glob) = match rest.strip_prefix('/') {
                Some(r) => (true, r.to_string()),
                None => (rest.contains('/'), rest.to_string()),
            };
            if glob_match(&glob, "abc").is_none() {
                return Err(format!("syntax error in pattern: {line}"));
            }
            rules.push(Rule {
                glob,
                negate,
                dir_only,
                whole_path,
            });
        }
        Ok(Rules { rules })
    }

    /// Whether one path (file or directory) is ignored by the rules.
    fn ignores(&self, path: &str, is_dir: bool) -> bool {
        for r in &self.rules {
            let target = if r.whole_path {
                path
            } else {
                path.rsplit('/').next().unwrap_or(path)
            };
            let hit = glob_match(&r.glob, target).unwrap_or(false);
            if r.negate {
                // helm: a negated rule keeps matches and ignores everything else.
                if r.dir_only && !is_dir {
                    return true;
                }
                if !hit {
                    return true;
                }
                continue;
            }
            if r.dir_only && !is_dir {
                continue;
            }
            if hit {
                return true;
            }
        }
        false
    }

    /// Whether a file is left out: it or one of its parent directories is ignored.
    pub fn excludes(&self, file: &str) -> bool {
        let mut end = 0;
        while let Some(i) = file[end..].find('/') {
            let dir = &file[..end + i];
            if self.ignores(dir, true) {
                return true;
            }
            end += i + 1;
        }
        self.ignores(file, false)
    }
}

/// Go's filepath.Match on '/'-separated paths: `*` and `?` stop at '/',
/// `[...]` classes with ranges and `^`/`!` negation, `\` escapes.
/// `None` when the pattern is malformed.
pub fn glob_match(pattern: &str, name: &str) -> Option<bool> {
    // Chart paths and rules are nearly always ASCII: match their bytes
    // without building character vectors (this runs for every file × rule).
    if pattern.is_ascii() && name.is_ascii() {
        return matches(pattern.as_bytes(), name.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

/// Whether `n` matches the glob `p` (bytes of ASCII text, or characters).
fn matches<T: Copy + Ord + From<u8>>(p: &[T], n: &[T]) -> Option<bool> {
    let sym = T::from;
    let slash = sym(b'/');
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            let c = p[pi];
            if c == sym(b'*') {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            if c == sym(b'?') && ni < n.len() && n[ni] != slash {
                pi += 1;
                ni += 1;
                continue;
            }
            if c == sym(b'[') && ni < n.len() && n[ni] != slash {
                let (ok, next) = class(p, pi + 1, n[ni])?;
                if ok {
                    pi = next;
                    ni += 1;
                    continue;
                }
            } else if c == sym(b'\\') {
                if pi + 1 < p.len() && ni < n.len() && p[pi + 1] == n[ni] {
                    pi += 2;
                    ni += 1;
                    continue;
                }
            } else if c != sym(b'?') && c != sym(b'[') && ni < n.len() && c == n[ni] {
                pi += 1;
                ni += 1;
                continue;
            }
        } else if ni == n.len() {
            return Some(true);
        }
        // Backtrack: let the last star eat one more character (never '/').
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != slash => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => {
                // Validate the rest of the pattern for syntax errors.
                let mut i = pi;
                while i < p.len() {
                    if p[i] == sym(b'[') {
                        let (_, next) = class(p, i + 1, sym(0))?;
                        i = next;
                    } else {
                        i += 1;
                    }
                }
                return Some(false);
            }
        }
    }
}

/// A `[...]` class at `p[i..]` (just after the `[`) against `c`: whether it
/// matches, and where the pattern goes on; `None` when it is malformed.
fn class<T: Copy + Ord + From<u8>>(p: &[T], mut i: usize, c: T) -> Option<(bool, usize)> {
    let sym = T::from;
    let negate = p.get(i).is_some_and(|&x| x == sym(b'^') || x == sym(b'!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &start = p.get(i)?;
        if start == sym(b']') && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let (lo, next) = if start == sym(b'\\') {
            (*p.get(i + 1)?, i + 2)
        } else {
            (start, i + 1)
        };
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&sym(b'-')) && p.get(i + 1).is_some_and(|&x| x != sym(b']')) {
            let escaped = p[i + 1] == sym(b'\\');
            hi = if escaped { *p.get(i + 2)? } else { p[i + 1] };
            i += if escaped { 3 } else { 2 };
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        assert_eq!(glob_match("*.txt", "a.txt"), Some(true));
        assert_eq!(glob_match("*.txt", "d/a.txt"), Some(false));
        assert_eq!(glob_match("temp?", "temp1"), Some(true));
        assert_eq!(glob_match("[a-c]x", "bx"), Some(true));
        assert_eq!(glob_match("[^a-c]x", "bx"), Some(false));
        assert_eq!(glob_match("*/temp*", "x/temporary"), Some(true));
        assert!(glob_match("[", "x").is_none());
        // Non-ASCII names are matched by character.
        assert_eq!(glob_match("caf?", "café"), Some(true));
        assert_eq!(glob_match("[à-é]x", "éx"), Some(true));
        assert_eq!(glob_match("*.txt", "é/a.txt"), Some(false));
    }

    #[test]
    fn rules_like_helm() {
        let r = Rules::parse("# c\n*.bak\nsecret/\n/top.txt\n*/temp*\n").expect("parses");
        assert!(r.excludes("a/b.bak"));
        assert!(r.excludes("secret/x.yaml"));
        assert!(r.excludes("top.txt"));
        assert!(!r.excludes("sub/top.txt"));
        assert!(r.excludes("files/temp1"));
        assert!(r.excludes("templates/.hidden"));
        assert!(!r.excludes("templates/cm.yaml"));
        assert!(Rules::parse("a/**/b").is_err());
    }
}
