//! Image references: `ghcr.io/acme/devbox:tag`, `ubuntu:24.04`, `localhost:5000/x@sha256:…`.
//!
//! Parsing follows docker's reference grammar (the one `docker pull` and go-containerregistry
//! accept), because users copy names from Dockerfiles and workflow files:
//! - the first path component is a registry only if it contains `.` or `:` or is
//!   `localhost`; otherwise the name is on Docker Hub (`docker.io`);
//! - Docker Hub names without a namespace live under `library/`;
//! - `index.docker.io` is the same registry as `docker.io` (credentials and caches must
//!   not see two registries), and its API is served at `registry-1.docker.io`.
//!
//! Repository and tag validation follows the OCI distribution spec, with errors that say
//! which part is wrong and why, so a typo in a workflow fails before any network call.

use std::fmt;

use anyhow::{bail, Result};

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API actually lives.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A full image reference. At least one of `tag` / `digest` may be absent (then the
/// caller decides; `docker pull` would use `latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, lowercased; `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path, e.g. `library/ubuntu` or `acme/devbox`.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

/// A repository without tag or digest: what probes, tag lists and pushes address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoRef {
    pub registry: String,
    pub repository: String,
}

impl RepoRef {
    /// Parses `registry/repository` (no tag, no digest), with the same normalisation as
    /// [`Reference::parse`].
    pub fn parse(s: &str) -> Result<RepoRef> {
        let r = Reference::parse(s)?;
        if r.tag.is_some() || r.digest.is_some() {
            bail!("invalid repository {s:?}: expected a repository without a tag or digest");
        }
        Ok(r.repo())
    }

    /// Builds from parts, normalising and validating them.
    pub fn new(registry: &str, repository: &str) -> Result<RepoRef> {
        let registry = normalise_registry(registry);
        validate_registry(&registry, repository)?;
        validate_repository(repository, &format!("{registry}/{repository}"))?;
        Ok(RepoRef {
            registry,
            repository: repository.to_string(),
        })
    }

    /// Host (and port) to send API requests to.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// A reference to `tag` in this repository.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        validate_tag(tag, &format!("{self}:{tag}"))?;
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// A reference to `digest` in this repository.
    pub fn with_digest(&self, digest: &str) -> Result<Reference> {
        validate_digest(digest, &format!("{self}@{digest}"))?;
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        })
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

impl Reference {
    /// Parses and normalises a reference. See the module docs for the rules.
    pub fn parse(input: &str) -> Result<Reference> {
        let s = input.trim();
        if s.is_empty() {
            bail!("invalid image reference: empty string");
        }
        if s.len() > 4096 {
            bail!(
                "invalid image reference: {} characters is too long",
                s.len()
            );
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            bail!("invalid image reference {input:?}: contains {c:?}");
        }
        if s.contains("://") {
            bail!("invalid image reference {input:?}: remove the URL scheme (write `host/repository:tag`)");
        }

        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (s, None),
        };
        if let Some(d) = &digest {
            validate_digest(d, input)?;
        }

        // Split off the registry: only a first component that looks like a host.
        let (registry, rest) = match name_tag.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (first.to_string(), rest),
            _ => (DOCKER_HUB.to_string(), name_tag),
        };
        // The tag is after the last ':' of the path part (the registry's port is already
        // gone, so `localhost:5000/x` cannot be misread as tag `5000/x`).
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t.to_string())),
            _ => (rest, None),
        };
        let registry = normalise_registry(&registry);
        validate_registry(&registry, input)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        validate_repository(&repository, input)?;
        if let Some(t) = &tag {
            validate_tag(t, input)?;
        }
        // docker's limit on the whole name, kept so names that work here work there.
        let full = format!("{registry}/{repository}");
        if full.len() > 255 {
            bail!("invalid image reference {input:?}: name {full:?} is longer than 255 characters");
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    pub fn repo(&self) -> RepoRef {
        RepoRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
        }
    }

    /// Host (and port) to send API requests to (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What goes after `/manifests/`: the digest if there is one (it pins content), else
    /// the tag, else `latest` as docker does.
    pub fn api_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

impl std::str::FromStr for RepoRef {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        RepoRef::parse(s)
    }
}

fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// Lowercases the host (DNS is case-insensitive, and cache keys must agree) and folds
/// Docker Hub's aliases into `docker.io`.
pub fn normalise_registry(registry: &str) -> String {
    let r = registry.to_ascii_lowercase();
    match r.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => r,
    }
}

fn validate_registry(registry: &str, input: &str) -> Result<()> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            bail!("invalid registry {registry:?} in {input:?}: unclosed '[' in IPv6 address");
        };
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            bail!("invalid registry {registry:?} in {input:?}: {v6:?} is not an IPv6 address");
        }
        match after {
            "" => (None, None),
            p if p.starts_with(':') => (None, Some(&p[1..])),
            _ => {
                bail!("invalid registry {registry:?} in {input:?}: unexpected {after:?} after ']'")
            }
        }
    } else {
        match registry.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            bail!("invalid registry {registry:?} in {input:?}: empty host name");
        }
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                bail!(
                    "invalid registry {registry:?} in {input:?}: host label {label:?} must be letters, digits \
                     and inner '-'"
                );
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty()
            || !port.chars().all(|c| c.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            bail!("invalid registry {registry:?} in {input:?}: port {port:?} is not a number from 0 to 65535");
        }
    }
    Ok(())
}

/// OCI distribution: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn validate_repository(repo: &str, input: &str) -> Result<()> {
    if repo.is_empty() {
        bail!("invalid image reference {input:?}: empty repository name");
    }
    if repo.chars().any(|c| c.is_ascii_uppercase()) {
        bail!(
            "invalid repository name {repo:?} in {input:?}: repository names must be lowercase \
             (try {:?})",
            repo.to_ascii_lowercase()
        );
    }
    for comp in repo.split('/') {
        if comp.is_empty() {
            bail!("invalid repository name {repo:?} in {input:?}: empty path component (leading, trailing or double '/')");
        }
        let bytes = comp.as_bytes();
        if let Some(c) = comp
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(*c)))
        {
            bail!(
                "invalid repository name {repo:?} in {input:?}: {c:?} is not allowed \
                 (use lowercase letters, digits and separators '.', '_', '__', '-')"
            );
        }
        if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
            bail!(
                "invalid repository name {repo:?} in {input:?}: component {comp:?} must start and end \
                 with a lowercase letter or digit"
            );
        }
        // Separators between alphanumeric runs: '.', '_', '__' or one or more '-'.
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
            if !ok {
                bail!(
                    "invalid repository name {repo:?} in {input:?}: separator {sep:?} in {comp:?} is not \
                     allowed (use one of '.', '_', '__' or dashes)"
                );
            }
        }
    }
    Ok(())
}

/// OCI distribution: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str, input: &str) -> Result<()> {
    if tag.is_empty() {
        bail!("invalid image reference {input:?}: empty tag after ':'");
    }
    if tag.len() > 128 {
        bail!(
            "invalid tag {tag:?} in {input:?}: {} characters, at most 128 are allowed",
            tag.len()
        );
    }
    let first = tag.as_bytes()[0];
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        bail!("invalid tag {tag:?} in {input:?}: a tag must start with a letter, digit or '_'");
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        bail!("invalid tag {tag:?} in {input:?}: {c:?} is not allowed (letters, digits, '.', '_', '-')");
    }
    Ok(())
}

