//! What `decide` tells the workflow: the outputs (names are a contract), the job matrices and the
//! Markdown summary. Pure: values in, strings out; [`crate::github::output`] writes them.
//!
//! GitHub rejects an empty matrix and any matrix over 256 jobs, any job output over 1 MB, and a
//! composite action evaluates every output it declares (the runner's expression evaluator has a
//! memory cap). So every output here is bounded *by design*, not by chance:
//! - a matrix is `{"include":[…]}` with at most `max_jobs` entries. It lists one entry per image
//!   while that fits ([`MATRIX_MAX_BYTES`]); past it, each entry *names* a batch
//!   (`{"batch":"level1-007of255","count":25,"level":1,"select":"…"}`) instead of listing its
//!   images. A batch is a pure function of the config (a contiguous bucket of one level's images in
//!   config order, see [`BatchId`]); `select` says which of its images decide found to build. The
//!   build job expands it from the same commit with `skip-action bake --batch ID --select SEL`, so
//!   nothing passes between jobs but the matrix entry (Gitea has no v4 artifacts). An entry's size
//!   does not grow with the batch: a name, three numbers and one hex bit per image.
//! - `plan` holds whole entries while they fit in [`PLAN_MAX_BYTES`], and `plan_omitted` counts
//!   the rest; the whole plan is always in the file `plan_file` names.

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

/// Budgets, one per output that grows with the config: the most each value may weigh, in bytes.
/// GitHub takes at most 1 MB per job output and 1 MiB for a step's outputs together, and a
/// composite action evaluates every output it declares, read or not. The budgets together, with
/// [`SMALL_OUTPUTS_MAX_BYTES`] for every other output and the names, stay under 1 MiB (a unit test
/// adds them up), so the bound holds for every config, not for the ones tried. Each output keeps
/// to its budget by a rule that depends on the config only (a per-image matrix becomes batches,
/// `plan` keeps the entries that fit, the per-image objects become `{}`, the merge lists become
/// selections); [`check_budgets`] refuses, with what to change, the few pathological configs no
/// rule covers (thousands of levels, runner labels of kilobytes), rather than write an output
/// GitHub would reject.
///
/// `matrix` and `variants_matrix`: one entry per image while they fit this (and `max_jobs`), else
/// batches.
pub const MATRIX_MAX_BYTES: usize = 128 * 1024;
/// `base_matrix`: the base's own entries (one per platform with `runners:`), else batches.
pub const BASE_MATRIX_MAX_BYTES: usize = 16 * 1024;
/// `matrix_levels`, all levels together, in per-image form; past it every level holds batches.
pub const LEVELS_MAX_BYTES: usize = 256 * 1024;
/// `level_matrix` (`decide --level N`, the gate of one level's job): one entry per image while
/// it fits, else batches (the level jobs build both).
pub const LEVEL_MATRIX_MAX_BYTES: usize = 64 * 1024;
/// `plan`: the whole entries that fit; the whole plan is in `plan_file`.
pub const PLAN_MAX_BYTES: usize = 192 * 1024;
/// `images` (build settings per image): every image while the object fits, else `{}`.
pub const IMAGES_MAX_BYTES: usize = 96 * 1024;
/// `images_need_build`: every image while the object, weighed as if every value were `false`,
/// fits, else `{}` (about 2,300 images with names of a dozen characters).
pub const IMAGES_NEED_BUILD_MAX_BYTES: usize = 48 * 1024;
/// `merge_images`: names while the list of every image with `runners:` fits, else a selection.
pub const MERGE_IMAGES_MAX_BYTES: usize = 32 * 1024;
/// `merge_levels`: names while the lists of every image with `runners:` fit, else selections.
pub const MERGE_LEVELS_MAX_BYTES: usize = 32 * 1024;
/// `levels_need_build`: one flag per level (about 1,300 levels).
pub const LEVELS_NEED_BUILD_MAX_BYTES: usize = 8 * 1024;
/// Every other output (flags, counts, the base's settings, `plan_file`'s path) and every
/// output's name, together.
pub const SMALL_OUTPUTS_MAX_BYTES: usize = 16 * 1024;
/// What GitHub takes for a step's outputs together.
pub const ALL_OUTPUTS_MAX_BYTES: usize = 1024 * 1024;

/// Each budgeted output, its budget, and what to change when a config exceeds it.
pub const BUDGETS: &[(&str, usize, &str)] = &[
    (
        "plan",
        PLAN_MAX_BYTES,
        "this is a bug: `plan` keeps what fits",
    ),
    (
        "matrix",
        MATRIX_MAX_BYTES,
        "lower `max-jobs`, or shorten the platforms' runner labels",
    ),
    (
        "variants_matrix",
        MATRIX_MAX_BYTES,
        "lower `max-jobs`, or shorten the platforms' runner labels",
    ),
    (
        "base_matrix",
        BASE_MATRIX_MAX_BYTES,
        "give the base fewer platforms, or shorter runner labels",
    ),
    (
        "matrix_levels",
        LEVELS_MAX_BYTES,
        "make the DAG shallower: even one batch per level does not fit",
    ),
    (
        "level_matrix",
        LEVEL_MATRIX_MAX_BYTES,
        "lower `max-jobs`, or shorten the platforms' runner labels",
    ),
    (
        "images",
        IMAGES_MAX_BYTES,
        "this is a bug: `images` is `{}` past its budget",
    ),
    (
        "images_need_build",
        IMAGES_NEED_BUILD_MAX_BYTES,
        "this is a bug: `images_need_build` is `{}` past its budget",
    ),
    (
        "merge_images",
        MERGE_IMAGES_MAX_BYTES,
        "split the config (a selection takes a quarter byte per image with `runners:`)",
    ),
    (
        "merge_levels",
        MERGE_LEVELS_MAX_BYTES,
        "make the DAG shallower, or split the config",
    ),
    (
        "levels_need_build",
        LEVELS_NEED_BUILD_MAX_BYTES,
        "make the DAG shallower (one flag per level)",
    ),
];

/// Refuse outputs over their budgets (exit 2, naming the output, its size and what to change)
/// before anything is written: GitHub would reject them, or the runner's expression evaluator
/// fail on them, with a message that names neither. The rules that build each output keep to
/// these budgets for every config short of the pathological, so this refuses nothing else.
pub fn check_budgets(o: &Outputs) -> anyhow::Result<()> {
    check_each(o, "")
}

