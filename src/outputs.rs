//! What `decide` tells the workflow: the outputs (names are a contract), the job matrices and the
//! Markdown summary. Pure: values in, strings out; [`crate::github::output`] writes them.
//!
//! GitHub rejects an empty matrix and any matrix over 256 jobs. Matrices here are always
//! `{"include":[…]}` with at most `max_jobs` entries: when more images must be built, each entry is
//! a batch of images (`batch`, `images`, `targets` for `docker buildx bake`), balanced across the
//! allowed jobs.

use serde::Serialize;

use crate::config::{Config, ImageSpec};
use crate::github::md_cell as md_escape;
use crate::github::output::Outputs;
use crate::hash::ImageHash;
use crate::plan::Decision;

/// One image to build, as a matrix entry.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixEntry {
    pub name: String,
    pub variant: String,
    pub image: String,
    pub tag: String,
    pub hash: String,
    pub dockerfile: String,
    pub context: String,
    pub build_args: String,
    pub tags: String,
    pub platforms: String,
    pub target: String,
    pub level: usize,
    pub parents: String,
    /// With `runners:`: the one platform this entry builds (`linux/arm64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// With `runners:`: the label of the runner that builds it (`runs-on: ${{ matrix.runner }}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
}

/// A batch of images for one job, when there are more images than jobs.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    /// `3/256`.
    pub batch: String,
    pub count: usize,
    /// Image names, comma-separated.
    pub images: String,
    /// The same names as bake targets (`/` → `_`), space-separated.
    pub targets: String,
    pub level: usize,
    /// With `runners:`: the one platform every image of the batch builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// With `runners:`: the one runner of the batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
}

/// One image in the `plan` output.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry<'a> {
    pub name: &'a str,
    pub variant: Option<&'a str>,
    pub image: &'a str,
    pub tag: &'a str,
    pub hash: &'a str,
    /// The hash definition that made `hash` and the tag (README: "The hash").
    pub hash_version: &'static str,
    pub level: usize,
    pub parents: Vec<&'a str>,
    pub need_build: bool,
    pub exists: Option<bool>,
    pub digest: Option<&'a str>,
    pub reason: &'a str,
    /// With `runners:`: the platforms to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_platforms: Option<&'a [String]>,
    /// With `runners:`: whether `merge` writes the content tag.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub merge: bool,
}

