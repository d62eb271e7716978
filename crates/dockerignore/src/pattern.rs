//! One compiled `.dockerignore` pattern, as Docker's patternmatcher builds it.
//!
//! patternmatcher classifies each cleaned pattern while translating it to a
//! Go regular expression, and for three classes skips the regexp entirely:
//!
//! * exact:  no wildcard at all, compared with `==`;
//! * prefix: a literal followed by a final `**` (`dir/**`), compared with
//!   `HasPrefix(path, pattern minus "**")`;
//! * suffix: any pattern that *starts* with `**` and has no other wildcard
//!   (`**/foo`, `**.txt`, `**foo`), compared with
//!   `HasSuffix(path, pattern minus "**")` or, for `**/x`, `path == "x"`.
//!
//! These shortcuts are not equivalent to the regexp: `**.txt` matches
//! `dir/a.txt` although its regexp `^(.*/)?\.txt$` would not. Docker uses the
//! shortcuts, so we do too. Everything else goes through [`Regex`].

use crate::regex::{Regex, RegexError};

#[derive(Clone, Debug)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
}

#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    /// The cleaned pattern without its `!` (patternmatcher's `cleanedPattern`).
    pub(crate) text: String,
    /// A `!` pattern: re-includes what it matches.
    pub(crate) exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// Translates `text` the way patternmatcher's `compile` does.
    pub(crate) fn compile(text: String, exclusion: bool) -> Result<Pattern, RegexError> {
        #[derive(PartialEq, Eq, Clone, Copy)]
        enum Detected {
            Exact,
            Prefix,
            Suffix,
            Regexp,
        }
        let mut re = String::from("^");
        let mut detected = Detected::Exact;
        let mut chars = text.chars().peekable();
        // Go's text/scanner silently drops a byte-order mark at the very start.
        if chars.peek() == Some(&'\u{FEFF}') {
            chars.next();
        }
        let mut i = 0usize;
        while let Some(ch) = chars.next() {
            match ch {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    // `**/` is treated as `**`.
                    if chars.peek() == Some(&'/') {
                        chars.next();
                    }
                    if chars.peek().is_none() {
                        // A final `**` accepts everything below, like .gitignore.
                        if detected == Detected::Exact {
                            detected = Detected::Prefix;
                        } else {
                            re.push_str(".*");
                            detected = Detected::Regexp;
                        }
                    } else {
                        // Any number of directories, including none.
                        re.push_str("(.*/)?");
                        detected = Detected::Regexp;
                    }
                    if i == 0 {
                        detected = Detected::Suffix;
                    }
                }
                '*' => {
                    re.push_str("[^/]*");
                    detected = Detected::Regexp;
                }
                '?' => {
                    re.push_str("[^/]");
                    detected = Detected::Regexp;
                }
                // patternmatcher means to escape `.+()|{}$`, but its bitmap
                // only has room for `.+()$`; `|`, `{` and `}` reach the regexp
                // unescaped (and act as alternation and repetition there).
                '.' | '+' | '(' | ')' | '$' => {
                    re.push('\\');
                    re.push(ch);
                }
                '\\' => match chars.next() {
                    // The next character is passed on escaped, so `\d`, `\b`,
                    // `\Q` ... keep their Go regexp meaning.
                    Some(next) => {
                        re.push('\\');
                        re.push(next);
                        detected = Detected::Regexp;
                    }
                    None => re.push('\\'),
                },
                '[' | ']' => {
                    re.push(ch);
                    detected = Detected::Regexp;
                }
                _ => re.push(ch),
            }
            i += 1;
        }
        let kind = match detected {
            Detected::Exact => Kind::Exact,
            Detected::Prefix => Kind::Prefix,
            Detected::Suffix => Kind::Suffix,
            Detected::Regexp => {
                re.push('$');
                Kind::Regex(Regex::new(&re)?)
            }
        };
        Ok(Pattern {
            text,
            exclusion,
            kind,
        })
    }

    /// patternmatcher's `Pattern.match` for one path. Byte-wise like Go, so
    /// even odd inputs (a pattern starting with a byte-order mark) behave the
    /// same and cannot panic.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let p = path.as_bytes();
        let t = self.text.as_bytes();
        match &self.kind {
            Kind::Exact => p == t,
            Kind::Prefix => p.starts_with(&t[..t.len().saturating_sub(2)]),
            Kind::Suffix => {
                let suffix = t.get(2..).unwrap_or_default();
                p.ends_with(suffix) || (suffix.first() == Some(&b'/') && p == &suffix[1..])
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    /// fsutil's `patternWithoutTrailingGlob`: the pattern minus one trailing
    /// `/**`, then minus one trailing `/*`.
    pub(crate) fn without_trailing_glob(&self) -> &str {
        let s = self.text.strip_suffix("/**").unwrap_or(&self.text);
        s.strip_suffix("/*").unwrap_or(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(p: &str) -> &'static str {
        match Pattern::compile(p.to_string(), false).map(|p| p.kind) {
            Ok(Kind::Exact) => "exact",
            Ok(Kind::Prefix) => "prefix",
            Ok(Kind::Suffix) => "suffix",
            Ok(Kind::Regex(_)) => "regexp",
            Err(_) => "error",
        }
    }

    /// patternmatcher's own compile table.
    #[test]
    fn classification_matches_patternmatcher() {
        let cases = [
            ("*", "regexp"),
            ("file*", "regexp"),
            ("*file", "regexp"),
            ("a*/b", "regexp"),
            ("**", "suffix"),
            ("**/**", "regexp"),
            ("dir/**", "prefix"),
            ("**/dir", "suffix"),
            ("**/dir2/*", "regexp"),
            ("**/dir2/**", "regexp"),
            ("**file", "suffix"),
            ("**/file*txt", "regexp"),
            ("**/**/*.txt", "regexp"),
            ("a[b-d]e", "regexp"),
            (".*", "regexp"),
            ("abc.def", "exact"),
            ("abc?def", "regexp"),
            ("**/foo/bar", "suffix"),
            ("a(b)c/def", "exact"),
            ("a.|)$(}+{bc", "exact"),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "exact",
            ),
            ("[Local-Only]", "error"),
        ];
        for (p, want) in cases {
            assert_eq!(kind(p), want, "pattern {p:?}");
        }
    }

    #[test]
    fn suffix_shortcut_is_not_the_regexp() {
        let p = Pattern::compile("**.txt".to_string(), false).unwrap();
        assert!(p.matches("dir/a.txt"));
        let p = Pattern::compile("**foo".to_string(), false).unwrap();
        assert!(p.matches("barfoo"));
    }

    #[test]
    fn trailing_glob() {
        let p = Pattern::compile("a/*/**".to_string(), true).unwrap();
        assert_eq!(p.without_trailing_glob(), "a");
        let p = Pattern::compile("a/**".to_string(), true).unwrap();
        assert_eq!(p.without_trailing_glob(), "a");
        let p = Pattern::compile("a/b".to_string(), true).unwrap();
        assert_eq!(p.without_trailing_glob(), "a/b");
    }
}