/// [`check_budgets`], with `note` after the size in the message.
fn check_each(o: &Outputs, note: &str) -> anyhow::Result<()> {
    let mut small = 0;
    for (k, v) in o.iter() {
        small += k.len();
        match BUDGETS.iter().find(|b| b.0 == k) {
            Some(&(_, budget, what)) if v.len() > budget => crate::bail_usage!(
                "decide: the `{k}` output would weigh {} bytes{note}, over its budget of {budget} \
                 (GitHub takes 1 MB per output and 1 MiB for a step's outputs together): {what}",
                v.len()
            ),
            Some(_) => {}
            None => small += v.len(),
        }
    }
    if small > SMALL_OUTPUTS_MAX_BYTES {
        crate::bail_usage!(
            "decide: the small outputs (flags, counts, the base's settings) and the outputs' \
             names weigh {small} bytes together, over their budget of {SMALL_OUTPUTS_MAX_BYTES}: \
             shorten the base image's `args:` values or its paths"
        );
    }
    Ok(())
}

/// How many batches each level of `matrix_levels` (and the gate's `level_matrix`, which names
/// the same buckets) is cut into: `max_jobs`, or fewer when the levels' batch matrices, weighed
/// with every unit to build, would pass [`LEVELS_MAX_BYTES`] together — a deep DAG at scale, each
/// level a job of up to `max_jobs` batches. A function of the config and `max_jobs` only, so a
/// re-run and the gate cut the same buckets.
pub fn level_jobs(config: &Config, max_jobs: usize) -> usize {
    let units = config_units(config, |_, _| true);
    let max_level = config.images.iter().map(|s| s.level).max().unwrap_or(0);
    // `[m0,m1,…]`
    let weight = |jobs: usize| -> usize {
        1 + (0..=max_level)
            .map(|l| batch_matrix(level_batches(&units, l, jobs)).len() + 1)
            .sum::<usize>()
    };
    if max_jobs <= 1 || weight(max_jobs) <= LEVELS_MAX_BYTES {
        return max_jobs;
    }
    // The most jobs that fit: weight(lo) fits (or lo is 1), weight(hi) does not.
    let (mut lo, mut hi) = (1, max_jobs);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if weight(mid) <= LEVELS_MAX_BYTES {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Refuse, before the registry is asked, a config whose matrices in batch form could pass their
/// budgets: they are weighed as if every unit of the config were to build (the most a batch
/// matrix can weigh: every bucket has an entry, each count its most digits), so whether a config
/// is refused depends on the config and `max_jobs` only, never on what a run finds to build. A
/// per-image matrix is capped by its budget as it is made, so with this check no matrix decide
/// writes can pass its budget. Exit 2, as [`check_budgets`].
pub fn check_batch_budgets(config: &Config, max_jobs: usize) -> anyhow::Result<()> {
    let units = config_units(config, |_, _| true);
    let max_level = config.images.iter().map(|s| s.level).max().unwrap_or(0);
    let mut o = Outputs::new();
    o.set("matrix", batch_matrix(all_batches(&units, max_jobs)));
    o.set(
        "variants_matrix",
        batch_matrix(level_batches(&units, VARIANTS_MAX_LEVEL, max_jobs)),
    );
    let jobs = level_jobs(config, max_jobs);
    let levels: Vec<String> = (0..=max_level)
        .map(|l| batch_matrix(level_batches(&units, l, jobs)))
        .collect();
    o.set("matrix_levels", format!("[{}]", levels.join(",")));
    if let Some(widest) = levels.iter().max_by_key(|m| m.len()) {
        o.set("level_matrix", widest.clone());
    }
    let roots: Vec<usize> = (0..config.images.len())
        .filter(|&i| config.images[i].parents.is_empty())
        .collect();
    if let [r] = roots[..] {
        let base = config_units(config, |i, _| i == r);
        let level = config.images[r].level;
        o.set(
            "base_matrix",
            batch_matrix(level_batches(&base, level, max_jobs)),
        );
    }
    check_each(&o, " with every image to build")
}

/// One batch of images for one job, by name: the job expands it from the config.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Batch {
    /// The bucket, e.g. `level1-007of255` ([`BatchId`]).
    pub batch: String,
    /// How many of its images to build.
    pub count: usize,
    pub level: usize,
    /// `<key>-<mask>`: `key` is 8 hex digits of the SHA-256 of the bucket's image names (so a job
    /// on another commit, whose bucket differs, refuses instead of building the wrong images);
    /// `mask` has one bit per image of the bucket, in config order, most significant bit first,
    /// set when decide found it must be built.
    pub select: String,
    /// With `runners:`: the one platform every image of the batch builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// With `runners:`: the one runner of the batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
}

/// What a batch entry's bucket is: all units of `level` (or of the whole config, `level` None,
/// only when there are more scopes than jobs) in one `lane` (with `runners:`, one platform on one
/// runner; a batch never mixes platforms or runners), in config order, cut into `of` contiguous
/// buckets of near-equal size; this is bucket `index` (1-based). A pure function of the config,
/// so the build job (and a re-run of it alone) finds the same images decide meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchId {
    pub level: Option<usize>,
    /// With `runners:`: the platform (as in its per-platform tag, `_` for `-`: `linux_arm64`) and
    /// the runner's 1-based rank among that platform's runner labels in the config, sorted.
    pub lane: Option<(String, usize)>,
    pub index: usize,
    pub of: usize,
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.of.to_string().len();
        match self.level {
            Some(l) => write!(f, "level{l}-")?,
            None => write!(f, "all-")?,
        }
        if let Some((p, r)) = &self.lane {
            write!(f, "{p}-r{r}-")?;
        }
        write!(f, "{:0w$}of{}", self.index, self.of)
    }
}

impl std::str::FromStr for BatchId {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let bad = || {
            crate::error::usage(format!(
                "--batch {s:?} is not a batch name like `level1-007of255`, `all-03of12` or \
                 `level1-linux_arm64-r1-007of255`: pass a matrix entry's `batch` as decide wrote it"
            ))
        };
        let parts: Vec<&str> = s.trim().split('-').collect();
        let (first, last) = match parts.as_slice() {
            [f, .., l] => (*f, *l),
            _ => return Err(bad()),
        };
        let level = if first == "all" {
            None
        } else {
            let l = first.strip_prefix("level").ok_or_else(bad)?;
            Some(l.parse::<usize>().map_err(|_| bad())?)
        };
        let lane = match &parts[1..parts.len() - 1] {
            [] => None,
            [p, r] if !p.is_empty() => {
                let r = r.strip_prefix('r').ok_or_else(bad)?;
                let r: usize = r.parse().map_err(|_| bad())?;
                if r == 0 {
                    return Err(bad());
                }
                Some((p.to_string(), r))
            }
            _ => return Err(bad()),
        };
        let (i, of) = last.split_once("of").ok_or_else(bad)?;
        let index: usize = i.parse().map_err(|_| bad())?;
        let of: usize = of.parse().map_err(|_| bad())?;
        if index == 0 || of == 0 || index > of {
            return Err(bad());
        }
        Ok(BatchId {
            level,
            lane,
            index,
            of,
        })
    }
}

