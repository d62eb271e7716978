//! Retries through the fault proxy in front of a real registry: transient failures are
//! retried with bounded waits; persistent ones end in `Unknown`, never in a guess.

mod common;

use std::time::{Duration, Instant};

use common::{anon, options, repo};
use skip_registry::{Client, ClientOptions, Credentials, Probe};
use skip_testkit::{Fault, FaultProxy, FaultRule, ImageSpec, PushedImage, TestRegistry, Trigger};

async fn setup() -> (TestRegistry, PushedImage) {
    let reg = TestRegistry::start_open().unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    (reg, img)
}

#[tokio::test]
async fn honours_retry_after_seconds_on_429_then_succeeds() {
    let (reg, img) = setup().await;
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(
            Fault::status_retry_after(429, "1"),
            Trigger::FirstN(1),
        )],
    )
    .unwrap();
    let start = Instant::now();
    let p = anon().probe(&repo(&proxy.host(), "acme/x"), "t").await;
    let took = start.elapsed();
    assert_eq!(p.digest(), Some(img.digest.as_str()));
    assert!(
        took >= Duration::from_millis(950),
        "Retry-After: 1 not honoured ({took:?})"
    );
    assert_eq!(proxy.faults_injected(), 1);
}

#[tokio::test]
async fn ghcr_style_millisecond_retry_after_and_the_cap() {
    let (reg, img) = setup().await;
    // 1200 without a unit: milliseconds.
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(
            Fault::status_retry_after(429, "1200"),
            Trigger::FirstN(1),
        )],
    )
    .unwrap();
    let start = Instant::now();
    assert_eq!(
        anon()
            .probe(&repo(&proxy.host(), "acme/x"), "t")
            .await
            .digest(),
        Some(img.digest.as_str())
    );
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1150), "{took:?}");

    // An hour-long Retry-After is cut to max_retry_wait.
    proxy.set_rules(vec![FaultRule::new(
        Fault::status_retry_after(503, "Wed, 21 Oct 2099 07:28:00 GMT"),
        Trigger::FirstN(1),
    )]);
    let c = Client::new(ClientOptions {
        max_retry_wait: Duration::from_millis(300),
        ..options(Credentials::none())
    })
    .unwrap();
    // Uncapped, this waits until 2099: a hang guard (not a speed bound) turns that into a failure.
    let probe = tokio::time::timeout(
        Duration::from_secs(120),
        c.probe(&repo(&proxy.host(), "acme/x"), "t"),
    )
    .await
    .expect("an hour-long Retry-After was not cut to max_retry_wait");
    assert!(probe.is_present());
}

#[tokio::test]
async fn burst_of_503_then_success() {
    let (reg, img) = setup().await;
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(Fault::status(503), Trigger::FirstN(3))],
    )
    .unwrap();
    assert_eq!(
        anon()
            .probe(&repo(&proxy.host(), "acme/x"), "t")
            .await
            .digest(),
        Some(img.digest.as_str())
    );
    assert_eq!(proxy.faults_injected(), 3);
    assert_eq!(proxy.request_count(), 4);
}

#[tokio::test]
async fn persistent_503_is_unknown_after_bounded_attempts() {
    let (reg, _img) = setup().await;
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(Fault::status(503), Trigger::Always)],
    )
    .unwrap();
    match anon().probe(&repo(&proxy.host(), "acme/x"), "t").await {
        Probe::Unknown { reason } => assert!(
            reason.contains("HTTP 503") && reason.contains("4 attempts"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(proxy.request_count(), 4);
    // Same for the other retryable statuses.
    for code in [500u16, 502, 504, 408, 429] {
        proxy.set_rules(vec![FaultRule::new(Fault::status(code), Trigger::Always)]);
        assert!(
            matches!(
                anon().probe(&repo(&proxy.host(), "acme/x"), "t").await,
                Probe::Unknown { .. }
            ),
            "{code}"
        );
    }
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let (reg, img) = setup().await;
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(Fault::Reset, Trigger::FirstN(2))],
    )
    .unwrap();
    assert_eq!(
        anon()
            .probe(&repo(&proxy.host(), "acme/x"), "t")
            .await
            .digest(),
        Some(img.digest.as_str())
    );
    assert_eq!(proxy.faults_injected(), 2);
    proxy.set_rules(vec![FaultRule::new(Fault::Reset, Trigger::Always)]);
    assert!(matches!(
        anon().probe(&repo(&proxy.host(), "acme/x"), "t").await,
        Probe::Unknown { .. }
    ));
}

