//! The plan of aliases: which alias tag points at which image's content, from the config and
//! the hashes alone. Pure: no registry, no files.

use std::collections::HashMap;

use skip_registry::RepoRef;

use crate::config::Config;
use crate::error::usage;
use crate::hash::ImageHash;

/// One alias to point at one image's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// Index of the image in `config.images`.
    pub image: usize,
    pub image_name: String,
    /// Where the content is: the image's repository (shown canonical, `registry/path`) and
    /// content tag.
    pub source_repo: RepoRef,
    pub source_tag: String,
    /// Where the alias goes.
    pub repo: RepoRef,
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
    let mut owner: HashMap<(RepoRef, String), usize> = HashMap::new();
    let mut content: HashMap<(RepoRef, String), &str> = HashMap::new();
    for (spec, h) in config.images.iter().zip(hashes) {
        content.insert((spec.repo.clone(), h.tag.clone()), spec.name.as_str());
    }
    for (i, (spec, h)) in config.images.iter().zip(hashes).enumerate() {
        let source_repo = &spec.repo;
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
            let repo = p.repo.clone().unwrap_or_else(|| source_repo.clone());
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