/// One planned unit, in config order: what batches are cut from. An image, or with `runners:`
/// an image × one of its platforms (every platform of the config, whether it builds or not, so
/// the buckets do not depend on the registry).
#[derive(Debug, Clone, Copy)]
pub struct Unit<'a> {
    pub name: &'a str,
    pub level: usize,
    pub build: bool,
    /// With `runners:`: the platform, as the config spells it.
    pub platform: Option<&'a str>,
    /// With `runners:`: the platform's runner label.
    pub runner: Option<&'a str>,
}

/// The units of a config, in config order: one per image, or one per platform of an image with
/// `runners:` (in its `platforms:` order). `build(i, platform)` says whether decide builds it.
pub fn config_units<'a>(
    config: &'a Config,
    build: impl Fn(usize, Option<&str>) -> bool,
) -> Vec<Unit<'a>> {
    let mut out = Vec::new();
    for (i, s) in config.images.iter().enumerate() {
        if s.runners.is_empty() {
            out.push(Unit {
                name: &s.name,
                level: s.level,
                build: build(i, None),
                platform: None,
                runner: None,
            });
            continue;
        }
        for p in &s.platforms {
            out.push(Unit {
                name: &s.name,
                level: s.level,
                build: build(i, Some(p)),
                platform: Some(p),
                runner: Some(crate::fanout::runner_of(s, p)),
            });
        }
    }
    out
}

type Lane = Option<(String, usize)>;

/// Each unit's lane ([`BatchId::lane`]): a function of the config's platforms and runners only.
fn lanes(units: &[Unit]) -> Vec<Lane> {
    // Each platform spelling parsed once: a config has a handful, and 25,600 units ask.
    let mut tokens: std::collections::HashMap<&str, String> = Default::default();
    for u in units {
        if let Some(p) = u.platform {
            tokens
                .entry(p)
                .or_insert_with(|| crate::fanout::platform_suffix(p).replace('-', "_"));
        }
    }
    let mut runners: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for u in units {
        if let (Some(p), Some(r)) = (u.platform, u.runner) {
            runners.entry(tokens[p].as_str()).or_default().insert(r);
        }
    }
    units
        .iter()
        .map(|u| {
            let (p, r) = (u.platform?, u.runner?);
            let t = tokens[p].as_str();
            let rank = runners[t].iter().position(|x| *x == r).unwrap_or(0) + 1;
            Some((t.to_string(), rank))
        })
        .collect()
}

/// Bucket `index` (1-based) of `n` items cut into `of` contiguous near-equal buckets.
fn bucket(n: usize, of: usize, index: usize) -> std::ops::Range<usize> {
    let at = |i: usize| i * n / of;
    at(index - 1)..at(index)
}

/// The units in a batch's scope (a level, or all, of one lane), as indices in config order.
fn scope(units: &[Unit], lanes: &[Lane], level: Option<usize>, lane: &Lane) -> Vec<usize> {
    (0..units.len())
        .filter(|&i| level.is_none_or(|l| units[i].level == l) && lanes[i] == *lane)
        .collect()
}

