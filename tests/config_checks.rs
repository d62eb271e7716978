//! A config that cannot silently build the wrong thing: each mistake that used to pass with a
//! warning (or nothing) is refused by `hash` and by `decide` — exit 2, nothing written, no request
//! to the registry — with the file, the key, its line and the fix. And the forms that spare
//! repetition (`defaults:`, templated paths, anchors and `<<`, `x-` keys, `vars:`) give the same
//! images as the long form.

mod common;

use common::*;
use skip_testkit::{FaultProxy, TestRegistry};

/// A registry behind a counting proxy, so a test can show that `decide` refused before asking.
struct Counted {
    _reg: TestRegistry,
    proxy: FaultProxy,
}

impl Counted {
    fn start() -> Self {
        let reg = TestRegistry::start_open().unwrap();
        let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
        Counted { _reg: reg, proxy }
    }
    fn repo(&self) -> String {
        format!("{}/acme/app", self.proxy.host())
    }
}

/// `hash` and `decide` both refuse the workspace: exit 2, every fragment in the message, no output
/// written and not one request to the registry.
fn refused(ws: &Ws, reg: &Counted, fragments: &[&str]) -> String {
    let o = ws.run(&["hash"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "hash: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("skip-action.yml"), "no file in: {err}");
    for f in fragments {
        assert!(err.contains(f), "hash: `{f}` not in: {err}");
    }
    let d = gh_run(ws, "decide", &[], &[]);
    assert_eq!(d.code, Some(2), "decide: {}", d.stderr);
    for f in fragments {
        assert!(d.stderr.contains(f), "decide: `{f}` not in: {}", d.stderr);
    }
    assert_eq!(d.raw_out, "", "decide wrote outputs before refusing");
    assert_eq!(
        reg.proxy.request_count(),
        0,
        "decide asked the registry before refusing"
    );
    err
}

fn ws_with(config: &str, files: &[(&str, &str)]) -> Ws {
    let ws = Ws::new();
    ws.write("skip-action.yml", config);
    for (p, c) in files {
        ws.write(p, c);
    }
    ws
}

const BASE_DF: &str = "FROM alpine:3.20\nCOPY etc/ /etc/\n";

#[test]
fn a_base_arg_the_dockerfile_never_uses_is_refused() {
    let reg = Counted::start();
    // docker-stacks renamed BASE_CONTAINER to BASE_IMAGE; a config still naming the old arg (or a
    // Dockerfile still using it) would build on the ARG's default: the published parent.
    let config = format!(
        "version: 1\nrepository: {}\nimages:\n  base:\n    dockerfile: base.Dockerfile\n  nb:\n    from: base\n    dockerfile: nb.Dockerfile\n",
        reg.repo()
    );
    let ws = ws_with(
        &config,
        &[
            ("base.Dockerfile", BASE_DF),
            ("etc/issue", "x"),
            (
                "nb.Dockerfile",
                "ARG BASE_CONTAINER=quay.io/jupyter/base-notebook\nFROM $BASE_CONTAINER\n",
            ),
        ],
    );
    let err = refused(
        &ws,
        &reg,
        &[
            "line 7",
            "`images.nb.from`",
            "${BASE_IMAGE}",
            "FROM ${BASE_IMAGE}",
            "BASE_CONTAINER",
            "set `base_arg:`",
        ],
    );
    assert!(err.contains("nb.Dockerfile"), "{err}");

    // With base_arg naming an arg that is not used in FROM either: the key is base_arg.
    ws.write(
        "skip-action.yml",
        &config.replace("    from: base\n", "    from: base\n    base_arg: PARENT\n"),
    );
    refused(&ws, &reg, &["line 8", "`images.nb.base_arg`", "${PARENT}"]);

    // Fixed: exit 0.
    ws.write(
        "skip-action.yml",
        &config.replace(
            "    from: base\n",
            "    from: base\n    base_arg: BASE_CONTAINER\n",
        ),
    );
    let o = ws.run(&["hash"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_build_arg_the_dockerfile_does_not_declare_is_refused() {
    let reg = Counted::start();
    let config = format!(
        "version: 1\nrepository: {}\nimages:\n  py:\n    dockerfile: Dockerfile\n    args:\n      VERSION: \"1\"\n      HTTP_PROXY: http://proxy:3128\n      BUILDKIT_INLINE_CACHE: 1\n    variants:\n      plain: {{}}\n      python3:\n        INSTALL_PYTHON: \"true\"\n",
        reg.repo()
    );
    let df = "FROM alpine:3.20\nARG VERSION\nARG INSTALL_PYTHON3=false\nRUN echo $VERSION $INSTALL_PYTHON3\n";
    let ws = ws_with(&config, &[("Dockerfile", df)]);
    refused(
        &ws,
        &reg,
        &[
            "line 13",
            "`images.py.variants.python3.INSTALL_PYTHON`",
            "not declared by Dockerfile",
            "build py/python3 without it",
            "Did you mean `INSTALL_PYTHON3`?",
            "add `ARG INSTALL_PYTHON`",
            "`vars:`",
        ],
    );

    // On the image's own args too (a variant's nested `args:` form likewise).
    ws.write(
        "skip-action.yml",
        &config
            .replace("VERSION: \"1\"", "VERSON: \"1\"")
            .replace("INSTALL_PYTHON:", "INSTALL_PYTHON3:"),
    );
    refused(
        &ws,
        &reg,
        &["line 7", "`images.py.args.VERSON`", "`VERSION`"],
    );
    ws.write(
        "skip-action.yml",
        &config.replace(
            "        INSTALL_PYTHON: \"true\"\n",
            "        args: { INSTALL_PYTON3: \"true\" }\n",
        ),
    );
    refused(
        &ws,
        &reg,
        &[
            "`images.py.variants.python3.args.INSTALL_PYTON3`",
            "line 13",
        ],
    );

    // Fixed: exit 0, and the predefined args (no ARG needed) are passed and hashed.
    ws.write(
        "skip-action.yml",
        &config.replace("INSTALL_PYTHON:", "INSTALL_PYTHON3:"),
    );
    let j = ws.hash_json();
    let py3 = &j["images"][1];
    assert_eq!(py3["name"], "py/python3");
    let args = py3["build_args"].as_str().unwrap();
    assert!(args.contains("INSTALL_PYTHON3=true"), "{args}");
    assert!(args.contains("HTTP_PROXY=http://proxy:3128"), "{args}");
    assert!(args.contains("BUILDKIT_INLINE_CACHE=1"), "{args}");
}

#[test]
fn matrix_values_and_defaults_args_are_passed_only_where_declared() {
    // As in examples/stack: axes used only in names are not build args of a Dockerfile that does
    // not declare them (docker would warn about each), and are of one that does.
    let ws = ws_with(
        "version: 1\nrepository: ghcr.io/acme/app\ndefaults:\n  args:\n    PIP_INDEX: https://pypi.example\n    UNUSED_DEFAULT: x\nimages:\n  app:\n    matrix:\n      line: [stable, edge]\n      sv: [\"2\"]\n      include:\n        - { line: edge, EXTRA: numpy }\n    tag: \"{line}-{sv}-{hash}\"\n",
        &[(
            "Dockerfile",
            "FROM alpine:3.20\nARG sv\nARG PIP_INDEX\nARG EXTRA=\nRUN echo $sv $PIP_INDEX $EXTRA\n",
        )],
    );
    let j = ws.hash_json();
    let imgs = j["images"].as_array().unwrap();
    assert_eq!(imgs.len(), 2);
    let args = |i: usize| imgs[i]["build_args"].as_str().unwrap().to_string();
    assert_eq!(args(0), "PIP_INDEX=https://pypi.example\nsv=2");
    assert_eq!(args(1), "EXTRA=numpy\nPIP_INDEX=https://pypi.example\nsv=2");
    assert_eq!(
        imgs[0]["tag"].as_str().unwrap()[..9].to_string(),
        "stable-2-"
    );
    assert!(imgs[0]["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn vars_name_tags_and_aliases_and_are_never_build_args() {
    let ws = ws_with(
        "version: 1\nrepository: ghcr.io/acme/app\nimages:\n  app:\n    vars: { suffix: \"\", channel: stable }\n    variants:\n      slim: { vars: { suffix: -slim } }\n      full: { vars: { suffix: }, FULL: \"1\" }\n    tag: \"{channel}{suffix}-{hash}\"\n    promote: [\"{channel}{suffix}\"]\n",
        &[("Dockerfile", "FROM alpine:3.20\nARG FULL=0\nARG channel\n")],
    );
    let j = ws.hash_json();
    let imgs = j["images"].as_array().unwrap();
    assert!(imgs[0]["tag"].as_str().unwrap().starts_with("stable-slim-"));
    assert!(imgs[1]["tag"].as_str().unwrap().starts_with("stable-"));
    assert!(!imgs[1]["tag"].as_str().unwrap().starts_with("stable--"));
    // `channel` is declared by the Dockerfile, but a var is never a build arg.
    assert_eq!(imgs[0]["build_args"], "");
    assert_eq!(imgs[1]["build_args"], "FULL=1");
}

#[test]
fn two_images_rendering_one_content_tag_are_refused() {
    let reg = Counted::start();
    // Two identical variants under a tag without {variant}: same hash, same tag, two jobs.
    let ws = ws_with(
        &format!(
            "version: 1\nrepository: {}\nimages:\n  app:\n    variants:\n      a: {{ V: \"1\" }}\n      b: {{ V: \"1\" }}\n    tag: \"v-{{hash}}\"\n",
            reg.repo()
        ),
        &[("Dockerfile", "FROM alpine:3.20\nARG V\n")],
    );
    refused(
        &ws,
        &reg,
        &[
            "line 8",
            "`images.app.tag`",
            "app/a and app/b render the same content tag",
            "add {variant}",
        ],
    );
}

#[test]
fn two_images_promoting_one_alias_are_refused() {
    let reg = Counted::start();
    let config = format!(
        "version: 1\nrepository: {}\nimages:\n  a:\n    tag: a-{{hash}}\n    promote: [latest]\n  b:\n    tag: b-{{hash}}\n    promote: [\"b-latest\", latest]\n",
        reg.repo()
    );
    let ws = ws_with(&config, &[("Dockerfile", "FROM alpine:3.20\n")]);
    refused(
        &ws,
        &reg,
        &[
            "line 9",
            "`images.b.promote[1]`",
            "is an alias of both a and b (also at `images.a.promote[0]`)",
            "override `promote:`",
        ],
    );
    // In another repository the same tag is another alias: fine.
    ws.write(
        "skip-action.yml",
        &config.replace(
            "[\"b-latest\", latest]",
            "[\"b-latest\", {tag: latest, repository: ghcr.io/acme/b}]",
        ),
    );
    let o = ws.run(&["hash"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_inputs_glob_that_matches_nothing_is_refused() {
    let reg = Counted::start();
    let ws = ws_with(
        &format!(
            "version: 1\nrepository: {}\nimages:\n  app:\n    inputs:\n      - scripts/*.sh\n      - scirpts/build.sh\n",
            reg.repo()
        ),
        &[
            ("Dockerfile", "FROM alpine:3.20\n"),
            ("scripts/build.sh", "echo"),
        ],
    );
    refused(
        &ws,
        &reg,
        &[
            "line 7",
            "`images.app.inputs[1]`",
            "`scirpts/build.sh` matches nothing",
            "fix the pattern",
        ],
    );
}

#[test]
fn warnings_name_their_image_once_and_inputs_shows_only_its_image() {
    let ws = ws_with(
        "version: 1\nrepository: ghcr.io/acme/app\nimages:\n  app:\n    variants:\n      a: { V: \"1\" }\n      b: { V: \"2\" }\n      c: { V: \"3\" }\n  tool:\n    dockerfile: tool.Dockerfile\n",
        &[
            (
                "Dockerfile",
                "FROM alpine:3.20\nARG V\nADD https://example.com/app.tgz /app.tgz\n",
            ),
            (
                "tool.Dockerfile",
                "FROM alpine:3.20\nADD https://example.com/tool.tgz /tool.tgz\n",
            ),
        ],
    );
    let o = ws.run_env(&["hash"], &[("GITHUB_ACTIONS", "true")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("::warning::"))
        .collect();
    assert_eq!(warnings.len(), 2, "{out}");
    assert!(
        warnings[0].starts_with(
            "::warning::app (3 variants): Dockerfile:3: ADD https://example.com/app.tgz"
        ),
        "{out}"
    );
    assert!(
        warnings[1]
            .starts_with("::warning::tool: tool.Dockerfile:2: ADD https://example.com/tool.tgz"),
        "{out}"
    );

    let o = ws.run_env(&["inputs", "tool"], &[("GITHUB_ACTIONS", "true")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("::warning::"))
        .collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(warnings[0].contains("tool.tgz"), "{out}");
}

/// The long form of a small config and a short one using every way to say less.
const LONG: &str = "version: 1
repository: ghcr.io/acme/stack
images:
  base:
    dockerfile: images/base/Dockerfile
    context: images/base
    tag: base-{hash}
    promote: [base-latest]
  web:
    from: base
    dockerfile: images/web/Dockerfile
    context: images/web
    tag: web-{hash}
    promote: [web-latest]
    args:
      PORT: \"80\"
  worker:
    from: base
    dockerfile: images/worker/Dockerfile
    context: images/worker
    tag: worker-{hash}
    promote: [worker-latest]
    args:
      PORT: \"80\"
";

const SHORT: &str = "version: 1
repository: ghcr.io/acme/stack
x-child: &child { from: base, args: { PORT: \"80\" } }
defaults:
  dockerfile: images/{name}/Dockerfile
  context: images/{name}
  tag: \"{name}-{hash}\"
  promote: [\"{name}-latest\"]
images:
  base: {}
  web: *child
  worker: { <<: *child, x-note: the same as web }
";

fn stack_files(ws: &Ws) {
    ws.write("images/base/Dockerfile", BASE_DF);
    ws.write("images/base/etc/issue", "x");
    for n in ["web", "worker"] {
        ws.write(
            &format!("images/{n}/Dockerfile"),
            &format!("ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nARG PORT\nCOPY {n}.conf /etc/\n"),
        );
        ws.write(&format!("images/{n}/{n}.conf"), n);
    }
}

#[test]
fn defaults_templated_paths_anchors_and_merge_keys_give_the_long_forms_images() {
    let long = Ws::new();
    long.write("skip-action.yml", LONG);
    stack_files(&long);
    let short = Ws::new();
    short.write("skip-action.yml", SHORT);
    stack_files(&short);
    let (l, s) = (long.hash_json(), short.hash_json());
    assert_eq!(hashes_of(&l), hashes_of(&s));
    assert_eq!(l["images"], s["images"]);
    assert_eq!(hashes_of(&l).len(), 3);
}

#[test]
fn errors_keep_their_lines_through_anchors_and_merges() {
    let ws = Ws::new();
    stack_files(&ws);
    // An unknown key written under an image that merges an anchor.
    ws.write(
        "skip-action.yml",
        &SHORT.replace("x-note: the same as web", "tga: x"),
    );
    let o = ws.run(&["hash"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("unknown field `tga`"), "{err}");
    assert!(err.contains("line 12"), "{err}");
    // A value of the wrong type inside `defaults:`.
    ws.write(
        "skip-action.yml",
        &SHORT.replace("promote: [\"{name}-latest\"]", "promote: {a: b}"),
    );
    let o = ws.run(&["hash"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("line 8") && err.contains("`defaults.promote`"),
        "{err}"
    );
    // A template in `defaults:` that does not fit one image names that image and the key.
    ws.write(
        "skip-action.yml",
        &SHORT.replace(
            "images/{name}/Dockerfile",
            "images/{name}/{flavour}/Dockerfile",
        ),
    );
    let o = ws.run(&["hash"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("line 5")
            && err.contains("`defaults.dockerfile`")
            && err.contains("{flavour}"),
        "{err}"
    );
}

#[test]
fn a_variant_overrides_promote() {
    // opencode-devbox: the `base` variant is published as plain `latest` and `v{version}`, the
    // others as `latest-<variant>`.
    let ws = ws_with(
        "version: 1\nrepository: ghcr.io/acme/devbox\nimages:\n  devbox:\n    variants:\n      base: { promote: [latest, \"v{version}\"] }\n      omos: { INSTALL_OMOS: \"true\" }\n    tag: \"{variant}-{hash}\"\n    promote: [\"latest-{variant}\"]\n",
        &[("Dockerfile", "FROM alpine:3.20\nARG INSTALL_OMOS=false\n")],
    );
    let o = ws.run(&["hash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = skip_action::config::Config::load(&ws.path().join("skip-action.yml")).unwrap();
    let aliases = |n: &str| -> Vec<String> {
        cfg.image(n)
            .unwrap()
            .promote
            .iter()
            .map(|p| p.tag.source().to_string())
            .collect()
    };
    assert_eq!(aliases("devbox/base"), ["latest", "v{version}"]);
    assert_eq!(aliases("devbox/omos"), ["latest-{variant}"]);
}

/// examples/docker-stacks: jupyter/docker-stacks' 14 images in 6 levels, in the long form (every
/// key of every image) and the short one (`defaults:`, `{name}` paths and repositories, an
/// anchor, `vars:`) in about a third of the lines: the same images, args and hashes.
#[test]
fn docker_stacks_long_and_short_forms_hash_identically() {
    let ws = Ws::new();
    copy_tree(&repo_root().join("examples/docker-stacks"), ws.path());
    let short = ws.hash_json();
    let o = ws.run(&["hash", "--json", "--config", "long.yml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let long: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(short["images"], long["images"]);
    let imgs = short["images"].as_array().unwrap();
    assert_eq!(imgs.len(), 14);
    let levels: std::collections::BTreeSet<u64> =
        imgs.iter().map(|i| i["level"].as_u64().unwrap()).collect();
    assert_eq!(levels.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    let by_name = |n: &str| imgs.iter().find(|i| i["name"] == n).unwrap().clone();
    let all_spark = by_name("all-spark-notebook");
    assert_eq!(all_spark["parents"][0], "pyspark-notebook");
    assert!(all_spark["image"]
        .as_str()
        .unwrap()
        .starts_with("quay.io/jupyter/all-spark-notebook:"));
    let cuda12 = by_name("pytorch-notebook/cuda12");
    assert_eq!(
        cuda12["dockerfile"],
        "images/pytorch-notebook/cuda12/Dockerfile"
    );
    assert_eq!(cuda12["context"], "images/pytorch-notebook");
    assert!(cuda12["tag"].as_str().unwrap().starts_with("cuda12-"));
    // Args set on the image are passed; the parent arrives in BASE_IMAGE.
    let spark = by_name("pyspark-notebook")["build_args"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        spark.contains("spark_version=3.5.3")
            && spark.contains("BASE_IMAGE=quay.io/jupyter/scipy-notebook:"),
        "{spark}"
    );
    // Each of the 14 differs from the others.
    assert_eq!(
        hashes_of(&short)
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        14
    );

    let lines = |f: &str| {
        std::fs::read_to_string(ws.path().join(f))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .count()
    };
    let (s, l) = (lines("skip-action.yml"), lines("long.yml"));
    assert!(
        s * 5 <= l * 2,
        "short form {s} lines, long form {l}: not about a third"
    );
}

/// examples/stack's `app` matrix has an axis (`lang`) used only to pick the parent and name the
/// variant: its Dockerfile does not declare it, so it is not passed (docker warned about it
/// before); `runtime` declares `lang` and gets it.
#[test]
fn the_stack_examples_name_only_axis_is_not_passed() {
    let ws = Ws::new();
    copy_tree(&repo_root().join("examples/stack"), ws.path());
    let j = ws.hash_json();
    let args = |n: &str| -> String {
        j["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == n)
            .unwrap()["build_args"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(args("runtime/python").contains("lang=python"));
    let app = args("app/python-full");
    assert!(!app.contains("lang="), "{app}");
    assert!(
        app.contains("flavor=full") && app.contains("EXTRA_PACKAGES=numpy"),
        "{app}"
    );
}
