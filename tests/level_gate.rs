//! `decide --level N`, the gate before level N of the levels workflow, against a real registry
//! (Debian's `docker-registry` on 127.0.0.1): which images of the level build now, per image or
//! in batches named as `matrix_levels[N]` names them, and which are held back because a parent
//! still needs building — with `bake --batch` expanding the gate's entry to exactly the ready ones.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::registry::{content_tags, rt};
use common::*;
use skip_testkit::{ImageSpec, TestRegistry};

/// ```text
/// root ─┬─► a ─► a1, a2
///       └─► b ─► b1 … b5
/// ```
fn world(host: &str) -> Ws {
    let ws = Ws::new();
    let header = format!("version: 1\nrepository: {host}/acme/lv\n");
    write_dag(ws.path(), &header, &DAG, "scratch", false);
    ws
}

const DAG: [(&str, Option<&str>); 10] = [
    ("root", None),
    ("a", Some("root")),
    ("b", Some("root")),
    ("a1", Some("a")),
    ("a2", Some("a")),
    ("b1", Some("b")),
    ("b2", Some("b")),
    ("b3", Some("b")),
    ("b4", Some("b")),
    ("b5", Some("b")),
];

/// Push `name` at its content tag, on `parent` (as its build would).
fn push(reg: &TestRegistry, tags: &BTreeMap<String, String>, name: &str, parent: Option<&str>) {
    rt().block_on(async {
        let p = reg.pusher();
        let spec = match parent {
            Some(pa) => {
                let img = p.pull_image("acme/lv", &tags[pa]).await.unwrap();
                ImageSpec::oci().from_parent(&img)
            }
            None => ImageSpec::oci(),
        };
        p.push_image("acme/lv", Some(&tags[name]), &spec)
            .await
            .unwrap();
    });
}

fn gate(ws: &Ws, level: &str, extra: &[&str]) -> GhRun {
    let mut args = vec!["--level", level];
    args.extend_from_slice(extra);
    let r = gh_run(ws, "decide", &args, &[("GITHUB_ACTIONS", "true")]);
    assert_eq!(r.code, Some(0), "{}", r.everything());
    r
}