fn bucket_key(units: &[Unit], members: &[usize]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for &i in members {
        h.update(units[i].name.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mask_hex(bits: &[bool]) -> String {
    bits.chunks(4)
        .map(|c| {
            let v = c
                .iter()
                .enumerate()
                .fold(0u32, |a, (j, &b)| a | (u32::from(b) << (3 - j)));
            char::from_digit(v, 16).unwrap_or('0')
        })
        .collect()
}

/// The non-empty batches of a scope cut into `of` buckets.
fn batches_of(
    units: &[Unit],
    lanes: &[Lane],
    level: Option<usize>,
    lane: &Lane,
    of: usize,
) -> Vec<Batch> {
    let members = scope(units, lanes, level, lane);
    let of = of.clamp(1, members.len().max(1));
    (1..=of)
        .filter_map(|index| {
            let m = &members[bucket(members.len(), of, index)];
            let bits: Vec<bool> = m.iter().map(|&i| units[i].build).collect();
            let count = bits.iter().filter(|b| **b).count();
            (count > 0).then(|| Batch {
                batch: BatchId {
                    level,
                    lane: lane.clone(),
                    index,
                    of,
                }
                .to_string(),
                count,
                level: m.iter().map(|&i| units[i].level).max().unwrap_or(0),
                select: format!("{}-{}", bucket_key(units, m), mask_hex(&bits)),
                platform: units[m[0]].platform.map(String::from),
                runner: units[m[0]].runner.map(String::from),
            })
        })
        .collect()
}

/// Buckets per scope: in proportion to its units (at least one each), together at most
/// `max_jobs` (unless there are more scopes than that, which decide refuses for lanes).
fn allocate(
    units: &[Unit],
    lanes: &[Lane],
    scopes: std::collections::BTreeMap<(Option<usize>, Lane), usize>,
    max_jobs: usize,
) -> Vec<Batch> {
    let n: usize = scopes.values().sum::<usize>().max(1);
    let mut alloc: Vec<((Option<usize>, Lane), usize)> = scopes
        .into_iter()
        .map(|(k, c)| (k, (c * max_jobs / n).max(1)))
        .collect();
    while alloc.iter().map(|a| a.1).sum::<usize>() > max_jobs {
        match alloc.iter_mut().filter(|a| a.1 > 1).max_by_key(|a| a.1) {
            Some(a) => a.1 -= 1,
            None => break,
        }
    }
    alloc
        .iter()
        .flat_map(|((l, lane), of)| batches_of(units, lanes, *l, lane, *of))
        .collect()
}

/// Batches of one level: as many buckets as jobs allow, shared among its lanes.
pub fn level_batches(units: &[Unit], level: usize, max_jobs: usize) -> Vec<Batch> {
    let lanes = lanes(units);
    let mut scopes: std::collections::BTreeMap<(Option<usize>, Lane), usize> = Default::default();
    for (u, lane) in units.iter().zip(&lanes) {
        if u.level == level {
            *scopes.entry((Some(level), lane.clone())).or_default() += 1;
        }
    }
    allocate(units, &lanes, scopes, max_jobs)
}

/// Batches of every level in one matrix: each (level, lane) gets buckets in proportion to its
/// units (at least one), all together at most `max_jobs`, so no batch mixes a parent with its
/// child, nor platforms or runners. Only with more of those scopes than jobs are levels mixed
/// (`all-…`, parents first in config order), never lanes.
pub fn all_batches(units: &[Unit], max_jobs: usize) -> Vec<Batch> {
    let lanes = lanes(units);
    let mut scopes: std::collections::BTreeMap<(Option<usize>, Lane), usize> = Default::default();
    for (u, lane) in units.iter().zip(&lanes) {
        *scopes.entry((Some(u.level), lane.clone())).or_default() += 1;
    }
    if scopes.len() > max_jobs {
        scopes.clear();
        for lane in &lanes {
            *scopes.entry((None, lane.clone())).or_default() += 1;
        }
    }
    allocate(units, &lanes, scopes, max_jobs)
}

/// The units a batch entry names, as indices in config order: decide's bucket, checked against
/// the entry's key, filtered by its mask. Errors (exit 2) say what to do.
pub fn expand_batch(units: &[Unit], id: &str, select: &str) -> anyhow::Result<Vec<usize>> {
    let b: BatchId = id.parse()?;
    let lanes = lanes(units);
    let members = scope(units, &lanes, b.level, &b.lane);
    if b.of > members.len().max(1) || members.is_empty() {
        crate::bail_usage!(
            "--batch {id}: this config has {} image(s) in that scope, fewer than {} batches: \
             the config differs from the one decide read; build from the same commit",
            members.len(),
            b.of
        );
    }
    let m = &members[bucket(members.len(), b.of, b.index)];
    let (key, mask) = select.trim().split_once('-').ok_or_else(|| {
        crate::error::usage(format!(
            "--select {select:?} is not `<key>-<mask>`: pass the matrix entry's `select` as decide wrote it"
        ))
    })?;
    if key != bucket_key(units, m) {
        crate::bail_usage!(
            "--batch {id}: its images differ from the ones decide meant (key {key}, here {}): \
             the config differs from the one decide read; build from the same commit",
            bucket_key(units, m)
        );
    }
    let digits: Option<Vec<u32>> = mask.chars().map(|c| c.to_digit(16)).collect();
    let digits = digits
        .filter(|d| d.len() == m.len().div_ceil(4))
        .ok_or_else(|| {
            crate::error::usage(format!(
                "--select {select:?}: the mask must be {} hex digit(s) for the {} image(s) of {id}",
                m.len().div_ceil(4),
                m.len()
            ))
        })?;
    Ok(m.iter()
        .enumerate()
        .filter(|(j, _)| digits[j / 4] & (1 << (3 - j % 4)) != 0)
        .map(|(_, &i)| i)
        .collect())
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

#[derive(Serialize)]
struct Include<T> {
    include: Vec<T>,
}

/// `{"include":[…]}` of one entry per image, when they are at most `max_jobs` and fit in
/// `max_bytes`; `None` when the matrix must hold batches.
pub fn per_image_matrix(
    entries: &[MatrixEntry],
    max_jobs: usize,
    max_bytes: usize,
) -> Option<String> {
    if entries.len() > max_jobs {
        return None;
    }
    serde_json::to_string(&Include {
        include: entries.to_vec(),
    })
    .ok()
    .filter(|j| j.len() <= max_bytes)
}

/// `{"include":[…]}` of batch entries.
pub fn batch_matrix(batches: Vec<Batch>) -> String {
    serde_json::to_string(&Include { include: batches })
        .unwrap_or_else(|_| r#"{"include":[]}"#.into())
}

/// The one place planned units become a matrix: per image while that fits in `max_bytes`, else
/// batches. `entries` are the units to build (in config order) restricted to the matrix's scope;
/// `batches` cuts the same scope into named buckets.
pub fn matrix_json(
    entries: &[MatrixEntry],
    max_jobs: usize,
    max_bytes: usize,
    batches: impl FnOnce() -> Vec<Batch>,
) -> String {
    per_image_matrix(entries, max_jobs, max_bytes).unwrap_or_else(|| batch_matrix(batches()))
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

    // What batches are cut from: every unit of the config (each platform with `runners:`),
    // marked when decide builds it.
    let builds = |i: usize, p: Option<&str>| unit_builds(&decisions[i], dry_run, p);
    let units = config_units(config, builds);

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
        // Past max-jobs (more platforms than jobs: decide refuses that first), the base's own
        // units of its level, as batches.
        let base_units = config_units(config, |i, p| i == r && builds(i, p));
        o.set(
            "base_matrix",
            matrix_json(&es, max_jobs, BASE_MATRIX_MAX_BYTES, || {
                level_batches(&base_units, spec.level, max_jobs)
            }),
        );
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
    o.set(
        "variants_matrix",
        matrix_json(&variants, max_jobs, MATRIX_MAX_BYTES, || {
            level_batches(&units, VARIANTS_MAX_LEVEL, max_jobs)
        }),
    );
    o.set(
        "matrix",
        matrix_json(&all, max_jobs, MATRIX_MAX_BYTES, || {
            all_batches(&units, max_jobs)
        }),
    );

    // Level by level, for deep DAGs: matrix_levels[N] holds level N's images. Per image while
    // every level fits and all of them together stay under LEVELS_MAX_BYTES; else batches.
    let max_level = config.images.iter().map(|s| s.level).max().unwrap_or(0);
    let per_image: Option<Vec<String>> = (0..=max_level)
        .map(|l| {
            let es: Vec<MatrixEntry> = all.iter().filter(|e| e.level == l).cloned().collect();
            per_image_matrix(&es, max_jobs, MATRIX_MAX_BYTES)
        })
        .collect::<Option<Vec<_>>>()
        .filter(|ms| ms.iter().map(String::len).sum::<usize>() <= LEVELS_MAX_BYTES);
    let level_matrices = per_image.unwrap_or_else(|| {
        let jobs = level_jobs(config, max_jobs);
        (0..=max_level)
            .map(|l| batch_matrix(level_batches(&units, l, jobs)))
            .collect()
    });
    let levels: Vec<serde_json::Value> = level_matrices
        .iter()
        .map(|m| serde_json::from_str(m).unwrap_or_default())
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
    o.set("merge_needed", flag(!merge.is_empty()));
    merge_outputs(&mut o, config, &merge, max_level);
    let (plan, omitted) = plan_json_bounded(config, hashes, decisions, PLAN_MAX_BYTES);
    o.set("plan", plan);
    o.set("plan_omitted", omitted.to_string());
    o.set("dry_run", flag(dry_run));
    o.set("build_count", all.len().to_string());
    per_image_outputs(&mut o, config, hashes, &build);
    o
}

/// Whether decide builds image `d` (on `platform`, with `runners:`).
fn unit_builds(d: &Decision, dry_run: bool, platform: Option<&str>) -> bool {
    !dry_run
        && d.need_build
        && platform.is_none_or(|p| {
            d.platforms
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|q| q == p))
        })
}

/// The most `::error::` annotations the gate prints for held images (GitHub shows 10 per step);
/// the rest are plain log lines, so a root failing under 12,800 images stays readable.
pub const HELD_ANNOTATIONS: usize = 50;

/// An image of the gated level held back: its parents that still need building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub image: usize,
    pub waiting: Vec<usize>,
}

impl Held {
    /// `X is held back: its parent Y was not built in this run` (the wording the workflows and
    /// their tests look for).
    pub fn message(&self, config: &Config) -> String {
        let parents: Vec<&str> = self
            .waiting
            .iter()
            .map(|&p| config.images[p].name.as_str())
            .collect();
        format!(
            "{} is held back: its parent{} {} {} not built in this run",
            config.images[self.image].name,
            if parents.len() == 1 { "" } else { "s" },
            parents.join(", "),
            if parents.len() == 1 { "was" } else { "were" },
        )
    }
}

/// What the gate before level N (`decide --level N`) adds to decide's outputs.
#[derive(Debug, Clone)]
pub struct LevelGate {
    /// `{"include":[…]}` of level N's units ready now: per image, or batch entries with the
    /// same bucket names as `matrix_levels[N]` whose `select` holds only ready images.
    pub matrix: String,
    /// How many units `matrix` builds (0: guard the level job off).
    pub count: usize,
    /// Level N's images to build that wait for a parent, in config order.
    pub held: Vec<Held>,
}

impl LevelGate {
    /// `level_matrix`, `level_need_build`, `level_held` (a count: the names are in the errors,
    /// and a list of 12,800 names would not fit the outputs' budget).
    pub fn set_outputs(&self, o: &mut Outputs) {
        o.set("level_matrix", self.matrix.clone());
        o.set("level_need_build", flag(self.count > 0));
        o.set("level_held", self.held.len().to_string());
    }
}

/// The gate before `level`: of the images of that level decide builds, those whose every parent
/// is in place now (no parent needs building, nor, with `runners:`, a `merge`) go into the
/// matrix; the others are held back, so nothing is built `FROM` a parent whose job failed. Run
/// after the lower levels' jobs, it is decide's own answer to "what can level N build now".
pub fn level_gate(
    config: &Config,
    hashes: &[ImageHash],
    decisions: &[Decision],
    dry_run: bool,
    max_jobs: usize,
    level: usize,
) -> LevelGate {
    let index: std::collections::HashMap<&str, usize> = config
        .images
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut held = Vec::new();
    let mut ready = vec![false; config.images.len()];
    for (i, s) in config.images.iter().enumerate() {
        if s.level != level || dry_run || !decisions[i].need_build {
            continue;
        }
        let waiting: Vec<usize> = s
            .parents
            .iter()
            .filter_map(|p| index.get(p.name.as_str()).copied())
            .filter(|&p| decisions[p].need_build || decisions[p].merge)
            .collect();
        if waiting.is_empty() {
            ready[i] = true;
        } else {
            held.push(Held { image: i, waiting });
        }
    }
    let entries: Vec<MatrixEntry> = (0..config.images.len())
        .filter(|&i| ready[i])
        .flat_map(|i| image_entries(&config.images[i], &hashes[i], &decisions[i]))
        .collect();
    let units = config_units(config, |i, p| {
        ready[i] && unit_builds(&decisions[i], dry_run, p)
    });
    let count = units.iter().filter(|u| u.build).count();
    let matrix = matrix_json(&entries, max_jobs, LEVEL_MATRIX_MAX_BYTES, || {
        level_batches(&units, level, level_jobs(config, max_jobs))
    });
    LevelGate {
        matrix,
        count,
        held,
    }
}

/// `decide --level N`: the gate before level N ([`level_gate`]) and every output it changes, on
/// top of decide's own (`level_matrix`, `level_need_build`, `level_held`, and the merge lists
/// without the held images). One function that decide and the scale test both call, so the
/// outputs measured against their budgets are the ones a gate writes.
pub fn gate_outputs(
    o: &mut Outputs,
    config: &Config,
    hashes: &[ImageHash],
    decisions: &[Decision],
    dry_run: bool,
    max_jobs: usize,
    level: usize,
) -> LevelGate {
    let gate = level_gate(config, hashes, decisions, dry_run, max_jobs, level);
    gate.set_outputs(o);
    gate_merge_outputs(o, config, decisions, dry_run, &gate);
    gate
}

/// With `level: N`: `merge_needed`, `merge_images` and `merge_levels` again, without level N's
/// held images. The native workflow merges level N from the gate's `merge_levels[N]` after level
/// N's jobs: a held image was not built in this run (the gate fails naming it), and merging it
/// would either fail with advice that does not apply ("re-run the failed platform job": there was
/// none) or index per-platform images of an earlier run that sit on an older parent. Everything
/// else (a ready image, one needing only its index) stays; the lists keep their form (names or
/// selections), which depends on the config only.
fn gate_merge_outputs(
    o: &mut Outputs,
    config: &Config,
    decisions: &[Decision],
    dry_run: bool,
    gate: &LevelGate,
) {
    let held: std::collections::HashSet<usize> = gate.held.iter().map(|h| h.image).collect();
    let merge: Vec<usize> = if dry_run {
        Vec::new()
    } else {
        (0..decisions.len())
            .filter(|i| decisions[*i].merge && !held.contains(i))
            .collect()
    };
    let max_level = config.images.iter().map(|s| s.level).max().unwrap_or(0);
    o.set("merge_needed", flag(!merge.is_empty()));
    merge_outputs(o, config, &merge, max_level);
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
/// Both hold every image while the object fits its budget, else are `{}`, with a warning that
/// points to the matrices. Where the cut falls depends on the config only: `images` holds the
/// same entries whatever the registry says, and `images_need_build` is weighed as if every value
/// were `false` (the longer literal). Fail-safe: a fixed job that finds no entry reads null
/// (false) and builds nothing, and promote then refuses what decide would have built for (a
/// missing content tag, an image on an older parent), never a silent skip. The exception is
/// `force`: a forced image whose tag exists and is sound is not rebuilt, and promote moves its
/// aliases to the existing build (README: "Scale").
fn per_image_outputs(o: &mut Outputs, config: &Config, hashes: &[ImageHash], build: &[usize]) {
    let build: std::collections::BTreeSet<usize> = build.iter().copied().collect();
    let n = config.images.len();
    // `{"name":false,…}`: the object's size with every value `false`.
    let as_if_false: usize = 2
        + n.saturating_sub(1)
        + config
            .images
            .iter()
            .map(|s| json_str_len(&s.name) + ":false".len())
            .sum::<usize>();
    let need = if as_if_false <= IMAGES_NEED_BUILD_MAX_BYTES {
        let mut need = serde_json::Map::new();
        for (i, s) in config.images.iter().enumerate() {
            need.insert(s.name.clone(), serde_json::Value::Bool(build.contains(&i)));
        }
        serde_json::Value::Object(need).to_string()
    } else {
        crate::github::warning(&format!(
            "{n} images: the `images_need_build` output is `{{}}` (it would weigh {} KiB, over its \
             {} KiB budget): one fixed job per image is for small families; build from the \
             matrices (`matrix`, `matrix_levels`; batches past `max-jobs`). A fixed job guarded \
             by it now builds nothing, and promote refuses the tags it did not build",
            as_if_false / 1024,
            IMAGES_NEED_BUILD_MAX_BYTES / 1024
        ));
        "{}".to_string()
    };
    o.set("images_need_build", need);

    let refs = (n <= MAX_IMAGES_OUTPUT)
        .then(|| {
            let mut refs = serde_json::Map::new();
            for (s, h) in config.images.iter().zip(hashes) {
                refs.insert(
                    s.name.clone(),
                    serde_json::to_value(matrix_entry(s, h)).unwrap_or_default(),
                );
            }
            serde_json::Value::Object(refs).to_string()
        })
        .filter(|j| j.len() <= IMAGES_MAX_BYTES);
    if refs.is_none() {
        tracing::info!(
            images = n,
            "more than {MAX_IMAGES_OUTPUT} images or {} KiB of build settings: the `images` output is empty (one fixed job per image is for small families; use the matrices)",
            IMAGES_MAX_BYTES / 1024
        );
    }
    o.set("images", refs.unwrap_or_else(|| "{}".into()));
}

/// The length of `s` as a JSON string, quotes included.
fn json_str_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(s.len() + 2, |j| j.len())
}

/// The images `merge` reads a selection against: every image with `runners:`, in config order
/// (`merge[i]` marks the ones decide wants merged), and their indices in the config.
fn merge_units<'a>(config: &'a Config, merge: &[bool]) -> (Vec<Unit<'a>>, Vec<usize>) {
    config
        .images
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.runners.is_empty())
        .map(|(i, s)| {
            (
                Unit {
                    name: &s.name,
                    level: s.level,
                    build: merge.get(i).copied().unwrap_or(false),
                    platform: None,
                    runner: None,
                },
                i,
            )
        })
        .unzip()
}

