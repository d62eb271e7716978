//! `skip-action bake`: a `docker buildx bake` file for some or all images.
//!
//! Past `max-jobs`, decide's matrices hold batch entries that name a bucket of the config's images
//! and which of them to build (`--batch`, `--select`); a batch job expands its entry here, from the
//! same commit, into a bake file and builds them in one `docker buildx bake --push`. The file is
//! generated in the job (not passed through outputs or artifacts) because 12,800 full definitions
//! would not fit GitHub's output limits, and Gitea has no v4 artifacts.
//! With `runners:`, a batch is one platform on one runner: its name says which, so `--batch` (or
//! `--platform`, for a per-image entry's `platform`) builds only it and pushes the per-platform
//! tags `merge` reads.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{load_and_discover, load_and_hash_online, runtime};
use crate::cli::BakeArgs;
use crate::outputs::bake_target;

#[derive(Serialize)]
struct Bake {
    group: BTreeMap<String, Group>,
    target: BTreeMap<String, Target>,
}

#[derive(Serialize)]
struct Group {
    targets: Vec<String>,
}

#[derive(Serialize)]
struct Target {
    context: String,
    dockerfile: String,
    args: BTreeMap<String, String>,
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platforms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    /// Parent image reference → `target:<parent target>`, for every parent in the same file.
    /// Without it bake builds parent and child at once and the child pulls the parent's tag
    /// before it is pushed (or an old push of it); with it bake builds the parent first and the
    /// child uses that very result.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    contexts: BTreeMap<String, String>,
}

pub fn run(args: BakeArgs) -> anyhow::Result<()> {
    let (config, discovery) = load_and_discover(&args.common)?;
    let wanted: Vec<String> = args
        .images
        .as_deref()
        .unwrap_or("")
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    for w in &wanted {
        config.image(w)?;
    }
    let mut platform = args
        .platform
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from);
    if let Some(p) = &platform {
        skip_registry::platform::validate_platform(p)
            .map_err(|m| crate::error::usage(format!("bake --platform: {m}")))?;
    }
    // A batch entry: the same bucket decide cut, checked by its key, filtered by its mask. A
    // bucket of one platform (its name says which) builds that platform only.
    let wanted = match (&args.batch, &args.select) {
        (Some(id), Some(sel)) => {
            let units = crate::outputs::config_units(&config, |_, _| true);
            let ids = crate::outputs::expand_batch(&units, id, sel)?;
            if ids.is_empty() {
                crate::bail_usage!(
                    "--batch {id} --select {sel}: the mask selects no image; pass the matrix \
                     entry's `select` as decide wrote it"
                );
            }
            if let Some(bp) = units[ids[0]].platform {
                match &platform {
                    Some(p)
                        if skip_registry::PlatformKey::parse(p).ok()
                            != skip_registry::PlatformKey::parse(bp).ok() =>
                    {
                        crate::bail_usage!(
                            "--batch {id} builds {bp}, not --platform {p}: drop --platform (the \
                             batch sets it)"
                        );
                    }
                    _ => platform = Some(bp.to_string()),
                }
            }
            tracing::info!(batch = %id, images = ids.len(), platform = ?platform, "batch expanded");
            ids.iter().map(|&i| units[i].name.to_string()).collect()
        }
        _ => wanted,
    };
    let client = crate::registry::client(&config, &args.registry.flags())?;
    let rt = runtime()?;
    let h = load_and_hash_online(config, discovery, &args.common, &client, &rt)?;
    let cwd = std::env::current_dir()?;
    let mut bake = Bake {
        group: BTreeMap::new(),
        target: BTreeMap::new(),
    };
    let included = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let by_name: BTreeMap<&str, usize> = h
        .config
        .images
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // Config order is parents first, so the group lists them first too.
    let mut names = Vec::new();
    for (spec, hash) in h.config.images.iter().zip(&h.hashes) {
        if !included(&spec.name) {
            continue;
        }
        let contexts: BTreeMap<String, String> = spec
            .parents
            .iter()
            .filter(|p| included(&p.name))
            .filter_map(|p| by_name.get(p.name.as_str()))
            .map(|&pi| {
                (
                    h.hashes[pi].image.clone(),
                    format!("target:{}", bake_target(&h.config.images[pi].name)),
                )
            })
            .collect();
        let t = bake_target(&spec.name);
        names.push(t.clone());
        let (platforms, tags) = match &platform {
            None => (spec.platforms.clone(), vec![hash.image.clone()]),
            Some(p) => {
                let Some(own) = spec.platforms.iter().find(|q| {
                    skip_registry::PlatformKey::parse(q).ok()
                        == skip_registry::PlatformKey::parse(p).ok()
                }) else {
                    return Err(crate::error::usage(format!(
                        "bake --platform {p}: image `{}` does not build {p} (its platforms: {}); pass a batch's own `platform` and `images`",
                        spec.name,
                        spec.platforms.join(", ")
                    )));
                };
                if spec.runners.is_empty() {
                    return Err(crate::error::usage(format!(
                        "bake --platform {p}: image `{}` has no `runners:`, so it is built with all its platforms in one job; drop --platform for it",
                        spec.name
                    )));
                }
                (
                    vec![own.clone()],
                    vec![format!(
                        "{}:{}",
                        spec.repository,
                        crate::fanout::platform_tag(&hash.tag, own)
                    )],
                )
            }
        };
        bake.target.insert(
            t,
            Target {
                context: cwd.join(&spec.context).display().to_string(),
                // Absolute: bake resolves a relative dockerfile against the context.
                dockerfile: cwd.join(&spec.dockerfile).display().to_string(),
                args: hash.build_args.clone(),
                tags,
                platforms,
                target: spec.target.clone(),
                contexts,
            },
        );
    }
    bake.group
        .insert("default".into(), Group { targets: names });
    let json = serde_json::to_string_pretty(&bake)?;
    println!("{json}");
    // In a runner (the action's `command: bake`), the same file under RUNNER_TEMP, its path the
    // `bake_file` output: the next step runs `docker buildx bake -f "$BAKE_FILE" --push`.
    let file = crate::github::output::write_runner_file("bake", &json)?;
    let mut outputs = crate::github::output::Outputs::new();
    outputs.set(
        "bake_file",
        file.map(|p| p.display().to_string()).unwrap_or_default(),
    );
    outputs.write_to_env()?;
    Ok(())
}