/// The images a gate's `level_matrix` builds: per-image entries by name, batch entries expanded
/// by `bake --batch … --select …`, as the level job does.
fn builds(ws: &Ws, r: &GhRun) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in r.json("level_matrix")["include"].as_array().unwrap() {
        if let Some(b) = e["batch"].as_str() {
            let o = ws.run(&[
                "bake",
                "--batch",
                b,
                "--select",
                e["select"].as_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            let bake: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            out.extend(bake["target"].as_object().unwrap().keys().cloned());
        } else {
            out.insert(e["name"].as_str().unwrap().to_string());
        }
    }
    out
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_gate_builds_the_ready_images_and_holds_the_subtree_of_a_failed_parent() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = world(&reg.host());
    let t = content_tags(&ws);

    // Nothing pushed: level 0 builds the root; level 1 waits for it.
    let g0 = gate(&ws, "0", &[]);
    assert_eq!(builds(&ws, &g0), set(&["root"]));
    assert_eq!(g0.get("level_need_build"), "true");
    assert_eq!(g0.get("level_held"), "0");
    let g1 = gate(&ws, "1", &[]);
    assert_eq!(g1.get("level_matrix"), r#"{"include":[]}"#);
    assert_eq!(g1.get("level_need_build"), "");
    assert_eq!(g1.get("level_held"), "2");
    assert!(
        g1.stdout
            .contains("::error::a is held back: its parent root was not built in this run"),
        "{}",
        g1.everything()
    );
    assert!(g1.summary.contains("held back"), "{}", g1.summary);
    // Every existing output is still written.
    for k in ["plan", "matrix_levels", "levels_need_build", "need_build"] {
        g1.get(k);
    }

    // The root is pushed (level 0 ran): level 1 builds both, in one batch past max-jobs 1.
    push(&reg, &t, "root", None);
    let g1 = gate(&ws, "1", &["--max-jobs", "1"]);
    let inc = g1.json("level_matrix")["include"].clone();
    assert_eq!(inc.as_array().unwrap().len(), 1, "{inc}");
    assert_eq!(inc[0]["batch"], "level1-1of1", "{inc}");
    assert_eq!(builds(&ws, &g1), set(&["a", "b"]));
    assert_eq!(g1.get("level_held"), "0");

    // `a` is built, `b`'s job fails: level 2 builds a1 and a2 (in the bucket decide names in
    // matrix_levels[2], its mask holding only them) and holds b1…b5, naming b.
    push(&reg, &t, "a", Some("root"));
    let g2 = gate(&ws, "2", &["--max-jobs", "1"]);
    assert_eq!(builds(&ws, &g2), set(&["a1", "a2"]));
    assert_eq!(g2.get("level_need_build"), "true");
    assert_eq!(g2.get("level_held"), "5");
    let inc = g2.json("level_matrix")["include"].clone();
    assert_eq!(inc[0]["count"], 2, "{inc}");
    let levels = g2.json("matrix_levels");
    let names_of = |v: &serde_json::Value| -> Vec<String> {
        v["include"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["batch"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names_of(&levels[2]), names_of(&g2.json("level_matrix")));
    for b in ["b1", "b2", "b3", "b4", "b5"] {
        assert!(
            g2.stdout.contains(&format!(
                "::error::{b} is held back: its parent b was not built in this run"
            )),
            "{}",
            g2.everything()
        );
    }
    // Per image when the ready ones fit max-jobs.
    let g2 = gate(&ws, "2", &["--max-jobs", "2"]);
    let inc = g2.json("level_matrix")["include"].clone();
    assert_eq!(inc[0]["name"], "a1", "{inc}");
    assert_eq!(
        inc[0]["build_args"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        format!("BASE_IMAGE={}/acme/lv:{}", reg.host(), t["a"])
    );
    assert_eq!(builds(&ws, &g2), set(&["a1", "a2"]));

    // A dry run builds nothing and holds nothing; without --level there are no level outputs.
    let dry = gate(&ws, "2", &["--dry-run"]);
    assert_eq!(dry.get("level_matrix"), r#"{"include":[]}"#);
    assert_eq!(dry.get("level_held"), "0");
    let plain = gh_run(&ws, "decide", &[], &[]);
    assert_eq!(plain.code, Some(0), "{}", plain.everything());
    assert!(
        !plain.out.contains_key("level_matrix"),
        "{:?}",
        plain.out.keys()
    );
}

/// `force` at the gate applies to the gated level only: a forced parent that the level below
/// built (or failed to) is judged by the registry, so its children are not held forever.
#[test]
fn force_at_the_gate_applies_to_its_level_only() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = world(&reg.host());
    let t = content_tags(&ws);
    push(&reg, &t, "root", None);
    for (n, p) in [("a", "root"), ("b", "root")] {
        push(&reg, &t, n, Some(p));
    }
    for n in ["a1", "a2"] {
        push(&reg, &t, n, Some("a"));
    }
    for n in ["b1", "b2", "b3", "b4", "b5"] {
        push(&reg, &t, n, Some("b"));
    }
    // Everything present: `force: all` at level 2 builds level 2, holds nothing.
    let g2 = gate(&ws, "2", &["--force", "all"]);
    assert_eq!(
        builds(&ws, &g2),
        set(&["a1", "a2", "b1", "b2", "b3", "b4", "b5"])
    );
    assert_eq!(g2.get("level_held"), "0");
    // `force: root` at level 1: the root is not rebuilt by this gate, level 1 is in place.
    let g1 = gate(&ws, "1", &["--force", "root"]);
    assert_eq!(g1.get("level_need_build"), "");
    assert_eq!(g1.get("level_held"), "0");
    // The root pushed again (its forced build ran): level 1 sits on an older root, and builds.
    push(&reg, &t, "root", None);
    let g1 = gate(&ws, "1", &["--force", "root"]);
    assert_eq!(builds(&ws, &g1), set(&["a", "b"]));
}

#[test]
fn a_bad_level_is_a_usage_error() {
    let ws = world("127.0.0.1:9");
    for bad in ["-1", "x", "1001"] {
        let r = gh_run(&ws, "decide", &["--level", bad], &[]);
        assert_eq!(r.code, Some(2), "{bad}: {}", r.everything());
        assert!(r.raw_out.is_empty(), "{bad}: outputs written");
    }
}

/// With `runners:` the native workflow merges level N from its gate's `merge_levels[N]` after
/// level N's platform jobs: the gate leaves out the images it holds back (not built in this
/// run: merging them would index nothing, or an earlier run's pushes on an older parent), and
/// keeps the ready ones. Plain decide still lists every image whose index is due.
#[test]
fn the_gate_merges_only_what_it_lets_build() {
    let reg = TestRegistry::start_open().unwrap();
    let ws = Ws::new();
    let header = format!(
        "version: 1\nrepository: {}/acme/lv\nplatforms: [linux/amd64, linux/arm64]\nrunners:\n  linux/amd64: ubuntu-24.04\n  linux/arm64: ubuntu-24.04-arm\n",
        reg.host()
    );
    let dag = [
        ("root", None),
        ("a", Some("root")),
        ("b", Some("root")),
        ("a1", Some("a")),
        ("b1", Some("b")),
    ];
    write_dag(ws.path(), &header, &dag, "scratch", false);
    let t = content_tags(&ws);
    // A platform job: `name` for `arch` at its per-platform tag, on its parent's image of that
    // platform (as `docker build --platform` pulls it from the parent's index).
    let push_platform = |name: &str, parent: Option<&str>, arch: &str| {
        rt().block_on(async {
            let p = reg.pusher();
            let mut spec = ImageSpec::oci().platform("linux", arch);
            if let Some(pa) = parent {
                let img = p
                    .pull_image("acme/lv", &format!("{}-linux-{arch}", t[pa]))
                    .await
                    .unwrap();
                spec = spec.from_parent(&img);
            }
            p.push_image("acme/lv", Some(&format!("{}-linux-{arch}", t[name])), &spec)
                .await
                .unwrap();
        });
    };
    let merge = |images: &str| gh_run(&ws, "merge", &["--images", images], &[]);
    let merge_levels = |r: &GhRun| -> Vec<String> {
        r.json("merge_levels")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };

    // Level 0 built and merged; level 1: a on both platforms, b's arm64 job failed. merge-1
    // writes a's index and refuses b's, naming the platform.
    for arch in ["amd64", "arm64"] {
        push_platform("root", None, arch);
    }
    assert_eq!(merge("root").code, Some(0));
    for arch in ["amd64", "arm64"] {
        push_platform("a", Some("root"), arch);
    }
    push_platform("b", Some("root"), "amd64");
    let m1 = merge("a,b");
    assert_eq!(m1.code, Some(1), "{}", m1.everything());
    assert!(
        m1.everything().contains("b: no image for linux/arm64"),
        "{}",
        m1.everything()
    );

    // The gate before level 2: a1 builds (both platforms), b1 is held back; level 2's merge
    // list is a1 alone. Plain decide lists both.
    let g2 = gate(&ws, "2", &[]);
    assert_eq!(g2.get("level_held"), "1");
    assert_eq!(builds(&ws, &g2), set(&["a1"]));
    assert_eq!(merge_levels(&g2), ["", "b", "a1"], "{}", g2.everything());
    assert_eq!(g2.get("merge_images"), "b,a1");
    let plain = gh_run(&ws, "decide", &[], &[]);
    assert_eq!(plain.code, Some(0), "{}", plain.everything());
    assert_eq!(merge_levels(&plain), ["", "b", "a1,b1"]);

    // Nothing held (b repaired): the gate's list is plain decide's.
    push_platform("b", Some("root"), "arm64");
    assert_eq!(merge("b").code, Some(0));
    let g2 = gate(&ws, "2", &[]);
    assert_eq!(g2.get("level_held"), "0");
    assert_eq!(merge_levels(&g2), ["", "", "a1,b1"], "{}", g2.everything());
    assert_eq!(builds(&ws, &g2), set(&["a1", "b1"]));
}
