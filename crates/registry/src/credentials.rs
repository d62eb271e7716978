//! Credentials: who we are to each registry (go-containerregistry's `authn`). No HTTP here;
//! the transport ([`crate::auth`], [`crate::client`]) asks [`Credentials::resolve`] once per
//! repository.
//!
//! Credentials are found the way `docker` and docker/login-action leave them, so a workflow
//! that logged in with docker/login-action needs no extra inputs:
//! 1. explicit username/password given to the client (the action's inputs);
//! 2. `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`:
//!    `credHelpers[host]`, then `credsStore`, then `auths` (keys as hostnames, URLs such as
//!    `https://index.docker.io/v1/`, or `host/repository` prefixes, most specific wins),
//!    with `auth` (base64 `user:pass`), `username`/`password`, `identitytoken` or
//!    `registrytoken`;
//! 3. `GITHUB_TOKEN` for `ghcr.io`;
//! 4. anonymous.
//!
//! Unlike docker, a `credsStore` helper that has nothing for a host falls back to `auths`
//! rather than to anonymous: login-action on a runner without the helper writes `auths`,
//! and a stale `credsStore` line should not hide it.
//!
//! Secrets are held in [`Secret`], whose `Debug` and `Display` print `***`, so neither a
//! `{:?}` of a config nor an error chain nor a tracing field can leak one.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use crate::reference::{normalise_registry, RepoRef, DOCKER_HUB};

/// The key docker uses for Docker Hub in `auths` and when asking credential helpers.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A secret string. `Debug` and `Display` print `***`; use [`Secret::expose`] at the one
/// place the value is needed (building a header or a form).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

/// One way to authenticate to a registry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Credential {
    #[default]
    Anonymous,
    /// Username and password (or a personal access token as password).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken` in config.json, or a helper answering
    /// with username `<token>`): exchanged for access tokens by POSTing to the realm.
    IdentityToken {
        username: Option<String>,
        token: Secret,
    },
    /// A bearer token used as-is (`registrytoken` in config.json).
    RegistryToken(Secret),
}

impl Credential {
    pub fn basic(username: impl Into<String>, password: impl Into<Secret>) -> Credential {
        Credential::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credential::Anonymous)
    }

    /// A description without the secret, for messages.
    pub fn describe(&self) -> String {
        match self {
            Credential::Anonymous => "no credentials (anonymous)".into(),
            Credential::Basic { username, .. } => format!("username {username:?} with a password"),
            Credential::IdentityToken { username, .. } => match username {
                Some(u) => format!("an identity token for {u:?}"),
                None => "an identity token".into(),
            },
            Credential::RegistryToken(_) => "a registry token".into(),
        }
    }
}

/// The credential chosen for a repository, and where it came from.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub credential: Credential,
    /// Where it came from, e.g. `docker config /home/me/.docker/config.json (auths "ghcr.io")`.
    pub source: String,
    /// Sources that were looked at and failed (a helper that crashed, …), for messages.
    pub notes: Vec<String>,
}

impl Resolved {
    /// "username "bob" with a password from docker config …" — what an auth error names.
    pub fn describe(&self) -> String {
        let mut s = if self.credential.is_anonymous() {
            format!("no credentials ({})", self.source)
        } else {
            format!("{} from {}", self.credential.describe(), self.source)
        };
        for n in &self.notes {
            s.push_str(&format!("; {n}"));
        }
        s
    }
}

/// A docker `config.json`, as far as credentials go.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    pub cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    pub creds_store: Option<String>,
}

/// One `auths` entry.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    pub auth: Option<Secret>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub identitytoken: Option<Secret>,
    #[serde(default)]
    pub registrytoken: Option<Secret>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl AuthEntry {
    fn credential(&self) -> Result<Option<Credential>> {
        if let Some(t) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken {
                username: self.username.clone(),
                token: t.clone(),
            }));
        }
        if let Some(t) = self.registrytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::RegistryToken(t.clone())));
        }
        if let Some(a) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let raw = STANDARD
                .decode(a.expose().trim())
                .map_err(|_| anyhow::anyhow!("the \"auth\" value is not valid base64"))?;
            let s = String::from_utf8(raw)
                .map_err(|_| anyhow::anyhow!("the \"auth\" value is not UTF-8"))?;
            let Some((u, p)) = s.split_once(':') else {
                bail!("the \"auth\" value does not decode to user:password");
            };
            return Ok(Some(Credential::basic(u, p)));
        }
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            return Ok(Some(Credential::basic(u.clone(), p.clone())));
        }
        Ok(None)
    }
}

