//! Step 1: the keys as written — top level, `defaults:`, and each image's keys over the defaults.
//!
//! Only what can be judged before variants exist is judged here: names, paths that are not
//! templates, globs, platforms. Templated paths and repositories are checked once rendered
//! ([`super::templates`]).

use std::collections::BTreeMap;
use std::path::{Component, Path};

use indexmap::IndexMap;
use skip_registry::RepoRef;

use super::{Ctx, BUILTIN_VARS};
use crate::config::locate::KeyPath;
use crate::config::schema::{BaseArg, RawConfig, RawDefaults, RawImage, RawPromote, Scalar};
use crate::config::template::Template;
use crate::config::{
    ArgOrigin, ContextScope, FileModes, PromoteSpec, Upstream, DEFAULT_HASH_LENGTH,
};

/// A value and the key it was written at (the image's own, or `defaults.…`).
#[derive(Debug, Clone)]
pub(super) struct Located<T> {
    pub value: T,
    pub key: KeyPath,
}

/// A build arg's value and where it was set.
#[derive(Debug, Clone)]
pub(super) struct Arg {
    pub value: String,
    pub origin: ArgOrigin,
}

/// One image's keys after `defaults:` are applied, before its variants are expanded.
pub(super) struct Common {
    pub dockerfile: Located<Template>,
    pub context: Located<Template>,
    pub repository: Located<Template>,
    /// `repository` parsed, when it is not a template.
    pub repo: Option<RepoRef>,
    pub tag: Located<Template>,
    pub promote: Vec<PromoteSpec>,
    pub target: Option<String>,
    pub platforms: Vec<String>,
    /// Platform → runner label (`runners:`); empty without.
    pub runners: BTreeMap<String, String>,
    pub inputs: Located<Vec<String>>,
    pub scope: ContextScope,
    pub upstream: Upstream,
    pub file_modes: FileModes,
    /// Generated context paths (cleaned) and the globs of their sources.
    pub generated: Vec<(String, Vec<String>)>,
    pub args: BTreeMap<String, Arg>,
    pub vars: BTreeMap<String, String>,
    pub from: Vec<String>,
    pub from_key: KeyPath,
    pub base_arg: Option<Located<BaseArg>>,
}

/// `version`, `hash_length`, `repository` (when it is not a template), `images` not empty.
/// Returns the hash length.
pub(super) fn top_level(raw: &RawConfig, cx: &Ctx) -> anyhow::Result<usize> {
    if raw.version != 1 {
        return Err(cx.err(
            &KeyPath::root("version"),
            format!(
                "unsupported version {}; this release reads `version: 1`",
                raw.version
            ),
        ));
    }
    let hash_length = raw.hash_length.unwrap_or(DEFAULT_HASH_LENGTH);
    if !(7..=64).contains(&hash_length) {
        return Err(cx.err(
            &KeyPath::root("hash_length"),
            format!("{hash_length} is out of range; use 7 to 64 hex digits (default 12)"),
        ));
    }
    let repo = KeyPath::root("repository");
    let t = Template::parse(&raw.repository).map_err(|m| cx.err(&repo, m))?;
    if t.vars().next().is_none() {
        validate_repository(&raw.repository).map_err(|m| cx.err(&repo, m))?;
    }
    if raw.images.is_empty() {
        return Err(cx.err(
            &KeyPath::root("images"),
            "no images defined; add at least one",
        ));
    }
    Ok(hash_length)
}

/// The `defaults:` block on its own: arg and var names, paths and globs that are not templates.
pub(super) fn defaults(d: &RawDefaults, cx: &Ctx) -> anyhow::Result<()> {
    let at = KeyPath::root("defaults");
    for k in d.args.keys() {
        checked_arg_name(k).map_err(|m| cx.err(&at.key("args").key(k), m))?;
    }
    for k in d.vars.keys() {
        check_var_name(k).map_err(|m| cx.err(&at.key("vars").key(k), m))?;
    }
    if let Some(inputs) = &d.inputs {
        check_globs(inputs, &at.key("inputs"), cx)?;
    }
    Ok(())
}

