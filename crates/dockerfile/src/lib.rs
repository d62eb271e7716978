//! Static analysis of a Dockerfile: which build-context paths can the build
//! read, which ARGs exist, and which outside images and remote sources does
//! it use.
//!
//! skip-action decides whether an image must be rebuilt by hashing the build
//! inputs. Hashing the whole context is always safe but rebuilds on any
//! unrelated change; hashing only what COPY/ADD/`RUN --mount=type=bind` can
//! reach avoids that — *if* the list is complete. An incomplete list causes
//! the worst bug this project can have, a false skip (the image would differ
//! but is not rebuilt). Therefore the analysis follows BuildKit's own parser
//! and variable rules closely, and wherever it cannot be sure it says so:
//! [`Analysis::whole_context`] carries the reason and the caller hashes the
//! whole (dockerignore-filtered) context instead.
//!
//! ```
//! use std::collections::BTreeMap;
//! let df = skip_dockerfile::parse("FROM alpine\nARG APP=web\nCOPY apps/$APP/ /srv/\n").unwrap();
//! let a = df.analyze(&BTreeMap::new(), None).unwrap();
//! assert_eq!(a.sources[0].pattern, "apps/web");
//! assert_eq!(a.whole_context, None);
//! ```
//!
//! What the analysis cannot see, and the caller must cover by other means:
//! ONBUILD triggers stored in an *outside* base image (they may COPY from the
//! context; inspect the image config's `OnBuild`), named build contexts
//! (`--build-context name=...` makes `FROM name` / `--from=name` a directory,
//! reported here as an image), and build args that BuildKit consumes without
//! a declaration (`SOURCE_DATE_EPOCH`, `BUILDKIT_*`, proxy variables). The
//! rules follow BuildKit (docker buildx); other builders differ in corners,
//! e.g. older buildah does not pass ARG values from a parent stage to a
//! child stage.
//!
//! Module map: `parser` turns text into logical instructions (directives,
//! continuations, comments, heredocs) using the helpers in `syntax` and
//! `json`; `model` groups them into stages; `shell` is BuildKit's variable
//! substitution; `analysis` walks the reachable stages; `paths` holds path
//! cleaning and source classification.

mod analysis;
mod json;
mod model;
mod parser;
mod paths;
mod shell;
mod syntax;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A problem that makes the Dockerfile unusable (BuildKit would reject it as
/// well) or that prevents analysis, with the 1-based line it concerns.
/// `line` is 0 when the problem is not tied to a line (an unknown target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// A parsed Dockerfile. Parsing is done once; [`Dockerfile::analyze`] can
/// then be called cheaply for each combination of build args and target.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    model: model::Model,
}

/// Parses Dockerfile text. Fails on syntax BuildKit also rejects (an
/// unterminated heredoc, an instruction before the first FROM, no FROM at
/// all, an unknown instruction, ...).
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let parsed = parser::parse_nodes(text)?;
    Ok(Dockerfile {
        model: model::build(parsed)?,
    })
}

impl Dockerfile {
    /// Analyzes the build of `target` (a stage name; `None` = the last
    /// stage) with the given build args (name -> value).
    ///
    /// Fails when the target does not exist (the message lists the stages
    /// that do), when a reachable FROM resolves to an empty image name, or
    /// when a variable expression in a reachable stage is malformed.
    pub fn analyze(
        &self,
        args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Analysis, ParseError> {
        analysis::analyze(&self.model, args, target)
    }

    /// Every ARG name declared anywhere: global scope, any stage, or an
    /// ONBUILD trigger.
    pub fn declared_args(&self) -> BTreeSet<String> {
        let m = &self.model;
        let mut out: BTreeSet<String> = m
            .meta_args
            .iter()
            .flat_map(|(_, decls)| decls.iter().map(|d| d.name.clone()))
            .collect();
        for stage in &m.stages {
            for instr in stage.instrs.iter().chain(&stage.onbuild) {
                if let model::Instr::Arg { decls, .. } = instr {
                    out.extend(decls.iter().map(|d| d.name.clone()));
                }
            }
        }
        out
    }
}

/// What a build of one target can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// ARGs declared in global scope or in reachable stages (their values
    /// can change the image, so the caller should hash them).
    pub declared_args: BTreeSet<String>,
    /// Context paths that COPY/ADD/bind mounts in reachable stages can read,
    /// in file order. Patterns are cleaned relative to the context root and
    /// may contain glob characters (`*`, `?`, `[`); `.` means the whole
    /// context.
    pub sources: Vec<Source>,
    /// `Some(reason)` when the analysis cannot bound what is read; the caller
    /// must then hash the whole (filtered) context. `sources` still lists
    /// everything that could be resolved.
    pub whole_context: Option<String>,
    /// Outside images: FROM (not a stage, not `scratch`), `COPY --from=<image>`
    /// and `RUN --mount=...,from=<image>`, with variables substituted. A
    /// reference that still contains `$` could not be resolved (for example a
    /// platform ARG that was not passed) and must not be treated as pinned.
    pub images: Vec<ImageUse>,
    /// ADD sources that are URLs or git repositories.
    pub remotes: Vec<Remote>,
    /// The target stage: its name, or its index when it has none.
    pub target: String,
}

/// A context path (pattern) read by an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    /// The cleaned, context-relative path or glob (`.` = the whole context).
    pub pattern: String,
    pub line: usize,
    /// `"COPY"`, `"ADD"` or `"RUN --mount"`.
    pub instruction: String,
    /// `--parents`: the pivot directory (cleaned, `.` = the context root).
    /// `pattern` then starts with it, and the rest is an include pattern
    /// matched with `.dockerignore` rules (`**` = any depth, including none);
    /// the directories between the pivot and each match are recreated in the
    /// image with the source directories' metadata.
    pub pivot: Option<String>,
    /// `--exclude=` patterns (substituted), matched with `.dockerignore`
    /// rules against paths relative to each copied source root.
    pub excludes: Vec<String>,
    /// `--chmod=` with an octal mode: the copied files' own modes do not
    /// reach the image.
    pub chmod_fixed: bool,
}

impl Source {
    /// A plain source: no `--parents`, no `--exclude`, no `--chmod`.
    pub fn plain(pattern: String, line: usize, instruction: &str) -> Source {
        Source {
            pattern,
            line,
            instruction: instruction.to_string(),
            pivot: None,
            excludes: Vec::new(),
            chmod_fixed: false,
        }
    }

    /// The `--parents` include pattern, relative to [`Source::pivot`].
    pub fn include_pattern(&self) -> Option<&str> {
        let pivot = self.pivot.as_deref()?;
        Some(if pivot == "." {
            self.pattern.as_str()
        } else {
            self.pattern
                .strip_prefix(pivot)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(self.pattern.as_str())
        })
    }
}

/// A use of an image from outside the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    pub reference: String,
    pub line: usize,
    pub kind: ImageUseKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageUseKind {
    From,
    CopyFrom,
    MountFrom,
    /// The `# syntax=` frontend image (or the `BUILDKIT_SYNTAX` build arg):
    /// it runs the build, so a new frontend can build a different image.
    Syntax,
}

/// A remote ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub url: String,
    pub line: usize,
    /// The `--checksum=` that pins the content, if any. Without one the
    /// content can change while the URL stays the same.
    pub checksum: Option<String>,
}
