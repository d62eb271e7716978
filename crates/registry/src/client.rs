//! The API calls (go-containerregistry's `remote`): probes, manifests, tags, blobs. Each builds
//! a request and interprets the answer; auth, retries and bounds are the transport's
//! ([`crate::transport`]).
//!
//! The one rule that shapes this module: **only a 200 with a well-formed digest is
//! `Present`, only a 404 is `Absent`, everything else is `Unknown`.** A wrong "present"
//! skips a build that was needed and ships a stale image; a wrong "absent" only costs a
//! rebuild. So every doubt (a 401, a 5xx after retries, a timeout, a 200 whose digest
//! header is missing and whose body is not a manifest) lands in `Unknown`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use reqwest::{Method, StatusCode, Url};
use tokio::sync::{OnceCell, Semaphore};
use tracing::{debug, warn};

use crate::auth::{generic_fix_hint, TokenCache};
use crate::credentials::{Credentials, Resolved};
use crate::error::ErrorKind;
use crate::manifest::{
    digest_like, is_known_manifest_type, sha256_digest, verify_digest, Manifest, ParsedManifest,
    StreamHasher, MANIFEST_ACCEPT,
};
use crate::reference::{validate_digest, validate_tag, RepoRef};
use crate::retry::RetryPolicy;
use crate::transport::{
    bare_media_type, describe_reqwest, error_code, header_str, Call, HostAuth, Sent,
};

/// Manifests larger than this are refused: the OCI spec recommends registries accept at
/// least 4 MiB, and an unbounded read would let a broken proxy exhaust memory.
const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;
/// A safety net against a `Link` header that loops.
const MAX_TAG_PAGES: usize = 10_000;

/// Options for [`Client::new`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (host or host:port) to reach over plain http. Loopback hosts
    /// (`localhost`, `127.0.0.0/8`, `[::1]`) always are.
    pub insecure_registries: Vec<String>,
    pub credentials: Credentials,
    /// Timeout of each request (and of each read during a blob stream).
    pub timeout: Duration,
    /// Retries after the first attempt on connection errors, timeouts, 408, 429 and 5xx.
    pub retries: u32,
    /// Requests in flight per registry host at once.
    pub max_concurrency_per_host: usize,
    pub user_agent: String,
    /// First backoff delay; doubles per retry, jittered.
    pub retry_base_delay: Duration,
    /// Cap on any single wait between attempts, including `Retry-After`.
    pub max_retry_wait: Duration,
    /// Total time for one blob transfer request (layers can be large).
    pub blob_timeout: Duration,
    /// `n=` for `tags/list` pages.
    pub tags_page_size: usize,
    /// The "Fix:" advice appended to every [`crate::AuthError`], given the registry host. The default
    /// ([`generic_fix_hint`]) is tool-neutral; an application names its own login step.
    pub auth_hint: fn(&str) -> String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: vec![],
            credentials: Credentials::none(),
            timeout: Duration::from_secs(30),
            retries: 4,
            max_concurrency_per_host: 8,
            user_agent: concat!("skip-action/", env!("CARGO_PKG_VERSION")).to_string(),
            retry_base_delay: Duration::from_millis(250),
            max_retry_wait: Duration::from_secs(20),
            blob_timeout: Duration::from_secs(30 * 60),
            tags_page_size: 1000,
            auth_hint: generic_fix_hint,
        }
    }
}

/// The answer to "is this tag in the registry?". Only `Present` may justify a skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// HTTP 200 with a valid digest.
    Present {
        digest: String,
        media_type: Option<String>,
    },
    /// HTTP 404: the tag (or the repository) does not exist.
    Absent,
    /// Anything else after retries: auth failures, 5xx, timeouts, odd answers.
    Unknown { reason: String },
}

impl Probe {
    pub fn is_present(&self) -> bool {
        matches!(self, Probe::Present { .. })
    }
    pub fn digest(&self) -> Option<&str> {
        match self {
            Probe::Present { digest, .. } => Some(digest),
            _ => None,
        }
    }
}

/// Result of a cross-repository mount attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountResult {
    /// 201: the blob is now in the target repository.
    Mounted,
    /// 202: the registry did not mount (no access to the source, or unsupported) and
    /// opened an upload session instead; upload into `location` or cancel it.
    UploadStarted { location: String },
}

