//! A thin OCI distribution client for skip-action: references, credentials, manifest
//! HEAD/GET/PUT, tag lists, blob mount/copy, with bounded retries.
//!
//! The client answers "is this tag there?" with three values, never two
//! ([`client::Probe`]): `Present` (200 with a digest), `Absent` (404 only) and `Unknown`
//! (anything else after retries). Only `Present` may skip a build.
//!
//! Layers, like go-containerregistry's `name` / `authn` / `transport` / `remote`, each using
//! only the ones above it in this list:
//! - [`reference`](mod@reference): names (`ghcr.io/acme/x:tag`), parsed and validated;
//! - [`credentials`]: who we are to each registry (explicit, docker's config.json and
//!   credential helpers, `GITHUB_TOKEN`); no HTTP;
//! - [`platform`]: the platform grammar and its normalisation ([`PlatformKey`]);
//! - [`auth`]: the handshake's pieces (`WWW-Authenticate` challenges, token answers, the token
//!   cache, [`AuthError`]), [`retry`] (backoff, `Retry-After`), [`manifest`] (media types,
//!   structs, digests);
//! - [`transport`]: one logical request to one answer (the 401 handshake, token fetch,
//!   retries, per-host limits, bounded reads);
//! - [`client`]: the API calls ([`Client`]): probe, manifests, tags, blobs.
//!
//! Errors are `anyhow` chains for people with a typed cause for programs: [`ErrorKind::of`]
//! says not found / auth / HTTP status / transport. Advice on how to log in is the caller's
//! ([`ClientOptions::auth_hint`]); the crate's default is tool-neutral.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod error;
pub mod manifest;
pub mod platform;
pub mod reference;
pub mod retry;
pub mod transport;
pub mod trust;

pub use auth::{AuthError, Credential, Credentials, Secret};
pub use client::{
    Client, ClientOptions, CopyOutcome, HttpError, MountResult, Probe, RequestCounts, UploadMode,
};
pub use error::{ErrorKind, TransportError};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, ParsedManifest, Platform};
pub use platform::PlatformKey;
pub use reference::{Reference, RepoRef};
