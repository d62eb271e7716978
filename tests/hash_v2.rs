//! Hash definition v2: each finding of issue 11 as a test on a small real tree.
//!
//! False skips (`COPY --parents`, absent sources, unknown flags), false rebuilds (`--chmod`, a
//! copied directory's own mode, `--exclude`), and independence from the runner's umask and from
//! the registry the images live in.

mod common;

use common::*;

/// A workspace with `skip-action.yml` (one image `app` from `Dockerfile`) plus `files`.
fn ws_with(dockerfile: &str, extra_config: &str, files: &[(&str, &str)]) -> Ws {
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!(
            "version: 1\nrepository: ghcr.io/acme/app\n{extra_config}images:\n  app:\n    dockerfile: Dockerfile\n"
        ),
    );
    ws.write("Dockerfile", dockerfile);
    for (p, c) in files {
        ws.write(p, c);
    }
    ws
}

fn app_hash(ws: &Ws) -> String {
    ws.hashes()["app"].clone()
}

/// Whether `f` changes the hash of `app`.
fn moves(ws: &Ws, f: impl FnOnce(&Ws)) -> bool {
    let before = app_hash(ws);
    f(ws);
    before != app_hash(ws)
}

const MONOREPO: &[(&str, &str)] = &[
    ("package.json", "{}"),
    ("packages/web/package.json", "{\"name\":\"web\"}"),
    ("packages/web/index.js", "web"),
    ("packages/api/package.json", "{\"name\":\"api\"}"),
    ("packages/api/index.js", "api"),
];

#[test]
fn parents_monorepo_idiom_counts_every_manifest() {
    let df = "FROM node:22\nWORKDIR /app\nCOPY --parents **/package.json ./\n";
    let ws = ws_with(df, "", MONOREPO);
    let v = ws.hash_json();
    assert_eq!(
        v["images"][0]["whole_context_reason"],
        serde_json::Value::Null
    );
    assert!(moves(&ws, |w| {
        w.write("packages/web/package.json", "{\"name\":\"web2\"}");
    }));
    assert!(moves(&ws, |w| {
        w.write("package.json", "{\"private\":true}");
    }));
    assert!(moves(&ws, |w| {
        w.write("packages/new/package.json", "{}");
    }));
    // Files no pattern matches do not count.
    assert!(!moves(&ws, |w| {
        w.write("packages/web/index.js", "changed");
    }));
}

#[test]
fn parents_double_star_matches_at_every_depth() {
    let df = "FROM alpine\nCOPY --parents ./src/**/*.txt /p/\n";
    let ws = ws_with(
        df,
        "",
        &[
            ("src/a.txt", "0"),
            ("src/x/b.txt", "1"),
            ("src/x/y/c.txt", "2"),
            ("src/x/d.md", "m"),
        ],
    );
    assert!(moves(&ws, |w| {
        w.write("src/a.txt", "zero depth");
    }));
    assert!(moves(&ws, |w| {
        w.write("src/x/y/c.txt", "deep");
    }));
    assert!(moves(&ws, |w| {
        w.write("src/x/y/z/new.txt", "new deep file");
    }));
    assert!(!moves(&ws, |w| {
        w.write("src/x/d.md", "not matched");
    }));
}

#[test]
fn parents_pivot_and_recreated_directory_modes() {
    // `a/./b/**/*.sh`: paths below the pivot `a` are kept; b and b/c are recreated with their
    // source modes, so under exact modes those count — and the pivot's own does not.
    let df = "FROM alpine\nCOPY --parents a/./b/**/*.sh /p/\n";
    let files = &[("a/b/c/x.sh", "x"), ("a/b/other.txt", "o")];
    let ws = ws_with(df, "file_modes: exact\n", files);
    assert!(moves(&ws, |w| w.chmod("a/b/c", 0o700)));
    assert!(moves(&ws, |w| w.chmod("a/b", 0o700)));
    assert!(!moves(&ws, |w| w.chmod("a", 0o700)));
    assert!(!moves(&ws, |w| {
        w.write("a/b/other.txt", "not matched");
    }));
    // Under the default (git) modes, directory modes never count.
    let ws = ws_with(df, "", files);
    assert!(!moves(&ws, |w| w.chmod("a/b/c", 0o700)));
}

