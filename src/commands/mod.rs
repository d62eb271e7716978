//! One function per subcommand. Each loads what it needs through the shared pipeline
//! (config → inputs → hashes) and prints; the core modules never print.

pub mod decide;
pub mod hash;
pub mod inputs;

use std::path::Path;

use crate::cli::Common;
use crate::config::Config;
use crate::hash::{HashOptions, ImageHash};
use crate::inputs::Discovery;

/// The pipeline every command starts with.
pub struct Hashed {
    pub config: Config,
    pub discovery: Discovery,
    pub hashes: Vec<ImageHash>,
}

/// Load the config and hash every image.
pub fn load_and_hash(common: &Common, opts: HashOptions) -> anyhow::Result<Hashed> {
    let path = Config::locate(common.config.as_deref())?;
    let config = Config::load(&path)?;
    let discovery = crate::inputs::discover(&config, Path::new("."))?;
    for img in &discovery.images {
        for w in &img.warnings {
            crate::github::warning(w);
        }
    }
    let hashes = crate::hash::compute(&config, &discovery, &opts)?;
    Ok(Hashed {
        config,
        discovery,
        hashes,
    })
}

/// `HashOptions` from the common flags.
pub fn hash_options(common: &Common) -> HashOptions {
    HashOptions {
        version: common.version.clone().or_else(crate::cli::version_from_env),
        ..HashOptions::default()
    }
}

/// `K=V` lines, ready for docker/build-push-action's `build-args`.
pub fn build_args_text(args: &std::collections::BTreeMap<String, String>) -> String {
    args.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}
