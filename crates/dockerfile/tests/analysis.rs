//! Behaviour tests: each states what a build reads and fails if the
//! analysis under- or mis-reports it.

use std::collections::BTreeMap;

use skip_dockerfile::{parse, Analysis, ImageUseKind, ParseError};

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run(text: &str, pairs: &[(&str, &str)], target: Option<&str>) -> Analysis {
    parse(text)
        .unwrap_or_else(|e| panic!("parse failed: {e}\n{text}"))
        .analyze(&args(pairs), target)
        .unwrap_or_else(|e| panic!("analyze failed: {e}\n{text}"))
}

fn analyze(text: &str) -> Analysis {
    run(text, &[], None)
}

fn patterns(a: &Analysis) -> Vec<&str> {
    a.sources.iter().map(|s| s.pattern.as_str()).collect()
}

fn images(a: &Analysis) -> Vec<(&str, ImageUseKind)> {
    a.images
        .iter()
        .map(|i| (i.reference.as_str(), i.kind))
        .collect()
}

fn parse_err(text: &str) -> ParseError {
    parse(text).expect_err("expected a parse error")
}

// ---------------------------------------------------------------- lines

#[test]
fn continuation_lines_join_sources() {
    let a = analyze("FROM alpine\nCOPY a \\\n     b \\\n     /dst/\nRUN echo done\n");
    assert_eq!(patterns(&a), vec!["a", "b"]);
    assert!(a.sources.iter().all(|s| s.line == 2));
}

#[test]
fn comments_and_blank_lines_inside_a_continuation_are_skipped() {
    let text = "FROM alpine\nCOPY a \\\n# COPY not-me /\n\n   b /dst/\nCOPY c /\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["a", "b", "c"]);
    assert_eq!(a.sources[2].line, 6);
}

#[test]
fn comment_lines_are_not_instructions() {
    let a = analyze("FROM alpine\n# COPY secret /\n   # COPY secret2 /\nCOPY ok /\n");
    assert_eq!(patterns(&a), vec!["ok"]);
}

#[test]
fn escaped_escape_at_end_of_line_is_not_a_continuation() {
    // `\\` at the end is a literal backslash; the next line is an instruction.
    let a = analyze("FROM alpine\nRUN echo \\\\\nCOPY x /\n");
    assert_eq!(patterns(&a), vec!["x"]);
    assert_eq!(a.sources[0].line, 3);
}

#[test]
fn backtick_escape_directive() {
    let text = "# escape=`\nFROM mcr.microsoft.com/windows/servercore\nCOPY dir\\app.exe `\n     C:\\tools\\ `\n     C:\\dst\\\nCOPY `$LITERAL x /\n";
    let a = analyze(text);
    assert_eq!(
        patterns(&a),
        vec!["dir\\app.exe", "C:\\tools\\", "$LITERAL", "x"]
    );
}

#[test]
fn escape_directive_after_a_comment_is_ignored() {
    // Not a directive: the backtick is an ordinary character, the backslash
    // continues the line.
    let a = analyze("# hello\n# escape=`\nFROM alpine\nCOPY a \\\n b /\n");
    assert_eq!(patterns(&a), vec!["a", "b"]);
}

#[test]
fn syntax_directive_and_bom_and_crlf() {
    let text =
        "\u{feff}# syntax=docker/dockerfile:1.7\r\nFROM alpine\r\nCOPY a.txt \\\r\n  b.txt /\r\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["a.txt", "b.txt"]);
}

#[test]
fn instructions_are_case_insensitive() {
    let a = analyze("from alpine as Build\ncopy a /\nCoPy --from=BUILD /x /y\nAdd b /\n");
    assert_eq!(patterns(&a), vec!["a", "b"]);
    assert_eq!(a.sources[1].instruction, "ADD");
    assert_eq!(images(&a), vec![("alpine", ImageUseKind::From)]);
}

// ---------------------------------------------------------------- heredocs

#[test]
fn heredoc_body_is_never_an_instruction() {
    let text = "FROM alpine\nRUN <<EOF\nCOPY secret /\nset -e\nEOF\nCOPY real /\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["real"]);
    assert_eq!(a.sources[0].line, 6);
}

#[test]
fn copy_heredoc_source_is_inline_content() {
    let a = analyze("FROM alpine\nCOPY <<EOF /etc/motd\nCOPY secret /\nEOF\n");
    assert!(a.sources.is_empty());
    assert_eq!(a.whole_context, None);
    let a = analyze("FROM alpine\nCOPY <<EOF ./file.txt /dst/\nhello\nEOF\n");
    assert_eq!(patterns(&a), vec!["file.txt"]);
}

#[test]
fn heredoc_with_tab_stripping_and_quotes() {
    let text = "FROM alpine\nRUN <<-\"END\" sh\n\techo $HOME\n\tCOPY nope /\n\tEND\nCOPY after /\n";
    assert_eq!(patterns(&analyze(text)), vec!["after"]);
    // Without `-` a tab-indented terminator does not end the heredoc.
    let text = "FROM alpine\nRUN <<END\n\tEND\nCOPY nope /\nEND\nCOPY after /\n";
    assert_eq!(patterns(&analyze(text)), vec!["after"]);
}