/// How [`Client::copy_blob`] got the blob into the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    AlreadyPresent,
    Mounted,
    Copied { bytes: u64 },
}

/// How streamed blob uploads are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMode {
    /// One PUT with the whole body streamed.
    Monolithic,
    /// PATCH chunks of this many bytes, then a PUT with the digest.
    Chunked { chunk_size: usize },
}

/// An HTTP answer the operation did not expect, with the registry's error code if any.
/// [`ErrorKind::of`] tells a 404 from other statuses without downcasting.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub what: String,
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    pub attempts: u32,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        write!(f, "{} answered HTTP {} {reason}", self.what, self.status)?;
        if let Some(c) = &self.code {
            write!(f, " ({c}")?;
            if let Some(m) = &self.message {
                write!(f, ": {m}")?;
            }
            write!(f, ")")?;
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {}

/// A registry client. Cheap to clone: clones share one connection pool, token cache and
/// per-host concurrency limits.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) opts: ClientOptions,
    pub(crate) policy: RetryPolicy,
    pub(crate) tokens: TokenCache,
    pub(crate) hosts: Mutex<HashMap<String, HostAuth>>,
    pub(crate) sems: Mutex<HashMap<String, Arc<Semaphore>>>,
    pub(crate) resolved: Mutex<HashMap<RepoRef, Arc<OnceCell<Resolved>>>>,
    /// Pull scopes the caller said it is about to ask ([`Client::expect_pulls`]), per API host:
    /// a token fetched for one of them asks for up to [`SCOPES_PER_TOKEN`] of them at once.
    pub(crate) pending_pulls: Mutex<HashMap<String, HashMap<String, RepoRef>>>,
    pub(crate) requests: Counters,
}

/// Requests sent to registries (token requests not included), every attempt counted.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) get: std::sync::atomic::AtomicU64,
    pub(crate) head: std::sync::atomic::AtomicU64,
    pub(crate) other: std::sync::atomic::AtomicU64,
}

/// How many requests a client has sent, by method ([`Client::requests`]): what a run cost the
/// registry (Docker Hub counts manifest GETs as pulls), for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub get: u64,
    pub head: u64,
    /// PUT, POST, PATCH, DELETE.
    pub other: u64,
}

/// The most repository scopes asked in one token request: 12,800 repositories (one per image)
/// then cost 256 token requests instead of 12,800, and the request URL stays a few KiB.
pub const SCOPES_PER_TOKEN: usize = 50;

pub(crate) fn pull_scope(repo: &RepoRef) -> String {
    format!("repository:{}:pull", repo.repository)
}

fn push_scope(repo: &RepoRef) -> String {
    format!("repository:{}:pull,push", repo.repository)
}

fn is_loopback_host(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    h == "localhost" || h == "::1" || h.starts_with("127.")
}

