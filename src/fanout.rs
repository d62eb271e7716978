//! Native per-platform builds (`runners:`): one job per image × platform, each pushing a
//! per-platform tag, then `merge` writes the content tag as one index of them.
//!
//! Pure, like [`crate::plan`]: the per-platform tag names, the per-platform decision (which
//! platforms of an image must be built, given what the registry holds), and the index `merge`
//! writes. The registry is asked in [`crate::registry`] and [`crate::merge`]; the answers come
//! in here as data.
//!
//! The rules, per image with `runners:` (parents first):
//! 1. Forced, or the registry could not tell about the content tag, or the content tag exists
//!    but [`crate::plan`] builds it anyway (not on its parent's current push, or a parent is
//!    being built): every platform builds.
//! 2. A platform a parent builds in this run builds too: the rebuilt parent image has a new
//!    digest, and the old child image of that platform does not sit on it (the per-platform
//!    form of "a parent being built forces its children").
//! 3. Otherwise a platform the content tag holds is reused; one it lacks (tag missing, or a
//!    broken push) is reused from its per-platform tag when that exists, else built.
//! 4. Whenever the content tag is missing or lacks a platform, or a platform is built, the image
//!    is listed for `merge`.

use std::collections::{BTreeMap, BTreeSet};

use skip_registry::manifest::{Descriptor, OCI_INDEX};
use skip_registry::PlatformKey;

use crate::config::{Config, ImageSpec};
use crate::plan::{Decision, Existence, Force};

/// The tag suffix of a platform: `linux/arm64/v8` → `linux-arm64` (normalised, so two spellings
/// of one platform share one tag).
pub fn platform_suffix(platform: &str) -> String {
    let norm = PlatformKey::parse(platform)
        .map(|k| k.to_string())
        .unwrap_or_else(|_| platform.to_string());
    norm.replace('/', "-")
}

/// The tag one platform job pushes: `<content-tag>-linux-arm64`. Never the content tag itself,
/// so a platform job can never publish a one-platform image under the content tag (where decide
/// would take it for the whole image). A tag is at most 128 characters: past that, the content
/// tag is shortened from its end and 8 hex digits of its SHA-256 keep distinct tags distinct.
pub fn platform_tag(content_tag: &str, platform: &str) -> String {
    let suffix = platform_suffix(platform);
    let full = format!("{content_tag}-{suffix}");
    if full.len() <= 128 {
        return full;
    }
    let digest = skip_registry::manifest::sha256_digest(content_tag.as_bytes());
    let short = &digest["sha256:".len().."sha256:".len() + 8];
    let keep = 128usize.saturating_sub(suffix.len() + short.len() + 2);
    // Tags are ASCII (validated when rendered), so byte slicing is safe.
    format!(
        "{}-{short}-{suffix}",
        &content_tag[..keep.min(content_tag.len())]
    )
}

/// What the registry holds of one image with `runners:`, beyond its content tag's existence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlatformAnswers {
    /// The platforms of the content tag when it exists: `Ok` (read from its manifest), or why it
    /// could not be read. `None` when the content tag does not exist or was not asked about.
    pub content: Option<Result<Vec<PlatformKey>, String>>,
    /// Each platform (as in the config) the content tag lacks: its per-platform tag's answer.
    pub per_platform: BTreeMap<String, Existence>,
    /// Per-platform images that exist but are not on their parents' current image of that
    /// platform (or could not be checked), with why: built again, never reused.
    pub stale: BTreeMap<String, String>,
}