#[test]
fn several_heredocs_on_one_line() {
    let text = "FROM alpine\nCOPY <<A <<'B' /dst/\nCOPY x /\nA\nCOPY y /\nB\nRUN <<one cat > f <<two\n1\none\n2\ntwo\nCOPY z /\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["z"]);
}

#[test]
fn heredoc_opener_after_a_continuation() {
    let text =
        "FROM alpine\nRUN --mount=type=cache,target=/c \\\n  <<EOF\nCOPY x /\nEOF\nCOPY y /\n";
    assert_eq!(patterns(&analyze(text)), vec!["y"]);
}

#[test]
fn quoted_or_json_heredoc_markers_are_not_heredocs() {
    let a = analyze("FROM alpine\nRUN echo \"<<EOF\"\nCOPY x /\n");
    assert_eq!(patterns(&a), vec!["x"]);
    let a = analyze("FROM alpine\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nCOPY y /\n");
    assert_eq!(patterns(&a), vec!["y"]);
}

#[test]
fn onbuild_heredoc_body_is_skipped() {
    let text = "FROM alpine AS base\nONBUILD RUN <<EOF\nCOPY secret /\nEOF\nFROM base\nCOPY ok /\n";
    assert_eq!(patterns(&analyze(text)), vec!["ok"]);
}

#[test]
fn unterminated_heredoc_is_an_error_naming_the_start() {
    let e = parse_err("FROM alpine\nRUN echo hi\nRUN <<EOF\necho\nEOF \n");
    assert_eq!(e.line, 3);
    assert!(
        e.to_string()
            .starts_with("line 3: unterminated heredoc <<EOF (started here); add a line `EOF`"),
        "{e}"
    );
}

// ---------------------------------------------------------------- argument forms

#[test]
fn json_form_keeps_spaces() {
    let a = analyze("FROM alpine\nCOPY [\"a b\", \"c\", \"/dst/\"]\nADD [\"d e.tar\", \"/\"]\n");
    assert_eq!(patterns(&a), vec!["a b", "c", "d e.tar"]);
}

#[test]
fn json_form_substitutes_variables() {
    let a = analyze("FROM scratch\nARG D=data\nCOPY [\"$D/x y\", \"/dst/\"]\n");
    assert_eq!(patterns(&a), vec!["data/x y"]);
}

#[test]
fn invalid_json_falls_back_to_shell_form() {
    let a = analyze("FROM alpine\nCOPY [a, b] /dst/\n");
    assert_eq!(patterns(&a), vec!["[a,", "b]"]);
}

#[test]
fn json_with_non_strings_is_rejected() {
    let e = parse_err("FROM alpine\nCOPY [\"a\", 1, \"/d\"]\n");
    assert_eq!(e.line, 2);
}

#[test]
fn shell_form_quotes_are_removed_per_word() {
    let a = analyze("FROM alpine\nCOPY \"a.txt\" 'b.txt' /dst/\n");
    assert_eq!(patterns(&a), vec!["a.txt", "b.txt"]);
    // BuildKit splits COPY's shell form on whitespace *before* processing
    // quotes and escapes, so `c\ d` is two sources `c` and `d`.
    let a = analyze("FROM alpine\nCOPY c\\ d /dst/\n");
    assert_eq!(patterns(&a), vec!["c", "d"]);
}

#[test]
fn every_copy_flag_is_understood() {
    let text = "FROM alpine\n\
        COPY --chown=1000:1000 --chmod=755 --link --parents --exclude=*.md --exclude=tmp/ src/ ./docs/./api /app/\n\
        COPY --link=false a /\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["src", "docs/api", "a"]);
    assert_eq!(a.whole_context, None);
}

#[test]
fn every_add_flag_is_understood() {
    let text = "FROM alpine\n\
        ADD --checksum=sha256:abc --chown=app --chmod=644 --link https://example.com/a.tgz /\n\
        ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.14.0 /src\n\
        ADD --unpack=true --exclude=*.log local.tar /\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["local.tar"]);
    assert_eq!(a.remotes.len(), 2);
    assert_eq!(a.remotes[0].url, "https://example.com/a.tgz");
    assert_eq!(a.remotes[0].checksum.as_deref(), Some("sha256:abc"));
    assert_eq!(
        a.remotes[1].url,
        "https://github.com/moby/buildkit.git#v0.14.0"
    );
    assert_eq!(a.remotes[1].checksum, None);
}

#[test]
fn run_flags_do_not_hide_mounts() {
    let text = "FROM alpine\nRUN --network=none --security=insecure --mount=type=bind,source=go.sum,target=/go.sum make\n";
    assert_eq!(patterns(&analyze(text)), vec!["go.sum"]);
}

// ---------------------------------------------------------------- substitution

