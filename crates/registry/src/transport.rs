//! The transport (go-containerregistry's `transport`): one logical request in, one HTTP answer
//! out, with everything between — the `WWW-Authenticate` handshake, token fetch and cache,
//! retries with backoff and `Retry-After`, the per-host concurrency limit, bounded body reads.
//! The API calls in [`crate::client`] build a `Call` and interpret the answer; credentials
//! come from [`crate::credentials`].

use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use tracing::debug;

use crate::auth::{
    parse_token_response, parse_www_authenticate, refresh_margin, AuthError, CachedToken,
    Challenge, TokenCache, TokenResponse,
};
use crate::client::{Client, HttpError};
use crate::credentials::{Credential, Resolved};
use crate::error::TransportError;
use crate::reference::RepoRef;
use crate::retry::{parse_retry_after, retryable_status};

/// What the client learned about a host's authentication from its 401s.
#[derive(Debug, Clone)]
pub(crate) enum HostAuth {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// One logical request; `send` turns it into attempts.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) repo: &'a RepoRef,
    pub(crate) url: Url,
    pub(crate) accept: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Option<Bytes>,
    pub(crate) scopes: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) what: String,
}

pub(crate) struct Sent {
    pub(crate) resp: reqwest::Response,
    pub(crate) attempts: u32,
    /// The host's concurrency permit, kept by [`Client::send_read`] until the body is read: a
    /// permit released at the headers lets the next request start while this connection is still
    /// busy with its body, so the pool opens (and later closes) connections beyond the limit.
    pub(crate) permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The registry's JSON error body: `{"errors":[{"code","message"}]}`.
pub(crate) fn error_code(body: &[u8]) -> (Option<String>, Option<String>) {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return (None, None),
    };
    let e = &v["errors"][0];
    (
        e["code"].as_str().map(str::to_string),
        e["message"].as_str().map(|m| m.chars().take(300).collect()),
    )
}

