//! The config file as written: serde types that reject unknown keys.
//!
//! These types mirror the YAML one to one so that serde's errors point at the user's own keys and
//! lines. Nothing here interprets values; [`super::expand`] turns them into [`super::ImageSpec`]s.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

/// The whole `skip-action.yml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Schema version; only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Default repository for every image, e.g. `ghcr.io/acme/devbox`; may use `{name}`,
    /// `{variant}`, matrix values and vars (`quay.io/jupyter/{name}`).
    pub repository: String,
    /// Hex digits of the hash used in `{hash}` (default 12).
    #[serde(default)]
    #[schemars(range(min = 7, max = 64))]
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
    /// Platform → label of the runner that builds it natively (`linux/arm64: ubuntu-24.04-arm`): every image is then built one platform per job, and `merge` writes its content tag as one index.
    #[serde(default)]
    pub runners: Option<IndexMap<String, String>>,
    /// The images, in the order the user wrote them.
    pub images: IndexMap<String, RawImage>,
}

/// `defaults:`: the image keys that repeat across images, written once. Templates in them see each
/// image's own `{name}`, `{variant}`, matrix values and vars. Args set here are offered, not
/// imposed: an image whose Dockerfile does not declare one simply does not get it.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Path of the Dockerfile (default `Dockerfile`); may use `{name}`, `{variant}`, matrix values and vars.
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Build context directory (default `.`); placeholders as `dockerfile`.
    #[serde(default)]
    pub context: Option<String>,
    /// Content tag template; must contain `{hash}` (default `{name}-{hash}`, with variants `{name}-{variant}-{hash}`).
    #[serde(default)]
    pub tag: Option<String>,
    /// Build arg that receives the parent's image reference (default `BASE_IMAGE`); the Dockerfile must use it in `FROM`. With several parents `{parent: ARG}`.
    #[serde(default)]
    pub base_arg: Option<BaseArg>,
    /// Build args offered to every image: passed only where its Dockerfile declares them.
    #[serde(default)]
    pub args: IndexMap<String, Scalar>,
    /// Values for templates and names only, never passed to the build (`null` means empty).
    #[serde(default)]
    pub vars: IndexMap<String, Option<Scalar>>,
    /// Aliases moved by `promote`: tag templates, or `{tag, repository}` for another repository.
    #[serde(default)]
    pub promote: Option<Vec<RawPromote>>,
    /// The `--target` stage.
    #[serde(default)]
    pub target: Option<String>,
    /// Extra globs (relative to the repository root) that feed the hash; each must match something.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    /// `used` (default): only what COPY/ADD/bind mounts reach; `all`: the whole context.
    #[serde(default)]
    pub context_scope: Option<ContextScope>,
    /// `tag` (default): outside images count as written; `digest`: also by their current digest.
    #[serde(default)]
    pub upstream: Option<Upstream>,
}

