//! Go's `filepath.Match` and `filepath.Glob`, ported for `rule_files`.
//!
//! Prometheus expands each `rule_files` entry with Go's `filepath.Glob`, so
//! promsnap must find exactly the files Prometheus loads: `*`, `?`, `[...]`
//! (with `^` negation and ranges) and `\` escapes in any path segment, no
//! `**`, matches sorted per directory, and an unreadable directory simply
//! has no matches. A malformed pattern is an error, as in Go.
//!
//! Nothing here knows about configuration files or the repository.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Go's `filepath.Glob` on an absolute, clean pattern: `*`, `?` and `[...]`
/// in any segment, no `**`; matches sorted per directory; a pattern without
/// metacharacters matches the path when it exists.
pub fn glob(pattern: &Path) -> Result<Vec<PathBuf>> {
    let text = pattern
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", pattern.display()))?;
    if !has_meta(text) {
        return fs::symlink_metadata(pattern)
            .map(|_| vec![pattern.to_path_buf()])
            .map_err(|e| anyhow::Error::new(e).context(text.to_string()));
    }
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let file = pattern
        .file_name()
        .and_then(|f| f.to_str())
        .context("pattern has no file part")?;
    let dirs = if has_meta(&dir.to_string_lossy()) {
        glob(dir)?
    } else {
        vec![dir.to_path_buf()]
    };
    let mut found = Vec::new();
    for d in dirs {
        // As Go: an unreadable directory just has no matches.
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        for name in names {
            if wildcard(file, &name)? {
                found.push(d.join(name));
            }
        }
    }
    Ok(found)
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Go's `filepath.Match` for one path segment.
fn wildcard(pattern: &str, name: &str) -> Result<bool> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> Result<bool> {
    let Some(&first) = p.first() else {
        return Ok(n.is_empty());
    };
    match first {
        '*' => {
            for skip in 0..=n.len() {
                if match_from(&p[1..], &n[skip..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        '?' => Ok(!n.is_empty() && match_from(&p[1..], &n[1..])?),
        '[' => {
            let (matched, len) = class(&p[1..], n.first().copied())?;
            Ok(matched && match_from(&p[1 + len..], &n[1..])?)
        }
        '\\' => {
            let &lit = p.get(1).context("bad pattern: trailing backslash")?;
            Ok(n.first() == Some(&lit) && match_from(&p[2..], &n[1..])?)
        }
        c => Ok(n.first() == Some(&c) && match_from(&p[1..], &n[1..])?),
    }
}

/// Matches `c` against a character class whose body starts at `p` (after
/// `[`); returns whether it matched and how many chars the body took,
/// including the closing `]`.
fn class(p: &[char], c: Option<char>) -> Result<(bool, usize)> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut items = 0;
    loop {
        let mut lo = *p.get(i).context("bad pattern: unclosed [")?;
        if lo == ']' && items > 0 {
            i += 1;
            break;
        }
        if lo == ']' || lo == '-' {
            bail!("bad pattern: {lo:?} in a character class");
        }
        if lo == '\\' {
            i += 1;
            lo = *p.get(i).context("bad pattern")?;
        }
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            hi = *p.get(i + 1).context("bad pattern: unclosed range")?;
            if hi == '\\' {
                i += 1;
                hi = *p.get(i + 1).context("bad pattern")?;
            }
            i += 2;
        }
        if c.is_some_and(|c| lo <= c && c <= hi) {
            matched = true;
        }
        items += 1;
    }
    Ok((c.is_some() && matched != negated, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_go_filepath_match() {
        let yes = [
            ("*.yml", "a.yml"),
            ("*.yml", ".hidden.yml"),
            ("rule?.yml", "rule1.yml"),
            ("[ab].yml", "b.yml"),
            ("[a-c]x", "bx"),
            ("[^a-c]x", "dx"),
            ("\\*", "*"),
            ("*", ""),
        ];
        for (p, n) in yes {
            assert!(wildcard(p, n).unwrap(), "{p} should match {n}");
        }
        let no = [
            ("*.yml", "a.yaml"),
            ("rule?.yml", "rule.yml"),
            ("[ab].yml", "c.yml"),
            ("[^a-c]x", "bx"),
            ("a", "ab"),
        ];
        for (p, n) in no {
            assert!(!wildcard(p, n).unwrap(), "{p} must not match {n}");
        }
        for bad in ["[", "[a", "[]a", "a\\"] {
            assert!(wildcard(bad, "a").is_err(), "{bad:?} is a bad pattern");
        }
    }

    #[test]
    fn globs_expand_in_any_segment_and_literals_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for f in ["rules/a.yml", "rules/b.yml", "rules/c.txt", "more/x/d.yml"] {
            fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            fs::write(root.join(f), "groups: []\n").unwrap();
        }
        let names = |p: &str| -> Vec<String> {
            glob(&root.join(p))
                .unwrap()
                .iter()
                .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names("rules/*.yml"), ["rules/a.yml", "rules/b.yml"]);
        assert_eq!(names("*/*/*.yml"), ["more/x/d.yml"]);
        assert!(names("nothing/*.yml").is_empty());
        assert_eq!(names("rules/c.txt"), ["rules/c.txt"]);
        assert!(glob(&root.join("rules/missing.yml")).is_err());
    }
}
