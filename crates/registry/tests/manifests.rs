//! Manifest GET/PUT round trips, tag listing with pagination, and blob mount/copy against
//! a real registry.

mod common;

use common::{anon, client, options, repo};
use skip_registry::manifest::{
    sha256_digest, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};
use skip_registry::{
    Client, ClientOptions, CopyOutcome, Credentials, HttpError, MountResult, ParsedManifest, Probe,
    UploadMode,
};
use skip_testkit::{Fault, FaultProxy, FaultRule, Format, ImageSpec, TestRegistry, Trigger};

/// Promotion in miniature: GET an index, PUT the same bytes under another tag, and the
/// new tag has the same digest. A GET without the index types would have returned one
/// platform's manifest; ours returns the index itself.
#[tokio::test]
async fn index_round_trip_preserves_bytes_and_digest() {
    let reg = TestRegistry::start_open().unwrap();
    let c = anon();
    for (name, format, mt) in [
        ("acme/oci", Format::Oci, OCI_INDEX),
        ("acme/docker", Format::Docker, DOCKER_MANIFEST_LIST),
    ] {
        let idx = reg
            .pusher()
            .push_multiarch(name, "base-3f2a9c1b7e4d", format, None)
            .await
            .unwrap();
        let r = repo(&reg.host(), name);
        let m = c.get_manifest(&r, "base-3f2a9c1b7e4d").await.unwrap();
        assert_eq!(m.bytes, idx.manifest, "{name}: bytes differ");
        assert_eq!(m.digest, idx.digest);
        assert_eq!(m.media_type, mt);
        let parsed = m.parse().unwrap();
        assert!(parsed.is_index());
        let archs: Vec<&str> = parsed
            .platforms()
            .iter()
            .map(|p| p.architecture.as_str())
            .collect();
        assert_eq!(archs, vec!["amd64", "arm64"]);
        let children: Vec<&str> = parsed
            .children()
            .iter()
            .map(|d| d.digest.as_str())
            .collect();
        assert_eq!(
            children,
            idx.children
                .iter()
                .map(|c| c.digest.as_str())
                .collect::<Vec<_>>()
        );

        let d = c
            .put_manifest(&r, "base-latest", &m.bytes, &m.media_type)
            .await
            .unwrap();
        assert_eq!(d, idx.digest);
        assert_eq!(
            c.probe(&r, "base-latest").await,
            Probe::Present {
                digest: idx.digest.clone(),
                media_type: Some(mt.into())
            }
        );
        let again = c.get_manifest(&r, "base-latest").await.unwrap();
        assert_eq!(again, m);
        // By digest, verified against the digest.
        assert_eq!(
            c.get_manifest(&r, &idx.digest).await.unwrap().bytes,
            idx.manifest
        );
        // Children are fetchable and are images.
        let child = c.get_manifest(&r, &idx.children[0].digest).await.unwrap();
        assert!(matches!(child.parse().unwrap(), ParsedManifest::Image(_)));
    }

    // The contrast: a GET of the Docker list without list types gets a child.
    let url = format!("{}/v2/acme/docker/manifests/base-3f2a9c1b7e4d", reg.url());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = http
        .get(url)
        .header("Accept", format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let p = ParsedManifest::parse(&body, "").unwrap();
    assert!(
        !p.is_index(),
        "a GET without index types returns one platform"
    );
}

#[tokio::test]
async fn single_image_round_trip_and_layers() {
    let reg = TestRegistry::start_open().unwrap();
    let pusher = reg.pusher();
    let base = pusher
        .push_image("acme/base", Some("b1"), &ImageSpec::docker().layers(2))
        .await
        .unwrap();
    let child = pusher
        .push_image(
            "acme/app",
            Some("a1"),
            &ImageSpec::docker().from_parent(&base).layers(1),
        )
        .await
        .unwrap();
    let c = anon();
    let pm = c
        .get_manifest(&repo(&reg.host(), "acme/base"), "b1")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let cm = c
        .get_manifest(&repo(&reg.host(), "acme/app"), "a1")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pm.config().unwrap().digest, base.config.digest);
    assert_eq!(cm.layers().len(), 3);
    // FROM parent: the parent's layer list is a prefix of the child's.
    assert_eq!(&cm.layers()[..2], pm.layers());
    assert_eq!(cm.layers()[2].digest, child.layers[2].digest);
}

