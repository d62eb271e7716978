//! The content hash of every image (hash definition v2, documented in the README).
//!
//! Every field is written with a length prefix (or a count for lists) into SHA-256, so no two
//! different inputs can encode to the same bytes — joined strings could (`ab`+`c` vs `a`+`bc`).
//! File contents are hashed once per file on disk, on every core, however many images use them;
//! each distinct selection of a context is then reduced to one digest, and the image keys are
//! computed in dependency order so a parent's full hash folds into its children's.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::config::{Config, FileModes, ImageSpec, Upstream};
use crate::context::walk::{Kind, Tree};
use crate::error::usage;
use crate::inputs::{Discovery, ImageInputs};
use skip_dockerfile::Remote;

/// Version of the hash definition; part of every key, bumped on any change to what is hashed.
/// `tests/golden.rs` pins hashes of fixed trees, so an encoding change cannot slip in unbumped.
pub const HASH_VERSION: u32 = 2;

/// The definition's name in `hash --json`, the plan and the step summary.
pub const HASH_DEFINITION: &str = "v2";

/// Domain separation string at the start of every image key.
const KEY_DOMAIN: &str = "skip-action/image-key";
const TREE_DOMAIN: &str = "skip-action/tree";

/// Options that are not in the config.
#[derive(Debug, Default, Clone)]
pub struct HashOptions {
    /// `{version}` for templates (from `--version` or the pushed git tag).
    pub version: Option<String>,
    /// Digests of outside images, by reference as written, for `upstream: digest`.
    pub upstream_digests: HashMap<String, String>,
    /// Outside images whose digest could not be resolved, with the reason.
    pub upstream_errors: HashMap<String, String>,
}

/// The result for one image.
#[derive(Debug, Clone)]
pub struct ImageHash {
    /// 64 hex digits.
    pub full: String,
    /// The first `hash_length` digits, as used in `{hash}`.
    pub short: String,
    /// The rendered content tag.
    pub tag: String,
    /// `<repository>:<tag>`.
    pub image: String,
    /// Every build arg passed to the build: config args plus parents' image references.
    pub build_args: BTreeMap<String, String>,
    /// Declared ARGs and the value they get (`None` = not passed: the Dockerfile default applies).
    pub declared: BTreeMap<String, Option<String>>,
    /// Digest of the selected context entries, hex.
    pub context_digest: String,
    /// Number of selected context entries.
    pub context_entries: usize,
    /// Parents' names and full hashes.
    pub parents: Vec<(String, String)>,
    /// Outside images and their digests when resolved.
    pub outside: Vec<(String, Option<String>)>,
    /// Why this hash is not the image's real one: an `upstream: digest` image (of this image or
    /// an ancestor) could not be resolved. Decide then treats the image as unknown to the
    /// registry (`on-registry-error`); the hash is computed as if the digest were absent.
    pub unresolved: Option<String>,
}

/// Length-prefixed writer into a SHA-256.
struct Enc(Sha256);

