//! The hash's required properties, each a test, on the README's devbox example.
//!
//! Each test changes exactly one thing and checks which images' hashes moved. A hash that does not
//! move when the image would differ is a false skip — the one bug that ships stale images.

mod common;

use common::*;
use std::collections::BTreeMap;

const VARIANTS: [&str; 4] = [
    "devbox/base",
    "devbox/omos",
    "devbox/with-pi",
    "devbox/omos-with-pi",
];

fn all_names() -> Vec<&'static str> {
    let mut v = vec!["base"];
    v.extend(VARIANTS);
    v
}

/// Names whose hash differs between two runs.
fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .filter(|(k, v)| b[*k] != **v)
        .map(|(k, _)| k.clone())
        .collect()
}

/// Apply `f` to a fresh devbox workspace and return which images changed.
fn after(f: impl FnOnce(&Ws)) -> Vec<String> {
    let ws = devbox();
    let before = ws.hashes();
    f(&ws);
    let after = ws.hashes();
    changed(&before, &after)
}

fn everything() -> Vec<String> {
    let mut v: Vec<String> = all_names().iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn variants_only() -> Vec<String> {
    let mut v: Vec<String> = VARIANTS.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn deterministic_across_runs() {
    let ws = devbox();
    let a = ws.hash_json();
    let b = ws.hash_json();
    assert_eq!(a, b);
    for (_, h) in hashes_of(&a) {
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}

#[test]
fn independent_of_checkout_path_and_creation_order_and_mtime() {
    let a = devbox();
    // Same content, created in reverse order, in another directory, with other mtimes.
    let b = Ws::new();
    let nested = b.path().join("some/deeper/checkout");
    std::fs::create_dir_all(&nested).unwrap();
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    fn collect(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                collect(&e.path(), base, out);
            } else {
                out.push(e.path().strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    collect(a.path(), a.path(), &mut files);
    files.sort();
    files.reverse();
    for rel in &files {
        let dst = nested.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(a.path().join(rel), &dst).unwrap();
        let f = std::fs::File::options().write(true).open(&dst).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345))
            .unwrap();
    }
    let hb = run_in(&nested, &["hash", "--json"], &[]);
    assert!(hb.status.success(), "{}", stderr(&hb));
    let hb: serde_json::Value = serde_json::from_slice(&hb.stdout).unwrap();
    assert_eq!(a.hashes(), hashes_of(&hb));
}

#[test]
fn one_byte_in_a_copied_file_changes_base_and_cascades() {
    assert_eq!(
        after(|ws| {
            ws.write("rootfs/etc/profile.d/devbox.sh", "export EDITOR=vim\n");
        }),
        everything()
    );
}

#[test]
fn a_mode_bit_changes_the_hash() {
    // Hash v2: by default only the bit git records (owner exec) counts; group/other bits come
    // from the runner's umask. `file_modes: exact` counts every bit (tests/hash_v2.rs).
    assert_eq!(
        after(|ws| ws.chmod("rootfs/etc/profile.d/devbox.sh", 0o755)),
        everything()
    );
    assert!(after(|ws| ws.chmod("rootfs/etc/profile.d/devbox.sh", 0o640)).is_empty());
}

#[test]
fn a_renamed_file_changes_the_hash() {
    assert_eq!(
        after(|ws| {
            std::fs::rename(
                ws.path().join("rootfs/etc/profile.d/devbox.sh"),
                ws.path().join("rootfs/etc/profile.d/devbox2.sh"),
            )
            .unwrap()
        }),
        everything()
    );
}

#[test]
fn a_new_file_in_a_copied_dir_changes_the_hash() {
    assert_eq!(
        after(|ws| {
            ws.write("rootfs/etc/new.conf", "x");
        }),
        everything()
    );
}

#[test]
fn a_symlink_target_changes_the_hash() {
    let ws = devbox();
    ws.symlink("devbox.sh", "rootfs/etc/profile.d/link.sh");
    let before = ws.hashes();
    ws.symlink("other.sh", "rootfs/etc/profile.d/link.sh");
    assert_eq!(changed(&before, &ws.hashes()), everything());
}

#[test]
fn an_empty_dir_changes_the_hash() {
    assert_eq!(after(|ws| ws.mkdir("rootfs/var/empty")), everything());
}

#[test]
fn the_dockerfile_changes_the_hash() {
    assert_eq!(
        after(|ws| {
            let p = ws.path().join("Dockerfile.base");
            let mut s = std::fs::read_to_string(&p).unwrap();
            s.push_str("ENV X=1\n");
            std::fs::write(p, s).unwrap();
        }),
        everything()
    );
    assert_eq!(
        after(|ws| {
            let p = ws.path().join("Dockerfile.variant");
            let mut s = std::fs::read_to_string(&p).unwrap();
            s.push_str("# a comment still changes the bytes\n");
            std::fs::write(p, s).unwrap();
        }),
        variants_only()
    );
}

#[test]
fn a_variants_arg_change_touches_only_it() {
    assert_eq!(
        after(|ws| {
            let p = ws.path().join("skip-action.yml");
            let s = std::fs::read_to_string(&p).unwrap().replace(
                r#"omos:         { INSTALL_OMOS: "true",  INSTALL_PI: "false" }"#,
                r#"omos:         { INSTALL_OMOS: "yes",  INSTALL_PI: "false" }"#,
            );
            std::fs::write(p, s).unwrap();
        }),
        vec!["devbox/omos".to_string()]
    );
}

#[test]
fn a_shared_arg_change_touches_every_variant_not_the_base() {
    assert_eq!(
        after(|ws| {
            let p = ws.path().join("skip-action.yml");
            let s = std::fs::read_to_string(&p)
                .unwrap()
                .replace("1.14.44", "1.14.45");
            std::fs::write(p, s).unwrap();
        }),
        variants_only()
    );
}

#[test]
fn an_undeclared_arg_changes_nothing_and_unset_differs_from_empty() {
    // NOT_DECLARED is not an ARG of any Dockerfile: the build cannot see it. (Set on an image
    // itself it is refused, see tests/config_checks.rs; offered through `defaults:` it is
    // simply not passed.)
    assert!(after(|ws| {
        let p = ws.path().join("skip-action.yml");
        let s = std::fs::read_to_string(&p).unwrap().replace(
            "images:",
            "defaults:\n  args:\n    NOT_DECLARED: \"x\"\nimages:",
        );
        std::fs::write(p, s).unwrap();
    })
    .is_empty());
    // INSTALL_PI unset (Dockerfile default applies) vs set to "": different builds.
    let ws = devbox();
    let p = ws.path().join("skip-action.yml");
    let orig = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        orig.replace(
            r#"base:         { INSTALL_OMOS: "false", INSTALL_PI: "false" }"#,
            r#"base:         { INSTALL_OMOS: "false" }"#,
        ),
    )
    .unwrap();
    let unset = ws.hashes();
    std::fs::write(
        &p,
        orig.replace(
            r#"base:         { INSTALL_OMOS: "false", INSTALL_PI: "false" }"#,
            r#"base:         { INSTALL_OMOS: "false", INSTALL_PI: "" }"#,
        ),
    )
    .unwrap();
    let empty = ws.hashes();
    assert_ne!(unset["devbox/base"], empty["devbox/base"]);
}

#[test]
fn predefined_args_count_without_a_declaration() {
    assert_eq!(
        after(|ws| {
            let p = ws.path().join("skip-action.yml");
            let s = std::fs::read_to_string(&p).unwrap().replace(
                r#"OPENCODE_VERSION: "1.14.44""#,
                "OPENCODE_VERSION: \"1.14.44\"\n      SOURCE_DATE_EPOCH: \"1700000000\"",
            );
            std::fs::write(p, s).unwrap();
        }),
        variants_only()
    );
}

#[test]
fn ignored_and_unreachable_files_change_nothing() {
    // NOTES.md is excluded by .dockerignore (*.md); docs/ is never copied.
    assert!(after(|ws| {
        ws.write("NOTES.md", "edited");
        ws.write("docs/guide.txt", "new doc");
        ws.write("rootfs.bak", "not under rootfs/");
    })
    .is_empty());
}

#[test]
fn a_root_only_ignore_pattern_does_not_hide_nested_files() {
    // `*.md` matches at the context root only (filepath.Match does not cross `/`), so Docker
    // sends rootfs/README.md and COPY rootfs/ copies it: it must count.
    assert_eq!(
        after(|ws| {
            ws.write("rootfs/README.md", "copied");
        }),
        everything()
    );
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let ws = devbox();
    let before = ws.hashes();
    // Dockerfile.base.dockerignore excludes the healthcheck script for the base only.
    ws.write("Dockerfile.base.dockerignore", "scripts/healthcheck.sh\n");
    let mid = ws.hashes();
    assert_eq!(changed(&before, &mid), everything());
    // Now editing the excluded script changes nothing.
    ws.write("scripts/healthcheck.sh", "#!/bin/sh\necho changed\n");
    assert!(changed(&mid, &ws.hashes()).is_empty());
    // But a script the base still copies does.
    ws.write(
        "scripts/entrypoint.sh",
        "#!/bin/sh\nexec \"$@\" # changed\n",
    );
    assert_eq!(changed(&mid, &ws.hashes()), everything());
}

#[test]
fn variant_only_files_touch_only_variants() {
    assert_eq!(
        after(|ws| {
            ws.write("variant/motd", "hello");
        }),
        variants_only()
    );
}

#[test]
fn a_glob_source_picks_new_matches() {
    assert_eq!(
        after(|ws| {
            ws.write("scripts/new.sh", "echo");
        }),
        everything()
    );
    assert!(after(|ws| {
        ws.write("scripts/new.py", "print()");
    })
    .is_empty());
}

#[test]
fn context_scope_all_hashes_every_file() {
    let ws = devbox();
    let p = ws.path().join("skip-action.yml");
    let s = std::fs::read_to_string(&p).unwrap().replace(
        "    tag: base-{hash}",
        "    tag: base-{hash}\n    context_scope: all",
    );
    std::fs::write(p, s).unwrap();
    let before = ws.hashes();
    ws.write("docs/guide.txt", "now it counts");
    assert_eq!(changed(&before, &ws.hashes()), everything());
}

#[test]
fn explicit_inputs_count() {
    let ws = devbox();
    let p = ws.path().join("skip-action.yml");
    let s = std::fs::read_to_string(&p).unwrap().replace(
        "    tag: base-{hash}",
        "    tag: base-{hash}\n    inputs: [\"ci/*.sh\"]",
    );
    std::fs::write(p, s).unwrap();
    ws.write("ci/build.sh", "echo 1");
    let before = ws.hashes();
    ws.write("ci/build.sh", "echo 2");
    assert_eq!(changed(&before, &ws.hashes()), everything());
}

#[test]
fn a_parent_hash_folds_into_children() {
    let v = devbox().hash_json();
    let imgs = v["images"].as_array().unwrap();
    assert_eq!(imgs[0]["name"], "base");
    let base_image = imgs[0]["image"].as_str().unwrap();
    for i in &imgs[1..] {
        assert_eq!(i["parents"], serde_json::json!(["base"]));
        assert!(i["build_args"]
            .as_str()
            .unwrap()
            .contains(&format!("BASE_IMAGE={base_image}")));
    }
}
