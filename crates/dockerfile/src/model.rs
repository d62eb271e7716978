//! Typed instructions grouped into build stages (BuildKit's
//! `instructions.Parse`). Only what the analysis needs is kept; everything
//! else becomes [`Instr::Other`].

use crate::parser::{Args, Node, Parsed};
use crate::syntax::parse_heredoc_word;
use crate::ParseError;

/// `ARG NAME[=default]` — one instruction may declare several.
#[derive(Debug, Clone)]
pub(crate) struct ArgDecl {
    pub name: String,
    /// The default as written (still quoted, not yet substituted).
    pub default: Option<String>,
}

/// COPY or ADD.
#[derive(Debug, Clone)]
pub(crate) struct CopyInstr {
    pub line: usize,
    pub is_add: bool,
    /// `--from=` as written (quotes removed by the flag parser).
    pub from: Option<String>,
    /// ADD `--checksum=` as written.
    pub checksum: Option<String>,
    /// Sources that are not heredocs, as written.
    pub sources: Vec<String>,
    /// Extra sources from the shell-form reading of an ambiguous JSON line
    /// (see `Args::Ambiguous`); errors in them are not fatal.
    pub alt_sources: Vec<String>,
    /// `--parents` (BuildKit: a source becomes an include pattern below an
    /// optional `/./` pivot, and the directories between are recreated).
    pub parents: bool,
    /// `--exclude=` patterns as written (still to be substituted).
    pub excludes: Vec<String>,
    /// `--chmod=` as written.
    pub chmod: Option<String>,
    /// Flags this analysis does not know, as written: each one could change
    /// what is read (that is how `--parents` was once missed), so the caller
    /// hashes the whole context.
    pub unknown_flags: Vec<String>,
}

/// COPY flags whose effect on what is read (or on nothing read) is known.
pub(crate) const COPY_FLAGS: [&str; 6] = ["from", "chown", "chmod", "link", "parents", "exclude"];
/// ADD flags: COPY's (but `--from`) plus the remote-source ones.
pub(crate) const ADD_FLAGS: [&str; 8] = [
    "chown",
    "chmod",
    "link",
    "parents",
    "exclude",
    "checksum",
    "keep-git-dir",
    "unpack",
];

/// A boolean flag as BuildKit's BFlags reads it: `--x` or `--x=true` is on,
/// `--x=false` off; the last one wins. Any other value is kept as `None`
/// (unknown), which callers treat as on when that is the safe reading.
fn bool_flag(flags: &[(String, Option<String>)], name: &str) -> Option<bool> {
    flags
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| match v.as_deref() {
            None | Some("true") | Some("") => true,
            Some("false") => false,
            // BuildKit rejects other values; reading it as on only selects more.
            Some(_) => true,
        })
}

