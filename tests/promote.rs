//! `promote` end to end: the real binary against a real `docker-registry` on 127.0.0.1.
//!
//! Builds are simulated by pushing synthetic images (skip-testkit's pusher, which shares no code
//! with the client under test) at the content tags `hash --json` prints; a variant "built FROM the
//! base" is pushed with the base's layers first, as BuildKit would produce.

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::registry::{content_tags, rt, run, Run};
use common::*;
use skip_testkit::{
    FaultProxy, Format, ImageSpec, PushedImage, Pusher, TestRegistry, TokenOptions,
};

const PATH: &str = "acme/devbox";
const VARIANTS: [&str; 2] = ["devbox/omos", "devbox/pi"];

/// A workspace whose config puts every image in `host/acme/devbox`. `platforms` is YAML (e.g.
/// `[linux/amd64]`) or empty; `base_promote` the base's `promote:` list.
fn workspace(host: &str, platforms: &str, base_promote: &str) -> Ws {
    let ws = Ws::new();
    let platforms = if platforms.is_empty() {
        String::new()
    } else {
        format!("platforms: {platforms}\n")
    };
    ws.write(
        "skip-action.yml",
        &format!(
            "version: 1\nrepository: {host}/{PATH}\n{platforms}images:\n  base:\n    dockerfile: Dockerfile.base\n    tag: base-{{hash}}\n    promote: {base_promote}\n  devbox:\n    from: base\n    dockerfile: Dockerfile.variant\n    variants:\n      omos: {{ FLAVOR: omos }}\n      pi: {{ FLAVOR: pi }}\n    tag: \"{{variant}}-{{hash}}\"\n    promote: [\"latest-{{variant}}\", \"v{{version}}-{{variant}}\"]\n"
        ),
    );
    ws.write("Dockerfile.base", "FROM alpine:3.20\nCOPY rootfs/ /\n");
    ws.write(
        "Dockerfile.variant",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOR\nRUN echo $FLAVOR > /flavor\n",
    );
    ws.write("rootfs/etc/motd", "hello\n");
    ws
}

/// The base and both variants built FROM it, single-arch.
async fn push_family(p: &Pusher, tags: &BTreeMap<String, String>) -> Vec<PushedImage> {
    let base = p
        .push_image(PATH, Some(&tags["base"]), &ImageSpec::oci().layers(2))
        .await
        .unwrap();
    let mut out = vec![base.clone()];
    for v in VARIANTS {
        out.push(
            p.push_image(PATH, Some(&tags[v]), &ImageSpec::oci().from_parent(&base))
                .await
                .unwrap(),
        );
    }
    out
}

/// A promote run with fresh output files.
fn promote(ws: &Ws, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut a = vec!["promote"];
    a.extend_from_slice(args);
    run(ws, &a, env)
}

/// GET a manifest with exactly this `Accept`; `(digest of the body, body)` on 200.
async fn get_raw(
    host: &str,
    path: &str,
    reference: &str,
    accept: &str,
) -> Option<(String, Vec<u8>)> {
    let r = reqwest::Client::new()
        .get(format!("http://{host}/v2/{path}/manifests/{reference}"))
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    if r.status().as_u16() != 200 {
        return None;
    }
    let body = r.bytes().await.unwrap().to_vec();
    Some((skip_testkit::util::sha256_digest(&body), body))
}

const ALL_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

async fn digest_at(host: &str, path: &str, reference: &str) -> Option<String> {
    get_raw(host, path, reference, ALL_TYPES)
        .await
        .map(|(d, _)| d)
}

