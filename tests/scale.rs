//! Scale: `decide` for 12,800 images in one repository against the real registry (half of the
//! tags present), with time, peak memory and `max-jobs` batching checked on the outputs; and
//! `hash` over a tree of 200,000 small files.
//!
//! No wall-clock bound here: a busy 2-core CI machine makes one flake. The times are printed for
//! the log; `benches/decide.sh` and `benches/tree200k.sh` measure the release binary, and their
//! figures are the README's. Memory is asserted: peak RSS does not depend on the machine's load.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use common::*;
use skip_action::config::Config;
use skip_action::hash::HashOptions;
use skip_testkit::TestRegistry;

/// Six bases (`distro`) × (100 benchmarks × 128 agents, each agent on one distro): 12,806 images
/// over shared sources, as in benches/decide.sh.
fn big_config(host: &str) -> String {
    let list = |n: usize| {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!(
        "version: 1\nrepository: {host}/bench/big\nimages:\n  base:\n    dockerfile: Dockerfile.base\n    matrix:\n      distro: [d0, d1, d2, d3, d4, d5]\n    tag: \"base-{{variant}}-{{hash}}\"\n  app:\n    from: \"base/{{distro}}\"\n    dockerfile: Dockerfile.app\n    matrix:\n      bench: [{}]\n      agent: [{}]\n      include:\n",
        list(100),
        list(128)
    );
    for a in 1..=128 {
        s.push_str(&format!("        - {{ agent: {a}, distro: d{} }}\n", a % 6));
    }
    s.push_str("    tag: \"{bench}-{agent}-{hash}\"\n");
    s
}

fn entries(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    v["include"].as_array().unwrap()
}

/// Every matrix within `max_jobs`; its entries (or batches, expanded from the config as
/// `bake --batch` does) name each image to build once.
fn check_matrix(
    config: &Config,
    v: &serde_json::Value,
    max_jobs: usize,
    want: &BTreeSet<String>,
    what: &str,
) {
    let units = skip_action::outputs::config_units(config, |_, _| true);
    let inc = entries(v);
    assert!(inc.len() <= max_jobs, "{what}: {} entries", inc.len());
    let mut seen: Vec<String> = Vec::new();
    for e in inc {
        if let Some(batch) = e["batch"].as_str() {
            assert!(e.get("images").is_none(), "{what}: {e}");
            let ids =
                skip_action::outputs::expand_batch(&units, batch, e["select"].as_str().unwrap())
                    .unwrap();
            assert_eq!(ids.len() as u64, e["count"].as_u64().unwrap(), "{what}");
            for i in ids {
                assert_eq!(units[i].level as u64, e["level"].as_u64().unwrap());
                seen.push(units[i].name.to_string());
            }
        } else {
            seen.push(e["name"].as_str().unwrap().to_string());
        }
    }
    let set: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(set.len(), seen.len(), "{what}: an image in two entries");
    assert_eq!(&set, want, "{what}");
}

#[test]
fn decide_for_12800_images_in_one_repository() {
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = Ws::new();
    ws.write("skip-action.yml", &big_config(&host));
    ws.write("Dockerfile.base", "FROM scratch\nARG distro\n");
    ws.write(
        "Dockerfile.app",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG bench\nARG agent\n",
    );

    // The tags, computed in-process by the same pipeline.
    let started = Instant::now();
    let text = std::fs::read_to_string(ws.path().join("skip-action.yml")).unwrap();
    let config = Config::parse(&text, Path::new("skip-action.yml")).unwrap();
    let discovery = skip_action::inputs::discover(&config, ws.path()).unwrap();
    let hashes = skip_action::hash::compute(&config, &discovery, &HashOptions::default()).unwrap();
    let n = config.images.len();
    assert_eq!(n, 12_806);
    eprintln!(
        "[scale] in-process hash of {n} images: {:?}",
        started.elapsed()
    );

    // Half present: the six bases, and every second app image.
    let present: Vec<bool> = (0..n).map(|i| i < 6 || i % 2 == 0).collect();
    let tags: Vec<String> = hashes
        .iter()
        .zip(&present)
        .filter(|(_, p)| **p)
        .map(|(h, _)| h.tag.clone())
        .collect();
    // One manifest under 6,406 tags (by HTTP these cost ~40 s on two busy cores; see
    // `tag_in_storage`). The plan below checks the registry answers every one of them.
    let started = Instant::now();
    tag_in_storage(&reg, "bench/big", &tags);
    eprintln!(
        "[scale] {} tags of one manifest in the registry: {:?}",
        tags.len(),
        started.elapsed()
    );

    let outf = ws.path().join("gh-output");
    let m = run_measured(
        ws.path(),
        &["decide", "--json"],
        &[
            ("GITHUB_OUTPUT", outf.to_str().unwrap()),
            ("SKIP_ACTION_LOG", "info"),
        ],
    );
    eprintln!(
        "[scale] decide for {n} images ({} present): {:.2}s wall, peak RSS {} MiB ({} build)",
        tags.len(),
        m.elapsed.as_secs_f64(),
        m.peak_rss_kib / 1024,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert!(m.stderr.contains("listed tags"), "{}", m.stderr);
    assert!(m.peak_rss_kib < 512 * 1024, "{} KiB", m.peak_rss_kib);

    // The plan: exactly the truth. The bases exist, so only the missing app images build.
    let out = parse_gh_outputs(&std::fs::read_to_string(&outf).unwrap());
    let total: usize = out.iter().map(|(k, v)| k.len() + v.len()).sum();
    let (largest, size) = out
        .iter()
        .map(|(k, v)| (k.as_str(), v.len()))
        .max_by_key(|x| x.1)
        .unwrap();
    eprintln!(
        "[scale] decide's outputs for {n} images, half present: {total} bytes together, the \
         largest `{largest}` {size} bytes"
    );
    assert!(total <= 1024 * 1024, "{total}");
    // The whole plan is on stdout (--json) and in plan_file; the `plan` output keeps to its budget.
    let plan: serde_json::Value = serde_json::from_str(&m.stdout).unwrap();
    let kept: serde_json::Value = serde_json::from_str(&out["plan"]).unwrap();
    let kept = kept.as_array().unwrap().len();
    assert!(out["plan"].len() <= skip_action::outputs::PLAN_MAX_BYTES);
    assert_eq!(out["plan_omitted"], (n - kept).to_string());
    let plan = plan.as_array().unwrap();
    assert_eq!(plan.len(), n);
    let mut to_build: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (i, e) in plan.iter().enumerate() {
        assert_eq!(e["tag"], hashes[i].tag.as_str());
        assert_eq!(e["exists"], present[i], "{e}");
        assert_eq!(e["need_build"], !present[i], "{e}");
        if !present[i] {
            to_build
                .entry(e["level"].as_u64().unwrap() as usize)
                .or_default()
                .insert(e["name"].as_str().unwrap().to_string());
        }
    }
    let all: BTreeSet<String> = to_build.values().flatten().cloned().collect();
    assert_eq!(out["build_count"], all.len().to_string());
    assert_eq!(all.len(), 6400);
    // Per image: neither guards nor build settings at this size (one fixed job per image is for
    // small families; they would weigh 220 KiB), and a warning that says so and points to the
    // matrices.
    assert_eq!(out["images_need_build"], "{}");
    assert_eq!(out["images"], "{}");
    assert!(
        m.stderr.contains("`images_need_build` output is `{}`"),
        "{}",
        m.stderr
    );

    // Batching: every matrix at or under max-jobs (default 256), each image once, levels apart.
    for (k, want) in [("matrix", &all), ("variants_matrix", &all)] {
        let v: serde_json::Value = serde_json::from_str(&out[k]).unwrap();
        check_matrix(&config, &v, 256, want, k);
        for b in entries(&v) {
            assert_eq!(b["level"], 1, "{k}: {b}");
        }
    }
    let levels: serde_json::Value = serde_json::from_str(&out["matrix_levels"]).unwrap();
    let empty = BTreeSet::new();
    for (l, v) in levels.as_array().unwrap().iter().enumerate() {
        check_matrix(
            &config,
            v,
            256,
            to_build.get(&l).unwrap_or(&empty),
            &format!("level {l}"),
        );
    }
    // A smaller max-jobs: still within it.
    let outf2 = ws.path().join("gh-output-2");
    let r = run_measured(
        ws.path(),
        &["decide", "--max-jobs", "7"],
        &[("GITHUB_OUTPUT", outf2.to_str().unwrap())],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out2 = parse_gh_outputs(&std::fs::read_to_string(&outf2).unwrap());
    let v: serde_json::Value = serde_json::from_str(&out2["matrix"]).unwrap();
    check_matrix(&config, &v, 7, &all, "matrix, max-jobs 7");
}

/// Create `n` files of a few bytes under `root`, 1,000 per directory.
fn make_tree(root: &Path, n: usize) {
    for i in 0..n {
        let dir = root.join(format!("d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
}

#[test]
fn hash_of_a_tree_of_200000_small_files() {
    let n = 200_000;
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        "version: 1\nrepository: ghcr.io/acme/tree\nimages:\n  all:\n    context: ctx\n    dockerfile: Dockerfile\n",
    );
    ws.write("Dockerfile", "FROM scratch\nCOPY . /\n");
    let started = Instant::now();
    make_tree(&ws.path().join("ctx"), n);
    let made = started.elapsed();
    let m = run_measured(
        ws.path(),
        &["hash", "--json"],
        &[("SKIP_ACTION_LOG", "info")],
    );
    eprintln!(
        "[scale] hash of {n} small files: {:.2}s wall, peak RSS {} MiB ({} build; creating them took {:.1}s)",
        m.elapsed.as_secs_f64(),
        m.peak_rss_kib / 1024,
        if cfg!(debug_assertions) { "debug" } else { "release" },
        made.as_secs_f64()
    );
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    let v: serde_json::Value = serde_json::from_str(&m.stdout).unwrap();
    // Every file and its directory (200 dirs), and the context root's entries.
    let entries = v["images"][0]["context_entries"].as_u64().unwrap();
    assert_eq!(entries, (n + n / 1000) as u64);
    // One file changes: the hash changes.
    let before = v["images"][0]["hash"].as_str().unwrap().to_string();
    std::fs::write(ws.path().join("ctx/d123/f123456.txt"), "changed\n").unwrap();
    assert_ne!(ws.hashes()["all"], before);
    // The temp dir (and its 200,000 files) is removed when `ws` drops.
}

/// `big_config` with `benches` benchmarks: 6 bases + benches × 128 apps; with `runners`, every
/// image built per platform (linux/amd64 and linux/arm64, each on its own runner).
fn big_config_n(host: &str, benches: usize, runners: bool) -> String {
    let s = big_config(host).replacen(
        &format!(
            "bench: [{}]",
            (1..=100)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        &format!(
            "bench: [{}]",
            (1..=benches)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        1,
    );
    if !runners {
        return s;
    }
    s.replacen(
        "images:\n",
        "platforms: [linux/amd64, linux/arm64]\nrunners:\n  linux/amd64: ubuntu-24.04\n  linux/arm64: ubuntu-24.04-arm\nimages:\n",
        1,
    )
}

/// GitHub's bounds: 1 MB per job output (asserted at 512 KiB, room for the runner's own
/// encoding) and 1 MiB for every output of the step together; and each output within its own
/// budget (`outputs::BUDGETS`), which is what keeps the sum under 1 MiB for any config.
fn assert_outputs_fit(o: &skip_action::github::output::Outputs, what: &str) -> usize {
    use skip_action::outputs::BUDGETS;
    let mut total = 0;
    for (k, v) in o.iter() {
        assert!(v.len() <= 512 * 1024, "{what}: `{k}` is {} bytes", v.len());
        if let Some((_, budget, _)) = BUDGETS.iter().find(|b| b.0 == k) {
            assert!(v.len() <= *budget, "{what}: `{k}` is {} bytes", v.len());
        }
        total += k.len() + v.len();
    }
    skip_action::outputs::check_budgets(o).unwrap_or_else(|e| panic!("{what}: {e:#}"));
    assert!(total <= 1024 * 1024, "{what}: all outputs {total} bytes");
    total
}

/// The registry's answers of one case, per image, and (with `runners:`) per platform.
#[derive(Clone, Copy, Debug)]
enum Registry {
    AllPresent,
    HalfPresent,
    NonePresent,
    Down,
}

impl Registry {
    fn label(self) -> &'static str {
        match self {
            Registry::AllPresent => "none to build",
            Registry::HalfPresent => "half",
            Registry::NonePresent => "all",
            Registry::Down => "registry down",
        }
    }
}

/// decide's plan for one case, in-process: the plan takes the registry's answers as data.
fn plan_for(config: &Config, registry: Registry) -> Vec<skip_action::plan::Decision> {
    use skip_action::fanout::PlatformAnswers;
    use skip_action::plan::{self, Existence, Force, OnRegistryError};
    let n = config.images.len();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let present = |i: usize| match registry {
        Registry::AllPresent => true,
        Registry::HalfPresent => i < 6 || i % 2 == 0,
        Registry::NonePresent | Registry::Down => false,
    };
    let existence: Vec<Existence> = (0..n)
        .map(|i| match registry {
            Registry::Down => Existence::Unknown {
                reason: "registry.example.com:5000: connection refused after 3 attempts \
                         (error sending request for url https://registry.example.com:5000/v2/)"
                    .into(),
            },
            _ if present(i) => Existence::Present {
                digest: Some(digest.clone()),
            },
            _ => Existence::Absent,
        })
        .collect();
    let force = Force::parse(None, config).unwrap();
    let mut decisions = plan::decide(config, &existence, &force, OnRegistryError::Build).unwrap();
    if config.per_platform() {
        // A present content tag holds every platform; a missing one has no per-platform tags.
        let answers: Vec<Option<PlatformAnswers>> = config
            .images
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Some(PlatformAnswers {
                    content: matches!(existence[i], Existence::Present { .. }).then(|| {
                        Ok(s.platforms
                            .iter()
                            .map(|p| skip_action::lineage::PlatformKey::parse(p).unwrap())
                            .collect())
                    }),
                    ..Default::default()
                })
            })
            .collect();
        skip_action::fanout::refine(config, &existence, &force, &answers, &mut decisions);
    }
    decisions
}

/// Every output of decide within its budget and GitHub's limits at the seed's scale and past it,
/// by design: 12,806 images; 25,606 images; 12,806 images × 2 platforms with `runners:` (25,612
/// image × platform entries); and 40,070 images, past the ~29,000 where `images_need_build`
/// alone used to pass 512 KiB. Each with nothing to build, half, everything (the largest
/// matrices), and the registry down (the longest reasons). In-process (no registry needed), and
/// the sizes are a function of the config and the answers, so the bound cannot flake. Prints
/// the README's "Scale" table.
#[test]
fn every_output_fits_githubs_limits_at_12800_images_and_25600_entries() {
    let registries = [
        Registry::AllPresent,
        Registry::HalfPresent,
        Registry::NonePresent,
        Registry::Down,
    ];
    let mut rows = Vec::new();
    let mut gates = Vec::new();
    // Images a gate held back that plain decide would merge: the gates' merge lists did leave
    // some out (with `runners:`, everything to build: the apps wait for their bases).
    let mut held_merges = 0;
    for (benches, runners, want, units) in [
        (100, false, 12_806, 12_806),
        (200, false, 25_606, 25_606),
        (100, true, 12_806, 25_612),
        (313, false, 40_070, 40_070),
    ] {
        let ws = Ws::new();
        ws.write(
            "skip-action.yml",
            &big_config_n("registry.example.com:5000", benches, runners),
        );
        ws.write("Dockerfile.base", "FROM scratch\nARG distro\n");
        ws.write(
            "Dockerfile.app",
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG bench\nARG agent\n",
        );
        let text = std::fs::read_to_string(ws.path().join("skip-action.yml")).unwrap();
        let config = Config::parse(&text, Path::new("skip-action.yml")).unwrap();
        let discovery = skip_action::inputs::discover(&config, ws.path()).unwrap();
        let hashes =
            skip_action::hash::compute(&config, &discovery, &HashOptions::default()).unwrap();
        let n = config.images.len();
        assert_eq!(n, want);
        assert_eq!(config.per_platform(), runners);
        let all_units = skip_action::outputs::config_units(&config, |_, _| true);
        assert_eq!(all_units.len(), units);
        // decide's check before the registry is asked: the matrices in batch form, as if every
        // unit built, fit their budgets at every max-jobs.
        let started = Instant::now();
        for max_jobs in [256, 100, 2] {
            skip_action::outputs::check_batch_budgets(&config, max_jobs).unwrap();
        }
        eprintln!(
            "[scale] {n} images: the batch budgets checked at 3 max-jobs in {:?} ({} build)",
            started.elapsed(),
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
        for registry in registries {
            let decisions = plan_for(&config, registry);
            let building = decisions.iter().filter(|d| d.need_build).count();
            let building_units: usize = decisions
                .iter()
                .zip(&config.images)
                .filter(|(d, _)| d.need_build)
                .map(|(d, s)| match (&d.platforms, runners) {
                    (Some(ps), true) => ps.len(),
                    (None, true) => s.platforms.len(),
                    _ => 1,
                })
                .sum();
            let what = format!(
                "{n} images{}, {} ({building} to build)",
                if runners { " × 2 platforms" } else { "" },
                registry.label()
            );
            let max_jobs_list: &[usize] = if runners {
                &[256, 100, 2]
            } else {
                &[256, 100, 1]
            };
            for &max_jobs in max_jobs_list {
                let o = skip_action::outputs::decide_outputs(
                    &config, &hashes, &decisions, false, max_jobs,
                );
                let total = assert_outputs_fit(&o, &what);
                // The gate of each level (`decide --level N`): every output again, with its own.
                let max_level = config.images.iter().map(|s| s.level).max().unwrap();
                for level in 0..=max_level {
                    // What decide does for `--level N`: the gate's outputs and its merge
                    // lists (the held images left out), through the same function.
                    let mut with_gate = o.clone();
                    let gate = skip_action::outputs::gate_outputs(
                        &mut with_gate,
                        &config,
                        &hashes,
                        &decisions,
                        false,
                        max_jobs,
                        level,
                    );
                    let gate_what = format!("{what}, gate {level}");
                    let gated = assert_outputs_fit(&with_gate, &gate_what);
                    let held: BTreeSet<usize> = gate.held.iter().map(|h| h.image).collect();
                    check_merge_outputs(&config, &decisions, &held, &with_gate, &gate_what);
                    held_merges += held.iter().filter(|&&i| decisions[i].merge).count();
                    if max_jobs == 256 {
                        gates.push(format!(
                            "{what}, gate of level {level}: level_matrix {}, level_held {}, merge_levels {}, all {}",
                            size(with_gate.get("level_matrix").unwrap().len()),
                            with_gate.get("level_held").unwrap(),
                            size(with_gate.get("merge_levels").unwrap().len()),
                            size(gated)
                        ));
                    }
                }
                // Batches, within max_jobs, each unit to build in exactly one of them.
                for k in ["matrix", "variants_matrix"] {
                    let v: serde_json::Value = serde_json::from_str(o.get(k).unwrap()).unwrap();
                    let inc = entries(&v);
                    assert!(inc.len() <= max_jobs, "{what}: {k} {}", inc.len());
                    assert!(inc.iter().all(|e| e.get("images").is_none()), "{what}");
                }
                let v: serde_json::Value = serde_json::from_str(o.get("matrix").unwrap()).unwrap();
                let count: u64 = entries(&v)
                    .iter()
                    .map(|e| e["count"].as_u64().unwrap_or(1))
                    .sum();
                assert_eq!(count as usize, building_units, "{what}");
                // The plan: whole entries in config order, the rest counted.
                let p: serde_json::Value = serde_json::from_str(o.get("plan").unwrap()).unwrap();
                let kept = p.as_array().unwrap().len();
                assert!(kept > 100, "{what}: {kept}");
                assert_eq!(o.get("plan_omitted").unwrap(), (n - kept).to_string());
                assert_eq!(p[0]["name"], config.images[0].name.as_str());
                // Past its budget the per-image guard is `{}` (at every one of these sizes:
                // about 18 bytes an image), whatever the registry said; so is `images`.
                assert_eq!(o.get("images_need_build").unwrap(), "{}", "{what}");
                assert_eq!(o.get("images").unwrap(), "{}", "{what}");
                // The merge lists: selections that merge expands to exactly decide's images.
                check_merge_outputs(&config, &decisions, &BTreeSet::new(), &o, &what);
                if max_jobs == 256 {
                    let kib = |k: &str| size(o.get(k).unwrap_or("").len());
                    rows.push(format!(
                        "| {}{} ({}) | {} ({kept} entries) | {} | {} | {} | {} | {} | {} | {} |",
                        fmt_thousands(units),
                        if runners {
                            " (12,806 images × 2 platforms)"
                        } else {
                            ""
                        },
                        registry.label(),
                        kib("plan"),
                        kib("matrix"),
                        kib("variants_matrix"),
                        kib("matrix_levels"),
                        kib("images_need_build"),
                        kib("merge_images"),
                        kib("merge_levels"),
                        size(total)
                    ));
                }
            }
            let summary =
                skip_action::outputs::summary_markdown(&config, &hashes, &decisions, false);
            assert!(
                summary.len() <= 16 * 1024,
                "{what}: summary {}",
                summary.len()
            );
        }
    }
    eprintln!(
        "[scale] every output, max-jobs 256:\n\
         | entries (to build) | `plan` | `matrix` | `variants_matrix` | `matrix_levels` | `images_need_build` | `merge_images` | `merge_levels` | all outputs |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n{}",
        rows.join("\n")
    );
    eprintln!(
        "[scale] with the gate (`decide --level N`), max-jobs 256:\n{}",
        gates.join("\n")
    );
    assert!(
        held_merges > 0,
        "no gate held an image decide would merge: the gates' merge lists were not exercised"
    );
}

/// A deep DAG at scale: 16 levels of 300 images, each FROM the one of the level above. Each
/// level's matrix is its own job of up to `max-jobs` batches, so at 256 each `matrix_levels`
/// would weigh about 16 × 256 entries; instead every level gets as many batches as fit the
/// budget together (`outputs::level_jobs`, a function of the config), the gate of a level names
/// the same buckets, and every image to build is in exactly one batch of its level. The
/// pathological case, refused before the registry is asked, is left to the budget check.
#[test]
fn a_deep_dag_at_scale_keeps_matrix_levels_within_its_budget() {
    use skip_action::plan::{self, Existence, Force, OnRegistryError};
    let (levels, width) = (16, 300);
    let list = (1..=width)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut cfg =
        "version: 1\nrepository: registry.example.com:5000/deep/dag\nimages:\n".to_string();
    for l in 0..levels {
        cfg.push_str(&format!("  l{l}:\n    dockerfile: Dockerfile\n"));
        if l > 0 {
            cfg.push_str(&format!("    from: \"l{}/{{n}}\"\n", l - 1));
        }
        cfg.push_str(&format!(
            "    matrix:\n      n: [{list}]\n    tag: \"{{n}}-{{hash}}\"\n"
        ));
    }
    let ws = Ws::new();
    ws.write("skip-action.yml", &cfg);
    ws.write(
        "Dockerfile",
        "ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE}\nARG n\n",
    );
    let config = Config::parse(&cfg, Path::new("skip-action.yml")).unwrap();
    let discovery = skip_action::inputs::discover(&config, ws.path()).unwrap();
    let hashes = skip_action::hash::compute(&config, &discovery, &HashOptions::default()).unwrap();
    assert_eq!(config.images.len(), levels * width);
    let max_level = config.images.iter().map(|s| s.level).max().unwrap();
    assert_eq!(max_level, levels - 1);
    skip_action::outputs::check_batch_budgets(&config, 256).unwrap();
    let jobs = skip_action::outputs::level_jobs(&config, 256);
    assert!(
        jobs < 256,
        "{jobs}: 16 levels of 256 batches would pass the budget"
    );
    assert_eq!(skip_action::outputs::level_jobs(&config, 20), 20);
    let force = Force::parse(None, &config).unwrap();
    let existence = vec![Existence::Absent; config.images.len()];
    let decisions = plan::decide(&config, &existence, &force, OnRegistryError::Build).unwrap();
    let o = skip_action::outputs::decide_outputs(&config, &hashes, &decisions, false, 256);
    assert_outputs_fit(&o, "deep DAG");
    let v: serde_json::Value = serde_json::from_str(o.get("matrix_levels").unwrap()).unwrap();
    for (l, m) in v.as_array().unwrap().iter().enumerate() {
        let want: BTreeSet<String> = config
            .images
            .iter()
            .filter(|s| s.level == l)
            .map(|s| s.name.clone())
            .collect();
        check_matrix(&config, m, jobs, &want, &format!("level {l}"));
    }
    // The gate of level 5, its parents in place (only level 5 builds): the same buckets.
    let existence: Vec<Existence> = config
        .images
        .iter()
        .map(|s| {
            if s.level == 5 {
                Existence::Absent
            } else {
                Existence::Present { digest: None }
            }
        })
        .collect();
    let decisions = plan::decide(&config, &existence, &force, OnRegistryError::Build).unwrap();
    let mut gated = skip_action::outputs::decide_outputs(&config, &hashes, &decisions, false, 256);
    let gate =
        skip_action::outputs::gate_outputs(&mut gated, &config, &hashes, &decisions, false, 256, 5);
    assert_outputs_fit(&gated, "deep DAG, gate 5");
    assert!(gate.held.is_empty());
    let g: serde_json::Value = serde_json::from_str(&gate.matrix).unwrap();
    let names: BTreeSet<&str> = entries(&g)
        .iter()
        .map(|e| e["batch"].as_str().unwrap())
        .collect();
    let level5: BTreeSet<&str> = entries(&v[5])
        .iter()
        .map(|e| e["batch"].as_str().unwrap())
        .collect();
    assert_eq!(names, level5);
    eprintln!(
        "[scale] deep DAG, {levels} levels × {width} images: {jobs} batches per level, \
         matrix_levels {} bytes",
        o.get("matrix_levels").unwrap().len()
    );
}

/// `merge_images` and `merge_levels[N]` name exactly the images decide wants merged (none
/// without `runners:`) but `held` (a gate's held images: not built in this run, so not merged),
/// whatever their form: names, or selections `merge --images` expands from the config.
fn check_merge_outputs(
    config: &Config,
    decisions: &[skip_action::plan::Decision],
    held: &BTreeSet<usize>,
    o: &skip_action::github::output::Outputs,
    what: &str,
) {
    let expand = |v: &str| -> BTreeSet<usize> {
        v.split(',')
            .filter(|w| !w.is_empty())
            .flat_map(|w| {
                if skip_action::outputs::is_merge_selection(w) {
                    skip_action::outputs::expand_merge_selection(config, w).unwrap()
                } else {
                    vec![config.images.iter().position(|s| s.name == w).unwrap()]
                }
            })
            .collect()
    };
    let want: BTreeSet<usize> = (0..decisions.len())
        .filter(|&i| decisions[i].merge && !held.contains(&i))
        .collect();
    let merge_images = o.get("merge_images").unwrap();
    assert_eq!(expand(merge_images), want, "{what}: merge_images");
    assert_eq!(
        o.get("merge_needed").unwrap() == "true",
        !want.is_empty(),
        "{what}"
    );
    if config.per_platform() {
        assert!(
            want.is_empty() || skip_action::outputs::is_merge_selection(merge_images),
            "{what}: 12,806 names do not fit 32 KiB"
        );
    }
    let levels: Vec<String> = serde_json::from_str(o.get("merge_levels").unwrap()).unwrap();
    for (l, v) in levels.iter().enumerate() {
        let want_l: BTreeSet<usize> = want
            .iter()
            .copied()
            .filter(|&i| config.images[i].level == l)
            .collect();
        assert_eq!(expand(v), want_l, "{what}: merge_levels[{l}]");
        // The workflow's guard: empty when the level has nothing to merge.
        assert_eq!(v.is_empty(), want_l.is_empty(), "{what}: merge_levels[{l}]");
    }
}

/// `14 B`, `3.1 KiB`, `192 KiB`: what the README's table shows.
fn size(bytes: usize) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..10240 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{} KiB", bytes.div_ceil(1024)),
    }
}

fn fmt_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Benchmark, not a timed test (ignored; run with `cargo test --release --test scale seed_layout
/// -- --ignored --nocapture`): the seed's real layout, one repository per combination
/// (`evals/<bench>--<agent>:src-<hash>`, 12,800 repositories), behind a token server. Nothing is
/// present, so every image is asked in its own repository, each with its own token scope. It
/// asserts the plan is the truth (everything builds, because the tags are missing, never because
/// the registry could not be asked) and prints the time and the token requests.
#[test]
#[ignore = "benchmark: 12,800 repositories behind a token server"]
fn seed_layout_one_repository_per_combination_with_token_auth() {
    use skip_testkit::TokenOptions;
    let reg = TestRegistry::start_token(TokenOptions::default()).unwrap();
    let host = reg.host();
    let ws = Ws::new();
    let config = big_config(&host).replace(
        "    tag: \"{bench}-{agent}-{hash}\"\n",
        &format!(
            "    repository: \"{host}/evals/{{bench}}--{{agent}}\"\n    tag: \"src-{{hash}}\"\n"
        ),
    );
    ws.write("skip-action.yml", &config);
    ws.write("Dockerfile.base", "FROM scratch\nARG distro\n");
    ws.write(
        "Dockerfile.app",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG bench\nARG agent\n",
    );
    let m = run_measured(
        ws.path(),
        &["decide", "--json"],
        &[("SKIP_ACTION_LOG", "info")],
    );
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    let plan: serde_json::Value = serde_json::from_str(&m.stdout).unwrap();
    let plan = plan.as_array().unwrap();
    assert_eq!(plan.len(), 12_806);
    for e in plan {
        assert_eq!(e["need_build"], true, "{e}");
        assert_eq!(e["exists"], false, "{e}");
    }
    let repos: BTreeSet<&str> = plan
        .iter()
        .map(|e| e["image"].as_str().unwrap().rsplit_once(':').unwrap().0)
        .collect();
    let tokens = reg.token_server().unwrap().requests();
    let scopes: usize = tokens.iter().map(|t| t.scopes.len()).sum();
    eprintln!(
        "[scale] seed layout: {} images in {} repositories, none present: decide {:.2}s wall, \
         peak RSS {} MiB, {} token requests for {scopes} scopes ({} build)",
        plan.len(),
        repos.len(),
        m.elapsed.as_secs_f64(),
        m.peak_rss_kib / 1024,
        tokens.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}
