//! Hostile and broken input: a config, Dockerfile, `.dockerignore` and build context from a fork's
//! pull request are untrusted. They must not inject outputs or workflow commands, make the tool
//! read outside the workspace, produce a tag in another repository, hang it, exhaust its memory,
//! or make it print a secret.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use skip_testkit::{FaultProxy, ImageSpec, TestRegistry, TokenOptions};

/// The outputs `decide` writes, by name (a contract).
const DECIDE_OUTPUTS: [&str; 26] = [
    "base_build_args",
    "base_context",
    "base_dockerfile",
    "base_hash",
    "base_image",
    "base_matrix",
    "base_need_build",
    "base_platforms",
    "base_tag",
    "base_target",
    "build_count",
    "dry_run",
    "images",
    "images_need_build",
    "levels_need_build",
    "matrix",
    "matrix_levels",
    "merge_images",
    "merge_levels",
    "merge_needed",
    "need_build",
    "plan",
    "plan_file",
    "plan_omitted",
    "variants_matrix",
    "variants_need_build",
];

/// Workflow commands this tool prints itself. Any other line starting with `::` (after leading
/// whitespace, as the runner reads it) on stdout or stderr would be a command injected by input.
const OWN_COMMANDS: [&str; 3] = ["::warning::", "::error::", "::add-mask::"];

fn assert_no_injected_commands(r: &GhRun, what: &str) {
    for line in r.stdout.lines().chain(r.stderr.lines()) {
        let t = line.trim_start();
        if t.starts_with("::") {
            assert!(
                OWN_COMMANDS.iter().any(|c| t.starts_with(c)),
                "{what}: injected workflow command {line:?}\nstdout:\n{}\nstderr:\n{}",
                r.stdout,
                r.stderr
            );
            // Our own commands are one line: the payload's newlines arrive escaped.
            assert!(
                !t.starts_with("::add-mask::") || !t.contains("PWNED"),
                "{what}: {line}"
            );
        }
    }
}

/// What a fork would put in any string: newlines, a heredoc delimiter, the old `set-output`
/// command, a command that would switch the runner's command processing off, and something that
/// looks like our own random delimiter.
const PAYLOAD: &str = "x\nneed_build<<EOF\nfalse\nEOF\n::set-output name=need_build::PWNED\n::stop-commands::PWNED\nghadelimiter_00000000\n";

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A small family; `{P}` in `tmpl` is replaced with the payload as a YAML string.
fn family(host: &str, tmpl: &str) -> Ws {
    let ws = Ws::new();
    let cfg =
        format!("version: 1\nrepository: {host}/acme/x\n{tmpl}").replace("{P}", &yaml_str(PAYLOAD));
    ws.write("skip-action.yml", &cfg);
    ws.write(
        "Dockerfile",
        "FROM alpine:3.20\nARG NOTE\nARG n\nCOPY rootfs/ /\n",
    );
    ws.write(
        "Dockerfile.v",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG NOTE\nARG n\nRUN true\n",
    );
    ws.write("rootfs/etc/motd", "hi\n");
    ws
}

