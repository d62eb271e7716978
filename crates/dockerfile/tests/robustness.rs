//! The analysis runs on untrusted Dockerfiles inside CI: it must never
//! panic, never overflow the stack, and finish quickly on large input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use skip_dockerfile::{parse, Analysis};

/// Generous bound that still catches quadratic behaviour (debug builds on
/// a 2-core machine).
/// A hang guard, not a speed bound: each case takes well under a second; only a quadratic or
/// exponential path (minutes to forever) reaches it, so a busy machine cannot make it flake.
const QUICK: Duration = Duration::from_secs(300);

fn analyze_timed(text: &str) -> (Analysis, Duration) {
    let start = Instant::now();
    let df = parse(text).expect("parse");
    let a = df.analyze(&BTreeMap::new(), None).expect("analyze");
    (a, start.elapsed())
}

/// Every reported pattern is cleaned: relative, no empty, `.` or `..`
/// segments — except the whole-context pattern `.` itself.
fn assert_clean(a: &Analysis) {
    for s in &a.sources {
        let p = &s.pattern;
        if p == "." {
            continue;
        }
        assert!(!p.starts_with('/'), "{p}");
        assert!(
            p.split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
            "{p}"
        );
    }
}

#[test]
fn five_megabyte_dockerfile() {
    let mut text =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=alpine:3.20\nFROM ${BASE} AS build\n");
    let mut i = 0;
    let mut prev = "build".to_string();
    while text.len() < 5 * 1024 * 1024 {
        text.push_str(&format!(
            "# step {i}\nENV K{i}=v{i}\nRUN echo hello world {i} && \\\n    apt-get install -y pkg{i} \\\n    && true\nCOPY src/file{i}.txt ${{K{i}}}/x /dst/\nRUN <<EOF\nCOPY not/a/source{i} /\nEOF\n"
        ));
        i += 1;
        if i % 5000 == 0 {
            text.push_str(&format!("FROM {prev} AS s{i}\n"));
            prev = format!("s{i}");
        }
    }
    let (a, took) = analyze_timed(&text);
    assert!(took < QUICK, "took {took:?}");
    assert_eq!(a.sources.len(), 2 * i);
    assert!(a.sources.iter().all(|s| !s.pattern.starts_with("not/")));
    assert_eq!(a.whole_context, None);
    assert_clean(&a);
}

#[test]
fn five_megabyte_single_line() {
    let mut text = String::from("FROM alpine\nCOPY");
    while text.len() < 5 * 1024 * 1024 {
        text.push_str(" ./a/../b/c.txt \"q\" ${X:-d}");
    }
    text.push_str(" /dst/\n");
    let (a, took) = analyze_timed(&text);
    assert!(took < QUICK, "took {took:?}");
    assert_clean(&a);

    // One enormous continued RUN line with a heredoc marker in it.
    let mut text = String::from("FROM alpine\nRUN echo");
    while text.len() < 5 * 1024 * 1024 {
        text.push_str(" word \\\n  more");
    }
    text.push_str(" <<EOF\nbody\nEOF\nCOPY last /\n");
    let (a, took) = analyze_timed(&text);
    assert!(took < QUICK, "took {took:?}");
    assert_eq!(a.sources.len(), 1);
}

#[test]
fn many_unresolvable_sources_stay_fast_and_the_reason_stays_short() {
    let mut text = String::from("FROM alpine\n");
    let mut i = 0;
    while text.len() < 5 * 1024 * 1024 {
        text.push_str(&format!("COPY $UNKNOWN/{i} /\n"));
        i += 1;
    }
    let (a, took) = analyze_timed(&text);
    assert!(took < QUICK, "took {took:?}");
    let why = a.whole_context.unwrap();
    assert!(why.len() < 10_000, "{}", why.len());
    assert!(why.ends_with(&format!("and {} more", i - 10)), "{why}");
}

#[test]
fn long_stage_chain_does_not_copy_environments_quadratically() {
    let mut text = String::from("FROM alpine AS s0\n");
    for i in 1..20_000 {
        text.push_str(&format!("FROM s{} AS s{i}\nENV V{i}=x\n", i - 1));
    }
    text.push_str("COPY $V1/$V19999 /\n");
    let (a, took) = analyze_timed(&text);
    assert!(took < QUICK, "took {took:?}");
    assert_eq!(a.sources[0].pattern, "x/x");
}

