//! A token server for the distribution token-auth flow, and the ES256 signer it uses.
//!
//! The registry is configured with `auth.token.{realm, service, issuer, rootcertbundle}`;
//! it never calls this server. Clients do: they get a 401 with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, call the realm (GET with Basic
//! credentials or anonymously, or POST a `refresh_token` form), and present the JWT.
//! The registry checks the signature with the public key from the root certificate,
//! finding it by the JWT header's `kid`, which must be the libtrust fingerprint of that
//! key (distribution's `jwt.md`: SHA-256 of the DER public key, truncated to 240 bits,
//! base32 in 12 groups of 4 joined by `:`).

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::util::{self, Rng};

/// Signs registry JWTs with a fresh P-256 key whose self-signed certificate is the
/// registry's `rootcertbundle`.
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    kid: String,
    cert_pem: String,
    pub issuer: String,
    pub service: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// One access entry of a token's `access` claim, parsed from a scope string
/// `type:name:action,action`. Names never contain `:` (repository paths), but a
/// registry host in front would, so split the type off the front and actions off the back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    pub fn parse(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

impl Signer {
    pub fn generate(issuer: &str, service: &str) -> Result<Signer> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generating P-256 key")?;
        let mut params = rcgen::CertificateParams::new(vec!["skip-testkit-token".to_string()])
            .context("certificate params")?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "skip-testkit token issuer");
        let cert = params.self_signed(&key_pair).context("self-signing")?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .map_err(|e| anyhow::anyhow!("loading key into ring: {e}"))?;
        let kid = libtrust_key_id(&rcgen::PublicKeyData::subject_public_key_info(&key_pair));
        Ok(Signer {
            key,
            rng,
            kid,
            cert_pem: cert.pem(),
            issuer: issuer.to_string(),
            service: service.to_string(),
        })
    }

    /// PEM of the self-signed certificate, for `rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A signed JWT for `subject` granting `access`, valid for `ttl`.
    pub fn sign(&self, subject: &str, access: &[Access], ttl: Duration) -> Result<String> {
        let now = util::now_unix();
        let header = json!({"typ": "JWT", "alg": "ES256", "kid": self.kid});
        let access: Vec<_> = access
            .iter()
            .map(|a| json!({"type": a.kind, "name": a.name, "actions": a.actions}))
            .collect();
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            // A little slack backwards: the registry and this process share a clock, but
            // nbf == now can still fail a strict comparison by a second.
            "nbf": now.saturating_sub(5),
            "iat": now,
            "exp": now + ttl.as_secs().max(1),
            "jti": Rng::from_entropy().hex(16),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }
}

/// libtrust's key ID: base32 (RFC 4648, no padding needed for 30 bytes) of the first
/// 240 bits of SHA-256 over the DER SubjectPublicKeyInfo, in groups of four.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = Sha256::digest(spki_der);
    let bytes = &hash[..30];
    let mut bits: u64 = 0;
    let mut nbits = 0;
    let mut out = String::new();
    for &b in bytes {
        bits = (bits << 8) | u64::from(b);
        nbits += 8;
        while nbits >= 5 {
            nbits -= 5;
            out.push(ALPHABET[((bits >> nbits) & 31) as usize] as char);
        }
    }
    out.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":")
}

/// Which JSON fields carry the token: distribution's spec says `token`, OAuth2 says
/// `access_token`, real servers send one or both. Clients must accept either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenField {
    Token,
    AccessToken,
    Both,
}

/// How the token server behaves.
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// Users allowed to log in with Basic credentials (user, password).
    pub users: Vec<(String, String)>,
    /// Anonymous requests get a token limited to `pull` (like Docker Hub for public
    /// repositories). If false, anonymous requests get 401.
    pub anonymous_pull: bool,
    pub field: TokenField,
    /// `expires_in` in the response and the JWT lifetime. `None` omits the field (clients
    /// must then assume 60 s).
    pub expires_in: Option<u64>,
    /// Identity (refresh) tokens accepted on POST with `grant_type=refresh_token`,
    /// mapped to the user they stand for.
    pub refresh_tokens: Vec<(String, String)>,
    pub issuer: String,
    pub service: String,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions {
            users: vec![("alice".into(), "wonderland".into())],
            anonymous_pull: true,
            field: TokenField::Both,
            expires_in: Some(300),
            refresh_tokens: vec![],
            issuer: "skip-testkit-issuer".into(),
            service: "skip-testkit-registry".into(),
        }
    }
}

/// What the token server saw, for assertions (never the password itself).
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub method: String,
    /// `Some(user)` for Basic or refresh-token logins, `None` for anonymous.
    pub user: Option<String>,
    pub scopes: Vec<String>,
    /// The HTTP status the server answered.
    pub status: u16,
}

/// A token server on 127.0.0.1, serving `/token` until dropped.
pub struct TokenServer {
    port: u16,
    stop: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<TokenRequest>>>,
    signer: Arc<Signer>,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("port", &self.port)
            .finish()
    }
}

