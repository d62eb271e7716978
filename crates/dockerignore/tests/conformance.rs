//! Docker's own matching table (moby/patternmatcher's tests), replayed through
//! the public API. Every failing case is reported, not just the first.

use skip_dockerignore::DockerIgnore;

#[derive(Debug)]
struct Case {
    patterns: Vec<String>,
    path: String,
    excluded: bool,
}

fn load(file: &str) -> Vec<Case> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let cases = json["cases"].as_array().expect("`cases` array");
    cases
        .iter()
        .map(|c| Case {
            patterns: c["patterns"]
                .as_array()
                .expect("patterns")
                .iter()
                .map(|p| p.as_str().expect("pattern string").to_string())
                .collect(),
            path: c["path"].as_str().expect("path").to_string(),
            excluded: c["excluded"].as_bool().expect("excluded"),
        })
        .collect()
}

/// A trailing `/` in the table marks a directory; patternmatcher's tests pass
/// such paths verbatim and the walker passes directories without it. Both
/// readings give the same answers on this table; `is_excluded` cleans its
/// input, so the path is handed over as written.
#[test]
fn docker_patternmatcher_table() {
    let cases = load("dockerignore-vectors.json");
    assert_eq!(cases.len(), 79, "the table should have 79 cases");
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = DockerIgnore::from_patterns(&case.patterns)
            .map(|ignore| ignore.is_excluded(&case.path));
        match outcome {
            Ok(got) if got == case.excluded => {}
            Ok(got) => failures.push(format!(
                "patterns {:?} path {:?}: expected excluded={}, got {}",
                case.patterns, case.path, case.excluded, got
            )),
            Err(e) => failures.push(format!(
                "patterns {:?} path {:?}: expected excluded={}, got parse error: {e}",
                case.patterns, case.path, case.excluded
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
