//! `skip-action merge`: write each image's content tag as one index of its per-platform images
//! (`runners:`), concurrently; refuse an image with a platform missing.

use super::{load_and_discover, load_and_hash_online, runtime};
use crate::cli::MergeArgs;
use crate::error::usage;
use crate::github::md_cell;
use crate::github::output::{write_summary, Outputs};
use crate::merge::{merge_image, Merged, Outcome, ParentRef};

pub fn run(args: MergeArgs) -> anyhow::Result<()> {
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
    // Names as typed, checked; decide's selections (`level1-1of1:<key>-<mask>`, which it writes
    // past the lists' budget) expand from the config to images with `runners:`.
    let mut wanted_names = Vec::new();
    for w in wanted {
        if crate::outputs::is_merge_selection(&w) {
            let ids = crate::outputs::expand_merge_selection(&config, &w)?;
            wanted_names.extend(ids.into_iter().map(|i| config.images[i].name.clone()));
            continue;
        }
        let spec = config.image(&w)?;
        if spec.platforms.is_empty() {
            return Err(usage(format!(
                "merge: image `{w}` lists no `platforms:` in {}; merge writes one index of the image's platforms, so list them (and `runners:`)",
                config.path.display()
            )));
        }
        wanted_names.push(w);
    }
    let wanted: std::collections::HashSet<String> = wanted_names.into_iter().collect();
    let explicit = !wanted.is_empty();
    if !explicit && !config.per_platform() {
        let mut o = Outputs::new();
        o.set("merged", "[]");
        o.write_to_env()?;
        println!(
            "merge: no image has `runners:` in {}, so there is nothing to merge (images are built with all their platforms in one job)",
            config.path.display()
        );
        return Ok(());
    }
    let client = crate::registry::client(&config, &args.registry.flags())?;
    let rt = runtime()?;
    let h = load_and_hash_online(config, discovery, &args.common, &client, &rt)?;
    let picked: Vec<usize> = (0..h.config.images.len())
        .filter(|&i| {
            let s = &h.config.images[i];
            if explicit {
                wanted.contains(&s.name)
            } else {
                !s.runners.is_empty()
            }
        })
        .collect();
    let dry_run = args.dry_run;
    // Each image's `FROM` parents (not `COPY --from` ones, whose layers are not its own): merge
    // records which of their platform manifests each platform sits on (crate::merge).
    let from = crate::lineage::from_parents(&h.config, &h.discovery);
    let reads = crate::registry::ManifestReads::new(&client);
    let results: Vec<Merged> = rt.block_on(async {
        let mut out: Vec<(usize, Merged)> = Vec::new();
        for wave in parents_first(&picked, &from) {
            let mut set = tokio::task::JoinSet::new();
            for &i in &wave {
                let client = client.clone();
                let reads = reads.clone();
                let parents: Vec<ParentRef> = from[i]
                    .iter()
                    .map(|&j| ParentRef {
                        name: h.config.images[j].name.clone(),
                        repo: h.config.images[j].repo.clone(),
                        tag: h.hashes[j].tag.clone(),
                    })
                    .collect();
                let spec = h.config.images[i].clone();
                let hash = h.hashes[i].clone();
                set.spawn(async move {
                    (
                        i,
                        merge_image(&client, &reads, &parents, &spec, &hash, explicit, dry_run)
                            .await,
                    )
                });
            }
            while let Some(r) = set.join_next().await {
                if let Ok(x) = r {
                    out.push(x);
                }
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, m)| m).collect()
    });

    let summary = summary_markdown(&results, dry_run);
    let mut o = Outputs::new();
    o.set(
        "merged",
        serde_json::to_string(&results).unwrap_or_else(|_| "[]".into()),
    );
    o.write_to_env()?;
    write_summary(&summary)?;
    if args.json {
        println!("{}", o.get("merged").unwrap_or("[]"));
    } else {
        println!("{summary}");
    }

    let lost = results.len() < picked.len();
    let problems: Vec<String> = results
        .iter()
        .filter_map(|m| match &m.outcome {
            Outcome::Missing { platforms } => Some(format!(
                "{}: no image for {} (per-platform tag{} {}); not written: an index without {} would silently drop {}. Re-run the failed platform job{}",
                m.name,
                platforms.join(", "),
                if platforms.len() == 1 { "" } else { "s" },
                platforms
                    .iter()
                    .map(|p| platform_ref(&m.image, p))
                    .collect::<Vec<_>>()
                    .join(", "),
                if platforms.len() == 1 { "it" } else { "them" },
                if platforms.len() == 1 { "that platform" } else { "those platforms" },
                if platforms.len() == 1 { "" } else { "s" },
            )),
            Outcome::Failed { reason } => Some(format!("{}: {reason}", m.name)),
            _ => None,
        })
        .collect();
    if !problems.is_empty() || lost {
        anyhow::bail!(
            "merge: {} of {} image(s) not written:\n  {}",
            problems.len().max(1),
            picked.len(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// `picked` in waves, each image after the `FROM` parents (`from`) it is merged with: a child's
/// merge reads its parent's content tag to record which platform manifests it sits on, so the
/// parent's index is written first (as the per-level workflow jobs do). Within a wave, all at once.
fn parents_first(picked: &[usize], from: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut left: Vec<usize> = picked.to_vec();
    let mut waves = Vec::new();
    while !left.is_empty() {
        let (now, later): (Vec<usize>, Vec<usize>) = left
            .iter()
            .partition(|&&i| !from[i].iter().any(|p| left.contains(p)));
        // The config's DAG has no cycle; should one appear, merge the rest together.
        if now.is_empty() {
            waves.push(later);
            break;
        }
        waves.push(now);
        left = later;
    }
    waves
}

/// `repo:tag-linux-arm64` for `repo:tag`.
fn platform_ref(image: &str, platform: &str) -> String {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => {
            format!("{repo}:{}", crate::fanout::platform_tag(tag, platform))
        }
        _ => format!("{image}-{}", crate::fanout::platform_suffix(platform)),
    }
}

fn summary_markdown(results: &[Merged], dry_run: bool) -> String {
    let mut s = String::from("### skip-action: merge\n\n");
    if dry_run {
        s.push_str("**Dry run**: nothing was written.\n\n");
    }
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|m| f(&m.outcome)).count();
    s.push_str(&format!(
        "{} written, {} already there, {} missing a platform, {} failed.\n\n",
        count(|o| matches!(o, Outcome::Written { .. } | Outcome::WouldWrite { .. })),
        count(|o| matches!(o, Outcome::AlreadyThere { .. })),
        count(|o| matches!(o, Outcome::Missing { .. })),
        count(|o| matches!(o, Outcome::Failed { .. })),
    ));
    s.push_str("| image | content tag | platforms | result |\n|---|---|---|---|\n");
    for m in results {
        let result = match &m.outcome {
            Outcome::Written { digest } => format!("written `{digest}`"),
            Outcome::WouldWrite { digest } => format!("would write `{digest}`"),
            Outcome::AlreadyThere { digest } => format!("already there `{digest}`"),
            Outcome::Missing { platforms } => format!("**missing {}**", platforms.join(", ")),
            Outcome::Failed { reason } => format!("**failed**: {reason}"),
        };
        s.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            md_cell(&m.name),
            md_cell(&m.image),
            md_cell(&m.platforms.join(", ")),
            md_cell(&result)
        ));
    }
    s
}
