//! The workflow between build and promote, as teams run it, against a real `docker-registry`:
//! test stamps (`skip-action stamp`, `promote --require-tested`) and racing runs (an alias is
//! never moved back to the build of an older commit).
//!
//! Builds are simulated by pushing synthetic images (skip-testkit's pusher) at the content tags
//! `hash --json` prints, with the `org.opencontainers.image.revision` label a build job sets.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::registry::{content_tags, rt, run};
use common::*;
use skip_testkit::{ImageSpec, PushedImage, Pusher, TestRegistry};

const PATH: &str = "acme/devbox";
const REVISION: &str = "org.opencontainers.image.revision";

/// base, and two variants built FROM it, all in `host/acme/devbox`.
fn workspace(host: &str) -> Ws {
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!(
            "version: 1\nrepository: {host}/{PATH}\nimages:\n  base:\n    dockerfile: Dockerfile.base\n    tag: base-{{hash}}\n    promote: [base-latest]\n  devbox:\n    from: base\n    dockerfile: Dockerfile.variant\n    variants:\n      omos: {{ FLAVOR: omos }}\n      pi: {{ FLAVOR: pi }}\n    tag: \"{{variant}}-{{hash}}\"\n    promote: [\"latest-{{variant}}\"]\n"
        ),
    );
    ws.write("Dockerfile.base", "FROM alpine:3.20\nCOPY rootfs/ /\n");
    ws.write(
        "Dockerfile.variant",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOR\nRUN echo $FLAVOR > /flavor\n",
    );
    ws.write("rootfs/etc/motd", "one\n");
    ws
}

/// The family at `tags`, each image labelled with `revision` (when given).
async fn push_family(
    p: &Pusher,
    tags: &BTreeMap<String, String>,
    revision: Option<&str>,
) -> BTreeMap<String, PushedImage> {
    let spec = |s: ImageSpec| match revision {
        Some(r) => s.label(REVISION, r),
        None => s,
    };
    let base = p
        .push_image(PATH, Some(&tags["base"]), &spec(ImageSpec::oci()))
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for v in ["devbox/omos", "devbox/pi"] {
        let img = p
            .push_image(
                PATH,
                Some(&tags[v]),
                &spec(ImageSpec::oci().from_parent(&base)),
            )
            .await
            .unwrap();
        out.insert(v.to_string(), img);
    }
    out.insert("base".to_string(), base);
    out
}

async fn digest_at(host: &str, reference: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .get(format!("http://{host}/v2/{PATH}/manifests/{reference}"))
        .header(
            "Accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    if r.status().as_u16() != 200 {
        return None;
    }
    Some(skip_testkit::util::sha256_digest(&r.bytes().await.unwrap()))
}

