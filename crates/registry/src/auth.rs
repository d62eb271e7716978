//! The registry auth handshake, the transport's side of authentication: `WWW-Authenticate`
//! challenges, token-server answers, the token cache, and the error a refusal becomes.
//! Credentials themselves (config.json, helpers, tokens) are in [`crate::credentials`], and
//! re-exported here for callers of the older paths.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Deserialize;

pub use crate::credentials::{
    AuthEntry, Credential, Credentials, DockerConfig, Resolved, Secret, DOCKER_HUB_AUTH_KEY,
};

/// One challenge from a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased scheme: `bearer`, `basic`, …
    pub scheme: String,
    /// Parameters with lowercased names.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }
    pub fn service(&self) -> Option<&str> {
        self.param("service")
    }
    /// Scopes the registry asks for (space-separated in one `scope` parameter).
    pub fn scopes(&self) -> Vec<String> {
        self.param("scope")
            .map(|s| {
                s.split(' ')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Parses a `WWW-Authenticate` value into challenges. Handles quoted values containing
/// commas and escaped quotes (`scope="repository:a:pull,push"`), unquoted values, and
/// several challenges in one header (`Basic realm="x", Bearer realm="y"`).
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c);
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        // Skip separators between items.
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) && b[i] != b'=' {
            i += 1;
        }
        if start == i {
            i += 1; // garbage byte; skip it
            continue;
        }
        let word = &header[start..i];
        let save = i;
        skip_ws(&mut i);
        if i < b.len() && b[i] == b'=' && !out.is_empty() && !(i + 1 < b.len() && b[i + 1] == b'=')
        {
            // A parameter of the current challenge.
            i += 1;
            skip_ws(&mut i);
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Push whole UTF-8 characters.
                    let ch_len = utf8_len(b[i]);
                    v.push_str(&header[i..(i + ch_len).min(b.len())]);
                    i += ch_len;
                }
                i += 1; // closing quote
                v
            } else {
                let vs = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                header[vs..i].to_string()
            };
            if let Some(last) = out.last_mut() {
                last.params.insert(word.to_ascii_lowercase(), value);
            }
        } else if i < b.len() && b[i] == b'=' {
            // token68 (e.g. `Negotiate abc==`) or a parameter before any scheme: skip it.
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
        } else {
            i = save;
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// A token endpoint's answer.
#[derive(Clone, Debug)]
pub struct TokenResponse {
    pub token: Secret,
    /// Lifetime; the spec's default is 60 s when absent.
    pub expires_in: Duration,
    /// A refresh token, if the server issued one (OAuth2 POST flow).
    pub refresh_token: Option<Secret>,
}

/// Parses a token endpoint's JSON. Accepts `token` or `access_token` (distribution's spec
/// says `token`, OAuth2 says `access_token`; servers send either or both).
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        token: Option<Secret>,
        #[serde(default)]
        access_token: Option<Secret>,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
        #[serde(default)]
        refresh_token: Option<Secret>,
    }
    let raw: Raw = serde_json::from_slice(body).context("token response is not JSON")?;
    let token = raw
        .token
        .filter(|t| !t.is_empty())
        .or(raw.access_token.filter(|t| !t.is_empty()))
        .context("token response has neither \"token\" nor \"access_token\"")?;
    let secs = match raw.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(60.0),
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(60.0),
        _ => 60.0,
    };
    // Spec: a lifetime under 60 s is treated as 60 s. Never negative.
    let secs = if secs.is_finite() && secs >= 60.0 {
        secs.min(86_400.0 * 30.0)
    } else {
        60.0
    };
    Ok(TokenResponse {
        token,
        expires_in: Duration::from_secs_f64(secs),
        refresh_token: raw.refresh_token,
    })
}

#[derive(Clone, Debug)]
pub(crate) struct CachedToken {
    pub token: Secret,
    pub valid_until: Instant,
}