#[test]
fn substitution_forms() {
    let text = "FROM scratch\n\
        ARG SET=s\n\
        ARG EMPTY=\n\
        ARG NOVAL\n\
        COPY $SET ${SET}x ${UNSET:-d1} ${EMPTY:-d2} ${EMPTY-d3}e ${UNSET-d4} /o/\n\
        COPY ${SET:+alt1} ${EMPTY:+alt2}f ${EMPTY+alt3} ${UNSET+alt4}g /o/\n\
        COPY \\$SET \"$SET\" ${NOVAL:-nv} /o/\n\
        COPY '$SET' /o/\n";
    let a = analyze(text);
    assert_eq!(
        patterns(&a),
        vec![
            "s", "sx", "d1", "d2", "e", "d4", // line 5
            "alt1", "f", "alt3", "g", // line 6
            "$SET", "s", "nv",   // line 7
            "$SET", // line 8
        ]
    );
    assert_eq!(a.whole_context, None);
}

#[test]
fn nested_default_expansion() {
    let a = analyze("FROM scratch\nARG B=inner\nCOPY ${A:-${B:-x}}/f /\n");
    assert_eq!(patterns(&a), vec!["inner/f"]);
}

#[test]
fn global_arg_needs_redeclaration_in_the_stage() {
    // Not redeclared: the stage does not see V. With an image base the value
    // may come from the image's ENV, so the analysis must not guess.
    let text = "ARG V=global\nFROM alpine\nCOPY $V/x /\n";
    let a = analyze(text);
    assert!(a.sources.is_empty());
    let why = a
        .whole_context
        .expect("must fall back to the whole context");
    assert!(why.contains("line 3") && why.contains("$V"), "{why}");
    assert!(why.contains("`ARG V`"), "hint missing: {why}");

    // With a scratch base nothing else can set it: it is empty.
    let a = analyze("ARG V=global\nFROM scratch\nCOPY $V/x /\n");
    assert_eq!(patterns(&a), vec!["x"]);

    // Redeclared: the global value flows in.
    let a = analyze("ARG V=global\nFROM alpine\nARG V\nCOPY $V/x /\n");
    assert_eq!(patterns(&a), vec!["global/x"]);
    // ... or the passed one.
    let a = run(
        "ARG V=global\nFROM alpine\nARG V\nCOPY $V/x /\n",
        &[("V", "cli")],
        None,
    );
    assert_eq!(patterns(&a), vec!["cli/x"]);
}

#[test]
fn stage_arg_default_passed_and_unset() {
    let text = "FROM alpine\nARG DIR=defaultdir\nCOPY $DIR /\n";
    assert_eq!(patterns(&analyze(text)), vec!["defaultdir"]);
    assert_eq!(
        patterns(&run(text, &[("DIR", "given")], None)),
        vec!["given"]
    );

    // Declared without default and not passed: BuildKit takes the base
    // image's ENV value if there is one — unknowable here.
    let a = analyze("FROM alpine\nARG DIR\nCOPY $DIR/app /\n");
    let why = a.whole_context.unwrap();
    assert!(why.contains("no default"), "{why}");
    assert!(why.starts_with("line 3: COPY source `$DIR/app`"), "{why}");
    // Passed: fine.
    let a = run(
        "FROM alpine\nARG DIR\nCOPY $DIR/app /\n",
        &[("DIR", "d")],
        None,
    );
    assert_eq!(patterns(&a), vec!["d/app"]);
    assert_eq!(a.whole_context, None);
}

#[test]
fn passed_args_that_are_not_declared_are_ignored() {
    let a = run(
        "FROM scratch\nCOPY ${X:-dflt} /\n",
        &[("X", "passed")],
        None,
    );
    assert_eq!(patterns(&a), vec!["dflt"]);
}

#[test]
fn env_values_substitute_in_sources() {
    let text = "FROM alpine\nARG VER=1.2\nENV APP=myapp SRC=build/$VER\nENV LEGACY legacy dir\nCOPY $SRC/$APP \"$LEGACY\" /opt/\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["build/1.2/myapp", "legacy dir"]);
    assert_eq!(a.whole_context, None);
}

#[test]
fn env_pairs_see_the_environment_from_before_the_instruction() {
    // B=$A uses A from *before* this ENV: unset in a scratch chain.
    let a = analyze("FROM scratch\nENV A=new B=${A:-old}\nCOPY $B $A /\n");
    assert_eq!(patterns(&a), vec!["old", "new"]);
}

#[test]
fn env_and_args_are_inherited_from_a_parent_stage() {
    let text = "FROM alpine AS base\nARG FLAVOR=slim\nENV DIR=/srv\nFROM base\nCOPY app-$FLAVOR $DIR/x /\n";
    assert_eq!(patterns(&analyze(text)), vec!["app-slim", "srv/x"]);
}

#[test]
fn platform_args_are_unknown_unless_passed() {
    let text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nARG TARGETARCH\nCOPY bin/$TARGETARCH/app /\n";
    let a = analyze(text);
    let why = a.whole_context.clone().unwrap();
    assert!(why.contains("TARGETARCH"), "{why}");
    assert_eq!(images(&a), vec![("golang:1.22", ImageUseKind::From)]);
    let a = run(text, &[("TARGETARCH", "arm64")], None);
    assert_eq!(patterns(&a), vec!["bin/arm64/app"]);
    assert_eq!(a.whole_context, None);
}

