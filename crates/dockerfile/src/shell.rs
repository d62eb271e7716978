//! Variable substitution and word splitting, modelled on BuildKit's shell lexer
//! (`frontend/dockerfile/shell`).
//!
//! BuildKit does not run a shell to expand `$VAR` in COPY/ADD/FROM/ARG/ENV: it
//! runs its own small lexer. To predict which context paths a build reads we
//! have to reproduce that lexer's behaviour exactly — quotes, escapes and the
//! `${VAR:-default}` family — *and* we have to know when we cannot predict the
//! result. That is why lookups are three-valued ([`Lookup`]): a variable can
//! be set, definitely unset, or unknown (for example it may come from a base
//! image's `ENV`, which a static analysis cannot see). Any unknown lookup that
//! reaches the result marks the whole result as unknown, and the caller then
//! falls back to a conservative answer instead of guessing.

/// Nesting depth limit for `${a:-${b:-...}}`. BuildKit recurses without a
/// limit; we bound it so hostile input yields an error instead of a stack
/// overflow. Real Dockerfiles nest two or three levels.
pub(crate) const MAX_DEPTH: usize = 64;

/// Result of looking a variable up in an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The variable is set (possibly to the empty string).
    Set(String),
    /// The variable is definitely not set.
    Unset,
    /// The value cannot be known statically; the string says why.
    Unknown(String),
}

/// A source of variable values.
pub(crate) trait Env {
    fn lookup(&self, name: &str) -> Lookup;
}

/// An environment where nothing is set: used where BuildKit lexes with an
/// empty environment (heredoc detection).
pub(crate) struct EmptyEnv;

impl Env for EmptyEnv {
    fn lookup(&self, _name: &str) -> Lookup {
        Lookup::Unset
    }
}

/// A lexing failure. BuildKit fails the build on these, so they are reported
/// as errors rather than papered over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LexError {
    Syntax(String),
    TooDeep,
}

impl std::fmt::Display for LexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LexError::Syntax(m) => f.write_str(m),
            LexError::TooDeep => write!(
                f,
                "variable substitution is nested more than {MAX_DEPTH} levels deep"
            ),
        }
    }
}

/// An unknown variable that influenced a result, with the reason it is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownVar {
    pub name: String,
    pub why: String,
}

/// The outcome of processing one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    /// The processed text. When `known` is false, unknown expansions
    /// contribute nothing, so the text holds exactly the characters that
    /// appear whatever the unknown values are (not necessarily adjacent).
    pub text: String,
    /// Whether `text` is exactly what BuildKit would produce.
    pub known: bool,
    /// Variables whose unknown values made `known` false (deduplicated).
    pub unknown: Vec<UnknownVar>,
    /// The text split into shell words (BuildKit's `ProcessWords`).
    pub words: Vec<String>,
}

/// Lexer configuration; mirrors the switches of BuildKit's `shell.Lex`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output (used for heredoc detection).
    pub raw_quotes: bool,
    /// Keep escape characters in the output (used for heredoc detection).
    pub raw_escapes: bool,
    /// Leave `$NAME` / `${NAME...}` as written when NAME is unset.
    pub skip_unset: bool,
}

impl Lexer {
    /// The lexer BuildKit uses to expand instruction arguments.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
        }
    }

    /// Processes `word`: removes quotes and escapes and substitutes variables.
    pub fn process(&self, word: &str, env: &dyn Env) -> Result<Expanded, LexError> {
        let mut run = Run {
            chars: word.chars().collect(),
            pos: 0,
            lexer: *self,
            raw_escapes: self.raw_escapes,
            env,
            depth: 0,
            unknown: Vec::new(),
        };
        let piece = run.stop_on(None, self.raw_escapes)?;
        Ok(Expanded {
            text: piece.text,
            known: piece.known,
            unknown: run.unknown,
            words: piece.words,
        })
    }
}

struct Piece {
    text: String,
    known: bool,
    words: Vec<String>,
}

