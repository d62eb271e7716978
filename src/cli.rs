//! Command-line flags. Every flag can also come from `INPUT_<FLAG>` (upper case, `-` → `_`), which
//! is how the composite action passes its inputs; a flag on the command line wins.

use std::path::PathBuf;

use clap::{builder::BoolishValueParser, ArgAction, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "skip-action",
    version,
    about = "Build only the container images whose inputs changed; promote by re-tag.",
    long_about = None,
    after_help = "Every flag can also be set as INPUT_<FLAG> in the environment (e.g. INPUT_CONFIG, INPUT_DRY_RUN); the command itself as INPUT_COMMAND."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every image's content hash, tag and image reference.
    Hash(HashArgs),
    /// List the context paths that feed one image's hash, sorted.
    Inputs(InputsArgs),
    /// Hash, ask the registry which content tags exist, and write what must be built.
    Decide(DecideArgs),
    /// Check that every image and platform is there and built on its parent, then move the aliases (`promote:`) to the content tags by re-tag.
    Promote(crate::commands::promote::PromoteArgs),
    /// Print a `docker buildx bake` file (JSON) for the given images (default: all).
    Bake(BakeArgs),
}

/// Flags every command shares.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Config file (default: skip-action.yml, then .github/skip-action.yml).
    #[arg(long, env = "INPUT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Value of {version} in tag templates (default: the pushed git tag, without a leading v).
    #[arg(long = "version", env = "INPUT_VERSION", value_name = "VERSION")]
    pub version: Option<String>,
}

#[derive(Debug, Args)]
pub struct HashArgs {
    #[command(flatten)]
    pub common: Common,
    /// Print JSON instead of a table.
    #[arg(long, env = "INPUT_JSON", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InputsArgs {
    /// Image name as `hash` prints it (`base`, `devbox/omos`).
    pub image: String,
    #[command(flatten)]
    pub common: Common,
    /// Print JSON with every input: files with type, mode and digest, args, parents, sources.
    #[arg(long, env = "INPUT_JSON", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

/// Registry access, shared by `decide` and `promote`.
#[derive(Debug, Args, Clone)]
pub struct RegistryArgs {
    /// Registry user name (with --password) for every registry in the config.
    #[arg(long, env = "INPUT_USERNAME")]
    pub username: Option<String>,
    /// Registry password or token (prefer the INPUT_PASSWORD variable: flags show in `ps`).
    #[arg(long, env = "INPUT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// GitHub token, used as the ghcr.io password when nothing else matches.
    #[arg(long, env = "INPUT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds for all registry probes together; what is unanswered by then is built.
    #[arg(long, env = "INPUT_TIMEOUT", default_value_t = 120)]
    pub timeout: u64,
}

impl RegistryArgs {
    pub fn flags(&self) -> crate::registry::RegistryFlags {
        crate::registry::RegistryFlags {
            username: self.username.clone(),
            password: self.password.clone(),
            token: self.token.clone(),
            timeout: std::time::Duration::from_secs(self.timeout.max(1)),
        }
    }
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Compute and probe everything, show the plan, but build nothing (need_build=false, empty matrices).
    #[arg(long, env = "INPUT_DRY_RUN", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,
    /// Build these even if their tag exists: `all`, or image names / variants, comma-separated.
    #[arg(long, env = "INPUT_FORCE", value_name = "all|NAME,…")]
    pub force: Option<String>,
    /// Most entries in one matrix (GitHub allows 256); beyond it, entries become batches.
    #[arg(long, env = "INPUT_MAX_JOBS", default_value_t = 256)]
    pub max_jobs: usize,
    /// When the registry cannot be asked: `build` (default, with a warning) or `fail`.
    #[arg(long, env = "INPUT_ON_REGISTRY_ERROR", value_name = "build|fail")]
    pub on_registry_error: Option<String>,
    /// How tags are asked: `auto` (tags/list for 16+ images in a repository, else HEAD), `head`, `list`.
    #[arg(long, env = "INPUT_PROBE", value_name = "auto|head|list")]
    pub probe: Option<String>,
    /// Print the plan as JSON on stdout (instead of the summary).
    #[arg(long, env = "INPUT_JSON", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BakeArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Image names, comma- or space-separated (a batch's `images`); default all.
    #[arg(long, env = "INPUT_IMAGES", value_name = "NAME,…")]
    pub images: Option<String>,
}

/// Arguments for clap: the real ones, or, when no subcommand is given and `INPUT_COMMAND` is set,
/// that command (how the composite action calls the binary).
pub fn effective_args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 1 {
        if let Some(cmd) = std::env::var_os("INPUT_COMMAND").filter(|c| !c.is_empty()) {
            args.push(cmd);
        }
    }
    args
}

/// Drop empty `INPUT_*` variables: GitHub passes unset optional inputs as empty strings, which
/// must mean "not given", not "the empty value".
pub fn scrub_empty_inputs() {
    let empty: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            (k.starts_with("INPUT_") && v.is_empty()).then_some(k)
        })
        .collect();
    for k in empty {
        // Called first thing in main, before any thread exists.
        std::env::remove_var(k);
    }
}

/// `{version}` when not given: the pushed tag (`refs/tags/v1.2.3` → `1.2.3`).
pub fn version_from_env() -> Option<String> {
    let r = std::env::var("GITHUB_REF").ok()?;
    let tag = r.strip_prefix("refs/tags/")?;
    let v = match tag.strip_prefix('v') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => tag,
    };
    (!v.is_empty()).then(|| v.to_string())
}
