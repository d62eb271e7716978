//! `decide` end to end against a real registry (Debian's `docker-registry`, started on 127.0.0.1
//! by skip-testkit): every output, across the states a release pipeline goes through.

mod common;

use common::registry::{content_tags, rt};
use common::*;
use skip_testkit::{
    Fault, FaultProxy, FaultRule, Format, ImageSpec, TestRegistry, TokenOptions, Trigger,
};

/// The devbox example, pointed at `host` (a registry or a proxy in front of it).
fn devbox_at(host: &str) -> Ws {
    let ws = devbox();
    let p = ws.path().join("skip-action.yml");
    let s = std::fs::read_to_string(&p)
        .unwrap()
        .replace("ghcr.io/acme/devbox", &format!("{host}/acme/devbox"));
    std::fs::write(p, s).unwrap();
    ws
}

fn decide(ws: &Ws, args: &[&str], env: &[(&str, &str)]) -> GhRun {
    gh_run(ws, "decide", args, env)
}

/// Names of a matrix output's entries.
fn matrix_names(d: &GhRun, k: &str) -> Vec<String> {
    d.json(k)["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

/// Push a single-arch image at every given tag of acme/devbox, as a pipeline would: the first
/// tag is the base, the others are variants built FROM it (decide checks that they sit on it).
fn publish(reg: &TestRegistry, tags: &[&str]) {
    let p = reg.pusher();
    rt().block_on(async {
        let mut base = None;
        for t in tags {
            let spec = match &base {
                Some(b) => ImageSpec::oci().from_parent(b),
                None => ImageSpec::oci(),
            };
            let pushed = p.push_image("acme/devbox", Some(t), &spec).await.unwrap();
            base.get_or_insert(pushed);
        }
    });
}

const VARIANTS: [&str; 4] = [
    "devbox/base",
    "devbox/omos",
    "devbox/with-pi",
    "devbox/omos-with-pi",
];

#[test]
fn nothing_published_builds_everything() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = devbox_at(&reg.host());
    let d = decide(&ws, &[], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert_eq!(d.get("need_build"), "true");
    assert_eq!(d.get("base_need_build"), "true");
    assert_eq!(d.get("variants_need_build"), "true");
    assert_eq!(d.get("dry_run"), "");
    assert_eq!(d.get("build_count"), "5");
    let tags = content_tags(&ws);
    assert_eq!(d.get("base_tag"), tags["base"]);
    assert_eq!(
        d.get("base_image"),
        format!("{}/acme/devbox:{}", reg.host(), tags["base"])
    );
    assert_eq!(d.get("base_hash").len(), 64);
    assert_eq!(matrix_names(&d, "variants_matrix"), VARIANTS);
    let mut all = vec!["base".to_string()];
    all.extend(VARIANTS.iter().map(|s| s.to_string()));
    assert_eq!(matrix_names(&d, "matrix"), all);
    // A matrix entry carries everything a build step needs.
    let e = &d.json("variants_matrix")["include"][1];
    assert_eq!(e["name"], "devbox/omos");
    assert_eq!(e["variant"], "omos");
    assert_eq!(e["dockerfile"], "Dockerfile.variant");
    assert_eq!(e["context"], ".");
    assert_eq!(e["level"], 1);
    assert_eq!(e["parents"], "base");
    assert_eq!(e["tags"], e["image"]);
    let ba = e["build_args"].as_str().unwrap();
    assert!(
        ba.contains(&format!("BASE_IMAGE={}", d.get("base_image"))),
        "{ba}"
    );
    assert!(ba.contains("INSTALL_OMOS=true"), "{ba}");
    for (_, (build, reason)) in d.plan() {
        assert!(build);
        assert_eq!(reason, "tag missing");
    }
    // Levels for deep DAGs.
    let levels = d.json("matrix_levels");
    assert_eq!(levels[0]["include"].as_array().unwrap().len(), 1);
    assert_eq!(levels[1]["include"].as_array().unwrap().len(), 4);
    assert_eq!(d.get("levels_need_build"), "[true,true]");
    // The summary: a table, in the step summary and the log.
    assert!(
        d.summary.contains("| image | tag | decision | reason |"),
        "{}",
        d.summary
    );
    assert!(d.summary.contains("| devbox/omos |"));
    assert!(
        d.stdout.contains("5 of 5 image(s) to build"),
        "{}",
        d.stdout
    );
}

#[test]
fn base_published_builds_only_variants() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = devbox_at(&reg.host());
    let tags = content_tags(&ws);
    publish(&reg, &[&tags["base"]]);
    let d = decide(&ws, &[], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert_eq!(d.get("base_need_build"), "");
    assert_eq!(d.get("variants_need_build"), "true");
    assert_eq!(matrix_names(&d, "matrix"), VARIANTS);
    let plan = d.plan();
    assert_eq!(plan["base"], (false, "tag exists".to_string()));
    let base = &d.json("plan")[0];
    assert_eq!(base["exists"], true);
    assert!(base["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(plan["devbox/omos"], (true, "tag missing".to_string()));
    // Per image, for workflows with one fixed job per image (Gitea without dynamic matrices).
    let need = d.json("images_need_build");
    assert_eq!(need["base"], false);
    assert_eq!(need["devbox/omos"], true);
    assert_eq!(need["devbox/omos-with-pi"], true);
    assert_eq!(need.as_object().unwrap().len(), tags.len());
    assert_eq!(
        d.json("images")["devbox/omos"]["image"],
        format!("{}/acme/devbox:{}", reg.host(), tags["devbox/omos"])
    );
}

#[test]
fn all_published_builds_nothing_and_one_arg_change_rebuilds_one_variant() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = devbox_at(&reg.host());
    let tags = content_tags(&ws);
    publish(&reg, &tags.values().map(String::as_str).collect::<Vec<_>>());
    let d = decide(&ws, &[], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert_eq!(d.get("need_build"), "");
    assert_eq!(d.get("base_need_build"), "");
    assert_eq!(d.get("variants_need_build"), "");
    assert_eq!(d.get("matrix"), r#"{"include":[]}"#);
    assert_eq!(d.get("variants_matrix"), r#"{"include":[]}"#);
    assert!(d.plan().values().all(|(b, r)| !b && r == "tag exists"));

    // One variant's arg changes: only it builds.
    let p = ws.path().join("skip-action.yml");
    let s = std::fs::read_to_string(&p).unwrap().replace(
        r#"with-pi:      { INSTALL_OMOS: "false", INSTALL_PI: "true" }"#,
        r#"with-pi:      { INSTALL_OMOS: "false", INSTALL_PI: "yes" }"#,
    );
    std::fs::write(&p, s).unwrap();
    let d = decide(&ws, &[], &[]);
    assert_eq!(matrix_names(&d, "matrix"), ["devbox/with-pi"]);
    assert_eq!(d.get("base_need_build"), "");

    // The base changes: everything builds.
    ws.write("rootfs/etc/profile.d/devbox.sh", "export EDITOR=nano\n");
    let d = decide(&ws, &[], &[]);
    assert_eq!(d.get("build_count"), "5");

    // --force of the base cascades to the variants even with every tag present.
    let tags = content_tags(&ws);
    publish(&reg, &tags.values().map(String::as_str).collect::<Vec<_>>());
    let d = decide(&ws, &["--force", "base"], &[]);
    let plan = d.plan();
    assert_eq!(plan["base"], (true, "forced".to_string()));
    assert_eq!(
        plan["devbox/omos"],
        (true, "parent base is being built".to_string())
    );
    // INPUT_FORCE for one variant.
    let d = decide(&ws, &[], &[("INPUT_FORCE", "devbox/omos")]);
    assert_eq!(matrix_names(&d, "matrix"), ["devbox/omos"]);
}

#[test]
fn multi_arch_index_counts_as_present() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = devbox_at(&reg.host());
    let tags = content_tags(&ws);
    let p = reg.pusher();
    rt().block_on(async {
        let base = p
            .push_multiarch("acme/devbox", &tags["base"], Format::Oci, None)
            .await
            .unwrap();
        p.push_multiarch(
            "acme/devbox",
            &tags["devbox/omos"],
            Format::Docker,
            Some(&base),
        )
        .await
        .unwrap();
    });
    let d = decide(&ws, &[], &[]);
    let plan = d.plan();
    assert!(!plan["base"].0, "{:?}", plan["base"]);
    assert!(!plan["devbox/omos"].0);
    assert!(plan["devbox/base"].0);
}

#[test]
fn dry_run_shows_the_plan_and_builds_nothing() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = devbox_at(&reg.host());
    for d in [
        decide(&ws, &["--dry-run"], &[]),
        decide(&ws, &[], &[("INPUT_DRY_RUN", "true")]),
    ] {
        assert_eq!(d.code, Some(0), "{}", d.stderr);
        assert_eq!(d.get("dry_run"), "true");
        assert_eq!(d.get("need_build"), "");
        assert_eq!(d.get("base_need_build"), "");
        assert_eq!(d.get("variants_need_build"), "");
        assert_eq!(d.get("matrix"), r#"{"include":[]}"#);
        assert_eq!(d.get("variants_matrix"), r#"{"include":[]}"#);
        // The plan still says what a real run would build.
        assert!(d.plan().values().all(|(b, r)| *b && r == "tag missing"));
        assert!(d.summary.contains("Dry run"));
    }
    // INPUT_DRY_RUN=false is a real run.
    let d = decide(&ws, &[], &[("INPUT_DRY_RUN", "false")]);
    assert_eq!(d.get("need_build"), "true");
}

/// The whole plan also goes to a file under RUNNER_TEMP, whose path is the `plan_file` output:
/// later steps of the job read it whatever its size (outputs have limits; files do not).
#[test]
fn the_plan_is_also_a_file_under_runner_temp() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = devbox_at(&reg.host());
    let tmp = tempfile::tempdir().unwrap();
    let env = [("RUNNER_TEMP", tmp.path().to_str().unwrap())];
    let d = decide(&ws, &[], &env);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let path = std::path::PathBuf::from(d.get("plan_file"));
    assert!(path.starts_with(tmp.path()), "{}", path.display());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), d.get("plan"));
    // A second decide in the same job gets its own file.
    let again = decide(&ws, &[], &env);
    assert_ne!(again.get("plan_file"), d.get("plan_file"));
    assert!(std::path::Path::new(again.get("plan_file")).is_file());
    assert!(std::path::Path::new(d.get("plan_file")).is_file());
    // Outside a runner there is no file, and the output is empty.
    assert_eq!(decide(&ws, &[], &[]).get("plan_file"), "");
}

#[test]
fn registry_down_builds_everything_and_says_why() {
    let mut reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = devbox_at(&host);
    let tags = content_tags(&ws);
    publish(&reg, &tags.values().map(String::as_str).collect::<Vec<_>>());
    reg.stop();
    let d = decide(&ws, &["--timeout", "20"], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert_eq!(d.get("need_build"), "true");
    assert_eq!(d.get("build_count"), "5");
    for (_, (b, r)) in d.plan() {
        assert!(b);
        assert!(
            r.starts_with("registry error:") && r.ends_with("building to be safe"),
            "{r}"
        );
    }
    // With on-registry-error: fail it fails, and writes no outputs at all.
    let d = decide(&ws, &[], &[("INPUT_ON_REGISTRY_ERROR", "fail")]);
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert!(d.out.is_empty(), "outputs written on failure: {:?}", d.out);
    assert!(d.stderr.contains("devbox/omos"), "{}", d.stderr);
}

#[test]
fn bursts_of_429_and_503_end_in_the_clean_answer() {
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let ws = devbox_at(&proxy.host());
    let tags = content_tags(&ws);
    publish(&reg, &[&tags["base"], &tags["devbox/omos"]]);
    let clean = decide(&ws, &[], &[]);
    assert_eq!(clean.get("build_count"), "3");
    proxy.set_rules(vec![
        FaultRule::new(Fault::status_retry_after(429, "1"), Trigger::FirstN(2)),
        FaultRule::new(Fault::status(503), Trigger::FirstN(3)),
    ]);
    let d = decide(&ws, &[], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert!(proxy.faults_injected() >= 5, "{}", proxy.faults_injected());
    // The same outputs as the clean run.
    assert_eq!(d.out, clean.out);
}

#[test]
fn htpasswd_registry_with_right_and_wrong_credentials() {
    let reg = TestRegistry::start_htpasswd(&[("ci", "s3cret-pass")]).unwrap();
    let ws = devbox_at(&reg.host());
    let tags = content_tags(&ws);
    publish(&reg, &[&tags["base"]]);
    let ok = decide(
        &ws,
        &[],
        &[("INPUT_USERNAME", "ci"), ("INPUT_PASSWORD", "s3cret-pass")],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(ok.plan()["base"], (false, "tag exists".to_string()));

    let bad = decide(
        &ws,
        &[],
        &[
            ("INPUT_USERNAME", "ci"),
            ("INPUT_PASSWORD", "wrong-pass-xyz"),
            ("GITHUB_ACTIONS", "true"),
        ],
    );
    assert_eq!(bad.code, Some(0), "{}", bad.stderr);
    assert!(bad
        .plan()
        .values()
        .all(|(b, r)| *b && r.starts_with("registry error")));
    assert!(bad.stdout.contains("::warning::"), "{}", bad.stdout);
    // The action's own advice on fixing the login, not the registry crate's generic one.
    assert!(bad.stdout.contains("docker/login-action"), "{}", bad.stdout);
    assert!(bad.stdout.contains("::add-mask::wrong-pass-xyz"));
    // The secret appears only in the mask command, never in a message.
    let leaks = bad
        .stdout
        .lines()
        .chain(bad.stderr.lines())
        .filter(|l| l.contains("wrong-pass-xyz") && !l.starts_with("::add-mask::"))
        .count();
    assert_eq!(leaks, 0, "{}\n{}", bad.stdout, bad.stderr);
    assert!(!bad.out.values().any(|v| v.contains("wrong-pass-xyz")));
}

#[test]
fn token_registry_with_docker_config_credentials() {
    let reg = TestRegistry::start_token(TokenOptions {
        anonymous_pull: false,
        ..TokenOptions::default()
    })
    .unwrap();
    let ws = devbox_at(&reg.host());
    let tags = content_tags(&ws);
    publish(&reg, &[&tags["base"], &tags["devbox/base"]]);
    // Anonymous: the registry refuses, so everything builds (never a skip).
    let anon = decide(&ws, &[], &[]);
    assert!(anon.plan().values().all(|(b, _)| *b));
    // docker/login-action leaves credentials in $DOCKER_CONFIG/config.json.
    let cfg = ws.path().join("dockercfg");
    std::fs::create_dir_all(&cfg).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:wonderland");
    std::fs::write(
        cfg.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let d = decide(&ws, &[], &[("DOCKER_CONFIG", cfg.to_str().unwrap())]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let plan = d.plan();
    assert_eq!(plan["base"], (false, "tag exists".to_string()));
    assert_eq!(plan["devbox/base"], (false, "tag exists".to_string()));
    assert_eq!(plan["devbox/omos"], (true, "tag missing".to_string()));
}

#[test]
fn many_images_use_tags_list_and_batch_within_max_jobs() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = Ws::new();
    let axis: Vec<String> = (0..40).map(|i| format!("b{i}")).collect();
    ws.write(
        "skip-action.yml",
        &format!(
            "version: 1\nrepository: {}/acme/many\nimages:\n  base:\n    tag: base-{{hash}}\n  app:\n    from: base\n    dockerfile: Dockerfile.app\n    matrix:\n      bench: [{}]\n      agent: [x, y, z]\n    tag: '{{variant}}-{{hash}}'\n",
            reg.host(),
            axis.join(", ")
        ),
    );
    ws.write("Dockerfile", "FROM alpine\n");
    ws.write(
        "Dockerfile.app",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG bench\nARG agent\nRUN echo $bench $agent\n",
    );
    let tags = content_tags(&ws);
    assert_eq!(tags.len(), 121);
    // Publish half of them.
    let published: Vec<&str> = tags.values().step_by(2).map(String::as_str).collect();
    let p = reg.pusher();
    rt().block_on(async {
        // The base first; the apps are built FROM it (decide checks that they sit on it).
        let base = match published.iter().find(|t| **t == tags["base"]) {
            Some(t) => Some(
                p.push_image("acme/many", Some(t), &ImageSpec::oci())
                    .await
                    .unwrap(),
            ),
            None => None,
        };
        for t in published.iter().filter(|t| **t != tags["base"]) {
            let spec = match &base {
                Some(b) => ImageSpec::oci().from_parent(b),
                None => ImageSpec::oci(),
            };
            p.push_image("acme/many", Some(t), &spec).await.unwrap();
        }
    });
    let d = decide(&ws, &["--max-jobs", "10"], &[("SKIP_ACTION_LOG", "info")]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert!(d.stderr.contains("listed tags"), "{}", d.stderr);
    let plan = d.plan();
    for (name, tag) in &tags {
        let present = published.contains(&tag.as_str());
        // A present base does not cascade; absent ones build.
        if name == "base" {
            assert_eq!(plan[name].0, !present);
        } else if !plan["base"].0 {
            assert_eq!(plan[name].0, !present, "{name}");
        }
    }
    // Per image: the guard agrees with the plan, and every image has its build settings.
    let need = d.json("images_need_build");
    let images = d.json("images");
    for (name, (build, _)) in &plan {
        assert_eq!(need[name.as_str()], *build, "{name}");
        assert_eq!(images[name.as_str()]["tag"], tags[name.as_str()], "{name}");
    }
    assert_eq!(need.as_object().unwrap().len(), 121);
    let m = d.json("matrix");
    let inc = m["include"].as_array().unwrap();
    assert!(inc.len() <= 10, "{}", inc.len());
    let total: u64 = inc.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total.to_string(), d.get("build_count"));
    // Batches name their bucket (they no longer list images: issue 15); bake expands one from
    // the config alone into exactly the images decide meant.
    let mut baked = 0;
    for b in inc {
        assert!(b.get("images").is_none(), "{b}");
        let o = ws.run(&[
            "bake",
            "--batch",
            b["batch"].as_str().unwrap(),
            "--select",
            b["select"].as_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let targets = v["group"]["default"]["targets"].as_array().unwrap();
        assert_eq!(targets.len() as u64, b["count"].as_u64().unwrap(), "{b}");
        for t in targets {
            let t = t.as_str().unwrap();
            let name = t.replacen('_', "/", 1);
            assert!(plan[&name].0, "{t} is baked but decide reuses it");
            baked += 1;
        }
    }
    assert_eq!(baked.to_string(), d.get("build_count"));
    // One HEAD per tag decides the same, and fills in digests.
    let h = decide(&ws, &["--max-jobs", "10", "--probe", "head"], &[]);
    assert_eq!(h.code, Some(0), "{}", h.stderr);
    assert_eq!(h.plan(), d.plan());
    assert!(h
        .json("plan")
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["exists"] == true)
        .all(|e| e["digest"].as_str().unwrap().starts_with("sha256:")));
    let o = decide(&ws, &["--probe", "sideways"], &[]);
    assert_eq!(o.code, Some(2));
    // Bad max-jobs is a usage error.
    let d = decide(&ws, &["--max-jobs", "300"], &[]);
    assert_eq!(d.code, Some(2));
    assert!(d.out.is_empty());
}

#[test]
fn hostile_names_cannot_inject_outputs() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = devbox_at(&reg.host());
    let p = ws.path().join("skip-action.yml");
    let s = std::fs::read_to_string(&p).unwrap().replace(
        r#"OPENCODE_VERSION: "1.14.44""#,
        r#"OPENCODE_VERSION: "1.14.44\nneed_build<<EOF\nfalse\nEOF\n::set-output name=x::y""#,
    );
    std::fs::write(&p, s).unwrap();
    let d = decide(&ws, &[], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    // Exactly the documented outputs, need_build still true.
    assert_eq!(d.get("need_build"), "true");
    let names: Vec<&String> = d.out.keys().collect();
    assert_eq!(
        names,
        [
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
            "variants_need_build"
        ]
    );
    assert!(d
        .get("variants_matrix")
        .contains(r"1.14.44\nneed_build<<EOF"));
}

#[test]
fn upstream_digest_moves_the_hash_when_the_outside_image_changes() {
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let p = reg.pusher();
    rt().block_on(async {
        p.push_image("library/alpine", Some("3"), &ImageSpec::oci())
            .await
            .unwrap();
    });
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!("version: 1\nrepository: {host}/acme/app\nimages:\n  app:\n    upstream: digest\n    tag: app-{{hash}}\n  pinned:\n    tag: pinned-{{hash}}\n"),
    );
    ws.write(
        "Dockerfile",
        &format!("FROM {host}/library/alpine:3\nRUN true\n"),
    );
    let first = ws.hash_json();
    let img = &first["images"][0];
    assert_eq!(
        img["outside_images"][0]["reference"],
        format!("{host}/library/alpine:3")
    );
    assert!(img["outside_images"][0]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let d = decide(&ws, &[], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert!(d.plan()["app"].0);
    // Same tag, new content upstream: only the `upstream: digest` image gets a new hash.
    rt().block_on(async {
        p.push_image("library/alpine", Some("3"), &ImageSpec::oci())
            .await
            .unwrap();
    });
    let second = ws.hashes();
    let first = hashes_of(&first);
    assert_ne!(first["app"], second["app"]);
    assert_eq!(first["pinned"], second["pinned"]);
    // An upstream image that does not exist is an error, not a guess.
    ws.write("Dockerfile", &format!("FROM {host}/library/nope:1\n"));
    let o = ws.run(&["hash"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

#[test]
fn an_unreachable_upstream_follows_on_registry_error_for_its_images_only() {
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!(
            "version: 1\nrepository: {host}/acme/app\nimages:\n  base:\n    dockerfile: Dockerfile.base\n    upstream: digest\n  child:\n    from: base\n    dockerfile: Dockerfile.child\n  other:\n    dockerfile: Dockerfile.other\n"
        ),
    );
    // Port 1 on loopback refuses every connection: the upstream digest cannot be resolved.
    ws.write("Dockerfile.base", "FROM 127.0.0.1:1/library/alpine:3\n");
    ws.write(
        "Dockerfile.child",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n",
    );
    ws.write("Dockerfile.other", "FROM alpine:3\nRUN true\n");
    // `hash` prints every image it can, marks the rest, and fails naming them.
    let h = ws.run(&["hash", "--json"]);
    assert_eq!(h.status.code(), Some(1), "{}", stderr(&h));
    assert!(
        stderr(&h).contains("127.0.0.1:1/library/alpine:3"),
        "{}",
        stderr(&h)
    );
    let v: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    let by_name = |n: &str| {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == n)
            .unwrap()
            .clone()
    };
    assert!(by_name("base")["unresolved_upstream"].is_string());
    assert!(by_name("child")["unresolved_upstream"]
        .as_str()
        .unwrap()
        .contains("parent base"));
    assert!(by_name("other")["unresolved_upstream"].is_null());
    // `other` exists in the registry: it is reused, while base and child are built (default
    // on-registry-error: build).
    put_tags(
        &host,
        "acme/app",
        &[by_name("other")["tag"].as_str().unwrap().to_string()],
    );
    let d = decide(&ws, &[], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let plan = d.plan();
    assert!(
        plan["base"].0 && plan["base"].1.contains("127.0.0.1:1"),
        "{plan:?}"
    );
    assert!(plan["child"].0, "{plan:?}");
    assert!(!plan["other"].0, "{plan:?}");
    // With on-registry-error: fail, decide stops and names the image.
    let d = decide(&ws, &["--on-registry-error", "fail"], &[]);
    assert_ne!(d.code, Some(0));
    assert!(d.stderr.contains("base"), "{}", d.stderr);
}

/// `SKIP_ACTION_MAX_CONNECTIONS` (requests in flight per registry, for benchmarks and slow
/// remote registries): a bad value is refused with the fix and nothing written; one connection
/// (every request, and every manifest body, waiting for the one before) gives the default's
/// answer.
#[test]
fn max_connections_is_checked_and_one_connection_gives_the_same_answer() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = devbox_at(&reg.host());
    let tags = content_tags(&ws);
    publish(&reg, &tags.values().map(String::as_str).collect::<Vec<_>>());
    for bad in ["0", "lots", "257", "-1"] {
        let d = decide(&ws, &[], &[("SKIP_ACTION_MAX_CONNECTIONS", bad)]);
        assert_eq!(d.code, Some(2), "{bad:?}: {}", d.stderr);
        assert!(
            d.stderr.contains("SKIP_ACTION_MAX_CONNECTIONS") && d.stderr.contains("1 to 256"),
            "{}",
            d.stderr
        );
        assert!(d.out.is_empty(), "outputs written on refusal: {:?}", d.out);
    }
    let default = decide(&ws, &[], &[]);
    assert_eq!(default.code, Some(0), "{}", default.stderr);
    // Everything present: every image with a parent is read for the base check.
    assert_eq!(default.get("build_count"), "0", "{}", default.stderr);
    for n in ["1", "64", ""] {
        let d = decide(&ws, &[], &[("SKIP_ACTION_MAX_CONNECTIONS", n)]);
        assert_eq!(d.code, Some(0), "{n}: {}", d.stderr);
        assert_eq!(d.out, default.out, "{n}");
    }
}