#[tokio::test]
async fn manifest_errors_are_typed_and_clear() {
    let reg = TestRegistry::start_open().unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let r = repo(&reg.host(), "acme/x");
    let c = anon();
    let e = c.get_manifest(&r, "missing").await.unwrap_err();
    let h = e.downcast_ref::<HttpError>().expect("HttpError");
    assert_eq!(h.status, 404);
    assert_eq!(h.code.as_deref(), Some("MANIFEST_UNKNOWN"));
    // PUT by a digest that is not the content's.
    let wrong = sha256_digest(b"something else");
    assert!(c
        .put_manifest(&r, &wrong, &img.manifest, &img.media_type)
        .await
        .is_err());
    // PUT of something that is not a manifest: the registry's error code comes through.
    let e = c
        .put_manifest(&r, "junk", b"{\"schemaVersion\":2}", OCI_MANIFEST)
        .await
        .unwrap_err();
    let h = e.downcast_ref::<HttpError>().expect("HttpError");
    assert_eq!(h.status, 400, "{e:#}");
    // PUT of a manifest whose blobs are missing.
    let fake = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
    let e = c
        .put_manifest(&r, "fake", fake, OCI_MANIFEST)
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("MANIFEST_BLOB_UNKNOWN"), "{e:#}");
}

#[tokio::test]
async fn list_tags_follows_link_pagination() {
    let reg = TestRegistry::start_open().unwrap();
    let pusher = reg.pusher();
    let img = pusher
        .push_image("acme/x", Some("t000"), &ImageSpec::oci())
        .await
        .unwrap();
    let mut want: Vec<String> = vec!["t000".into()];
    for i in 1..=24 {
        let t = format!("t{i:03}");
        pusher
            .tag("acme/x", &t, &img.manifest, &img.media_type)
            .await
            .unwrap();
        want.push(t);
    }
    // Debian's distribution 2.8 ignores `n`; the proxy pages the real answer the way
    // distribution 3, GHCR and Docker Hub do.
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    proxy.paginate_tags(true);
    let c = Client::new(ClientOptions {
        tags_page_size: 10,
        ..options(Credentials::none())
    })
    .unwrap();
    let mut got = c.list_tags(&repo(&proxy.host(), "acme/x")).await.unwrap();
    got.sort();
    assert_eq!(got, want);
    let pages: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.target.contains("/tags/list"))
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages[0].ends_with("tags/list?n=10"), "{pages:?}");
    assert!(pages[1].contains("last=t009"), "{pages:?}");
    assert!(pages[2].contains("last=t019"), "{pages:?}");

    // Direct (unpaged) gives the same set.
    let mut direct = anon()
        .list_tags(&repo(&reg.host(), "acme/x"))
        .await
        .unwrap();
    direct.sort();
    assert_eq!(direct, want);
    // A repository that does not exist has no tags (404 NAME_UNKNOWN).
    assert_eq!(
        anon()
            .list_tags(&repo(&reg.host(), "acme/none"))
            .await
            .unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn blob_exists_and_mount() {
    let reg = TestRegistry::start_open().unwrap();
    let img = reg
        .pusher()
        .push_image("acme/src", Some("t"), &ImageSpec::oci().layers(2))
        .await
        .unwrap();
    let c = anon();
    let src = repo(&reg.host(), "acme/src");
    let dst = repo(&reg.host(), "acme/dst");
    let layer = &img.layers[0].digest;
    assert!(c.blob_exists(&src, layer).await.unwrap());
    assert!(!c.blob_exists(&dst, layer).await.unwrap());
    assert_eq!(
        c.mount_blob(&dst, layer, &src).await.unwrap(),
        MountResult::Mounted
    );
    assert!(c.blob_exists(&dst, layer).await.unwrap());
    // Mounting a blob the source does not have opens an upload session instead.
    let missing = sha256_digest(b"not pushed anywhere");
    match c.mount_blob(&dst, &missing, &src).await.unwrap() {
        MountResult::UploadStarted { location } => {
            assert!(location.starts_with(&reg.url()), "{location}");
            c.cancel_upload(&dst, &location).await.unwrap();
        }
        other => panic!("{other:?}"),
    }
    // copy_blob: already there / mount within one registry.
    assert_eq!(
        c.copy_blob(&src, &dst, layer).await.unwrap(),
        CopyOutcome::AlreadyPresent
    );
    assert_eq!(
        c.copy_blob(&src, &dst, &img.layers[1].digest)
            .await
            .unwrap(),
        CopyOutcome::Mounted
    );
}

/// A whole image copied across two registries by streaming (monolithic and chunked), then
/// its manifest PUT: the target serves the same digest.
#[tokio::test]
async fn copy_image_across_registries() {
    let a = TestRegistry::start_open().unwrap();
    let b = TestRegistry::start_htpasswd(&[("bob", "pw")]).unwrap();
    let img = a
        .pusher()
        .push_image(
            "acme/x",
            Some("t"),
            &ImageSpec::oci().layers(2).layer_size(300_000),
        )
        .await
        .unwrap();
    let c = client(Credentials::none().with_basic(&b.host(), "bob", "pw"));
    let from = repo(&a.host(), "acme/x");
    for (name, mode) in [
        ("mono/x", UploadMode::Monolithic),
        (
            "chunked/x",
            UploadMode::Chunked {
                chunk_size: 64 * 1024,
            },
        ),
    ] {
        let to = repo(&b.host(), name);
        let m = c.get_manifest(&from, "t").await.unwrap();
        for blob in m.parse().unwrap().blobs() {
            let out = c
                .copy_blob_with(&from, &to, &blob.digest, mode)
                .await
                .unwrap();
            assert_eq!(
                out,
                CopyOutcome::Copied {
                    bytes: blob.size as u64
                },
                "{name}"
            );
        }
        assert_eq!(
            c.put_manifest(&to, "t", &m.bytes, &m.media_type)
                .await
                .unwrap(),
            img.digest
        );
        assert_eq!(c.probe(&to, "t").await.digest(), Some(img.digest.as_str()));
        // The copied layers are byte-identical (the registry checked the digest; so did we).
        assert!(c.blob_exists(&to, &img.layers[1].digest).await.unwrap());
    }
}

/// `get_blob` reads a small blob whole through the client's own transport: the bytes are
/// the pushed ones, a blob over the limit is refused, a missing one is a typed 404, a body cut
/// off mid-read is asked again, and content that does not hash to the digest is refused.
#[tokio::test]
async fn get_blob_is_bounded_verified_and_retried() {
    let reg = TestRegistry::start_open().unwrap();
    let pusher = reg.pusher();
    let img = pusher
        .push_image(
            "acme/blob",
            Some("t"),
            &ImageSpec::oci().layers(1).layer_size(50_000),
        )
        .await
        .unwrap();
    let c = anon();
    let r = repo(&reg.host(), "acme/blob");
    let config = c
        .get_blob(&r, &img.config.digest, 1024 * 1024)
        .await
        .unwrap();
    assert_eq!(
        config,
        pusher
            .get_blob("acme/blob", &img.config.digest)
            .await
            .unwrap()
    );
    assert_eq!(sha256_digest(&config), img.config.digest);

    // Over the limit: refused, not read whole.
    let layer = &img.layers[0];
    let err = c
        .get_blob(&r, &layer.digest, 10_000)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("limit"), "{err}");

    // Missing: the registry's 404, typed.
    let missing = sha256_digest(b"never pushed");
    let err = c.get_blob(&r, &missing, 1024).await.unwrap_err();
    let http = err
        .chain()
        .find_map(|e| e.downcast_ref::<HttpError>())
        .unwrap_or_else(|| panic!("expected an HttpError: {err:#}"));
    assert_eq!(http.status, 404);

    // A body cut off once is asked again; the retry gets the whole blob.
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(Fault::TruncateBody(100), Trigger::FirstN(1)).path_contains("/blobs/")],
    )
    .unwrap();
    let via = repo(&proxy.host(), "acme/blob");
    let got = c.get_blob(&via, &layer.digest, 1024 * 1024).await.unwrap();
    assert_eq!(sha256_digest(&got), layer.digest);
    assert_eq!(proxy.faults_injected(), 1);

    // Bytes that are not the digest's: refused.
    let liar = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(
            Fault::Respond {
                code: 200,
                headers: vec![("Content-Type".into(), "application/octet-stream".into())],
                body: b"{\"os\":\"linux\",\"architecture\":\"amd64\"}".to_vec(),
            },
            Trigger::Always,
        )
        .path_contains("/blobs/")],
    )
    .unwrap();
    let err = c
        .get_blob(
            &repo(&liar.host(), "acme/blob"),
            &img.config.digest,
            1024 * 1024,
        )
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("digest mismatch"), "{err:#}");
}

/// `get_blob` behind token auth: the same handshake and token cache as manifests.
#[tokio::test]
async fn get_blob_through_token_auth() {
    let reg = TestRegistry::start_token(skip_testkit::TokenOptions::default()).unwrap();
    let img = reg
        .pusher()
        .push_image("acme/tok", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let c = anon();
    let r = repo(&reg.host(), "acme/tok");
    let m = c.get_manifest(&r, "t").await.unwrap();
    let hits = reg.token_server().unwrap().hits();
    let cfg = c
        .get_blob(&r, &img.config.digest, 1024 * 1024)
        .await
        .unwrap();
    assert_eq!(sha256_digest(&cfg), img.config.digest);
    assert_eq!(m.digest, img.digest);
    // The pull token fetched for the manifest is reused for the blob.
    assert_eq!(reg.token_server().unwrap().hits(), hits);
}
