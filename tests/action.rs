//! action.yml, checked against the contract and against the binary.
//!
//! GitHub does not set `INPUT_*` for the steps of a composite action, so every input must be
//! mapped by hand in the `env:` of the step that runs the binary; `act` does set them, so a missing
//! mapping would pass the end-to-end tests and fail on GitHub. Likewise every output must be
//! declared and forwarded one by one. This test reads action.yml and checks both, and runs the real
//! binary (`decide` and `promote` against a local registry) to compare the output names it writes
//! with the ones action.yml forwards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;
use skip_testkit::{ImageSpec, TestRegistry};

const BIN: &str = env!("CARGO_BIN_EXE_skip-action");

/// The inputs of the contract (README), exactly.
const INPUTS: [&str; 21] = [
    "command",
    "config",
    "dry-run",
    "force",
    "version",
    "max-jobs",
    "username",
    "password",
    "token",
    "require-jobs",
    "aliases",
    "require-tested",
    "revision",
    "images",
    "digest",
    "on-registry-error",
    "level",
    "batch",
    "select",
    "binary",
    "download-url",
];
/// Inputs the action itself consumes (install.sh, or the choice of command) rather than a flag.
const ACTION_ONLY: [&str; 3] = ["command", "binary", "download-url"];

const DECIDE_OUTPUTS: [&str; 26] = [
    "need_build",
    "base_need_build",
    "base_image",
    "base_tag",
    "base_hash",
    "base_dockerfile",
    "base_context",
    "base_build_args",
    "base_platforms",
    "base_target",
    "base_matrix",
    "merge_needed",
    "merge_images",
    "merge_levels",
    "variants_need_build",
    "variants_matrix",
    "matrix",
    "matrix_levels",
    "levels_need_build",
    "plan",
    "plan_file",
    "images_need_build",
    "images",
    "plan_omitted",
    "dry_run",
    "build_count",
];
/// What decide adds as the gate before a level (`level` input, `decide --level N`).
const LEVEL_OUTPUTS: [&str; 3] = ["level_matrix", "level_need_build", "level_held"];
const PROMOTE_OUTPUTS: [&str; 2] = ["promoted", "previous"];
const STAMP_OUTPUTS: [&str; 1] = ["stamped"];
const MERGE_OUTPUTS: [&str; 1] = ["merged"];
const BAKE_OUTPUTS: [&str; 1] = ["bake_file"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn action() -> Value {
    let text = std::fs::read_to_string(root().join("action.yml")).expect("action.yml");
    serde_yaml::from_str(&text).expect("action.yml is YAML")
}

fn env_name(input: &str) -> String {
    format!("INPUT_{}", input.to_uppercase().replace('-', "_"))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_mapping()
        .expect("a mapping")
        .keys()
        .map(|k| k.as_str().expect("string key").to_string())
        .collect()
}

fn steps(a: &Value) -> Vec<Value> {
    a["runs"]["steps"]
        .as_sequence()
        .expect("runs.steps")
        .clone()
}

fn step(a: &Value, id: &str) -> Value {
    steps(a)
        .into_iter()
        .find(|s| s["id"].as_str() == Some(id))
        .unwrap_or_else(|| panic!("no step with id {id}"))
}

fn env_of(step: &Value) -> BTreeMap<String, String> {
    step["env"]
        .as_mapping()
        .expect("step env")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().expect("env values are strings").to_string(),
            )
        })
        .collect()
}

