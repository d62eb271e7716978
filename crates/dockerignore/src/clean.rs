//! Go's `path/filepath.Clean` and `filepath.Dir` for `/`-separated paths.
//!
//! Docker runs every `.dockerignore` pattern through `filepath.Clean` (twice:
//! once in `ReadAll`, once in `patternmatcher.New`), and the parent-directory
//! logic of the matcher is built on `filepath.Dir`. Reproducing both exactly is
//! what makes `./a`, `a//b`, `a/../b` and `dir/` behave like Docker does.

/// Go's `filepath.Clean` on a Unix host: collapse repeated slashes, drop `.`
/// elements, resolve `..` against the preceding element where possible, drop
/// `..` directly after the root, strip a trailing slash, and return `.` for an
/// empty result.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                // A `..` can only cancel a real element; leading `..`s of a
                // relative path are kept, and a rooted path cannot go above `/`.
                if matches!(parts.last(), Some(last) if *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// Go's `path.Clean("/" + path)` without the leading slash: a path resolved against a root it
/// can never climb above (`../x` is `x`), as BuildKit resolves COPY sources against the context
/// and as symlinks inside a context are followed. The root itself is the empty string. The one
/// rooted clean of the workspace (the Dockerfile analysis and the context walk use it).
pub fn clean_rooted(path: &str) -> String {
    let c = clean(&format!("/{path}"));
    c.strip_prefix('/').unwrap_or(&c).to_string()
}

/// Go's `filepath.Dir`: everything before the last `/`, cleaned (`.` when
/// there is no slash).
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_string(),
    }
}

/// The paths Go's patternmatcher builds from a parent directory with
/// `strings.Join(strings.Split(parent, "/")[:i+1], "/")` for each `i`: every
/// prefix of `parent` that ends just before a `/`, then `parent` itself.
pub(crate) fn prefixes(parent: &str) -> impl Iterator<Item = &str> {
    parent
        .match_indices('/')
        .map(move |(i, _)| &parent[..i])
        .chain(std::iter::once(parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        // Cases from Go's path/filepath cleantests (Unix).
        let cases = [
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("", "."),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/.", "/"),
            ("/", "/"),
            ("/foo", "/"),
            ("x/", "x"),
            ("abc", "."),
            ("abc/def", "abc"),
            ("a/b/.x", "a/b"),
            ("a/b/c.", "a/b"),
            ("a/b/c.x", "a/b"),
        ];
        for (input, want) in cases {
            assert_eq!(dir(input), want, "dir({input:?})");
        }
    }

    #[test]
    fn prefixes_match_go_split_join() {
        let got: Vec<&str> = prefixes("a/b/c").collect();
        assert_eq!(got, ["a", "a/b", "a/b/c"]);
        let got: Vec<&str> = prefixes("/").collect();
        assert_eq!(got, ["", "/"]);
        let got: Vec<&str> = prefixes("a").collect();
        assert_eq!(got, ["a"]);
    }

    #[test]
    fn rooted_clean_never_climbs() {
        assert_eq!(clean_rooted("../../etc/passwd"), "etc/passwd");
        assert_eq!(clean_rooted("./a//b/../c/"), "a/c");
        assert_eq!(clean_rooted("/"), "");
        assert_eq!(clean_rooted(""), "");
        assert_eq!(clean_rooted("a/../.."), "");
        assert_eq!(clean_rooted("/x/./y"), "x/y");
    }
}
