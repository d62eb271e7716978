//! TLS for tests: a private CA made on the spot (what a company's Gitea or Harbor uses), a server
//! certificate it signs for one host name, and an HTTP `CONNECT` proxy that carries a client to a
//! TLS registry on 127.0.0.1 under that name.
//!
//! Why a proxy: clients (skip-action's included) speak plain http to 127.* and `localhost`, so
//! a TLS registry must be reached by another name; a `CONNECT` tunnel (what `HTTPS_PROXY` makes
//! every client use) does that without touching /etc/hosts. The proxy only moves bytes: the TLS
//! session is between the client and the real registry.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

/// A CA and one server certificate it signed, as PEM files in a temp dir.
pub struct TestCa {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl TestCa {
    /// A fresh CA ("skip-testkit private CA") and a certificate for `server_name` (a DNS name)
    /// signed by it.
    pub fn new(server_name: &str) -> Result<TestCa> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "skip-testkit private CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().context("CA key")?;
        let ca_cert = ca.self_signed(&ca_key).context("self-signing the CA")?;
        let issuer = Issuer::new(ca, ca_key);

        let mut leaf =
            CertificateParams::new(vec![server_name.to_string()]).context("server params")?;
        leaf.distinguished_name
            .push(DnType::CommonName, server_name);
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().context("server key")?;
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuer)
            .context("signing the server certificate")?;

        let dir = tempfile::Builder::new()
            .prefix("skip-testkit-ca-")
            .tempdir()
            .context("CA temp dir")?;
        let ca_pem = ca_cert.pem();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem)?;
        std::fs::write(dir.path().join("server.pem"), leaf_cert.pem())?;
        std::fs::write(dir.path().join("server.key"), leaf_key.serialize_pem())?;
        Ok(TestCa { dir, ca_pem })
    }

    /// The CA certificate (PEM): what a runner would install to trust the registry.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// An HTTP `CONNECT` proxy on 127.0.0.1 that tunnels every `CONNECT host:port` to one upstream
/// address (whatever the host), and remembers the targets asked for.
pub struct ConnectProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    connects: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start(upstream: &str) -> Result<ConnectProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the proxy")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let connects = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_string();
        let (stop2, connects2) = (stop.clone(), connects.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let upstream = upstream.clone();
                let connects = connects2.clone();
                std::thread::spawn(move || {
                    let _ = tunnel(conn, &upstream, &connects);
                });
            }
        });
        Ok(ConnectProxy {
            port,
            stop,
            connects,
        })
    }

    /// `http://127.0.0.1:PORT`, for HTTPS_PROXY.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `host:port` of every CONNECT so far.
    pub fn connects(&self) -> Vec<String> {
        self.connects.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
    }
}

fn tunnel(mut client: TcpStream, upstream: &str, connects: &Mutex<Vec<String>>) -> Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    if method != "CONNECT" {
        client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    }
    if let Ok(mut c) = connects.lock() {
        c.push(target.to_string());
    }
    let server = match TcpStream::connect(upstream) {
        Ok(s) => s,
        Err(_) => {
            client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        }
    };
    client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
    client.set_read_timeout(None)?;
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let _ = std::io::copy(&mut s_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}