#[test]
fn inputs_are_the_contract_and_each_reaches_the_binary() {
    let a = action();
    let inputs = keys(&a["inputs"]);
    let want: BTreeSet<String> = INPUTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(inputs, want, "action.yml inputs");
    assert_eq!(a["inputs"]["command"]["default"].as_str(), Some("decide"));
    assert_eq!(
        a["inputs"]["token"]["default"].as_str(),
        Some("${{ github.token }}")
    );
    for i in &inputs {
        assert!(
            a["inputs"][i.as_str()]["description"].as_str().is_some(),
            "input {i} has no description"
        );
        // Nothing is required: every flag has a default in the binary.
        assert_ne!(
            a["inputs"][i.as_str()]["required"].as_bool(),
            Some(true),
            "{i}"
        );
    }

    assert_eq!(a["runs"]["using"].as_str(), Some("composite"));
    // The step that runs the binary maps every input, under the name the binary reads.
    let run = env_of(&step(&a, "run"));
    for i in &inputs {
        let name = env_name(i);
        assert_eq!(
            run.get(&name).map(String::as_str),
            Some(format!("${{{{ inputs.{i} }}}}").as_str()),
            "step `run` must set {name}: ${{{{ inputs.{i} }}}}"
        );
    }
    // … and nothing else that looks like an input (a typo would be silently ignored).
    for k in run.keys().filter(|k| k.starts_with("INPUT_")) {
        assert!(
            inputs.iter().any(|i| &env_name(i) == k),
            "step `run` sets {k}, which is no input"
        );
    }
    // The install step gets what it needs.
    let install = env_of(&step(&a, "install"));
    assert_eq!(install["INPUT_BINARY"], "${{ inputs.binary }}");
    assert_eq!(install["INPUT_DOWNLOAD_URL"], "${{ inputs.download-url }}");
}

#[test]
fn every_input_is_a_flag_of_the_binary() {
    // clap lists `[env: INPUT_X=]` for every flag in the help of the commands that take it.
    let help = |cmd: &str| {
        let o = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        assert!(o.status.success(), "{cmd} --help");
        // Help text wraps (`[env:` at the end of one line, the name on the next): one space.
        String::from_utf8(o.stdout)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let all = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        help("decide"),
        help("promote"),
        help("hash"),
        help("stamp"),
        help("merge"),
        help("bake")
    );
    for i in INPUTS.iter().filter(|i| !ACTION_ONLY.contains(i)) {
        let name = env_name(i);
        assert!(
            all.contains(&format!("[env: {name}")),
            "input {i}: no command of the binary reads {name}"
        );
    }
    // `command`: with no arguments the binary runs INPUT_COMMAND.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("skip-action.yml"),
        "version: 1\nrepository: ghcr.io/acme/app\nimages:\n  app:\n    tag: app-{hash}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM alpine\n").unwrap();
    let o = Command::new(BIN)
        .current_dir(dir.path())
        .env("INPUT_COMMAND", "hash")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ghcr.io/acme/app:app-"));
}

#[test]
fn steps_are_portable_and_wired() {
    let a = action();
    let ids: Vec<String> = steps(&a)
        .iter()
        .map(|s| s["id"].as_str().expect("every step has an id").to_string())
        .collect();
    assert_eq!(ids, vec!["install", "run"]);
    for s in steps(&a) {
        // `sh`: Alpine and BusyBox runner images have no bash.
        assert_eq!(s["shell"].as_str(), Some("sh"), "{s:?}");
    }
    let install = step(&a, "install");
    let script = install["run"].as_str().unwrap();
    assert!(
        script.contains("\"$GITHUB_ACTION_PATH/scripts/install.sh\""),
        "{script}"
    );
    let run = step(&a, "run");
    assert_eq!(
        env_of(&run)["SKIP_ACTION_BIN"],
        "${{ steps.install.outputs.path }}"
    );
    // No arguments: the binary takes its command from INPUT_COMMAND.
    assert_eq!(
        run["run"].as_str().unwrap().trim(),
        "exec \"$SKIP_ACTION_BIN\""
    );

    // install.sh is POSIX sh: dash and bash --posix both parse it.
    for sh in [&["dash", "-n"][..], &["bash", "--posix", "-n"][..]] {
        if Command::new(sh[0]).arg("-c").arg("true").output().is_err() {
            continue;
        }
        let o = Command::new(sh[0])
            .args(&sh[1..])
            .arg(root().join("scripts/install.sh"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{sh:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    // Every expression names a declared input or a forwarded output.
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let inputs = keys(&a["inputs"]);
    for cap in text.split("${{").skip(1) {
        let expr = cap.split("}}").next().unwrap().trim();
        if let Some(i) = expr.strip_prefix("inputs.") {
            assert!(inputs.contains(i), "unknown input in ${{{{ {expr} }}}}");
        }
    }
}

/// `$GITHUB_OUTPUT` as the runner reads it: `name=value` or `name<<DELIM` … `DELIM`.
fn output_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
            }
            names.insert(name.to_string());
        } else if let Some((name, _)) = line.split_once('=') {
            names.insert(name.to_string());
        }
    }
    names
}