fn writes(reqs: &[skip_testkit::SeenRequest]) -> Vec<String> {
    reqs.iter()
        .filter(|r| matches!(r.method.as_str(), "PUT" | "POST" | "PATCH" | "DELETE"))
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

#[test]
fn single_arch_promote_then_second_run_writes_nothing() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    // Through a proxy that records every request, to prove the second run writes nothing.
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let host = proxy.host();
    let ws = workspace(&host, "", "[base-latest]");
    let tags = content_tags(&ws);
    let pushed = rt.block_on(push_family(&reg.pusher(), &tags));

    let run = promote(&ws, &["--wait", "0"], &[]);
    assert!(run.ok(), "{}", run.log());
    let promoted = run.json("promoted");
    let want: BTreeMap<String, String> = [
        ("base-latest", &pushed[0]),
        ("latest-omos", &pushed[1]),
        ("latest-pi", &pushed[2]),
    ]
    .iter()
    .map(|(t, p)| (format!("{host}/{PATH}:{t}"), p.digest.clone()))
    .collect();
    assert_eq!(
        promoted,
        serde_json::to_value(&want).unwrap(),
        "{}",
        run.log()
    );
    // Every alias is new: previous is null for each.
    let previous = run.json("previous");
    for k in want.keys() {
        assert_eq!(previous[k], serde_json::Value::Null, "{previous}");
    }
    assert_eq!(run.outputs["changed"], "true");
    // The registry agrees, byte for byte.
    for (alias, digest) in [("base-latest", 0), ("latest-omos", 1), ("latest-pi", 2)] {
        assert_eq!(
            rt.block_on(digest_at(&reg.host(), PATH, alias)).as_deref(),
            Some(pushed[digest].digest.as_str())
        );
    }
    // {version} aliases are skipped without a version, and said so.
    assert!(
        run.summary.contains("skipped `v{version}-{variant}`"),
        "{}",
        run.summary
    );
    assert!(stdout(&run.out).contains("## skip-action promote"));

    // Second run: every alias is in place; not a single write.
    let before = proxy.requests().len();
    let again = promote(&ws, &["--wait", "0"], &[]);
    assert!(again.ok(), "{}", again.log());
    let reqs = proxy.requests();
    assert_eq!(writes(&reqs[before..]), Vec::<String>::new());
    assert_eq!(again.outputs["changed"], "");
    assert_eq!(again.json("promoted"), serde_json::to_value(&want).unwrap());
    assert_eq!(again.json("previous"), serde_json::to_value(&want).unwrap());
    assert!(
        again.summary.contains("already in place"),
        "{}",
        again.summary
    );
}

#[test]
fn multi_arch_index_is_re_tagged_as_the_index() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host, "[linux/amd64, linux/arm64]", "[base-latest]");
    let tags = content_tags(&ws);
    let p = reg.pusher();
    // Docker manifest lists: the registry would serve one platform to a client that does not
    // accept the list type.
    let base = rt
        .block_on(p.push_multiarch(PATH, &tags["base"], Format::Docker, None))
        .unwrap();
    let mut idx = vec![base.clone()];
    for v in VARIANTS {
        idx.push(
            rt.block_on(p.push_multiarch(PATH, &tags[v], Format::Docker, Some(&base)))
                .unwrap(),
        );
    }
    let run = promote(&ws, &["--wait", "0"], &[]);
    assert!(run.ok(), "{}", run.log());
    for (alias, i) in [("base-latest", 0), ("latest-omos", 1), ("latest-pi", 2)] {
        let (digest, bytes) = rt.block_on(get_raw(&host, PATH, alias, ALL_TYPES)).unwrap();
        assert_eq!(digest, idx[i].digest);
        assert_eq!(bytes, idx[i].manifest, "exact bytes");
        // Without the list type the registry answers with one platform's manifest: a re-tag by
        // a client that forgot the index types would have lost the other platform.
        let (single, _) = rt
            .block_on(get_raw(
                &host,
                PATH,
                alias,
                "application/vnd.docker.distribution.manifest.v2+json",
            ))
            .unwrap();
        assert_ne!(single, idx[i].digest);
        assert!(idx[i].children.iter().any(|c| c.digest == single));
    }
    assert!(
        run.summary.contains("has every platform"),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains("built on the current base"),
        "{}",
        run.summary
    );
}

