//! `matrix:` expansion with GitHub Actions' semantics.
//!
//! Users already know how a GitHub matrix expands, so an image matrix expands the same way:
//! the cartesian product of the axes (first axis outermost), then `exclude` (an entry removes every
//! combination it matches on all of its keys), then `include` (an entry is merged into every
//! combination where it overwrites none of the *original* axis values; where it fits none, it becomes
//! a new combination).

use indexmap::IndexMap;
use serde_yaml::Value;

/// One expanded combination: key -> value, axis keys first in axis order.
pub type Combo = IndexMap<String, String>;

/// The result: combinations and the axis names (for variant names).
#[derive(Debug)]
pub struct Expanded {
    pub axes: Vec<String>,
    pub combos: Vec<Combo>,
}

/// Upper bound on combinations of one image, so a typo cannot ask for billions.
pub const MAX_COMBINATIONS: usize = 100_000;

/// Upper bound on `include`/`exclude` entries times combinations (each entry is compared with
/// every combination): a short config must not buy hours of CPU.
pub const MAX_MATCH_WORK: usize = 20_000_000;

fn scalar(v: &Value, key: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(format!(
            "`{key}`: matrix values must be strings, numbers or booleans"
        )),
    }
}

fn entries(v: &Value, what: &str) -> Result<Vec<Combo>, String> {
    let Value::Sequence(items) = v else {
        return Err(format!("`{what}` must be a list of mappings"));
    };
    items
        .iter()
        .map(|item| {
            let Value::Mapping(m) = item else {
                return Err(format!(
                    "each `{what}` entry must be a mapping of key: value"
                ));
            };
            m.iter()
                .map(|(k, v)| {
                    let k = k
                        .as_str()
                        .ok_or_else(|| format!("`{what}` keys must be strings"))?;
                    Ok((k.to_string(), scalar(v, k)?))
                })
                .collect()
        })
        .collect()
}

/// Expand a raw `matrix:` mapping.
pub fn expand(raw: &IndexMap<String, Value>) -> Result<Expanded, String> {
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for (key, value) in raw {
        match key.as_str() {
            "include" => include = entries(value, "include")?,
            "exclude" => exclude = entries(value, "exclude")?,
            _ => {
                let Value::Sequence(items) = value else {
                    return Err(format!(
                        "matrix axis `{key}` must be a list of values (or use include/exclude)"
                    ));
                };
                if items.is_empty() {
                    return Err(format!(
                        "matrix axis `{key}` is empty; give it at least one value"
                    ));
                }
                let vals = items
                    .iter()
                    .map(|v| scalar(v, key))
                    .collect::<Result<Vec<_>, _>>()?;
                axes.push((key.clone(), vals));
            }
        }
    }

    let total = axes
        .iter()
        .try_fold(1usize, |acc, (_, v)| acc.checked_mul(v.len()))
        .filter(|n| *n <= MAX_COMBINATIONS)
        .ok_or_else(|| format!("matrix has more than {MAX_COMBINATIONS} combinations"))?;

    if include.len() > MAX_COMBINATIONS
        || (include.len() + exclude.len()).saturating_mul(total) > MAX_MATCH_WORK
    {
        return Err(format!(
            "matrix has {} include and {} exclude entries over {total} combinations; that is more than skip-action compares ({MAX_MATCH_WORK}); split the image or use fewer entries",
            include.len(),
            exclude.len()
        ));
    }

    let mut combos: Vec<Combo> = Vec::with_capacity(if axes.is_empty() { 0 } else { total });
    if !axes.is_empty() {
        let mut idx = vec![0usize; axes.len()];
        'outer: loop {
            combos.push(
                axes.iter()
                    .zip(&idx)
                    .map(|((k, vals), i)| (k.clone(), vals[*i].clone()))
                    .collect(),
            );
            // Odometer increment, last axis fastest (first axis outermost, as GitHub).
            let mut pos = axes.len();
            loop {
                if pos == 0 {
                    break 'outer;
                }
                pos -= 1;
                idx[pos] += 1;
                if idx[pos] < axes[pos].1.len() {
                    continue 'outer;
                }
                idx[pos] = 0;
            }
        }
    }

    combos.retain(|c| {
        !exclude
            .iter()
            .any(|ex| ex.iter().all(|(k, v)| c.get(k) == Some(v)))
    });

    let axis_names: Vec<String> = axes.iter().map(|(k, _)| k.clone()).collect();
    let original = combos.len();
    for inc in include {
        let mut added = false;
        for combo in combos.iter_mut().take(original) {
            let clashes = inc
                .iter()
                .any(|(k, v)| axis_names.contains(k) && combo.get(k).is_some_and(|cv| cv != v));
            if !clashes {
                for (k, v) in &inc {
                    // Added (non-axis) values may be overwritten by a later include.
                    if !axis_names.contains(k) {
                        combo.insert(k.clone(), v.clone());
                    }
                }
                added = true;
            }
        }
        if !added {
            combos.push(inc);
        }
    }
    if combos.is_empty() {
        return Err("matrix expands to no combinations (every one excluded?)".to_string());
    }
    if combos.len() > MAX_COMBINATIONS {
        return Err(format!(
            "matrix has more than {MAX_COMBINATIONS} combinations (with its include entries)"
        ));
    }
    Ok(Expanded {
        axes: axis_names,
        combos,
    })
}