/// A selection: the images with `runners:` of `level` (every level: `None`) that `merge` is to
/// write, named without listing them: `level1-1of1:<key>-<mask>` (`all-1of1:…`), a batch name and
/// its `select` (see [`Batch`]) over those images in config order. `merge --images` expands it
/// from the same commit's config, and refuses (exit 2) a config whose images there differ. Empty
/// when there is nothing to merge. It weighs a quarter byte per image, so the 100,000 images a
/// config may have fit in 25 KiB.
pub fn merge_selection(config: &Config, merge: &[bool], level: Option<usize>) -> String {
    let (units, _) = merge_units(config, merge);
    let lanes = vec![None; units.len()];
    batches_of(&units, &lanes, level, &None, 1)
        .into_iter()
        .next()
        .map(|b| format!("{}:{}", b.batch, b.select))
        .unwrap_or_default()
}

/// Whether an `--images` word is a [`merge_selection`] (image names have no `:`).
pub fn is_merge_selection(word: &str) -> bool {
    word.contains(':')
}

/// The config indices of the images a [`merge_selection`] names. Errors (exit 2) say what to do.
pub fn expand_merge_selection(config: &Config, selection: &str) -> anyhow::Result<Vec<usize>> {
    use anyhow::Context as _;
    let (units, index) = merge_units(config, &[]);
    let (id, select) = selection.trim().split_once(':').ok_or_else(|| {
        crate::error::usage(format!(
            "merge --images {selection:?} is neither image names nor a selection like \
             `level1-1of1:3f9a01c2-a5`: pass decide's `merge_levels[N]` or `merge_images` as it wrote it"
        ))
    })?;
    let ids = expand_batch(&units, id, select)
        .with_context(|| format!("merge --images {selection:?} (a selection decide wrote)"))?;
    Ok(ids.into_iter().map(|i| index[i]).collect())
}

