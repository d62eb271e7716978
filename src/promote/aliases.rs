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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promote::fixtures::hashes;
    use std::path::Path;

    fn config(images: &str) -> Config {
        let text = format!("version: 1\nrepository: ghcr.io/acme/x\nimages:\n{images}");
        Config::parse(&text, Path::new("t.yml")).unwrap()
    }

    fn plan(c: &Config, version: Option<&str>) -> anyhow::Result<AliasPlan> {
        plan_aliases(c, &hashes(c), version)
    }

    #[test]
    fn version_aliases_wait_for_a_version() {
        let c = config(
            "  app:\n    dockerfile: D\n    tag: app-{hash}\n    promote: [latest, 'v{version}']\n",
        );
        let p = plan(&c, None).unwrap();
        let refs: Vec<String> = p.aliases.iter().map(Alias::reference).collect();
        assert_eq!(refs, vec!["ghcr.io/acme/x:latest"]);
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].template, "v{version}");
        let p = plan(&c, Some("1.2.3")).unwrap();
        let refs: Vec<String> = p.aliases.iter().map(Alias::reference).collect();
        assert_eq!(refs, vec!["ghcr.io/acme/x:latest", "ghcr.io/acme/x:v1.2.3"]);
        assert!(p.skipped.is_empty());
        assert_eq!(p.aliases[1].source_reference(), "ghcr.io/acme/x:app-abc");
        // A version that renders an invalid tag is the user's to fix.
        let e = plan(&c, Some("1.2/3")).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(format!("{e:#}").contains("not a valid OCI tag"), "{e:#}");
    }

    #[test]
    fn one_alias_one_image_and_never_over_content() {
        // Two images claiming `latest` are refused by the config already (exit 2 before any
        // build); an alias with `{hash}` can only collide here, once the hashes are known.
        let text = "version: 1\nrepository: ghcr.io/acme/x\nimages:\n  a:\n    dockerfile: D\n    tag: a-{hash}\n    promote: [latest]\n  b:\n    dockerfile: D\n    tag: b-{hash}\n    promote: [latest]\n";
        let e = Config::parse(text, Path::new("t.yml")).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(
            format!("{e:#}").contains("is an alias of both a and b"),
            "{e:#}"
        );
        let c = config("  a:\n    dockerfile: D\n    tag: a-{hash}\n    promote: [\"x-{hash}\"]\n  b:\n    dockerfile: D\n    tag: b-{hash}\n    promote: [\"x-{hash}\"]\n");
        let e = plan(&c, None).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(
            format!("{e:#}").contains("ghcr.io/acme/x:x-abc is an alias of both a and b"),
            "{e:#}"
        );
        // b's alias is a's content tag.
        let c = config("  a:\n    dockerfile: D\n    tag: a-{hash}\n  b:\n    dockerfile: D\n    tag: b-{hash}\n    promote: [a-abc]\n");
        let e = plan(&c, None).unwrap_err();
        assert!(
            format!("{e:#}").contains("which is the content tag of a"),
            "{e:#}"
        );
        // The same alias twice for one image is once.
        let c =
            config("  a:\n    dockerfile: D\n    tag: a-{hash}\n    promote: [latest, latest]\n");
        assert_eq!(plan(&c, None).unwrap().aliases.len(), 1);
    }

    #[test]
    fn aliases_in_other_repositories_are_canonical_and_cross_repo() {
        let c = config("  app:\n    dockerfile: D\n    tag: app-{hash}\n    promote:\n      - latest\n      - {tag: latest, repository: index.docker.io/acme/x}\n");
        let p = plan(&c, None).unwrap();
        assert!(!p.aliases[0].cross_repo());
        assert!(p.aliases[1].cross_repo());
        assert_eq!(p.aliases[1].reference(), "docker.io/acme/x:latest");
        assert_eq!(p.aliases[1].repo.api_host(), "registry-1.docker.io");
    }
}
