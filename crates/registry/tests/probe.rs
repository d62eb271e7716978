//! Probe answers against a real registry: Present (with the pushed digest), Absent (404
//! only) and Unknown (everything else), for single-arch images and multi-arch indexes.

mod common;

use common::{anon, repo};
use skip_registry::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use skip_registry::Probe;
use skip_testkit::{Fault, FaultProxy, FaultRule, Format, ImageSpec, TestRegistry, Trigger};

#[tokio::test]
async fn single_arch_present_with_pushed_digest_and_absent_tags() {
    let reg = TestRegistry::start_open().unwrap();
    let pusher = reg.pusher();
    let c = anon();
    for (name, spec, mt) in [
        ("acme/oci", ImageSpec::oci(), OCI_MANIFEST),
        ("acme/docker", ImageSpec::docker(), DOCKER_MANIFEST),
    ] {
        let img = pusher
            .push_image(name, Some("base-3f2a9c1b7e4d"), &spec)
            .await
            .unwrap();
        let r = repo(&reg.host(), name);
        assert_eq!(
            c.probe(&r, "base-3f2a9c1b7e4d").await,
            Probe::Present {
                digest: img.digest.clone(),
                media_type: Some(mt.to_string())
            }
        );
        // By digest too.
        assert_eq!(
            c.probe(&r, &img.digest).await.digest(),
            Some(img.digest.as_str())
        );
        assert_eq!(c.probe(&r, "base-000000000000").await, Probe::Absent);
    }
    // A repository that does not exist: its tags are absent, not unknown.
    assert_eq!(
        c.probe(&repo(&reg.host(), "acme/never-pushed"), "x").await,
        Probe::Absent
    );
}

#[tokio::test]
async fn multi_arch_index_is_present_with_the_index_digest() {
    let reg = TestRegistry::start_open().unwrap();
    let pusher = reg.pusher();
    let c = anon();
    for (name, format, mt) in [
        ("acme/multi-oci", Format::Oci, OCI_INDEX),
        ("acme/multi-docker", Format::Docker, DOCKER_MANIFEST_LIST),
    ] {
        let idx = pusher
            .push_multiarch(name, "base-1", format, None)
            .await
            .unwrap();
        let p = c.probe(&repo(&reg.host(), name), "base-1").await;
        assert_eq!(
            p,
            Probe::Present {
                digest: idx.digest.clone(),
                media_type: Some(mt.to_string())
            },
            "{name}"
        );
        assert!(idx
            .children
            .iter()
            .all(|ch| Some(ch.digest.as_str()) != p.digest()));
    }
}

/// The Accept header is what makes an index visible: without the index types,
/// distribution answers 404 for an OCI index (a false "absent") and serves one platform's
/// manifest for a Docker list (a wrong digest). Our probe sends them.
#[tokio::test]
async fn accept_header_decides_whether_an_index_is_visible() {
    let reg = TestRegistry::start_open().unwrap();
    let pusher = reg.pusher();
    let oci = pusher
        .push_multiarch("acme/m", "oci", Format::Oci, None)
        .await
        .unwrap();
    let list = pusher
        .push_multiarch("acme/m", "list", Format::Docker, None)
        .await
        .unwrap();

    let single_types = format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}");
    let head = |tag: &str| {
        raw_head(
            format!("{}/v2/acme/m/manifests/{tag}", reg.url()),
            single_types.clone(),
        )
    };
    assert_eq!(head("oci").await.status().as_u16(), 404);
    let r = head("list").await;
    assert_eq!(r.status().as_u16(), 200);
    let served = r.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(
        served, list.digest,
        "without the list type the registry serves a child"
    );
    assert!(list.children.iter().any(|c| c.digest == served));

    // Our probe, through a recording proxy: index types in Accept, index digests back.
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let c = anon();
    assert_eq!(
        c.probe(&repo(&proxy.host(), "acme/m"), "oci")
            .await
            .digest(),
        Some(oci.digest.as_str())
    );
    assert_eq!(
        c.probe(&repo(&proxy.host(), "acme/m"), "list")
            .await
            .digest(),
        Some(list.digest.as_str())
    );
    let seen = proxy.requests();
    let accept = seen[0].header("accept").unwrap();
    for t in [
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST,
    ] {
        assert!(accept.contains(t), "Accept {accept:?} lacks {t}");
    }
    assert_eq!(seen[0].method, "HEAD");
}