impl Client {
    /// Builds the client. Fails only if the HTTP stack cannot be initialised. TLS trust is the
    /// one policy of [`crate::trust`] (bundled roots, system store, SSL_CERT_FILE/SSL_CERT_DIR).
    pub fn new(opts: ClientOptions) -> Result<Client> {
        let http = crate::trust::reqwest_builder()?
            .user_agent(opts.user_agent.clone())
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .read_timeout(opts.timeout)
            .pool_max_idle_per_host(opts.max_concurrency_per_host.max(1))
            .build()
            .context("building the HTTP client")?;
        let policy = RetryPolicy {
            retries: opts.retries,
            base_delay: opts.retry_base_delay,
            max_wait: opts.max_retry_wait,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                opts,
                policy,
                tokens: TokenCache::default(),
                hosts: Mutex::new(HashMap::new()),
                sems: Mutex::new(HashMap::new()),
                resolved: Mutex::new(HashMap::new()),
                pending_pulls: Mutex::new(HashMap::new()),
                requests: Counters::default(),
            }),
        })
    }

    /// Requests sent so far by this client and its clones, by method (every attempt).
    pub fn requests(&self) -> RequestCounts {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.inner.requests;
        RequestCounts {
            get: c.get.load(Relaxed),
            head: c.head.load(Relaxed),
            other: c.other.load(Relaxed),
        }
    }

    /// Say which repositories are about to be read (probes of many repositories, one each): a
    /// token server that speaks the distribution token spec grants many `scope`s per request,
    /// so the first token fetched for one of them also covers up to [`SCOPES_PER_TOKEN`] - 1
    /// others with the same credentials. A registry that grants fewer scopes than asked is
    /// harmless: the 401 on a repository left out fetches that repository's own token, as
    /// without the hint.
    pub fn expect_pulls(&self, repos: &[RepoRef]) {
        let mut m = self
            .inner
            .pending_pulls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for r in repos {
            m.entry(r.api_host().to_string())
                .or_default()
                .insert(pull_scope(r), r.clone());
        }
    }

    pub(crate) fn has_pending_pulls(&self, host: &str) -> bool {
        self.inner
            .pending_pulls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .is_some_and(|p| !p.is_empty())
    }

    /// Up to `n` expected pull repositories of `host` other than `scope`'s; each is handed out
    /// once (and `scope` is dropped from the list: it is being fetched now).
    pub(crate) fn take_pending_pulls(&self, host: &str, scope: &str, n: usize) -> Vec<RepoRef> {
        let mut m = self
            .inner
            .pending_pulls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(pending) = m.get_mut(host) else {
            return Vec::new();
        };
        pending.remove(scope);
        let keys: Vec<String> = pending.keys().take(n).cloned().collect();
        keys.iter().filter_map(|k| pending.remove(k)).collect()
    }

    /// `http` for loopback and listed insecure registries, `https` for everything else.
    pub fn scheme_for(&self, host: &str) -> &'static str {
        let host_only = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        let insecure = self
            .inner
            .opts
            .insecure_registries
            .iter()
            .any(|r| r.eq_ignore_ascii_case(host) || r.eq_ignore_ascii_case(host_only));
        if insecure || is_loopback_host(host) {
            "http"
        } else {
            "https"
        }
    }

    fn base_url(&self, repo: &RepoRef) -> Result<Url> {
        let host = repo.api_host();
        Url::parse(&format!("{}://{host}/", self.scheme_for(host)))
            .with_context(|| format!("bad registry host {host:?}"))
    }

    fn api_url(&self, repo: &RepoRef, tail: &str) -> Result<Url> {
        let base = self.base_url(repo)?;
        base.join(&format!("v2/{}/{tail}", repo.repository))
            .context("building URL")
    }

    pub(crate) fn semaphore(&self, host: &str) -> Arc<Semaphore> {
        let mut m = self.inner.sems.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.inner.opts.max_concurrency_per_host.max(1),
                ))
            })
            .clone()
    }

    fn manifest_call<'a>(
        &self,
        method: Method,
        repo: &'a RepoRef,
        reference: &str,
    ) -> Result<Call<'a>> {
        if reference.contains(':') {
            validate_digest(reference, &format!("{repo}@{reference}"))?;
        } else {
            validate_tag(reference, &format!("{repo}:{reference}"))?;
        }
        let sep = if reference.contains(':') { '@' } else { ':' };
        Ok(Call {
            what: format!("{method} {repo}{sep}{reference}"),
            method,
            repo,
            url: self.api_url(repo, &format!("manifests/{reference}"))?,
            accept: Some(MANIFEST_ACCEPT.join(", ")),
            content_type: None,
            body: None,
            scopes: vec![pull_scope(repo)],
            timeout: self.inner.opts.timeout,
        })
    }

    /// Is `tag` (or a digest) in `repo`? HEAD with every manifest type in `Accept`; never
    /// an error, never a guess.
    pub async fn probe(&self, repo: &RepoRef, tag: &str) -> Probe {
        let call = match self.manifest_call(Method::HEAD, repo, tag) {
            Ok(c) => c,
            Err(e) => {
                return Probe::Unknown {
                    reason: format!("{e:#}"),
                }
            }
        };
        let sent = match self.send(&call).await {
            Ok(s) => s,
            Err(e) => {
                return Probe::Unknown {
                    reason: format!("{e:#}"),
                }
            }
        };
        let status = sent.resp.status().as_u16();
        match status {
            200 => {
                let headers = sent.resp.headers().clone();
                let digest = header_str(&headers, "docker-content-digest");
                let media_type = bare_media_type(&headers);
                let digest_ok = digest
                    .as_deref()
                    .is_some_and(|d| validate_digest(d, "Docker-Content-Digest").is_ok());
                let type_ok = media_type.as_deref().is_some_and(is_known_manifest_type);
                if digest_ok && type_ok {
                    return Probe::Present {
                        digest: digest.unwrap_or_default(),
                        media_type,
                    };
                }
                // Some registries omit the digest on HEAD; a proxy may answer 200 with a
                // login page. Only a real manifest, fetched and hashed, counts.
                debug!(what = %call.what, ?digest, ?media_type, "HEAD 200 without a usable digest or type; confirming with GET");
                match self.get_manifest(repo, tag).await {
                    Ok(m) => Probe::Present {
                        digest: m.digest,
                        media_type: Some(m.media_type),
                    },
                    Err(e) => Probe::Unknown {
                        reason: format!(
                            "HEAD answered 200 but GET could not confirm a manifest: {e:#}"
                        ),
                    },
                }
            }
            404 => Probe::Absent,
            _ => Probe::Unknown {
                reason: format!(
                    "{}",
                    HttpError {
                        what: call.what.clone(),
                        status,
                        code: None,
                        message: None,
                        attempts: sent.attempts
                    }
                ),
            },
        }
    }

    /// Fetches a manifest (index types accepted, so an index comes back as the index) and
    /// verifies its digest against the reference (if a digest) and the
    /// `Docker-Content-Digest` header (if present).
    pub async fn get_manifest(&self, repo: &RepoRef, reference: &str) -> Result<Manifest> {
        let call = self.manifest_call(Method::GET, repo, reference)?;
        let (headers, bytes) = match self.send_read(&call, MAX_MANIFEST_BYTES).await? {
            Ok(ok) => ok,
            Err(sent) => return Err(self.http_error(&call.what, sent).await),
        };
        let header_digest = header_str(&headers, "docker-content-digest").filter(|d| !d.is_empty());
        let digest = if reference.contains(':') {
            verify_digest(reference, &bytes)
                .with_context(|| format!("{} returned different content", call.what))?;
            reference.to_string()
        } else {
            sha256_digest(&bytes)
        };
        if let Some(h) = &header_digest {
            if let Ok(computed) = digest_like(h, &bytes) {
                if &computed != h {
                    bail!(
                        "{}: Docker-Content-Digest {h} does not match the content ({computed})",
                        call.what
                    );
                }
            }
        }
        let media_type = match bare_media_type(&headers).filter(|m| is_known_manifest_type(m)) {
            Some(m) => m,
            None => {
                let parsed = ParsedManifest::parse(&bytes, "")
                    .with_context(|| format!("{} is not a manifest", call.what))?;
                match parsed {
                    ParsedManifest::Index(i) => i
                        .media_type
                        .unwrap_or_else(|| crate::manifest::OCI_INDEX.into()),
                    ParsedManifest::Image(m) => m
                        .media_type
                        .unwrap_or_else(|| crate::manifest::OCI_MANIFEST.into()),
                }
            }
        };
        Ok(Manifest {
            bytes: bytes.to_vec(),
            media_type,
            digest,
        })
    }

    /// PUTs manifest bytes as-is under `reference` (a tag, or its own digest) and returns
    /// the digest, checked against what the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &RepoRef,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String> {
        let digest = sha256_digest(bytes);
        if reference.contains(':') && reference != digest {
            verify_digest(reference, bytes)
                .context("PUT by digest with content of another digest")?;
        }
        let mut call = self.manifest_call(Method::PUT, repo, reference)?;
        call.accept = None;
        call.content_type = Some(media_type.to_string());
        call.body = Some(Bytes::copy_from_slice(bytes));
        call.scopes = vec![push_scope(repo)];
        let sent = self.send(&call).await?;
        let status = sent.resp.status().as_u16();
        if status != 201 && status != 200 {
            return Err(self.http_error(&call.what, sent).await);
        }
        match header_str(sent.resp.headers(), "docker-content-digest").filter(|d| !d.is_empty()) {
            Some(h) => {
                let ours = digest_like(&h, bytes).unwrap_or_else(|_| digest.clone());
                if ours != h {
                    bail!(
                        "{}: registry stored digest {h}, but the bytes sent have {ours}",
                        call.what
                    );
                }
            }
            // A registry answers a stored manifest with 201 Created. A bare 200 (a captive
            // portal's or a misconfigured proxy's page) proves nothing was written.
            None if status == 200 => bail!(
                "{}: answered 200 without Docker-Content-Digest, not 201 Created; the write cannot be confirmed (is a proxy answering for the registry?)",
                call.what
            ),
            None => {}
        }
        Ok(digest)
    }

    /// Every tag of `repo`, following `Link` pagination. A repository that does not exist
    /// (404 `NAME_UNKNOWN`) has no tags.
    pub async fn list_tags(&self, repo: &RepoRef) -> Result<Vec<String>> {
        let mut url = self.api_url(repo, "tags/list")?;
        url.query_pairs_mut()
            .append_pair("n", &self.inner.opts.tags_page_size.max(1).to_string());
        let mut tags = Vec::new();
        let mut seen = HashSet::new();
        let mut visited = HashSet::new();
        for page in 0..MAX_TAG_PAGES {
            if !visited.insert(url.to_string()) {
                bail!("tags/list pagination of {repo} loops back to {url}");
            }
            let call = Call {
                method: Method::GET,
                repo,
                url: url.clone(),
                accept: Some("application/json".into()),
                content_type: None,
                body: None,
                scopes: vec![pull_scope(repo)],
                timeout: self.inner.opts.timeout,
                what: format!("GET {repo} tags/list (page {})", page + 1),
            };
            let (headers, body) = match self.send_read(&call, 64 * 1024 * 1024).await? {
                Ok(ok) => ok,
                Err(sent) => {
                    let status = sent.resp.status().as_u16();
                    if status == 404 {
                        let body = sent.resp.bytes().await.unwrap_or_default();
                        let (code, message) = error_code(&body);
                        if code.as_deref() == Some("NAME_UNKNOWN") {
                            return Ok(tags);
                        }
                        return Err(anyhow::Error::new(HttpError {
                            what: call.what,
                            status,
                            code,
                            message,
                            attempts: sent.attempts,
                        }));
                    }
                    return Err(self.http_error(&call.what, sent).await);
                }
            };
            let link = header_str(&headers, "link");
            #[derive(serde::Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let list: TagList = serde_json::from_slice(&body)
                .with_context(|| format!("{}: not a tag list", call.what))?;
            for t in list.tags.unwrap_or_default() {
                if seen.insert(t.clone()) {
                    tags.push(t);
                }
            }
            match link.as_deref().and_then(next_link) {
                Some(next) => {
                    let next_url = url
                        .join(&next)
                        .with_context(|| format!("bad Link URL {next:?}"))?;
                    if next_url.host_str() != url.host_str()
                        || next_url.port_or_known_default() != url.port_or_known_default()
                    {
                        bail!("{}: Link points to another host ({next_url}); refusing to follow with credentials", call.what);
                    }
                    url = next_url;
                }
                None => return Ok(tags),
            }
        }
        bail!("tags/list of {repo} has more than {MAX_TAG_PAGES} pages")
    }

    /// GETs a blob whole into memory: at most `limit` bytes (a `Content-Length` over it is
    /// refused before reading, a body that grows past it is cut off and refused), verified
    /// against `digest`.
    ///
    /// For small blobs read to be understood (an image config names the platform of a
    /// single-arch image); layers are copied with [`Client::copy_blob`], never held whole. It
    /// goes through the same `send` as every other call, so it shares the auth handshake, the
    /// token cache, the per-host limit and the retries; a 404 is an [`HttpError`] with status
    /// 404.
    pub async fn get_blob(&self, repo: &RepoRef, digest: &str, limit: usize) -> Result<Vec<u8>> {
        validate_digest(digest, &format!("{repo}@{digest}"))?;
        let call = Call {
            method: Method::GET,
            repo,
            url: self.api_url(repo, &format!("blobs/{digest}"))?,
            accept: None,
            content_type: None,
            body: None,
            scopes: vec![pull_scope(repo)],
            timeout: self.inner.opts.timeout,
            what: format!("GET blob {repo}@{digest}"),
        };
        let (_, bytes) = match self.send_read(&call, limit).await? {
            Ok(ok) => ok,
            Err(sent) => return Err(self.http_error(&call.what, sent).await),
        };
        verify_digest(digest, &bytes)
            .with_context(|| format!("{} returned different content", call.what))?;
        Ok(bytes.to_vec())
    }

    /// Does `repo` have the blob?
    pub async fn blob_exists(&self, repo: &RepoRef, digest: &str) -> Result<bool> {
        validate_digest(digest, &format!("{repo}@{digest}"))?;
        let call = Call {
            method: Method::HEAD,
            repo,
            url: self.api_url(repo, &format!("blobs/{digest}"))?,
            accept: None,
            content_type: None,
            body: None,
            scopes: vec![pull_scope(repo)],
            timeout: self.inner.opts.timeout,
            what: format!("HEAD blob {repo}@{digest}"),
        };
        let sent = self.send(&call).await?;
        match sent.resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.http_error(&call.what, sent).await),
        }
    }

    /// Asks the registry to mount `digest` from `from` into `repo` (same registry).
    pub async fn mount_blob(
        &self,
        repo: &RepoRef,
        digest: &str,
        from: &RepoRef,
    ) -> Result<MountResult> {
        validate_digest(digest, &format!("{from}@{digest}"))?;
        if from.registry != repo.registry {
            bail!("cannot mount {digest} from {from} into {repo}: different registries");
        }
        let mut url = self.api_url(repo, "blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", &from.repository);
        let call = Call {
            method: Method::POST,
            repo,
            url,
            accept: None,
            content_type: None,
            body: None,
            scopes: vec![push_scope(repo), pull_scope(from)],
            timeout: self.inner.opts.timeout,
            what: format!("mount {digest} from {from} into {repo}"),
        };
        let sent = self.send(&call).await?;
        match sent.resp.status().as_u16() {
            201 => {
                if let Some(h) = header_str(sent.resp.headers(), "docker-content-digest") {
                    if h != digest {
                        bail!("{}: registry mounted {h}", call.what);
                    }
                }
                Ok(MountResult::Mounted)
            }
            202 => {
                let loc = header_str(sent.resp.headers(), "location")
                    .with_context(|| format!("{}: 202 without Location", call.what))?;
                Ok(MountResult::UploadStarted {
                    location: call.url.join(&loc)?.to_string(),
                })
            }
            _ => Err(self.http_error(&call.what, sent).await),
        }
    }

    /// Abandons an upload session (best effort; sessions also expire on their own).
    pub async fn cancel_upload(&self, repo: &RepoRef, location: &str) -> Result<()> {
        let call = Call {
            method: Method::DELETE,
            repo,
            url: Url::parse(location).context("upload location")?,
            accept: None,
            content_type: None,
            body: None,
            scopes: vec![push_scope(repo)],
            timeout: self.inner.opts.timeout,
            what: format!("cancel upload to {repo}"),
        };
        let sent = self.send(&call).await?;
        let s = sent.resp.status().as_u16();
        if s == 204 || s == 200 || s == 404 {
            Ok(())
        } else {
            Err(self.http_error(&call.what, sent).await)
        }
    }

    async fn start_upload(&self, repo: &RepoRef) -> Result<String> {
        let call = Call {
            method: Method::POST,
            repo,
            url: self.api_url(repo, "blobs/uploads/")?,
            accept: None,
            content_type: None,
            body: None,
            scopes: vec![push_scope(repo)],
            timeout: self.inner.opts.timeout,
            what: format!("start upload to {repo}"),
        };
        let sent = self.send(&call).await?;
        if sent.resp.status().as_u16() != 202 {
            return Err(self.http_error(&call.what, sent).await);
        }
        let loc = header_str(sent.resp.headers(), "location")
            .with_context(|| format!("{}: 202 without Location", call.what))?;
        Ok(call.url.join(&loc)?.to_string())
    }

    /// Copies a blob into `to`: nothing if already there, a mount within one registry,
    /// else a streamed GET → PUT, hashing on the way and checking the digest.
    pub async fn copy_blob(
        &self,
        from: &RepoRef,
        to: &RepoRef,
        digest: &str,
    ) -> Result<CopyOutcome> {
        self.copy_blob_with(from, to, digest, UploadMode::Monolithic)
            .await
    }

    /// [`Client::copy_blob`] with a choice of upload mode.
    pub async fn copy_blob_with(
        &self,
        from: &RepoRef,
        to: &RepoRef,
        digest: &str,
        mode: UploadMode,
    ) -> Result<CopyOutcome> {
        validate_digest(digest, &format!("{from}@{digest}"))?;
        if self.blob_exists(to, digest).await? {
            return Ok(CopyOutcome::AlreadyPresent);
        }
        let mut session = None;
        if from.registry == to.registry {
            match self.mount_blob(to, digest, from).await? {
                MountResult::Mounted => return Ok(CopyOutcome::Mounted),
                MountResult::UploadStarted { location } => session = Some(location),
            }
        }
        // The streamed body cannot be replayed by `send`, so the whole transfer is the
        // unit of retry here.
        let mut attempt = 0u32;
        loop {
            let location = match session.take() {
                Some(l) => l,
                None => self.start_upload(to).await?,
            };
            match self.stream_blob(from, to, digest, &location, mode).await {
                Ok(n) => return Ok(CopyOutcome::Copied { bytes: n }),
                Err(e)
                    if attempt < self.inner.policy.retries
                        && ErrorKind::of(&e) != ErrorKind::Auth =>
                {
                    warn!(error = %format!("{e:#}"), attempt, "blob copy failed; retrying");
                    let _ = self.cancel_upload(to, &location).await;
                    tokio::time::sleep(self.inner.policy.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    let _ = self.cancel_upload(to, &location).await;
                    return Err(e);
                }
            }
        }
    }

    async fn stream_blob(
        &self,
        from: &RepoRef,
        to: &RepoRef,
        digest: &str,
        location: &str,
        mode: UploadMode,
    ) -> Result<u64> {
        let get = Call {
            method: Method::GET,
            repo: from,
            url: self.api_url(from, &format!("blobs/{digest}"))?,
            accept: None,
            content_type: None,
            body: None,
            scopes: vec![pull_scope(from)],
            timeout: self.inner.opts.blob_timeout,
            what: format!("GET blob {from}@{digest}"),
        };
        let sent = self.send(&get).await?;
        if sent.resp.status().as_u16() != 200 {
            return Err(self.http_error(&get.what, sent).await);
        }
        let expected_len = sent.resp.content_length();
        let hasher = Arc::new(Mutex::new(Some(StreamHasher::for_digest(digest)?)));
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut loc = Url::parse(location).context("upload location")?;

        match mode {
            UploadMode::Monolithic => {
                let (h2, c2) = (hasher.clone(), count.clone());
                let stream = futures_util::stream::unfold(sent.resp, move |mut resp| {
                    let (h, c) = (h2.clone(), c2.clone());
                    async move {
                        match resp.chunk().await {
                            Ok(Some(chunk)) => {
                                if let Some(hs) =
                                    h.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
                                {
                                    hs.update(&chunk);
                                }
                                c.fetch_add(
                                    chunk.len() as u64,
                                    std::sync::atomic::Ordering::Relaxed,
                                );
                                Some((Ok::<Bytes, reqwest::Error>(chunk), resp))
                            }
                            Ok(None) => None,
                            Err(e) => Some((Err(e), resp)),
                        }
                    }
                });
                loc.query_pairs_mut().append_pair("digest", digest);
                let mut rb = self
                    .inner
                    .http
                    .put(loc.clone())
                    .timeout(self.inner.opts.blob_timeout)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(reqwest::Body::wrap_stream(stream));
                if let Some(n) = expected_len {
                    rb = rb.header(reqwest::header::CONTENT_LENGTH, n);
                }
                let put = Call {
                    method: Method::PUT,
                    repo: to,
                    url: loc,
                    accept: None,
                    content_type: None,
                    body: None,
                    scopes: vec![push_scope(to)],
                    timeout: self.inner.opts.blob_timeout,
                    what: format!("PUT blob {to}@{digest}"),
                };
                if let Some(a) = self.authorization(&put, &[], None).await? {
                    rb = rb.header(reqwest::header::AUTHORIZATION, a);
                }
                let resp = {
                    let sem = self.semaphore(to.api_host());
                    let _permit = sem
                        .acquire()
                        .await
                        .map_err(|_| anyhow!("client is shutting down"))?;
                    rb.send()
                        .await
                        .map_err(|e| anyhow!("{}: {}", put.what, describe_reqwest(&e)))?
                };
                let status = resp.status().as_u16();
                if status != 201 {
                    return Err(self
                        .http_error(
                            &put.what,
                            Sent {
                                resp,
                                attempts: 1,
                                permit: None,
                            },
                        )
                        .await);
                }
            }
            UploadMode::Chunked { chunk_size } => {
                let chunk_size = chunk_size.max(1);
                let mut resp = sent.resp;
                let mut buf: Vec<u8> = Vec::with_capacity(chunk_size);
                let mut offset: u64 = 0;
                loop {
                    let next = resp
                        .chunk()
                        .await
                        .map_err(|e| anyhow!("{}: {}", get.what, describe_reqwest(&e)))?;
                    let done = next.is_none();
                    if let Some(c) = next {
                        if let Some(hs) = hasher.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
                        {
                            hs.update(&c);
                        }
                        buf.extend_from_slice(&c);
                    }
                    while buf.len() >= chunk_size || (done && !buf.is_empty()) {
                        let take = buf.len().min(chunk_size);
                        let piece: Vec<u8> = buf.drain(..take).collect();
                        let end = offset + piece.len() as u64 - 1;
                        let call = Call {
                            method: Method::PATCH,
                            repo: to,
                            url: loc.clone(),
                            accept: None,
                            content_type: Some("application/octet-stream".into()),
                            body: Some(Bytes::from(piece)),
                            scopes: vec![push_scope(to)],
                            timeout: self.inner.opts.blob_timeout,
                            what: format!("PATCH blob {to}@{digest} bytes {offset}-{end}"),
                        };
                        // Content-Range is part of the protocol; `send` has no slot for
                        // it, so chunk PATCHes go through a small wrapper.
                        let sent = self.send_patch(&call, offset, end).await?;
                        if sent.resp.status().as_u16() != 202 {
                            return Err(self.http_error(&call.what, sent).await);
                        }
                        if let Some(l) = header_str(sent.resp.headers(), "location") {
                            loc = loc.join(&l)?;
                        }
                        offset = end + 1;
                        count.store(offset, std::sync::atomic::Ordering::Relaxed);
                    }
                    if done {
                        break;
                    }
                }
                loc.query_pairs_mut().append_pair("digest", digest);
                let call = Call {
                    method: Method::PUT,
                    repo: to,
                    url: loc,
                    accept: None,
                    content_type: Some("application/octet-stream".into()),
                    body: None,
                    scopes: vec![push_scope(to)],
                    timeout: self.inner.opts.timeout,
                    what: format!("PUT blob {to}@{digest} (close chunked upload)"),
                };
                let sent = self.send(&call).await?;
                if sent.resp.status().as_u16() != 201 {
                    return Err(self.http_error(&call.what, sent).await);
                }
            }
        }
        let got = hasher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(StreamHasher::finish)
            .unwrap_or_default();
        if got != digest {
            bail!("copied blob has digest {got}, expected {digest}");
        }
        let n = count.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(len) = expected_len {
            if n != len {
                bail!("copied {n} bytes of blob {digest}, the source announced {len}");
            }
        }
        Ok(n)
    }
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    for part in header.split(',') {
        let part = part.trim();
        let Some(start) = part.find('<') else {
            continue;
        };
        let Some(end) = part[start..].find('>') else {
            continue;
        };
        let target = &part[start + 1..start + end];
        let params = &part[start + end + 1..];
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://r/v2/a/tags/list?last=b&n=2>; rel=next"#).as_deref(),
            Some("https://r/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"</x>; rel="prev", </y>; rel="next""#).as_deref(),
            Some("/y")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn schemes() {
        let c = Client::new(ClientOptions {
            insecure_registries: vec!["myreg.local:5000".into(), "plain.example".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.scheme_for("localhost:5000"), "http");
        assert_eq!(c.scheme_for("localhost"), "http");
        assert_eq!(c.scheme_for("127.0.0.1:5000"), "http");
        assert_eq!(c.scheme_for("[::1]:5000"), "http");
        assert_eq!(c.scheme_for("myreg.local:5000"), "http");
        assert_eq!(c.scheme_for("plain.example:8080"), "http");
        assert_eq!(c.scheme_for("ghcr.io"), "https");
        assert_eq!(c.scheme_for("registry-1.docker.io"), "https");
        assert_eq!(c.scheme_for("localhost.example.com"), "https");
    }

    #[test]
    fn http_error_display() {
        let e = HttpError {
            what: "PUT x".into(),
            status: 400,
            code: Some("MANIFEST_INVALID".into()),
            message: Some("bad".into()),
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "PUT x answered HTTP 400 Bad Request (MANIFEST_INVALID: bad)"
        );
        let e = HttpError {
            what: "HEAD x".into(),
            status: 503,
            code: None,
            message: None,
            attempts: 5,
        };
        assert_eq!(
            e.to_string(),
            "HEAD x answered HTTP 503 Service Unavailable after 5 attempts"
        );
    }
}