#[test]
fn a_missing_variant_blocks_every_alias() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host, "", "[base-latest]");
    let tags = content_tags(&ws);
    let p = reg.pusher();
    let base = rt
        .block_on(p.push_image(PATH, Some(&tags["base"]), &ImageSpec::oci()))
        .unwrap();
    rt.block_on(p.push_image(
        PATH,
        Some(&tags["devbox/omos"]),
        &ImageSpec::oci().from_parent(&base),
    ))
    .unwrap();
    let run = promote(&ws, &["--wait", "0"], &[]);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    let err = stderr(&run.out);
    assert!(
        err.contains("promotion blocked, no tag was changed"),
        "{err}"
    );
    assert!(err.contains("devbox/pi: missing"), "{err}");
    assert!(err.contains(&tags["devbox/pi"]), "{err}");
    for alias in ["base-latest", "latest-omos", "latest-pi"] {
        assert_eq!(
            rt.block_on(digest_at(&host, PATH, alias)),
            None,
            "{alias} moved"
        );
    }
    assert_eq!(run.json("promoted"), serde_json::json!({}));
    assert_eq!(run.outputs["changed"], "");
    assert!(run.summary.contains("**Blocked: no tag was changed.**"));
}

#[test]
fn a_content_tag_that_appears_late_is_waited_for() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let ws = workspace(&reg.host(), "", "[base-latest]");
    let tags = content_tags(&ws);
    let p = reg.pusher();
    let base = rt
        .block_on(p.push_image(PATH, Some(&tags["base"]), &ImageSpec::oci()))
        .unwrap();
    rt.block_on(p.push_image(
        PATH,
        Some(&tags["devbox/omos"]),
        &ImageSpec::oci().from_parent(&base),
    ))
    .unwrap();
    // The last variant shows up 1.5 s after promote started (eventual consistency).
    let late_tag = tags["devbox/pi"].clone();
    let late = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        rt.block_on(p.push_image(PATH, Some(&late_tag), &ImageSpec::oci().from_parent(&base)))
            .unwrap()
    });
    let run = promote(&ws, &["--wait", "10"], &[]);
    let pi = late.join().unwrap();
    // Success means the late tag was seen within the wait (past it, promote fails).
    assert!(run.ok(), "{}", run.log());
    assert_eq!(
        run.json("promoted")[format!("{}/{PATH}:latest-pi", reg.host())],
        pi.digest.as_str()
    );
}

#[test]
fn a_variant_built_on_an_old_base_blocks_and_nothing_moves() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host, "", "[base-latest]");
    let tags = content_tags(&ws);
    let p = reg.pusher();
    // Last week's base, already promoted; today's base at today's content tag.
    let old = rt
        .block_on(p.push_image(PATH, Some("base-latest"), &ImageSpec::oci().layers(2)))
        .unwrap();
    let base = rt
        .block_on(p.push_image(PATH, Some(&tags["base"]), &ImageSpec::oci().layers(2)))
        .unwrap();
    // omos was built on the old base (a stale build), pi on the current one.
    rt.block_on(p.push_image(
        PATH,
        Some(&tags["devbox/omos"]),
        &ImageSpec::oci().from_parent(&old),
    ))
    .unwrap();
    rt.block_on(p.push_image(
        PATH,
        Some(&tags["devbox/pi"]),
        &ImageSpec::oci().from_parent(&base),
    ))
    .unwrap();
    let run = promote(&ws, &["--wait", "0"], &[]);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    let err = stderr(&run.out);
    assert!(err.contains("devbox/omos:"), "{err}");
    assert!(err.contains("not built on the current base"), "{err}");
    assert!(!err.contains("devbox/pi:"), "{err}");
    // Nothing moved: base-latest still at the old base, the variants' aliases absent.
    assert_eq!(
        rt.block_on(digest_at(&host, PATH, "base-latest"))
            .as_deref(),
        Some(old.digest.as_str())
    );
    assert_eq!(rt.block_on(digest_at(&host, PATH, "latest-pi")), None);
    assert_eq!(
        run.json("previous")[format!("{host}/{PATH}:base-latest")],
        old.digest.as_str()
    );
}

