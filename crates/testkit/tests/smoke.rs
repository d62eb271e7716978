//! The kit checks itself against the real registry: each auth mode starts, accepts pushes
//! from the pusher, and refuses what it should refuse.

use skip_testkit::{
    Fault, FaultProxy, FaultRule, Format, ImageSpec, TestRegistry, TokenOptions, Trigger,
};

async fn status(url: &str, accept: Option<&str>, auth: Option<String>) -> u16 {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut rb = c.head(url);
    if let Some(a) = accept {
        rb = rb.header("Accept", a);
    }
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    rb.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn open_registry_push_and_head() {
    let reg = TestRegistry::start_open().unwrap();
    let p = reg.pusher();
    let img = p
        .push_image("t/a", Some("v1"), &ImageSpec::oci())
        .await
        .unwrap();
    let url = format!("{}/v2/t/a/manifests/v1", reg.url());
    assert_eq!(
        status(&url, Some(skip_testkit::push::OCI_MANIFEST), None).await,
        200
    );
    let child = p
        .push_image("t/b", Some("v1"), &ImageSpec::docker().from_parent(&img))
        .await
        .unwrap();
    assert_eq!(child.layers[0], img.layers[0]);
    let idx = p
        .push_multiarch("t/m", "v1", Format::Oci, None)
        .await
        .unwrap();
    assert_eq!(idx.children.len(), 2);
    let url = format!("{}/v2/t/m/manifests/v1", reg.url());
    assert_eq!(
        status(&url, Some(skip_testkit::push::OCI_MANIFEST), None).await,
        404
    );
    assert_eq!(
        status(&url, Some(skip_testkit::push::OCI_INDEX), None).await,
        200
    );
}

#[tokio::test]
async fn htpasswd_registry_requires_basic() {
    let reg = TestRegistry::start_htpasswd(&[("bob", "hunter2")]).unwrap();
    reg.pusher()
        .push_image("t/a", Some("v1"), &ImageSpec::oci())
        .await
        .unwrap();
    let url = format!("{}/v2/t/a/manifests/v1", reg.url());
    assert_eq!(
        status(&url, Some(skip_testkit::push::OCI_MANIFEST), None).await,
        401
    );
}

#[tokio::test]
async fn token_registry_accepts_minted_tokens() {
    let reg = TestRegistry::start_token(TokenOptions::default()).unwrap();
    reg.pusher()
        .push_image("t/a", Some("v1"), &ImageSpec::oci())
        .await
        .unwrap();
    let url = format!("{}/v2/t/a/manifests/v1", reg.url());
    assert_eq!(
        status(&url, Some(skip_testkit::push::OCI_MANIFEST), None).await,
        401
    );
    // An anonymous token from the token server grants pull.
    let ts = reg.token_server().unwrap();
    let body = reqwest::get(format!(
        "{}?service=skip-testkit-registry&scope=repository:t/a:pull",
        ts.realm()
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let tok = body["token"].as_str().unwrap();
    assert_eq!(
        status(
            &url,
            Some(skip_testkit::push::OCI_MANIFEST),
            Some(format!("Bearer {tok}"))
        )
        .await,
        200
    );
    assert_eq!(ts.hits(), 1);
}

#[tokio::test]
async fn proxy_injects_and_forwards() {
    let reg = TestRegistry::start_open().unwrap();
    reg.pusher()
        .push_image("t/a", Some("v1"), &ImageSpec::oci())
        .await
        .unwrap();
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(Fault::status(503), Trigger::FirstN(2))],
    )
    .unwrap();
    let url = format!("http://{}/v2/t/a/manifests/v1", proxy.host());
    let accept = Some(skip_testkit::push::OCI_MANIFEST);
    assert_eq!(status(&url, accept, None).await, 503);
    assert_eq!(status(&url, accept, None).await, 503);
    assert_eq!(status(&url, accept, None).await, 200);
    assert_eq!(proxy.faults_injected(), 2);
    // Uploads through the proxy (body piping, Location pointing back at the proxy).
    let p = skip_testkit::Pusher::new(
        &format!("http://{}", proxy.host()),
        skip_testkit::PushAuth::None,
    );
    p.push_image("t/c", Some("v1"), &ImageSpec::oci().layer_size(100_000))
        .await
        .unwrap();
}
