//! The edge between the pure core and the registry: build a client from the flags, ask about every
//! content tag, resolve `upstream: digest` images.
//!
//! The answers are turned into [`crate::plan::Existence`] values here, so the planner never sees
//! HTTP. Everything is bounded: per-request timeouts and retries live in `skip-registry`; this layer
//! adds one deadline for the whole probe, after which every unanswered tag is `Unknown` — which
//! builds, never skips.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use skip_registry::{Client, ClientOptions, Credentials, Probe, RepoRef};

use crate::config::Config;
use crate::hash::ImageHash;
use crate::plan::Existence;

/// Registry flags shared by `decide` and `promote`.
#[derive(Debug, Clone, Default)]
pub struct RegistryFlags {
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// Total seconds for all probes.
    pub timeout: Duration,
}

/// Repositories with at least this many images are probed with one `tags/list` instead of one
/// HEAD per tag (in `auto` mode).
pub const LIST_THRESHOLD: usize = 16;

/// How content tags are asked about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeMode {
    /// `tags/list` for repositories with [`LIST_THRESHOLD`] or more images, HEAD otherwise.
    #[default]
    Auto,
    /// One HEAD per tag (gives every digest; for registries that restrict `tags/list`).
    Head,
    /// One `tags/list` per repository, falling back to HEAD if it fails.
    List,
}

/// Requests in flight per registry host unless `SKIP_ACTION_MAX_CONNECTIONS` says otherwise.
/// Measured in benches/scale.sh: against a local registry (CPU-bound, sharing 2 cores) 32 and 64
/// are no faster than 16; a remote registry is latency-bound, where more can help, and where a
/// registry's rate limits make more a risk — hence a knob, not a higher default.
pub const DEFAULT_CONNECTIONS: usize = 16;

/// The most a user may ask for: past this a registry sees a flood, not a client.
pub const MAX_CONNECTIONS: usize = 256;

/// Requests in flight per registry host: `SKIP_ACTION_MAX_CONNECTIONS` (1 to
/// [`MAX_CONNECTIONS`]) or, unset or empty, [`DEFAULT_CONNECTIONS`]. A value that is not such a
/// number is an error that says so, never silently the default.
pub fn connections() -> anyhow::Result<usize> {
    // Empty counts as unset: `env: X: ${{ vars.X }}` of an unset variable is empty.
    let v = std::env::var("SKIP_ACTION_MAX_CONNECTIONS").unwrap_or_default();
    if v.trim().is_empty() {
        return Ok(DEFAULT_CONNECTIONS);
    }
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CONNECTIONS).contains(&n) => Ok(n),
        _ => Err(crate::error::usage(format!(
            "SKIP_ACTION_MAX_CONNECTIONS is {v:?}; set it to a number from 1 to {MAX_CONNECTIONS} (requests in flight per registry), or unset it for {DEFAULT_CONNECTIONS}"
        ))),
    }
}

/// Make the client: credentials from the flags, then docker's config.json, then `GITHUB_TOKEN`.
/// Secrets are masked in the runner's log before anything could print them.
pub fn client(config: &Config, flags: &RegistryFlags) -> anyhow::Result<Client> {
    for s in [&flags.password, &flags.token].into_iter().flatten() {
        crate::github::mask(s);
    }
    let creds = credentials(config, flags)?;
    Client::new(ClientOptions {
        insecure_registries: config.insecure_registries.clone(),
        credentials: creds,
        max_concurrency_per_host: connections()?,
        auth_hint: auth_fix_hint,
        ..ClientOptions::default()
    })
}

/// How to fix an auth failure in a workflow, tailored to the registry: the action's own inputs
/// and docker/login-action. Installed as the client's [`ClientOptions::auth_hint`], so the
/// registry crate stays free of this action's vocabulary.
pub fn auth_fix_hint(registry: &str) -> String {
    let mut s = format!(
        "log in before this step (docker/login-action with `registry: {registry}`), or pass the action's \
         `username` and `password` inputs"
    );
    if registry == "ghcr.io" {
        s.push_str("; with GITHUB_TOKEN, the job needs `permissions: packages: write` and the package must grant this repository access");
    }
    s
}