#[test]
fn unsupported_pattern_operators_fall_back() {
    let a = analyze("FROM scratch\nARG F=app.tar.gz\nCOPY ${F%.gz} /\n");
    assert!(a.whole_context.unwrap().contains("line 3"));
}

#[test]
fn malformed_substitution_in_a_reachable_stage_is_an_error() {
    let df = parse("FROM alpine\nCOPY ${X /\n").unwrap();
    let e = df.analyze(&BTreeMap::new(), None).unwrap_err();
    assert_eq!(e.line, 2);
    // In an unreachable stage BuildKit never evaluates it.
    let df = parse("FROM alpine AS unused\nCOPY ${X /\nFROM alpine\nCOPY ok /\n").unwrap();
    assert_eq!(
        patterns(&df.analyze(&BTreeMap::new(), None).unwrap()),
        vec!["ok"]
    );
}

#[test]
fn deeply_nested_substitution_is_an_error_not_a_crash() {
    let mut expr = String::new();
    for i in 0..5_000 {
        expr.push_str(&format!("${{v{i}:-"));
    }
    expr.push_str(&"}".repeat(5_000));
    let text = format!("FROM alpine\nCOPY {expr} /\n");
    let df = parse(&text).unwrap();
    let e = df.analyze(&BTreeMap::new(), None).unwrap_err();
    assert!(e.message.contains("nested"), "{e}");
    // The same expression in a RUN heredoc-capable line is caught at parse.
    let text = format!("FROM alpine\nRUN echo <<EOF {expr}\nEOF\n");
    assert!(parse(&text).is_err());
}

// ---------------------------------------------------------------- stages

#[test]
fn unused_stages_are_not_reported() {
    let text = "FROM golang AS build\nCOPY go.mod /src/\n\
        FROM node AS docs\nCOPY docs/ /docs/\n\
        FROM alpine\nCOPY --from=build /out/app /app\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["go.mod"]);
    assert_eq!(
        images(&a),
        vec![
            ("golang", ImageUseKind::From),
            ("alpine", ImageUseKind::From)
        ]
    );
    assert_eq!(a.target, "2");
}

#[test]
fn target_selects_the_stage() {
    let text = "FROM golang AS build\nCOPY go.mod /\nFROM alpine AS Final\nCOPY --from=build /a /a\nCOPY conf /\n";
    let a = run(text, &[], Some("build"));
    assert_eq!(patterns(&a), vec!["go.mod"]);
    assert_eq!(a.target, "build");
    let a = run(text, &[], Some("FINAL"));
    assert_eq!(patterns(&a), vec!["go.mod", "conf"]);
    assert_eq!(a.target, "final");
}

#[test]
fn missing_target_names_the_existing_stages() {
    let df = parse("FROM a AS one\nFROM b AS two\nFROM c\n").unwrap();
    let e = df.analyze(&BTreeMap::new(), Some("three")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("\"three\"") && msg.contains("one, two"),
        "{msg}"
    );
}

#[test]
fn copy_from_index_and_name() {
    let text = "FROM alpine\nCOPY zero /\nFROM alpine AS one\nCOPY one /\nFROM alpine AS unused\nCOPY unused /\nFROM scratch\nCOPY --from=0 /a /a\nCOPY --from=ONE /b /b\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["zero", "one"]);
    assert_eq!(a.images.len(), 2);
}

#[test]
fn from_stage_chains_and_onbuild() {
    let text = "FROM alpine AS base\nONBUILD COPY onbuild.txt /\nCOPY base.txt /\n\
        FROM base AS mid\nCOPY mid.txt /\n\
        FROM mid\nCOPY final.txt /\n";
    let a = analyze(text);
    assert_eq!(
        patterns(&a),
        vec!["onbuild.txt", "base.txt", "mid.txt", "final.txt"]
    );
    assert_eq!(images(&a), vec![("alpine", ImageUseKind::From)]);
}

#[test]
fn onbuild_trigger_sees_the_child_stage_environment() {
    let text = "FROM alpine AS base\nONBUILD ARG APP\nONBUILD COPY $APP /\nFROM base\n";
    let a = run(text, &[("APP", "svc")], None);
    assert_eq!(patterns(&a), vec!["svc"]);
    assert!(a.declared_args.contains("APP"));
}

#[test]
fn outside_images_stages_and_scratch() {
    let text = "ARG REG=ghcr.io/acme\nARG TAG\n\
        FROM ${REG}/base:${TAG:-latest} AS base\n\
        FROM scratch AS empty\n\
        FROM base\n\
        COPY --from=empty / /\n\
        COPY --from=busybox:1.36 /bin/sh /bin/sh\n\
        COPY --from=scratch / /\n\
        RUN --mount=type=bind,from=base,target=/b --mount=type=cache,from=debian:12,target=/c true\n";
    let a = run(text, &[("TAG", "v2")], None);
    assert_eq!(
        images(&a),
        vec![
            ("ghcr.io/acme/base:v2", ImageUseKind::From),
            ("busybox:1.36", ImageUseKind::CopyFrom),
            ("debian:12", ImageUseKind::MountFrom),
        ]
    );
    assert!(a.sources.is_empty());
    assert_eq!(a.whole_context, None);
}

