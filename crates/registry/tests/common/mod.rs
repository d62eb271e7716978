//! Shared helpers for the integration tests: every test runs against a real
//! `docker-registry` from skip-testkit on 127.0.0.1, never a mock.

#![allow(dead_code)]

use std::time::Duration;

use skip_registry::{Client, ClientOptions, Credentials, RepoRef};

/// Fast retries so failure paths finish in well under a second, with the same shape as
/// production (bounded attempts, capped waits).
pub fn options(credentials: Credentials) -> ClientOptions {
    ClientOptions {
        credentials,
        timeout: Duration::from_secs(5),
        retries: 3,
        retry_base_delay: Duration::from_millis(20),
        max_retry_wait: Duration::from_secs(3),
        ..ClientOptions::default()
    }
}

pub fn client(credentials: Credentials) -> Client {
    Client::new(options(credentials)).expect("client")
}

pub fn anon() -> Client {
    client(Credentials::none())
}

pub fn repo(host: &str, name: &str) -> RepoRef {
    RepoRef::parse(&format!("{host}/{name}")).expect("repo")
}