#[test]
fn stamps_let_reused_images_pass_and_an_untested_build_blocks() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host);
    let t1 = content_tags(&ws);
    let built = rt.block_on(push_family(&reg.pusher(), &t1, None));

    // Nothing tested yet: promote blocks on every required image and moves nothing.
    let r = run(
        &ws,
        &["promote", "--wait", "0", "--require-tested", "all"],
        &[],
    );
    assert_eq!(r.code(), Some(1), "{}", r.log());
    let err = stderr(&r.out);
    for name in ["base", "devbox/omos", "devbox/pi"] {
        assert!(err.contains(&format!("{name}: not tested:")), "{err}");
    }
    assert_eq!(rt.block_on(digest_at(&host, "base-latest")), None);

    // The test jobs pass and stamp: the stamp is the tested manifest, re-tagged.
    let s = run(&ws, &["stamp", "--images", "base,devbox/*"], &[]);
    assert_eq!(s.code(), Some(0), "{}", s.log());
    for (name, img) in &built {
        let stamp = format!("{}.tested", t1[name]);
        assert_eq!(
            rt.block_on(digest_at(&host, &stamp)).as_deref(),
            Some(img.digest.as_str()),
            "{stamp}"
        );
    }
    let stamped: BTreeMap<String, String> = serde_json::from_str(&s.outputs["stamped"]).unwrap();
    assert_eq!(stamped.len(), 3, "{stamped:?}");
    let r = run(
        &ws,
        &["promote", "--wait", "0", "--require-tested", "all"],
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.log());
    assert!(stdout(&r.out).contains("tested (stamp "), "{}", r.log());

    // Next run: only pi changes. base and omos are reused (their test jobs skipped): their
    // stamps from the earlier run still count. pi is new: its test failed, so no stamp.
    ws.write(
        "skip-action.yml",
        &std::fs::read_to_string(ws.path().join("skip-action.yml"))
            .unwrap()
            .replace("pi: { FLAVOR: pi }", "pi: { FLAVOR: pi2 }"),
    );
    let t2 = content_tags(&ws);
    assert_eq!(t1["base"], t2["base"]);
    assert_eq!(t1["devbox/omos"], t2["devbox/omos"]);
    assert_ne!(t1["devbox/pi"], t2["devbox/pi"]);
    let pi2 = rt
        .block_on(reg.pusher().push_image(
            PATH,
            Some(&t2["devbox/pi"]),
            &ImageSpec::oci().from_parent(&built["base"]),
        ))
        .unwrap();
    let r = run(
        &ws,
        &["promote", "--wait", "0", "--require-tested", "all"],
        &[],
    );
    assert_eq!(r.code(), Some(1), "{}", r.log());
    let err = stderr(&r.out);
    assert!(err.contains("devbox/pi: not tested:"), "{err}");
    assert!(!err.contains("base: not tested"), "{err}");
    assert!(!err.contains("devbox/omos: not tested"), "{err}");
    // A failed test blocks every alias, not only pi's.
    assert_eq!(
        rt.block_on(digest_at(&host, "latest-pi")).as_deref(),
        Some(built["devbox/pi"].digest.as_str())
    );

    // A stamp names one digest: the test ran on pi2, a racing rebuild pushed pi3 meanwhile.
    let pi3 = rt
        .block_on(reg.pusher().push_image(
            PATH,
            Some(&t2["devbox/pi"]),
            &ImageSpec::oci().from_parent(&built["base"]),
        ))
        .unwrap();
    let s = run(
        &ws,
        &["stamp", "--images", "devbox/pi", "--digest", &pi2.digest],
        &[],
    );
    assert_eq!(s.code(), Some(1), "{}", s.log());
    assert!(
        stderr(&s.out).contains("not stamped, test again"),
        "{}",
        s.log()
    );
    assert_eq!(
        rt.block_on(digest_at(&host, &format!("{}.tested", t2["devbox/pi"]))),
        None
    );
    let s = run(
        &ws,
        &["stamp", "--images", "devbox/pi", "--digest", &pi3.digest],
        &[],
    );
    assert_eq!(s.code(), Some(0), "{}", s.log());
    let r = run(
        &ws,
        &["promote", "--wait", "0", "--require-tested", "devbox/*"],
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.log());
    assert_eq!(
        rt.block_on(digest_at(&host, "latest-pi")).as_deref(),
        Some(pi3.digest.as_str())
    );

    // A stamp of an earlier push does not count for a rebuild under the same tag.
    rt.block_on(reg.pusher().push_image(
        PATH,
        Some(&t2["devbox/omos"]),
        &ImageSpec::oci().from_parent(&built["base"]),
    ))
    .unwrap();
    let r = run(
        &ws,
        &["promote", "--wait", "0", "--require-tested", "all"],
        &[],
    );
    assert_eq!(r.code(), Some(1), "{}", r.log());
    assert!(
        stderr(&r.out).contains("the tests passed for an earlier push of the tag"),
        "{}",
        r.log()
    );

    // Usage errors are exit 2, before any network traffic.
    let r = run(&ws, &["promote", "--require-tested", "devbox/omso"], &[]);
    assert_eq!(r.code(), Some(2), "{}", r.log());
    assert!(stderr(&r.out).contains("matches no image"), "{}", r.log());
    let r = run(
        &ws,
        &["stamp", "--images", "all", "--digest", &pi3.digest],
        &[],
    );
    assert_eq!(r.code(), Some(2), "{}", r.log());
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {o:?}");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn commit(ws: &Ws, motd: &str) -> String {
    ws.write("rootfs/etc/motd", motd);
    git(ws.path(), &["add", "-A"]);
    git(ws.path(), &["commit", "-q", "-m", motd]);
    git(ws.path(), &["rev-parse", "HEAD"])
}