#[test]
fn untrusted_strings_cannot_inject_outputs_or_workflow_commands() {
    let reg = TestRegistry::start_open().unwrap();
    // (what, images: section, accepted?)
    let cases: &[(&str, &str, bool)] = &[
        (
            "build arg value",
            "images:\n  base:\n    args: {NOTE: {P}}\n",
            true,
        ),
        (
            "matrix include value (a build arg)",
            "images:\n  base: {}\n  v:\n    from: base\n    dockerfile: Dockerfile.v\n    matrix:\n      n: [a, b]\n      include: [{n: a, NOTE: {P}}]\n",
            true,
        ),
        (
            "variant name",
            "images:\n  base: {}\n  v:\n    from: base\n    dockerfile: Dockerfile.v\n    variants: {{P}: {NOTE: y}}\n",
            false,
        ),
        (
            "matrix value",
            "images:\n  base: {}\n  v:\n    from: base\n    dockerfile: Dockerfile.v\n    matrix:\n      n: [a, {P}]\n",
            false,
        ),
        (
            "matrix axis name",
            "images:\n  base: {}\n  v:\n    from: base\n    dockerfile: Dockerfile.v\n    matrix:\n      {P}: [a]\n",
            false,
        ),
        ("tag template", "images:\n  base:\n    tag: {P}\n", false),
        (
            "tag template around {hash}",
            "images:\n  base:\n    tag: \"{hash}\\n::set-output name=x::PWNED\"\n",
            false,
        ),
        ("promote template", "images:\n  base:\n    promote: [{P}]\n", false),
        (
            "promote repository",
            "images:\n  base:\n    promote: [{tag: latest, repository: {P}}]\n",
            false,
        ),
        ("image repository", "images:\n  base:\n    repository: {P}\n", false),
        ("image name", "images:\n  {P}: {}\n", false),
        (
            "parent name",
            "images:\n  base: {}\n  v:\n    from: {P}\n    dockerfile: Dockerfile.v\n",
            false,
        ),
        ("platform", "images:\n  base:\n    platforms: [{P}]\n", false),
        (
            "runner label",
            "platforms: [linux/amd64]\nrunners: {linux/amd64: {P}}\nimages:\n  base: {}\n",
            false,
        ),
        (
            "runner platform",
            "platforms: [linux/amd64]\nrunners: {{P}: x}\nimages:\n  base: {}\n",
            false,
        ),
        ("dockerfile path", "images:\n  base:\n    dockerfile: {P}\n", false),
        ("context path", "images:\n  base:\n    context: {P}\n", false),
        ("inputs glob", "images:\n  base:\n    inputs: [{P}]\n", false),
        ("target stage", "images:\n  base:\n    target: {P}\n", false),
        (
            "base_arg",
            "images:\n  base: {}\n  v:\n    from: base\n    dockerfile: Dockerfile.v\n    base_arg: {P}\n",
            false,
        ),
        ("args key", "images:\n  base:\n    args: {{P}: x}\n", false),
    ];
    for (what, images, accepted) in cases {
        let ws = family(&reg.host(), images);
        let r = gh_run(&ws, "decide", &[], &[("GITHUB_ACTIONS", "true")]);
        assert_no_injected_commands(&r, what);
        if *accepted {
            assert_eq!(r.code, Some(0), "{what}: {}", r.stderr);
            let names: Vec<&str> = r.out.keys().map(String::as_str).collect();
            assert_eq!(names, DECIDE_OUTPUTS, "{what}");
            assert_eq!(r.get("need_build"), "true", "{what}");
            // The payload travels inside JSON strings, escaped.
            assert!(
                r.get("matrix").contains(r"x\nneed_build<<EOF\nfalse\nEOF"),
                "{what}: {}",
                r.get("matrix")
            );
        } else {
            assert_eq!(r.code, Some(2), "{what}: exit {:?}\n{}", r.code, r.stderr);
            assert!(r.out.is_empty(), "{what}: outputs written: {:?}", r.out);
            assert!(r.stderr.contains("error: "), "{what}: {}", r.stderr);
        }
    }
    // Inputs of the workflow (workflow_dispatch) get the same treatment.
    let ws = family(&reg.host(), "images:\n  base: {}\n");
    for (k, v) in [
        ("INPUT_FORCE", PAYLOAD),
        ("INPUT_MAX_JOBS", PAYLOAD),
        ("INPUT_ON_REGISTRY_ERROR", PAYLOAD),
        ("INPUT_PROBE", PAYLOAD),
    ] {
        let r = gh_run(&ws, "decide", &[], &[("GITHUB_ACTIONS", "true"), (k, v)]);
        assert_no_injected_commands(&r, k);
        assert_eq!(r.code, Some(2), "{k}: {}", r.stderr);
        assert!(r.out.is_empty(), "{k}");
    }
}

// ---------------------------------------------------------------------------------------------
// Reading outside the workspace
// ---------------------------------------------------------------------------------------------

const SECRET: &str = "TOPSECRET-7f3a9c-do-not-print";

/// A directory outside the workspace with secret-looking files.
fn outside() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("secret.txt"), format!("{SECRET}\n")).unwrap();
    std::fs::write(
        d.path().join("secret.yml"),
        format!("{SECRET}-as-yaml-scalar\n"),
    )
    .unwrap();
    std::fs::write(
        d.path().join("config.json"),
        format!(r#"{{"auths":{{"ghcr.io":{{"auth":"{SECRET}"}}}}}}"#),
    )
    .unwrap();
    std::fs::write(
        d.path().join("Dockerfile"),
        format!("FROM {SECRET}\nRUN {SECRET}\n"),
    )
    .unwrap();
    std::fs::create_dir(d.path().join("dir")).unwrap();
    std::fs::write(d.path().join("dir/inner.txt"), SECRET).unwrap();
    d
}

fn assert_no_secret(r: &GhRun, what: &str) {
    assert!(
        !r.everything().contains(SECRET),
        "{what}: the secret was printed:\n{}",
        r.everything()
    );
}

