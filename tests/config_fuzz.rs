//! Hostile and broken configs: the parser and expander must answer with an error, never a panic,
//! and never take long — for arbitrary text and for YAML made of real keys in wrong places.

use proptest::prelude::*;
use skip_action::config::Config;
use std::path::Path;

const KEYS: &[&str] = &[
    "version",
    "repository",
    "images",
    "base",
    "app",
    "dockerfile",
    "context",
    "tag",
    "from",
    "args",
    "variants",
    "matrix",
    "include",
    "exclude",
    "promote",
    "platforms",
    "inputs",
    "base_arg",
    "hash_length",
    "target",
    "context_scope",
    "upstream",
    "repository",
    "file_modes",
    "generated",
];
const VALUES: &[&str] = &[
    "1",
    "2",
    "0",
    "-1",
    "\"\"",
    "'{hash}'",
    "'{variant}-{hash}'",
    "'{'",
    "'}'",
    "'{{hash}}'",
    "ghcr.io/a/b",
    "Dockerfile",
    "../x",
    "/etc/passwd",
    "[]",
    "{}",
    "[a, b]",
    "~",
    "true",
    "\"a\\nb\"",
    "[1, [2]]",
    "{a: [1, 2], b: [x]}",
    "base",
    "app",
    "app/x",
    "'{name}'",
    "all",
    "exact",
    "git",
    "{bin/x: [src/**]}",
    "{../x: [a]}",
    "{x: []}",
    "linux/amd64",
    "99999999999999999999",
];

fn yamlish() -> impl Strategy<Value = String> {
    let line = (
        0usize..4,
        prop::sample::select(KEYS),
        prop::sample::select(VALUES),
        any::<bool>(),
    )
        .prop_map(|(indent, k, v, nested)| {
            let pad = "  ".repeat(indent);
            if nested {
                format!("{pad}{k}:")
            } else {
                format!("{pad}{k}: {v}")
            }
        });
    prop::collection::vec(line, 0..30).prop_map(|ls| {
        let mut s = String::from("version: 1\nrepository: ghcr.io/a/b\nimages:\n");
        s.push_str(&ls.join("\n"));
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,400}") {
        let _ = Config::parse(&s, Path::new("fuzz.yml"));
    }

    #[test]
    fn yaml_of_real_keys_never_panics(s in yamlish()) {
        let r = Config::parse(&s, Path::new("fuzz.yml"));
        if let Err(e) = r {
            // Every error names the file.
            prop_assert!(format!("{e:#}").contains("fuzz.yml"), "{e:#}\n{s}");
        }
    }
}
