//! The CLI as users run it: flags, INPUT_* variables, config discovery, errors and exit codes,
//! `inputs`, and the bundled examples.

mod common;

use common::*;

const MINIMAL: &str = "version: 1\nrepository: ghcr.io/acme/app\nimages:\n  app:\n    dockerfile: Dockerfile\n    tag: app-{hash}\n";

fn minimal() -> Ws {
    let ws = Ws::new();
    ws.write("skip-action.yml", MINIMAL);
    ws.write("Dockerfile", "FROM alpine\nCOPY src/ /src/\n");
    ws.write("src/a.txt", "a");
    ws
}

#[test]
fn version_and_help() {
    let ws = Ws::new();
    let v = ws.run(&["--version"]);
    assert!(v.status.success());
    assert!(stdout(&v).starts_with("skip-action "));
    let h = ws.run(&["--help"]);
    assert!(h.status.success());
    assert!(stdout(&h).contains("hash") && stdout(&h).contains("inputs"));
}

#[test]
fn hash_table_and_json() {
    let ws = minimal();
    let t = ws.run(&["hash"]);
    assert!(t.status.success(), "{}", stderr(&t));
    let out = stdout(&t);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("ghcr.io/acme/app:app-"), "{out}");
    let j = ws.hash_json();
    assert_eq!(j["version"], 1);
    let img = &j["images"][0];
    assert_eq!(img["name"], "app");
    assert_eq!(img["variant"], serde_json::Value::Null);
    let hash = img["hash"].as_str().unwrap();
    assert_eq!(img["tag"], format!("app-{}", &hash[..12]));
    assert_eq!(
        img["image"],
        format!("ghcr.io/acme/app:app-{}", &hash[..12])
    );
}

#[test]
fn config_discovery_order_and_flag_over_env() {
    let ws = minimal();
    // .github/skip-action.yml is used only when ./skip-action.yml is absent.
    ws.write(
        ".github/skip-action.yml",
        &MINIMAL.replace("ghcr.io/acme/app", "ghcr.io/acme/other"),
    );
    assert!(stdout(&ws.run(&["hash"])).contains("ghcr.io/acme/app:"));
    ws.remove("skip-action.yml");
    assert!(stdout(&ws.run(&["hash"])).contains("ghcr.io/acme/other:"));
    // INPUT_CONFIG, and --config winning over it.
    ws.write(
        "alt.yml",
        &MINIMAL.replace("ghcr.io/acme/app", "ghcr.io/acme/alt"),
    );
    let o = ws.run_env(&["hash"], &[("INPUT_CONFIG", "alt.yml")]);
    assert!(stdout(&o).contains("ghcr.io/acme/alt:"), "{}", stderr(&o));
    let o = ws.run_env(
        &["hash", "--config", ".github/skip-action.yml"],
        &[("INPUT_CONFIG", "alt.yml")],
    );
    assert!(stdout(&o).contains("ghcr.io/acme/other:"));
    // An empty INPUT_ (how Actions passes an unset input) means "not given".
    let o = ws.run_env(&["hash"], &[("INPUT_CONFIG", "")]);
    assert!(stdout(&o).contains("ghcr.io/acme/other:"), "{}", stderr(&o));
}

