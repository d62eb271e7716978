//! Input discovery: for every image, find what its build can see.
//!
//! Reads each Dockerfile once, analyses it with the image's build args, walks each distinct
//! (context, ignore rules) pair once, and selects the entries COPY/ADD/bind mounts can reach. Images
//! that select the same entries share one [`Selection`], so 12,800 variants of one Dockerfile cost
//! one selection, not 12,800. Nothing here hashes file contents; that is [`crate::hash`]'s job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use skip_dockerfile::{Dockerfile, ImageUse, Remote, Source};

use crate::config::{Config, ContextScope, FileModes, ImageSpec};
use crate::context::select::{self, Selection};
use crate::context::walk::{self, Entry, Kind, Tree};
use crate::context::{self, IgnoreRules};
use crate::error::usage;

/// Everything discovered, images in config (topological) order.
#[derive(Debug)]
pub struct Discovery {
    /// The working directory paths are relative to (canonical).
    pub workspace: PathBuf,
    /// Walked contexts, plus one pseudo-tree per image with `inputs:` (rooted at the workspace).
    pub trees: Vec<Tree>,
    pub images: Vec<ImageInputs>,
    /// Number of distinct selections among `images`.
    pub selection_count: usize,
}

/// What one image's build can see.
#[derive(Debug)]
pub struct ImageInputs {
    /// The Dockerfile's bytes (shared by images using the same file).
    pub dockerfile: Arc<Vec<u8>>,
    /// The ignore file in effect, if any.
    pub ignore_file: Option<PathBuf>,
    /// Index of the context tree in [`Discovery::trees`].
    pub tree: usize,
    /// The selected context entries (shared by images that select the same entries).
    pub selection: Arc<Selection>,
    /// Which distinct selection this is, `0..Discovery::selection_count`: the key under which
    /// the selection's digest is computed once.
    pub selection_id: usize,
    /// Context sources the Dockerfile names (after ARG substitution).
    pub sources: Vec<Source>,
    /// ARGs the Dockerfile declares (in the stages that are built).
    pub declared_args: BTreeSet<String>,
    /// Outside images (not stages, not this image's parents).
    pub outside: Vec<ImageUse>,
    /// ADD of URLs / git repositories.
    pub remotes: Vec<Remote>,
    /// Tree index of the `inputs:` entries, if the image has any.
    pub extra: Option<usize>,
    /// Each `generated:` path and the tree index of its declared sources.
    pub generated: Vec<(String, usize)>,
    /// Glob sources that match nothing (allowed: Docker's optional-file idiom), with whether a
    /// `generated:` declaration covers them.
    pub empty_globs: Vec<EmptyGlob>,
    /// Things the user should know (e.g. a parent the Dockerfile never uses).
    pub warnings: Vec<String>,
}

/// A COPY/ADD glob that matched nothing when decide ran.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmptyGlob {
    pub pattern: String,
    pub line: usize,
    /// A `generated:` entry covers it: its declared sources are hashed.
    pub generated: bool,
}

/// Whether the `generated:` key `key` covers the context path `path`: the same path, a
/// directory above it, or a glob that matches it.
fn covers(key: &str, path: &str) -> bool {
    path == key
        || key.is_empty()
        || path.strip_prefix(key).is_some_and(|r| r.starts_with('/'))
        || (key.contains(['*', '?', '['])
            && key.split('/').count() == path.split('/').count()
            && skip_dockerignore::path_match(key, path).unwrap_or(false))
}

/// Images with the same tree, sources, whole-context reason and file-mode policy select (and
/// hash) the same entries.
type SelectionKey = (usize, Vec<Source>, Option<String>, FileModes);

/// Placeholder passed for a parent's image arg during analysis: the real reference contains the
/// parent's hash, which is only known after hashing. `FROM ${BASE_IMAGE}` resolving to this value
/// is how a parent is recognised.
pub fn parent_placeholder(parent: &str) -> String {
    format!(
        "skip-action.invalid/parent/{}:pending",
        parent.replace('/', "-")
    )
}

