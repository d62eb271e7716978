//! Authentication against real registries: open, htpasswd (Basic) and token auth, with
//! credentials from explicit inputs, docker config.json and credential helpers.

mod common;

use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use common::{anon, client, repo};
use skip_registry::auth::Credential;
use skip_registry::{AuthError, Credentials, Probe, Secret};
use skip_testkit::{ImageSpec, TestRegistry, TokenField, TokenOptions};

const PASSWORD: &str = "s3cret-Pa55word";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unknown_reason(p: Probe) -> String {
    match p {
        Probe::Unknown { reason } => reason,
        other => panic!("expected Unknown, got {other:?}"),
    }
}

fn auth_error(e: anyhow::Error) -> AuthError {
    match e.downcast_ref::<AuthError>() {
        Some(a) => a.clone(),
        None => panic!("expected an AuthError, got: {e:#}"),
    }
}

#[tokio::test]
async fn open_registry_needs_nothing() {
    let reg = TestRegistry::start_open().unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let c = anon();
    let r = repo(&reg.host(), "acme/x");
    assert_eq!(c.probe(&r, "t").await.digest(), Some(img.digest.as_str()));
    // Pushing works anonymously too.
    let d = c
        .put_manifest(&r, "t2", &img.manifest, &img.media_type)
        .await
        .unwrap();
    assert_eq!(d, img.digest);
}

#[tokio::test]
async fn htpasswd_basic_with_explicit_credentials() {
    let reg = TestRegistry::start_htpasswd(&[("bob", PASSWORD)]).unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let r = repo(&reg.host(), "acme/x");

    let good = client(Credentials::none().with_basic(&reg.host(), "bob", PASSWORD));
    assert_eq!(
        good.probe(&r, "t").await.digest(),
        Some(img.digest.as_str())
    );
    assert_eq!(
        good.put_manifest(&r, "t2", &img.manifest, &img.media_type)
            .await
            .unwrap(),
        img.digest
    );
    assert_eq!(good.list_tags(&r).await.unwrap().len(), 2);

    // No credentials: Unknown, with a message that says none were found and how to fix.
    let reason = unknown_reason(anon().probe(&r, "t").await);
    assert!(reason.contains("no credentials"), "{reason}");
    // The crate's own, tool-neutral advice (the action adds its own through `auth_hint`).
    assert!(reason.contains("Fix: log in to 127.0.0.1:"), "{reason}");

    // Wrong password: an auth error that names the user, never the password.
    let bad = client(Credentials::none().with_basic(&reg.host(), "bob", "wrong-password-123"));
    let reason = unknown_reason(bad.probe(&r, "t").await);
    assert!(reason.contains("401"), "{reason}");
    assert!(reason.contains("\"bob\""), "{reason}");
    assert!(reason.contains("explicit username/password"), "{reason}");
    assert!(!reason.contains("wrong-password-123"), "{reason}");
    let err = bad
        .put_manifest(&r, "t3", &img.manifest, &img.media_type)
        .await
        .unwrap_err();
    let a = auth_error(err);
    assert!(a.to_string().contains("username"), "{a}");
    assert!(!format!("{a:?}").contains("wrong-password-123"));
}