struct Shared {
    opts: TokenOptions,
    signer: Arc<Signer>,
    hits: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenServer {
    pub fn start(opts: TokenOptions, signer: Arc<Signer>) -> Result<TokenServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding token server")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            opts,
            signer: signer.clone(),
            hits: hits.clone(),
            log: log.clone(),
        });
        let stop2 = stop.clone();
        thread::Builder::new()
            .name("testkit-token-server".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let shared = shared.clone();
                    thread::spawn(move || {
                        let _ = handle(conn, &shared);
                    });
                }
            })?;
        Ok(TokenServer {
            port,
            stop,
            hits,
            log,
            signer,
        })
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// Token requests served so far (every request to `/token`, successful or not).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread sees the flag and exits.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(mut conn: TcpStream, shared: &Shared) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let Some(head) = util::read_head(&mut conn)? else {
        return Ok(());
    };
    if head.path() != "/token" {
        util::write_response(&mut conn, 404, &[], b"not found")?;
        return Ok(());
    }
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let body = util::read_body(&mut conn, &head)?;
    let mut params = head.query();
    if head.method == "POST" {
        params.extend(util::parse_query(&String::from_utf8_lossy(&body)));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    scopes.dedup();

    // Who is asking: Basic header, or a POSTed refresh token / password grant.
    let user: Result<Option<String>, &str> = if head.method == "POST" {
        match get("grant_type").as_deref() {
            Some("refresh_token") => {
                let rt = get("refresh_token").unwrap_or_default();
                shared
                    .opts
                    .refresh_tokens
                    .iter()
                    .find(|(t, _)| *t == rt)
                    .map(|(_, u)| Some(u.clone()))
                    .ok_or("invalid refresh token")
            }
            Some("password") => {
                let (u, p) = (
                    get("username").unwrap_or_default(),
                    get("password").unwrap_or_default(),
                );
                check_user(&shared.opts, &u, &p).map(|_| Some(u))
            }
            _ => Err("unsupported grant_type"),
        }
    } else {
        match head.header("authorization") {
            Some(h) => parse_basic(h)
                .ok_or("malformed Authorization header")
                .and_then(|(u, p)| check_user(&shared.opts, &u, &p).map(|_| Some(u))),
            None => Ok(None),
        }
    };

    let record = |status: u16, user: Option<String>| {
        if let Ok(mut l) = shared.log.lock() {
            l.push(TokenRequest {
                method: head.method.clone(),
                user,
                scopes: scopes.clone(),
                status,
            });
        }
    };

    let user = match user {
        Ok(u) => u,
        Err(why) => {
            record(401, None);
            let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": why}]});
            util::write_response(
                &mut conn,
                401,
                &[("Content-Type", "application/json".into())],
                body.to_string().as_bytes(),
            )?;
            return Ok(());
        }
    };
    if user.is_none() && !shared.opts.anonymous_pull {
        record(401, None);
        let body =
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]});
        util::write_response(
            &mut conn,
            401,
            &[
                ("Content-Type", "application/json".into()),
                ("WWW-Authenticate", "Basic realm=\"skip-testkit\"".into()),
            ],
            body.to_string().as_bytes(),
        )?;
        return Ok(());
    }

    // Grant: a logged-in user gets what they asked for; anonymous gets pull only.
    let access: Vec<Access> = scopes
        .iter()
        .filter_map(|s| Access::parse(s))
        .map(|mut a| {
            if user.is_none() {
                a.actions.retain(|x| x == "pull");
            }
            a
        })
        .filter(|a| !a.actions.is_empty())
        .collect();
    let ttl = Duration::from_secs(shared.opts.expires_in.unwrap_or(60));
    let token = shared
        .signer
        .sign(user.as_deref().unwrap_or(""), &access, ttl)?;
    let mut resp = serde_json::Map::new();
    match shared.opts.field {
        TokenField::Token => {
            resp.insert("token".into(), json!(token));
        }
        TokenField::AccessToken => {
            resp.insert("access_token".into(), json!(token));
        }
        TokenField::Both => {
            resp.insert("token".into(), json!(token));
            resp.insert("access_token".into(), json!(token));
        }
    }
    if let Some(e) = shared.opts.expires_in {
        resp.insert("expires_in".into(), json!(e));
    }
    record(200, user);
    util::write_response(
        &mut conn,
        200,
        &[("Content-Type", "application/json".into())],
        serde_json::Value::Object(resp).to_string().as_bytes(),
    )?;
    Ok(())
}

fn check_user(opts: &TokenOptions, user: &str, pass: &str) -> Result<(), &'static str> {
    let users: HashMap<&str, &str> = opts
        .users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    match users.get(user) {
        Some(p) if *p == pass => Ok(()),
        _ => Err("invalid username or password"),
    }
}

/// Decodes `Basic base64(user:pass)`.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_has_libtrust_shape() {
        let kid = libtrust_key_id(b"anything");
        assert_eq!(kid.len(), 12 * 4 + 11);
        assert!(kid.split(':').all(|g| g.len() == 4));
    }

    #[test]
    fn scope_parsing() {
        let a = Access::parse("repository:acme/devbox:pull,push").unwrap();
        assert_eq!(a.kind, "repository");
        assert_eq!(a.name, "acme/devbox");
        assert_eq!(a.actions, vec!["pull", "push"]);
        let c = Access::parse("registry:catalog:*").unwrap();
        assert_eq!(c.actions, vec!["*"]);
    }
}
