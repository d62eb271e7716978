//! The decision: which images must be built, and why.
//!
//! Pure: it takes the config, the hashes and the registry's answers as data, so every rule here is
//! unit-tested without a registry. The rules, in order of precedence:
//! 1. `--force` names the image (or `all`): build, "forced".
//! 2. The registry could not tell (`Unknown`): build, "registry error: …; building to be safe"
//!    (or fail the whole decision with `on-registry-error: fail`). Never a skip.
//! 3. The content tag is absent: build, "tag missing".
//! 4. A parent is being built: build, "parent X is being built" — a rebuilt parent gets a new
//!    digest under the same tag, and a child left on the old digest would not sit on it.
//! 5. The tag exists but the image is not built on its parent's current push (the judge promote
//!    uses, [`crate::lineage::base_problems`]): build, "built on an older X: …". A parent pushed
//!    again under its tag (forced, "building to be safe", a re-run job) leaves such children.
//! 6. That could not be checked (a manifest read failed): build, "could not check …; building to
//!    be safe" — like an unanswerable probe.
//! 7. Otherwise the tag exists: skip, "tag exists".

use std::collections::BTreeSet;

use crate::config::Config;
use crate::error::usage;
use crate::lineage::BaseCheck;

/// What the registry said about one content tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existence {
    /// The tag exists (digest when the probe returned one).
    Present { digest: Option<String> },
    /// 404: the tag does not exist.
    Absent,
    /// Anything else after retries.
    Unknown { reason: String },
}

/// `--force`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Force {
    #[default]
    None,
    All,
    /// Expanded image names.
    Names(BTreeSet<String>),
}

impl Force {
    /// Parse `all` or a comma-separated list of image keys (`devbox` = all its variants) or
    /// expanded names (`devbox/omos`), checked against the config.
    pub fn parse(spec: Option<&str>, config: &Config) -> anyhow::Result<Force> {
        let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Force::None);
        };
        if spec == "all" {
            return Ok(Force::All);
        }
        let mut names = BTreeSet::new();
        for item in spec
            .split([',', '\n', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let matched: Vec<&str> = config
                .images
                .iter()
                .filter(|i| i.name == item || i.image == item)
                .map(|i| i.name.as_str())
                .collect();
            if matched.is_empty() {
                let known: BTreeSet<&str> =
                    config.images.iter().map(|i| i.image.as_str()).collect();
                return Err(usage(format!(
                    "--force: no image `{item}`; use `all`, an image ({}) or a variant such as `{}`",
                    known.into_iter().collect::<Vec<_>>().join(", "),
                    config.images.last().map(|i| i.name.as_str()).unwrap_or("name")
                )));
            }
            names.extend(matched.into_iter().map(String::from));
        }
        Ok(Force::Names(names))
    }

    /// Only the forced images of `level`. The gate before a level (`decide --level N`) runs
    /// after the lower levels were built: forcing them again there would make every child wait
    /// for a parent that "still needs building" forever, so they are judged by the registry (a
    /// forced parent pushed again leaves its children on an older push: they build).
    pub fn at_level(&self, config: &Config, level: usize) -> Force {
        match self {
            Force::None => Force::None,
            _ => Force::Names(
                config
                    .images
                    .iter()
                    .filter(|i| i.level == level && self.covers(&i.name))
                    .map(|i| i.name.clone())
                    .collect(),
            ),
        }
    }

    /// Whether `name` (an expanded image name) is forced.
    pub fn covers(&self, name: &str) -> bool {
        match self {
            Force::None => false,
            Force::All => true,
            Force::Names(n) => n.contains(name),
        }
    }
}

/// `on-registry-error`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnRegistryError {
    /// Build what could not be checked, with a warning.
    #[default]
    Build,
    /// Fail the decision.
    Fail,
}

impl OnRegistryError {
    pub fn parse(s: Option<&str>) -> anyhow::Result<Self> {
        match s.map(str::trim) {
            None | Some("") | Some("build") => Ok(Self::Build),
            Some("fail") => Ok(Self::Fail),
            Some(other) => Err(usage(format!(
                "on-registry-error: `{other}` is not `build` or `fail`"
            ))),
        }
    }
}

/// The decision for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub need_build: bool,
    /// `Some(true/false)` when the registry answered, `None` when it could not tell.
    pub exists: Option<bool>,
    pub digest: Option<String>,
    pub reason: String,
    /// With `runners:`, the platforms to build (a subset of the image's; see
    /// [`crate::fanout::refine`]). `None`: every platform, in one job (no `runners:`).
    pub platforms: Option<Vec<String>>,
    /// With `runners:`, whether `merge` must write the content tag (missing, lacking a platform,
    /// or a platform rebuilt).
    pub merge: bool,
}