/// Discover the inputs of every image of `config`, paths relative to `workspace`.
pub fn discover(config: &Config, workspace: &Path) -> anyhow::Result<Discovery> {
    let workspace = std::fs::canonicalize(workspace)
        .with_context(|| format!("working directory {}", workspace.display()))?;
    let mut dockerfiles: HashMap<String, (Arc<Vec<u8>>, Arc<Dockerfile>)> = HashMap::new();
    let mut trees: Vec<Tree> = Vec::new();
    let mut tree_index: HashMap<(PathBuf, String), (usize, Option<PathBuf>)> = HashMap::new();
    let mut ignore_cache: HashMap<(String, String), IgnoreRules> = HashMap::new();
    let mut selections: HashMap<SelectionKey, (Arc<Selection>, usize)> = HashMap::new();
    let mut images = Vec::with_capacity(config.images.len());

    for spec in &config.images {
        let (bytes, df) = match dockerfiles.get(&spec.dockerfile) {
            Some(v) => v.clone(),
            None => {
                let v = load_dockerfile(&workspace, config, spec)?;
                dockerfiles.insert(spec.dockerfile.clone(), v.clone());
                v
            }
        };

        // Walk (once per context + ignore rules).
        let key = (spec.dockerfile.clone(), spec.context.clone());
        let rules = match ignore_cache.get(&key) {
            Some(r) => r.clone(),
            None => {
                let r = context::load_ignore(
                    &workspace,
                    &workspace.join(&spec.dockerfile),
                    &workspace.join(&spec.context),
                )?;
                ignore_cache.insert(key, r.clone());
                r
            }
        };
        let ctx_dir = context::inside(&workspace, &workspace.join(&spec.context)).map_err(|e| {
            usage(format!(
                "{}: `{}` (image {}): {e}",
                config.at(&spec.keys.context),
                spec.context,
                spec.name
            ))
        })?;
        let (tree, ignore_file) = match tree_index.get(&(ctx_dir.clone(), rules.text.clone())) {
            Some(t) => t.clone(),
            None => {
                let t = walk::walk(&ctx_dir, &rules.rules)
                    .with_context(|| format!("image {}: walking its context", spec.name))?;
                tracing::debug!(context = %ctx_dir.display(), entries = t.entries.len(), "walked context");
                trees.push(t);
                let v = (trees.len() - 1, rules.file.clone());
                tree_index.insert((ctx_dir.clone(), rules.text.clone()), v.clone());
                v
            }
        };

        // Analyse with the image's args and placeholders for parents.
        let mut args = spec.args.clone();
        for p in &spec.parents {
            args.insert(p.arg.clone(), parent_placeholder(&p.name));
        }
        let mut analysis = df
            .analyze(&args, spec.target.as_deref())
            .map_err(|e| usage(format!("{}: {e}", spec.dockerfile)))?;
        if analysis.whole_context.is_some() && !spec.platforms.is_empty() {
            if let Some(per_platform) = analyze_per_platform(&df, &args, spec)? {
                analysis = per_platform;
            }
        }
        let mut warnings = Vec::new();
        let placeholders: Vec<(String, String)> = spec
            .parents
            .iter()
            .map(|p| (p.name.clone(), parent_placeholder(&p.name)))
            .collect();
        for (pname, ph) in &placeholders {
            if !analysis.images.iter().any(|u| u.reference == *ph) {
                return Err(unused_parent(config, spec, pname, &analysis.declared_args));
            }
        }
        check_declared_args(config, spec, &df.declared_args())?;
        let outside: Vec<ImageUse> = analysis
            .images
            .iter()
            .filter(|u| !placeholders.iter().any(|(_, ph)| &u.reference == ph))
            .cloned()
            .collect();

        let mut whole = analysis.whole_context.clone();
        if spec.scope == ContextScope::All {
            whole = Some("context_scope: all".into());
        } else if whole.is_none()
            && analysis
                .sources
                .iter()
                .any(|s| s.pattern.contains("skip-action.invalid"))
        {
            whole = Some("a COPY source depends on a parent's image reference".into());
        }
        // Line numbers do not change what is selected: leave them out of the sharing key.
        let key_sources: Vec<Source> = analysis
            .sources
            .iter()
            .map(|s| Source {
                line: 0,
                ..s.clone()
            })
            .collect();
        let sel_key = (tree, key_sources, whole.clone(), spec.file_modes);
        let (selection, selection_id) = match selections.get(&sel_key) {
            Some(s) => s.clone(),
            None => {
                let s = (
                    Arc::new(select::select(&trees[tree], &analysis.sources, whole)),
                    selections.len(),
                );
                selections.insert(sel_key, s.clone());
                s
            }
        };
        for r in &analysis.remotes {
            if r.checksum.is_none() {
                warnings.push(format!(
                    "{}:{}: ADD {} downloads at build time; its content is not in the hash. Pin it with ADD --checksum=sha256:… or force a rebuild when it changes",
                    spec.dockerfile, r.line, r.url
                ));
            }
        }

        // A literal source that is not there: the build fails, or copies whatever an earlier
        // job put there — which no hash of this checkout can see. Refuse, unless the config
        // declares what the path is generated from.
        for m in &selection.missing {
            if spec.generated.iter().any(|(k, _)| covers(k, &m.pattern)) {
                continue;
            }
            let line = analysis
                .sources
                .iter()
                .find(|s| s.pattern == m.pattern)
                .map_or(m.line, |s| s.line);
            return Err(usage(format!(
                "{}:{line}: {} source `{}` (image {}) is not in the build context {}: it is missing or left out by .dockerignore. \
                 If a build job creates it, declare what it is made from so the hash covers it: \
                 `images.{}.generated: {{\"{}\": [\"<source globs>\"]}}` in {}; otherwise fix the path",
                spec.dockerfile,
                m.instruction,
                m.pattern,
                spec.name,
                spec.context,
                spec.image,
                m.pattern,
                config.path.display()
            )));
        }
        let empty_globs = selection
            .empty_globs
            .iter()
            .map(|g| EmptyGlob {
                pattern: g.pattern.clone(),
                line: analysis
                    .sources
                    .iter()
                    .find(|s| s.pattern == g.pattern)
                    .map_or(g.line, |s| s.line),
                generated: spec.generated.iter().any(|(k, _)| covers(k, &g.pattern)),
            })
            .collect();

        let extra = if spec.inputs.is_empty() {
            None
        } else {
            trees.push(expand_globs(
                &workspace,
                spec,
                &spec.inputs,
                "input",
                Some((config, &spec.keys.inputs)),
            )?);
            Some(trees.len() - 1)
        };
        let mut generated = Vec::with_capacity(spec.generated.len());
        for (path, globs) in &spec.generated {
            trees.push(expand_globs(
                &workspace,
                spec,
                globs,
                "generated source",
                None,
            )?);
            generated.push((path.clone(), trees.len() - 1));
        }

        images.push(ImageInputs {
            dockerfile: bytes,
            ignore_file,
            tree,
            selection,
            selection_id,
            sources: analysis.sources,
            declared_args: analysis.declared_args,
            outside,
            remotes: analysis.remotes,
            extra,
            generated,
            empty_globs,
            warnings,
        });
    }
    Ok(Discovery {
        workspace,
        trees,
        images,
        selection_count: selections.len(),
    })
}

