//! Helpers for the CLI tests: build a workspace in a temp dir, run the real binary in it.
#![allow(dead_code)]

pub mod e2e;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod registry;

pub const BIN: &str = env!("CARGO_BIN_EXE_skip-action");

/// A throwaway workspace.
pub struct Ws {
    pub dir: tempfile::TempDir,
}

impl Ws {
    pub fn new() -> Self {
        Ws {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn chmod(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path().join(rel), std::fs::Permissions::from_mode(mode))
            .unwrap();
    }

    pub fn symlink(&self, target: &str, rel: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    pub fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.path().join(rel)).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        let p = self.path().join(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    /// Run the binary here with `args`, a clean INPUT_* environment plus `env`.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run_in(self.path(), args, env)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// `hash --json`, parsed; panics with stderr when it fails.
    pub fn hash_json(&self) -> serde_json::Value {
        let out = self.run(&["hash", "--json"]);
        assert!(
            out.status.success(),
            "hash failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("hash --json is JSON")
    }

    /// name -> full hash.
    pub fn hashes(&self) -> BTreeMap<String, String> {
        hashes_of(&self.hash_json())
    }
}

pub fn hashes_of(v: &serde_json::Value) -> BTreeMap<String, String> {
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("INPUT_") || k.starts_with("GITHUB_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run skip-action")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The repository root (for examples/).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copy a directory tree (files, dirs, symlinks, modes).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let ft = entry.file_type().unwrap();
        let dst = to.join(entry.file_name());
        if ft.is_dir() {
            copy_tree(&entry.path(), &dst);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), dst).unwrap();
        } else {
            std::fs::copy(entry.path(), dst).unwrap();
        }
    }
}

/// The devbox example of the README, as a workspace.
pub fn devbox() -> Ws {
    let ws = Ws::new();
    copy_tree(&repo_root().join("examples/devbox"), ws.path());
    ws
}

/// A DAG of images in `dir`, as the DAG tests (lineage, level_gate, the levels and native act
/// runs) build it: skip-action.yml (`header`, everything before `images:`, then one image per
/// `(name, parent)` of `dag`, parents first, tagged `<name>-{hash}`; with `promote`, aliased
/// `<name>-latest`), the roots FROM `root_from` with a file of their own, each child FROM its
/// parent (`BASE_IMAGE`) with its name as a build arg, so every image hashes differently.
pub fn write_dag(
    dir: &Path,
    header: &str,
    dag: &[(&str, Option<&str>)],
    root_from: &str,
    promote: bool,
) {
    let mut cfg = format!("{header}images:\n");
    for (name, parent) in dag {
        cfg.push_str(&format!("  {name}:\n"));
        match parent {
            None => cfg.push_str("    dockerfile: Dockerfile.root\n"),
            Some(p) => cfg.push_str(&format!(
                "    from: {p}\n    dockerfile: Dockerfile.child\n    args: {{ NAME: {name} }}\n"
            )),
        }
        cfg.push_str(&format!("    tag: \"{name}-{{hash}}\"\n"));
        if promote {
            cfg.push_str(&format!("    promote: [\"{name}-latest\"]\n"));
        }
    }
    for (file, text) in [
        ("skip-action.yml", cfg),
        (
            "Dockerfile.root",
            format!("FROM {root_from}\nCOPY root.txt /\n"),
        ),
        ("root.txt", "root\n".to_string()),
        (
            "Dockerfile.child",
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG NAME\nRUN echo $NAME > /name\n".to_string(),
        ),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Shared by tests/faults.rs, tests/hostile.rs and tests/scale.rs (the same patterns as the
// private helpers of tests/decide.rs, which keep their own copies).
// ---------------------------------------------------------------------------------------------

/// The devbox example, every image pointed at `host/acme/devbox` (a registry or a proxy).
pub fn devbox_at_host(host: &str) -> Ws {
    let ws = devbox();
    let p = ws.path().join("skip-action.yml");
    let s = std::fs::read_to_string(&p)
        .unwrap()
        .replace("ghcr.io/acme/devbox", &format!("{host}/acme/devbox"));
    std::fs::write(p, s).unwrap();
    ws
}

/// Parse a `$GITHUB_OUTPUT` file the way the runner does (heredoc form only; a duplicate name or
/// any other line panics, since skip-action never writes one).
pub fn parse_gh_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delim) = line.split_once("<<").expect("heredoc form");
        let mut v = Vec::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l == delim {
                closed = true;
                break;
            }
            v.push(l);
        }
        assert!(closed, "unterminated output {name}");
        assert!(
            out.insert(name.to_string(), v.join("\n")).is_none(),
            "duplicate {name}"
        );
    }
    out
}

/// One run of a command with fresh `$GITHUB_OUTPUT` / `$GITHUB_STEP_SUMMARY` files.
pub struct GhRun {
    pub code: Option<i32>,
    pub out: BTreeMap<String, String>,
    /// The raw `$GITHUB_OUTPUT` text.
    pub raw_out: String,
    pub summary: String,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: std::time::Duration,
}

