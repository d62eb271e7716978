//! scripts/install.sh, the action's setup step, run by itself with `sh` (dash on Debian): download
//! with retries from a local server, SHA-256 against the committed dist/SHA256SUMS, the tool
//! cache, curl or wget, the architecture names, `binary:`, and every refusal; where the assets
//! come from (OWNER/REPO from the action's path, GITHUB_SERVER_URL); and the source build (the
//! action's own checkout, when its sources are not the release's or no asset can be had) with
//! the digest that decides it. The downloaded "binaries" are small shell scripts and the source
//! build is a tiny cargo crate, so these tests need no release build.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use skip_testkit::FileServer;

const VERSION: &str = "9.9.9-test";
const X86: &str = "skip-action-x86_64-unknown-linux-musl";
const ARM: &str = "skip-action-aarch64-unknown-linux-musl";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A fake release binary: a script that answers `--version` like the real one.
fn good_binary(target: &str) -> Vec<u8> {
    format!("#!/bin/sh\necho 'skip-action {VERSION} ({target})'\n").into_bytes()
}

/// What an attacker would serve: it leaves a mark if anything runs it.
fn evil_binary(marker: &Path) -> Vec<u8> {
    format!(
        "#!/bin/sh\ntouch '{}'\necho 'skip-action {VERSION}'\n",
        marker.display()
    )
    .into_bytes()
}

/// A copy of the action's installer with its own dist/ (VERSION and SHA256SUMS of the fake
/// binaries), a tool cache, a server with the assets, and a place for GITHUB_OUTPUT.
struct Setup {
    dir: tempfile::TempDir,
    server: FileServer,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let action = dir.path().join("action");
        std::fs::create_dir_all(action.join("scripts")).unwrap();
        std::fs::create_dir_all(action.join("dist")).unwrap();
        for script in ["install.sh", "source-digest.sh"] {
            std::fs::copy(
                repo_root().join("scripts").join(script),
                action.join("scripts").join(script),
            )
            .unwrap();
        }
        std::fs::write(action.join("dist/VERSION"), format!("{VERSION}\n")).unwrap();
        let sums = format!(
            "{}  {X86}\n{}  {ARM}\n",
            sha256_hex(&good_binary("x86_64")),
            sha256_hex(&good_binary("aarch64"))
        );
        std::fs::write(action.join("dist/SHA256SUMS"), sums).unwrap();
        std::fs::create_dir_all(dir.path().join("toolcache")).unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        let server = FileServer::start().unwrap();
        server.put(&format!("/v{VERSION}/{X86}"), good_binary("x86_64"));
        server.put(&format!("/v{VERSION}/{ARM}"), good_binary("aarch64"));
        Setup { dir, server }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn download_url(&self) -> String {
        format!("{}/v{{version}}", self.server.url())
    }

    fn cached(&self, target: &str) -> PathBuf {
        self.path(&format!(
            "toolcache/skip-action/{VERSION}/{target}/skip-action"
        ))
    }

    /// Runs the installer with `env` over a clean environment (PATH from `path`, or the test's).
    fn run_with_path(&self, env: &[(&str, &str)], path: Option<&Path>) -> Run {
        let out_file = self.path("github_output");
        let _ = std::fs::remove_file(&out_file);
        let mut cmd = Command::new("sh");
        cmd.arg(self.path("action/scripts/install.sh"))
            .current_dir(self.path("work"))
            .env_clear()
            .env(
                "PATH",
                path.map(|p| p.as_os_str().to_owned())
                    .unwrap_or_else(|| std::env::var_os("PATH").unwrap()),
            )
            .env("HOME", self.dir.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &out_file)
            .env("RUNNER_TOOL_CACHE", self.path("toolcache"))
            .env("SKIP_ACTION_ARCH", "x86_64");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("run sh");
        let outputs = std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Run { output, outputs }
    }

    fn run(&self, env: &[(&str, &str)]) -> Run {
        let url = self.download_url();
        let mut all = vec![("INPUT_DOWNLOAD_URL", url.as_str())];
        all.extend_from_slice(env);
        self.run_with_path(&all, None)
    }
}