/// `algorithm:encoded`; `sha256` needs 64 and `sha512` 128 lowercase hex digits.
pub fn validate_digest(digest: &str, input: &str) -> Result<()> {
    let Some((alg, hex)) = digest.split_once(':') else {
        bail!("invalid digest {digest:?} in {input:?}: expected algorithm:hex, e.g. sha256:…");
    };
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => bail!("invalid digest {digest:?} in {input:?}: unsupported algorithm {alg:?} (sha256 or sha512)"),
    };
    if hex.len() != want
        || !hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        bail!("invalid digest {digest:?} in {input:?}: {alg} needs {want} lowercase hex digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        format!("{:#}", Reference::parse(s).expect_err(s))
    }

    const D: &str = "sha256:3f2a9c1b7e4d3f2a9c1b7e4d3f2a9c1b7e4d3f2a9c1b7e4d3f2a9c1b7e4d3f2a";

    #[test]
    fn docker_hub_normalisation() {
        let r = p("ubuntu:24.04");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/ubuntu", Some("24.04"))
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.to_string(), "docker.io/library/ubuntu:24.04");
        assert_eq!(p("docker.io/ubuntu").repository, "library/ubuntu");
        assert_eq!(p("index.docker.io/ubuntu").registry, "docker.io");
        assert_eq!(p("index.docker.io/ubuntu").repository, "library/ubuntu");
        assert_eq!(p("acme/tool:1").repository, "acme/tool");
        assert_eq!(p("acme/tool:1").registry, "docker.io");
        assert_eq!(p("docker.io/library/ubuntu").repository, "library/ubuntu");
        assert_eq!(p("ubuntu").tag, None);
        assert_eq!(p("ubuntu").api_reference(), "latest");
    }

    #[test]
    fn hosts_and_ports() {
        let r = p("ghcr.io/acme/devbox:base-3f2a9c1b7e4d");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("ghcr.io", "acme/devbox")
        );
        assert_eq!(r.api_host(), "ghcr.io");
        let r = p("localhost:5000/x");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "x", None)
        );
        let r = p("localhost/x:1");
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("localhost", Some("1"))
        );
        let r = p("127.0.0.1:5000/a/b/c:t");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "a/b/c")
        );
        let r = p("[::1]:5000/x:t");
        assert_eq!(r.registry, "[::1]:5000");
        assert_eq!(p("GHCR.io/acme/x").registry, "ghcr.io");
        assert_eq!(p("ghcr.io/acme/x:t").to_string(), "ghcr.io/acme/x:t");
    }

    #[test]
    fn digests() {
        let r = p(&format!("localhost:5000/x@{D}"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.tag, None);
        assert_eq!(r.api_reference(), D);
        let r = p(&format!("ghcr.io/a/b:t@{D}"));
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("t"), Some(D))
        );
        assert_eq!(r.to_string(), format!("ghcr.io/a/b:t@{D}"));
        assert!(err("x@sha256:abc").contains("64 lowercase hex"));
        assert!(err("x@md5:abc").contains("unsupported algorithm"));
        assert!(
            err(&format!("x@{}", D.to_uppercase().replace("SHA", "sha"))).contains("lowercase hex")
        );
    }

    #[test]
    fn invalid_names_say_why() {
        assert!(err("ghcr.io/Acme/devbox:t").contains("must be lowercase"));
        assert!(err("ghcr.io/acme//devbox").contains("empty path component"));
        assert!(err("ghcr.io/acme/devbox/").contains("empty path component"));
        assert!(err("ghcr.io/-acme/x").contains("must start and end"));
        assert!(err("ghcr.io/a..b/x").contains("separator"));
        assert!(err("ghcr.io/a___b/x").contains("separator"));
        assert!(p("ghcr.io/a__b/x-y--z/w.v").repository == "a__b/x-y--z/w.v");
        assert!(err("ghcr.io/a b").contains("contains"));
        assert!(err("ghcr.io/a$b/x").contains("not allowed"));
        assert!(err("https://ghcr.io/a/b").contains("scheme"));
        assert!(err("").contains("empty"));
        assert!(err("ghcr.io/a:").contains("empty tag"));
        assert!(err("ghcr.io/a:-x").contains("must start with"));
        assert!(err("ghcr.io/a:x+y").contains("'+'"));
        assert!(err(&format!("ghcr.io/a:{}", "x".repeat(129))).contains("at most 128"));
        assert!(err("exa_mple.com/a").contains("host label"));
        assert!(err("example.com:99999/a").contains("port"));
        assert!(err(&format!("ghcr.io/{}", "a".repeat(300))).contains("255"));
    }

    #[test]
    fn repo_ref() {
        let r = RepoRef::parse("ghcr.io/acme/devbox").unwrap();
        assert_eq!(r.to_string(), "ghcr.io/acme/devbox");
        assert!(RepoRef::parse("ghcr.io/acme/devbox:t").is_err());
        let t = r.with_tag("base-1").unwrap();
        assert_eq!(t.to_string(), "ghcr.io/acme/devbox:base-1");
        assert_eq!(
            RepoRef::parse("ubuntu").unwrap().repository,
            "library/ubuntu"
        );
        assert!(RepoRef::new("ghcr.io", "Acme").is_err());
        assert_eq!(
            RepoRef::new("index.docker.io", "library/x")
                .unwrap()
                .api_host(),
            "registry-1.docker.io"
        );
    }
}
