//! From text to logical instructions ("nodes"), following BuildKit's
//! `parser.Parse`: parser directives, comments, line continuations and
//! heredoc bodies.
//!
//! Getting this layer exactly right matters more than anything else for a
//! false-skip-free analysis: a heredoc body or a continuation line that is
//! mistaken for an instruction (or the reverse) changes which COPY lines
//! exist at all.

use crate::json::{parse_array, JsonArgs};
use crate::syntax::{
    heredocs_in_line, is_space, parse_words, split_command, split_ws, split_ws_once, HeredocSpec,
};
use crate::ParseError;

/// Parser directives found at the top of the file.
#[derive(Debug, Clone)]
struct Directives {
    escape: char,
    /// The `# syntax=` frontend image, if any.
    syntax: Option<String>,
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    /// BuildKit's directive parser: the leading lines of the form
    /// `# key=value` with a known key; the first other line ends the
    /// directive block (even a blank line or an ordinary comment).
    fn check(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some(body) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(());
        };
        let Some((key, value)) = directive(body.trim_start_matches(is_space)) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        if key == "syntax" {
            self.syntax = Some(value.to_string());
        }
        if key == "escape" {
            match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => {
                    return Err(format!(
                        "invalid escape token '{value}' does not match ` or \\"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (RE2 `\s` is ASCII).
fn directive(s: &str) -> Option<(&str, &str)> {
    let re_space = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let first = s.chars().next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let key_end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    let (key, after) = s.split_at(key_end);
    let after = after.trim_start_matches(re_space).strip_prefix('=')?;
    let value = after.trim_matches(re_space);
    (!value.is_empty() && !value.contains('\n')).then_some((key, value))
}

/// Physical lines, numbered from 1, without their line terminators.
struct Lines<'a> {
    rest: &'a str,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match self.rest.find('\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        self.number += 1;
        // BuildKit's trimNewline strips every trailing \r and \n.
        Some(line.trim_end_matches(['\r', '\n']))
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

/// BuildKit's `processLine`: optional left trim, directive detection, and
/// comment lines become empty.
fn process_line<'a>(
    d: &mut Directives,
    line: &'a str,
    strip_left: bool,
) -> Result<&'a str, String> {
    let line = if strip_left {
        line.trim_start_matches(is_space)
    } else {
        line
    };
    d.check(line)?;
    Ok(if is_comment(line) { "" } else { line })
}

/// BuildKit's line continuation rule: the escape character, optionally
/// followed by spaces/tabs, at the end of the line — unless it is itself
/// escaped. Returns the line without it and whether the logical line ends.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() {
            return ("", false);
        }
        if !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Arguments of a node, in the shape BuildKit's line parsers produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Args {
    /// FROM, shell-form COPY/ADD and every JSON form.
    List(Vec<String>),
    /// ARG: quote-aware words.
    Words(Vec<String>),
    /// ENV/LABEL key/value pairs (still quoted).
    NameVals(Vec<(String, String)>),
    /// Everything else (RUN shell form, USER, ...).
    Text(String),
    /// COPY/ADD JSON form followed by more text: read as JSON by current
    /// BuildKit, as shell form by stricter parsers. Both are analyzed.
    Ambiguous {
        json: Vec<String>,
        shell: Vec<String>,
    },
}

/// One logical instruction.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub line: usize,
    /// Lower-cased keyword.
    pub cmd: String,
    /// Keyword as written, for messages.
    pub cmd_raw: String,
    pub flags: Vec<String>,
    pub args: Args,
    pub json: bool,
    /// ONBUILD's trigger instruction.
    pub sub: Option<Box<Node>>,
}

impl Node {
    /// BuildKit's `canContainHeredoc`: RUN/COPY/ADD in shell form, also as
    /// an ONBUILD trigger.
    fn can_contain_heredoc(&self) -> bool {
        let n = match (&self.cmd[..], &self.sub) {
            ("onbuild", Some(sub)) => sub,
            _ => self,
        };
        matches!(&n.cmd[..], "run" | "copy" | "add") && !n.json
    }
}

