//! Which entries of a walked context the build can reach.
//!
//! The Dockerfile analysis yields source patterns (`rootfs`, `scripts/*.sh`, `.`); this module maps
//! them onto the [`Tree`] the way BuildKit resolves COPY/ADD sources: a path selects itself and
//! everything below it, a glob (Go `filepath.Match`, per path component) selects every match and
//! everything below each match. Symlinks are never followed on disk, but a selected symlink also
//! selects its target inside the context, since COPY copies what a link points to. Whenever this
//! cannot be decided exactly (a glob that could pass through a symlinked directory), the whole
//! context is selected — hashing too much costs a rebuild, hashing too little ships a stale image.

use std::collections::BTreeMap;

use skip_dockerfile::Source;
use skip_dockerignore::DockerIgnore;

use super::walk::{Kind, Tree};

/// The selected entries, as sorted indices into [`Tree::entries`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub indices: Vec<usize>,
    /// For each of `indices`: whether the entry's own mode reaches the image. It does not for
    /// the root directory of a copy (COPY copies a directory's contents, not the directory) nor
    /// for files copied with an octal `--chmod` (the mode is replaced).
    pub mode_counts: Vec<bool>,
    /// Why the whole context was taken, when it was.
    pub whole: Option<String>,
    /// Literal sources that name nothing in the context (missing, or left out by
    /// `.dockerignore`): the build would fail, or copy what a later job puts there.
    pub missing: Vec<Source>,
    /// Glob sources that match nothing (Docker's optional-file idiom): allowed, reported.
    pub empty_globs: Vec<Source>,
}

/// Symlink hops allowed while resolving one path (Linux's limit).
const MAX_LINK_HOPS: usize = 40;

/// Entries picked so far: index → whether the entry's mode reaches the image. An entry picked
/// by several sources counts its mode when any of them copies it with its mode.
#[derive(Default)]
struct Picked {
    entries: BTreeMap<usize, bool>,
    links: Vec<usize>,
}

impl Picked {
    fn add(&mut self, tree: &Tree, i: usize, mode_counts: bool) {
        let e = self.entries.entry(i).or_insert(mode_counts);
        *e |= mode_counts;
        if matches!(tree.entries[i].kind, Kind::Symlink(_)) {
            self.links.push(i);
        }
    }
}

/// Select for `sources` (cleaned, context-relative, `.` = everything). `whole` forces the whole
/// context with that reason. Absent sources are reported either way: a literal source missing
/// at decide time is a hole in any selection, the whole context included.
pub fn select(tree: &Tree, sources: &[Source], whole: Option<String>) -> Selection {
    let (missing, empty_globs) = absent(tree, sources);
    let mut sel = match whole {
        Some(reason) => everything(tree, reason),
        None => select_used(tree, sources),
    };
    sel.missing = missing;
    sel.empty_globs = empty_globs;
    sel
}

/// Sources that select nothing: literal ones (an error for the caller) and globs (allowed).
fn absent(tree: &Tree, sources: &[Source]) -> (Vec<Source>, Vec<Source>) {
    let mut missing = Vec::new();
    let mut empty = Vec::new();
    for s in sources {
        let pat = s.pattern.as_str();
        if pat == "." || pat.is_empty() {
            continue;
        }
        let found = if has_glob(pat) {
            if let Some(pivot) = &s.pivot {
                let inc = s.include_pattern().unwrap_or(pat);
                !has_glob(pivot) && matches_below(tree, pivot, inc, s)
            } else {
                tree.entries.iter().any(|e| glob_match(pat, &e.path))
                    || glob_may_cross_symlink(tree, pat).is_some()
            }
        } else {
            // A symlink loop on the way is there (the links are hashed); the build fails on it.
            resolve(tree, pat).and_then(|r| tree.find(&r)).is_some() || loops(tree, pat)
        };
        if !found {
            if has_glob(pat) {
                empty.push(s.clone());
            } else {
                missing.push(s.clone());
            }
        }
    }
    (missing, empty)
}

/// Whether a `--parents` include pattern matches anything below `pivot`.
fn matches_below(tree: &Tree, pivot: &str, include: &str, s: &Source) -> bool {
    let mut found = false;
    parents_walk(tree, pivot, include, s, &mut |_, _| found = true);
    found
}

