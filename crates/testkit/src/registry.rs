//! A real CNCF distribution registry (`docker-registry`, Debian package `docker-registry`)
//! on 127.0.0.1, in a temp dir, killed on drop.
//!
//! Tests talk to the real server rather than a mock because the behaviours that decide a
//! false skip (which `Accept` types get a 200, what a 404 looks like, how 401 challenges
//! are worded) are the server's, not ours to imagine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::push::{PushAuth, Pusher};
use crate::token::{Signer, TokenOptions, TokenServer};
use crate::util;

/// How the registry authenticates clients.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// No authentication at all.
    Open,
    /// `auth.htpasswd`: HTTP Basic against a bcrypt htpasswd file with these users.
    Htpasswd { users: Vec<(String, String)> },
    /// `auth.token`: Bearer tokens from a token server that this kit runs.
    Token(TokenOptions),
}

/// A running registry. Dropping it kills the process and removes its storage.
pub struct TestRegistry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    mode: AuthMode,
    token_server: Option<TokenServer>,
    signer: Option<Arc<Signer>>,
    /// A nonce the registry echoes in a response header (see `wait_ready`).
    instance: String,
    /// `http.tls`: the server's certificate chain and key (PEM files), when it serves HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRegistry")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Finds the registry binary: `$SKIP_TESTKIT_REGISTRY_BIN`, then `docker-registry` or