impl GhRun {
    pub fn get(&self, k: &str) -> &str {
        self.out
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no output {k}; stderr: {}", self.stderr))
    }
    pub fn json(&self, k: &str) -> serde_json::Value {
        serde_json::from_str(self.get(k)).unwrap()
    }
    /// name -> (need_build, reason) from decide's `plan` output.
    pub fn plan(&self) -> BTreeMap<String, (bool, String)> {
        self.json("plan")
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    (
                        e["need_build"].as_bool().unwrap(),
                        e["reason"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect()
    }
    /// Every byte the run left behind: stdout, stderr, outputs and summary.
    pub fn everything(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.stdout, self.stderr, self.raw_out, self.summary
        )
    }
}

/// Run `skip-action <cmd> args…` in `ws` with fresh output files, `HOME` in the workspace (no
/// docker config of the machine leaks in) and `env` on top.
pub fn gh_run(ws: &Ws, cmd: &str, args: &[&str], env: &[(&str, &str)]) -> GhRun {
    let files = tempfile::tempdir().unwrap();
    let outf = files.path().join("gh-output");
    let sumf = files.path().join("gh-summary");
    let mut full_env: Vec<(&str, &str)> = vec![
        ("GITHUB_OUTPUT", outf.to_str().unwrap()),
        ("GITHUB_STEP_SUMMARY", sumf.to_str().unwrap()),
        ("HOME", ws.path().to_str().unwrap()),
    ];
    full_env.extend_from_slice(env);
    let mut a = vec![cmd];
    a.extend_from_slice(args);
    let started = std::time::Instant::now();
    let o = ws.run_env(&a, &full_env);
    let elapsed = started.elapsed();
    let raw_out = std::fs::read_to_string(&outf).unwrap_or_default();
    GhRun {
        code: o.status.code(),
        out: parse_gh_outputs(&raw_out),
        raw_out,
        summary: std::fs::read_to_string(&sumf).unwrap_or_default(),
        stdout: stdout(&o),
        stderr: stderr(&o),
        elapsed,
    }
}

/// `SKIP_ACTION_SOAK=N` raises a test's iteration count to N; unset (or unparsable): `default`.
pub fn soak_count(default: usize) -> usize {
    std::env::var("SKIP_ACTION_SOAK")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// An empty OCI image index: a manifest the registry accepts without any blob, so a tag can be
/// made to exist with one PUT. Its digest is [`empty_index_digest`].
pub const EMPTY_INDEX: &str =
    r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
pub const OCI_INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

pub fn empty_index_digest() -> String {
    skip_testkit::util::sha256_digest(EMPTY_INDEX.as_bytes())
}

/// Make every tag exist in `repo` (path without host), straight to the registry (never through a
/// proxy): one manifest PUT each, over one keep-alive connection.
pub fn put_tags(registry_host: &str, repo: &str, tags: &[String]) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    if tags.is_empty() {
        return;
    }
    let stream = std::net::TcpStream::connect(registry_host).expect("connect registry");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    for t in tags {
        write!(
            w,
            "PUT /v2/{repo}/manifests/{t} HTTP/1.1\r\nHost: {registry_host}\r\nContent-Type: {OCI_INDEX_TYPE}\r\nContent-Length: {}\r\n\r\n{EMPTY_INDEX}",
            EMPTY_INDEX.len()
        )
        .unwrap();
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        assert!(status.contains(" 201 "), "PUT {repo}:{t}: {status}");
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).unwrap();
    }
}

/// Peak resident memory of this process so far, in KiB (`VmHWM`).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A finished run of the binary with its wall time and peak memory.
pub struct Measured {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: std::time::Duration,
    /// Peak resident set, KiB: from `/usr/bin/time -f %M` when installed, else the highest
    /// `VmHWM` seen while sampling `/proc/PID/status` every 5 ms.
    pub peak_rss_kib: u64,
}

/// Run the binary in `dir` with `args` and `env` (on top of a clean `INPUT_*`/`GITHUB_*`
/// environment), measuring wall time and peak RSS.
pub fn run_measured(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Measured {
    use std::io::Read as _;
    let files = tempfile::tempdir().unwrap();
    let time_out = files.path().join("time");
    let use_time = Path::new("/usr/bin/time").exists();
    let mut cmd = if use_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-f").arg("%M").arg("-o").arg(&time_out).arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("INPUT_") || k.starts_with("GITHUB_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = std::time::Instant::now();
    let mut child = cmd.spawn().expect("spawn skip-action");
    let pid = child.id();
    // Drain the pipes on threads so a large output cannot block the child.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let mut sampled = 0u64;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if !use_time {
            if let Some(v) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                })
            {
                sampled = sampled.max(v);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let peak_rss_kib = if use_time {
        std::fs::read_to_string(&time_out)
            .unwrap_or_default()
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    } else {
        sampled
    };
    Measured {
        // /usr/bin/time exits with the command's code.
        code: status.code(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        elapsed,
        peak_rss_kib,
    }
}

/// Make many tags of [`EMPTY_INDEX`] exist in `repo` at once: the first with a real PUT (which
/// stores the manifest), the rest by writing the tag links into the registry's own filesystem
/// storage — what the registry itself writes for a tag, minus ~50 ms of HTTP per tag. Reads of
/// these tags (HEAD, tags/list) go through the registry as usual.
pub fn tag_in_storage(reg: &skip_testkit::TestRegistry, repo: &str, tags: &[String]) {
    let Some((first, rest)) = tags.split_first() else {
        return;
    };
    put_tags(&reg.host(), repo, std::slice::from_ref(first));
    let hex = empty_index_digest()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    let base = reg
        .dir()
        .join("data/docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/tags");
    assert!(base.join(first).is_dir(), "registry storage layout changed");
    for t in rest {
        let d = base.join(t);
        std::fs::create_dir_all(d.join("current")).unwrap();
        std::fs::create_dir_all(d.join("index/sha256").join(&hex)).unwrap();
        std::fs::write(d.join("current/link"), format!("sha256:{hex}")).unwrap();
        std::fs::write(
            d.join("index/sha256").join(&hex).join("link"),
            format!("sha256:{hex}"),
        )
        .unwrap();
    }
}
