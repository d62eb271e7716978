//! Key paths (`images.devbox.variants.omos.INSTALL_OMOS`) and the config line they were written on.
//!
//! The config is deserialized from a YAML value (after `<<` merges and `x-` keys are resolved), and
//! values carry no positions. Messages still name the line: the path is looked up in the text,
//! key by key along block indentation (and inside a flow mapping on one line). A key that came
//! from an anchor elsewhere is not under its image in the text; the line of the deepest key that
//! is found is given instead — the image the value applies to.

use std::fmt;
use std::sync::Arc;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path of keys and list indexes into the config, shown as `images.app.inputs[0]`. Every
/// expanded image carries the keys its values came from (12,800 variants of one image share
/// them), so a clone is a reference count, not a copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Arc<[Seg]>);

impl KeyPath {
    /// A path of the given steps.
    pub fn new(segs: Vec<Seg>) -> Self {
        KeyPath(segs.into())
    }

    /// The steps.
    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// A path of one top-level key.
    pub fn root(key: &str) -> Self {
        Self::new(vec![Seg::Key(key.to_string())])
    }

    /// `images.<name>`.
    pub fn image(name: &str) -> Self {
        Self::root("images").key(name)
    }

    /// This path with one more key.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.0.to_vec();
        p.push(Seg::Key(k.to_string()));
        Self::new(p)
    }

    /// This path with a list index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.0.to_vec();
        p.push(Seg::Index(i));
        Self::new(p)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Indentation and content of a line that carries YAML (not blank, not a comment).
fn content(line: &str) -> Option<(usize, &str)> {
    let t = line.trim_start_matches(' ');
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    Some((line.len() - t.len(), t))
}

/// Whether `t` (a line's content) starts with the mapping key `k`: `k:`, `"k":` or `'k':`.
fn starts_with_key(t: &str, k: &str) -> bool {
    let t = t.strip_prefix("- ").map(str::trim_start).unwrap_or(t);
    for q in ["", "\"", "'"] {
        let quoted = format!("{q}{k}{q}");
        if let Some(rest) = t.strip_prefix(&quoted) {
            let rest = rest.trim_start_matches(' ');
            if rest == ":" || rest.starts_with(": ") || rest.starts_with(":\t") {
                return true;
            }
        }
    }
    false
}

/// Whether a flow mapping on this line names `k` as a key (`{ k: v, … }`).
fn flow_has_key(t: &str, k: &str) -> bool {
    let Some(open) = t.find('{') else {
        return false;
    };
    let body = &t[open + 1..];
    body.split([',', '{'])
        .any(|part| starts_with_key(part.trim_start(), k))
}

/// The 1-based line of `path` in `text`, or of the deepest prefix of it that is found.
pub fn line_of(text: &str, path: &KeyPath) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent_of = |i: usize| content(lines[i]).map(|(ind, _)| ind);
    // The block searched: lines [start, end), whose entries sit deeper than `parent`; `item` is
    // the dash line of a list item whose first key shares the dash's line.
    let (mut start, mut end) = (0usize, lines.len());
    let mut parent: Option<usize> = None;
    let mut item: Option<usize> = None;
    let mut found: Option<usize> = None;
    for seg in path.segs() {
        // A flow collection on the last found line holds everything below it.
        if let Some(f) = found {
            let t = content(lines[f]).map(|(_, t)| t).unwrap_or("");
            let t = t.strip_prefix("- ").unwrap_or(t);
            let value = t.split_once(':').map(|(_, v)| v.trim_start()).unwrap_or(t);
            if value.starts_with('{') || value.starts_with('[') {
                match seg {
                    Seg::Key(k) if flow_has_key(value, k) => continue,
                    Seg::Index(_) => continue,
                    Seg::Key(_) => break,
                }
            }
        }
        let (hit, ind) = match seg {
            Seg::Key(k) => {
                let child = match item {
                    Some(d) => indent_of(d).map(|i| i + 2),
                    None => (start..end)
                        .filter_map(indent_of)
                        .find(|ind| parent.is_none_or(|p| *ind > p)),
                };
                let Some(child) = child else { break };
                let on_dash =
                    item.filter(|&d| content(lines[d]).is_some_and(|(_, t)| starts_with_key(t, k)));
                let hit = on_dash.or_else(|| {
                    (start..end).find(|&i| {
                        content(lines[i]).is_some_and(|(ind, t)| {
                            ind == child && !t.starts_with("- ") && starts_with_key(t, k)
                        })
                    })
                });
                (hit, child)
            }
            Seg::Index(n) => {
                // Block sequences may sit at their key's own indentation.
                let child = (start..end)
                    .filter_map(|i| content(lines[i]))
                    .find(|(ind, t)| t.starts_with('-') && parent.is_none_or(|p| *ind >= p))
                    .map(|(ind, _)| ind);
                let Some(child) = child else { break };
                let hit = (start..end)
                    .filter(|&i| {
                        content(lines[i]).is_some_and(|(ind, t)| ind == child && t.starts_with('-'))
                    })
                    .nth(*n);
                (hit, child)
            }
        };
        let Some(hit) = hit else { break };
        found = Some(hit);
        item = matches!(seg, Seg::Index(_)).then_some(hit);
        start = hit + 1;
        end = (start..end)
            .find(|&i| indent_of(i).is_some_and(|i2| i2 <= ind))
            .unwrap_or(end);
        parent = Some(ind);
    }
    found.map(|f| f + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "version: 1
repository: ghcr.io/a/b
x-common: &c
  dockerfile: D
images:
  base:
    tag: base-{hash}   # comment
    inputs:
      - a/*
      - b/*
  devbox:
    <<: *c
    variants:
      omos: { INSTALL_OMOS: \"true\", INSTALL_PI: \"false\" }
      pi:
        INSTALL_PI: \"true\"
    promote: [latest]
";

    fn at(path: KeyPath) -> Option<usize> {
        line_of(TEXT, &path)
    }

    #[test]
    fn finds_block_keys_items_and_flow_keys() {
        assert_eq!(at(KeyPath::root("images")), Some(5));
        assert_eq!(at(KeyPath::image("base").key("tag")), Some(7));
        assert_eq!(at(KeyPath::image("base").key("inputs").index(1)), Some(10));
        assert_eq!(
            at(KeyPath::image("devbox")
                .key("variants")
                .key("omos")
                .key("INSTALL_PI")),
            Some(14)
        );
        assert_eq!(
            at(KeyPath::image("devbox")
                .key("variants")
                .key("pi")
                .key("INSTALL_PI")),
            Some(16)
        );
        assert_eq!(
            at(KeyPath::image("devbox").key("promote").index(0)),
            Some(17)
        );
    }

    #[test]
    fn a_key_from_an_anchor_falls_back_to_its_image() {
        assert_eq!(at(KeyPath::image("devbox").key("dockerfile")), Some(11));
        assert_eq!(at(KeyPath::image("nope")), Some(5));
        assert_eq!(line_of("", &KeyPath::root("images")), None);
    }

    #[test]
    fn paths_display_as_written() {
        let p = KeyPath::image("app").key("inputs").index(2);
        assert_eq!(p.to_string(), "images.app.inputs[2]");
    }
}