#[test]
fn from_with_an_empty_name_is_an_error() {
    let df = parse("ARG BASE\nFROM ${BASE}\n").unwrap();
    let e = df.analyze(&BTreeMap::new(), None).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("empty image name"), "{e}");
}

#[test]
fn variable_in_copy_from_makes_everything_uncertain() {
    let text = "FROM alpine AS a\nCOPY a.txt /\nFROM alpine AS b\nCOPY b.txt /\nFROM alpine\nARG SRC\nCOPY --from=$SRC /x /x\n";
    let a = analyze(text);
    // Every stage might be needed: all their sources are reported...
    assert_eq!(patterns(&a), vec!["a.txt", "b.txt"]);
    // ... and the unresolved reference forces the whole context.
    let why = a.whole_context.unwrap();
    assert!(why.contains("line 7"), "{why}");
}

#[test]
fn empty_from_means_the_build_context() {
    let a = analyze(
        "FROM alpine\nCOPY --from= a /\nRUN --mount=type=bind,from=,source=b,target=/b true\n",
    );
    assert_eq!(patterns(&a), vec!["a", "b"]);
    assert_eq!(images(&a), vec![("alpine", ImageUseKind::From)]);
}

#[test]
fn flag_names_are_case_sensitive() {
    // BuildKit rejects `--FROM`; it is certainly not a stage reference, so
    // the sources are reported as context paths.
    let a = analyze("FROM alpine AS build\nFROM alpine\nCOPY --FROM=build x /\n");
    assert_eq!(patterns(&a), vec!["x"]);
}

#[test]
fn invalid_stage_index_falls_back() {
    let a = analyze("FROM alpine\nCOPY --from=5 /a /a\n");
    assert!(a.whole_context.is_some());
}

// ---------------------------------------------------------------- sources

#[test]
fn dotdot_and_dot_are_cleaned() {
    let a = analyze("FROM alpine\nCOPY ../secret ./a/ . /abs/../x/ /dst/\nCOPY / /dst/\n");
    assert_eq!(patterns(&a), vec!["secret", "a", ".", "x", "."]);
    // The same pattern twice on one line is reported once.
    let a = analyze("FROM alpine\nCOPY ./x x/ /dst/\n");
    assert_eq!(patterns(&a), vec!["x"]);
}

#[test]
fn globs_are_kept_for_the_caller() {
    let a = analyze("FROM alpine\nCOPY *.go cmd/?/main.go [ab]*.txt /src/\n");
    assert_eq!(patterns(&a), vec!["*.go", "cmd/?/main.go", "[ab]*.txt"]);
}

#[test]
fn add_remote_sources() {
    let text = "FROM alpine\n\
        ADD https://example.com/tool.tgz /opt/\n\
        ADD git@github.com:acme/repo.git#main /src\n\
        ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/pinned.tgz /\n\
        ADD github.com/acme/notgit /x\n";
    let a = analyze(text);
    let urls: Vec<_> = a
        .remotes
        .iter()
        .map(|r| (r.url.as_str(), r.checksum.is_some()))
        .collect();
    assert_eq!(
        urls,
        vec![
            ("https://example.com/tool.tgz", false),
            ("git@github.com:acme/repo.git#main", false),
            ("https://example.com/pinned.tgz", true),
        ]
    );
    // Without a scheme this is a local path for BuildKit.
    assert_eq!(patterns(&a), vec!["github.com/acme/notgit"]);
}

#[test]
fn add_source_with_unknown_variable_falls_back() {
    let a = analyze("FROM alpine\nADD $URL /\n");
    assert!(a.whole_context.unwrap().contains("ADD source"));
}

#[test]
fn bind_mounts() {
    let text = "FROM golang AS build\n\
        RUN --mount=type=bind,source=go.mod,target=/src/go.mod \\\n\
            --mount=type=bind,src=../go.sum,dst=/src/go.sum,ro \\\n\
            --mount=type=cache,target=/root/.cache/go-build \\\n\
            --mount=type=secret,id=npmrc,target=/root/.npmrc \\\n\
            --mount=type=ssh \\\n\
            --mount=type=tmpfs,target=/tmp \\\n\
            go build ./...\n\
        RUN --mount=target=/ctx make\n\
        RUN --mount=type=bind,from=build,source=/out,target=/out ls\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["go.mod", "go.sum", "."]);
    assert!(a.sources.iter().all(|s| s.instruction == "RUN --mount"));
    assert_eq!(a.sources[2].line, 9);
}

