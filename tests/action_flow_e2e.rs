//! The workflow as teams run it, end to end with `act` (host mode, offline) and this
//! repository's action.yml against a real `docker-registry` on 127.0.0.1:
//!
//! - tests/e2e/flow.yml (the GitHub form with test jobs): a reused image whose earlier test
//!   passed is promoted without a re-test; a failed test blocks promote; an older run finishing
//!   last leaves the aliases where they are.
//! - tests/e2e/gitea-fixed.yml (examples/workflows/gitea-fixed.yml's form: one fixed job per
//!   image, guarded by `images_need_build`), with GITEA_ACTIONS=true.
//!
//! The harness (act, the binaries, the throwaway repository, the registry) is shared with
//! tests/action_e2e.rs in tests/common/e2e.rs: without `act` the tests say so and pass, unless
//! SKIP_ACTION_E2E=require.

mod common;

use std::path::PathBuf;

use common::e2e::{
    act, add_workflow_and_commit, binary, devbox_fixture, git, install_action, testkit_bin,
    Registry, Sandbox,
};

/// A throwaway repository: the devbox example pointed at the registry, the action in
/// ./skip-action, `workflow` as .github/workflows/images.yml (tests/common/e2e.rs has the parts).
struct World {
    sandbox: Sandbox,
    act: PathBuf,
    testkit: PathBuf,
}

struct Run {
    ok: bool,
    log: String,
    builds: Vec<String>,
    tests: Vec<String>,
    promote: Option<serde_json::Value>,
}

impl Run {
    fn context(&self) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        let tail = lines[lines.len().saturating_sub(120)..].join("\n");
        format!(
            "ok={}; builds={:?}; tests={:?}; promote={:?}\n--- last lines of act's log ---\n{tail}",
            self.ok, self.builds, self.tests, self.promote
        )
    }
}

impl World {
    fn new(act: PathBuf, registry_host: &str, workflow: &str) -> World {
        let sandbox = Sandbox::new("skip-action-flow-e2e-");
        let repo = sandbox.repo();
        devbox_fixture(&repo, registry_host);
        install_action(&repo, None);
        add_workflow_and_commit(&repo, workflow, "images.yml");
        World {
            sandbox,
            act,
            testkit: testkit_bin(),
        }
    }

    fn repo(&self) -> PathBuf {
        self.sandbox.repo()
    }