/// Which images are built whatever their parents' layers say: forced, tag not known to exist,
/// or an ancestor built for one of these reasons. Only the others need the base check (reads
/// cost requests, and a Docker Hub manifest GET counts as a pull).
pub fn built_anyway(config: &Config, existence: &[Existence], force: &Force) -> Vec<bool> {
    let index: std::collections::HashMap<&str, usize> = config
        .images
        .iter()
        .enumerate()
        .map(|(i, img)| (img.name.as_str(), i))
        .collect();
    let mut out: Vec<bool> = Vec::with_capacity(existence.len());
    for (img, e) in config.images.iter().zip(existence) {
        // Parents come first in config.images.
        let parent_built = img
            .parents
            .iter()
            .any(|p| index.get(p.name.as_str()).is_some_and(|&pi| out[pi]));
        out.push(
            force.covers(&img.name) || !matches!(e, Existence::Present { .. }) || parent_built,
        );
    }
    out
}

/// Decide for every image of `config` (same order), given `existence` per image, with no base
/// check (every image [`BaseCheck::NotChecked`]).
pub fn decide(
    config: &Config,
    existence: &[Existence],
    force: &Force,
    on_error: OnRegistryError,
) -> anyhow::Result<Vec<Decision>> {
    let base = vec![BaseCheck::NotChecked; existence.len()];
    decide_checked(config, existence, &base, force, on_error)
}

