//! The writes, only after the checks passed: content copied into other repositories by digest,
//! then the alias PUTs. Every write goes through the registry client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt as _};
use skip_registry::manifest::ParsedManifest;
use skip_registry::{Client, CopyOutcome, Manifest, Probe, RepoRef};

use super::{AliasStatus, Checked, Options};
use crate::lineage::short_digest;

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
    let mut copies: BTreeMap<(RepoRef, RepoRef, String), usize> = BTreeMap::new();
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
                    let f = found[image].as_ref().context("the content was not read")?;
                    copy_content(client, &src, &dst, &f.manifest, 0, stats).await
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
                let repo = &a.alias.repo;
                let put = client
                    .put_manifest(
                        repo,
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
                    match client.probe(repo, &a.alias.tag).await {
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
