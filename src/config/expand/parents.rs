//! Step 4: parents resolved to images and the build arg each parent's reference is passed in;
//! then parents before children (a cycle is named).

use std::collections::{BTreeSet, HashMap};

use super::templates::Pending;
use super::validation::checked_arg_name;
use super::{Ctx, DEFAULT_BASE_ARG};
use crate::config::locate::KeyPath;
use crate::config::schema::BaseArg;
use crate::config::{ImageSpec, Parent};

pub(super) fn resolve(pending: Vec<Pending>, cx: &Ctx) -> anyhow::Result<Vec<ImageSpec>> {
    let index: HashMap<&str, usize> = pending
        .iter()
        .enumerate()
        .map(|(i, p)| (p.spec.name.as_str(), i))
        .collect();
    let variants_of = |key: &str| -> Vec<String> {
        pending
            .iter()
            .filter(|p| p.spec.image == key && p.spec.variant.is_some())
            .map(|p| p.spec.name.clone())
            .take(5)
            .collect()
    };
    let mut resolved: Vec<Vec<Parent>> = Vec::with_capacity(pending.len());
    for pd in &pending {
        let spec = &pd.spec;
        let at = &spec.keys.from;
        let arg_at = pd
            .base_arg
            .as_ref()
            .map(|b| b.key.clone())
            .unwrap_or_else(|| KeyPath::image(&spec.image).key("base_arg"));
        let mut parents = Vec::new();
        let mut seen_args = BTreeSet::new();
        for p in &pd.from {
            if !index.contains_key(p.as_str()) {
                let vs = variants_of(p);
                let hint = if !vs.is_empty() {
                    format!("`{p}` has variants; name one ({}) or use a template such as `{p}/{{variant}}`", vs.join(", "))
                } else {
                    format!("define an image `{p}` or fix the name")
                };
                return Err(cx.err(
                    at,
                    format!("{}: parent `{p}` does not exist; {hint}", spec.name),
                ));
            }
            if p == &spec.name {
                return Err(cx.err(at, format!("{} names itself as parent", spec.name)));
            }
            let parent_key = p.split('/').next().unwrap_or(p);
            let arg = match pd.base_arg.as_ref().map(|b| &b.value) {
                None if pd.from.len() == 1 => DEFAULT_BASE_ARG.to_string(),
                None => default_parent_arg(parent_key),
                Some(BaseArg::One(a)) if pd.from.len() == 1 => a.clone(),
                Some(BaseArg::One(_)) => {
                    return Err(cx.err(
                        &arg_at,
                        "several parents need one arg each: `base_arg: {parent: ARG_NAME, …}`",
                    ))
                }
                Some(BaseArg::PerParent(m)) => m
                    .get(p)
                    .or_else(|| m.get(parent_key))
                    .cloned()
                    .unwrap_or_else(|| default_parent_arg(parent_key)),
            };
            let arg = checked_arg_name(&arg).map_err(|m| cx.err(&arg_at, m))?;
            if !seen_args.insert(arg.clone()) {
                return Err(cx.err(
                    &arg_at,
                    format!("two parents of {} would share build arg {arg}; give each its own with `base_arg: {{parent: ARG}}`", spec.name),
                ));
            }
            if let Some(origin) = spec.arg_origins.get(&arg) {
                return Err(cx.err(
                    &origin.key,
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
    let mut images: Vec<ImageSpec> = pending
        .into_iter()
        .zip(resolved)
        .map(|(p, parents)| {
            let mut s = p.spec;
            s.parents = parents;
            s
        })
        .collect();
    topo_sort(&mut images).map_err(|m| cx.err(&KeyPath::root("images"), m))
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