/// An image's own value of a key, else the one in `defaults:`, with the key it was written at.
fn layered<T: Clone>(
    own: &Option<T>,
    def: &Option<T>,
    key: &str,
    name: &str,
) -> Option<Located<T>> {
    match (own, def) {
        (Some(v), _) => Some(Located {
            value: v.clone(),
            key: KeyPath::image(key).key(name),
        }),
        (None, Some(v)) => Some(Located {
            value: v.clone(),
            key: KeyPath::root("defaults").key(name),
        }),
        (None, None) => None,
    }
}

/// One image's keys merged over `defaults:`. Args set on the image must be declared by its
/// Dockerfile; args from `defaults:` are offered only.
pub(super) fn image(
    key: &str,
    img: &RawImage,
    d: &RawDefaults,
    raw: &RawConfig,
    cx: &Ctx,
) -> anyhow::Result<Common> {
    let here = KeyPath::image(key);
    if !valid_image_key(key) {
        return Err(cx.err(
            &here,
            "image names use lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit",
        ));
    }
    // A path template: checked now when it has no placeholders, else once rendered.
    let path = |name: &str, own: &Option<String>, def: &Option<String>, builtin: &str| {
        let l = layered(own, def, key, name).unwrap_or_else(|| Located {
            value: builtin.to_string(),
            key: here.key(name),
        });
        let value = Template::parse(&l.value).map_err(|m| cx.err(&l.key, m))?;
        if value.vars().next().is_none() {
            check_rel_path(&l.value).map_err(|m| cx.err(&l.key, m))?;
        }
        anyhow::Ok(Located { value, key: l.key })
    };
    let dockerfile = path("dockerfile", &img.dockerfile, &d.dockerfile, "Dockerfile")?;
    let context = path("context", &img.context, &d.context, ".")?;

    let inputs = layered(&img.inputs, &d.inputs, key, "inputs").unwrap_or_else(|| Located {
        value: Vec::new(),
        key: here.key("inputs"),
    });
    if img.inputs.is_some() {
        check_globs(&inputs.value, &inputs.key, cx)?;
    }

    let repository = match &img.repository {
        Some(r) => (r.clone(), here.key("repository")),
        None => (raw.repository.clone(), KeyPath::root("repository")),
    };
    let repository = Located {
        value: Template::parse(&repository.0).map_err(|m| cx.err(&repository.1, m))?,
        key: repository.1,
    };
    // Parsed once here unless it is a template (then once per image, rendered).
    let repo = if repository.value.vars().next().is_none() {
        Some(
            validate_repository(repository.value.source())
                .map_err(|m| cx.err(&repository.key, m))?,
        )
    } else {
        None
    };

    let mut platforms = img
        .platforms
        .clone()
        .or_else(|| raw.platforms.clone())
        .unwrap_or_default();
    for p in &platforms {
        validate_platform(p).map_err(|m| cx.err(&here.key("platforms"), m))?;
    }
    platforms.sort();
    platforms.dedup();
    let runners = runners_for(&platforms, img.runners.as_ref(), raw.runners.as_ref(), key)
        .map_err(|(k, m)| cx.err(&k, m))?;
    let target = img.target.clone().or_else(|| d.target.clone());
    if target.as_ref().is_some_and(|t| t.trim().is_empty()) {
        return Err(cx.err(
            &here.key("target"),
            "empty target; remove the key or name a stage",
        ));
    }

    let (args, vars) = args_and_vars(key, img, d, cx)?;
    let promote = match layered(&img.promote, &d.promote, key, "promote") {
        Some(p) => promote_specs(&p.value, &p.key, cx)?,
        None => Vec::new(),
    };
    Ok(Common {
        dockerfile,
        context,
        repository,
        repo,
        tag: content_tag(key, img, d, cx)?,
        promote,
        target,
        platforms,
        runners,
        inputs,
        scope: img.context_scope.or(d.context_scope).unwrap_or_default(),
        upstream: img.upstream.or(d.upstream).unwrap_or_default(),
        file_modes: img.file_modes.or(raw.file_modes).unwrap_or_default(),
        generated: generated(key, img, cx)?,
        args,
        vars,
        from: img.from.clone().map(|f| f.into_vec()).unwrap_or_default(),
        from_key: here.key("from"),
        base_arg: layered(&img.base_arg, &d.base_arg, key, "base_arg"),
    })
}