#[test]
fn chmod_overrides_the_source_mode() {
    let files = &[("bin/tool", "#!/bin/sh\n")];
    let ws = ws_with(
        "FROM alpine\nCOPY --chmod=0755 bin/tool /usr/bin/\n",
        "",
        files,
    );
    assert!(!moves(&ws, |w| w.chmod("bin/tool", 0o755)));
    assert!(moves(&ws, |w| {
        w.write("bin/tool", "#!/bin/sh\necho\n");
    }));
    // Without --chmod the exec bit reaches the image.
    let ws = ws_with("FROM alpine\nCOPY bin/tool /usr/bin/\n", "", files);
    assert!(moves(&ws, |w| w.chmod("bin/tool", 0o755)));
    // A symbolic --chmod keeps part of the source mode.
    let ws = ws_with(
        "FROM alpine\nCOPY --chmod=u+x bin/tool /usr/bin/\n",
        "file_modes: exact\n",
        files,
    );
    assert!(moves(&ws, |w| w.chmod("bin/tool", 0o640)));
}

#[test]
fn a_copied_directorys_own_mode_does_not_reach_the_image() {
    let ws = ws_with(
        "FROM alpine\nCOPY rootfs /\n",
        "file_modes: exact\n",
        &[("rootfs/etc/motd", "hi")],
    );
    assert!(!moves(&ws, |w| w.chmod("rootfs", 0o700)));
    // Directories below it are copied with their modes.
    assert!(moves(&ws, |w| w.chmod("rootfs/etc", 0o700)));
}

#[test]
fn excluded_files_do_not_count() {
    let ws = ws_with(
        "FROM alpine\nCOPY --exclude=*.md --exclude=tmp docs /d/\n",
        "",
        &[("docs/a.md", "a"), ("docs/a.txt", "t"), ("docs/tmp/x", "x")],
    );
    assert!(!moves(&ws, |w| {
        w.write("docs/a.md", "edited");
    }));
    assert!(!moves(&ws, |w| {
        w.write("docs/tmp/x", "edited");
    }));
    assert!(moves(&ws, |w| {
        w.write("docs/a.txt", "edited");
    }));
    // `*.md` matches only at the source root, as in BuildKit: a nested one still counts.
    assert!(moves(&ws, |w| {
        w.write("docs/sub/b.md", "new");
    }));
    // Patterns whose BuildKit meaning differs from `.dockerignore` reading exclude nothing here
    // (`/a.md` matches nothing in BuildKit; `!` exceptions): the files still count.
    for flags in ["--exclude=/a.md", "--exclude=*.md --exclude=!a.md"] {
        let ws = ws_with(
            &format!("FROM alpine\nCOPY {flags} docs /d/\n"),
            "",
            &[("docs/a.md", "a"), ("docs/b.txt", "b")],
        );
        assert!(
            moves(&ws, |w| {
                w.write("docs/a.md", "edited");
            }),
            "{flags}"
        );
    }
}

