//! Shell commands: a tokenizer for sh syntax and a recognizer of a known
//! command placed where a shell would run it.
//!
//! The tokenizer removes quotes (`c'a't`, `"ca"t`), backslashes (`c\at`),
//! empty parameters (`ca$@t`) and reads `$IFS`, `${IFS}` and `$IFS$9` as
//! spaces, splits brace lists (`{cat,/etc/passwd}`), and knows the
//! separators (`;` `&&` `||` `|` `&` newline), substitutions (`$(...)`,
//! backticks) and redirections. A word spelled with any of these tricks is
//! *obfuscated*; a word holding `?` `*` `[` is matched as a glob against the
//! known commands (`/???/c?t` is `/bin/cat`).
//!
//! It is an attack when a known command ([`COMMANDS`]) stands
//! - right after `;`, `&&`, `||` or inside `$(...)` / backticks glued to a
//!   value, with shell-looking arguments (`-x`, a path, `$x`, a URL, a
//!   trailing number) or, for the commands that run alone (`id`, `whoami`,
//!   `uname`, ...), with none;
//! - right after `|`, `&` or a newline with no space between (`|id`,
//!   `%0aid`), or obfuscated, or path-qualified;
//! - at the start of the value, obfuscated or path-qualified
//!   (`c''at /etc/hosts`, `/usr/bin/id`).
//!
//! Gives up, by design: commands in prose and in markdown (`Tom & Jerry;
//! cats`, "done; cat food is on sale", a `| id |` table cell, a code block
//! with `ls -la` after a newline and a space), and commands whose name is
//! computed at run time (`$(printf ...)`), which CRS' 932 rules see.

use crate::text::capped;
use crate::{stats, Detector, Finding};

/// Commands an attacker runs (base names).
pub const COMMANDS: &[&str] = &[
    "cat",
    "tac",
    "nl",
    "head",
    "tail",
    "more",
    "less",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "ssh",
    "scp",
    "ftp",
    "tftp",
    "bash",
    "sh",
    "zsh",
    "dash",
    "ksh",
    "csh",
    "tcsh",
    "busybox",
    "id",
    "uname",
    "whoami",
    "ping",
    "ls",
    "dir",
    "echo",
    "printf",
    "sleep",
    "perl",
    "python",
    "python2",
    "python3",
    "php",
    "ruby",
    "node",
    "lua",
    "chmod",
    "chown",
    "rm",
    "mv",
    "cp",
    "touch",
    "kill",
    "pkill",
    "nslookup",
    "dig",
    "host",
    "base64",
    "xxd",
    "od",
    "awk",
    "gawk",
    "sed",
    "grep",
    "find",
    "ps",
    "netstat",
    "ifconfig",
    "ipconfig",
    "hostname",
    "pwd",
    "env",
    "printenv",
    "passwd",
    "sudo",
    "su",
    "crontab",
    "systemctl",
    "nohup",
    "mkfifo",
    "dd",
    "tar",
    "openssl",
    "xterm",
    "powershell",
    "pwsh",
    "cmd",
    "certutil",
    "bitsadmin",
    "net",
    "type",
    "systeminfo",
    "tasklist",
    "whoami.exe",
    "reg",
    "wmic",
    "ver",
    "timeout",
    "eval",
    "exec",
    "uptime",
    "w",
    "who",
    "lsof",
    "killall",
];

/// Commands that do their harm with no argument.
const ALONE: &[&str] = &[
    "id",
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "pwd",
    "hostname",
    "ps",
    "env",
    "printenv",
    "netstat",
    "ls",
    "dir",
    "systeminfo",
    "tasklist",
    "uptime",
    "w",
    "who",
    "bash",
    "sh",
];

/// Directories commands are run from (for path-qualified and glob words).
const BIN_DIRS: &[&str] = &["/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin"];

