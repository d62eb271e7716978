//! `skip-action hash`: every image's content hash, tag and reference.

use serde::Serialize;
use std::collections::BTreeMap;

use super::{hash_options, load_and_hash};
use crate::cli::HashArgs;
use crate::config::ContextScope;
use crate::outputs::build_args_text;

/// `hash --json` output (schema version 1).
#[derive(Serialize)]
struct Out<'a> {
    version: u32,
    /// The hash definition that made every `hash` (README: "The hash (definition version 2)").
    hash_version: &'static str,
    images: Vec<Image<'a>>,
}

#[derive(Serialize)]
struct Image<'a> {
    name: &'a str,
    variant: Option<&'a str>,
    parents: Vec<&'a str>,
    hash: &'a str,
    short_hash: &'a str,
    tag: &'a str,
    image: &'a str,
    args: &'a BTreeMap<String, String>,
    build_args: String,
    level: usize,
    dockerfile: &'a str,
    context: &'a str,
    context_scope: &'static str,
    whole_context_reason: Option<&'a str>,
    context_entries: usize,
    context_digest: &'a str,
    declared_args: &'a BTreeMap<String, Option<String>>,
    outside_images: Vec<Outside<'a>>,
    platforms: &'a [String],
    file_modes: &'static str,
    /// Why `hash` is not the image's real hash (an `upstream: digest` image could not be
    /// resolved); `null` when it is.
    unresolved_upstream: Option<&'a str>,
    /// COPY/ADD globs that matched nothing (allowed; `generated` when declared).
    empty_globs: &'a [crate::inputs::EmptyGlob],
    /// `generated:` paths whose declared sources are hashed.
    generated: Vec<&'a str>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct Outside<'a> {
    reference: &'a str,
    digest: Option<&'a str>,
}

pub fn run(args: HashArgs) -> anyhow::Result<()> {
    let h = load_and_hash(&args.common, hash_options(&args.common))?;
    if args.json {
        let images = h
            .config
            .images
            .iter()
            .zip(&h.hashes)
            .zip(&h.discovery.images)
            .map(|((spec, hash), inputs)| Image {
                name: &spec.name,
                variant: spec.variant.as_deref(),
                parents: spec.parents.iter().map(|p| p.name.as_str()).collect(),
                hash: &hash.full,
                short_hash: &hash.short,
                tag: &hash.tag,
                image: &hash.image,
                args: &spec.args,
                build_args: build_args_text(&hash.build_args),
                level: spec.level,
                dockerfile: &spec.dockerfile,
                context: &spec.context,
                context_scope: match (spec.scope, &inputs.selection.whole) {
                    (ContextScope::All, _) | (_, Some(_)) => "all",
                    _ => "used",
                },
                whole_context_reason: inputs.selection.whole.as_deref(),
                context_entries: hash.context_entries,
                context_digest: &hash.context_digest,
                declared_args: &hash.declared,
                outside_images: hash
                    .outside
                    .iter()
                    .map(|(r, d)| Outside {
                        reference: r,
                        digest: d.as_deref(),
                    })
                    .collect(),
                platforms: &spec.platforms,
                file_modes: spec.file_modes.as_str(),
                unresolved_upstream: hash.unresolved.as_deref(),
                empty_globs: &inputs.empty_globs,
                generated: spec.generated.iter().map(|(p, _)| p.as_str()).collect(),
                warnings: &inputs.warnings,
            })
            .collect();
        let out = Out {
            version: 1,
            hash_version: crate::hash::HASH_DEFINITION,
            images,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let w = h
            .config
            .images
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!("{:<w$}  {:<12}  IMAGE", "NAME", "HASH");
        for (spec, hash) in h.config.images.iter().zip(&h.hashes) {
            println!(
                "{:<w$}  {:<12}  {}{}",
                spec.name,
                &hash.full[..12],
                hash.image,
                if hash.unresolved.is_some() {
                    "  (unresolved upstream digest)"
                } else {
                    ""
                }
            );
        }
    }
    // Everything that could be hashed was printed; the rest is not a real hash, so say which
    // and fail.
    let unresolved = h.unresolved();
    if !unresolved.is_empty() {
        anyhow::bail!(
            "{} image(s) lack an upstream digest, so their hashes above are not final: {}",
            unresolved.len(),
            unresolved.join("; ")
        );
    }
    Ok(())
}
