//! Manifest media types, serde structs for image manifests and indexes, and digests.
//!
//! Manifests are kept as the registry's bytes ([`Manifest::bytes`]); the structs here are
//! for reading children, layers and platforms. Promotion re-PUTs the original bytes, never
//! a re-serialisation, because the digest is of the bytes.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `Accept` list for every manifest HEAD/GET. Index types come first and must be
/// present: distribution answers 404 for an OCI index whose type is not accepted, and
/// for a Docker manifest list it silently serves one platform's manifest instead. Either
/// would make a present multi-arch tag look absent or give the wrong digest.
pub const MANIFEST_ACCEPT: [&str; 4] = [
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

/// Whether `media_type` is one of the manifest types we ask for.
pub fn is_known_manifest_type(media_type: &str) -> bool {
    MANIFEST_ACCEPT.contains(&media_type)
}

pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// A platform in an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        default,
        rename = "os.features",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An OCI image manifest or Docker v2 schema 2 manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A parsed manifest of either kind. (Not boxed: one is parsed at a time, never stored
/// in bulk, so the size difference between variants costs nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedManifest {
    Index(ImageIndex),
    Image(ImageManifest),
}

impl ParsedManifest {
    /// Parses by media type (the `Content-Type`, or the document's own `mediaType` when
    /// the header is missing or generic).
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<ParsedManifest> {
        let mt = if is_known_manifest_type(media_type) {
            media_type.to_string()
        } else {
            #[derive(Deserialize)]
            struct Peek {
                #[serde(rename = "mediaType")]
                media_type: Option<String>,
                manifests: Option<serde_json::Value>,
            }
            let p: Peek = serde_json::from_slice(bytes).context("manifest is not JSON")?;
            match p.media_type {
                Some(m) => m,
                // An OCI index may omit mediaType; `manifests` tells it apart.
                None if p.manifests.is_some() => OCI_INDEX.to_string(),
                None => OCI_MANIFEST.to_string(),
            }
        };
        if is_index_type(&mt) {
            let idx: ImageIndex =
                serde_json::from_slice(bytes).with_context(|| format!("parsing {mt}"))?;
            if idx.schema_version != 2 {
                bail!("unsupported schemaVersion {} in {mt}", idx.schema_version);
            }
            Ok(ParsedManifest::Index(idx))
        } else if mt == OCI_MANIFEST || mt == DOCKER_MANIFEST {
            let m: ImageManifest =
                serde_json::from_slice(bytes).with_context(|| format!("parsing {mt}"))?;
            if m.schema_version != 2 {
                bail!("unsupported schemaVersion {} in {mt}", m.schema_version);
            }
            Ok(ParsedManifest::Image(m))
        } else {
            bail!("unsupported manifest media type {mt:?}")
        }
    }

    pub fn is_index(&self) -> bool {
        matches!(self, ParsedManifest::Index(_))
    }

    /// Child manifests of an index (empty for an image).
    pub fn children(&self) -> &[Descriptor] {
        match self {
            ParsedManifest::Index(i) => &i.manifests,
            ParsedManifest::Image(_) => &[],
        }
    }

    /// Layers of an image (empty for an index).
    pub fn layers(&self) -> &[Descriptor] {
        match self {
            ParsedManifest::Image(m) => &m.layers,
            ParsedManifest::Index(_) => &[],
        }
    }

    pub fn config(&self) -> Option<&Descriptor> {
        match self {
            ParsedManifest::Image(m) => Some(&m.config),
            ParsedManifest::Index(_) => None,
        }
    }

    /// Platforms of an index's children that declare one (attestation manifests with
    /// `unknown/unknown` included, as the registry lists them).
    pub fn platforms(&self) -> Vec<&Platform> {
        self.children()
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .collect()
    }

    /// Every blob an image references (config first, then layers).
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match self {
            ParsedManifest::Image(m) => std::iter::once(&m.config).chain(m.layers.iter()).collect(),
            ParsedManifest::Index(_) => vec![],
        }
    }
}

