//! Go's `path/filepath.Match` (Unix flavour: `\` escapes, `/` separates).
//!
//! Two users need it bit-for-bit:
//! * Docker's `patternmatcher.New` calls `filepath.Match(pattern, ".")` purely
//!   to reject malformed `.dockerignore` patterns, so our notion of "invalid
//!   pattern" must be Go's;
//! * BuildKit expands `COPY`/`ADD` source globs with the same function, so the
//!   main crate uses [`path_match`] to decide which files a `COPY` reads.
//!
//! The algorithm is Go's own: the pattern is cut into chunks, each optionally
//! preceded by a star; a chunk is matched at the leftmost place it fits and is
//! never reconsidered. That makes matching `O(len(pattern) * len(name))` with
//! no backtracking blow-up. It works on bytes (like Go) so that a star may skip
//! into the middle of a multi-byte character exactly as Go's does.

use std::fmt;

/// A malformed `filepath.Match` pattern (Go's `filepath.ErrBadPattern`),
/// carrying a human-readable explanation of what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPattern(pub String);

impl fmt::Display for BadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "syntax error in pattern: {}", self.0)
    }
}

impl std::error::Error for BadPattern {}

/// Why Go rejects a glob pattern. Go only says "syntax error in pattern"; we
/// keep the reason so the user is told what to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GlobError {
    /// `[` without a closing `]` (also `[a-` and `[^`).
    UnterminatedClass,
    /// A `\` with nothing after it.
    TrailingBackslash,
    /// `-` where a class member must start (`[-a]`, `[a-b-c]`).
    MisplacedDash,
    /// `]` where a class member must start (`[]`, `[a-]`).
    EmptyClassOrRange,
    /// Invalid UTF-8 inside a class (cannot happen for `&str` input, kept for
    /// parity with Go).
    InvalidUtf8,
}

impl GlobError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            GlobError::UnterminatedClass => {
                "unterminated character class; add the closing `]` or escape the `[` as `\\[`"
            }
            GlobError::TrailingBackslash => {
                "trailing backslash escapes nothing; remove it or write `\\\\` for a literal backslash"
            }
            GlobError::MisplacedDash => {
                "`-` cannot start a character class member or follow a range; escape it as `\\-`"
            }
            GlobError::EmptyClassOrRange => {
                "empty character class or range without an end (`[]`, `[a-]`); escape a literal `]` or `-` with a backslash"
            }
            GlobError::InvalidUtf8 => "invalid UTF-8 in character class",
        }
    }
}

/// Go's `filepath.Match(pattern, path)` with `/` as the separator: `*` matches
/// any run of non-`/` characters, `?` one non-`/` character, `[...]` a class
/// (`^` negates; Go has no `!` negation), `\` escapes the next character.
/// The whole of `path` must match.
///
/// Errors exactly when Go returns `ErrBadPattern` for this pair. Like Go,
/// a chunk is fully checked once matching reaches it, but chunks after the
/// first mismatch are not, so `a*[` is an error for `ab` and not for `x`.
pub fn path_match(pattern: &str, path: &str) -> Result<bool, BadPattern> {
    go_match(pattern.as_bytes(), path.as_bytes()).map_err(|e| BadPattern(e.message().to_string()))
}

/// `filepath.Match` on bytes, returning the precise reason on error.
pub(crate) fn go_match(pattern: &[u8], name: &[u8]) -> Result<bool, GlobError> {
    let mut pattern = pattern;
    let mut name = name;
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // Trailing `*` matches the rest of the name unless it has a `/`.
            return Ok(!name.contains(&b'/'));
        }
        // Look for a match at the current position.
        let (t, ok, err) = match_chunk(chunk, name);
        // If this is the last chunk the name must be used up; otherwise a
        // later star could still make it match.
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if let Some(e) = err {
            return Err(e);
        }
        if star {
            // Look for a match skipping i+1 bytes; a star cannot skip a `/`.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok, err) = match_chunk(chunk, &name[i + 1..]);
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'chunks;
                }
                if let Some(e) = err {
                    return Err(e);
                }
                i += 1;
            }
        }
        // Unlike `path.Match`, `filepath.Match` does not validate the chunks
        // after the first one that fails, so `a*[` is only reported as
        // malformed for names where matching gets that far. Docker's
        // `filepath.Match(pattern, ".")` check inherits this laziness.
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the next chunk: leading stars (collapsed), then everything up
/// to the next `*` that is not inside what looks like a class.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut pattern = pattern;
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // Skip the escaped byte; error checking is left to match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches `chunk` (no stars outside classes) against the start of `s`.
/// Returns the unmatched rest of `s`, whether it matched, and a syntax error.
/// Like Go, it keeps parsing the chunk after a mismatch so syntax errors are
/// found regardless of the name.
fn match_chunk<'a>(chunk: &[u8], s: &'a [u8]) -> (&'a [u8], bool, Option<GlobError>) {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = match get_esc(chunk) {
                        Ok(v) => v,
                        Err(e) => return (&[], false, Some(e)),
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = match get_esc(&chunk[1..]) {
                            Ok(v) => v,
                            Err(e) => return (&[], false, Some(e)),
                        };
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return (&[], false, Some(GlobError::TrailingBackslash));
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        (&[], false, None)
    } else {
        (s, true, None)
    }
}

/// Reads one possibly-escaped character of a class; Go's `getEsc`.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), GlobError> {
    let mut chunk = chunk;
    match chunk.first() {
        None => return Err(GlobError::UnterminatedClass),
        Some(b'-') => return Err(GlobError::MisplacedDash),
        Some(b']') => return Err(GlobError::EmptyClassOrRange),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(GlobError::TrailingBackslash);
            }
        }
        Some(_) => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == 0xFFFD && n == 1 {
        return Err(GlobError::InvalidUtf8);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(GlobError::UnterminatedClass);
    }
    Ok((r, rest))
}

/// Go's `utf8.DecodeRune`: the first code point and its width, or
/// `(U+FFFD, 1)` for an invalid or truncated sequence, `(U+FFFD, 0)` when empty.
pub(crate) fn decode_rune(b: &[u8]) -> (u32, usize) {
    let Some(&b0) = b.first() else {
        return (0xFFFD, 0);
    };
    if b0 < 0x80 {
        return (u32::from(b0), 1);
    }
    let width = match b0 {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (0xFFFD, 1),
    };
    match b.get(..width).map(std::str::from_utf8) {
        Some(Ok(s)) => match s.chars().next() {
            Some(c) => (u32::from(c), width),
            None => (0xFFFD, 1),
        },
        _ => (0xFFFD, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rune_like_go() {
        assert_eq!(decode_rune(b""), (0xFFFD, 0));
        assert_eq!(decode_rune(b"a"), ('a' as u32, 1));
        assert_eq!(decode_rune("é".as_bytes()), ('é' as u32, 2));
        assert_eq!(decode_rune(&"é".as_bytes()[1..]), (0xFFFD, 1));
        assert_eq!(decode_rune("☺x".as_bytes()), ('☺' as u32, 3));
        assert_eq!(decode_rune("\u{FFFD}".as_bytes()), (0xFFFD, 3));
    }

    #[test]
    fn chunks() {
        assert_eq!(scan_chunk(b"**a[*]b*c"), (true, &b"a[*]b"[..], &b"*c"[..]));
        assert_eq!(scan_chunk(b"a\\*b"), (false, &b"a\\*b"[..], &b""[..]));
    }
}