#[test]
fn mount_source_with_variable() {
    let a = run(
        "FROM alpine\nARG CFG=config\nRUN --mount=type=bind,source=$CFG,target=/c cat /c\n",
        &[],
        None,
    );
    assert_eq!(patterns(&a), vec!["config"]);
    let a = analyze("FROM alpine\nRUN --mount=type=bind,source=$CFG,target=/c cat /c\n");
    assert!(a.whole_context.unwrap().contains("line 2"));
}

#[test]
fn unparseable_mount_falls_back() {
    let a = analyze("FROM alpine\nRUN --mount=type=bind,sourc=x,target=/x true\n");
    assert!(a.whole_context.is_some());
}

#[test]
fn whole_context_reason_names_the_line() {
    let a =
        analyze("FROM node:20\nWORKDIR /app\nCOPY ${APP_DIR}/package.json ./\nCOPY src/ ./src/\n");
    let why = a.whole_context.clone().unwrap();
    assert!(
        why.starts_with("line 3: COPY source `${APP_DIR}/package.json`"),
        "{why}"
    );
    assert!(why.contains("node:20"), "{why}");
    // Resolvable sources are still listed.
    assert_eq!(patterns(&a), vec!["src"]);
}

// ---------------------------------------------------------------- args

#[test]
fn declared_args_global_and_reachable() {
    let text =
        "ARG GLOBAL=1\nFROM alpine AS unused\nARG UNUSED_ARG\nFROM alpine\nARG A=1 B=2\nARG C\n";
    let df = parse(text).unwrap();
    let all: Vec<_> = df.declared_args().into_iter().collect();
    assert_eq!(all, vec!["A", "B", "C", "GLOBAL", "UNUSED_ARG"]);
    let a = df.analyze(&BTreeMap::new(), None).unwrap();
    let reach: Vec<_> = a.declared_args.into_iter().collect();
    assert_eq!(reach, vec!["A", "B", "C", "GLOBAL"]);
}

// ---------------------------------------------------------------- errors

#[test]
fn empty_and_fromless_files_are_errors() {
    for text in ["", "\n\n# only a comment\n", "ARG X=1\n", "RUN echo hi\n"] {
        let e = parse_err(text);
        assert!(e.line >= 1, "{text:?}");
        assert!(
            e.message.contains("add a FROM instruction"),
            "{text:?}: {e}"
        );
    }
}

#[test]
fn invalid_stage_declarations_are_errors() {
    assert!(parse("FROM a b\n").is_err());
    assert!(parse("FROM a AS 1bad\n").is_err());
    assert!(parse("FROM a\nCOPY onlyone\n").is_err());
    assert!(parse("FROM a\nBOGUS x\n").is_err());
    assert!(parse("FROM a\nONBUILD ONBUILD RUN x\n").is_err());
}

#[test]
fn parse_error_display_and_error_trait() {
    let e = ParseError {
        line: 12,
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "line 12: boom");
    let _: &dyn std::error::Error = &e;
}

// ---------------------------------------------------------------- realistic pair

const BASE: &str = r#"# syntax=docker/dockerfile:1.7
ARG DEBIAN_VERSION=bookworm
FROM debian:${DEBIAN_VERSION}-slim AS base

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8

