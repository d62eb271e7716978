//! `merge`'s I/O: read each image's per-platform images (and its content tag, if any) and write
//! the content tag as one index of them. The index itself is [`crate::fanout::index_bytes`]
//! (pure); this module only fetches and writes.
//!
//! Per image, per configured platform, the part comes from its per-platform tag when that
//! exists (a fresh build wins), else from the content tag's own entry (what a repair keeps).
//! Children are referenced by digest with the bytes' own media type and size, so nothing is
//! re-encoded; buildx's attestation manifests travel with their platform. A platform with no
//! source is missing: the image is not written.

use anyhow::Context as _;
use serde::Serialize;
use skip_registry::manifest::ParsedManifest;
use skip_registry::{Client, Descriptor, ErrorKind, Manifest, PlatformKey, RepoRef};

use crate::config::ImageSpec;
use crate::fanout::{index_bytes, part_from_index, platform_tag, PlatformPart};
use crate::hash::ImageHash;
use crate::lineage::{is_layer_prefix, PARENT_ANNOTATION};
use crate::registry::ManifestReads;

/// What happened to one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The content tag now holds the index (`digest`).
    Written { digest: String },
    /// The content tag already held it (or, without `--images`, already held every platform):
    /// nothing written.
    AlreadyThere { digest: String },
    /// `--dry-run`: this index would be written.
    WouldWrite { digest: String },
    /// Configured platforms with no image: nothing written.
    Missing { platforms: Vec<String> },
    /// The registry could not be read or written.
    Failed { reason: String },
}

/// One image's result, for the report and the `merged` output.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub name: String,
    pub image: String,
    pub platforms: Vec<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A `FROM` parent of the image being merged: where its current image is (its content tag), so
/// merge can record which of the parent's platform manifests each platform sits on.
#[derive(Debug, Clone)]
pub struct ParentRef {
    pub name: String,
    pub repo: RepoRef,
    pub tag: String,
}

/// Merge one image. `explicit`: named with `--images` (or from decide's list), so a complete
/// content tag is still compared with its per-platform images (a platform rebuilt for a rebuilt
/// parent replaces the old one); otherwise a content tag that holds every platform is left
/// alone without further reads.
///
/// `parents` are its `FROM` parents; `reads` shares their reads between the images of one run.
pub async fn merge_image(
    client: &Client,
    reads: &ManifestReads,
    parents: &[ParentRef],
    spec: &ImageSpec,
    hash: &ImageHash,
    explicit: bool,
    dry_run: bool,
) -> Merged {
    let outcome = match merge_inner(client, reads, parents, spec, hash, explicit, dry_run).await {
        Ok(o) => o,
        Err(e) => Outcome::Failed {
            reason: format!("{e:#}"),
        },
    };
    Merged {
        name: spec.name.clone(),
        image: hash.image.clone(),
        platforms: spec.platforms.clone(),
        outcome,
    }
}

async fn merge_inner(
    client: &Client,
    reads: &ManifestReads,
    parents: &[ParentRef],
    spec: &ImageSpec,
    hash: &ImageHash,
    explicit: bool,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let repo = &spec.repo;
    let content = get_optional(client, repo, &hash.tag).await?;
    let content_parts: Vec<Option<PlatformPart>> = match &content {
        Some(m) => parts_of(client, repo, &hash.tag, m, &spec.platforms).await?,
        None => vec![None; spec.platforms.len()],
    };
    if let Some(m) = &content {
        if !explicit && content_parts.iter().all(Option::is_some) {
            return Ok(Outcome::AlreadyThere {
                digest: m.digest.clone(),
            });
        }
    }
    let platform_reads = spec.platforms.iter().map(|p| async move {
        let t = platform_tag(&hash.tag, p);
        match get_optional(client, repo, &t).await? {
            Some(m) => {
                let parts = parts_of(client, repo, &t, &m, std::slice::from_ref(p)).await?;
                match parts.into_iter().next().flatten() {
                    Some(part) => Ok(Some(part)),
                    None => anyhow::bail!(
                        "{}:{t} holds no {p} image ({}); rebuild {p} with decide's matrix entry",
                        spec.repository,
                        describe(&m)
                    ),
                }
            }
            None => Ok(None),
        }
    });
    let per_platform: Vec<Option<PlatformPart>> =
        futures_util::future::try_join_all(platform_reads).await?;
    let mut parts = Vec::new();
    let mut missing = Vec::new();
    let mut fresh = false;
    for ((p, pp), cp) in spec.platforms.iter().zip(per_platform).zip(content_parts) {
        match (pp, cp) {
            (Some(part), _) => {
                fresh = true;
                parts.push(part);
            }
            (None, Some(part)) => parts.push(part),
            (None, None) => missing.push(p.clone()),
        }
    }
    if !missing.is_empty() {
        return Ok(Outcome::Missing { platforms: missing });
    }
    annotate_parents(client, reads, &spec.repo, parents, &mut parts).await;
    let bytes = index_bytes(&parts);
    let digest = skip_registry::manifest::sha256_digest(&bytes);
    if let Some(m) = &content {
        if m.digest == digest || !fresh {
            return Ok(Outcome::AlreadyThere {
                digest: m.digest.clone(),
            });
        }
    }
    if dry_run {
        return Ok(Outcome::WouldWrite { digest });
    }
    let written = client
        .put_manifest(repo, &hash.tag, &bytes, skip_registry::manifest::OCI_INDEX)
        .await
        .with_context(|| format!("writing {}", hash.image))?;
    tracing::info!(image = %hash.image, digest = %written, "merged");
    Ok(Outcome::Written { digest: written })
}