/// Decide for every image of `config` (same order), given `existence` and the base check
/// (`base`, from [`crate::lineage::judge`]) per image.
pub fn decide_checked(
    config: &Config,
    existence: &[Existence],
    base: &[BaseCheck],
    force: &Force,
    on_error: OnRegistryError,
) -> anyhow::Result<Vec<Decision>> {
    assert_eq!(config.images.len(), existence.len(), "one answer per image");
    assert_eq!(config.images.len(), base.len(), "one base check per image");
    if on_error == OnRegistryError::Fail {
        let failed: Vec<String> = config
            .images
            .iter()
            .zip(existence.iter().zip(base))
            .filter_map(|(img, (e, b))| match (e, b) {
                (Existence::Unknown { reason }, _) | (_, BaseCheck::Unknown { reason }) => {
                    Some(format!("{}: {reason}", img.name))
                }
                _ => None,
            })
            .collect();
        if !failed.is_empty() {
            anyhow::bail!(
                "the registry could not be asked about {} image(s) (on-registry-error: fail):\n  {}",
                failed.len(),
                failed.join("\n  ")
            );
        }
    }
    let index: std::collections::HashMap<&str, usize> = config
        .images
        .iter()
        .enumerate()
        .map(|(i, img)| (img.name.as_str(), i))
        .collect();
    let mut out: Vec<Decision> = Vec::with_capacity(existence.len());
    for ((img, e), b) in config.images.iter().zip(existence).zip(base) {
        let (exists, digest) = match e {
            Existence::Present { digest } => (Some(true), digest.clone()),
            Existence::Absent => (Some(false), None),
            Existence::Unknown { .. } => (None, None),
        };
        // Parents come first in config.images, so their decisions are already made.
        let building_parent = img.parents.iter().find(|p| {
            index
                .get(p.name.as_str())
                .is_some_and(|&pi| out[pi].need_build)
        });
        let (need_build, reason) = if force.covers(&img.name) {
            (true, "forced".to_string())
        } else if let Existence::Unknown { reason } = e {
            (
                true,
                format!("registry error: {reason}; building to be safe"),
            )
        } else if *e == Existence::Absent {
            (true, "tag missing".to_string())
        } else if let Some(p) = building_parent {
            (true, format!("parent {} is being built", p.name))
        } else if let BaseCheck::Stale { parent, detail } = b {
            (true, format!("built on an older {parent}: {detail}"))
        } else if let BaseCheck::Unknown { reason } = b {
            (
                true,
                format!("could not check that it is built on its current parent ({reason}); building to be safe"),
            )
        } else {
            (false, "tag exists".to_string())
        };
        out.push(Decision {
            need_build,
            exists,
            digest,
            reason,
            platforms: None,
            merge: false,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CFG: &str = "version: 1\nrepository: ghcr.io/a/b\nimages:\n  base:\n    dockerfile: D\n    tag: base-{hash}\n  dev:\n    from: base\n    dockerfile: D\n    variants: {x: {}, y: {}}\n  app:\n    from: dev/x\n    dockerfile: D\n";

    fn config() -> Config {
        Config::parse(CFG, Path::new("t.yml")).unwrap()
    }

    fn present() -> Existence {
        Existence::Present {
            digest: Some("sha256:aa".into()),
        }
    }

    fn reasons(d: &[Decision]) -> Vec<(bool, &str)> {
        d.iter()
            .map(|d| (d.need_build, d.reason.as_str()))
            .collect()
    }

    #[test]
    fn all_present_skips_everything() {
        let d = decide(
            &config(),
            &vec![present(); 4],
            &Force::None,
            OnRegistryError::Build,
        )
        .unwrap();
        assert!(d.iter().all(|d| !d.need_build && d.reason == "tag exists"));
        assert_eq!(d[0].digest.as_deref(), Some("sha256:aa"));
    }

    #[test]
    fn missing_tag_builds_only_that_image() {
        let d = decide(
            &config(),
            &[present(), present(), Existence::Absent, present()],
            &Force::None,
            OnRegistryError::Build,
        )
        .unwrap();
        assert_eq!(
            reasons(&d),
            [
                (false, "tag exists"),
                (false, "tag exists"),
                (true, "tag missing"),
                (false, "tag exists")
            ]
        );
        assert_eq!(d[2].exists, Some(false));
    }

    #[test]
    fn a_forced_parent_cascades_through_every_level() {
        let c = config();
        let f = Force::parse(Some("base"), &c).unwrap();
        let d = decide(&c, &vec![present(); 4], &f, OnRegistryError::Build).unwrap();
        assert_eq!(
            reasons(&d),
            [
                (true, "forced"),
                (true, "parent base is being built"),
                (true, "parent base is being built"),
                (true, "parent dev/x is being built")
            ]
        );
    }

    #[test]
    fn unknown_never_skips_and_cascades() {
        let d = decide(
            &config(),
            &[
                Existence::Unknown {
                    reason: "HTTP 503".into(),
                },
                present(),
                present(),
                present(),
            ],
            &Force::None,
            OnRegistryError::Build,
        )
        .unwrap();
        assert!(d.iter().all(|d| d.need_build));
        assert_eq!(d[0].reason, "registry error: HTTP 503; building to be safe");
        assert_eq!(d[0].exists, None);
    }

    #[test]
    fn unknown_with_fail_is_an_error_naming_each_image() {
        let e = decide(
            &config(),
            &[
                present(),
                Existence::Unknown {
                    reason: "timeout".into(),
                },
                present(),
                present(),
            ],
            &Force::None,
            OnRegistryError::Fail,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dev/x: timeout"), "{e}");
    }

    #[test]
    fn force_accepts_images_variants_and_all() {
        let c = config();
        assert_eq!(Force::parse(None, &c).unwrap(), Force::None);
        assert_eq!(Force::parse(Some(" "), &c).unwrap(), Force::None);
        assert_eq!(Force::parse(Some("all"), &c).unwrap(), Force::All);
        let Force::Names(n) = Force::parse(Some("dev, app"), &c).unwrap() else {
            panic!()
        };
        assert_eq!(n.into_iter().collect::<Vec<_>>(), ["app", "dev/x", "dev/y"]);
        let err = Force::parse(Some("nope"), &c).unwrap_err().to_string();
        assert!(
            err.contains("no image `nope`") && err.contains("base"),
            "{err}"
        );
        let Force::Names(n) = Force::parse(Some("dev/y"), &c).unwrap() else {
            panic!()
        };
        let d = decide(
            &c,
            &vec![present(); 4],
            &Force::Names(n),
            OnRegistryError::Build,
        )
        .unwrap();
        assert_eq!(
            reasons(&d),
            [
                (false, "tag exists"),
                (false, "tag exists"),
                (true, "forced"),
                (false, "tag exists")
            ]
        );
    }

    #[test]
    fn a_stale_base_builds_with_its_parent_named_and_cascades() {
        let c = config();
        let stale = BaseCheck::Stale {
            parent: "base".into(),
            detail: "the image is not built on the current base".into(),
        };
        let base = [
            BaseCheck::NotChecked,
            stale,
            BaseCheck::Current,
            BaseCheck::Current,
        ];
        let d = decide_checked(
            &c,
            &vec![present(); 4],
            &base,
            &Force::None,
            OnRegistryError::Build,
        )
        .unwrap();
        assert_eq!(
            reasons(&d),
            [
                (false, "tag exists"),
                (
                    true,
                    "built on an older base: the image is not built on the current base"
                ),
                (false, "tag exists"),
                (true, "parent dev/x is being built")
            ]
        );
    }

    #[test]
    fn an_unchecked_base_builds_to_be_safe_or_fails() {
        let c = config();
        let mut base = vec![BaseCheck::NotChecked; 4];
        base[2] = BaseCheck::Unknown {
            reason: "HTTP 500".into(),
        };
        let d = decide_checked(
            &c,
            &vec![present(); 4],
            &base,
            &Force::None,
            OnRegistryError::Build,
        )
        .unwrap();
        assert!(d[2].need_build);
        assert!(d[2].reason.contains("HTTP 500") && d[2].reason.ends_with("building to be safe"));
        assert!(!d[1].need_build);
        let e = decide_checked(
            &c,
            &vec![present(); 4],
            &base,
            &Force::None,
            OnRegistryError::Fail,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dev/y: HTTP 500"), "{e}");
    }

    #[test]
    fn built_anyway_follows_force_absence_and_ancestors() {
        let c = config();
        let f = Force::parse(Some("dev/x"), &c).unwrap();
        assert_eq!(
            built_anyway(&c, &vec![present(); 4], &f),
            [false, true, false, true]
        );
        let ex = [Existence::Absent, present(), present(), present()];
        assert_eq!(built_anyway(&c, &ex, &Force::None), [true; 4]);
    }

    #[test]
    fn on_registry_error_values() {
        assert_eq!(
            OnRegistryError::parse(None).unwrap(),
            OnRegistryError::Build
        );
        assert_eq!(
            OnRegistryError::parse(Some("fail")).unwrap(),
            OnRegistryError::Fail
        );
        assert!(OnRegistryError::parse(Some("skip")).is_err());
    }
}