/// Runs the binary as the action would (INPUT_COMMAND, no arguments) in `dir`; returns the names
/// written to `$GITHUB_OUTPUT` and whether it succeeded.
fn run_action_style(dir: &Path, command: &str) -> (BTreeSet<String>, bool, String) {
    run_action_style_env(dir, command, &[])
}

fn run_action_style_env(
    dir: &Path,
    command: &str,
    env: &[(&str, &str)],
) -> (BTreeSet<String>, bool, String) {
    let out = dir.join(format!("output-{command}"));
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("INPUT_") || k.starts_with("GITHUB_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let o = cmd
        .env("INPUT_COMMAND", command)
        .env("INPUT_WAIT", "0")
        .env("GITHUB_OUTPUT", &out)
        .env("GITHUB_STEP_SUMMARY", dir.join("summary"))
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    (output_names(&text), o.status.success(), log)
}

#[test]
fn outputs_are_declared_forwarded_and_match_what_the_binary_writes() {
    let a = action();
    let declared = keys(&a["outputs"]);
    for o in &declared {
        assert_eq!(
            a["outputs"][o.as_str()]["value"].as_str(),
            Some(format!("${{{{ steps.run.outputs.{o} }}}}").as_str()),
            "output {o} must forward steps.run.outputs.{o}"
        );
        assert!(
            a["outputs"][o.as_str()]["description"].as_str().is_some(),
            "output {o} has no description"
        );
    }
    for o in DECIDE_OUTPUTS
        .iter()
        .chain(&LEVEL_OUTPUTS)
        .chain(&PROMOTE_OUTPUTS)
        .chain(&STAMP_OUTPUTS)
        .chain(&MERGE_OUTPUTS)
        .chain(&BAKE_OUTPUTS)
    {
        assert!(declared.contains(*o), "output {o} is not declared");
    }

    // The binary, for real: decide against a local registry, then promote after "building".
    let reg = TestRegistry::start_open().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = reg.host();
    std::fs::write(
        dir.path().join("skip-action.yml"),
        format!(
            "version: 1\nrepository: {host}/acme/app\nimages:\n  base:\n    dockerfile: Dockerfile.base\n    tag: base-{{hash}}\n    promote: [base-latest]\n  app:\n    from: base\n    dockerfile: Dockerfile.app\n    variants:\n      a: {{ FLAVOR: a }}\n      b: {{ FLAVOR: b }}\n    tag: \"{{variant}}-{{hash}}\"\n    promote: [\"latest-{{variant}}\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("Dockerfile.base"), "FROM alpine:3.20\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile.app"),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOR\nRUN echo $FLAVOR\n",
    )
    .unwrap();

    let (decide, ok, log) = run_action_style(dir.path(), "decide");
    assert!(ok, "decide failed:\n{log}");
    let want: BTreeSet<String> = DECIDE_OUTPUTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(decide, want, "decide writes exactly the decide outputs");
    // The gate before a level: every decide output, and the level's.
    std::fs::remove_file(dir.path().join("output-decide")).unwrap();
    let (gate, ok, log) = run_action_style_env(dir.path(), "decide", &[("INPUT_LEVEL", "1")]);
    assert!(ok, "decide with `level` failed:\n{log}");
    let want: BTreeSet<String> = want
        .into_iter()
        .chain(LEVEL_OUTPUTS.iter().map(|s| s.to_string()))
        .collect();
    assert_eq!(
        gate, want,
        "decide with `level` writes the decide and level outputs"
    );

    // "Build": push every image at its content tag, variants FROM the base.
    let hash = Command::new(BIN)
        .current_dir(dir.path())
        .args(["hash", "--json"])
        .output()
        .unwrap();
    let images: serde_json::Value = serde_json::from_slice(&hash.stdout).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let p = reg.pusher();
        let mut base = None;
        for i in images["images"].as_array().unwrap() {
            let tag = i["tag"].as_str().unwrap();
            let spec = match &base {
                None => ImageSpec::oci(),
                Some(b) => ImageSpec::oci().from_parent(b),
            };
            let pushed = p.push_image("acme/app", Some(tag), &spec).await.unwrap();
            base.get_or_insert(pushed);
        }
    });

    // A test job passed: stamp (as the action runs it), then promote requires the stamps.
    let (stamp, ok, log) = run_action_style_env(dir.path(), "stamp", &[("INPUT_IMAGES", "all")]);
    assert!(ok, "stamp failed:\n{log}");
    let want: BTreeSet<String> = STAMP_OUTPUTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(stamp, want, "stamp writes exactly the stamp outputs");

    let (promote, ok, log) =
        run_action_style_env(dir.path(), "promote", &[("INPUT_REQUIRE_TESTED", "all")]);
    assert!(ok, "promote failed:\n{log}");
    for o in PROMOTE_OUTPUTS {
        assert!(
            promote.contains(o),
            "promote does not write {o}: {promote:?}"
        );
    }
    assert!(
        promote.is_disjoint(&decide),
        "decide and promote share output names: {:?}",
        promote.intersection(&decide).collect::<Vec<_>>()
    );
    // merge (no `runners:` here: nothing to merge, but it says so in its output).
    let (merge, ok, log) = run_action_style(dir.path(), "merge");
    assert!(ok, "merge failed:\n{log}");
    let want: BTreeSet<String> = MERGE_OUTPUTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(merge, want, "merge writes exactly the merge outputs");
    // bake (a batch job's): the file's path, for `docker buildx bake -f`.
    let (bake, ok, log) = run_action_style_env(
        dir.path(),
        "bake",
        &[("RUNNER_TEMP", dir.path().to_str().unwrap())],
    );
    assert!(ok, "bake failed:\n{log}");
    let want: BTreeSet<String> = BAKE_OUTPUTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(bake, want, "bake writes exactly the bake outputs");
    let text = std::fs::read_to_string(dir.path().join("output-bake")).unwrap();
    let file = text.lines().nth(1).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(
        v["group"]["default"]["targets"].as_array().unwrap().len(),
        3
    );
    // action.yml forwards exactly what the commands write: nothing missing, nothing extra.
    let written: BTreeSet<String> = gate
        .union(&promote)
        .chain(&stamp)
        .chain(&merge)
        .chain(&bake)
        .cloned()
        .collect();
    assert_eq!(
        declared, written,
        "action.yml outputs vs the names decide and promote write"
    );
}

#[test]
fn the_ci_self_test_config_is_valid() {
    // .github/workflows/ci.yml runs the action with it on GitHub's x86_64 and arm64 runners.
    let o = Command::new(BIN)
        .current_dir(root())
        .args(["hash", "--json", "--config", "tests/e2e/selftest.yml"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "devbox/omos", "devbox/with-pi"]);
    // ci.yml's checks expect these.
    let ci = std::fs::read_to_string(root().join(".github/workflows/ci.yml")).unwrap();
    assert!(ci.contains("tests/e2e/selftest.yml"));
    assert!(ci.contains("test \"$COUNT\" = 3"));
}

/// Runners evaluate `${{ … }}` everywhere in action.yml, descriptions included: act refuses the
/// step ("expressions are not allowed here"). Only `value:` and `default:` may hold one.
#[test]
fn descriptions_hold_no_expressions() {
    let a = action();
    for section in ["inputs", "outputs"] {
        for (k, v) in a[section].as_mapping().unwrap() {
            let d = v["description"].as_str().unwrap_or_default();
            assert!(
                !d.contains("${{"),
                "{section}.{}: the description holds an expression",
                k.as_str().unwrap()
            );
        }
    }
}
