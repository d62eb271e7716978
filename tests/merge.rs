//! Native per-platform builds (`runners:`) end to end: the real binary's `decide`, `merge` and
//! `promote` against a real `docker-registry` on 127.0.0.1.
//!
//! Platform jobs are simulated by pushing synthetic single-platform images (skip-testkit's
//! pusher, which shares no code with the client under test) at the per-platform tags decide's
//! matrix names, as `docker buildx build --platform X --push` would; "with provenance" pushes an
//! index of the image and its attestation manifest, as buildx does by default.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::registry::{content_tags, rt, Run};
use common::*;
use serde_json::{json, Value};
use skip_testkit::{FaultProxy, ImageSpec, PushedImage, Pusher, TestRegistry};

const PATH: &str = "acme/app";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// base (level 0) and app FROM base (level 1), both for amd64 and arm64; app overrides the
/// arm64 runner.
fn workspace(host: &str) -> Ws {
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!(
            "version: 1\nrepository: {host}/{PATH}\nplatforms: [linux/amd64, linux/arm64]\nrunners:\n  linux/amd64: ubuntu-24.04\n  linux/arm64: ubuntu-24.04-arm\nimages:\n  base:\n    dockerfile: Dockerfile.base\n    tag: base-{{hash}}\n    args: {{ DEBIAN: bookworm }}\n    promote: [base-latest]\n  app:\n    from: base\n    dockerfile: Dockerfile.app\n    tag: app-{{hash}}\n    runners: {{ linux/arm64: arm-big }}\n"
        ),
    );
    ws.write(
        "Dockerfile.base",
        "ARG DEBIAN\nFROM debian:${DEBIAN}-slim\nCOPY rootfs/ /\n",
    );
    ws.write(
        "Dockerfile.app",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo app\n",
    );
    ws.write("rootfs/etc/motd", "hello\n");
    ws
}

/// Run a command with fresh `$GITHUB_OUTPUT` and summary files, promote not waiting on 404s.
fn run(ws: &Ws, args: &[&str]) -> Run {
    common::registry::run(ws, args, &[("INPUT_WAIT", "0")])
}

fn decide(ws: &Ws, extra: &[&str]) -> Run {
    let mut a = vec!["decide"];
    a.extend_from_slice(extra);
    let r = run(ws, &a);
    assert!(r.ok(), "decide failed: {}", r.log());
    r
}

/// `decide` as [`decide`] with no flags (one HEAD per tag here: fewer than 16 images), and again
/// with `--probe list`, where one `tags/list` answers the content tags and the per-platform tags
/// alike: the same builds, platforms, reasons and merges either way. Returns the first.
fn decide_both(ws: &Ws) -> Run {
    let head = decide(ws, &[]);
    let list = decide(ws, &["--probe", "list"]);
    for k in ["matrix", "merge_levels", "need_build", "build_count"] {
        assert_eq!(
            head.outputs.get(k),
            list.outputs.get(k),
            "{k}: HEAD {}\nlist {}",
            head.log(),
            list.log()
        );
    }
    // The plan without the digests a HEAD gives and a tag list does not.
    let plan = |r: &Run| {
        let mut p = r.json("plan");
        for e in p.as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("digest");
        }
        p
    };
    assert_eq!(plan(&head), plan(&list));
    head
}

/// The entries of decide's `matrix` as (name, platform) pairs.
fn entries(r: &Run) -> BTreeSet<(String, String)> {
    r.json("matrix")["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["platform"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// What a platform job pushes without provenance: one image at its per-platform tag.
async fn push_platform(
    p: &Pusher,
    tag: &str,
    arch: &str,
    parent: Option<&PushedImage>,
) -> PushedImage {
    let mut spec = ImageSpec::oci().platform("linux", arch).layers(2);
    if let Some(parent) = parent {
        spec = spec.from_parent(parent);
    }
    p.push_image(PATH, Some(&format!("{tag}-linux-{arch}")), &spec)
        .await
        .unwrap()
}

/// What a platform job pushes with buildx's default provenance: an index of the image and its
/// attestation manifest (platform unknown/unknown, annotated with the image's digest).
async fn push_platform_attested(p: &Pusher, tag: &str, arch: &str) -> (PushedImage, PushedImage) {
    let image = p
        .push_image(PATH, None, &ImageSpec::oci().platform("linux", arch))
        .await
        .unwrap();
    let att = p
        .push_image(
            PATH,
            None,
            &ImageSpec::oci().platform("unknown", "unknown").layers(1),
        )
        .await
        .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": image.media_type, "digest": image.digest, "size": image.manifest.len(),
             "platform": {"architecture": arch, "os": "linux"}},
            {"mediaType": att.media_type, "digest": att.digest, "size": att.manifest.len(),
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.digest": image.digest,
                             "vnd.docker.reference.type": "attestation-manifest"}},
        ],
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    p.put_manifest(PATH, &format!("{tag}-linux-{arch}"), &bytes, OCI_INDEX)
        .await
        .unwrap();
    (image, att)
}