#[test]
fn command_from_input_command() {
    let ws = minimal();
    let o = ws.run_env(&[], &[("INPUT_COMMAND", "hash"), ("INPUT_JSON", "true")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"][0]["name"], "app");
}

#[test]
fn missing_config_is_exit_2_with_the_fix() {
    let ws = Ws::new();
    let o = ws.run(&["hash"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("skip-action.yml"), "{}", stderr(&o));
    let o = ws.run(&["hash", "--config", "nope.yml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.yml"));
}

/// Each bad config: exit 2, no panic, a message naming the file and the given fragments.
fn bad(config: &str, fragments: &[&str]) {
    let ws = minimal();
    ws.write("Dockerfile.v", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n");
    ws.write("skip-action.yml", config);
    let o = ws.run(&["hash"]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "config:\n{config}\nstderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("skip-action.yml"), "no file name in: {err}");
    for f in fragments {
        assert!(err.contains(f), "`{f}` not in: {err}");
    }
}

#[test]
fn config_errors_name_file_key_and_fix() {
    bad(
        &MINIMAL.replace("tag:", "tga:"),
        &["unknown field `tga`", "line 6"],
    );
    bad(
        &MINIMAL.replace("version: 1", "version: 2"),
        &["version", "version: 1"],
    );
    bad(
        &MINIMAL.replace("app-{hash}", "app-latest"),
        &["images.app.tag", "{hash}"],
    );
    bad(
        &MINIMAL.replace("app-{hash}", "app-{hsah}"),
        &["{hsah}", "{hash}"],
    );
    bad(
        &MINIMAL.replace("app-{hash}", "app/{hash}"),
        &["not a valid OCI tag"],
    );
    bad(&MINIMAL.replace("app-{hash}", "'{hash'"), &["unclosed"]);
    bad(
        &MINIMAL.replace("ghcr.io/acme/app", "ghcr.io/Acme/App"),
        &["repository"],
    );
    bad(
        &MINIMAL.replace("ghcr.io/acme/app", "ghcr.io/acme/app:v1"),
        &["has a tag"],
    );
    bad(
        &format!(
            "{MINIMAL}  v:\n    from: nope\n    dockerfile: Dockerfile.v\n    tag: v-{{hash}}\n"
        ),
        &["parent `nope` does not exist"],
    );
    bad(
        "version: 1\nrepository: ghcr.io/a/b\nimages:\n  a:\n    from: b\n    dockerfile: Dockerfile.v\n    tag: a-{hash}\n  b:\n    from: a\n    dockerfile: Dockerfile.v\n    tag: b-{hash}\n",
        &["cycle", "a -> b -> a"],
    );
    bad(
        &MINIMAL.replace("dockerfile: Dockerfile", "dockerfile: ../Dockerfile"),
        &["leaves the repository root"],
    );
    bad(
        &MINIMAL.replace("dockerfile: Dockerfile", "dockerfile: /etc/passwd"),
        &["absolute"],
    );
    bad(
        &MINIMAL.replace("dockerfile: Dockerfile", "dockerfile: Missing"),
        &["Missing", "not found"],
    );
    bad(
        "version: 1\nrepository: ghcr.io/a/b\nimages:\n  a:\n    dockerfile: Dockerfile\n    variants: {x: {}}\n    matrix: {k: [1]}\n",
        &["either `variants` or `matrix`"],
    );
    bad(
        &MINIMAL.replace("images:", "hash_length: 3\nimages:"),
        &["hash_length"],
    );
    bad(
        "version: 1\nrepository: ghcr.io/a/b\nimages: {}\n",
        &["no images"],
    );
    bad("not: [valid", &["skip-action.yml"]);
}

#[test]
fn dockerfile_errors_name_the_file_and_line() {
    let ws = minimal();
    ws.write("Dockerfile", "RUN echo no from\n");
    let o = ws.run(&["hash"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Dockerfile"), "{}", stderr(&o));
    assert!(stderr(&o).contains("FROM"), "{}", stderr(&o));
}

#[test]
fn dockerignore_errors_name_the_file_and_line() {
    let ws = minimal();
    ws.write(".dockerignore", "ok\n[unterminated\n");
    let o = ws.run(&["hash"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(".dockerignore"), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
}

#[test]
fn symlinked_dockerfile_outside_the_workspace_is_refused() {
    let ws = minimal();
    ws.remove("Dockerfile");
    ws.symlink("/etc/passwd", "Dockerfile");
    let o = ws.run(&["hash"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("outside the workspace"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("root:"),
        "leaked /etc/passwd: {}",
        stderr(&o)
    );
}

#[test]
fn inputs_lists_sorted_context_paths() {
    let ws = devbox();
    let o = ws.run(&["inputs", "base"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert!(lines.contains(&"rootfs/etc/profile.d/devbox.sh".to_string()));
    assert!(lines.contains(&"scripts/entrypoint.sh".to_string()));
    assert!(!lines
        .iter()
        .any(|l| l.contains("NOTES.md") || l.starts_with("variant")));
    let o = ws.run(&["inputs", "devbox/omos"]);
    assert_eq!(stdout(&o).trim(), "variant/motd");
    let o = ws.run(&["inputs", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("devbox/omos"), "{}", stderr(&o));
}

#[test]
fn inputs_json_explains_the_decision() {
    let ws = devbox();
    let o = ws.run(&["inputs", "devbox/omos", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["declared_args"]["INSTALL_OMOS"], "true");
    assert_eq!(v["parents"][0]["name"], "base");
    assert_eq!(v["files"][0]["path"], "variant/motd");
    assert_eq!(v["files"][0]["type"], "file");
    assert_eq!(v["files"][0]["mode"], "0644");
    assert_eq!(v["files"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(v["build_args"]
        .as_str()
        .unwrap()
        .contains("BASE_IMAGE=ghcr.io/acme/devbox:base-"));
    assert_eq!(v["sources"][0]["pattern"], "variant/motd");
}

#[test]
fn devbox_example_expands_as_documented() {
    let v = devbox().hash_json();
    let names: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "base",
            "devbox/base",
            "devbox/omos",
            "devbox/with-pi",
            "devbox/omos-with-pi"
        ]
    );
    let omos = &v["images"][2];
    assert_eq!(omos["variant"], "omos");
    assert!(omos["tag"].as_str().unwrap().starts_with("omos-"));
    assert_eq!(omos["args"]["INSTALL_OMOS"], "true");
    assert_eq!(omos["args"]["OPENCODE_VERSION"], "1.14.44");
    let ba = omos["build_args"].as_str().unwrap();
    assert!(ba.contains("INSTALL_OMOS=true\n"), "{ba}");
    assert!(ba.contains("BASE_IMAGE=ghcr.io/acme/devbox:base-"), "{ba}");
}

#[test]
fn stack_example_three_levels_two_parents_matrix() {
    let ws = Ws::new();
    copy_tree(&repo_root().join("examples/stack"), ws.path());
    let o = ws.run_env(&["hash", "--json"], &[("GITHUB_REF", "refs/tags/v2.0.1")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let imgs = v["images"].as_array().unwrap();
    let names: Vec<&str> = imgs.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "base",
            "runtime/python",
            "runtime/node",
            "tools",
            "app/python-slim",
            "app/python-full",
            "app/node-slim"
        ]
    );
    let by = |n: &str| imgs.iter().find(|i| i["name"] == n).unwrap();
    assert_eq!(by("app/python-slim")["level"], 2);
    assert_eq!(
        by("app/python-slim")["parents"],
        serde_json::json!(["runtime/python", "tools"])
    );
    assert_eq!(by("app/python-full")["args"]["EXTRA_PACKAGES"], "numpy");
    let ba = by("app/node-slim")["build_args"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ba.contains("RUNTIME_IMAGE=registry.example.com/acme/stack:runtime-node-"),
        "{ba}"
    );
    assert!(
        ba.contains("TOOLS_IMAGE=registry.example.com/acme/stack:tools-"),
        "{ba}"
    );
    assert_eq!(
        by("base")["tag"].as_str().unwrap().len(),
        "base-".len() + 16
    );
    // The runtime variants copy different install scripts.
    let before = hashes_of(&v);
    ws.write("runtime/install-node.sh", "apk add nodejs npm\n");
    let after = ws.hashes();
    let moved: Vec<&String> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    assert_eq!(moved, ["app/node-slim", "runtime/node"]);
}

#[test]
fn bake_file_for_a_batch() {
    let ws = devbox();
    let o = ws.run(&["bake", "--images", "base,devbox/omos"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["group"]["default"]["targets"],
        serde_json::json!(["base", "devbox_omos"])
    );
    let t = &v["target"]["devbox_omos"];
    assert_eq!(t["args"]["INSTALL_OMOS"], "true");
    assert!(t["args"]["BASE_IMAGE"]
        .as_str()
        .unwrap()
        .starts_with("ghcr.io/acme/devbox:base-"));
    assert!(t["dockerfile"]
        .as_str()
        .unwrap()
        .ends_with("/Dockerfile.variant"));
    assert!(t["tags"][0]
        .as_str()
        .unwrap()
        .starts_with("ghcr.io/acme/devbox:omos-"));
    // The tag matches what hash prints.
    let h = ws.hash_json();
    let omos = h["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "devbox/omos")
        .unwrap();
    assert_eq!(t["tags"][0], omos["image"]);
    // The child names its parent's target by the parent's image reference (the BASE_IMAGE it
    // is built FROM), so bake builds the base first and the variant uses that result.
    let base_ref = t["args"]["BASE_IMAGE"].as_str().unwrap();
    assert_eq!(
        t["contexts"],
        serde_json::json!({ base_ref: "target:base" }),
        "{t}"
    );
    assert_eq!(v["target"]["base"].get("contexts"), None);
    // A parent outside the file is pulled by its tag: no context for it.
    let o = ws.run(&["bake", "--images", "devbox/omos"]);
    let only: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(only["target"]["devbox_omos"].get("contexts"), None);
    // All images by default; unknown names are an error.
    let all: serde_json::Value = serde_json::from_slice(&ws.run(&["bake"]).stdout).unwrap();
    assert_eq!(all["target"].as_object().unwrap().len(), 5);
    for v in [
        "devbox_base",
        "devbox_omos",
        "devbox_with-pi",
        "devbox_omos-with-pi",
    ] {
        assert_eq!(
            all["target"][v]["contexts"][base_ref], "target:base",
            "{v}: {}",
            all["target"][v]
        );
    }
    let o = ws.run(&["bake", "--images", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

/// One grammar for repositories, the registry client's: what the client would refuse fails at
/// config time (exit 2, naming the key), what it accepts is accepted.
#[test]
fn repositories_use_the_registry_clients_grammar() {
    bad(
        &MINIMAL.replace("ghcr.io/acme/app", "localhost:99999/acme/x"),
        &["repository", "port \"99999\""],
    );
    bad(
        &MINIMAL.replace("ghcr.io/acme/app", "-bad-.example.com/acme/x"),
        &["repository", "\"-bad-\""],
    );
    bad(
        &MINIMAL.replace(
            "tag: app-{hash}\n",
            "tag: app-{hash}\n    repository: localhost:99999/acme/x\n",
        ),
        &["images.app.repository", "port"],
    );
    bad(
        &MINIMAL.replace(
            "tag: app-{hash}\n",
            "tag: app-{hash}\n    promote:\n      - {tag: latest, repository: -bad-.example.com/x}\n",
        ),
        &["images.app.promote[0]"],
    );
    let ws = minimal();
    ws.write(
        "skip-action.yml",
        &MINIMAL.replace("ghcr.io/acme/app", "'[::1]:5000/acme/x'"),
    );
    let o = ws.run(&["hash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("[::1]:5000/acme/x:app-"),
        "{}",
        stdout(&o)
    );
}