/// Per-platform decisions: sets [`Decision::platforms`] and [`Decision::merge`] of every image
/// with `runners:` (and its `need_build` and reason), parents first. `answers` is one entry per
/// image (`None` for images without `runners:`).
pub fn refine(
    config: &Config,
    existence: &[Existence],
    force: &Force,
    answers: &[Option<PlatformAnswers>],
    decisions: &mut [Decision],
) {
    let index: BTreeMap<&str, usize> = config
        .images
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    for i in 0..config.images.len() {
        let spec = &config.images[i];
        if spec.runners.is_empty() {
            continue;
        }
        let answer = answers.get(i).cloned().flatten().unwrap_or_default();
        // Platforms each parent builds in this run (all of a parent without runners).
        let mut parent_builds: BTreeMap<PlatformKey, &str> = BTreeMap::new();
        for p in &spec.parents {
            let Some(&pi) = index.get(p.name.as_str()) else {
                continue;
            };
            let pd = &decisions[pi];
            if !pd.need_build {
                continue;
            }
            let built: Vec<&String> = match &pd.platforms {
                Some(list) => list.iter().collect(),
                None => spec.platforms.iter().collect(),
            };
            for b in built {
                if let Ok(k) = PlatformKey::parse(b) {
                    parent_builds.entry(k).or_insert(p.name.as_str());
                }
            }
        }
        let d = &mut decisions[i];
        let all = || spec.platforms.clone();
        if force.covers(&spec.name) {
            set(d, all(), true, "forced".into());
            continue;
        }
        let held: Vec<PlatformKey> = match (&existence[i], &answer.content) {
            (Existence::Unknown { .. }, _) => {
                // plan::decide's reason already says which registry error.
                let reason = d.reason.clone();
                set(d, all(), true, reason);
                continue;
            }
            (Existence::Absent, _) => Vec::new(),
            // The content tag exists but plan::decide builds it anyway: it is not on its parent's
            // current push (the base check), could not be checked, or a parent is being built
            // (the base check does not judge those). Every platform builds, with that reason:
            // reusing some platforms of an image judged as a whole would be a guess.
            (Existence::Present { .. }, _) if d.need_build => {
                let reason = d.reason.clone();
                set(d, all(), true, reason);
                continue;
            }
            (Existence::Present { .. }, Some(Ok(ps))) => ps.clone(),
            (Existence::Present { .. }, Some(Err(why))) => {
                set(
                    d,
                    all(),
                    true,
                    format!(
                        "could not read the content tag's platforms ({why}); building to be safe"
                    ),
                );
                continue;
            }
            // Present but never read (should not happen: the edge reads every one). Safe side.
            (Existence::Present { .. }, None) => {
                set(
                    d,
                    all(),
                    true,
                    "the content tag's platforms were not read; building to be safe".into(),
                );
                continue;
            }
        };
        let content_missing = existence[i] == Existence::Absent;
        let mut build = Vec::new();
        let mut from_parent = Vec::new();
        let mut from_platform_tag = Vec::new();
        let mut lacking = Vec::new();
        for p in &spec.platforms {
            let key = PlatformKey::parse(p).ok();
            let in_content = key.as_ref().is_some_and(|k| held.contains(k));
            if !in_content {
                lacking.push(p.clone());
            }
            if let Some(parent) = key.as_ref().and_then(|k| parent_builds.get(k)) {
                build.push(p.clone());
                from_parent.push(format!("{p} (parent {parent} builds it)"));
                continue;
            }
            if in_content {
                continue;
            }
            match answer.per_platform.get(p) {
                Some(Existence::Present { .. }) if answer.stale.contains_key(p) => {
                    build.push(p.clone());
                    from_parent.push(format!(
                        "{p} (pushed per platform, but {})",
                        answer.stale[p]
                    ));
                }
                Some(Existence::Present { .. }) => from_platform_tag.push(p.clone()),
                Some(Existence::Unknown { reason }) => {
                    build.push(p.clone());
                    from_parent.push(format!(
                        "{p} (registry error: {reason}; building to be safe)"
                    ));
                }
                Some(Existence::Absent) | None => build.push(p.clone()),
            }
        }
        let merge = content_missing || !lacking.is_empty() || !build.is_empty();
        let mut why: Vec<String> = Vec::new();
        if content_missing {
            why.push("tag missing".into());
        } else if !lacking.is_empty() {
            why.push(format!(
                "the content tag lacks {} (a broken push): repaired",
                lacking.join(", ")
            ));
        }
        if !from_parent.is_empty() {
            why.push(format!("building {}", from_parent.join(", ")));
        }
        let plain: Vec<&String> = build
            .iter()
            .filter(|p| !from_parent.iter().any(|f| f.starts_with(&format!("{p} "))))
            .collect();
        if !plain.is_empty() && (!from_platform_tag.is_empty() || !held.is_empty()) {
            why.push(format!(
                "building {} only",
                plain
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !from_platform_tag.is_empty() {
            why.push(format!(
                "{} already pushed per platform",
                from_platform_tag.join(", ")
            ));
        }
        if merge && build.is_empty() {
            why.push("merge writes the content tag".into());
        }
        let reason = if why.is_empty() {
            "tag exists".to_string()
        } else {
            why.join("; ")
        };
        let need = !build.is_empty();
        set(d, build, need, reason);
        d.merge = merge;
    }
}

fn set(d: &mut Decision, platforms: Vec<String>, need_build: bool, reason: String) {
    d.merge = need_build;
    d.need_build = need_build;
    d.platforms = Some(platforms);
    d.reason = reason;
}

/// The runner of `platform` for `spec` (the config guarantees one per platform).
pub fn runner_of<'a>(spec: &'a ImageSpec, platform: &str) -> &'a str {
    spec.runners.get(platform).map(String::as_str).unwrap_or("")
}

/// One platform's part of a merged index: its image descriptor (with `platform`) and the
/// attestation manifests that describe it, exactly as they were pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformPart {
    pub platform: String,
    pub image: Descriptor,
    pub attestations: Vec<Descriptor>,
}