#[test]
fn a_missing_platform_blocks_single_arch_and_index() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host, "[linux/amd64, linux/arm64]", "[base-latest]");
    let tags = content_tags(&ws);
    let p = reg.pusher();
    let base = rt
        .block_on(p.push_multiarch(PATH, &tags["base"], Format::Oci, None))
        .unwrap();
    let amd = base
        .children
        .iter()
        .find(|c| c.architecture == "amd64")
        .unwrap();
    // omos: a single-arch amd64 manifest (its platform is only in the config blob).
    rt.block_on(p.push_image(
        PATH,
        Some(&tags["devbox/omos"]),
        &ImageSpec::oci().platform("linux", "amd64").from_parent(amd),
    ))
    .unwrap();
    // pi: an index with amd64 only.
    let child = rt
        .block_on(p.push_image(
            PATH,
            None,
            &ImageSpec::oci().platform("linux", "amd64").from_parent(amd),
        ))
        .unwrap();
    rt.block_on(p.push_index(PATH, Some(&tags["devbox/pi"]), Format::Oci, &[child]))
        .unwrap();
    let run = promote(&ws, &["--wait", "0"], &[]);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    let err = stderr(&run.out);
    assert!(
        err.contains("devbox/omos: missing platform linux/arm64 (it has linux/amd64)"),
        "{err}"
    );
    assert!(
        err.contains("devbox/pi: missing platform linux/arm64 (it has linux/amd64)"),
        "{err}"
    );
    // Both are otherwise fine: built on the base's amd64 image.
    assert!(!err.contains("not built on"), "{err}");
    assert_eq!(rt.block_on(digest_at(&host, PATH, "base-latest")), None);
}

#[test]
fn dry_run_checks_everything_and_writes_nothing() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let ws = workspace(&proxy.host(), "", "[base-latest]");
    let tags = content_tags(&ws);
    rt.block_on(push_family(&reg.pusher(), &tags));
    let run = promote(
        &ws,
        &["--dry-run", "--wait", "0", "--version", "2.0.1"],
        &[],
    );
    assert!(run.ok(), "{}", run.log());
    assert_eq!(writes(&proxy.requests()), Vec::<String>::new());
    let out = stdout(&run.out);
    assert!(out.contains("dry run: nothing written"), "{out}");
    assert!(
        out.contains(&format!("`{}/{PATH}:v2.0.1-omos`", proxy.host())),
        "{out}"
    );
    assert_eq!(out.matches("would move").count(), 5, "{out}");
    assert_eq!(run.json("promoted"), serde_json::json!({}));
    assert_eq!(
        rt.block_on(digest_at(&reg.host(), PATH, "base-latest")),
        None
    );
    // INPUT_DRY_RUN works the same.
    let before = proxy.requests().len();
    let run = promote(&ws, &["--wait", "0"], &[("INPUT_DRY_RUN", "true")]);
    assert!(run.ok(), "{}", run.log());
    assert_eq!(writes(&proxy.requests()[before..]), Vec::<String>::new());
}