impl CopyInstr {
    pub fn name(&self) -> &'static str {
        if self.is_add {
            "ADD"
        } else {
            "COPY"
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Instr {
    Arg {
        line: usize,
        decls: Vec<ArgDecl>,
    },
    Env {
        line: usize,
        pairs: Vec<(String, String)>,
    },
    Copy(CopyInstr),
    Run {
        line: usize,
        /// Raw `--mount=` values.
        mounts: Vec<String>,
    },
    /// Instructions that cannot read the build context or change variables.
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub line: usize,
    /// The FROM image/stage expression as written.
    pub base: String,
    /// Lower-cased stage name (`AS name`).
    pub name: Option<String>,
    pub instrs: Vec<Instr>,
    /// ONBUILD triggers: they run in stages built FROM this one, not here.
    pub onbuild: Vec<Instr>,
}

#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub escape: char,
    /// The `# syntax=` directive's image, if any.
    pub syntax: Option<String>,
    /// Global ARG instructions (before the first FROM), in order.
    pub meta_args: Vec<(usize, Vec<ArgDecl>)>,
    pub stages: Vec<Stage>,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Splits `--name=value` / `--name` flags (BuildKit's BFlags, leniently:
/// unknown flags are ignored rather than rejected so that a newer Dockerfile
/// syntax does not break the analysis).
fn flags(node: &Node) -> Vec<(String, Option<String>)> {
    node.flags
        .iter()
        .map(|f| {
            let f = f.strip_prefix("--").unwrap_or(f);
            // Flag names are case-sensitive in BuildKit (`--FROM` is an
            // unknown flag), so they are not normalised here.
            match f.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (f.to_string(), None),
            }
        })
        .collect()
}

/// The value of a string flag. An empty value counts as absent, as in
/// BuildKit: `COPY --from= a /` copies `a` from the build context.
fn last_flag(flags: &[(String, Option<String>)], name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// Stage names: `^[a-z][a-z0-9-_.]*$` after lower-casing.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn list(node: &Node) -> Vec<String> {
    match &node.args {
        Args::List(v) | Args::Words(v) | Args::Ambiguous { json: v, .. } => v.clone(),
        Args::Text(t) if !t.is_empty() => vec![t.clone()],
        _ => Vec::new(),
    }
}

enum Typed {
    From { base: String, name: Option<String> },
    Arg(Vec<ArgDecl>),
    Instr(Instr),
    Onbuild(Instr),
}

fn typed(node: &Node, trigger: bool) -> Result<Typed, ParseError> {
    let line = node.line;
    let upper = node.cmd.to_uppercase();
    Ok(match node.cmd.as_str() {
        "from" => {
            let args = list(node);
            let name = match args.len() {
                1 => None,
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let name = args[2].to_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(err(
                            line,
                            format!(
                                "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                                args[2]
                            ),
                        ));
                    }
                    Some(name)
                }
                _ => {
                    return Err(err(
                        line,
                        "FROM requires either one or three arguments (`FROM <image> [AS <name>]`)",
                    ))
                }
            };
            Typed::From {
                base: args[0].clone(),
                name,
            }
        }
        "arg" => {
            let words = list(node);
            if words.is_empty() {
                return Err(err(line, "ARG requires at least one argument"));
            }
            let mut decls = Vec::new();
            for w in words {
                let (name, default) = match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w, None),
                };
                if name.is_empty() {
                    return Err(err(line, "ARG names can not be blank"));
                }
                decls.push(ArgDecl { name, default });
            }
            if trigger {
                Typed::Instr(Instr::Arg { line, decls })
            } else {
                Typed::Arg(decls)
            }
        }
        "env" => {
            let Args::NameVals(pairs) = &node.args else {
                return Ok(Typed::Instr(Instr::Other));
            };
            if pairs.is_empty() {
                return Err(err(line, "ENV requires at least one argument"));
            }
            if pairs.iter().any(|(k, _)| k.is_empty()) {
                return Err(err(line, "ENV names can not be blank"));
            }
            Typed::Instr(Instr::Env {
                line,
                pairs: pairs.clone(),
            })
        }
        "copy" | "add" => {
            let args = list(node);
            if args.len() < 2 {
                return Err(err(
                    line,
                    format!(
                        "{upper} requires at least two arguments, but only {} provided; the last one is the destination",
                        if args.is_empty() { "none was" } else { "one was" }
                    ),
                ));
            }
            let (dest, srcs) = args.split_last().unwrap_or((&args[0], &[]));
            if matches!(parse_heredoc_word(dest), Ok(Some(_))) {
                return Err(err(
                    line,
                    format!("{upper} cannot accept a heredoc as a destination"),
                ));
            }
            let fl = flags(node);
            let is_add = node.cmd == "add";
            let not_heredoc = |s: &&String| !matches!(parse_heredoc_word(s), Ok(Some(_)));
            // Report the sources of both readings; over-reporting is safe.
            let alt_sources = match &node.args {
                Args::Ambiguous { shell, .. } => shell
                    .split_last()
                    .map(|(_, more)| more.iter().filter(not_heredoc).cloned().collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            Typed::Instr(Instr::Copy(CopyInstr {
                line,
                is_add,
                from: if is_add { None } else { last_flag(&fl, "from") },
                checksum: if is_add {
                    last_flag(&fl, "checksum")
                } else {
                    None
                },
                // A heredoc source is inline content, never a context path.
                sources: srcs.iter().filter(not_heredoc).cloned().collect(),
                alt_sources,
                parents: bool_flag(&fl, "parents").unwrap_or(false),
                excludes: fl
                    .iter()
                    .filter(|(k, _)| k == "exclude")
                    .filter_map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
                    .collect(),
                chmod: last_flag(&fl, "chmod"),
                unknown_flags: fl
                    .iter()
                    .filter(|(k, _)| {
                        let known: &[&str] = if is_add { &ADD_FLAGS } else { &COPY_FLAGS };
                        !known.contains(&k.as_str())
                    })
                    .map(|(k, v)| match v {
                        Some(v) => format!("--{k}={v}"),
                        None => format!("--{k}"),
                    })
                    .collect(),
            }))
        }
        "run" => Typed::Instr(Instr::Run {
            line,
            mounts: flags(node)
                .into_iter()
                .filter(|(k, _)| k == "mount")
                .map(|(_, v)| v.unwrap_or_default())
                .collect(),
        }),
        "onbuild" => {
            let Some(sub) = &node.sub else {
                return Err(err(line, "ONBUILD requires at least one argument"));
            };
            if matches!(sub.cmd.as_str(), "from" | "maintainer") {
                return Err(err(
                    line,
                    format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        sub.cmd.to_uppercase()
                    ),
                ));
            }
            match typed(sub, true)? {
                Typed::Instr(i) => Typed::Onbuild(i),
                _ => Typed::Onbuild(Instr::Other),
            }
        }
        "cmd" | "entrypoint" | "expose" | "healthcheck" | "label" | "maintainer" | "shell"
        | "stopsignal" | "user" | "volume" | "workdir" => Typed::Instr(Instr::Other),
        _ => {
            return Err(err(
                line,
                format!(
                    "unknown instruction: {} (if this line belongs to a heredoc or a multi-line \
                     command, check the heredoc terminator or the line continuation above it)",
                    node.cmd_raw
                ),
            ))
        }
    })
}