/// `merge_images` (all levels) and `merge_levels` (one value per level): the images' names,
/// comma-separated, while the lists of *every* image with `runners:` fit their budgets (so the
/// form depends on the config only); past that, a [`merge_selection`] each. Either way an empty
/// value means nothing to merge there, and `merge --images` takes the value as it is.
fn merge_outputs(o: &mut Outputs, config: &Config, merge: &[usize], max_level: usize) {
    let n = config.images.len();
    let runner_names = |level: Option<usize>| -> Vec<&str> {
        config
            .images
            .iter()
            .filter(|s| !s.runners.is_empty() && level.is_none_or(|l| s.level == l))
            .map(|s| s.name.as_str())
            .collect()
    };
    let list_len = |names: &[&str]| -> usize {
        names.iter().map(|x| x.len()).sum::<usize>() + names.len().saturating_sub(1)
    };
    let all_len = list_len(&runner_names(None));
    let levels_len: usize = 2
        + max_level
        + (0..=max_level)
            .map(|l| json_str_len(&runner_names(Some(l)).join(",")))
            .sum::<usize>();
    let mut picked = vec![false; n];
    for &i in merge {
        picked[i] = true;
    }
    let names = |level: Option<usize>| -> String {
        merge
            .iter()
            .filter(|&&i| level.is_none_or(|l| config.images[i].level == l))
            .map(|&i| config.images[i].name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let value = |level: Option<usize>, listed: bool| {
        if listed {
            names(level)
        } else {
            merge_selection(config, &picked, level)
        }
    };
    let images_listed = all_len <= MERGE_IMAGES_MAX_BYTES;
    let levels_listed = levels_len <= MERGE_LEVELS_MAX_BYTES;
    if !(images_listed && levels_listed) {
        tracing::info!(
            "the merge lists of this config's images would weigh {} KiB: `merge_images` / `merge_levels` name selections (`level1-1of1:<key>-<mask>`) that merge expands from the config",
            all_len.max(levels_len) / 1024
        );
    }
    o.set("merge_images", value(None, images_listed));
    let levels: Vec<String> = (0..=max_level)
        .map(|l| value(Some(l), levels_listed))
        .collect();
    o.set(
        "merge_levels",
        serde_json::to_string(&levels).unwrap_or_else(|_| "[]".into()),
    );
}

/// The whole plan (the `plan_file`, and `decide --json`): every image, built or not.
pub fn plan_json(config: &Config, hashes: &[ImageHash], decisions: &[Decision]) -> String {
    serde_json::to_string(&plan_entries(config, hashes, decisions)).unwrap_or_else(|_| "[]".into())
}

/// The `plan` output: the plan's first entries, in config order, as many whole ones as fit in
/// `budget` bytes (every one, below a few hundred images), and how many were left out. The
/// sizes depend on the config only, so where the cut falls is the same on every run.
pub fn plan_json_bounded(
    config: &Config,
    hashes: &[ImageHash],
    decisions: &[Decision],
    budget: usize,
) -> (String, usize) {
    let entries = plan_entries(config, hashes, decisions);
    let mut out = String::from("[");
    let mut kept = 0;
    for e in &entries {
        let Ok(j) = serde_json::to_string(e) else {
            break;
        };
        // `,` before, `]` after.
        if out.len() + j.len() + 2 > budget {
            break;
        }
        if kept > 0 {
            out.push(',');
        }
        out.push_str(&j);
        kept += 1;
    }
    out.push(']');
    (out, entries.len() - kept)
}

fn plan_entries<'a>(
    config: &'a Config,
    hashes: &'a [ImageHash],
    decisions: &'a [Decision],
) -> Vec<PlanEntry<'a>> {
    config
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
        .collect()
}

