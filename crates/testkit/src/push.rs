//! Pushes synthetic images over plain HTTP, without Docker.
//!
//! This is deliberately independent of `skip-registry`: the tests use it as the oracle
//! ("this digest was pushed"), so it must not share the code under test. Layers are random
//! bytes (the registry never looks inside a blob); configs are small valid image configs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use crate::token::{Access, Signer};
use crate::util::{self, Rng};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Manifest flavour of a pushed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/vnd.oci.image.manifest.v1+json` (index: OCI image index).
    Oci,
    /// Docker v2 schema 2 (index: Docker manifest list).
    Docker,
}

impl Format {
    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }
    pub fn index_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_LIST,
        }
    }
    fn config_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }
    fn layer_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_LAYER,
            Format::Docker => DOCKER_LAYER,
        }
    }
}

/// A blob as referenced from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// What to push.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub format: Format,
    /// New random layers on top of the parent's (if any).
    pub new_layers: usize,
    pub layer_size: usize,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// Layers of the image this one is built FROM: they come first, unchanged.
    pub parent_layers: Vec<BlobRef>,
    /// Image config labels (`config.Labels`), e.g. `org.opencontainers.image.revision` as a
    /// build job sets it.
    pub labels: Vec<(String, String)>,
}

impl ImageSpec {
    pub fn oci() -> Self {
        Self::new(Format::Oci)
    }
    pub fn docker() -> Self {
        Self::new(Format::Docker)
    }
    pub fn new(format: Format) -> Self {
        ImageSpec {
            format,
            new_layers: 1,
            layer_size: 512,
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            parent_layers: vec![],
            labels: vec![],
        }
    }
    pub fn layers(mut self, n: usize) -> Self {
        self.new_layers = n;
        self
    }
    pub fn layer_size(mut self, bytes: usize) -> Self {
        self.layer_size = bytes;
        self
    }
    pub fn platform(mut self, os: &str, arch: &str) -> Self {
        self.os = os.into();
        self.architecture = arch.into();
        self
    }
    pub fn variant(mut self, v: &str) -> Self {
        self.variant = Some(v.into());
        self
    }
    /// A config label (`config.Labels`).
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }
    /// Builds FROM `parent`: the parent's layers become this image's first layers.
    pub fn from_parent(mut self, parent: &PushedImage) -> Self {
        self.parent_layers = parent.layers.clone();
        self
    }
}

/// A pushed single-platform image.
#[derive(Debug, Clone)]
pub struct PushedImage {
    pub repo: String,
    pub tag: Option<String>,
    pub digest: String,
    pub media_type: String,
    pub manifest: Vec<u8>,
    pub config: BlobRef,
    pub layers: Vec<BlobRef>,
    pub os: String,
    pub architecture: String,
}

/// A pushed index (OCI index or Docker manifest list) and its children.
#[derive(Debug, Clone)]
pub struct PushedIndex {
    pub repo: String,
    pub tag: Option<String>,
    pub digest: String,
    pub media_type: String,
    pub manifest: Vec<u8>,
    pub children: Vec<PushedImage>,
}

/// How the pusher authenticates.
#[derive(Clone)]
pub enum PushAuth {
    None,
    Basic(String, String),
    /// Mint a token with the registry's own signer (token-auth registries). Skips the
    /// token server so that its hit counter only counts the client under test.
    Mint(Arc<Signer>),
}

impl std::fmt::Debug for PushAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushAuth::None => write!(f, "None"),
            PushAuth::Basic(u, _) => write!(f, "Basic({u}, ***)"),
            PushAuth::Mint(_) => write!(f, "Mint"),
        }
    }
}

/// Pushes blobs and manifests to one registry.
#[derive(Debug, Clone)]
pub struct Pusher {
    base: String,
    auth: PushAuth,
    http: reqwest::Client,
    /// Every blob this pusher generated, so an image built FROM a parent in another
    /// repository can upload the parent's layers there too.
    blobs: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl Pusher {
    pub fn new(base_url: &str, auth: PushAuth) -> Pusher {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .expect("reqwest client");
        Self::with_http(base_url, auth, http)
    }

    /// A pusher on a client of the caller's (a TLS registry: its test CA as a root, its name
    /// resolved to 127.0.0.1).
    pub fn with_http(base_url: &str, auth: PushAuth, http: reqwest::Client) -> Pusher {
        Pusher {
            base: base_url.trim_end_matches('/').to_string(),
            auth,
            http,
            blobs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn auth_header(&self, repo: &str) -> Result<Option<String>> {
        Ok(match &self.auth {
            PushAuth::None => None,
            PushAuth::Basic(u, p) => Some(format!("Basic {}", STANDARD.encode(format!("{u}:{p}")))),
            PushAuth::Mint(signer) => {
                let access = [Access {
                    kind: "repository".into(),
                    name: repo.into(),
                    actions: vec!["pull".into(), "push".into(), "delete".into()],
                }];
                Some(format!(
                    "Bearer {}",
                    signer.sign("testkit-pusher", &access, Duration::from_secs(300))?
                ))
            }
        })
    }

    fn req(
        &self,
        method: reqwest::Method,
        url: &str,
        repo: &str,
    ) -> Result<reqwest::RequestBuilder> {
        let mut rb = self.http.request(method, url);
        if let Some(h) = self.auth_header(repo)? {
            rb = rb.header("Authorization", h);
        }
        Ok(rb)
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{}", self.base, location)
        }
    }

    /// Uploads a blob (monolithic POST + PUT) unless the repository already has it.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Result<String> {
        let digest = util::sha256_digest(data);
        self.blobs
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(digest.clone(), data.to_vec());
        let head = self
            .req(
                reqwest::Method::HEAD,
                &format!("{}/v2/{repo}/blobs/{digest}", self.base),
                repo,
            )?
            .send()
            .await?;
        if head.status().as_u16() == 200 {
            return Ok(digest);
        }
        let resp = self
            .req(
                reqwest::Method::POST,
                &format!("{}/v2/{repo}/blobs/uploads/", self.base),
                repo,
            )?
            .send()
            .await?;
        if resp.status().as_u16() != 202 {
            bail!(
                "starting upload to {repo}: HTTP {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("upload without Location")?
            .to_string();
        let mut url = self.absolute(&loc);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let resp = self
            .req(reqwest::Method::PUT, &url, repo)?
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await?;
        if resp.status().as_u16() != 201 {
            bail!(
                "finishing upload to {repo}: HTTP {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(digest)
    }

    /// PUTs manifest bytes under `reference` (a tag or the digest) and checks the digest
    /// the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String> {
        let digest = util::sha256_digest(bytes);
        let resp = self
            .req(
                reqwest::Method::PUT,
                &format!("{}/v2/{repo}/manifests/{reference}", self.base),
                repo,
            )?
            .header("Content-Type", media_type)
            .body(bytes.to_vec())
            .send()
            .await?;
        if resp.status().as_u16() != 201 {
            bail!(
                "PUT manifest {repo}:{reference}: HTTP {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if d != digest {
                bail!("registry reports digest {d}, computed {digest}");
            }
        }
        Ok(digest)
    }

    /// Deletes a manifest by digest (the registry has `delete.enabled`).
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<()> {
        let resp = self
            .req(
                reqwest::Method::DELETE,
                &format!("{}/v2/{repo}/manifests/{digest}", self.base),
                repo,
            )?
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("DELETE {repo}@{digest}: HTTP {}", resp.status());
        }
        Ok(())
    }

    /// Pushes a single-platform image; `tag: None` pushes by digest only (index children).
    pub async fn push_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        spec: &ImageSpec,
    ) -> Result<PushedImage> {
        let mut rng = Rng::from_entropy();
        let mut layers = Vec::new();
        for parent in &spec.parent_layers {
            let data = self
                .blobs
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .get(&parent.digest)
                .cloned();
            match data {
                Some(d) => {
                    self.push_blob(repo, &d).await?;
                }
                // A parent read back from the registry ([`Pusher::pull_image`]): its layers are
                // already in `repo`, or copied there by `pull_image`'s caller.
                None if self.blob_exists(repo, &parent.digest).await? => {}
                None => bail!(
                    "parent layer {} was not pushed by this pusher and is not in {repo}",
                    parent.digest
                ),
            }
            layers.push(parent.clone());
        }
        for _ in 0..spec.new_layers {
            let data = rng.bytes(spec.layer_size);
            let digest = self.push_blob(repo, &data).await?;
            layers.push(BlobRef {
                digest,
                size: data.len() as u64,
                media_type: spec.format.layer_type().into(),
            });
        }
        let mut config = json!({
            "architecture": spec.architecture,
            "os": spec.os,
            "config": {"Labels": {"skip-testkit.nonce": rng.hex(8)}},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
        });
        if let Some(v) = &spec.variant {
            config["variant"] = json!(v);
        }
        for (k, v) in &spec.labels {
            config["config"]["Labels"][k] = json!(v);
        }
        let config_bytes = serde_json::to_vec(&config)?;
        let config_digest = self.push_blob(repo, &config_bytes).await?;
        let config_ref = BlobRef {
            digest: config_digest,
            size: config_bytes.len() as u64,
            media_type: spec.format.config_type().into(),
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": spec.format.manifest_type(),
            "config": {"mediaType": config_ref.media_type, "digest": config_ref.digest, "size": config_ref.size},
            "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec_pretty(&manifest)?;
        let digest = util::sha256_digest(&bytes);
        self.put_manifest(
            repo,
            tag.unwrap_or(&digest),
            &bytes,
            spec.format.manifest_type(),
        )
        .await?;
        Ok(PushedImage {
            repo: repo.into(),
            tag: tag.map(str::to_string),
            digest,
            media_type: spec.format.manifest_type().into(),
            manifest: bytes,
            config: config_ref,
            layers,
            os: spec.os.clone(),
            architecture: spec.architecture.clone(),
        })
    }

    /// Whether `repo` has the blob `digest` (HEAD).
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let resp = self
            .req(
                reqwest::Method::HEAD,
                &format!("{}/v2/{repo}/blobs/{digest}", self.base),
                repo,
            )?
            .send()
            .await?;
        Ok(resp.status().as_u16() == 200)
    }

    /// GETs a blob's bytes and checks their digest.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>> {
        let resp = self
            .req(
                reqwest::Method::GET,
                &format!("{}/v2/{repo}/blobs/{digest}", self.base),
                repo,
            )?
            .send()
            .await?;
        if resp.status().as_u16() != 200 {
            bail!("GET blob {repo}@{digest}: HTTP {}", resp.status());
        }
        let data = resp.bytes().await?.to_vec();
        if util::sha256_digest(&data) != digest {
            bail!("blob {repo}@{digest}: the bytes have another digest");
        }
        Ok(data)
    }

    /// GETs a manifest (any of the four media types): `(bytes, media type, digest)`, or `None` on
    /// 404.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String, String)>> {
        let resp = self
            .req(
                reqwest::Method::GET,
                &format!("{}/v2/{repo}/manifests/{reference}", self.base),
                repo,
            )?
            .header(
                "Accept",
                [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", "),
            )
            .send()
            .await?;
        match resp.status().as_u16() {
            404 => return Ok(None),
            200 => {}
            code => bail!("GET manifest {repo}:{reference}: HTTP {code}"),
        }
        let media_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = resp.bytes().await?.to_vec();
        let digest = util::sha256_digest(&bytes);
        Ok(Some((bytes, media_type, digest)))
    }

    /// Reads a single-platform image back from the registry, so that an image pushed by another
    /// process can be a parent ([`ImageSpec::from_parent`]): its layers are referenced, and
    /// [`Pusher::push_image`] finds them in the repository instead of in this pusher's memory.
    pub async fn pull_image(&self, repo: &str, reference: &str) -> Result<PushedImage> {
        let (manifest, media_type, digest) = self
            .get_manifest(repo, reference)
            .await?
            .with_context(|| format!("{repo}:{reference} does not exist"))?;
        if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
            bail!("{repo}:{reference} is a {media_type}, not a single-platform image manifest");
        }
        let m: serde_json::Value = serde_json::from_slice(&manifest)?;
        let blob = |v: &serde_json::Value| -> Result<BlobRef> {
            Ok(BlobRef {
                digest: v["digest"].as_str().context("blob without digest")?.into(),
                size: v["size"].as_u64().context("blob without size")?,
                media_type: v["mediaType"].as_str().unwrap_or_default().into(),
            })
        };
        let config = blob(&m["config"])?;
        let layers = m["layers"]
            .as_array()
            .context("manifest without layers")?
            .iter()
            .map(blob)
            .collect::<Result<Vec<_>>>()?;
        let cfg: serde_json::Value =
            serde_json::from_slice(&self.get_blob(repo, &config.digest).await?)?;
        Ok(PushedImage {
            repo: repo.into(),
            tag: (!reference.starts_with("sha256:")).then(|| reference.to_string()),
            digest,
            media_type,
            manifest,
            config,
            layers,
            os: cfg["os"].as_str().unwrap_or("linux").into(),
            architecture: cfg["architecture"].as_str().unwrap_or("amd64").into(),
        })
    }

    /// Pushes an index over already-pushed children (same repository).
    pub async fn push_index(
        &self,
        repo: &str,
        tag: Option<&str>,
        format: Format,
        children: &[PushedImage],
    ) -> Result<PushedIndex> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": format.index_type(),
            "manifests": children.iter().map(|c| json!({
                "mediaType": c.media_type,
                "digest": c.digest,
                "size": c.manifest.len(),
                "platform": {"architecture": c.architecture, "os": c.os},
            })).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec_pretty(&index)?;
        let digest = util::sha256_digest(&bytes);
        self.put_manifest(repo, tag.unwrap_or(&digest), &bytes, format.index_type())
            .await?;
        Ok(PushedIndex {
            repo: repo.into(),
            tag: tag.map(str::to_string),
            digest,
            media_type: format.index_type().into(),
            manifest: bytes,
            children: children.to_vec(),
        })
    }

    /// An amd64 + arm64 image under one index tag. With `parent`, each child is built FROM
    /// the parent's child of the same architecture.
    pub async fn push_multiarch(
        &self,
        repo: &str,
        tag: &str,
        format: Format,
        parent: Option<&PushedIndex>,
    ) -> Result<PushedIndex> {
        let mut children = Vec::new();
        for arch in ["amd64", "arm64"] {
            let mut spec = ImageSpec::new(format).platform("linux", arch);
            if let Some(p) = parent {
                let pc = p
                    .children
                    .iter()
                    .find(|c| c.architecture == arch)
                    .with_context(|| format!("parent has no {arch} child"))?;
                spec = spec.from_parent(pc);
            }
            children.push(self.push_image(repo, None, &spec).await?);
        }
        self.push_index(repo, Some(tag), format, &children).await
    }

    /// Adds `tag` to an existing manifest by PUTting the same bytes.
    pub async fn tag(
        &self,
        repo: &str,
        tag: &str,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<String> {
        self.put_manifest(repo, tag, manifest, media_type).await
    }
}