/// Credentials in order of precedence: `username`/`password` (for every registry of the config),
/// docker's config.json, then the `token` / `GITHUB_TOKEN` for ghcr.io.
pub fn credentials(config: &Config, flags: &RegistryFlags) -> anyhow::Result<Credentials> {
    let mut creds = Credentials::from_env().context("reading registry credentials")?;
    if let Some(t) = flags.token.as_deref().filter(|t| !t.is_empty()) {
        creds = creds.with_github_token(t.to_string(), std::env::var("GITHUB_ACTOR").ok());
    }
    match (flags.username.as_deref(), flags.password.as_deref()) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => {
            let mut hosts: Vec<String> = Vec::new();
            for host in config.images.iter().map(|i| &i.repo.registry) {
                if !hosts.contains(host) {
                    hosts.push(host.clone());
                }
            }
            for h in hosts {
                creds = creds.with_basic(&h, u.to_string(), p.to_string());
            }
        }
        (Some(u), None) if !u.is_empty() => {
            return Err(crate::error::usage(
                "username given without password; set both (inputs `username` and `password`)",
            ))
        }
        _ => {}
    }
    Ok(creds)
}

/// Ask about every image's content tag. One answer per image, same order.
pub async fn probe_all(
    client: &Client,
    config: &Config,
    hashes: &[ImageHash],
    deadline: Duration,
    mode: ProbeMode,
) -> Vec<Existence> {
    probe_all_listed(client, config, hashes, deadline, mode)
        .await
        .existence
}

/// What [`probe_all_listed`] learned.
#[derive(Debug, Default)]
pub struct Probed {
    /// One answer per image of the config, same order.
    pub existence: Vec<Existence>,
    /// The tags of each repository asked with `tags/list`, by repository as written in the
    /// config: `runners:`' per-platform tags are answered from the same list (one snapshot of
    /// the repository, as for the content tags) instead of one HEAD each.
    pub listed: HashMap<String, Arc<HashSet<String>>>,
}

/// [`probe_all`], keeping each listed repository's tags.
pub async fn probe_all_listed(
    client: &Client,
    config: &Config,
    hashes: &[ImageHash],
    deadline: Duration,
    mode: ProbeMode,
) -> Probed {
    let deadline = tokio::time::Instant::now() + deadline;
    let mut answers: Vec<Option<Existence>> = vec![None; hashes.len()];
    let mut listed: HashMap<String, Arc<HashSet<String>>> = HashMap::new();

    // Group by repository.
    let mut by_repo: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, img) in config.images.iter().enumerate() {
        by_repo.entry(img.repository.as_str()).or_default().push(i);
    }
    let mut head_jobs: Vec<(usize, RepoRef)> = Vec::new();
    for (repo, idx) in by_repo {
        // Parsed once, at the config edge: every image of one repository string has the same.
        let rr = config.images[idx[0]].repo.clone();
        let use_list = match mode {
            ProbeMode::Auto => idx.len() >= LIST_THRESHOLD,
            ProbeMode::Head => false,
            ProbeMode::List => true,
        };
        if use_list {
            match tokio::time::timeout_at(deadline, client.list_tags(&rr)).await {
                Ok(Ok(tags)) => {
                    let tags: HashSet<String> = tags.into_iter().collect();
                    tracing::info!(repository = repo, tags = tags.len(), "listed tags");
                    for i in idx {
                        answers[i] = Some(if tags.contains(&hashes[i].tag) {
                            Existence::Present { digest: None }
                        } else {
                            Existence::Absent
                        });
                    }
                    listed.insert(repo.to_string(), Arc::new(tags));
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::warn!(
                        repository = repo,
                        "tags/list failed, probing each tag: {e:#}"
                    )
                }
                Err(_) => tracing::warn!(repository = repo, "tags/list ran out of time"),
            }
        }
        head_jobs.extend(idx.into_iter().map(|i| (i, rr.clone())));
    }

    // Many repositories (the seed layout: one per image): their pull tokens are asked for many
    // scopes at a time.
    let repos: Vec<RepoRef> = head_jobs
        .iter()
        .map(|(_, r)| r.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if repos.len() > 1 {
        client.expect_pulls(&repos);
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, rr) in head_jobs {
        let client = client.clone();
        let tag = hashes[i].tag.clone();
        set.spawn(async move {
            let p = match tokio::time::timeout_at(deadline, client.probe(&rr, &tag)).await {
                Ok(p) => p,
                Err(_) => Probe::Unknown {
                    reason: "no answer before the decide deadline".into(),
                },
            };
            (i, p)
        });
    }
    while let Some(res) = set.join_next().await {
        if let Ok((i, p)) = res {
            answers[i] = Some(match p {
                Probe::Present { digest, .. } => Existence::Present {
                    digest: Some(digest),
                },
                Probe::Absent => Existence::Absent,
                Probe::Unknown { reason } => Existence::Unknown { reason },
            });
        }
    }
    let existence = answers
        .into_iter()
        .map(|a| {
            a.unwrap_or(Existence::Unknown {
                reason: "the probe task failed".into(),
            })
        })
        .collect();
    Probed { existence, listed }
}

