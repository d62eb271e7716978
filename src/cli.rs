//! Command-line flags. Every flag can also come from `INPUT_<FLAG>` (upper case, `-` → `_`), which
//! is how the composite action passes its inputs; a flag on the command line wins.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, RangedU64ValueParser};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::plan::OnRegistryError;
use crate::registry::ProbeMode;

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
    Promote(PromoteArgs),
    /// Print a `docker buildx bake` file (JSON) for the given images (default: all).
    Bake(BakeArgs),
    /// Print the JSON Schema of skip-action.yml (for editors: `# yaml-language-server: $schema=…`).
    Schema,
    /// After a test job passed: tag each image's tested manifest `<content-tag>.tested`, the stamp `promote --require-tested` accepts.
    Stamp(StampArgs),
    /// Write each image's content tag as one multi-platform index of its per-platform images (`runners:`); refuse an image with a platform missing.
    Merge(MergeArgs),
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
    #[arg(long, env = "INPUT_MAX_JOBS", default_value_t = 256, value_parser = RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub max_jobs: usize,
    /// When the registry cannot be asked: `build` (default, with a warning) or `fail`.
    #[arg(long, env = "INPUT_ON_REGISTRY_ERROR", value_name = "build|fail", default_value = "build", value_parser = trimmed_choice::<OnRegistryError>)]
    pub on_registry_error: OnRegistryError,
    /// How tags are asked: `auto` (tags/list for 16+ images in a repository, else HEAD), `head`, `list`.
    #[arg(long, env = "INPUT_PROBE", value_name = "auto|head|list", default_value = "auto", value_parser = trimmed_choice::<ProbeMode>)]
    pub probe: ProbeMode,
    /// Print the plan as JSON on stdout (instead of the summary).
    #[arg(long, env = "INPUT_JSON", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub json: bool,
    /// The gate before level N of the levels workflow: also write `level_matrix` (level N's
    /// images whose parents are in place now, per image or in batches), `level_need_build` and
    /// `level_held` (images held back because a parent still needs building). `force` then
    /// applies to level N only: the lower levels ran already, and are judged by the registry.
    #[arg(long, env = "INPUT_LEVEL", value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(0..=1000))]
    pub level: Option<usize>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Run every check and show every alias move, but write nothing.
    #[arg(long, env = "INPUT_DRY_RUN", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,
    /// Jobs of this run that must have succeeded first: glob patterns of job names, separated by
    /// commas or newlines (e.g. `test, scan*`). Needs a token with `actions: read`.
    #[arg(long, env = "INPUT_REQUIRE_JOBS", value_name = "PATTERNS")]
    pub require_jobs: Option<String>,
    /// Move only these aliases: glob patterns of alias tags (or `registry/path:tag`), separated by
    /// commas or newlines (e.g. `v0.0.0-split-test*`). The others are reported as skipped.
    #[arg(long, env = "INPUT_ALIASES", value_name = "PATTERNS")]
    pub aliases: Option<String>,
    /// Images that must carry a test stamp (`skip-action stamp`) on their current digest:
    /// `all`, or image names and globs, comma-separated. A reused image keeps the stamp of the run
    /// that tested it; a failed test leaves none, and blocks.
    #[arg(long, env = "INPUT_REQUIRE_TESTED", value_name = "all|NAME,…")]
    pub require_tested: Option<String>,
    /// This run's commit, which orders alias moves (an alias holding a build of a newer commit is
    /// not moved back). Default: GITHUB_SHA, else the checkout's HEAD.
    #[arg(long, env = "INPUT_REVISION", value_name = "SHA")]
    pub revision: Option<String>,
    /// Print the report as JSON on stdout (instead of the summary).
    #[arg(long, env = "INPUT_JSON", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub json: bool,
    /// Seconds a content tag that answers 404 is asked again before it counts as missing
    /// (a tag pushed a moment ago may not be visible everywhere yet).
    #[arg(
        long,
        env = "INPUT_WAIT",
        value_name = "SECONDS",
        default_value = "10",
        value_parser = wait_seconds
    )]
    pub wait: Duration,
}