const NON_STRING_JSON: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

fn maybe_json_to_list(rest: &str) -> Result<(Args, bool), String> {
    match parse_array(rest) {
        JsonArgs::Strings(v, true) => Ok((
            Args::Ambiguous {
                json: v,
                shell: split_ws(rest),
            },
            true,
        )),
        JsonArgs::Strings(v, false) => Ok((Args::List(v), true)),
        JsonArgs::NonString => Err(NON_STRING_JSON.into()),
        JsonArgs::NotJson => Ok((Args::List(split_ws(rest)), false)),
    }
}

fn maybe_json(rest: &str) -> Result<(Args, bool), String> {
    if rest.is_empty() {
        return Ok((Args::Text(String::new()), false));
    }
    match parse_array(rest) {
        JsonArgs::Strings(v, _) => Ok((Args::List(v), true)),
        JsonArgs::NonString => Err(NON_STRING_JSON.into()),
        JsonArgs::NotJson => Ok((Args::Text(rest.to_string()), false)),
    }
}

/// BuildKit's `parseNameVal` for ENV and LABEL.
fn name_vals(rest: &str, key: &str, escape: char) -> Result<Args, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Args::NameVals(Vec::new()));
    };
    if !first.contains('=') {
        // Legacy form: `ENV KEY value with spaces`.
        let Some((k, v)) = split_ws_once(rest) else {
            return Err(format!("{key} must have two arguments"));
        };
        return Ok(Args::NameVals(vec![(k, v)]));
    }
    let mut out = Vec::new();
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        out.push((k.to_string(), v.to_string()));
    }
    Ok(Args::NameVals(out))
}

/// BuildKit's `newNodeFromLine`.
fn parse_node(line: &str, escape: char, line_no: usize, nested: bool) -> Result<Node, String> {
    let split = split_command(line, escape);
    let cmd = split.cmd.to_lowercase();
    let rest = split.rest.as_str();
    let mut json = false;
    let mut sub = None;
    let args = match cmd.as_str() {
        "add" | "copy" | "volume" => {
            let (a, j) = maybe_json_to_list(rest)?;
            json = j;
            a
        }
        "run" | "cmd" | "entrypoint" | "shell" => {
            let (a, j) = maybe_json(rest)?;
            json = j;
            a
        }
        "arg" => Args::Words(parse_words(rest, escape)),
        "env" => name_vals(rest, "ENV", escape)?,
        "label" => name_vals(rest, "LABEL", escape)?,
        "from" | "expose" => Args::List(split_ws(rest)),
        "onbuild" => {
            if nested {
                return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
            }
            if !rest.is_empty() {
                sub = Some(Box::new(parse_node(rest, escape, line_no, true)?));
            }
            Args::Text(rest.to_string())
        }
        _ => Args::Text(rest.to_string()),
    };
    Ok(Node {
        line: line_no,
        cmd,
        cmd_raw: split.cmd,
        flags: split.flags,
        args,
        json,
        sub,
    })
}

/// The output of the line-level parser.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub escape: char,
    /// The `# syntax=` directive's image, if any.
    pub syntax: Option<String>,
    pub nodes: Vec<Node>,
    /// Number of physical lines (for messages about the end of the file).
    pub line_count: usize,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Reads the bodies of `specs` (in order) from `lines`.
