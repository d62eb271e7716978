//! Walk a build context once, the way BuildKit would send it.
//!
//! The walk records what the build can see of each entry — its context-relative path, type,
//! permission bits, size and symlink target — and nothing that differs between checkouts of the
//! same commit (mtime, owner, inode, the absolute path). Symlinks are recorded, never followed, so
//! nothing outside the context is read. `.dockerignore` is applied here, with Docker's rule that an
//! entry is left out when it or any parent matches; a directory is only skipped whole when no `!`
//! exception could bring back anything below it.

use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use skip_dockerignore::DockerIgnore;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symlink and its target, as stored in the link (not resolved).
    Symlink(String),
    /// A FIFO, socket or device node: recorded by type and mode only.
    Other,
}

/// One entry of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Context-relative, `/`-separated, no leading `./`.
    pub path: String,
    pub kind: Kind,
    /// Permission bits (`mode & 0o7777`), as COPY would preserve them.
    pub mode: u32,
    /// Bytes, for files.
    pub size: u64,
}

/// A walked context: entries sorted by path (byte order), so every subtree is a contiguous range.
#[derive(Debug)]
pub struct Tree {
    /// The context directory on disk.
    pub root: PathBuf,
    pub entries: Vec<Entry>,
}

impl Tree {
    /// Index of the entry at `path`, if the context has it.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
    }

    /// Index range of the entries strictly below directory `path` ("" = the whole tree).
    pub fn below(&self, path: &str) -> std::ops::Range<usize> {
        if path.is_empty() {
            return 0..self.entries.len();
        }
        let prefix = format!("{path}/");
        let start = self
            .entries
            .partition_point(|e| e.path.as_str() < prefix.as_str());
        let end =
            start + self.entries[start..].partition_point(|e| e.path.starts_with(prefix.as_str()));
        start..end
    }

    /// Every entry's index (for trees that count whole, like `inputs:`).
    pub fn all_indices(&self) -> Vec<usize> {
        (0..self.entries.len()).collect()
    }

    /// Absolute path on disk of entry `i`.
    pub fn disk_path(&self, i: usize) -> PathBuf {
        self.root.join(&self.entries[i].path)
    }
}

/// Walk `root` applying `ignore`. Fails on unreadable entries and non-UTF-8 names (which would
/// otherwise have to be hashed lossily, and two names could then collide).
pub fn walk(root: &Path, ignore: &DockerIgnore) -> anyhow::Result<Tree> {
    let meta = fs::metadata(root)
        .with_context(|| format!("build context {} is not readable", root.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("build context {} is not a directory", root.display());
    }
    let mut entries = Vec::new();
    walk_dir(root, "", ignore, &mut entries)?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Tree {
        root: root.to_path_buf(),
        entries,
    })
}

/// Walk one directory; returns whether anything below it was kept (so an excluded directory that
/// holds re-included entries is still recorded, as BuildKit recreates it).
fn walk_dir(
    root: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    out: &mut Vec<Entry>,
) -> anyhow::Result<bool> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let rd = fs::read_dir(&dir).with_context(|| format!("reading directory {}", dir.display()))?;
    let mut kept_any = false;
    for item in rd {
        let item = item.with_context(|| format!("reading directory {}", dir.display()))?;
        let name = item.file_name();
        let name = std::str::from_utf8(name.as_bytes()).map_err(|_| {
            anyhow::anyhow!(
                "{}: file name is not UTF-8; rename it or exclude it in .dockerignore",
                dir.join(&name).display()
            )
        })?;
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let abs = dir.join(name);
        let md =
            fs::symlink_metadata(&abs).with_context(|| format!("reading {}", abs.display()))?;
        let ft = md.file_type();
        let excluded = ignore.is_excluded(&path);
        let mode = md.mode() & 0o7777;
        if ft.is_dir() {
            if excluded && ignore.can_skip_dir(&path) {
                continue;
            }
            let pos = out.len();
            out.push(Entry {
                path: path.clone(),
                kind: Kind::Dir,
                mode,
                size: 0,
            });
            let kept_below = walk_dir(root, &path, ignore, out)?;
            if excluded && !kept_below {
                out.truncate(pos);
            } else {
                kept_any = true;
            }
            continue;
        }
        if excluded {
            continue;
        }
        let kind = if ft.is_file() {
            Kind::File
        } else if ft.is_symlink() {
            let target =
                fs::read_link(&abs).with_context(|| format!("reading link {}", abs.display()))?;
            let target = std::str::from_utf8(target.as_os_str().as_bytes())
                .map_err(|_| anyhow::anyhow!("{}: symlink target is not UTF-8", abs.display()))?
                .to_string();
            Kind::Symlink(target)
        } else {
            Kind::Other
        };
        let size = if kind == Kind::File { md.len() } else { 0 };
        out.push(Entry {
            path,
            kind,
            mode,
            size,
        });
        kept_any = true;
    }
    Ok(kept_any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let p = d.path().join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, c).unwrap();
        }
        d
    }

    fn paths(t: &Tree) -> Vec<&str> {
        t.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn records_types_modes_and_links_without_following() {
        let d = tree(&[("a/x.sh", "echo"), ("b.txt", "b")]);
        fs::set_permissions(d.path().join("a/x.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("/etc/passwd", d.path().join("link")).unwrap();
        fs::create_dir(d.path().join("empty")).unwrap();
        let t = walk(d.path(), &DockerIgnore::default()).unwrap();
        assert_eq!(paths(&t), ["a", "a/x.sh", "b.txt", "empty", "link"]);
        assert_eq!(t.entries[1].mode, 0o755);
        assert_eq!(t.entries[4].kind, Kind::Symlink("/etc/passwd".into()));
        assert_eq!(t.entries[3].kind, Kind::Dir);
    }

    #[test]
    fn applies_dockerignore_with_exceptions() {
        let d = tree(&[
            ("node_modules/a/x", "1"),
            ("node_modules/keep/y", "2"),
            ("src/main.rs", "3"),
            ("README.md", "4"),
        ]);
        let ig = DockerIgnore::parse("node_modules\n!node_modules/keep\n*.md\n").unwrap();
        let t = walk(d.path(), &ig).unwrap();
        assert_eq!(
            paths(&t),
            [
                "node_modules",
                "node_modules/keep",
                "node_modules/keep/y",
                "src",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn subtree_ranges() {
        let d = tree(&[("a/1", ""), ("a/b/2", ""), ("a-b", ""), ("ab", "")]);
        let t = walk(d.path(), &DockerIgnore::default()).unwrap();
        let r = t.below("a");
        let below: Vec<&str> = t.entries[r].iter().map(|e| e.path.as_str()).collect();
        assert_eq!(below, ["a/1", "a/b", "a/b/2"]);
        assert!(t.below("zzz").is_empty());
        assert_eq!(t.below("").len(), t.entries.len());
    }
}