fn select_used(tree: &Tree, sources: &[Source]) -> Selection {
    let mut picked = Picked::default();
    for s in sources {
        let pat = s.pattern.as_str();
        if pat == "." || pat.is_empty() {
            if s.pivot.is_none() && s.excludes.is_empty() && !s.chmod_fixed {
                return everything(tree, format!("a source is the whole context (`{pat}`)"));
            }
            // `.` with flags: the context root is the copy root.
            copy_root(tree, None, s, &mut picked);
            continue;
        }
        if let Some(pivot) = &s.pivot {
            if has_glob(pivot) {
                return everything(
                    tree,
                    format!(
                        "line {}: {} --parents source `{pat}` has a wildcard before its `/./` pivot",
                        s.line, s.instruction
                    ),
                );
            }
            let include = s.include_pattern().unwrap_or(pat);
            if include.starts_with(['#', '!']) {
                return everything(
                    tree,
                    format!(
                        "line {}: {} --parents pattern `{include}` starts with `{}`",
                        s.line,
                        s.instruction,
                        &include[..1]
                    ),
                );
            }
            let real_pivot = if pivot == "." {
                Some(String::new())
            } else {
                resolve(tree, pivot)
            };
            for i in links_on_path(tree, pivot) {
                picked.add(tree, i, false);
            }
            let Some(real_pivot) = real_pivot else {
                continue;
            };
            let mut hits = Vec::new();
            parents_walk(tree, &real_pivot, include, s, &mut |i, _| hits.push(i));
            for i in hits {
                // The match, then every directory between the pivot and it: BuildKit recreates
                // them with the source directories' metadata.
                let file_mode = !(s.chmod_fixed && tree.entries[i].kind == Kind::File);
                picked.add(tree, i, file_mode);
                let mut p = tree.entries[i].path.as_str();
                while let Some((parent, _)) = p.rsplit_once('/') {
                    if parent.len() <= real_pivot.len() {
                        break;
                    }
                    if let Some(j) = tree.find(parent) {
                        picked.add(tree, j, true);
                    }
                    p = parent;
                }
            }
            continue;
        }
        if has_glob(pat) {
            if let Some(link) = glob_may_cross_symlink(tree, pat) {
                return everything(
                    tree,
                    format!("glob `{pat}` may pass through symlink `{link}`"),
                );
            }
            let roots: Vec<usize> = (0..tree.entries.len())
                .filter(|&i| glob_match(pat, &tree.entries[i].path))
                .collect();
            for i in roots {
                copy_root(tree, Some(i), s, &mut picked);
            }
        } else {
            if let Some(i) = resolve(tree, pat).and_then(|real| tree.find(&real)) {
                copy_root(tree, Some(i), s, &mut picked);
            }
            // The literal path may go through links: select the links on the way, too, so that
            // retargeting one of them changes the hash.
            for i in links_on_path(tree, pat) {
                picked.add(tree, i, false);
            }
        }
    }
    // Follow selected symlinks to their targets inside the context (transitively, loop-safe).
    // COPY copies a link as a link (only a source's own root is followed), so this can only
    // select more than the build reads; the targets' modes count.
    let mut followed = std::collections::BTreeSet::new();
    while let Some(i) = picked.links.pop() {
        if !followed.insert(i) {
            continue;
        }
        let Kind::Symlink(target) = &tree.entries[i].kind else {
            continue;
        };
        let joined = join_link(&tree.entries[i].path, target);
        if let Some(real) = resolve(tree, &joined) {
            if let Some(t) = tree.find(&real) {
                add_subtree(tree, t, &mut picked, true, None);
            }
        }
        for j in links_on_path(tree, &joined) {
            picked.add(tree, j, false);
        }
    }
    let (indices, mode_counts) = picked.entries.into_iter().unzip();
    Selection {
        indices,
        mode_counts,
        ..Selection::default()
    }
}

/// One copy root (an entry a source names or a glob matches; `None` = the context root): a file
/// is copied with its mode (unless `--chmod` replaces it); a directory's contents are copied,
/// not the directory itself, so its own mode does not reach the image; `--exclude` patterns
/// leave out entries below the root (never the root itself, as in BuildKit).
fn copy_root(tree: &Tree, root: Option<usize>, s: &Source, picked: &mut Picked) {
    match root {
        Some(i) if tree.entries[i].kind != Kind::Dir => {
            let mode = !(s.chmod_fixed && tree.entries[i].kind == Kind::File);
            picked.add(tree, i, mode);
        }
        Some(i) => {
            picked.add(tree, i, false);
            add_subtree(tree, i, picked, false, Some(s));
        }
        None => add_subtree_of(tree, "", picked, Some(s)),
    }
}