/// The variant name of a combination: its axis values joined by `-`; for a combination that only
/// an `include` created, all its values.
pub fn variant_name(axes: &[String], combo: &Combo) -> String {
    let from_axes: Vec<&str> = axes
        .iter()
        .filter_map(|a| combo.get(a).map(String::as_str))
        .collect();
    if from_axes.is_empty() {
        combo
            .values()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("-")
    } else {
        from_axes.join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Expanded, String> {
        let raw: IndexMap<String, Value> = serde_yaml::from_str(yaml).unwrap();
        expand(&raw)
    }

    fn names(e: &Expanded) -> Vec<String> {
        e.combos.iter().map(|c| variant_name(&e.axes, c)).collect()
    }

    #[test]
    fn cartesian_product_first_axis_outermost() {
        let e = parse("os: [a, b]\nv: [1, 2, 3]").unwrap();
        assert_eq!(names(&e), ["a-1", "a-2", "a-3", "b-1", "b-2", "b-3"]);
    }

    #[test]
    fn exclude_matches_partially() {
        let e = parse("os: [a, b]\nv: [1, 2]\nexclude: [{os: a}]").unwrap();
        assert_eq!(names(&e), ["b-1", "b-2"]);
        let e = parse("os: [a, b]\nv: [1, 2]\nexclude: [{os: a, v: 2}]").unwrap();
        assert_eq!(names(&e), ["a-1", "b-1", "b-2"]);
    }

    // The example from GitHub's documentation of matrix include.
    #[test]
    fn include_follows_github_semantics() {
        let e = parse(
            "fruit: [apple, pear]\nanimal: [cat, dog]\ninclude:\n  - color: green\n  - color: pink\n    animal: cat\n  - fruit: apple\n    shape: circle\n  - fruit: banana\n  - fruit: banana\n    animal: cat\n",
        )
        .unwrap();
        let c = &e.combos;
        assert_eq!(c.len(), 6);
        assert_eq!(c[0]["color"], "pink"); // apple-cat: green, then overwritten by pink
        assert_eq!(c[0]["shape"], "circle");
        assert_eq!(c[1]["color"], "green"); // apple-dog
        assert_eq!(c[1]["shape"], "circle");
        assert_eq!(c[2]["color"], "pink"); // pear-cat
        assert!(!c[2].contains_key("shape"));
        assert_eq!(c[3]["color"], "green"); // pear-dog
        assert_eq!(names(&e)[4], "banana");
        assert_eq!(names(&e)[5], "banana-cat");
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(parse("os: a").unwrap_err().contains("must be a list"));
        assert!(parse("os: []").unwrap_err().contains("empty"));
        assert!(parse("os: [a]\nexclude: [{os: a}]")
            .unwrap_err()
            .contains("no combinations"));
        assert!(parse("os: [[a]]").unwrap_err().contains("strings"));
        let huge = format!(
            "a: [{}]\nb: [{}]\nc: [{}]",
            (0..200)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(","),
            (0..200)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(","),
            (0..200)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(parse(&huge).unwrap_err().contains("more than"));
    }
}