#[derive(Debug, Args)]
pub struct BakeArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Image names, comma- or space-separated; default all.
    #[arg(
        long,
        env = "INPUT_IMAGES",
        value_name = "NAME,…",
        conflicts_with = "batch"
    )]
    pub images: Option<String>,
    /// With `runners:`: build only this platform (a per-image entry's `platform`), pushing each
    /// image's per-platform tag instead of its content tag. A `--batch` of a platform sets it.
    #[arg(long, env = "INPUT_PLATFORM", value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// A batch entry's `batch` (e.g. `level1-007of255`, or `level1-linux_arm64-r1-007of255` with
    /// `runners:`): build the images decide meant for it, found from the config (needs `--select`);
    /// a batch of one platform builds only it, as `--platform` does.
    #[arg(long, env = "INPUT_BATCH", value_name = "ID", requires = "select")]
    pub batch: Option<String>,
    /// The same entry's `select` (`<key>-<mask>`).
    #[arg(
        long,
        env = "INPUT_SELECT",
        value_name = "KEY-MASK",
        requires = "batch"
    )]
    pub select: Option<String>,
}

#[derive(Debug, Args)]
pub struct StampArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The images the test job tested: `all`, or image names and globs, comma-separated.
    #[arg(long, env = "INPUT_IMAGES", value_name = "all|NAME,…")]
    pub images: String,
    /// The digest the test ran on (one image only): refuse to stamp if the content tag now
    /// points elsewhere (a racing rebuild pushed over it).
    #[arg(long, env = "INPUT_DIGEST", value_name = "sha256:…")]
    pub digest: Option<String>,
    /// Seconds a content tag that answers 404 is asked again.
    #[arg(
        long,
        env = "INPUT_WAIT",
        value_name = "SECONDS",
        default_value = "10",
        value_parser = wait_seconds
    )]
    pub wait: Duration,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Image names, comma- or space-separated (decide's `merge_levels[N]`); default every image
    /// with `runners:` whose content tag is missing or lacks a platform.
    #[arg(long, env = "INPUT_IMAGES", value_name = "NAME,…")]
    pub images: Option<String>,
    /// Read everything and show the index each image would get, but write nothing.
    #[arg(long, env = "INPUT_DRY_RUN", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,
    /// Print the result as JSON on stdout (instead of the summary).
    #[arg(long, env = "INPUT_JSON", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

/// A [`ValueEnum`] from a flag or `INPUT_*` value, surrounding whitespace ignored (a YAML block
/// scalar leaves a newline) and the empty value meaning the default, as the hand parsing before
/// clap accepted. Anything else is a clap error (exit 2) that names the choices.
fn trimmed_choice<E: ValueEnum + Default>(s: &str) -> Result<E, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(E::default());
    }
    E::from_str(s, false).map_err(|_| {
        let choices: Vec<String> = E::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        format!("not one of {}", choices.join(", "))
    })
}

/// `--wait`: seconds, fractions allowed, 0 to 600 (a bound on how long a 404 is asked again).
fn wait_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    if !(secs.is_finite() && (0.0..=600.0).contains(&secs)) {
        return Err(format!(
            "wait: {secs} is out of range; give 0 to 600 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn choices_accept_the_strings_the_hand_parsing_did() {
        assert_eq!(trimmed_choice::<ProbeMode>("head"), Ok(ProbeMode::Head));
        assert_eq!(trimmed_choice::<ProbeMode>(" list\n"), Ok(ProbeMode::List));
        assert_eq!(trimmed_choice::<ProbeMode>(""), Ok(ProbeMode::Auto));
        assert_eq!(
            trimmed_choice::<ProbeMode>("sideways"),
            Err("not one of auto, head, list".to_string())
        );
        assert_eq!(
            trimmed_choice::<OnRegistryError>("fail"),
            Ok(OnRegistryError::Fail)
        );
        assert_eq!(
            trimmed_choice::<OnRegistryError>("  "),
            Ok(OnRegistryError::Build)
        );
        assert!(trimmed_choice::<OnRegistryError>("Fail").is_err());
    }

    #[test]
    fn flags_are_parsed_and_bounded_by_clap() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let Command::Decide(d) = parse(&["x", "decide", "--max-jobs", "7", "--probe", "list"])
            .unwrap()
            .command
        else {
            panic!("not decide")
        };
        assert_eq!(d.max_jobs, 7);
        assert_eq!(d.probe, ProbeMode::List);
        for bad in [
            &["x", "decide", "--max-jobs", "0"][..],
            &["x", "decide", "--max-jobs", "257"],
            &["x", "decide", "--probe", "sideways"],
            &["x", "decide", "--on-registry-error", "skip"],
            &["x", "promote", "--wait", "601"],
            &["x", "promote", "--wait", "NaN"],
            &["x", "promote", "--wait", "-1"],
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.use_stderr(), "{bad:?}");
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let Command::Promote(p) = parse(&["x", "promote", "--wait", "0.5"]).unwrap().command else {
            panic!("not promote")
        };
        assert_eq!(p.wait, Duration::from_millis(500));
    }
}