/// The `TARGET*` build args BuildKit sets for `platform` (`os/arch[/variant]`), normalised as
/// containerd does (`arm64/v8` has no variant, `arm` defaults to `v7`).
pub fn target_platform_args(platform: &str) -> Vec<(&'static str, String)> {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or_default().to_string();
    let arch = parts.next().unwrap_or_default().to_string();
    let mut variant = parts.next().unwrap_or_default().to_string();
    if arch == "arm64" && (variant == "v8" || variant == "8") {
        variant.clear();
    } else if arch == "arm" && variant.is_empty() {
        variant = "v7".into();
    }
    let full = if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    };
    vec![
        ("TARGETPLATFORM", full),
        ("TARGETOS", os),
        ("TARGETARCH", arch),
        ("TARGETVARIANT", variant),
    ]
}

/// When the analysis without platform args could not bound the sources, analyse once per
/// configured platform with BuildKit's `TARGET*` args set (`COPY bin/${TARGETARCH}/tool`) and
/// take the union. `None` when some platform still needs the whole context: then the first
/// analysis, with its reason, stands.
fn analyze_per_platform(
    df: &Dockerfile,
    args: &BTreeMap<String, String>,
    spec: &ImageSpec,
) -> anyhow::Result<Option<skip_dockerfile::Analysis>> {
    let mut merged: Option<skip_dockerfile::Analysis> = None;
    for platform in &spec.platforms {
        let mut pargs = args.clone();
        for (k, v) in target_platform_args(platform) {
            // A value the config passes wins, as it does in BuildKit.
            pargs.entry(k.to_string()).or_insert(v);
        }
        let a = df
            .analyze(&pargs, spec.target.as_deref())
            .map_err(|e| usage(format!("{} (platform {platform}): {e}", spec.dockerfile)))?;
        if a.whole_context.is_some() {
            return Ok(None);
        }
        match &mut merged {
            None => merged = Some(a),
            Some(m) => {
                m.declared_args.extend(a.declared_args);
                for x in a.sources {
                    if !m.sources.contains(&x) {
                        m.sources.push(x);
                    }
                }
                for x in a.images {
                    if !m.images.contains(&x) {
                        m.images.push(x);
                    }
                }
                for x in a.remotes {
                    if !m.remotes.contains(&x) {
                        m.remotes.push(x);
                    }
                }
            }
        }
    }
    Ok(merged)
}

