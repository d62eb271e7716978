//! Small pure helpers: context path cleaning, ADD source classification and
//! `--mount` CSV splitting.

/// Cleans a COPY/ADD/bind source the way BuildKit resolves it against the
/// context root: Go's `path.Clean("/" + src)` without the leading slash.
/// `..` can never climb above the root, so `../x` is `x`. The root itself is
/// returned as `.` (the whole context). Glob characters are kept as written
/// because the caller expands them against the real context.
pub(crate) fn clean_context_path(src: &str) -> String {
    let c = skip_dockerignore::clean_rooted(src);
    if c.is_empty() {
        ".".to_string()
    } else {
        c
    }
}

/// What an ADD source (after substitution) refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddSource {
    /// A path in the build context.
    Local,
    /// An HTTP(S) download.
    Http,
    /// A git repository.
    Git,
}

/// `^[A-Za-z0-9_-]+@[A-Za-z0-9.-]+:` — BuildKit's implicit-SSH (scp-like)
/// git URL, e.g. `git@github.com:org/repo.git`.
fn is_scp_like(s: &str) -> bool {
    let Some((user, rest)) = s.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Go's `net/url` rejects bad `%` escapes and control characters; BuildKit
/// then does not treat the source as git (and a git/ssh "URL" becomes a local
/// path). Checking this keeps us from calling a local path remote.
fn url_syntax_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !s.chars().any(|c| c.is_ascii_control())
        && b.iter().enumerate().all(|(i, &c)| {
            c != b'%'
                || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        })
}

/// BuildKit's `ParseGitRef` acceptance test. `github.com/org/repo` without
/// a scheme is deliberately *not* git: BuildKit treats it as a local path in
/// ADD (it is "indistinguishable from local"), and so do we.
fn is_git_ref(s: &str) -> bool {
    if s.starts_with("./") || s.starts_with("../") || s.starts_with("github.com/") {
        return false;
    }
    if !url_syntax_ok(s) {
        return false;
    }
    if let Some(i) = s.find("://") {
        let proto = &s[..i];
        if !proto.is_empty() && proto.chars().all(|c| c.is_ascii_alphanumeric()) {
            return match proto.to_ascii_lowercase().as_str() {
                "git" | "ssh" => true,
                "http" | "https" => {
                    // Only with a `.git` path suffix (query/fragment aside).
                    let after = &s[i + 3..];
                    let end = after.find(['?', '#']).unwrap_or(after.len());
                    let url = &after[..end];
                    url.find('/').is_some_and(|p| url[p..].ends_with(".git"))
                }
                _ => false,
            };
        }
    }
    is_scp_like(s)
}

/// Classifies an ADD source. Anything not recognised as remote is local, so
/// a misclassification can only over-report context paths.
pub(crate) fn classify_add_source(s: &str) -> AddSource {
    if is_git_ref(s) {
        AddSource::Git
    } else if s.starts_with("http://") || s.starts_with("https://") {
        AddSource::Http
    } else {
        AddSource::Local
    }
}

/// Splits a `--mount` value into CSV fields like Go's `encoding/csv` (one
/// record, `"` quoting with `""` as an escaped quote, no lazy quotes).
pub(crate) fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Err("empty mount specification".into());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => i += 1,
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.get(i) {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        i += 1;
                        break;
                    }
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
        }
        fields.push(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        for (i, o) in [
            ("../x", "x"),
            ("./a/", "a"),
            (".", "."),
            ("/", "."),
            ("", "."),
            ("a//b/./c/..", "a/b"),
            ("../../..", "."),
            ("/usr/../etc/*.conf", "etc/*.conf"),
            ("src/[ab]?.rs", "src/[ab]?.rs"),
        ] {
            assert_eq!(clean_context_path(i), o, "{i}");
        }
    }

    #[test]
    fn add_sources() {
        use AddSource::*;
        for (s, k) in [
            ("https://example.com/a.tgz", Http),
            ("http://example.com/", Http),
            ("https://github.com/moby/buildkit.git#v0.10.1", Git),
            ("https://github.com/moby/buildkit.git?ref=main", Git),
            ("git@github.com:moby/buildkit.git", Git),
            ("git://example.com/x", Git),
            ("SSH://host/x", Git),
            ("github.com/moby/buildkit", Local),
            ("./git@github.com:x", Local),
            ("https://example.com/x.git.tar", Http),
            ("ftp://example.com/x", Local),
            ("git://example.com/%zz", Local),
            ("app.tar.gz", Local),
        ] {
            assert_eq!(classify_add_source(s), k, "{s}");
        }
    }

    #[test]
    fn csv() {
        assert_eq!(
            csv_fields("type=bind,source=a,target=/b").unwrap(),
            vec!["type=bind", "source=a", "target=/b"]
        );
        assert_eq!(
            csv_fields("\"source=a,b\",x").unwrap(),
            vec!["source=a,b", "x"]
        );
        assert_eq!(csv_fields("a,").unwrap(), vec!["a", ""]);
        assert!(csv_fields("a\"b").is_err());
        assert!(csv_fields("\"ab").is_err());
        assert!(csv_fields("").is_err());
    }
}