#[test]
fn release_tags_only_when_everything_was_reused() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host, "", "[base-latest]");
    let tags = content_tags(&ws);
    let pushed = rt.block_on(push_family(&reg.pusher(), &tags));
    // An earlier push to main promoted latest-*.
    assert!(promote(&ws, &["--wait", "0"], &[]).ok());
    // The release: nothing rebuilt (same content tags); only the release aliases move.
    let run = promote(&ws, &["--wait", "0", "--version", "1.14.44"], &[]);
    assert!(run.ok(), "{}", run.log());
    for (alias, i) in [("v1.14.44-omos", 1), ("v1.14.44-pi", 2)] {
        assert_eq!(
            rt.block_on(digest_at(&host, PATH, alias)).as_deref(),
            Some(pushed[i].digest.as_str())
        );
        assert_eq!(
            run.json("previous")[format!("{host}/{PATH}:{alias}")],
            serde_json::Value::Null
        );
    }
    assert_eq!(
        run.json("previous")[format!("{host}/{PATH}:latest-omos")],
        pushed[1].digest.as_str()
    );
    // The pushed git tag is the version when --version is not given.
    let run = promote(
        &ws,
        &["--wait", "0"],
        &[("GITHUB_REF", "refs/tags/v1.14.45")],
    );
    assert!(run.ok(), "{}", run.log());
    assert_eq!(
        rt.block_on(digest_at(&host, PATH, "v1.14.45-pi"))
            .as_deref(),
        Some(pushed[2].digest.as_str())
    );
}

#[test]
fn aliases_in_other_repositories_and_registries_are_copied_by_digest() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let mirror = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let promote_list = format!(
        "[base-latest, {{tag: latest, repository: {host}/acme/public}}, {{tag: \"base-{{hash}}\", repository: {}/mirror/devbox}}]",
        mirror.host()
    );
    let ws = workspace(&host, "[linux/amd64, linux/arm64]", &promote_list);
    let tags = content_tags(&ws);
    let p = reg.pusher();
    let base = rt
        .block_on(p.push_multiarch(PATH, &tags["base"], Format::Oci, None))
        .unwrap();
    for v in VARIANTS {
        rt.block_on(p.push_multiarch(PATH, &tags[v], Format::Oci, Some(&base)))
            .unwrap();
    }
    let run = promote(&ws, &["--wait", "0"], &[]);
    assert!(run.ok(), "{}", run.log());
    // Same registry, other repository: blobs mounted. Other registry: streamed.
    assert_eq!(
        rt.block_on(digest_at(&host, "acme/public", "latest"))
            .as_deref(),
        Some(base.digest.as_str())
    );
    assert_eq!(
        rt.block_on(digest_at(&mirror.host(), "mirror/devbox", &tags["base"]))
            .as_deref(),
        Some(base.digest.as_str())
    );
    for c in &base.children {
        assert_eq!(
            rt.block_on(digest_at(&mirror.host(), "mirror/devbox", &c.digest))
                .as_deref(),
            Some(c.digest.as_str()),
            "child {} copied by digest",
            c.os
        );
    }
    let s = &run.summary;
    assert!(s.contains("copied, moved, verified"), "{s}");
    // 2 platforms × (config + 1 layer) = 4 blobs per target repository.
    assert!(s.contains("4 mounted"), "{s}");
    assert!(s.contains("4 streamed"), "{s}");
    let promoted = run.json("promoted");
    assert_eq!(
        promoted[format!("{host}/acme/public:latest")],
        base.digest.as_str()
    );
    assert_eq!(
        promoted[format!("{}/mirror/devbox:{}", mirror.host(), tags["base"])],
        base.digest.as_str()
    );
}

#[test]
fn token_auth_registry_with_input_credentials() {
    let rt = rt();
    let reg = TestRegistry::start_token(TokenOptions::default()).unwrap();
    let host = reg.host();
    // platforms with single-arch images: the config blobs are read through token auth too.
    let ws = workspace(&host, "[linux/amd64]", "[base-latest]");
    let tags = content_tags(&ws);
    let pushed = rt.block_on(push_family(&reg.pusher(), &tags));
    // Anonymous: pull works (checks pass), push is refused: every write fails, all reported.
    let run = promote(&ws, &["--wait", "0"], &[]);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    let err = stderr(&run.out);
    assert!(
        err.contains("promotion failed: 0 alias(es) moved, 3 did not"),
        "{err}"
    );
    assert_eq!(run.json("promoted"), serde_json::json!({}));
    // With INPUT_USERNAME / INPUT_PASSWORD.
    let run = promote(
        &ws,
        &["--wait", "0"],
        &[
            ("INPUT_USERNAME", "alice"),
            ("INPUT_PASSWORD", "wonderland"),
        ],
    );
    assert!(run.ok(), "{}", run.log());
    assert!(!stdout(&run.out).contains("wonderland") && !stderr(&run.out).contains("wonderland"));
    assert_eq!(
        run.json("promoted")[format!("{host}/{PATH}:latest-omos")],
        pushed[1].digest.as_str()
    );
    assert!(
        run.summary.contains("has every platform (linux/amd64)"),
        "{}",
        run.summary
    );
}

