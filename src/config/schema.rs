//! The config file as written: serde types that reject unknown keys.
//!
//! These types mirror the YAML one to one so that serde's errors point at the user's own keys and
//! lines. Nothing here interprets values; [`super::expand`] turns them into [`super::ImageSpec`]s.

use indexmap::IndexMap;
use serde::Deserialize;

/// The whole `skip-action.yml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Schema version; only `1` exists.
    pub version: u32,
    /// Default repository for every image, e.g. `ghcr.io/acme/devbox`; may use `{name}`,
    /// `{variant}`, matrix values and vars (`quay.io/jupyter/{name}`).
    pub repository: String,
    /// Hex digits of the hash used in `{hash}` (default 12).
    #[serde(default)]
    pub hash_length: Option<usize>,
    /// Default platforms for every image (e.g. `[linux/amd64, linux/arm64]`).
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
    /// Registries reached over plain http besides localhost.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Default `file_modes` of every image.
    #[serde(default)]
    pub file_modes: Option<FileModes>,
    /// Image keys every image starts from (its own keys win; `args` and `vars` merge).
    #[serde(default)]
    pub defaults: Option<RawDefaults>,
    /// The images, in the order the user wrote them.
    pub images: IndexMap<String, RawImage>,
}

/// `defaults:`: the image keys that repeat across images, written once. Templates in them see each
/// image's own `{name}`, `{variant}`, matrix values and vars. Args set here are offered, not
/// imposed: an image whose Dockerfile does not declare one simply does not get it.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub base_arg: Option<BaseArg>,
    #[serde(default)]
    pub args: IndexMap<String, Scalar>,
    #[serde(default)]
    pub vars: IndexMap<String, Option<Scalar>>,
    #[serde(default)]
    pub promote: Option<Vec<RawPromote>>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    #[serde(default)]
    pub context_scope: Option<ContextScope>,
    #[serde(default)]
    pub upstream: Option<Upstream>,
}

/// One entry under `images:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub from: Option<OneOrMany>,
    #[serde(default)]
    pub base_arg: Option<BaseArg>,
    #[serde(default)]
    pub args: IndexMap<String, Scalar>,
    /// Values for templates and names only, never passed to the build (`null` means empty).
    #[serde(default)]
    pub vars: IndexMap<String, Option<Scalar>>,
    #[serde(default)]
    pub variants: Option<IndexMap<String, RawVariant>>,
    #[serde(default)]
    pub matrix: Option<IndexMap<String, serde_yaml::Value>>,
    #[serde(default)]
    pub promote: Option<Vec<RawPromote>>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    #[serde(default)]
    pub context_scope: Option<ContextScope>,
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// Which file modes count (default: the top-level `file_modes`, else `git`).
    #[serde(default)]
    pub file_modes: Option<FileModes>,
    /// Context paths a build job creates before this image is built (a binary, a wheel), each
    /// with the globs (relative to the repository root) of the sources it is made from.
    #[serde(default)]
    pub generated: IndexMap<String, Vec<String>>,
}

/// One entry under `variants:`: build args written inline (`omos: {INSTALL_OMOS: "true"}`), or
/// under `args:`, plus optional `vars:` and a `promote:` that replaces the image's. The three
/// reserved names take a mapping or a list, so an inline build arg (always a scalar) can never be
/// mistaken for one.
#[derive(Debug, Deserialize, Clone, Default)]
pub struct RawVariant {
    #[serde(default)]
    pub args: IndexMap<String, Scalar>,
    #[serde(default)]
    pub vars: IndexMap<String, Option<Scalar>>,
    #[serde(default)]
    pub promote: Option<Vec<RawPromote>>,
    #[serde(flatten)]
    pub inline: IndexMap<String, Scalar>,
}

/// `from: base` or `from: [a, b]`.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `base_arg: BASE_IMAGE` (one parent) or `base_arg: {runtime: RUNTIME_IMAGE, tools: TOOLS_IMAGE}`.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum BaseArg {
    One(String),
    PerParent(IndexMap<String, String>),
}

/// A build-arg value: YAML strings, numbers and booleans are all passed as text.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Scalar {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Scalar {
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }
}

/// `promote: [base-latest]` or `promote: [{tag: latest, repository: docker.io/acme/devbox}]`.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawPromote {
    Tag(String),
    Full(RawPromoteFull),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawPromoteFull {
    pub tag: String,
    #[serde(default)]
    pub repository: Option<String>,
}

/// Which context paths feed the hash.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ContextScope {
    /// Only what COPY/ADD/bind mounts can reach (falls back to `all` when that cannot be bounded).
    #[default]
    Used,
    /// The whole context after `.dockerignore`.
    All,
}

/// How outside `FROM` images enter the hash.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// The reference as written (`ubuntu:24.04`).
    #[default]
    Tag,
    /// The reference and its current digest, resolved from the registry by `decide`.
    Digest,
}

/// Which permission bits of context files count.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum FileModes {
    /// What a git commit records: a regular file is 644 or 755 by its owner-exec bit, a
    /// directory has no mode. The same commit then hashes the same under any umask.
    #[default]
    Git,
    /// Every permission bit as found on disk (`mode & 0o7777`), directories included.
    Exact,
}

impl FileModes {
    /// The name used in the config and in `hash --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileModes::Git => "git",
            FileModes::Exact => "exact",
        }
    }
}