/// Run `cmd` in `ws` with no registry: hashing is offline, decide's probe fails fast (refused).
fn run(ws: &Ws, cmd: &str, args: &[&str]) -> GhRun {
    gh_run(ws, cmd, args, &[("GITHUB_ACTIONS", "true")])
}

const NO_REGISTRY: &str = "127.0.0.1:9";

fn simple(cfg_images: &str) -> Ws {
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!("version: 1\nrepository: {NO_REGISTRY}/acme/x\nimages:\n{cfg_images}"),
    );
    ws.write("Dockerfile", "FROM alpine:3.20\nCOPY . /\n");
    ws.write("app/main.sh", "echo hi\n");
    ws
}

fn abs(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn paths_and_symlinks_cannot_read_outside_the_workspace() {
    let out = outside();
    let o = out.path();

    // The context is a symlink to a directory outside.
    let ws = simple("  base:\n    context: ctx\n");
    ws.symlink(&abs(&o.join("dir")), "ctx");
    for cmd in ["hash", "decide"] {
        let r = run(&ws, cmd, &[]);
        assert_eq!(r.code, Some(2), "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("outside the workspace"), "{}", r.stderr);
        assert_no_secret(&r, "context symlink");
    }

    // `.dockerignore` (and `<Dockerfile>.dockerignore`) symlinked to a secret file outside.
    for name in [".dockerignore", "Dockerfile.dockerignore"] {
        let ws = simple("  base: {}\n");
        ws.symlink(&abs(&o.join("secret.txt")), name);
        for cmd in ["hash", "decide"] {
            let r = run(&ws, cmd, &[]);
            assert_ne!(r.code, Some(0), "{name} {cmd}: {}", r.stderr);
            assert!(r.stderr.contains("outside the workspace"), "{}", r.stderr);
            assert_no_secret(&r, name);
        }
    }

    // The Dockerfile symlinked outside.
    let ws = simple("  base:\n    dockerfile: df/Dockerfile\n");
    ws.symlink(&abs(&o.join("Dockerfile")), "df/Dockerfile");
    let r = run(&ws, "hash", &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert_no_secret(&r, "Dockerfile symlink");

    // The config itself symlinked to a secret outside (found at its default place): refused
    // before it is parsed, since a parse error quotes the text.
    for target in ["secret.yml", "config.json", "secret.txt"] {
        let ws = simple("  base: {}\n");
        ws.remove("skip-action.yml");
        ws.symlink(&abs(&o.join(target)), "skip-action.yml");
        for cmd in ["hash", "decide"] {
            let r = run(&ws, cmd, &[]);
            assert_eq!(r.code, Some(2), "{target} {cmd}: {}", r.stderr);
            assert_no_secret(&r, "config symlink");
        }
        let r = run(&ws, "decide", &["--config", "skip-action.yml"]);
        assert_eq!(r.code, Some(2), "{}", r.stderr);
        assert_no_secret(&r, "--config symlink");
    }

    // Config paths that leave the workspace, directly or through `..`.
    for images in [
        "  base:\n    context: ..\n",
        "  base:\n    context: /etc\n",
        "  base:\n    dockerfile: ../Dockerfile\n",
        "  base:\n    dockerfile: app/../../Dockerfile\n",
        "  base:\n    inputs: [\"../*\"]\n",
        "  base:\n    inputs: [\"/etc/*\"]\n",
        "  base:\n    inputs: [\"app/../../**\"]\n",
    ] {
        let ws = simple(images);
        let r = run(&ws, "hash", &[]);
        assert_eq!(r.code, Some(2), "{images}: {}", r.stderr);
        assert!(
            r.stderr.contains("leaves the repository root") || r.stderr.contains("is absolute"),
            "{images}: {}",
            r.stderr
        );
    }

    // `inputs:` globs that reach outside through a symlinked directory.
    for glob in ["link/*", "link/**", "**/*.txt", "link/dir/*"] {
        let ws = simple(&format!("  base:\n    inputs: [\"{glob}\"]\n"));
        ws.symlink(&abs(o), "link");
        let r = run(&ws, "hash", &[]);
        assert_eq!(r.code, Some(2), "{glob}: {}", r.stderr);
        assert!(
            r.stderr.contains("outside the workspace"),
            "{glob}: {}",
            r.stderr
        );
        assert_no_secret(&r, glob);
    }

    // What is recorded but never read: a symlink to a secret (in the context, in `inputs:`), and
    // COPY sources that climb out with `../`. Changing the secret changes no hash.
    // (Hash v2 refuses absent sources: they are declared as generated from a file inside.)
    let ws = simple("  base:\n    inputs: [leak-input]\n  up:\n    dockerfile: Dockerfile.up\n    generated: {secret.txt: [gen.txt], etc/passwd: [gen.txt], leak: [gen.txt], leakdir: [gen.txt], dir: [gen.txt]}\n");
    ws.write("gen.txt", "inside\n");
    ws.symlink(&abs(&o.join("secret.txt")), "leak");
    ws.symlink(&abs(&o.join("secret.txt")), "leak-input");
    ws.symlink(&abs(&o.join("dir")), "leakdir");
    ws.write(
        "Dockerfile.up",
        "FROM alpine:3.20\nCOPY ../../secret.txt /a\nCOPY ../../../../etc/passwd /b\nCOPY leak /c\nCOPY leakdir/inner.txt /d\nADD ../dir /e\n",
    );
    let before = ws.hashes();
    let r = run(&ws, "inputs", &["up", "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_no_secret(&r, "inputs --json");
    assert!(
        r.stdout.contains(&abs(&o.join("secret.txt"))),
        "link target recorded"
    );
    let r = run(&ws, "inputs", &["base", "--json"]);
    assert_no_secret(&r, "inputs --json base");
    std::fs::write(o.join("secret.txt"), "CHANGED\n").unwrap();
    std::fs::write(o.join("dir/inner.txt"), "CHANGED\n").unwrap();
    assert_eq!(ws.hashes(), before, "a file outside the workspace was read");
    let r = run(&ws, "decide", &["--timeout", "5"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_no_secret(&r, "decide");
}

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

#[test]
fn template_values_cannot_make_invalid_or_foreign_tags() {
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let host = proxy.host();
    let base = "  base: {}\n";
    let v = |variant: &str, tag: &str| {
        format!("{base}  v:\n    from: base\n    dockerfile: Dockerfile.v\n    variants: {{{}: {{}}}}\n    tag: {}\n", yaml_str(variant), yaml_str(tag))
    };
    let m = |value: &str, tag: &str| {
        format!("{base}  v:\n    from: base\n    dockerfile: Dockerfile.v\n    matrix:\n      n: [ok, {}]\n    tag: {}\n", yaml_str(value), yaml_str(tag))
    };
    let cases: Vec<(String, &str)> = vec![
        (v("a:b", "{variant}-{hash}"), "not a valid OCI tag"),
        (v("evil@sha256", "{variant}-{hash}"), "not a valid OCI tag"),
        (v("evil.io/other", "{variant}-{hash}"), "variant name"),
        (v("..", "{variant}-{hash}"), "not a valid OCI tag"),
        (v("-x", "{variant}-{hash}"), "not a valid OCI tag"),
        (v(&"a".repeat(200), "{variant}-{hash}"), "not a valid OCI tag"),
        (m("evil.io/other/repo", "{n}-{hash}"), "variant name"),
        (m("x:latest", "{n}-{hash}"), "not a valid OCI tag"),
        (m("x@sha256:00", "{n}-{hash}"), "not a valid OCI tag"),
        (m(".hidden", "{n}-{hash}"), "not a valid OCI tag"),
        (
            format!("{base}  v:\n    from: base\n    dockerfile: Dockerfile.v\n    matrix:\n      n: [ok]\n      include: [{{n: ok, k: \"a:b\"}}]\n    tag: \"{{k}}-{{hash}}\"\n"),
            "not a valid OCI tag",
        ),
        ("  base:\n    tag: \"other/repo:{hash}\"\n".into(), "not a valid OCI tag"),
        ("  base:\n    tag: \"{hash}@sha256\"\n".into(), "not a valid OCI tag"),
        ("  base:\n    tag: \"{hash}\"\n    promote: [\"../x\"]\n".into(), "not a valid OCI tag"),
        ("  base:\n    tag: \"{hash}\"\n    promote: [\"a:b\"]\n".into(), "not a valid OCI tag"),
        (
            "  base:\n    repository: \"evil.io/x:latest\"\n".into(),
            "has a tag or digest",
        ),
        (
            "  base:\n    repository: \"evil.io/x@sha256:00\"\n".into(),
            "has a tag or digest",
        ),
        (
            format!("{base}  v:\n    from: \"base/{{n}}\"\n    dockerfile: Dockerfile.v\n    matrix:\n      n: [\"../evil\"]\n"),
            "variant name",
        ),
        (
            format!("{base}  v:\n    from: \"{{n}}\"\n    dockerfile: Dockerfile.v\n    matrix:\n      n: [\"evil\"]\n"),
            "does not exist",
        ),
    ];
    for (images, want) in &cases {
        let ws = family(&host, &format!("images:\n{images}"));
        let before = proxy.request_count();
        let r = gh_run(&ws, "decide", &[], &[]);
        assert_eq!(r.code, Some(2), "{images}: {}", r.stderr);
        assert!(
            r.stderr.contains(want),
            "{images}: want {want:?}: {}",
            r.stderr
        );
        assert!(r.out.is_empty(), "{images}");
        assert_eq!(
            proxy.request_count(),
            before,
            "{images}: asked the registry"
        );
    }
    // Odd but valid values stay tags of the configured repository.
    let ws = family(
        &host,
        "images:\n  base: {}\n  v:\n    from: base\n    dockerfile: Dockerfile.v\n    matrix:\n      n: [A_b.c, \"1.0\", x--y, __]\n    tag: \"{n}.{hash}\"\n    promote: [\"latest-{n}\"]\n",
    );
    let r = gh_run(&ws, "decide", &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for e in r.json("plan").as_array().unwrap() {
        let image = e["image"].as_str().unwrap();
        let tag = e["tag"].as_str().unwrap();
        assert_eq!(image, format!("{host}/acme/x:{tag}"));
        assert!(!tag.contains([':', '/', '@']), "{tag}");
    }
}

// ---------------------------------------------------------------------------------------------
// Size and shape: bounded time and memory
// ---------------------------------------------------------------------------------------------

fn timed_run(ws: &Ws, args: &[&str]) -> (GhRun, Duration) {
    let r = gh_run(ws, args[0], &args[1..], &[]);
    let t = r.elapsed;
    (r, t)
}

#[test]
fn a_sparse_gigabyte_and_symlink_loops_do_not_hang() {
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!("version: 1\nrepository: {NO_REGISTRY}/acme/x\nimages:\n  small:\n    dockerfile: Dockerfile.small\n  big:\n    dockerfile: Dockerfile.big\n  loops:\n    dockerfile: Dockerfile.loops\n    inputs: [\"app/*.sh\", \"l\"]\n    generated: {{self/self/self/x.sh: [app/x.sh], l/a/b/c: [app/x.sh]}}\n"),
    );
    ws.write("Dockerfile.small", "FROM alpine:3.20\nCOPY app/ /app/\n");
    ws.write("Dockerfile.big", "FROM alpine:3.20\nCOPY . /\n");
    ws.write(
        "Dockerfile.loops",
        "FROM alpine:3.20\nCOPY a /\nCOPY self/self/self/x.sh /\nCOPY l/* /\nCOPY l/a/b/c /\n",
    );
    ws.write("app/x.sh", "echo\n");
    let f = std::fs::File::create(ws.path().join("huge.bin")).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    // Loops: a -> b -> a, self -> ., l/a -> l, l/b -> ../l, up -> .. (outside), abs -> itself.
    ws.symlink("b", "a");
    ws.symlink("a", "b");
    ws.symlink(".", "self");
    ws.mkdir("l");
    ws.symlink("../l", "l/a");
    ws.symlink(".", "l/b");
    ws.symlink("..", "up");
    ws.symlink(&abs(&ws.path().join("absloop")), "absloop");

    let (r, t) = timed_run(&ws, &["hash", "--json"]);
    eprintln!("[hostile] 1 GiB sparse file + symlink loops: hash took {t:?}");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // Only `big` (COPY .) hashes the gigabyte.
    let entries = |name: &str| {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()["context_entries"]
            .as_u64()
            .unwrap()
    };
    assert!(entries("small") <= 3, "{}", entries("small"));
    assert!(entries("big") > 8);

    // Without the gigabyte in a COPY, nothing reads it.
    ws.write("Dockerfile.big", "FROM alpine:3.20\nCOPY app /\n");
    let r = gh_run(&ws, "hash", &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);

    // An `inputs:` glob through the loops is refused at once (the glob crate alone followed the
    // three loops for 2^40 paths), as is one through `up -> ..`, out of the workspace.
    let original = std::fs::read_to_string(ws.path().join("skip-action.yml")).unwrap();
    for (glob, want) in [
        ("**/*.sh", "symlink loop"),
        ("l/**", "symlink loop"),
        ("*/*/*/*/x", "symlink loop"),
        ("up/*", "outside the workspace"),
    ] {
        ws.write(
            "skip-action.yml",
            &original.replace(
                "inputs: [\"app/*.sh\", \"l\"]",
                &format!("inputs: [\"{glob}\"]"),
            ),
        );
        let r = gh_run(&ws, "hash", &[], &[]);
        assert_eq!(r.code, Some(2), "{glob}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{glob}: {}", r.stderr);
    }
}

/// Write `n` lines of YAML to a config, fast.
fn write_config(ws: &Ws, text: &str) {
    ws.write("skip-action.yml", text);
    ws.write("Dockerfile", "FROM scratch\nARG a\nARG b\nARG n\n");
}

#[test]
fn oversized_configs_are_refused_quickly_and_in_little_memory() {
    let ws = Ws::new();
    let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let head = format!("version: 1\nrepository: {NO_REGISTRY}/acme/x\nimages:\n");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a 10^6 matrix",
            format!("{head}  app:\n    matrix:\n      a: [{}]\n      b: [{}]\n", list(1000), list(1000)),
            "more than 100000 combinations",
        ),
        (
            "a 10^40 matrix (overflow)",
            format!(
                "{head}  app:\n    matrix:\n{}",
                (0..20).map(|i| format!("      a{i}: [{}]\n", list(100))).collect::<String>()
            ),
            "more than 100000 combinations",
        ),
        (
            "200,000 include entries",
            format!(
                "{head}  app:\n    tag: '{{variant}}-{{hash}}'\n    matrix:\n      include:\n{}",
                (0..200_000).map(|i| format!("        - {{n: v{i}}}\n")).collect::<String>()
            ),
            "include",
        ),
        (
            "100,000 combinations times 1,000 include entries",
            format!(
                "{head}  app:\n    matrix:\n      a: [{}]\n      b: [{}]\n      include:\n{}",
                list(400),
                list(250),
                (0..1000).map(|i| format!("        - {{a: \"{i}\", n: x}}\n")).collect::<String>()
            ),
            "include",
        ),
        (
            "30 images of 100,000 combinations",
            format!(
                "{head}{}",
                (0..30)
                    .map(|k| format!("  app{k}:\n    tag: '{{variant}}-{{hash}}'\n    matrix:\n      a: [{}]\n      b: [{}]\n", list(400), list(250)))
                    .collect::<String>()
            ),
            "more than 100000 images",
        ),
        (
            "a billion laughs",
            format!(
                "{head}  app:\n    args:\n      A: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n      B: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n      C: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n      D: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n      E: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n      F: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n      G: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n      H: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n      I: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
            ),
            "",
        ),
        (
            "deeply nested YAML",
            format!("{head}  app:\n    args: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
            "nested",
        ),
    ];
    for (what, text, want) in &cases {
        write_config(&ws, text);
        let m = run_measured(ws.path(), &["hash"], &[]);
        let (code, err, rss, took) = (m.code, m.stderr, m.peak_rss_kib, m.elapsed);
        eprintln!(
            "[hostile] {what}: {} KiB of config refused in {took:?}, peak RSS {} MiB",
            text.len() / 1024,
            rss / 1024
        );
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(err.contains(want), "{what}: want {want:?}: {err}");
        assert!(rss < 1024 * 1024, "{what}: {rss} KiB");
    }
}

#[test]
fn a_five_megabyte_dockerfile_and_pathological_ignore_rules_stay_fast() {
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        // Hash v2 refuses absent literal sources; `${K}/x` names generated paths here.
        &format!("version: 1\nrepository: {NO_REGISTRY}/acme/x\nimages:\n  big:\n    dockerfile: Dockerfile.big\n    generated: {{\"v*/x\": [\"src/*.txt\"]}}\n  ignore:\n    dockerfile: sub/Dockerfile\n    context: sub\n"),
    );
    let mut df = String::from("FROM alpine:3.20 AS build\n");
    let mut i = 0;
    while df.len() < 5 * 1024 * 1024 {
        df.push_str(&format!(
            "ENV K{i}=v{i}\nRUN echo {i} && \\\n    true\nCOPY src/f{}.txt ${{K{i}}}/x /dst/\n",
            i % 50
        ));
        i += 1;
    }
    ws.write("Dockerfile.big", &df);
    for k in 0..50 {
        ws.write(&format!("src/f{k}.txt"), "x");
    }
    // 2,000 files under a deep tree and 60 hostile ignore lines. (Matching costs lines × paths ×
    // depth: 300 such lines take ~36 s in a debug build, ~3 s in release; see the report.)
    for k in 0..2000 {
        ws.write(
            &format!(
                "sub/{}/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{k}.txt",
                "a/".repeat(k % 20)
            ),
            "y",
        );
    }
    let mut ig = String::new();
    for k in 0..20 {
        ig.push_str(&format!(
            "**/*a*a*a*a*a*a*a*a*a*b{k}\n!**/**/**/**/a*a*a*a*c{k}\n[a-z]*[!b]*a*?{k}/**\n"
        ));
    }
    ws.write("sub/.dockerignore", &ig);
    ws.write("sub/Dockerfile", "FROM alpine:3.20\nCOPY . /\n");
    let (r, t) = timed_run(&ws, &["hash", "--json"]);
    eprintln!(
        "[hostile] 5 MiB Dockerfile ({i} steps) + 60 hostile ignore lines over 2,000 files: {t:?}"
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// The secrets of one scenario, and every encoding of them that must not be printed.
fn forms(secrets: &[&str], users_and_passwords: &[(&str, &str)]) -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut v: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    for (u, p) in users_and_passwords {
        v.push(b64.encode(format!("{u}:{p}")));
    }
    v
}

fn assert_no_secrets(r: &GhRun, secrets: &[String], what: &str) {
    for (name, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("GITHUB_OUTPUT", &r.raw_out),
        ("GITHUB_STEP_SUMMARY", &r.summary),
    ] {
        for line in text.lines() {
            if line.starts_with("::add-mask::") {
                continue;
            }
            for s in secrets {
                assert!(
                    !line.contains(s.as_str()),
                    "{what}: secret {s:?} in {name}: {line}"
                );
            }
            // A bearer token (JWT) never shows either.
            assert!(!line.contains("eyJ"), "{what}: a token in {name}: {line}");
        }
    }
}

fn docker_config(ws: &Ws, json: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = ws.path().join(format!("dockercfg-{n}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config.json"), json).unwrap();
    d.to_str().unwrap().to_string()
}

/// A credential helper on PATH: `docker-credential-fake` answers `get` with these credentials.
fn helper(ws: &Ws, user: &str, secret: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let bin = ws.path().join(format!("helper-bin-{user}-{n}"));
    std::fs::create_dir_all(&bin).unwrap();
    let p = bin.join("docker-credential-fake");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nread host\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$host\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// (what, environment, whether the credentials are right).
type Scenario = (String, Vec<(String, String)>, bool);

#[test]
fn secrets_never_appear_in_logs_outputs_or_summaries() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (user, pass, wrong) = ("ci-user", "s3cret-Pa55word-htp", "wr0ng-Pa55word-htp");
    let (tuser, tpass, twrong) = ("alice", "t0ken-Pa55word-xyz", "t0ken-wr0ng-xyz");
    let (identity, identity_wrong) = ("identity-t0ken-abc123", "identity-wr0ng-abc123");
    let gh_token = "ghs_fake0github0token0value0123";
    let rt = tokio::runtime::Runtime::new().unwrap();

    let basic = TestRegistry::start_htpasswd(&[(user, pass)]).unwrap();
    let token = TestRegistry::start_token(TokenOptions {
        users: vec![(tuser.into(), tpass.into())],
        anonymous_pull: false,
        refresh_tokens: vec![(identity.into(), tuser.into())],
        ..TokenOptions::default()
    })
    .unwrap();
    // A registry token (a bearer JWT used as-is), minted by the token registry's own signer.
    let jwt = token
        .token_server()
        .unwrap()
        .signer()
        .sign(
            tuser,
            &[skip_testkit::token::Access {
                kind: "repository".into(),
                name: "acme/devbox".into(),
                actions: vec!["pull".into()],
            }],
            Duration::from_secs(600),
        )
        .unwrap();
    let jwt_wrong = "not-a-valid-registry-token-0123";
    let all_secrets = forms(
        &[
            pass,
            wrong,
            tpass,
            twrong,
            identity,
            identity_wrong,
            gh_token,
            &jwt,
            jwt_wrong,
        ],
        &[(user, pass), (user, wrong), (tuser, tpass), (tuser, twrong)],
    );

    let mut runs = 0;
    for reg in [&basic, &token] {
        let host = reg.host();
        let ws = devbox_at_host(&host);
        let tags: Vec<String> = ws.hashes().keys().cloned().collect();
        let first = ws.hash_json()["images"][0]["tag"]
            .as_str()
            .unwrap()
            .to_string();
        rt.block_on(
            reg.pusher()
                .push_image("acme/devbox", Some(&first), &ImageSpec::oci()),
        )
        .unwrap();
        assert!(!tags.is_empty());
        let is_token = std::ptr::eq(reg, &token);
        let (u, right, bad) = if is_token {
            (tuser, tpass, twrong)
        } else {
            (user, pass, wrong)
        };
        let auth_right = b64.encode(format!("{u}:{right}"));
        let auth_bad = b64.encode(format!("{u}:{bad}"));
        let mut scenarios: Vec<Scenario> = vec![
            (
                "inputs username/password".into(),
                vec![
                    ("INPUT_USERNAME".into(), u.into()),
                    ("INPUT_PASSWORD".into(), right.into()),
                ],
                true,
            ),
            (
                "inputs, wrong password".into(),
                vec![
                    ("INPUT_USERNAME".into(), u.into()),
                    ("INPUT_PASSWORD".into(), bad.into()),
                ],
                false,
            ),
            (
                "docker config auth".into(),
                vec![(
                    "DOCKER_CONFIG".into(),
                    docker_config(
                        &ws,
                        &format!(r#"{{"auths":{{"{host}":{{"auth":"{auth_right}"}}}}}}"#),
                    ),
                )],
                true,
            ),
            (
                "docker config auth, wrong".into(),
                vec![(
                    "DOCKER_CONFIG".into(),
                    docker_config(
                        &ws,
                        &format!(r#"{{"auths":{{"http://{host}":{{"auth":"{auth_bad}"}}}}}}"#),
                    ),
                )],
                false,
            ),
            (
                "docker config username/password".into(),
                vec![(
                    "DOCKER_CONFIG".into(),
                    docker_config(
                        &ws,
                        &format!(
                            r#"{{"auths":{{"{host}":{{"username":"{u}","password":"{right}"}}}}}}"#
                        ),
                    ),
                )],
                true,
            ),
            (
                "credential helper".into(),
                vec![
                    (
                        "DOCKER_CONFIG".into(),
                        docker_config(&ws, &format!(r#"{{"credHelpers":{{"{host}":"fake"}}}}"#)),
                    ),
                    ("PATH".into(), helper(&ws, u, right)),
                ],
                true,
            ),
            (
                "credential store, wrong".into(),
                vec![
                    (
                        "DOCKER_CONFIG".into(),
                        docker_config(&ws, r#"{"credsStore":"fake"}"#),
                    ),
                    ("PATH".into(), helper(&ws, u, bad)),
                ],
                false,
            ),
            (
                "github token (not for this host) and nothing else".into(),
                vec![
                    ("INPUT_TOKEN".into(), gh_token.into()),
                    ("GITHUB_TOKEN".into(), gh_token.into()),
                ],
                false,
            ),
        ];
        if is_token {
            for (t, ok) in [(jwt.as_str(), true), (jwt_wrong, false)] {
                scenarios.push((
                    format!("docker config registrytoken ({ok})"),
                    vec![(
                        "DOCKER_CONFIG".into(),
                        docker_config(
                            &ws,
                            &format!(r#"{{"auths":{{"{host}":{{"registrytoken":"{t}"}}}}}}"#),
                        ),
                    )],
                    ok,
                ));
            }
            for (id, ok) in [(identity, true), (identity_wrong, false)] {
                scenarios.push((
                    format!("docker config identitytoken ({ok})"),
                    vec![(
                        "DOCKER_CONFIG".into(),
                        docker_config(&ws, &format!(r#"{{"auths":{{"{host}":{{"auth":"{}","identitytoken":"{id}"}}}}}}"#, b64.encode(format!("{u}:")))),
                    )],
                    ok,
                ));
            }
        }
        for (what, env, ok) in &scenarios {
            for log in ["SKIP_ACTION_LOG", "RUST_LOG"] {
                let mut e: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                e.push((log, "trace"));
                e.push(("GITHUB_ACTIONS", "true"));
                e.push(("INPUT_TIMEOUT", "20"));
                let label = format!("{host} {what} {log}=trace");
                let d = gh_run(&ws, "decide", &[], &e);
                runs += 1;
                assert_eq!(d.code, Some(0), "{label}: {}", d.stderr);
                let plan = d.plan();
                // With the right credentials the published base is seen; never otherwise.
                assert_eq!(
                    !plan["base"].0, *ok,
                    "{label}: {:?}\n{}",
                    plan["base"], d.stderr
                );
                assert!(
                    d.stderr.contains("TRACE") || d.stderr.contains("DEBUG") || log == "RUST_LOG",
                    "{label}"
                );
                assert_no_secrets(&d, &all_secrets, &label);
                // promote (blocked: most content tags are missing) reads the same credentials.
                let p = gh_run(&ws, "promote", &["--wait", "0"], &e);
                runs += 1;
                assert_eq!(p.code, Some(1), "{label}: {}", p.stderr);
                assert_no_secrets(&p, &all_secrets, &format!("promote {label}"));
            }
        }
    }
    eprintln!(
        "[hostile] secrets: {runs} runs (decide and promote, trace logging), no secret printed"
    );
}