#[test]
fn a_failed_write_reports_what_moved_and_how_to_roll_back() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let host = proxy.host();
    let ws = workspace(&host, "", "[base-latest]");
    let tags = content_tags(&ws);
    let p = reg.pusher();
    let first = rt.block_on(push_family(&p, &tags));
    assert!(promote(&ws, &["--wait", "0"], &[]).ok());
    // A new base and variants (new content at the same tags, as after a forced rebuild).
    let pushed = rt.block_on(push_family(&p, &tags));
    proxy.set_rules(vec![skip_testkit::FaultRule::new(
        skip_testkit::Fault::status(400),
        skip_testkit::Trigger::Always,
    )
    .method("PUT")
    .path_contains("manifests/latest-pi")]);
    let run = promote(&ws, &["--wait", "0"], &[]);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    let err = stderr(&run.out);
    assert!(err.contains("promotion failed: 2 alias(es) moved"), "{err}");
    assert!(err.contains("1 did not"), "{err}");
    assert!(err.contains(&format!("{host}/{PATH}:latest-pi: ")), "{err}");
    // Outputs: promoted has exactly the moved ones; previous has all three.
    let promoted = run.json("promoted");
    assert_eq!(promoted.as_object().unwrap().len(), 2, "{promoted}");
    assert_eq!(
        promoted[format!("{host}/{PATH}:base-latest")],
        pushed[0].digest.as_str()
    );
    assert_eq!(
        run.json("previous")[format!("{host}/{PATH}:latest-pi")],
        first[2].digest.as_str()
    );
    // Rollback commands for the moved aliases, to their previous digests.
    let out = stdout(&run.out);
    assert!(
        out.contains(&format!(
            "skopeo copy --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false docker://{host}/{PATH}@{} docker://{host}/{PATH}:base-latest",
            first[0].digest
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "crane tag {host}/{PATH}@{} latest-omos",
            first[1].digest
        )),
        "{out}"
    );
    assert!(
        !out.contains(&format!("docker://{host}/{PATH}:latest-pi")),
        "{out}"
    );
    assert!(out.contains("**FAILED**"), "{out}");
    assert_eq!(
        rt.block_on(digest_at(&reg.host(), PATH, "latest-pi"))
            .as_deref(),
        Some(first[2].digest.as_str()),
        "the failed alias still points where it did"
    );
}

/// A stand-in for GitHub's (and Gitea's) jobs API on 127.0.0.1: answers the Gitea-style route
/// under `/api/v1` and 404 for everything else (including GitHub's attempts route), recording
/// each request's path and Authorization header.
struct FakeApi {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Seen,
}

/// Each request's path and Authorization header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