/// A parent whose reference the Dockerfile never uses: the build would silently take the ARG's
/// default (typically the published `latest` of the parent), not the parent just built.
fn unused_parent(
    config: &Config,
    spec: &ImageSpec,
    parent: &str,
    declared: &BTreeSet<String>,
) -> anyhow::Error {
    let arg = spec
        .parents
        .iter()
        .find(|p| p.name == parent)
        .map(|p| p.arg.as_str())
        .unwrap_or(crate::config::DEFAULT_BASE_ARG);
    let key = spec
        .keys
        .base_arg
        .clone()
        .unwrap_or_else(|| spec.keys.from.clone());
    let others: Vec<&str> = declared
        .iter()
        .map(String::as_str)
        .filter(|a| *a != arg)
        .take(8)
        .collect();
    let hint = if others.is_empty() {
        String::new()
    } else {
        format!(
            "; it declares {}, so if one of these receives the parent, set `base_arg:` to it",
            others.join(", ")
        )
    };
    usage(format!(
        "{}: {} (image {}) never uses ${{{arg}}} in FROM or COPY --from, so it would be built on that ARG's default instead of its parent {parent} built in this run. Add `ARG {arg}` before the first FROM and `FROM ${{{arg}}}`{hint}",
        config.at(&key),
        spec.dockerfile,
        spec.name
    ))
}

