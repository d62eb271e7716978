//! Racing runs never move an alias backwards.
//!
//! A push to `main` and a tag push (or two quick pushes) run the same pipeline at once and can
//! finish in either order. Registries have no compare-and-swap on tags, and Gitea up to 1.25
//! ignores `concurrency:`, so promote itself must refuse to move an alias back to an older
//! build. The rule:
//!
//! - **This run's commit** is the ordering key of the move: `--revision`, else `GITHUB_SHA`,
//!   else `git rev-parse HEAD` in the checkout. It is the commit whose config and files define
//!   the hashes being promoted (a reused image may have been built from an older commit; that
//!   is fine: the run at the newer commit says its content is current, as after a revert).
//! - **The alias's commit** is the revision the image it points at now records:
//!   `org.opencontainers.image.revision`, as a manifest (or index) annotation or an image config
//!   label — what `docker/metadata-action` sets, or `labels:` in the build step.
//! - The alias moves when its commit is an ancestor of (or equal to) this run's commit, asked of
//!   the checkout's own history (`git merge-base --is-ancestor`, no network). Otherwise it is
//!   **held**: not moved, said in the log and summary, and promote still succeeds (the newer run
//!   already did the work). When the order cannot be told — the alias's commit is not in the
//!   checkout (a shallow clone: use `fetch-depth: 0`), the branches diverged, this run's commit
//!   is unknown — the alias is held too, and the reason says which.
//! - An alias whose image records no revision (built before the label was set) is moved, with a
//!   note: there is nothing to order by, and holding it would hold it for ever.
//!
//! Known gap: an alias moved by a newer run to a *reused* image records that image's (older)
//! build commit; an older run racing after it compares against that older commit. Builds that
//! set the label keep the window to runs between the two builds.
//!
//! [`judge`] is pure; [`git_order`] asks git, [`revision_of`] asks the registry.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use skip_registry::manifest::ParsedManifest;
use skip_registry::{Client, RepoRef};

/// The annotation and label build jobs set (OCI image spec, pre-defined annotation keys).
pub const REVISION_KEY: &str = "org.opencontainers.image.revision";

/// How two commits are ordered in the checkout's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitOrder {
    Same,
    /// The alias's commit is an ancestor of this run's: moving is forwards.
    Newer,
    /// This run's commit is an ancestor of the alias's: moving would go backwards.
    Older,
    /// Neither contains the other (diverged branches).
    Diverged,
    /// Could not be told, and why.
    Unknown(String),
}

/// What to do with one alias that would move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Move; the note (if any) goes in the log ("ordering not checked: …").
    Move(Option<String>),
    /// Do not move, and why.
    Hold(String),
}

