//! `promote`: move alias tags (`base-latest`, `latest-omos`, `v1.14.44-omos`) to the content tags
//! the build jobs pushed, by re-tagging the exact manifest bytes.
//!
//! An alias is what people pull, so it must never point at a family that is half built or
//! inconsistent. The order of the work is the safety argument:
//!
//! 1. **Read and check everything** ([`check`]): every image's content tag exists (a tag pushed a
//!    moment ago may answer 404 for a few seconds, so 404s are asked again for a bounded time);
//!    every image built `FROM` a parent really sits on that parent's current layers, per platform
//!    (a variant built on last week's base is stale even though its tag exists); every configured
//!    platform is there; the current digest of every alias is read (for `previous` and the
//!    rollback commands). The checks return data ([`ImageReport`], problems), nothing is written.
//! 2. **Stop if anything failed.** No alias moves.
//! 3. **Write** ([`apply`]): content for aliases in another repository is copied first, by digest
//!    (blobs mounted or streamed, child manifests by digest; no tag changes), and only when every
//!    copy succeeded are the aliases PUT, concurrently. A PUT is atomic per alias; if one fails the
//!    report says exactly which aliases moved and which did not, with rollback commands.
//!
//! Manifests are moved as the bytes the registry served, with their media type: the digest is of
//! the bytes, so it cannot change, and an index stays an index (all four manifest types are in
//! every `Accept`, see [`skip_registry::manifest::MANIFEST_ACCEPT`]).
//!
//! The checks are plain functions over [`Found`] values ([`is_layer_prefix`],
//! [`missing_platforms`], [`base_problems`], [`jobs::check`]) so they are unit-tested without a
//! registry; the async functions around them only fetch and write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt as _};
use skip_registry::manifest::ParsedManifest;
use skip_registry::{Client, CopyOutcome, HttpError, Manifest, Probe, RepoRef};

use crate::config::Config;
use crate::error::usage;
use crate::hash::ImageHash;
pub use crate::lineage::{
    base_problems, from_parents, is_layer_prefix, missing_platforms, short_digest, Found,
    PlatformImage, PlatformKey,
};

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait: Duration::from_secs(10),
            dry_run: false,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Aliases
// ---------------------------------------------------------------------------------------------

/// One alias to point at one image's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// Index of the image in `config.images`.
    pub image: usize,
    pub image_name: String,
    /// Where the content is: the image's repository (canonical `registry/path`) and content tag.
    pub source_repo: String,
    pub source_tag: String,
    /// Where the alias goes.
    pub repo: String,
    pub tag: String,
    /// The template it came from, for messages.
    pub template: String,
}

impl Alias {
    /// `registry/path:tag` — the key of the `promoted` and `previous` outputs.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repo, self.tag)
    }
    pub fn source_reference(&self) -> String {
        format!("{}:{}", self.source_repo, self.source_tag)
    }
    /// Whether the content must be copied into another repository first.
    pub fn cross_repo(&self) -> bool {
        self.repo != self.source_repo
    }
}

/// An alias template that does not apply to this run (a `{version}` alias when no version is
/// known: not a release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedAlias {
    pub image_name: String,
    pub template: String,
    pub reason: String,
}

/// The aliases of one run.
#[derive(Debug, Clone, Default)]
pub struct AliasPlan {
    pub aliases: Vec<Alias>,
    pub skipped: Vec<SkippedAlias>,
}

/// Every alias of the config for these hashes, in config order. Pure.
///
/// A template with `{version}` is skipped (and reported) when no version is known, so the same
/// workflow moves `latest-*` on every push and `v1.2.3-*` only on a release. Two images claiming
/// one alias, or an alias that would overwrite a content tag, are config errors (exit 2).
pub fn plan_aliases(
    config: &Config,
    hashes: &[ImageHash],
    version: Option<&str>,
) -> anyhow::Result<AliasPlan> {
    let mut aliases: Vec<Alias> = Vec::new();
    let mut skipped = Vec::new();
    let mut owner: HashMap<(String, String), usize> = HashMap::new();
    let mut content: HashMap<(String, String), &str> = HashMap::new();
    let canon = |r: &str| -> anyhow::Result<String> {
        Ok(RepoRef::parse(r)
            .map_err(|e| usage(format!("{}: {e:#}", config.path.display())))?
            .to_string())
    };
    for (spec, h) in config.images.iter().zip(hashes) {
        content.insert(
            (canon(&spec.repository)?, h.tag.clone()),
            spec.name.as_str(),
        );
    }
    for (i, (spec, h)) in config.images.iter().zip(hashes).enumerate() {
        let source_repo = canon(&spec.repository)?;
        for p in &spec.promote {
            let template = p.tag.source().to_string();
            if p.tag.uses("version") && version.is_none() {
                skipped.push(SkippedAlias {
                    image_name: spec.name.clone(),
                    template,
                    reason: "uses {version}, and no version is known (not a pushed tag; pass --version to promote a release)".into(),
                });
                continue;
            }
            let mut vars = spec.vars.clone();
            vars.insert("hash".into(), h.short.clone());
            if let Some(v) = version {
                vars.insert("version".into(), v.to_string());
            }
            let tag = p
                .tag
                .render(&vars)
                .map_err(|m| usage(format!("image {}: promote `{template}`: {m}", spec.name)))?;
            if !crate::config::template::valid_tag(&tag) {
                return Err(usage(format!(
                    "image {}: promote `{template}` renders to `{}`, not a valid OCI tag; check --version",
                    spec.name,
                    tag.escape_debug()
                )));
            }
            let repo = match &p.repository {
                Some(r) => canon(r)?,
                None => source_repo.clone(),
            };
            let key = (repo.clone(), tag.clone());
            if let Some(other) = content.get(&key) {
                return Err(usage(format!(
                    "image {}: promote `{template}` renders to {repo}:{tag}, which is the content tag of {other}; an alias must not overwrite content (rename the alias)",
                    spec.name
                )));
            }
            if let Some(&j) = owner.get(&key) {
                if aliases[j].image == i {
                    continue; // the same alias twice for one image: once is enough
                }
                return Err(usage(format!(
                    "{repo}:{tag} is an alias of both {} and {}; each alias can point at one image (add {{variant}} or {{name}} to the template)",
                    aliases[j].image_name, spec.name
                )));
            }
            owner.insert(key, aliases.len());
            aliases.push(Alias {
                image: i,
                image_name: spec.name.clone(),
                source_repo: source_repo.clone(),
                source_tag: h.tag.clone(),
                repo,
                tag,
                template,
            });
        }
    }
    Ok(AliasPlan { aliases, skipped })
}

// ---------------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------------

/// What the checks found for one image.
#[derive(Debug, Clone, Default)]
pub struct ImageReport {
    pub name: String,
    /// `registry/path:content-tag`.
    pub reference: String,
    pub digest: Option<String>,
    /// "index: linux/amd64, linux/arm64" / "single-arch: linux/amd64".
    pub kind: Option<String>,
    /// Checks passed, for the log ("built on base", "platforms linux/amd64, linux/arm64").
    pub passed: Vec<String>,
    /// Why this image blocks the promotion.
    pub problems: Vec<String>,
}

/// Where an alias stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasStatus {
    /// Checked, to be written.
    Pending,
    /// Already at the digest: nothing to write.
    InPlace,
    /// Dry run: would be written.
    WouldMove,
    /// Written (and, for copies, verified).
    Moved,
    /// The write failed.
    Failed(String),
    /// Not written because something else failed first.
    NotAttempted(String),
}

