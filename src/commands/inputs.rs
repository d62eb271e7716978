//! `skip-action inputs IMAGE`: the context paths behind one image's hash, so every decision can be
//! explained ("why did this rebuild?" — diff two runs' lists).

use serde::Serialize;
use std::collections::BTreeMap;

use super::{hash_options, load_and_hash_only};
use crate::cli::InputsArgs;
use crate::config::FileModes;
use crate::context::walk::{Kind, Tree};
use crate::hash::{digest_files, effective_mode, hex};
use crate::outputs::build_args_text;

#[derive(Serialize)]
struct Out<'a> {
    name: &'a str,
    hash: &'a str,
    dockerfile: &'a str,
    ignore_file: Option<String>,
    context: &'a str,
    whole_context_reason: Option<&'a str>,
    sources: Vec<SourceOut<'a>>,
    files: Vec<FileOut>,
    extra_inputs: Vec<FileOut>,
    declared_args: &'a BTreeMap<String, Option<String>>,
    build_args: String,
    parents: Vec<ParentOut<'a>>,
    outside_images: Vec<&'a str>,
    remotes: Vec<&'a str>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct SourceOut<'a> {
    pattern: &'a str,
    line: usize,
    instruction: &'a str,
}

#[derive(Serialize)]
struct ParentOut<'a> {
    name: &'a str,
    hash: &'a str,
}

#[derive(Serialize)]
struct FileOut {
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    mode: String,
    /// The mode as the hash counts it (`file_modes`, and `0000` where the copy does not carry
    /// the entry's own mode: see the README's "The hash").
    hashed_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

/// Entries as listed: directories end in `/` so empty ones are visible.
fn display_path(tree: &Tree, i: usize) -> String {
    let e = &tree.entries[i];
    if e.kind == Kind::Dir {
        format!("{}/", e.path)
    } else {
        e.path.clone()
    }
}

fn files_out(
    tree: &Tree,
    indices: &[usize],
    mode_counts: Option<&[bool]>,
    modes: FileModes,
) -> anyhow::Result<Vec<FileOut>> {
    let digests = digest_files(
        indices
            .iter()
            .filter(|i| tree.entries[**i].kind == Kind::File)
            .map(|i| tree.disk_path(*i))
            .collect(),
    )?;
    Ok(indices
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let e = &tree.entries[i];
            let counts = mode_counts.is_none_or(|m| m.get(n).copied().unwrap_or(true));
            let (kind, sha256, target) = match &e.kind {
                Kind::File => (
                    "file",
                    digests.get(&tree.disk_path(i)).map(|d| hex(d)),
                    None,
                ),
                Kind::Dir => ("dir", None, None),
                Kind::Symlink(t) => ("symlink", None, Some(t.clone())),
                Kind::Other => ("other", None, None),
            };
            FileOut {
                path: e.path.clone(),
                kind,
                mode: format!("{:04o}", e.mode),
                hashed_mode: format!("{:04o}", effective_mode(&e.kind, e.mode, counts, modes)),
                sha256,
                target,
            }
        })
        .collect())
}

pub fn run(args: InputsArgs) -> anyhow::Result<()> {
    let h = load_and_hash_only(&args.common, hash_options(&args.common), Some(&args.image))?;
    let spec = h.config.image(&args.image)?;
    let idx = h
        .config
        .images
        .iter()
        .position(|s| s.name == spec.name)
        .unwrap_or_default();
    let inputs = &h.discovery.images[idx];
    let hash = &h.hashes[idx];
    let tree = &h.discovery.trees[inputs.tree];
    if !args.json {
        let mut out = String::new();
        for &i in &inputs.selection.indices {
            out.push_str(&display_path(tree, i));
            out.push('\n');
        }
        print!("{out}");
        if let Some(x) = inputs.extra {
            eprintln!(
                "plus {} entries from `inputs:` (relative to the repository root; see --json)",
                h.discovery.trees[x].entries.len()
            );
        }
        if let Some(r) = &inputs.selection.whole {
            eprintln!("whole context hashed: {r}");
        }
        return Ok(());
    }
    let extra_inputs = match inputs.extra {
        Some(x) => {
            let t = &h.discovery.trees[x];
            files_out(t, &t.all_indices(), None, spec.file_modes)?
        }
        None => Vec::new(),
    };
    let out = Out {
        name: &spec.name,
        hash: &hash.full,
        dockerfile: &spec.dockerfile,
        ignore_file: inputs.ignore_file.as_ref().map(|p| {
            p.strip_prefix(&h.discovery.workspace)
                .unwrap_or(p)
                .display()
                .to_string()
        }),
        context: &spec.context,
        whole_context_reason: inputs.selection.whole.as_deref(),
        sources: inputs
            .sources
            .iter()
            .map(|s| SourceOut {
                pattern: &s.pattern,
                line: s.line,
                instruction: &s.instruction,
            })
            .collect(),
        files: files_out(
            tree,
            &inputs.selection.indices,
            Some(&inputs.selection.mode_counts),
            spec.file_modes,
        )?,
        extra_inputs,
        declared_args: &hash.declared,
        build_args: build_args_text(&hash.build_args),
        parents: hash
            .parents
            .iter()
            .map(|(n, h)| ParentOut { name: n, hash: h })
            .collect(),
        outside_images: inputs
            .outside
            .iter()
            .map(|u| u.reference.as_str())
            .collect(),
        remotes: inputs.remotes.iter().map(|r| r.url.as_str()).collect(),
        warnings: &inputs.warnings,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
