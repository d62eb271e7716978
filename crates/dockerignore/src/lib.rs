//! Docker's `.dockerignore` semantics, exactly as BuildKit applies them when
//! it sends a build context.
//!
//! skip-action hashes the files Docker would send; if we think a file is
//! excluded while Docker sends it, a change to that file does not change our
//! hash and a stale image ships. So this crate reproduces the real pipeline,
//! quirks included, rather than a tidy reading of the documentation:
//!
//! 1. **Reading** follows `ignorefile.ReadAll` (BuildKit/buildx): a UTF-8 BOM
//!    is dropped from the first line; a line whose *first byte* is `#` is a
//!    comment (`  # x` is the pattern `# x`); surrounding whitespace is
//!    trimmed; blank lines are skipped; a leading `!` marks an exception and the
//!    rest is trimmed again; the pattern is `filepath.Clean`ed and one leading
//!    `/` is removed.
//! 2. **Compiling** follows `patternmatcher.New`: trim and clean again, split
//!    off `!` (a lone `!` is an error), validate with Go's `filepath.Match`, and
//!    translate to a Go regular expression with the exact/prefix/suffix
//!    shortcuts patternmatcher uses (see `pattern.rs`, `regex.rs`). Docker
//!    compiles that regexp lazily and fails the build on the first path it
//!    tries; we compile eagerly and report the error with its line number.
//! 3. **Matching** follows fsutil's filtered walk, which is what actually
//!    decides what is sent: each path is evaluated with
//!    `MatchesUsingParentResults`, feeding in the per-pattern results of its
//!    parent directory, and an excluded directory is skipped wholesale when
//!    fsutil's "no exception can reach inside" test says so. For ordinary
//!    `.dockerignore` files this is the familiar rule — a path is excluded
//!    when it or any parent directory matches, the last matching pattern wins,
//!    `!` re-includes — but in the corners it differs from patternmatcher's
//!    `MatchesOrParentMatches`, and there we side with the walk because that
//!    is what reaches the daemon. See [`DockerIgnore::is_excluded`].
//!
//! [`path_match`] exposes Go's `filepath.Match` for `COPY`/`ADD` globs.
//!
//! Surprises worth knowing (all confirmed against Docker's code, see
//! `tests/data/oracle-vectors.json`): negated classes such as `[^x]` match
//! `/`; `**.txt` matches `dir/a.txt` (a plain suffix test); `|`, `{n}`, `^`,
//! `\d`, `\b`, `\Q` and POSIX classes keep their Go regexp meaning once a
//! pattern contains a wildcard (`a|b*` is an alternation); a trailing `\`
//! after a wildcard escapes the regexp's final `$`.
//!
//! Left to the caller: fsutil still sends an excluded *directory* as a bare
//! entry when something below it is re-included; symlinks are entries, never
//! followed. Not modelled: Unicode class escapes (`\pL`) are rejected with an
//! error instead of being interpreted, and Windows clients (`\` as separator).

mod clean;
mod glob;
mod pattern;
mod regex;

use std::fmt;

pub use clean::{clean, clean_rooted};
pub use glob::{path_match, BadPattern};
use pattern::Pattern;

/// `bufio.Scanner`'s default maximum token size: Docker fails to read a
/// `.dockerignore` with a line this long or longer.
const MAX_LINE: usize = 64 * 1024;

/// A parsed `.dockerignore`.
#[derive(Clone, Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
    /// Any `!` pattern (patternmatcher's `Exclusions()`).
    has_exceptions: bool,
    /// fsutil's `onlyPrefixExcludeExceptions`: every exception is a plain path
    /// (optionally ending in `/**` or `/*`), so it can only reach inside a
    /// directory whose path it starts with.
    only_prefix_exceptions: bool,
}

/// A `.dockerignore` line Docker would reject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// 1-based line number (for [`DockerIgnore::from_patterns`], the 1-based
    /// position in the list).
    pub line: usize,
    /// The offending line, without surrounding whitespace.
    pub pattern: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: invalid pattern `{}`: {}",
            self.line, self.pattern, self.message
        )
    }
}

impl std::error::Error for Error {}

/// The outcome of evaluating one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Included,
    /// Excluded; `subtree` when fsutil would also skip everything below it.
    Excluded {
        subtree: bool,
    },
}

