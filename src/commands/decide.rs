//! `skip-action decide`: hash, probe, plan, and tell the workflow what to build.

use super::{load_and_discover, load_and_hash_lenient, runtime, Hashed};
use crate::cli::DecideArgs;
use crate::github::output::write_summary;
use crate::plan::{self, Force};

pub fn run(args: DecideArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (config, discovery) = load_and_discover(&args.common)?;
    let force = Force::parse(args.force.as_deref(), &config)?;
    check_max_jobs_fits_runners(&config, args.max_jobs)?;
    crate::outputs::check_batch_budgets(&config, args.max_jobs)?;
    let on_error = args.on_registry_error;
    let probe_mode = args.probe;
    let flags = args.registry.flags();
    let client = crate::registry::client(&config, &flags)?;
    let rt = runtime()?;
    let Hashed {
        config,
        hashes,
        discovery,
    } = load_and_hash_lenient(config, discovery, &args.common, &client, &rt)?;
    // The gate before a level: the lower levels ran already; forcing them again would hold
    // their children forever (see `Force::at_level`).
    let force = match args.level {
        Some(l) => force.at_level(&config, l),
        None => force,
    };
    let hashed_ms = started.elapsed().as_millis();
    let probe_started = std::time::Instant::now();
    let mut probed = rt.block_on(crate::registry::probe_all_listed(
        &client,
        &config,
        &hashes,
        flags.timeout,
        probe_mode,
    ));
    let existence = &mut probed.existence;
    // An image whose hash lacks an upstream digest cannot be judged by its tag: it is unknown to
    // the registry, and `on-registry-error` decides (build, or fail naming it).
    for (e, h) in existence.iter_mut().zip(&hashes) {
        if let Some(why) = &h.unresolved {
            *e = plan::Existence::Unknown {
                reason: why.clone(),
            };
        }
    }
    for (img, e) in config.images.iter().zip(existence.iter()) {
        if let plan::Existence::Unknown { reason } = e {
            crate::github::warning(&format!(
                "{}: could not check {} ({reason}); it will be built",
                img.name, img.repository
            ));
        }
    }
    // Reuse is verified, not assumed: an image whose tag exists must sit on its parents' current
    // push (promote's judge, crate::lineage). Asked only about what would otherwise be reused.
    let from = crate::lineage::from_parents(&config, &discovery);
    let check = crate::lineage::to_check(&from, &plan::built_anyway(&config, existence, &force));
    let read = crate::lineage::to_read(&from, &check);
    // Every manifest decide reads goes through one per-run cache: each is fetched once.
    let reads = crate::registry::ManifestReads::new(&client);
    let found = if read.is_empty() {
        vec![None; config.images.len()]
    } else {
        let left = flags.timeout.saturating_sub(probe_started.elapsed());
        rt.block_on(crate::registry::read_found(
            &reads, &config, &hashes, existence, &from, &check, left,
        ))
    };
    let names: Vec<&str> = config.images.iter().map(|s| s.name.as_str()).collect();
    let base = crate::lineage::judge(&names, &from, &check, &found);
    for (img, b) in config.images.iter().zip(&base) {
        if let crate::lineage::BaseCheck::Unknown { reason } = b {
            crate::github::warning(&format!(
                "{}: could not check that it is built on its current parent ({reason}); it will be built",
                img.name
            ));
        }
    }
    tracing::info!(
        checked = check.len(),
        manifests_read = read.len(),
        stale = base
            .iter()
            .filter(|b| matches!(b, crate::lineage::BaseCheck::Stale { .. }))
            .count(),
        "base check"
    );
    let mut decisions = plan::decide_checked(&config, &probed.existence, &base, &force, on_error)?;
    if config.per_platform() {
        // `runners:`: which platforms each image lacks, and which per-platform images exist.
        // Images every platform of which builds whatever the registry holds (refine's rule 1)
        // are not asked about.
        let settled: Vec<bool> = config
            .images
            .iter()
            .zip(&probed.existence)
            .zip(&decisions)
            .map(|((img, e), d)| {
                force.covers(&img.name) || (d.need_build && *e != plan::Existence::Absent)
            })
            .collect();
        let answers = rt.block_on(crate::registry::probe_platforms(
            &reads,
            &config,
            &hashes,
            &probed,
            &settled,
            &from,
            flags.timeout,
        ));
        crate::fanout::refine(&config, &probed.existence, &force, &answers, &mut decisions);
    }
    let requests = client.requests();
    tracing::info!(
        manifests = reads.distinct(),
        requests_get = requests.get,
        requests_head = requests.head,
        requests_other = requests.other,
        "registry reads"
    );
    warn_unset_platforms(&config);
    let max_level = config.images.iter().map(|s| s.level).max().unwrap_or(0);
    if let Some(w) = crate::outputs::deep_config_warning(max_level) {
        crate::github::warning(&w);
    }
    let mut outputs =
        crate::outputs::decide_outputs(&config, &hashes, &decisions, args.dry_run, args.max_jobs);
    let mut summary = crate::outputs::summary_markdown(&config, &hashes, &decisions, args.dry_run);
    if let Some(level) = args.level {
        let gate = crate::outputs::gate_outputs(
            &mut outputs,
            &config,
            &hashes,
            &decisions,
            args.dry_run,
            args.max_jobs,
            level,
        );
        report_held(&config, level, &gate);
        summary.push_str(&gate_summary(&config, level, &gate));
    }
    crate::outputs::check_budgets(&outputs)?;
    tracing::info!(
        images = config.images.len(),
        hash_ms = hashed_ms as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "decided"
    );

    // Only now, with the whole decision made, write anything: the plan file first (its path is
    // an output; the `plan` output holds only what fits), then every output at once.
    let whole_plan = crate::outputs::plan_json(&config, &hashes, &decisions);
    let plan_file = crate::github::output::write_runner_file("plan", &whole_plan)?;
    outputs.set(
        "plan_file",
        plan_file
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    let wrote = outputs.write_to_env()?;
    write_summary(&summary)?;
    if args.json {
        println!("{whole_plan}");
    } else {
        // The log shows the summary too: Gitea and Forgejo do not render step summaries.
        println!("{summary}");
        if !wrote {
            println!(
                "(GITHUB_OUTPUT is not set: outputs were not written; --json prints the plan)"
            );
        }
    }
    Ok(())
}

/// Each held image as an error naming the parent it waits for: an annotation for the first
/// [`crate::outputs::HELD_ANNOTATIONS`], a log line for the rest. The workflow's gate step fails
/// the job on `level_held`; decide itself succeeds, so its outputs reach the level job and the
/// ready images still build.
fn report_held(config: &crate::config::Config, level: usize, gate: &crate::outputs::LevelGate) {
    for (n, h) in gate.held.iter().enumerate() {
        let msg = h.message(config);
        if n < crate::outputs::HELD_ANNOTATIONS && crate::github::in_actions() {
            crate::github::error(&msg);
        } else {
            eprintln!(
                "{}",
                crate::github::defuse_commands(&format!("error: {msg}"))
            );
        }
    }
    tracing::info!(
        level,
        ready = gate.count,
        held = gate.held.len(),
        "level gate"
    );
}

/// The gate's lines for the step summary (and the log): how many of the level build now, how
/// many wait, and the first few held images.
fn gate_summary(
    config: &crate::config::Config,
    level: usize,
    gate: &crate::outputs::LevelGate,
) -> String {
    let mut s = format!(
        "\n**Level {level}**: {} to build now, {} held back (a parent still needs building).\n",
        gate.count,
        gate.held.len()
    );
    for h in gate.held.iter().take(20) {
        s.push_str(&format!(
            "- {}\n",
            crate::github::md_cell(&h.message(config))
        ));
    }
    if gate.held.len() > 20 {
        s.push_str(&format!("- … and {} more\n", gate.held.len() - 20));
    }
    s
}

/// Without `platforms:`, an image is built for whatever platform its build runner has, and the
/// content tag then says nothing about which: a later run on another runner would reuse it for
/// the wrong architecture. Said once, naming a few images.
fn warn_unset_platforms(config: &crate::config::Config) {
    let unset: Vec<&str> = config
        .images
        .iter()
        .filter(|i| i.platforms.is_empty())
        .map(|i| i.name.as_str())
        .collect();
    if unset.is_empty() {
        return;
    }
    let shown: Vec<&str> = unset.iter().take(3).copied().collect();
    let more = unset.len() - shown.len();
    crate::github::warning(&format!(
        "{}{} list{} no `platforms:`: {} built for the build runner's platform only, and the workflow must not pass its own. List them in the config (e.g. `platforms: [linux/amd64, linux/arm64]` at the top level) and build with decide's `platforms` output",
        shown.join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() },
        if unset.len() == 1 { "s" } else { "" },
        if unset.len() == 1 { "it is" } else { "they are" },
    ));
}

/// A batch runs on one runner and builds one platform, so a matrix needs at least one job per
/// (platform, runner) pair of the config: fewer would have to mix them (impossible) or break
/// `max-jobs`. Refused up front, with the numbers.
fn check_max_jobs_fits_runners(
    config: &crate::config::Config,
    max_jobs: usize,
) -> anyhow::Result<()> {
    let pairs: std::collections::BTreeSet<(&str, &str)> = config
        .images
        .iter()
        .flat_map(|i| i.runners.iter().map(|(p, r)| (p.as_str(), r.as_str())))
        .collect();
    if pairs.len() > max_jobs {
        return Err(crate::error::usage(format!(
            "max-jobs {max_jobs} is fewer than the {} (platform, runner) pairs of `runners:` in {}; a job runs on one runner for one platform, so raise max-jobs to at least {}",
            pairs.len(),
            config.path.display(),
            pairs.len()
        )));
    }
    Ok(())
}
