//! What an image is in the registry, and whether it sits on its parent: the one judge that
//! `decide` (before reusing an image) and `promote` (before moving an alias) share, so the two
//! can never disagree about "built on the current parent".
//!
//! Everything here is a pure function over fetched manifests ([`Found`]): unit-tested without a
//! registry. Fetching lives with the callers.

use std::collections::{BTreeMap, HashMap};

use skip_registry::manifest::ParsedManifest;
use skip_registry::Manifest;

use crate::config::Config;
use crate::inputs::Discovery;

// ---------------------------------------------------------------------------------------------
// Platforms
// ---------------------------------------------------------------------------------------------

/// Platforms are normalised in one place, the registry crate, beside the OCI `Platform` they
/// are read from; re-exported here, where the judge uses them.
pub use skip_registry::PlatformKey;

/// The platforms of `required` (as written in the config) that `available` lacks, in config
/// order. A platform that does not parse counts as missing, with the reason.
pub fn missing_platforms(required: &[String], available: &[PlatformKey]) -> Vec<String> {
    required
        .iter()
        .filter_map(|r| match PlatformKey::parse(r) {
            Ok(k) if available.contains(&k) => None,
            Ok(_) => Some(r.clone()),
            Err(e) => Some(e),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What a content tag points at
// ---------------------------------------------------------------------------------------------

/// One runnable image behind a tag: the tag's own manifest (single-arch), or one child of its
/// index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    /// `None` for a single-arch manifest whose config blob was not read.
    pub platform: Option<PlatformKey>,
    pub digest: String,
    /// Layer digests, bottom first; `None` when not fetched (not needed for any check).
    pub layers: Option<Vec<String>>,
    /// What `merge` verified when it wrote this entry of the index: `FROM` parent name → the
    /// digest of that parent's platform manifest whose layers this image's layers start with
    /// ([`PARENT_ANNOTATION`]). Both sides are content-addressed, so the claim stays true; it
    /// spares decide the platform manifest reads when it names the parent's current entry. Empty
    /// for a single-arch manifest or an index without the annotations.
    pub verified_on: BTreeMap<String, String>,
}

/// The index descriptor annotation prefix `merge` writes, followed by a `FROM` parent's name: the
/// value is the digest of the parent's platform manifest this platform image was verified on
/// (layers a prefix). Our own key: `org.opencontainers.image.base.digest` means other things to
/// BuildKit and other tools. Trust boundary: only skip-action's merge writes these; whoever can
/// push a forged index can push any image under the tag (like a forged tag), which no check that
/// reads the tag can tell apart.
pub const PARENT_ANNOTATION: &str = "io.github.skip-action.parent.";

/// The [`PARENT_ANNOTATION`]s of a descriptor: parent name → digest.
pub fn verified_on(d: &skip_registry::Descriptor) -> BTreeMap<String, String> {
    d.annotations
        .iter()
        .flatten()
        .filter_map(|(k, v)| {
            k.strip_prefix(PARENT_ANNOTATION)
                .filter(|n| !n.is_empty())
                .map(|n| (n.to_string(), v.clone()))
        })
        .collect()
}

/// Whether `child` (one platform image) is verified by its index annotations to sit on one of
/// `parents`: an annotation names the digest of the parent's entry of the same platform (both
/// platforms known) as it is now. Anything else — no annotation, another digest, a single-arch
/// side whose platform is unknown — is not verified, and the layers decide.
pub fn verified_by_annotation(parents: &[(&str, &Found)], child: &PlatformImage) -> bool {
    let Some(plat) = &child.platform else {
        return false;
    };
    parents.iter().any(|(pname, pf)| {
        child.verified_on.get(*pname).is_some_and(|d| {
            pf.images
                .iter()
                .any(|pi| pi.platform.as_ref() == Some(plat) && &pi.digest == d)
        })
    })
}

/// A content tag as found in the registry.
#[derive(Debug, Clone)]
pub struct Found {
    /// The exact bytes, media type and digest served.
    pub manifest: Manifest,
    pub index: bool,
    /// The runnable images (attestation manifests left out).
    pub images: Vec<PlatformImage>,
}

impl Found {
    /// Builds from a fetched manifest: an index lists its children (layers not yet known), a
    /// single-arch manifest is one image with its layers.
    pub fn from_manifest(manifest: Manifest) -> anyhow::Result<Found> {
        let parsed = manifest.parse()?;
        let (index, images) = match &parsed {
            ParsedManifest::Index(idx) => (
                true,
                idx.manifests
                    .iter()
                    .filter(|d| !is_attestation(d))
                    .map(|d| PlatformImage {
                        platform: d.platform.as_ref().map(PlatformKey::from_oci),
                        digest: d.digest.clone(),
                        layers: None,
                        verified_on: verified_on(d),
                    })
                    .collect(),
            ),
            ParsedManifest::Image(m) => (
                false,
                vec![PlatformImage {
                    platform: None,
                    digest: manifest.digest.clone(),
                    layers: Some(m.layers.iter().map(|l| l.digest.clone()).collect()),
                    verified_on: BTreeMap::new(),
                }],
            ),
        };
        Ok(Found {
            manifest,
            index,
            images,
        })
    }

    /// The known platforms.
    pub fn platforms(&self) -> Vec<PlatformKey> {
        self.images
            .iter()
            .filter_map(|i| i.platform.clone())
            .collect()
    }

    /// "index of 2 platforms" / "single-arch manifest", for reports.
    pub fn describe(&self) -> String {
        if self.index {
            let p: Vec<String> = self.platforms().iter().map(|p| p.to_string()).collect();
            format!("index: {}", p.join(", "))
        } else {
            match &self.images[0].platform {
                Some(p) => format!("single-arch: {p}"),
                None => "single-arch".to_string(),
            }
        }
    }
}

/// BuildKit's provenance/SBOM manifests: platform `unknown/unknown`, or the annotation.
fn is_attestation(d: &skip_registry::Descriptor) -> bool {
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

// ---------------------------------------------------------------------------------------------
// The base check
// ---------------------------------------------------------------------------------------------

/// Whether `child`'s layers start with all of `parent`'s: what `FROM parent` produces. Digests
/// only (a rebuilt parent has new layer digests, so a child built on the old one fails).
pub fn is_layer_prefix(parent: &[String], child: &[String]) -> bool {
    child.starts_with(parent)
}

/// Problems with `child` being built on its `FROM` parents, one per platform that is not built on
/// any of them; empty when every platform is. Platforms are matched by name; when a side's
/// platform is unknown (a single-arch manifest whose config was not read), every image of the
/// other side is a candidate — layer digests decide.
pub fn base_problems(parents: &[(&str, &Found)], child: &Found) -> Vec<String> {
    let mut problems = Vec::new();
    let names: Vec<&str> = parents.iter().map(|(n, _)| *n).collect();
    for ci in &child.images {
        let plat = ci
            .platform
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "the image".to_string());
        // merge verified this very manifest on a parent's current entry of this platform.
        if verified_by_annotation(parents, ci) {
            continue;
        }
        let Some(child_layers) = &ci.layers else {
            problems.push(format!("{plat}: its layers could not be read"));
            continue;
        };
        let mut reasons = Vec::new();
        let mut ok = false;
        for (pname, pf) in parents {
            let candidates: Vec<&PlatformImage> = pf
                .images
                .iter()
                .filter(|pi| match (&pi.platform, &ci.platform) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                })
                .collect();
            if candidates.is_empty() {
                reasons.push(format!("{pname} has no {plat}"));
                continue;
            }
            let hit = candidates.iter().any(|pi| {
                pi.layers
                    .as_deref()
                    .is_some_and(|pl| is_layer_prefix(pl, child_layers))
            });
            if hit {
                ok = true;
                break;
            }
            let which: Vec<String> = candidates
                .iter()
                .map(|pi| short_digest(&pi.digest))
                .collect();
            reasons.push(format!(
                "its layers do not start with {pname}'s ({})",
                which.join(", ")
            ));
        }
        if !ok {
            problems.push(format!(
                "{plat} ({}) is not built on the current {}: {} — rebuild it on the current parent",
                short_digest(&ci.digest),
                names.join(" or "),
                reasons.join("; ")
            ));
        }
    }
    problems
}

/// `sha256:0123456789ab` — enough to tell digests apart in a message.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}", &hex[..12]),
        _ => d.to_string(),
    }
}