/// One alias with its digests.
#[derive(Debug, Clone)]
pub struct AliasState {
    pub alias: Alias,
    /// The content digest it should point at (`None` when the content is missing).
    pub digest: Option<String>,
    /// What it pointed at before (`None` = did not exist).
    pub previous: Option<String>,
    pub status: AliasStatus,
}

/// Everything read before writing.
#[derive(Debug)]
pub struct Checked {
    pub images: Vec<ImageReport>,
    pub found: Vec<Option<Found>>,
    pub aliases: Vec<AliasState>,
    pub skipped: Vec<SkippedAlias>,
    /// Problems not tied to one image (an alias that could not be read, the jobs gate).
    pub problems: Vec<String>,
}

impl Checked {
    /// Whether anything blocks the promotion.
    pub fn blocked(&self) -> bool {
        !self.problems.is_empty() || self.images.iter().any(|i| !i.problems.is_empty())
    }

    /// Every problem, prefixed with its image.
    pub fn all_problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .images
            .iter()
            .flat_map(|i| i.problems.iter().map(move |p| format!("{}: {p}", i.name)))
            .collect();
        out.extend(self.problems.iter().cloned());
        out
    }
}

/// Whether an error is the registry's 404.
fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<HttpError>()
            .is_some_and(|h| h.status == 404)
    })
}

