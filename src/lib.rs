//! skip-action's library: the pipeline config → inputs → hashes → plan → outputs, and the edges
//! (registry, GitHub runner) it talks through. `main.rs` is a thin CLI over [`commands`].
//!
//! | module | one job |
//! |---|---|
//! | [`cli`] | flags and `INPUT_*`: every argument type, typed and bounded by clap |
//! | [`commands`] | one function per subcommand: load, call the core, write, print |
//! | [`config`] | find, parse, validate and expand `skip-action.yml` into image specs |
//! | [`context`] | the build context as BuildKit sends it: ignore rules, walk, COPY selection |
//! | [`inputs`] | per image: Dockerfile analysis and which context entries it can see |
//! | [`hash`] | the versioned, length-prefixed content hash of every image |
//! | [`lineage`] | what a content tag holds per platform, and whether it sits on its parent (decide and promote share it) |
//! | [`fanout`] | `runners:`: per-platform tags, which platforms to build, the index `merge` writes |
//! | [`plan`] | build or reuse, and why, from the registry's answers |
//! | [`outputs`] | matrices, the `plan` JSON and the summary of `decide` |
//! | [`promote`] | the alias plan, the checks (fetch, then a pure judge), test stamps, the order of racing runs, the writes, the report |
//! | [`merge`] | `merge`'s reads and writes: per-platform images into the content tag's index |
//! | [`registry`] | the edge to the OCI registry (`skip-registry`): client, credentials, probes |
//! | [`github`] | the runner: `$GITHUB_OUTPUT`, the step summary, annotations, masking, the jobs API |
//! | [`error`] | which errors are the user's to fix (exit 2) |
//!
//! Imports point from the top of this table's roles down: `cli` → `commands` → the pure core
//! (`config` … `outputs`, `promote`'s plan, judge and report) → the edges (`registry`,
//! `promote`'s fetch and writes, `github`). The README's "Development" section states the rules.

pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod error;
pub mod fanout;
pub mod github;
pub mod hash;
pub mod inputs;
pub mod lineage;
pub mod merge;
pub mod outputs;
pub mod plan;
pub mod promote;
pub mod registry;