# Tooling layer
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates curl git \
    && rm -rf /var/lib/apt/lists/*

COPY base/etc/ /etc/
COPY --chmod=0755 base/entrypoint.sh /usr/local/bin/entrypoint.sh

RUN <<EOF
set -eux
useradd -m app
# COPY nothing/ / -- just a comment inside a heredoc
EOF

ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
"#;

const VARIANT: &str = r#"# syntax=docker/dockerfile:1.7
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

ARG INSTALL_OMOS=false
ARG INSTALL_PI=false

RUN if [ "$INSTALL_OMOS" = true ]; then \
        curl -fsSL https://example.com/omos.sh | sh; \
    fi \
 && if [ "$INSTALL_PI" = true ]; then \
        apt-get install -y pi-tools; \
    fi

COPY rootfs/ /
COPY --chmod=755 scripts/*.sh /usr/local/bin/
"#;

#[test]
fn realistic_base_dockerfile() {
    let a = analyze(BASE);
    assert_eq!(patterns(&a), vec!["base/etc", "base/entrypoint.sh"]);
    // The `# syntax=` frontend is an outside image too (hash v2): it runs the build.
    assert_eq!(
        images(&a),
        vec![
            ("docker/dockerfile:1.7", ImageUseKind::Syntax),
            ("debian:bookworm-slim", ImageUseKind::From)
        ]
    );
    assert_eq!(a.whole_context, None);
    assert_eq!(a.target, "base");
    let a = run(BASE, &[("DEBIAN_VERSION", "trixie")], None);
    assert_eq!(
        images(&a)[1..],
        vec![("debian:trixie-slim", ImageUseKind::From)]
    );
}

#[test]
fn realistic_variant_dockerfile() {
    let df = parse(VARIANT).unwrap();
    let a = df
        .analyze(
            &args(&[
                ("BASE_IMAGE", "ghcr.io/acme/base:abc123"),
                ("INSTALL_OMOS", "true"),
            ]),
            None,
        )
        .unwrap();
    assert_eq!(patterns(&a), vec!["rootfs", "scripts/*.sh"]);
    assert_eq!(a.sources[0].line, 15);
    assert_eq!(a.sources[1].line, 16);
    assert_eq!(
        images(&a),
        vec![
            ("docker/dockerfile:1.7", ImageUseKind::Syntax),
            ("ghcr.io/acme/base:abc123", ImageUseKind::From)
        ]
    );
    assert_eq!(a.whole_context, None);
    let declared: Vec<_> = a.declared_args.iter().map(String::as_str).collect();
    assert_eq!(declared, vec!["BASE_IMAGE", "INSTALL_OMOS", "INSTALL_PI"]);
    assert_eq!(a.target, "0");
    // Without BASE_IMAGE BuildKit cannot build it either.
    let e = df.analyze(&BTreeMap::new(), None).unwrap_err();
    assert_eq!(e.line, 3);
}

// ---------------------------------------------------------------- more edge cases

#[test]
fn env_with_unknown_name_poisons_later_lookups() {
    let a = analyze("FROM scratch\nARG TARGETARCH\nENV $TARGETARCH=x\nCOPY a$OTHER /\n");
    // Even in a scratch chain, $OTHER might be the variable ENV just set.
    assert!(a.whole_context.unwrap().contains("line 4"));
}

#[test]
fn from_numeric_is_an_image_but_keeps_the_stage_reachable() {
    // BuildKit reads `FROM 0` as the image "0"; stage 0 is still reported
    // because over-reporting is the safe side.
    let a = analyze("FROM alpine\nCOPY zero /\nFROM 0\n");
    assert_eq!(patterns(&a), vec!["zero"]);
    assert!(images(&a).contains(&("0", ImageUseKind::From)));
}

#[test]
fn duplicate_stage_names_report_every_candidate() {
    let text = "FROM alpine AS dup\nCOPY one /\nFROM alpine AS dup\nCOPY two /\nFROM alpine\nCOPY --from=dup /x /x\n";
    assert_eq!(patterns(&analyze(text)), vec!["one", "two"]);
}

#[test]
fn mount_from_index_and_onbuild_dependencies() {
    let text = "FROM alpine\nCOPY s0 /\n\
        FROM alpine AS tools\nCOPY tools /\n\
        FROM alpine AS base\nONBUILD COPY --from=tools /t /t\n\
        FROM alpine AS unused\nCOPY unused /\n\
        FROM base\nRUN --mount=from=0,target=/s0 true\n";
    assert_eq!(patterns(&analyze(text)), vec!["s0", "tools"]);
}

#[test]
fn checksum_from_a_variable() {
    let text = "FROM alpine\nARG SUM\nADD --checksum=$SUM https://example.com/x.tgz /\n";
    let a = run(text, &[("SUM", "sha256:00")], None);
    assert_eq!(a.remotes[0].checksum.as_deref(), Some("sha256:00"));
    // Unknown checksum: reported as not pinned.
    assert_eq!(analyze(text).remotes[0].checksum, None);
}

#[test]
fn copy_from_variable_that_resolves() {
    let text = "FROM alpine\nARG IMG\nCOPY --from=$IMG /bin/x /x\n";
    let a = run(text, &[("IMG", "busybox:1")], None);
    assert_eq!(
        images(&a),
        vec![
            ("alpine", ImageUseKind::From),
            ("busybox:1", ImageUseKind::CopyFrom)
        ]
    );
    assert_eq!(a.whole_context, None);
}

#[test]
fn required_variable_errors_only_when_unset() {
    let df = parse("FROM alpine\nARG V\nCOPY ${V?setV} /\n").unwrap();
    // Unset in the stage but possibly set by the image: unknown, not an error.
    let a = df.analyze(&BTreeMap::new(), None).unwrap();
    assert!(a.whole_context.is_some());
    let df = parse("FROM scratch\nARG V\nCOPY ${V?setV} /\n").unwrap();
    let e = df.analyze(&BTreeMap::new(), None).unwrap_err();
    assert!(e.message.contains("V: setV"), "{e}");
    let a = df.analyze(&args(&[("V", "ok")]), None).unwrap();
    assert_eq!(patterns(&a), vec!["ok"]);
}

#[test]
fn analysis_can_be_repeated_with_different_inputs() {
    let df = parse(
        "ARG FLAVOR=a\nFROM alpine AS a\nCOPY a /\nFROM alpine AS b\nCOPY b /\nFROM ${FLAVOR}\n",
    )
    .unwrap();
    let a = df.analyze(&BTreeMap::new(), None).unwrap();
    assert_eq!(patterns(&a), vec!["a"]);
    let b = df.analyze(&args(&[("FLAVOR", "b")]), None).unwrap();
    assert_eq!(patterns(&b), vec!["b"]);
    assert!(a.images.iter().all(|i| i.reference == "alpine"));
}

#[test]
fn add_url_with_unknown_parts_is_still_remote() {
    let a = analyze("FROM alpine\nADD https://example.com/$VERSION/tool.tgz /\n");
    assert_eq!(a.whole_context, None);
    assert_eq!(a.remotes[0].url, "https://example.com/$VERSION/tool.tgz");
    // Without the literal scheme the source could be anything.
    let a = analyze("FROM alpine\nADD $URL /\n");
    assert!(a.whole_context.is_some());
}

#[test]
fn errors_in_stages_that_may_not_be_built_degrade_to_whole_context() {
    // TARGETARCH is unknown, so every stage may be the base; the broken
    // stage might never be built, so this is not a hard error.
    let text = "FROM alpine AS arm64\nCOPY ${oops /\nFROM alpine AS amd64\nCOPY ok /\nFROM ${TARGETARCH}\n";
    let a = analyze(text);
    assert!(a.whole_context.as_deref().unwrap().contains("line 2"));
    assert_eq!(patterns(&a), vec!["ok"]);
    // Once the platform is known, the broken stage is simply not built.
    let a = run(text, &[("TARGETARCH", "amd64")], None);
    assert_eq!(patterns(&a), vec!["ok"]);
    assert_eq!(a.whole_context, None);
}

#[test]
fn json_form_with_trailing_text_reports_both_readings() {
    // Current BuildKit ignores ` extra`; stricter parsers read the line as
    // shell form (sources `["a",` -> `[a,` and `"/d"]` -> `/d]`).
    let a = analyze("FROM alpine\nCOPY [\"a\", \"/d\"] extra\n");
    assert_eq!(patterns(&a), vec!["a", "[a,", "d]"]);
    // A shell reading that would not even lex is simply ignored.
    let a = analyze("FROM alpine\nCOPY [\"a b\", \"/d\"] extra\n");
    assert_eq!(patterns(&a), vec!["a b", "d]"]);
}

#[test]
fn unresolved_from_that_cannot_be_a_stage_keeps_reachability_precise() {
    let text =
        "FROM alpine AS unused\nCOPY unused /\nFROM ghcr.io/acme/app:${TARGETARCH}\nCOPY app /\n";
    let a = analyze(text);
    assert_eq!(patterns(&a), vec!["app"]);
    assert_eq!(
        images(&a),
        vec![("ghcr.io/acme/app:${TARGETARCH}", ImageUseKind::From)]
    );
    // A bare variable might name a stage: then every stage counts.
    let a = analyze("FROM alpine AS maybe\nCOPY maybe /\nFROM ${TARGETARCH}\n");
    assert_eq!(patterns(&a), vec!["maybe"]);
}

#[test]
fn parents_exclude_and_chmod_reach_the_sources() {
    let a = analyze(
        "FROM alpine\nCOPY --parents --exclude=*.md --chmod=0755 ./src/**/*.txt a/./b/c /p/\nCOPY --chmod=u+x x /\n",
    );
    assert_eq!(patterns(&a), vec!["src/**/*.txt", "a/b/c", "x"]);
    assert_eq!(a.sources[0].pivot.as_deref(), Some("."));
    assert_eq!(a.sources[0].include_pattern(), Some("src/**/*.txt"));
    assert_eq!(a.sources[1].pivot.as_deref(), Some("a"));
    assert_eq!(a.sources[1].include_pattern(), Some("b/c"));
    assert_eq!(a.sources[0].excludes, vec!["*.md"]);
    assert!(a.sources[0].chmod_fixed);
    // A symbolic mode keeps part of the source mode: it still counts.
    assert!(!a.sources[2].chmod_fixed);
    assert_eq!(a.whole_context, None);
}