/// decide's manifest reads: each (repository, reference) fetched at most once per run, however
/// many checks need it. A parent is read once, not once per child (6 bases under 12,800
/// children), and a content tag that the base check and the `runners:` platform check both
/// read is one GET. One run judges one snapshot: a tag read twice could otherwise change between
/// the reads, and the check would judge an image other than the one reused. Concurrent askers of
/// one reference wait for one request. A 404 is remembered (as the 404 it was); other errors are
/// not, so a later asker tries again. Only for decide's reads: nothing here is written.
#[derive(Clone)]
pub struct ManifestReads {
    client: Client,
    cells: Arc<std::sync::Mutex<HashMap<(RepoRef, String), ReadCell>>>,
}

/// One (repository, reference)'s read, shared by everyone asking for it.
type ReadCell = Arc<tokio::sync::OnceCell<Read>>;

#[derive(Clone)]
enum Read {
    Found(skip_registry::Manifest),
    NotFound(skip_registry::HttpError),
}

impl ManifestReads {
    pub fn new(client: &Client) -> ManifestReads {
        ManifestReads {
            client: client.clone(),
            cells: Arc::default(),
        }
    }

    /// The manifest behind `reference` (a tag or a digest), as [`Client::get_manifest`] returns it.
    pub async fn get(
        &self,
        repo: &RepoRef,
        reference: &str,
    ) -> anyhow::Result<skip_registry::Manifest> {
        let cell = {
            let mut m = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            m.entry((repo.clone(), reference.to_string()))
                .or_default()
                .clone()
        };
        let read = cell
            .get_or_try_init(|| async {
                match self.client.get_manifest(repo, reference).await {
                    Ok(m) => Ok(Read::Found(m)),
                    Err(e) => match e
                        .chain()
                        .find_map(|c| c.downcast_ref::<skip_registry::HttpError>())
                    {
                        Some(h) if h.status == 404 => Ok(Read::NotFound(h.clone())),
                        _ => Err(e),
                    },
                }
            })
            .await?;
        match read {
            Read::Found(m) => Ok(m.clone()),
            Read::NotFound(h) => Err(anyhow::Error::new(h.clone())),
        }
    }

