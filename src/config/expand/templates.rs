//! Step 3: the templates of one variant, rendered (`dockerfile`, `context`, `repository`, `from`)
//! or test-rendered with a dummy hash and version (`tag`, `promote`), so a bad placeholder or an
//! invalid tag is a config error, not a surprise at push time.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::validation::{check_rel_path, validate_repository, Common, Located};
use super::variants::Variant;
use super::Ctx;
use crate::config::locate::KeyPath;
use crate::config::schema::BaseArg;
use crate::config::template::{valid_tag, Template};
use crate::config::{ArgOrigin, ImageSpec, SpecKeys};

/// An image whose parents are still names as written.
pub(super) struct Pending {
    pub spec: ImageSpec,
    /// `from:` rendered with the variant's variables.
    pub from: Vec<String>,
    pub base_arg: Option<Located<BaseArg>>,
}

/// Variables every template can be test-rendered with: the real ones plus a dummy hash and version.
fn probe_vars(vars: &BTreeMap<String, String>, hash_length: usize) -> BTreeMap<String, String> {
    let mut probe = vars.clone();
    probe.insert("hash".into(), "0".repeat(hash_length));
    probe.insert("version".into(), "0.0.0".into());
    probe
}

/// Render one variant. `origins` is the previous variant's arg origins, reused when equal.
pub(super) fn render(
    key: &str,
    common: &Common,
    v: Variant,
    hash_length: usize,
    origins: &mut Option<Arc<BTreeMap<String, ArgOrigin>>>,
    cx: &Ctx,
) -> anyhow::Result<Pending> {
    let name = match &v.name {
        Some(vn) => format!("{key}/{vn}"),
        None => key.to_string(),
    };
    let mut vars = v.vars;
    vars.insert("name".into(), key.to_string());
    if let Some(vn) = &v.name {
        vars.insert("variant".into(), vn.clone());
    }
    let for_image = |m: String| {
        if name == key {
            m
        } else {
            format!("{m} (for {name})")
        }
    };
    let path = |l: &Located<Template>| -> anyhow::Result<String> {
        let s = l
            .value
            .render(&vars)
            .map_err(|m| cx.err(&l.key, for_image(m)))?;
        check_rel_path(&s).map_err(|m| cx.err(&l.key, for_image(m)))?;
        Ok(s)
    };
    let dockerfile = path(&common.dockerfile)?;
    let context = path(&common.context)?;
    let repository = common
        .repository
        .value
        .render(&vars)
        .map_err(|m| cx.err(&common.repository.key, for_image(m)))?;
    let repo = match &common.repo {
        Some(r) => r.clone(),
        None => validate_repository(&repository)
            .map_err(|m| cx.err(&common.repository.key, for_image(m)))?,
    };

    let probe = probe_vars(&vars, hash_length);
    let tag = &common.tag;
    let rendered = tag
        .value
        .render(&probe)
        .map_err(|m| cx.err(&tag.key, for_image(m)))?;
    if !valid_tag(&rendered) {
        return Err(cx.err(&tag.key, format!("renders to `{}` for {name}, which is not a valid OCI tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)", rendered.escape_debug())));
    }
    let promote = v.promote.unwrap_or_else(|| common.promote.clone());
    for p in &promote {
        let r = p
            .tag
            .render(&probe)
            .map_err(|m| cx.err(&p.key, for_image(m)))?;
        if !valid_tag(&r) {
            return Err(cx.err(
                &p.key,
                format!(
                    "renders to `{}` for {name}, which is not a valid OCI tag",
                    r.escape_debug()
                ),
            ));
        }
    }
    let from = common
        .from
        .iter()
        .map(|f| {
            Template::parse(f)
                .and_then(|t| t.render(&vars))
                .map_err(|m| cx.err(&common.from_key, for_image(m)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut args = BTreeMap::new();
    let mut arg_origins = BTreeMap::new();
    for (k, a) in v.args {
        args.insert(k.clone(), a.value);
        arg_origins.insert(k, a.origin);
    }
    let arg_origins = match origins {
        Some(last) if **last == arg_origins => last.clone(),
        _ => origins.insert(Arc::new(arg_origins)).clone(),
    };
    Ok(Pending {
        spec: ImageSpec {
            name,
            image: key.to_string(),
            variant: v.name,
            dockerfile,
            context,
            repository,
            repo,
            tag: tag.value.clone(),
            promote,
            args,
            arg_origins,
            parents: Vec::new(),
            target: common.target.clone(),
            platforms: common.platforms.clone(),
            runners: common.runners.clone(),
            inputs: common.inputs.value.clone(),
            scope: common.scope,
            upstream: common.upstream,
            file_modes: common.file_modes,
            generated: common.generated.clone(),
            vars,
            level: 0,
            keys: SpecKeys {
                dockerfile: common.dockerfile.key.clone(),
                context: common.context.key.clone(),
                tag: tag.key.clone(),
                inputs: common.inputs.key.clone(),
                from: common.from_key.clone(),
                base_arg: common.base_arg.as_ref().map(|b| b.key.clone()),
            },
        },
        from,
        base_arg: common.base_arg.clone(),
    })
}

/// No two images may promote the same alias in the same repository: `promote` would find out
/// only after every build ran, and one of them would lose. Aliases with `{hash}` are left to
/// `promote` (they differ whenever the images do).
pub(super) fn check_aliases(
    images: &[ImageSpec],
    hash_length: usize,
    cx: &Ctx,
) -> anyhow::Result<()> {
    let mut owner: HashMap<(String, String), (&str, &KeyPath)> = HashMap::new();
    for spec in images {
        let probe = probe_vars(&spec.vars, hash_length);
        for p in &spec.promote {
            if p.tag.uses("hash") {
                continue;
            }
            let Ok(tag) = p.tag.render(&probe) else {
                continue;
            };
            let repo = p.repo.as_ref().unwrap_or(&spec.repo).to_string();
            // A `{version}` alias is shown as written (the dummy version means nothing).
            let shown = if p.tag.uses("version") {
                format!("{repo}:{}", p.tag.source())
            } else {
                format!("{repo}:{tag}")
            };
            match owner.entry((repo, tag)) {
                // The same alias twice for one image is moved once.
                Entry::Occupied(o) if o.get().0 == spec.name => {}
                Entry::Occupied(o) => {
                    let (other, other_key) = o.get();
                    return Err(cx.err(
                        &p.key,
                        format!("`{shown}` is an alias of both {other} and {} (also at `{other_key}`); an alias can point at one image only. Give each image its own (e.g. `latest-{{variant}}`), or override `promote:` in one variant", spec.name),
                    ));
                }
                Entry::Vacant(v) => {
                    v.insert((&spec.name, &p.key));
                }
            }
        }
    }
    Ok(())
}