/// Every build arg set on the image itself must be declared by its Dockerfile: docker drops an
/// undeclared one without a word, and a misspelt `INSTALL_PYTHON` for `INSTALL_PYTHON3` builds
/// the "python3" variant without Python. BuildKit's predefined args (proxies, `BUILDKIT_*`,
/// `SOURCE_DATE_EPOCH`) need no `ARG`.
fn check_declared_args(
    config: &Config,
    spec: &ImageSpec,
    declared: &BTreeSet<String>,
) -> anyhow::Result<()> {
    for (name, origin) in spec.arg_origins.iter() {
        if !origin.required || declared.contains(name) || crate::hash::is_predefined_arg(name) {
            continue;
        }
        let near = declared
            .iter()
            .filter(|d| {
                edit_distance(d, name) <= 2
                    || d.starts_with(name.as_str())
                    || name.starts_with(d.as_str())
            })
            .min_by_key(|d| edit_distance(d, name));
        let hint = match near {
            Some(d) => format!("Did you mean `{d}`? "),
            None => String::new(),
        };
        return Err(usage(format!(
            "{}: build arg `{name}` is not declared by {} (no `ARG {name}`), so docker would ignore it and build {} without it. {hint}Fix the name, add `ARG {name}` to the Dockerfile, or move it to `vars:` if it only names tags",
            config.at(&origin.key),
            spec.dockerfile,
            spec.name
        )));
    }
    Ok(())
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Remove offered args (matrix values, `defaults:` args) that an image's Dockerfile does not
/// declare in the stages it builds: they are not passed, so docker has nothing to warn about.
/// The hash is unchanged by this (it counts declared args only); the build args shown and
/// passed are what the build uses.
pub fn drop_undeclared_args(config: &mut Config, discovery: &Discovery) {
    for (spec, inputs) in config.images.iter_mut().zip(&discovery.images) {
        let origins = &spec.arg_origins;
        spec.args.retain(|k, _| {
            inputs.declared_args.contains(k)
                || crate::hash::is_predefined_arg(k)
                || origins.get(k).is_none_or(|o| o.required)
        });
    }
}

fn load_dockerfile(
    workspace: &Path,
    config: &Config,
    spec: &ImageSpec,
) -> anyhow::Result<(Arc<Vec<u8>>, Arc<Dockerfile>)> {
    let path = workspace.join(&spec.dockerfile);
    let bytes = context::read_inside(workspace, &path).map_err(|e| {
        let at = format!("{} (image {})", config.at(&spec.keys.dockerfile), spec.name);
        if e.kind() == std::io::ErrorKind::NotFound {
            usage(format!(
                "{at}: `{}` not found; fix the path (paths are relative to the repository root)",
                spec.dockerfile
            ))
        } else {
            usage(format!("{at}: `{}`: {e}", spec.dockerfile))
        }
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        usage(format!(
            "{}: not UTF-8 text; save it as UTF-8",
            spec.dockerfile
        ))
    })?;
    let df =
        skip_dockerfile::parse(text).map_err(|e| usage(format!("{}: {e}", spec.dockerfile)))?;
    Ok((Arc::new(bytes), Arc::new(df)))
}

/// Expand `inputs:` (or `generated:` source) globs into a pseudo-tree rooted at the workspace.
/// Not subject to `.dockerignore` (the user asked for these paths explicitly); symlinks are
/// recorded, not followed; matches outside the workspace are refused.
fn expand_globs(
    workspace: &Path,
    spec: &ImageSpec,
    patterns: &[String],
    what: &str,
    // For `inputs:`: the key, so a glob that matches nothing is refused at its line.
    refuse_empty: Option<(&Config, &crate::config::KeyPath)>,
) -> anyhow::Result<Tree> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    for (i, pattern) in patterns.iter().enumerate() {
        // The glob crate follows symlinked directories without end (two looping links made `**`
        // visit 2^40 paths) and out of the workspace: look at the region first.
        check_glob_region(workspace, pattern)
            .map_err(|e| usage(format!("image {}: {what} `{pattern}`: {e}", spec.name)))?;
        // `dir/**` means everything below `dir`; the glob crate matches only directories there
        // (or nothing), while a matched directory is walked whole below.
        // Only for a real directory: through a symlink the original pattern (and its checks)
        // stands.
        let pattern = match pattern.strip_suffix("/**") {
            Some(dir)
                if !dir.contains(['*', '?', '['])
                    && std::fs::symlink_metadata(workspace.join(dir)).is_ok_and(|m| m.is_dir()) =>
            {
                dir
            }
            _ => pattern,
        };
        let full = workspace.join(pattern);
        let full = full.to_str().ok_or_else(|| {
            usage(format!(
                "image {}: {what} `{pattern}` is not UTF-8",
                spec.name
            ))
        })?;
        let mut matched = false;
        for m in glob::glob_with(full, opts)
            .map_err(|e| usage(format!("image {}: {what} `{pattern}`: {e}", spec.name)))?
        {
            let m = m.with_context(|| format!("image {}: {what} `{pattern}`", spec.name))?;
            let rel = m.strip_prefix(workspace).map_err(|_| {
                usage(format!(
                    "image {}: {what} `{pattern}` matched {} outside the workspace",
                    spec.name,
                    m.display()
                ))
            })?;
            let parent_ok = m
                .parent()
                .map(|p| context::inside(workspace, p).is_ok())
                .unwrap_or(false);
            if !parent_ok {
                return Err(usage(format!(
                    "image {}: {what} `{pattern}` reaches {} through a symlink outside the workspace",
                    spec.name,
                    m.display()
                )));
            }
            let rel = rel.to_str().unwrap_or_default().to_string();
            matched = true;
            let md = std::fs::symlink_metadata(&m)?;
            if md.is_dir() {
                let sub = walk::walk(&m, &skip_dockerignore::DockerIgnore::default())?;
                entries.insert(rel.clone(), entry_for(&rel, &md, &m)?);
                for e in sub.entries {
                    let p = format!("{rel}/{}", e.path);
                    entries.insert(p.clone(), Entry { path: p, ..e });
                }
            } else {
                entries.insert(rel.clone(), entry_for(&rel, &md, &m)?);
            }
        }
        if !matched {
            if let Some((config, key)) = refuse_empty {
                // A typo here would leave the file out of the hash: a change to it would be
                // skipped.
                return Err(usage(format!(
                    "{}: `{}` matches nothing in the checkout (image {}); fix the pattern (it is relative to the repository root) or remove it",
                    config.at(&key.index(i)),
                    patterns[i],
                    spec.name
                )));
            }
            tracing::warn!(image = %spec.name, pattern = %pattern, "{what} pattern matched nothing");
        }
    }
    Ok(Tree {
        root: workspace.to_path_buf(),
        entries: entries.into_values().collect(),
    })
}

