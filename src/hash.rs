//! The content hash of every image (hash definition v1, documented in the README).
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

use crate::config::{Config, ImageSpec, Upstream};
use crate::context::walk::{Kind, Tree};
use crate::error::usage;
use crate::inputs::{Discovery, ImageInputs};

/// Version of the hash definition; part of every key, bumped on any change to what is hashed.
pub const HASH_VERSION: u32 = 1;

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

pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

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
        .custom_flags(libc_o_nofollow())
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

/// `O_NOFOLLOW` without a libc dependency (same value on x86_64 and aarch64 Linux).
const fn libc_o_nofollow() -> i32 {
    if cfg!(any(target_arch = "aarch64", target_arch = "arm")) {
        0o100000
    } else {
        0o400000
    }
}

/// The digest of a set of tree entries: count, then per entry (in path order) path, type, mode and
/// content digest or link target.
pub fn tree_digest(
    tree: &Tree,
    indices: &[usize],
    files: &FileDigests,
) -> anyhow::Result<[u8; 32]> {
    let mut e = Enc::new(TREE_DOMAIN);
    e.u64(indices.len() as u64);
    for &i in indices {
        let entry = &tree.entries[i];
        e.str(&entry.path);
        e.u64(entry.mode as u64);
        match &entry.kind {
            Kind::File => {
                e.0.update([b'f']);
                let d = files
                    .get(&tree.disk_path(i))
                    .ok_or_else(|| anyhow::anyhow!("internal: {} was not hashed", entry.path))?;
                e.0.update(d);
            }
            Kind::Dir => e.0.update([b'd']),
            Kind::Symlink(t) => {
                e.0.update([b'l']);
                e.str(t);
            }
            Kind::Other => e.0.update([b'o']),
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
    let mut first_user: Vec<Option<&ImageInputs>> = vec![None; discovery.selection_count];
    for img in &discovery.images {
        if first_user[img.selection_id].is_none() {
            first_user[img.selection_id] = Some(img);
            collect_files(
                &discovery.trees[img.tree],
                &img.selection.indices,
                &mut wanted,
            );
        }
        if let Some(x) = img.extra {
            let t = &discovery.trees[x];
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

    // 2. One digest per distinct selection.
    let sel_digest: Vec<[u8; 32]> = first_user
        .iter()
        .map(|img| match img {
            Some(img) => tree_digest(&discovery.trees[img.tree], &img.selection.indices, &files),
            None => Err(anyhow::anyhow!("internal: a selection has no image")),
        })
        .collect::<anyhow::Result<_>>()?;

    // 3. Image keys, parents first (config.images is topologically sorted).
    let mut out: Vec<ImageHash> = Vec::with_capacity(config.images.len());
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, (spec, inputs)) in config.images.iter().zip(&discovery.images).enumerate() {
        let extra = match inputs.extra {
            Some(x) => {
                let t = &discovery.trees[x];
                Some(tree_digest(t, &t.all_indices(), &files)?)
            }
            None => None,
        };
        let h = image_key(
            config,
            spec,
            inputs,
            sel_digest[inputs.selection_id],
            extra,
            &out,
            &by_name,
            opts,
        )?;
        by_name.insert(spec.name.as_str(), i);
        out.push(h);
    }
    check_tag_collisions(config, &out)?;
    Ok(out)
}

/// Two images may render the same content tag only when their full hashes are equal — then every
/// hashed input is equal and they are the same build. Different hashes under one tag (a short-hash
/// collision, or a template that drops `{hash}` digits) would make one image "exist" because the
/// other was pushed: a false skip. Refuse.
pub fn check_tag_collisions(config: &Config, hashes: &[ImageHash]) -> anyhow::Result<()> {
    let mut seen: HashMap<&str, (usize, &str)> = HashMap::with_capacity(hashes.len());
    for (i, h) in hashes.iter().enumerate() {
        if let Some((j, full)) = seen.insert(h.image.as_str(), (i, h.full.as_str())) {
            if full != h.full {
                return Err(usage(format!(
                    "{} and {} both render the content tag {} but have different hashes; raise `hash_length` or add {{name}}/{{variant}} to `tag`",
                    config.images[j].name, config.images[i].name, h.image
                )));
            }
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

#[allow(clippy::too_many_arguments)]
fn image_key(
    config: &Config,
    spec: &ImageSpec,
    inputs: &ImageInputs,
    context: [u8; 32],
    extra: Option<[u8; 32]>,
    done: &[ImageHash],
    by_name: &HashMap<&str, usize>,
    opts: &HashOptions,
) -> anyhow::Result<ImageHash> {
    let mut build_args = spec.args.clone();
    let mut parents = Vec::new();
    for p in &spec.parents {
        let ph = &done[by_name[p.name.as_str()]];
        build_args.insert(p.arg.clone(), ph.image.clone());
        parents.push((p.name.clone(), ph.full.clone()));
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
    let mut outside: Vec<(String, Option<String>)> = Vec::new();
    for u in &inputs.outside {
        let digest = match spec.upstream {
            Upstream::Tag => None,
            Upstream::Digest => Some(opts.upstream_digests.get(&u.reference).cloned().ok_or_else(|| {
                anyhow::anyhow!(
                    "image {}: `upstream: digest` needs the digest of {} from its registry, which was not resolved",
                    spec.name,
                    u.reference
                )
            })?),
        };
        outside.push((u.reference.clone(), digest));
    }
    outside.sort();
    outside.dedup();

    let mut e = Enc::new(KEY_DOMAIN);
    e.str("dockerfile");
    e.bytes(&inputs.dockerfile);
    e.str("target");
    e.opt(spec.target.as_deref());
    e.str("platforms");
    e.u64(spec.platforms.len() as u64);
    for p in &spec.platforms {
        e.str(p);
    }
    e.str("args");
    e.u64(declared.len() as u64);
    for (k, v) in &declared {
        e.str(k);
        e.opt(v.as_deref());
    }
    e.str("context");
    e.0.update(context);
    e.str("inputs");
    match extra {
        None => e.0.update([0u8]),
        Some(d) => {
            e.0.update([1u8]);
            e.0.update(d);
        }
    }
    e.str("parents");
    e.u64(parents.len() as u64);
    for (n, h) in &parents {
        e.str(n);
        e.str(h);
    }
    e.str("images");
    e.u64(outside.len() as u64);
    for (r, d) in &outside {
        e.str(r);
        e.opt(d.as_deref());
    }
    e.str("remotes");
    e.u64(inputs.remotes.len() as u64);
    for r in &inputs.remotes {
        e.str(&r.url);
        e.opt(r.checksum.as_deref());
    }
    let full = hex(&e.finish());
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
        context_digest: hex(&context),
        context_entries: inputs.selection.indices.len(),
        parents,
        outside,
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
        };
        let same = "0123456789ab".to_string() + &"0".repeat(52);
        let other = "0123456789ab".to_string() + &"1".repeat(52);
        assert!(check_tag_collisions(&cfg, &[h(&same), h(&same)]).is_ok());
        let err = check_tag_collisions(&cfg, &[h(&same), h(&other)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a and b") && err.contains("hash_length"),
            "{err}"
        );
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
