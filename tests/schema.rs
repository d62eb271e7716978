//! The JSON Schema of skip-action.yml: the committed file is exactly what `skip-action schema`
//! prints (derived from the config types, so it cannot drift), it accepts every config this
//! repository ships, and it rejects unknown keys and wrong types — as the parser does.
//!
//! Validation runs with PyPI's `jsonschema` (and PyYAML, which resolves `<<` merges as editors
//! do) under `$SKIP_ACTION_PYTHON` or `python3`; `scripts/test.sh` provides them. Missing, the
//! test fails and says how to install them.

mod common;

use common::*;
use std::process::Command;

const SCHEMA: &str = "schema/skip-action.schema.json";

/// Every config of the repository: the examples and the end-to-end test's.
fn shipped_configs() -> Vec<String> {
    let mut v: Vec<String> = [
        "examples/devbox/skip-action.yml",
        "examples/stack/skip-action.yml",
        "examples/docker-stacks/skip-action.yml",
        "examples/docker-stacks/long.yml",
        "tests/e2e/selftest.yml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Any example added later is covered too.
    for e in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let p = e.unwrap().path().join("skip-action.yml");
        if p.is_file() {
            let rel = p
                .strip_prefix(repo_root())
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if !v.contains(&rel) {
                v.push(rel);
            }
        }
    }
    v
}

/// Validate YAML documents (name, text) against the committed schema; returns name -> error
/// (empty string when valid).
fn validate(docs: &[(String, String)]) -> Vec<(String, String)> {
    let python = std::env::var("SKIP_ACTION_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for (i, (name, text)) in docs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.yml"));
        std::fs::write(&p, text).unwrap();
        names.push((name.clone(), p));
    }
    let script = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    errs = sorted(v.iter_errors(yaml.safe_load(open(path))), key=lambda e: list(e.path))
    print(json.dumps("; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errs)))
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(repo_root().join(SCHEMA))
        .args(names.iter().map(|(_, p)| p))
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}; install Python 3 with `pip install jsonschema pyyaml`, or set SKIP_ACTION_PYTHON"));
    assert!(
        out.status.success(),
        "{python} with jsonschema and PyYAML failed (pip install jsonschema pyyaml, or set SKIP_ACTION_PYTHON): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), names.len());
    names.into_iter().map(|(n, _)| n).zip(lines).collect()
}

#[test]
fn the_committed_schema_is_the_commands_output() {
    let o = run_in(&repo_root(), &["schema"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let committed = std::fs::read_to_string(repo_root().join(SCHEMA)).unwrap();
    assert!(
        stdout(&o) == committed,
        "{SCHEMA} is stale: run `cargo run -- schema > {SCHEMA}`"
    );
    let v: serde_json::Value = serde_json::from_str(&committed).unwrap();
    // The new keys are in it.
    for p in [
        "/properties/defaults",
        "/$defs/RawImage/properties/vars",
        "/$defs/RawVariant/properties/promote",
        "/$defs/RawImage/patternProperties/^x-",
    ] {
        assert!(v.pointer(p).is_some(), "{p} missing");
    }
}

#[test]
fn the_schema_accepts_every_shipped_config() {
    let docs: Vec<(String, String)> = shipped_configs()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(repo_root().join(&p)).unwrap();
            (p, text)
        })
        .collect();
    assert!(docs.len() >= 5);
    for (name, err) in validate(&docs) {
        assert_eq!(err, "", "{name} does not validate");
    }
}

#[test]
fn the_schema_rejects_unknown_keys_and_wrong_types_as_the_parser_does() {
    const OK: &str = "version: 1\nrepository: ghcr.io/acme/app\nx-mine: &m { V: \"1\" }\ndefaults:\n  tag: \"{name}-{hash}\"\nimages:\n  app:\n    args: *m\n    vars: { empty: }\n    variants:\n      a: { V: \"2\" }\n      b: { args: { V: \"3\" }, vars: { s: x }, promote: [latest] }\n    matrix_is_not_here: null\n";
    let ok = OK.replace("    matrix_is_not_here: null\n", "");
    let bad: Vec<(&str, String)> = vec![
        ("unknown top-level key", ok.replace("version: 1", "version: 1\nrepo: x")),
        ("unknown image key", OK.to_string()),
        ("unknown defaults key", ok.replace("  tag:", "  tga:")),
        ("unknown promote key", ok.replace("promote: [latest]", "promote: [{tag: l, repo: x}]")),
        ("wrong type: hash_length", ok.replace("version: 1", "version: 1\nhash_length: twelve")),
        ("wrong type: args list", ok.replace("args: *m", "args: [V]")),
        ("wrong type: variant arg", ok.replace("a: { V: \"2\" }", "a: { V: [2] }")),
        ("wrong type: platforms", ok.replace("  app:\n", "  app:\n    platforms: linux/amd64\n")),
        ("wrong value: context_scope", ok.replace("  app:\n", "  app:\n    context_scope: some\n")),
        ("wrong type: matrix axis", ok.replace("    variants:\n      a: { V: \"2\" }\n      b: { args: { V: \"3\" }, vars: { s: x }, promote: [latest] }\n", "    matrix: { os: linux }\n")),
    ];
    let mut docs = vec![("ok".to_string(), ok.clone())];
    docs.extend(bad.iter().map(|(n, t)| (n.to_string(), t.clone())));
    let results = validate(&docs);
    assert_eq!(results[0].1, "", "the valid config is rejected");
    for (name, err) in &results[1..] {
        assert_ne!(err, "", "the schema accepts: {name}");
    }
    // The parser agrees on each (exit 2), and accepts the valid one.
    let ws = Ws::new();
    ws.write("Dockerfile", "FROM alpine:3.20\nARG V\n");
    ws.write("skip-action.yml", &ok);
    let o = ws.run(&["hash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (name, text) in &bad {
        ws.write("skip-action.yml", text);
        let o = ws.run(&["hash"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
    }
}