/// Bearer tokens per (API host, sorted scope set), with single-flight fetching: concurrent
/// requests for the same key wait for one fetch instead of hammering the token server.
#[derive(Default, Debug)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<(String, String), TokenSlot>>,
}

/// One cache entry; the async mutex is held while fetching so others wait for it.
pub(crate) type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

impl TokenCache {
    pub fn key(host: &str, scopes: &[String]) -> (String, String) {
        let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        s.sort_unstable();
        s.dedup();
        (host.to_string(), s.join(" "))
    }

    pub fn slot(&self, key: &(String, String)) -> TokenSlot {
        let mut m = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.clone()).or_default().clone()
    }
}

/// Refreshing a token this long before it expires avoids presenting one that dies in
/// flight; capped at a quarter of the lifetime for short-lived tokens.
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(30))
}

/// A registry refused our credentials. Downcast an `anyhow::Error` to this to tell "fix
/// your login" apart from "the registry is down".
#[derive(Debug, Clone)]
pub struct AuthError {
    pub registry: String,
    pub repository: String,
    pub message: String,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "authentication failed for {}/{}: {}",
            self.registry, self.repository, self.message
        )
    }
}

impl std::error::Error for AuthError {}

/// How to fix an auth failure, in general terms: the crate does not know which tool or CI
/// step the caller uses to log in, so callers with better advice set
/// [`crate::ClientOptions::auth_hint`] (skip-action names its own inputs and
/// docker/login-action).
pub fn generic_fix_hint(registry: &str) -> String {
    format!(
        "log in to {registry} first (docker login {registry} writes the credentials this client reads), or pass credentials for it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn www_authenticate_bearer() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#;
        let c = parse_www_authenticate(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].realm(), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].service(), Some("registry.docker.io"));
        assert_eq!(c[0].scopes(), vec!["repository:library/ubuntu:pull,push"]);
    }

    #[test]
    fn www_authenticate_variants() {
        let c = parse_www_authenticate(r#"Basic realm="Registry Realm""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].realm(), Some("Registry Realm"));

        let c = parse_www_authenticate(
            r#"Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:a/b:pull repository:c/d:pull", error="insufficient_scope""#,
        );
        assert_eq!(
            c[0].scopes(),
            vec!["repository:a/b:pull", "repository:c/d:pull"]
        );
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));

        let c = parse_www_authenticate(r#"BEARER Realm=https://x/token,Service=x"#);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].realm(), Some("https://x/token"));
        assert_eq!(c[0].service(), Some("x"));

        let c = parse_www_authenticate(
            r#"Basic realm="a, b", Bearer realm="https://t/token",service="s""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].realm(), Some("a, b"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].service(), Some("s"));

        let c = parse_www_authenticate(r#"Bearer realm="with \"quote\" inside",service="s""#);
        assert_eq!(c[0].realm(), Some(r#"with "quote" inside"#));

        let c = parse_www_authenticate(r#"Negotiate abc==, Bearer realm="r""#);
        assert_eq!(
            c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            vec!["negotiate", "bearer"]
        );
        assert_eq!(c[1].realm(), Some("r"));

        assert!(parse_www_authenticate("").is_empty());
        let c = parse_www_authenticate("Bearer");
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].realm(), None);
    }

    #[test]
    fn token_response_fields() {
        let t = parse_token_response(br#"{"token":"a","expires_in":300}"#).unwrap();
        assert_eq!(t.token.expose(), "a");
        assert_eq!(t.expires_in, Duration::from_secs(300));
        let t = parse_token_response(br#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.token.expose(), "b");
        assert_eq!(t.expires_in, Duration::from_secs(60));
        let t =
            parse_token_response(br#"{"token":"","access_token":"c","expires_in":10}"#).unwrap();
        assert_eq!(t.token.expose(), "c");
        assert_eq!(t.expires_in, Duration::from_secs(60));
        assert!(parse_token_response(br#"{"nope":1}"#).is_err());
        assert!(parse_token_response(b"<html>").is_err());
    }
}
