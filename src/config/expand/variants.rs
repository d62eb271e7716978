//! Step 2: `variants:` and `matrix:` into one [`Variant`] per image to build.
//!
//! Args keep where they were set: a variant's own args must be declared by the Dockerfile (a typo
//! there would build the wrong image), while matrix values are offered — passed only where the
//! Dockerfile declares them, so an axis used only in names (`lang`, `sv`) needs no `ARG`.

use std::collections::BTreeMap;

use super::validation::{
    check_var_name, checked_arg_name, is_arg_name, promote_specs, vars_text, Arg, Common,
};
use super::{Ctx, BUILTIN_VARS};
use crate::config::locate::KeyPath;
use crate::config::matrix;
use crate::config::schema::RawImage;
use crate::config::{ArgOrigin, PromoteSpec};

/// One image to build, before its templates are rendered.
pub(super) struct Variant {
    /// `None` for an image without variants.
    pub name: Option<String>,
    /// Build args with their origins.
    pub args: BTreeMap<String, Arg>,
    /// Template variables: the image's vars, matrix values, the variant's vars.
    pub vars: BTreeMap<String, String>,
    /// The variant's own `promote:`, replacing the image's.
    pub promote: Option<Vec<PromoteSpec>>,
}

pub(super) fn expand(
    key: &str,
    img: &RawImage,
    common: &Common,
    cx: &Ctx,
) -> anyhow::Result<Vec<Variant>> {
    let here = KeyPath::image(key);
    let out = match (&img.variants, &img.matrix) {
        (Some(_), Some(_)) => {
            return Err(cx.err(&here, "use either `variants` or `matrix`, not both"));
        }
        (Some(vs), None) => {
            if vs.is_empty() {
                return Err(cx.err(&here.key("variants"), "empty; remove it or add variants"));
            }
            let mut out = Vec::with_capacity(vs.len());
            for (vname, v) in vs {
                let at = here.key("variants").key(vname);
                check_variant_name(vname).map_err(|m| cx.err(&at, m))?;
                let mut args = common.args.clone();
                let inline = v.inline.iter().map(|(k, val)| (k, val, at.key(k)));
                let nested = v
                    .args
                    .iter()
                    .map(|(k, val)| (k, val, at.key("args").key(k)));
                for (k, val, key) in inline.chain(nested) {
                    checked_arg_name(k).map_err(|m| cx.err(&key, m))?;
                    args.insert(
                        k.clone(),
                        Arg {
                            value: val.to_text(),
                            origin: ArgOrigin {
                                key,
                                required: true,
                            },
                        },
                    );
                }
                let mut vars = common.vars.clone();
                for (k, val) in vars_text(&v.vars) {
                    check_var_name(&k).map_err(|m| cx.err(&at.key("vars").key(&k), m))?;
                    vars.insert(k, val);
                }
                let promote = match &v.promote {
                    Some(p) => Some(promote_specs(p, &at.key("promote"), cx)?),
                    None => None,
                };
                out.push(Variant {
                    name: Some(vname.clone()),
                    args,
                    vars,
                    promote,
                });
            }
            out
        }
        (None, Some(m)) => {
            let at = here.key("matrix");
            let ex = matrix::expand(m).map_err(|e| cx.err(&at, e))?;
            let mut out = Vec::with_capacity(ex.combos.len());
            // One key per matrix key, shared by every combination's args.
            let mut keys: std::collections::HashMap<&str, KeyPath> = Default::default();
            for combo in &ex.combos {
                let vname = matrix::variant_name(&ex.axes, combo);
                check_variant_name(&vname).map_err(|m| cx.err(&at, m))?;
                let mut args = common.args.clone();
                let mut vars = common.vars.clone();
                for (k, v) in combo {
                    if BUILTIN_VARS.contains(&k.as_str()) {
                        return Err(cx.err(
                            &at,
                            format!("`{k}` is a reserved placeholder name; rename the axis"),
                        ));
                    }
                    // A matrix key is a placeholder name (and a build arg name where it can be).
                    check_var_name(k).map_err(|m| cx.err(&at, format!("matrix key: {m}")))?;
                    if common.vars.contains_key(k) {
                        return Err(cx.err(
                            &at.key(k),
                            format!("`{k}` is both a matrix key and a var; rename one of them"),
                        ));
                    }
                    vars.insert(k.clone(), v.clone());
                    // Offered as a build arg where the name can be one; an arg the image sets
                    // itself stays required.
                    if is_arg_name(k) {
                        let required = args.get(k).is_some_and(|a| a.origin.required);
                        args.insert(
                            k.clone(),
                            Arg {
                                value: v.clone(),
                                origin: ArgOrigin {
                                    key: keys
                                        .entry(k.as_str())
                                        .or_insert_with(|| at.key(k))
                                        .clone(),
                                    required,
                                },
                            },
                        );
                    }
                }
                out.push(Variant {
                    name: Some(vname),
                    args,
                    vars,
                    promote: None,
                });
            }
            out
        }
        (None, None) => vec![Variant {
            name: None,
            args: common.args.clone(),
            vars: common.vars.clone(),
            promote: None,
        }],
    };
    Ok(out)
}

fn check_variant_name(v: &str) -> Result<(), String> {
    if v.is_empty() || v.contains('/') || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "variant name `{}` must be non-empty with no `/`, spaces or control characters",
            v.escape_debug()
        ));
    }
    Ok(())
}