#[test]
fn unknown_copy_flags_take_the_whole_context() {
    let a = analyze("FROM alpine\nCOPY --frobnicate=x a /\n");
    let why = a.whole_context.unwrap();
    assert!(
        why.contains("--frobnicate=x") && why.contains("line 2"),
        "{why}"
    );
    // `--checksum` is an ADD flag, not a COPY one.
    assert!(analyze("FROM alpine\nCOPY --checksum=sha256:0 a /\n")
        .whole_context
        .is_some());
}

#[test]
fn a_foreign_frontend_takes_the_whole_context() {
    for ok in [
        "docker/dockerfile:1",
        "docker.io/docker/dockerfile:1.7-labs",
        "docker/dockerfile@sha256:abc",
    ] {
        let a = analyze(&format!("# syntax={ok}\nFROM alpine\nCOPY a /\n"));
        assert_eq!(a.whole_context, None, "{ok}");
        assert_eq!(images(&a)[0], (ok, ImageUseKind::Syntax));
    }
    let a = analyze("# syntax=example.com/other-frontend:1\nFROM alpine\nCOPY a /\n");
    assert!(a.whole_context.unwrap().contains("other-frontend"));
    // BUILDKIT_SYNTAX overrides the directive.
    let a = run(
        "# syntax=docker/dockerfile:1\nFROM alpine\nCOPY a /\n",
        &[("BUILDKIT_SYNTAX", "example.com/x:1")],
        None,
    );
    assert!(a.whole_context.is_some());
}