impl Enc {
    fn new(domain: &str) -> Self {
        let mut e = Enc(Sha256::new());
        e.str(domain);
        e.u64(HASH_VERSION as u64);
        e
    }
    fn u64(&mut self, v: u64) {
        self.0.update(v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.update(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.0.update([0u8]),
            Some(s) => {
                self.0.update([1u8]);
                self.str(s);
            }
        }
    }
    fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Lower-case hex, the registry crate's (one encoder for every digest and hash).
pub use skip_registry::manifest::hex;

/// SHA-256 of every file, keyed by path on disk.
pub type FileDigests = HashMap<PathBuf, [u8; 32]>;

/// Hash the given files on all cores.
pub fn digest_files(mut paths: Vec<PathBuf>) -> anyhow::Result<FileDigests> {
    paths.sort();
    paths.dedup();
    paths
        .into_par_iter()
        .map(|p| {
            let d = sha256_file(&p).with_context(|| format!("hashing {}", p.display()))?;
            Ok((p, d))
        })
        .collect()
}

fn sha256_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    // O_NOFOLLOW semantics: the walk recorded a regular file; if it became a link since, refuse
    // rather than read wherever it now points.
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// The mode written for an entry: what reaches the image and does not depend on the runner.
///
/// `0` when the mode does not count: a symlink (its bits mean nothing on Linux), an entry whose
/// own mode the copy does not carry (`mode_counts == false`: a copied directory's root, a file
/// under an octal `--chmod`), or, under `file_modes: git`, a directory or special file (git
/// records no mode for them; the checkout's umask decides). A regular file under `git` is 644 or
/// 755 by its owner-exec bit, as git records it.
pub fn effective_mode(kind: &Kind, mode: u32, mode_counts: bool, modes: FileModes) -> u32 {
    if !mode_counts || matches!(kind, Kind::Symlink(_)) {
        return 0;
    }
    match (modes, kind) {
        (FileModes::Exact, _) => mode & 0o7777,
        (FileModes::Git, Kind::File) => {
            if mode & 0o100 != 0 {
                0o755
            } else {
                0o644
            }
        }
        (FileModes::Git, _) => 0,
    }
}

/// The digest of a set of tree entries: the count, then per entry (in path order) its path, type
/// and what the type carries: the mode and content digest of a file, the mode of a directory or
/// special file, the target of a symlink. `mode_counts` (parallel to `indices`, `None` = all
/// count) says whose own mode reaches the image.
pub fn tree_digest(
    tree: &Tree,
    indices: &[usize],
    mode_counts: Option<&[bool]>,
    modes: FileModes,
    files: &FileDigests,
) -> anyhow::Result<[u8; 32]> {
    let mut e = Enc::new(TREE_DOMAIN);
    e.u64(indices.len() as u64);
    for (n, &i) in indices.iter().enumerate() {
        let entry = &tree.entries[i];
        let counts = mode_counts.is_none_or(|m| m.get(n).copied().unwrap_or(true));
        let mode = effective_mode(&entry.kind, entry.mode, counts, modes) as u64;
        e.str(&entry.path);
        match &entry.kind {
            Kind::File => {
                e.0.update([b'f']);
                e.u64(mode);
                let d = files
                    .get(&tree.disk_path(i))
                    .ok_or_else(|| anyhow::anyhow!("internal: {} was not hashed", entry.path))?;
                e.0.update(d);
            }
            Kind::Dir => {
                e.0.update([b'd']);
                e.u64(mode);
            }
            Kind::Symlink(t) => {
                e.0.update([b'l']);
                e.str(t);
            }
            Kind::Other => {
                e.0.update([b'o']);
                e.u64(mode);
            }
        }
    }
    Ok(e.finish())
}

/// Hash every image of `config` from its discovered inputs.
pub fn compute(
    config: &Config,
    discovery: &Discovery,
    opts: &HashOptions,
) -> anyhow::Result<Vec<ImageHash>> {
    // 1. Every file any image can see, hashed once.
    let mut wanted = Vec::new();
    let mut first_user: Vec<Option<(&ImageInputs, FileModes)>> =
        vec![None; discovery.selection_count];
    for (spec, img) in config.images.iter().zip(&discovery.images) {
        if first_user[img.selection_id].is_none() {
            first_user[img.selection_id] = Some((img, spec.file_modes));
            collect_files(
                &discovery.trees[img.tree],
                &img.selection.indices,
                &mut wanted,
            );
        }
        for x in img.extra.iter().chain(img.generated.iter().map(|(_, t)| t)) {
            let t = &discovery.trees[*x];
            collect_files(t, &t.all_indices(), &mut wanted);
        }
    }
    let started = std::time::Instant::now();
    let n_files = wanted.len();
    let files = digest_files(wanted)?;
    tracing::info!(
        files = n_files,
        unique = files.len(),
        ms = started.elapsed().as_millis() as u64,
        "hashed files"
    );

    // 2. One digest per distinct selection (the selection key includes the file-mode policy).
    let sel_digest: Vec<[u8; 32]> = first_user
        .iter()
        .map(|u| match u {
            Some((img, modes)) => tree_digest(
                &discovery.trees[img.tree],
                &img.selection.indices,
                Some(&img.selection.mode_counts),
                *modes,
                &files,
            ),
            None => Err(anyhow::anyhow!("internal: a selection has no image")),
        })
        .collect::<anyhow::Result<_>>()?;

    // 3. Image keys, parents first (config.images is topologically sorted).
    let mut out: Vec<ImageHash> = Vec::with_capacity(config.images.len());
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, (spec, inputs)) in config.images.iter().zip(&discovery.images).enumerate() {
        let whole_tree = |x: usize| {
            let t = &discovery.trees[x];
            tree_digest(t, &t.all_indices(), None, spec.file_modes, &files)
        };
        let extra = inputs.extra.map(whole_tree).transpose()?;
        let generated = inputs
            .generated
            .iter()
            .map(|(path, x)| Ok((path.clone(), whole_tree(*x)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let parents: Vec<&ImageHash> = spec
            .parents
            .iter()
            .map(|p| &out[by_name[p.name.as_str()]])
            .collect();
        let h = image_hash(
            config,
            spec,
            inputs,
            Digests {
                context: sel_digest[inputs.selection_id],
                inputs: extra,
                generated,
            },
            &parents,
            opts,
        )?;
        by_name.insert(spec.name.as_str(), i);
        out.push(h);
    }
    check_tag_collisions(config, &out)?;
    Ok(out)
}

/// No two images may render the same content tag. Different hashes under one tag (a short-hash
/// collision, or a template that drops `{hash}` digits) would make one image "exist" because the
/// other was pushed: a false skip. Equal hashes (two variants with the same inputs) would be two
/// jobs pushing one tag, and two names promising different images that are one. Refuse both.
pub fn check_tag_collisions(config: &Config, hashes: &[ImageHash]) -> anyhow::Result<()> {
    let mut seen: HashMap<&str, (usize, &str)> = HashMap::with_capacity(hashes.len());
    for (i, h) in hashes.iter().enumerate() {
        if let Some((j, full)) = seen.insert(h.image.as_str(), (i, h.full.as_str())) {
            let (a, b) = (&config.images[j], &config.images[i]);
            return Err(usage(if full != h.full {
                format!(
                    "{}: {} and {} both render the content tag {} but have different hashes; raise `hash_length` or add {{name}}/{{variant}} to `tag`",
                    config.at(&b.keys.tag),
                    a.name,
                    b.name,
                    h.image
                )
            } else {
                format!(
                    "{}: {} and {} render the same content tag {}: they have the same inputs, so two jobs would push one tag. Remove the duplicate, or make them differ (add {{variant}} or {{name}} to `tag` if they are meant as two names of one build)",
                    config.at(&b.keys.tag),
                    a.name,
                    b.name,
                    h.image
                )
            }));
        }
    }
    Ok(())
}

/// Build args that BuildKit honours without an `ARG` line: proxies, `SOURCE_DATE_EPOCH` and
/// `BUILDKIT_*` switches (they can change the image, so when passed they count).
pub fn is_predefined_arg(name: &str) -> bool {
    const PROXIES: [&str; 5] = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "FTP_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
    ];
    PROXIES.iter().any(|p| name.eq_ignore_ascii_case(p))
        || name == "SOURCE_DATE_EPOCH"
        || name.starts_with("BUILDKIT_")
}

fn collect_files(tree: &Tree, indices: &[usize], out: &mut Vec<PathBuf>) {
    for &i in indices {
        if tree.entries[i].kind == Kind::File {
            out.push(tree.disk_path(i));
        }
    }
}

/// The value an ARG is hashed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    /// Not passed: the Dockerfile's default (or the base image's ENV) applies.
    Unset,
    /// Passed as this text.
    Text(String),
    /// The image reference of this parent: hashed as the parent's name and full hash, not as
    /// where it lives, so a registry move, a fork or a mirror keeps every hash.
    Parent { name: String, hash: String },
}

/// The digests of an image's file inputs.
pub struct Digests {
    /// The selected context entries.
    pub context: [u8; 32],
    /// The `inputs:` entries, if the image has any.
    pub inputs: Option<[u8; 32]>,
    /// Each `generated:` path (in config order) and the digest of its declared sources.
    pub generated: Vec<(String, [u8; 32])>,
}

/// Every field of one image's key, in the order the README's "The hash (definition version 2)"
/// lists them; [`KeyFields::encode`] writes them, and nothing else enters the hash.
pub struct KeyFields<'a> {
    pub dockerfile: &'a [u8],
    pub target: Option<&'a str>,
    /// Sorted and deduplicated (the config does that).
    pub platforms: &'a [String],
    /// Declared ARGs (and predefined ones passed), by name.
    pub args: &'a BTreeMap<String, ArgValue>,
    pub digests: &'a Digests,
    /// Parents' names and full hashes, in `from:` order.
    pub parents: &'a [(String, String)],
    /// Outside images and their digests (`upstream: digest`), sorted, deduplicated.
    pub images: &'a [(String, Option<String>)],
    /// `ADD <url>` sources and their `--checksum`, in Dockerfile order.
    pub remotes: &'a [Remote],
}

impl KeyFields<'_> {
    /// The image key: SHA-256 over the length-prefixed fields (README, definition version 2).
    pub fn encode(&self) -> [u8; 32] {
        let mut e = Enc::new(KEY_DOMAIN);
        e.str("dockerfile");
        e.bytes(self.dockerfile);
        e.str("target");
        e.opt(self.target);
        e.str("platforms");
        e.u64(self.platforms.len() as u64);
        for p in self.platforms {
            e.str(p);
        }
        e.str("args");
        e.u64(self.args.len() as u64);
        for (name, value) in self.args {
            e.str(name);
            match value {
                ArgValue::Unset => e.0.update([0u8]),
                ArgValue::Text(t) => {
                    e.0.update([1u8]);
                    e.str(t);
                }
                ArgValue::Parent { name, hash } => {
                    e.0.update([2u8]);
                    e.str(name);
                    e.str(hash);
                }
            }
        }
        e.str("context");
        e.0.update(self.digests.context);
        e.str("inputs");
        match self.digests.inputs {
            None => e.0.update([0u8]),
            Some(d) => {
                e.0.update([1u8]);
                e.0.update(d);
            }
        }
        e.str("generated");
        e.u64(self.digests.generated.len() as u64);
        for (path, d) in &self.digests.generated {
            e.str(path);
            e.0.update(d);
        }
        e.str("parents");
        e.u64(self.parents.len() as u64);
        for (n, h) in self.parents {
            e.str(n);
            e.str(h);
        }
        e.str("images");
        e.u64(self.images.len() as u64);
        for (r, d) in self.images {
            e.str(r);
            e.opt(d.as_deref());
        }
        e.str("remotes");
        e.u64(self.remotes.len() as u64);
        for r in self.remotes {
            e.str(&r.url);
            e.opt(r.checksum.as_deref());
        }
        e.finish()
    }
}

