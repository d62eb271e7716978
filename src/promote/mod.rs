//! `promote`: move alias tags (`base-latest`, `latest-omos`, `v1.14.44-omos`) to the content tags
//! the build jobs pushed, by re-tagging the exact manifest bytes.
//!
//! An alias is what people pull, so it must never point at a family that is half built or
//! inconsistent. The order of the work is the safety argument:
//!
//! 1. **Plan** ([`aliases`]): which alias goes where, from the config and the hashes. Pure.
//! 2. **Read, then judge** ([`check`](mod@check)): [`check::fetch`] reads every content tag (a tag pushed a
//!    moment ago may answer 404 for a few seconds, so 404s are asked again for a bounded time),
//!    the platform manifests and config blobs the judgement needs, and where every alias points
//!    now; [`check::judge`] — a pure function of those answers, unit-tested like
//!    [`crate::plan::decide`] — says whether every image built `FROM` a parent really sits on that
//!    parent's current layers, per platform (a variant built on last week's base is stale even
//!    though its tag exists), whether every configured platform is there, whether each image
//!    that must be tested carries a test stamp on its current digest ([`stamp`]), and what each
//!    alias would do — including holding an alias that a newer run already moved ([`order`]).
//!    Nothing is written.
//! 3. **Stop if anything failed.** No alias moves.
//! 4. **Write** ([`write::apply`](fn@write::apply)): content for aliases in another repository is copied first, by
//!    digest (blobs mounted or streamed, child manifests by digest; no tag changes), and only when
//!    every copy succeeded are the aliases PUT, concurrently. A PUT is atomic per alias; if one
//!    fails the report says exactly which aliases moved and which did not, with rollback commands.
//! 5. **Report** ([`report`]): the `promoted` / `previous` outputs, the Markdown summary with
//!    rollback commands, the JSON report.
//!
//! Manifests are moved as the bytes the registry served, with their media type: the digest is of
//! the bytes, so it cannot change, and an index stays an index (all four manifest types are in
//! every `Accept`, see [`skip_registry::manifest::MANIFEST_ACCEPT`]).
//!
//! "Built on the current parent" is judged by [`crate::lineage`], the one judge `decide` shares;
//! the jobs gate (`--require-jobs`) lives with the other runner code in [`crate::github::jobs`].
//! Only [`check::fetch`] and [`write`](mod@write) talk to the registry.

pub mod aliases;
pub mod check;
pub mod order;
pub mod report;
pub mod stamp;
pub mod write;

/// Unit-test fixtures the promote modules share.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::config::Config;
    use crate::hash::ImageHash;

    /// One content hash per image of `config`, tagged `<name, `/` as `-`>-abc`: what the alias
    /// and check rules read, without files or a registry.
    pub fn hashes(config: &Config) -> Vec<ImageHash> {
        config
            .images
            .iter()
            .map(|s| {
                let tag = format!("{}-abc", s.name.replace('/', "-"));
                ImageHash {
                    full: "a".repeat(64),
                    short: "abc".into(),
                    image: format!("{}:{tag}", s.repository),
                    tag,
                    build_args: Default::default(),
                    declared: Default::default(),
                    context_digest: String::new(),
                    context_entries: 0,
                    parents: Vec::new(),
                    outside: Vec::new(),
                    unresolved: None,
                }
            })
            .collect()
    }
}

use std::time::Duration;

pub use crate::lineage::{
    base_problems, from_parents, is_layer_prefix, missing_platforms, short_digest, Found,
    PlatformImage, PlatformKey,
};
pub use aliases::{plan_aliases, Alias, AliasPlan, SkippedAlias};
pub use check::{
    check, check_timed_out, platform_of_config, AliasState, AliasStatus, Checked, ImageReport,
};
pub use report::{previous_json, promoted_json, report_json, rollback_commands, summary_markdown};
pub use write::{apply, copy_content, CopyStats};

/// Alias writes (and copies) in flight at once. The client also limits requests per registry host,
/// so this only bounds memory and task count.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Options of one promotion.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a content tag (or alias read) that answers 404 is asked again before it counts as
    /// missing: registries behind CDNs or with replicated storage are eventually consistent.
    pub wait: Duration,
    /// Read and check everything, write nothing.
    pub dry_run: bool,
    /// Alias writes in flight at once.
    pub concurrency: usize,
    /// Images (indexes into `config.images`) that must carry a test stamp on their current
    /// digest (`--require-tested`, see [`stamp`]).
    pub tested: Vec<usize>,
    /// This run's commit, for the ordering of alias moves ([`order`]); `None`: unknown.
    pub revision: Option<String>,
    /// The checkout whose git history orders commits.
    pub git_dir: std::path::PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait: Duration::from_secs(10),
            dry_run: false,
            concurrency: DEFAULT_CONCURRENCY,
            tested: Vec::new(),
            revision: None,
            git_dir: std::path::PathBuf::from("."),
        }
    }
}
