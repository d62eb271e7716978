//! The config: find it, parse it, validate it, expand it into one [`ImageSpec`] per image.
//!
//! Everything the user can get wrong is caught here, with the file, the key and the fix, so the
//! later stages (hashing, probing, promoting) work on values that are known to make sense. Errors are
//! [`crate::error::UsageError`]s (exit code 2).

mod expand;
pub mod locate;
mod matrix;
pub mod schema;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use skip_registry::RepoRef;

use crate::error::usage;
pub use expand::DEFAULT_BASE_ARG;
pub use locate::KeyPath;
pub use schema::{ContextScope, FileModes, Upstream};
pub use template::Template;

/// Where the config is looked for when `--config` is not given, in order.
pub const DEFAULT_PATHS: [&str; 2] = ["skip-action.yml", ".github/skip-action.yml"];

/// Deepest nesting of `[`/`{` a config may have (counted on the raw text).
pub const MAX_FLOW_NESTING: usize = 200;

/// Default number of hex digits of `{hash}`.
pub const DEFAULT_HASH_LENGTH: usize = 12;

/// A loaded, validated and expanded config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Its text, to find the line of a key for messages ([`Config::at`]).
    text: std::sync::Arc<str>,
    /// Hex digits in `{hash}`.
    pub hash_length: usize,
    /// Registries spoken to over plain http (besides localhost).
    pub insecure_registries: Vec<String>,
    /// Every image, parents before children, otherwise in config order.
    pub images: Vec<ImageSpec>,
}

/// One buildable image after expansion of `variants:` / `matrix:`.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Unique name: `base`, or `devbox/omos` for a variant.
    pub name: String,
    /// The key under `images:` it came from.
    pub image: String,
    /// The variant name, for expanded images.
    pub variant: Option<String>,
    /// Dockerfile path relative to the working directory, as written.
    pub dockerfile: String,
    /// Build context directory relative to the working directory, as written.
    pub context: String,
    /// Repository the content tag lives in, as written (image references are built from it).
    pub repository: String,
    /// The same repository as the registry client addresses it: parsed once, here, with the
    /// client's grammar, so no later stage re-parses (or can fail to parse) it.
    pub repo: RepoRef,
    /// Content tag template (always contains `{hash}`).
    pub tag: Template,
    /// Alias tags moved by `promote`.
    pub promote: Vec<PromoteSpec>,
    /// Build args from the config (parents' refs are added when hashing). Args that are only
    /// offered (see [`ArgOrigin::required`]) are removed once the Dockerfile shows it does not
    /// declare them ([`crate::inputs::drop_undeclared_args`]).
    pub args: BTreeMap<String, String>,
    /// Where each of `args` was set, and whether the Dockerfile must declare it (shared by
    /// the variants whose args come from the same keys: a 12,800-combination matrix holds one).
    pub arg_origins: std::sync::Arc<BTreeMap<String, ArgOrigin>>,
    /// Parents, by expanded name, with the build arg that receives each parent's image ref.
    pub parents: Vec<Parent>,
    /// `--target` stage.
    pub target: Option<String>,
    /// Platforms, sorted and deduplicated.
    pub platforms: Vec<String>,
    /// Platform (as in `platforms`) → runner label, from `runners:`. Empty: the image is built
    /// in one job for all its platforms (no per-platform fan-out, no `merge`). Otherwise it has
    /// exactly one entry per platform (checked by the config).
    pub runners: BTreeMap<String, String>,
    /// Extra input globs, relative to the working directory.
    pub inputs: Vec<String>,
    /// Which context paths count.
    pub scope: ContextScope,
    /// How outside `FROM` images count.
    pub upstream: Upstream,
    /// Which file modes count.
    pub file_modes: FileModes,
    /// Generated context paths and the globs (relative to the working directory) of their
    /// sources, in config order.
    pub generated: Vec<(String, Vec<String>)>,
    /// Template variables known before hashing: `name`, `variant`, matrix values, `vars:`.
    pub vars: BTreeMap<String, String>,
    /// 0 for images without parents, else 1 + the deepest parent's level.
    pub level: usize,
    /// Where its keys were written, for messages after expansion.
    pub keys: SpecKeys,
}

/// Where a build arg was set. Args written on the image itself (`args:`, a variant's args) are
/// *required*: the Dockerfile must declare them, since a misspelt one would be dropped by docker
/// and the image built without it. Matrix values and `defaults:` args are only offered: passed
/// where declared, silently not passed elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgOrigin {
    pub key: KeyPath,
    pub required: bool,
}

/// The config keys behind an image's values (its own, or `defaults.…`), for messages.
#[derive(Debug, Clone, Default)]
pub struct SpecKeys {
    pub dockerfile: KeyPath,
    pub context: KeyPath,
    pub tag: KeyPath,
    pub inputs: KeyPath,
    pub from: KeyPath,
    /// `None` when the default `BASE_IMAGE` / `<PARENT>_IMAGE` applies.
    pub base_arg: Option<KeyPath>,
}

/// A parent of an image and the build arg its image reference is passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub name: String,
    pub arg: String,
}