/// Markdown summary: a headline and a table (image, tag, decision, reason). Long plans list the
/// images to build first and count the rest, so the summary stays readable at 12,800 images: at
/// most 200 rows and about 12 KiB of them (long reasons, such as a registry error repeated on
/// every row, would otherwise make 200 rows weigh 40 KiB).
pub fn summary_markdown(
    config: &Config,
    hashes: &[ImageHash],
    decisions: &[Decision],
    dry_run: bool,
) -> String {
    const MAX_ROWS: usize = 200;
    const MAX_TABLE_BYTES: usize = 12 * 1024;
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
        let table_full = rows >= MAX_ROWS || s.len() >= MAX_TABLE_BYTES;
        if table_full {
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
            "\n… and {hidden} more (the file the `plan_file` output names has every image).\n"
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

    fn units(names: &[String], levels: &[usize], build: &[bool]) -> Vec<Unit<'static>> {
        names
            .iter()
            .zip(levels)
            .zip(build)
            .map(|((n, &level), &build)| Unit {
                name: Box::leak(n.clone().into_boxed_str()),
                level,
                build,
                platform: None,
                runner: None,
            })
            .collect()
    }

    #[test]
    fn small_matrices_list_images() {
        let j = matrix_json(&entries(3), 256, MATRIX_MAX_BYTES, Vec::new);
        assert_eq!(include_len(&j), 3);
        assert!(j.contains(r#""name":"app/v0""#));
        assert_eq!(
            matrix_json(&[], 256, MATRIX_MAX_BYTES, Vec::new),
            r#"{"include":[]}"#
        );
    }

    /// Every image to build is in exactly one batch, within max_jobs, and expands back from the
    /// entry alone; entries name their bucket, they never list images.
    #[test]
    fn large_matrices_are_named_batches_within_max_jobs() {
        for (n, max) in [
            (257, 256),
            (400, 256),
            (12_800, 256),
            (25_600, 256),
            (1000, 7),
            (10, 1),
        ] {
            let names: Vec<String> = (0..n).map(|i| format!("app/v{i}")).collect();
            let build: Vec<bool> = (0..n).map(|i| i % 3 != 1).collect();
            let us = units(&names, &vec![1; n], &build);
            let es: Vec<MatrixEntry> = entries(n)
                .into_iter()
                .zip(&build)
                .filter(|(_, b)| **b)
                .map(|(e, _)| e)
                .collect();
            let j = matrix_json(&es, max, MATRIX_MAX_BYTES, || level_batches(&us, 1, max));
            let v: serde_json::Value = serde_json::from_str(&j).unwrap();
            let inc = v["include"].as_array().unwrap();
            assert!(inc.len() <= max, "{n} images, {max} jobs: {}", inc.len());
            if es.len() <= max {
                assert_eq!(inc.len(), es.len());
                assert!(inc[0].get("name").is_some(), "{n}: per image");
                continue;
            }
            let mut got = Vec::new();
            for b in inc {
                assert!(b.get("images").is_none(), "{b}");
                let ids = expand_batch(
                    &us,
                    b["batch"].as_str().unwrap(),
                    b["select"].as_str().unwrap(),
                )
                .unwrap();
                assert_eq!(ids.len() as u64, b["count"].as_u64().unwrap());
                got.extend(ids);
            }
            let want: Vec<usize> = (0..n).filter(|&i| build[i]).collect();
            assert_eq!(got, want, "{n} images, {max} jobs");
            // Entry size does not grow with the batch beyond one hex digit per 4 images.
            let longest = inc.iter().map(|b| b.to_string().len()).max().unwrap();
            assert!(longest <= 120 + n.div_ceil(max).div_ceil(4), "{longest}");
        }
    }

    /// A batch is a function of the config: which images decide builds changes only its count
    /// and mask, never which images its name stands for.
    #[test]
    fn batch_names_are_a_function_of_the_config() {
        let names: Vec<String> = (0..1000).map(|i| format!("app/v{i}")).collect();
        let all = units(&names, &vec![1; 1000], &vec![true; 1000]);
        let some: Vec<bool> = (0..1000).map(|i| i % 7 == 0).collect();
        let few = units(&names, &vec![1; 1000], &some);
        let a = level_batches(&all, 1, 256);
        let b = level_batches(&few, 1, 256);
        for x in &b {
            let y = a.iter().find(|y| y.batch == x.batch).unwrap();
            assert_eq!(x.select.split('-').next(), y.select.split('-').next());
        }
        assert_eq!(a, level_batches(&all, 1, 256));
        // The bucket of another config (one image renamed) refuses the entry.
        let mut other = names.clone();
        other[1] = "app/renamed".into();
        let changed = units(&other, &vec![1; 1000], &vec![true; 1000]);
        let e = expand_batch(&changed, &a[0].batch, &a[0].select).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(e.to_string().contains("same commit"), "{e}");
        // Bad names and masks: usage errors.
        for (id, sel) in [
            ("level1-0of4", "x-0"),
            ("level1-5of4", "x-0"),
            ("nope", "x-0"),
            (a[0].batch.as_str(), "zz"),
        ] {
            let e = expand_batch(&all, id, sel).unwrap_err();
            assert_eq!(crate::error::exit_code(&e), 2, "{id} {sel}: {e}");
        }
        let key = a[0].select.split('-').next().unwrap();
        let e = expand_batch(&all, &a[0].batch, &format!("{key}-ff")).unwrap_err();
        assert!(e.to_string().contains("hex digit"), "{e}");
    }

    #[test]
    fn batches_do_not_mix_levels_when_they_fit() {
        let names: Vec<String> = (0..300).map(|i| format!("app/v{i}")).collect();
        let levels: Vec<usize> = (0..300).map(|i| usize::from(i >= 100)).collect();
        let us = units(&names, &levels, &vec![true; 300]);
        let bs = all_batches(&us, 10);
        assert!(bs.len() <= 10);
        for b in &bs {
            let ids = expand_batch(&us, &b.batch, &b.select).unwrap();
            let lv: std::collections::BTreeSet<usize> = ids.iter().map(|&i| levels[i]).collect();
            assert_eq!(lv.len(), 1, "{b:?}");
        }
        // More levels than jobs still stays within max_jobs, parents first.
        let names: Vec<String> = (0..5).map(|i| format!("l{i}")).collect();
        let us = units(&names, &[0, 1, 2, 3, 4], &[true; 5]);
        let bs = all_batches(&us, 2);
        assert!(bs.len() <= 2);
        assert!(bs[0].batch.starts_with("all-"), "{bs:?}");
        let got: Vec<usize> = bs
            .iter()
            .flat_map(|b| expand_batch(&us, &b.batch, &b.select).unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn batch_names_round_trip() {
        for id in [
            BatchId {
                level: Some(1),
                lane: None,
                index: 7,
                of: 255,
            },
            BatchId {
                level: None,
                lane: None,
                index: 3,
                of: 12,
            },
            BatchId {
                level: Some(0),
                lane: None,
                index: 1,
                of: 1,
            },
            BatchId {
                level: Some(2),
                lane: Some(("linux_arm64".into(), 2)),
                index: 3,
                of: 40,
            },
            BatchId {
                level: None,
                lane: Some(("linux_amd64".into(), 1)),
                index: 1,
                of: 2,
            },
        ] {
            assert_eq!(id.to_string().parse::<BatchId>().unwrap(), id);
        }
        assert_eq!(
            BatchId {
                level: Some(1),
                lane: None,
                index: 7,
                of: 255
            }
            .to_string(),
            "level1-007of255"
        );
        assert_eq!(
            BatchId {
                level: Some(1),
                lane: Some(("linux_arm64".into(), 1)),
                index: 7,
                of: 255
            }
            .to_string(),
            "level1-linux_arm64-r1-007of255"
        );
        for bad in [
            "level1-linux_arm64-007of255",
            "level1--r1-1of2",
            "level1-x-r0-1of2",
        ] {
            assert!(bad.parse::<BatchId>().is_err(), "{bad}");
        }
    }

    /// With `runners:`: one unit per platform of the config; a batch never mixes platforms or
    /// runners, names its lane, and expands back to its own platform's units.
    #[test]
    fn batches_never_mix_platforms_or_runners() {
        let mut us = Vec::new();
        for i in 0..60 {
            let name: &'static str = Box::leak(format!("img{i}").into_boxed_str());
            for (p, r) in [
                ("linux/amd64", "x86"),
                ("linux/arm64", if i % 2 == 0 { "arm-a" } else { "arm-b" }),
            ] {
                us.push(Unit {
                    name,
                    level: usize::from(i >= 20),
                    build: i % 5 != 0,
                    platform: Some(p),
                    runner: Some(r),
                });
            }
        }
        for max in [3, 5, 16, 256] {
            for bs in [all_batches(&us, max), level_batches(&us, 1, max)] {
                assert!(bs.len() <= max.max(3), "{max}: {}", bs.len());
                for b in &bs {
                    let ids = expand_batch(&us, &b.batch, &b.select).unwrap();
                    assert_eq!(ids.len(), b.count);
                    for &i in &ids {
                        assert_eq!(us[i].platform, b.platform.as_deref(), "{b:?}");
                        assert_eq!(us[i].runner, b.runner.as_deref(), "{b:?}");
                        assert!(us[i].build);
                    }
                    let p = b.platform.as_deref().unwrap().replace('/', "_");
                    assert!(b.batch.contains(&p), "{b:?}");
                }
            }
            let got: usize = all_batches(&us, max).iter().map(|b| b.count).sum();
            assert_eq!(got, us.iter().filter(|u| u.build).count(), "{max}");
        }
        // The same config, another registry state: the same names for the same lanes.
        let mut fewer = us.clone();
        for u in fewer.iter_mut().step_by(3) {
            u.build = false;
        }
        for b in all_batches(&fewer, 16) {
            let a = all_batches(&us, 16);
            let same = a.iter().find(|x| x.batch == b.batch).unwrap();
            assert_eq!(same.select.split('-').next(), b.select.split('-').next());
        }
    }

    /// The design fact behind "every output fits at any scale": the budgets of the outputs that
    /// grow with the config, with the small outputs' allowance, stay under GitHub's 1 MiB for a
    /// step's outputs together, and each under its 1 MB per output (512 KiB, room for the
    /// runner's own encoding). Every output decide writes is budgeted or small.
    #[test]
    fn budgets_sum_under_githubs_limits() {
        let sum: usize = BUDGETS.iter().map(|b| b.1).sum();
        assert!(
            sum + SMALL_OUTPUTS_MAX_BYTES <= ALL_OUTPUTS_MAX_BYTES,
            "{} KiB",
            (sum + SMALL_OUTPUTS_MAX_BYTES) / 1024
        );
        for (k, b, _) in BUDGETS {
            assert!(*b <= 512 * 1024, "{k}");
        }
        let names: std::collections::BTreeSet<&str> = BUDGETS.iter().map(|b| b.0).collect();
        assert_eq!(names.len(), BUDGETS.len(), "an output budgeted twice");
        // The per-image matrices become batches at the budget of their output.
        const { assert!(MATRIX_MAX_BYTES <= LEVELS_MAX_BYTES) };
    }

    /// Over its budget, an output is refused with its name and what to change (exit 2); the
    /// small outputs together have one budget.
    #[test]
    fn outputs_over_budget_are_refused_before_anything_is_written() {
        let mut o = Outputs::new();
        o.set("matrix", r#"{"include":[]}"#);
        o.set("need_build", "true");
        check_budgets(&o).unwrap();
        o.set("matrix_levels", "x".repeat(LEVELS_MAX_BYTES + 1));
        let e = check_budgets(&o).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(e.to_string().contains("`matrix_levels`"), "{e}");
        assert!(e.to_string().contains("shallower"), "{e}");
        let mut o = Outputs::new();
        o.set("base_build_args", "A=".repeat(SMALL_OUTPUTS_MAX_BYTES));
        let e = check_budgets(&o).unwrap_err();
        assert!(e.to_string().contains("small outputs"), "{e}");
    }

    /// Batch matrices are weighed with every unit to build, an upper bound of any run's.
    #[test]
    fn batch_budgets_are_an_upper_bound_of_every_run() {
        let names: Vec<String> = (0..20_000).map(|i| format!("app/v{i}")).collect();
        let levels: Vec<usize> = (0..20_000).map(|i| usize::from(i >= 10)).collect();
        let all = units(&names, &levels, &vec![true; 20_000]);
        let some: Vec<bool> = (0..20_000).map(|i| i % 3 == 0).collect();
        let part = units(&names, &levels, &some);
        for max in [256, 17, 1] {
            let worst = batch_matrix(all_batches(&all, max)).len();
            assert!(batch_matrix(all_batches(&part, max)).len() <= worst);
            let worst = batch_matrix(level_batches(&all, 1, max)).len();
            assert!(batch_matrix(level_batches(&part, 1, max)).len() <= worst);
        }
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        assert_eq!(md_escape("a|b\nc<script>"), "a\\|b c&lt;script&gt;");
    }
}
