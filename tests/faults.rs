//! Faults: `decide` and `promote` against a real `docker-registry` behind skip-testkit's
//! fault-injecting proxy (everything on 127.0.0.1), with randomized fault mixes at rates up to
//! 30 %: 500/502/503/408, 429 with and without `Retry-After` (also an hour-long one), 401/403,
//! connection resets, stalls past the timeout, truncated bodies, stripped headers, a captive
//! portal's 200 HTML page, and 404 for a tag that exists ("pushed a moment ago").
//!
//! The one property that matters: **zero false skips**. An image is reported present only when
//! its tag exists, a decision to reuse only ever rests on such an answer, every unanswerable probe
//! ends in "build" (with the documented reason) or in a clear failure under
//! `on-registry-error: fail`, and whenever the retries absorbed the faults the outputs equal a
//! clean run's.
//!
//! Bounded by default (fixed seed: 1,000 in-process decide runs, 24 binary decide runs, 16 promote
//! rounds, 6 racing rounds; about a minute on two busy cores). `SKIP_ACTION_SOAK=N` runs N
//! in-process decide runs, N/20 binary runs, N/50 promote rounds and N/200 racing rounds;
//! `SKIP_ACTION_SOAK_SEED=S` picks another seed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use skip_action::config::Config;
use skip_action::hash::{HashOptions, ImageHash};
use skip_action::plan::{self, Decision, Existence, Force, OnRegistryError};
use skip_action::registry::{probe_all, ProbeMode};
use skip_registry::{Client, ClientOptions, Credentials};
use skip_testkit::util::Rng;
use skip_testkit::{Fault, FaultProxy, FaultRule, ImageSpec, PushedImage, TestRegistry, Trigger};

const DEFAULT_SEED: u64 = 0x5ca1_ab1e_f00d;