/// Everything strictly below directory entry `i` (and `i` itself when `include_self`).
fn add_subtree(tree: &Tree, i: usize, picked: &mut Picked, include_self: bool, s: Option<&Source>) {
    if include_self {
        picked.add(tree, i, true);
    }
    if tree.entries[i].kind == Kind::Dir {
        let path = tree.entries[i].path.clone();
        add_subtree_of(tree, &path, picked, s);
    }
}

fn add_subtree_of(tree: &Tree, dir: &str, picked: &mut Picked, s: Option<&Source>) {
    let excludes = s.and_then(exclude_matcher);
    let chmod = s.is_some_and(|s| s.chmod_fixed);
    for j in tree.below(dir) {
        let e = &tree.entries[j];
        if let Some(ex) = &excludes {
            let rel = if dir.is_empty() {
                e.path.as_str()
            } else {
                &e.path[dir.len() + 1..]
            };
            // An excluded directory is still recorded: BuildKit recreates it when something
            // below it is re-included, and counting it can only hash more.
            if e.kind != Kind::Dir && ex.is_excluded(rel) {
                continue;
            }
        }
        picked.add(tree, j, !(chmod && e.kind == Kind::File));
    }
}

/// The `--exclude` patterns of `s` as a matcher, when they can be applied exactly. Where
/// `.dockerignore` reading and BuildKit's `--exclude` matching part ways — `!` exceptions (corner
/// cases of parent results), a leading `/` (stripped by the `.dockerignore` reader, matching
/// nothing in `--exclude`), surrounding spaces (trimmed by the reader only) — nothing is excluded:
/// hashing more is safe, less is not.
fn exclude_matcher(s: &Source) -> Option<DockerIgnore> {
    if s.excludes.is_empty()
        || s.excludes
            .iter()
            .any(|x| x.starts_with(['!', '/']) || x.trim() != x)
    {
        return None;
    }
    DockerIgnore::from_patterns(&s.excludes).ok()
}

/// Call `hit(i, rel)` for every entry strictly below `pivot` (already resolved) that the
/// `--parents` include pattern matches (`.dockerignore` rules: `**` is any depth, including
/// none; a matched directory includes everything below it) and no `--exclude` removes.
fn parents_walk(
    tree: &Tree,
    pivot: &str,
    include: &str,
    s: &Source,
    hit: &mut dyn FnMut(usize, &str),
) {
    let pivot = if pivot == "." { "" } else { pivot };
    if !pivot.is_empty() && tree.find(pivot).is_none() {
        return;
    }
    let Ok(inc) = DockerIgnore::from_patterns([include]) else {
        return;
    };
    let excludes = exclude_matcher(s);
    for j in tree.below(pivot) {
        let path = tree.entries[j].path.as_str();
        let rel = if pivot.is_empty() {
            path
        } else {
            &path[pivot.len() + 1..]
        };
        if !inc.is_excluded(rel) {
            continue;
        }
        if let Some(ex) = &excludes {
            if tree.entries[j].kind != Kind::Dir && ex.is_excluded(rel) {
                continue;
            }
        }
        hit(j, rel);
    }
}

fn everything(tree: &Tree, reason: String) -> Selection {
    Selection {
        indices: tree.all_indices(),
        mode_counts: vec![true; tree.entries.len()],
        whole: Some(reason),
        ..Selection::default()
    }
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '[']) || p.contains('\\')
}

/// Go `filepath.Match` of a whole pattern against a path with the same number of components.
fn glob_match(pattern: &str, path: &str) -> bool {
    if pattern.split('/').count() != path.split('/').count() {
        return false;
    }
    // A malformed pattern matches nothing here; BuildKit would fail the build, which a rebuild
    // would show. The Dockerfile bytes are hashed, so fixing it changes the hash anyway.
    skip_dockerignore::path_match(pattern, path).unwrap_or(false)
}

