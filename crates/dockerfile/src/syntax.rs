//! Splitting one logical instruction line into its parts, the way BuildKit's
//! parser does (`splitCommand`, `extractBuilderFlags`, `parseWords`, heredoc
//! word detection).
//!
//! These rules look arbitrary — flags end at the first word not starting with
//! `--`, COPY's shell form splits on whitespace *without* honouring quotes,
//! ARG/ENV split on whitespace *with* quotes — but they decide which strings
//! later reach variable substitution, so they are reproduced as written.

use crate::shell::{EmptyEnv, LexError, Lexer};

/// Whitespace as Go's `unicode.IsSpace` sees it.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// The separators of BuildKit's `[\t\v\f\r ]+` token regexp.
fn is_token_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// An instruction line split into keyword, `--flags` and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    /// The keyword as written (case preserved, for messages).
    pub cmd: String,
    pub flags: Vec<String>,
    pub rest: String,
}

/// BuildKit's `splitCommand`.
pub(crate) fn split_command(line: &str, escape: char) -> Split {
    let line = line.trim_matches(is_space);
    let (cmd, tail) = match line.find(is_token_ws) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_token_ws)),
        None => (line, ""),
    };
    let (rest, flags) = if tail.is_empty() && cmd.len() == line.len() {
        (String::new(), Vec::new())
    } else {
        extract_flags(tail, escape)
    };
    Split {
        cmd: cmd.to_string(),
        flags,
        rest: rest.trim_matches(is_space).to_string(),
    }
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// BuildKit's `extractBuilderFlags`: leading words that start with `--` are
/// flags (quotes and escapes inside them are processed); a bare `--` ends the
/// flags; everything from the first other word on is returned as the rest.
pub(crate) fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut k = 0;
    loop {
        let at_end = k >= chars.len();
        let (pos, mut ch) = if at_end { (line.len(), '\0') } else { chars[k] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                k += 1;
                continue;
            }
            let next_is_dash = chars.get(k + 1).is_some_and(|&(_, c)| c == '-');
            if ch != '-' || !next_is_dash {
                return (line[pos..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[pos..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                k += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                k += 1;
                continue;
            }
            if ch == escape {
                if k + 1 >= chars.len() {
                    k += 1;
                    continue;
                }
                k += 1;
                ch = chars[k].1;
            }
            word.push(ch);
            k += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            k += 1;
            continue;
        }
        if ch == escape {
            if k + 1 >= chars.len() {
                phase = Phase::Word;
                k += 1;
                continue;
            }
            k += 1;
            ch = chars[k].1;
        }
        word.push(ch);
        k += 1;
    }
    (String::new(), words)
}

/// BuildKit's `parseWords` (used for ARG, ENV, LABEL): whitespace separates
/// words except inside quotes; quotes and escapes are kept in the words and
/// removed later by variable substitution.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut k = 0;
    loop {
        let at_end = k >= chars.len();
        let mut ch = if at_end { '\0' } else { chars[k] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                k += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                k += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if k + 1 == chars.len() {
                    k += 1;
                    continue;
                }
                word.push(ch);
                k += 1;
                ch = chars[k];
            }
            word.push(ch);
            k += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if k + 1 == chars.len() {
                phase = Phase::Word;
                k += 1;
                continue;
            }
            word.push(ch);
            k += 1;
            ch = chars[k];
        }
        word.push(ch);
        k += 1;
    }
    words
}

/// BuildKit's whitespace split (`[\t\v\f\r ]+`), used by FROM and by the
/// shell form of COPY/ADD. Quotes are *not* honoured here.
pub(crate) fn split_ws(rest: &str) -> Vec<String> {
    rest.split(is_token_ws)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits `KEY value` (legacy ENV form) at the first whitespace run.
pub(crate) fn split_ws_once(rest: &str) -> Option<(String, String)> {
    let i = rest.find(is_token_ws)?;
    let value = rest[i..].trim_start_matches(is_token_ws);
    Some((rest[..i].to_string(), value.to_string()))
}

/// A heredoc opener such as `<<EOF`, `<<-EOF` or `<<"EOF"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeredocSpec {
    pub name: String,
    /// `<<-`: leading tabs are stripped (also from the terminator line).
    pub chomp: bool,
}

