//! Test stamps: a tested image carries a second tag, `<content-tag>.tested`, on the exact
//! manifest its test job tested.
//!
//! Why a tag: every registry keeps tags (the Debian `docker-registry`, Gitea, GHCR, Harbor,
//! Docker Hub), while OCI referrers and artifact manifests are not served everywhere. The stamp
//! is a plain re-tag of the same bytes, so it costs no storage and names one digest: a later
//! push under the same content tag (a rebuild) has another digest, and the old stamp no longer
//! counts for it.
//!
//! Why at all: in an incremental run the test jobs of reused images are skipped, and a skipped
//! job is not a passed one. The stamp is what remains of the earlier pass: promote's
//! `--require-tested` accepts an image whose stamp points at its current digest, whether it was
//! tested in this run or in the run that built it. A failed test writes no stamp, so promote
//! blocks on that image.

use crate::config::Config;
use crate::error::usage;

/// Appended to the content tag.
pub const SUFFIX: &str = ".tested";

/// The stamp tag of a content tag, or a usage error when it would not be a valid OCI tag (a
/// content tag near the 128-character limit).
pub fn stamp_tag(content_tag: &str) -> anyhow::Result<String> {
    let t = format!("{content_tag}{SUFFIX}");
    if !crate::config::template::valid_tag(&t) {
        return Err(usage(format!(
            "the test stamp of `{content_tag}` would be `{t}`, longer than an OCI tag may be (128); shorten the tag template or hash_length"
        )));
    }
    Ok(t)
}

/// The images a list of names selects: `all`, or image names and globs (`devbox/*`), separated
/// by commas, spaces or newlines. `what` names the flag in errors. A name that selects nothing is
/// a usage error (a typo must not pass silently). Returns indexes into `config.images`, sorted.
pub fn select(config: &Config, text: &str, what: &str) -> anyhow::Result<Vec<usize>> {
    let words: Vec<&str> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err(usage(format!(
            "{what}: no image names given (`all`, or names)"
        )));
    }
    let mut out = std::collections::BTreeSet::new();
    for w in words {
        if w == "all" {
            out.extend(0..config.images.len());
            continue;
        }
        let pat = glob::Pattern::new(w)
            .map_err(|e| usage(format!("{what}: `{w}` is not a valid pattern: {e}")))?;
        let hits: Vec<usize> = config
            .images
            .iter()
            .enumerate()
            .filter(|(_, s)| pat.matches(&s.name))
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            let names: Vec<&str> = config
                .images
                .iter()
                .map(|s| s.name.as_str())
                .take(20)
                .collect();
            return Err(usage(format!(
                "{what}: `{w}` matches no image (images: {})",
                names.join(", ")
            )));
        }
        out.extend(hits);
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn stamp_tags_and_selection() {
        assert_eq!(stamp_tag("base-abc").unwrap(), "base-abc.tested");
        let e = stamp_tag(&"a".repeat(125)).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);

        let c = Config::parse(
            "version: 1\nrepository: ghcr.io/a/b\nimages:\n  base:\n    dockerfile: D\n  devbox:\n    from: base\n    dockerfile: D\n    variants:\n      omos: {}\n      pi: {}\n    tag: '{variant}-{hash}'\n",
            Path::new("t.yml"),
        )
        .unwrap();
        let names = |v: Vec<usize>| -> Vec<String> {
            v.into_iter().map(|i| c.images[i].name.clone()).collect()
        };
        assert_eq!(
            names(select(&c, "all", "x").unwrap()),
            ["base", "devbox/omos", "devbox/pi"]
        );
        assert_eq!(
            names(select(&c, "devbox/*,\nbase", "x").unwrap()),
            ["base", "devbox/omos", "devbox/pi"]
        );
        assert_eq!(
            names(select(&c, " devbox/pi ", "x").unwrap()),
            ["devbox/pi"]
        );
        let e = select(&c, "devbox/omso", "require-tested").unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(
            format!("{e}").contains("`devbox/omso` matches no image"),
            "{e}"
        );
        assert!(select(&c, " , ", "x").is_err());
        assert!(select(&c, "base[", "x").is_err());
    }
}
