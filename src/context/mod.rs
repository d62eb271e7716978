//! The build context as BuildKit would send it: ignore rules, the walk, and the selection of what
//! COPY/ADD/bind mounts can reach.

pub mod select;
pub mod walk;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use skip_dockerignore::DockerIgnore;

use crate::error::usage;

/// The ignore rules that apply to one (Dockerfile, context) pair.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    /// The file they came from, if any.
    pub file: Option<PathBuf>,
    /// The file's text, used as a cache key (two images with the same rules share one walk).
    pub text: String,
    pub rules: DockerIgnore,
}

/// Load what BuildKit would use: `<dockerfile>.dockerignore` beside the Dockerfile wins over
/// `<context>/.dockerignore`; neither means nothing is ignored.
pub fn load_ignore(
    workspace: &Path,
    dockerfile: &Path,
    context: &Path,
) -> anyhow::Result<IgnoreRules> {
    let mut specific = dockerfile.as_os_str().to_owned();
    specific.push(".dockerignore");
    let candidates = [PathBuf::from(specific), context.join(".dockerignore")];
    for file in candidates {
        match read_inside(workspace, &file) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    usage(format!(
                        "{}: not UTF-8 text; save it as UTF-8",
                        file.display()
                    ))
                })?;
                let rules = DockerIgnore::parse(&text)
                    .map_err(|e| usage(format!("{}: {e}", file.display())))?;
                return Ok(IgnoreRules {
                    file: Some(file),
                    text,
                    rules,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", file.display()));
            }
        }
    }
    Ok(IgnoreRules {
        file: None,
        text: String::new(),
        rules: DockerIgnore::default(),
    })
}

/// Read a file that must resolve (through any symlinks) to a place inside `workspace`.
///
/// A config or ignore file from a fork's pull request is untrusted: a symlink to `/etc/shadow`
/// must not be read, or its lines could end up in an error message.
pub fn read_inside(workspace: &Path, file: &Path) -> std::io::Result<Vec<u8>> {
    let real = inside(workspace, file)?;
    std::fs::read(real)
}

/// Canonicalize `path` and check that it lies inside `workspace` (already canonical).
pub fn inside(workspace: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let real = std::fs::canonicalize(path)?;
    if real.starts_with(workspace) {
        Ok(real)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} resolves to {}, outside the workspace {}; keep build inputs inside the checkout",
                path.display(),
                real.display(),
                workspace.display()
            ),
        ))
    }
}