impl FakeApi {
    fn start(jobs: serde_json::Value) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let body = serde_json::json!({"total_count": jobs.as_array().map_or(0, |a| a.len()), "jobs": jobs})
            .to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = conn else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let auth = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .map(|l| l[14..].trim().to_string());
                seen2.lock().unwrap().push((target.clone(), auth));
                let path = target.split('?').next().unwrap_or("");
                let (code, text) = if path == "/api/v1/repos/acme/devbox/actions/runs/42/jobs" {
                    ("200 OK", body.clone())
                } else {
                    ("404 Not Found", r#"{"message":"Not Found"}"#.to_string())
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        FakeApi { port, stop, seen }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn require_jobs_gates_on_the_runs_jobs() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host, "", "[base-latest]");
    let tags = content_tags(&ws);
    rt.block_on(push_family(&reg.pusher(), &tags));
    let job = |name: &str, conclusion: Option<&str>| serde_json::json!({"id": 1, "name": name, "status": if conclusion.is_some() {"completed"} else {"in_progress"}, "conclusion": conclusion});
    let failing = FakeApi::start(serde_json::json!([
        job("build (base, linux/amd64)", Some("success")),
        job("test", Some("failure")),
        job("promote", None),
    ]));
    let api = |f: &FakeApi| format!("http://127.0.0.1:{}/api/v1", f.port);
    let api_url = api(&failing);
    let env = |url: &str| -> Vec<(String, String)> {
        vec![
            ("GITHUB_API_URL".into(), url.to_string()),
            ("GITHUB_REPOSITORY".into(), "acme/devbox".into()),
            ("GITHUB_RUN_ID".into(), "42".into()),
            ("GITHUB_RUN_ATTEMPT".into(), "2".into()),
            ("GITHUB_TOKEN".into(), "tok-123".into()),
        ]
    };
    let e = env(&api_url);
    let e: Vec<(&str, &str)> = e.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let run = promote(&ws, &["--wait", "0", "--require-jobs", "build*, test"], &e);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    let err = stderr(&run.out);
    assert!(
        err.contains("require-jobs: job `test` concluded failure, not success"),
        "{err}"
    );
    assert_eq!(rt.block_on(digest_at(&host, PATH, "base-latest")), None);
    // GitHub's attempts route first, then (404 here, like Gitea) the run's jobs; the token sent
    // as a bearer token; GITHUB_API_URL's path kept.
    let seen = failing.seen.lock().unwrap().clone();
    assert!(
        seen[0]
            .0
            .starts_with("/api/v1/repos/acme/devbox/actions/runs/42/attempts/2/jobs"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(t, _)| t.starts_with("/api/v1/repos/acme/devbox/actions/runs/42/jobs?")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|(_, a)| a.as_deref() == Some("Bearer tok-123")),
        "{seen:?}"
    );
    assert!(!stdout(&run.out).contains("tok-123") && !err.contains("tok-123"));

    // A typo matches nothing: blocked too.
    let run = promote(&ws, &["--wait", "0", "--require-jobs", "tset"], &e);
    assert_eq!(run.code(), Some(1));
    assert!(stderr(&run.out).contains("no job of this run matches `tset`"));

    // An API that lists no jobs at all (Gitea 1.25) is said as such, not as "no job matches".
    let empty = FakeApi::start(serde_json::json!([]));
    let e_empty = env(&api(&empty));
    let e_empty: Vec<(&str, &str)> = e_empty
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let run = promote(&ws, &["--wait", "0", "--require-jobs", "test"], &e_empty);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    let err = stderr(&run.out);
    assert!(err.contains("answered with no jobs at all"), "{err}");
    assert!(!err.contains("no job of this run matches"), "{err}");

    let passing = FakeApi::start(serde_json::json!([
        job("build (base, linux/amd64)", Some("success")),
        job("test", Some("success")),
        job("promote", None),
    ]));
    let mut e = env(&api(&passing));
    e.push((
        "INPUT_REQUIRE_JOBS".into(),
        "build (base, linux/amd64)\ntest".into(),
    ));
    let e: Vec<(&str, &str)> = e.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let run = promote(&ws, &["--wait", "0"], &e);
    assert!(run.ok(), "{}", run.log());
    assert!(rt.block_on(digest_at(&host, PATH, "base-latest")).is_some());

    // The token never goes over plain http to another host (192.0.2.1: TEST-NET, never contacted).
    let run = promote(
        &ws,
        &["--require-jobs", "test"],
        &[
            ("GITHUB_API_URL", "http://192.0.2.1/api/v3"),
            ("GITHUB_REPOSITORY", "acme/devbox"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_TOKEN", "tok-123"),
        ],
    );
    assert_eq!(run.code(), Some(2), "{}", run.log());
    assert!(
        stderr(&run.out).contains("only sent over https"),
        "{}",
        run.log()
    );

    // No token: a usage error before any request.
    let run = promote(
        &ws,
        &["--require-jobs", "test"],
        &[
            ("GITHUB_REPOSITORY", "acme/devbox"),
            ("GITHUB_RUN_ID", "42"),
        ],
    );
    assert_eq!(run.code(), Some(2), "{}", run.log());
    assert!(stderr(&run.out).contains("actions: read"));
}

#[test]
fn config_errors_are_exit_2() {
    let ws = workspace("127.0.0.1:9", "", "[latest-omos]");
    // The base's alias collides with a variant's alias.
    let run = promote(&ws, &["--wait", "0"], &[]);
    assert_eq!(run.code(), Some(2), "{}", run.log());
    assert!(
        stderr(&run.out).contains("is an alias of both base and devbox/omos"),
        "{}",
        run.log()
    );
    let ws = workspace("127.0.0.1:9", "", "[base-latest]");
    let run = promote(&ws, &["--wait", "700"], &[]);
    assert_eq!(run.code(), Some(2), "{}", run.log());
    assert!(
        stderr(&run.out).contains("wait: 700 is out of range"),
        "{}",
        run.log()
    );
}

/// A `workflow_dispatch` test run moves only `v0.0.0-split-test*` and leaves `latest*` where it
/// is (`--aliases`, input `aliases`); the others are reported as skipped, and a pattern that
/// matches no alias is exit 2 before anything is written.
#[test]
fn aliases_chooses_which_aliases_move() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let host = proxy.host();
    let ws = workspace(&host, "", "[base-latest]");
    let tags = content_tags(&ws);
    let pushed = rt.block_on(push_family(&reg.pusher(), &tags));

    let run = promote(
        &ws,
        &["--wait", "0", "--version", "0.0.0-split-test"],
        &[("INPUT_ALIASES", "v0.0.0-split-test*")],
    );
    assert!(run.ok(), "{}", run.log());
    let want: BTreeMap<String, String> = [
        ("v0.0.0-split-test-omos", &pushed[1]),
        ("v0.0.0-split-test-pi", &pushed[2]),
    ]
    .iter()
    .map(|(t, p)| (format!("{host}/{PATH}:{t}"), p.digest.clone()))
    .collect();
    assert_eq!(run.json("promoted"), serde_json::to_value(&want).unwrap());
    for alias in ["base-latest", "latest-omos", "latest-pi"] {
        assert_eq!(
            rt.block_on(digest_at(&reg.host(), PATH, alias)),
            None,
            "{alias} moved"
        );
    }
    assert!(
        run.summary
            .contains("`latest-omos` is not chosen by `aliases`"),
        "{}",
        run.summary
    );

    // A typo matches nothing: exit 2, not one write.
    let before = proxy.requests().len();
    let run = promote(&ws, &["--wait", "0", "--aliases", "lastest*"], &[]);
    assert_eq!(run.code(), Some(2), "{}", run.log());
    assert!(
        stderr(&run.out).contains("`lastest*` matches no alias"),
        "{}",
        run.log()
    );
    assert_eq!(writes(&proxy.requests()[before..]), Vec::<String>::new());
    assert!(run.outputs.is_empty(), "{:?}", run.outputs);

    // Several patterns, by tag or by full reference.
    let run = promote(
        &ws,
        &[
            "--wait",
            "0",
            "--aliases",
            &format!("base-*, {host}/{PATH}:latest-pi"),
        ],
        &[],
    );
    assert!(run.ok(), "{}", run.log());
    let moved: Vec<String> = run
        .json("promoted")
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        moved,
        [
            format!("{host}/{PATH}:base-latest"),
            format!("{host}/{PATH}:latest-pi")
        ]
    );
}
