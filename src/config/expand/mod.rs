//! Turn a [`RawConfig`] into validated, expanded, topologically ordered [`ImageSpec`]s.
//!
//! Four steps, one module each, in the order they run:
//! 1. [`validation`]: top-level keys, `defaults:`, and each image's own keys merged over the
//!    defaults (paths, globs, platforms, arg and var names);
//! 2. [`variants`]: `variants:` / `matrix:` into one variant per image to build, with its args
//!    (each remembering where it was set and whether the Dockerfile must declare it) and vars;
//! 3. [`templates`]: the per-image templates (`dockerfile`, `context`, `repository`, `tag`,
//!    `promote`, `from`) rendered or test-rendered with the variant's variables;
//! 4. [`parents`]: parents resolved to images and build args, a cycle named, parents first.
//!
//! Then no two images may claim one alias ([`templates::check_aliases`]).

mod parents;
mod templates;
mod validation;
mod variants;

use std::path::Path;

use super::locate::KeyPath;
use super::schema::RawConfig;
use super::Config;
use crate::error::usage;

/// Default build arg that receives the parent's image reference.
pub const DEFAULT_BASE_ARG: &str = "BASE_IMAGE";

/// Upper bound on images of one config, all matrices and variants together (the per-matrix bound
/// alone lets a few lines of YAML ask for millions of images and gigabytes of memory).
pub const MAX_IMAGES: usize = 100_000;

/// Placeholders every template may use besides matrix axes and vars.
const BUILTIN_VARS: [&str; 4] = ["hash", "name", "variant", "version"];

/// The config being expanded, for messages: every error names the file, the line and the key.
pub(super) struct Ctx<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Ctx<'_> {
    /// A usage error (exit 2) at `key`.
    pub fn err(&self, key: &KeyPath, msg: impl std::fmt::Display) -> anyhow::Error {
        usage(format!("{}: {msg}", super::at(self.path, self.text, key)))
    }
}

pub(super) fn expand(mut raw: RawConfig, cx: &Ctx) -> anyhow::Result<Config> {
    let hash_length = validation::top_level(&raw, cx)?;
    let defaults = raw.defaults.take().unwrap_or_default();
    validation::defaults(&defaults, cx)?;
    let mut pending = Vec::new();
    for (key, img) in &raw.images {
        let common = validation::image(key, img, &defaults, &raw, cx)?;
        let list = variants::expand(key, img, &common, cx)?;
        if pending.len() + list.len() > MAX_IMAGES {
            return Err(cx.err(
                &KeyPath::image(key),
                format!("the config expands to more than {MAX_IMAGES} images; split it into several configs"),
            ));
        }
        let mut origins = None;
        for v in list {
            pending.push(templates::render(
                key,
                &common,
                v,
                hash_length,
                &mut origins,
                cx,
            )?);
        }
    }
    let images = parents::resolve(pending, cx)?;
    templates::check_aliases(&images, hash_length, cx)?;
    Ok(Config {
        path: cx.path.to_path_buf(),
        text: cx.text.into(),
        hash_length,
        insecure_registries: raw.insecure_registries,
        images,
    })
}