/// Groups nodes into global ARGs and stages.
pub(crate) fn build(parsed: Parsed) -> Result<Model, ParseError> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &parsed.nodes {
        let t = typed(node, false)?;
        match (t, stages.last_mut()) {
            (Typed::From { base, name }, _) => stages.push(Stage {
                line: node.line,
                base,
                name,
                instrs: Vec::new(),
                onbuild: Vec::new(),
            }),
            (Typed::Arg(decls), None) => meta_args.push((node.line, decls)),
            (Typed::Arg(decls), Some(stage)) => stage.instrs.push(Instr::Arg {
                line: node.line,
                decls,
            }),
            (Typed::Instr(i), Some(stage)) => stage.instrs.push(i),
            (Typed::Onbuild(i), Some(stage)) => stage.onbuild.push(i),
            (Typed::Instr(_) | Typed::Onbuild(_), None) => {
                return Err(err(
                    node.line,
                    format!(
                        "{} appears before the first FROM; only ARG may come before FROM — add a FROM instruction above it",
                        node.cmd.to_uppercase()
                    ),
                ))
            }
        }
    }
    if stages.is_empty() {
        let line = parsed
            .nodes
            .last()
            .map_or(parsed.line_count.max(1), |n| n.line);
        let what = if parsed.nodes.is_empty() {
            "the Dockerfile has no instructions"
        } else {
            "the Dockerfile has no FROM instruction"
        };
        return Err(err(
            line,
            format!("{what}; add a FROM instruction (for example `FROM alpine:3.20`)"),
        ));
    }
    Ok(Model {
        escape: parsed.escape,
        syntax: parsed.syntax,
        meta_args,
        stages,
    })
}
