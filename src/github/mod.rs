//! Talking to the CI runner: annotations, `$GITHUB_OUTPUT`, the step summary, secret masking, and
//! the runner's jobs API (`promote --require-jobs`).

pub mod api_client;
pub mod jobs;
pub mod output;

/// Whether we run inside GitHub Actions or a compatible runner (Gitea/Forgejo set it too).
pub fn in_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Escape a message for a workflow command (`::warning::…`): `%`, CR and LF must be encoded or the
/// runner would cut the message — or read the rest as another command.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Make text safe to print as plain log lines: the runner reads workflow commands from stdout and
/// stderr alike, on any line that starts with `::` after leading whitespace, so such a line (only
/// hostile input, e.g. an image name with a newline quoted in an error) gets a backslash first.
pub fn defuse_commands(s: &str) -> String {
    s.split('\n')
        .map(|l| {
            if l.trim_start().starts_with("::") {
                format!("\\{}", l.trim_start())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text for one Markdown table cell of a step summary, the one escaper every summary uses: `\\`
/// and `|` are backslash-escaped (a pipe would end the cell, a trailing backslash would eat the
/// next pipe), `<` and `>` become entities (GitHub renders inline HTML, and names can come from a
/// fork's pull request), line breaks become spaces (a newline would end the row).
pub fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\n', '\r'], " ")
}

/// A warning the user should see: an annotation in Actions, a log line elsewhere.
pub fn warning(msg: &str) {
    if in_actions() {
        println!("::warning::{}", escape_data(msg));
    } else {
        tracing::warn!("{msg}");
    }
}

/// Ask the runner to mask `secret` in every later log line (`::add-mask::`). Only in Actions:
/// elsewhere the line itself would print the secret.
pub fn mask(secret: &str) {
    if in_actions() && !secret.is_empty() {
        for line in secret.lines().filter(|l| !l.trim().is_empty()) {
            println!("::add-mask::{}", escape_data(line));
        }
    }
}

/// An error annotation (the process still prints the error and exits non-zero).
pub fn error(msg: &str) {
    if in_actions() {
        println!("::error::{}", escape_data(msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defuses_lines_that_look_like_commands() {
        assert_eq!(
            defuse_commands("bad `a\n  ::set-output name=x::y`\nok"),
            "bad `a\n\\::set-output name=x::y`\nok"
        );
    }

    #[test]
    fn table_cells_stay_cells() {
        assert_eq!(md_cell("a|b"), "a\\|b");
        assert_eq!(md_cell("x\\"), "x\\\\");
        assert_eq!(
            md_cell("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(md_cell("one\r\ntwo\nthree"), "one  two three");
        // A backslash before a pipe cannot un-escape it.
        assert_eq!(md_cell("\\|"), "\\\\\\|");
    }

    #[test]
    fn escapes_command_breakers() {
        assert_eq!(
            escape_data("a%b\r\n::set-output"),
            "a%25b%0D%0A::set-output"
        );
    }
}
