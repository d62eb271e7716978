//! scripts/install.sh, the action's setup step, run by itself with `sh` (dash on Debian): download
//! with retries from a local server, SHA-256 against the committed dist/SHA256SUMS, the tool
//! cache, curl or wget, the architecture names, `binary:`, and every refusal. The "binaries" are
//! small shell scripts, so these tests need no release build.

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
        std::fs::copy(
            repo_root().join("scripts/install.sh"),
            action.join("scripts/install.sh"),
        )
        .unwrap();
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
}
