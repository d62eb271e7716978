//! Secrets never reach tracing output. In its own test binary because tracing caches
//! per-callsite interest process-wide: a test running in parallel without a subscriber
//! can make a scoped subscriber here miss events.

mod common;

use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{client, repo};
use skip_registry::Credentials;
use skip_testkit::{ImageSpec, TestRegistry, TokenOptions};

const PASSWORD: &str = "s3cret-Pa55word";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Secrets appear in no tracing output, whatever the level.
#[tokio::test]
async fn secrets_never_reach_logs() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let w = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || w.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let reg = TestRegistry::start_token(TokenOptions {
        users: vec![("alice".into(), PASSWORD.into())],
        ..TokenOptions::default()
    })
    .unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let r = repo(&reg.host(), "acme/x");
    let good = client(Credentials::none().with_basic(&reg.host(), "alice", PASSWORD));
    good.put_manifest(&r, "t2", &img.manifest, &img.media_type)
        .await
        .unwrap();
    let bad = client(Credentials::none().with_basic(&reg.host(), "alice", "bad-Pa55-word"));
    let _ = bad.probe(&r, "t").await;

    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        out.contains("registry answered"),
        "tracing captured nothing:\n{out}"
    );
    for secret in [
        PASSWORD,
        "bad-Pa55-word",
        &b64(&format!("alice:{PASSWORD}")),
        "eyJ",
    ] {
        assert!(!out.contains(secret), "{secret:?} leaked into logs:\n{out}");
    }
    assert!(!format!("{good:?}").contains(PASSWORD));
}