/// Paths one `inputs:` glob may pass before it is refused.
const MAX_GLOB_VISITS: usize = 2_000_000;

/// Walk the part of the workspace `pattern` can reach (below its literal prefix, as deep as it
/// can match), following symlinked directories as the `glob` crate does, and refuse a symlink
/// loop or a symlink to a directory outside the workspace before the glob crate meets it.
fn check_glob_region(workspace: &Path, pattern: &str) -> Result<(), String> {
    let comps: Vec<&str> = pattern
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let literal = comps
        .iter()
        .take_while(|c| !c.contains(['*', '?', '[']))
        .count();
    if literal == comps.len() {
        return Ok(());
    }
    let start = workspace.join(comps[..literal].join("/"));
    let Ok(real) = std::fs::canonicalize(&start) else {
        return Ok(());
    };
    if !real.starts_with(workspace) {
        return Err(format!(
            "reaches {} through a symlink outside the workspace",
            start.display()
        ));
    }
    if !real.is_dir() {
        return Ok(());
    }
    let max_depth = if comps[literal..].contains(&"**") {
        usize::MAX
    } else {
        comps.len() - literal
    };
    let mut visits = 0usize;
    let mut ancestors = vec![real.clone()];
    visit_region(
        workspace,
        &start,
        &real,
        0,
        max_depth,
        &mut visits,
        &mut ancestors,
    )
}

fn visit_region(
    workspace: &Path,
    dir: &Path,
    real: &Path,
    depth: usize,
    max_depth: usize,
    visits: &mut usize,
    ancestors: &mut Vec<PathBuf>,
) -> Result<(), String> {
    if depth + 1 >= max_depth {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for e in rd {
        let e = e.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        *visits += 1;
        if *visits > MAX_GLOB_VISITS {
            return Err(format!(
                "passes more than {MAX_GLOB_VISITS} paths; narrow the pattern"
            ));
        }
        let abs = dir.join(e.file_name());
        let ft = e
            .file_type()
            .map_err(|e| format!("reading {}: {e}", abs.display()))?;
        let target = if ft.is_dir() {
            real.join(e.file_name())
        } else if ft.is_symlink() && std::fs::metadata(&abs).is_ok_and(|m| m.is_dir()) {
            let t = std::fs::canonicalize(&abs)
                .map_err(|e| format!("resolving {}: {e}", abs.display()))?;
            if !t.starts_with(workspace) {
                return Err(format!(
                    "reaches {} through a symlink outside the workspace",
                    abs.display()
                ));
            }
            if ancestors.contains(&t) {
                return Err(format!(
                    "{} is a symlink loop (to {}); a glob through it never ends. Remove the link or narrow the pattern",
                    abs.display(),
                    t.display()
                ));
            }
            t
        } else {
            continue;
        };
        ancestors.push(target.clone());
        visit_region(
            workspace,
            &abs,
            &target,
            depth + 1,
            max_depth,
            visits,
            ancestors,
        )?;
        ancestors.pop();
    }
    Ok(())
}

fn entry_for(rel: &str, md: &std::fs::Metadata, abs: &Path) -> anyhow::Result<Entry> {
    use std::os::unix::fs::MetadataExt as _;
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_symlink() {
        Kind::Symlink(
            std::fs::read_link(abs)?
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("{}: link target is not UTF-8", abs.display()))?
                .to_string(),
        )
    } else {
        Kind::Other
    };
    Ok(Entry {
        path: rel.to_string(),
        size: if kind == Kind::File { md.len() } else { 0 },
        kind,
        mode: md.mode() & 0o7777,
    })
}