#[test]
fn an_older_run_finishing_last_leaves_the_aliases_where_they_are() {
    let rt = rt();
    let reg = TestRegistry::start_open().unwrap();
    let host = reg.host();
    let ws = workspace(&host);
    git(ws.path(), &["init", "-q"]);
    // Two pushes to main: c1, then c2 (another motd: every image changes).
    let c1 = commit(&ws, "one\n");
    let t1 = content_tags(&ws);
    let old = rt.block_on(push_family(&reg.pusher(), &t1, Some(&c1)));
    let c2 = commit(&ws, "two\n");
    let t2 = content_tags(&ws);
    assert_ne!(t1["base"], t2["base"]);
    let new = rt.block_on(push_family(&reg.pusher(), &t2, Some(&c2)));

    // The run of c2 finishes first.
    let r = run(&ws, &["promote", "--wait", "0"], &[("GITHUB_SHA", &c2)]);
    assert_eq!(r.code(), Some(0), "{}", r.log());
    assert_eq!(
        rt.block_on(digest_at(&host, "base-latest")).as_deref(),
        Some(new["base"].digest.as_str())
    );

    // The run of c1 finishes last (its checkout is at c1): every alias is held, not moved, and
    // the run still succeeds: the newer run did the work.
    git(ws.path(), &["checkout", "-q", &c1]);
    assert_eq!(content_tags(&ws), t1);
    let r = run(
        &ws,
        &["promote", "--wait", "0", "--json"],
        &[("GITHUB_SHA", &c1)],
    );
    assert_eq!(r.code(), Some(0), "{}", r.log());
    let report: serde_json::Value = serde_json::from_str(&stdout(&r.out)).unwrap();
    for a in report["aliases"].as_array().unwrap() {
        assert_eq!(a["status"], "held", "{a}");
        assert!(
            a["error"]
                .as_str()
                .unwrap()
                .starts_with("not moved backwards"),
            "{a}"
        );
    }
    assert_eq!(r.outputs["changed"], "");
    assert!(
        stderr(&r.out).contains("not moved backwards"),
        "{}",
        r.log()
    );
    for (alias, name) in [
        ("base-latest", "base"),
        ("latest-omos", "devbox/omos"),
        ("latest-pi", "devbox/pi"),
    ] {
        assert_eq!(
            rt.block_on(digest_at(&host, alias)).as_deref(),
            Some(new[name].digest.as_str()),
            "{alias} went back"
        );
    }

    // A commit this checkout does not have (a shallow clone): the order is unknown, so held.
    let r = run(
        &ws,
        &["promote", "--wait", "0"],
        &[("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")],
    );
    assert_eq!(r.code(), Some(0), "{}", r.log());
    assert!(stderr(&r.out).contains("fetch-depth: 0"), "{}", r.log());
    assert_eq!(
        rt.block_on(digest_at(&host, "base-latest")).as_deref(),
        Some(new["base"].digest.as_str())
    );

    // c3 reverts to c1's files: the c1 images are reused (they record c1), and the run of c3 is
    // newer than c2, so the aliases move to them: the order is of runs, not of builds.
    git(ws.path(), &["checkout", "-q", "-B", "main", &c2]);
    let c3 = commit(&ws, "one\n");
    assert_eq!(content_tags(&ws), t1);
    let r = run(&ws, &["promote", "--wait", "0"], &[("GITHUB_SHA", &c3)]);
    assert_eq!(r.code(), Some(0), "{}", r.log());
    assert_eq!(
        rt.block_on(digest_at(&host, "base-latest")).as_deref(),
        Some(old["base"].digest.as_str())
    );
    assert_eq!(
        rt.block_on(digest_at(&host, "latest-pi")).as_deref(),
        Some(old["devbox/pi"].digest.as_str())
    );
}