impl DockerIgnore {
    /// Parses the contents of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::build(text.split('\n'))
    }

    /// Builds from individual lines (each item is one line, read with the same
    /// rules as [`DockerIgnore::parse`]; an embedded `\n` is not split).
    pub fn from_patterns<I: IntoIterator<Item = S>, S: AsRef<str>>(
        lines: I,
    ) -> Result<Self, Error> {
        Self::build(lines)
    }

    fn build<I: IntoIterator<Item = S>, S: AsRef<str>>(lines: I) -> Result<Self, Error> {
        let mut ignore = DockerIgnore {
            patterns: Vec::new(),
            has_exceptions: false,
            only_prefix_exceptions: true,
        };
        for (index, raw) in lines.into_iter().enumerate() {
            let line_no = index + 1;
            let raw = raw.as_ref();
            let shown = |line: &str| line.trim().to_string();
            if raw.len() >= MAX_LINE {
                return Err(Error {
                    line: line_no,
                    pattern: shown(raw).chars().take(40).collect::<String>() + "…",
                    message: "line is 64 KiB or longer, which Docker's .dockerignore reader rejects; shorten it".to_string(),
                });
            }
            // bufio.ScanLines strips one trailing `\r`.
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let line = if index == 0 {
                raw.strip_prefix('\u{FEFF}').unwrap_or(raw)
            } else {
                raw
            };
            let Some(read) = read_line(line) else {
                continue;
            };
            let err = |message: String| Error {
                line: line_no,
                pattern: shown(line),
                message,
            };
            let Some(pattern) = new_pattern(&read).map_err(err)? else {
                continue;
            };
            if pattern.exclusion {
                ignore.has_exceptions = true;
                if pattern
                    .without_trailing_glob()
                    .contains(['*', '[', ']', '?', '^', '\\'])
                {
                    ignore.only_prefix_exceptions = false;
                }
            }
            ignore.patterns.push(pattern);
        }
        Ok(ignore)
    }

    /// Whether Docker leaves `path` out of the build context.
    ///
    /// `path` is relative to the context root and `/`-separated, as Docker's
    /// walker produces it (`dir/file`). It is first cleaned like
    /// `filepath.Clean`, so `./a`, `a//b` and a directory marker such as
    /// `dir/` name the same path as their clean form; the context root (`""`,
    /// `.`) is never excluded. Do not pass a leading `/`.
    ///
    /// The verdict is fsutil's: walking down from the top, each ancestor
    /// directory is evaluated with its parent's per-pattern results; if one of
    /// them is excluded and fsutil would skip it (see
    /// [`DockerIgnore::can_skip_dir`]) the path is excluded; otherwise the path
    /// is excluded when the last pattern that matches it or one of its
    /// ancestors (as recorded during the walk) is not an exception.
    ///
    /// Where this differs from patternmatcher's `MatchesOrParentMatches`:
    /// a pattern whose evaluation is skipped at a directory (because it could
    /// not change that directory's verdict) is not remembered for its
    /// children. With `a`, `!a/x`, `a` the path `a/x` is *included* (the last
    /// `a` never matched `a/x` itself), and with `a/b`, `!a` the path `a/b/c`
    /// is *excluded*; `MatchesOrParentMatches` says the opposite for both.
    pub fn is_excluded(&self, path: &str) -> bool {
        matches!(self.evaluate(path), Verdict::Excluded { .. })
    }

    /// Whether any `!` exception pattern is present.
    pub fn has_exceptions(&self) -> bool {
        self.has_exceptions
    }

    /// True when `dir` is excluded and Docker's walker would not look inside
    /// it at all, so every path below `dir` is excluded too and a walker may
    /// skip the subtree.
    ///
    /// This is fsutil's `SkipDir` rule: there are no exceptions, or every
    /// exception is a plain path (optionally ending in `/**` or `/*`) and none
    /// of them lies inside `dir`. Any exception with a wildcard disables
    /// skipping, which is the conservative answer. [`DockerIgnore::is_excluded`]
    /// applies the same rule to ancestors, so the two always agree.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        matches!(self.evaluate(dir), Verdict::Excluded { subtree: true })
    }

    /// True when there are no patterns (nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn evaluate(&self, path: &str) -> Verdict {
        if self.patterns.is_empty() {
            return Verdict::Included;
        }
        let path = clean::clean(path);
        if path == "." {
            // The context root itself is never excluded.
            return Verdict::Included;
        }
        let parent = clean::dir(&path);
        let mut info: Option<Vec<bool>> = None;
        if parent != "." {
            for ancestor in clean::prefixes(&parent) {
                let (excluded, flags) = self.matches_using_parent(ancestor, info.as_deref());
                if excluded && self.skips_dir(ancestor) {
                    return Verdict::Excluded { subtree: true };
                }
                info = Some(flags);
            }
        }
        let (excluded, _) = self.matches_using_parent(&path, info.as_deref());
        if excluded {
            Verdict::Excluded {
                subtree: self.skips_dir(&path),
            }
        } else {
            Verdict::Included
        }
    }

    /// patternmatcher's `MatchesUsingParentResults`. `parent` holds, per
    /// pattern, whether it matched the parent directory (or was inherited by
    /// it); `None` means "no information", which makes Go fall back to testing
    /// the pattern against each parent path.
    fn matches_using_parent(&self, file: &str, parent: Option<&[bool]>) -> (bool, Vec<bool>) {
        let mut matched = false;
        let mut flags = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.and_then(|p| p.get(i).copied()).unwrap_or(false);
            if !hit {
                // A pattern that cannot change the verdict is not evaluated —
                // and therefore not recorded for the children either.
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(file);
                if !hit && parent.is_none() {
                    let parent_path = clean::dir(file);
                    if parent_path != "." {
                        hit = clean::prefixes(&parent_path).any(|p| pattern.matches(p));
                    }
                }
            }
            flags[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, flags)
    }

    /// fsutil's test for skipping an excluded directory.
    fn skips_dir(&self, dir: &str) -> bool {
        if !self.only_prefix_exceptions {
            return false;
        }
        if !self.has_exceptions {
            return true;
        }
        let dir_slash = format!("{dir}/");
        !self.patterns.iter().any(|p| {
            p.exclusion && format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash)
        })
    }
}

