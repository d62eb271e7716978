//! `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY`, written safely.
//!
//! Values go out in the multi-line form `name<<DELIM`…`DELIM` with a random delimiter that is
//! checked not to occur in the value, so a value with newlines (an image name or arg from a fork's
//! pull request) can never end the heredoc early and inject another output. All outputs are written
//! in one append at the very end, after the whole decision succeeded; if that append fails half-way
//! the file is cut back to its previous length, so a step never leaves half its outputs behind.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// Outputs in the order they were set.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    entries: Vec<(String, String)>,
}

impl Outputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set (or replace) an output.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = value,
            None => self.entries.push((name.to_string(), value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The file-command text for all outputs.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.entries {
            let delim = loop {
                let d = format!("ghadelimiter_{}", random_hex());
                if !value.contains(&d) && !name.contains(&d) {
                    break d;
                }
            };
            out.push_str(&format!("{name}<<{delim}\n{value}\n{delim}\n"));
        }
        out
    }

    /// Append to `$GITHUB_OUTPUT` when set; returns whether it was written.
    pub fn write_to_env(&self) -> anyhow::Result<bool> {
        match std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty()) {
            Some(p) => {
                append_all_or_nothing(Path::new(&p), &self.render())
                    .with_context(|| format!("writing outputs to {}", Path::new(&p).display()))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Append Markdown to `$GITHUB_STEP_SUMMARY` when set.
pub fn write_summary(markdown: &str) -> anyhow::Result<()> {
    if let Some(p) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        append_all_or_nothing(Path::new(&p), markdown)
            .with_context(|| format!("writing the step summary to {}", Path::new(&p).display()))?;
    }
    Ok(())
}

/// Write `text` to a new file `<prefix>-<random>.json` under `$RUNNER_TEMP/skip-action/` and
/// return its path; `None` outside a runner (no `RUNNER_TEMP`).
///
/// Outputs have limits (1 MB per job output on GitHub, and the runner's expression evaluator has
/// a memory cap for every output a composite action declares); a file in the runner's temp
/// directory has none, and later steps of the same job read it by the path given as an output.
/// The name is fresh each time (two decide steps in one job must not share a file), and the file
/// is written completely, to a temporary name, before it gets its final name.
pub fn write_runner_file(prefix: &str, text: &str) -> anyhow::Result<Option<std::path::PathBuf>> {
    let Some(tmp) = std::env::var_os("RUNNER_TEMP").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let dir = Path::new(&tmp).join("skip-action");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = format!("{prefix}-{}.json", random_hex());
    let part = dir.join(format!(".{name}.part"));
    let path = dir.join(name);
    std::fs::write(&part, text).with_context(|| format!("writing {}", part.display()))?;
    std::fs::rename(&part, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(Some(path))
}

/// Append `text` in one write; on failure, truncate back to the length before.
fn append_all_or_nothing(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let before = f.metadata()?.len();
    let res = f.write_all(text.as_bytes()).and_then(|_| f.flush());
    if let Err(e) = res {
        let _ = f.set_len(before);
        return Err(e);
    }
    Ok(())
}

/// 128 random bits as hex, from the OS-seeded hasher keys (no extra crate needed).
fn random_hex() -> String {
    let a = RandomState::new().build_hasher().finish();
    let mut h = RandomState::new().build_hasher();
    h.write_u64(a);
    format!("{a:016x}{:016x}", h.finish())
}

/// Parse file-command text back into (name, value) pairs — what the runner does; used by tests.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        if line.is_empty() && lines.peek().is_none() {
            break;
        }
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            loop {
                match lines.next() {
                    Some(l) if l == delim => break,
                    Some(l) => value.push(l),
                    None => return Err(format!("unterminated value for {name}")),
                }
            }
            out.push((name.to_string(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_string(), value.to_string()));
        } else {
            return Err(format!("bad line {line:?}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_newlines_cannot_inject_outputs() {
        let mut o = Outputs::new();
        let evil = "x\nneed_build=true\nEOF\nmatrix<<EOF\n{}\nEOF";
        o.set("name", evil);
        o.set("need_build", "false");
        let parsed = parse(&o.render()).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("name".to_string(), evil.to_string()),
                ("need_build".to_string(), "false".to_string())
            ]
        );
    }

    #[test]
    fn delimiters_are_random() {
        assert_ne!(random_hex(), random_hex());
        let mut o = Outputs::new();
        o.set("a", "1");
        assert_ne!(o.render(), o.render());
    }

    #[test]
    fn set_replaces_and_keeps_order() {
        let mut o = Outputs::new();
        o.set("a", "1");
        o.set("b", "2");
        o.set("a", "3");
        assert_eq!(o.iter().collect::<Vec<_>>(), [("a", "3"), ("b", "2")]);
    }

    #[test]
    fn append_keeps_what_was_there() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out");
        std::fs::write(&p, "earlier=1\n").unwrap();
        append_all_or_nothing(&p, "later<<D\nx\nD\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "earlier=1\nlater<<D\nx\nD\n"
        );
    }
}
