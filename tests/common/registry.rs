//! What the tests against a real `docker-registry` share: a runtime for skip-testkit's pusher,
//! the content tags the pushes go to, and one run of the real binary with fresh output files.

use std::collections::BTreeMap;
use std::process::Output;

use super::{stderr, stdout, Ws};

/// A small runtime for skip-testkit's async pusher (two workers: the machine is shared).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// name → content tag, from `hash --json`: where a simulated build pushes each image.
pub fn content_tags(ws: &Ws) -> BTreeMap<String, String> {
    ws.hash_json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// One run of the binary: the process, its parsed `$GITHUB_OUTPUT` and its step summary.
pub struct Run {
    pub out: Output,
    pub outputs: BTreeMap<String, String>,
    pub summary: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.out.status.success()
    }
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    pub fn log(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            stdout(&self.out),
            stderr(&self.out)
        )
    }
    /// An output as JSON (`null` when it is missing).
    pub fn json(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(self.outputs.get(name).map(String::as_str).unwrap_or("null"))
            .unwrap_or_else(|e| panic!("output {name}: {e}\n{}", self.log()))
    }
}

/// `skip-action <args>` in `ws` with fresh `$GITHUB_OUTPUT` and summary files, `env` on top;
/// the outputs are parsed by the binary's own reader, which refuses a malformed file.
pub fn run(ws: &Ws, args: &[&str], env: &[(&str, &str)]) -> Run {
    let files = tempfile::tempdir().unwrap();
    let out_path = files.path().join("output");
    let sum_path = files.path().join("summary");
    let (o, s) = (out_path.to_str().unwrap(), sum_path.to_str().unwrap());
    let mut e: Vec<(&str, &str)> = vec![("GITHUB_OUTPUT", o), ("GITHUB_STEP_SUMMARY", s)];
    e.extend_from_slice(env);
    let out = ws.run_env(args, &e);
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let outputs = skip_action::github::output::parse(&text)
        .expect("GITHUB_OUTPUT parses")
        .into_iter()
        .collect();
    Run {
        out,
        outputs,
        summary: std::fs::read_to_string(&sum_path).unwrap_or_default(),
    }
}
