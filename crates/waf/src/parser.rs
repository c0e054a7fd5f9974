//! SecLang front end: reads configuration files into directives.
//!
//! Handles what Apache/ModSecurity configuration syntax allows and CRS uses:
//! comments, `\` line continuations, double- and single-quoted arguments
//! (only a backslash before the closing quote is an escape; every other
//! backslash is kept, so regexes survive), and `Include` with glob patterns
//! resolved relative to the including file. Every directive keeps its file
//! and line so later errors can name them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::WafError;

/// Where a directive came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub line: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One directive with its arguments, quotes removed.
#[derive(Debug, Clone)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub location: Location,
    /// Directory of the file the directive came from (for `@pmFromFile`).
    pub dir: Arc<Path>,
}

/// Maximum include nesting, to stop include loops.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads `path` (a file, or a directory whose `*.conf` files are read in
/// name order) and every file it includes.
pub fn load_path(path: &Path) -> Result<Vec<Directive>, WafError> {
    let mut out = Vec::new();
    if path.is_dir() {
        for file in conf_files_in(path)? {
            load_file(&file, 0, &mut out)?;
        }
    } else {
        load_file(path, 0, &mut out)?;
    }
    Ok(out)
}

/// The `*.conf` files of a directory, sorted by name.
pub fn conf_files_in(dir: &Path) -> Result<Vec<PathBuf>, WafError> {
    let entries = std::fs::read_dir(dir).map_err(|e| WafError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn load_file(path: &Path, depth: usize, out: &mut Vec<Directive>) -> Result<(), WafError> {
    let text = std::fs::read_to_string(path).map_err(|e| WafError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let file: Arc<str> = Arc::from(path.display().to_string());
    let dir: Arc<Path> = Arc::from(path.parent().unwrap_or(Path::new(".")));
    for d in parse_str(&text, &file, &dir)? {
        if d.name.eq_ignore_ascii_case("Include") || d.name.eq_ignore_ascii_case("IncludeOptional")
        {
            let optional = d.name.eq_ignore_ascii_case("IncludeOptional");
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(WafError::at(
                    &d.location,
                    "includes nested too deeply (loop?)",
                ));
            }
            let Some(pattern) = d.args.first() else {
                return Err(WafError::at(&d.location, "Include needs a path"));
            };
            let files = expand_include(&dir, pattern).map_err(|m| WafError::at(&d.location, m))?;
            if files.is_empty() && !optional {
                return Err(WafError::at(
                    &d.location,
                    format!("Include {pattern:?} matches no file"),
                ));
            }
            for f in files {
                load_file(&f, depth + 1, out)?;
            }
        } else {
            out.push(d);
        }
    }
    Ok(())
}

/// Resolves an include pattern: a path relative to `dir`, whose last
/// component may hold `*` and `?` wildcards.
fn expand_include(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        dir.join(pattern)
    };
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?', '[']) {
        if full.is_dir() {
            return conf_files_in(&full).map_err(|e| e.to_string());
        }
        return Ok(if full.exists() {
            vec![full]
        } else {
            Vec::new()
        });
    }
    let parent = full.parent().unwrap_or(Path::new("."));
    if parent.to_string_lossy().contains(['*', '?', '[']) {
        return Err(format!(
            "wildcards are supported only in the file name: {pattern:?}"
        ));
    }
    let entries = std::fs::read_dir(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| glob_match(name.as_bytes(), e.file_name().to_string_lossy().as_bytes()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Shell-style match of `*` and `?` (no character classes).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// Splits configuration text into directives.
pub fn parse_str(text: &str, file: &Arc<str>, dir: &Arc<Path>) -> Result<Vec<Directive>, WafError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start_line = 0u32;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i as u32 + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if logical.is_empty() {
            start_line = line_no;
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
        }
        if let Some(cont) = line.strip_suffix('\\') {
            logical.push_str(cont);
            continue;
        }
        logical.push_str(line);
        let location = Location {
            file: file.clone(),
            line: start_line,
        };
        if let Some(d) = tokenize(&logical, &location)? {
            out.push(Directive {
                name: d.0,
                args: d.1,
                location,
                dir: dir.clone(),
            });
        }
        logical.clear();
    }
    if !logical.is_empty() {
        let location = Location {
            file: file.clone(),
            line: start_line,
        };
        if let Some(d) = tokenize(&logical, &location)? {
            out.push(Directive {
                name: d.0,
                args: d.1,
                location,
                dir: dir.clone(),
            });
        }
    }
    Ok(out)
}

/// Splits one logical line into a directive name and its arguments.
fn tokenize(line: &str, loc: &Location) -> Result<Option<(String, Vec<String>)>, WafError> {
    let mut words = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' && words.is_empty() {
            return Ok(None);
        }
        let mut word = String::new();
        if c == '"' || c == '\'' {
            let quote = c;
            chars.next();
            let mut closed = false;
            while let Some((_, ch)) = chars.next() {
                if ch == '\\' {
                    if let Some(&(_, next)) = chars.peek() {
                        if next == quote {
                            word.push(next);
                            chars.next();
                            continue;
                        }
                    }
                    word.push(ch);
                } else if ch == quote {
                    closed = true;
                    break;
                } else {
                    word.push(ch);
                }
            }
            if !closed {
                return Err(WafError::at(loc, format!("unterminated {quote} quote")));
            }
        } else {
            while let Some(&(_, ch)) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                word.push(ch);
                chars.next();
            }
        }
        words.push(word);
    }
    if words.is_empty() {
        return Ok(None);
    }
    let name = words.remove(0);
    Ok(Some((name, words)))
}