/// BuildKit's attestation manifests (provenance, SBOM): platform `unknown/unknown` or the
/// `vnd.docker.reference.type: attestation-manifest` annotation.
pub fn is_attestation(d: &Descriptor) -> bool {
    let by_platform = d
        .platform
        .as_ref()
        .is_some_and(|p| PlatformKey::from_oci(p).is_unknown());
    let by_annotation = d.annotations.as_ref().is_some_and(|a| {
        a.get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest")
    });
    by_platform || by_annotation
}

/// From an index's entries, the part for `platform`: the image entry of that platform and the
/// attestation entries that point at it (`vnd.docker.reference.digest`). `None` when the index
/// has no image of that platform.
pub fn part_from_index(entries: &[Descriptor], platform: &str) -> Option<PlatformPart> {
    let key = PlatformKey::parse(platform).ok()?;
    let image = entries.iter().find(|d| {
        !is_attestation(d)
            && d.platform
                .as_ref()
                .is_some_and(|p| PlatformKey::from_oci(p) == key)
    })?;
    let attestations = entries
        .iter()
        .filter(|d| {
            is_attestation(d)
                && d.annotations.as_ref().is_some_and(|a| {
                    a.get("vnd.docker.reference.digest")
                        .is_some_and(|r| *r == image.digest)
                })
        })
        .cloned()
        .collect();
    Some(PlatformPart {
        platform: platform.to_string(),
        image: image.clone(),
        attestations,
    })
}

