//! One function per subcommand. Each loads what it needs through the shared pipeline
//! (config → inputs → hashes) and prints; the core modules never print.

pub mod bake;
pub mod decide;
pub mod hash;
pub mod inputs;
pub mod merge;
pub mod promote;
pub mod schema;
pub mod stamp;

use std::path::Path;

use crate::cli::Common;
use crate::config::Config;
use crate::hash::{HashOptions, ImageHash};
use crate::inputs::Discovery;

/// The pipeline every command starts with.
pub struct Hashed {
    pub config: Config,
    pub discovery: Discovery,
    pub hashes: Vec<ImageHash>,
}

impl Hashed {
    /// `name: reason` for every image whose upstream digest could not be resolved (its hash is
    /// not final).
    pub fn unresolved(&self) -> Vec<String> {
        self.config
            .images
            .iter()
            .zip(&self.hashes)
            .filter_map(|(s, x)| x.unresolved.as_ref().map(|r| format!("{}: {r}", s.name)))
            .collect()
    }
}

/// Load the config and hash every image. Offline unless an image has `upstream: digest`; then the
/// registry is asked for those digests (credentials from the environment), so `hash` and `inputs`
/// print the same hashes `decide` computes.
pub fn load_and_hash(common: &Common, opts: HashOptions) -> anyhow::Result<Hashed> {
    load_and_hash_only(common, opts, None)
}

/// [`load_and_hash`], reporting only the warnings of image `only` (for `inputs IMAGE`).
pub fn load_and_hash_only(
    common: &Common,
    opts: HashOptions,
    only: Option<&str>,
) -> anyhow::Result<Hashed> {
    let (config, discovery) = load_and_discover_only(common, only)?;
    if config
        .images
        .iter()
        .any(|s| s.upstream == crate::config::Upstream::Digest)
    {
        let client = crate::registry::client(&config, &Default::default())?;
        return load_and_hash_lenient(config, discovery, common, &client, &runtime()?);
    }
    let hashes = crate::hash::compute(&config, &discovery, &opts)?;
    Ok(Hashed {
        config,
        discovery,
        hashes,
    })
}

/// Load the config and discover every image's inputs (warnings are reported here, once).
pub fn load_and_discover(common: &Common) -> anyhow::Result<(Config, Discovery)> {
    load_and_discover_only(common, None)
}

/// [`load_and_discover`], reporting only the warnings of the image named `only` (an expanded
/// name such as `devbox/omos`, or an image key for all its variants).
pub fn load_and_discover_only(
    common: &Common,
    only: Option<&str>,
) -> anyhow::Result<(Config, Discovery)> {
    let path = Config::locate(common.config.as_deref())?;
    let mut config = Config::load(&path)?;
    let discovery = crate::inputs::discover(&config, Path::new("."))?;
    crate::inputs::drop_undeclared_args(&mut config, &discovery);
    for w in grouped_warnings(&config, &discovery, only) {
        crate::github::warning(&w);
    }
    warn_floating_upstream(&config, &discovery, only);
    Ok((config, discovery))
}