/// Splits a SecLang action list (`id:1,phase:2,msg:'a, b'`) into
/// `(name, argument)` pairs. Single quotes protect commas; `\'` escapes.
pub fn split_actions(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut chars = text.chars().peekable();
    let mut pieces = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_quote && chars.peek() == Some(&'\'') => {
                cur.push('\\');
                cur.push('\'');
                chars.next();
            }
            '\'' => {
                in_quote = !in_quote;
                cur.push(c);
            }
            ',' if !in_quote => pieces.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if in_quote {
        return Err("unterminated ' quote in actions".into());
    }
    pieces.push(cur);
    for piece in pieces {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        match piece.split_once(':') {
            Some((name, arg)) => {
                out.push((name.trim().to_string(), Some(unquote(arg.trim()))));
            }
            None => out.push((piece.to_string(), None)),
        }
    }
    Ok(out)
}

/// Removes one level of single quotes and unescapes `\'` inside them.
pub fn unquote(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        s[1..s.len() - 1].replace("\\'", "'")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Directive> {
        parse_str(text, &Arc::from("t.conf"), &Arc::from(Path::new("."))).unwrap()
    }

    #[test]
    fn continuations_quotes_and_comments() {
        let d = parse(
            "# comment\nSecRule ARGS \"@rx a\\\"b\\d\" \\\n    \"id:1,\\\n    phase:2\"\n\nSecMarker END\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "SecRule");
        assert_eq!(d[0].args, vec!["ARGS", "@rx a\"b\\d", "id:1,    phase:2"]);
        assert_eq!(d[0].location.line, 2);
        assert_eq!(d[1].args, vec!["END"]);
        assert_eq!(d[1].location.line, 6);
    }

    #[test]
    fn unterminated_quote_names_the_line() {
        let e = parse_str(
            "\nSecRule ARGS \"@rx a",
            &Arc::from("x.conf"),
            &Arc::from(Path::new(".")),
        )
        .unwrap_err();
        assert!(e.to_string().contains("x.conf:2"), "{e}");
    }

    #[test]
    fn actions_split_respects_quotes() {
        let a = split_actions(
            "id:1, msg:'a, b', setvar:'tx.x=%{tx.y}',ctl:ruleRemoveTargetById=1;ARGS:x,chain",
        )
        .unwrap();
        assert_eq!(a[0], ("id".into(), Some("1".into())));
        assert_eq!(a[1], ("msg".into(), Some("a, b".into())));
        assert_eq!(a[2], ("setvar".into(), Some("tx.x=%{tx.y}".into())));
        assert_eq!(
            a[3],
            ("ctl".into(), Some("ruleRemoveTargetById=1;ARGS:x".into()))
        );
        assert_eq!(a[4], ("chain".into(), None));
    }

    #[test]
    fn glob() {
        assert!(glob_match(b"*.conf", b"REQUEST-901.conf"));
        assert!(glob_match(b"REQUEST-9??-*.conf", b"REQUEST-901-X.conf"));
        assert!(!glob_match(b"*.conf", b"x.data"));
    }
}
