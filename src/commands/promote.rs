//! `skip-action promote`: check the whole family, then move the aliases by re-tag.
//!
//! Recomputes the same hashes as `decide` (so the content tags are the ones the build jobs pushed),
//! runs every check of [`crate::promote::check()`] and the optional jobs gate together, and writes
//! only when nothing failed. Outputs (`promoted`, `previous`, `changed`), the step summary and the
//! log are written in every case, so a failed or blocked run still says what happened.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{hash_options, load_and_discover, load_and_hash_online, runtime, Hashed};
use crate::cli::PromoteArgs;
use crate::github::jobs;
use crate::github::output::{write_summary, Outputs};
use crate::promote::{self, AliasStatus, Options};

pub fn run(args: PromoteArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (config, discovery) = load_and_discover(&args.common)?;
    let alias_patterns = args
        .aliases
        .as_deref()
        .map(parse_alias_patterns)
        .transpose()?;
    // Flags and environment first: a usage error must come before any network traffic.
    let jobs_gate = match args.require_jobs.as_deref() {
        Some(text) => {
            let patterns = jobs::parse_patterns(text)?;
            let env = jobs::ApiEnv::from_env(args.registry.token.as_deref())?;
            Some((patterns, env))
        }
        None => None,
    };
    let tested = match args.require_tested.as_deref() {
        Some(text) => promote::stamp::select(&config, text, "require-tested")?,
        None => Vec::new(),
    };
    let flags = args.registry.flags();
    let client = crate::registry::client(&config, &flags)?;
    let rt = runtime()?;
    let Hashed {
        config,
        discovery,
        hashes,
    } = load_and_hash_online(config, discovery, &args.common, &client, &rt)?;
    let version = hash_options(&args.common).version;
    let mut plan = promote::plan_aliases(&config, &hashes, version.as_deref())?;
    if let Some(patterns) = &alias_patterns {
        plan = select_aliases(plan, patterns)?;
    }
    let from = promote::from_parents(&config, &discovery);
    let opts = Options {
        wait: args.wait,
        dry_run: args.dry_run,
        concurrency: promote::DEFAULT_CONCURRENCY,
        tested,
        revision: promote::order::run_revision(
            args.revision.as_deref(),
            std::env::var("GITHUB_SHA").ok().as_deref(),
            std::path::Path::new("."),
        ),
        git_dir: std::path::PathBuf::from("."),
    };

    // 1. Every check, the registry's and the jobs gate, concurrently. Reads only.
    let (mut checked, gate) = rt.block_on(async {
        let registry = async {
            match tokio::time::timeout(
                flags.timeout + opts.wait,
                promote::check(&client, &config, &hashes, &from, plan.clone(), &opts),
            )
            .await
            {
                Ok(c) => c,
                Err(_) => {
                    let mut c = promote::check_timed_out(&config, &hashes, plan.clone());
                    c.problems.push(format!(
                        "the registry checks did not finish within {:?} (input timeout)",
                        flags.timeout + opts.wait
                    ));
                    c
                }
            }
        };
        let gate = async {
            match &jobs_gate {
                None => Vec::new(),
                Some((patterns, env)) => match jobs::fetch(env, Duration::from_secs(60)).await {
                    Ok(jobs) => jobs::check(patterns, &jobs),
                    Err(e) => vec![format!("require-jobs: {e:#}")],
                },
            }
        };
        tokio::join!(registry, gate)
    });
    checked.problems.extend(gate);
    let checked_ms = started.elapsed().as_millis() as u64;

    // Held aliases are not failures, but must be seen (Gitea shows no summary).
    for a in &checked.aliases {
        if let AliasStatus::Held(why) = &a.status {
            crate::github::warning(&format!("{}: {why}", a.alias.reference()));
        }
    }

    // 2. Write, only when nothing failed.
    let stats = if checked.blocked() {
        None
    } else {
        Some(rt.block_on(promote::apply(&client, &mut checked, &opts)))
    };
    tracing::info!(
        images = config.images.len(),
        aliases = checked.aliases.len(),
        check_ms = checked_ms,
        total_ms = started.elapsed().as_millis() as u64,
        "promote"
    );

    // 3. Report: outputs, summary, log — in every case.
    let http_hosts: BTreeSet<String> = checked
        .aliases
        .iter()
        .map(|a| a.alias.repo.registry.clone())
        .filter(|h| client.scheme_for(h) == "http")
        .collect();
    let summary = promote::summary_markdown(&checked, args.dry_run, &http_hosts, stats.as_ref());
    let moved = checked
        .aliases
        .iter()
        .filter(|a| a.status == AliasStatus::Moved)
        .count();
    let mut outputs = Outputs::new();
    outputs.set("promoted", promote::promoted_json(&checked, args.dry_run));
    outputs.set("previous", promote::previous_json(&checked));
    // `true` or empty: the one encoding of every boolean output (see `outputs::flag`).
    outputs.set("changed", crate::outputs::flag(moved > 0));
    let wrote = outputs.write_to_env()?;
    write_summary(&summary)?;
    if args.json {
        println!("{}", promote::report_json(&checked, args.dry_run));
    } else {
        // The log shows the summary too: Gitea and Forgejo do not render step summaries.
        println!("{summary}");
        if !wrote {
            println!(
                "(GITHUB_OUTPUT is not set: outputs were not written; --json prints the report)"
            );
        }
    }

    if checked.blocked() {
        let problems = checked.all_problems();
        anyhow::bail!(
            "promotion blocked, no tag was changed ({} problem{}):\n  {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("\n  ")
        );
    }
    let failed: Vec<String> = checked
        .aliases
        .iter()
        .filter_map(|a| match &a.status {
            AliasStatus::Failed(e) | AliasStatus::NotAttempted(e) => {
                Some(format!("{}: {e}", a.alias.reference()))
            }
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        let moved_list: Vec<String> = checked
            .aliases
            .iter()
            .filter(|a| a.status == AliasStatus::Moved)
            .map(|a| a.alias.reference())
            .collect();
        anyhow::bail!(
            "promotion failed: {} alias(es) moved{}, {} did not:\n  {}\nthe rollback commands are in the summary above",
            moved_list.len(),
            if moved_list.is_empty() {
                String::new()
            } else {
                format!(" ({})", moved_list.join(", "))
            },
            failed.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// `--aliases` patterns, checked before any network traffic.
fn parse_alias_patterns(text: &str) -> anyhow::Result<Vec<(String, glob::Pattern)>> {
    let pats = crate::github::jobs::split_patterns(text);
    if pats.is_empty() {
        return Err(crate::error::usage(
            "aliases: no patterns given; name alias tags such as `latest*`, or leave the input empty for all",
        ));
    }
    pats.into_iter()
        .map(|p| {
            glob::Pattern::new(&p).map(|g| (p.clone(), g)).map_err(|e| {
                crate::error::usage(format!("aliases: `{p}` is not a valid pattern: {e}"))
            })
        })
        .collect()
}

/// Keep the aliases a pattern matches (by tag or by `registry/path:tag`); the others are
/// reported as skipped, so a `workflow_dispatch` test run can move `v0.0.0-split-test*` and leave
/// `latest*` where it is. A pattern that matches no alias is a typo, and moving nothing would
/// pass silently: exit 2.
pub fn select_aliases(
    plan: promote::AliasPlan,
    patterns: &[(String, glob::Pattern)],
) -> anyhow::Result<promote::AliasPlan> {
    let chosen = |a: &promote::Alias| {
        patterns
            .iter()
            .any(|(_, p)| p.matches(&a.tag) || p.matches(&a.reference()))
    };
    for (src, p) in patterns {
        if !plan
            .aliases
            .iter()
            .any(|a| p.matches(&a.tag) || p.matches(&a.reference()))
        {
            let names: Vec<String> = plan
                .aliases
                .iter()
                .map(|a| a.tag.clone())
                .take(20)
                .collect();
            return Err(crate::error::usage(format!(
                "aliases: `{src}` matches no alias of this run (aliases: {}); fix the pattern",
                names.join(", ")
            )));
        }
    }
    let mut out = promote::AliasPlan {
        aliases: Vec::new(),
        skipped: plan.skipped,
    };
    for a in plan.aliases {
        if chosen(&a) {
            out.aliases.push(a);
        } else {
            out.skipped.push(promote::SkippedAlias {
                image_name: a.image_name.clone(),
                template: a.template.clone(),
                reason: format!("`{}` is not chosen by `aliases`", a.tag),
            });
        }
    }
    Ok(out)
}
