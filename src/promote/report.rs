//! What a promotion did, for people and machines: the `promoted` / `previous` outputs, the
//! Markdown summary with rollback commands, the JSON report. Pure: strings from [`Checked`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use crate::github::md_cell;

use super::{AliasState, AliasStatus, Checked, CopyStats};
use crate::lineage::short_digest;

/// `promoted`: alias → digest, for every alias that points at its content after this run (moved,
/// or already there). Empty when the promotion did not run (blocked, or a dry run).
pub fn promoted_json(checked: &Checked, dry_run: bool) -> String {
    if dry_run || checked.blocked() {
        return "{}".into();
    }
    let m: BTreeMap<String, &str> = checked
        .aliases
        .iter()
        .filter(|a| matches!(a.status, AliasStatus::Moved | AliasStatus::InPlace))
        .filter_map(|a| Some((a.alias.reference(), a.digest.as_deref()?)))
        .collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

/// `previous`: alias → digest before this run, or null when it did not exist.
pub fn previous_json(checked: &Checked) -> String {
    let m: BTreeMap<String, Option<&str>> = checked
        .aliases
        .iter()
        .map(|a| (a.alias.reference(), a.previous.as_deref()))
        .collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

/// Shell lines that put moved aliases back where they were, with tools found on runners (skopeo
/// preserves the digest with `--preserve-digests`; crane's `tag` re-tags within a repository).
/// `http_hosts` are registries spoken to over plain http (they need `--*-tls-verify=false`).
pub fn rollback_commands(checked: &Checked, http_hosts: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for a in &checked.aliases {
        if !matches!(a.status, AliasStatus::Moved) {
            continue;
        }
        let repo = &a.alias.repo;
        let host = repo.registry.as_str();
        let tls = if http_hosts.contains(host) {
            " --src-tls-verify=false --dest-tls-verify=false"
        } else {
            ""
        };
        match &a.previous {
            Some(prev) => {
                out.push(format!(
                    "skopeo copy --all --preserve-digests{tls} docker://{repo}@{prev} docker://{repo}:{}",
                    a.alias.tag
                ));
                out.push(format!("#   or: crane tag {repo}@{prev} {}", a.alias.tag));
            }
            None => out.push(format!(
                "# {repo}:{} did not exist before; to undo, delete that tag in the registry (not the digest: it is the content tag's)",
                a.alias.tag
            )),
        }
    }
    out
}

fn status_text(a: &AliasState) -> String {
    match &a.status {
        AliasStatus::Pending => "pending".into(),
        AliasStatus::InPlace => "already in place".into(),
        AliasStatus::WouldMove => {
            if a.alias.cross_repo() {
                format!("would copy from {} and move", a.alias.source_repo)
            } else {
                "would move".into()
            }
        }
        AliasStatus::Moved => {
            if a.alias.cross_repo() {
                "copied, moved, verified".into()
            } else {
                "moved".into()
            }
        }
        AliasStatus::Failed(e) => format!("**FAILED**: {e}"),
        AliasStatus::NotAttempted(e) => format!("not moved: {e}"),
        AliasStatus::Held(e) => format!("held: {e}"),
    }
}

/// The Markdown report: checks, aliases, rollback. Shown in the step summary and the log.
pub fn summary_markdown(
    checked: &Checked,
    dry_run: bool,
    http_hosts: &BTreeSet<String>,
    stats: Option<&CopyStats>,
) -> String {
    let mut s = String::new();
    s.push_str(if dry_run {
        "## skip-action promote (dry run: nothing written)\n\n"
    } else {
        "## skip-action promote\n\n"
    });
    let blocked = checked.blocked();
    let moved = checked
        .aliases
        .iter()
        .filter(|a| a.status == AliasStatus::Moved)
        .count();
    let failed = checked
        .aliases
        .iter()
        .filter(|a| {
            matches!(
                a.status,
                AliasStatus::Failed(_) | AliasStatus::NotAttempted(_)
            )
        })
        .count();
    if blocked {
        s.push_str("**Blocked: no tag was changed.**\n\n");
        for p in checked.all_problems() {
            s.push_str(&format!("- {}\n", md_cell(&p)));
        }
        s.push('\n');
    } else if failed > 0 {
        s.push_str(&format!(
            "**Failed: {moved} alias(es) moved, {failed} did not** — see the rollback commands below.\n\n"
        ));
    }

    s.push_str("### Checks\n\n| image | content tag | digest | result |\n|---|---|---|---|\n");
    for r in &checked.images {
        let digest = r
            .digest
            .as_deref()
            .map(|d| format!("`{}`", short_digest(d)))
            .unwrap_or_else(|| "—".into());
        let mut result: Vec<String> = Vec::new();
        if r.problems.is_empty() {
            result.push("✅ exists".into());
        } else {
            result.extend(r.problems.iter().map(|p| format!("❌ {p}")));
        }
        if let Some(k) = &r.kind {
            result.push(k.clone());
        }
        result.extend(r.passed.iter().cloned());
        s.push_str(&format!(
            "| {} | `{}` | {digest} | {} |\n",
            md_cell(&r.name),
            md_cell(&r.reference),
            md_cell(&result.join("; "))
        ));
    }
    s.push('\n');

    if !checked.aliases.is_empty() {
        s.push_str(
            "### Aliases\n\n| alias | image | digest | before | status |\n|---|---|---|---|---|\n",
        );
        for a in &checked.aliases {
            let digest = a.digest.as_deref().unwrap_or("—");
            let before = match &a.previous {
                Some(p) if Some(p.as_str()) == a.digest.as_deref() => "same".to_string(),
                Some(p) => format!("`{p}`"),
                None => "(new)".to_string(),
            };
            let status = if blocked {
                "not moved (blocked)".to_string()
            } else {
                status_text(a)
            };
            s.push_str(&format!(
                "| `{}` | {} | `{digest}` | {before} | {} |\n",
                md_cell(&a.alias.reference()),
                md_cell(&a.alias.image_name),
                md_cell(&status)
            ));
        }
        s.push('\n');
    } else {
        s.push_str("No aliases to move (no `promote:` entries apply).\n\n");
    }
    for sk in &checked.skipped {
        s.push_str(&format!(
            "- skipped `{}` of {}: {}\n",
            md_cell(&sk.template),
            md_cell(&sk.image_name),
            md_cell(&sk.reason)
        ));
    }
    if !checked.skipped.is_empty() {
        s.push('\n');
    }
    if let Some(st) = stats {
        if st.manifests.load(Ordering::Relaxed)
            + st.blobs_present.load(Ordering::Relaxed)
            + st.blobs_mounted.load(Ordering::Relaxed)
            + st.blobs_streamed.load(Ordering::Relaxed)
            > 0
        {
            s.push_str(&format!(
                "Copied into other repositories: {}.\n\n",
                st.describe()
            ));
        }
    }
    let rb = rollback_commands(checked, http_hosts);
    if !rb.is_empty() {
        s.push_str("### Rollback\n\n```sh\n");
        for l in rb {
            s.push_str(&l);
            s.push('\n');
        }
        s.push_str("```\n\n");
    }
    s.push_str(&format!(
        "<details><summary>outputs</summary>\n\n```\npromoted={}\nprevious={}\n```\n\n</details>\n",
        promoted_json(checked, dry_run),
        previous_json(checked)
    ));
    s
}

/// The report as JSON (for `--json`).
pub fn report_json(checked: &Checked, dry_run: bool) -> serde_json::Value {
    use serde_json::json;
    let images: Vec<serde_json::Value> = checked
        .images
        .iter()
        .map(|r| {
            json!({
                "name": r.name, "image": r.reference, "digest": r.digest, "kind": r.kind,
                "ok": r.problems.is_empty(), "passed": r.passed, "problems": r.problems,
            })
        })
        .collect();
    let aliases: Vec<serde_json::Value> = checked
        .aliases
        .iter()
        .map(|a| {
            let (status, error) = match &a.status {
                AliasStatus::Pending => ("pending", None),
                AliasStatus::InPlace => ("unchanged", None),
                AliasStatus::WouldMove => ("would_move", None),
                AliasStatus::Moved => ("moved", None),
                AliasStatus::Failed(e) => ("failed", Some(e.clone())),
                AliasStatus::NotAttempted(e) => ("not_attempted", Some(e.clone())),
                AliasStatus::Held(e) => ("held", Some(e.clone())),
            };
            json!({
                "alias": a.alias.reference(), "image": a.alias.image_name,
                "source": a.alias.source_reference(), "template": a.alias.template,
                "digest": a.digest, "previous": a.previous,
                "status": if checked.blocked() { "blocked" } else { status },
                "error": error,
            })
        })
        .collect();
    let skipped: Vec<serde_json::Value> = checked
        .skipped
        .iter()
        .map(|s| json!({"image": s.image_name, "template": s.template, "reason": s.reason}))
        .collect();
    let promoted: serde_json::Value =
        serde_json::from_str(&promoted_json(checked, dry_run)).unwrap_or_default();
    let previous: serde_json::Value =
        serde_json::from_str(&previous_json(checked)).unwrap_or_default();
    json!({
        "dry_run": dry_run,
        "blocked": checked.blocked(),
        "problems": checked.all_problems(),
        "images": images,
        "aliases": aliases,
        "skipped": skipped,
        "promoted": promoted,
        "previous": previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promote::{Alias, ImageReport};
    use skip_registry::RepoRef;

    fn repo(s: &str) -> RepoRef {
        RepoRef::parse(s).unwrap()
    }

    fn alias(tag: &str, status: AliasStatus, previous: Option<&str>) -> AliasState {
        AliasState {
            alias: Alias {
                image: 0,
                image_name: "app".into(),
                source_repo: repo("localhost:5000/acme/x"),
                source_tag: "app-abc".into(),
                repo: repo("localhost:5000/acme/x"),
                tag: tag.into(),
                template: tag.into(),
            },
            digest: Some("sha256:new".into()),
            previous: previous.map(str::to_string),
            status,
        }
    }

    fn checked(aliases: Vec<AliasState>, problems: Vec<String>) -> Checked {
        Checked {
            images: vec![ImageReport {
                name: "app".into(),
                reference: "localhost:5000/acme/x:app-abc".into(),
                digest: Some("sha256:new".into()),
                problems,
                ..ImageReport::default()
            }],
            found: vec![None],
            aliases,
            skipped: vec![],
            problems: vec![],
        }
    }

    #[test]
    fn outputs_say_what_points_where() {
        let c = checked(
            vec![
                alias("latest", AliasStatus::Moved, Some("sha256:old")),
                alias("stable", AliasStatus::InPlace, Some("sha256:new")),
                alias("edge", AliasStatus::Failed("HTTP 500".into()), None),
            ],
            vec![],
        );
        assert_eq!(
            promoted_json(&c, false),
            r#"{"localhost:5000/acme/x:latest":"sha256:new","localhost:5000/acme/x:stable":"sha256:new"}"#
        );
        assert_eq!(promoted_json(&c, true), "{}");
        assert_eq!(
            previous_json(&c),
            r#"{"localhost:5000/acme/x:edge":null,"localhost:5000/acme/x:latest":"sha256:old","localhost:5000/acme/x:stable":"sha256:new"}"#
        );
        let blocked = checked(
            vec![alias("latest", AliasStatus::Pending, None)],
            vec!["missing".into()],
        );
        assert_eq!(promoted_json(&blocked, false), "{}");
        assert_eq!(
            report_json(&blocked, false)["aliases"][0]["status"],
            "blocked"
        );
    }

    #[test]
    fn rollback_puts_back_only_what_moved() {
        let c = checked(
            vec![
                alias("latest", AliasStatus::Moved, Some("sha256:old")),
                alias("fresh", AliasStatus::Moved, None),
                alias("stable", AliasStatus::InPlace, Some("sha256:new")),
            ],
            vec![],
        );
        let http: BTreeSet<String> = ["localhost:5000".to_string()].into();
        let rb = rollback_commands(&c, &http);
        assert_eq!(rb.len(), 3, "{rb:?}");
        assert_eq!(
            rb[0],
            "skopeo copy --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false docker://localhost:5000/acme/x@sha256:old docker://localhost:5000/acme/x:latest"
        );
        assert!(rb[2].contains("localhost:5000/acme/x:fresh did not exist before"));
        assert!(!rollback_commands(&c, &BTreeSet::new())[0].contains("tls-verify"));
    }

    #[test]
    fn summary_cells_cannot_carry_markup() {
        let mut c = checked(vec![alias("latest", AliasStatus::Pending, None)], vec![]);
        c.images[0].name = "x<img src=y>|z\\".into();
        c.images[0].problems = vec!["line one\nline <b>two</b>".into()];
        let s = summary_markdown(&c, false, &BTreeSet::new(), None);
        assert!(!s.contains("<img") && !s.contains("<b>"), "{s}");
        assert!(s.contains("x&lt;img src=y&gt;\\|z\\\\"), "{s}");
        assert!(s.contains("line one line &lt;b&gt;two&lt;/b&gt;"), "{s}");
        assert!(s.contains("**Blocked: no tag was changed.**"), "{s}");
    }
}
