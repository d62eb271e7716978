//! The octocrab client of the jobs API (`promote --require-jobs`), on the TLS trust policy every
//! other connection uses ([`skip_registry::trust`]): bundled roots, the system store and
//! SSL_CERT_FILE/SSL_CERT_DIR. octocrab's own `build()` trusts the system store only (so a bare
//! container cannot reach api.github.com) and offers no way to pass a rustls configuration, so
//! the client is put together here from the same layers octocrab's `build()` uses: base URI,
//! headers, and the token only for requests to the API's own host.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http::header::{HeaderValue, USER_AGENT};
use octocrab::service::middleware::auth_header::AuthHeaderLayer;
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::service::middleware::extra_headers::ExtraHeadersLayer;
use octocrab::{AuthState, Octocrab, OctocrabBuilder};

/// An octocrab client for `api_url` (GITHUB_API_URL; Gitea's `…/api/v1`), authenticated with
/// `token` (sent as `Bearer`, marked sensitive so it is never logged).
pub fn octocrab(
    api_url: &str,
    token: &str,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<Octocrab> {
    let base: http::Uri = api_url
        .parse()
        .with_context(|| format!("GITHUB_API_URL `{api_url}` is not a URL"))?;
    let tls = (*skip_registry::trust::client_config()?).clone();
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_read_timeout(Some(read_timeout));
    connector.set_write_timeout(Some(read_timeout));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);

    let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token has characters an HTTP header cannot hold")?;
    auth.set_sensitive(true);
    let agent = HeaderValue::from_static(concat!("skip-action/", env!("CARGO_PKG_VERSION")));
    let crab = OctocrabBuilder::new_empty()
        .with_service(client)
        .with_layer(&ExtraHeadersLayer::new(Arc::new(vec![(USER_AGENT, agent)])))
        .with_layer(&BaseUriLayer::new(base.clone()))
        .with_layer(&AuthHeaderLayer::new(Some(auth), base.clone(), base))
        .with_auth(AuthState::None)
        .build()
        .context("building the GitHub API client")?;
    Ok(crab)
}

/// An API error with its causes (octocrab's own text stops at "client error (Connect)") and,
/// for a certificate failure, what to do.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = skip_registry::error::with_causes(e.to_string(), e);
    if let Some(h) = skip_registry::trust::hint(&s) {
        s.push_str(&format!(" ({})", h.replace("the registry's", "the API's")));
    }
    s
}