/// A runtime, a fresh registry, the workspace pointed at it, its content tags and a pusher.
fn start() -> (
    tokio::runtime::Runtime,
    TestRegistry,
    Ws,
    BTreeMap<String, String>,
    Pusher,
) {
    let reg = TestRegistry::start_open().unwrap();
    let ws = workspace(&reg.host());
    let tags = content_tags(&ws);
    let p = reg.pusher();
    (rt(), reg, ws, tags, p)
}

/// Every platform job of a clean run: base's amd64 and arm64, then app's, each on base's image
/// of its platform (base amd64, base arm64, app amd64, app arm64).
async fn push_every_platform(p: &Pusher, tags: &BTreeMap<String, String>) -> Vec<PushedImage> {
    let mut pushed: Vec<PushedImage> = Vec::new();
    for (name, parent) in [("base", None), ("app", Some(0))] {
        for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
            let parent = parent.map(|j: usize| pushed[j * 2 + i].clone());
            pushed.push(push_platform(p, &tags[name], arch, parent.as_ref()).await);
        }
    }
    pushed
}

/// The content tag's index: (media type, child digests in order).
async fn index_at(p: &Pusher, tag: &str) -> Option<(String, Vec<Value>)> {
    let (bytes, mt, _) = p.get_manifest(PATH, tag).await.unwrap()?;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    Some((mt, v["manifests"].as_array().cloned().unwrap_or_default()))
}