#[tokio::test]
async fn stalls_time_out_into_unknown() {
    let (reg, img) = setup().await;
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(
            Fault::Stall(Duration::from_secs(3)),
            Trigger::Always,
        )],
    )
    .unwrap();
    let c = Client::new(ClientOptions {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..options(Credentials::none())
    })
    .unwrap();
    // The stall ends after 3 s with a good answer: `Unknown` with "timed out" is the client's
    // 300 ms timeout firing, not the stall ending.
    match c.probe(&repo(&proxy.host(), "acme/x"), "t").await {
        Probe::Unknown { reason } => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // One stall, then fine.
    proxy.set_rules(vec![FaultRule::new(
        Fault::Stall(Duration::from_secs(3)),
        Trigger::FirstN(1),
    )]);
    assert_eq!(
        c.probe(&repo(&proxy.host(), "acme/x"), "t").await.digest(),
        Some(img.digest.as_str())
    );
}

#[tokio::test]
async fn truncated_manifest_body_is_retried_not_accepted() {
    let (reg, img) = setup().await;
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![FaultRule::new(Fault::TruncateBody(20), Trigger::FirstN(2)).method("GET")],
    )
    .unwrap();
    let m = anon()
        .get_manifest(&repo(&proxy.host(), "acme/x"), "t")
        .await
        .unwrap();
    assert_eq!(m.bytes, img.manifest);
    assert_eq!(proxy.faults_injected(), 2);
    proxy.set_rules(vec![FaultRule::new(
        Fault::TruncateBody(20),
        Trigger::Always,
    )
    .method("GET")]);
    assert!(anon()
        .get_manifest(&repo(&proxy.host(), "acme/x"), "t")
        .await
        .is_err());
}

/// Under seeded random faults, answers are never wrong: an existing tag is Present with
/// the right digest or Unknown, a missing tag is Absent or Unknown — never Present.
#[tokio::test]
async fn random_faults_never_produce_a_false_answer() {
    let (reg, img) = setup().await;
    let faults = vec![
        FaultRule::new(
            Fault::status(503),
            Trigger::Rate {
                probability: 0.15,
                seed: 1,
            },
        ),
        FaultRule::new(
            Fault::status_retry_after(429, "0"),
            Trigger::Rate {
                probability: 0.1,
                seed: 2,
            },
        ),
        FaultRule::new(
            Fault::Reset,
            Trigger::Rate {
                probability: 0.1,
                seed: 3,
            },
        ),
        FaultRule::new(
            Fault::status(502),
            Trigger::Rate {
                probability: 0.1,
                seed: 4,
            },
        ),
    ];
    let proxy = FaultProxy::start(&reg.host(), faults).unwrap();
    let c = Client::new(ClientOptions {
        retries: 5,
        ..options(Credentials::none())
    })
    .unwrap();
    let r = repo(&proxy.host(), "acme/x");
    let (mut present, mut absent) = (0, 0);
    for i in 0..20 {
        match c.probe(&r, "t").await {
            Probe::Present { digest, .. } => {
                assert_eq!(digest, img.digest);
                present += 1;
            }
            Probe::Unknown { .. } => {}
            Probe::Absent => panic!("existing tag reported absent (round {i})"),
        }
        match c.probe(&r, &format!("missing-{i}")).await {
            Probe::Absent => absent += 1,
            Probe::Unknown { .. } => {}
            p @ Probe::Present { .. } => panic!("FALSE SKIP: missing tag reported {p:?}"),
        }
    }
    assert!(proxy.faults_injected() > 5, "faults were not injected");
    // With 6 attempts per probe almost every probe gets through.
    assert!(
        present >= 18 && absent >= 18,
        "present {present}, absent {absent}"
    );
}