pub(crate) fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// `Content-Type` without parameters (`; charset=utf-8`).
pub(crate) fn bare_media_type(h: &HeaderMap) -> Option<String> {
    header_str(h, "content-type")
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Reads a body up to `limit` bytes.
pub(crate) async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Bytes> {
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| anyhow!("{}", describe_reqwest(&e)))?
    {
        if out.len() + chunk.len() > limit {
            bail!("response body is over the {limit} byte limit");
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// A reqwest error with its cause chain (reqwest's own Display hides "connection refused").
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let head = if e.is_timeout() {
        format!("timed out ({e})")
    } else if e.is_connect() {
        format!("could not connect ({e})")
    } else {
        e.to_string()
    };
    let mut s = crate::error::with_causes(head, e);
    if let Some(h) = crate::trust::hint(&s) {
        s.push_str(&format!(" ({h})"));
    }
    s
}

impl Client {
    /// One more request of `method` sent (every attempt counts: retries cost the registry too).
    pub(crate) fn count(&self, method: &Method) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.inner.requests;
        match *method {
            Method::GET => c.get.fetch_add(1, Relaxed),
            Method::HEAD => c.head.fetch_add(1, Relaxed),
            _ => c.other.fetch_add(1, Relaxed),
        };
    }

    pub(crate) async fn resolve(&self, repo: &RepoRef) -> Resolved {
        let cell = {
            let mut m = self
                .inner
                .resolved
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            m.entry(repo.clone()).or_default().clone()
        };
        cell.get_or_init(|| self.inner.opts.credentials.resolve(repo))
            .await
            .clone()
    }

    pub(crate) fn host_auth(&self, host: &str) -> Option<HostAuth> {
        self.inner
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned()
    }

    pub(crate) fn auth_error(&self, repo: &RepoRef, message: String) -> anyhow::Error {
        anyhow::Error::new(AuthError {
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            message: format!(
                "{message}. Fix: {}",
                (self.inner.opts.auth_hint)(&repo.registry)
            ),
        })
    }

    /// The `Authorization` header for a request, from what we know of the host.
    /// `refused` is the header a 401 just turned down: a cached token equal to it is
    /// replaced, any other valid cached token (another task's fresh one) is reused.
    pub(crate) async fn authorization(
        &self,
        call: &Call<'_>,
        extra_scopes: &[String],
        refused: Option<&HeaderValue>,
    ) -> Result<Option<HeaderValue>> {
        // Only send credentials to the registry host itself (upload Locations may point
        // elsewhere, e.g. object storage).
        let host = call.repo.api_host();
        let same_host = call
            .url
            .host_str()
            .map(|h| {
                let with_port = match call.url.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                };
                with_port.eq_ignore_ascii_case(host)
            })
            .unwrap_or(false);
        if !same_host {
            return Ok(None);
        }
        let Some(auth) = self.host_auth(host) else {
            return Ok(None);
        };
        let resolved = self.resolve(call.repo).await;
        let value = match (&auth, &resolved.credential) {
            (_, Credential::RegistryToken(t)) => format!("Bearer {}", t.expose()),
            (HostAuth::Basic, Credential::Basic { username, password }) => {
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{username}:{}", password.expose()))
                )
            }
            (HostAuth::Basic, Credential::Anonymous) => {
                return Err(self.auth_error(
                    call.repo,
                    format!(
                        "{} needs a username and password (HTTP Basic) but there are {}",
                        call.repo.registry,
                        resolved.describe()
                    ),
                ));
            }
            (HostAuth::Basic, Credential::IdentityToken { .. }) => {
                return Err(self.auth_error(
                    call.repo,
                    format!(
                        "{} wants HTTP Basic but the credentials found are {}",
                        call.repo.registry,
                        resolved.describe()
                    ),
                ));
            }
            (HostAuth::Bearer { realm, service }, _) => {
                let token = self
                    .bearer_token(
                        call,
                        realm,
                        service.as_deref(),
                        extra_scopes,
                        &resolved,
                        refused,
                    )
                    .await?;
                format!("Bearer {}", token.expose())
            }
        };
        let mut hv = HeaderValue::from_str(&value)
            .map_err(|_| anyhow!("credentials contain characters not allowed in a header"))?;
        hv.set_sensitive(true);
        Ok(Some(hv))
    }

    pub(crate) async fn bearer_token(
        &self,
        call: &Call<'_>,
        realm: &str,
        service: Option<&str>,
        extra_scopes: &[String],
        resolved: &Resolved,
        refused: Option<&HeaderValue>,
    ) -> Result<crate::auth::Secret> {
        let key = TokenCache::key(call.repo.api_host(), &call.scopes);
        // While repositories are expected (`Client::expect_pulls`), plain pulls fetch their
        // tokens one request at a time per host, each for many scopes: the next one usually
        // finds its token already there instead of asking for it alone.
        let plain_pull = matches!(&call.scopes[..], [own] if own.ends_with(":pull"))
            && extra_scopes.is_empty()
            && refused.is_none();
        let batch_slot = (plain_pull && self.has_pending_pulls(call.repo.api_host())).then(|| {
            self.inner
                .tokens
                .slot(&(call.repo.api_host().to_string(), "\0many-scope".into()))
        });
        let _batch_guard = match &batch_slot {
            Some(b) => Some(b.lock().await),
            None => None,
        };
        let slot = self.inner.tokens.slot(&key);
        let mut guard = slot.lock().await;
        if let Some(t) = guard.as_ref() {
            let was_refused = refused
                .is_some_and(|r| r.as_bytes() == format!("Bearer {}", t.token.expose()).as_bytes());
            if Instant::now() < t.valid_until && !was_refused {
                return Ok(t.token.clone());
            }
        }
        let mut scopes: Vec<String> = call.scopes.clone();
        for s in extra_scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        // A plain pull of one repository: ask for expected others with the same credentials in
        // the same request (see `Client::expect_pulls`).
        let mut batched: Vec<String> = Vec::new();
        if let (true, [own]) = (plain_pull, &call.scopes[..]) {
            let host = call.repo.api_host();
            for r in self.take_pending_pulls(host, own, crate::client::SCOPES_PER_TOKEN - 1) {
                if self.resolve(&r).await.source == resolved.source {
                    batched.push(crate::client::pull_scope(&r));
                }
            }
        }
        let resp = if batched.is_empty() {
            self.fetch_token(call.repo, realm, service, &scopes, resolved)
                .await?
        } else {
            let mut all = scopes.clone();
            all.extend(batched.iter().cloned());
            match self
                .fetch_token(call.repo, realm, service, &all, resolved)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    // The server refused the many-scope request: ask as before, one repository.
                    debug!(error = %e, scopes = all.len(), "many-scope token request failed; asking for one");
                    batched.clear();
                    self.fetch_token(call.repo, realm, service, &scopes, resolved)
                        .await?
                }
            }
        };
        let valid_until = Instant::now() + resp.expires_in - refresh_margin(resp.expires_in);
        *guard = Some(CachedToken {
            token: resp.token.clone(),
            valid_until,
        });
        drop(guard);
        // The same token for the other repositories it was asked for, where nothing fresher is
        // cached (a busy slot is being fetched by its own request: left alone).
        let host = call.repo.api_host();
        for s in &batched {
            let slot = self
                .inner
                .tokens
                .slot(&TokenCache::key(host, std::slice::from_ref(s)));
            let Ok(mut g) = slot.try_lock() else {
                continue;
            };
            if g.as_ref().is_none_or(|t| Instant::now() >= t.valid_until) {
                *g = Some(CachedToken {
                    token: resp.token.clone(),
                    valid_until,
                });
            }
        }
        Ok(resp.token)
    }

    /// The token request: GET the realm with Basic credentials (or none), or POST a
    /// refresh token for identity tokens (OAuth2 flow of the distribution token spec).
    pub(crate) async fn fetch_token(
        &self,
        repo: &RepoRef,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        resolved: &Resolved,
    ) -> Result<TokenResponse> {
        let url = Url::parse(realm)
            .with_context(|| format!("the registry's token realm {realm:?} is not a URL"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            bail!("token realm {realm:?} is not http(s)");
        }
        let realm_host = url.host_str().unwrap_or("").to_string();
        let realm_hostport = match url.port() {
            Some(p) => format!("{realm_host}:{p}"),
            None => realm_host.clone(),
        };
        let sends_secret = !resolved.credential.is_anonymous();
        if sends_secret && url.scheme() == "http" && self.scheme_for(&realm_hostport) == "https" {
            return Err(self.auth_error(
                repo,
                format!("refusing to send credentials to the plain-http token realm {realm}; list the host in insecure registries if this is intended"),
            ));
        }
        let what = format!(
            "token server {}://{realm_hostport}{}",
            url.scheme(),
            url.path()
        );
        let mut attempt = 0u32;
        loop {
            let rb = match &resolved.credential {
                Credential::IdentityToken { token, .. } => {
                    let mut form: Vec<(&str, String)> = vec![
                        ("grant_type", "refresh_token".into()),
                        ("refresh_token", token.expose().to_string()),
                        ("client_id", "skip-action".into()),
                        ("scope", scopes.join(" ")),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_string()));
                    }
                    self.inner.http.post(url.clone()).form(&form)
                }
                cred => {
                    let mut u = url.clone();
                    {
                        let mut q = u.query_pairs_mut();
                        if let Some(s) = service {
                            q.append_pair("service", s);
                        }
                        for s in scopes {
                            q.append_pair("scope", s);
                        }
                        if let Credential::Basic { username, .. } = cred {
                            q.append_pair("account", username);
                        }
                    }
                    let rb = self.inner.http.get(u);
                    match cred {
                        Credential::Basic { username, password } => {
                            let mut hv = HeaderValue::from_str(&format!(
                                "Basic {}",
                                STANDARD.encode(format!("{username}:{}", password.expose()))
                            ))
                            .map_err(|_| {
                                anyhow!("credentials contain characters not allowed in a header")
                            })?;
                            hv.set_sensitive(true);
                            rb.header(reqwest::header::AUTHORIZATION, hv)
                        }
                        _ => rb,
                    }
                }
            };
            let result = rb.timeout(self.inner.opts.timeout).send().await;
            let wait = match result {
                Err(e) => {
                    if attempt >= self.inner.policy.retries {
                        return Err(anyhow::Error::new(TransportError {
                            what,
                            message: e.to_string(),
                            attempts: attempt + 1,
                        }));
                    }
                    debug!(%what, error = %e, attempt, "token request failed; retrying");
                    self.inner.policy.backoff(attempt)
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 200 {
                        let body = resp
                            .bytes()
                            .await
                            .with_context(|| format!("reading the answer of {what}"))?;
                        return parse_token_response(&body)
                            .with_context(|| format!("{what} answered 200"));
                    }
                    if status == 401 || status == 403 {
                        let body = resp.bytes().await.unwrap_or_default();
                        let (code, msg) = error_code(&body);
                        let detail = msg.or(code).map(|m| format!(": {m}")).unwrap_or_default();
                        let who = resolved.describe();
                        return Err(self.auth_error(
                            repo,
                            format!(
                                "{what} refused {} (HTTP {status}{detail}) using {who}",
                                scopes.join(" ")
                            ),
                        ));
                    }
                    if !retryable_status(status) || attempt >= self.inner.policy.retries {
                        return Err(anyhow!(
                            "{what} answered HTTP {status} (after {} attempts)",
                            attempt + 1
                        ));
                    }
                    let ra = header_str(resp.headers(), "retry-after")
                        .and_then(|v| parse_retry_after(&v, SystemTime::now()));
                    self.inner.policy.wait(attempt, ra)
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Sends a call with retries and the 401 handshake. Returns the final response for any
    /// status except 401 (which becomes an [`AuthError`]); transport errors that persist
    /// become errors.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Sent> {
        let mut sent = self.send_holding(call).await?;
        sent.permit = None;
        Ok(sent)
    }

    /// [`Client::send`], still holding the host's concurrency permit (in [`Sent::permit`]) for a
    /// caller that reads a small body next. Never for streams: a blob stream holding a permit
    /// while its upload waits for one could exhaust them.
    pub(crate) async fn send_holding(&self, call: &Call<'_>) -> Result<Sent> {
        let host = call.repo.api_host().to_string();
        let sem = self.semaphore(&host);
        let mut attempt = 0u32;
        let mut refreshed = false;
        let mut extra_scopes: Vec<String> = Vec::new();
        loop {
            let auth = self.authorization(call, &extra_scopes, None).await?;
            let sent_auth = auth.clone();
            let mut rb = self
                .inner
                .http
                .request(call.method.clone(), call.url.clone())
                .timeout(call.timeout);
            if let Some(a) = &auth {
                rb = rb.header(reqwest::header::AUTHORIZATION, a.clone());
            }
            if let Some(a) = &call.accept {
                rb = rb.header(reqwest::header::ACCEPT, a);
            }
            if let Some(ct) = &call.content_type {
                rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
            }
            if let Some(b) = &call.body {
                rb = rb.body(b.clone());
            } else if call.method == Method::PUT
                || call.method == Method::POST
                || call.method == Method::PATCH
            {
                rb = rb.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| anyhow!("client is shutting down"))?;
            self.count(&call.method);
            let result = rb.send().await;
            // Kept only for the answer returned; released before any 401 handshake or wait.
            let mut permit = Some(permit);
            let wait = match result {
                Err(e) => {
                    drop(permit.take());
                    if attempt >= self.inner.policy.retries {
                        return Err(anyhow::Error::new(TransportError {
                            what: call.what.clone(),
                            message: describe_reqwest(&e),
                            attempts: attempt + 1,
                        }));
                    }
                    debug!(what = %call.what, error = %describe_reqwest(&e), attempt, "request failed; retrying");
                    self.inner.policy.backoff(attempt)
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    debug!(what = %call.what, status, attempt, "registry answered");
                    if status == 401 {
                        drop(permit.take());
                        let challenges: Vec<Challenge> = resp
                            .headers()
                            .get_all(reqwest::header::WWW_AUTHENTICATE)
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .flat_map(parse_www_authenticate)
                            .collect();
                        let bearer = challenges
                            .iter()
                            .find(|c| c.scheme == "bearer" && c.realm().is_some());
                        let basic = challenges.iter().find(|c| c.scheme == "basic");
                        let learned = match (bearer, basic) {
                            (Some(b), _) => Some(HostAuth::Bearer {
                                realm: b.realm().unwrap_or_default().to_string(),
                                service: b.service().map(str::to_string),
                            }),
                            (None, Some(_)) => Some(HostAuth::Basic),
                            _ => None,
                        };
                        let body = resp.bytes().await.unwrap_or_default();
                        if refreshed || learned.is_none() {
                            let (code, msg) = error_code(&body);
                            let mut details: Vec<String> = Vec::new();
                            if let Some(e) = bearer.and_then(|b| b.param("error")) {
                                details.push(e.to_string());
                            }
                            match (code, msg) {
                                (Some(c), Some(m)) => details.push(format!("{c}: {m}")),
                                (Some(c), None) => details.push(c),
                                _ => {}
                            }
                            let detail = if details.is_empty() {
                                String::new()
                            } else {
                                format!(", {}", details.join("; "))
                            };
                            let resolved = self.resolve(call.repo).await;
                            let why = if learned.is_none() {
                                "and sent no usable WWW-Authenticate challenge".to_string()
                            } else if sent_auth.is_some() {
                                format!("even after re-authenticating with {}", resolved.describe())
                            } else {
                                format!("using {}", resolved.describe())
                            };
                            return Err(self.auth_error(
                                call.repo,
                                format!("{} was refused (HTTP 401{detail}) {why}", call.what),
                            ));
                        }
                        if let Some(b) = bearer {
                            extra_scopes = b.scopes();
                        }
                        if let Some(l) = learned {
                            self.inner
                                .hosts
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(host.clone(), l);
                        }
                        refreshed = true;
                        // Get a fresh token now so the retry does not reuse the one that
                        // was just refused (concurrent tasks share one fetch).
                        if let Some(HostAuth::Bearer { .. }) = self.host_auth(&host) {
                            self.authorization(call, &extra_scopes, sent_auth.as_ref())
                                .await?;
                        }
                        continue;
                    }
                    if retryable_status(status) && attempt < self.inner.policy.retries {
                        drop(permit.take());
                        let ra = header_str(resp.headers(), "retry-after")
                            .and_then(|v| parse_retry_after(&v, SystemTime::now()));
                        if let Some(r) = ra {
                            debug!(what = %call.what, status, retry_after = ?r, "honouring Retry-After");
                        }
                        self.inner.policy.wait(attempt, ra)
                    } else {
                        return Ok(Sent {
                            resp,
                            attempts: attempt + 1,
                            permit: permit.take(),
                        });
                    }
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    pub(crate) async fn http_error(&self, what: &str, sent: Sent) -> anyhow::Error {
        let status = sent.resp.status().as_u16();
        let body = sent.resp.bytes().await.unwrap_or_default();
        let (code, message) = error_code(&body);
        anyhow::Error::new(HttpError {
            what: what.to_string(),
            status,
            code,
            message,
            attempts: sent.attempts,
        })
    }

    /// `send` plus reading the body, retrying when the body is cut off mid-read (a reset
    /// or a truncating proxy after the status line). Non-200 answers are returned as-is.
    pub(crate) async fn send_read(
        &self,
        call: &Call<'_>,
        limit: usize,
    ) -> Result<Result<(HeaderMap, Bytes), Sent>> {
        let mut attempt = 0u32;
        loop {
            let mut sent = self.send_holding(call).await?;
            if sent.resp.status().as_u16() != 200 {
                sent.permit = None;
                return Ok(Err(sent));
            }
            let headers = sent.resp.headers().clone();
            if let Some(len) = sent.resp.content_length() {
                if len > limit as u64 {
                    bail!(
                        "{}: body of {len} bytes is over the {limit} byte limit",
                        call.what
                    );
                }
            }
            let permit = sent.permit.take();
            let read = read_limited(sent.resp, limit).await;
            drop(permit);
            match read {
                Ok(b) => return Ok(Ok((headers, b))),
                Err(e)
                    if attempt < self.inner.policy.retries
                        && !e.to_string().contains("byte limit") =>
                {
                    debug!(what = %call.what, error = %format!("{e:#}"), attempt, "body read failed; retrying");
                    tokio::time::sleep(self.inner.policy.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.context(format!("reading {}", call.what))),
            }
        }
    }

    /// A chunk PATCH: one attempt plus the 401 handshake (a PATCH at an offset cannot be
    /// blindly retried once the registry may have taken it).
    pub(crate) async fn send_patch(&self, call: &Call<'_>, start: u64, end: u64) -> Result<Sent> {
        let mut refused: Option<HeaderValue> = None;
        let mut refreshed = false;
        loop {
            let mut rb = self
                .inner
                .http
                .patch(call.url.clone())
                .timeout(call.timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header("Content-Range", format!("{start}-{end}"))
                .body(call.body.clone().unwrap_or_default());
            let auth = self.authorization(call, &[], refused.as_ref()).await?;
            if let Some(a) = &auth {
                rb = rb.header(reqwest::header::AUTHORIZATION, a.clone());
            }
            let resp = {
                let sem = self.semaphore(call.repo.api_host());
                let _permit = sem
                    .acquire()
                    .await
                    .map_err(|_| anyhow!("client is shutting down"))?;
                self.count(&call.method);
                rb.send()
                    .await
                    .map_err(|e| anyhow!("{}: {}", call.what, describe_reqwest(&e)))?
            };
            if resp.status().as_u16() == 401 && !refreshed {
                refreshed = true;
                refused = auth;
                continue;
            }
            return Ok(Sent {
                resp,
                attempts: 1,
                permit: None,
            });
        }
    }
}