#[test]
fn a_missing_literal_source_is_refused_with_the_fix() {
    let ws = ws_with(
        "FROM alpine\nCOPY bin/central /usr/bin/\n",
        "",
        &[("src/main.go", "package main")],
    );
    let out = ws.run(&["hash", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Dockerfile:2") && err.contains("bin/central") && err.contains("generated"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Declared as generated: its declared sources are hashed instead.
    let cfg = std::fs::read_to_string(ws.path().join("skip-action.yml")).unwrap()
        + "    generated:\n      bin/central: [\"src/**\"]\n";
    ws.write("skip-action.yml", &cfg);
    let v = ws.hash_json();
    assert_eq!(
        v["images"][0]["generated"],
        serde_json::json!(["bin/central"])
    );
    assert!(moves(&ws, |w| {
        w.write("src/main.go", "package main // changed");
    }));
}

#[test]
fn an_empty_glob_is_allowed_and_reported() {
    let ws = ws_with(
        "FROM alpine\nCOPY environment.yml* noop.txt /tmp/\n",
        "",
        &[("noop.txt", "")],
    );
    let v = ws.hash_json();
    let globs = &v["images"][0]["empty_globs"];
    assert_eq!(globs[0]["pattern"], "environment.yml*");
    assert_eq!(globs[0]["line"], 2);
    assert_eq!(globs[0]["generated"], false);
    assert!(moves(&ws, |w| {
        w.write("environment.yml", "name: x");
    }));
}

#[test]
fn an_unknown_copy_flag_hashes_the_whole_context() {
    let ws = ws_with(
        "FROM alpine\nCOPY --frobnicate=x a /\n",
        "",
        &[("a", "a"), ("unrelated", "u")],
    );
    let v = ws.hash_json();
    let why = v["images"][0]["whole_context_reason"].as_str().unwrap();
    assert!(why.contains("--frobnicate=x"), "{why}");
    assert!(moves(&ws, |w| {
        w.write("unrelated", "now it counts");
    }));
}

/// Create `files` under `dir` from a shell running with `umask`, as a checkout would.
fn checkout_with_umask(dir: &std::path::Path, umask: &str, files: &[(&str, &str, bool)]) {
    let mut script = format!("umask {umask}\n");
    for (p, content, exec) in files {
        let parent = std::path::Path::new(p)
            .parent()
            .unwrap()
            .display()
            .to_string();
        if !parent.is_empty() {
            script.push_str(&format!("mkdir -p '{parent}'\n"));
        }
        script.push_str(&format!("printf '%s' '{content}' > '{p}'\n"));
        if *exec {
            // git checks out an executable as 0777 & ~umask.
            script.push_str(&format!("chmod +x '{p}' && chmod go-w '{p}'\nchmod $(printf '%o' $((0777 & ~0{umask}))) '{p}'\n"));
        }
    }
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn the_runners_umask_does_not_count_by_default() {
    let files: &[(&str, &str, bool)] = &[
        (
            "Dockerfile",
            "FROM alpine\nCOPY rootfs /\nCOPY run.sh /usr/bin/\n",
            false,
        ),
        ("rootfs/etc/motd", "hello", false),
        ("rootfs/usr/share/x/data", "d", false),
        ("run.sh", "#!/bin/sh", true),
    ];
    let hash = |umask: &str, modes: &str| {
        let ws = Ws::new();
        ws.write(
            "skip-action.yml",
            &format!("version: 1\nrepository: ghcr.io/acme/app\n{modes}images:\n  app: {{}}\n"),
        );
        checkout_with_umask(ws.path(), umask, files);
        app_hash(&ws)
    };
    assert_eq!(hash("002", ""), hash("022", ""));
    assert_eq!(hash("002", "file_modes: git\n"), hash("022", ""));
    assert_ne!(
        hash("002", "file_modes: exact\n"),
        hash("022", "file_modes: exact\n")
    );
}

#[test]
fn the_same_tree_under_two_registries_has_the_same_hashes() {
    let at = |repo: &str| {
        let ws = Ws::new();
        ws.write(
            "skip-action.yml",
            &format!(
                "version: 1\nrepository: {repo}\nimages:\n  base:\n    dockerfile: Dockerfile.base\n  app:\n    from: base\n    dockerfile: Dockerfile.app\n"
            ),
        );
        ws.write("Dockerfile.base", "FROM debian:12\nCOPY etc /etc/\n");
        ws.write("etc/motd", "hi");
        ws.write(
            "Dockerfile.app",
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app /app/\n",
        );
        ws.write("app/main", "m");
        let v = ws.hash_json();
        assert_eq!(v["hash_version"], "v2");
        (hashes_of(&v), v)
    };
    let (a, va) = at("docker.io/jupyter/stack");
    let (b, vb) = at("quay.io/jupyter/stack");
    assert_eq!(a, b);
    // The references do differ: only where the parent lives changed.
    assert_ne!(va["images"][1]["build_args"], vb["images"][1]["build_args"]);
}

#[test]
fn targetarch_sources_resolve_per_configured_platform() {
    let df = "FROM alpine\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/tool /usr/bin/\n";
    let files = &[
        ("bin/amd64/tool", "a"),
        ("bin/arm64/tool", "b"),
        ("bin/riscv64/tool", "r"),
    ];
    let ws = ws_with(df, "platforms: [linux/amd64, linux/arm64]\n", files);
    let v = ws.hash_json();
    assert_eq!(
        v["images"][0]["whole_context_reason"],
        serde_json::Value::Null
    );
    assert!(moves(&ws, |w| {
        w.write("bin/arm64/tool", "b2");
    }));
    assert!(moves(&ws, |w| {
        w.write("bin/amd64/tool", "a2");
    }));
    assert!(!moves(&ws, |w| {
        w.write("bin/riscv64/tool", "r2");
    }));
    // Without `platforms:` the architecture is unknown: the whole context counts, and says why.
    let ws = ws_with(df, "", files);
    let v = ws.hash_json();
    let why = v["images"][0]["whole_context_reason"].as_str().unwrap();
    assert!(why.contains("TARGETARCH"), "{why}");
}

#[test]
fn logs_are_coloured_only_for_a_terminal_or_github_actions() {
    // The warning logged: `FROM alpine` floats (an `inputs:` glob that matches nothing, the
    // warning used here before, is now refused: tests/config_checks.rs).
    let ws = ws_with("FROM alpine\nCOPY a /\n", "", &[("a", "a")]);
    // stderr is a pipe here: plain text.
    let plain = ws.run_env(&["hash"], &[("GITHUB_ACTIONS", "false")]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert!(
        stderr(&plain).contains("outside image alpine is used by tag"),
        "{}",
        stderr(&plain)
    );
    assert!(!plain.stderr.contains(&0x1b), "{}", stderr(&plain));
    // GitHub Actions renders ANSI colour in its logs.
    let gha = ws.run_env(&["hash"], &[("GITHUB_ACTIONS", "true")]);
    assert!(gha.stderr.contains(&0x1b), "{}", stderr(&gha));
}

#[test]
fn floating_upstream_tags_are_warned_once_per_reference() {
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        "version: 1\nrepository: ghcr.io/acme/app\nimages:\n  a:\n    dockerfile: Dockerfile\n  b:\n    dockerfile: Dockerfile\n    args: {X: \"1\"}\n  pinned:\n    dockerfile: Dockerfile.pinned\n",
    );
    ws.write("Dockerfile", "FROM debian:12-slim\nARG X\nRUN true\n");
    ws.write(
        "Dockerfile.pinned",
        &format!("FROM debian:12-slim@sha256:{}\nRUN true\n", "a".repeat(64)),
    );
    let out = ws.run(&["hash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("outside image debian:12-slim is used by tag")
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("(a, b)") && err.contains("upstream: digest"),
        "{err}"
    );
    assert!(!err.contains("@sha256:aaaa"), "{err}");
}

#[test]
fn bad_generated_and_file_modes_values_are_config_errors() {
    for (extra, want) in [
        ("    generated: {\"../x\": [src]}\n", "images.app.generated"),
        ("    generated: {bin/x: []}\n", "lists no sources"),
        (
            "    generated: {bin/x: [\"/etc/*\"]}\n",
            "images.app.generated",
        ),
        ("    file_modes: loose\n", "file_modes"),
    ] {
        let ws = ws_with("FROM alpine\nCOPY a /\n", "", &[("a", "a")]);
        let cfg = std::fs::read_to_string(ws.path().join("skip-action.yml")).unwrap() + extra;
        ws.write("skip-action.yml", &cfg);
        let out = ws.run(&["hash"]);
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{extra}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}