/// One alias to move on promote.
#[derive(Debug, Clone)]
pub struct PromoteSpec {
    pub tag: Template,
    /// Another repository (cross-repository copy); `None` = the image's own.
    pub repository: Option<String>,
    /// `repository`, parsed once with the registry client's grammar.
    pub repo: Option<RepoRef>,
    /// Where it was written (`images.app.promote[0]`, a variant's, or `defaults.promote[0]`).
    pub key: KeyPath,
}

impl Config {
    /// Find the config: `explicit` if given, else the first of [`DEFAULT_PATHS`] that exists.
    pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
        if let Some(p) = explicit {
            if !p.is_file() {
                return Err(usage(format!(
                    "config file {} not found; pass --config with the path of your skip-action.yml",
                    p.display()
                )));
            }
            check_no_symlink_escape(p)?;
            return Ok(p.to_path_buf());
        }
        for p in DEFAULT_PATHS {
            if Path::new(p).is_file() {
                check_no_symlink_escape(Path::new(p))?;
                return Ok(PathBuf::from(p));
            }
        }
        Err(usage(format!(
            "no config found: looked for {}; create one (see README, \"The config\") or pass --config",
            DEFAULT_PATHS.join(" and ")
        )))
    }

    /// Read, parse and expand the config at `path` (see [`Config::locate`] for where it may be).
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parse and expand config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Config> {
        // The YAML parser spends time quadratic in the nesting of flow collections (`[[[[…`):
        // 100,000 brackets, 195 KiB of config, took minutes. No config nests anywhere near this.
        let mut depth = 0usize;
        for b in text.bytes() {
            match b {
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_FLOW_NESTING {
                        return Err(usage(format!(
                            "{}: brackets nested more than {MAX_FLOW_NESTING} deep; this is not a skip-action config",
                            path.display()
                        )));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        let raw = deserialize(text, path)?;
        expand::expand(raw, &expand::Ctx { path, text })
    }

    /// `file: line N: `key`` for a message about `key` (the line where the text shows it).
    pub fn at(&self, key: &KeyPath) -> String {
        at(&self.path, &self.text, key)
    }

    /// Whether any image is built per platform (`runners:`).
    pub fn per_platform(&self) -> bool {
        self.images.iter().any(|i| !i.runners.is_empty())
    }

    /// Look an image up by its expanded name, with a helpful error.
    pub fn image(&self, name: &str) -> anyhow::Result<&ImageSpec> {
        if let Some(img) = self.images.iter().find(|i| i.name == name) {
            return Ok(img);
        }
        let names: Vec<&str> = self.images.iter().map(|i| i.name.as_str()).collect();
        let shown = if names.len() > 20 {
            format!("{} … ({} images)", names[..20].join(", "), names.len())
        } else {
            names.join(", ")
        };
        Err(usage(format!(
            "no image named `{name}` in {}; images are: {shown}",
            self.path.display()
        )))
    }
}

/// `file: line N: `key`` (without the line when the text does not show the key).
fn at(path: &Path, text: &str, key: &KeyPath) -> String {
    match locate::line_of(text, key) {
        Some(n) => format!("{}: line {n}: `{key}`", path.display()),
        None => format!("{}: `{key}`", path.display()),
    }
}

/// YAML text to [`schema::RawConfig`]: anchors and `<<` merge keys resolved, `x-…` keys (the
/// users' own anchors, as in compose files) dropped at the top level, in `defaults:` and in each
/// image. Errors carry the key path and, looked up in the text, its line.
fn deserialize(text: &str, path: &Path) -> anyhow::Result<schema::RawConfig> {
    let file = path.display();
    let mut value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| usage(format!("{file}: {e}")))?;
    apply_merge(&mut value).map_err(|e| {
        usage(format!(
            "{file}: `<<`: {e}; a merge key takes a mapping or a list of mappings, e.g. `<<: *common`"
        ))
    })?;
    drop_extension_keys(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut key = KeyPath::new(
            e.path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(locate::Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => {
                        Some(locate::Seg::Key(key.clone()))
                    }
                    serde_path_to_error::Segment::Enum { variant } => {
                        Some(locate::Seg::Key(variant.clone()))
                    }
                    serde_path_to_error::Segment::Unknown => None,
                })
                .collect(),
        );
        let msg = e.inner().to_string();
        // An unknown key is reported at its mapping; point at the key itself.
        if let Some(k) = msg
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
        {
            if key.segs().last() != Some(&locate::Seg::Key(k.to_string())) {
                key = key.key(k);
            }
        }
        if key.segs().is_empty() {
            usage(format!("{file}: {msg}"))
        } else {
            usage(format!("{}: {msg}", at(path, text, &key)))
        }
    })
}