/// One entry under `images:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// Path of the Dockerfile (default `Dockerfile`); may use `{name}`, `{variant}`, matrix values and vars.
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Build context directory (default `.`); placeholders as `dockerfile`.
    #[serde(default)]
    pub context: Option<String>,
    /// Content tag template; must contain `{hash}` (default `{name}-{hash}`, with variants `{name}-{variant}-{hash}`).
    #[serde(default)]
    pub tag: Option<String>,
    /// Where this image lives (default: the top-level `repository`); placeholders as `dockerfile`.
    #[serde(default)]
    pub repository: Option<String>,
    /// Parent image(s) by name: `base`, a list, or templates such as `runtime/{lang}`.
    #[serde(default)]
    pub from: Option<OneOrMany>,
    /// Build arg that receives the parent's image reference (default `BASE_IMAGE`); the Dockerfile must use it in `FROM`. With several parents `{parent: ARG}`.
    #[serde(default)]
    pub base_arg: Option<BaseArg>,
    /// Build args; each must be declared by the Dockerfile (`ARG NAME`).
    #[serde(default)]
    pub args: IndexMap<String, Scalar>,
    /// Values for templates and names only, never passed to the build (`null` means empty).
    #[serde(default)]
    pub vars: IndexMap<String, Option<Scalar>>,
    /// One image per entry, named `<image>/<variant>`: inline build args, or `args:`, `vars:`, `promote:`.
    #[serde(default)]
    pub variants: Option<IndexMap<String, RawVariant>>,
    /// Axes whose product makes the variants (GitHub's `include`/`exclude`); values are placeholders, and build args where the Dockerfile declares them.
    #[serde(default)]
    #[schemars(with = "Option<MatrixSchema>")]
    pub matrix: Option<IndexMap<String, serde_yaml::Value>>,
    /// Aliases moved by `promote`: tag templates, or `{tag, repository}` for another repository.
    #[serde(default)]
    pub promote: Option<Vec<RawPromote>>,
    /// The `--target` stage.
    #[serde(default)]
    pub target: Option<String>,
    /// Platforms built, e.g. `[linux/amd64, linux/arm64]` (default: the top-level `platforms`).
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
    /// Platform → runner label for this image, over the top-level `runners:` (its platforms must be the image's).
    #[serde(default)]
    pub runners: Option<IndexMap<String, String>>,
    /// Extra globs (relative to the repository root) that feed the hash; each must match something.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    /// `used` (default): only what COPY/ADD/bind mounts reach; `all`: the whole context.
    #[serde(default)]
    pub context_scope: Option<ContextScope>,
    /// `tag` (default): outside images count as written; `digest`: also by their current digest.
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
#[derive(Debug, Deserialize, Clone, Default, JsonSchema)]
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
#[derive(Debug, Deserialize, Clone, JsonSchema)]
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
#[derive(Debug, Deserialize, Clone, JsonSchema)]
#[serde(untagged)]
pub enum BaseArg {
    One(String),
    PerParent(IndexMap<String, String>),
}

/// A build-arg value: YAML strings, numbers and booleans are all passed as text.
#[derive(Debug, Deserialize, Clone, JsonSchema)]
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
#[derive(Debug, Deserialize, Clone, JsonSchema)]
#[serde(untagged)]
pub enum RawPromote {
    Tag(String),
    Full(RawPromoteFull),
}

#[derive(Debug, Deserialize, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPromoteFull {
    pub tag: String,
    #[serde(default)]
    pub repository: Option<String>,
}

/// Which context paths feed the hash.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContextScope {
    /// Only what COPY/ADD/bind mounts can reach (falls back to `all` when that cannot be bounded).
    #[default]
    Used,
    /// The whole context after `.dockerignore`.
    All,
}

/// How outside `FROM` images enter the hash.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// The reference as written (`ubuntu:24.04`).
    #[default]
    Tag,
    /// The reference and its current digest, resolved from the registry by `decide`.
    Digest,
}

/// Which permission bits of context files count.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Default, JsonSchema)]
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

/// The shape of `matrix:` for the JSON Schema (the config reads it as YAML values and checks it in
/// [`super::matrix`], which gives GitHub's semantics and better messages).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct MatrixSchema {
    /// Combinations to add, or values to merge into matching ones.
    #[serde(default)]
    include: Vec<IndexMap<String, Scalar>>,
    /// Combinations to remove (an entry removes every combination it matches on all its keys).
    #[serde(default)]
    exclude: Vec<IndexMap<String, Scalar>>,
    /// Axes: name -> values.
    #[serde(flatten)]
    axes: IndexMap<String, Vec<Scalar>>,
}

/// The JSON Schema of `skip-action.yml`, as `skip-action schema` prints it and
/// `schema/skip-action.schema.json` holds it. Keys starting with `x-` are allowed where the
/// config ignores them (top level, `defaults:`, each image) for users' own anchors.
pub fn json_schema() -> serde_json::Value {
    let mut v = serde_json::to_value(schemars::schema_for!(RawConfig)).unwrap_or_default();
    let allow_x = |o: &mut serde_json::Value| {
        if let Some(m) = o.as_object_mut() {
            m.insert("patternProperties".into(), serde_json::json!({ "^x-": {} }));
        }
    };
    allow_x(&mut v);
    for def in ["RawDefaults", "RawImage"] {
        if let Some(d) = v.pointer_mut(&format!("/$defs/{def}")) {
            allow_x(d);
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "$id".into(),
            "https://raw.githubusercontent.com/org/skip-action/main/schema/skip-action.schema.json"
                .into(),
        );
        m.insert("title".into(), "skip-action.yml".into());
    }
    v
}