fn seed() -> u64 {
    std::env::var("SKIP_ACTION_SOAK_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

fn soak_env() -> Option<usize> {
    std::env::var("SKIP_ACTION_SOAK")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// The family probed: 23 images in two repositories, three levels. Repository A (5 images) is
// asked with one HEAD per tag, repository B (18 images) with tags/list in `auto` mode.
// ---------------------------------------------------------------------------------------------

fn soak_config(host: &str, repo_a: &str, repo_b: &str) -> String {
    let n: Vec<String> = (1..=18).map(|i| i.to_string()).collect();
    format!(
        "version: 1\nrepository: {host}/{repo_a}\nimages:\n  base:\n    tag: base-{{hash}}\n  dev:\n    from: base\n    dockerfile: Dockerfile.dev\n    variants: {{a: {{F: a}}, b: {{F: b}}, c: {{F: c}}, d: {{F: d}}}}\n    tag: \"dev-{{variant}}-{{hash}}\"\n  app:\n    from: dev/a\n    repository: {host}/{repo_b}\n    dockerfile: Dockerfile.app\n    matrix:\n      n: [{}]\n    tag: \"app-{{n}}-{{hash}}\"\n",
        n.join(", ")
    )
}

fn soak_workspace(host: &str, repo_a: &str, repo_b: &str) -> Ws {
    let ws = Ws::new();
    ws.write("skip-action.yml", &soak_config(host, repo_a, repo_b));
    ws.write("Dockerfile", "FROM alpine:3.20\nCOPY rootfs/ /\n");
    ws.write(
        "Dockerfile.dev",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG F\nRUN echo $F > /f\n",
    );
    ws.write(
        "Dockerfile.app",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG n\nRUN echo $n > /n\n",
    );
    ws.write("rootfs/etc/motd", "hello\n");
    ws
}

/// Config and hashes, computed in-process by the same pipeline the binary runs.
fn load(ws: &Ws) -> (Config, Vec<ImageHash>) {
    let text = std::fs::read_to_string(ws.path().join("skip-action.yml")).unwrap();
    let config = Config::parse(&text, Path::new("skip-action.yml")).unwrap();
    let discovery = skip_action::inputs::discover(&config, ws.path()).unwrap();
    let hashes = skip_action::hash::compute(&config, &discovery, &HashOptions::default()).unwrap();
    (config, hashes)
}

/// Repository path (no host) of each image.
fn repo_path(full: &str) -> String {
    full.split_once('/').unwrap().1.to_string()
}

/// Make the `truth` tags exist, straight to the registry.
/// The content tags of repository B's images (`app/*`) or of the others.
fn tags_in(config: &Config, hashes: &[ImageHash], app: bool) -> Vec<String> {
    config
        .images
        .iter()
        .zip(hashes)
        .filter(|(i, _)| (i.image == "app") == app)
        .map(|(_, h)| h.tag.clone())
        .collect()
}

fn publish_truth(reg: &TestRegistry, config: &Config, hashes: &[ImageHash], truth: &[bool]) {
    let mut by_repo: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((img, h), t) in config.images.iter().zip(hashes).zip(truth) {
        if *t {
            by_repo
                .entry(repo_path(&img.repository))
                .or_default()
                .push(h.tag.clone());
        }
    }
    for (repo, tags) in by_repo {
        put_tags(&reg.host(), &repo, &tags);
    }
}

// ---------------------------------------------------------------------------------------------
// Fault mixes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    S500,
    S502,
    S503,
    S408,
    S429,
    S429RetryAfter,
    /// `Retry-After: 3600`: must be capped, not obeyed.
    S429RetryAfterHour,
    S401,
    S403,
    Reset,
    /// Hold the connection past the client's timeout.
    Stall,
    TruncateBody,
    /// 404 on HEAD of a manifest that exists: "a tag pushed a moment ago".
    NotFound,
    /// tags/list answers 404 NAME_UNKNOWN: "a repository not visible yet".
    NameUnknown,
    StripDigest,
    StripContentType,
    /// A paginating registry whose `Link` header is lost: a partial tag list.
    StripLink,
    /// A captive portal: 200 with an HTML login page, for any request.
    Html200,
}

const ALL_KINDS: [Kind; 18] = [
    Kind::S500,
    Kind::S502,
    Kind::S503,
    Kind::S408,
    Kind::S429,
    Kind::S429RetryAfter,
    Kind::S429RetryAfterHour,
    Kind::S401,
    Kind::S403,
    Kind::Reset,
    Kind::Stall,
    Kind::TruncateBody,
    Kind::NotFound,
    Kind::NameUnknown,
    Kind::StripDigest,
    Kind::StripContentType,
    Kind::StripLink,
    Kind::Html200,
];

impl Kind {
    /// Faults that may legitimately make an existing tag look absent (a 404 is an answer, not a
    /// failure): they can cost a rebuild, never a skip.
    fn can_hide_a_tag(self) -> bool {
        matches!(self, Kind::NotFound | Kind::NameUnknown | Kind::StripLink)
    }

    fn rule(self, rng: &mut Rng, stall: Duration, retry_after_secs: &str) -> FaultRule {
        let html = Fault::Respond {
            code: 200,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: b"<html><body>Please log in to the corporate proxy</body></html>".to_vec(),
        };
        let name_unknown = Fault::Respond {
            code: 404,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#.to_vec(),
        };
        let (fault, method, path): (Fault, Option<&str>, Option<&str>) = match self {
            Kind::S500 => (Fault::status(500), None, None),
            Kind::S502 => (Fault::status(502), None, None),
            Kind::S503 => (Fault::status(503), None, None),
            Kind::S408 => (Fault::status(408), None, None),
            Kind::S429 => (Fault::status(429), None, None),
            Kind::S429RetryAfter => (Fault::status_retry_after(429, retry_after_secs), None, None),
            Kind::S429RetryAfterHour => (Fault::status_retry_after(429, "3600"), None, None),
            Kind::S401 => (Fault::status(401), None, None),
            Kind::S403 => (Fault::status(403), None, None),
            Kind::Reset => (Fault::Reset, None, None),
            Kind::Stall => (Fault::Stall(stall), None, None),
            Kind::TruncateBody => (
                Fault::TruncateBody((rng.next_u64() % 24) as usize),
                Some("GET"),
                None,
            ),
            Kind::NotFound => (Fault::status(404), Some("HEAD"), Some("/manifests/")),
            Kind::NameUnknown => (name_unknown, Some("GET"), Some("/tags/list")),
            Kind::StripDigest => (
                Fault::StripHeader("Docker-Content-Digest".into()),
                None,
                None,
            ),
            Kind::StripContentType => (Fault::StripHeader("Content-Type".into()), None, None),
            Kind::StripLink => (Fault::StripHeader("Link".into()), Some("GET"), None),
            Kind::Html200 => (html, None, None),
        };
        let mut r = FaultRule::new(fault, Trigger::Always);
        r.method = method.map(str::to_string);
        r.path_contains = path.map(str::to_string);
        r
    }
}

/// A random mix: 1 to 5 kinds from `menu`, a total rate in [2 %, 30 %] split among them, fresh
/// seeds.
struct Mix {
    kinds: Vec<Kind>,
    rate: f64,
    rules: Vec<FaultRule>,
}

fn random_mix(rng: &mut Rng, menu: &[Kind], stall: Duration, retry_after: &str) -> Mix {
    let k = 1 + (rng.next_u64() % 5) as usize;
    let mut kinds: Vec<Kind> = Vec::new();
    while kinds.len() < k.min(menu.len()) {
        let c = menu[(rng.next_u64() % menu.len() as u64) as usize];
        if !kinds.contains(&c) {
            kinds.push(c);
        }
    }
    let rate = 0.02 + 0.28 * rng.next_f64();
    let rules = kinds
        .iter()
        .map(|kind| {
            let mut r = kind.rule(rng, stall, retry_after);
            r.trigger = Trigger::Rate {
                probability: rate / kinds.len() as f64,
                seed: rng.next_u64(),
            };
            r
        })
        .collect();
    Mix { kinds, rate, rules }
}

// ---------------------------------------------------------------------------------------------
// Oracles
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Tally {
    runs: usize,
    faults: usize,
    false_skips: usize,
    false_present: usize,
    builds_to_be_safe: usize,
    unknown_answers: usize,
    hidden_by_404: usize,
    fail_mode_errors: usize,
    runs_equal_to_clean: usize,
    runs_with_faults_absorbed: usize,
    violations: Vec<String>,
}

impl Tally {
    fn violation(&mut self, what: String) {
        if self.violations.len() < 40 {
            self.violations.push(what);
        }
    }
    fn print(&self, what: &str, took: Duration) {
        eprintln!(
            "[faults] {what}: {} runs in {:.1}s, {} faults injected, false skips: {}, images reported present that were not: {}, builds-to-be-safe: {}, unknown answers: {}, existing tags hidden by injected 404s (rebuilt, never skipped): {}, fail-mode errors: {}, runs whose outputs equal the clean run's: {} (of which {} absorbed injected faults)",
            self.runs,
            took.as_secs_f64(),
            self.faults,
            self.false_skips,
            self.false_present,
            self.builds_to_be_safe,
            self.unknown_answers,
            self.hidden_by_404,
            self.fail_mode_errors,
            self.runs_equal_to_clean,
            self.runs_with_faults_absorbed,
        );
    }
}

fn is_safe_build_reason(r: &str) -> bool {
    r.starts_with("registry error: ") && r.ends_with("; building to be safe")
}

/// Outputs as a map, with the plan's `digest` fields removed: a tags/list answer has no digest
/// and a HEAD fallback has one, which is information, not a decision. (Digests that are given are
/// checked against the registry separately.)
fn normalized(o: &skip_action::github::output::Outputs) -> BTreeMap<String, String> {
    o.iter()
        .map(|(k, v)| {
            let v = if k == "plan" {
                strip_plan_digests(v)
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect()
}

fn strip_plan_digests(plan: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(plan).unwrap();
    for e in v.as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("digest");
    }
    v.to_string()
}

/// Check one faulty answer set against the truth and the clean run. Returns whether the run's
/// answers equal the truth (so its outputs must equal the clean run's).
#[allow(clippy::too_many_arguments)]
fn judge(
    t: &mut Tally,
    label: &str,
    config: &Config,
    hashes: &[ImageHash],
    truth: &[bool],
    existence: &[Existence],
    clean: &[Decision],
    mix: &Mix,
    digest: &str,
    max_jobs: usize,
    dry_run: bool,
) -> bool {
    let may_hide = mix.kinds.iter().any(|k| k.can_hide_a_tag());
    let mut agrees = true;
    for (i, e) in existence.iter().enumerate() {
        let name = &config.images[i].name;
        match e {
            Existence::Present { digest: d } => {
                if !truth[i] {
                    t.false_present += 1;
                    t.violation(format!(
                        "{label}: {name} reported present but its tag does not exist"
                    ));
                }
                if let Some(d) = d {
                    if d != digest {
                        t.violation(format!("{label}: {name} digest {d}, pushed {digest}"));
                    }
                }
            }
            Existence::Absent => {
                if truth[i] {
                    agrees = false;
                    t.hidden_by_404 += 1;
                    if !may_hide {
                        t.violation(format!(
                            "{label}: {name} reported absent though it exists, without any 404 injected ({:?})",
                            mix.kinds
                        ));
                    }
                }
            }
            Existence::Unknown { .. } => {
                agrees = false;
                t.unknown_answers += 1;
            }
        }
    }

    // on-registry-error: build.
    let d = plan::decide(config, existence, &Force::None, OnRegistryError::Build).unwrap();
    for (i, dec) in d.iter().enumerate() {
        let name = &config.images[i].name;
        if !dec.need_build {
            let present = matches!(existence[i], Existence::Present { .. });
            if !truth[i] || !present {
                t.false_skips += 1;
                t.violation(format!("{label}: FALSE SKIP of {name}: {dec:?}"));
            }
        }
        if clean[i].need_build && !dec.need_build {
            t.false_skips += 1;
            t.violation(format!(
                "{label}: {name} builds in the clean run but is skipped under faults"
            ));
        }
        match &existence[i] {
            Existence::Unknown { .. } => {
                if !dec.need_build || !is_safe_build_reason(&dec.reason) || dec.exists.is_some() {
                    t.violation(format!("{label}: unknown {name} decided {dec:?}"));
                }
                t.builds_to_be_safe += 1;
            }
            _ => {
                if is_safe_build_reason(&dec.reason) {
                    t.violation(format!("{label}: {name} answered but says {}", dec.reason));
                }
            }
        }
    }

    // on-registry-error: fail.
    let unknown: Vec<&str> = config
        .images
        .iter()
        .zip(existence)
        .filter(|(_, e)| matches!(e, Existence::Unknown { .. }))
        .map(|(i, _)| i.name.as_str())
        .collect();
    match plan::decide(config, existence, &Force::None, OnRegistryError::Fail) {
        Ok(f) => {
            if !unknown.is_empty() {
                t.violation(format!(
                    "{label}: on-registry-error fail passed with unknown {unknown:?}"
                ));
            }
            if f != d {
                t.violation(format!("{label}: fail and build modes disagree"));
            }
        }
        Err(e) => {
            t.fail_mode_errors += 1;
            let msg = format!("{e:#}");
            if unknown.is_empty() {
                t.violation(format!("{label}: fail mode failed without unknowns: {msg}"));
            }
            for u in &unknown {
                if !msg.contains(&format!("{u}: ")) {
                    t.violation(format!("{label}: fail message does not name {u}: {msg}"));
                }
            }
        }
    }

    if agrees {
        let a = skip_action::outputs::decide_outputs(config, hashes, &d, dry_run, max_jobs);
        let b = skip_action::outputs::decide_outputs(config, hashes, clean, dry_run, max_jobs);
        if normalized(&a) != normalized(&b) {
            t.violation(format!(
                "{label}: every probe answered, yet the outputs differ from the clean run's"
            ));
        } else {
            t.runs_equal_to_clean += 1;
        }
    }
    agrees
}

fn client(timeout: Duration, retries: u32, page: usize) -> Client {
    Client::new(ClientOptions {
        credentials: Credentials::none(),
        timeout,
        retries,
        max_concurrency_per_host: 16,
        retry_base_delay: Duration::from_millis(2),
        max_retry_wait: Duration::from_millis(25),
        tags_page_size: page,
        ..ClientOptions::default()
    })
    .unwrap()
}

/// Thousands of decide runs, in-process: the library's `probe_all` and `plan::decide` with a
/// short-timeout client, against the real registry behind the fault proxy. Each run asks about a
/// fresh pair of repositories where a random subset of the 23 content tags exists.
#[test]
fn randomized_decide_runs_never_skip_falsely() {
    let runs = soak_count(1000);
    let mut rng = Rng::seeded(seed());
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    proxy.paginate_tags(true);
    let host = proxy.host();
    let ws = soak_workspace(&host, "soak/a", "soak/b");
    let (config0, hashes0) = load(&ws);
    assert_eq!(config0.images.len(), 23);
    let digest = empty_index_digest();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let timeout = Duration::from_millis(400);
    let stall = Duration::from_millis(900);
    let clean_client = client(Duration::from_secs(20), 4, 1000);
    let clients: Vec<(u32, usize, Client)> = [1u32, 2, 4]
        .iter()
        .flat_map(|&r| [1000usize, 7].map(|p| (r, p, client(timeout, r, p))))
        .collect();

    // Every content tag exists once, in soak/a and soak/b: a run makes an image's tag exist by
    // asking for its real content tag, and absent by asking for a tag that was never pushed
    // (PUTs cost ~50 ms each on this registry; probes treat tags as opaque strings).
    put_tags(&reg.host(), "soak/a", &tags_in(&config0, &hashes0, false));
    put_tags(&reg.host(), "soak/b", &tags_in(&config0, &hashes0, true));

    let mut t = Tally::default();
    let started = Instant::now();
    for run in 0..runs {
        // One run in ten asks repository B under a name that was never pushed (404 NAME_UNKNOWN).
        let repo_b = if rng.next_u64() % 10 == 0 {
            format!("soak/never{run}")
        } else {
            "soak/b".to_string()
        };
        let p_exist = [0.0, 0.3, 0.5, 0.8, 1.0][(rng.next_u64() % 5) as usize];
        let mut config = config0.clone();
        let mut hashes = hashes0.clone();
        let mut truth = Vec::with_capacity(config.images.len());
        for (img, h) in config.images.iter_mut().zip(hashes.iter_mut()) {
            let present = rng.next_f64() < p_exist;
            if img.image == "app" {
                img.repository = format!("{host}/{repo_b}");
                // The parsed form every registry call uses (the config parses it once).
                img.repo = skip_registry::RepoRef::parse(&img.repository).unwrap();
            }
            if !present {
                h.tag = format!("{}-r{run}", h.tag);
            }
            h.image = format!("{}:{}", img.repository, h.tag);
            truth.push(present && !img.repository.contains("/soak/never"));
        }
        let mode =
            [ProbeMode::Auto, ProbeMode::Head, ProbeMode::List][(rng.next_u64() % 3) as usize];

        // The clean run: exactly the truth.
        proxy.set_rules(vec![]);
        let clean_ex = rt.block_on(probe_all(
            &clean_client,
            &config,
            &hashes,
            Duration::from_secs(60),
            mode,
        ));
        for (i, e) in clean_ex.iter().enumerate() {
            let ok = match e {
                Existence::Present { digest: d } => {
                    truth[i] && d.as_deref().is_none_or(|d| d == digest)
                }
                Existence::Absent => !truth[i],
                Existence::Unknown { .. } => false,
            };
            assert!(
                ok,
                "clean run {run}: {} answered {e:?}",
                config.images[i].name
            );
        }
        let clean = plan::decide(&config, &clean_ex, &Force::None, OnRegistryError::Build).unwrap();

        // The same question under a random fault mix.
        let mix = random_mix(&mut rng, &ALL_KINDS, stall, "1");
        let (retries, page, c) = &clients[(rng.next_u64() % clients.len() as u64) as usize];
        // One run in eight has a decide deadline shorter than a stall.
        let deadline = if rng.next_u64() % 8 == 0 {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(60)
        };
        proxy.set_rules(mix.rules.clone());
        let before = proxy.faults_injected();
        let ex = rt.block_on(probe_all(c, &config, &hashes, deadline, mode));
        let injected = proxy.faults_injected() - before;
        proxy.set_rules(vec![]);
        t.faults += injected;
        t.runs += 1;
        let label = format!(
            "run {run} (mode {mode:?}, retries {retries}, page {page}, deadline {deadline:?}, rate {:.2}, {:?})",
            mix.rate, mix.kinds
        );
        let max_jobs = [1usize, 4, 256][(rng.next_u64() % 3) as usize];
        let dry_run = rng.next_u64() % 5 == 0;
        let agrees = judge(
            &mut t, &label, &config, &hashes, &truth, &ex, &clean, &mix, &digest, max_jobs, dry_run,
        );
        if agrees && injected > 0 {
            t.runs_with_faults_absorbed += 1;
        }
    }
    let took = started.elapsed();
    t.print("in-process decide", took);
    assert!(t.violations.is_empty(), "{:#?}", t.violations);
    assert_eq!(t.false_skips, 0);
    assert_eq!(t.false_present, 0);
    // The run exercised every path: faults absorbed by retries, and faults that were not.
    assert!(t.faults > runs, "{t:?}");
    assert!(t.runs_with_faults_absorbed > runs / 4, "{t:?}");
    assert!(t.builds_to_be_safe > 0 && t.fail_mode_errors > 0, "{t:?}");
    assert!(t.hidden_by_404 > 0, "{t:?}");
}

/// The real binary under faults: a subset of the runs above, end to end (outputs file, exit
/// code, `--on-registry-error`, `--timeout` shorter than a stall).
#[test]
fn binary_decide_runs_under_faults() {
    let runs = soak_env().map(|n| (n / 20).max(24)).unwrap_or(24);
    let mut rng = Rng::seeded(seed() ^ 0xb1);
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    proxy.paginate_tags(true);
    let host = proxy.host();
    let digest = empty_index_digest();
    // The binary's own client: 30 s per request, backoff from 250 ms. Stalls only in runs with a
    // short --timeout (what is unanswered by then is built); Retry-After 0 keeps runs short.
    let menu: Vec<Kind> = ALL_KINDS
        .iter()
        .copied()
        .filter(|k| !matches!(k, Kind::Stall | Kind::S429RetryAfterHour))
        .collect();
    let mut t = Tally::default();
    let mut deadline_hits = 0;
    let started = Instant::now();
    for run in 0..runs {
        let (repo_a, repo_b) = (format!("bin/r{run}a"), format!("bin/r{run}b"));
        let ws = soak_workspace(&host, &repo_a, &repo_b);
        let (config, hashes) = load(&ws);
        let p_exist = [0.0, 0.5, 0.8, 1.0][(rng.next_u64() % 4) as usize];
        let truth: Vec<bool> = (0..config.images.len())
            .map(|_| rng.next_f64() < p_exist)
            .collect();
        publish_truth(&reg, &config, &hashes, &truth);
        let max_jobs = ["1", "4", "256"][(rng.next_u64() % 3) as usize];

        proxy.set_rules(vec![]);
        let clean = gh_run(&ws, "decide", &["--max-jobs", max_jobs], &[]);
        assert_eq!(clean.code, Some(0), "{}", clean.stderr);
        let clean_plan = clean.json("plan");
        for (i, e) in clean_plan.as_array().unwrap().iter().enumerate() {
            assert_eq!(e["tag"], hashes[i].tag.as_str(), "binary and library agree");
            assert_eq!(e["exists"], truth[i], "clean run {run}: {e}");
        }

        let stall_run = run % 4 == 3;
        let mut mix = random_mix(&mut rng, &menu, Duration::from_secs(8), "0");
        let mut timeout = "60";
        if stall_run {
            let mut r = Kind::Stall.rule(&mut rng, Duration::from_secs(8), "0");
            r.trigger = Trigger::Rate {
                probability: 0.1,
                seed: rng.next_u64(),
            };
            mix.rules.insert(0, r);
            mix.kinds.push(Kind::Stall);
            timeout = "2";
        }
        let fail_mode = run % 3 == 1;
        let probe = ["auto", "head", "list"][(rng.next_u64() % 3) as usize];
        let mut args = vec![
            "--max-jobs",
            max_jobs,
            "--timeout",
            timeout,
            "--probe",
            probe,
        ];
        if fail_mode {
            args.extend(["--on-registry-error", "fail"]);
        }
        proxy.set_rules(mix.rules.clone());
        let before = proxy.faults_injected();
        let d = gh_run(&ws, "decide", &args, &[]);
        let injected = proxy.faults_injected() - before;
        proxy.set_rules(vec![]);
        t.runs += 1;
        t.faults += injected;
        let label = format!(
            "binary run {run} (probe {probe}, rate {:.2}, {:?}, fail mode {fail_mode}, {:?})",
            mix.rate, mix.kinds, d.elapsed
        );
        if d.code == Some(1) && fail_mode {
            t.fail_mode_errors += 1;
            if !d.out.is_empty() {
                t.violation(format!("{label}: outputs written by a failed run"));
            }
            if !d.stderr.contains("on-registry-error: fail") {
                t.violation(format!("{label}: unclear failure: {}", d.stderr));
            }
            continue;
        }
        if d.code != Some(0) {
            t.violation(format!("{label}: exit {:?}: {}", d.code, d.stderr));
            continue;
        }
        let mut agrees = true;
        let may_hide = mix.kinds.iter().any(|k| k.can_hide_a_tag());
        for (i, e) in d.json("plan").as_array().unwrap().iter().enumerate() {
            let name = e["name"].as_str().unwrap();
            let need = e["need_build"].as_bool().unwrap();
            let reason = e["reason"].as_str().unwrap();
            if e["exists"] == true && !truth[i] {
                t.false_present += 1;
                t.violation(format!("{label}: {name} reported present: {e}"));
            }
            if !need && (e["exists"] != true || !truth[i]) {
                t.false_skips += 1;
                t.violation(format!("{label}: FALSE SKIP {e}"));
            }
            if let Some(dg) = e["digest"].as_str() {
                if dg != digest {
                    t.violation(format!("{label}: {name} digest {dg}"));
                }
            }
            if reason.starts_with("could not check that it is built on its current parent") {
                // The tag's answer was right, but a manifest read of the base check failed
                // under the faults: built to be safe, like an unknown probe.
                agrees = false;
                t.builds_to_be_safe += 1;
                if !need || !reason.ends_with("; building to be safe") || fail_mode {
                    t.violation(format!("{label}: unchecked base decided {e}"));
                }
            } else if e["exists"].is_null() {
                agrees = false;
                t.unknown_answers += 1;
                if !need || !is_safe_build_reason(reason) || fail_mode {
                    t.violation(format!("{label}: unknown answer decided {e}"));
                }
                t.builds_to_be_safe += 1;
            } else if e["exists"] != truth[i] {
                agrees = false;
                t.hidden_by_404 += 1;
                if !may_hide {
                    t.violation(format!("{label}: {name} absent without a 404: {e}"));
                }
            }
        }
        if agrees {
            let strip = |r: &GhRun| -> BTreeMap<String, String> {
                r.out
                    .iter()
                    .map(|(k, v)| {
                        let v = if k == "plan" {
                            strip_plan_digests(v)
                        } else {
                            v.clone()
                        };
                        (k.clone(), v)
                    })
                    .collect()
            };
            if strip(&d) != strip(&clean) {
                t.violation(format!("{label}: outputs differ from the clean run's"));
            } else {
                t.runs_equal_to_clean += 1;
                if injected > 0 {
                    t.runs_with_faults_absorbed += 1;
                }
            }
        }
        // The deadline, not the 8 s stall, ended the stalled probes (no wall clock asserted: a busy
        // machine would make that flake; the reason says which bound fired).
        let ended_by_deadline = d
            .json("plan")
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("decide deadline"))
            })
            .count();
        deadline_hits += ended_by_deadline;
    }
    t.print("binary decide", started.elapsed());
    assert!(t.violations.is_empty(), "{:#?}", t.violations);
    assert_eq!(t.false_skips, 0);
    assert!(deadline_hits > 0, "no stalled probe was ended by --timeout");
    assert!(t.faults > 0 && t.runs_with_faults_absorbed > 0, "{t:?}");
}

// ---------------------------------------------------------------------------------------------
// promote under the same faults
// ---------------------------------------------------------------------------------------------

const PPATH: &str = "acme/devbox";
const PVARIANTS: [&str; 2] = ["devbox/omos", "devbox/pi"];

fn promote_workspace(host: &str, motd: &str) -> Ws {
    let ws = Ws::new();
    ws.write(
        "skip-action.yml",
        &format!(
            "version: 1\nrepository: {host}/{PPATH}\nimages:\n  base:\n    dockerfile: Dockerfile.base\n    tag: base-{{hash}}\n    promote: [base-latest]\n  devbox:\n    from: base\n    dockerfile: Dockerfile.variant\n    variants:\n      omos: {{ FLAVOR: omos }}\n      pi: {{ FLAVOR: pi }}\n    tag: \"{{variant}}-{{hash}}\"\n    promote: [\"latest-{{variant}}\"]\n"
        ),
    );
    ws.write("Dockerfile.base", "FROM alpine:3.20\nCOPY rootfs/ /\n");
    ws.write(
        "Dockerfile.variant",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOR\nRUN echo $FLAVOR > /flavor\n",
    );
    ws.write("rootfs/etc/motd", motd);
    ws
}

fn content_tags(ws: &Ws) -> BTreeMap<String, String> {
    let (config, hashes) = load(ws);
    config
        .images
        .iter()
        .zip(hashes)
        .map(|(i, h)| (i.name.clone(), h.tag))
        .collect()
}

/// The base and both variants built FROM it, single-arch (new content each call).
async fn push_family(
    p: &skip_testkit::Pusher,
    tags: &BTreeMap<String, String>,
) -> Vec<PushedImage> {
    let base = p
        .push_image(PPATH, Some(&tags["base"]), &ImageSpec::oci().layers(2))
        .await
        .unwrap();
    let mut out = vec![base.clone()];
    for v in PVARIANTS {
        out.push(
            p.push_image(PPATH, Some(&tags[v]), &ImageSpec::oci().from_parent(&base))
                .await
                .unwrap(),
        );
    }
    out
}

/// The digest a tag points at, asked straight from the registry (never through the proxy).
fn digest_at(reg: &TestRegistry, tag: &str) -> Option<String> {
    let accept = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let (code, head) = raw_request(
        &reg.host(),
        &format!("HEAD /v2/{PPATH}/manifests/{tag}"),
        accept,
    );
    if code == 404 {
        return None;
    }
    assert_eq!(code, 200, "{head}");
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
        .or_else(|| panic!("no digest: {head}"))
}

fn raw_request(host: &str, line: &str, accept: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{line} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

const ALIASES: [(&str, usize); 3] = [("base-latest", 0), ("latest-omos", 1), ("latest-pi", 2)];

/// Rounds of "new content at the content tags, then promote under a random fault mix": every
/// alias ends at its old digest or at the verified new one; a success moved them all; a failure
/// either changed nothing or reports in `promoted` exactly the aliases that moved.
#[test]
fn promote_under_faults_moves_aliases_only_to_verified_digests() {
    let rounds = soak_env().map(|n| (n / 50).max(16)).unwrap_or(16);
    let mut rng = Rng::seeded(seed() ^ 0x9e0);
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let host = proxy.host();
    let ws = promote_workspace(&host, "hello\n");
    let tags = content_tags(&ws);
    let pusher = reg.pusher();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Reads stall only with a short --timeout; writes never stall (a write has no deadline
    // but the per-request timeout of 30 s, see the report).
    let menu: Vec<Kind> = ALL_KINDS
        .iter()
        .copied()
        .filter(|k| !matches!(k, Kind::Stall | Kind::S429RetryAfterHour | Kind::StripLink))
        .collect();
    let (mut ok_runs, mut failed_runs, mut partial_runs, mut faults) = (0, 0, 0, 0);
    let started = Instant::now();
    for round in 0..rounds {
        let pushed = rt.block_on(push_family(&pusher, &tags));
        let old: BTreeMap<&str, Option<String>> = ALIASES
            .iter()
            .map(|(a, _)| (*a, digest_at(&reg, a)))
            .collect();
        let mut mix = random_mix(&mut rng, &menu, Duration::from_secs(5), "0");
        // Every fourth round, reads also stall past the client's 30 s request timeout: the
        // checks' deadline (--timeout 3 plus --wait 1) ends them and nothing is written.
        let stall_round = round % 4 == 3;
        if stall_round {
            for m in ["GET", "HEAD"] {
                let mut r = Kind::Stall.rule(&mut rng, Duration::from_secs(8), "0");
                r.method = Some(m.into());
                r.trigger = Trigger::Rate {
                    probability: 0.3,
                    seed: rng.next_u64(),
                };
                mix.rules.insert(0, r);
            }
            mix.kinds.push(Kind::Stall);
        }
        let timeout = if stall_round { "3" } else { "30" };
        proxy.set_rules(mix.rules.clone());
        let before = proxy.faults_injected();
        let run = gh_run(&ws, "promote", &["--wait", "1", "--timeout", timeout], &[]);
        faults += proxy.faults_injected() - before;
        proxy.set_rules(vec![]);
        let label = format!(
            "round {round} (rate {:.2}, {:?}, exit {:?})",
            mix.rate, mix.kinds, run.code
        );
        let log = format!("{label}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        let promoted: serde_json::Value =
            serde_json::from_str(run.out.get("promoted").map(String::as_str).unwrap_or("{}"))
                .unwrap();
        let mut moved = 0;
        for (alias, i) in ALIASES {
            let now = digest_at(&reg, alias);
            let new = &pushed[i].digest;
            let key = format!("{host}/{PPATH}:{alias}");
            assert!(
                now.as_deref() == Some(new.as_str()) || now == old[alias],
                "{alias} points at {now:?}: neither its old {:?} nor the verified {new}\n{log}",
                old[alias]
            );
            if now.as_deref() == Some(new.as_str()) {
                moved += 1;
                assert_eq!(
                    promoted[&key],
                    new.as_str(),
                    "{alias} moved unreported\n{log}"
                );
            } else {
                assert!(
                    promoted.get(&key).is_none(),
                    "{alias} reported, not moved\n{log}"
                );
            }
        }
        match run.code {
            Some(0) => {
                ok_runs += 1;
                assert_eq!(moved, 3, "{log}");
            }
            Some(1) => {
                failed_runs += 1;
                if run.stderr.contains("no tag was changed") {
                    assert_eq!(moved, 0, "{log}");
                } else {
                    assert!(run.stderr.contains("promotion failed"), "{log}");
                    partial_runs += 1;
                }
            }
            other => panic!("exit {other:?}\n{log}"),
        }
        // `previous` is what the aliases pointed at, unless a 404 was injected on that read.
        if let Some(prev) = run.out.get("previous") {
            if !mix.kinds.iter().any(|k| k.can_hide_a_tag()) && run.code == Some(0) {
                let prev: serde_json::Value = serde_json::from_str(prev).unwrap();
                for (alias, _) in ALIASES {
                    let key = format!("{host}/{PPATH}:{alias}");
                    assert_eq!(
                        prev[&key].as_str(),
                        old[alias].as_deref(),
                        "previous of {alias}\n{log}"
                    );
                }
            }
        }
    }
    eprintln!(
        "[faults] promote: {rounds} rounds in {:.1}s, {faults} faults injected, {ok_runs} succeeded, {failed_runs} failed ({partial_runs} partial, reported), every alias at its old or its verified new digest",
        started.elapsed().as_secs_f64()
    );
    assert!(faults > 0);
}

/// Two promotes of different content race for the same aliases, rounds over: each alias ends at
/// one of the two verified digests, and each run's `promoted` output names digests of its own
/// content only.
#[test]
fn racing_promotes_end_at_one_of_the_two_verified_digests() {
    let rounds = soak_env().map(|n| (n / 200).max(6)).unwrap_or(6);
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let host = proxy.host();
    let a = promote_workspace(&host, "hello from A\n");
    let b = promote_workspace(&host, "hello from B\n");
    let (ta, tb) = (content_tags(&a), content_tags(&b));
    assert_ne!(ta["base"], tb["base"]);
    let pusher = reg.pusher();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rng = Rng::seeded(seed() ^ 0x7ace);
    let mut winners: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..rounds {
        let pa = rt.block_on(push_family(&pusher, &ta));
        let pb = rt.block_on(push_family(&pusher, &tb));
        let old: Vec<Option<String>> = ALIASES.iter().map(|(a, _)| digest_at(&reg, a)).collect();
        // Light faults on half the rounds: retries interleave the writes differently.
        if round % 2 == 1 {
            proxy.set_rules(vec![FaultRule::new(
                Fault::status(503),
                Trigger::Rate {
                    probability: 0.15,
                    seed: rng.next_u64(),
                },
            )]);
        }
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| gh_run(&a, "promote", &["--wait", "0"], &[]));
            let hb = s.spawn(|| gh_run(&b, "promote", &["--wait", "0"], &[]));
            (ha.join().unwrap(), hb.join().unwrap())
        });
        proxy.set_rules(vec![]);
        for (run, pushed) in [(&ra, &pa), (&rb, &pb)] {
            let promoted: serde_json::Value =
                serde_json::from_str(run.out.get("promoted").map(String::as_str).unwrap_or("{}"))
                    .unwrap();
            for (alias, i) in ALIASES {
                if let Some(d) = promoted.get(format!("{host}/{PPATH}:{alias}")) {
                    assert_eq!(d, pushed[i].digest.as_str(), "{}", run.stderr);
                }
            }
        }
        let any_ok = ra.code == Some(0) || rb.code == Some(0);
        for (alias, i) in ALIASES {
            let now = digest_at(&reg, alias).unwrap_or_default();
            let w = if now == pa[i].digest {
                "A"
            } else if now == pb[i].digest {
                "B"
            } else if !any_ok && Some(&now) == old[i].as_ref() {
                // Both runs failed under the faults (and said so): nothing moved.
                "neither"
            } else {
                panic!(
                    "round {round}: {alias} at {now}, neither A's {} nor B's {}\nA: {}\nB: {}",
                    pa[i].digest, pb[i].digest, ra.stderr, rb.stderr
                )
            };
            *winners.entry(w).or_default() += 1;
        }
    }
    eprintln!("[faults] racing promotes: {rounds} rounds, aliases won: {winners:?}");
}

/// A captive portal (or a proxy answering for the registry) that says "200 OK" with an HTML page
/// to every request: decide builds everything and says why; promote writes nothing and does not
/// report a move — a 200 to a manifest PUT is not "201 Created".
#[test]
fn a_captive_portal_never_counts_as_present_or_as_written() {
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let host = proxy.host();
    let portal = || {
        let mut r = Kind::Html200.rule(&mut Rng::seeded(1), Duration::ZERO, "0");
        r.trigger = Trigger::Always;
        r
    };

    // decide: every tag exists, the portal answers: everything builds, to be safe.
    let ws = soak_workspace(&host, "portal/a", "portal/b");
    let (config, hashes) = load(&ws);
    publish_truth(&reg, &config, &hashes, &vec![true; config.images.len()]);
    proxy.set_rules(vec![portal()]);
    let d = gh_run(&ws, "decide", &["--timeout", "30"], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    for (name, (build, reason)) in d.plan() {
        assert!(build && is_safe_build_reason(&reason), "{name}: {reason}");
    }
    proxy.set_rules(vec![]);
    let d = gh_run(&ws, "decide", &[], &[]);
    assert_eq!(d.get("need_build"), "", "{}", d.stderr);

    // promote: the portal answers only the PUT of one alias.
    let ws = promote_workspace(&host, "portal\n");
    let tags = content_tags(&ws);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pushed = rt.block_on(push_family(&reg.pusher(), &tags));
    let mut rule = portal();
    rule.method = Some("PUT".into());
    rule.path_contains = Some("manifests/latest-pi".into());
    proxy.set_rules(vec![rule]);
    let run = gh_run(&ws, "promote", &["--wait", "0"], &[]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("latest-pi"), "{}", run.stderr);
    assert!(run.stderr.contains("201 Created"), "{}", run.stderr);
    let promoted = run.json("promoted");
    assert!(
        promoted.get(format!("{host}/{PPATH}:latest-pi")).is_none(),
        "{promoted}"
    );
    assert_eq!(digest_at(&reg, "latest-pi"), None);
    assert_eq!(
        digest_at(&reg, "base-latest").as_deref(),
        Some(pushed[0].digest.as_str())
    );
}
