//! A thin OCI distribution client for skip-action: references, credentials, manifest
//! HEAD/GET/PUT, tag lists, blob mount/copy, with bounded retries.
//!
//! The client answers "is this tag there?" with three values, never two
//! ([`client::Probe`]): `Present` (200 with a digest), `Absent` (404 only) and `Unknown`
//! (anything else after retries). Only `Present` may skip a build.
//!
//! Layout follows go-containerregistry's split: [`reference`](mod@reference) (names), [`auth`]
//! (config.json, helpers, tokens), [`client`] (HTTP, retries), plus [`manifest`] (media
//! types and structs) and [`retry`] (backoff and `Retry-After`).

pub mod auth;
pub mod client;
pub mod error;
pub mod manifest;
pub mod reference;
pub mod retry;

pub use auth::{AuthError, Credential, Credentials, Secret};
pub use client::{Client, ClientOptions, CopyOutcome, HttpError, MountResult, Probe, UploadMode};
pub use error::{ErrorKind, TransportError};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, ParsedManifest, Platform};
pub use reference::{Reference, RepoRef};