/// `ReadAll` for one line: `None` for comments and blank lines, otherwise the
/// string Docker hands to patternmatcher (`!` re-attached).
fn read_line(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let mut pattern = line.trim();
    if pattern.is_empty() {
        return None;
    }
    let invert = pattern.starts_with('!');
    if invert {
        pattern = pattern[1..].trim();
    }
    let mut out = String::new();
    if invert {
        out.push('!');
    }
    if !pattern.is_empty() {
        let cleaned = clean::clean(pattern);
        // Make absolute patterns relative to the context (but keep a lone `/`).
        match cleaned.strip_prefix('/') {
            Some(rest) if !rest.is_empty() => out.push_str(rest),
            _ => out.push_str(&cleaned),
        }
    }
    Some(out)
}

/// `patternmatcher.New` for one string: `Ok(None)` if it is blank.
fn new_pattern(read: &str) -> Result<Option<Pattern>, String> {
    let trimmed = read.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let cleaned = clean::clean(trimmed);
    let (exclusion, text) = match cleaned.strip_prefix('!') {
        Some("") => {
            return Err(
                "`!` needs a pattern after it to re-include; complete the line or remove it"
                    .to_string(),
            )
        }
        Some(rest) => (true, rest.to_string()),
        None => (false, cleaned),
    };
    // Docker validates with filepath.Match(pattern, ".") before anything else.
    if let Err(e) = glob::go_match(text.as_bytes(), b".") {
        return Err(e.message().to_string());
    }
    Pattern::compile(text, exclusion)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_matches_buildkit_readall_test() {
        // BuildKit's TestReadAll content, line by line.
        let lines = [
            "test1",
            "/test2",
            "/a/file/here",
            "",
            "lastfile",
            "# this is a comment",
            "! /inverted/abs/path",
            "!",
            "! ",
        ];
        let got: Vec<String> = lines.iter().filter_map(|l| read_line(l)).collect();
        assert_eq!(
            got,
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn read_line_edge_cases() {
        assert_eq!(read_line("/").as_deref(), Some("/"));
        assert_eq!(read_line("!/").as_deref(), Some("!/"));
        assert_eq!(
            read_line("  # not a comment").as_deref(),
            Some("# not a comment")
        );
        assert_eq!(read_line("./ a").as_deref(), Some(" a"));
        assert_eq!(read_line("a/../..").as_deref(), Some(".."));
    }

    #[test]
    fn new_pattern_edge_cases() {
        // `!/` cleans to `!` in patternmatcher: an error.
        assert!(new_pattern("!/").is_err());
        // `!../..` cleans to `.`: not an exception any more.
        let p = new_pattern("!../..").unwrap().unwrap();
        assert!(!p.exclusion);
        assert_eq!(p.text, ".");
        // Whitespace exposed by cleaning is trimmed for plain patterns only.
        assert_eq!(new_pattern(" a").unwrap().unwrap().text, "a");
        assert_eq!(new_pattern("! a").unwrap().unwrap().text, " a");
    }
}
