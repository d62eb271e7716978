//! The checks before any write, in two halves: [`fetch`] asks the registry and returns its
//! answers as data ([`Fetched`]); [`judge`] turns the answers into problems and alias states.
//! `judge` is pure, so every rule of "may this alias move?" is unit-tested without a registry,
//! the way [`crate::plan::decide`] is for `decide`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::stream::{self, StreamExt as _};
use skip_registry::manifest::ParsedManifest;
use skip_registry::{Client, ErrorKind, Manifest, Probe, RepoRef};

use super::order::{self, GitOrder, Verdict};
use super::{Alias, AliasPlan, Options, SkippedAlias};
use crate::config::Config;
use crate::hash::ImageHash;
use crate::lineage::{base_problems, missing_platforms, Found, PlatformKey};

/// Config blobs are a few KiB; refuse anything absurd before reading it.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

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
    /// Not moved on purpose: the alias holds a build of a newer commit, or the order of the two
    /// commits cannot be told ([`super::order`]). Not a failure.
    Held(String),
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

/// How the read of one image's content tag ended.
#[derive(Debug, Clone)]
pub enum ContentRead {
    /// Read and understood; platform images have their layers and platforms as far as the
    /// judgement needs them (and as far as they could be read: see [`DetailError`]).
    Found(Found),
    /// Still 404 after the wait.
    Missing,
    /// Served, but not a manifest promote understands.
    Unusable(String),
    /// Could not be asked (a bad repository, an error after retries).
    Failed(String),
}

/// A read beyond the content tag that the judgement needs and that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailError {
    /// A platform manifest (an index child), for the layer comparison with the parent.
    PlatformManifest(String),
    /// The config blob of a single-arch image, for its platform.
    ConfigBlob(String),
}