/// Resolve YAML merge keys (`<<: *anchor`, `<<: [*a, *b]`) everywhere, like
/// `serde_yaml::Value::apply_merge`, but keeping the written order: merged keys take the place
/// of the `<<` entry. Order matters here — images and variants are built and listed in it.
fn apply_merge(value: &mut serde_yaml::Value) -> Result<(), String> {
    use serde_yaml::{Mapping, Value};
    let mut stack = vec![value];
    while let Some(node) = stack.pop() {
        match node {
            Value::Mapping(m) if m.contains_key("<<") => {
                let explicit: Vec<Value> = m.keys().filter(|k| *k != "<<").cloned().collect();
                let mut out = Mapping::with_capacity(m.len());
                for (k, v) in std::mem::take(m) {
                    if k != "<<" {
                        out.insert(k, v);
                        continue;
                    }
                    let sources = match v {
                        Value::Mapping(src) => vec![src],
                        Value::Sequence(seq) => seq
                            .into_iter()
                            .map(|s| match s {
                                Value::Mapping(src) => Ok(src),
                                _ => Err("a merged list holds something other than a mapping"
                                    .to_string()),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => return Err("the value is not a mapping".into()),
                    };
                    // Earlier sources win over later ones, explicit keys over all.
                    for src in sources {
                        for (mk, mv) in src {
                            if !explicit.contains(&mk) && !out.contains_key(&mk) {
                                out.insert(mk, mv);
                            }
                        }
                    }
                }
                *m = out;
                stack.push(node);
            }
            Value::Mapping(m) => stack.extend(m.values_mut()),
            Value::Sequence(s) => stack.extend(s),
            Value::Tagged(t) => stack.push(&mut t.value),
            _ => {}
        }
    }
    Ok(())
}

/// Remove `x-…` keys where users keep their own anchors: top level, `defaults:`, each image.
fn drop_extension_keys(value: &mut serde_yaml::Value) {
    fn strip(m: &mut serde_yaml::Mapping) {
        m.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-")));
    }
    let serde_yaml::Value::Mapping(top) = value else {
        return;
    };
    strip(top);
    if let Some(serde_yaml::Value::Mapping(d)) = top.get_mut("defaults") {
        strip(d);
    }
    if let Some(serde_yaml::Value::Mapping(images)) = top.get_mut("images") {
        for (_, img) in images.iter_mut() {
            if let serde_yaml::Value::Mapping(m) = img {
                strip(m);
            }
        }
    }
}

/// A config named by a relative path inside the working directory (the checkout) must not be a
/// symlink to a file outside it: the checkout may come from a fork's pull request, and a parse
/// error quotes the file's text (`invalid type: string "…"`), which would print whatever the link
/// points at — a docker `config.json`, a token file. An absolute path or one with `..` is the
/// workflow author's explicit choice and is read as given.
fn check_no_symlink_escape(p: &Path) -> anyhow::Result<()> {
    use std::path::Component;
    if p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Ok(());
    }
    let cwd = std::fs::canonicalize(".").context("reading the working directory")?;
    let real =
        std::fs::canonicalize(p).with_context(|| format!("resolving config {}", p.display()))?;
    if !real.starts_with(&cwd) {
        return Err(usage(format!(
            "config {} is a symlink to {}, outside the working directory {}; the config must be a file of the checkout",
            p.display(),
            real.display(),
            cwd.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> serde_yaml::Value {
        let mut v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        apply_merge(&mut v).unwrap();
        drop_extension_keys(&mut v);
        v
    }

    fn keys(v: &serde_yaml::Value) -> Vec<&str> {
        v.as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect()
    }

    #[test]
    fn merged_keys_take_the_place_of_the_merge_and_explicit_keys_win() {
        let v = value(
            "x-a: &a { one: 1, two: 2 }\nx-b: &b { two: 20, three: 3 }\nm:\n  zero: 0\n  <<: [*a, *b]\n  two: 200\n",
        );
        assert_eq!(keys(&v), ["m"]);
        let m = &v["m"];
        assert_eq!(keys(m), ["zero", "one", "three", "two"]);
        assert_eq!(m["two"], 200);
        assert_eq!(m["three"], 3);
    }

    #[test]
    fn extension_keys_go_only_where_the_config_ignores_them() {
        let v = value(
            "x-top: 1\ndefaults: { x-d: 1, tag: t }\nimages:\n  x-img: { x-i: 1, args: { x-arg: 1 } }\n",
        );
        assert_eq!(keys(&v), ["defaults", "images"]);
        assert_eq!(keys(&v["defaults"]), ["tag"]);
        // An image may be named `x-img`; inside it `x-i` goes, an arg named `x-arg` stays.
        assert_eq!(keys(&v["images"]), ["x-img"]);
        assert_eq!(keys(&v["images"]["x-img"]), ["args"]);
        assert_eq!(keys(&v["images"]["x-img"]["args"]), ["x-arg"]);
    }

    #[test]
    fn a_merge_of_a_scalar_is_an_error() {
        let mut v: serde_yaml::Value = serde_yaml::from_str("m: { <<: 1 }").unwrap();
        assert!(apply_merge(&mut v).is_err());
        let err = Config::parse(
            "version: 1\nrepository: a/b\nimages:\n  a: { <<: [x] }\n",
            Path::new("c.yml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("c.yml") && err.contains("<<: *common"),
            "{err}"
        );
    }
}