/// BuildKit's `ParseHeredoc`: is `word` a heredoc opener
/// (`^(\d*)<<(-?)([^<]*)$` with a single-word name)?
pub(crate) fn parse_heredoc_word(word: &str) -> Result<Option<HeredocSpec>, LexError> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lexer = Lexer {
        escape: '\\',
        raw_quotes: false,
        raw_escapes: false,
        skip_unset: true,
    };
    let words = lexer.process(rest, &EmptyEnv)?.words;
    if words.len() != 1 {
        return Ok(None);
    }
    Ok(Some(HeredocSpec {
        name: words.into_iter().next().unwrap_or_default(),
        chomp,
    }))
}

/// BuildKit's `heredocsFromLine`: every word of the (whole) instruction line
/// that is a heredoc opener, in order. Lexing errors of the line itself are
/// ignored as BuildKit does (no heredocs then); only excessive nesting is an
/// error because we cannot tell what BuildKit would see.
pub(crate) fn heredocs_in_line(line: &str) -> Result<Vec<HeredocSpec>, LexError> {
    let lexer = Lexer {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
    };
    let words = match lexer.process(line, &EmptyEnv) {
        Ok(e) => e.words,
        Err(LexError::TooDeep) => return Err(LexError::TooDeep),
        Err(LexError::Syntax(_)) => Vec::new(),
    };
    let mut out = Vec::new();
    for w in &words {
        if let Some(h) = parse_heredoc_word(w)? {
            out.push(h);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_command_and_flags() {
        let s = split_command("  copy --from=build --chmod=755 a b  ", '\\');
        assert_eq!(s.cmd, "copy");
        assert_eq!(s.flags, vec!["--from=build", "--chmod=755"]);
        assert_eq!(s.rest, "a b");
        let s = split_command("RUN --mount=type=bind,source=\"a b\",target=/x make", '\\');
        assert_eq!(s.flags, vec!["--mount=type=bind,source=a b,target=/x"]);
        assert_eq!(s.rest, "make");
        let s = split_command("COPY --link -- --weird /dst", '\\');
        assert_eq!(s.flags, vec!["--link"]);
        assert_eq!(s.rest, "--weird /dst");
        let s = split_command("RUN make --jobs=4", '\\');
        assert!(s.flags.is_empty());
        assert_eq!(s.rest, "make --jobs=4");
        let s = split_command("FROM", '\\');
        assert_eq!((s.cmd.as_str(), s.rest.as_str()), ("FROM", ""));
        let s = split_command("COPY --link", '\\');
        assert_eq!(s.flags, vec!["--link"]);
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"A="a b" B=c\ d 'e f'"#, '\\'),
            vec![r#"A="a b""#, r"B=c\ d", "'e f'"]
        );
    }

    #[test]
    fn ws_split_ignores_quotes() {
        assert_eq!(split_ws("\"a b\"  /dst"), vec!["\"a", "b\"", "/dst"]);
        assert_eq!(
            split_ws_once("KEY  a value"),
            Some(("KEY".into(), "a value".into()))
        );
    }

    #[test]
    fn heredoc_words() {
        let h = |w| parse_heredoc_word(w).unwrap();
        assert_eq!(
            h("<<EOF"),
            Some(HeredocSpec {
                name: "EOF".into(),
                chomp: false
            })
        );
        assert_eq!(
            h("<<-\"EOT\"").map(|x| (x.name, x.chomp)),
            Some(("EOT".into(), true))
        );
        assert_eq!(h("3<<'X'").map(|x| x.name), Some("X".into()));
        assert_eq!(h("cat<<EOF"), None);
        assert_eq!(h("<<"), None);
        assert_eq!(h("<<<x"), None);
        let names: Vec<_> = heredocs_in_line("RUN <<A cat - <<-B > \"<<C\"")
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, vec!["A", "B"]);
    }
}