/// A symlink whose path matches the leading components of `pattern` could be a directory BuildKit
/// descends into while we do not; report the first such link.
fn glob_may_cross_symlink(tree: &Tree, pattern: &str) -> Option<String> {
    let comps: Vec<&str> = pattern.split('/').collect();
    tree.entries.iter().find_map(|e| {
        if !matches!(e.kind, Kind::Symlink(_)) {
            return None;
        }
        let n = e.path.split('/').count();
        if n >= comps.len() {
            return None;
        }
        let prefix = comps[..n].join("/");
        glob_match(&prefix, &e.path).then(|| e.path.clone())
    })
}

/// Join a link's target to the link's directory; absolute targets are rooted at the context.
fn join_link(link_path: &str, target: &str) -> String {
    if target.starts_with('/') {
        clean(target)
    } else {
        let dir = link_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        clean(&format!("{dir}/{target}"))
    }
}

/// Clean like Go's `path.Clean` rooted at `/`: `..` never leaves the root. Returns no leading `/`.
pub fn clean(p: &str) -> String {
    skip_dockerignore::clean_rooted(p)
}

/// Resolve symlinks in every component of `path` within the tree; `None` when a component is
/// missing or the links loop.
fn resolve(tree: &Tree, path: &str) -> Option<String> {
    let mut pending: Vec<String> = clean(path).split('/').rev().map(String::from).collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        if c.is_empty() {
            continue;
        }
        done.push(c);
        let cur = done.join("/");
        let i = tree.find(&cur)?;
        if let Kind::Symlink(target) = &tree.entries[i].kind {
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return None;
            }
            let joined = join_link(&cur, target);
            done.clear();
            for part in joined.split('/').rev() {
                pending.push(part.to_string());
            }
        }
    }
    Some(done.join("/"))
}

/// Whether resolving `path` runs into a symlink loop (more hops than Linux allows).
fn loops(tree: &Tree, path: &str) -> bool {
    let mut pending: Vec<String> = clean(path).split('/').rev().map(String::from).collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        if c.is_empty() {
            continue;
        }
        done.push(c);
        let cur = done.join("/");
        let Some(i) = tree.find(&cur) else {
            return false;
        };
        if let Kind::Symlink(target) = &tree.entries[i].kind {
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return true;
            }
            let joined = join_link(&cur, target);
            done.clear();
            for part in joined.split('/').rev() {
                pending.push(part.to_string());
            }
        }
    }
    false
}

