//! Turn a [`RawConfig`] into validated, expanded, topologically ordered [`ImageSpec`]s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path};

use skip_registry::RepoRef;

use super::matrix;
use super::schema::{BaseArg, RawConfig, RawPromote};
use super::template::{valid_tag, Template};
use super::{Config, ImageSpec, Parent, PromoteSpec, DEFAULT_HASH_LENGTH};
use crate::error::usage;

/// One expansion of an image: variant name, args layered over the image's args, template vars
/// from the matrix.
type Variant = (
    Option<String>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
);

/// Default build arg that receives the parent's image reference.
pub const DEFAULT_BASE_ARG: &str = "BASE_IMAGE";

/// Upper bound on images of one config, all matrices and variants together (the per-matrix bound
/// alone lets a few lines of YAML ask for millions of images and gigabytes of memory).
pub const MAX_IMAGES: usize = 100_000;

/// Placeholders every template may use besides matrix axes.
const BUILTIN_VARS: [&str; 4] = ["hash", "name", "variant", "version"];

pub(super) fn expand(raw: RawConfig, path: &Path) -> anyhow::Result<Config> {
    let file = path.display().to_string();
    let err = |key: &str, msg: String| usage(format!("{file}: `{key}`: {msg}"));

    if raw.version != 1 {
        return Err(err(
            "version",
            format!(
                "unsupported version {}; this release reads `version: 1`",
                raw.version
            ),
        ));
    }
    let hash_length = raw.hash_length.unwrap_or(DEFAULT_HASH_LENGTH);
    if !(7..=64).contains(&hash_length) {
        return Err(err(
            "hash_length",
            format!("{hash_length} is out of range; use 7 to 64 hex digits (default 12)"),
        ));
    }
    let default_repo = validate_repository(&raw.repository).map_err(|m| err("repository", m))?;
    if raw.images.is_empty() {
        return Err(err("images", "no images defined; add at least one".into()));
    }
    let default_platforms = raw.platforms.clone().unwrap_or_default();

    // Pass 1: expand every raw image into specs (parents still as written, maybe templated).
    let mut specs: Vec<(ImageSpec, Vec<String>, Option<BaseArg>)> = Vec::new();
    for (key, img) in &raw.images {
        let at = |sub: &str| format!("images.{key}.{sub}");
        if !valid_image_key(key) {
            return Err(err(
                &format!("images.{key}"),
                "image names use lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit".into(),
            ));
        }
        let dockerfile = img
            .dockerfile
            .clone()
            .unwrap_or_else(|| "Dockerfile".into());
        check_rel_path(&dockerfile).map_err(|m| err(&at("dockerfile"), m))?;
        let context = img.context.clone().unwrap_or_else(|| ".".into());
        check_rel_path(&context).map_err(|m| err(&at("context"), m))?;
        for (i, g) in img.inputs.iter().enumerate() {
            check_rel_path(g).map_err(|m| err(&format!("images.{key}.inputs[{i}]"), m))?;
            glob::Pattern::new(g).map_err(|e| {
                err(
                    &format!("images.{key}.inputs[{i}]"),
                    format!("bad glob `{g}`: {e}"),
                )
            })?;
        }
        let mut generated = Vec::with_capacity(img.generated.len());
        for (path, globs) in &img.generated {
            let k = format!("images.{key}.generated.{path}");
            check_rel_path(path).map_err(|m| err(&k, m))?;
            if globs.is_empty() {
                return Err(err(
                    &k,
                    "lists no sources; name the globs the generated path is built from, e.g. [\"src/**\", \"go.mod\"]".into(),
                ));
            }
            for (i, g) in globs.iter().enumerate() {
                let k = format!("{k}[{i}]");
                check_rel_path(g).map_err(|m| err(&k, m))?;
                glob::Pattern::new(g).map_err(|e| err(&k, format!("bad glob `{g}`: {e}")))?;
            }
            let clean: Vec<&str> = path
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            generated.push((clean.join("/"), globs.clone()));
        }
        let repository = img
            .repository
            .clone()
            .unwrap_or_else(|| raw.repository.clone());
        let repo = match &img.repository {
            Some(r) => validate_repository(r).map_err(|m| err(&at("repository"), m))?,
            None => default_repo.clone(),
        };
        let mut platforms = img
            .platforms
            .clone()
            .unwrap_or_else(|| default_platforms.clone());
        for p in &platforms {
            validate_platform(p).map_err(|m| err(&at("platforms"), m))?;
        }
        platforms.sort();
        platforms.dedup();
        if let Some(t) = &img.target {
            if t.trim().is_empty() {
                return Err(err(
                    &at("target"),
                    "empty target; remove the key or name a stage".into(),
                ));
            }
        }

        let base_args: BTreeMap<String, String> = img
            .args
            .iter()
            .map(|(k, v)| {
                Ok((
                    checked_arg_name(k).map_err(|m| err(&at("args"), m))?,
                    v.to_text(),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let from = img.from.clone().map(|f| f.into_vec()).unwrap_or_default();

        let mut variants: Vec<Variant> = Vec::new();
        match (&img.variants, &img.matrix) {
            (Some(_), Some(_)) => {
                return Err(err(
                    &format!("images.{key}"),
                    "use either `variants` or `matrix`, not both".into(),
                ))
            }
            (Some(vs), None) => {
                if vs.is_empty() {
                    return Err(err(
                        &at("variants"),
                        "empty; remove it or add variants".into(),
                    ));
                }
                for (vname, vargs) in vs {
                    let mut args = base_args.clone();
                    for (k, v) in vargs {
                        let k = checked_arg_name(k)
                            .map_err(|m| err(&format!("images.{key}.variants.{vname}"), m))?;
                        args.insert(k, v.to_text());
                    }
                    variants.push((Some(vname.clone()), args, BTreeMap::new()));
                }
            }
            (None, Some(m)) => {
                let ex = matrix::expand(m).map_err(|e| err(&at("matrix"), e))?;
                for combo in &ex.combos {
                    let vname = matrix::variant_name(&ex.axes, combo);
                    let mut args = base_args.clone();
                    let mut vars = BTreeMap::new();
                    for (k, v) in combo {
                        if BUILTIN_VARS.contains(&k.as_str()) {
                            return Err(err(
                                &at("matrix"),
                                format!("`{k}` is a reserved placeholder name; rename the axis"),
                            ));
                        }
                        args.insert(
                            checked_arg_name(k).map_err(|m| err(&at("matrix"), m))?,
                            v.clone(),
                        );
                        vars.insert(k.clone(), v.clone());
                    }
                    variants.push((Some(vname), args, vars));
                }
            }
            (None, None) => variants.push((None, base_args.clone(), BTreeMap::new())),
        }
        let has_variants = variants[0].0.is_some();
        if specs.len() + variants.len() > MAX_IMAGES {
            return Err(err(
                &format!("images.{key}"),
                format!("the config expands to more than {MAX_IMAGES} images; split it into several configs"),
            ));
        }

        let tag_src = img.tag.clone().unwrap_or_else(|| {
            if has_variants {
                "{name}-{variant}-{hash}".into()
            } else {
                "{name}-{hash}".into()
            }
        });
        let tag = Template::parse(&tag_src).map_err(|m| err(&at("tag"), m))?;
        if !tag.uses("hash") {
            return Err(err(
                &at("tag"),
                format!("`{tag_src}` has no {{hash}}; a content tag without the hash would never change, so changed images would be skipped. Add {{hash}}, e.g. `{tag_src}-{{hash}}`"),
            ));
        }
        let promote = img
            .promote
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (t, repo) = match p {
                    RawPromote::Tag(t) => (t.clone(), None),
                    RawPromote::Full(f) => (f.tag.clone(), f.repository.clone()),
                };
                let k = format!("images.{key}.promote[{i}]");
                let parsed = match &repo {
                    Some(r) => Some(validate_repository(r).map_err(|m| err(&k, m))?),
                    None => None,
                };
                Ok(PromoteSpec {
                    tag: Template::parse(&t).map_err(|m| err(&k, m))?,
                    repository: repo,
                    repo: parsed,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        for (variant, args, mvars) in variants {
            let name = match &variant {
                Some(v) => {
                    if v.is_empty()
                        || v.contains('/')
                        || v.chars().any(|c| c.is_whitespace() || c.is_control())
                    {
                        return Err(err(
                            &format!("images.{key}"),
                            format!("variant name `{}` must be non-empty with no `/`, spaces or control characters", v.escape_debug()),
                        ));
                    }
                    format!("{key}/{v}")
                }
                None => key.clone(),
            };
            let mut vars = mvars;
            vars.insert("name".into(), key.clone());
            if let Some(v) = &variant {
                vars.insert("variant".into(), v.clone());
            }
            // Every template must render with the known variables, a dummy hash and version.
            let mut probe = vars.clone();
            probe.insert("hash".into(), "0".repeat(hash_length));
            probe.insert("version".into(), "0.0.0".into());
            let rendered = tag.render(&probe).map_err(|m| err(&at("tag"), m))?;
            if !valid_tag(&rendered) {
                return Err(err(&at("tag"), format!("renders to `{}` for {name}, which is not a valid OCI tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)", rendered.escape_debug())));
            }
            for (i, p) in promote.iter().enumerate() {
                let k = format!("images.{key}.promote[{i}]");
                let r = p.tag.render(&probe).map_err(|m| err(&k, m))?;
                if !valid_tag(&r) {
                    return Err(err(
                        &k,
                        format!(
                            "renders to `{}` for {name}, which is not a valid OCI tag",
                            r.escape_debug()
                        ),
                    ));
                }
            }
            let parents_src = from
                .iter()
                .map(|f| {
                    Template::parse(f)
                        .and_then(|t| t.render(&vars))
                        .map_err(|m| err(&at("from"), m))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            specs.push((
                ImageSpec {
                    name,
                    image: key.clone(),
                    variant,
                    dockerfile: dockerfile.clone(),
                    context: context.clone(),
                    repository: repository.clone(),
                    repo: repo.clone(),
                    tag: tag.clone(),
                    promote: promote.clone(),
                    args,
                    parents: Vec::new(),
                    target: img.target.clone(),
                    platforms: platforms.clone(),
                    inputs: img.inputs.clone(),
                    scope: img.context_scope.unwrap_or_default(),
                    upstream: img.upstream.unwrap_or_default(),
                    file_modes: img.file_modes.or(raw.file_modes).unwrap_or_default(),
                    generated: generated.clone(),
                    vars,
                    level: 0,
                },
                parents_src,
                img.base_arg.clone(),
            ));
        }
    }

    // Pass 2: resolve parents and their build args.
    let index: HashMap<String, usize> = specs
        .iter()
        .enumerate()
        .map(|(i, (s, _, _))| (s.name.clone(), i))
        .collect();
    let variants_of = |key: &str| -> Vec<String> {
        specs
            .iter()
            .filter(|(s, _, _)| s.image == key && s.variant.is_some())
            .map(|(s, _, _)| s.name.clone())
            .take(5)
            .collect()
    };
    let mut resolved: Vec<Vec<Parent>> = Vec::with_capacity(specs.len());
    for (spec, parents_src, base_arg) in &specs {
        let at = format!("images.{}.from", spec.image);
        let mut parents = Vec::new();
        let mut seen_args = BTreeSet::new();
        for p in parents_src {
            if !index.contains_key(p) {
                let vs = variants_of(p);
                let hint = if !vs.is_empty() {
                    format!("`{p}` has variants; name one ({}) or use a template such as `{p}/{{variant}}`", vs.join(", "))
                } else {
                    format!("define an image `{p}` or fix the name")
                };
                return Err(err(
                    &at,
                    format!("{}: parent `{p}` does not exist; {hint}", spec.name),
                ));
            }
            if p == &spec.name {
                return Err(err(&at, format!("{} names itself as parent", spec.name)));
            }
            let parent_key = p.split('/').next().unwrap_or(p);
            let arg = match base_arg {
                None if parents_src.len() == 1 => DEFAULT_BASE_ARG.to_string(),
                None => default_parent_arg(parent_key),
                Some(BaseArg::One(a)) if parents_src.len() == 1 => a.clone(),
                Some(BaseArg::One(_)) => {
                    return Err(err(
                        &format!("images.{}.base_arg", spec.image),
                        "several parents need one arg each: `base_arg: {parent: ARG_NAME, …}`"
                            .into(),
                    ))
                }
                Some(BaseArg::PerParent(m)) => m
                    .get(p)
                    .or_else(|| m.get(parent_key))
                    .cloned()
                    .unwrap_or_else(|| default_parent_arg(parent_key)),
            };
            let arg = checked_arg_name(&arg)
                .map_err(|m| err(&format!("images.{}.base_arg", spec.image), m))?;
            if !seen_args.insert(arg.clone()) {
                return Err(err(
                    &format!("images.{}.base_arg", spec.image),
                    format!("two parents of {} would share build arg {arg}; give each its own with `base_arg: {{parent: ARG}}`", spec.name),
                ));
            }
            if spec.args.contains_key(&arg) {
                return Err(err(
                    &format!("images.{}.args", spec.image),
                    format!("`{arg}` is set by skip-action to the parent's image reference; remove it from args or rename base_arg"),
                ));
            }
            parents.push(Parent {
                name: p.clone(),
                arg,
            });
        }
        resolved.push(parents);
    }
    let mut images: Vec<ImageSpec> = specs
        .into_iter()
        .zip(resolved)
        .map(|((mut s, _, _), parents)| {
            s.parents = parents;
            s
        })
        .collect();

    let images = topo_sort(&mut images).map_err(|m| err("images", m))?;
    Ok(Config {
        path: path.to_path_buf(),
        hash_length,
        insecure_registries: raw.insecure_registries,
        images,
    })
}

fn default_parent_arg(parent_key: &str) -> String {
    let mut s: String = parent_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    s.push_str("_IMAGE");
    s
}

/// Parents first, config order otherwise (Kahn's algorithm with a stable queue); a cycle is named.
fn topo_sort(images: &mut [ImageSpec]) -> Result<Vec<ImageSpec>, String> {
    let index: HashMap<&str, usize> = images
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let n = images.len();
    let mut indegree = vec![0usize; n];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in images.iter().enumerate() {
        for p in &s.parents {
            let pi = index[p.name.as_str()];
            indegree[i] += 1;
            children[pi].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|i| indegree[*i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    let mut level = vec![0usize; n];
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &c in &children[i] {
            level[c] = level[c].max(level[i] + 1);
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.insert(c);
            }
        }
    }
    if order.len() != n {
        // Walk parent links from any unsorted image until a name repeats: that is the cycle.
        let start = (0..n).find(|i| indegree[*i] > 0).unwrap_or(0);
        let mut path = vec![start];
        let mut cur = start;
        loop {
            let next = images[cur]
                .parents
                .iter()
                .map(|p| index[p.name.as_str()])
                .find(|pi| indegree[*pi] > 0)
                .unwrap_or(start);
            if let Some(pos) = path.iter().position(|x| *x == next) {
                let cycle: Vec<&str> = path[pos..]
                    .iter()
                    .chain(std::iter::once(&next))
                    .map(|i| images[*i].name.as_str())
                    .collect();
                return Err(format!(
                    "parent cycle: {}; an image cannot be built FROM itself, directly or through others",
                    cycle.join(" -> ")
                ));
            }
            path.push(next);
            cur = next;
        }
    }
    let mut out: Vec<Option<ImageSpec>> = images.iter().cloned().map(Some).collect();
    Ok(order
        .into_iter()
        .filter_map(|i| {
            let mut s = out[i].take()?;
            s.level = level[i];
            Some(s)
        })
        .collect())
}

fn valid_image_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

fn checked_arg_name(k: &str) -> Result<String, String> {
    let ok = !k.is_empty()
        && !k.as_bytes()[0].is_ascii_digit()
        && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if ok {
        Ok(k.to_string())
    } else {
        Err(format!(
            "`{}` is not a valid build arg name (letters, digits and `_`, not starting with a digit)",
            k.escape_debug()
        ))
    }
}

/// Paths in the config are relative to the working directory and stay inside it.
fn check_rel_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.contains('\0') || p.contains('\n') {
        return Err("path contains a NUL or newline".into());
    }
    let path = Path::new(p);
    let mut depth: i64 = 0;
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => {
                return Err(format!(
                    "`{p}` is absolute; paths are relative to the repository root"
                ))
            }
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!(
                        "`{p}` leaves the repository root; keep paths inside the checkout"
                    ));
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
        }
    }
    Ok(())
}

/// `os/arch[/variant]`, lower-case: the registry crate's grammar, the one every later
/// comparison parses with.
fn validate_platform(p: &str) -> Result<(), String> {
    skip_registry::platform::validate_platform(p)
}

/// A repository reference without tag, `[host[:port]/]path`, parsed with the registry client's
/// own grammar ([`RepoRef::parse`]: docker's reference rules, OCI path components, ports up to
/// 65535, `[v6]` hosts), so a name the client would refuse later fails here, with exit 2, instead
/// of showing up as "registry error: building to be safe". Returns the parsed value, the one
/// every later stage uses.
pub fn validate_repository(r: &str) -> Result<RepoRef, String> {
    let hint = "write it like ghcr.io/owner/name or registry.example.com:5000/team/app (lower case, no tag)";
    if r.is_empty() {
        return Err(format!("empty repository; {hint}"));
    }
    if r.len() > 255 {
        return Err(format!("repository is longer than 255 characters; {hint}"));
    }
    // The client trims; the config must not carry whitespace into image references.
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` contains whitespace; {hint}",
            r.escape_debug()
        ));
    }
    if r.contains('@') || r.rsplit('/').next().is_some_and(|last| last.contains(':')) {
        return Err(format!("`{r}` has a tag or digest; {hint}"));
    }
    RepoRef::parse(r).map_err(|e| format!("{e:#}; {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar() {
        for ok in [
            "ghcr.io/acme/devbox",
            "localhost:5000/x",
            "127.0.0.1:5000/a/b",
            "docker.io/library/ubuntu",
            "acme/devbox",
            "a__b/c-d.e",
            "[::1]:5000/acme/x",
        ] {
            assert!(validate_repository(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ghcr.io/Acme/devbox",
            "ghcr.io/acme/devbox:tag",
            "ghcr.io/acme/devbox@sha256:00",
            "ghcr.io/-a",
            "ghcr.io/a-",
            "ghcr.io/a___b",
            "ghcr.io//a",
            "host:99999999/a",
            "a b",
            "localhost:99999/acme/x",
            "-bad-.example.com/acme/x",
            " ghcr.io/acme/x",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rel_paths_stay_inside() {
        assert!(check_rel_path("a/b").is_ok());
        assert!(check_rel_path("a/../b").is_ok());
        assert!(check_rel_path("./x").is_ok());
        assert!(check_rel_path("../x").is_err());
        assert!(check_rel_path("a/../../x").is_err());
        assert!(check_rel_path("/etc").is_err());
        assert!(check_rel_path("").is_err());
    }

    #[test]
    fn platforms() {
        assert!(validate_platform("linux/amd64").is_ok());
        assert!(validate_platform("linux/arm64/v8").is_ok());
        assert!(validate_platform("linux").is_err());
        assert!(validate_platform("Linux/amd64").is_err());
        assert!(validate_platform("linux//amd64").is_err());
    }
}