struct Run {
    output: Output,
    outputs: BTreeMap<String, String>,
}

impl Run {
    fn ok(&self) -> bool {
        self.output.status.success()
    }
    fn log(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
    fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "install.sh failed:\n{}", self.log());
        self
    }
    fn assert_failed(&self, needle: &str) -> &Self {
        assert!(!self.ok(), "install.sh should have failed:\n{}", self.log());
        assert!(
            self.log().contains(needle),
            "expected {needle:?} in:\n{}",
            self.log()
        );
        // On a runner the reason is an annotation, not only a log line.
        assert!(self.log().contains("::error"), "{}", self.log());
        assert!(!self.outputs.contains_key("path"), "{:?}", self.outputs);
        self
    }
    fn out(&self, k: &str) -> &str {
        self.outputs.get(k).map(String::as_str).unwrap_or("")
    }
}

#[test]
fn downloads_verifies_caches_and_reuses() {
    let s = Setup::new();
    let r = s.run(&[]);
    r.assert_ok();
    let cached = s.cached("x86_64-unknown-linux-musl");
    assert_eq!(r.out("path"), cached.to_str().unwrap());
    assert_eq!(r.out("source"), "download");
    assert_eq!(r.out("version"), VERSION);
    assert_eq!(r.out("target"), "x86_64-unknown-linux-musl");
    assert_eq!(std::fs::read(&cached).unwrap(), good_binary("x86_64"));
    assert_eq!(
        std::fs::metadata(&cached).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert!(r.log().contains("verified"), "{}", r.log());
    assert_eq!(
        s.server.requests(),
        vec![format!("GET /v{VERSION}/{X86} 200")]
    );
    // No partial download is left next to it.
    let names: Vec<_> = std::fs::read_dir(cached.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["skip-action".to_string()]);

    // Second run: from the tool cache, verified again, nothing downloaded.
    let r = s.run(&[]);
    r.assert_ok();
    assert_eq!(r.out("source"), "cache");
    assert_eq!(r.out("path"), cached.to_str().unwrap());
    assert_eq!(s.server.requests().len(), 1);
}

#[test]
fn retries_failed_downloads() {
    let s = Setup::new();
    s.server.fail_next(&[503, 500]);
    let r = s.run(&[]);
    r.assert_ok();
    assert_eq!(
        s.server.requests(),
        vec![
            format!("GET /v{VERSION}/{X86} 503"),
            format!("GET /v{VERSION}/{X86} 500"),
            format!("GET /v{VERSION}/{X86} 200"),
        ]
    );
    assert!(r.log().contains("attempt 1 of 4"), "{}", r.log());
}

#[test]
fn gives_up_after_the_last_attempt() {
    let s = Setup::new();
    s.server.fail_next(&[503, 503, 503]);
    let r = s.run(&[("SKIP_ACTION_DOWNLOAD_ATTEMPTS", "2")]);
    r.assert_failed("could not download");
    assert!(r.log().contains("binary:"), "{}", r.log());
    assert_eq!(s.server.requests().len(), 2);
    assert!(!s.cached("x86_64-unknown-linux-musl").exists());
}

#[test]
fn refuses_a_tampered_asset_and_never_runs_it() {
    let s = Setup::new();
    let marker = s.path("ran");
    s.server
        .put(&format!("/v{VERSION}/{X86}"), evil_binary(&marker));
    let r = s.run(&[]);
    r.assert_failed("checksum mismatch");
    assert!(r.log().contains(&sha256_hex(&good_binary("x86_64"))));
    assert!(r.log().contains(&sha256_hex(&evil_binary(&marker))));
    assert!(!marker.exists(), "the tampered binary was executed");
    let dir = s.cached("x86_64-unknown-linux-musl");
    let left: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_tampered_cache_is_replaced_not_run() {
    let s = Setup::new();
    s.run(&[]).assert_ok();
    let cached = s.cached("x86_64-unknown-linux-musl");
    let marker = s.path("ran");
    std::fs::write(&cached, evil_binary(&marker)).unwrap();
    let r = s.run(&[]);
    r.assert_ok();
    assert!(r.log().contains("does not match"), "{}", r.log());
    assert_eq!(r.out("source"), "download");
    assert!(!marker.exists(), "the tampered cached binary was executed");
    assert_eq!(std::fs::read(&cached).unwrap(), good_binary("x86_64"));
    assert_eq!(s.server.requests().len(), 2);
}

/// A PATH holding only what the installer needs, with `wget` or `curl` or neither.
fn minimal_path(s: &Setup, with: &[&str]) -> PathBuf {
    let bin = s.path("minbin");
    std::fs::create_dir_all(&bin).unwrap();
    let base = [
        "sh",
        "dirname",
        "uname",
        "tr",
        "head",
        "awk",
        "sed",
        "cut",
        "sha256sum",
        "mkdir",
        "rm",
        "chmod",
        "mv",
        "sleep",
        "cat",
        "mktemp",
    ];
    for tool in base.iter().chain(with) {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is not installed (scripts/test.sh installs it)"));
        let _ = std::os::unix::fs::symlink(found, bin.join(tool));
    }
    bin
}

#[test]
fn works_with_wget_when_curl_is_missing() {
    let s = Setup::new();
    let path = minimal_path(&s, &["wget"]);
    s.server.fail_next(&[502]);
    let url = s.download_url();
    let r = s.run_with_path(&[("INPUT_DOWNLOAD_URL", &url)], Some(&path));
    r.assert_ok();
    assert!(r.log().contains("with wget"), "{}", r.log());
    assert_eq!(s.server.requests().len(), 2);
    assert_eq!(
        std::fs::read(s.cached("x86_64-unknown-linux-musl")).unwrap(),
        good_binary("x86_64")
    );

    // With curl only, the same.
    let s = Setup::new();
    let path = minimal_path(&s, &["curl"]);
    let url = s.download_url();
    let r = s.run_with_path(&[("INPUT_DOWNLOAD_URL", &url)], Some(&path));
    r.assert_ok();
    assert!(r.log().contains("with curl"), "{}", r.log());

    // Neither: a clear error.
    let s = Setup::new();
    let path = minimal_path(&s, &[]);
    let url = s.download_url();
    s.run_with_path(&[("INPUT_DOWNLOAD_URL", &url)], Some(&path))
        .assert_failed("neither curl nor wget");
}

#[test]
fn architecture_names_map_to_targets() {
    for (arch, target, asset) in [
        ("x86_64", "x86_64-unknown-linux-musl", X86),
        ("amd64", "x86_64-unknown-linux-musl", X86),
        ("X64", "x86_64-unknown-linux-musl", X86),
        ("x64", "x86_64-unknown-linux-musl", X86),
        ("AMD64", "x86_64-unknown-linux-musl", X86),
        ("aarch64", "aarch64-unknown-linux-musl", ARM),
        ("arm64", "aarch64-unknown-linux-musl", ARM),
        ("ARM64", "aarch64-unknown-linux-musl", ARM),
        ("AArch64", "aarch64-unknown-linux-musl", ARM),
    ] {
        let s = Setup::new();
        let r = s.run(&[("SKIP_ACTION_ARCH", arch)]);
        r.assert_ok();
        assert_eq!(r.out("target"), target, "{arch}");
        assert_eq!(
            s.server.requests(),
            vec![format!("GET /v{VERSION}/{asset} 200")],
            "{arch}"
        );
    }
    for arch in ["riscv64", "armv7l", "i686", "s390x"] {
        let s = Setup::new();
        s.run(&[("SKIP_ACTION_ARCH", arch)])
            .assert_failed("binary:");
        assert!(s.server.requests().is_empty());
    }
}

#[test]
fn uname_is_used_when_no_override() {
    let s = Setup::new();
    let url = s.download_url();
    let out = Command::new("sh")
        .arg(s.path("action/scripts/install.sh"))
        .current_dir(s.path("work"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("RUNNER_TOOL_CACHE", s.path("toolcache"))
        .env("INPUT_DOWNLOAD_URL", &url)
        .output()
        .unwrap();
    let machine =
        String::from_utf8(Command::new("uname").arg("-m").output().unwrap().stdout).unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    match machine.trim() {
        "x86_64" | "aarch64" => {
            assert!(out.status.success(), "{log}");
            assert!(
                log.contains(&format!("{}-unknown-linux-musl", machine.trim())),
                "{log}"
            );
        }
        _ => assert!(!out.status.success()),
    }
}

#[test]
fn binary_input_skips_the_download() {
    let s = Setup::new();
    let own = s.path("work/build/skip-action");
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    std::fs::write(&own, "#!/bin/sh\necho 'skip-action 0.0.0-local'\n").unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Relative to the working directory (the workspace, in a workflow) or absolute.
    for given in ["build/skip-action", own.to_str().unwrap()] {
        let r = s.run(&[("INPUT_BINARY", given)]);
        r.assert_ok();
        assert_eq!(
            Path::new(r.out("path")).canonicalize().unwrap(),
            own.canonicalize().unwrap()
        );
        assert_eq!(r.out("source"), "binary");
        assert!(r.log().contains("0.0.0-local"), "{}", r.log());
    }
    assert!(s.server.requests().is_empty());

    s.run(&[("INPUT_BINARY", "nope/skip-action")])
        .assert_failed("does not exist");
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.run(&[("INPUT_BINARY", "build/skip-action")])
        .assert_failed("not executable");
    // A binary that cannot run here (wrong architecture, noexec) says so.
    std::fs::write(&own, b"\x7fELF garbage").unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.run(&[("INPUT_BINARY", "build/skip-action")])
        .assert_failed("does not run on this machine");
}

#[test]
fn refuses_without_a_committed_checksum() {
    // No line for the asset.
    let s = Setup::new();
    std::fs::write(
        s.path("action/dist/SHA256SUMS"),
        format!("{}  {ARM}\n", sha256_hex(&good_binary("aarch64"))),
    )
    .unwrap();
    s.run(&[])
        .assert_failed("no checksum for skip-action-x86_64");
    assert!(s.server.requests().is_empty());

    // No SHA256SUMS at all, or no VERSION: nothing is downloaded, binary: is suggested.
    let s = Setup::new();
    std::fs::remove_file(s.path("action/dist/SHA256SUMS")).unwrap();
    s.run(&[]).assert_failed("binary:");
    let s = Setup::new();
    std::fs::remove_file(s.path("action/dist/VERSION")).unwrap();
    s.run(&[]).assert_failed("binary:");
    assert!(s.server.requests().is_empty());

    // A checksum file served next to the asset is never consulted.
    let s = Setup::new();
    let marker = s.path("ran");
    let evil = evil_binary(&marker);
    s.server.put(&format!("/v{VERSION}/{X86}"), evil.clone());
    s.server.put(
        &format!("/v{VERSION}/SHA256SUMS"),
        format!("{}  {X86}\n", sha256_hex(&evil)),
    );
    s.server
        .put(&format!("/v{VERSION}/{X86}.sha256"), sha256_hex(&evil));
    s.run(&[]).assert_failed("checksum mismatch");
    assert!(!marker.exists());
    assert_eq!(s.server.requests().len(), 1, "{:?}", s.server.requests());
}

#[test]
fn the_committed_dist_is_well_formed() {
    let dist = repo_root().join("dist");
    let version = std::fs::read_to_string(dist.join("VERSION")).unwrap();
    let version = version.trim();
    assert!(
        !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c)),
        "dist/VERSION: {version:?}"
    );
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let mut assets: Vec<&str> = Vec::new();
    for line in sums.lines() {
        let (hex, name) = line.split_once("  ").expect("`<sha256>  <asset>` lines");
        assert!(
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{line}"
        );
        assets.push(name);
    }
    assert_eq!(assets, vec![X86, ARM], "dist/SHA256SUMS lists both targets");
    // dist/SOURCES, written with them on a release (absent until the first one: every commit
    // then builds from source).
    if let Ok(sources) = std::fs::read_to_string(dist.join("SOURCES")) {
        let d = sources.trim();
        assert!(
            d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()),
            "dist/SOURCES: {d:?}"
        );
    }
}

// ---- where the assets come from -------------------------------------------------------------

/// The asset's path on a GitHub/Gitea-style server: `/OWNER/REPO/releases/download/vV/asset`.
fn release_path(repo: &str, asset: &str) -> String {
    format!("/{repo}/releases/download/v{VERSION}/{asset}")
}

#[test]
fn owner_and_repo_come_from_the_action_path() {
    let s = Setup::new();
    s.server
        .put(&release_path("acme/fork", X86), good_binary("x86_64"));
    let server = s.server.url();
    let r = s.run_with_path(
        &[
            (
                "GITHUB_ACTION_PATH",
                "/home/runner/work/_actions/acme/fork/v1",
            ),
            ("GITHUB_SERVER_URL", &server),
        ],
        None,
    );
    r.assert_ok();
    assert_eq!(r.out("source"), "download");
    assert_eq!(
        s.server.requests(),
        vec![format!("GET {} 200", release_path("acme/fork", X86))]
    );

    // The path names where this script is; a GITHUB_ACTION_REPOSITORY that disagrees (a wrapping
    // composite action's, say) does not win, and the log says so.
    let s = Setup::new();
    s.server
        .put(&release_path("acme/fork", X86), good_binary("x86_64"));
    let server = s.server.url();
    let r = s.run_with_path(
        &[
            (
                "GITHUB_ACTION_PATH",
                "/runner/_work/_actions/acme/fork/main",
            ),
            ("GITHUB_ACTION_REPOSITORY", "someone/else"),
            ("GITHUB_SERVER_URL", &server),
        ],
        None,
    );
    r.assert_ok();
    assert!(r.log().contains("someone/else"), "{}", r.log());
    assert_eq!(s.server.requests().len(), 1);
    assert!(s.server.requests()[0].contains("/acme/fork/"));
}

#[test]
fn gitea_and_runners_without_the_layout_use_github_action_repository() {
    // act_runner (Gitea) keeps actions elsewhere; GITHUB_SERVER_URL is the Gitea host, whose
    // release URLs have GitHub's layout.
    let s = Setup::new();
    s.server.put(
        &release_path("infra/skip-action", X86),
        good_binary("x86_64"),
    );
    let server = s.server.url();
    let r = s.run_with_path(
        &[
            ("GITEA_ACTIONS", "true"),
            ("GITHUB_ACTION_PATH", "/root/.cache/act/abc123/hostexecutor"),
            ("GITHUB_ACTION_REPOSITORY", "infra/skip-action"),
            ("GITHUB_SERVER_URL", &server),
        ],
        None,
    );
    r.assert_ok();
    assert_eq!(
        s.server.requests(),
        vec![format!(
            "GET {} 200",
            release_path("infra/skip-action", X86)
        )]
    );

    // download-url still overrides everything.
    let s = Setup::new();
    let r = s.run(&[
        (
            "GITHUB_ACTION_PATH",
            "/home/runner/work/_actions/acme/fork/v1",
        ),
        ("GITHUB_SERVER_URL", "http://127.0.0.1:9"),
    ]);
    r.assert_ok();
    assert_eq!(
        s.server.requests(),
        vec![format!("GET /v{VERSION}/{X86} 200")]
    );

    // Nothing to go on, and no sources to build: the fix is named.
    let s = Setup::new();
    let r = s.run_with_path(
        &[
            ("GITHUB_ACTION_PATH", "/somewhere/else"),
            ("GITHUB_ACTION_REPOSITORY", ""),
        ],
        None,
    );
    r.assert_failed("download-url:");
    assert!(s.server.requests().is_empty());
    // A malformed repository name is not used.
    let s = Setup::new();
    s.run_with_path(
        &[
            ("GITHUB_ACTION_PATH", "/somewhere/else"),
            ("GITHUB_ACTION_REPOSITORY", "../../evil"),
        ],
        None,
    )
    .assert_failed("download-url:");
}

// ---- the source build -----------------------------------------------------------------------

const BUILT_VERSION: &str = "skip-action 0.0.1-built-from-source";

/// Makes the Setup's action a checkout with sources: a tiny cargo crate whose `skip-action`
/// binary answers `--version` with [`BUILT_VERSION`].
fn with_sources(s: &Setup) {
    let a = s.path("action");
    std::fs::write(
        a.join("Cargo.toml"),
        "[package]\nname = \"skip-action\"\nversion = \"0.0.1\"\nedition = \"2021\"\n\n[[bin]]\nname = \"skip-action\"\npath = \"src/main.rs\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        a.join("Cargo.lock"),
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 3\n\n[[package]]\nname = \"skip-action\"\nversion = \"0.0.1\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(a.join("src")).unwrap();
    std::fs::write(
        a.join("src/main.rs"),
        format!("fn main() {{ println!(\"{BUILT_VERSION}\"); }}\n"),
    )
    .unwrap();
}

fn source_digest(dir: &Path) -> String {
    let o = Command::new("sh")
        .arg(repo_root().join("scripts/source-digest.sh"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert!(
        d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()),
        "{d}"
    );
    d
}

/// cargo for the installer: the test's PATH, CARGO_HOME, RUSTUP_HOME and toolchain (the
/// installer runs with HOME in a temp dir).
fn cargo_env() -> Vec<(String, String)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let mut env = vec![
        (
            "CARGO_HOME".to_string(),
            std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo")),
        ),
        (
            "RUSTUP_HOME".to_string(),
            std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{home}/.rustup")),
        ),
    ];
    if let Ok(t) = std::env::var("RUSTUP_TOOLCHAIN") {
        env.push(("RUSTUP_TOOLCHAIN".to_string(), t));
    }
    env
}

fn run_built(s: &Setup, extra: &[(&str, &str)]) -> Run {
    let cargo = cargo_env();
    let mut env: Vec<(&str, &str)> = cargo
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend_from_slice(extra);
    s.run_with_path(&env, None)
}

fn assert_runs_the_build(r: &Run) {
    let out = Command::new(r.out("path"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), BUILT_VERSION);
    assert!(r.log().contains(BUILT_VERSION), "{}", r.log());
}

#[test]
fn sources_that_differ_from_the_release_are_built_and_cached() {
    let s = Setup::new();
    with_sources(&s);
    // The release was built from other sources.
    std::fs::write(
        s.path("action/dist/SOURCES"),
        format!("{}\n", "0".repeat(64)),
    )
    .unwrap();
    let url = s.download_url();
    let r = run_built(&s, &[("INPUT_DOWNLOAD_URL", &url)]);
    r.assert_ok();
    assert_eq!(r.out("source"), "build", "{}", r.log());
    assert_runs_the_build(&r);
    assert!(s.server.requests().is_empty(), "nothing is downloaded");
    assert!(r.log().contains("differ from release"), "{}", r.log());
    // The time it took, as a notice on the run's page.
    assert!(
        r.log()
            .contains("::notice title=skip-action setup::built skip-action from source in "),
        "{}",
        r.log()
    );
    let digest = source_digest(&s.path("action"));
    assert!(
        r.out("path")
            .contains(&format!("/skip-action/src-{digest}/")),
        "cached by the digest of the sources: {}",
        r.out("path")
    );
    // No build directory is left behind.
    let left: Vec<_> = std::fs::read_dir(s.path("toolcache/skip-action"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".build"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The next job on this runner: from the tool cache, no cargo needed.
    let path = minimal_path(&s, &["find", "sort"]);
    let r = s.run_with_path(&[("INPUT_DOWNLOAD_URL", &url)], Some(&path));
    r.assert_ok();
    assert_eq!(r.out("source"), "build-cache", "{}", r.log());
    assert_runs_the_build(&r);

    // No dist/SOURCES at all (no release recorded its sources): built too.
    let s = Setup::new();
    with_sources(&s);
    let r = run_built(&s, &[("INPUT_DOWNLOAD_URL", &url)]);
    r.assert_ok();
    assert_eq!(r.out("source"), "build");
    assert!(r.log().contains("dist/SOURCES is missing"), "{}", r.log());
}

#[test]
fn release_sources_download_the_release_and_failing_downloads_build() {
    let s = Setup::new();
    with_sources(&s);
    let digest = source_digest(&s.path("action"));
    std::fs::write(s.path("action/dist/SOURCES"), format!("{digest}\n")).unwrap();
    let url = s.download_url();

    // This commit is the release: its binary is downloaded, nothing is built.
    let r = run_built(&s, &[("INPUT_DOWNLOAD_URL", &url)]);
    r.assert_ok();
    assert_eq!(r.out("source"), "download", "{}", r.log());
    assert!(r.log().contains("are release"), "{}", r.log());

    // Downloads failing (a fork that never released, an outage): built from source, and run.
    let s = Setup::new();
    with_sources(&s);
    std::fs::write(s.path("action/dist/SOURCES"), format!("{digest}\n")).unwrap();
    s.server.fail_next(&[503, 503]);
    let url = s.download_url();
    let r = run_built(
        &s,
        &[
            ("INPUT_DOWNLOAD_URL", &url),
            ("SKIP_ACTION_DOWNLOAD_ATTEMPTS", "2"),
        ],
    );
    r.assert_ok();
    assert_eq!(s.server.requests().len(), 2, "{:?}", s.server.requests());
    assert_eq!(r.out("source"), "build", "{}", r.log());
    assert!(r.log().contains("could not be downloaded"), "{}", r.log());
    assert_runs_the_build(&r);
    assert!(!s.cached("x86_64-unknown-linux-musl").exists());

    // A tampered asset is never a reason to build something else: it fails.
    let s = Setup::new();
    with_sources(&s);
    std::fs::write(s.path("action/dist/SOURCES"), format!("{digest}\n")).unwrap();
    let marker = s.path("ran");
    s.server
        .put(&format!("/v{VERSION}/{X86}"), evil_binary(&marker));
    let url = s.download_url();
    run_built(&s, &[("INPUT_DOWNLOAD_URL", &url)]).assert_failed("checksum mismatch");
    assert!(!marker.exists());
}

#[test]
fn without_cargo_the_source_build_fails_with_the_fix() {
    let s = Setup::new();
    with_sources(&s);
    let path = minimal_path(&s, &["curl", "find", "sort"]);
    let url = s.download_url();
    let r = s.run_with_path(
        &[
            ("INPUT_DOWNLOAD_URL", &url),
            ("CARGO_HOME", s.path("no-cargo").to_str().unwrap()),
        ],
        Some(&path),
    );
    r.assert_failed("cargo is not installed");
    assert!(
        r.log().contains("differ from release") || r.log().contains("dist/SOURCES is missing"),
        "{}",
        r.log()
    );
    for fix in ["sh.rustup.rs", "GITHUB_PATH", "@v1", "binary:"] {
        assert!(
            r.log().contains(fix),
            "the fix must name {fix}: {}",
            r.log()
        );
    }
    assert!(s.server.requests().is_empty());
}

/// The repository files cargo read to build the binary, relative to `root`: from the binary's
/// dep-info (`target/debug/skip-action.d`, written by a `cargo build`), or, after only a `cargo
/// test` (a fresh clone in CI), from the dep-info of the workspace crates' own units in `deps/`
/// (their paths are relative to the workspace root; files since deleted are left out).
fn binary_sources(root: &Path) -> std::collections::BTreeSet<String> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_skip-action"));
    let mut texts = Vec::new();
    if let Ok(text) = std::fs::read_to_string(bin.with_extension("d")) {
        texts.push(text);
    } else {
        let deps = bin.parent().unwrap().join("deps");
        for entry in std::fs::read_dir(&deps).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let ours = [
                "skip_action-",
                "skip_registry-",
                "skip_dockerfile-",
                "skip_dockerignore-",
            ]
            .iter()
            .any(|c| name.starts_with(c));
            if ours && name.ends_with(".d") {
                texts.push(std::fs::read_to_string(entry.path()).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for text in texts {
        // `target: dep dep …` (spaces in paths are escaped as `\ `; this repository has none).
        let Some((_, deps)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
            continue;
        };
        for dep in deps.split_whitespace() {
            let p = Path::new(dep);
            let rel = if p.is_absolute() {
                match p
                    .strip_prefix(root)
                    .or_else(|_| p.strip_prefix(repo_root()))
                {
                    Ok(r) => r.to_path_buf(),
                    Err(_) => continue,
                }
            } else {
                p.to_path_buf()
            };
            if rel.starts_with("target") || !root.join(&rel).exists() {
                continue;
            }
            out.insert(rel.to_string_lossy().to_string());
        }
    }
    out
}

/// The digest covers every file cargo reads to build the binary — its dep-info, written next to
/// the test build — so a new source location cannot slip past it and run an old release binary
/// under a newer action.yml.
#[test]
fn the_source_digest_covers_every_file_the_binary_is_built_from() {
    let root = repo_root().canonicalize().unwrap();
    let listed = Command::new("sh")
        .arg(root.join("scripts/source-digest.sh"))
        .arg("--list")
        .arg(&root)
        .output()
        .unwrap();
    assert!(listed.status.success());
    let listed: std::collections::BTreeSet<String> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for must in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "src/main.rs",
    ] {
        assert!(listed.contains(must), "{must} not covered: {listed:?}");
    }
    let mut checked = 0;
    for rel in binary_sources(&root) {
        let rel = rel.as_str();
        if rel.starts_with("target/") {
            continue;
        }
        assert!(
            listed.contains(rel),
            "{rel} goes into the binary but scripts/source-digest.sh does not cover it"
        );
        checked += 1;
    }
    assert!(
        checked > 20,
        "only {checked} files in the binary's dep-info"
    );
}

/// The digest is a function of the covered files' contents and paths: not of where the checkout
/// is, nor of files outside the build (docs, tests of the action, workflows).
#[test]
fn the_source_digest_follows_the_sources_only() {
    let root = repo_root();
    let listed = Command::new("sh")
        .arg(root.join("scripts/source-digest.sh"))
        .arg("--list")
        .output()
        .unwrap();
    let files: Vec<String> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let copy = |to: &Path| {
        for f in &files {
            let dst = to.join(f);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(root.join(f), dst).unwrap();
        }
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    copy(a.path());
    copy(&b.path().join("deeper/checkout"));
    let b = b.path().join("deeper/checkout");
    let d = source_digest(a.path());
    assert_eq!(source_digest(&b), d, "the digest depends on the location");
    assert_eq!(
        source_digest(&root),
        d,
        "the copy is the checkout's sources"
    );
    std::fs::write(b.join("README.md"), "docs change\n").unwrap();
    std::fs::create_dir_all(b.join("tests")).unwrap();
    std::fs::write(b.join("tests/new.rs"), "// test\n").unwrap();
    assert_eq!(source_digest(&b), d, "files outside the build count");
    std::fs::write(b.join("src/main.rs"), "fn main() {}\n").unwrap();
    assert_ne!(source_digest(&b), d, "a source change is missed");
    std::fs::copy(root.join("src/main.rs"), b.join("src/main.rs")).unwrap();
    assert_eq!(source_digest(&b), d);
    std::fs::write(b.join("crates/registry/src/new.rs"), "// new\n").unwrap();
    assert_ne!(source_digest(&b), d, "a new source file is missed");
}
