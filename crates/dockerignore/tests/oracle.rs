//! Differential vectors answered by Docker's real code (see the `source`
//! field of the data file): random `.dockerignore` files exercising comments,
//! cleaning, exceptions, `**`, classes, escapes and the Go-regexp corners,
//! checked against parse errors (with line numbers), the walk's verdict for
//! every path, directory skipping, and Go's `filepath.Match`.

use skip_dockerignore::{path_match, DockerIgnore};

#[test]
fn docker_oracle_vectors() {
    let path = format!(
        "{}/tests/data/oracle-vectors.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let cases = json["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    let mut checks = 0usize;
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let err_line = case["err_line"].as_i64().expect("err_line");
        for g in case["globs"].as_array().expect("globs") {
            let (pat, name) = (g[0].as_str().expect("pat"), g[1].as_str().expect("name"));
            let want = if g[3].as_bool() == Some(true) {
                Err(())
            } else {
                Ok(g[2].as_bool().expect("match"))
            };
            let got = path_match(pat, name).map_err(|_| ());
            checks += 1;
            if got != want {
                failures.push(format!(
                    "path_match({pat:?}, {name:?}): expected {want:?}, got {got:?}"
                ));
            }
        }
        let parsed = DockerIgnore::parse(text);
        checks += 1;
        let ignore = match (parsed, err_line) {
            (Ok(ignore), 0) => ignore,
            (Ok(_), line) => {
                failures.push(format!(
                    "{text:?}: Docker rejects line {line}, we accepted it"
                ));
                continue;
            }
            (Err(e), 0) => {
                failures.push(format!("{text:?}: Docker accepts it, we said: {e}"));
                continue;
            }
            (Err(e), line) => {
                if line > 0 && e.line != line as usize {
                    failures.push(format!(
                        "{text:?}: Docker rejects line {line}, we reported: {e}"
                    ));
                }
                continue;
            }
        };
        let skip: Vec<&str> = case["skip"]
            .as_array()
            .expect("skip")
            .iter()
            .map(|v| v.as_str().expect("skip path"))
            .collect();
        let paths = case["paths"].as_object().expect("paths");
        for (p, verdict) in paths {
            // `null`: below a directory the walk skipped, hence excluded.
            let want = verdict.as_bool().unwrap_or(true);
            checks += 1;
            let got = ignore.is_excluded(p);
            if got != want {
                failures.push(format!(
                    "{text:?} path {p:?}: expected excluded={want}, got {got}"
                ));
            }
            let is_dir = paths
                .keys()
                .any(|q| q.len() > p.len() && q.starts_with(&format!("{p}/")));
            if is_dir {
                let want_skip = verdict.is_null() || skip.contains(&p.as_str());
                checks += 1;
                let got_skip = ignore.can_skip_dir(p);
                if got_skip != want_skip {
                    failures.push(format!(
                        "{text:?} dir {p:?}: expected can_skip_dir={want_skip}, got {got_skip}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checks} checks failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
