//! One test per `.dockerignore` rule. Expected values were confirmed against
//! Docker's own code (moby/patternmatcher + BuildKit's reader and fsutil's
//! walk); see `oracle-vectors.json` for the bulk comparison.

use std::time::{Duration, Instant};

use skip_dockerignore::{path_match, DockerIgnore, Error};

fn ignore(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn excluded(text: &str, path: &str) -> bool {
    ignore(text).is_excluded(path)
}

fn parse_error(text: &str) -> Error {
    match DockerIgnore::parse(text) {
        Ok(_) => panic!("{text:?} should be rejected"),
        Err(e) => e,
    }
}

#[test]
fn comments_only_in_column_one() {
    let di = ignore("# secret\nb");
    assert!(!di.is_excluded("# secret"));
    assert!(!di.is_excluded("secret"));
    // A `#` after leading whitespace is not a comment: the line is trimmed
    // and becomes the pattern `# secret`.
    let di = ignore("  # secret");
    assert!(di.is_excluded("# secret"));
    assert!(!di.is_excluded("secret"));
    // `#` elsewhere is an ordinary character.
    assert!(excluded("a#b", "a#b"));
    // A comment is recognised only before trimming, and only on its own line.
    assert!(ignore("#a\n#b").is_empty());
}

#[test]
fn whitespace_is_trimmed() {
    assert!(excluded("  a.txt \t", "a.txt"));
    assert!(!excluded("  a.txt \t", " a.txt"));
    assert!(excluded("\ta/b\t", "a/b"));
    // Blank and whitespace-only lines are ignored.
    let di = ignore("\n   \n\t\n");
    assert!(di.is_empty());
    assert!(!di.is_excluded("a"));
    // The text after `!` is trimmed again.
    let di = ignore("*\n!   keep  ");
    assert!(!di.is_excluded("keep"));
    assert!(di.is_excluded("other"));
    // Inner whitespace is part of the pattern.
    assert!(excluded("a b", "a b"));
    assert!(!excluded("a b", "ab"));
}

#[test]
fn crlf_and_bom() {
    let di = ignore("\u{FEFF}a\r\nb\r\n");
    assert!(di.is_excluded("a"));
    assert!(di.is_excluded("b"));
    // A BOM on the first line does not hide a comment...
    assert!(ignore("\u{FEFF}# c").is_empty());
    // ...and is only stripped there.
    let di = ignore("a\n\u{FEFF}b");
    assert!(!di.is_excluded("b"));
    assert!(di.is_excluded("\u{FEFF}b"));
}

#[test]
fn exceptions_and_last_match_wins() {
    let di = ignore("*.go\n!keep.go");
    assert!(di.has_exceptions());
    assert!(di.is_excluded("main.go"));
    assert!(!di.is_excluded("keep.go"));
    // Order matters: a later pattern overrides an earlier exception.
    let di = ignore("!keep.go\n*.go");
    assert!(di.is_excluded("keep.go"));
    // Re-exclude after re-include.
    let di = ignore("docs\n!docs/*.md\ndocs/secret.md");
    assert!(di.is_excluded("docs/a.txt"));
    assert!(!di.is_excluded("docs/a.md"));
    assert!(di.is_excluded("docs/secret.md"));
    // The directory itself stays excluded; Docker still sends it as the
    // parent of re-included files, which is the walker's business.
    assert!(di.is_excluded("docs"));
    assert!(!ignore("a\nb").has_exceptions());
}

#[test]
fn leading_slash_is_removed() {
    assert!(excluded("/a/b", "a/b"));
    assert!(excluded("/a", "a/x"));
    assert!(!excluded("/a", "x/a"));
    let di = ignore("*\n! /keep");
    assert!(!di.is_excluded("keep"));
    // A lone `/` survives cleaning as `/` and matches no relative path.
    let di = ignore("/");
    assert!(!di.is_empty());
    assert!(!di.is_excluded("a"));
}

#[test]
fn patterns_are_cleaned_like_filepath_clean() {
    assert!(excluded("./a", "a"));
    assert!(excluded("a//b", "a/b"));
    assert!(excluded("a/../b", "b"));
    assert!(!excluded("a/../b", "a/b"));
    assert!(excluded("a/./b/", "a/b"));
    assert!(excluded("docs/", "docs/readme"));
    // Patterns that clean to `.` or climb out of the context match nothing.
    assert!(!excluded(".", "a"));
    assert!(!excluded("../a", "a"));
    assert!(!excluded("a/../..", "a"));
    // `!../..` cleans to `.` inside patternmatcher: no longer an exception.
    assert!(!ignore("!../..").has_exceptions());
}

#[test]
fn paths_are_cleaned_too() {
    let di = ignore("a/b");
    assert!(di.is_excluded("./a/b"));
    assert!(di.is_excluded("a//b"));
    assert!(di.is_excluded("a/b/"));
    assert!(di.is_excluded("a/x/../b"));
    // The context root is never excluded.
    let di = ignore("**\n*");
    assert!(!di.is_excluded(""));
    assert!(!di.is_excluded("."));
    assert!(!di.is_excluded("./"));
}

#[test]
fn double_star_forms() {
    // `**` alone and `**/` match everything.
    assert!(excluded("**", "a"));
    assert!(excluded("**", "a/b/c"));
    assert!(excluded("**/", "a/b"));
    // `**/x`: x at any depth, including the top.
    assert!(excluded("**/x", "x"));
    assert!(excluded("**/x", "a/b/x"));
    assert!(!excluded("**/x", "ax"));
    // `x/**`: everything below x, but not x itself.
    assert!(!excluded("x/**", "x"));
    assert!(excluded("x/**", "x/a"));
    assert!(excluded("x/**", "x/a/b"));
    // `a/**/b`: zero or more directories in between.
    assert!(excluded("a/**/b", "a/b"));
    assert!(excluded("a/**/b", "a/x/y/b"));
    assert!(!excluded("a/**/b", "a/xb"));
    // A leading `**` followed only by literals is a plain suffix test in
    // Docker, so `**.txt` and `**foo` match across directory boundaries and
    // inside names.
    assert!(excluded("**.txt", "a/b.txt"));
    assert!(excluded("**foo", "barfoo"));
    // With another wildcard it becomes a real regexp: `(.*/)?` then the rest.
    assert!(excluded("**/*.txt", "a/b/c.txt"));
    assert!(excluded("**/*.txt", "c.txt"));
    assert!(!excluded("**/*.txt", "c.txt2"));
    // `a**` is a prefix test.
    assert!(excluded("a**", "abc/d"));
    // A final `**` after other wildcards matches across slashes.
    assert!(excluded("a*/**", "ab/c/d"));
}

#[test]
fn single_star_and_question_mark_stay_in_one_component() {
    assert!(excluded("*.md", "README.md"));
    // `*.md` does not match `docs/a.md` itself...
    let di = ignore("*.md");
    assert!(!di.is_excluded("docs/a.md"));
    // ...but a matching parent directory excludes everything below it.
    assert!(ignore("*.d").is_excluded("conf.d/x"));
    assert!(excluded("a/*/c", "a/b/c"));
    assert!(!excluded("a/*/c", "a/b/b/c"));
    assert!(excluded("a?c", "abc"));
    assert!(!excluded("a?c", "a/c"));
    assert!(!excluded("a?c", "ac"));
}

#[test]
fn parent_directory_exclusion() {
    let di = ignore("node_modules");
    assert!(di.is_excluded("node_modules"));
    assert!(di.is_excluded("node_modules/a/b/c.js"));
    assert!(!di.is_excluded("src/node_modules/x"));
    assert!(!di.is_excluded("node_modules2"));
    let di = ignore("a/b");
    assert!(di.is_excluded("a/b/c/d"));
    assert!(!di.is_excluded("a"));
    assert!(!di.is_excluded("a/c"));
}

#[test]
fn character_classes() {
    assert!(excluded("a[b-d]e", "ace"));
    assert!(!excluded("a[b-d]e", "aae"));
    assert!(excluded("a[^b-d]e", "aze"));
    assert!(!excluded("a[^b-d]e", "ace"));
    // Go has no `!` negation: `[!a]` is the set {'!', 'a'}.
    assert!(excluded("[!a]", "!"));
    assert!(excluded("[!a]", "a"));
    assert!(!excluded("[!a]", "b"));
    // Unlike `*` and `?`, a negated class does match `/` (in Go's
    // filepath.Match as well as in Docker's regexp), so `a[^x]b` reaches
    // into the directory `a`.
    assert!(excluded("a[^x]b", "a/b"));
    assert_eq!(path_match("a[^x]b", "a/b"), Ok(true));
    // Classes work on characters, not bytes.
    assert!(excluded("caf[é]", "café"));
    assert!(excluded("[α-ω]", "λ"));
    // Docker hands classes to Go's regexp engine, so POSIX classes work.
    assert!(excluded("[[:digit:]]*", "1abc"));
    assert!(!excluded("[[:digit:]]*", "abc"));
}

#[test]
fn escapes() {
    assert!(excluded("a\\*b", "a*b"));
    assert!(!excluded("a\\*b", "axb"));
    assert!(excluded("\\[x\\]", "[x]"));
    assert!(excluded("q\\?", "q?"));
    assert!(!excluded("q\\?", "qa"));
    assert!(excluded("a\\\\", "a\\"));
}

/// Corners where Docker's pattern→regexp translation leaks Go regexp syntax.
/// Surprising, but it is what Docker does, so it is what we do.
#[test]
fn docker_regexp_quirks() {
    // `|` is not escaped: alternation of `^a` and `b[^/]*$`, unanchored.
    let di = ignore("a|b*");
    assert!(di.is_excluded("axyz"));
    assert!(di.is_excluded("q/b"));
    assert!(!di.is_excluded("xx"));
    // ...but without a wildcard the pattern is compared literally.
    assert!(excluded("a|b", "a|b"));
    assert!(!excluded("a|b", "a"));
    // `{n}` repeats.
    assert!(excluded("x{2}*", "xxy"));
    assert!(!excluded("x{2}*", "x{2}y"));
    // `*` inside a class becomes `[^/]*` inside the class.
    assert!(excluded("[*]", "]"));
    assert!(excluded("[*]", "[]"));
    assert!(!excluded("[*]", "*"));
    // `\d` is a digit class, `^` anchors.
    assert!(excluded("\\d*", "1"));
    assert!(!excluded("\\d*", "d"));
    assert!(excluded("^a*", "abc"));
    // A trailing backslash after a star escapes the final `$`.
    assert!(excluded("b*\\", "bx$"));
    assert!(!excluded("b*\\", "bx"));
}

#[test]
fn walk_semantics_differ_from_matches_or_parent_matches() {
    // fsutil feeds each directory's per-pattern results to its children; a
    // pattern skipped at the directory (it could not change the verdict) is
    // not inherited. Docker therefore sends `a/x` here...
    let di = ignore("a\n!a/x\na");
    assert!(di.is_excluded("a"));
    assert!(!di.is_excluded("a/x"));
    assert!(di.is_excluded("a/y"));
    // ...and does not send `a/b/c` here, even though `!a` matches its parent.
    let di = ignore("a/b\n!a");
    assert!(!di.is_excluded("a"));
    assert!(di.is_excluded("a/b"));
    assert!(di.is_excluded("a/b/c"));
    let di = ignore("build/out\n!build");
    assert!(di.is_excluded("build/out/app"));
    assert!(!di.is_excluded("build/keep"));
}

#[test]
fn fsutil_skip_dir_rule_is_applied_to_ancestors() {
    // fsutil skips `a/x` because the exception's literal part (`a`) does not
    // lie inside it, although `!a/*/**` would match `a/x/y`.
    let di = ignore("a/x\n!a/*/**");
    assert!(di.can_skip_dir("a/x"));
    assert!(di.is_excluded("a/x/y"));
    assert!(!di.is_excluded("a/z/y"));
}

#[test]
fn can_skip_dir() {
    let di = ignore("node_modules");
    assert!(di.can_skip_dir("node_modules"));
    assert!(di.can_skip_dir("node_modules/a"));
    assert!(!di.can_skip_dir("src"));

    let di = ignore("node_modules\n!node_modules/keep");
    assert!(di.is_excluded("node_modules"));
    assert!(!di.can_skip_dir("node_modules"));
    assert!(!di.is_excluded("node_modules/keep/a.js"));
    assert!(di.is_excluded("node_modules/other/a.js"));
    // A directory that no exception can reach is still skippable.
    assert!(di.can_skip_dir("node_modules/other"));

    // Exceptions elsewhere do not prevent skipping.
    let di = ignore("node_modules\n!src/keep");
    assert!(di.can_skip_dir("node_modules"));

    // Any exception with a wildcard disables skipping altogether.
    let di = ignore("node_modules\n!**/keep");
    assert!(!di.can_skip_dir("node_modules"));
    assert!(di.is_excluded("node_modules/a"));
    assert!(!di.is_excluded("node_modules/keep"));

    // `!dir/**` keeps `dir` walkable.
    let di = ignore("*\n!src/**");
    assert!(!di.can_skip_dir("src"));
    assert!(di.can_skip_dir("target"));

    // Not excluded means not skippable.
    assert!(!ignore("a").can_skip_dir("b"));
    assert!(!DockerIgnore::default().can_skip_dir("a"));
}

#[test]
fn invalid_patterns_report_line_numbers() {
    let e = parse_error("# header\nok\n[a-\nlater");
    assert_eq!(e.line, 3);
    assert_eq!(e.pattern, "[a-");
    assert!(e.message.contains("unterminated character class"), "{e}");
    assert!(
        e.to_string()
            .starts_with("line 3: invalid pattern `[a-`: unterminated character class"),
        "{e}"
    );

    let e = parse_error("a\n  !  ");
    assert_eq!(e.line, 2);
    assert!(e.message.contains('!'), "{e}");
    assert_eq!(parse_error("!/").line, 1);

    let e = parse_error("x\ny\nfoo\\");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("backslash"), "{e}");

    // Accepted by Go's glob check, rejected when Docker compiles the regexp
    // (`l-O` is a descending range): Docker fails the build, we fail early.
    let e = parse_error("[Local-Only]/");
    assert_eq!(e.line, 1);
    assert!(e.message.contains("range"), "{e}");

    // `\q` is an invalid Go regexp escape.
    assert!(parse_error("*\\q").message.contains("\\q"));
    // Empty class.
    assert_eq!(parse_error("a\n[]").line, 2);

    // from_patterns numbers items from 1.
    let e = DockerIgnore::from_patterns(["a", "b", "c[", "d"]).unwrap_err();
    assert_eq!(e.line, 3);

    // Go only validates the glob as far as matching `.` gets: `a*[` is not
    // reported by filepath.Match, but its regexp `^a[^/]*[$` is unterminated.
    assert!(DockerIgnore::parse("a*[").is_err());
    // A 64 KiB line is more than Docker's reader accepts.
    assert_eq!(parse_error(&format!("a\n{}", "x".repeat(65536))).line, 2);
    assert!(DockerIgnore::parse(&"x".repeat(65535)).is_ok());
}