    /// The client the reads go through (for what is not a manifest read).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How many distinct manifests were asked for (each read once).
    pub fn distinct(&self) -> usize {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Digests of outside images of `upstream: digest` images, by reference as written.
pub async fn resolve_upstream(
    client: &Client,
    references: &[String],
) -> anyhow::Result<HashMap<String, Result<String, String>>> {
    let client = Arc::new(client.clone());
    let mut set = tokio::task::JoinSet::new();
    for r in references {
        let client = client.clone();
        let r = r.clone();
        set.spawn(async move {
            let reference = match skip_registry::Reference::parse(&r) {
                Ok(x) => x,
                Err(e) => return (r, Err(format!("not a valid image reference ({e:#})"))),
            };
            let res = match client
                .probe(&reference.repo(), reference.api_reference())
                .await
            {
                Probe::Present { digest, .. } => Ok(digest),
                Probe::Absent => Err("does not exist in its registry".to_string()),
                Probe::Unknown { reason } => Err(format!("could not resolve its digest: {reason}")),
            };
            (r, res)
        });
    }
    let mut out = HashMap::new();
    while let Some(res) = set.join_next().await {
        let (r, d) = res.context("resolving upstream digests")?;
        out.insert(r, d);
    }
    Ok(out)
}

/// Read the manifests the base check needs for `check` (from [`crate::lineage::to_check`], built
/// `FROM` its parents `from`): each such image's content tag and each parent's (by the digest the
/// probe returned when there is one, so the judged image is the one probed), then only the
/// platform manifests whose layers the judge needs. A platform entry whose annotations say merge
/// verified it on its parent's current entry ([`crate::lineage::verified_by_annotation`]) needs
/// no platform manifest read, nor do its parent's entries; anything else is read in full, as
/// before the annotations existed. Each read once, all at once (the client bounds connections per
/// host); what is unanswered by `deadline` is an error, which builds. Returns one slot per image
/// of the config: `None` when not asked.
///
/// Every read is a manifest GET, which Docker Hub counts as a pull: callers ask only about
/// images that would otherwise be reused, and their parents.
pub async fn read_found(
    reads: &ManifestReads,
    config: &Config,
    hashes: &[ImageHash],
    existence: &[Existence],
    from: &[Vec<usize>],
    check: &[usize],
    deadline: Duration,
) -> Vec<Option<Result<crate::lineage::Found, String>>> {
    let deadline = tokio::time::Instant::now() + deadline;
    let which = crate::lineage::to_read(from, check);
    let mut out: Vec<Option<Result<crate::lineage::Found, String>>> = vec![None; hashes.len()];
    // 1. Every content tag: an index names its platform entries (with merge's annotations).
    let mut set = tokio::task::JoinSet::new();
    for &i in &which {
        let reads = reads.clone();
        let repo = config.images[i].repo.clone();
        let reference = match &existence[i] {
            Existence::Present {
                digest: Some(digest),
            } => digest.clone(),
            _ => hashes[i].tag.clone(),
        };
        set.spawn(async move {
            let read = async {
                let m = reads
                    .get(&repo, &reference)
                    .await
                    .with_context(|| format!("{repo}:{reference}"))?;
                crate::lineage::Found::from_manifest(m)
                    .with_context(|| format!("{repo}:{reference} is not a usable manifest"))
            };
            let r = match tokio::time::timeout_at(deadline, read).await {
                Ok(r) => r.map_err(|e| format!("{e:#}")),
                Err(_) => Err("no answer before the decide deadline".to_string()),
            };
            (i, r)
        });
    }
    while let Some(res) = set.join_next().await {
        if let Ok((i, r)) = res {
            out[i] = Some(r);
        }
    }
    for &i in &which {
        if out[i].is_none() {
            out[i] = Some(Err("the read task failed".into()));
        }
    }
    // 2. The platform manifests the judge needs layers of: each checked image's entries not
    // verified by annotation, and its parents' entries of those platforms.
    let mut need: std::collections::BTreeSet<(usize, usize)> = Default::default();
    for &i in check {
        let Some(Ok(child)) = &out[i] else { continue };
        let mut parents = Vec::new();
        for &p in &from[i] {
            if let Some(Ok(f)) = &out[p] {
                parents.push((config.images[p].name.as_str(), f));
            }
        }
        if parents.len() < from[i].len() {
            // A parent could not be read: the judge says unknown (builds) whatever the layers.
            continue;
        }
        for (k, ci) in child.images.iter().enumerate() {
            if ci.layers.is_some() || crate::lineage::verified_by_annotation(&parents, ci) {
                continue;
            }
            need.insert((i, k));
            for &p in &from[i] {
                let Some(Ok(pf)) = &out[p] else { continue };
                for (pk, pi) in pf.images.iter().enumerate() {
                    let same = match (&pi.platform, &ci.platform) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    };
                    if same && pi.layers.is_none() {
                        need.insert((p, pk));
                    }
                }
            }
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, k) in need {
        let Some(Ok(f)) = &out[i] else { continue };
        let reads = reads.clone();
        let repo = config.images[i].repo.clone();
        let digest = f.images[k].digest.clone();
        set.spawn(async move {
            let read = async {
                let m = reads
                    .get(&repo, &digest)
                    .await
                    .with_context(|| format!("{repo}@{digest}"))?;
                match m.parse()? {
                    skip_registry::manifest::ParsedManifest::Image(img) => Ok(img
                        .layers
                        .iter()
                        .map(|l| l.digest.clone())
                        .collect::<Vec<_>>()),
                    skip_registry::manifest::ParsedManifest::Index(_) => {
                        anyhow::bail!("{repo}@{digest} is a nested index; not supported")
                    }
                }
            };
            let r = match tokio::time::timeout_at(deadline, read).await {
                Ok(r) => r.map_err(|e: anyhow::Error| format!("{e:#}")),
                Err(_) => Err("no answer before the decide deadline".to_string()),
            };
            (i, k, r)
        });
    }
    let mut failed: Vec<(usize, String)> = Vec::new();
    let mut done: Vec<(usize, usize, Vec<String>)> = Vec::new();
    while let Some(res) = set.join_next().await {
        match res {
            Ok((i, k, Ok(layers))) => done.push((i, k, layers)),
            Ok((i, _, Err(e))) => failed.push((i, e)),
            // A task that panicked or was cancelled: its image cannot be judged (builds).
            Err(_) => {}
        }
    }
    for (i, k, layers) in done {
        if let Some(Ok(f)) = &mut out[i] {
            f.images[k].layers = Some(layers);
        }
    }
    for (i, e) in failed {
        out[i] = Some(Err(e));
    }
    out
}

/// With `runners:`: for each image built per platform, the platforms its content tag holds
/// (read from its manifest when present) and, for each platform it lacks, whether the
/// per-platform tag exists (from the repository's `tags/list` when the probe listed it, else a
/// HEAD) and sits on its `FROM` parents (`from`, from [`crate::lineage::from_parents`]). One
/// answer per image (`None` without `runners:`), same order. Images `settled` (every platform
/// builds whatever the registry holds: forced, or the content tag exists or is unknown but the
/// plan builds it) are not asked about: [`crate::fanout::refine`] builds all their platforms
/// without reading the answers. Everything is bounded by `deadline`; what is not answered in
/// time is an error or `Unknown`, which builds.
pub async fn probe_platforms(
    reads: &ManifestReads,
    config: &Config,
    hashes: &[ImageHash],
    probed: &Probed,
    settled: &[bool],
    from: &[Vec<usize>],
    deadline: Duration,
) -> Vec<Option<crate::fanout::PlatformAnswers>> {
    let deadline = tokio::time::Instant::now() + deadline;
    let existence = &probed.existence;
    let mut set = tokio::task::JoinSet::new();
    let mut out: Vec<Option<crate::fanout::PlatformAnswers>> = vec![None; config.images.len()];
    for (i, spec) in config.images.iter().enumerate() {
        if spec.runners.is_empty() {
            continue;
        }
        if settled.get(i).copied().unwrap_or(false) {
            out[i] = Some(crate::fanout::PlatformAnswers::default());
            continue;
        }
        let reads = reads.clone();
        let repo = spec.repo.clone();
        let tag = hashes[i].tag.clone();
        let platforms = spec.platforms.clone();
        let present = matches!(existence[i], Existence::Present { .. });
        // The content tag by the digest the probe saw when it gave one: the same image (and the
        // same read) as the base check's.
        let content_ref = match &existence[i] {
            Existence::Present {
                digest: Some(digest),
            } => digest.clone(),
            _ => tag.clone(),
        };
        let listed = probed.listed.get(spec.repository.as_str()).cloned();
        set.spawn(async move {
            let work = platform_answers(
                &reads,
                &repo,
                (&tag, &content_ref),
                &platforms,
                present,
                listed,
            );
            let a = match tokio::time::timeout_at(deadline, work).await {
                Ok(a) => a,
                Err(_) => crate::fanout::PlatformAnswers {
                    content: present
                        .then(|| Err("no answer before the decide deadline".to_string())),
                    per_platform: platforms
                        .iter()
                        .map(|p| {
                            (
                                p.clone(),
                                Existence::Unknown {
                                    reason: "no answer before the decide deadline".into(),
                                },
                            )
                        })
                        .collect(),
                    stale: Default::default(),
                },
            };
            (i, a)
        });
    }
    while let Some(res) = set.join_next().await {
        if let Ok((i, a)) = res {
            out[i] = Some(a);
        }
    }
    check_platform_lineage(reads, config, hashes, from, settled, &mut out, deadline).await;
    out
}

/// Reuse is verified, not assumed: a per-platform image found by (hash, platform) is reused only
/// if it sits on its `FROM` parents' current image of that platform (the parent's content tag's
/// entry, else the parent's own per-platform image), judged by [`crate::lineage::base_problems`],
/// the judge promote uses. A parent whose image of that platform cannot be found is built in this
/// run, and the child's platform with it (the cascade), so it needs no check here. Anything that
/// cannot be read marks the platform stale: it builds.
async fn check_platform_lineage(
    reads: &ManifestReads,
    config: &Config,
    hashes: &[ImageHash],
    from: &[Vec<usize>],
    settled: &[bool],
    answers: &mut [Option<crate::fanout::PlatformAnswers>],
    deadline: tokio::time::Instant,
) {
    use skip_registry::PlatformKey;
    let mut jobs = Vec::new();
    for (i, spec) in config.images.iter().enumerate() {
        let Some(a) = &answers[i] else { continue };
        let parents = from.get(i).cloned().unwrap_or_default();
        // A settled parent builds every platform in this run, so refine builds every platform
        // of this child too (rule 2 of crate::fanout): nothing to check.
        if parents.is_empty()
            || parents
                .iter()
                .any(|&j| settled.get(j).copied().unwrap_or(false))
        {
            continue;
        }
        for (p, e) in &a.per_platform {
            if !matches!(e, Existence::Present { .. }) {
                continue;
            }
            let Ok(key) = PlatformKey::parse(p) else {
                continue;
            };
            let child_ref = crate::fanout::platform_tag(&hashes[i].tag, p);
            let mut parent_refs = Vec::new();
            for &j in &parents {
                let ps = &config.images[j];
                // Where the parent's current image of this platform is.
                let in_content = match answers.get(j).and_then(|x| x.as_ref()) {
                    Some(pa) => matches!(&pa.content, Some(Ok(held)) if held.contains(&key)),
                    // A parent without runners: its content tag holds every platform.
                    None => true,
                };
                let r = if in_content {
                    hashes[j].tag.clone()
                } else {
                    crate::fanout::platform_tag(&hashes[j].tag, p)
                };
                parent_refs.push((ps.name.clone(), ps.repo.clone(), r));
            }
            jobs.push((i, p.clone(), key, spec.repo.clone(), child_ref, parent_refs));
        }
    }
    let expected: Vec<(usize, String)> = jobs.iter().map(|j| (j.0, j.1.clone())).collect();
    let mut set = tokio::task::JoinSet::new();
    for (i, p, key, repo, child_ref, parent_refs) in jobs {
        let reads = reads.clone();
        set.spawn(async move {
            let work = async {
                let Some(child) = platform_image(&reads, &repo, &child_ref, &key).await? else {
                    return Ok::<Option<String>, anyhow::Error>(Some(format!(
                        "{child_ref} has no {p} image"
                    )));
                };
                let mut parents = Vec::new();
                for (name, prepo, r) in &parent_refs {
                    // Not found: the parent builds this platform now, and the child with it.
                    if let Some(pi) = platform_image(&reads, prepo, r, &key).await? {
                        parents.push((name.clone(), pi));
                    } else {
                        return Ok(None);
                    }
                }
                let found = |pi: &crate::lineage::PlatformImage, m: &skip_registry::Manifest| {
                    crate::lineage::Found {
                        manifest: m.clone(),
                        index: false,
                        images: vec![pi.clone()],
                    }
                };
                let empty = skip_registry::Manifest {
                    bytes: Vec::new(),
                    media_type: String::new(),
                    digest: String::new(),
                };
                let pf: Vec<(String, crate::lineage::Found)> = parents
                    .iter()
                    .map(|(n, pi)| (n.clone(), found(pi, &empty)))
                    .collect();
                let refs: Vec<(&str, &crate::lineage::Found)> =
                    pf.iter().map(|(n, f)| (n.as_str(), f)).collect();
                let problems = crate::lineage::base_problems(&refs, &found(&child, &empty));
                Ok((!problems.is_empty()).then(|| problems.join("; ")))
            };
            let verdict = match tokio::time::timeout_at(deadline, work).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => Some(format!(
                    "could not check its parent ({e:#}); building to be safe"
                )),
                Err(_) => Some("no answer before the decide deadline; building to be safe".into()),
            };
            (i, p, verdict)
        });
    }
    let mut checked = std::collections::HashSet::new();
    while let Some(res) = set.join_next().await {
        // A task that failed to run leaves its platform unchecked: stale below, so it builds.
        let Ok((i, p, verdict)) = res else { continue };
        checked.insert((i, p.clone()));
        if let (Some(why), Some(a)) = (verdict, answers[i].as_mut()) {
            a.stale.insert(p, why);
        }
    }
    for (i, p) in expected {
        if !checked.contains(&(i, p.clone())) {
            if let Some(a) = answers[i].as_mut() {
                a.stale.insert(
                    p,
                    "its parent check did not finish; building to be safe".into(),
                );
            }
        }
    }
}

/// The image of `platform` behind `reference`, with its layers: the reference's own manifest
/// when it is single-platform (a per-platform tag), or its index's entry for the platform.
/// `None` when the reference does not exist or holds no such platform.
async fn platform_image(
    reads: &ManifestReads,
    repo: &RepoRef,
    reference: &str,
    platform: &skip_registry::PlatformKey,
) -> anyhow::Result<Option<crate::lineage::PlatformImage>> {
    use skip_registry::manifest::ParsedManifest;
    let m = match reads.get(repo, reference).await {
        Ok(m) => m,
        Err(e) if skip_registry::ErrorKind::of(&e) == skip_registry::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e.context(format!("reading {reference}"))),
    };
    let (digest, manifest) = match m.parse()? {
        ParsedManifest::Image(im) => (m.digest.clone(), im),
        ParsedManifest::Index(idx) => {
            let Some(d) = idx.manifests.iter().find(|d| {
                !crate::fanout::is_attestation(d)
                    && d.platform
                        .as_ref()
                        .is_some_and(|p| skip_registry::PlatformKey::from_oci(p) == *platform)
            }) else {
                return Ok(None);
            };
            let child = reads
                .get(repo, &d.digest)
                .await
                .with_context(|| format!("reading {reference}'s {platform} image"))?;
            match child.parse()? {
                ParsedManifest::Image(im) => (child.digest.clone(), im),
                ParsedManifest::Index(_) => {
                    anyhow::bail!("{reference}'s {platform} entry is an index")
                }
            }
        }
    };
    Ok(Some(crate::lineage::PlatformImage {
        platform: Some(platform.clone()),
        digest,
        layers: Some(manifest.layers.iter().map(|l| l.digest.clone()).collect()),
        verified_on: Default::default(),
    }))
}

