//! Golden vectors of hash definition v2: fixed trees and configs with their pinned hashes.
//!
//! Any change to what is hashed or how it is encoded changes these values and fails here. That
//! is the point: a changed encoding must come with a new definition version (`HASH_VERSION`,
//! the README's "The hash" section), never slip into tags that claim the old one. To update
//! deliberately: bump the version, then replace the values with the ones this test prints.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt as _;

/// Write `files` (path, content, mode) and set every directory to 0755, so the tree is the
/// same on any runner.
fn fixed_tree(ws: &Ws, files: &[(&str, &str, u32)]) {
    for (p, c, mode) in files {
        ws.write(p, c);
        ws.chmod(p, *mode);
    }
    fn dirs(d: &std::path::Path) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
                dirs(&e.path());
            }
        }
    }
    dirs(ws.path());
}

/// name → (hash, context_digest), from `hash --json`.
fn pinned(ws: &Ws) -> Vec<(String, String, String)> {
    let v = ws.hash_json();
    assert_eq!(v["hash_version"], "v2");
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["hash"].as_str().unwrap().to_string(),
                i["context_digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check(ws: &Ws, want: &[(&str, &str, &str)]) {
    let got = pinned(ws);
    let got_ref: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        got_ref, want,
        "hash definition v2 changed; if deliberate, bump HASH_VERSION and the README, then pin:\n{got:#?}"
    );
}

/// One image: files of both modes, a nested and an empty directory, a symlink, a glob, args
/// passed, empty and unset, a target and two platforms.
#[test]
fn golden_single_image() {
    let ws = Ws::new();
    fixed_tree(
        &ws,
        &[
            (
                "skip-action.yml",
                "version: 1\nrepository: ghcr.io/acme/golden\nplatforms: [linux/arm64, linux/amd64]\nimages:\n  app:\n    target: final\n    args: {A: \"1\", B: \"\"}\n",
                0o644,
            ),
            (
                "Dockerfile",
                "# syntax=docker/dockerfile:1\nFROM alpine:3.20 AS final\nARG A\nARG B\nARG C\nCOPY rootfs/ /\nCOPY --chmod=0755 bin/*.sh /usr/local/bin/\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/x.tgz /x.tgz\n",
                0o644,
            ),
            ("rootfs/etc/motd", "hello\n", 0o644),
            ("rootfs/usr/bin/tool", "#!/bin/sh\n", 0o755),
            ("bin/a.sh", "echo a\n", 0o644),
            ("unrelated.txt", "not copied\n", 0o644),
        ],
    );
    ws.mkdir("rootfs/var/empty");
    std::fs::set_permissions(
        ws.path().join("rootfs/var/empty"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    ws.symlink("motd", "rootfs/etc/issue");
    check(
        &ws,
        &[(
            "app",
            "271b75627baa91c6623d218491985a9486fc0a50aa035e347edccad73d308a27",
            "7f541ecb29b202c490b2901c2599fd11a1007fb1d58db964f885f30fbe6b76e6",
        )],
    );
}

/// A parent and a child (parent reference by content), `inputs:`, `generated:`, exact modes.
#[test]
fn golden_parent_child_inputs_generated_exact_modes() {
    let ws = Ws::new();
    fixed_tree(
        &ws,
        &[
            (
                "skip-action.yml",
                "version: 1\nrepository: ghcr.io/acme/golden\nfile_modes: exact\nimages:\n  base:\n    dockerfile: Dockerfile.base\n    inputs: [ci/build.sh]\n  app:\n    from: base\n    dockerfile: Dockerfile.app\n    variants:\n      x: {FLAVOUR: x}\n    generated:\n      bin/central: [\"src/**\", go.mod]\n",
                0o644,
            ),
            ("Dockerfile.base", "FROM debian:12-slim\nCOPY etc /etc/\n", 0o644),
            (
                "Dockerfile.app",
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOUR\nCOPY --parents ./conf/**/*.conf /app/\nCOPY bin/central /usr/bin/\n",
                0o644,
            ),
            ("etc/motd", "base\n", 0o640),
            ("conf/a.conf", "a\n", 0o644),
            ("conf/deep/b.conf", "b\n", 0o600),
            ("src/main.go", "package main\n", 0o644),
            ("go.mod", "module x\n", 0o644),
            ("ci/build.sh", "#!/bin/sh\n", 0o755),
        ],
    );
    check(
        &ws,
        &[
            (
                "base",
                "59c72726fa08884931c66c95f72cb75bc750f5df0158fcd58941f36696cb8cd0",
                "c8ce97e11894a64d7bd97d28142b2d014c0b6530be70b772317b55838436f62f",
            ),
            (
                "app/x",
                "947e6b72c13adc5dabf18e1479079628cd9dde28cfa68b36c0f5be842061cab0",
                "566298a622b4cb27b05b00656bc7f081a80b3afd12ef52bee1c1e77fcfd77beb",
            ),
        ],
    );
}
