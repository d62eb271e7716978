//! What kind of failure an error from this crate is, as a type, so callers decide on it (wait
//! and ask again on "not found", tell the user to log in on "auth", build to be safe on the
//! rest) without downcasting to the crate's structs themselves.
//!
//! Every call returns `anyhow::Result` with context for people; the typed root cause
//! ([`HttpError`], [`AuthError`], [`TransportError`]) is somewhere in the chain, and
//! [`ErrorKind::of`] finds it.

use std::fmt;

use crate::auth::AuthError;
use crate::client::HttpError;

/// The four failures callers tell apart, plus everything else (bad content, bad input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// HTTP 404: the manifest, blob, tag or repository does not exist.
    NotFound,
    /// The registry or its token server refused the credentials (or there were none).
    Auth,
    /// Another HTTP status the operation did not expect (after retries where they apply).
    Http(u16),
    /// No HTTP answer: connection refused or reset, timeouts, TLS — after retries.
    Transport,
    /// Not a protocol failure: content that does not match its digest, a body over a limit, a
    /// malformed answer, an invalid argument.
    Other,
}

impl ErrorKind {
    /// The kind of `e`, from the first typed cause in its chain.
    pub fn of(e: &anyhow::Error) -> ErrorKind {
        for c in e.chain() {
            if c.is::<AuthError>() {
                return ErrorKind::Auth;
            }
            if let Some(h) = c.downcast_ref::<HttpError>() {
                return if h.status == 404 {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Http(h.status)
                };
            }
            if c.is::<TransportError>() {
                return ErrorKind::Transport;
            }
        }
        ErrorKind::Other
    }
}

/// A request that got no HTTP answer, after its retries.
#[derive(Debug, Clone)]
pub struct TransportError {
    /// The operation (`GET docker.io/library/ubuntu:24.04`, `token server https://…`).
    pub what: String,
    /// What the HTTP stack said, with its causes.
    pub message: String,
    pub attempts: u32,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (after {} attempts)",
            self.what, self.message, self.attempts
        )
    }
}

impl std::error::Error for TransportError {}

/// `head` followed by `e`'s causes, each one not already said (an HTTP client's own text stops
/// at "client error (Connect)" and hides the "connection refused" or certificate failure
/// below it), at most eight deep. For this crate's transport errors and the GitHub API's.
pub fn with_causes(head: String, e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = head;
    let mut src = e.source();
    let mut depth = 0;
    while let Some(c) = src {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(&format!(": {cs}"));
        }
        src = c.source();
        depth += 1;
        if depth >= 8 {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    /// Causes are appended once each: one already in the text is not repeated.
    #[test]
    fn causes_are_said_once() {
        let e = anyhow::anyhow!("connection refused")
            .context("client error (Connect)")
            .context("GET x");
        let top: &(dyn std::error::Error + 'static) = e.as_ref();
        assert_eq!(
            with_causes(e.to_string(), top),
            "GET x: client error (Connect): connection refused"
        );
        assert_eq!(
            with_causes("GET x (connection refused)".into(), top),
            "GET x (connection refused): client error (Connect)"
        );
    }

    fn http(status: u16) -> anyhow::Error {
        anyhow::Error::new(HttpError {
            what: "GET x".into(),
            status,
            code: None,
            message: None,
            attempts: 1,
        })
    }

    #[test]
    fn kinds_are_found_through_context() {
        assert_eq!(
            ErrorKind::of(&http(404).context("reading the base")),
            ErrorKind::NotFound
        );
        assert_eq!(ErrorKind::of(&http(503)), ErrorKind::Http(503));
        let auth = anyhow::Error::new(AuthError {
            registry: "ghcr.io".into(),
            repository: "a/b".into(),
            message: "refused".into(),
        });
        assert_eq!(ErrorKind::of(&auth), ErrorKind::Auth);
        let t: anyhow::Result<()> = Err(anyhow::Error::new(TransportError {
            what: "HEAD x".into(),
            message: "could not connect".into(),
            attempts: 5,
        }));
        let t = t.context("probing").unwrap_err();
        assert_eq!(ErrorKind::of(&t), ErrorKind::Transport);
        assert_eq!(
            format!("{:#}", t),
            "probing: HEAD x: could not connect (after 5 attempts)"
        );
        assert_eq!(
            ErrorKind::of(&anyhow::anyhow!("digest mismatch")),
            ErrorKind::Other
        );
    }
}