async fn platform_answers(
    reads: &ManifestReads,
    repo: &RepoRef,
    (tag, content_ref): (&str, &str),
    platforms: &[String],
    present: bool,
    listed: Option<Arc<HashSet<String>>>,
) -> crate::fanout::PlatformAnswers {
    use skip_registry::PlatformKey;
    let content = if present {
        Some(
            content_platforms(reads, repo, content_ref)
                .await
                .map_err(|e| format!("{e:#}")),
        )
    } else {
        None
    };
    let held: Vec<PlatformKey> = match &content {
        Some(Ok(ps)) => ps.clone(),
        _ => Vec::new(),
    };
    let lacking: Vec<&String> = platforms
        .iter()
        .filter(|p| !PlatformKey::parse(p).is_ok_and(|k| held.contains(&k)))
        .collect();
    let listed = &listed;
    let probes = lacking.iter().map(|p| async move {
        let t = crate::fanout::platform_tag(tag, p);
        // Listed: the repository's tags/list answers (no digest: the lineage check reads the
        // manifest of any it would reuse, by this tag).
        if let Some(tags) = listed {
            let e = if tags.contains(&t) {
                Existence::Present { digest: None }
            } else {
                Existence::Absent
            };
            return ((*p).clone(), e);
        }
        let e = match reads.client().probe(repo, &t).await {
            Probe::Present { digest, .. } => Existence::Present {
                digest: Some(digest),
            },
            Probe::Absent => Existence::Absent,
            Probe::Unknown { reason } => Existence::Unknown { reason },
        };
        ((*p).clone(), e)
    });
    crate::fanout::PlatformAnswers {
        content,
        per_platform: futures_util::future::join_all(probes)
            .await
            .into_iter()
            .collect(),
        stale: Default::default(),
    }
}

/// The platforms a content tag holds: its index's image entries, or a single-arch manifest's
/// platform from its config blob.
pub async fn content_platforms(
    reads: &ManifestReads,
    repo: &RepoRef,
    tag: &str,
) -> anyhow::Result<Vec<skip_registry::PlatformKey>> {
    let m = reads
        .get(repo, tag)
        .await
        .with_context(|| format!("reading {tag}"))?;
    let found = crate::lineage::Found::from_manifest(m)?;
    if found.index {
        return Ok(found.platforms());
    }
    let parsed = found.manifest.parse()?;
    let cfg = parsed
        .config()
        .context("the manifest has no config descriptor")?;
    let blob = reads
        .client()
        .get_blob(repo, &cfg.digest, 1 << 20)
        .await
        .with_context(|| format!("reading the config blob of {tag}"))?;
    Ok(vec![crate::promote::check::platform_of_config(&blob)?])
}
