//! A static file server on 127.0.0.1, for the action's download path: it serves release assets as
//! GitHub's release download URLs do, answers chosen status codes to the next requests (to test
//! retries), and logs every request. Stopped on drop.

use std::collections::{HashMap, VecDeque};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::util;

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    fail_next: VecDeque<u16>,
    log: Vec<String>,
}

/// A running file server. Dropping it stops the thread and closes the port.
pub struct FileServer {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl FileServer {
    pub fn start() -> Result<FileServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the file server")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(mut stream) = conn {
                    let _ = serve(&mut stream, &st);
                }
            }
        });
        Ok(FileServer {
            port,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `bytes` at `path` (`/v1.0.0/skip-action-x86_64-unknown-linux-musl`).
    pub fn put(&self, path: &str, bytes: impl Into<Vec<u8>>) {
        self.lock().files.insert(path.to_string(), bytes.into());
    }

    /// The next requests, whatever they ask, are answered with these status codes (in order).
    pub fn fail_next(&self, codes: &[u16]) {
        self.lock().fail_next.extend(codes.iter().copied());
    }

    /// Every request so far, as `GET /path 200`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn serve(stream: &mut TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let Some(head) = util::read_head(stream)? else {
        return Ok(());
    };
    let (code, body) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let answer = match s.fail_next.pop_front() {
            Some(code) => (code, format!("injected {code}\n").into_bytes()),
            None => match s.files.get(head.path()) {
                Some(b) if head.method == "GET" || head.method == "HEAD" => (200, b.clone()),
                Some(_) => (405, b"method not allowed\n".to_vec()),
                None => (404, b"not found\n".to_vec()),
            },
        };
        s.log
            .push(format!("{} {} {}", head.method, head.path(), answer.0));
        answer
    };
    let body = if head.method == "HEAD" {
        &[][..]
    } else {
        &body[..]
    };
    util::write_response(
        stream,
        code,
        &[("Content-Type", "application/octet-stream".to_string())],
        body,
    )
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