#[test]
fn from_patterns_follows_parse_rules() {
    let di = DockerIgnore::from_patterns(vec!["# c", " /a ", "!a/keep"]).unwrap();
    assert!(di.is_excluded("a/x"));
    assert!(!di.is_excluded("a/keep"));
    assert!(!di.is_excluded("# c"));
    let di = DockerIgnore::from_patterns(Vec::<String>::new()).unwrap();
    assert!(di.is_empty());
}

#[test]
fn empty_and_default() {
    let di = DockerIgnore::default();
    assert!(di.is_empty());
    assert!(!di.has_exceptions());
    assert!(!di.is_excluded("anything"));
    assert!(ignore("").is_empty());
    assert!(!ignore("a").is_empty());
}

/// Go's own filepath.Match table (match_test.go).
#[test]
fn path_match_go_table() {
    let ok = |p: &str, s: &str, want: bool| {
        assert_eq!(path_match(p, s), Ok(want), "path_match({p:?}, {s:?})");
    };
    let bad = |p: &str, s: &str| {
        assert!(
            path_match(p, s).is_err(),
            "path_match({p:?}, {s:?}) should fail"
        );
    };
    ok("abc", "abc", true);
    ok("*", "abc", true);
    ok("*c", "abc", true);
    ok("a*", "a", true);
    ok("a*", "abc", true);
    ok("a*", "ab/c", false);
    ok("a*/b", "abc/b", true);
    ok("a*/b", "a/c/b", false);
    ok("a*b*c*d*e*/f", "axbxcxdxe/f", true);
    ok("a*b*c*d*e*/f", "axbxcxdxexxx/f", true);
    ok("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false);
    ok("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false);
    ok("a*b?c*x", "abxbbxdbxebxczzx", true);
    ok("a*b?c*x", "abxbbxdbxebxczzy", false);
    ok("ab[c]", "abc", true);
    ok("ab[b-d]", "abc", true);
    ok("ab[e-g]", "abc", false);
    ok("ab[^c]", "abc", false);
    ok("ab[^b-d]", "abc", false);
    ok("ab[^e-g]", "abc", true);
    ok("a\\*b", "a*b", true);
    ok("a\\*b", "ab", false);
    ok("a?b", "a☺b", true);
    ok("a[^a]b", "a☺b", true);
    ok("a???b", "a☺b", false);
    ok("a[^a][^a][^a]b", "a☺b", false);
    ok("[a-ζ]*", "α", true);
    ok("*[a-ζ]", "A", false);
    ok("a?b", "a/b", false);
    ok("a*b", "a/b", false);
    ok("[\\]a]", "]", true);
    ok("[\\-]", "-", true);
    ok("[x\\-]", "x", true);
    ok("[x\\-]", "-", true);
    ok("[x\\-]", "z", false);
    ok("[\\-x]", "x", true);
    ok("[\\-x]", "-", true);
    ok("[\\-x]", "a", false);
    bad("[]a]", "]");
    bad("[-]", "-");
    bad("[x-]", "x");
    bad("[x-]", "-");
    bad("[x-]", "z");
    bad("[-x]", "x");
    bad("[-x]", "-");
    bad("[-x]", "a");
    bad("\\", "a");
    bad("[a-b-c]", "a");
    bad("[", "a");
    bad("[^", "a");
    bad("[^bc", "a");
    bad("a[", "a");
    bad("a[", "ab");
    ok("*x", "xxx", true);
    // filepath.Match (unlike path.Match) does not look at chunks after the
    // first mismatch.
    ok("a*[", "x", false);
    bad("a*[", "ab");
    let e = path_match("[", "a").unwrap_err();
    assert!(e.to_string().contains("unterminated"), "{e}");
}

fn assert_fast(what: &str, limit: Duration, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let took = start.elapsed();
    assert!(took < limit, "{what} took {took:?}");
}

#[test]
fn hostile_patterns_match_in_linear_time() {
    let long_a = "a".repeat(5_000);
    let deep = vec!["a"; 300].join("/");
    // A hang guard, not a speed bound: each match takes microseconds; backtracking on these
    // inputs would take longer than the universe has left.
    let limit = Duration::from_secs(120);

    assert_fast("path_match star chain", limit, || {
        assert_eq!(path_match("*a*a*a*a*a*a*b", &long_a), Ok(false));
    });
    let di = ignore("*a*a*a*a*a*a*b\n**/a*a*a*a*a*a*b\n**/**/**/**/**/**/b\na{10}*a{10}*a{10}*b");
    assert_fast("is_excluded on a long name", limit, || {
        assert!(!di.is_excluded(&long_a));
    });
    assert_fast("is_excluded on a deep path", limit, || {
        assert!(!di.is_excluded(&deep));
    });
    let di = ignore("a/**/a/**/a/**/a/**/a/**/b");
    assert_fast("nested ** on a deep path", limit, || {
        assert!(!di.is_excluded(&deep));
        assert!(di.is_excluded(&format!("{deep}/b")));
    });
}