/// Indices of symlinks met while resolving `path` (prefixes that are links), bounded.
fn links_on_path(tree: &Tree, path: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in clean(path).split('/') {
        if !cur.is_empty() {
            cur.push('/');
        }
        cur.push_str(c);
        match tree.find(&cur) {
            Some(i) if matches!(tree.entries[i].kind, Kind::Symlink(_)) => {
                out.push(i);
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::walk::walk;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Tree) {
        let d = tempfile::tempdir().unwrap();
        for p in [
            "rootfs/etc/motd",
            "rootfs/usr/bin/tool",
            "scripts/a.sh",
            "scripts/b.sh",
            "scripts/c.py",
            "README.md",
            "versions/v2/data",
        ] {
            let p = d.path().join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "x").unwrap();
        }
        symlink("versions/v2", d.path().join("current")).unwrap();
        let t = walk(d.path(), &DockerIgnore::default()).unwrap();
        (d, t)
    }

    fn srcs(pats: &[&str]) -> Vec<Source> {
        pats.iter()
            .map(|s| Source::plain(s.to_string(), 1, "COPY"))
            .collect()
    }

    fn sel(t: &Tree, pats: &[&str]) -> Vec<String> {
        select(t, &srcs(pats), None)
            .indices
            .iter()
            .map(|i| t.entries[*i].path.clone())
            .collect()
    }

    #[test]
    fn directory_source_selects_subtree_only() {
        let (_d, t) = setup();
        assert_eq!(
            sel(&t, &["rootfs"]),
            [
                "rootfs",
                "rootfs/etc",
                "rootfs/etc/motd",
                "rootfs/usr",
                "rootfs/usr/bin",
                "rootfs/usr/bin/tool"
            ]
        );
    }

    #[test]
    fn globs_match_per_component() {
        let (_d, t) = setup();
        assert_eq!(sel(&t, &["scripts/*.sh"]), ["scripts/a.sh", "scripts/b.sh"]);
        assert_eq!(sel(&t, &["*.md"]), ["README.md"]);
        assert!(sel(&t, &["*.sh"]).is_empty());
    }

    #[test]
    fn symlink_sources_select_their_targets() {
        let (_d, t) = setup();
        assert_eq!(
            sel(&t, &["current"]),
            ["current", "versions/v2", "versions/v2/data"]
        );
        // Through a linked directory component.
        assert_eq!(
            sel(&t, &["current/data"]),
            ["current", "versions/v2", "versions/v2/data"]
        );
    }

    #[test]
    fn glob_through_symlink_takes_whole_context() {
        let (_d, t) = setup();
        let s = select(&t, &srcs(&["cur*/data"]), None);
        assert!(s.whole.unwrap().contains("current"));
        assert_eq!(s.indices.len(), t.entries.len());
    }

    #[test]
    fn dot_is_everything_and_missing_is_nothing() {
        let (_d, t) = setup();
        assert_eq!(sel(&t, &["."]).len(), t.entries.len());
        assert!(sel(&t, &["nope"]).is_empty());
    }

    #[test]
    fn link_loops_terminate() {
        let d = tempfile::tempdir().unwrap();
        symlink("b", d.path().join("a")).unwrap();
        symlink("a", d.path().join("b")).unwrap();
        let t = walk(d.path(), &DockerIgnore::default()).unwrap();
        assert_eq!(sel(&t, &["a"]), ["a", "b"]);
        assert_eq!(sel(&t, &["a/x"]), ["a", "b"]);
    }

    fn picked(t: &Tree, s: &Selection) -> Vec<(String, bool)> {
        s.indices
            .iter()
            .zip(&s.mode_counts)
            .map(|(i, m)| (t.entries[*i].path.clone(), *m))
            .collect()
    }

    #[test]
    fn a_copy_root_directory_carries_no_mode_and_chmod_hides_file_modes() {
        let (_d, t) = setup();
        let mut src = Source::plain("rootfs".into(), 1, "COPY");
        src.chmod_fixed = true;
        let s = select(&t, &[src], None);
        assert_eq!(
            picked(&t, &s),
            [
                ("rootfs".to_string(), false),
                ("rootfs/etc".to_string(), true),
                ("rootfs/etc/motd".to_string(), false),
                ("rootfs/usr".to_string(), true),
                ("rootfs/usr/bin".to_string(), true),
                ("rootfs/usr/bin/tool".to_string(), false),
            ]
        );
    }

    #[test]
    fn parents_select_matches_and_the_directories_between() {
        let (_d, t) = setup();
        let mut src = Source::plain("rootfs/**/tool".into(), 1, "COPY");
        src.pivot = Some(".".into());
        let s = select(&t, std::slice::from_ref(&src), None);
        assert_eq!(
            picked(&t, &s),
            [
                ("rootfs".to_string(), true),
                ("rootfs/usr".to_string(), true),
                ("rootfs/usr/bin".to_string(), true),
                ("rootfs/usr/bin/tool".to_string(), true),
            ]
        );
        // With a pivot, the pivot itself is not recreated.
        let mut src = Source::plain("rootfs/usr/**/tool".into(), 1, "COPY");
        src.pivot = Some("rootfs".into());
        let s = select(&t, &[src], None);
        let paths: Vec<String> = picked(&t, &s).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            ["rootfs/usr", "rootfs/usr/bin", "rootfs/usr/bin/tool"]
        );
    }

    #[test]
    fn absent_sources_are_reported_even_for_the_whole_context() {
        let (_d, t) = setup();
        let s = select(
            &t,
            &srcs(&["bin/central", "dist/*.whl", "rootfs"]),
            Some("forced".into()),
        );
        let missing: Vec<&str> = s.missing.iter().map(|m| m.pattern.as_str()).collect();
        let empty: Vec<&str> = s.empty_globs.iter().map(|m| m.pattern.as_str()).collect();
        assert_eq!(missing, ["bin/central"]);
        assert_eq!(empty, ["dist/*.whl"]);
    }

    #[test]
    fn cleaning_is_rooted() {
        assert_eq!(clean("../../etc/passwd"), "etc/passwd");
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/"), "");
        assert_eq!(join_link("a/b/link", "../x"), "a/x");
        assert_eq!(join_link("a/link", "/abs"), "abs");
        assert_eq!(join_link("link", "../../../x"), "x");
    }
}