/// Everything the registry answered, before any judgement.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// Per image, in config order.
    pub content: Vec<ContentRead>,
    /// Per image, in the order read.
    pub details: Vec<Vec<DetailError>>,
    /// Per alias of the plan, in plan order: where it points now (`None`: no such tag), or why
    /// that could not be read.
    pub previous: Vec<Result<Option<String>, String>>,
    /// Per image: `None` when no test stamp is required; else where its stamp
    /// (`<content-tag>.tested`) points (`Ok(None)`: no stamp), or why it could not be read.
    pub tested: Vec<Option<Result<Option<String>, String>>>,
    /// Per alias: `None` when the alias would not move (absent, in place) or was not asked;
    /// else the revision the image it points at now records, or why that could not be read.
    pub alias_revisions: Vec<Option<Result<Option<String>, String>>>,
    /// This run's commit ([`super::order::run_revision`]).
    pub run_revision: Option<String>,
    /// Per alias: how its recorded revision orders against this run's commit, where both are
    /// commit ids ([`super::order::git_order`]).
    pub orders: Vec<Option<GitOrder>>,
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
            Err(e) if ErrorKind::of(&e) == ErrorKind::NotFound => {
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

/// Run every registry check: [`fetch`], then [`judge`]. Reads only.
///
/// `from` is [`crate::lineage::from_parents`].
pub async fn check(
    client: &Client,
    config: &Config,
    hashes: &[ImageHash],
    from: &[Vec<usize>],
    plan: AliasPlan,
    opts: &Options,
) -> Checked {
    let mut fetched = fetch(client, config, hashes, from, &plan.aliases, opts).await;
    fetched.run_revision = opts.revision.clone();
    fetched.orders = orders(&fetched, &opts.git_dir);
    judge(config, hashes, from, plan, fetched, opts.wait)
}

/// Ask git how each alias's recorded revision orders against this run's commit (local history
/// only). `None` where there is nothing to order.
pub fn orders(fetched: &Fetched, git_dir: &std::path::Path) -> Vec<Option<GitOrder>> {
    let Some(run) = fetched
        .run_revision
        .as_deref()
        .filter(|r| order::is_commit_id(r))
    else {
        return vec![None; fetched.alias_revisions.len()];
    };
    fetched
        .alias_revisions
        .iter()
        .map(|r| match r {
            Some(Ok(Some(rev))) if order::is_commit_id(rev) => {
                Some(order::git_order(git_dir, rev, run))
            }
            _ => None,
        })
        .collect()
}

/// Read what [`judge`] needs, concurrently: every content tag (with the 404 wait) and, at the
/// same time, where every alias points now; then the layers of every platform image that takes
/// part in a parent comparison, and the config blob of every single-arch image that lists
/// `platforms`. Errors become data, never early returns: one unreadable image must not hide the
/// state of the others.
pub async fn fetch(
    client: &Client,
    config: &Config,
    hashes: &[ImageHash],
    from: &[Vec<usize>],
    aliases: &[Alias],
    opts: &Options,
) -> Fetched {
    let n = config.images.len();
    let concurrency = opts.concurrency.max(1);
    let repos: Vec<&RepoRef> = config.images.iter().map(|s| &s.repo).collect();

    // 1. Every content tag and every alias's current digest.
    let previous_reads = stream::iter(aliases.iter())
        .map(|a| async move {
            match client.probe(&a.repo, &a.tag).await {
                Probe::Present { digest, .. } => Ok(Some(digest)),
                Probe::Absent => Ok(None),
                Probe::Unknown { reason } => Err(reason),
            }
        })
        .buffered(concurrency)
        .collect::<Vec<Result<Option<String>, String>>>();
    let content_reads = stream::iter(0..n)
        .map(|i| {
            let repo = repos[i];
            let tag = hashes[i].tag.clone();
            async move {
                get_waiting(client, repo, &tag, opts.wait)
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
        })
        .buffered(concurrency)
        .collect::<Vec<Result<Option<Manifest>, String>>>();
    let stamp_reads = stream::iter(0..n)
        .map(|i| {
            let repo = repos[i];
            let wanted = opts.tested.contains(&i);
            let tag = super::stamp::stamp_tag(&hashes[i].tag);
            async move {
                if !wanted {
                    return None;
                }
                Some(match tag {
                    Err(e) => Err(format!("{e:#}")),
                    Ok(tag) => match client.probe(repo, &tag).await {
                        Probe::Present { digest, .. } => Ok(Some(digest)),
                        Probe::Absent => Ok(None),
                        Probe::Unknown { reason } => Err(reason),
                    },
                })
            }
        })
        .buffered(concurrency)
        .collect::<Vec<Option<Result<Option<String>, String>>>>();
    let ((read, previous), tested) = futures_util::future::join(
        futures_util::future::join(content_reads, previous_reads),
        stamp_reads,
    )
    .await;
    let mut content: Vec<ContentRead> = read
        .into_iter()
        .map(|r| match r {
            Ok(Some(m)) => match Found::from_manifest(m) {
                Ok(f) => ContentRead::Found(f),
                Err(e) => ContentRead::Unusable(format!("{e:#}")),
            },
            Ok(None) => ContentRead::Missing,
            Err(e) => ContentRead::Failed(e),
        })
        .collect();
    let mut details: Vec<Vec<DetailError>> = vec![Vec::new(); n];

    // 2. Layers of every index child that takes part in a parent comparison.
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
            let ContentRead::Found(f) = &content[i] else {
                return None;
            };
            let repo = repos[i];
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
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (i, k, r) in layer_results {
        match r {
            Ok(layers) => {
                if let ContentRead::Found(f) = &mut content[i] {
                    f.images[k].layers = Some(layers);
                }
            }
            Err(e) => details[i].push(DetailError::PlatformManifest(format!("{e:#}"))),
        }
    }

    // 3. Platforms: single-arch images that list platforms need their config blob.
    let cfg_jobs: Vec<(usize, RepoRef, String)> = (0..n)
        .filter(|&i| !config.images[i].platforms.is_empty())
        .filter_map(|i| {
            let ContentRead::Found(f) = &content[i] else {
                return None;
            };
            if f.index {
                return None;
            }
            let cfg = f.manifest.parse().ok()?.config()?.digest.clone();
            Some((i, repos[i].clone(), cfg))
        })
        .collect();
    let cfg_results: Vec<(usize, anyhow::Result<PlatformKey>)> = stream::iter(cfg_jobs)
        .map(|(i, repo, digest)| async move {
            let r = async {
                let bytes = client.get_blob(&repo, &digest, MAX_CONFIG_BYTES).await?;
                platform_of_config(&bytes).with_context(|| format!("config blob {repo}@{digest}"))
            }
            .await;
            (i, r)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (i, r) in cfg_results {
        match r {
            Ok(p) => {
                if let ContentRead::Found(f) = &mut content[i] {
                    f.images[0].platform = Some(p);
                }
            }
            Err(e) => details[i].push(DetailError::ConfigBlob(format!("{e:#}"))),
        }
    }

    // 4. The revision recorded by the image each alias would move away from.
    let alias_revisions: Vec<Option<Result<Option<String>, String>>> =
        stream::iter(aliases.iter().zip(&previous))
            .map(|(a, prev)| {
                let target = match &content[a.image] {
                    ContentRead::Found(f) => Some(f.manifest.digest.clone()),
                    _ => None,
                };
                async move {
                    let Ok(Some(prev)) = prev else { return None };
                    if target.as_deref() == Some(prev.as_str()) || target.is_none() {
                        return None;
                    }
                    Some(
                        order::revision_of(client, &a.repo, prev)
                            .await
                            .map_err(|e| format!("{e:#}")),
                    )
                }
            })
            .buffered(concurrency)
            .collect()
            .await;

    Fetched {
        content,
        details,
        previous,
        tested,
        alias_revisions,
        run_revision: None,
        orders: Vec::new(),
    }
}

/// Judge the registry's answers: per image, whether it exists, has every configured platform
/// and sits on its parents' current layers; per alias, where it points and whether it must move.
/// Pure. `wait` is only quoted in the "missing" message.
pub fn judge(
    config: &Config,
    hashes: &[ImageHash],
    from: &[Vec<usize>],
    plan: AliasPlan,
    fetched: Fetched,
    wait: Duration,
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
    let Fetched {
        content,
        mut details,
        previous,
        tested,
        alias_revisions,
        run_revision,
        orders,
    } = fetched;
    details.resize(n, Vec::new());

    // 1. The content tags, and the reads behind them.
    // An image without an answer (a short `content`) is unread, never fine.
    let mut found: Vec<Option<Found>> = vec![None; n];
    let mut content = content.into_iter();
    for i in 0..n {
        let c = content
            .next()
            .unwrap_or_else(|| ContentRead::Failed("not asked".into()));
        match c {
            ContentRead::Found(f) => {
                reports[i].digest = Some(f.manifest.digest.clone());
                found[i] = Some(f);
            }
            ContentRead::Unusable(e) => reports[i]
                .problems
                .push(format!("{} is not a usable manifest: {e}", hashes[i].image)),
            ContentRead::Missing => reports[i].problems.push(format!(
                "missing: {} does not exist (404, asked again for {:.0?}); build it, or run decide and the build jobs first",
                hashes[i].image, wait
            )),
            ContentRead::Failed(e) => reports[i]
                .problems
                .push(format!("could not read {}: {e}", hashes[i].image)),
        }
    }
    for (i, ds) in details.into_iter().enumerate().take(n) {
        for d in ds {
            reports[i].problems.push(match d {
                DetailError::PlatformManifest(e) => {
                    format!("could not read a platform manifest: {e}")
                }
                DetailError::ConfigBlob(e) => format!("could not read the image's platform: {e}"),
            });
        }
    }

    // 2. Platforms.
    for i in 0..n {
        let Some(f) = &found[i] else { continue };
        reports[i].kind = Some(f.describe());
        let required = &config.images[i].platforms;
        if required.is_empty() {
            continue;
        }
        if !f.index && f.images[0].platform.is_none() {
            continue; // its config blob could not be read: reported above
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

    // 3. Built on the parents.
    for (i, ps) in from.iter().enumerate().take(n) {
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

    // 4. Test stamps, where required: on this very digest.
    for (i, t) in tested.into_iter().enumerate().take(n) {
        let Some(t) = t else { continue };
        let stamp = format!(
            "{}:{}",
            config.images[i].repo,
            super::stamp::stamp_tag(&hashes[i].tag).unwrap_or_else(|_| "?".into())
        );
        let Some(digest) = found[i].as_ref().map(|f| f.manifest.digest.as_str()) else {
            continue; // missing content is reported above
        };
        match t {
            Ok(Some(d)) if d == digest => reports[i]
                .passed
                .push(format!("tested (stamp {stamp})")),
            Ok(Some(d)) => reports[i].problems.push(format!(
                "not tested: the stamp {stamp} points at {}, not at this build {}: the tests passed for an earlier push of the tag; run the test job again",
                crate::lineage::short_digest(&d),
                crate::lineage::short_digest(digest)
            )),
            Ok(None) => reports[i].problems.push(format!(
                "not tested: {stamp} does not exist: its test job failed, was skipped before it ever passed, or did not run `skip-action stamp`"
            )),
            Err(e) => reports[i]
                .problems
                .push(format!("could not read the test stamp {stamp}: {e}")),
        }
    }

    // 5. The aliases, with what they point at now.
    let AliasPlan { aliases, skipped } = plan;
    let mut problems = Vec::new();
    let mut states = Vec::with_capacity(aliases.len());
    let mut previous = previous.into_iter();
    let mut alias_revisions = alias_revisions.into_iter();
    let mut orders = orders.into_iter();
    for a in aliases {
        let revision = alias_revisions.next().flatten();
        let git_order = orders.next().flatten();
        let digest = found[a.image].as_ref().map(|f| f.manifest.digest.clone());
        let previous = match previous.next() {
            Some(Ok(p)) => p,
            Some(Err(reason)) => {
                problems.push(format!(
                    "could not read the alias {} (needed for `previous` and rollback): {reason}",
                    a.reference()
                ));
                None
            }
            None => {
                problems.push(format!(
                    "could not read the alias {} (needed for `previous` and rollback): not asked",
                    a.reference()
                ));
                None
            }
        };
        let mut status = if digest.is_some() && digest == previous {
            AliasStatus::InPlace
        } else {
            AliasStatus::Pending
        };
        // 6. Never backwards: an alias that exists and would move is ordered by commit.
        if status == AliasStatus::Pending && previous.is_some() && digest.is_some() {
            match revision {
                Some(Ok(rev)) => {
                    match order::judge(run_revision.as_deref(), rev.as_deref(), git_order.as_ref()) {
                        Verdict::Move(None) => {}
                        Verdict::Move(Some(note)) => {
                            tracing::info!(alias = %a.reference(), "{note}")
                        }
                        Verdict::Hold(why) => status = AliasStatus::Held(why),
                    }
                }
                Some(Err(e)) => problems.push(format!(
                    "could not read the revision of the image at {} (needed to never move it backwards): {e}",
                    a.reference()
                )),
                None => problems.push(format!(
                    "could not read the revision of the image at {} (needed to never move it backwards): not asked",
                    a.reference()
                )),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::PlatformImage;
    use crate::promote::fixtures::hashes;
    use crate::promote::plan_aliases;
    use std::path::Path;

    const CFG: &str = "version: 1\nrepository: ghcr.io/acme/x\nplatforms: [linux/amd64, linux/arm64]\nimages:\n  base:\n    dockerfile: D\n    tag: base-{hash}\n    promote: [base-latest]\n  app:\n    from: base\n    dockerfile: D\n    tag: app-{hash}\n    promote: [app-latest]\n";

    fn config() -> Config {
        Config::parse(CFG, Path::new("t.yml")).unwrap()
    }

    /// base is 0, app is 1 and is built FROM base.
    const FROM: [&[usize]; 2] = [&[], &[0]];

    fn from() -> Vec<Vec<usize>> {
        FROM.iter().map(|f| f.to_vec()).collect()
    }

    fn platform(p: &str, digest: &str, layers: &[&str]) -> PlatformImage {
        PlatformImage {
            platform: Some(PlatformKey::parse(p).unwrap()),
            digest: digest.into(),
            layers: Some(layers.iter().map(|s| s.to_string()).collect()),
            verified_on: Default::default(),
        }
    }

    fn index(digest: &str, images: Vec<PlatformImage>) -> ContentRead {
        ContentRead::Found(Found {
            manifest: Manifest {
                bytes: vec![],
                media_type: skip_registry::manifest::OCI_INDEX.into(),
                digest: digest.into(),
            },
            index: true,
            images,
        })
    }

    fn base() -> ContentRead {
        index(
            "sha256:base",
            vec![
                platform("linux/amd64", "sha256:ba", &["a1"]),
                platform("linux/arm64", "sha256:bb", &["b1"]),
            ],
        )
    }

    fn app_on(arm_layers: &[&str]) -> ContentRead {
        index(
            "sha256:app",
            vec![
                platform("linux/amd64", "sha256:aa", &["a1", "x"]),
                platform("linux/arm64", "sha256:ab", arm_layers),
            ],
        )
    }

    /// Judge the two images with these answers; the aliases base-latest (now at base's digest)
    /// and app-latest (new).
    fn judged(content: Vec<ContentRead>, details: Vec<Vec<DetailError>>) -> Checked {
        let config = config();
        let hashes = hashes(&config);
        let plan = plan_aliases(&config, &hashes, None).unwrap();
        let fetched = Fetched {
            content,
            details,
            previous: vec![Ok(Some("sha256:base".into())), Ok(None)],
            ..Fetched::default()
        };
        judge(
            &config,
            &hashes,
            &from(),
            plan,
            fetched,
            Duration::from_secs(10),
        )
    }

    #[test]
    fn a_consistent_family_passes_and_only_moved_aliases_are_pending() {
        let c = judged(vec![base(), app_on(&["b1", "y"])], vec![]);
        assert!(!c.blocked(), "{:?}", c.all_problems());
        assert_eq!(c.images[0].digest.as_deref(), Some("sha256:base"));
        assert!(c.images[0]
            .passed
            .contains(&"has every platform (linux/amd64, linux/arm64)".to_string()));
        assert!(
            c.images[1]
                .passed
                .contains(&"built on the current base".to_string()),
            "{:?}",
            c.images[1].passed
        );
        assert_eq!(c.aliases[0].alias.reference(), "ghcr.io/acme/x:base-latest");
        assert_eq!(c.aliases[0].status, AliasStatus::InPlace);
        assert_eq!(c.aliases[1].status, AliasStatus::Pending);
        assert_eq!(c.aliases[1].digest.as_deref(), Some("sha256:app"));
        assert_eq!(c.aliases[1].previous, None);
    }

    #[test]
    fn a_child_on_an_old_parent_blocks() {
        let c = judged(vec![base(), app_on(&["old", "y"])], vec![]);
        assert!(c.blocked());
        assert!(c.images[0].problems.is_empty());
        assert_eq!(c.images[1].problems.len(), 1, "{:?}", c.images[1].problems);
        assert!(c.images[1].problems[0].starts_with("linux/arm64"));
        assert!(c.all_problems()[0].starts_with("app: linux/arm64"));
    }

    #[test]
    fn a_missing_parent_blocks_parent_and_child() {
        let c = judged(vec![ContentRead::Missing, app_on(&["b1", "y"])], vec![]);
        assert!(c.blocked());
        assert_eq!(
            c.images[0].problems,
            vec!["missing: ghcr.io/acme/x:base-abc does not exist (404, asked again for 10s); build it, or run decide and the build jobs first"]
        );
        assert_eq!(
            c.images[1].problems,
            vec!["cannot check its base: parent base is missing"]
        );
        // The alias of a missing image has nothing to point at.
        assert_eq!(c.aliases[0].digest, None);
        assert_eq!(c.aliases[0].status, AliasStatus::Pending);
    }

    #[test]
    fn a_missing_platform_blocks() {
        let only_amd = index(
            "sha256:base",
            vec![platform("linux/amd64", "sha256:ba", &["a1"])],
        );
        let c = judged(vec![only_amd, app_on(&["b1", "y"])], vec![]);
        assert!(c.blocked());
        assert!(c.images[0].problems[0]
            .starts_with("missing platform linux/arm64 (it has linux/amd64)"));
        // And the app's arm64 image has no base image to sit on.
        assert!(c.images[1].problems[0].contains("base has no linux/arm64"));
    }

    #[test]
    fn failed_reads_block_with_what_failed() {
        let c = judged(
            vec![
                ContentRead::Failed("HTTP 503 after 5 attempts".into()),
                ContentRead::Unusable("not JSON".into()),
            ],
            vec![],
        );
        assert_eq!(
            c.images[0].problems,
            vec!["could not read ghcr.io/acme/x:base-abc: HTTP 503 after 5 attempts"]
        );
        assert_eq!(
            c.images[1].problems,
            vec!["ghcr.io/acme/x:app-abc is not a usable manifest: not JSON"]
        );

        // A platform manifest or config blob that could not be read is a problem of its own.
        let c = judged(
            vec![base(), app_on(&["b1", "y"])],
            vec![
                vec![],
                vec![
                    DetailError::PlatformManifest("sha256:ab: 404".into()),
                    DetailError::ConfigBlob("limit".into()),
                ],
            ],
        );
        assert!(c.blocked());
        assert_eq!(
            c.images[1].problems[..2],
            [
                "could not read a platform manifest: sha256:ab: 404".to_string(),
                "could not read the image's platform: limit".to_string()
            ]
        );
    }

    #[test]
    fn an_unread_answer_is_never_a_pass() {
        // Fewer answers than images (or aliases): the rest is unread, and that blocks.
        let config = config();
        let hashes = hashes(&config);
        let plan = plan_aliases(&config, &hashes, None).unwrap();
        let c = judge(
            &config,
            &hashes,
            &from(),
            plan,
            Fetched::default(),
            Duration::ZERO,
        );
        assert!(c.blocked());
        assert!(c
            .images
            .iter()
            .all(|i| i.problems[0].ends_with("not asked")));
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    }

    #[test]
    fn an_unreadable_alias_blocks() {
        let config = config();
        let hashes = hashes(&config);
        let plan = plan_aliases(&config, &hashes, None).unwrap();
        let fetched = Fetched {
            content: vec![base(), app_on(&["b1", "y"])],
            details: vec![],
            previous: vec![Ok(None), Err("HTTP 401".into())],
            ..Fetched::default()
        };
        let c = judge(&config, &hashes, &from(), plan, fetched, Duration::ZERO);
        assert!(c.blocked());
        assert_eq!(
            c.problems,
            vec!["could not read the alias ghcr.io/acme/x:app-latest (needed for `previous` and rollback): HTTP 401"]
        );
        assert!(c.images.iter().all(|i| i.problems.is_empty()));
    }

    #[test]
    fn a_test_stamp_counts_only_on_this_digest() {
        let config = config();
        let hashes = hashes(&config);
        let run = |tested: Vec<Option<Result<Option<String>, String>>>| {
            let plan = plan_aliases(&config, &hashes, None).unwrap();
            let fetched = Fetched {
                content: vec![base(), app_on(&["b1", "y"])],
                previous: vec![Ok(Some("sha256:base".into())), Ok(None)],
                tested,
                ..Fetched::default()
            };
            judge(&config, &hashes, &from(), plan, fetched, Duration::ZERO)
        };
        // base not required; app stamped on its digest: passes.
        let c = run(vec![None, Some(Ok(Some("sha256:app".into())))]);
        assert!(!c.blocked(), "{:?}", c.all_problems());
        assert!(c.images[1]
            .passed
            .contains(&"tested (stamp ghcr.io/acme/x:app-abc.tested)".to_string()));
        // No stamp (a failed or never-run test), a stamp of an earlier push, an unreadable stamp.
        for (t, want) in [
            (
                Ok(None),
                "not tested: ghcr.io/acme/x:app-abc.tested does not exist",
            ),
            (
                Ok(Some("sha256:old".into())),
                "not tested: the stamp ghcr.io/acme/x:app-abc.tested points at",
            ),
            (Err("HTTP 503".into()), "could not read the test stamp"),
        ] {
            let c = run(vec![None, Some(t)]);
            assert!(c.blocked());
            assert!(
                c.images[1].problems[0].starts_with(want),
                "{:?}",
                c.images[1].problems
            );
        }
    }

    #[test]
    fn an_alias_holding_a_newer_build_is_held_not_failed() {
        let config = config();
        let hashes = hashes(&config);
        let judged = |rev: Option<Result<Option<String>, String>>, order: Option<GitOrder>| {
            let plan = plan_aliases(&config, &hashes, None).unwrap();
            let fetched = Fetched {
                content: vec![base(), app_on(&["b1", "y"])],
                // app-latest points at another build now.
                previous: vec![
                    Ok(Some("sha256:base".into())),
                    Ok(Some("sha256:other".into())),
                ],
                alias_revisions: vec![None, rev],
                run_revision: Some("1".repeat(40)),
                orders: vec![None, order],
                ..Fetched::default()
            };
            judge(&config, &hashes, &from(), plan, fetched, Duration::ZERO)
        };
        let newer = Some(Ok(Some("2".repeat(40))));
        let c = judged(newer.clone(), Some(GitOrder::Older));
        assert!(!c.blocked(), "{:?}", c.all_problems());
        let AliasStatus::Held(why) = &c.aliases[1].status else {
            panic!("{:?}", c.aliases[1].status)
        };
        assert!(why.starts_with("not moved backwards"), "{why}");
        assert_eq!(c.aliases[1].previous.as_deref(), Some("sha256:other"));
        // Forwards, and nothing recorded: moved.
        assert_eq!(
            judged(newer, Some(GitOrder::Newer)).aliases[1].status,
            AliasStatus::Pending
        );
        assert_eq!(
            judged(Some(Ok(None)), None).aliases[1].status,
            AliasStatus::Pending
        );
        // An unreadable revision blocks (nothing moves on a guess).
        let c = judged(Some(Err("HTTP 500".into())), None);
        assert!(c.blocked());
        assert!(
            c.problems[0].contains("never move it backwards"),
            "{:?}",
            c.problems
        );
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
}
