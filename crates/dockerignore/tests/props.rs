//! Property tests: no input may panic, and the walker-facing answers must be
//! self-consistent (a skippable directory only hides excluded paths).

use proptest::prelude::*;
use skip_dockerignore::{path_match, DockerIgnore};

/// Strings rich in pattern syntax, plus arbitrary Unicode.
fn patternish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ab/*?\\[\\]!\\\\^{}|#.\\- \t\r\n:dQEpx0-9$()+]{0,24}",
        ".{0,24}",
    ]
}

fn pathish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ab/*?\\[\\]\\\\^{}|#. \n]{0,20}",
        proptest::collection::vec("[ab.]{1,3}", 1..5).prop_map(|v| v.join("/")),
        ".{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_and_match_never_panic(text in "(.|\n){0,80}", path in pathish()) {
        if let Ok(di) = DockerIgnore::parse(&text) {
            let _ = di.is_excluded(&path);
            let _ = di.can_skip_dir(&path);
            let _ = di.has_exceptions();
        }
    }

    #[test]
    fn syntax_heavy_patterns_never_panic(
        lines in proptest::collection::vec(patternish(), 0..6),
        paths in proptest::collection::vec(pathish(), 1..6),
    ) {
        if let Ok(di) = DockerIgnore::from_patterns(&lines) {
            for p in &paths {
                let _ = di.is_excluded(p);
                let _ = di.can_skip_dir(p);
            }
        }
        let text = lines.join("\n");
        let _ = DockerIgnore::parse(&text);
    }

    #[test]
    fn path_match_never_panics(pattern in patternish(), name in pathish()) {
        let _ = path_match(&pattern, &name);
    }

    /// If a walker may skip `dir`, everything below it must be excluded.
    #[test]
    fn skipped_dirs_hide_only_excluded_paths(
        lines in proptest::collection::vec("!?[ab*/]{1,6}", 1..5),
        dir in proptest::collection::vec("[ab]{1,2}", 1..3).prop_map(|v| v.join("/")),
        below in proptest::collection::vec("[ab]{1,2}", 1..3).prop_map(|v| v.join("/")),
    ) {
        if let Ok(di) = DockerIgnore::from_patterns(&lines) {
            if di.can_skip_dir(&dir) {
                prop_assert!(di.is_excluded(&dir));
                let child = format!("{dir}/{below}");
                prop_assert!(di.is_excluded(&child), "{:?}: {} visible under skipped {}", lines, child, dir);
                prop_assert!(di.can_skip_dir(&child));
            }
        }
    }

    /// Without exceptions, exclusion is inherited by everything below.
    #[test]
    fn without_exceptions_exclusion_is_inherited(
        lines in proptest::collection::vec("[ab*?/]{1,6}", 1..4),
        dir in proptest::collection::vec("[ab]{1,2}", 1..3).prop_map(|v| v.join("/")),
        below in "[ab]{1,2}",
    ) {
        if let Ok(di) = DockerIgnore::from_patterns(&lines) {
            prop_assert!(!di.has_exceptions());
            if di.is_excluded(&dir) {
                prop_assert!(di.can_skip_dir(&dir));
                let child = format!("{dir}/{below}");
                prop_assert!(di.is_excluded(&child), "{:?}: {} visible", lines, child);
            }
        }
    }

    /// A trailing slash only marks a directory.
    #[test]
    fn trailing_slash_is_ignored(
        lines in proptest::collection::vec("!?[ab*/]{1,6}", 1..4),
        path in proptest::collection::vec("[ab]{1,2}", 1..4).prop_map(|v| v.join("/")),
    ) {
        if let Ok(di) = DockerIgnore::from_patterns(&lines) {
            prop_assert_eq!(di.is_excluded(&path), di.is_excluded(&format!("{path}/")));
        }
    }
}