async fn raw_head(url: String, accept: String) -> reqwest::Response {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    http.head(url)
        .header("Accept", accept)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn unknown_when_the_registry_is_gone() {
    let mut reg = TestRegistry::start_open().unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let r = repo(&reg.host(), "acme/x");
    let c = anon();
    assert_eq!(c.probe(&r, "t").await.digest(), Some(img.digest.as_str()));
    reg.stop();
    match c.probe(&r, "t").await {
        Probe::Unknown { reason } => {
            assert!(reason.contains("connect"), "{reason}");
            assert!(reason.contains("4 attempts"), "{reason}");
        }
        other => panic!("expected Unknown, got {other:?}"),
    }
    // And a tag that never existed is not reported absent either: nobody answered.
    assert!(matches!(c.probe(&r, "other").await, Probe::Unknown { .. }));
}

#[tokio::test]
async fn unknown_on_persistent_503_and_not_absent() {
    let reg = TestRegistry::start_open().unwrap();
    reg.pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(Fault::status(503), Trigger::Always)],
    )
    .unwrap();
    let c = anon();
    for tag in ["t", "missing"] {
        match c.probe(&repo(&proxy.host(), "acme/x"), tag).await {
            Probe::Unknown { reason } => {
                assert!(reason.contains("503"), "{reason}");
                assert!(reason.contains("after 4 attempts"), "{reason}");
            }
            other => panic!("expected Unknown, got {other:?}"),
        }
    }
    // retries: 3 → 4 attempts per probe, no more.
    assert_eq!(proxy.request_count(), 8);
}

#[tokio::test]
async fn other_statuses_are_unknown_not_absent() {
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let c = anon();
    for code in [400u16, 403, 405, 410] {
        proxy.set_rules(vec![FaultRule::new(Fault::status(code), Trigger::Always)]);
        match c.probe(&repo(&proxy.host(), "acme/x"), "t").await {
            Probe::Unknown { reason } => assert!(reason.contains(&code.to_string()), "{reason}"),
            other => panic!("HTTP {code} gave {other:?}"),
        }
    }
    // A 404 is the one answer that means absent.
    proxy.set_rules(vec![FaultRule::new(Fault::status(404), Trigger::Always)]);
    assert_eq!(
        c.probe(&repo(&proxy.host(), "acme/x"), "t").await,
        Probe::Absent
    );
}

#[tokio::test]
async fn invalid_tags_are_unknown_without_a_request() {
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    match anon()
        .probe(&repo(&proxy.host(), "acme/x"), "bad tag!")
        .await
    {
        Probe::Unknown { reason } => assert!(reason.contains("invalid tag"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(proxy.request_count(), 0);
}

/// A 200 is only `Present` with a well-formed digest of a real manifest. A HEAD without
/// `Docker-Content-Digest` is confirmed by GET and hashing; a 200 HTML page (a captive
/// portal, a misrouted proxy) is `Unknown`, never a skip.
#[tokio::test]
async fn a_200_without_a_manifest_is_not_present() {
    let reg = TestRegistry::start_open().unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(
            Fault::StripHeader("Docker-Content-Digest".into()),
            Trigger::Always,
        )],
    )
    .unwrap();
    let c = anon();
    let r = repo(&proxy.host(), "acme/x");
    assert_eq!(c.probe(&r, "t").await.digest(), Some(img.digest.as_str()));
    let methods: Vec<String> = proxy.requests().iter().map(|q| q.method.clone()).collect();
    assert_eq!(methods, vec!["HEAD", "GET"]);

    proxy.set_rules(vec![FaultRule::new(
        Fault::Respond {
            code: 200,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: b"<html>please log in</html>".to_vec(),
        },
        Trigger::Always,
    )]);
    match c.probe(&r, "t").await {
        Probe::Unknown { reason } => assert!(reason.contains("could not confirm"), "{reason}"),
        other => panic!("FALSE SKIP risk: {other:?}"),
    }
}
