//! The release binaries (scripts/build-release.sh's assets), run for real: each is a static ELF
//! for its machine, small, starts, hashes the bundled example exactly as the test build does, and
//! talks to a registry (rustls and the async runtime at work) — the aarch64 one under
//! `qemu-aarch64-static` on an x86_64 host.
//!
//! The assets are looked for in $SKIP_ACTION_RELEASE_DIR (scripts/test.sh builds them there).
//! Without it the tests say so and pass, unless SKIP_ACTION_E2E=require.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use skip_testkit::TestRegistry;

const TARGETS: [(&str, u16); 2] = [
    ("x86_64-unknown-linux-musl", 62),   // EM_X86_64
    ("aarch64-unknown-linux-musl", 183), // EM_AARCH64
];
/// The size the README promises to stay under.
const MAX_BYTES: u64 = 8 * 1024 * 1024;

fn release_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SKIP_ACTION_RELEASE_DIR").map(PathBuf::from);
    if dir.is_none() {
        assert_ne!(
            std::env::var("SKIP_ACTION_E2E").as_deref(),
            Ok("require"),
            "SKIP_ACTION_RELEASE_DIR is not set (scripts/test.sh builds the release assets)"
        );
        eprintln!("SKIPPED: SKIP_ACTION_RELEASE_DIR is not set (scripts/build-release.sh --no-dist --out DIR)");
    }
    dir
}

/// How to run a binary for `target` here: directly, or under qemu-user.
fn runner(target: &str) -> Option<Vec<String>> {
    let host = std::env::consts::ARCH;
    let arch = target.split('-').next().unwrap();
    if arch == host {
        return Some(vec![]);
    }
    let qemu = format!("qemu-{arch}-static");
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(&qemu).is_file());
    if !found {
        assert_ne!(
            std::env::var("SKIP_ACTION_E2E").as_deref(),
            Ok("require"),
            "{qemu} is not installed (apt-get install qemu-user-static)"
        );
        eprintln!("SKIPPED {target}: {qemu} is not installed");
        return None;
    }
    Some(vec![qemu])
}

fn run(target: &str, bin: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let r = runner(target).unwrap();
    let mut cmd = match r.first() {
        Some(q) => {
            let mut c = Command::new(q);
            c.arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("INPUT_") || k.starts_with("GITHUB_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// ELF64 little-endian: (e_machine, has a PT_INTERP program header).
fn elf_facts(bytes: &[u8]) -> (u16, bool) {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[4], 2, "not ELF64");
    assert_eq!(bytes[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let machine = u16_at(18);
    let phoff = u64_at(32) as usize;
    let phentsize = u16_at(54) as usize;
    let phnum = u16_at(56) as usize;
    let interp = (0..phnum).any(|i| u32_at(phoff + i * phentsize) == 3); // PT_INTERP
    (machine, interp)
}

fn host_build_hash_json(dir: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_skip-action"))
        .current_dir(dir)
        .args(["hash", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success());
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn release_binaries_are_static_small_and_work() {
    let Some(dir) = release_dir() else { return };
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/devbox");
    let want = host_build_hash_json(&example);
    let version = format!("skip-action {}", env!("CARGO_PKG_VERSION"));
    for (target, machine) in TARGETS {
        let bin = dir.join(format!("skip-action-{target}"));
        let bytes = std::fs::read(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let (m, interp) = elf_facts(&bytes);
        assert_eq!(m, machine, "{target}: wrong machine");
        assert!(
            !interp,
            "{target}: dynamically linked (has an ELF interpreter)"
        );
        assert!(
            (bytes.len() as u64) < MAX_BYTES,
            "{target}: {} bytes, over {MAX_BYTES}",
            bytes.len()
        );
        eprintln!("{target}: {} bytes", bytes.len());
        if runner(target).is_none() {
            continue;
        }

        // Starts (under qemu too) and knows its version. The time is logged, not bounded.
        let started = Instant::now();
        let o = run(target, &bin, &example, &["--version"], &[]);
        let took = started.elapsed();
        assert!(o.status.success(), "{target} --version");
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), version);
        eprintln!("{target}: --version in {took:?}");

        // Same hashes as the test build, on every architecture.
        let o = run(target, &bin, &example, &["hash", "--json"], &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            got, want,
            "{target}: hash --json differs from the test build"
        );
    }
}

#[test]
fn release_binaries_decide_against_a_registry() {
    let Some(dir) = release_dir() else { return };
    let reg = TestRegistry::start_open().unwrap();
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(
        ws.path().join("skip-action.yml"),
        format!(
            "version: 1\nrepository: {}/smoke/app\nimages:\n  app:\n    tag: app-{{hash}}\n",
            reg.host()
        ),
    )
    .unwrap();
    std::fs::write(ws.path().join("Dockerfile"), "FROM alpine:3.20\n").unwrap();
    for (target, _) in TARGETS {
        if runner(target).is_none() {
            continue;
        }
        let bin = dir.join(format!("skip-action-{target}"));
        let out = ws.path().join(format!("out-{target}"));
        let o = run(
            target,
            &bin,
            ws.path(),
            &[],
            &[
                ("INPUT_COMMAND", "decide"),
                ("INPUT_ON_REGISTRY_ERROR", "fail"),
                ("GITHUB_OUTPUT", out.to_str().unwrap()),
            ],
        );
        assert!(
            o.status.success(),
            "{target} decide: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("need_build<<"), "{text}");
        assert!(
            text.contains("\ntrue\n"),
            "{target}: app should need a build: {text}"
        );
    }
}