/// The index `merge` writes: an OCI index of every part's image, in the config's platform order,
/// then the attestations (the order buildx writes). Children are referenced by digest with the
/// size and media type they were pushed with: nothing is re-encoded. The same parts always give
/// the same bytes, so merging twice writes the same digest.
pub fn index_bytes(parts: &[PlatformPart]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Index<'a> {
        schema_version: u32,
        media_type: &'static str,
        manifests: Vec<&'a Descriptor>,
    }
    let mut manifests: Vec<&Descriptor> = parts.iter().map(|p| &p.image).collect();
    let mut seen: BTreeSet<&str> = manifests.iter().map(|d| d.digest.as_str()).collect();
    for p in parts {
        for a in &p.attestations {
            if seen.insert(a.digest.as_str()) {
                manifests.push(a);
            }
        }
    }
    // Serialising plain strings and integers cannot fail.
    serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CFG: &str = "version: 1\nrepository: ghcr.io/a/b\nplatforms: [linux/amd64, linux/arm64]\nrunners: {linux/amd64: ubuntu-24.04, linux/arm64: ubuntu-24.04-arm}\nimages:\n  base:\n    dockerfile: D\n    tag: base-{hash}\n  app:\n    from: base\n    dockerfile: D\n";

    fn config() -> Config {
        Config::parse(CFG, Path::new("t.yml")).unwrap()
    }

    fn present() -> Existence {
        Existence::Present { digest: None }
    }

    fn run(existence: &[Existence], answers: &[Option<PlatformAnswers>]) -> Vec<Decision> {
        let c = config();
        let mut d = crate::plan::decide(&c, existence, &Force::None, Default::default()).unwrap();
        refine(&c, existence, &Force::None, answers, &mut d);
        d
    }

    fn held(ps: &[&str]) -> PlatformAnswers {
        PlatformAnswers {
            content: Some(Ok(ps
                .iter()
                .map(|p| PlatformKey::parse(p).unwrap())
                .collect())),
            ..Default::default()
        }
    }

    fn per(ps: &[(&str, Existence)]) -> PlatformAnswers {
        PlatformAnswers {
            content: None,
            per_platform: ps.iter().map(|(p, e)| (p.to_string(), e.clone())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn platform_tags_are_derived_and_bounded() {
        assert_eq!(
            platform_tag("base-abc", "linux/arm64"),
            "base-abc-linux-arm64"
        );
        assert_eq!(platform_tag("x", "linux/arm64/v8"), "x-linux-arm64");
        assert_eq!(platform_tag("x", "linux/arm/v7"), "x-linux-arm-v7");
        let long = "a".repeat(128);
        let t = platform_tag(&long, "linux/amd64");
        assert_eq!(t.len(), 128);
        assert!(t.ends_with("-linux-amd64"));
        assert_ne!(t, platform_tag(&"a".repeat(127), "linux/amd64"));
    }

    #[test]
    fn complete_content_tags_are_reused() {
        let a = [amd_arm(), amd_arm()];
        let d = run(&[present(), present()], &a.map(Some));
        for x in &d {
            assert!(!x.need_build && !x.merge, "{x:?}");
            assert_eq!(x.reason, "tag exists");
        }
    }

    fn amd_arm() -> PlatformAnswers {
        held(&["linux/amd64", "linux/arm64"])
    }

    #[test]
    fn missing_tag_without_platform_images_builds_every_platform() {
        let a = per(&[
            ("linux/amd64", Existence::Absent),
            ("linux/arm64", Existence::Absent),
        ]);
        let d = run(&[Existence::Absent, present()], &[Some(a), Some(amd_arm())]);
        assert_eq!(
            d[0].platforms.as_deref().unwrap(),
            ["linux/amd64", "linux/arm64"]
        );
        assert!(d[0].merge && d[0].need_build);
        assert_eq!(d[0].reason, "tag missing");
        // A child whose content tag exists but whose parent is being built: every platform, as
        // plan::decide says (its content tag was not judged against the parent).
        assert_eq!(
            d[1].platforms.as_deref().unwrap(),
            ["linux/amd64", "linux/arm64"]
        );
        assert_eq!(d[1].reason, "parent base is being built");
        assert!(d[1].merge);
    }

    #[test]
    fn a_partial_image_builds_only_the_missing_platform_and_cascades_only_it() {
        let a = per(&[
            ("linux/amd64", present()),
            ("linux/arm64", Existence::Absent),
        ]);
        let child = per(&[("linux/amd64", present()), ("linux/arm64", present())]);
        let d = run(
            &[Existence::Absent, Existence::Absent],
            &[Some(a), Some(child)],
        );
        assert_eq!(d[0].platforms.as_deref().unwrap(), ["linux/arm64"]);
        assert!(
            d[0].reason
                .contains("linux/amd64 already pushed per platform"),
            "{}",
            d[0].reason
        );
        assert!(
            d[0].reason.contains("building linux/arm64 only"),
            "{}",
            d[0].reason
        );
        // The child rebuilds arm64 only (its parent's arm64 is new); its amd64 is reused.
        assert_eq!(d[1].platforms.as_deref().unwrap(), ["linux/arm64"]);
        assert!(
            d[1].reason.contains("parent base builds it"),
            "{}",
            d[1].reason
        );
        assert!(d[1].merge);
    }

    #[test]
    fn a_built_content_tag_builds_every_platform() {
        // plan::decide builds app (forced here; stale or cascaded alike): all platforms.
        let c = config();
        let e = [present(), present()];
        let f = Force::parse(Some("app"), &c).unwrap();
        let mut d = crate::plan::decide(&c, &e, &f, Default::default()).unwrap();
        refine(&c, &e, &f, &[Some(amd_arm()), Some(amd_arm())], &mut d);
        assert!(!d[0].need_build);
        assert_eq!(
            d[1].platforms.as_deref().unwrap(),
            ["linux/amd64", "linux/arm64"]
        );
    }

    #[test]
    fn a_platform_image_not_on_the_current_parent_is_built_again() {
        let mut a = per(&[
            ("linux/amd64", present()),
            ("linux/arm64", Existence::Absent),
        ]);
        a.stale.insert(
            "linux/amd64".into(),
            "linux/amd64 is not built on the current base".into(),
        );
        let d = run(&[present(), Existence::Absent], &[Some(amd_arm()), Some(a)]);
        assert_eq!(
            d[1].platforms.as_deref().unwrap(),
            ["linux/amd64", "linux/arm64"]
        );
        assert!(
            d[1].reason.contains("not built on the current base"),
            "{}",
            d[1].reason
        );
    }

    #[test]
    fn every_platform_pushed_means_merge_only() {
        let a = per(&[("linux/amd64", present()), ("linux/arm64", present())]);
        let d = run(
            &[Existence::Absent, Existence::Absent],
            &[Some(a.clone()), Some(a)],
        );
        assert!(!d[0].need_build && d[0].merge, "{:?}", d[0]);
        assert!(d[0].reason.contains("merge writes the content tag"));
        // Nothing of the parent is rebuilt: the child's platform images stay.
        assert!(!d[1].need_build && d[1].merge, "{:?}", d[1]);
    }

    #[test]
    fn a_content_tag_lacking_a_platform_is_repaired() {
        let mut a = held(&["linux/amd64"]);
        a.per_platform
            .insert("linux/arm64".into(), Existence::Absent);
        let d = run(&[present(), present()], &[Some(a), Some(amd_arm())]);
        assert_eq!(d[0].platforms.as_deref().unwrap(), ["linux/arm64"]);
        assert!(d[0].merge);
        assert!(d[0].reason.contains("lacks linux/arm64"), "{}", d[0].reason);
        assert_eq!(d[1].platforms.as_deref().unwrap(), ["linux/arm64"]);
    }

    #[test]
    fn unknown_answers_build_never_skip() {
        let a = per(&[
            ("linux/amd64", present()),
            (
                "linux/arm64",
                Existence::Unknown {
                    reason: "HTTP 503".into(),
                },
            ),
        ]);
        let d = run(&[Existence::Absent, present()], &[Some(a), Some(amd_arm())]);
        assert_eq!(d[0].platforms.as_deref().unwrap(), ["linux/arm64"]);
        assert!(d[0].reason.contains("HTTP 503"));
        let unread = PlatformAnswers {
            content: Some(Err("HTTP 500".into())),
            ..Default::default()
        };
        let d = run(&[present(), present()], &[Some(unread), Some(amd_arm())]);
        assert_eq!(
            d[0].platforms.as_deref().unwrap(),
            ["linux/amd64", "linux/arm64"]
        );
        assert!(d[1].need_build);
    }

    fn desc(digest: &str, platform: Option<(&str, &str)>, refd: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: digest.into(),
            size: 10,
            platform: platform.map(|(os, arch)| skip_registry::Platform {
                architecture: arch.into(),
                os: os.into(),
                variant: None,
                os_version: None,
                os_features: None,
            }),
            annotations: refd.map(|r| {
                [
                    ("vnd.docker.reference.digest".to_string(), r.to_string()),
                    (
                        "vnd.docker.reference.type".to_string(),
                        "attestation-manifest".to_string(),
                    ),
                ]
                .into_iter()
                .collect()
            }),
            urls: None,
            artifact_type: None,
        }
    }

    #[test]
    fn parts_keep_their_attestations_and_the_index_is_stable() {
        let entries = [
            desc("sha256:a", Some(("linux", "amd64")), None),
            desc("sha256:b", Some(("linux", "arm64")), None),
            desc("sha256:aa", Some(("unknown", "unknown")), Some("sha256:a")),
            desc("sha256:bb", Some(("unknown", "unknown")), Some("sha256:b")),
        ];
        let arm = part_from_index(&entries, "linux/arm64").unwrap();
        assert_eq!(arm.image.digest, "sha256:b");
        assert_eq!(arm.attestations.len(), 1);
        assert_eq!(arm.attestations[0].digest, "sha256:bb");
        assert!(part_from_index(&entries, "linux/s390x").is_none());
        let amd = part_from_index(&entries, "linux/amd64").unwrap();
        let bytes = index_bytes(&[amd.clone(), arm.clone()]);
        assert_eq!(bytes, index_bytes(&[amd, arm]));
        let idx: skip_registry::ImageIndex = serde_json::from_slice(&bytes).unwrap();
        let digests: Vec<&str> = idx.manifests.iter().map(|d| d.digest.as_str()).collect();
        assert_eq!(digests, ["sha256:a", "sha256:b", "sha256:aa", "sha256:bb"]);
        assert_eq!(idx.media_type.as_deref(), Some(OCI_INDEX));
    }
}