/// `registry` on PATH.
pub fn registry_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SKIP_TESTKIT_REGISTRY_BIN") {
        return Ok(PathBuf::from(p));
    }
    for name in ["docker-registry", "registry"] {
        if let Some(p) = which(name) {
            return Ok(p);
        }
    }
    bail!(
        "no registry binary found: install Debian's `docker-registry` package \
         (apt-get install docker-registry) or set SKIP_TESTKIT_REGISTRY_BIN"
    )
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl TestRegistry {
    /// An open registry (no auth).
    pub fn start_open() -> Result<TestRegistry> {
        Self::start(AuthMode::Open)
    }

    /// A registry behind HTTP Basic with these users.
    pub fn start_htpasswd(users: &[(&str, &str)]) -> Result<TestRegistry> {
        Self::start(AuthMode::Htpasswd {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
        })
    }

    /// A registry behind token auth, with a token server configured by `opts`.
    pub fn start_token(opts: TokenOptions) -> Result<TestRegistry> {
        Self::start(AuthMode::Token(opts))
    }

    pub fn start(mode: AuthMode) -> Result<TestRegistry> {
        Self::start_with_tls(mode, None)
    }

    /// An open registry serving HTTPS only (`http.tls`) with this certificate and key (PEM
    /// files; see [`crate::tls::TestCa`]). Still on 127.0.0.1: reach it by a name the
    /// certificate holds through a [`crate::tls::ConnectProxy`] (clients treat 127.* as plain
    /// http) or with a client that resolves that name to [`TestRegistry::host`].
    pub fn start_tls(cert: &Path, key: &Path) -> Result<TestRegistry> {
        Self::start_with_tls(
            AuthMode::Open,
            Some((cert.to_path_buf(), key.to_path_buf())),
        )
    }

    fn start_with_tls(mode: AuthMode, tls: Option<(PathBuf, PathBuf)>) -> Result<TestRegistry> {
        let bin = registry_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("skip-testkit-registry-")
            .tempdir()
            .context("creating registry temp dir")?;

        let (signer, token_server) = match &mode {
            AuthMode::Token(opts) => {
                let signer = Arc::new(Signer::generate(&opts.issuer, &opts.service)?);
                std::fs::write(dir.path().join("root.pem"), signer.cert_pem())?;
                let server = TokenServer::start(opts.clone(), signer.clone())?;
                (Some(signer), Some(server))
            }
            AuthMode::Htpasswd { users } => {
                let mut file = String::new();
                for (u, p) in users {
                    // Cost 4 (the minimum) keeps every authenticated request fast; the
                    // registry verifies the hash on each request. `$2y$` is the prefix
                    // apache's htpasswd writes; Go's bcrypt accepts it.
                    let h = bcrypt::hash_with_result(p, 4)
                        .context("bcrypt")?
                        .format_for_version(bcrypt::Version::TwoY);
                    file.push_str(&format!("{u}:{h}\n"));
                }
                std::fs::write(dir.path().join("htpasswd"), file)?;
                (None, None)
            }
            AuthMode::Open => (None, None),
        };

        let mut reg = TestRegistry {
            child: None,
            port: 0,
            dir,
            mode,
            token_server,
            signer,
            instance: util::Rng::from_entropy().hex(8),
            tls,
        };
        let mut last_err = None;
        // The free port can be taken between probing and the child binding it: retry.
        for _ in 0..5 {
            reg.port = util::free_port()?;
            let config = config_yaml(
                reg.dir.path(),
                reg.port,
                &reg.mode,
                reg.token_server.as_ref(),
                &reg.instance,
                reg.tls.as_ref(),
            );
            let cfg_path = reg.dir.path().join("config.yml");
            std::fs::write(&cfg_path, config)?;
            let log = std::fs::File::create(reg.dir.path().join("registry.log"))?;
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("spawning {}", bin.display()))?;
            reg.child = Some(child);
            match reg.wait_ready(Duration::from_secs(20)) {
                Ok(()) => return Ok(reg),
                Err(e) => {
                    reg.stop();
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let addr = self.host();
        while start.elapsed() < limit {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "docker-registry exited with {status} before answering; log:\n{}",
                        self.log()
                    );
                }
            }
            // The instance header proves the answer came from *this* process, not from
            // another test's registry that grabbed the port first.
            if let Ok((code, head)) = util::http_probe(&addr, "/v2/", Duration::from_millis(500)) {
                let ours = head.contains(&format!("x-skip-testkit-instance: {}", self.instance));
                if (code == 200 || code == 401) && ours {
                    return Ok(());
                }
                // Go's server answers plain http on a TLS port with a bare 400.
                if self.tls.is_some() && code == 400 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "docker-registry did not answer /v2/ within {limit:?}; log:\n{}",
            self.log()
        )
    }

    /// `127.0.0.1:PORT`: what goes in front of a repository name.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    pub fn mode(&self) -> &AuthMode {
        &self.mode
    }

    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's own log (useful in assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Kills the registry now (for "registry went away" tests). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A pusher with full rights: Basic for htpasswd (first user), self-minted tokens
    /// for token auth, nothing for open.
    pub fn pusher(&self) -> Pusher {
        let auth = match &self.mode {
            AuthMode::Open => PushAuth::None,
            AuthMode::Htpasswd { users } => match users.first() {
                Some((u, p)) => PushAuth::Basic(u.clone(), p.clone()),
                None => PushAuth::None,
            },
            AuthMode::Token(_) => match &self.signer {
                Some(s) => PushAuth::Mint(s.clone()),
                None => PushAuth::None,
            },
        };
        Pusher::new(&self.url(), auth)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config_yaml(
    dir: &Path,
    port: u16,
    mode: &AuthMode,
    token: Option<&TokenServer>,
    instance: &str,
    tls: Option<&(PathBuf, PathBuf)>,
) -> String {
    let data = dir.join("data");
    let mut cfg = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: skip-testkit-not-a-secret\n  \
         headers:\n    X-Skip-Testkit-Instance: [\"{instance}\"]\n",
        data.display()
    );
    if let Some((cert, key)) = tls {
        cfg.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ));
    }
    match (mode, token) {
        (AuthMode::Open, _) => {}
        (AuthMode::Htpasswd { .. }, _) => {
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skip-testkit\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        (AuthMode::Token(opts), Some(server)) => {
            cfg.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                server.realm(),
                opts.service,
                opts.issuer,
                dir.join("root.pem").display()
            ));
        }
        (AuthMode::Token(_), None) => {}
    }
    cfg
}