/// Gather one image's key fields, encode them, and render its tag.
fn image_hash(
    config: &Config,
    spec: &ImageSpec,
    inputs: &ImageInputs,
    digests: Digests,
    parent_hashes: &[&ImageHash],
    opts: &HashOptions,
) -> anyhow::Result<ImageHash> {
    let mut build_args = spec.args.clone();
    let mut parents = Vec::new();
    let mut parent_args: HashMap<&str, (String, String)> = HashMap::new();
    for (p, ph) in spec.parents.iter().zip(parent_hashes) {
        build_args.insert(p.arg.clone(), ph.image.clone());
        parents.push((p.name.clone(), ph.full.clone()));
        parent_args.insert(p.arg.as_str(), (p.name.clone(), ph.full.clone()));
    }
    // Declared ARGs, plus args BuildKit reads without a declaration when they are passed.
    let declared: BTreeMap<String, Option<String>> = inputs
        .declared_args
        .iter()
        .map(|a| (a.clone(), build_args.get(a).cloned()))
        .chain(
            build_args
                .iter()
                .filter(|(k, _)| is_predefined_arg(k))
                .map(|(k, v)| (k.clone(), Some(v.clone()))),
        )
        .collect();
    let args: BTreeMap<String, ArgValue> = declared
        .iter()
        .map(|(k, v)| {
            let value = match (parent_args.get(k.as_str()), v) {
                (Some((name, hash)), _) => ArgValue::Parent {
                    name: name.clone(),
                    hash: hash.clone(),
                },
                (None, Some(t)) => ArgValue::Text(t.clone()),
                (None, None) => ArgValue::Unset,
            };
            (k.clone(), value)
        })
        .collect();
    let mut unresolved = parent_hashes
        .iter()
        .zip(&spec.parents)
        .find(|(h, _)| h.unresolved.is_some())
        .map(|(_, p)| format!("its parent {} has an unresolved upstream digest", p.name));
    let mut outside: Vec<(String, Option<String>)> = Vec::new();
    for u in &inputs.outside {
        let digest = match spec.upstream {
            Upstream::Tag => None,
            Upstream::Digest => match opts.upstream_digests.get(&u.reference) {
                Some(d) => Some(d.clone()),
                None => match opts.upstream_errors.get(&u.reference) {
                    Some(reason) => {
                        unresolved.get_or_insert_with(|| {
                            format!("upstream image {}: {reason}", u.reference)
                        });
                        None
                    }
                    None => anyhow::bail!(
                        "image {}: `upstream: digest` needs the digest of {} from its registry, which was not resolved",
                        spec.name,
                        u.reference
                    ),
                },
            },
        };
        outside.push((u.reference.clone(), digest));
    }
    outside.sort();
    outside.dedup();

    let full = hex(&KeyFields {
        dockerfile: &inputs.dockerfile,
        target: spec.target.as_deref(),
        platforms: &spec.platforms,
        args: &args,
        digests: &digests,
        parents: &parents,
        images: &outside,
        remotes: &inputs.remotes,
    }
    .encode());
    let short = full[..config.hash_length].to_string();

    let mut vars = spec.vars.clone();
    vars.insert("hash".into(), short.clone());
    if let Some(v) = &opts.version {
        vars.insert("version".into(), v.clone());
    }
    let tag = spec.tag.render(&vars).map_err(|m| {
        if spec.tag.uses("version") && opts.version.is_none() {
            usage(format!(
                "image {}: tag `{}` uses {{version}}; pass --version (input `version`) or run on a pushed tag",
                spec.name,
                spec.tag.source()
            ))
        } else {
            usage(format!("image {}: {m}", spec.name))
        }
    })?;
    if !crate::config::template::valid_tag(&tag) {
        return Err(usage(format!(
            "image {}: tag renders to `{}`, not a valid OCI tag; check --version",
            spec.name,
            tag.escape_debug()
        )));
    }
    Ok(ImageHash {
        image: format!("{}:{tag}", spec.repository),
        tag,
        short,
        full,
        build_args,
        declared,
        context_digest: hex(&digests.context),
        context_entries: inputs.selection.indices.len(),
        parents,
        outside,
        unresolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefix_separates_fields() {
        let a = {
            let mut e = Enc::new("t");
            e.str("ab");
            e.str("c");
            e.finish()
        };
        let b = {
            let mut e = Enc::new("t");
            e.str("a");
            e.str("bc");
            e.finish()
        };
        assert_ne!(a, b);
    }

    #[test]
    fn unset_differs_from_empty() {
        let a = {
            let mut e = Enc::new("t");
            e.opt(None);
            e.finish()
        };
        let b = {
            let mut e = Enc::new("t");
            e.opt(Some(""));
            e.finish()
        };
        assert_ne!(a, b);
    }

    #[test]
    fn one_tag_with_two_hashes_is_refused() {
        let cfg = Config::parse(
            "version: 1\nrepository: ghcr.io/a/b\nimages:\n  a:\n    tag: '{hash}'\n  b:\n    tag: '{hash}'\n",
            std::path::Path::new("t.yml"),
        )
        .unwrap();
        let h = |full: &str| ImageHash {
            full: full.into(),
            short: full[..12].into(),
            tag: full[..12].into(),
            image: format!("ghcr.io/a/b:{}", &full[..12]),
            build_args: BTreeMap::new(),
            declared: BTreeMap::new(),
            context_digest: String::new(),
            context_entries: 0,
            parents: vec![],
            outside: vec![],
            unresolved: None,
        };
        let same = "0123456789ab".to_string() + &"0".repeat(52);
        let other = "0123456789ab".to_string() + &"1".repeat(52);
        // The same tag with equal hashes is two jobs pushing one tag: refused too.
        let err = check_tag_collisions(&cfg, &[h(&same), h(&same)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a and b") && err.contains("same inputs"),
            "{err}"
        );
        let err = check_tag_collisions(&cfg, &[h(&same), h(&other)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a and b") && err.contains("hash_length"),
            "{err}"
        );
    }

    fn key(args: &BTreeMap<String, ArgValue>) -> String {
        let digests = Digests {
            context: [7; 32],
            inputs: None,
            generated: vec![],
        };
        hex(&KeyFields {
            dockerfile: b"FROM scratch\n",
            target: None,
            platforms: &[],
            args,
            digests: &digests,
            parents: &[],
            images: &[],
            remotes: &[],
        }
        .encode())
    }

    #[test]
    fn a_parent_arg_is_not_its_text_and_the_empty_key_is_pinned() {
        let arg = |v: ArgValue| BTreeMap::from([("BASE_IMAGE".to_string(), v)]);
        let parent = key(&arg(ArgValue::Parent {
            name: "base".into(),
            hash: "ab".into(),
        }));
        assert_ne!(parent, key(&arg(ArgValue::Text("base".into()))));
        assert_ne!(parent, key(&arg(ArgValue::Unset)));
        assert_ne!(
            key(&arg(ArgValue::Unset)),
            key(&arg(ArgValue::Text(String::new())))
        );
        // The minimal v2 key (tests/golden.rs pins whole trees and configs).
        assert_eq!(
            key(&BTreeMap::new()),
            "553ed9be313c3f6ae3103f8ec094472bcdb8b62c958045d04ea232316acf2d7a"
        );
    }

    #[test]
    fn git_modes_keep_only_the_owner_exec_bit() {
        let m = |kind: &Kind, mode, counts, modes| effective_mode(kind, mode, counts, modes);
        assert_eq!(m(&Kind::File, 0o664, true, FileModes::Git), 0o644);
        assert_eq!(m(&Kind::File, 0o775, true, FileModes::Git), 0o755);
        assert_eq!(m(&Kind::File, 0o700, true, FileModes::Git), 0o755);
        assert_eq!(m(&Kind::Dir, 0o775, true, FileModes::Git), 0);
        assert_eq!(m(&Kind::Dir, 0o775, true, FileModes::Exact), 0o775);
        assert_eq!(m(&Kind::File, 0o4755, true, FileModes::Exact), 0o4755);
        assert_eq!(m(&Kind::File, 0o755, false, FileModes::Exact), 0);
        assert_eq!(
            m(&Kind::Symlink("x".into()), 0o777, true, FileModes::Exact),
            0
        );
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