#[test]
fn wide_fan_out_of_large_environments_is_bounded() {
    let mut text = String::from("FROM alpine AS base\n");
    for i in 0..50_000 {
        text.push_str(&format!("ENV V{i}=x\nONBUILD COPY t{i} /\n"));
    }
    for c in 0..1_000 {
        text.push_str(&format!("FROM base AS c{c}\n"));
    }
    text.push_str("FROM scratch\n");
    for c in 0..1_000 {
        text.push_str(&format!("COPY --from=c{c} / /\n"));
    }
    let start = Instant::now();
    let r = parse(&text).unwrap().analyze(&BTreeMap::new(), None);
    assert!(start.elapsed() < QUICK, "took {:?}", start.elapsed());
    let e = r.unwrap_err();
    assert!(e.message.contains("too large"), "{e}");
}

#[test]
fn deep_nesting_everywhere_is_an_error_not_a_crash() {
    let open = "${a:-".repeat(200_000);
    for text in [
        format!("FROM alpine\nCOPY {open} /\n"),
        format!("ARG X={open}\nFROM alpine\n"),
        format!("FROM {open}\n"),
        format!("FROM alpine\nRUN {open} <<EOF\nEOF\n"),
        format!("FROM alpine\nENV A={open}\n"),
    ] {
        let start = Instant::now();
        let r = parse(&text).and_then(|df| df.analyze(&BTreeMap::new(), None));
        assert!(r.is_err());
        assert!(start.elapsed() < QUICK);
    }
    // Deeply nested JSON and ONBUILD chains.
    let json = format!("FROM alpine\nCOPY {} /\n", "[".repeat(200_000));
    assert!(parse(&json).is_ok());
    let onbuild = format!("FROM alpine\n{}RUN x\n", "ONBUILD ".repeat(100_000));
    assert!(parse(&onbuild).is_err());
}

/// Fragments that exercise the interesting corners of the grammar.
const FRAGMENTS: &[&str] = &[
    "FROM ",
    "from ",
    "COPY ",
    "ADD ",
    "RUN ",
    "ARG ",
    "ENV ",
    "ONBUILD ",
    "AS ",
    " as ",
    "WORKDIR ",
    "LABEL ",
    "\n",
    "\n",
    "\n",
    " ",
    " ",
    "\t",
    "\r",
    "\\\n",
    "\\",
    "`",
    "`\n",
    "# escape=`\n",
    "# syntax=x\n",
    "#",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "\nEOF\n",
    "\tEOF\n",
    "${",
    "}",
    ":-",
    "-",
    ":+",
    "+",
    "?",
    "%",
    "#",
    "/",
    "$",
    "$X",
    "${X}",
    "X=",
    "=",
    "\"",
    "'",
    "[",
    "]",
    "\",\"",
    ",",
    "--from=",
    "--from=0",
    "--from=$X",
    "--mount=",
    "type=bind,source=",
    "type=cache,",
    "from=",
    "src=",
    "target=/t",
    "--checksum=",
    "--chmod=755",
    "--link",
    "--exclude=*.md",
    "--parents",
    "..",
    ".",
    "a",
    "b/c",
    "*",
    "scratch",
    "alpine",
    "s1",
    "0",
    "1",
    "https://h/x.git",
    "git@h:r",
    "http://h/f",
    "\u{feff}",
    "é",
    "\u{a0}",
    "\u{85}",
    "{",
    "::",
];

fn dockerfile_like() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80).prop_map(|v| v.concat())
}

fn build_args() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["X", "TARGETARCH", "BASE", "a", "SRC"]),
        prop::sample::select(vec!["", "x", "alpine", "0", "s1", "$X", "../..", "${"]),
        0..4,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), args in build_args()) {
        if let Ok(df) = parse(&text) {
            let _ = df.declared_args();
            if let Ok(a) = df.analyze(&args, None) {
                assert_clean(&a);
            }
        }
    }

    #[test]
    fn dockerfile_like_text_never_panics(
        text in dockerfile_like(),
        args in build_args(),
        target in prop::option::of(prop::sample::select(vec!["s1", "a", "build", "0"])),
    ) {
        if let Ok(df) = parse(&text) {
            let _ = df.declared_args();
            let first = df.analyze(&args, target);
            if let Ok(a) = &first {
                assert_clean(a);
            }
            // Analysis is a pure function of its inputs.
            prop_assert_eq!(first, df.analyze(&args, target));
        }
    }

    #[test]
    fn valid_prefix_plus_noise_never_panics(noise in dockerfile_like()) {
        let text = format!("ARG X=1\nFROM alpine AS s1\nCOPY a /\n{noise}\nFROM s1\n");
        if let Ok(df) = parse(&text) {
            if let Ok(a) = df.analyze(&BTreeMap::new(), None) {
                assert_clean(&a);
            }
        }
    }
}