/// A parsed `auths`/`credHelpers` key: registry plus optional repository prefix.
fn parse_key(key: &str) -> (String, String) {
    let k = key.trim();
    // URL keys are docker's: only the host counts (`https://index.docker.io/v1/`).
    for scheme in ["https://", "http://"] {
        if let Some(rest) = k.strip_prefix(scheme) {
            let host = rest.split('/').next().unwrap_or("");
            return (normalise_registry(host), String::new());
        }
    }
    let k = k.trim_end_matches('/');
    match k.split_once('/') {
        Some((host, path)) => (normalise_registry(host), path.to_string()),
        None => (normalise_registry(k), String::new()),
    }
}

/// The best key for `repo` among `keys`: same registry, and a path prefix that is empty or
/// matches whole components of the repository; the longest prefix wins.
fn best_key<'a, I: IntoIterator<Item = &'a String>>(keys: I, repo: &RepoRef) -> Option<&'a String> {
    let mut best: Option<(&String, usize)> = None;
    for key in keys {
        let (host, path) = parse_key(key);
        if host != repo.registry {
            continue;
        }
        let matches = path.is_empty()
            || repo.repository == path
            || repo.repository.starts_with(&format!("{path}/"));
        if !matches {
            continue;
        }
        let score = if path.is_empty() { 0 } else { path.len() + 1 };
        match best {
            Some((_, s)) if s >= score => {}
            _ => best = Some((key, score)),
        }
    }
    best.map(|(k, _)| k)
}

/// Where credentials come from. Cheap to clone; resolution happens per repository.
#[derive(Clone, Debug)]
pub struct Credentials {
    explicit: Vec<(String, Credential)>,
    docker_config: Option<(PathBuf, DockerConfig)>,
    github_token: Option<Secret>,
    github_actor: Option<String>,
    helper_path: Option<OsString>,
    helper_timeout: Duration,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials::none()
    }
}

impl Credentials {
    /// No credentials at all: every request is anonymous.
    pub fn none() -> Credentials {
        Credentials {
            explicit: vec![],
            docker_config: None,
            github_token: None,
            github_actor: None,
            helper_path: None,
            helper_timeout: Duration::from_secs(30),
        }
    }

    /// From the process environment: `DOCKER_CONFIG` or `HOME` for config.json,
    /// `GITHUB_TOKEN` and `GITHUB_ACTOR` for ghcr.io.
    pub fn from_env() -> Result<Credentials> {
        Self::from_env_vars(|k| std::env::var(k).ok())
    }