/// Build args (`defaults:` offered, the image's own required) and vars (the image's over
/// `defaults:`).
fn args_and_vars(
    key: &str,
    img: &RawImage,
    d: &RawDefaults,
    cx: &Ctx,
) -> anyhow::Result<(BTreeMap<String, Arg>, BTreeMap<String, String>)> {
    let here = KeyPath::image(key);
    let arg = |v: &Scalar, key: KeyPath, required: bool| Arg {
        value: v.to_text(),
        origin: ArgOrigin { key, required },
    };
    let mut args = BTreeMap::new();
    for (k, v) in &d.args {
        args.insert(
            k.clone(),
            arg(v, KeyPath::root("defaults").key("args").key(k), false),
        );
    }
    for (k, v) in &img.args {
        let at = here.key("args").key(k);
        checked_arg_name(k).map_err(|m| cx.err(&at, m))?;
        args.insert(k.clone(), arg(v, at, true));
    }
    let mut vars = vars_text(&d.vars);
    for (k, v) in vars_text(&img.vars) {
        check_var_name(&k).map_err(|m| cx.err(&here.key("vars").key(&k), m))?;
        vars.insert(k, v);
    }
    Ok((args, vars))
}

/// The content tag template: the image's, `defaults:`'s, or the built-in one; it must contain
/// `{hash}`, or a changed image would keep its tag and be skipped.
fn content_tag(
    key: &str,
    img: &RawImage,
    d: &RawDefaults,
    cx: &Ctx,
) -> anyhow::Result<Located<Template>> {
    let builtin = if img.variants.is_some() || img.matrix.is_some() {
        "{name}-{variant}-{hash}"
    } else {
        "{name}-{hash}"
    };
    let l = layered(&img.tag, &d.tag, key, "tag").unwrap_or_else(|| Located {
        value: builtin.to_string(),
        key: KeyPath::image(key).key("tag"),
    });
    let src = &l.value;
    let tag = Template::parse(src).map_err(|m| cx.err(&l.key, m))?;
    if !tag.uses("hash") {
        return Err(cx.err(
            &l.key,
            format!("`{src}` has no {{hash}}; a content tag without the hash would never change, so changed images would be skipped. Add {{hash}}, e.g. `{src}-{{hash}}`"),
        ));
    }
    Ok(Located {
        value: tag,
        key: l.key,
    })
}

/// `generated:` paths (cleaned) with the globs of their sources; each needs at least one.
fn generated(key: &str, img: &RawImage, cx: &Ctx) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::with_capacity(img.generated.len());
    for (path, globs) in &img.generated {
        let k = KeyPath::image(key).key("generated").key(path);
        check_rel_path(path).map_err(|m| cx.err(&k, m))?;
        if globs.is_empty() {
            return Err(cx.err(
                &k,
                "lists no sources; name the globs the generated path is built from, e.g. [\"src/**\", \"go.mod\"]",
            ));
        }
        check_globs(globs, &k, cx)?;
        let clean: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        out.push((clean.join("/"), globs.clone()));
    }
    Ok(out)
}

/// `promote:` entries parsed, each with its key for messages.
pub(super) fn promote_specs(
    list: &[RawPromote],
    at: &KeyPath,
    cx: &Ctx,
) -> anyhow::Result<Vec<PromoteSpec>> {
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let (t, repo) = match p {
                RawPromote::Tag(t) => (t.clone(), None),
                RawPromote::Full(f) => (f.tag.clone(), f.repository.clone()),
            };
            let key = at.index(i);
            let parsed = match &repo {
                Some(r) => Some(validate_repository(r).map_err(|m| cx.err(&key, m))?),
                None => None,
            };
            Ok(PromoteSpec {
                tag: Template::parse(&t).map_err(|m| cx.err(&key, m))?,
                repository: repo,
                repo: parsed,
                key,
            })
        })
        .collect()
}

/// `vars:` values as text; `null` (a key with nothing after it) is the empty string.
pub(super) fn vars_text(
    raw: &indexmap::IndexMap<String, Option<Scalar>>,
) -> BTreeMap<String, String> {
    raw.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_ref().map(Scalar::to_text).unwrap_or_default(),
            )
        })
        .collect()
}

fn check_globs(globs: &[String], at: &KeyPath, cx: &Ctx) -> anyhow::Result<()> {
    for (i, g) in globs.iter().enumerate() {
        let key = at.index(i);
        check_rel_path(g).map_err(|m| cx.err(&key, m))?;
        glob::Pattern::new(g).map_err(|e| cx.err(&key, format!("bad glob `{g}`: {e}")))?;
    }
    Ok(())
}