/// BuildKit's word accumulator: characters produced by `$` expansion are
/// split on whitespace, quoted text is kept whole.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct Run<'a> {
    chars: Vec<char>,
    pos: usize,
    lexer: Lexer,
    raw_escapes: bool,
    env: &'a dyn Env,
    depth: usize,
    unknown: Vec<UnknownVar>,
}

/// Shell special parameters (`$@`, `$?`, ...): BuildKit reads them as
/// one-character variable names.
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

fn syntax(msg: impl Into<String>) -> LexError {
    LexError::Syntax(msg.into())
}

impl Run<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn lookup(&mut self, name: &str) -> Lookup {
        let found = self.env.lookup(name);
        if let Lookup::Unknown(why) = &found {
            if !self.unknown.iter().any(|u| u.name == name) {
                self.unknown.push(UnknownVar {
                    name: name.to_string(),
                    why: why.clone(),
                });
            }
        }
        found
    }

    /// Processes characters until `stop` (consumed) or the end of input.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<Piece, LexError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(LexError::TooDeep);
        }
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let out = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        out
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<Piece, LexError> {
        let mut text = String::new();
        let mut known = true;
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok(Piece {
                    text,
                    known,
                    words: words.finish(),
                });
            }
            match ch {
                '$' => {
                    let p = self.dollar()?;
                    known &= p.known;
                    text.push_str(&p.text);
                    words.add_string(&p.text);
                }
                '\'' => {
                    let s = self.single_quote()?;
                    text.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let p = self.double_quote()?;
                    known &= p.known;
                    text.push_str(&p.text);
                    words.add_raw_string(&p.text);
                }
                _ => {
                    self.next();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            text.push(ch);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        text.push(escaped);
                    } else {
                        words.add_char(ch);
                        text.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(syntax(format!(
                "unexpected end of statement while looking for matching {stop}"
            )));
        }
        Ok(Piece {
            text,
            known,
            words: words.finish(),
        })
    }

    /// `'...'`: everything literal, no escapes.
    fn single_quote(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(syntax(
                        "unexpected end of statement while looking for matching single-quote",
                    ))
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `"..."`: `$` expands; the escape character only escapes `"`, `$` and
    /// itself, otherwise it stays literal.
    fn double_quote(&mut self) -> Result<Piece, LexError> {
        let mut text = String::new();
        let mut known = true;
        let open = self.next();
        if self.lexer.raw_quotes {
            text.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(syntax(
                        "unexpected end of statement while looking for matching double-quote",
                    ))
                }
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        text.push('"');
                    }
                    return Ok(Piece {
                        text,
                        known,
                        words: Vec::new(),
                    });
                }
                Some('$') => {
                    let p = self.dollar()?;
                    known &= p.known;
                    text.push_str(&p.text);
                }
                Some(_) => {
                    let Some(mut ch) = self.next() else { continue };
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            text.push(ch);
                        }
                        match self.peek() {
                            // Escape at the end: ignored; the loop then
                            // reports the missing closing quote.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                self.next();
                                ch = n;
                            }
                            Some(_) => {}
                        }
                    }
                    text.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphabetic() || ch.is_numeric() || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn known(text: String) -> Piece {
        Piece {
            text,
            known: true,
            words: Vec::new(),
        }
    }

    fn unknown_piece() -> Piece {
        Piece {
            text: String::new(),
            known: false,
            words: Vec::new(),
        }
    }

    /// Records a construct this analysis does not evaluate (pattern
    /// operators) so the result is reported as unknown instead of guessed.
    fn unsupported(&mut self, name: &str, what: &str) -> Piece {
        let label = format!("{name} ({what})");
        if !self.unknown.iter().any(|u| u.name == label) {
            self.unknown.push(UnknownVar {
                name: label,
                why: format!(
                    "the {what} operator is not evaluated by this analysis, so the result cannot be predicted"
                ),
            });
        }
        Self::unknown_piece()
    }

    fn dollar(&mut self) -> Result<Piece, LexError> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok(Self::known("$".into()));
            }
            return Ok(match self.lookup(&name) {
                Lookup::Set(v) => Self::known(v),
                Lookup::Unset if self.lexer.skip_unset => Self::known(format!("${name}")),
                Lookup::Unset => Self::known(String::new()),
                Lookup::Unknown(_) => Self::unknown_piece(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(syntax("syntax error: missing '}'")),
            Some('{' | '}' | ':') => return Err(syntax("syntax error: bad substitution")),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return Err(syntax("syntax error: missing '}'"));
        };
        let mut chs = ch.to_string();
        match ch {
            '}' => Ok(match self.lookup(&name) {
                Lookup::Set(v) => Self::known(v),
                Lookup::Unset if self.lexer.skip_unset => Self::known(format!("${{{name}}}")),
                Lookup::Unset => Self::known(String::new()),
                Lookup::Unknown(_) => Self::unknown_piece(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                if null_is_unset {
                    let Some(c) = self.next() else {
                        return Err(syntax("syntax error: missing '}'"));
                    };
                    ch = c;
                    chs.push(c);
                }
                let pattern_op = ch == '#' || ch == '%';
                if null_is_unset && pattern_op {
                    return Err(syntax(format!(
                        "unsupported modifier ({chs}) in substitution"
                    )));
                }
                let word = match self.stop_on(Some('}'), pattern_op) {
                    Ok(w) => w,
                    Err(LexError::Syntax(_)) if self.peek().is_none() => {
                        return Err(syntax("syntax error: missing '}'"))
                    }
                    Err(e) => return Err(e),
                };
                let value = self.lookup(&name);
                if self.lexer.skip_unset && value == Lookup::Unset {
                    return Ok(Self::known(format!("${{{name}{chs}{}}}", word.text)));
                }
                let value = match value {
                    Lookup::Set(v) => Some(v),
                    Lookup::Unset => None,
                    Lookup::Unknown(_) => return Ok(Self::unknown_piece()),
                };
                let empty_or_unset = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                let word_piece = Piece {
                    text: word.text,
                    known: word.known,
                    words: Vec::new(),
                };
                match ch {
                    '-' => Ok(if empty_or_unset {
                        word_piece
                    } else {
                        Self::known(value.unwrap_or_default())
                    }),
                    '+' => Ok(if empty_or_unset {
                        Self::known(String::new())
                    } else {
                        word_piece
                    }),
                    '?' => {
                        if empty_or_unset {
                            let msg = if !word_piece.text.is_empty() && word_piece.known {
                                word_piece.text
                            } else if value.is_none() {
                                "is not allowed to be unset".to_string()
                            } else {
                                "is not allowed to be empty".to_string()
                            };
                            return Err(syntax(format!("{name}: {msg}")));
                        }
                        Ok(Self::known(value.unwrap_or_default()))
                    }
                    '#' => Ok(self.unsupported(&name, "${VAR#pattern}")),
                    '%' => Ok(self.unsupported(&name, "${VAR%pattern}")),
                    _ => Err(syntax(format!(
                        "unsupported modifier ({chs}) in substitution"
                    ))),
                }
            }
            '/' => {
                if self.peek() == Some('/') {
                    self.next();
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok(p) => p,
                    Err(LexError::Syntax(_)) if self.peek().is_none() => {
                        return Err(syntax("syntax error: missing '/' in ${}"))
                    }
                    Err(e) => return Err(e),
                };
                let replacement = match self.stop_on(Some('}'), true) {
                    Ok(p) => p,
                    Err(LexError::Syntax(_)) if self.peek().is_none() => {
                        return Err(syntax("syntax error: missing '}'"))
                    }
                    Err(e) => return Err(e),
                };
                let value = self.lookup(&name);
                if self.lexer.skip_unset && value == Lookup::Unset {
                    return Ok(Self::known(format!(
                        "${{{name}/{}/{}}}",
                        pattern.text, replacement.text
                    )));
                }
                Ok(self.unsupported(&name, "${VAR/pattern/replacement}"))
            }
            _ => Err(syntax(format!(
                "unsupported modifier ({chs}) in substitution"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, Lookup>);
    impl Env for MapEnv {
        fn lookup(&self, name: &str) -> Lookup {
            self.0.get(name).cloned().unwrap_or(Lookup::Unset)
        }
    }

    fn env() -> MapEnv {
        let mut m = HashMap::new();
        m.insert("PWD", Lookup::Set("/home".into()));
        m.insert("EMPTY", Lookup::Set(String::new()));
        m.insert("SP", Lookup::Set("a b".into()));
        m.insert("UNK", Lookup::Unknown("from the base image".into()));
        MapEnv(m)
    }

    fn p(s: &str) -> String {
        let e = Lexer::new('\\').process(s, &env()).unwrap();
        assert!(e.known, "{s} should be known");
        e.text
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(p("$PWD/x"), "/home/x");
        assert_eq!(p("${PWD}x"), "/homex");
        assert_eq!(p("$NOPE"), "");
        assert_eq!(p("a$"), "a$");
        assert_eq!(p("$/x"), "$/x");
    }

    #[test]
    fn modifiers_follow_posix_null_rules() {
        assert_eq!(p("${EMPTY:-d}"), "d");
        assert_eq!(p("${EMPTY-d}"), "");
        assert_eq!(p("${NOPE-d}"), "d");
        assert_eq!(p("${NOPE:-d}"), "d");
        assert_eq!(p("${PWD:-d}"), "/home");
        assert_eq!(p("${PWD:+alt}"), "alt");
        assert_eq!(p("${EMPTY:+alt}"), "");
        assert_eq!(p("${EMPTY+alt}"), "alt");
        assert_eq!(p("${NOPE+alt}"), "");
        assert_eq!(p("${NOPE:-${PWD:-x}}"), "/home");
        assert_eq!(p("${PWD?}"), "/home");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(p("'$PWD'"), "$PWD");
        assert_eq!(p("\"$PWD\""), "/home");
        assert_eq!(p("\\$PWD"), "$PWD");
        assert_eq!(p("a\\ b"), "a b");
        assert_eq!(p("\"a\\b\""), "a\\b");
        assert_eq!(p("\"a\\\"b\""), "a\"b");
        assert_eq!(p("x\\"), "x");
        let e = Lexer::new('`').process("`$PWD\\x", &env()).unwrap();
        assert_eq!(e.text, "$PWD\\x");
    }

    #[test]
    fn unknown_taints_only_when_used() {
        let e = Lexer::new('\\').process("a/$UNK/b", &env()).unwrap();
        assert!(!e.known);
        assert_eq!(e.unknown[0].name, "UNK");
        // Default not used because PWD is set: still known.
        assert_eq!(p("${PWD:-$UNK}"), "/home");
        let e = Lexer::new('\\').process("${NOPE:-$UNK}", &env()).unwrap();
        assert!(!e.known);
        let e = Lexer::new('\\').process("${PWD%/*}", &env()).unwrap();
        assert!(!e.known);
    }

    #[test]
    fn errors() {
        let l = Lexer::new('\\');
        for bad in [
            "'abc",
            "\"abc",
            "${",
            "${}",
            "${:x}",
            "${X:=y}",
            "${X",
            "${NOPE?must}",
        ] {
            assert!(l.process(bad, &env()).is_err(), "{bad}");
        }
        assert_eq!(
            l.process("${NOPE?must}", &env()).unwrap_err(),
            LexError::Syntax("NOPE: must".into())
        );
    }

    #[test]
    fn depth_is_bounded() {
        let mut s = String::new();
        for _ in 0..10_000 {
            s.push_str("${a:-");
        }
        assert_eq!(
            Lexer::new('\\').process(&s, &env()).unwrap_err(),
            LexError::TooDeep
        );
    }

    #[test]
    fn words_mode_for_heredoc_detection() {
        let l = Lexer {
            escape: '\\',
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
        };
        let e = l
            .process("RUN cat <<\"EOF\" $X ${Y:-z} 'a b'", &EmptyEnv)
            .unwrap();
        assert_eq!(
            e.words,
            vec!["RUN", "cat", "<<\"EOF\"", "$X", "${Y:-z}", "'a b'"]
        );
        let e = l.process("${SP}", &env()).unwrap();
        assert_eq!(e.words, vec!["a", "b"]);
    }
}