    /// Like [`Credentials::from_env`] with a custom variable lookup (tests must not touch
    /// the shared process environment).
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Result<Credentials> {
        let mut c = Credentials::none();
        let dir = get("DOCKER_CONFIG")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                get("HOME")
                    .filter(|s| !s.is_empty())
                    .map(|h| Path::new(&h).join(".docker"))
            });
        if let Some(dir) = dir {
            let path = dir.join("config.json");
            if path.is_file() {
                c = c.with_docker_config_file(&path)?;
            }
        }
        if let Some(t) = get("GITHUB_TOKEN").filter(|s| !s.is_empty()) {
            c = c.with_github_token(t, get("GITHUB_ACTOR").filter(|s| !s.is_empty()));
        }
        Ok(c)
    }

    /// Username and password for a registry (or a `registry/repository` prefix). These win
    /// over everything else.
    pub fn with_basic(
        mut self,
        registry: &str,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        self.explicit
            .push((registry.to_string(), Credential::basic(username, password)));
        self
    }

    /// Any credential for a registry (or prefix), e.g. an identity token.
    pub fn with_credential(mut self, registry: &str, credential: Credential) -> Self {
        self.explicit.push((registry.to_string(), credential));
        self
    }

    /// Reads a docker config.json. A missing file is an error here (callers that probe
    /// the default location check existence first); malformed JSON always is.
    pub fn with_docker_config_file(mut self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading docker config {}", path.display()))?;
        let cfg: DockerConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "parsing docker config {} (is it valid JSON?)",
                path.display()
            )
        })?;
        self.docker_config = Some((path.to_path_buf(), cfg));
        Ok(self)
    }

    /// `GITHUB_TOKEN` as the password for ghcr.io, used when nothing else matches.
    pub fn with_github_token(mut self, token: impl Into<Secret>, actor: Option<String>) -> Self {
        self.github_token = Some(token.into());
        self.github_actor = actor;
        self
    }

    /// Where to look for `docker-credential-*` helpers instead of `$PATH`.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    /// Finds the credential for `repo`. Never fails: problems (a broken helper, a bad
    /// `auth` value) are noted and the next source is tried, so that the eventual auth
    /// error can list everything that was tried.
    pub async fn resolve(&self, repo: &RepoRef) -> Resolved {
        let mut notes = Vec::new();
        let explicit_keys: Vec<String> = self.explicit.iter().map(|(k, _)| k.clone()).collect();
        if let Some(k) = best_key(explicit_keys.iter(), repo) {
            if let Some((_, c)) = self.explicit.iter().find(|(key, _)| key == k) {
                return Resolved {
                    credential: c.clone(),
                    source: format!("the explicit username/password for {k:?}"),
                    notes,
                };
            }
        }
        if let Some((path, cfg)) = &self.docker_config {
            let where_ = format!("docker config {}", path.display());
            // credHelpers: per host.
            if let Some(k) = best_key(cfg.cred_helpers.keys(), repo) {
                let helper = &cfg.cred_helpers[k];
                match self.run_helper(helper, repo).await {
                    Ok(Some(c)) => {
                        return Resolved {
                            credential: c,
                            source: format!("credential helper docker-credential-{helper} (credHelpers {k:?} in {where_})"),
                            notes,
                        }
                    }
                    Ok(None) => notes.push(format!("docker-credential-{helper} had no credentials for {}", repo.registry)),
                    Err(e) => notes.push(format!("docker-credential-{helper} failed: {e:#}")),
                }
            }
            if let Some(store) = cfg.creds_store.as_deref().filter(|s| !s.is_empty()) {
                match self.run_helper(store, repo).await {
                    Ok(Some(c)) => {
                        return Resolved {
                            credential: c,
                            source: format!(
                            "credential helper docker-credential-{store} (credsStore in {where_})"
                        ),
                            notes,
                        }
                    }
                    Ok(None) => notes.push(format!(
                        "docker-credential-{store} had no credentials for {}",
                        repo.registry
                    )),
                    Err(e) => notes.push(format!("docker-credential-{store} failed: {e:#}")),
                }
            }
            if let Some(k) = best_key(cfg.auths.keys(), repo) {
                match cfg.auths[k].credential() {
                    Ok(Some(c)) => {
                        return Resolved {
                            credential: c,
                            source: format!("{where_} (auths {k:?})"),
                            notes,
                        };
                    }
                    Ok(None) => {
                        notes.push(format!("{where_} auths {k:?} has no usable credentials"))
                    }
                    Err(e) => notes.push(format!("{where_} auths {k:?}: {e}")),
                }
            }
        }
        if repo.registry == "ghcr.io" {
            if let Some(t) = &self.github_token {
                let user = self
                    .github_actor
                    .clone()
                    .unwrap_or_else(|| "x-access-token".into());
                return Resolved {
                    credential: Credential::Basic {
                        username: user,
                        password: t.clone(),
                    },
                    source: "the GITHUB_TOKEN environment variable".into(),
                    notes,
                };
            }
        }
        let mut looked = vec!["explicit username/password".to_string()];
        match &self.docker_config {
            Some((path, _)) => looked.push(format!("docker config {}", path.display())),
            None => looked.push("docker config (none found)".into()),
        }
        if repo.registry == "ghcr.io" {
            looked.push("GITHUB_TOKEN (not set)".into());
        }
        Resolved {
            credential: Credential::Anonymous,
            source: format!(
                "anonymous: nothing for {} in {}",
                repo.registry,
                looked.join(", ")
            ),
            notes,
        }
    }

    fn find_helper(&self, name: &str) -> Option<PathBuf> {
        let file = format!("docker-credential-{name}");
        let path = self
            .helper_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))?;
        std::env::split_paths(&path)
            .map(|d| d.join(&file))
            .find(|p| p.is_file())
    }

    /// Runs `docker-credential-<name> get` with the server URL on stdin (docker's protocol).
    /// `Ok(None)` when the helper has nothing for this server.
    async fn run_helper(&self, name: &str, repo: &RepoRef) -> Result<Option<Credential>> {
        use tokio::io::AsyncWriteExt;
        if name.contains('/') || name.contains('\\') {
            bail!("helper name {name:?} must not contain a path");
        }
        let Some(bin) = self.find_helper(name) else {
            bail!("docker-credential-{name} is not on PATH");
        };
        let server = if repo.registry == DOCKER_HUB {
            DOCKER_HUB_AUTH_KEY.to_string()
        } else {
            repo.registry.clone()
        };
        let mut child = tokio::process::Command::new(&bin)
            .arg("get")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(server.as_bytes()).await?;
            stdin.shutdown().await?;
        }
        let out = tokio::time::timeout(self.helper_timeout, child.wait_with_output())
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {:?}", self.helper_timeout))??;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let text = format!("{stdout} {stderr}");
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            // The helper's own words, trimmed; helpers print no secrets on failure.
            bail!(
                "exited with {}: {}",
                out.status,
                text.trim().chars().take(200).collect::<String>()
            );
        }
        #[derive(Deserialize)]
        struct HelperOut {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: Secret,
        }
        let h: HelperOut = serde_json::from_slice(&out.stdout)
            .context("helper output is not the expected JSON")?;
        if h.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if h.username == "<token>" {
            Credential::IdentityToken {
                username: None,
                token: h.secret,
            }
        } else {
            Credential::Basic {
                username: h.username,
                password: h.secret,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::parse_token_response;

    fn repo(s: &str) -> RepoRef {
        RepoRef::parse(s).unwrap()
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        let c = Credential::basic("bob", "hunter2");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!c.describe().contains("hunter2"));
        let e: AuthEntry =
            serde_json::from_str(r#"{"auth":"Ym9iOmh1bnRlcjI=","identitytoken":"tok-123"}"#)
                .unwrap();
        let dbg = format!("{e:?}");
        assert!(
            !dbg.contains("Ym9iOmh1bnRlcjI") && !dbg.contains("tok-123"),
            "{dbg}"
        );
        let t = parse_token_response(br#"{"token":"jwt-abc"}"#).unwrap();
        assert!(!format!("{t:?}").contains("jwt-abc"));
        let creds = Credentials::none()
            .with_basic("ghcr.io", "bob", "hunter2")
            .with_github_token("ghp_x", None);
        let dbg = format!("{creds:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("ghp_x"), "{dbg}");
    }

    #[test]
    fn config_key_matching() {
        let keys: Vec<String> = [
            "https://index.docker.io/v1/",
            "ghcr.io",
            "ghcr.io/acme",
            "ghcr.io/acme/devbox",
            "localhost:5000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            best_key(keys.iter(), &repo("ubuntu")).map(String::as_str),
            Some("https://index.docker.io/v1/")
        );
        assert_eq!(
            best_key(keys.iter(), &repo("ghcr.io/acme/devbox")).map(String::as_str),
            Some("ghcr.io/acme/devbox")
        );
        assert_eq!(
            best_key(keys.iter(), &repo("ghcr.io/acme/other")).map(String::as_str),
            Some("ghcr.io/acme")
        );
        assert_eq!(
            best_key(keys.iter(), &repo("ghcr.io/acmecorp/x")).map(String::as_str),
            Some("ghcr.io")
        );
        assert_eq!(
            best_key(keys.iter(), &repo("localhost:5000/x")).map(String::as_str),
            Some("localhost:5000")
        );
        assert_eq!(best_key(keys.iter(), &repo("quay.io/x/y")), None);
        let keys = ["http://registry.example.com:8443/v2/".to_string()];
        assert!(best_key(keys.iter(), &repo("registry.example.com:8443/x")).is_some());
        let keys = ["index.docker.io".to_string()];
        assert!(best_key(keys.iter(), &repo("docker.io/acme/x")).is_some());
    }

    #[test]
    fn auth_entries() {
        let e: AuthEntry = serde_json::from_str(r#"{"auth":"Ym9iOmh1bjp0ZXI="}"#).unwrap();
        assert_eq!(
            e.credential().unwrap(),
            Some(Credential::basic("bob", "hun:ter"))
        );
        let e: AuthEntry = serde_json::from_str(r#"{"auth":"","identitytoken":"rt"}"#).unwrap();
        assert!(matches!(
            e.credential().unwrap(),
            Some(Credential::IdentityToken { .. })
        ));
        let e: AuthEntry = serde_json::from_str(r#"{"auth":"!!!"}"#).unwrap();
        assert!(e.credential().unwrap_err().to_string().contains("base64"));
        let e: AuthEntry = serde_json::from_str(r#"{"auth":"bm9jb2xvbg=="}"#).unwrap();
        assert!(e
            .credential()
            .unwrap_err()
            .to_string()
            .contains("user:password"));
        let e: AuthEntry = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(e.credential().unwrap(), None);
    }

    #[tokio::test]
    async fn resolution_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"ghcr.io":{"auth":"ZmlsZTpmaWxlcGFzcw=="},"https://index.docker.io/v1/":{"auth":"aHViOmh1YnBhc3M="}}}"#,
        )
        .unwrap();
        let c = Credentials::none().with_docker_config_file(&path).unwrap();
        let r = c.resolve(&repo("ghcr.io/acme/x")).await;
        assert_eq!(r.credential, Credential::basic("file", "filepass"));
        assert!(r.source.contains("auths \"ghcr.io\""), "{}", r.source);
        let r = c.resolve(&repo("ubuntu")).await;
        assert_eq!(r.credential, Credential::basic("hub", "hubpass"));
        let r = c.resolve(&repo("quay.io/x/y")).await;
        assert!(r.credential.is_anonymous());

        let c2 = c.clone().with_basic("ghcr.io", "explicit", "pw");
        assert_eq!(
            c2.resolve(&repo("ghcr.io/acme/x")).await.credential,
            Credential::basic("explicit", "pw")
        );

        let c3 = Credentials::none().with_github_token("ghs_abc", Some("octocat".into()));
        let r = c3.resolve(&repo("ghcr.io/acme/x")).await;
        assert_eq!(r.credential, Credential::basic("octocat", "ghs_abc"));
        assert!(r.source.contains("GITHUB_TOKEN"));
        assert!(c3
            .resolve(&repo("quay.io/a/b"))
            .await
            .credential
            .is_anonymous());

        let env = |k: &str| match k {
            "DOCKER_CONFIG" => Some(dir.path().display().to_string()),
            "GITHUB_TOKEN" => Some("ghs_env".to_string()),
            _ => None,
        };
        let c4 = Credentials::from_env_vars(env).unwrap();
        // config.json beats GITHUB_TOKEN for ghcr.io
        assert_eq!(
            c4.resolve(&repo("ghcr.io/acme/x")).await.credential,
            Credential::basic("file", "filepass")
        );

        std::fs::write(&path, "{not json").unwrap();
        let e = Credentials::none()
            .with_docker_config_file(&path)
            .unwrap_err();
        assert!(format!("{e:#}").contains("valid JSON"));
    }
}