/// Finds a shell command in `input` (see the module documentation).
pub fn detect(input: impl AsRef<[u8]>) -> Option<Finding> {
    let found = find(capped(input.as_ref()));
    stats::record(Detector::Shell, found.is_some());
    found
}

/// What comes before a command word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    Start,
    /// `;` `&&` `||`
    Strong,
    /// `$(` or a backtick, glued to what precedes it.
    Subst,
    /// `|` `&` or a newline; `tight` when no space follows it.
    Weak {
        tight: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word {
        text: String,
        /// Spelled with quotes, backslashes, `$IFS`, empty parameters or a
        /// brace list.
        tricked: bool,
    },
    Sep(Before),
    /// `)` or a closing backtick.
    Close,
    /// `<` or `>`.
    Redirect,
}

fn find(input: &[u8]) -> Option<Finding> {
    // Cheap exit: no separator, substitution, quote, escape or slash.
    if !input.iter().any(|&b| {
        matches!(
            b,
            b';' | b'|' | b'&' | b'\n' | b'`' | b'$' | b'\'' | b'"' | b'\\' | b'/' | b'{'
        )
    }) {
        return None;
    }
    // Read as it is, and inside the quotes of the command the value was
    // pasted into (`'; cat /etc/hosts #`).
    let mut buf = Vec::with_capacity(input.len() + 1);
    for quote in [None, Some(b'\''), Some(b'"')] {
        buf.clear();
        match quote {
            Some(q) if !input.contains(&q) => continue,
            Some(q) => buf.push(q),
            None => {}
        }
        buf.extend_from_slice(input);
        if let Some(f) = scan(&tokens(&buf)) {
            return Some(f);
        }
    }
    None
}

fn scan(toks: &[Tok]) -> Option<Finding> {
    let mut before = Before::Start;
    let mut k = 0;
    while k < toks.len() {
        match &toks[k] {
            Tok::Sep(b) => before = *b,
            Tok::Word { text, tricked } => {
                if let Some(f) = judge(toks, k, text, *tricked, before) {
                    return Some(f);
                }
                // Skip the rest of this command.
                while matches!(toks.get(k + 1), Some(Tok::Word { .. } | Tok::Redirect)) {
                    k += 1;
                }
            }
            Tok::Close | Tok::Redirect => {}
        }
        k += 1;
    }
    None
}