/// Outside images referenced by a tag, under `upstream: tag`: a re-push of the tag upstream
/// (a security rebuild of `debian:12-slim`) does not change any hash. Said once per reference,
/// however many images use it, so 12,800 variants of one base do not flood the log.
fn warn_floating_upstream(config: &Config, discovery: &Discovery, only: Option<&str>) {
    let mut users: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (spec, img) in config.images.iter().zip(&discovery.images) {
        if spec.upstream != crate::config::Upstream::Tag
            || only.is_some_and(|o| o != spec.name && o != spec.image)
        {
            continue;
        }
        for u in &img.outside {
            let r = u.reference.as_str();
            // A digest pins the content; `$` means it could not be resolved (hashed as written).
            if !r.contains('@') && !r.contains('$') {
                users.entry(r).or_default().push(&spec.name);
            }
        }
    }
    for (r, names) in users {
        let shown: Vec<&str> = names.iter().take(3).copied().collect();
        let more = names.len().saturating_sub(shown.len());
        tracing::warn!(
            "outside image {r} is used by tag ({}{}): a new push of that tag upstream does not change the hash under `upstream: tag`. Pin it by digest ({r}@sha256:…) or set `upstream: digest` to rebuild when it moves",
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
}

/// Each warning once, naming the one image it concerns: a warning about a Dockerfile that four
/// variants share is one line naming the image (`devbox (4 variants): …`), not four.
pub fn grouped_warnings(config: &Config, discovery: &Discovery, only: Option<&str>) -> Vec<String> {
    let mut groups: indexmap::IndexMap<(&str, &str), Vec<&str>> = indexmap::IndexMap::new();
    for (spec, img) in config.images.iter().zip(&discovery.images) {
        if only.is_some_and(|o| o != spec.name && o != spec.image) {
            continue;
        }
        for w in &img.warnings {
            groups
                .entry((spec.image.as_str(), w.as_str()))
                .or_default()
                .push(spec.name.as_str());
        }
    }
    groups
        .into_iter()
        .map(|((image, w), names)| match names.as_slice() {
            [one] => format!("{one}: {w}"),
            many => format!("{image} ({} variants): {w}", many.len()),
        })
        .collect()
}

/// Like [`load_and_hash`], resolving `upstream: digest` images through `client` first — the same
/// hashes `decide` and `promote` compute. Fails when an upstream digest could not be resolved:
/// promote and bake must never act on a hash that is not the image's real one.
pub fn load_and_hash_online(
    config: Config,
    discovery: Discovery,
    common: &Common,
    client: &skip_registry::Client,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Hashed> {
    let h = load_and_hash_lenient(config, discovery, common, client, rt)?;
    let unresolved = h.unresolved();
    if !unresolved.is_empty() {
        anyhow::bail!(
            "cannot compute the real hash of {} image(s): {}",
            unresolved.len(),
            unresolved.join("; ")
        );
    }
    Ok(h)
}

/// [`load_and_hash_online`] that keeps going when an upstream digest cannot be resolved: the
/// images that need it (and their descendants) carry the reason in [`ImageHash::unresolved`]
/// (decide and hash report them; the rest is decided normally).
pub fn load_and_hash_lenient(
    config: Config,
    discovery: Discovery,
    common: &Common,
    client: &skip_registry::Client,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Hashed> {
    let mut opts = hash_options(common);
    let upstream: std::collections::BTreeSet<String> = config
        .images
        .iter()
        .zip(&discovery.images)
        .filter(|(s, _)| s.upstream == crate::config::Upstream::Digest)
        .flat_map(|(_, i)| i.outside.iter().map(|u| u.reference.clone()))
        .collect();
    if !upstream.is_empty() {
        let refs: Vec<String> = upstream.into_iter().collect();
        // An unresolvable digest is not fatal here: the images that need it (and their
        // descendants) carry the reason, and decide treats them as unknown to the registry
        // (`on-registry-error`), while everything else decides normally.
        for (r, res) in rt.block_on(crate::registry::resolve_upstream(client, &refs))? {
            match res {
                Ok(d) => {
                    opts.upstream_digests.insert(r, d);
                }
                Err(reason) => {
                    crate::github::warning(&format!("upstream image {r}: {reason}"));
                    opts.upstream_errors.insert(r, reason);
                }
            }
        }
    }
    let hashes = crate::hash::compute(&config, &discovery, &opts)?;
    Ok(Hashed {
        config,
        discovery,
        hashes,
    })
}

/// The async runtime for registry work: two workers (the runners have few cores; the work is I/O).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `HashOptions` from the common flags.
pub fn hash_options(common: &Common) -> HashOptions {
    HashOptions {
        version: common.version.clone().or_else(crate::cli::version_from_env),
        ..HashOptions::default()
    }
}