    /// Change a variant's arg in the config and commit; returns the new HEAD.
    fn commit_config(&self, from: &str, to: &str) -> String {
        let cfg = self.repo().join("skip-action.yml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.contains(from), "{from} not in the config");
        std::fs::write(&cfg, text.replacen(from, to, 1)).unwrap();
        git(&self.repo(), &["commit", "-q", "-am", to]);
        git(&self.repo(), &["rev-parse", "HEAD"])
    }

    fn run(&self, label: &str, env: &[(&str, &str)]) -> Run {
        let state = self.sandbox.state();
        let bin = binary();
        let mut all = vec![
            ("E2E_STATE", state.to_str().unwrap()),
            ("E2E_TESTKIT", self.testkit.to_str().unwrap()),
            ("E2E_BIN", bin.to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        let r = self
            .sandbox
            .act(&self.act, label, "push", "images.yml", &all, &[]);
        let sorted = |f: &str| {
            let mut v = self.sandbox.state_lines(f);
            v.sort();
            v
        };
        let promote = std::fs::read_to_string(state.join("promote.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        Run {
            ok: r.ok,
            log: r.log,
            builds: sorted("builds.log"),
            tests: sorted("tests.log"),
            promote,
        }
    }
}

const ALL: [&str; 5] = [
    "base",
    "devbox/base",
    "devbox/omos",
    "devbox/omos-with-pi",
    "devbox/with-pi",
];

#[test]
fn tests_gate_promote_and_an_older_run_never_moves_latest_back() {
    let Some(act) = act() else { return };
    let reg = Registry::start();
    let w = World::new(act, &reg.reg.host(), "flow.yml");
    let c1 = git(&w.repo(), &["rev-parse", "HEAD"]);

    // 1. Everything is built, tested, stamped and promoted.
    let r = w.run("first", &[]);
    assert!(r.ok, "{}", r.context());
    assert_eq!(r.builds.len(), 5, "{}", r.context());
    assert_eq!(r.tests, ALL, "{}", r.context());
    let omos_1 = reg.digest("latest-omos").expect("latest-omos promoted");
    let base_1 = reg.digest("base-latest").expect("base-latest promoted");

    // 2. One variant changes (c2): only it is built and tested; the others are reused, their
    //    tests skipped, and promote accepts their stamps from run 1.
    let c2 = w.commit_config(
        r#"omos:         { INSTALL_OMOS: "true","#,
        r#"omos:         { INSTALL_OMOS: "yes","#,
    );
    let r = w.run("one-variant", &[]);
    assert!(r.ok, "{}", r.context());
    assert_eq!(
        r.tests,
        ["devbox/omos"],
        "only omos is re-tested\n{}",
        r.context()
    );
    assert_eq!(r.builds.len(), 1, "{}", r.context());
    let omos_2 = reg.digest("latest-omos").unwrap();
    assert_ne!(omos_2, omos_1, "{}", r.context());
    assert_eq!(reg.digest("base-latest").unwrap(), base_1);
    let promote = r.promote.as_ref().expect("promote ran");
    assert_eq!(promote["changed"], "true", "{}", r.context());

    // 3. omos changes again (c3) and its test fails: promote does not move anything.
    w.commit_config(
        r#"omos:         { INSTALL_OMOS: "yes","#,
        r#"omos:         { INSTALL_OMOS: "1","#,
    );
    let r = w.run("failed-test", &[("E2E_FAIL_TEST", "devbox/omos")]);
    assert!(!r.ok, "a failed test fails the run\n{}", r.context());
    assert_eq!(r.tests, ["devbox/omos"], "{}", r.context());
    assert!(
        r.promote.is_none(),
        "promote ran after a failed test\n{}",
        r.context()
    );
    assert_eq!(reg.digest("latest-omos").unwrap(), omos_2);

    // 4. The run of c1 finishes last (its images exist: nothing to build or test): every alias
    //    stays where the newer run of c2 put it, and the run succeeds.
    git(&w.repo(), &["checkout", "-q", &c1]);
    let r = w.run("older-run", &[]);
    assert!(r.ok, "{}", r.context());
    assert!(r.builds.is_empty() && r.tests.is_empty(), "{}", r.context());
    assert_eq!(
        reg.digest("latest-omos").unwrap(),
        omos_2,
        "latest-omos went back to c1's build\n{}",
        r.context()
    );
    assert!(r.log.contains("not moved backwards"), "{}", r.context());
    let promote = r.promote.as_ref().expect("promote ran");
    assert_eq!(promote["changed"], "", "{}", r.context());
    assert!(!c2.is_empty());
}

#[test]
fn gitea_fixed_jobs_build_only_what_changed() {
    let Some(act) = act() else { return };
    let reg = Registry::start();
    let w = World::new(act, &reg.reg.host(), "gitea-fixed.yml");
    let gitea = [("GITEA_ACTIONS", "true")];

    let r = w.run("gitea-first", &gitea);
    assert!(r.ok, "{}", r.context());
    assert_eq!(r.builds, ALL, "one fixed job per image\n{}", r.context());
    assert!(reg.digest("latest-with-pi").is_some(), "{}", r.context());

    w.commit_config(
        r#"with-pi:      { INSTALL_OMOS: "false","#,
        r#"with-pi:      { INSTALL_OMOS: "no","#,
    );
    let before = reg.digest("latest-with-pi").unwrap();
    let omos = reg.digest("latest-omos").unwrap();
    let r = w.run("gitea-one-variant", &gitea);
    assert!(r.ok, "{}", r.context());
    assert_eq!(r.builds, ["devbox/with-pi"], "{}", r.context());
    assert_ne!(reg.digest("latest-with-pi").unwrap(), before);
    assert_eq!(reg.digest("latest-omos").unwrap(), omos);
}