fn judge(toks: &[Tok], k: usize, word: &str, tricked: bool, before: Before) -> Option<Finding> {
    let (name, qualified, glob) = command_name(word)?;
    let args: Vec<&str> = toks[k + 1..]
        .iter()
        .take_while(|t| matches!(t, Tok::Word { .. } | Tok::Redirect))
        .filter_map(|t| match t {
            Tok::Word { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let redirect = toks[k + 1..]
        .iter()
        .take_while(|t| matches!(t, Tok::Word { .. } | Tok::Redirect))
        .any(|t| t == &Tok::Redirect);
    let hidden = tricked || qualified || glob;
    let shellish = redirect
        || args.iter().any(|a| shellish_arg(a))
        || args
            .last()
            .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    let alone = args.is_empty() && ALONE.contains(&name);
    let reason = match before {
        Before::Start => {
            (hidden && (tricked || glob || shellish || alone)).then_some("obfuscated command")
        }
        Before::Strong | Before::Subst => {
            (hidden || shellish || alone).then_some("command after a separator")
        }
        Before::Weak { tight } => {
            ((tight && (shellish || alone)) || hidden).then_some("command after a pipe or newline")
        }
    }?;
    let mut evidence = String::from(name);
    for a in args.iter().take(3) {
        evidence.push(' ');
        evidence.push_str(a);
    }
    Some(Finding::new(Detector::Shell, reason, &evidence))
}

/// Whether an argument looks like shell rather than prose.
fn shellish_arg(a: &str) -> bool {
    (a.starts_with('-') && a.len() > 1 && a.as_bytes()[1].is_ascii_alphanumeric())
        || a.contains('/')
        || a.contains('$')
        || a.contains("..")
        || a.contains('*')
        || a.contains('?')
}

/// The known command a word names: (name, path-qualified, matched as a
/// glob). A path must be a bin directory (or glob to one).
fn command_name(word: &str) -> Option<(&'static str, bool, bool)> {
    let glob = word.contains(['?', '*', '[']);
    let (dir, base) = match word.rfind(['/', '\\']) {
        Some(p) => (Some(&word[..p]), &word[p + 1..]),
        None => (None, word),
    };
    if let Some(dir) = dir {
        let windows = dir.contains('\\') || dir.contains(':');
        let ok = windows
            || BIN_DIRS.iter().any(|d| {
                if glob {
                    glob_match(dir.as_bytes(), d.as_bytes())
                } else {
                    dir == *d
                }
            });
        if !ok {
            return None;
        }
    }
    let base = base.strip_suffix(".exe").unwrap_or(base);
    let name = if glob && base.contains(['?', '*', '[']) {
        // A glob must pin the name down: some literal characters.
        if base.bytes().filter(|b| b.is_ascii_alphanumeric()).count() == 0 && dir.is_none() {
            return None;
        }
        COMMANDS
            .iter()
            .find(|c| glob_match(base.as_bytes(), c.as_bytes()))?
    } else {
        COMMANDS
            .iter()
            .find(|c| c.eq_ignore_ascii_case(base) && (**c == base || base.len() > 2))?
    };
    Some((name, dir.is_some(), glob))
}

/// Shell glob matching: `?`, `*`, `[abc]` / `[a-z]` / `[!a]`.
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    // Iterative with one backtrack point for `*` (linear enough for words).
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&pat[p..], s[i]) {
                        if matched {
                            p += next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `pat`: whether `c` is in it, and its length.
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let close = pat.iter().skip(2).position(|&b| b == b']')? + 2;
    let body = &pat[1..close];
    let (neg, body) = match body.first() {
        Some(b'!' | b'^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut hit = false;
    let mut j = 0;
    while j < body.len() {
        if j + 2 < body.len() && body[j + 1] == b'-' {
            hit |= (body[j]..=body[j + 2]).contains(&c);
            j += 3;
        } else {
            hit |= body[j] == c;
            j += 1;
        }
    }
    Some((hit != neg, close + 1))
}

/// The sh tokens of `s` (at most 1,024).
fn tokens(s: &[u8]) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::new();
    let mut word: Vec<u8> = Vec::new();
    let mut tricked = false;
    let mut in_word = false;
    let mut backtick_open = false;
    let mut depth = 0usize;
    let mut i = 0;
    let flush = |out: &mut Vec<Tok>, word: &mut Vec<u8>, tricked: &mut bool, in_word: &mut bool| {
        if *in_word {
            let text = String::from_utf8_lossy(word).into_owned();
            // A brace list `{cat,/etc/passwd}` is words.
            if text.starts_with('{') && text.ends_with('}') && text.contains(',') {
                for part in text[1..text.len() - 1].split(',') {
                    out.push(Tok::Word {
                        text: part.to_owned(),
                        tricked: true,
                    });
                }
            } else {
                out.push(Tok::Word {
                    text,
                    tricked: *tricked,
                });
            }
        }
        word.clear();
        *tricked = false;
        *in_word = false;
    };
    while i < s.len() && out.len() < 1024 {
        let c = s[i];
        match c {
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => {
                flush(&mut out, &mut word, &mut tricked, &mut in_word);
                i += 1;
            }
            b'\n' | b';' | b'|' | b'&' => {
                flush(&mut out, &mut word, &mut tricked, &mut in_word);
                let two = s.get(i + 1) == Some(&c) && c != b'\n' && c != b';';
                i += if two { 2 } else { 1 };
                // `|&`, `&>`: part of the operator.
                let before = if c == b';' || two {
                    Before::Strong
                } else {
                    Before::Weak {
                        tight: !matches!(s.get(i), Some(b' ' | b'\t')),
                    }
                };
                out.push(Tok::Sep(before));
            }
            b'<' | b'>' => {
                flush(&mut out, &mut word, &mut tricked, &mut in_word);
                while i < s.len() && matches!(s[i], b'<' | b'>' | b'&') {
                    i += 1;
                }
                out.push(Tok::Redirect);
            }
            b'$' if s.get(i + 1) == Some(&b'(') => {
                let glued = in_word
                    || matches!(out.last(), Some(Tok::Sep(_)) | None)
                    || i == 0
                    || s[i - 1] != b' ';
                flush(&mut out, &mut word, &mut tricked, &mut in_word);
                depth += 1;
                i += 2;
                if glued {
                    out.push(Tok::Sep(Before::Subst));
                } else {
                    out.push(Tok::Sep(Before::Strong));
                }
            }
            b')' if depth > 0 => {
                flush(&mut out, &mut word, &mut tricked, &mut in_word);
                depth -= 1;
                i += 1;
                out.push(Tok::Close);
            }
            b'`' => {
                let glued = i > 0 && !matches!(s[i - 1], b' ' | b'\t' | b'\n');
                flush(&mut out, &mut word, &mut tricked, &mut in_word);
                i += 1;
                if backtick_open {
                    backtick_open = false;
                    out.push(Tok::Close);
                } else {
                    backtick_open = true;
                    // Markdown puts code in backticks after a space: only a
                    // backtick glued to a value is a substitution.
                    out.push(Tok::Sep(if glued { Before::Subst } else { Before::Start }));
                }
            }
            b'$' => {
                // `$IFS`, `${IFS}`, `$IFS$9`: a space. `$@`, `$*`, `$1`: empty.
                let rest = &s[i + 1..];
                let ifs = if rest.starts_with(b"{IFS}") {
                    Some(6)
                } else if rest.starts_with(b"IFS") {
                    Some(4)
                } else {
                    None
                };
                if let Some(n) = ifs {
                    flush(&mut out, &mut word, &mut tricked, &mut in_word);
                    i += n;
                    if s.get(i) == Some(&b'$') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        i += 2;
                    }
                    // The next word was split by IFS: tricked.
                    tricked = true;
                    if let Some(Tok::Word { tricked: t, .. }) = out.last_mut() {
                        *t = true;
                    }
                } else if matches!(rest.first(), Some(b'@' | b'*' | b'0'..=b'9')) && in_word {
                    i += 2;
                    tricked = true;
                } else {
                    word.push(c);
                    in_word = true;
                    i += 1;
                }
            }
            b'\'' => {
                let end = memchr::memchr(b'\'', &s[i + 1..]).map_or(s.len(), |p| i + 1 + p);
                tricked |= in_word
                    || end == i + 1
                    || s.get(end + 1)
                        .is_some_and(|b| !matches!(b, b' ' | b'\t' | b';' | b'|' | b'&' | b'\n'));
                word.extend_from_slice(&s[i + 1..end]);
                in_word = true;
                i = end + 1;
            }
            b'"' => {
                let mut j = i + 1;
                let start_len = word.len();
                while j < s.len() && s[j] != b'"' {
                    if s[j] == b'\\' && j + 1 < s.len() {
                        j += 1;
                    }
                    word.push(s[j]);
                    j += 1;
                }
                tricked |= in_word
                    || word.len() == start_len
                    || s.get(j + 1)
                        .is_some_and(|b| !matches!(b, b' ' | b'\t' | b';' | b'|' | b'&' | b'\n'));
                in_word = true;
                i = j + 1;
            }
            b'\\' => {
                if let Some(&n) = s.get(i + 1) {
                    if n != b'\n' {
                        word.push(n);
                        in_word = true;
                    }
                    tricked = true;
                }
                i += 2;
            }
            _ => {
                word.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    flush(&mut out, &mut word, &mut tricked, &mut in_word);
    out
}

#[cfg(test)]
mod tests;
