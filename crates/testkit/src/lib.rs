//! Test support for skip-action: a real registry, a token server, an image pusher (also as the
//! `skip-testkit` command, for workflows run by tests), a release-asset file server and a
//! fault-injecting proxy, all on 127.0.0.1.
//!
//! Needs Debian's `docker-registry` package (CNCF distribution; `/usr/bin/docker-registry`)
//! or `$SKIP_TESTKIT_REGISTRY_BIN`. htpasswd files are written with the `bcrypt` crate and
//! token certificates with `rcgen`, so no `apache2-utils` or `openssl` binary is needed.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use skip_testkit::{ImageSpec, TestRegistry};
//! let reg = TestRegistry::start_open()?;
//! let img = reg.pusher().push_image("acme/devbox", Some("base-1"), &ImageSpec::oci()).await?;
//! println!("pushed {}/acme/devbox@{}", reg.host(), img.digest);
//! # Ok(()) }
//! ```

pub mod files;
pub mod proxy;
pub mod push;
pub mod registry;
pub mod tls;
pub mod token;
pub mod util;

pub use files::FileServer;
pub use proxy::{Fault, FaultProxy, FaultRule, SeenRequest, Trigger};
pub use push::{BlobRef, Format, ImageSpec, PushAuth, PushedImage, PushedIndex, Pusher};
pub use registry::{AuthMode, TestRegistry};
pub use tls::{ConnectProxy, TestCa};
pub use token::{Signer, TokenField, TokenOptions, TokenRequest, TokenServer};