/// GET a manifest; `None` on 404 (the tag does not exist), an error on anything else.
async fn get_optional(
    client: &Client,
    repo: &RepoRef,
    reference: &str,
) -> anyhow::Result<Option<Manifest>> {
    match client.get_manifest(repo, reference).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if ErrorKind::of(&e) == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.context(format!("reading {reference}"))),
    }
}

/// The part of each of `platforms` that manifest `m` (at `tag`) holds: from an index, the entry
/// and its attestations; a single-arch manifest is one part, its platform read from its config.
async fn parts_of(
    client: &Client,
    repo: &RepoRef,
    tag: &str,
    m: &Manifest,
    platforms: &[String],
) -> anyhow::Result<Vec<Option<PlatformPart>>> {
    let parsed = m.parse().with_context(|| format!("reading {tag}"))?;
    match &parsed {
        ParsedManifest::Index(idx) => Ok(platforms
            .iter()
            .map(|p| part_from_index(&idx.manifests, p))
            .collect()),
        ParsedManifest::Image(im) => {
            let blob = client
                .get_blob(repo, &im.config.digest, 1 << 20)
                .await
                .with_context(|| format!("reading the config blob of {tag}"))?;
            let key = crate::promote::check::platform_of_config(&blob)
                .with_context(|| format!("reading the platform of {tag}"))?;
            Ok(platforms
                .iter()
                .map(|p| {
                    (PlatformKey::parse(p).ok().as_ref() == Some(&key)).then(|| PlatformPart {
                        platform: p.clone(),
                        image: Descriptor {
                            media_type: m.media_type.clone(),
                            digest: m.digest.clone(),
                            size: m.bytes.len() as i64,
                            platform: Some(skip_registry::Platform {
                                architecture: key.arch.clone(),
                                os: key.os.clone(),
                                variant: key.variant.clone(),
                                os_version: None,
                                os_features: None,
                            }),
                            annotations: None,
                            urls: None,
                            artifact_type: None,
                        },
                        attestations: Vec::new(),
                    })
                })
                .collect())
        }
    }
}

fn describe(m: &Manifest) -> String {
    match crate::lineage::Found::from_manifest(m.clone()) {
        Ok(f) => f.describe(),
        Err(_) => m.media_type.clone(),
    }
}

/// Record in each part's descriptor the `FROM` parents its platform manifest was verified on
/// ([`PARENT_ANNOTATION`]`<parent>` = the parent's platform manifest digest): the judge decide and
/// promote apply (the parent's layers a prefix of the child's), checked here once so that decide
/// can judge a reused image from its index alone. Only what is verified here is written: every
/// annotation of ours that came with a source (a per-platform index, the old content index) is
/// dropped first, as a claim this run did not check. A parent whose content tag holds no index
/// entry of the platform, a platform not built on the parent's current entry, or a read that fails
/// gets no annotation: decide then reads the platform manifests, as without annotations.
async fn annotate_parents(
    client: &Client,
    reads: &ManifestReads,
    repo: &RepoRef,
    parents: &[ParentRef],
    parts: &mut [PlatformPart],
) {
    for part in parts.iter_mut() {
        if let Some(a) = &mut part.image.annotations {
            a.retain(|k, _| !k.starts_with(PARENT_ANNOTATION));
        }
        if parents.is_empty() {
            continue;
        }
        let child = match layers_of(client, repo, &part.image.digest).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(digest = %part.image.digest, "not annotated: {e:#}");
                continue;
            }
        };
        for p in parents {
            match parent_entry(reads, p, &part.platform).await {
                Ok(Some((digest, layers))) if is_layer_prefix(&layers, &child) => {
                    part.image
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(format!("{PARENT_ANNOTATION}{}", p.name), digest);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(parent = %p.name, "not annotated: {e:#}"),
            }
        }
        if part
            .image
            .annotations
            .as_ref()
            .is_some_and(|a| a.is_empty())
        {
            part.image.annotations = None;
        }
    }
}

/// The layer digests of the image manifest `digest`.
async fn layers_of(client: &Client, repo: &RepoRef, digest: &str) -> anyhow::Result<Vec<String>> {
    let m = client
        .get_manifest(repo, digest)
        .await
        .with_context(|| format!("reading {digest}"))?;
    match m.parse()? {
        ParsedManifest::Image(im) => Ok(im.layers.iter().map(|l| l.digest.clone()).collect()),
        ParsedManifest::Index(_) => anyhow::bail!("{digest} is an index"),
    }
}

/// The parent's current entry of `platform`: its content tag's index entry (digest, layers).
/// `None` when the content tag is absent, single-arch, or has no such entry.
async fn parent_entry(
    reads: &ManifestReads,
    p: &ParentRef,
    platform: &str,
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let m = match reads.get(&p.repo, &p.tag).await {
        Ok(m) => m,
        Err(e) if ErrorKind::of(&e) == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.context(format!("reading {}:{}", p.name, p.tag))),
    };
    let ParsedManifest::Index(idx) = m.parse()? else {
        return Ok(None);
    };
    let Some(entry) = part_from_index(&idx.manifests, platform) else {
        return Ok(None);
    };
    let digest = entry.image.digest;
    let pm = reads
        .get(&p.repo, &digest)
        .await
        .with_context(|| format!("reading {}@{digest}", p.name))?;
    // The digest recorded is the one of the bytes whose layers were compared.
    if pm.digest != digest {
        anyhow::bail!("{}@{digest} was served as {}", p.name, pm.digest);
    }
    match pm.parse()? {
        ParsedManifest::Image(im) => Ok(Some((
            digest,
            im.layers.iter().map(|l| l.digest.clone()).collect(),
        ))),
        ParsedManifest::Index(_) => Ok(None),
    }
}