/// Manifest bytes as served, with their media type and verified digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

impl Manifest {
    pub fn parse(&self) -> Result<ParsedManifest> {
        ParsedManifest::parse(&self.bytes, &self.media_type)
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// Digest of `data` with the same algorithm as `like` (sha256 or sha512).
pub fn digest_like(like: &str, data: &[u8]) -> Result<String> {
    match like.split_once(':').map(|(a, _)| a) {
        Some("sha256") => Ok(sha256_digest(data)),
        Some("sha512") => Ok(format!("sha512:{}", hex(&Sha512::digest(data)))),
        _ => bail!("cannot verify digest {like:?}: unsupported algorithm"),
    }
}

/// Checks that `data` has digest `expected`.
pub fn verify_digest(expected: &str, data: &[u8]) -> Result<()> {
    let got = digest_like(expected, data)?;
    if got != expected {
        bail!("content digest mismatch: expected {expected}, got {got}");
    }
    Ok(())
}

/// Lower-case hex of `bytes`: the one encoder of the workspace (digests here, content hashes in
/// the app), so every digest string is spelled the same way.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// An incremental hasher matching a digest's algorithm, for streamed blobs.
pub(crate) enum StreamHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl StreamHasher {
    pub fn for_digest(d: &str) -> Result<StreamHasher> {
        match d.split_once(':').map(|(a, _)| a) {
            Some("sha256") => Ok(StreamHasher::Sha256(Sha256::new())),
            Some("sha512") => Ok(StreamHasher::Sha512(Sha512::new())),
            _ => bail!("cannot verify digest {d:?}: unsupported algorithm"),
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        match self {
            StreamHasher::Sha256(h) => h.update(data),
            StreamHasher::Sha512(h) => h.update(data),
        }
    }
    pub fn finish(self) -> String {
        match self {
            StreamHasher::Sha256(h) => format!("sha256:{}", hex(&h.finalize())),
            StreamHasher::Sha512(h) => format!("sha512:{}", hex(&h.finalize())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_index_and_image() {
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":10,"platform":{"architecture":"amd64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":10,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
        let p = ParsedManifest::parse(idx, OCI_INDEX).unwrap();
        assert!(p.is_index());
        assert_eq!(p.children().len(), 2);
        let plats: Vec<String> = p.platforms().iter().map(|p| p.to_string()).collect();
        assert_eq!(plats, vec!["linux/amd64", "linux/arm64/v8"]);
        // Missing/ generic content type: the document's mediaType decides.
        assert!(ParsedManifest::parse(idx, "application/json")
            .unwrap()
            .is_index());

        let img = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:cc","size":5},
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:dd","size":7}]}"#;
        let p = ParsedManifest::parse(img, DOCKER_MANIFEST).unwrap();
        assert_eq!(p.config().unwrap().digest, "sha256:cc");
        assert_eq!(p.layers()[0].digest, "sha256:dd");
        assert_eq!(p.blobs().len(), 2);
        assert!(ParsedManifest::parse(b"<html>", "text/html").is_err());
        assert!(ParsedManifest::parse(
            br#"{"schemaVersion":1}"#,
            "application/vnd.docker.distribution.manifest.v1+prettyjws"
        )
        .is_err());
    }

    #[test]
    fn digests() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(verify_digest(&sha256_digest(b"x"), b"x").is_ok());
        assert!(verify_digest(&sha256_digest(b"x"), b"y")
            .unwrap_err()
            .to_string()
            .contains("mismatch"));
        let d512 = digest_like("sha512:00", b"abc").unwrap();
        assert!(d512.starts_with("sha512:ddaf35a1"));
        assert!(verify_digest("md5:00", b"").is_err());
        let mut h = StreamHasher::for_digest("sha256:x").unwrap();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), sha256_digest(b"abc"));
    }
}
