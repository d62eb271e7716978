//! Deep DAGs against a real registry: decide verifies reuse with the judge promote uses
//! (`skip_action::lineage`), so the two agree in every state a pipeline can leave behind, and a
//! stale image is rebuilt by the next run instead of blocking promote forever.
//!
//! The DAG, 5 levels with a fork (the shape of jupyter/docker-stacks):
//! ```text
//! foundation ─► base ─► minimal ─┬─► scipy ─► tensorflow
//!                                └─► r
//! ```
//! Builds are simulated by pushing synthetic images at the content tags, each FROM its parent's
//! current push (its layers first, as BuildKit produces).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::registry::{content_tags, rt};
use common::*;
use skip_testkit::{FaultProxy, ImageSpec, PushedImage, Pusher, TestRegistry};

const REPO: &str = "acme/stack";
/// (image, parent), parents first.
const DAG: [(&str, Option<&str>); 6] = [
    ("foundation", None),
    ("base", Some("foundation")),
    ("minimal", Some("base")),
    ("scipy", Some("minimal")),
    ("r", Some("minimal")),
    ("tensorflow", Some("scipy")),
];

fn workspace(host: &str) -> Ws {
    let ws = Ws::new();
    let header = format!("version: 1\nrepository: {host}/{REPO}\n");
    write_dag(ws.path(), &header, &DAG, "debian:12", true);
    ws
}

/// The registry as the test built it: the current push of every image.
struct Stack {
    pusher: Pusher,
    tags: BTreeMap<String, String>,
    pushed: BTreeMap<String, PushedImage>,
}

impl Stack {
    /// "Build" `name`: push it at its content tag, FROM its parent's current push.
    fn build(&mut self, name: &str) {
        let parent = DAG.iter().find(|(n, _)| *n == name).unwrap().1;
        let spec = match parent {
            Some(p) => ImageSpec::oci().from_parent(&self.pushed[p]),
            None => ImageSpec::oci().layers(2),
        };
        let img = rt()
            .block_on(self.pusher.push_image(REPO, Some(&self.tags[name]), &spec))
            .unwrap();
        self.pushed.insert(name.to_string(), img);
    }
}

fn decide(ws: &Ws) -> GhRun {
    let d = gh_run(ws, "decide", &[], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    d
}

fn to_build(d: &GhRun) -> BTreeSet<String> {
    d.plan()
        .into_iter()
        .filter(|(_, (b, _))| *b)
        .map(|(n, _)| n)
        .collect()
}

/// The images promote blocks as not built on their current parent (dry run: checks only).
fn promote_blocks(ws: &Ws) -> (bool, BTreeSet<String>) {
    let o = ws.run(&["promote", "--dry-run", "--json", "--wait", "0"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    let stale = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_str().unwrap().contains("is not built on the current"))
        })
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    (v["blocked"].as_bool().unwrap(), stale)
}