/// A var is a template placeholder: letters, digits, `_` and `-`, and not a built-in one.
pub(super) fn check_var_name(k: &str) -> Result<(), String> {
    if k.is_empty()
        || !k
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        return Err(format!(
            "`{}` is not a valid var name (letters, digits, `_` and `-`)",
            k.escape_debug()
        ));
    }
    if BUILTIN_VARS.contains(&k) {
        return Err(format!("`{{{k}}}` is set by skip-action; rename the var"));
    }
    Ok(())
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

pub(super) fn checked_arg_name(k: &str) -> Result<String, String> {
    if is_arg_name(k) {
        Ok(k.to_string())
    } else {
        Err(format!(
            "`{}` is not a valid build arg name (letters, digits and `_`, not starting with a digit)",
            k.escape_debug()
        ))
    }
}

/// Letters, digits and `_`, not starting with a digit.
pub(super) fn is_arg_name(k: &str) -> bool {
    !k.is_empty()
        && !k.as_bytes()[0].is_ascii_digit()
        && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Paths in the config are relative to the working directory and stay inside it.
pub(super) fn check_rel_path(p: &str) -> Result<(), String> {
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

/// The runner label of each of an image's platforms: the image's own `runners:` over the
/// top-level one, per platform. Either every platform has a runner or none does: a platform
/// without one would be silently dropped from the per-platform matrix and `merge` would refuse
/// the image, so it is refused here, naming the platforms and the key. Errors are (key, message).
fn runners_for(
    platforms: &[String],
    own: Option<&IndexMap<String, String>>,
    top: Option<&IndexMap<String, String>>,
    key: &str,
) -> Result<BTreeMap<String, String>, (KeyPath, String)> {
    use skip_registry::PlatformKey;
    let mut out = BTreeMap::new();
    if own.is_none() && top.is_none() {
        return Ok(out);
    }
    let check = |map: &IndexMap<String, String>, at: &KeyPath| -> Result<(), (KeyPath, String)> {
        for (p, label) in map {
            validate_platform(p).map_err(|m| (at.key(p), m))?;
            let l = label.trim();
            if l.is_empty() || l.len() > 200 || l.chars().any(|c| c.is_control()) {
                return Err((
                    at.key(p),
                    format!("`{label}` is not a runner label; write the label of the runner that builds {p} natively, e.g. ubuntu-24.04-arm"),
                ));
            }
        }
        Ok(())
    };
    if let Some(t) = top {
        check(t, &KeyPath::root("runners"))?;
    }
    let own_at = KeyPath::image(key).key("runners");
    if let Some(o) = own {
        check(o, &own_at)?;
        for p in o.keys() {
            let k = PlatformKey::parse(p).map_err(|m| (own_at.key(p), m))?;
            if !platforms
                .iter()
                .any(|q| PlatformKey::parse(q).is_ok_and(|q| q == k))
            {
                return Err((
                    own_at.key(p),
                    format!(
                        "{p} is not one of the image's platforms ({}); add it to `platforms:` or remove the runner",
                        if platforms.is_empty() { "none".to_string() } else { platforms.join(", ") }
                    ),
                ));
            }
        }
    }
    if platforms.is_empty() {
        return Err((
            KeyPath::image(key).key("platforms"),
            "`runners:` builds one job per platform, but the image lists no `platforms:`; list them (e.g. [linux/amd64, linux/arm64]) at the top level or on the image".into(),
        ));
    }
    let find = |map: Option<&IndexMap<String, String>>, p: &str| -> Option<String> {
        let k = PlatformKey::parse(p).ok()?;
        map?.iter()
            .find(|(q, _)| PlatformKey::parse(q).is_ok_and(|q| q == k))
            .map(|(_, l)| l.trim().to_string())
    };
    let mut missing = Vec::new();
    for p in platforms {
        match find(own, p).or_else(|| find(top, p)) {
            Some(l) => {
                out.insert(p.clone(), l);
            }
            None => missing.push(p.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err((
            if own.is_some() {
                own_at
            } else {
                KeyPath::root("runners")
            },
            format!(
                "image `{key}` builds {} but no runner is given for {}; add `{}: <runner label>`",
                platforms.join(", "),
                missing.join(", "),
                missing[0]
            ),
        ));
    }
    Ok(out)
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