/// GET a manifest, asking again on 404 until `wait` has passed (exponential backoff from 200 ms,
/// capped at 2 s per sleep). `Ok(None)`: still 404 after the wait.
pub async fn get_waiting(
    client: &Client,
    repo: &RepoRef,
    reference: &str,
    wait: Duration,
) -> anyhow::Result<Option<Manifest>> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(200);
    loop {
        match client.get_manifest(repo, reference).await {
            Ok(m) => return Ok(Some(m)),
            Err(e) if is_not_found(&e) => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Ok(None);
                }
                tracing::info!(%repo, reference, "404; asking again (the push may not be visible yet)");
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Run every registry check. Reads only.
///
/// `from` is [`from_parents`]; `blobs` reads config blobs (the platform of single-arch images that
/// list `platforms`).
pub async fn check(
    client: &Client,
    config: &Config,
    hashes: &[ImageHash],
    from: &[Vec<usize>],
    plan: AliasPlan,
    blobs: &blob::Reader,
    opts: &Options,
) -> Checked {
    let n = config.images.len();
    let mut reports: Vec<ImageReport> = config
        .images
        .iter()
        .zip(hashes)
        .map(|(s, h)| ImageReport {
            name: s.name.clone(),
            reference: h.image.clone(),
            ..ImageReport::default()
        })
        .collect();
    let repos: Vec<Result<RepoRef, String>> = config
        .images
        .iter()
        .map(|s| RepoRef::parse(&s.repository).map_err(|e| format!("{e:#}")))
        .collect();

    // 1. Every content tag, concurrently, with the 404 wait — and, at the same time, where every
    //    alias points now (step 5 uses it; it does not depend on the content).
    let AliasPlan { aliases, skipped } = plan;
    let previous_reads = stream::iter(aliases.iter())
        .map(|a| async move {
            let repo = RepoRef::parse(&a.repo).map_err(|e| format!("{e:#}"))?;
            match client.probe(&repo, &a.tag).await {
                Probe::Present { digest, .. } => Ok(Some(digest)),
                Probe::Absent => Ok(None),
                Probe::Unknown { reason } => Err(reason),
            }
        })
        .buffered(opts.concurrency.max(1))
        .collect::<Vec<Result<Option<String>, String>>>();
    let content_reads = stream::iter(0..n)
        .map(|i| {
            let repo = repos[i].clone();
            let tag = hashes[i].tag.clone();
            async move {
                let repo = repo?;
                get_waiting(client, &repo, &tag, opts.wait)
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
        })
        .buffered(opts.concurrency.max(1))
        .collect::<Vec<Result<Option<Manifest>, String>>>();
    let (fetched, previous) = futures_util::future::join(content_reads, previous_reads).await;
    let mut found: Vec<Option<Found>> = vec![None; n];
    for (i, r) in fetched.into_iter().enumerate() {
        match r {
            Ok(Some(m)) => match Found::from_manifest(m) {
                Ok(f) => {
                    reports[i].digest = Some(f.manifest.digest.clone());
                    found[i] = Some(f);
                }
                Err(e) => reports[i]
                    .problems
                    .push(format!("{} is not a usable manifest: {e:#}", hashes[i].image)),
            },
            Ok(None) => reports[i].problems.push(format!(
                "missing: {} does not exist (404, asked again for {:.0?}); build it, or run decide and the build jobs first",
                hashes[i].image, opts.wait
            )),
            Err(e) => reports[i]
                .problems
                .push(format!("could not read {}: {e}", hashes[i].image)),
        }
    }

    // 2. Layers of every index child that takes part in a base check.
    let mut need_layers: BTreeSet<usize> = BTreeSet::new();
    for (i, ps) in from.iter().enumerate() {
        if !ps.is_empty() {
            need_layers.insert(i);
            need_layers.extend(ps.iter().copied());
        }
    }
    let jobs: Vec<(usize, usize, RepoRef, String)> = need_layers
        .iter()
        .filter_map(|&i| {
            let f = found[i].as_ref()?;
            let repo = repos[i].as_ref().ok()?;
            Some(
                f.images
                    .iter()
                    .enumerate()
                    .filter(|(_, pi)| pi.layers.is_none())
                    .map(|(k, pi)| (i, k, repo.clone(), pi.digest.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect();
    let layer_results: Vec<(usize, usize, anyhow::Result<Vec<String>>)> = stream::iter(jobs)
        .map(|(i, k, repo, digest)| async move {
            let r = async {
                let m = get_waiting(client, &repo, &digest, opts.wait)
                    .await?
                    .with_context(|| format!("{repo}@{digest} does not exist (404)"))?;
                match m.parse()? {
                    ParsedManifest::Image(img) => {
                        Ok(img.layers.iter().map(|l| l.digest.clone()).collect())
                    }
                    ParsedManifest::Index(_) => {
                        anyhow::bail!("{repo}@{digest} is a nested index; not supported")
                    }
                }
            }
            .await;
            (i, k, r)
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for (i, k, r) in layer_results {
        match r {
            Ok(layers) => {
                if let Some(f) = found[i].as_mut() {
                    f.images[k].layers = Some(layers);
                }
            }
            Err(e) => reports[i]
                .problems
                .push(format!("could not read a platform manifest: {e:#}")),
        }
    }

    // 3. Platforms: single-arch images that list platforms need their config blob.
    let cfg_jobs: Vec<(usize, RepoRef, String)> = (0..n)
        .filter(|&i| !config.images[i].platforms.is_empty())
        .filter_map(|i| {
            let f = found[i].as_ref()?;
            if f.index {
                return None;
            }
            let cfg = f.manifest.parse().ok()?.config()?.digest.clone();
            Some((i, repos[i].as_ref().ok()?.clone(), cfg))
        })
        .collect();
    let cfg_results: Vec<(usize, anyhow::Result<PlatformKey>)> = stream::iter(cfg_jobs)
        .map(|(i, repo, digest)| async move {
            let r = async {
                let bytes = blobs.read(&repo, &digest).await?;
                platform_of_config(&bytes).with_context(|| format!("config blob {repo}@{digest}"))
            }
            .await;
            (i, r)
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for (i, r) in cfg_results {
        match r {
            Ok(p) => {
                if let Some(f) = found[i].as_mut() {
                    f.images[0].platform = Some(p);
                }
            }
            Err(e) => reports[i]
                .problems
                .push(format!("could not read the image's platform: {e:#}")),
        }
    }
    for i in 0..n {
        let Some(f) = &found[i] else { continue };
        reports[i].kind = Some(f.describe());
        let required = &config.images[i].platforms;
        if required.is_empty() {
            continue;
        }
        if !f.index && f.images[0].platform.is_none() {
            continue; // reported above
        }
        let missing = missing_platforms(required, &f.platforms());
        if missing.is_empty() {
            reports[i]
                .passed
                .push(format!("has every platform ({})", required.join(", ")));
        } else {
            let have: Vec<String> = f.platforms().iter().map(|p| p.to_string()).collect();
            reports[i].problems.push(format!(
                "missing platform{} {} (it has {}); build every platform in `platforms:`",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ));
        }
    }

    // 4. Built on the parents.
    for (i, ps) in from.iter().enumerate() {
        if ps.is_empty() {
            if !config.images[i].parents.is_empty() {
                reports[i].passed.push(
                    "no parent is used in FROM (COPY --from/mounts only): layers not compared"
                        .into(),
                );
            }
            continue;
        }
        let Some(child) = &found[i] else { continue };
        if ps.iter().any(|&p| found[p].is_none()) {
            let missing: Vec<&str> = ps
                .iter()
                .filter(|&&p| found[p].is_none())
                .map(|&p| config.images[p].name.as_str())
                .collect();
            reports[i].problems.push(format!(
                "cannot check its base: parent {} is missing",
                missing.join(", ")
            ));
            continue;
        }
        let parents: Vec<(&str, &Found)> = ps
            .iter()
            .filter_map(|&p| Some((config.images[p].name.as_str(), found[p].as_ref()?)))
            .collect();
        let problems = base_problems(&parents, child);
        if problems.is_empty() {
            let names: Vec<&str> = parents.iter().map(|(n, _)| *n).collect();
            reports[i]
                .passed
                .push(format!("built on the current {}", names.join(" / ")));
        }
        reports[i].problems.extend(problems);
    }

    // 5. The aliases, with what they point at now (read in step 1).
    let mut problems = Vec::new();
    let mut states = Vec::with_capacity(aliases.len());
    for (a, prev) in aliases.into_iter().zip(previous) {
        let digest = found[a.image].as_ref().map(|f| f.manifest.digest.clone());
        let previous = match prev {
            Ok(p) => p,
            Err(reason) => {
                problems.push(format!(
                    "could not read the alias {} (needed for `previous` and rollback): {reason}",
                    a.reference()
                ));
                None
            }
        };
        let status = if digest.is_some() && digest == previous {
            AliasStatus::InPlace
        } else {
            AliasStatus::Pending
        };
        states.push(AliasState {
            alias: a,
            digest,
            previous,
            status,
        });
    }

    Checked {
        images: reports,
        found,
        aliases: states,
        skipped,
        problems,
    }
}

/// What [`check`] returns when it ran out of time: nothing is known, so the caller adds the
/// problem and nothing is written.
pub fn check_timed_out(config: &Config, hashes: &[ImageHash], plan: AliasPlan) -> Checked {
    Checked {
        images: config
            .images
            .iter()
            .zip(hashes)
            .map(|(s, h)| ImageReport {
                name: s.name.clone(),
                reference: h.image.clone(),
                ..ImageReport::default()
            })
            .collect(),
        found: vec![None; config.images.len()],
        aliases: plan
            .aliases
            .into_iter()
            .map(|alias| AliasState {
                alias,
                digest: None,
                previous: None,
                status: AliasStatus::Pending,
            })
            .collect(),
        skipped: plan.skipped,
        problems: Vec::new(),
    }
}

/// `os`, `architecture`, `variant` of an image config blob.
pub fn platform_of_config(bytes: &[u8]) -> anyhow::Result<PlatformKey> {
    #[derive(serde::Deserialize)]
    struct Cfg {
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
        #[serde(default)]
        variant: Option<String>,
    }
    let c: Cfg = serde_json::from_slice(bytes).context("not an image config (JSON)")?;
    if c.os.is_empty() || c.architecture.is_empty() {
        anyhow::bail!("the image config names no os/architecture");
    }
    Ok(PlatformKey::new(
        &c.os,
        &c.architecture,
        c.variant.as_deref(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// What copying content into other repositories did.
#[derive(Debug, Default)]
pub struct CopyStats {
    pub manifests: AtomicU64,
    pub blobs_present: AtomicU64,
    pub blobs_mounted: AtomicU64,
    pub blobs_streamed: AtomicU64,
    pub bytes_streamed: AtomicU64,
}

impl CopyStats {
    pub fn describe(&self) -> String {
        format!(
            "{} child manifests, blobs: {} already there, {} mounted, {} streamed ({} bytes)",
            self.manifests.load(Ordering::Relaxed),
            self.blobs_present.load(Ordering::Relaxed),
            self.blobs_mounted.load(Ordering::Relaxed),
            self.blobs_streamed.load(Ordering::Relaxed),
            self.bytes_streamed.load(Ordering::Relaxed),
        )
    }
}

/// Copy everything `m` references from `from` into `to`, by digest, without touching tags: the
/// blobs of an image (mounted within a registry, streamed across registries — `copy_blob` picks),
/// the children of an index (recursively, each PUT by its digest after its own content). `m`
/// itself is not written: the alias PUT does that.
pub fn copy_content<'a>(
    client: &'a Client,
    from: &'a RepoRef,
    to: &'a RepoRef,
    m: &'a Manifest,
    depth: usize,
    stats: &'a CopyStats,
) -> BoxFuture<'a, anyhow::Result<()>> {
    Box::pin(async move {
        if depth > 4 {
            anyhow::bail!("{from}@{}: indexes nested deeper than 4 levels", m.digest);
        }
        match m.parse()? {
            ParsedManifest::Index(idx) => {
                // Owned descriptors: a boxed recursive future cannot hold closures over borrows
                // of a local with a higher-ranked lifetime.
                let results: Vec<anyhow::Result<()>> = stream::iter(idx.manifests)
                    .map(|d| async move {
                        if client.probe(to, &d.digest).await.is_present() {
                            return Ok(());
                        }
                        let child = client.get_manifest(from, &d.digest).await?;
                        copy_content(client, from, to, &child, depth + 1, stats).await?;
                        client
                            .put_manifest(to, &d.digest, &child.bytes, &child.media_type)
                            .await?;
                        stats.manifests.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    })
                    .buffer_unordered(8)
                    .collect()
                    .await;
                results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
            }
            ParsedManifest::Image(img) => {
                // Foreign layers (Windows base layers) live at their `urls`, not in registries.
                let blobs: Vec<skip_registry::Descriptor> = std::iter::once(img.config)
                    .chain(img.layers)
                    .filter(|b| {
                        b.urls.as_ref().is_none_or(|u| u.is_empty())
                            && !b.media_type.contains("foreign")
                    })
                    .collect();
                let results: Vec<anyhow::Result<()>> = stream::iter(blobs)
                    .map(|b| async move {
                        let outcome = client
                            .copy_blob(from, to, &b.digest)
                            .await
                            .with_context(|| format!("copying blob {} into {to}", b.digest))?;
                        match outcome {
                            CopyOutcome::AlreadyPresent => &stats.blobs_present,
                            CopyOutcome::Mounted => &stats.blobs_mounted,
                            CopyOutcome::Copied { bytes } => {
                                stats.bytes_streamed.fetch_add(bytes, Ordering::Relaxed);
                                &stats.blobs_streamed
                            }
                        }
                        .fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    })
                    .buffer_unordered(4)
                    .collect()
                    .await;
                results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
            }
        }
        Ok(())
    })
}

/// Write every pending alias (or, in a dry run, mark it `WouldMove`). Call only when
/// [`Checked::blocked`] is false.
///
/// First the content copies for aliases in other repositories (one per target repository and
/// digest); if any fails, no alias is written. Then every alias PUT, `opts.concurrency` at a time;
/// copied aliases are read back and must have the source digest.
pub async fn apply(client: &Client, checked: &mut Checked, opts: &Options) -> CopyStats {
    let stats = CopyStats::default();
    if opts.dry_run {
        for a in &mut checked.aliases {
            if a.status == AliasStatus::Pending {
                a.status = AliasStatus::WouldMove;
            }
        }
        return stats;
    }

    // 1. Content for other repositories, once per (source, target, digest).
    let mut copies: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for a in &checked.aliases {
        if a.status == AliasStatus::Pending && a.alias.cross_repo() {
            if let Some(d) = &a.digest {
                copies
                    .entry((a.alias.source_repo.clone(), a.alias.repo.clone(), d.clone()))
                    .or_insert(a.alias.image);
            }
        }
    }
    let found = &checked.found;
    let copy_results: Vec<(String, anyhow::Result<()>)> = stream::iter(copies)
        .map(|((src, dst, digest), image)| {
            let stats = &stats;
            async move {
                let what = format!("{src}@{} → {dst}", short_digest(&digest));
                let r = async {
                    let from = RepoRef::parse(&src)?;
                    let to = RepoRef::parse(&dst)?;
                    let f = found[image].as_ref().context("the content was not read")?;
                    copy_content(client, &from, &to, &f.manifest, 0, stats).await
                }
                .await;
                (what, r)
            }
        })
        .buffer_unordered(opts.concurrency.clamp(1, 8))
        .collect()
        .await;
    let failed: Vec<String> = copy_results
        .into_iter()
        .filter_map(|(what, r)| r.err().map(|e| format!("copy {what}: {e:#}")))
        .collect();
    if !failed.is_empty() {
        let why = format!("content copy failed first: {}", failed.join("; "));
        for a in &mut checked.aliases {
            if a.status == AliasStatus::Pending {
                a.status = AliasStatus::NotAttempted(why.clone());
            }
        }
        return stats;
    }

    // 2. The alias PUTs.
    let pending: Vec<usize> = (0..checked.aliases.len())
        .filter(|&k| checked.aliases[k].status == AliasStatus::Pending)
        .collect();
    let aliases = &checked.aliases;
    let results: Vec<(usize, AliasStatus)> = stream::iter(pending)
        .map(|k| async move {
            let a = &aliases[k];
            let r = async {
                let f = found[a.alias.image]
                    .as_ref()
                    .context("the content was not read")?;
                let repo = RepoRef::parse(&a.alias.repo)?;
                let put = client
                    .put_manifest(
                        &repo,
                        &a.alias.tag,
                        &f.manifest.bytes,
                        &f.manifest.media_type,
                    )
                    .await?;
                if put != f.manifest.digest {
                    anyhow::bail!(
                        "wrote digest {put}, expected {} (the bytes changed?)",
                        f.manifest.digest
                    );
                }
                if a.alias.cross_repo() {
                    match client.probe(&repo, &a.alias.tag).await {
                        Probe::Present { digest, .. } if digest == f.manifest.digest => {}
                        Probe::Present { digest, .. } => anyhow::bail!(
                            "after the copy the alias has digest {digest}, expected {}",
                            f.manifest.digest
                        ),
                        other => anyhow::bail!("could not verify the copy: {other:?}"),
                    }
                }
                Ok(())
            }
            .await;
            (
                k,
                match r {
                    Ok(()) => AliasStatus::Moved,
                    Err(e) => AliasStatus::Failed(format!("{e:#}")),
                },
            )
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for (k, s) in results {
        checked.aliases[k].status = s;
    }
    stats
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

/// `promoted`: alias → digest, for every alias that points at its content after this run (moved,
/// or already there). Empty when the promotion did not run (blocked, or a dry run).
pub fn promoted_json(checked: &Checked, dry_run: bool) -> String {
    if dry_run || checked.blocked() {
        return "{}".into();
    }
    let m: BTreeMap<String, &str> = checked
        .aliases
        .iter()
        .filter(|a| matches!(a.status, AliasStatus::Moved | AliasStatus::InPlace))
        .filter_map(|a| Some((a.alias.reference(), a.digest.as_deref()?)))
        .collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

/// `previous`: alias → digest before this run, or null when it did not exist.
pub fn previous_json(checked: &Checked) -> String {
    let m: BTreeMap<String, Option<&str>> = checked
        .aliases
        .iter()
        .map(|a| (a.alias.reference(), a.previous.as_deref()))
        .collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

/// Shell lines that put moved aliases back where they were, with tools found on runners (skopeo
/// preserves the digest with `--preserve-digests`; crane's `tag` re-tags within a repository).
/// `http_hosts` are registries spoken to over plain http (they need `--*-tls-verify=false`).
pub fn rollback_commands(checked: &Checked, http_hosts: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for a in &checked.aliases {
        if !matches!(a.status, AliasStatus::Moved) {
            continue;
        }
        let repo = &a.alias.repo;
        let host = repo.split('/').next().unwrap_or("");
        let tls = if http_hosts.contains(host) {
            " --src-tls-verify=false --dest-tls-verify=false"
        } else {
            ""
        };
        match &a.previous {
            Some(prev) => {
                out.push(format!(
                    "skopeo copy --all --preserve-digests{tls} docker://{repo}@{prev} docker://{repo}:{}",
                    a.alias.tag
                ));
                out.push(format!("#   or: crane tag {repo}@{prev} {}", a.alias.tag));
            }
            None => out.push(format!(
                "# {repo}:{} did not exist before; to undo, delete that tag in the registry (not the digest: it is the content tag's)",
                a.alias.tag
            )),
        }
    }
    out
}

fn status_text(a: &AliasState) -> String {
    match &a.status {
        AliasStatus::Pending => "pending".into(),
        AliasStatus::InPlace => "already in place".into(),
        AliasStatus::WouldMove => {
            if a.alias.cross_repo() {
                format!("would copy from {} and move", a.alias.source_repo)
            } else {
                "would move".into()
            }
        }
        AliasStatus::Moved => {
            if a.alias.cross_repo() {
                "copied, moved, verified".into()
            } else {
                "moved".into()
            }
        }
        AliasStatus::Failed(e) => format!("**FAILED**: {e}"),
        AliasStatus::NotAttempted(e) => format!("not moved: {e}"),
    }
}

/// The Markdown report: checks, aliases, rollback. Shown in the step summary and the log.
pub fn summary_markdown(
    checked: &Checked,
    dry_run: bool,
    http_hosts: &BTreeSet<String>,
    stats: Option<&CopyStats>,
) -> String {
    let mut s = String::new();
    s.push_str(if dry_run {
        "## skip-action promote (dry run: nothing written)\n\n"
    } else {
        "## skip-action promote\n\n"
    });
    let blocked = checked.blocked();
    let moved = checked
        .aliases
        .iter()
        .filter(|a| a.status == AliasStatus::Moved)
        .count();
    let failed = checked
        .aliases
        .iter()
        .filter(|a| {
            matches!(
                a.status,
                AliasStatus::Failed(_) | AliasStatus::NotAttempted(_)
            )
        })
        .count();
    if blocked {
        s.push_str("**Blocked: no tag was changed.**\n\n");
        for p in checked.all_problems() {
            s.push_str(&format!("- {}\n", md_cell(&p)));
        }
        s.push('\n');
    } else if failed > 0 {
        s.push_str(&format!(
            "**Failed: {moved} alias(es) moved, {failed} did not** — see the rollback commands below.\n\n"
        ));
    }

    s.push_str("### Checks\n\n| image | content tag | digest | result |\n|---|---|---|---|\n");
    for r in &checked.images {
        let digest = r
            .digest
            .as_deref()
            .map(|d| format!("`{}`", short_digest(d)))
            .unwrap_or_else(|| "—".into());
        let mut result: Vec<String> = Vec::new();
        if r.problems.is_empty() {
            result.push("✅ exists".into());
        } else {
            result.extend(r.problems.iter().map(|p| format!("❌ {p}")));
        }
        if let Some(k) = &r.kind {
            result.push(k.clone());
        }
        result.extend(r.passed.iter().cloned());
        s.push_str(&format!(
            "| {} | `{}` | {digest} | {} |\n",
            md_cell(&r.name),
            md_cell(&r.reference),
            md_cell(&result.join("; "))
        ));
    }
    s.push('\n');

    if !checked.aliases.is_empty() {
        s.push_str(
            "### Aliases\n\n| alias | image | digest | before | status |\n|---|---|---|---|---|\n",
        );
        for a in &checked.aliases {
            let digest = a.digest.as_deref().unwrap_or("—");
            let before = match &a.previous {
                Some(p) if Some(p.as_str()) == a.digest.as_deref() => "same".to_string(),
                Some(p) => format!("`{p}`"),
                None => "(new)".to_string(),
            };
            let status = if blocked {
                "not moved (blocked)".to_string()
            } else {
                status_text(a)
            };
            s.push_str(&format!(
                "| `{}` | {} | `{digest}` | {before} | {} |\n",
                md_cell(&a.alias.reference()),
                md_cell(&a.alias.image_name),
                md_cell(&status)
            ));
        }
        s.push('\n');
    } else {
        s.push_str("No aliases to move (no `promote:` entries apply).\n\n");
    }
    for sk in &checked.skipped {
        s.push_str(&format!(
            "- skipped `{}` of {}: {}\n",
            md_cell(&sk.template),
            md_cell(&sk.image_name),
            md_cell(&sk.reason)
        ));
    }
    if !checked.skipped.is_empty() {
        s.push('\n');
    }
    if let Some(st) = stats {
        if st.manifests.load(Ordering::Relaxed)
            + st.blobs_present.load(Ordering::Relaxed)
            + st.blobs_mounted.load(Ordering::Relaxed)
            + st.blobs_streamed.load(Ordering::Relaxed)
            > 0
        {
            s.push_str(&format!(
                "Copied into other repositories: {}.\n\n",
                st.describe()
            ));
        }
    }
    let rb = rollback_commands(checked, http_hosts);
    if !rb.is_empty() {
        s.push_str("### Rollback\n\n```sh\n");
        for l in rb {
            s.push_str(&l);
            s.push('\n');
        }
        s.push_str("```\n\n");
    }
    s.push_str(&format!(
        "<details><summary>outputs</summary>\n\n```\npromoted={}\nprevious={}\n```\n\n</details>\n",
        promoted_json(checked, dry_run),
        previous_json(checked)
    ));
    s
}

/// A table cell: no line breaks, no unescaped pipes.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The report as JSON (for `--json`).
pub fn report_json(checked: &Checked, dry_run: bool) -> serde_json::Value {
    use serde_json::json;
    let images: Vec<serde_json::Value> = checked
        .images
        .iter()
        .map(|r| {
            json!({
                "name": r.name, "image": r.reference, "digest": r.digest, "kind": r.kind,
                "ok": r.problems.is_empty(), "passed": r.passed, "problems": r.problems,
            })
        })
        .collect();
    let aliases: Vec<serde_json::Value> = checked
        .aliases
        .iter()
        .map(|a| {
            let (status, error) = match &a.status {
                AliasStatus::Pending => ("pending", None),
                AliasStatus::InPlace => ("unchanged", None),
                AliasStatus::WouldMove => ("would_move", None),
                AliasStatus::Moved => ("moved", None),
                AliasStatus::Failed(e) => ("failed", Some(e.clone())),
                AliasStatus::NotAttempted(e) => ("not_attempted", Some(e.clone())),
            };
            json!({
                "alias": a.alias.reference(), "image": a.alias.image_name,
                "source": a.alias.source_reference(), "template": a.alias.template,
                "digest": a.digest, "previous": a.previous,
                "status": if checked.blocked() { "blocked" } else { status },
                "error": error,
            })
        })
        .collect();
    let skipped: Vec<serde_json::Value> = checked
        .skipped
        .iter()
        .map(|s| json!({"image": s.image_name, "template": s.template, "reason": s.reason}))
        .collect();
    let promoted: serde_json::Value =
        serde_json::from_str(&promoted_json(checked, dry_run)).unwrap_or_default();
    let previous: serde_json::Value =
        serde_json::from_str(&previous_json(checked)).unwrap_or_default();
    json!({
        "dry_run": dry_run,
        "blocked": checked.blocked(),
        "problems": checked.all_problems(),
        "images": images,
        "aliases": aliases,
        "skipped": skipped,
        "promoted": promoted,
        "previous": previous,
    })
}

// ---------------------------------------------------------------------------------------------
// Config blobs
// ---------------------------------------------------------------------------------------------

/// Reading one config blob, with the registry's auth.
///
/// Why this exists here: `skip-registry`'s `Client` has no blob GET (it only needs to copy blobs,
/// never to read them), and the platform of a single-arch image is only in its config blob. This
/// is a small, read-only stand-in built from the client's public auth pieces (the same credential
/// sources, `WWW-Authenticate` parsing and token-response parsing, the same http/https choice);
/// replace it with a `Client::get_blob` once the registry crate has one.
pub mod blob {
    use anyhow::{anyhow, bail, Context as _};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
    use skip_registry::auth::{parse_token_response, parse_www_authenticate};
    use skip_registry::{Client, Credential, Credentials, RepoRef};

    /// Config blobs are small; refuse anything absurd.
    const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

    /// A blob reader sharing one HTTP client.
    pub struct Reader {
        http: reqwest::Client,
        creds: Credentials,
        registry: Client,
    }

    impl Reader {
        pub fn new(
            registry: Client,
            creds: Credentials,
            timeout: std::time::Duration,
        ) -> anyhow::Result<Reader> {
            let http = skip_registry::trust::reqwest_builder()?
                .user_agent(concat!("skip-action/", env!("CARGO_PKG_VERSION")))
                .timeout(timeout)
                .build()
                .context("building the HTTP client")?;
            Ok(Reader {
                http,
                creds,
                registry,
            })
        }

        /// GET `repo`'s blob `digest`, verified against the digest.
        pub async fn read(&self, repo: &RepoRef, digest: &str) -> anyhow::Result<Vec<u8>> {
            let host = repo.api_host();
            let url = format!(
                "{}://{host}/v2/{}/blobs/{digest}",
                self.registry.scheme_for(host),
                repo.repository
            );
            let what = format!("GET blob {repo}@{digest}");
            let mut auth: Option<HeaderValue> = None;
            for attempt in 0..2 {
                let mut rb = self.http.get(&url);
                if let Some(a) = &auth {
                    rb = rb.header(AUTHORIZATION, a.clone());
                }
                let resp = rb.send().await.map_err(|e| anyhow!("{what}: {e}"))?;
                let status = resp.status().as_u16();
                if status == 200 {
                    let body = resp.bytes().await.map_err(|e| anyhow!("{what}: {e}"))?;
                    if body.len() > MAX_CONFIG_BYTES {
                        bail!("{what}: over {MAX_CONFIG_BYTES} bytes; not a config blob");
                    }
                    skip_registry::manifest::verify_digest(digest, &body)
                        .with_context(|| what.clone())?;
                    return Ok(body.to_vec());
                }
                if status == 401 && attempt == 0 {
                    let challenges: Vec<_> = resp
                        .headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(parse_www_authenticate)
                        .collect();
                    auth = Some(self.authorization(repo, &challenges).await?);
                    continue;
                }
                bail!("{what} answered HTTP {status}");
            }
            bail!("{what}: refused after authenticating")
        }

        async fn authorization(
            &self,
            repo: &RepoRef,
            challenges: &[skip_registry::auth::Challenge],
        ) -> anyhow::Result<HeaderValue> {
            let resolved = self.creds.resolve(repo).await;
            let cred = &resolved.credential;
            let value = if let Some(b) = challenges
                .iter()
                .find(|c| c.scheme == "bearer" && c.realm().is_some())
            {
                let realm = b.realm().unwrap_or_default();
                let mut url = reqwest::Url::parse(realm)
                    .with_context(|| format!("token realm {realm:?} is not a URL"))?;
                let realm_host = match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    _ => bail!("token realm {realm:?} has no host"),
                };
                if url.scheme() == "http"
                    && !cred.is_anonymous()
                    && self.registry.scheme_for(&realm_host) == "https"
                {
                    bail!("refusing to send credentials to the plain-http token realm {realm}");
                }
                let scope = format!("repository:{}:pull", repo.repository);
                let rb = match cred {
                    Credential::RegistryToken(t) => {
                        return header(format!("Bearer {}", t.expose()))
                    }
                    Credential::IdentityToken { token, .. } => {
                        let mut form = vec![
                            ("grant_type", "refresh_token".to_string()),
                            ("refresh_token", token.expose().to_string()),
                            ("client_id", "skip-action".to_string()),
                            ("scope", scope),
                        ];
                        if let Some(s) = b.service() {
                            form.push(("service", s.to_string()));
                        }
                        self.http.post(url).form(&form)
                    }
                    Credential::Basic { username, password } => {
                        {
                            let mut q = url.query_pairs_mut();
                            if let Some(s) = b.service() {
                                q.append_pair("service", s);
                            }
                            q.append_pair("scope", &scope);
                            q.append_pair("account", username);
                        }
                        self.http.get(url).header(
                            AUTHORIZATION,
                            header(format!(
                                "Basic {}",
                                STANDARD.encode(format!("{username}:{}", password.expose()))
                            ))?,
                        )
                    }
                    Credential::Anonymous => {
                        {
                            let mut q = url.query_pairs_mut();
                            if let Some(s) = b.service() {
                                q.append_pair("service", s);
                            }
                            q.append_pair("scope", &scope);
                        }
                        self.http.get(url)
                    }
                };
                let resp = rb
                    .send()
                    .await
                    .map_err(|e| anyhow!("token request for {repo}: {e}"))?;
                let status = resp.status().as_u16();
                if status != 200 {
                    bail!(
                        "the token server refused pull access to {repo} (HTTP {status}) using {}",
                        resolved.describe()
                    );
                }
                let body = resp.bytes().await?;
                let t = parse_token_response(&body)?;
                format!("Bearer {}", t.token.expose())
            } else {
                match cred {
                    Credential::Basic { username, password } => format!(
                        "Basic {}",
                        STANDARD.encode(format!("{username}:{}", password.expose()))
                    ),
                    Credential::RegistryToken(t) => format!("Bearer {}", t.expose()),
                    _ => bail!(
                        "{} asks for credentials but there are {}",
                        repo.registry,
                        resolved.describe()
                    ),
                }
            };
            header(value)
        }
    }

    fn header(v: String) -> anyhow::Result<HeaderValue> {
        let mut h = HeaderValue::from_str(&v)
            .map_err(|_| anyhow!("credentials contain characters not allowed in a header"))?;
        h.set_sensitive(true);
        Ok(h)
    }
}

// ---------------------------------------------------------------------------------------------
// The jobs gate
// ---------------------------------------------------------------------------------------------

/// `--require-jobs`: the jobs of this workflow run whose names match must have succeeded.
///
/// Uses octocrab (rustls + ring, no OpenSSL; it adds about 20 small crates on top of the reqwest
/// stack we already have, and builds for musl) for the HTTP, auth and error handling, but with our
/// own minimal response type: octocrab's `Job` model requires fields (`node_id`, `html_url`,
/// `check_run_url`, …) that Gitea's compatible endpoint does not send, and we need only the name,
/// status and conclusion. `GITHUB_API_URL` may carry a path (Gitea: `https://host/api/v1`);
/// octocrab keeps it.
pub mod jobs {
    use std::time::Duration;

    use anyhow::{anyhow, bail};
    use serde::Deserialize;

    use crate::error::usage;

    /// One job of the run.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    pub struct Job {
        pub name: String,
        #[serde(default)]
        pub status: Option<String>,
        #[serde(default)]
        pub conclusion: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    struct Page {
        #[serde(default)]
        total_count: Option<u64>,
        #[serde(default)]
        jobs: Vec<Job>,
    }

    /// Split `--require-jobs` into patterns: on newlines, and on commas outside parentheses, so a
    /// matrix job's name such as `build (omos, linux/amd64)` can be written whole.
    pub fn split_patterns(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in text.lines() {
            let mut depth = 0i32;
            let mut cur = String::new();
            for c in line.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if c == ',' && depth <= 0 {
                    out.push(std::mem::take(&mut cur));
                } else {
                    cur.push(c);
                }
            }
            out.push(cur);
        }
        out.into_iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// Parse the patterns (globs: `*`, `?`, `[…]`), or a usage error.
    pub fn parse_patterns(text: &str) -> anyhow::Result<Vec<(String, glob::Pattern)>> {
        let pats = split_patterns(text);
        if pats.is_empty() {
            return Err(usage("require-jobs: no job name patterns given"));
        }
        pats.into_iter()
            .map(|p| {
                glob::Pattern::new(&p)
                    .map(|g| (p.clone(), g))
                    .map_err(|e| usage(format!("require-jobs: `{p}` is not a valid pattern: {e}")))
            })
            .collect()
    }

    /// Problems: a matching job that did not conclude `success` (failed, cancelled, skipped, still
    /// running), and a pattern that matches no job at all (a typo would otherwise pass silently).
    pub fn check(patterns: &[(String, glob::Pattern)], jobs: &[Job]) -> Vec<String> {
        let mut problems = Vec::new();
        for (src, p) in patterns {
            let matching: Vec<&Job> = jobs.iter().filter(|j| p.matches(&j.name)).collect();
            if matching.is_empty() {
                let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).take(20).collect();
                problems.push(format!(
                    "require-jobs: no job of this run matches `{src}` (jobs: {})",
                    names.join(", ")
                ));
            }
            for j in matching {
                if j.conclusion.as_deref() != Some("success") {
                    let state = match (&j.conclusion, &j.status) {
                        (Some(c), _) => format!("concluded {c}"),
                        (None, Some(s)) => format!("is {s}"),
                        (None, None) => "has no conclusion".to_string(),
                    };
                    problems.push(format!(
                        "require-jobs: job `{}` {state}, not success",
                        j.name
                    ));
                }
            }
        }
        problems.dedup();
        problems
    }

    /// Where the jobs API is and who we are, from the runner's environment.
    #[derive(Clone)]
    pub struct ApiEnv {
        pub api_url: String,
        pub owner: String,
        pub repo: String,
        pub run_id: u64,
        pub attempt: Option<u64>,
        token: String,
    }

    impl std::fmt::Debug for ApiEnv {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ApiEnv")
                .field("api_url", &self.api_url)
                .field("owner", &self.owner)
                .field("repo", &self.repo)
                .field("run_id", &self.run_id)
                .field("attempt", &self.attempt)
                .finish_non_exhaustive()
        }
    }

    impl ApiEnv {
        /// `GITHUB_API_URL` (default `https://api.github.com`), `GITHUB_REPOSITORY`,
        /// `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`; the token from `--token` or `GITHUB_TOKEN`.
        pub fn from_env(token: Option<&str>) -> anyhow::Result<ApiEnv> {
            let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
            let token = token
                .map(str::to_string)
                .filter(|t| !t.is_empty())
                .or_else(|| var("GITHUB_TOKEN"))
                .ok_or_else(|| {
                    usage("require-jobs needs a token with `actions: read`: pass `token: ${{ github.token }}` (input token) or set GITHUB_TOKEN")
                })?;
            let token = token.trim().to_string();
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(usage("the token contains spaces or control characters"));
            }
            crate::github::mask(&token);
            let repository = var("GITHUB_REPOSITORY").ok_or_else(|| {
                usage("require-jobs needs GITHUB_REPOSITORY (owner/repo): it only works inside a workflow run")
            })?;
            let ok = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            };
            let (owner, repo) = match repository.split_once('/') {
                Some((o, r)) if ok(o) && ok(r) => (o.to_string(), r.to_string()),
                _ => {
                    return Err(usage(format!(
                        "GITHUB_REPOSITORY `{repository}` is not owner/repo"
                    )))
                }
            };
            let run_id = var("GITHUB_RUN_ID")
                .ok_or_else(|| {
                    usage("require-jobs needs GITHUB_RUN_ID: it only works inside a workflow run")
                })?
                .trim()
                .parse::<u64>()
                .map_err(|_| usage("GITHUB_RUN_ID is not a number"))?;
            let attempt = match var("GITHUB_RUN_ATTEMPT") {
                Some(a) => Some(
                    a.trim()
                        .parse::<u64>()
                        .map_err(|_| usage("GITHUB_RUN_ATTEMPT is not a number"))?,
                ),
                None => None,
            };
            let api_url = var("GITHUB_API_URL")
                .unwrap_or_else(|| "https://api.github.com".to_string())
                .trim_end_matches('/')
                .to_string();
            // The token must not cross the network in clear text: plain http only to loopback.
            let parsed = reqwest::Url::parse(&api_url)
                .map_err(|e| usage(format!("GITHUB_API_URL `{api_url}` is not a URL: {e}")))?;
            let h = parsed.host_str().unwrap_or("");
            let loopback = h == "localhost"
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            match parsed.scheme() {
                "https" => {}
                "http" if loopback => {}
                _ => {
                    return Err(usage(format!(
                        "GITHUB_API_URL `{api_url}`: the token is only sent over https (or http to localhost)"
                    )))
                }
            }
            Ok(ApiEnv {
                api_url,
                owner,
                repo,
                run_id,
                attempt,
                token,
            })
        }
    }

    fn status_of(e: &octocrab::Error) -> Option<u16> {
        match e {
            octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
            _ => None,
        }
    }

    /// GET one page, retrying transport errors and 5xx (three attempts, 1 s then 2 s apart).
    async fn get_page(
        crab: &octocrab::Octocrab,
        route: &str,
        page: u32,
    ) -> Result<Page, octocrab::Error> {
        let params = [("per_page", "100".to_string()), ("page", page.to_string())];
        let mut attempt = 0;
        loop {
            match crab.get::<Page, _, _>(route, Some(&params)).await {
                Ok(p) => return Ok(p),
                Err(e) => {
                    let retry = match status_of(&e) {
                        Some(s) => s >= 500 || s == 429,
                        None => matches!(
                            e,
                            octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }
                        ),
                    };
                    if !retry || attempt >= 2 {
                        return Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(Duration::from_secs(attempt)).await;
                }
            }
        }
    }

    /// Every job of this run (this attempt when known), all pages.
    ///
    /// GitHub's `…/runs/{id}/attempts/{n}/jobs` is tried first; on 404 (Gitea, which has no
    /// attempts endpoint) `…/runs/{id}/jobs`, which both serve for the latest attempt.
    pub async fn fetch(env: &ApiEnv, timeout: Duration) -> anyhow::Result<Vec<Job>> {
        let crab = crate::github::api_client::octocrab(
            &env.api_url,
            &env.token,
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
        .map_err(|e| usage(format!("{e:#}")))?;
        let base = format!(
            "/repos/{}/{}/actions/runs/{}",
            env.owner, env.repo, env.run_id
        );
        let mut routes = Vec::new();
        if let Some(a) = env.attempt {
            routes.push(format!("{base}/attempts/{a}/jobs"));
        }
        routes.push(format!("{base}/jobs"));
        let work = async {
            let mut last_404 = None;
            for route in &routes {
                let mut jobs = Vec::new();
                let mut page = 1u32;
                loop {
                    let p = match get_page(&crab, route, page).await {
                        Ok(p) => p,
                        Err(e) if status_of(&e) == Some(404) && page == 1 => {
                            last_404 = Some(route.clone());
                            break;
                        }
                        Err(e) => {
                            let hint = match status_of(&e) {
                                Some(401) | Some(403) => {
                                    " (the token needs `permissions: actions: read`)"
                                }
                                _ => "",
                            };
                            return Err(anyhow!(
                                "reading the jobs of run {} from {}{route}: {}{hint}",
                                env.run_id,
                                env.api_url,
                                crate::github::api_client::describe(&e)
                            ));
                        }
                    };
                    let got = p.jobs.len();
                    jobs.extend(p.jobs);
                    let total = p.total_count.unwrap_or(0) as usize;
                    if got == 0 || (total > 0 && jobs.len() >= total) || page >= 100 {
                        return Ok(jobs);
                    }
                    if total == 0 && got < 100 {
                        return Ok(jobs);
                    }
                    page += 1;
                }
            }
            bail!(
                "{}{} answered 404: is GITHUB_API_URL right, and does the token see this repository?",
                env.api_url,
                last_404.unwrap_or_default()
            )
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| anyhow!("the jobs API did not answer within {timeout:?}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn img(platform: Option<&str>, digest: &str, l: &[&str]) -> PlatformImage {
        PlatformImage {
            platform: platform.map(|p| PlatformKey::parse(p).unwrap()),
            digest: digest.into(),
            layers: Some(layers(l)),
        }
    }

    fn found(index: bool, images: Vec<PlatformImage>) -> Found {
        Found {
            manifest: Manifest {
                bytes: vec![],
                media_type: String::new(),
                digest: "sha256:top".into(),
            },
            index,
            images,
        }
    }

    #[test]
    fn layer_prefix() {
        assert!(is_layer_prefix(
            &layers(&["a", "b"]),
            &layers(&["a", "b", "c"])
        ));
        assert!(is_layer_prefix(&layers(&["a", "b"]), &layers(&["a", "b"])));
        assert!(!is_layer_prefix(
            &layers(&["a", "b"]),
            &layers(&["a", "x", "c"])
        ));
        assert!(!is_layer_prefix(
            &layers(&["a", "b", "c"]),
            &layers(&["a", "b"])
        ));
        assert!(!is_layer_prefix(&layers(&["b"]), &layers(&["a", "b"])));
        assert!(is_layer_prefix(&[], &layers(&["a"])));
    }

    #[test]
    fn platform_normalisation_and_coverage() {
        let p = |s: &str| PlatformKey::parse(s).unwrap();
        assert_eq!(p("linux/arm64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/aarch64"), p("linux/arm64"));
        assert_eq!(p("linux/arm"), p("linux/arm/v7"));
        assert_ne!(p("linux/arm/v6"), p("linux/arm/v7"));
        assert_eq!(p("Linux/AMD64"), p("linux/amd64"));
        assert!(PlatformKey::parse("linux").is_err());
        assert!(PlatformKey::parse("linux//").is_err());
        let have = vec![p("linux/amd64"), p("linux/arm64/v8")];
        assert!(missing_platforms(&layers(&["linux/amd64", "linux/arm64"]), &have).is_empty());
        assert_eq!(
            missing_platforms(
                &layers(&["linux/amd64", "linux/s390x", "linux/arm/v7"]),
                &have
            ),
            layers(&["linux/s390x", "linux/arm/v7"])
        );
        assert_eq!(missing_platforms(&layers(&["bad"]), &have).len(), 1);
        assert!(PlatformKey::new("unknown", "unknown", None).is_unknown());
    }

    #[test]
    fn config_platform() {
        let k = platform_of_config(
            br#"{"os":"linux","architecture":"arm64","variant":"v8","rootfs":{}}"#,
        )
        .unwrap();
        assert_eq!(k.to_string(), "linux/arm64");
        assert!(platform_of_config(br#"{"rootfs":{}}"#).is_err());
        assert!(platform_of_config(b"<html>").is_err());
    }

    #[test]
    fn base_single_arch() {
        let base = found(false, vec![img(None, "sha256:b", &["l1", "l2"])]);
        let good = found(false, vec![img(None, "sha256:c", &["l1", "l2", "l3"])]);
        assert!(base_problems(&[("base", &base)], &good).is_empty());
        let stale = found(false, vec![img(None, "sha256:s", &["l1", "old", "l3"])]);
        let p = base_problems(&[("base", &base)], &stale);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("not built on the current base"), "{p:?}");
    }

    #[test]
    fn base_multi_arch_matches_platforms() {
        let base = found(
            true,
            vec![
                img(Some("linux/amd64"), "sha256:ba", &["a1"]),
                img(Some("linux/arm64"), "sha256:bb", &["b1"]),
            ],
        );
        let good = found(
            true,
            vec![
                img(Some("linux/amd64"), "sha256:ca", &["a1", "x"]),
                img(Some("linux/arm64/v8"), "sha256:cb", &["b1", "y"]),
            ],
        );
        assert!(base_problems(&[("base", &base)], &good).is_empty());
        // arm64 child on the amd64 base layers: wrong platform's base.
        let crossed = found(
            true,
            vec![
                img(Some("linux/amd64"), "sha256:ca", &["a1", "x"]),
                img(Some("linux/arm64"), "sha256:cb", &["a1", "y"]),
            ],
        );
        let p = base_problems(&[("base", &base)], &crossed);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("linux/arm64"), "{p:?}");
        // A platform the base does not have.
        let extra = found(true, vec![img(Some("linux/s390x"), "sha256:cs", &["z"])]);
        let p = base_problems(&[("base", &base)], &extra);
        assert!(p[0].contains("base has no linux/s390x"), "{p:?}");
    }

    #[test]
    fn base_mixed_and_several_parents() {
        // Single-arch child of unknown platform on a multi-arch base: any base image may match.
        let base = found(
            true,
            vec![
                img(Some("linux/amd64"), "sha256:ba", &["a1"]),
                img(Some("linux/arm64"), "sha256:bb", &["b1"]),
            ],
        );
        let child = found(false, vec![img(None, "sha256:c", &["b1", "c"])]);
        assert!(base_problems(&[("base", &base)], &child).is_empty());
        // Two FROM parents: built on either is enough.
        let tools = found(false, vec![img(None, "sha256:t", &["t1"])]);
        let on_tools = found(false, vec![img(None, "sha256:c", &["t1", "c"])]);
        assert!(base_problems(&[("base", &base), ("tools", &tools)], &on_tools).is_empty());
        let on_neither = found(false, vec![img(None, "sha256:c", &["q", "c"])]);
        let p = base_problems(&[("base", &base), ("tools", &tools)], &on_neither);
        assert!(p[0].contains("base or tools"), "{p:?}");
    }

    #[test]
    fn job_patterns_split_and_match() {
        assert_eq!(
            jobs::split_patterns("build (omos, linux/amd64), test\nscan*,,"),
            layers(&["build (omos, linux/amd64)", "test", "scan*"])
        );
        let pats = jobs::parse_patterns("build*, test").unwrap();
        let job = |n: &str, c: Option<&str>, s: &str| jobs::Job {
            name: n.into(),
            conclusion: c.map(str::to_string),
            status: Some(s.into()),
        };
        let all_good = vec![
            job("build (base, linux/amd64)", Some("success"), "completed"),
            job("build (omos, linux/amd64)", Some("success"), "completed"),
            job("test", Some("success"), "completed"),
            job("promote", None, "in_progress"),
        ];
        assert!(jobs::check(&pats, &all_good).is_empty());
        let mut bad = all_good.clone();
        bad[1].conclusion = Some("failure".into());
        bad[2] = job("test", None, "in_progress");
        let p = jobs::check(&pats, &bad);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("build (omos, linux/amd64)") && p[0].contains("failure"));
        assert!(p[1].contains("is in_progress"));
        let skipped = vec![job("test", Some("skipped"), "completed")];
        let p = jobs::check(&jobs::parse_patterns("test").unwrap(), &skipped);
        assert!(p[0].contains("concluded skipped"));
        // A pattern that matches nothing is a problem (a typo must not pass).
        let p = jobs::check(&jobs::parse_patterns("tset").unwrap(), &all_good);
        assert!(p[0].contains("no job of this run matches `tset`"), "{p:?}");
        assert!(jobs::parse_patterns(" , \n").is_err());
        assert!(jobs::parse_patterns("build[").is_err());
    }

    #[test]
    fn short_digests() {
        assert_eq!(
            short_digest("sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
        assert_eq!(short_digest("sha256:ab"), "sha256:ab");
    }
}