/// decide rebuilds everything promote would block.
fn agree(ws: &Ws, d: &GhRun) {
    let (_, stale) = promote_blocks(ws);
    let build = to_build(d);
    assert!(
        stale.is_subset(&build),
        "promote blocks {stale:?}, decide builds only {build:?}"
    );
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_five_level_dag_with_a_fork_rebuilds_exactly_what_sits_on_a_new_push() {
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let ws = workspace(&proxy.host());
    let mut stack = Stack {
        pusher: reg.pusher(),
        tags: content_tags(&ws),
        pushed: BTreeMap::new(),
    };

    // Nothing pushed: everything builds, nothing is read beyond the probes.
    let d = decide(&ws);
    assert_eq!(to_build(&d).len(), 6);
    // Five levels: variants_matrix holds level 1 only; decide says where the rest is.
    assert_eq!(
        d.json("variants_matrix")["include"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(d.json("variants_matrix")["include"][0]["name"], "base");
    assert_eq!(d.get("variants_need_build"), "true");
    assert_eq!(d.get("levels_need_build"), "[true,true,true,true,true]");
    assert!(
        d.stderr
            .contains("`variants_matrix` / `variants_need_build` hold level 1 only")
            && d.stderr.contains("matrix_levels"),
        "{}",
        d.stderr
    );

    // 1. Built in level order: everything is reused, and promote passes.
    for (name, _) in DAG {
        stack.build(name);
    }
    let before = proxy.request_count();
    let d = decide(&ws);
    assert!(to_build(&d).is_empty(), "{:?}", d.plan());
    assert_eq!(d.get("need_build"), "");
    assert_eq!(d.get("variants_need_build"), "");
    assert!(d.plan().values().all(|(_, r)| r == "tag exists"));
    // Each manifest read once (six content tags, single-arch: one GET each), by the digest the
    // probe returned — the image judged is the image probed.
    let gets: Vec<String> = proxy.requests()[before..]
        .iter()
        .filter(|r| r.method == "GET" && r.target.contains("/manifests/"))
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(gets.len(), 6, "{gets:#?}");
    assert_eq!(gets.iter().collect::<BTreeSet<_>>().len(), 6, "{gets:#?}");
    assert!(
        gets.iter().all(|g| g.contains("/manifests/sha256:")),
        "{gets:#?}"
    );
    let (blocked, stale) = promote_blocks(&ws);
    assert!(!blocked && stale.is_empty(), "{stale:?}");

    // 2. The root's child pushed again under its tag (a forced build, a re-run job): exactly
    //    its descendants rebuild, each with its reason; the root and base itself are reused.
    stack.build("base");
    let d = decide(&ws);
    assert_eq!(
        to_build(&d),
        set(&["minimal", "scipy", "r", "tensorflow"]),
        "{:?}",
        d.plan()
    );
    let plan = d.plan();
    assert!(
        plan["minimal"].1.starts_with("built on an older base: "),
        "{}",
        plan["minimal"].1
    );
    assert_eq!(plan["scipy"].1, "parent minimal is being built");
    assert_eq!(plan["r"].1, "parent minimal is being built");
    assert_eq!(plan["tensorflow"].1, "parent scipy is being built");
    assert_eq!(plan["base"].1, "tag exists");
    // The level matrices hold them in order, one job per level.
    assert_eq!(d.get("levels_need_build"), "[false,false,true,true,true]");
    let lv = d.json("matrix_levels");
    assert_eq!(lv[3]["include"].as_array().unwrap().len(), 2);
    agree(&ws, &d);
    assert_eq!(promote_blocks(&ws).1, set(&["minimal"]));

    // Rebuilding in level order (what the levels workflow does) brings everything back.
    for n in ["minimal", "scipy", "r", "tensorflow"] {
        stack.build(n);
    }
    let d = decide(&ws);
    assert!(to_build(&d).is_empty(), "{:?}", d.plan());
    assert_eq!(promote_blocks(&ws), (false, BTreeSet::new()));

    // 3. A mid-level image pushed again: only what sits on it.
    stack.build("scipy");
    let d = decide(&ws);
    assert_eq!(to_build(&d), set(&["tensorflow"]), "{:?}", d.plan());
    assert!(d.plan()["tensorflow"]
        .1
        .starts_with("built on an older scipy: "));
    agree(&ws, &d);

    // A child pushed again on a stale parent (a re-run of only its job, from an old base):
    // still stale, and decide keeps saying so until it is built on the current parent.
    let old_scipy = stack.pushed["scipy"].clone();
    stack.build("scipy");
    let current = stack.pushed.insert("scipy".into(), old_scipy).unwrap();
    stack.build("tensorflow");
    stack.pushed.insert("scipy".into(), current);
    let d = decide(&ws);
    assert_eq!(to_build(&d), set(&["tensorflow"]), "{:?}", d.plan());
    agree(&ws, &d);

    // 4. After rebuilding in order: all reused, and promote passes (and really moves).
    stack.build("tensorflow");
    let d = decide(&ws);
    assert!(to_build(&d).is_empty(), "{:?}", d.plan());
    assert_eq!(promote_blocks(&ws), (false, BTreeSet::new()));
    let o = ws.run(&["promote", "--wait", "0"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
}

/// An unanswerable manifest read builds, like an unanswerable probe, and says why; with
/// `on-registry-error: fail` it fails and writes nothing.
#[test]
fn an_unreadable_manifest_during_the_check_builds_to_be_safe() {
    use skip_testkit::{Fault, FaultRule, Trigger};
    let reg = TestRegistry::start_open().unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let ws = workspace(&proxy.host());
    let mut stack = Stack {
        pusher: reg.pusher(),
        tags: content_tags(&ws),
        pushed: BTreeMap::new(),
    };
    for (name, _) in DAG {
        stack.build(name);
    }
    // Every manifest GET fails (HEAD probes still answer): nothing can be verified.
    proxy.set_rules(vec![
        FaultRule::new(Fault::status(500), Trigger::Always).method("GET")
    ]);
    let d = gh_run(&ws, "decide", &["--timeout", "20"], &[]);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let plan = d.plan();
    assert!(!plan["foundation"].0, "the root has no parent to check");
    for (name, _) in &DAG[1..] {
        let (b, r) = &plan[*name];
        assert!(*b, "{name}: {r}");
    }
    assert!(
        plan["base"]
            .1
            .starts_with("could not check that it is built on its current parent")
            && plan["base"].1.ends_with("; building to be safe"),
        "{}",
        plan["base"].1
    );
    let d = gh_run(
        &ws,
        "decide",
        &["--timeout", "20", "--on-registry-error", "fail"],
        &[],
    );
    assert_eq!(d.code, Some(1), "{}", d.stderr);
    assert!(d.out.is_empty());
    assert!(d.stderr.contains("on-registry-error: fail"), "{}", d.stderr);
}