#[tokio::test]
async fn token_auth_anonymous_pull_basic_push_and_caching() {
    let reg = TestRegistry::start_token(TokenOptions {
        users: vec![("alice".into(), PASSWORD.into())],
        ..TokenOptions::default()
    })
    .unwrap();
    let ts = reg.token_server().unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let r = repo(&reg.host(), "acme/x");

    // Anonymous: a pull token, so probes work...
    let c = anon();
    assert_eq!(c.probe(&r, "t").await.digest(), Some(img.digest.as_str()));
    // ...and pushes are refused with an auth error, not retried forever.
    let hits_before = ts.hits();
    let err = c
        .put_manifest(&r, "pushed-anon", &img.manifest, &img.media_type)
        .await
        .unwrap_err();
    let a = auth_error(err);
    assert!(a.message.contains("anonymous"), "{a}");
    assert!(a.message.contains("Fix: log in to 127.0.0.1:"), "{a}");
    assert!(
        ts.hits() - hits_before <= 2,
        "token server hit {} times",
        ts.hits() - hits_before
    );
    assert_eq!(c.probe(&r, "pushed-anon").await, Probe::Absent);

    // Basic credentials get a push token.
    let alice = client(Credentials::none().with_basic(&reg.host(), "alice", PASSWORD));
    let d = alice
        .put_manifest(&r, "pushed", &img.manifest, &img.media_type)
        .await
        .unwrap();
    assert_eq!(d, img.digest);
    let log = ts.requests();
    let last = log.last().unwrap();
    assert_eq!(last.user.as_deref(), Some("alice"));
    assert!(
        last.scopes
            .iter()
            .any(|s| s == "repository:acme/x:pull,push"),
        "{:?}",
        last.scopes
    );

    // Tokens are cached per (host, scopes): many probes, one token request.
    let fresh = client(Credentials::none().with_basic(&reg.host(), "alice", PASSWORD));
    let before = ts.hits();
    for _ in 0..5 {
        assert!(fresh.probe(&r, "t").await.is_present());
    }
    assert_eq!(ts.hits() - before, 1);
    // A different repository is a different scope: one more token.
    reg.pusher()
        .push_image("acme/y", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let ry = repo(&reg.host(), "acme/y");
    for _ in 0..3 {
        assert!(fresh.probe(&ry, "t").await.is_present());
    }
    assert_eq!(ts.hits() - before, 2);
    // Concurrent first requests share one token fetch.
    let conc = client(Credentials::none().with_basic(&reg.host(), "alice", PASSWORD));
    let before = ts.hits();
    let probes: Vec<_> = (0..8)
        .map(|_| {
            let c = conc.clone();
            let r = r.clone();
            tokio::spawn(async move { c.probe(&r, "t").await })
        })
        .collect();
    for p in probes {
        assert!(p.await.unwrap().is_present());
    }
    assert_eq!(ts.hits() - before, 1);
}

#[tokio::test]
async fn token_auth_wrong_password_is_a_clear_auth_error() {
    let reg = TestRegistry::start_token(TokenOptions {
        users: vec![("alice".into(), PASSWORD.into())],
        anonymous_pull: false,
        ..TokenOptions::default()
    })
    .unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let r = repo(&reg.host(), "acme/x");
    let ts = reg.token_server().unwrap();

    let bad = client(Credentials::none().with_basic(&reg.host(), "alice", "not-the-password"));
    let before = ts.hits();
    let reason = unknown_reason(bad.probe(&r, "t").await);
    assert!(reason.contains("token server"), "{reason}");
    assert!(reason.contains("refused"), "{reason}");
    assert!(reason.contains("\"alice\""), "{reason}");
    // The crate's own, tool-neutral advice (the action adds its own through `auth_hint`).
    assert!(reason.contains("Fix: log in to 127.0.0.1:"), "{reason}");
    assert!(!reason.contains("not-the-password"), "{reason}");
    // A 401 from the token server is final: one request, no retry loop.
    assert_eq!(ts.hits() - before, 1);

    let err = bad
        .put_manifest(&r, "x", &img.manifest, &img.media_type)
        .await
        .unwrap_err();
    assert!(!format!("{err:#}").contains("not-the-password"));
    assert!(!format!("{err:?}").contains("not-the-password"));
    auth_error(err);

    // Anonymous is refused outright on this registry.
    let reason = unknown_reason(anon().probe(&r, "t").await);
    assert!(
        reason.contains("no credentials (anonymous: nothing for"),
        "{reason}"
    );
}

#[tokio::test]
async fn token_field_variants_are_all_accepted() {
    for field in [TokenField::Token, TokenField::AccessToken, TokenField::Both] {
        let reg = TestRegistry::start_token(TokenOptions {
            field,
            expires_in: None,
            ..TokenOptions::default()
        })
        .unwrap();
        let img = reg
            .pusher()
            .push_image("acme/x", Some("t"), &ImageSpec::oci())
            .await
            .unwrap();
        let p = anon().probe(&repo(&reg.host(), "acme/x"), "t").await;
        assert_eq!(p.digest(), Some(img.digest.as_str()), "{field:?}");
    }
}

#[tokio::test]
async fn identity_token_uses_the_refresh_token_post() {
    let reg = TestRegistry::start_token(TokenOptions {
        anonymous_pull: false,
        refresh_tokens: vec![("refresh-abc-123".into(), "alice".into())],
        ..TokenOptions::default()
    })
    .unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let r = repo(&reg.host(), "acme/x");
    let c = client(Credentials::none().with_credential(
        &reg.host(),
        Credential::IdentityToken {
            username: None,
            token: Secret::new("refresh-abc-123"),
        },
    ));
    assert_eq!(
        c.put_manifest(&r, "t2", &img.manifest, &img.media_type)
            .await
            .unwrap(),
        img.digest
    );
    let last = reg.token_server().unwrap().requests().pop().unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.user.as_deref(), Some("alice"));
}

fn write_config(dir: &std::path::Path, json: &str) -> std::path::PathBuf {
    let p = dir.join("config.json");
    std::fs::write(&p, json).unwrap();
    p
}

