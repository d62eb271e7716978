//! A registry behind a private CA, as a company's Gitea or Harbor is: the real `docker-registry`
//! serving HTTPS with a certificate from a CA made in the test, reached by name through a
//! `CONNECT` proxy (HTTPS_PROXY; clients speak plain http to 127.*). decide trusts the CA when
//! SSL_CERT_FILE or SSL_CERT_DIR names it — in addition to the bundled roots — and sees the
//! registry's tags; without it every probe fails with UnknownIssuer, and every image is built
//! with a reason that says so and what to do (never skipped).

mod common;

use common::*;
use skip_testkit::{ConnectProxy, ImageSpec, PushAuth, Pusher, TestCa, TestRegistry};

const NAME: &str = "registry.skip-test.invalid";
const REPO: &str = "acme/tls";

struct World {
    ca: TestCa,
    _reg: TestRegistry,
    proxy: ConnectProxy,
    ws: Ws,
    host: String,
    tag: String,
    /// An empty directory: SSL_CERT_DIR pointed here adds nothing.
    empty: tempfile::TempDir,
}

fn world() -> World {
    let ca = TestCa::new(NAME).unwrap();
    let reg = TestRegistry::start_tls(&ca.cert_path(), &ca.key_path()).unwrap();
    let proxy = ConnectProxy::start(&reg.host()).unwrap();
    let host = format!("{NAME}:{}", reg.port());
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!(
            "version: 1\nrepository: {host}/{REPO}\nimages:\n  base:\n    tag: base-{{hash}}\n"
        ),
    );
    ws.write("Dockerfile", "FROM scratch\nCOPY motd /etc/motd\n");
    ws.write("motd", "private CA\n");
    let tag = ws.hash_json()["images"][0]["tag"]
        .as_str()
        .unwrap()
        .to_string();

    // The image exists: pushed over TLS, trusting the test CA, the name resolved to 127.0.0.1.
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap())
        .resolve(NAME, reg.host().parse().unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let pusher = Pusher::with_http(&format!("https://{host}"), PushAuth::None, http);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(pusher.push_image(REPO, Some(&tag), &ImageSpec::oci()))
        .unwrap();
    World {
        ca,
        _reg: reg,
        proxy,
        ws,
        host,
        tag,
        empty: tempfile::tempdir().unwrap(),
    }
}

impl World {
    /// decide through the proxy, with `trust` (SSL_CERT_FILE / SSL_CERT_DIR) on top.
    fn decide(&self, trust: &[(&str, &str)]) -> GhRun {
        let proxy = self.proxy.url();
        let mut env: Vec<(&str, &str)> = vec![
            ("HTTPS_PROXY", proxy.as_str()),
            ("https_proxy", proxy.as_str()),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
            ("SSL_CERT_FILE", ""),
            ("SSL_CERT_DIR", self.empty.path().to_str().unwrap()),
        ];
        env.extend_from_slice(trust);
        gh_run(&self.ws, "decide", &[], &env)
    }
}

#[test]
fn decide_trusts_a_private_ca_named_by_ssl_cert_file() {
    let w = world();
    let ca = w.ca.ca_path();
    let d = w.decide(&[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert_eq!(d.get("need_build"), "", "{}", d.everything());
    let (build, reason) = &d.plan()["base"];
    assert!(!build, "{reason}");
    assert_eq!(d.get("base_tag"), w.tag);
    assert!(
        w.proxy.connects().contains(&w.host),
        "decide did not go through the proxy to {}: {:?}",
        w.host,
        w.proxy.connects()
    );
    assert!(
        !d.everything().contains("UnknownIssuer"),
        "{}",
        d.everything()
    );
}

#[test]
fn decide_trusts_a_private_ca_in_ssl_cert_dir() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(w.ca.ca_path(), dir.path().join("company-ca.pem")).unwrap();
    let d = w.decide(&[("SSL_CERT_DIR", dir.path().to_str().unwrap())]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert_eq!(d.get("need_build"), "", "{}", d.everything());
}

#[test]
fn without_the_ca_decide_builds_everything_and_says_why() {
    let w = world();
    let d = w.decide(&[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert_eq!(d.get("need_build"), "true", "{}", d.everything());
    assert_eq!(d.get("base_need_build"), "true");
    let (build, reason) = &d.plan()["base"];
    assert!(build);
    assert!(
        reason.contains("UnknownIssuer") && reason.contains("SSL_CERT_FILE"),
        "the reason must name the TLS failure and the fix: {reason}"
    );
    assert!(reason.ends_with("building to be safe"), "{reason}");
    // The registry was asked (through the proxy), not skipped.
    assert!(
        w.proxy.connects().contains(&w.host),
        "{:?}",
        w.proxy.connects()
    );

    // A CA file that is not there: the same safe build, and a warning naming the file.
    let d = w.decide(&[("SSL_CERT_FILE", "/nonexistent/company-ca.pem")]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert_eq!(d.get("need_build"), "true");
    assert!(
        d.stderr.contains("/nonexistent/company-ca.pem"),
        "{}",
        d.stderr
    );
}

/// The jobs API (`promote --require-jobs`) is on the same trust policy: an HTTPS server whose
/// certificate comes from the test CA (the TLS registry, for its real TLS; its 404 stands for the
/// API's answer) is reached when SSL_CERT_FILE names the CA, and refused as UnknownIssuer when not.
#[test]
fn the_jobs_api_trusts_the_same_ca() {
    let ca = TestCa::new("127.0.0.1").unwrap();
    let server = TestRegistry::start_tls(&ca.cert_path(), &ca.key_path()).unwrap();
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        "version: 1\nrepository: 127.0.0.1:9/acme/jobs\nimages:\n  base:\n    tag: base-{hash}\n    promote: [base-latest]\n",
    );
    ws.write("Dockerfile", "FROM scratch\n");
    let api = format!("https://{}/api/v1", server.host());
    let empty = tempfile::tempdir().unwrap();
    let ca_path = ca.ca_path();
    let run = |cert_file: &str| {
        gh_run(
            &ws,
            "promote",
            &["--wait", "0", "--require-jobs", "test"],
            &[
                ("GITHUB_API_URL", api.as_str()),
                ("GITHUB_REPOSITORY", "acme/jobs"),
                ("GITHUB_RUN_ID", "42"),
                ("GITHUB_TOKEN", "tok-tls-123"),
                ("SSL_CERT_FILE", cert_file),
                ("SSL_CERT_DIR", empty.path().to_str().unwrap()),
            ],
        )
    };
    let trusted = run(ca_path.to_str().unwrap());
    let untrusted = run("");
    assert_ne!(trusted.code, Some(0));
    assert_ne!(untrusted.code, Some(0));
    assert!(
        !trusted.everything().contains("UnknownIssuer")
            && !trusted.everything().contains("certificate"),
        "{}",
        trusted.everything()
    );
    assert!(
        trusted.stderr.contains("answered 404"),
        "{}",
        trusted.stderr
    );
    assert!(
        untrusted.stderr.contains("UnknownIssuer") && untrusted.stderr.contains("SSL_CERT_FILE"),
        "{}",
        untrusted.stderr
    );
    assert!(!trusted.everything().contains("tok-tls-123"));
}