fn digests(children: &[Value]) -> Vec<String> {
    children
        .iter()
        .map(|c| c["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn fan_out_entries_carry_platform_runner_and_per_platform_tags() {
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host);
    let tags = content_tags(&ws);
    let r = decide(&ws, &[]);
    let m = r.json("matrix");
    let inc = m["include"].as_array().unwrap();
    assert_eq!(inc.len(), 4, "{m}");
    for e in inc {
        let name = e["name"].as_str().unwrap();
        let platform = e["platform"].as_str().unwrap();
        let arch = platform.rsplit('/').next().unwrap();
        let want_runner = match (name, arch) {
            (_, "amd64") => "ubuntu-24.04",
            ("base", "arm64") => "ubuntu-24.04-arm",
            ("app", "arm64") => "arm-big",
            other => panic!("unexpected entry {other:?}"),
        };
        assert_eq!(e["runner"], want_runner, "{e}");
        // The job pushes its per-platform tag, never the content tag.
        let content = format!("{host}/{PATH}:{}", tags[name]);
        assert_eq!(e["tags"], format!("{content}-linux-{arch}"), "{e}");
        assert_eq!(e["image"], content);
        assert_eq!(e["platforms"], platform);
        if name == "app" {
            // The parent's content tag: after the base level's merge it is an index the arm64
            // job pulls its own platform from.
            let base = format!("BASE_IMAGE={host}/{PATH}:{}", tags["base"]);
            assert_eq!(e["build_args"], base, "{e}");
        }
    }
    // The base job gets its build from decide: one entry per platform, args included.
    let bm = r.json("base_matrix");
    assert_eq!(bm["include"].as_array().unwrap().len(), 2, "{bm}");
    assert_eq!(r.outputs["base_build_args"], "DEBIAN=bookworm");
    assert_eq!(r.outputs["base_platforms"], "linux/amd64,linux/arm64");
    assert_eq!(r.outputs["base_dockerfile"], "Dockerfile.base");
    assert_eq!(r.outputs["base_context"], ".");
    // merge, level by level.
    assert_eq!(r.json("merge_levels"), json!(["base", "app"]));
    assert_eq!(r.outputs["merge_needed"], "true");
    assert!(
        r.summary.contains("build linux/amd64, linux/arm64"),
        "{}",
        r.summary
    );

    // Batches (past max-jobs) never mix platforms or runners.
    let r = decide(&ws, &["--max-jobs", "3"]);
    let m = r.json("matrix");
    let inc = m["include"].as_array().unwrap();
    assert_eq!(inc.len(), 3, "{m}");
    let mut seen = BTreeSet::new();
    for b in inc {
        let p = b["platform"].as_str().unwrap();
        let runner = b["runner"].as_str().unwrap();
        assert!(
            seen.insert((p, runner)),
            "one batch per (platform, runner): {m}"
        );
        // The entry names its batch (#15); the job expands it from the config, for its own
        // platform only.
        assert!(b.get("images").is_none(), "{b}");
        let id = b["batch"].as_str().unwrap();
        assert!(id.contains(&p.replace('/', "_")), "{b}");
        let x = ws.run(&[
            "bake",
            "--batch",
            id,
            "--select",
            b["select"].as_str().unwrap(),
        ]);
        assert!(x.status.success(), "{}", stderr(&x));
        let bake: Value = serde_json::from_slice(&x.stdout).unwrap();
        let targets = bake["target"].as_object().unwrap();
        assert_eq!(targets.len() as u64, b["count"].as_u64().unwrap(), "{bake}");
        for (name, t) in targets {
            let e = r.json("plan");
            assert!(
                e.as_array().unwrap().iter().any(|x| x["name"] == *name),
                "{name}"
            );
            assert_eq!(t["platforms"], json!([p]), "{bake}");
        }
    }
    // A batch job bakes its images for its one platform, pushing the per-platform tags.
    let b = ws.run(&["bake", "--images", "base,app", "--platform", "linux/arm64"]);
    assert!(b.status.success(), "{}", stderr(&b));
    let bake: Value = serde_json::from_slice(&b.stdout).unwrap();
    for name in ["base", "app"] {
        let t = &bake["target"][name];
        assert_eq!(t["platforms"], json!(["linux/arm64"]), "{bake}");
        assert_eq!(
            t["tags"],
            json!([format!("{host}/{PATH}:{}-linux-arm64", tags[name])])
        );
    }
    let b = ws.run(&["bake", "--images", "base", "--platform", "linux/s390x"]);
    assert_eq!(b.status.code(), Some(2), "{}", stderr(&b));
    // Fewer jobs than (platform, runner) pairs cannot be honoured: refused, with the fix.
    let r = run(&ws, &["decide", "--max-jobs", "2"]);
    assert_eq!(r.out.status.code(), Some(2), "{}", r.log());
    assert!(stderr(&r.out).contains("at least 3"), "{}", r.log());
    assert!(r.outputs.is_empty(), "nothing written on refusal");
}

#[test]
fn partial_image_is_refused_then_completed_and_reused() {
    let (rt, _reg, ws, tags, p) = start();

    // The arm64 job of base failed: only amd64 was pushed.
    let base_amd = rt.block_on(push_platform(&p, &tags["base"], "amd64", None));
    let r = run(&ws, &["merge", "--images", "base"]);
    assert_eq!(r.out.status.code(), Some(1), "{}", r.log());
    let err = stderr(&r.out);
    assert!(
        err.contains("base") && err.contains("linux/arm64") && err.contains("not written"),
        "{err}"
    );
    assert!(
        rt.block_on(index_at(&p, &tags["base"])).is_none(),
        "nothing may be written"
    );
    assert_eq!(r.json("merged")[0]["status"], "missing");

    // decide asks only for base's arm64 (and all of app, which does not exist yet).
    let r = decide_both(&ws);
    assert_eq!(
        entries(&r),
        pairs(&[
            ("base", "linux/arm64"),
            ("app", "linux/amd64"),
            ("app", "linux/arm64")
        ]),
        "{}",
        r.log()
    );
    let plan = r.json("plan");
    assert!(
        plan[0]["reason"]
            .as_str()
            .unwrap()
            .contains("linux/amd64 already pushed per platform"),
        "{plan}"
    );

    // The arm64 job re-runs; the base level merges.
    let base_arm = rt.block_on(push_platform(&p, &tags["base"], "arm64", None));
    let r = run(&ws, &["merge", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());
    let (mt, children) = rt.block_on(index_at(&p, &tags["base"])).unwrap();
    assert_eq!(mt, OCI_INDEX);
    assert_eq!(
        digests(&children),
        [base_amd.digest.clone(), base_arm.digest.clone()]
    );
    assert_eq!(children[1]["platform"]["architecture"], "arm64");
    assert_eq!(children[0]["size"], base_amd.manifest.len());

    // app level: decide (now base is complete) asks for app only, both platforms.
    let r = decide_both(&ws);
    assert_eq!(
        entries(&r),
        pairs(&[("app", "linux/amd64"), ("app", "linux/arm64")])
    );
    assert_eq!(r.json("merge_levels"), json!(["", "app"]));
    rt.block_on(push_platform(&p, &tags["app"], "amd64", Some(&base_amd)));
    rt.block_on(push_platform(&p, &tags["app"], "arm64", Some(&base_arm)));
    let r = run(&ws, &["merge", "--images", "app"]);
    assert!(r.ok(), "{}", r.log());

    // Everything reused now.
    let r = decide_both(&ws);
    assert_eq!(r.outputs["need_build"], "", "{}", r.log());
    assert_eq!(r.outputs["merge_needed"], "");
    assert_eq!(r.json("matrix")["include"], json!([]));
    assert_eq!(r.outputs["build_count"], "0");
}

#[test]
fn merging_twice_writes_once_and_default_merge_covers_missing_content_tags() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    // Through a recording proxy, to count the writes.
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let host = proxy.host();
    let ws = workspace(&host);
    let tags = content_tags(&ws);
    let p = reg.pusher();
    let pushed = rt.block_on(push_every_platform(&p, &tags));
    let puts = |proxy: &FaultProxy| {
        proxy
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .count()
    };
    let before = puts(&proxy);
    // No --images: every image with runners whose content tag is missing.
    let r = run(&ws, &["merge"]);
    assert!(r.ok(), "{}", r.log());
    assert_eq!(puts(&proxy) - before, 2, "one PUT per content tag");
    let merged = r.json("merged");
    assert_eq!(merged[0]["status"], "written", "{merged}");
    assert_eq!(merged[1]["status"], "written", "{merged}");
    for (k, name) in ["base", "app"].into_iter().enumerate() {
        let (_, children) = rt.block_on(index_at(&p, &tags[name])).unwrap();
        assert_eq!(
            digests(&children),
            [
                pushed[2 * k].digest.clone(),
                pushed[2 * k + 1].digest.clone()
            ]
        );
    }
    // Again, named or not: the index is already there, nothing is written.
    let before = puts(&proxy);
    for args in [&["merge"][..], &["merge", "--images", "base,app"]] {
        let r = run(&ws, args);
        assert!(r.ok(), "{}", r.log());
        assert_eq!(r.json("merged")[0]["status"], "already_there");
        assert_eq!(r.json("merged")[1]["status"], "already_there");
    }
    assert_eq!(puts(&proxy), before, "a second merge writes nothing");
    // A dry run writes nothing either.
    let r = run(&ws, &["merge", "--dry-run", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());
}

/// Past their budget (32 KiB of names, about 3,000 images), `merge_images` and `merge_levels[N]`
/// are selections (`level0-1of1:<key>-<mask>`) instead of names: merge expands one from the same
/// config to exactly the images it names, merges those as if they were listed, and refuses a
/// selection of another config or a malformed one (exit 2) before writing anything.
#[test]
fn a_merge_selection_merges_exactly_its_images_and_refuses_another_config() {
    use skip_action::outputs::merge_selection;
    let (rt, _reg, ws, tags, p) = start();
    rt.block_on(push_every_platform(&p, &tags));
    let text = std::fs::read_to_string(ws.path().join("skip-action.yml")).unwrap();
    let config =
        skip_action::config::Config::parse(&text, std::path::Path::new("skip-action.yml")).unwrap();
    // Level 0's selection, both images picked: base only (app is level 1).
    let level0 = merge_selection(&config, &[true, true], Some(0));
    assert!(level0.starts_with("level0-1of1:"), "{level0}");
    // Nothing picked on a level: empty, as the workflow's guard expects.
    assert_eq!(merge_selection(&config, &[true, false], Some(1)), "");

    // Another config's selection (its key differs) and a malformed one: refused, nothing written.
    let (id, select) = level0.split_once(':').unwrap();
    let other = format!("{id}:00000000-{}", select.split_once('-').unwrap().1);
    for bad in [other.as_str(), "level0-1of1:zz", "level7-1of1:00000000-8"] {
        let r = run(&ws, &["merge", "--images", bad]);
        assert_eq!(r.out.status.code(), Some(2), "{bad}: {}", r.log());
        assert!(stderr(&r.out).contains("merge --images"), "{}", r.log());
    }
    assert!(rt.block_on(index_at(&p, &tags["base"])).is_none());

    let r = run(&ws, &["merge", "--images", &level0]);
    assert!(r.ok(), "{}", r.log());
    let merged = r.json("merged");
    assert_eq!(merged.as_array().unwrap().len(), 1, "{merged}");
    assert_eq!(merged[0]["name"], "base");
    assert_eq!(merged[0]["status"], "written");
    assert!(rt.block_on(index_at(&p, &tags["app"])).is_none());

    // Every level's selection (`merge_images`): both, compared as listed images are.
    let all = merge_selection(&config, &[true, true], None);
    assert!(all.starts_with("all-1of1:"), "{all}");
    let r = run(&ws, &["merge", "--images", &all]);
    assert!(r.ok(), "{}", r.log());
    let merged = r.json("merged");
    assert_eq!(merged[0]["status"], "already_there", "{merged}");
    assert_eq!(merged[1]["name"], "app");
    assert_eq!(merged[1]["status"], "written", "{merged}");
}

#[test]
fn attested_platform_images_are_merged_with_their_attestations_and_promoted() {
    let (rt, reg, ws, tags, p) = start();
    let host = reg.host();
    let (amd, amd_att) = rt.block_on(push_platform_attested(&p, &tags["base"], "amd64"));
    let (arm, arm_att) = rt.block_on(push_platform_attested(&p, &tags["base"], "arm64"));
    let r = run(&ws, &["merge", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());
    let (_, children) = rt.block_on(index_at(&p, &tags["base"])).unwrap();
    assert_eq!(
        digests(&children),
        [
            amd.digest.clone(),
            arm.digest.clone(),
            amd_att.digest.clone(),
            arm_att.digest.clone()
        ]
    );
    assert_eq!(
        children[3]["annotations"]["vnd.docker.reference.digest"],
        arm.digest.as_str()
    );
    assert_eq!(children[2]["platform"]["os"], "unknown");

    // app built FROM base per platform, merged; then promote moves base-latest to the index.
    rt.block_on(async {
        let base_amd = p.pull_image(PATH, &amd.digest).await.unwrap();
        let base_arm = p.pull_image(PATH, &arm.digest).await.unwrap();
        push_platform(&p, &tags["app"], "amd64", Some(&base_amd)).await;
        push_platform(&p, &tags["app"], "arm64", Some(&base_arm)).await;
    });
    let r = run(&ws, &["merge", "--images", "app"]);
    assert!(r.ok(), "{}", r.log());
    let r = run(&ws, &["promote", "--wait", "0"]);
    assert!(r.ok(), "promote: {}", r.log());
    let (_, _, want) = rt
        .block_on(p.get_manifest(PATH, &tags["base"]))
        .unwrap()
        .unwrap();
    assert_eq!(
        r.json("promoted")[format!("{host}/{PATH}:base-latest")],
        want.as_str(),
        "{}",
        r.log()
    );
}

#[test]
fn a_content_tag_lacking_a_platform_is_repaired_for_that_platform() {
    let (rt, _reg, ws, tags, p) = start();
    // A broken push: the base's content tag holds amd64 only.
    let amd = rt.block_on(async {
        let amd = p
            .push_image(PATH, None, &ImageSpec::oci().platform("linux", "amd64"))
            .await
            .unwrap();
        p.push_index(
            PATH,
            Some(&tags["base"]),
            skip_testkit::Format::Oci,
            std::slice::from_ref(&amd),
        )
        .await
        .unwrap();
        amd
    });
    let r = decide_both(&ws);
    assert!(
        entries(&r).contains(&("base".into(), "linux/arm64".into()))
            && !entries(&r).contains(&("base".into(), "linux/amd64".into())),
        "{:?}",
        entries(&r)
    );
    assert!(
        r.summary.contains("lacks linux/arm64") && r.summary.contains("repaired"),
        "{}",
        r.summary
    );
    let arm = rt.block_on(push_platform(&p, &tags["base"], "arm64", None));
    let r = run(&ws, &["merge", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());
    let (_, children) = rt.block_on(index_at(&p, &tags["base"])).unwrap();
    assert_eq!(digests(&children), [amd.digest.clone(), arm.digest.clone()]);
}

#[test]
fn a_platform_image_not_on_the_current_parent_is_built_again() {
    let (rt, _reg, ws, tags, p) = start();
    let base_amd = rt.block_on(push_platform(&p, &tags["base"], "amd64", None));
    let base_arm = rt.block_on(push_platform(&p, &tags["base"], "arm64", None));
    let r = run(&ws, &["merge", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());
    // app's arm64 sits on the current base; its amd64 was built on another base push.
    rt.block_on(push_platform(&p, &tags["app"], "arm64", Some(&base_arm)));
    rt.block_on(push_platform(&p, &tags["app"], "amd64", None));
    let r = decide_both(&ws);
    assert_eq!(entries(&r), pairs(&[("app", "linux/amd64")]), "{}", r.log());
    let reason = r.json("plan")[1]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("not built on the current base")
            && reason.contains("linux/arm64 already pushed per platform"),
        "{reason}"
    );
    // Rebuilt on the current base: merged, then everything is reused.
    rt.block_on(push_platform(&p, &tags["app"], "amd64", Some(&base_amd)));
    let r = run(&ws, &["merge", "--images", "app"]);
    assert!(r.ok(), "{}", r.log());
    let r = decide_both(&ws);
    assert_eq!(r.outputs["need_build"], "", "{}", r.log());
}

#[test]
fn runners_config_refusals_name_the_key_and_the_fix() {
    let cases: [(&str, &str); 4] = [
        (
            "platforms: [linux/amd64, linux/arm64]\nrunners: {linux/amd64: ubuntu-24.04}\nimages:\n  base: {}\n",
            "no runner is given for linux/arm64",
        ),
        (
            "runners: {linux/amd64: ubuntu-24.04}\nimages:\n  base: {}\n",
            "lists no `platforms:`",
        ),
        (
            "platforms: [linux/amd64]\nimages:\n  base:\n    runners: {linux/arm64: arm}\n",
            "linux/arm64 is not one of the image's platforms",
        ),
        (
            "platforms: [linux/amd64]\nrunners: {linux/amd64: \"\"}\nimages:\n  base: {}\n",
            "is not a runner label",
        ),
    ];
    for (cfg, want) in cases {
        let ws = Ws::new();
        ws.write(
            "skip-action.yml",
            &format!("version: 1\nrepository: ghcr.io/acme/x\n{cfg}"),
        );
        ws.write("Dockerfile", "FROM alpine:3.20\n");
        let o = ws.run(&["hash"]);
        assert_eq!(o.status.code(), Some(2), "{cfg}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want) && stderr(&o).contains("skip-action.yml"),
            "{cfg}: {}",
            stderr(&o)
        );
    }
    // Spellings of one platform match (`linux/arm64/v8` is `linux/arm64`).
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        "version: 1\nrepository: ghcr.io/acme/x\nplatforms: [linux/arm64/v8]\nrunners: {linux/arm64: arm}\nimages:\n  base: {}\n",
    );
    ws.write("Dockerfile", "FROM alpine:3.20\n");
    let o = ws.run(&["hash"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn decide_reads_each_manifest_once_and_answers_platform_tags_from_the_tag_list() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let ws = workspace(&proxy.host());
    let tags = content_tags(&ws);
    let p = reg.pusher();
    // base merged; app pushed per platform on it, not merged yet.
    let base_amd = rt.block_on(push_platform(&p, &tags["base"], "amd64", None));
    let base_arm = rt.block_on(push_platform(&p, &tags["base"], "arm64", None));
    let r = run(&ws, &["merge", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());
    rt.block_on(push_platform(&p, &tags["app"], "amd64", Some(&base_amd)));
    rt.block_on(push_platform(&p, &tags["app"], "arm64", Some(&base_arm)));
    let before = proxy.requests().len();
    let r = decide(&ws, &["--probe", "list"]);
    // Both of app's platforms reused from their per-platform tags (each checked on base's
    // current image of its platform), app listed for merge.
    assert_eq!(r.outputs["need_build"], "", "{}", r.log());
    assert_eq!(r.json("merge_levels"), json!(["", "app"]), "{}", r.log());
    let seen: Vec<_> = proxy.requests()[before..].to_vec();
    assert!(
        seen.iter().all(|q| q.method != "HEAD"),
        "the tag list answers every tag: {:?}",
        seen.iter()
            .map(|q| (&q.method, &q.target))
            .collect::<Vec<_>>()
    );
    let mut gets: BTreeMap<&str, usize> = BTreeMap::new();
    for q in seen.iter().filter(|q| q.method == "GET") {
        *gets.entry(q.target.as_str()).or_default() += 1;
    }
    assert!(
        gets.values().all(|&n| n == 1),
        "each manifest read once: {gets:?}"
    );
    // base's index is read (for its platforms and as app's parent) once, app's per-platform
    // images and base's platform images once each.
    let base_index = format!("/v2/{PATH}/manifests/{}", tags["base"]);
    assert_eq!(gets.get(base_index.as_str()), Some(&1), "{gets:?}");
    for arch in ["amd64", "arm64"] {
        let t = format!("/v2/{PATH}/manifests/{}-linux-{arch}", tags["app"]);
        assert_eq!(gets.get(t.as_str()), Some(&1), "{gets:?}");
    }
    for d in [&base_amd.digest, &base_arm.digest] {
        let t = format!("/v2/{PATH}/manifests/{d}");
        assert_eq!(gets.get(t.as_str()), Some(&1), "{gets:?}");
    }
}

/// merge's annotation of a platform entry: the parent's platform manifest it was verified on.
const ON_BASE: &str = "io.github.skip-action.parent.base";

/// The GETs of `/manifests/<digest>` for these digests among `seen`.
fn digest_gets(seen: &[skip_testkit::SeenRequest], digests: &[&String]) -> Vec<String> {
    seen.iter()
        .filter(|q| q.method == "GET")
        .filter(|q| {
            digests
                .iter()
                .any(|d| q.target == format!("/v2/{PATH}/manifests/{d}"))
        })
        .map(|q| q.target.clone())
        .collect()
}

/// Rewrite the content tag `tag`'s index with `edit` applied to its entries.
async fn rewrite_index(p: &Pusher, tag: &str, edit: impl Fn(&mut Vec<Value>)) {
    let (bytes, _, _) = p.get_manifest(PATH, tag).await.unwrap().unwrap();
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    edit(v["manifests"].as_array_mut().unwrap());
    p.put_manifest(PATH, tag, &serde_json::to_vec(&v).unwrap(), OCI_INDEX)
        .await
        .unwrap();
}

#[test]
fn merge_records_the_verified_parent_and_decide_reuses_from_the_index_alone() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let ws = workspace(&proxy.host());
    let tags = content_tags(&ws);
    let p = reg.pusher();
    let pushed = rt.block_on(push_every_platform(&p, &tags));
    let r = run(&ws, &["merge", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());
    let r = run(&ws, &["merge", "--images", "app"]);
    assert!(r.ok(), "{}", r.log());

    // base has no parent: no annotation. app's entries name base's entry of their platform.
    let (_, base) = rt.block_on(index_at(&p, &tags["base"])).unwrap();
    assert!(
        base.iter().all(|c| c.get("annotations").is_none()),
        "{base:?}"
    );
    let (_, app) = rt.block_on(index_at(&p, &tags["app"])).unwrap();
    assert_eq!(
        digests(&app),
        [pushed[2].digest.clone(), pushed[3].digest.clone()]
    );
    assert_eq!(
        app[0]["annotations"][ON_BASE],
        pushed[0].digest.as_str(),
        "{app:?}"
    );
    assert_eq!(
        app[1]["annotations"][ON_BASE],
        pushed[1].digest.as_str(),
        "{app:?}"
    );

    // decide reuses both from the indexes alone: no platform manifest is read, of app or base.
    let platform_digests: Vec<&String> = pushed.iter().map(|i| &i.digest).collect();
    for probe in [&[][..], &["--probe", "list"][..]] {
        let before = proxy.requests().len();
        let r = decide(&ws, probe);
        assert_eq!(r.outputs["need_build"], "", "{}", r.log());
        assert_eq!(r.outputs["build_count"], "0", "{}", r.log());
        let seen = proxy.requests()[before..].to_vec();
        assert_eq!(
            digest_gets(&seen, &platform_digests),
            Vec::<String>::new(),
            "{probe:?}"
        );
    }

    // The same index without the annotations (as another tool writes it): the full read, the
    // same answer.
    rt.block_on(rewrite_index(&p, &tags["app"], |m| {
        for c in m.iter_mut() {
            c.as_object_mut().unwrap().remove("annotations");
        }
    }));
    let before = proxy.requests().len();
    let r = decide(&ws, &[]);
    assert_eq!(r.outputs["need_build"], "", "{}", r.log());
    let seen = proxy.requests()[before..].to_vec();
    assert_eq!(
        digest_gets(&seen, &platform_digests).len(),
        4,
        "every platform manifest read"
    );

    // An annotation naming another digest (an older base): the full read, the same answer.
    rt.block_on(rewrite_index(&p, &tags["app"], |m| {
        for c in m.iter_mut() {
            c["annotations"] = json!({ ON_BASE: "sha256:0000000000000000000000000000000000000000000000000000000000000000" });
        }
    }));
    let before = proxy.requests().len();
    let r = decide(&ws, &[]);
    assert_eq!(r.outputs["need_build"], "", "{}", r.log());
    let seen = proxy.requests()[before..].to_vec();
    assert_eq!(digest_gets(&seen, &platform_digests).len(), 4);

    // Merging again writes the verified annotations back.
    let r = run(&ws, &["merge", "--images", "app"]);
    assert!(r.ok(), "{}", r.log());
    let (_, app) = rt.block_on(index_at(&p, &tags["app"])).unwrap();
    assert_eq!(
        app[0]["annotations"][ON_BASE],
        pushed[0].digest.as_str(),
        "{app:?}"
    );

    // base pushed again (new digests) and merged: app's annotations name the old base, so
    // decide reads app's layers and rebuilds both platforms on the new base.
    let new_amd = rt.block_on(push_platform(&p, &tags["base"], "amd64", None));
    let new_arm = rt.block_on(push_platform(&p, &tags["base"], "arm64", None));
    assert_ne!(new_amd.digest, pushed[0].digest);
    let r = run(&ws, &["merge", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());
    assert_app_rebuilds_on_the_current_base(&ws);
    // Rebuilt and merged: annotated on the new base, reused again without platform reads.
    let app_amd = rt.block_on(push_platform(&p, &tags["app"], "amd64", Some(&new_amd)));
    let app_arm = rt.block_on(push_platform(&p, &tags["app"], "arm64", Some(&new_arm)));
    let r = run(&ws, &["merge", "--images", "app"]);
    assert!(r.ok(), "{}", r.log());
    let (_, app) = rt.block_on(index_at(&p, &tags["app"])).unwrap();
    assert_eq!(
        app[0]["annotations"][ON_BASE],
        new_amd.digest.as_str(),
        "{app:?}"
    );
    assert_eq!(
        app[1]["annotations"][ON_BASE],
        new_arm.digest.as_str(),
        "{app:?}"
    );
    let before = proxy.requests().len();
    let r = decide(&ws, &[]);
    assert_eq!(r.outputs["need_build"], "", "{}", r.log());
    let seen = proxy.requests()[before..].to_vec();
    let now: Vec<&String> = [&new_amd, &new_arm, &app_amd, &app_arm]
        .iter()
        .map(|i| &i.digest)
        .collect();
    assert_eq!(digest_gets(&seen, &now), Vec::<String>::new());
}

#[test]
fn merge_verifies_every_annotation_it_writes_and_a_forged_index_is_the_trust_boundary() {
    let (rt, _reg, ws, tags, p) = start();
    let base_amd = rt.block_on(push_platform(&p, &tags["base"], "amd64", None));
    let base_arm = rt.block_on(push_platform(&p, &tags["base"], "arm64", None));
    let r = run(&ws, &["merge", "--images", "base"]);
    assert!(r.ok(), "{}", r.log());

    // A platform job (a user's own tooling) pushes an index whose entry claims base's current
    // amd64 image, on an image that is not FROM base: merge drops the claim, it does not copy it.
    let stray = rt.block_on(push_platform(&p, "stray", "amd64", None));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": stray.media_type, "digest": stray.digest, "size": stray.manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": { ON_BASE: base_amd.digest },
        }],
    });
    rt.block_on(p.put_manifest(
        PATH,
        &format!("{}-linux-amd64", tags["app"]),
        &serde_json::to_vec(&index).unwrap(),
        OCI_INDEX,
    ))
    .unwrap();
    rt.block_on(push_platform(&p, &tags["app"], "arm64", Some(&base_arm)));
    let r = run(&ws, &["merge", "--images", "app"]);
    assert!(r.ok(), "{}", r.log());
    let (_, app) = rt.block_on(index_at(&p, &tags["app"])).unwrap();
    assert_eq!(app[0]["digest"], stray.digest.as_str());
    assert!(app[0].get("annotations").is_none(), "{app:?}");
    assert_eq!(
        app[1]["annotations"][ON_BASE],
        base_arm.digest.as_str(),
        "{app:?}"
    );
    // decide reads amd64's layers and rebuilds app (a content tag that is not reusable builds
    // every platform, as without annotations).
    assert_app_rebuilds_on_the_current_base(&ws);

    // The trust boundary: an index written at the content tag by someone else, claiming what
    // merge never verified, names the current parent digest; no check that skips the platform
    // manifest read can tell. Like a forged tag, it is out of scope (only skip-action's merge
    // writes these annotations); the README says so. Documented here as it behaves.
    rt.block_on(rewrite_index(&p, &tags["app"], |m| {
        m[0]["annotations"] = json!({ ON_BASE: base_amd.digest });
    }));
    let r = decide(&ws, &[]);
    assert_eq!(r.outputs["need_build"], "", "{}", r.log());
}

/// decide builds both of app's platforms, saying it is not built on the current base.
fn assert_app_rebuilds_on_the_current_base(ws: &Ws) {
    let r = decide(ws, &[]);
    assert_eq!(
        entries(&r),
        pairs(&[("app", "linux/amd64"), ("app", "linux/arm64")]),
        "{}",
        r.log()
    );
    let reason = r.json("plan")[1]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("not built on the current base"), "{reason}");
}