#[tokio::test]
async fn docker_config_auths_and_repository_prefix_keys() {
    let reg = TestRegistry::start_htpasswd(&[("team-a", "pw-a"), ("other", "pw-other")]).unwrap();
    let pusher = reg.pusher();
    let a = pusher
        .push_image("team-a/app", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    pusher
        .push_image("team-b/app", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = reg.host();

    // Plain host key with `auth`.
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
            b64("team-a:pw-a")
        ),
    );
    let c = client(Credentials::none().with_docker_config_file(&cfg).unwrap());
    assert_eq!(
        c.probe(&repo(&host, "team-a/app"), "t").await.digest(),
        Some(a.digest.as_str())
    );

    // The same through DOCKER_CONFIG, as login-action leaves it.
    let dcfg = dir.path().display().to_string();
    let c = client(
        Credentials::from_env_vars(|k| (k == "DOCKER_CONFIG").then(|| dcfg.clone())).unwrap(),
    );
    assert!(c.probe(&repo(&host, "team-a/app"), "t").await.is_present());

    // Repository-prefix keys: the most specific key wins; the host key covers the rest.
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"{{"auths":{{"{host}/team-a":{{"auth":"{}"}},"{host}":{{"username":"other","password":"wrong"}}}}}}"#,
            b64("team-a:pw-a")
        ),
    );
    let c = client(Credentials::none().with_docker_config_file(&cfg).unwrap());
    assert!(c.probe(&repo(&host, "team-a/app"), "t").await.is_present());
    let reason = unknown_reason(c.probe(&repo(&host, "team-b/app"), "t").await);
    assert!(reason.contains(&format!("auths \"{host}\"")), "{reason}");
    assert!(reason.contains("\"other\""), "{reason}");
    assert!(!reason.contains("wrong"), "{reason}");

    // URL-style keys (what `docker login http://…` writes) match by host.
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"{{"auths":{{"http://{host}/v2/":{{"auth":"{}"}}}}}}"#,
            b64("team-a:pw-a")
        ),
    );
    let c = client(Credentials::none().with_docker_config_file(&cfg).unwrap());
    assert!(c.probe(&repo(&host, "team-a/app"), "t").await.is_present());
}

/// A `docker-credential-test` helper speaking docker's protocol: server URL on stdin,
/// JSON on stdout, "credentials not found" for anything else.
fn write_helper(dir: &std::path::Path, host: &str, user: &str, pass: &str) {
    let script = format!(
        r#"#!/bin/sh
[ "$1" = "get" ] || exit 2
read -r server
echo "$server" >> "{log}"
if [ "$server" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"{user}","Secret":"{pass}"}}\n' "$server"
else
  echo "credentials not found in native keychain"
  exit 1
fi
"#,
        log = dir.join("helper.log").display()
    );
    let p = dir.join("docker-credential-test");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn creds_store_and_cred_helpers() {
    let reg = TestRegistry::start_htpasswd(&[("helper-user", "helper-pass")]).unwrap();
    let img = reg
        .pusher()
        .push_image("acme/x", Some("t"), &ImageSpec::oci())
        .await
        .unwrap();
    let host = reg.host();
    let r = repo(&host, "acme/x");
    let bin = tempfile::tempdir().unwrap();
    write_helper(bin.path(), &host, "helper-user", "helper-pass");
    let dir = tempfile::tempdir().unwrap();

    for cfg_json in [
        r#"{"credsStore":"test"}"#.to_string(),
        format!(r#"{{"credHelpers":{{"{host}":"test"}}}}"#),
    ] {
        let cfg = write_config(dir.path(), &cfg_json);
        let c = client(
            Credentials::none()
                .with_docker_config_file(&cfg)
                .unwrap()
                .with_helper_path(bin.path()),
        );
        assert_eq!(
            c.probe(&r, "t").await.digest(),
            Some(img.digest.as_str()),
            "{cfg_json}"
        );
        assert_eq!(
            c.put_manifest(&r, "t2", &img.manifest, &img.media_type)
                .await
                .unwrap(),
            img.digest
        );
    }
    let log = std::fs::read_to_string(bin.path().join("helper.log")).unwrap();
    assert!(log.lines().all(|l| l == host), "{log}");
    // Resolved once per repository per client, not once per request.
    assert_eq!(log.lines().count(), 2, "{log}");

    // credsStore with nothing for this host falls back to auths.
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"{{"credsStore":"test","auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
            b64("helper-user:helper-pass")
        ),
    );
    let other_bin = tempfile::tempdir().unwrap();
    write_helper(other_bin.path(), "some.other.host", "x", "y");
    let c = client(
        Credentials::none()
            .with_docker_config_file(&cfg)
            .unwrap()
            .with_helper_path(other_bin.path()),
    );
    assert!(c.probe(&r, "t").await.is_present());

    // A helper that is not installed: the auth error says so.
    let cfg = write_config(dir.path(), r#"{"credsStore":"missing"}"#);
    let c = client(
        Credentials::none()
            .with_docker_config_file(&cfg)
            .unwrap()
            .with_helper_path(bin.path()),
    );
    let reason = unknown_reason(c.probe(&r, "t").await);
    assert!(
        reason.contains("docker-credential-missing is not on PATH"),
        "{reason}"
    );
}

/// The "Fix:" advice is the caller's to give: an application installs its own.
#[tokio::test]
async fn auth_errors_carry_the_callers_fix_hint() {
    let reg = TestRegistry::start_htpasswd(&[("bob", PASSWORD)]).unwrap();
    fn hint(registry: &str) -> String {
        format!("run the login step for {registry}")
    }
    let c = skip_registry::Client::new(skip_registry::ClientOptions {
        auth_hint: hint,
        ..common::options(Credentials::none())
    })
    .unwrap();
    let reason = unknown_reason(c.probe(&repo(&reg.host(), "acme/x"), "t").await);
    assert!(
        reason.contains(&format!("Fix: run the login step for {}", reg.host())),
        "{reason}"
    );
    assert!(!reason.contains("docker login"), "{reason}");
}