/// Whether a string is a git commit id as build jobs record it (hex, 7 to 64 digits). Anything
/// else (a branch name, `-o…`) is never passed to git.
pub fn is_commit_id(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Judge one move. `run` is this run's commit (`None`: unknown); `alias` the revision the image
/// at the alias records (`None`: it records none); `order` the git answer for (alias, run) when
/// both are known commit ids. Pure.
pub fn judge(run: Option<&str>, alias: Option<&str>, order: Option<&GitOrder>) -> Verdict {
    let Some(alias) = alias else {
        return Verdict::Move(Some(format!(
            "ordering not checked: the image at the alias records no revision ({REVISION_KEY})"
        )));
    };
    if !is_commit_id(alias) {
        return Verdict::Hold(format!(
            "cannot order: the image at the alias records revision `{}`, not a commit id",
            alias.escape_debug()
        ));
    }
    let Some(run) = run else {
        return Verdict::Hold(format!(
            "cannot order: this run's commit is unknown (no --revision, GITHUB_SHA or git checkout), and the alias holds a build of {}",
            short(alias)
        ));
    };
    if same_commit(run, alias) {
        return Verdict::Move(None);
    }
    match order {
        Some(GitOrder::Same) | Some(GitOrder::Newer) => Verdict::Move(None),
        Some(GitOrder::Older) => Verdict::Hold(format!(
            "not moved backwards: the alias holds a build of {}, which is newer than this run's commit {}",
            short(alias),
            short(run)
        )),
        Some(GitOrder::Diverged) => Verdict::Hold(format!(
            "cannot order: the alias holds a build of {}, and neither it nor this run's commit {} contains the other (diverged branches); not moved",
            short(alias),
            short(run)
        )),
        Some(GitOrder::Unknown(why)) => Verdict::Hold(format!(
            "cannot order this run's commit {} against the alias's {}: {why}; not moved",
            short(run),
            short(alias)
        )),
        None => Verdict::Hold(format!(
            "cannot order this run's commit {} against the alias's {}: not asked; not moved",
            short(run),
            short(alias)
        )),
    }
}

fn short(c: &str) -> &str {
    &c[..c.len().min(12)]
}

/// Two ids name the same commit when one is a prefix of the other (an abbreviated id).
fn same_commit(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a.starts_with(&b) || b.starts_with(&a)
}

/// This run's commit: `flag` (`--revision`), else `env` (`GITHUB_SHA`), else the checkout's
/// `HEAD`.
pub fn run_revision(flag: Option<&str>, env: Option<&str>, dir: &Path) -> Option<String> {
    let given = flag
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or(env)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(g) = given {
        return Some(g.to_string());
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    is_commit_id(&s).then_some(s)
}

/// Order `alias` against `run` in the git history of `dir`. Both must be commit ids
/// ([`is_commit_id`]). Runs git; never the network.
pub fn git_order(dir: &Path, alias: &str, run: &str) -> GitOrder {
    if !is_commit_id(alias) || !is_commit_id(run) {
        return GitOrder::Unknown("not commit ids".into());
    }
    if same_commit(run, alias) {
        return GitOrder::Same;
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .map(|o| o.status.code())
    };
    for (c, whose) in [(run, "this run's"), (alias, "the alias's")] {
        match git(&["cat-file", "-e", &format!("{c}^{{commit}}")]) {
            Ok(Some(0)) => {}
            Ok(_) => {
                return GitOrder::Unknown(format!(
                    "{whose} commit {} is not in this checkout's history (check out with `fetch-depth: 0`)",
                    short(c)
                ))
            }
            Err(e) => return GitOrder::Unknown(format!("git could not be run: {e}")),
        }
    }
    let is_ancestor = |a: &str, b: &str| git(&["merge-base", "--is-ancestor", a, b]);
    match is_ancestor(alias, run) {
        Ok(Some(0)) => return GitOrder::Newer,
        Ok(Some(1)) => {}
        Ok(code) => return GitOrder::Unknown(format!("git merge-base exited with {code:?}")),
        Err(e) => return GitOrder::Unknown(format!("git could not be run: {e}")),
    }
    match is_ancestor(run, alias) {
        Ok(Some(0)) => GitOrder::Older,
        Ok(Some(1)) => GitOrder::Diverged,
        Ok(code) => GitOrder::Unknown(format!("git merge-base exited with {code:?}")),
        Err(e) => GitOrder::Unknown(format!("git could not be run: {e}")),
    }
}

/// Config blobs are a few KiB; refuse anything absurd.
const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// The revision the image `repo@digest` records: the manifest's (or index's) annotation, else
/// (for an index, of its first child) the image config's label. `Ok(None)`: it records none.
pub async fn revision_of(
    client: &Client,
    repo: &RepoRef,
    digest: &str,
) -> anyhow::Result<Option<String>> {
    let m = client.get_manifest(repo, digest).await?;
    let img = match m.parse()? {
        ParsedManifest::Index(idx) => {
            if let Some(r) = idx.annotations.as_ref().and_then(|a| a.get(REVISION_KEY)) {
                return Ok(Some(r.clone()));
            }
            let Some(child) = idx.manifests.first() else {
                return Ok(None);
            };
            match client.get_manifest(repo, &child.digest).await?.parse()? {
                ParsedManifest::Image(img) => img,
                ParsedManifest::Index(_) => return Ok(None),
            }
        }
        ParsedManifest::Image(img) => img,
    };
    if let Some(r) = img.annotations.as_ref().and_then(|a| a.get(REVISION_KEY)) {
        return Ok(Some(r.clone()));
    }
    let bytes = client
        .get_blob(repo, &img.config.digest, MAX_CONFIG_BYTES)
        .await?;
    label_of_config(&bytes).with_context(|| format!("config blob {repo}@{}", img.config.digest))
}

/// `config.Labels[org.opencontainers.image.revision]` of an image config blob.
pub fn label_of_config(bytes: &[u8]) -> anyhow::Result<Option<String>> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).context("not an image config (JSON)")?;
    Ok(v.get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(|l| l.get(REVISION_KEY))
        .and_then(|r| r.as_str())
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn forwards_moves_backwards_holds_unknown_holds() {
        assert_eq!(
            judge(Some(B), Some(A), Some(&GitOrder::Newer)),
            Verdict::Move(None)
        );
        assert_eq!(judge(Some(A), Some(A), None), Verdict::Move(None));
        // An abbreviated id names the same commit.
        assert_eq!(judge(Some(A), Some(&A[..7]), None), Verdict::Move(None));
        let Verdict::Hold(why) = judge(Some(A), Some(B), Some(&GitOrder::Older)) else {
            panic!()
        };
        assert!(why.starts_with("not moved backwards"), "{why}");
        assert!(
            why.contains("222222222222") && why.contains("111111111111"),
            "{why}"
        );
        for o in [
            GitOrder::Diverged,
            GitOrder::Unknown("not in this checkout".into()),
        ] {
            assert!(matches!(
                judge(Some(A), Some(B), Some(&o)),
                Verdict::Hold(_)
            ));
        }
        assert!(matches!(judge(Some(A), Some(B), None), Verdict::Hold(_)));
        let Verdict::Hold(why) = judge(None, Some(B), None) else {
            panic!()
        };
        assert!(why.contains("this run's commit is unknown"), "{why}");
        // A revision that is not a commit id is never ordered, never passed to git.
        assert!(matches!(
            judge(Some(A), Some("--output=x"), None),
            Verdict::Hold(_)
        ));
        // Nothing recorded: moved, with a note.
        let Verdict::Move(Some(note)) = judge(Some(A), None, None) else {
            panic!()
        };
        assert!(note.contains(REVISION_KEY));
    }

    #[test]
    fn commit_ids_and_labels() {
        assert!(is_commit_id(A) && is_commit_id("abcdef0"));
        assert!(!is_commit_id("main") && !is_commit_id("abc") && !is_commit_id("-abcdef0"));
        assert_eq!(
            label_of_config(
                br#"{"config":{"Labels":{"org.opencontainers.image.revision":"abc"}}}"#
            )
            .unwrap()
            .as_deref(),
            Some("abc")
        );
        assert_eq!(label_of_config(br#"{"config":{}}"#).unwrap(), None);
        assert!(label_of_config(b"<html>").is_err());
    }

    #[test]
    fn git_orders_a_real_history() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let o = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
            String::from_utf8(o.stdout).unwrap().trim().to_string()
        };
        git(&["init", "-q"]);
        git(&["commit", "-q", "--allow-empty", "-m", "one"]);
        let one = git(&["rev-parse", "HEAD"]);
        git(&["commit", "-q", "--allow-empty", "-m", "two"]);
        let two = git(&["rev-parse", "HEAD"]);
        git(&["checkout", "-q", "-b", "side", &one]);
        git(&["commit", "-q", "--allow-empty", "-m", "side"]);
        let side = git(&["rev-parse", "HEAD"]);
        let p = dir.path();
        assert_eq!(git_order(p, &one, &two), GitOrder::Newer);
        assert_eq!(git_order(p, &two, &one), GitOrder::Older);
        assert_eq!(git_order(p, &two, &two), GitOrder::Same);
        assert_eq!(git_order(p, &two, &side), GitOrder::Diverged);
        let GitOrder::Unknown(why) = git_order(p, B, &two) else {
            panic!()
        };
        assert!(why.contains("fetch-depth: 0"), "{why}");
        assert_eq!(run_revision(None, None, p).as_deref(), Some(side.as_str()));
        assert_eq!(run_revision(None, Some(B), p).as_deref(), Some(B));
        assert_eq!(run_revision(Some(A), Some(B), p).as_deref(), Some(A));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(run_revision(None, None, empty.path()), None);
    }
}
