//! The one TLS trust policy of every connection skip-action makes (registries, blob reads, the
//! GitHub/Gitea jobs API): rustls with ring (no OpenSSL, so the binary stays static), trusting
//!
//! 1. the bundled Mozilla roots (`webpki-roots`), so a bare container with no CA store
//!    (scratch, distroless, a musl runner image) still reaches ghcr.io and Docker Hub;
//! 2. the system's CA store, the directories OpenSSL would use (`/etc/ssl/certs`,
//!    `/etc/pki/tls/certs`, …, found by `openssl-probe`), so a company CA installed on the
//!    runner with `update-ca-certificates` is trusted, as curl and docker trust it;
//! 3. `SSL_CERT_FILE` (a PEM bundle) and `SSL_CERT_DIR` (`:`-separated directories of PEM files),
//!    *in addition* to the above (OpenSSL replaces the store with them; adding is the safer
//!    reading for a tool that must not lose ghcr.io because a CA file was set for another host).
//!
//! Why one policy: a self-hosted registry with a private CA (a company Gitea or Harbor) answered
//! every probe with `invalid peer certificate: UnknownIssuer`, so every image was rebuilt on
//! every run; the jobs API of the same Gitea must trust the same CA. Unreadable files are
//! logged and skipped: a probe that then fails says why (`UnknownIssuer`, with [`hint`]) and the
//! image is built, never skipped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// How many roots came from where (logged once; tests read it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustSummary {
    pub bundled: usize,
    pub system: usize,
    pub env: usize,
    /// Files named by `SSL_CERT_FILE`/`SSL_CERT_DIR` that could not be read or held no
    /// certificate, with the reason.
    pub problems: Vec<String>,
}

struct Policy {
    config: Arc<rustls::ClientConfig>,
    summary: TrustSummary,
}

static POLICY: OnceLock<std::result::Result<Policy, String>> = OnceLock::new();

/// The shared rustls configuration (no ALPN: each HTTP stack sets its own). Built once per
/// process; the environment is read then.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>> {
    match POLICY.get_or_init(|| build().map_err(|e| format!("{e:#}"))) {
        Ok(p) => Ok(p.config.clone()),
        Err(e) => Err(anyhow::anyhow!("{e}")).context("setting up TLS trust"),
    }
}

/// Where the trusted roots came from (after [`client_config`] has run, or it runs now).
pub fn summary() -> Result<TrustSummary> {
    client_config()?;
    match POLICY.get() {
        Some(Ok(p)) => Ok(p.summary.clone()),
        _ => anyhow::bail!("TLS trust was not set up"),
    }
}

/// A reqwest client builder that uses the policy, HTTP/2 and HTTP/1.1 offered by ALPN (what
/// reqwest's own rustls setup offers).
pub fn reqwest_builder() -> Result<reqwest::ClientBuilder> {
    let mut config = (*client_config()?).clone();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder().use_preconfigured_tls(config))
}

/// A short "what to do" for a TLS failure, from its error text (the cause chain).
pub fn hint(error_chain: &str) -> Option<&'static str> {
    if error_chain.contains("UnknownIssuer") {
        Some(
            "the registry's certificate is signed by a CA this runner does not trust: install the \
             CA in the system store (update-ca-certificates) or point SSL_CERT_FILE at a PEM file \
             holding it",
        )
    } else if error_chain.contains("NotValidForName") {
        Some("the registry's certificate does not name this host: check the registry address")
    } else if error_chain.contains("certificate expired") || error_chain.contains("Expired") {
        Some("the registry's certificate has expired (or this runner's clock is wrong)")
    } else {
        None
    }
}

fn build() -> Result<Policy> {
    let mut store = RootCertStore::empty();
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut summary = TrustSummary {
        bundled: store.len(),
        ..TrustSummary::default()
    };
    let mut seen: HashSet<Vec<u8>> = HashSet::new();

    // The system store: every file of the directories OpenSSL would read.
    let mut system = Vec::new();
    for dir in openssl_probe::candidate_cert_dirs() {
        load_dir(dir, &mut system, &mut Vec::new());
    }
    summary.system = add(&mut store, &mut seen, system);

    // SSL_CERT_FILE and SSL_CERT_DIR, on top.
    let mut from_env = Vec::new();
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(file);
        match load_file(&path) {
            Ok(certs) if certs.is_empty() => summary.problems.push(format!(
                "SSL_CERT_FILE={}: no PEM certificate in it",
                path.display()
            )),
            Ok(certs) => from_env.extend(certs),
            Err(e) => summary
                .problems
                .push(format!("SSL_CERT_FILE={}: {e}", path.display())),
        }
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()) {
        for dir in std::env::split_paths(&dirs) {
            if dir.is_dir() {
                load_dir(&dir, &mut from_env, &mut summary.problems);
            } else {
                summary.problems.push(format!(
                    "SSL_CERT_DIR entry {}: not a directory",
                    dir.display()
                ));
            }
        }
    }
    summary.env = add(&mut store, &mut seen, from_env);
    for p in &summary.problems {
        tracing::warn!("TLS trust: {p}");
    }
    tracing::debug!(
        bundled = summary.bundled,
        system = summary.system,
        env = summary.env,
        "TLS trust: bundled roots, system store, SSL_CERT_FILE/SSL_CERT_DIR"
    );

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Policy {
        config: Arc::new(config),
        summary,
    })
}

/// Adds the certificates rustls can parse as trust anchors, once each; returns how many.
fn add(
    store: &mut RootCertStore,
    seen: &mut HashSet<Vec<u8>>,
    certs: Vec<CertificateDer<'static>>,
) -> usize {
    let fresh: Vec<_> = certs
        .into_iter()
        .filter(|c| seen.insert(c.as_ref().to_vec()))
        .collect();
    let (added, _ignored) = store.add_parsable_certificates(fresh);
    added
}

fn load_file(path: &Path) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Every regular file of `dir` (symlinks followed) that holds PEM certificates; other files
/// (the hash links' duplicates, READMEs) are skipped quietly.
fn load_dir(dir: &Path, out: &mut Vec<CertificateDer<'static>>, problems: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if !p.is_file() {
            continue;
        }
        if let Ok(certs) = load_file(&p) {
            out.extend(certs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_fix() {
        let h = hint("error sending request: invalid peer certificate: UnknownIssuer").unwrap();
        assert!(h.contains("SSL_CERT_FILE"), "{h}");
        assert!(hint("connection refused").is_none());
    }

    #[test]
    fn the_policy_has_the_bundled_roots() {
        let s = summary().unwrap();
        assert!(s.bundled > 100, "{s:?}");
    }
}