/// For each image, the indices of the parents it is built `FROM` (as opposed to parents it only
/// `COPY --from`s or mounts, whose layers cannot be expected under its own). Taken from the same
/// Dockerfile analysis hashing uses, with the parents' placeholders; when the Dockerfile cannot be
/// analysed, every parent counts (the stricter check).
pub fn from_parents(config: &Config, discovery: &Discovery) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = config
        .images
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    config
        .images
        .iter()
        .zip(&discovery.images)
        .map(|(spec, inputs)| {
            let all: Vec<usize> = spec
                .parents
                .iter()
                .filter_map(|p| index.get(p.name.as_str()).copied())
                .collect();
            if all.is_empty() {
                return all;
            }
            let Ok(text) = std::str::from_utf8(&inputs.dockerfile) else {
                return all;
            };
            let Ok(df) = skip_dockerfile::parse(text) else {
                return all;
            };
            let mut args = spec.args.clone();
            for p in &spec.parents {
                args.insert(p.arg.clone(), crate::inputs::parent_placeholder(&p.name));
            }
            let Ok(analysis) = df.analyze(&args, spec.target.as_deref()) else {
                return all;
            };
            spec.parents
                .iter()
                .filter(|p| {
                    let ph = crate::inputs::parent_placeholder(&p.name);
                    analysis
                        .images
                        .iter()
                        .any(|u| u.reference == ph && u.kind == skip_dockerfile::ImageUseKind::From)
                })
                .filter_map(|p| index.get(p.name.as_str()).copied())
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// decide's side: may an image whose tag exists be reused?
// ---------------------------------------------------------------------------------------------

/// What decide learned about an image being built on the current build of its `FROM` parents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BaseCheck {
    /// Not asked: no `FROM` parent in the config, or the image is built anyway (forced, tag
    /// missing or unknown, an ancestor being built).
    #[default]
    NotChecked,
    /// Every platform's layers start with its parent's current layers.
    Current,
    /// A platform is not built on the parent's current push: `parent` names it (`a or b` when
    /// it is built `FROM` one of several), `detail` says which platform and digests.
    Stale { parent: String, detail: String },
    /// A manifest could not be read: judged like an unanswerable probe (build, to be safe).
    Unknown { reason: String },
}

/// The images decide must judge: those it would otherwise reuse (`built_anyway[i]` false) that
/// are built `FROM` a parent of the config. Their parents need reading too; see [`to_read`].
pub fn to_check(from: &[Vec<usize>], built_anyway: &[bool]) -> Vec<usize> {
    (0..from.len())
        .filter(|&i| !built_anyway[i] && !from[i].is_empty())
        .collect()
}

/// Every image whose manifest [`judge`] needs for `check`: each image and each parent once.
pub fn to_read(from: &[Vec<usize>], check: &[usize]) -> Vec<usize> {
    let mut read: std::collections::BTreeSet<usize> = check.iter().copied().collect();
    for &i in check {
        read.extend(from[i].iter().copied());
    }
    read.into_iter().collect()
}

/// Judge every image of `check` with [`base_problems`] — the rule promote applies — given what
/// was read (`found[i]`: `None` when not read, `Err` when the read failed). `names[i]` names image
/// `i` in reasons. Images outside `check` are [`BaseCheck::NotChecked`].
pub fn judge(
    names: &[&str],
    from: &[Vec<usize>],
    check: &[usize],
    found: &[Option<Result<Found, String>>],
) -> Vec<BaseCheck> {
    let mut out = vec![BaseCheck::NotChecked; names.len()];
    for &i in check {
        let read = |k: usize| -> Result<&Found, String> {
            match found.get(k).and_then(Option::as_ref) {
                Some(Ok(f)) => Ok(f),
                Some(Err(e)) => Err(format!("could not read {}: {e}", names[k])),
                None => Err(format!("{} was not read", names[k])),
            }
        };
        let child = match read(i) {
            Ok(f) => f,
            Err(reason) => {
                out[i] = BaseCheck::Unknown { reason };
                continue;
            }
        };
        let mut parents = Vec::with_capacity(from[i].len());
        let mut unknown = None;
        for &p in &from[i] {
            match read(p) {
                Ok(f) => parents.push((names[p], f)),
                Err(reason) => {
                    unknown = Some(reason);
                    break;
                }
            }
        }
        if let Some(reason) = unknown {
            out[i] = BaseCheck::Unknown { reason };
            continue;
        }
        let problems = base_problems(&parents, child);
        out[i] = if problems.is_empty() {
            BaseCheck::Current
        } else {
            BaseCheck::Stale {
                parent: parents
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(" or "),
                detail: problems.join("; "),
            }
        };
    }
    out
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
            verified_on: BTreeMap::new(),
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

    /// An index entry of `platform` (layers not read) carrying merge's annotations.
    fn annotated(platform: &str, digest: &str, on: &[(&str, &str)]) -> PlatformImage {
        PlatformImage {
            platform: Some(PlatformKey::parse(platform).unwrap()),
            digest: digest.into(),
            layers: None,
            verified_on: on
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect(),
        }
    }

    #[test]
    fn annotations_verify_only_the_parents_current_entry_of_the_same_platform() {
        let base = found(
            true,
            vec![
                annotated("linux/amd64", "sha256:ba", &[]),
                annotated("linux/arm64", "sha256:bb", &[]),
            ],
        );
        let tools = found(true, vec![annotated("linux/amd64", "sha256:ta", &[])]);
        let single = single("sha256:s", &["l1"]);
        let v =
            |parents: &[(&str, &Found)], ci: PlatformImage| verified_by_annotation(parents, &ci);
        let on_base = [("base", &base)];
        assert!(v(
            &on_base,
            annotated("linux/amd64", "sha256:c", &[("base", "sha256:ba")])
        ));
        // Another digest (an older base), another platform's entry, another parent's name, none.
        assert!(!v(
            &on_base,
            annotated("linux/amd64", "sha256:c", &[("base", "sha256:old")])
        ));
        assert!(!v(
            &on_base,
            annotated("linux/amd64", "sha256:c", &[("base", "sha256:bb")])
        ));
        assert!(!v(
            &on_base,
            annotated("linux/amd64", "sha256:c", &[("tools", "sha256:ba")])
        ));
        assert!(!v(&on_base, annotated("linux/amd64", "sha256:c", &[])));
        // A single-arch parent (no platform entry): the layers decide.
        assert!(!v(
            &[("base", &single)],
            annotated("linux/amd64", "sha256:c", &[("base", "sha256:s")])
        ));
        // Built FROM one of two parents: verified on either is enough, as the layer judge says.
        let two = [("base", &base), ("tools", &tools)];
        assert!(v(
            &two,
            annotated("linux/amd64", "sha256:c", &[("tools", "sha256:ta")])
        ));
        // The judge: verified platforms need no layers; one that is not needs them.
        let child = found(
            true,
            vec![
                annotated("linux/amd64", "sha256:ca", &[("base", "sha256:ba")]),
                annotated("linux/arm64", "sha256:cb", &[("base", "sha256:bb")]),
            ],
        );
        assert!(base_problems(&on_base, &child).is_empty());
        let half = found(
            true,
            vec![
                annotated("linux/amd64", "sha256:ca", &[("base", "sha256:ba")]),
                annotated("linux/arm64", "sha256:cb", &[("base", "sha256:old")]),
            ],
        );
        let p = base_problems(&on_base, &half);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("linux/arm64"), "{p:?}");
    }

    #[test]
    fn verified_on_reads_only_our_keys() {
        let d: skip_registry::Descriptor = serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:c", "size": 1,
            "annotations": {
                "io.github.skip-action.parent.base": "sha256:b",
                "io.github.skip-action.parent.": "sha256:x",
                "org.opencontainers.image.base.digest": "sha256:y"
            }
        }))
        .unwrap();
        let got = verified_on(&d);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got["base"], "sha256:b");
    }

    #[test]
    fn short_digests() {
        assert_eq!(
            short_digest("sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
        assert_eq!(short_digest("sha256:ab"), "sha256:ab");
    }

    /// A single-arch image with these layers (platform unknown: layer digests decide).
    fn single(digest: &str, l: &[&str]) -> Found {
        Found {
            manifest: Manifest {
                bytes: Vec::new(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: digest.into(),
            },
            index: false,
            images: vec![PlatformImage {
                platform: None,
                digest: digest.into(),
                layers: Some(layers(l)),
                verified_on: BTreeMap::new(),
            }],
        }
    }

    #[test]
    fn to_check_and_to_read_skip_what_is_built_anyway() {
        // 0 ← 1 ← 2, and 3 built FROM 0 and 1.
        let from = vec![vec![], vec![0], vec![1], vec![0, 1]];
        assert_eq!(to_check(&from, &[false; 4]), [1, 2, 3]);
        assert_eq!(to_check(&from, &[false, false, true, false]), [1, 3]);
        assert_eq!(to_read(&from, &[2]), [1, 2]);
        assert_eq!(to_read(&from, &[1, 3]), [0, 1, 3]);
    }

    #[test]
    fn judge_says_current_stale_or_unknown() {
        let names = ["base", "dev", "app", "tools", "multi"];
        let from = vec![vec![], vec![0], vec![1], vec![], vec![0, 3]];
        let found = vec![
            Some(Ok(single("sha256:b", &["l1", "l2"]))),
            Some(Ok(single("sha256:d", &["l1", "l2", "l3"]))),
            Some(Err("HTTP 500".to_string())),
            Some(Ok(single("sha256:t", &["t1"]))),
            Some(Ok(single("sha256:m", &["x1", "x2"]))),
        ];
        let b = judge(&names, &from, &[1, 2, 4], &found);
        assert_eq!(b[0], BaseCheck::NotChecked);
        assert_eq!(b[1], BaseCheck::Current);
        assert_eq!(
            b[2],
            BaseCheck::Unknown {
                reason: "could not read app: HTTP 500".into()
            }
        );
        let BaseCheck::Stale { parent, detail } = &b[4] else {
            panic!("{:?}", b[4])
        };
        assert_eq!(parent, "base or tools");
        assert!(
            detail.contains("not built on the current base or tools"),
            "{detail}"
        );
        // A parent that could not be read makes its child unknown, never current.
        let mut found = found;
        found[0] = Some(Err("timeout".into()));
        let b = judge(&names, &from, &[1], &found);
        assert_eq!(
            b[1],
            BaseCheck::Unknown {
                reason: "could not read base: timeout".into()
            }
        );
        // Not read at all (a bug in the caller) is unknown too.
        let b = judge(&names, &from, &[1], &vec![None; 5]);
        assert!(matches!(b[1], BaseCheck::Unknown { .. }));
    }
}