fn skip_heredocs(
    lines: &mut Lines<'_>,
    specs: &[HeredocSpec],
    start: usize,
) -> Result<(), ParseError> {
    for spec in specs {
        let mut terminated = false;
        while let Some(l) = lines.next() {
            let candidate = if spec.chomp {
                l.trim_start_matches('\t')
            } else {
                l
            };
            if candidate == spec.name {
                terminated = true;
                break;
            }
        }
        if !terminated {
            let dash = if spec.chomp { "-" } else { "" };
            return Err(err(
                start,
                format!(
                    "unterminated heredoc <<{dash}{name} (started here); add a line `{name}` \
                     (alone on the line, no leading spaces{tabs}) after its content",
                    name = spec.name,
                    tabs = if spec.chomp { "; tabs are allowed" } else { "" },
                ),
            ));
        }
    }
    Ok(())
}

/// Parses the whole text into nodes.
pub(crate) fn parse_nodes(text: &str) -> Result<Parsed, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut d = Directives {
        escape: '\\',
        syntax: None,
        done: false,
        seen: Vec::new(),
    };
    let mut lines = Lines {
        rest: text,
        number: 0,
    };
    let mut nodes = Vec::new();
    while let Some(raw) = lines.next() {
        let current = lines.number;
        let processed = process_line(&mut d, raw, true).map_err(|m| err(current, m))?;
        let start = current;
        let (first, mut eol) = trim_continuation(processed, d.escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut line = first.to_string();
        while !eol {
            let Some(raw) = lines.next() else { break };
            let current = lines.number;
            let processed = process_line(&mut d, raw, false).map_err(|m| err(current, m))?;
            // Comment lines and blank lines inside a continuation are
            // skipped; they neither end nor extend the instruction.
            if is_comment(raw) || processed.trim_start_matches(is_space).is_empty() {
                continue;
            }
            let (part, end) = trim_continuation(processed, d.escape);
            line.push_str(part);
            eol = end;
        }
        let node = parse_node(&line, d.escape, start, false).map_err(|m| err(start, m))?;
        if node.can_contain_heredoc() && line.contains("<<") {
            let specs = heredocs_in_line(&line).map_err(|e| err(start, e.to_string()))?;
            skip_heredocs(&mut lines, &specs, start)?;
        }
        nodes.push(node);
    }
    Ok(Parsed {
        escape: d.escape,
        syntax: d.syntax,
        nodes,
        line_count: lines.number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(text: &str) -> Vec<(usize, String)> {
        parse_nodes(text)
            .unwrap()
            .nodes
            .into_iter()
            .map(|n| (n.line, n.cmd))
            .collect()
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a \\  \t", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a \\\\", '\\'), ("a \\\\", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\", true));
    }

    #[test]
    fn directives_only_at_top() {
        assert_eq!(parse_nodes("# escape=`\nFROM a").unwrap().escape, '`');
        assert_eq!(parse_nodes("\n# escape=`\nFROM a").unwrap().escape, '\\');
        assert_eq!(
            parse_nodes("# hi\n# escape=`\nFROM a").unwrap().escape,
            '\\'
        );
        assert_eq!(
            parse_nodes("# syntax=docker/dockerfile:1\n#ESCAPE = ` \nFROM a")
                .unwrap()
                .escape,
            '`'
        );
        assert!(parse_nodes("# escape=x\nFROM a").is_err());
        assert!(parse_nodes("# escape=`\n# escape=\\\nFROM a").is_err());
    }

    #[test]
    fn comments_and_blank_lines_in_continuations() {
        let text = "FROM a\nRUN echo \\\n# comment\n\n   hi\nCOPY x /";
        assert_eq!(
            cmds(text),
            vec![(1, "from".into()), (2, "run".into()), (6, "copy".into())]
        );
    }

    #[test]
    fn heredoc_bodies_are_skipped() {
        let text = "FROM a\nRUN <<EOF\nCOPY secret /\nEOF\nCOPY <<-X /dst\n\thello\n\tX\nUSER me";
        assert_eq!(
            cmds(text),
            vec![
                (1, "from".into()),
                (2, "run".into()),
                (5, "copy".into()),
                (8, "user".into())
            ]
        );
        let e = parse_nodes("FROM a\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated heredoc <<EOF"));
    }
}