/// A bake target name for an image (`devbox/omos` → `devbox_omos`).
pub fn bake_target(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn matrix_entry(spec: &ImageSpec, hash: &ImageHash) -> MatrixEntry {
    MatrixEntry {
        name: spec.name.clone(),
        variant: spec.variant.clone().unwrap_or_default(),
        image: hash.image.clone(),
        tag: hash.tag.clone(),
        hash: hash.full.clone(),
        dockerfile: spec.dockerfile.clone(),
        context: spec.context.clone(),
        build_args: build_args_text(&hash.build_args),
        tags: hash.image.clone(),
        platforms: spec.platforms.join(","),
        target: spec.target.clone().unwrap_or_default(),
        level: spec.level,
        parents: spec
            .parents
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        platform: None,
        runner: None,
    }
}

/// The entries of one image to build: one (all platforms, pushing the content tag) without
/// `runners:`; with them, one per platform to build, each pushing its per-platform tag on its
/// platform's runner. `build_args` stay the parents' content tags: in the documented pipeline a
/// level's platform jobs run after the previous level's `merge`, so each parent's content tag
/// is an index the job pulls its own platform from.
pub fn image_entries(spec: &ImageSpec, hash: &ImageHash, decision: &Decision) -> Vec<MatrixEntry> {
    let base = matrix_entry(spec, hash);
    if spec.runners.is_empty() {
        return vec![base];
    }
    let platforms = decision.platforms.as_ref().unwrap_or(&spec.platforms);
    platforms
        .iter()
        .map(|p| {
            let tag = crate::fanout::platform_tag(&hash.tag, p);
            MatrixEntry {
                tags: format!("{}:{tag}", spec.repository),
                platforms: p.clone(),
                platform: Some(p.clone()),
                runner: Some(crate::fanout::runner_of(spec, p).to_string()),
                ..base.clone()
            }
        })
        .collect()
}

/// `{"include":[…]}` of the given entries, batched when over `max_jobs`.
pub fn matrix_json(entries: &[MatrixEntry], max_jobs: usize) -> String {
    #[derive(Serialize)]
    struct M<T> {
        include: Vec<T>,
    }
    if entries.len() <= max_jobs {
        return serde_json::to_string(&M {
            include: entries.to_vec(),
        })
        .unwrap_or_else(|_| r#"{"include":[]}"#.into());
    }
    let jobs = max_jobs.max(1);
    // A batch never mixes platforms or runners (one job runs on one runner and builds for its
    // platform): entries are grouped by (platform, runner) first, in order of appearance.
    let mut groups: Vec<Vec<&MatrixEntry>> = Vec::new();
    for e in entries {
        match groups
            .iter_mut()
            .find(|g| g[0].platform == e.platform && g[0].runner == e.runner)
        {
            Some(g) => g.push(e),
            None => groups.push(vec![e]),
        }
    }
    // Batches never mix levels when that fits: a child must not build beside its parent.
    let mut levels: Vec<Vec<&MatrixEntry>> = Vec::new();
    for g in &groups {
        for e in g {
            match levels.last_mut() {
                Some(l)
                    if l[0].level == e.level
                        && l[0].platform == e.platform
                        && l[0].runner == e.runner =>
                {
                    l.push(e)
                }
                _ => levels.push(vec![e]),
            }
        }
    }
    let mut per = entries.len().div_ceil(jobs);
    while levels.iter().map(|l| l.len().div_ceil(per)).sum::<usize>() > jobs && per < entries.len()
    {
        per += 1;
    }
    let mut chunks: Vec<Vec<&MatrixEntry>> = Vec::new();
    if levels.iter().map(|l| l.len().div_ceil(per)).sum::<usize>() <= jobs {
        for l in &levels {
            chunks.extend(l.chunks(per).map(|c| c.to_vec()));
        }
    } else {
        // More levels than jobs: mix levels, in order (parents first within the list), but
        // never platforms. With more platform groups than jobs, each group still gets a job.
        let mut per = entries.len().div_ceil(jobs);
        while groups.iter().map(|g| g.len().div_ceil(per)).sum::<usize>() > jobs
            && per < entries.len()
        {
            per += 1;
        }
        for g in &groups {
            chunks.extend(g.chunks(per).map(|c| c.to_vec()));
        }
    }
    let n = chunks.len();
    let batches: Vec<Batch> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| Batch {
            batch: format!("{}/{n}", i + 1),
            count: c.len(),
            images: c
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            targets: c
                .iter()
                .map(|e| bake_target(&e.name))
                .collect::<Vec<_>>()
                .join(" "),
            level: c.iter().map(|e| e.level).max().unwrap_or(0),
            platform: c[0].platform.clone(),
            runner: c[0].runner.clone(),
        })
        .collect();
    serde_json::to_string(&M { include: batches }).unwrap_or_else(|_| r#"{"include":[]}"#.into())
}

/// A boolean output: `true`, or the empty string for false.
///
/// GitHub's and act's expressions treat every non-empty string as true, so a job guarded with the
/// bare `if: needs.decide.outputs.need_build` would *run* on the string `false` (and a matrix job
/// would then fail on its empty matrix). The empty string is the only string that is false, and
/// `== 'true'` keeps working with it.
pub fn flag(b: bool) -> String {
    if b {
        "true".to_string()
    } else {
        String::new()
    }
}

/// The deepest level a config may have while `variants_matrix` still holds every image with a
/// parent: one build-variants job after build-base. Deeper, `variants_matrix` would put a child in
/// the same job as its parent, built `FROM` the parent's old digest.
pub const VARIANTS_MAX_LEVEL: usize = 1;

/// The warning decide prints for configs deeper than two levels.
pub fn deep_config_warning(max_level: usize) -> Option<String> {
    (max_level > VARIANTS_MAX_LEVEL).then(|| {
        format!(
            "this config has {} levels: `variants_matrix` / `variants_need_build` hold level 1 only \
             (a child must not build in the same job as its parent); build levels 2–{max_level} \
             with one job per level from `matrix_levels` / `levels_need_build` \
             (see examples/workflows/levels-github.yml)",
            max_level + 1
        )
    })
}

/// Every output of `decide`.
pub fn decide_outputs(
    config: &Config,
    hashes: &[ImageHash],
    decisions: &[Decision],
    dry_run: bool,
    max_jobs: usize,
) -> Outputs {
    let mut o = Outputs::new();
    let build: Vec<usize> = if dry_run {
        Vec::new()
    } else {
        (0..decisions.len())
            .filter(|i| decisions[*i].need_build)
            .collect()
    };
    let entry = |i: usize| image_entries(&config.images[i], &hashes[i], &decisions[i]);
    let all: Vec<MatrixEntry> = build.iter().flat_map(|&i| entry(i)).collect();
    // Level 1 only: deeper images sit on level-1 images and must wait for them (see
    // `VARIANTS_MAX_LEVEL`). For two-level configs this is every image with a parent, as before.
    let variants: Vec<MatrixEntry> = build
        .iter()
        .filter(|&&i| config.images[i].level == VARIANTS_MAX_LEVEL)
        .flat_map(|&i| entry(i))
        .collect();

    o.set("need_build", flag(!all.is_empty()));
    let roots: Vec<usize> = (0..config.images.len())
        .filter(|i| config.images[*i].parents.is_empty())
        .collect();
    if let [r] = roots[..] {
        let base_build = !dry_run && decisions[r].need_build;
        o.set("base_need_build", flag(base_build));
        o.set("base_image", hashes[r].image.clone());
        o.set("base_tag", hashes[r].tag.clone());
        o.set("base_hash", hashes[r].full.clone());
        // What the base job builds with, from the config (not hard-coded in the workflow): a
        // base `args:` value enters the hash, so it must reach the build too.
        let spec = &config.images[r];
        o.set("base_dockerfile", spec.dockerfile.clone());
        o.set("base_context", spec.context.clone());
        o.set("base_build_args", build_args_text(&hashes[r].build_args));
        o.set("base_platforms", spec.platforms.join(","));
        o.set("base_target", spec.target.clone().unwrap_or_default());
        let es = if base_build {
            image_entries(spec, &hashes[r], &decisions[r])
        } else {
            Vec::new()
        };
        o.set("base_matrix", matrix_json(&es, max_jobs));
    } else {
        for k in [
            "base_need_build",
            "base_image",
            "base_tag",
            "base_hash",
            "base_dockerfile",
            "base_context",
            "base_build_args",
            "base_platforms",
            "base_target",
        ] {
            o.set(k, "");
        }
        o.set("base_matrix", r#"{"include":[]}"#);
    }
    o.set("variants_need_build", flag(!variants.is_empty()));
    o.set("variants_matrix", matrix_json(&variants, max_jobs));
    o.set("matrix", matrix_json(&all, max_jobs));

    // Level by level, for deep DAGs: matrix_levels[N] holds level N's images.
    let max_level = config.images.iter().map(|s| s.level).max().unwrap_or(0);
    let levels: Vec<serde_json::Value> = (0..=max_level)
        .map(|l| {
            let es: Vec<MatrixEntry> = all.iter().filter(|e| e.level == l).cloned().collect();
            serde_json::from_str(&matrix_json(&es, max_jobs)).unwrap_or_default()
        })
        .collect();
    let level_flags: Vec<bool> = (0..=max_level)
        .map(|l| all.iter().any(|e| e.level == l))
        .collect();
    o.set(
        "matrix_levels",
        serde_json::Value::Array(levels).to_string(),
    );
    o.set(
        "levels_need_build",
        serde_json::to_string(&level_flags).unwrap_or_default(),
    );
    // `runners:`: what `merge` writes, all at once and level by level (a level's merge runs
    // after its platform jobs and before the next level, whose jobs pull these content tags).
    let merge: Vec<usize> = if dry_run {
        Vec::new()
    } else {
        (0..decisions.len())
            .filter(|i| decisions[*i].merge)
            .collect()
    };
    let names = |it: &mut dyn Iterator<Item = &usize>| {
        it.map(|&i| config.images[i].name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    o.set("merge_needed", flag(!merge.is_empty()));
    o.set("merge_images", names(&mut merge.iter()));
    let merge_levels: Vec<String> = (0..=max_level)
        .map(|l| names(&mut merge.iter().filter(|&&i| config.images[i].level == l)))
        .collect();
    o.set(
        "merge_levels",
        serde_json::to_string(&merge_levels).unwrap_or_else(|_| "[]".into()),
    );
    o.set("plan", plan_json(config, hashes, decisions));
    o.set("dry_run", flag(dry_run));
    o.set("build_count", all.len().to_string());
    per_image_outputs(&mut o, config, hashes, &build);
    o
}

/// Most images whose build settings the `images` output carries.
pub const MAX_IMAGES_OUTPUT: usize = 256;

/// `images_need_build` (image name → `true`/`false`) and `images` (image name → its matrix entry:
/// `image`, `tags`, `build_args`, `dockerfile`, `context`, `platforms`, …): what a workflow with
/// one fixed job per image (Gitea before dynamic matrices) guards and builds each job with, as
/// `fromJSON(steps.d.outputs.images_need_build)['devbox/omos']`. The build settings come from the
/// config through decide, never retyped in the workflow, where they could drift from what the
/// hash covers. One JSON object each, not one output per image: a composite action forwards only
/// the outputs it declares, and bracket indexing takes names with `/` as they are.
///
/// `images` is `{}` past [`MAX_IMAGES_OUTPUT`] images (a matrix entry is about half a KiB, and
/// GitHub caps a job output at 1 MB); a fixed job then finds no settings and builds nothing, and
/// promote blocks on the missing tag, never a silent skip. `images_need_build` is always complete.
fn per_image_outputs(o: &mut Outputs, config: &Config, hashes: &[ImageHash], build: &[usize]) {
    let build: std::collections::BTreeSet<usize> = build.iter().copied().collect();
    let mut need = serde_json::Map::new();
    let mut refs = serde_json::Map::new();
    let with_settings = config.images.len() <= MAX_IMAGES_OUTPUT;
    if !with_settings {
        tracing::info!(
            images = config.images.len(),
            "more than {MAX_IMAGES_OUTPUT} images: the `images` output is empty (one fixed job per image is for small families; use the matrices)"
        );
    }
    for (i, s) in config.images.iter().enumerate() {
        need.insert(s.name.clone(), serde_json::Value::Bool(build.contains(&i)));
        if with_settings {
            refs.insert(
                s.name.clone(),
                serde_json::to_value(matrix_entry(s, &hashes[i])).unwrap_or_default(),
            );
        }
    }
    o.set(
        "images_need_build",
        serde_json::Value::Object(need).to_string(),
    );
    o.set("images", serde_json::Value::Object(refs).to_string());
}

/// The `plan` output: every image, built or not.
pub fn plan_json(config: &Config, hashes: &[ImageHash], decisions: &[Decision]) -> String {
    let entries: Vec<PlanEntry> = config
        .images
        .iter()
        .zip(hashes)
        .zip(decisions)
        .map(|((s, h), d)| PlanEntry {
            name: &s.name,
            variant: s.variant.as_deref(),
            image: &h.image,
            tag: &h.tag,
            hash: &h.full,
            hash_version: crate::hash::HASH_DEFINITION,
            level: s.level,
            parents: s.parents.iter().map(|p| p.name.as_str()).collect(),
            need_build: d.need_build,
            exists: d.exists,
            digest: d.digest.as_deref(),
            reason: &d.reason,
            build_platforms: d.platforms.as_deref(),
            merge: d.merge,
        })
        .collect();
    serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into())
}

/// Markdown summary: a headline and a table (image, tag, decision, reason). Long plans list the
/// images to build and count the rest, so the summary stays readable at 12,800 images.
pub fn summary_markdown(
    config: &Config,
    hashes: &[ImageHash],
    decisions: &[Decision],
    dry_run: bool,
) -> String {
    const MAX_ROWS: usize = 200;
    let n_build = decisions.iter().filter(|d| d.need_build).count();
    let mut s = String::new();
    s.push_str("### skip-action: decide\n\n");
    if dry_run {
        s.push_str("**Dry run**: nothing will be built, pushed or promoted. The plan below is what a real run would do.\n\n");
    }
    s.push_str(&format!(
        "{n_build} of {} image(s) to build, {} reused. Content tags use hash definition {}.\n\n",
        decisions.len(),
        decisions.len() - n_build,
        crate::hash::HASH_DEFINITION
    ));
    s.push_str("| image | tag | decision | reason |\n|---|---|---|---|\n");
    let mut rows = 0;
    let mut hidden = 0;
    // Images to build first, then the reused ones.
    let order = (0..decisions.len())
        .filter(|i| decisions[*i].need_build)
        .chain((0..decisions.len()).filter(|i| !decisions[*i].need_build));
    for i in order {
        if rows >= MAX_ROWS {
            hidden += 1;
            continue;
        }
        let d = &decisions[i];
        s.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            md_escape(&config.images[i].name),
            md_escape(&hashes[i].tag),
            decision_cell(d),
            md_escape(&d.reason)
        ));
        rows += 1;
    }
    if hidden > 0 {
        s.push_str(&format!(
            "\n… and {hidden} more (see the `plan` output for every image).\n"
        ));
    }
    s
}

/// The summary's decision: `build`, `build linux/arm64` (per platform, when not every platform
/// of the image builds), `merge` (every platform pushed, the content tag still to write) or
/// `reuse`.
fn decision_cell(d: &Decision) -> String {
    match (&d.platforms, d.need_build, d.merge) {
        (Some(ps), true, _) => format!("build {}", ps.join(", ")),
        (_, true, _) => "build".into(),
        (_, false, true) => "merge".into(),
        _ => "reuse".into(),
    }
}

/// `K=V` lines (shared by the matrices here and `hash --json` / `inputs --json`), ready for docker/build-push-action's `build-args`.
pub fn build_args_text(args: &std::collections::BTreeMap<String, String>) -> String {
    args.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize) -> Vec<MatrixEntry> {
        (0..n)
            .map(|i| MatrixEntry {
                name: format!("app/v{i}"),
                variant: format!("v{i}"),
                image: String::new(),
                tag: String::new(),
                hash: String::new(),
                dockerfile: String::new(),
                context: String::new(),
                build_args: String::new(),
                tags: String::new(),
                platforms: String::new(),
                target: String::new(),
                level: 1,
                parents: String::new(),
                platform: None,
                runner: None,
            })
            .collect()
    }

    fn include_len(json: &str) -> usize {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["include"].as_array().unwrap().len()
    }

    #[test]
    fn small_matrices_list_images() {
        let j = matrix_json(&entries(3), 256);
        assert_eq!(include_len(&j), 3);
        assert!(j.contains(r#""name":"app/v0""#));
        assert_eq!(matrix_json(&[], 256), r#"{"include":[]}"#);
    }

    #[test]
    fn large_matrices_are_batched_within_max_jobs() {
        for (n, max) in [(257, 256), (12_800, 256), (1000, 7), (10, 1)] {
            let j = matrix_json(&entries(n), max);
            let v: serde_json::Value = serde_json::from_str(&j).unwrap();
            let inc = v["include"].as_array().unwrap();
            assert!(
                inc.len() <= max,
                "{n} images, {max} jobs: {} entries",
                inc.len()
            );
            let total: u64 = inc.iter().map(|b| b["count"].as_u64().unwrap()).sum();
            assert_eq!(total as usize, n);
            let names: usize = inc
                .iter()
                .map(|b| b["images"].as_str().unwrap().split(',').count())
                .sum();
            assert_eq!(names, n);
            assert!(inc[0]["targets"].as_str().unwrap().starts_with("app_v0 "));
        }
    }

    #[test]
    fn batches_do_not_mix_levels_when_they_fit() {
        let mut es = entries(300);
        for e in es.iter_mut().take(100) {
            e.level = 0;
        }
        let v: serde_json::Value = serde_json::from_str(&matrix_json(&es, 10)).unwrap();
        let inc = v["include"].as_array().unwrap();
        assert!(inc.len() <= 10);
        for b in inc {
            let names: Vec<&str> = b["images"].as_str().unwrap().split(',').collect();
            let levels: std::collections::BTreeSet<usize> = names
                .iter()
                .map(|n| es.iter().find(|e| e.name == *n).unwrap().level)
                .collect();
            assert_eq!(levels.len(), 1, "{b}");
        }
        // More levels than jobs still stays within max_jobs.
        let mut es = entries(5);
        for (i, e) in es.iter_mut().enumerate() {
            e.level = i;
        }
        let v: serde_json::Value = serde_json::from_str(&matrix_json(&es, 2)).unwrap();
        assert!(v["include"].as_array().unwrap().len() <= 2);
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        assert_eq!(md_escape("a|b\nc<script>"), "a\\|b c&lt;script&gt;");
    }
}
