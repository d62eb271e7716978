//! Which entries of a walked context the build can reach.
//!
//! The Dockerfile analysis yields source patterns (`rootfs`, `scripts/*.sh`, `.`); this module maps
//! them onto the [`Tree`] the way BuildKit resolves COPY/ADD sources: a path selects itself and
//! everything below it, a glob (Go `filepath.Match`, per path component) selects every match and
//! everything below each match. Symlinks are never followed on disk, but a selected symlink also
//! selects its target inside the context, since COPY copies what a link points to. Whenever this
//! cannot be decided exactly (a glob that could pass through a symlinked directory), the whole
//! context is selected — hashing too much costs a rebuild, hashing too little ships a stale image.

use std::collections::BTreeSet;

use super::walk::{Kind, Tree};

/// The selected entries, as sorted indices into [`Tree::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub indices: Vec<usize>,
    /// Why the whole context was taken, when it was.
    pub whole: Option<String>,
}

/// Symlink hops allowed while resolving one path (Linux's limit).
const MAX_LINK_HOPS: usize = 40;

/// Select for `patterns` (cleaned, context-relative, `.` = everything). `whole` forces the whole
/// context with that reason.
pub fn select(tree: &Tree, patterns: &[String], whole: Option<String>) -> Selection {
    if let Some(reason) = whole {
        return everything(tree, reason);
    }
    let mut picked: BTreeSet<usize> = BTreeSet::new();
    let mut link_queue: Vec<usize> = Vec::new();
    for pat in patterns {
        if pat == "." || pat.is_empty() {
            return everything(tree, format!("a source is the whole context (`{pat}`)"));
        }
        if has_glob(pat) {
            if let Some(link) = glob_may_cross_symlink(tree, pat) {
                return everything(
                    tree,
                    format!("glob `{pat}` may pass through symlink `{link}`"),
                );
            }
            for (i, e) in tree.entries.iter().enumerate() {
                if glob_match(pat, &e.path) {
                    add_subtree(tree, i, &mut picked, &mut link_queue);
                }
            }
        } else {
            if let Some(i) = resolve(tree, pat).and_then(|real| tree.find(&real)) {
                add_subtree(tree, i, &mut picked, &mut link_queue);
            }
            // The literal path may go through links: select the links on the way, too, so that
            // retargeting one of them changes the hash.
            for i in links_on_path(tree, pat) {
                picked.insert(i);
                link_queue.push(i);
            }
        }
    }
    // Follow selected symlinks to their targets inside the context (transitively, loop-safe).
    let mut followed: BTreeSet<usize> = BTreeSet::new();
    while let Some(i) = link_queue.pop() {
        if !followed.insert(i) {
            continue;
        }
        let Kind::Symlink(target) = &tree.entries[i].kind else {
            continue;
        };
        let joined = join_link(&tree.entries[i].path, target);
        if let Some(real) = resolve(tree, &joined) {
            if let Some(t) = tree.find(&real) {
                add_subtree(tree, t, &mut picked, &mut link_queue);
            }
        }
        for j in links_on_path(tree, &joined) {
            picked.insert(j);
            link_queue.push(j);
        }
    }
    Selection {
        indices: picked.into_iter().collect(),
        whole: None,
    }
}

fn everything(tree: &Tree, reason: String) -> Selection {
    Selection {
        indices: tree.all_indices(),
        whole: Some(reason),
    }
}

fn add_subtree(tree: &Tree, i: usize, picked: &mut BTreeSet<usize>, links: &mut Vec<usize>) {
    let e = &tree.entries[i];
    let range = match e.kind {
        Kind::Dir => tree.below(&e.path),
        _ => 0..0,
    };
    for j in std::iter::once(i).chain(range) {
        if picked.insert(j) && matches!(tree.entries[j].kind, Kind::Symlink(_)) {
            links.push(j);
        }
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
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
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
    use skip_dockerignore::DockerIgnore;
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

    fn sel(t: &Tree, pats: &[&str]) -> Vec<String> {
        let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
        select(t, &pats, None)
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
        let s = select(&t, &["cur*/data".to_string()], None);
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
